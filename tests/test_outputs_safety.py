"""Never lose data on the output side (issue 18): outputs of one command checked against each
other and every input before anything is written; device, FIFO, closed or full outputs;
non-regular inputs; a disk that fills during a write; leftovers of killed writes
(``xmmtools clean``); an EOFError is a data error, not an interrupt."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import COSMOS, DATA, SAMPLE, run_main

ELL = DATA / "crossmatch" / "nway_elltest"
VAR = DATA / "variability_long"


def _one_line_error(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "internal error" not in err and "Traceback" not in err
    return lines[0]


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


# ---- side outputs against the main output, each other and the inputs -------------------


@pytest.mark.parametrize("overwrite", [True, False])
def test_crossmatch_calibrate_out_on_the_main_output_is_refused_before_writing(tmp_path, capsys, overwrite):
    out = tmp_path / "xm.parquet"
    args = ["crossmatch", COSMOS, "--catalog", f"opt={ELL / 'randomcatO.fits'}", "--pos-err", "opt=0.1"]
    args += ["--calibrate", "--calibrate-out", out, "-o", out] + (["--overwrite"] if overwrite else [])
    code, _, err = run_main(args, capsys)
    assert code == 1
    assert "--calibrate-out" in _one_line_error(err)
    assert not out.exists()


def test_crossmatch_existing_main_output_kept_when_outputs_collide(tmp_path, capsys):
    out = tmp_path / "xm.parquet"
    out.write_bytes(b"previous")
    args = ["crossmatch", COSMOS, "--catalog", f"opt={ELL / 'randomcatO.fits'}", "--pos-err", "opt=0.1"]
    code, _, err = run_main([*args, "--calibrate", "--calibrate-out", out, "-o", out, "--overwrite"], capsys)
    assert code == 1 and out.read_bytes() == b"previous"


def test_variability_long_alerts_and_epochs_on_one_file_are_refused(tmp_path, capsys):
    a = tmp_path / "a.csv"
    out = tmp_path / "lt.fits"
    args = ["variability", "long", SAMPLE, "--archive", f"3XMM={VAR / '3xmm_dr8_ngc5139.csv'}"]
    code, _, err = run_main([*args, "--alerts", a, "--epochs", a, "-o", out], capsys)
    assert code == 1 and "--alerts" in _one_line_error(err) and "--epochs" in err
    assert not a.exists() and not out.exists()


def test_variability_long_side_output_on_an_input_is_refused(tmp_path, capsys):
    arch = tmp_path / "3xmm.csv"
    arch.write_bytes((VAR / "3xmm_dr8_ngc5139.csv").read_bytes())
    before = arch.read_bytes()
    args = ["variability", "long", SAMPLE, "--archive", f"3XMM={arch}", "--overwrite"]
    code, _, err = run_main([*args, "--epochs", arch, "-o", tmp_path / "lt.fits"], capsys)
    assert code == 1 and "input" in _one_line_error(err)
    assert arch.read_bytes() == before and not (tmp_path / "lt.fits").exists()


def test_check_outputs_refuses_two_standard_outputs():
    from xmmtools import tables
    from xmmtools.errors import OutputError

    with pytest.raises(OutputError, match="given as both -o and --alerts"):
        tables.check_outputs({"-o": "-", "--alerts": "-"})


# ---- device, FIFO, closed and full outputs ---------------------------------------------


def test_device_named_like_a_table_is_not_replaced(tmp_path, capsys):
    dev = tmp_path / "x.parquet"
    dev.symlink_to("/dev/null")
    code, _, err = run_main(["convert", SAMPLE, "-o", dev, "--overwrite"], capsys)
    assert code == 1 and "is a device" in _one_line_error(err)
    assert dev.is_symlink() and os.readlink(dev) == "/dev/null"
    assert Path("/dev/null").is_char_device()


def test_fifo_output_is_refused_and_left_as_it_was(tmp_path, capsys):
    fifo = tmp_path / "x.fits"
    os.mkfifo(fifo)
    code, _, err = run_main(["convert", SAMPLE, "-o", fifo, "--overwrite"], capsys)
    assert code == 1 and "FIFO" in _one_line_error(err)
    assert fifo.is_fifo()


def test_fifo_input_is_refused_not_read_forever(tmp_path, capsys):
    fifo = tmp_path / "in.fits"
    os.mkfifo(fifo)
    code, _, err = run_main(["convert", fifo, "-o", tmp_path / "o.parquet"], capsys)
    assert code == 1 and "not a regular file" in _one_line_error(err)
    code, _, err = run_main(["info", "/dev/zero"], capsys)
    assert code == 1


def _cli(args, **kw):
    return subprocess.run([sys.executable, "-m", "xmmtools", *map(str, args)], capture_output=True, timeout=120, **kw)


def test_closed_stdout_is_a_one_line_error():
    r = subprocess.run(
        f"{sys.executable} -m xmmtools convert {SAMPLE} -o - >&-", shell=True, capture_output=True, timeout=120
    )
    assert r.returncode == 1
    assert "standard output is closed" in _one_line_error(r.stderr.decode())


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_stdout_is_a_one_line_error():
    with open("/dev/full", "wb") as full:
        r = subprocess.run(
            [sys.executable, "-m", "xmmtools", "convert", str(SAMPLE), "-o", "-"],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    assert r.returncode == 1
    assert "No space left on device" in _one_line_error(r.stderr.decode())


def _limit_file_size():  # a disk that fills during the write: writes past 20 kB fail (EFBIG)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


@pytest.mark.parametrize("name", ["o.fits", "o.parquet", "o.arrow", "o.csv"])
def test_disk_filling_during_a_write_leaves_no_file(tmp_path, name):
    out = tmp_path / name
    r = _cli(["convert", SAMPLE, "-o", out], preexec_fn=_limit_file_size)
    assert r.returncode == 1
    assert "no output was written" in _one_line_error(r.stderr.decode())
    assert not out.exists() and _leftovers(tmp_path) == []


def test_disk_filling_keeps_the_previous_output(tmp_path):
    out = tmp_path / "o.fits"
    out.write_bytes(b"previous")
    r = _cli(["convert", SAMPLE, "-o", out, "--overwrite"], preexec_fn=_limit_file_size)
    assert r.returncode == 1 and out.read_bytes() == b"previous"


def test_full_tmpfs_is_a_one_line_error(tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("cannot mount a small tmpfs here (not root)")
    try:
        r = _cli(["convert", SAMPLE, "-o", small / "x.parquet"])
        assert r.returncode == 1
        assert "No space left on device" in _one_line_error(r.stderr.decode())
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


# ---- leftovers of killed writes ---------------------------------------------------------


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_clean_removes_leftovers_of_dead_processes_only(tmp_path, capsys):
    dead = _dead_pid()
    stale = [tmp_path / f".cat.fits.{dead}.abc123.part", tmp_path / f".model.json.{dead}.tmp"]
    live = tmp_path / f".cat.fits.{os.getpid()}.xyz.part"
    keep = [tmp_path / "cat.fits", tmp_path / "notes.part", tmp_path / ".hidden", live]
    for p in stale + keep:
        p.write_bytes(b"x")
    code, _, err = run_main(["clean", tmp_path], capsys)
    assert code == 0, err
    assert all(not p.exists() for p in stale)
    assert all(p.exists() for p in keep)
    assert "2 leftover file(s) removed" in err


def test_clean_of_a_missing_folder_is_an_error(tmp_path, capsys):
    code, _, err = run_main(["clean", tmp_path / "nope"], capsys)
    assert code == 1 and "not a folder" in _one_line_error(err)


def test_sigkilled_write_leftover_is_removed_by_clean(tmp_path):
    """A writer killed by SIGKILL mid-write: its output never appears; whatever hidden file it
    left (only where O_TMPFILE is unavailable) is removed by ``xmmtools clean``."""
    out = tmp_path / "big.parquet"
    code = (
        "import os, signal, pyarrow as pa\n"
        "from xmmtools.tables import TableWriter\n"
        "t = pa.table({'A': pa.array(range(1000))})\n"
        f"w = TableWriter({str(out)!r}, t.schema).__enter__()\n"
        "w.write(t)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert r.returncode == -signal.SIGKILL
    assert not out.exists()
    r = _cli(["clean", tmp_path])
    assert r.returncode == 0 and _leftovers(tmp_path) == []


# ---- EOFError is a data error, not an interrupt -----------------------------------------


def test_eof_error_inside_a_command_is_not_reported_as_interrupted(monkeypatch, capsys, tmp_path):
    from xmmtools import tables

    def cut(*a, **k):
        raise EOFError("No data left in file")

    monkeypatch.setattr(tables, "inspect_table", cut)
    code, _, err = run_main(["info", SAMPLE], capsys)
    assert code == 1
    line = _one_line_error(err)
    assert "interrupted" not in line and "unexpected end" in line


def test_empty_model_array_file_is_a_data_error(tmp_path, capsys):
    import hashlib
    import json
    import shutil

    from xmmtools.classify.model_io import default_model_path

    src = default_model_path()
    model = tmp_path / "m.json"
    shutil.copy(src, model)
    (tmp_path / "m.npz").write_bytes(b"")
    doc = json.loads(model.read_text())
    doc["arrays"]["sha256"] = hashlib.sha256(b"").hexdigest()
    model.write_text(json.dumps(doc))
    code, _, err = run_main(["classify", SAMPLE, "--model", model, "-o", tmp_path / "o.parquet"], capsys)
    assert code == 1 and "interrupted" not in _one_line_error(err)
    assert not (tmp_path / "o.parquet").exists()
