"""Pipes that cannot lose rows silently: the stream end marker, `| head`, `-o -` to a terminal,
saved streams and wrong files on stdin (docs/pipeline.md, "Pipes")."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pyarrow as pa
import pytest
from helpers import DR9, SAMPLE, run_cli

from xmmtools import tables as T
from xmmtools.errors import DataError

# A producer killed in the middle of its output (SIGKILL: no clean-up, no end of stream at all),
# after it has sent two complete record batches of the real catalogue.
KILLED_PRODUCER = f"""
import os, signal, sys
from xmmtools import tables as T
t = T.read_table({str(SAMPLE)!r})
w = T.TableWriter("-", t.schema, stdout=sys.stdout.buffer)
w.__enter__()
w.write(t.slice(0, 20)); w.write(t.slice(20, 20))
sys.stdout.buffer.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def _stream(table: pa.Table, *, fail_after: int | None = None) -> bytes:
    buf = io.BytesIO()
    if fail_after is None:
        T.write_table(table, "-", stdout=buf)
        return buf.getvalue()
    with pytest.raises(KeyboardInterrupt), T.TableWriter("-", table.schema, stdout=buf) as w:
        w.write(table.slice(0, fail_after))
        raise KeyboardInterrupt  # Ctrl-C / timeout -s INT: the writer is aborted, not closed
    return buf.getvalue()


def test_a_complete_stream_round_trips_and_carries_its_row_count():
    t = T.read_table(DR9)
    raw = _stream(t)
    back = T.read_table("-", stdin=io.BytesIO(raw))
    assert back.num_rows == 100 and back.schema.names == t.schema.names
    assert b"xmmtools.stream" not in (back.schema.metadata or {})  # the marker is not data
    assert T.provenance_of(back.schema) == T.provenance_of(t.schema)


def test_an_interrupted_producer_leaves_nothing_downstream(tmp_path):
    # the producer was interrupted: its stream ends cleanly (end-of-stream) but has no end marker
    raw = _stream(T.read_table(DR9), fail_after=40)
    with pytest.raises(DataError, match="stopped after 40 rows without its end marker"):
        T.read_table("-", stdin=io.BytesIO(raw))
    out = tmp_path / "out.parquet"
    r = run_cli(["convert", "-", "-o", out], input=raw)
    assert r.returncode == 1 and not out.exists()
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "without its end marker" in err[0], err


def test_a_killed_producer_in_a_real_pipe_leaves_nothing_downstream(tmp_path):
    out = tmp_path / "out.parquet"
    p1 = subprocess.Popen([sys.executable, "-c", KILLED_PRODUCER], stdout=subprocess.PIPE)
    p2 = subprocess.run(
        [sys.executable, "-m", "xmmtools", "convert", "-", "-o", str(out)],
        stdin=p1.stdout,
        capture_output=True,
        timeout=120,
    )
    p1.stdout.close()
    assert p1.wait(timeout=60) == -9
    assert p2.returncode == 1 and not out.exists(), p2.stderr
    assert "error: -:" in p2.stderr.decode() and "traceback" not in p2.stderr.decode().lower()
    assert not [f for f in os.listdir(tmp_path) if f != "out.parquet"]  # no temporary leftovers


def test_a_chain_of_streaming_stages_passes_the_refusal_on(tmp_path):
    """convert - -o - | convert - -o x: the middle stage cannot mark a stream it never finished."""
    raw = _stream(T.read_table(DR9), fail_after=10)
    mid = run_cli(["convert", "-", "-o", "-"], input=raw)
    assert mid.returncode == 1 and b"end marker" in mid.stderr
    r = run_cli(["convert", "-", "-o", tmp_path / "x.fits"], input=mid.stdout)
    assert r.returncode == 1 and not (tmp_path / "x.fits").exists()


def test_a_foreign_arrow_stream_is_accepted_with_a_note(tmp_path):
    t = pa.table({"RA": [1.0, 2.0], "DEC": [3.0, 4.0]})
    buf = io.BytesIO()
    with pa.ipc.new_stream(buf, t.schema) as w:
        w.write_table(t)
    out = tmp_path / "o.parquet"
    r = run_cli(["convert", "-", "-o", out], input=buf.getvalue())
    assert r.returncode == 0, r.stderr
    assert "another producer" in r.stderr.decode() and "cannot be checked" in r.stderr.decode()
    assert T.read_table(out).num_rows == 2


