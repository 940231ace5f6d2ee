"""Recipes (`xmmtools run`): every stage end to end, content-based skipping, the lock, the run
log, side products, and the data-loss guards (no output over an input, outputs stay inside the
work folder, a dry run creates nothing)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from helpers import DATA, DR9, ROOT, SAMPLE, run_cli, run_main

from xmmtools import tables as T

DR8 = DATA / "variability_long" / "3xmm_dr8_ngc5139.csv"


def _write(tmp_path: Path, body: str, name: str = "release.toml") -> Path:
    r = tmp_path / name
    r.write_text(body)
    return r


def _stages_run(err: str) -> list[int]:
    """Numbers of the stages that ran (not 'is up to date') in a run's stderr."""
    out = []
    for ln in err.splitlines():
        if ln.startswith("stage ") and "is up to date" not in ln and " -> " in ln:
            out.append(int(ln.split()[1]))
    return out


# -- the demo recipe: every stage -------------------------------------------------------------


@pytest.mark.slow
def test_the_release_recipe_runs_every_stage_then_skips_all(tmp_path, capsys):
    recipe = ROOT / "examples" / "release.toml"
    work = tmp_path / "demo"
    code, _, err = run_main(["run", recipe, "--workdir", work], capsys)
    assert code == 0, err
    assert _stages_run(err) == list(range(1, 9))
    final = T.read_table(work / "ngc5139_release.parquet")
    chain = [s["stage"] for s in T.provenance_of(final.schema)]
    assert chain == ["sample", "crossmatch", "classify", "sensitivity", "variability-long"]  # the whole chain
    assert {"P_ANY", "CLASS", "EP_8_THRESH_FLUX", "LT_VAR_RATIO"} <= set(final.column_names)
    assert final.num_rows == 52
    assert "Z_PHOT" in T.read_table(work / "s82x_photoz.parquet").column_names
    assert (work / "ngc5139_alerts.csv").exists() and (work / "ngc5139_epochs.parquet").exists()
    assert (work / "report" / "index.html").stat().st_size > 10_000
    code, _, err = run_main(["run", recipe, "--workdir", work], capsys)
    assert code == 0 and _stages_run(err) == [] and err.count("is up to date") == 8
    code, out, _ = run_main(["run", recipe, "--workdir", work, "--dry-run"], capsys)
    assert code == 0 and out.count("up to date") == 8 and "&&" not in out


# -- skipping by content ----------------------------------------------------------------------


def _branches(tmp_path: Path, a_select="SRCID,RA,DEC,EP_8_FLUX") -> Path:
    """Two chains: a.csv -> s1 -> s2, and b.csv -> s3 (convert only: fast)."""
    T.write_table(T.read_table(DR9), tmp_path / "a.csv")
    T.write_table(T.read_table(DR9).slice(0, 30), tmp_path / "b.csv")
    return _write(
        tmp_path,
        f"""
input = "a.csv"
workdir = "out"
[[stage]]
command = "convert"
args = ["--select", "{a_select}"]
output = "s1.parquet"
[[stage]]
command = "convert"
args = ["--select", "SRCID,RA"]
output = "s2.fits"
[[stage]]
command = "convert"
input = "b.csv"
output = "s3.parquet"
""",
    )


