"""The command line: info, convert, pipes, exit codes, one-line errors, atomic outputs."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from helpers import COSMOS, DR9, SAMPLE, SLIM_CSV, run_cli, run_main

from xmmtools import tables as T

# ------------------------------------------------------------------------------------------
# info / convert on real data
# ------------------------------------------------------------------------------------------


def test_version_and_module_entry_point():
    r = run_cli(["--version"])
    assert r.returncode == 0 and r.stdout.decode().startswith("xmmtools, version ")


def test_info_on_the_shipped_sample(capsys):
    code, out, err = run_main(["info", SAMPLE], capsys)
    assert code == 0, err
    assert "rows:     52" in out and "columns:  336" in out
    assert "kind:     4xmm-detections" in out
    assert "EP_8_FLUX" in out and "[erg/cm**2/s]" in out
    assert "sample" in out  # provenance of how the sample was made


def test_info_json_lists_columns_units_kind_and_provenance(capsys):
    import json

    code, out, _ = run_main(["info", "--json", COSMOS], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["rows"] == 300 and d["kind"] == "generic" and d["format"] == "fits"
    assert [c["name"] for c in d["columns"]] == ["ID", "RA", "DEC", "pos_err"]
    assert isinstance(d["stages"], dict)


def test_convert_select_with_aliases_and_rename(tmp_path, capsys):
    out = tmp_path / "slim.parquet"
    code, _, err = run_main(
        ["convert", SLIM_CSV, "-o", out, "--select", "SC_RA,SC_DEC,SC_EP_8_FLUX,Class", "--rename-4xmm"], capsys
    )
    assert code == 0, err
    t = T.read_table(out)
    assert t.schema.names == ["SC_RA", "SC_DEC", "SC_EP_8_FLUX", "Class"]
    assert T.unit_of(t.schema.field("SC_EP_8_FLUX")) == "erg/cm**2/s"
    assert t.num_rows == 200
    assert T.to_numpy(t.column("SC_RA"))[0] == pytest.approx(1.836559303)
    step = T.inspect_table(out).provenance[-1]
    assert step["stage"] == "convert" and step["parameters"]["rename_4xmm"] is True
    assert step["inputs"] == [{"name": SLIM_CSV.name, "sha256": T.file_sha256(SLIM_CSV)}]


def test_convert_user_column_map(tmp_path, capsys):
    src = tmp_path / "mine.csv"
    src.write_text("ra_deg,dec_deg,flux\n150.1,2.2,1e-14\n150.2,2.3,2e-14\n")
    out = tmp_path / "mine.fits"
    code, _, err = run_main(
        [
            "convert",
            src,
            "-o",
            out,
            "--rename-4xmm",
            "--columns",
            "RA=ra_deg,DEC=dec_deg",
            "--columns",
            "EP_8_FLUX=flux",
        ],
        capsys,
    )
    assert code == 0, err
    t = T.read_table(out)
    assert t.schema.names == ["RA", "DEC", "EP_8_FLUX"]
    assert str(t.schema.field("EP_8_FLUX").type) == "float"


def test_shell_pipe_with_arrow_stream(tmp_path):
    """`xmmtools convert a -o - | xmmtools convert - -o b` keeps every value and the provenance."""
    out = tmp_path / "piped.fits"
    p1 = subprocess.Popen([sys.executable, "-m", "xmmtools", "convert", str(DR9), "-o", "-"], stdout=subprocess.PIPE)
    p2 = subprocess.run(
        [sys.executable, "-m", "xmmtools", "-q", "convert", "-", "-o", str(out)],
        stdin=p1.stdout,
        capture_output=True,
        timeout=120,
    )
    p1.stdout.close()
    assert p1.wait(timeout=60) == 0 and p2.returncode == 0, p2.stderr
    a, b = T.read_table(DR9), T.read_table(out)
    assert a.num_rows == b.num_rows == 100 and a.schema.names == b.schema.names
    assert a.column("DETID").to_pylist() == b.column("DETID").to_pylist()
    assert [s["stage"] for s in T.inspect_table(out).provenance] == ["sample", "convert", "convert"]
    assert T.inspect_table(out).provenance[-1]["inputs"] == [{"name": "-", "sha256": None}]


def test_progress_and_notes_respect_quiet(tmp_path):
    r = run_cli(["-q", "convert", COSMOS, "-o", tmp_path / "q.parquet"])
    assert r.returncode == 0 and r.stderr == b""
    r = run_cli(["convert", COSMOS, "-o", tmp_path / "n.parquet"])
    assert r.returncode == 0 and b"wrote 300 rows x 4 columns" in r.stderr


# ------------------------------------------------------------------------------------------
# bad inputs: exit 1, one line on stderr, no traceback
# ------------------------------------------------------------------------------------------


def _bad(tmp_path):
    """name -> (argv, expected message fragment)."""
    cases = {}
    cases["missing file"] = (["info", tmp_path / "nope.fits"], "nope.fits: no such file")

    trunc = tmp_path / "trunc.fits"
    trunc.write_bytes(DR9.read_bytes()[:50000])
    cases["truncated FITS"] = (["convert", trunc, "-o", tmp_path / "t1.parquet"], "truncated or damaged FITS file")
    trunc2 = tmp_path / "trunc2.fits"
    trunc2.write_bytes(DR9.read_bytes()[:-30000])
    cases["truncated FITS rows"] = (["convert", trunc2, "-o", tmp_path / "t2.parquet"], "truncated FITS file")

    import numpy as np
    from astropy.io import fits

    img = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((4, 4), np.float32)).writeto(img)
    cases["not a table"] = (["info", img], "no binary table in this FITS file (HDUs: PRIMARY primary 4x4)")

    wrong = tmp_path / "wrong.csv"
    wrong.write_text("RA,DEC\n12h30m,+12d\n13h00m,+13d\n")
    cases["wrong column type"] = (
        ["convert", wrong, "-o", tmp_path / "w.fits", "--rename-4xmm"],
        "unreadable CSV (column RA:",
    )
    wrong2 = tmp_path / "wrong2.csv"
    wrong2.write_text("myra,DEC\n12h30m,12\n")
    cases["wrong column type via --columns"] = (
        ["convert", wrong2, "-o", tmp_path / "w2.fits", "--rename-4xmm", "--columns", "RA=myra"],
        "column myra (4XMM RA) in",
    )

    empty = tmp_path / "empty.fits"
    empty.write_bytes(b"")
    cases["empty FITS file"] = (["info", empty], "not a readable FITS file")
    empty_csv = tmp_path / "empty.csv"
    empty_csv.write_text("")
    cases["empty CSV file"] = (["info", empty_csv], "empty CSV file")
    empty_pq = tmp_path / "empty.parquet"
    empty_pq.write_bytes(b"")
    cases["empty Parquet file"] = (["info", empty_pq], "not a Parquet file")

    dup = tmp_path / "dup.csv"
    dup.write_text("RA,DEC,ra\n1,2,3\n")
    cases["duplicate column names"] = (["info", dup], "duplicate column name 'ra'")

    same = tmp_path / "same.fits"
    shutil.copy(COSMOS, same)
    cases["output == input"] = (["convert", same, "-o", same, "--overwrite"], "output is the input file")

    exists = tmp_path / "exists.parquet"
    exists.write_bytes(b"old")
    cases["existing output"] = (["convert", COSMOS, "-o", exists], "exists; use --overwrite to replace it")

    (tmp_path / "cat.txt").write_text("RA DEC\n1 2\n")
    cases["unknown input extension"] = (["info", tmp_path / "cat.txt"], "cat.txt: unknown table format")
    cases["unknown output extension"] = (["convert", COSMOS, "-o", tmp_path / "o.xls"], "unknown output format")

    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\xff\xfe\x00\x01binary\x00junk\n\x89PNG")
    cases["unreadable CSV (binary)"] = (["info", garbage], "unreadable CSV")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,c\n1,2,3\n4,5\n")
    cases["unreadable CSV (ragged)"] = (["info", ragged], "unreadable CSV")

    bad_pq = tmp_path / "bad.parquet"
    bad_pq.write_bytes(os.urandom(2000))
    cases["corrupt Parquet"] = (["convert", bad_pq, "-o", tmp_path / "x.fits"], "not a Parquet file")

    cases["folder as input"] = (["info", tmp_path], "is a folder")
    cases["missing output folder"] = (["convert", COSMOS, "-o", tmp_path / "no" / "such" / "o.fits"], "does not exist")
    cases["select unknown column"] = (
        ["convert", COSMOS, "-o", tmp_path / "s.fits", "--select", "RA,DECC"],
        "has no column DECC (closest: DEC)",
    )
    cases["bad --columns syntax"] = (
        ["convert", COSMOS, "-o", tmp_path / "c.fits", "--columns", "RA:ra"],
        "is not NAME=COLUMN",
    )
    return cases


def test_bad_inputs_exit_1_with_one_line(tmp_path, capsys):
    cases = _bad(tmp_path)
    assert len(cases) >= 10
    for name, (argv, fragment) in cases.items():
        code, out, err = run_main(argv, capsys)
        assert code == 1, (name, code, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, (name, err)
        assert lines[0].startswith("error: "), (name, err)
        assert fragment in lines[0], (name, lines[0])
        assert "Traceback" not in err


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path):
    trunc = tmp_path / "trunc.fits"
    trunc.write_bytes(DR9.read_bytes()[:50000])
    r = run_cli(["convert", trunc, "-o", tmp_path / "o.parquet"])
    assert r.returncode == 1
    assert r.stderr.decode().count("\n") == 1 and r.stderr.startswith(b"error: ")
    assert not (tmp_path / "o.parquet").exists()
    r = run_cli(["--verbose", "convert", trunc, "-o", tmp_path / "o.parquet"])
    assert r.returncode == 1 and b"Traceback" in r.stderr  # --verbose shows it


def test_gzip_truncated_fits_is_a_data_error(tmp_path, capsys):
    gz = tmp_path / "t.fits.gz"
    gz.write_bytes(gzip.compress(DR9.read_bytes())[:40000])
    code, _, err = run_main(["convert", gz, "-o", tmp_path / "o.parquet"], capsys)
    assert code == 1 and "truncated or damaged gzip-compressed FITS file" in err


def test_stdin_that_is_not_an_arrow_stream(tmp_path):
    r = run_cli(["convert", "-", "-o", tmp_path / "x.fits"], input=b"RA,DEC\n1,2\n")
    assert r.returncode == 1
    assert r.stderr.decode().strip().startswith("error: -: standard input is not an Arrow IPC stream")


def test_usage_errors_exit_2(capsys):
    code, _, err = run_main(["convert", str(COSMOS)], capsys)
    assert code == 2 and "Missing option '-o'" in err
    code, _, err = run_main(["nosuchcommand"], capsys)
    assert code == 2


def test_overwrite_replaces_and_keeps_mode(tmp_path, capsys):
    out = tmp_path / "o.parquet"
    out.write_bytes(b"old")
    os.chmod(out, 0o640)
    code, _, err = run_main(["convert", COSMOS, "-o", out, "--overwrite"], capsys)
    assert code == 0, err
    assert T.read_table(out).num_rows == 300
    assert (os.stat(out).st_mode & 0o777) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["o.parquet"]


# ------------------------------------------------------------------------------------------
# atomic writes: a killed writer leaves the old output intact and no partial file
# ------------------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, time, numpy as np, pyarrow as pa
    from xmmtools.tables import TableWriter
    from xmmtools.main import _terminate_cleanly
    _terminate_cleanly()
    out, marker = sys.argv[1], sys.argv[2]
    schema = pa.schema([("X", pa.float64())])
    with TableWriter(out, schema, overwrite=True) as w:
        for i in range(10_000):
            w.write(pa.table({"X": np.arange(10_000, dtype=float)}))
            if i == 3:
                open(marker, "w").close()
            time.sleep(0.01)
""")