def test_a_marker_with_the_wrong_row_count_is_refused():
    t = T.read_table(DR9, ["SRCID", "RA"])
    buf = io.BytesIO()
    schema = t.schema.with_metadata({b"xmmtools.stream": b"1"})
    with pa.ipc.new_stream(buf, schema) as w:
        w.write_table(t.replace_schema_metadata(schema.metadata))
        w.write_batch(pa.RecordBatch.from_pylist([], schema=schema), custom_metadata={"xmmtools.end": "999"})
    with pytest.raises(DataError, match="end marker says 999"):
        T.read_table("-", stdin=io.BytesIO(buf.getvalue()))


def test_head_ends_the_producer_quietly_with_status_141():
    cmd = f"{sys.executable} -m xmmtools convert {SAMPLE} -o - | head -c 100 >/dev/null; echo ${{PIPESTATUS[0]}} >&2"
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=120)
    lines = r.stderr.decode().strip().splitlines()
    assert lines == ["141"], lines  # no error line, no traceback: only the status


def test_stream_output_to_a_terminal_is_refused(tmp_path):
    pytest.importorskip("pty")
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # child: stdout is the terminal
        os.execv(sys.executable, [sys.executable, "-m", "xmmtools", "convert", str(DR9), "-o", "-"])
    chunks = []
    while True:
        try:
            b = os.read(fd, 4096)
        except OSError:
            break
        if not b:
            break
        chunks.append(b)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 1
    assert "standard output is a terminal" in text and "ARROW" not in text


def test_saved_streams_are_read_as_arrows_or_under_an_arrow_name(tmp_path):
    raw = _stream(T.read_table(DR9))
    for name in ("cat.arrows", "cat.arrow"):
        (tmp_path / name).write_bytes(raw)
        assert T.read_table(tmp_path / name).num_rows == 100
        assert T.inspect_table(tmp_path / name).num_rows == 100
    # and written: a .arrows output is a saved stream, with its end marker
    T.write_table(T.read_table(DR9), tmp_path / "w.arrows")
    assert T.read_table("-", stdin=io.BytesIO((tmp_path / "w.arrows").read_bytes())).num_rows == 100
    (tmp_path / "cut.arrows").write_bytes(_stream(T.read_table(DR9), fail_after=5))
    with pytest.raises(DataError, match="without its end marker"):
        T.read_table(tmp_path / "cut.arrows")


@pytest.mark.parametrize(
    ("path", "what"),
    [(DR9, "a FITS file"), (SAMPLE, "a FITS file")],
)
def test_a_file_on_stdin_is_recognised_and_refused_clearly(tmp_path, path, what):
    r = run_cli(["convert", "-", "-o", tmp_path / "o.parquet"], input=path.read_bytes())
    err = r.stderr.decode().strip()
    assert (
        r.returncode == 1
        and err == f"error: -: standard input is {what}, not an Arrow IPC stream (give its file name instead of -)"
    )
    t = T.read_table(DR9, ["SRCID"])
    T.write_table(t, tmp_path / "f.arrow")
    T.write_table(t, tmp_path / "f.parquet")
    for f, w in (("f.arrow", "an Arrow IPC file"), ("f.parquet", "a Parquet file")):
        r = run_cli(["convert", "-", "-o", tmp_path / "o.parquet"], input=(tmp_path / f).read_bytes())
        assert r.returncode == 1 and w in r.stderr.decode()
    assert not (tmp_path / "o.parquet").exists()


def test_a_producer_interrupted_by_sigint_mid_stream_is_refused_downstream(tmp_path):
    """The issue's case (`timeout -s INT 5 xmmtools ... -o - | xmmtools convert - -o out`): the
    producer is blocked on a full pipe when SIGINT arrives, ends its stream cleanly but unmarked."""
    import signal

    p1 = subprocess.Popen(
        [sys.executable, "-m", "xmmtools", "convert", str(SAMPLE), "-o", "-", "--chunk-size", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    head = p1.stdout.read(10_000)  # the producer has started writing; the pipe fills up behind this
    p1.send_signal(signal.SIGINT)
    rest = p1.stdout.read()
    assert p1.wait(timeout=60) == 130 and b"interrupted" in p1.stderr.read()
    out = tmp_path / "out.parquet"
    r = run_cli(["convert", "-", "-o", out], input=head + rest)
    assert r.returncode == 1 and not out.exists()
    assert "without its end marker" in r.stderr.decode() or "broken Arrow stream" in r.stderr.decode()