def test_changing_a_parameter_or_an_input_byte_reruns_exactly_the_affected_stages(tmp_path, capsys):
    r = _branches(tmp_path)
    code, _, err = run_main(["run", r], capsys)
    assert code == 0 and _stages_run(err) == [1, 2, 3], err
    code, _, err = run_main(["run", r], capsys)
    assert code == 0 and _stages_run(err) == []
    # a new modification time alone changes nothing
    time.sleep(0.02)
    os.utime(tmp_path / "a.csv")
    os.utime(r)
    assert _stages_run(run_main(["run", r], capsys)[2]) == []
    # one byte of b.csv: stage 3 only
    b = (tmp_path / "b.csv").read_text()
    i = b.index("\n") + 1  # first data row: change one digit of SRCID
    digit = b[i]
    (tmp_path / "b.csv").write_text(b[:i] + ("1" if digit != "1" else "2") + b[i + 1 :])
    code, out, _ = run_main(["run", r, "--dry-run"], capsys)
    assert "# stage 3 (convert): runs (its input b.csv changed)" in out and out.count(": runs") == 1
    assert _stages_run(run_main(["run", r], capsys)[2]) == [3]
    # a parameter of stage 2: stage 2 only
    r.write_text(r.read_text().replace('"SRCID,RA"]', '"SRCID,DEC"]'))
    assert _stages_run(run_main(["run", r], capsys)[2]) == [2]
    assert T.read_table(tmp_path / "out" / "s2.fits").column_names == ["SRCID", "DEC"]
    # a parameter of stage 1: stage 1 and everything downstream of it (2), not 3
    r.write_text(r.read_text().replace("SRCID,RA,DEC,EP_8_FLUX", "SRCID,RA,DEC"))
    code, out, _ = run_main(["run", r, "--dry-run"], capsys)
    assert "stage 2 (convert): runs (its input s1.parquet is rebuilt)" in out
    assert _stages_run(run_main(["run", r], capsys)[2]) == [1, 2]
    # an output edited or removed by hand is rebuilt
    os.remove(tmp_path / "out" / "s3.parquet")
    assert _stages_run(run_main(["run", r], capsys)[2]) == [3]
    T.write_table(T.read_table(DR9).slice(0, 2), tmp_path / "out" / "s3.parquet", overwrite=True)
    assert _stages_run(run_main(["run", r], capsys)[2]) == [3]
    assert T.read_table(tmp_path / "out" / "s3.parquet").num_rows == 30
    # --force runs everything
    assert _stages_run(run_main(["run", r, "--force"], capsys)[2]) == [1, 2, 3]


def test_a_failing_stage_keeps_earlier_outputs_and_leaves_later_ones_absent(tmp_path, capsys):
    r = _branches(tmp_path, a_select="SRCID,NOPE")
    (tmp_path / "out").mkdir()
    code, _, err = run_main(["run", r], capsys)
    assert code == 1 and "stage 1 (convert) failed" in err and "NOPE" in err
    assert not any((tmp_path / "out" / n).exists() for n in ("s1.parquet", "s2.fits", "s3.parquet"))
    r.write_text(r.read_text().replace("SRCID,NOPE", "SRCID,RA,DEC").replace('"SRCID,RA"]', '"SRCID,NOPE"]'))
    code, _, err = run_main(["run", r], capsys)
    assert code == 1 and "stage 2 (convert) failed" in err
    assert T.read_table(tmp_path / "out" / "s1.parquet").num_rows == 100
    assert not (tmp_path / "out" / "s2.fits").exists() and not (tmp_path / "out" / "s3.parquet").exists()
    log = [json.loads(x) for x in (tmp_path / "out" / "release.runlog.jsonl").read_text().splitlines()]
    assert [(e["stage"], e["status"]) for e in log] == [(1, "failed"), (1, "ok"), (2, "failed")]
    assert not (tmp_path / "out" / ".release.lock").exists()  # the lock goes with the run


def test_the_run_log_records_each_stage(tmp_path, capsys):
    r = _branches(tmp_path)
    assert run_main(["run", r], capsys)[0] == 0
    assert run_main(["run", r], capsys)[0] == 0
    log = [json.loads(x) for x in (tmp_path / "out" / "release.runlog.jsonl").read_text().splitlines()]
    assert len(log) == 6 and len({e["run"] for e in log}) == 2
    first = log[0]
    assert first["status"] == "ok" and first["stage"] == 1 and first["exit"] == 0
    assert first["rows_in"] == 100 and first["rows_out"] == 100 and first["peak_rss_mb"] > 10
    assert first["start"] <= first["end"]
    assert first["checksums"]["out/s1.parquet"] == T.file_sha256(tmp_path / "out" / "s1.parquet")
    assert shlex.split(first["command"])[:2] == ["xmmtools", "convert"]
    assert [e["status"] for e in log[3:]] == ["skipped"] * 3


