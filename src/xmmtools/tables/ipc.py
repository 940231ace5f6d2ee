"""Arrow IPC: files (``.arrow``, ``.feather``, ``.ipc``) and the stream on stdin/stdout
(``-``) that lets stages chain in shell pipes."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO

import pyarrow as pa

from xmmtools.errors import DataError
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


def iter_stream(stream: Any, columns: Sequence[str] | None) -> Iterator[pa.Table]:
    """The Arrow IPC stream on standard input (``-``)."""
    try:
        reader = pa.ipc.open_stream(stream)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"-: standard input is not an Arrow IPC stream ({short_error(e)})") from None
    schema_names(reader.schema, "-")
    try:
        yield from iter_batches(iter(reader), reader.schema, columns, "-")
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"-: broken Arrow stream on standard input ({short_error(e)})") from None


def open_ipc(p: str) -> Any:
    """An Arrow IPC file, memory-mapped (a ``pyarrow.ipc.RecordBatchFileReader``)."""
    try:
        rd = pa.ipc.open_file(pa.memory_map(p, "r"))
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{p}: not an Arrow IPC/Feather file ({short_error(e)})") from None
    schema_names(rd.schema, p)
    return rd


def iter_ipc(p: str, columns: Sequence[str] | None, chunk_rows: int | None) -> Iterator[pa.Table]:
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


class IpcStreamWriter:
    """The Arrow IPC stream on stdout (``-``): no temporary file, nothing to commit."""

    def __init__(
        self, path: str, schema: pa.Schema, tmp: TempFile | None, stdout: BinaryIO | None, row_group_rows: int
    ) -> None:
        self._out = stdout if stdout is not None else sys.stdout.buffer
        self._writer = pa.ipc.new_stream(self._out, schema)

    def write(self, chunk: pa.Table) -> None:
        self._writer.write_table(chunk)

    def close(self) -> None:
        self._writer.close()
        self._out.flush()

    def abort(self) -> None:
        close_quietly(self._writer)