@pytest.mark.parametrize("ext", ["parquet", "fits", "csv"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_write_leaves_old_output_intact(tmp_path, ext, sig):
    out = tmp_path / f"out.{ext}"
    T.write_table(T.read_table(COSMOS), out)
    before = out.read_bytes()
    marker = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out), str(marker)])
    t0 = time.time()
    while not marker.exists():
        assert time.time() - t0 < 60 and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert out.read_bytes() == before  # the old output, byte for byte
    left = sorted(set(os.listdir(tmp_path)) - {out.name, "started"})
    if sig == signal.SIGTERM:
        assert left == []  # caught: the temporary file was removed
    else:
        # SIGKILL cannot be caught: on file systems without O_TMPFILE linking a hidden
        # .out.<pid>.*.part may remain; the next write of that output removes it
        assert all(n.startswith(f".{out.name}.") and n.endswith(".part") for n in left)
        T.write_table(T.read_table(COSMOS), out, overwrite=True)
        assert sorted(set(os.listdir(tmp_path)) - {"started"}) == [out.name]


def test_failure_midway_discards_the_partial_output(tmp_path):
    import pyarrow as pa

    out = tmp_path / "o.fits"
    schema = pa.schema([("X", pa.float64())])
    with pytest.raises(RuntimeError), T.TableWriter(out, schema) as w:
        w.write(pa.table({"X": [1.0, 2.0]}))
        raise RuntimeError("the stage failed")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "name",
    [
        "classify-train",
        "classify-evaluate",
        "classify-votes",
        "photoz-train",
        "photoz-evaluate",
        "sensitivity-map",
        "run",
    ],
)
def test_issue_command_spellings_exist(name, capsys):
    code, out, _ = run_main([name, "--help"], capsys)
    assert code == 0 and f"Usage: xmmtools {name}" in out


def test_cli_layers_and_lazy_commands():
    """Stages import the plumbing (xmmtools.cli), never the root group (xmmtools.main); the
    plumbing imports nothing above it; and starting the CLI imports no stage module."""
    import ast
    from pathlib import Path

    import xmmtools

    src = Path(xmmtools.__file__).parent
    for p in sorted(src.rglob("*.py")):
        rel = p.relative_to(src).as_posix()
        tree = ast.parse(p.read_text(encoding="utf-8"))
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        if rel not in ("main.py", "__main__.py"):
            assert "xmmtools.main" not in mods, rel
        if rel.startswith("cli/"):
            assert all(m.startswith("xmmtools.cli") for m in mods if m.startswith("xmmtools")), rel
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, xmmtools.main; print(sorted(m for m in sys.modules if m.startswith('xmmtools.')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert all(
        m.startswith(("xmmtools.cli", "xmmtools.errors", "xmmtools.main")) for m in ast.literal_eval(r.stdout)
    ), r.stdout