def test_side_products_count_as_outputs_for_skipping(tmp_path, capsys):
    r = _write(
        tmp_path,
        f"""
input = "{SAMPLE}"
[[stage]]
command = "variability long"
args = ["--archive", "3XMM={DR8}"]
output = "lt.parquet"
products = {{ "--epochs" = "epochs.csv" }}
""",
    )
    code, _, err = run_main(["run", r, "-q"], capsys)
    assert code == 0 and err == "", err  # -q works on run as on every command
    assert T.read_table(tmp_path / "epochs.csv").num_rows == 52
    assert "up to date" in run_main(["run", r], capsys)[2]
    os.remove(tmp_path / "epochs.csv")
    code, _, err = run_main(["run", r], capsys)
    assert code == 0 and "epochs.csv does not exist" in err and (tmp_path / "epochs.csv").exists()


# -- locks ------------------------------------------------------------------------------------


def test_a_concurrent_run_is_refused_and_a_stale_lock_taken_over(tmp_path, capsys):
    r = _branches(tmp_path)
    (tmp_path / "out").mkdir()
    lock = tmp_path / "out" / ".release.lock"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        lock.write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(), "since": "now"}))
        code, _, err = run_main(["run", r], capsys)
        assert code == 1 and f"another run of this recipe is in progress (pid {sleeper.pid}" in err
        assert not (tmp_path / "out" / "s1.parquet").exists() and lock.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    code, _, err = run_main(["run", r], capsys)  # the sleeper is dead: its lock is stale
    assert code == 0 and "taking over the stale lock" in err
    assert not lock.exists()


def test_two_real_concurrent_runs_one_refused(tmp_path):
    """Two processes started together on a slower recipe: exactly one runs it."""
    body = f'input = "{SAMPLE}"\n' + "".join(
        f'[[stage]]\ncommand = "classify"\n{"" if i == 0 else f"input = {chr(34)}{SAMPLE}{chr(34)}"}\n'
        f'output = "c{i}.parquet"\n'
        for i in range(3)
    )
    r = _write(tmp_path, body)
    procs = [
        subprocess.Popen([sys.executable, "-m", "xmmtools", "run", str(r)], stderr=subprocess.PIPE) for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read().decode()) for p in procs]
    codes = sorted(c for c, _ in results)
    if codes == [0, 0]:  # the first finished before the second started: then it skipped everything
        assert any(e.count("is up to date") == 3 for _, e in results)
    else:
        assert codes == [0, 1]
        assert any("another run of this recipe is in progress" in e for _, e in results)


# -- data-loss guards (issue 18) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("in.fits", "which is an input of the recipe"),
        ("release.toml", "which is the recipe itself"),
        ("../../x.parquet", "is outside the work folder"),
        ("/tmp/x.parquet", "must be a path relative to the work folder"),
        ("sub/../../x.parquet", "is outside the work folder"),
    ],
)
def test_no_output_may_be_an_input_or_leave_the_work_folder(tmp_path, capsys, output, message):
    shutil.copy(DR9, tmp_path / "in.fits")
    before = (tmp_path / "in.fits").read_bytes()
    r = _write(
        tmp_path,
        f'input = "in.fits"\n[[stage]]\ncommand = "convert"\noutput = "ok.parquet"\n'
        f'[[stage]]\ncommand = "convert"\nargs = ["--select", "SRCID"]\noutput = "{output}"\n',
    )
    recipe_before = r.read_bytes()
    code, _, err = run_main(["run", r], capsys)
    assert code == 1 and message in err, err
    assert not (tmp_path / "ok.parquet").exists()  # checked before anything runs
    assert (tmp_path / "in.fits").read_bytes() == before and r.read_bytes() == recipe_before


