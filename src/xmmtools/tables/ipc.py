"""Arrow IPC: files (``.arrow``, ``.feather``, ``.ipc``), saved streams (``.arrows``) and the
stream on stdin/stdout (``-``) that lets stages chain in shell pipes.

A stream written by xmmtools is *complete* only when its producer says so: the schema carries
``xmmtools.stream`` and, written only when the producer finishes without error, a last
zero-row record batch carries ``xmmtools.end`` = the number of rows sent.  A stream that
stops without it (the producer was interrupted, killed or failed) is refused by every reader:
otherwise ``timeout ... | xmmtools convert - -o out.parquet`` would write a silently short
table.  A stream of another Arrow producer (no ``xmmtools.stream`` key) is read as it is, with a
note on stderr that its completeness cannot be checked.
"""

from __future__ import annotations

import contextlib
import errno
import io
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO

import pyarrow as pa

from xmmtools.errors import DataError, PipeClosed
from xmmtools.tables.atomic import TempFile, close_quietly
from xmmtools.tables.formats import short_error
from xmmtools.tables.schema import (
    check_metadata,
    check_read_names,
    nan_nulls,
    normalise_schema,
    schema_names,
    select_columns,
)

# =========================================================================================
# Reading
# =========================================================================================


#: schema metadata key of a stream written by xmmtools (its value: the marker's version)
STREAM_KEY = b"xmmtools.stream"
#: custom metadata key of the last (empty) record batch: the number of rows the stream carried
END_KEY = b"xmmtools.end"
#: first bytes of files that are not an Arrow stream, for a clear refusal on stdin
_MAGIC = (
    (b"SIMPLE  =", "a FITS file"),
    (b"ARROW1", "an Arrow IPC file (not a stream)"),
    (b"PAR1", "a Parquet file"),
    (b"\x1f\x8b", "a gzip-compressed file"),
)


def _prefixed(stream: Any, head: bytes) -> Any:
    """``stream`` with ``head`` (already read from it) put back in front."""

    class _Raw(io.RawIOBase):
        def __init__(self) -> None:
            self._head = head

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            if self._head:
                n = min(len(b), len(self._head))
                b[:n] = self._head[:n]
                self._head = self._head[n:]
                return n
            data = stream.read(len(b))
            n = len(data)
            b[:n] = data
            return n

    return io.BufferedReader(_Raw())


def iter_stream(
    stream: Any, columns: Sequence[str] | None, where: str = "-", *, note: Any = None
) -> Iterator[pa.Table]:
    """An Arrow IPC stream: standard input (``-``) or a saved stream file (``where``).

    Refuses a stream of xmmtools that ends without its end marker (see the module's doc);
    ``note`` (default: a line on stderr) hears that a foreign stream cannot be checked."""
    name = "standard input" if where == "-" else where
    head = stream.read(9) or b""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            hint = "give its file name instead of -" if where == "-" else "rename it to its format's extension"
            raise DataError(f"{where}: {name} is {what}, not an Arrow IPC stream ({hint})")
    try:
        reader = pa.ipc.open_stream(_prefixed(stream, head))
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{where}: {name} is not an Arrow IPC stream ({short_error(e)})") from None
    schema_names(reader.schema, where)
    meta = dict(reader.schema.metadata or {})
    ours = meta.pop(STREAM_KEY, None) is not None
    schema = reader.schema.with_metadata(meta) if meta else reader.schema.remove_metadata()
    state = {"rows": 0, "end": None}

    def batches() -> Iterator[pa.RecordBatch]:
        while True:
            try:
                b, custom = reader.read_next_batch_with_custom_metadata()
            except StopIteration:
                return
            end = (custom or {}).get(END_KEY) if custom is not None else None
            if end is not None:
                state["end"] = int(end)
                return
            state["rows"] += b.num_rows
            yield b

    try:
        yield from iter_batches(batches(), schema, columns, where)
    except pa.ArrowInvalid as e:
        raise DataError(f"{where}: broken Arrow stream on {name} ({short_error(e)})") from None
    except (ValueError, OSError) as e:
        raise DataError(f"{where}: broken Arrow stream on {name} ({short_error(e)})") from None
    if ours and state["end"] is None:
        raise DataError(
            f"{where}: the Arrow stream on {name} stopped after {state['rows']} rows without its end marker "
            "(its producer was interrupted or failed); nothing written"
        )
    if ours and state["end"] != state["rows"]:
        raise DataError(
            f"{where}: the Arrow stream on {name} carried {state['rows']} rows but its end marker says "
            f"{state['end']}; nothing written"
        )
    if not ours:
        msg = (
            f"note: {where}: Arrow stream from another producer (no xmmtools end marker): "
            "its completeness cannot be checked"
        )
        if note is not None:
            note(msg)
        else:
            sys.stderr.write(msg + "\n")


def iter_saved_stream(p: str, columns: Sequence[str] | None, chunk_rows: int | None) -> Iterator[pa.Table]:
    """A saved Arrow stream (``.arrows``, e.g. ``xmmtools ... -o - > cat.arrows``)."""
    try:
        f = open(p, "rb")  # noqa: SIM115 (closed below, also when the consumer stops early)
    except OSError as e:
        raise DataError(f"{p}: cannot open ({short_error(e)})") from None
    try:
        yield from iter_stream(f, columns, p)
    finally:
        f.close()