def test_a_side_product_may_not_be_an_input_or_the_main_output(tmp_path, capsys):
    shutil.copy(DR9, tmp_path / "in.fits")
    r = _write(
        tmp_path,
        'input = "in.fits"\n[[stage]]\ncommand = "variability long"\noutput = "lt.parquet"\n'
        'products = { "--alerts" = "lt.parquet" }\n',
    )
    code, _, err = run_main(["run", r], capsys)
    assert code == 1 and "lt.parquet" in err and not (tmp_path / "lt.parquet").exists()
    r.write_text(
        'input = "in.fits"\n[[stage]]\ncommand = "variability long"\noutput = "lt.parquet"\n'
        'products = { "--alerts" = "in.fits" }\n'
    )
    code, _, err = run_main(["run", r], capsys)
    assert code == 1 and "which is an input of the recipe" in err


@pytest.mark.parametrize("arg", ["--help", "-h", "--version"])
def test_a_stage_that_would_write_nothing_is_an_error(tmp_path, capsys, arg):
    r = _write(tmp_path, f'input = "{DR9}"\n[[stage]]\ncommand = "convert"\nargs = ["{arg}"]\noutput = "o.parquet"\n')
    code, out, err = run_main(["run", r], capsys)
    assert code == 1 and "makes the stage write nothing" in err and "Usage" not in out


def test_dry_run_creates_nothing_and_prints_shell_quoted_commands(tmp_path, capsys):
    folder = tmp_path / "my data"
    folder.mkdir()
    shutil.copy(DR9, folder / "in put.fits")
    r = _write(
        folder,
        'input = "in put.fits"\nworkdir = "build dir"\n[[stage]]\ncommand = "variability long"\n'
        'args = ["--threshold", "5"]\noutput = "o u t.parquet"\nproducts = { "--alerts" = "a.csv" }\n',
    )
    before = sorted(os.listdir(folder))
    code, out, err = run_main(["run", r, "--dry-run"], capsys)
    assert code == 0, err
    assert sorted(os.listdir(folder)) == before  # no work folder, no lock, no log
    cmd = [ln for ln in out.splitlines() if not ln.startswith("#")][0]
    words = shlex.split(cmd)
    work = str(folder / "build dir")
    assert words[:6] == ["(mkdir", "-p", work, "&&", "cd", work]
    tail = words[words.index("&&", 4) + 1 :]
    assert tail[:4] == ["xmmtools", "variability", "long", "../in put.fits"]
    assert tail[-3:] == ["-o", "o u t.parquet", "--overwrite)"]
    # the printed command really runs in a shell and makes what the recipe would
    r2 = subprocess.run(
        ["bash", "-c", cmd.replace("xmmtools ", f"{shlex.quote(sys.executable)} -m xmmtools ", 1)],
        capture_output=True,
        timeout=120,
    )
    assert r2.returncode == 0, r2.stderr
    assert T.read_table(folder / "build dir" / "o u t.parquet").num_rows == 100
    assert (folder / "build dir" / "a.csv").exists()


def test_unresolved_relative_outputs_of_a_stage_land_in_the_work_folder(tmp_path, capsys, monkeypatch):
    r = _write(
        tmp_path,
        f'input = "{SAMPLE}"\nworkdir = "w"\n[[stage]]\ncommand = "variability long"\n'
        f'args = ["--archive", "3XMM={DR8}", "--epochs", "ep.csv"]\noutput = "lt.parquet"\n',
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert run_main(["run", r, "-q"], capsys)[0] == 0
    assert (tmp_path / "w" / "ep.csv").exists() and os.listdir(elsewhere) == []
    assert os.getcwd() == str(elsewhere)


def test_nested_commands_typos_and_file_paths_from_anywhere(tmp_path, capsys, monkeypatch):
    r = _write(
        tmp_path,
        f'input = "{SAMPLE}"\n[[stage]]\ncommand = "variability lnog"\noutput = "o.parquet"\n',
    )
    code, _, err = run_main(["run", r, "--dry-run"], capsys)
    assert code == 1 and "no such xmmtools command 'variability lnog'" in err
    r.write_text(f'input = "{SAMPLE}"\n[[stage]]\ncommand = "clasify"\noutput = "o.parquet"\n')
    code, _, err = run_main(["run", r, "--dry-run"], capsys)
    assert code == 1 and "no such xmmtools command 'clasify'" in err
    # relative paths resolve against the recipe's folder, wherever it is run from
    sub = tmp_path / "recipes"
    sub.mkdir()
    shutil.copy(SAMPLE, tmp_path / "cat.fits")
    shutil.copy(DR8, tmp_path / "dr8.csv")
    r = _write(
        sub,
        'input = "../cat.fits"\nworkdir = "../build"\n[[stage]]\ncommand = "variability long"\n'
        'args = ["--archive", "3XMM=../dr8.csv"]\noutput = "lt.parquet"\n',
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = run_main(["run", "../recipes/release.toml", "-q"], capsys)
    assert code == 0, err
    t = T.read_table(tmp_path / "build" / "lt.parquet")
    assert int(np.nanmax(T.to_numpy(t["LT_N_EPOCHS"], float))) > 1
    assert os.listdir(elsewhere) == []


# -- the shell pipe of three stages equals the recipe ------------------------------------------


@pytest.mark.slow
def test_a_three_stage_shell_pipe_gives_the_recipe_table(tmp_path, capsys):
    xm_args = ["--catalog", f"dr8={DR8}", "--pos-err", "DR8=POSERR", "--radius", "10"]
    lt_args = ["--archive", f"3XMM={DR8}"]
    py = shlex.quote(sys.executable)
    out = shlex.quote(str(tmp_path / "pipe.parquet"))
    pipe = (
        f"{py} -m xmmtools -q crossmatch {shlex.quote(str(SAMPLE))} {shlex.join(xm_args)} -o - "
        f"| {py} -m xmmtools -q classify - -o - "
        f"| {py} -m xmmtools -q variability long - {shlex.join(lt_args)} -o {out}"
    )
    p = subprocess.run(["bash", "-o", "pipefail", "-c", pipe], capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr
    r = _write(
        tmp_path,
        f'input = "{SAMPLE}"\n'
        f'[[stage]]\ncommand = "crossmatch"\nargs = {json.dumps(xm_args)}\noutput = "xm.parquet"\n'
        f'[[stage]]\ncommand = "classify"\noutput = "cl.parquet"\n'
        f'[[stage]]\ncommand = "variability long"\nargs = {json.dumps(lt_args)}\noutput = "recipe.parquet"\n',
    )
    assert run_main(["run", r, "-q"], capsys)[0] == 0
    a, b = T.read_table(tmp_path / "pipe.parquet"), T.read_table(tmp_path / "recipe.parquet")
    assert a.column_names == b.column_names and a.num_rows == b.num_rows == 52
    assert a.schema.remove_metadata().equals(b.schema.remove_metadata(), check_metadata=True)  # units, descriptions
    for n in a.column_names:
        assert a[n].null_count == b[n].null_count, n
        if pa.types.is_floating(a.schema.field(n).type):  # NaN == NaN here
            np.testing.assert_array_equal(T.to_numpy(a[n], float), T.to_numpy(b[n], float), n)
        else:
            assert a[n].to_pylist() == b[n].to_pylist(), n
    assert [s["stage"] for s in T.provenance_of(a.schema)] == [s["stage"] for s in T.provenance_of(b.schema)]


def test_run_cli_reports_a_missing_recipe_in_one_line(tmp_path):
    p = run_cli(["run", tmp_path / "none.toml"])
    assert p.returncode == 1 and p.stderr.decode().strip() == f"error: {tmp_path / 'none.toml'}: no such recipe file"