def open_ipc(p: str) -> Any:
    """An Arrow IPC file, memory-mapped (a ``pyarrow.ipc.RecordBatchFileReader``)."""
    try:
        rd = pa.ipc.open_file(pa.memory_map(p, "r"))
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{p}: not an Arrow IPC/Feather file ({short_error(e)})") from None
    schema_names(rd.schema, p)
    return rd


def iter_ipc(p: str, columns: Sequence[str] | None, chunk_rows: int | None) -> Iterator[pa.Table]:
    if is_saved_stream(p):  # ``-o - > cat.arrow``: the stream format under a file's name
        yield from iter_saved_stream(p, columns, chunk_rows)
        return
    rd = open_ipc(p)
    try:
        yield from iter_batches((rd.get_batch(i) for i in range(rd.num_record_batches)), rd.schema, columns, p)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{p}: damaged Arrow IPC file ({short_error(e)})") from None


def count_ipc_rows(p: str) -> int:
    """Rows of an Arrow IPC file (from its record batch headers)."""
    rd = open_ipc(p)
    try:
        return sum(rd.get_batch(i).num_rows for i in range(rd.num_record_batches))
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{p}: damaged Arrow IPC file ({short_error(e)})") from None


def is_saved_stream(p: str) -> bool:
    """An Arrow *stream* saved under an IPC file name starts with a continuation marker (or a
    pre-1.0 message length), never with the file format's ``ARROW1``."""
    try:
        with open(p, "rb") as f:
            head = f.read(6)
    except OSError:
        return False
    return len(head) == 6 and head != b"ARROW1" and head[:4] == b"\xff\xff\xff\xff"


def iter_batches(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, columns: Sequence[str] | None, where: str
) -> Iterator[pa.Table]:
    """Record batches of an Arrow file or stream as tables with the file's metadata; at least
    one (possibly empty) table."""
    schema = normalise_schema(schema)
    check_read_names(schema.names, where)
    check_metadata(schema, where)
    sel = select_columns(schema, columns, where)
    n = 0
    for b in batches:
        t = pa.Table.from_batches([b]).replace_schema_metadata(schema.metadata)
        n += 1
        yield nan_nulls(t.select(sel) if columns is not None else t)
    if n == 0:
        t = schema.empty_table()
        yield nan_nulls(t.select(sel) if columns is not None else t)


# =========================================================================================
# Writing
# =========================================================================================


class IpcFileWriter:
    """An Arrow IPC file, one record batch per chunk written."""

    def __init__(
        self, path: str, schema: pa.Schema, tmp: TempFile | None, stdout: BinaryIO | None, row_group_rows: int
    ) -> None:
        assert tmp is not None
        self._sink = tmp.arrow_sink()
        try:
            self._writer = pa.ipc.new_file(self._sink, schema)
        except BaseException:
            close_quietly(self._sink)
            raise

    def write(self, chunk: pa.Table) -> None:
        self._writer.write_table(chunk)

    def close(self) -> None:
        self._writer.close()
        self._sink.close()

    def abort(self) -> None:
        close_quietly(self._writer, self._sink)


@contextlib.contextmanager
def _pipe_errors() -> Iterator[None]:
    """A closed pipe (``| head``) becomes :class:`PipeClosed` (exit 141, no message)."""
    try:
        yield
    except OSError as e:
        if isinstance(e, BrokenPipeError) or e.errno == errno.EPIPE or "Broken pipe" in str(e):
            raise PipeClosed("-: the reader of standard output went away") from None
        raise


def _marked(schema: pa.Schema) -> pa.Schema:
    return schema.with_metadata({**(schema.metadata or {}), STREAM_KEY: b"1"})


class IpcStreamWriter:
    """The Arrow IPC stream on stdout (``-``): no temporary file, nothing to commit.  The end
    marker is written by :meth:`close` only, so an interrupted producer leaves a stream every
    reader refuses."""

    def __init__(
        self, path: str, schema: pa.Schema, tmp: TempFile | None, stdout: BinaryIO | None, row_group_rows: int
    ) -> None:
        self._out = stdout if stdout is not None else sys.stdout.buffer
        self._schema = _marked(schema)
        self._writer = pa.ipc.new_stream(self._out, self._schema)
        self._rows = 0

    def write(self, chunk: pa.Table) -> None:
        with _pipe_errors():
            self._writer.write_table(chunk.replace_schema_metadata(self._schema.metadata))
        self._rows += chunk.num_rows

    def close(self) -> None:
        end = pa.RecordBatch.from_pylist([], schema=self._schema)
        with _pipe_errors():
            self._writer.write_batch(end, custom_metadata={END_KEY: str(self._rows).encode()})
            self._writer.close()
            self._out.flush()

    def abort(self) -> None:
        close_quietly(self._writer)


class IpcStreamFileWriter(IpcStreamWriter):
    """A saved Arrow stream (``.arrows``): the stream format in an atomic temporary file."""

    def __init__(
        self, path: str, schema: pa.Schema, tmp: TempFile | None, stdout: BinaryIO | None, row_group_rows: int
    ) -> None:
        assert tmp is not None
        self._sink = tmp.arrow_sink()
        try:
            super().__init__(path, schema, None, self._sink, row_group_rows)
        except BaseException:
            close_quietly(self._sink)
            raise

    def close(self) -> None:
        super().close()
        self._sink.close()

    def abort(self) -> None:
        close_quietly(self._writer, self._sink)
