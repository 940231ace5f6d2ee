"""The reading API: :func:`read_table`, :func:`iter_table` (row chunks of bounded memory) and
:func:`inspect_table` (what ``xmmtools info`` shows, from metadata only).

Each format's reader comes from the registry in :mod:`xmmtools.tables.formats`; a raised
:class:`~xmmtools.errors.DataError` names the file for anything wrong with it.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from xmmtools.errors import DataError
from xmmtools.tables.formats import STDIO, check_input, detect_format, is_gzip, reader_for
from xmmtools.tables.hats import find_hats
from xmmtools.tables.ipc import count_ipc_rows, is_saved_stream, iter_stream, open_ipc
from xmmtools.tables.provenance import provenance_of
from xmmtools.tables.schema import check_metadata, duplicates, normalise_schema


def read_table(
    path: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    *,
    stdin: io.BufferedIOBase | None = None,
    progress: bool = False,
) -> pa.Table:
    """Read a whole table (or only ``columns``) into memory.

    Only the requested columns are converted; for FITS the other columns' bytes are read
    past but never decoded.  Raises :class:`DataError` naming the file for anything wrong.
    """
    chunks = list(iter_table(path, columns, stdin=stdin, progress=progress))
    if not chunks:  # pragma: no cover - iter_table always yields at least a schema chunk
        raise DataError(f"{path}: no data")
    if len(chunks) == 1:
        return chunks[0]
    try:
        return pa.concat_tables(chunks)
    except pa.ArrowInvalid as e:
        raise DataError(f"{path}: chunks disagree in schema ({e})") from None


def iter_table(
    path: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    *,
    chunk_rows: int | None = None,
    stdin: io.BufferedIOBase | None = None,
    progress: bool = False,
) -> Iterator[pa.Table]:
    """Yield the table in row chunks (each a :class:`pyarrow.Table` with the full schema
    metadata).  Always yields at least one (possibly empty) chunk."""
    p = str(path)
    if p != STDIO:
        check_input(p)
    fmt = detect_format(p)
    if columns is not None:
        columns = list(columns)
        dup = duplicates(columns)
        if dup:
            raise DataError(f"column {dup} requested twice")
    if fmt == "stream":
        yield from iter_stream(stdin if stdin is not None else sys.stdin.buffer, columns)
        return
    real = check_input(p)
    reader = reader_for(fmt)
    yield from _progress(reader(p, columns, chunk_rows), real, progress, _known_rows(p, fmt) if progress else None)


def _known_rows(p: str, fmt: str) -> int | None:
    """The row count from metadata (the progress bar's total); None for CSV (a scan) or on any
    problem (the reader then reports it)."""
    if fmt in ("csv", "votable") or (fmt == "fits" and is_gzip(p)):
        return None
    try:
        return inspect_table(p).num_rows
    except Exception:  # noqa: BLE001 - a total is a nicety; the read itself reports errors
        return None


def _progress(it: Iterator[pa.Table], path: str, enabled: bool, total: int | None = None) -> Iterator[pa.Table]:
    """A row-count progress bar (with its total when known): for row-wise stages it advances as
    each chunk is computed and written, so it shows the whole stage's progress."""
    if not enabled:
        yield from it
        return
    from tqdm import tqdm

    with tqdm(
        desc=f"{os.path.basename(path)}",
        total=total,
        unit=" rows",
        unit_scale=True,
        file=sys.stderr,
        leave=False,
    ) as bar:
        for t in it:
            bar.update(t.num_rows)
            yield t


@dataclass
class TableInfo:
    """What ``xmmtools info`` shows: read from metadata only, never the data (except CSV)."""

    path: str
    format: str
    num_rows: int
    schema: pa.Schema
    header: dict[str, Any] = field(default_factory=dict)
    extension: str | None = None

    @property
    def provenance(self) -> list[dict[str, Any]]:
        return provenance_of(self.schema)


def inspect_table(path: str | os.PathLike[str], *, stdin: io.BufferedIOBase | None = None) -> TableInfo:
    p = str(path)
    hats = find_hats(p)
    if hats is not None:
        return TableInfo(hats.folder, "hats", hats.num_rows, hats.schema, header=hats.properties)
    if p != STDIO:
        check_input(p)
    fmt = detect_format(p)
    if fmt == "stream":
        t = read_table(p, stdin=stdin)
        return TableInfo(p, "arrow-stream", t.num_rows, t.schema)
    real = check_input(p)
    if fmt == "fits":
        from xmmtools.tables.fits.reader import FitsTable, header_dict

        ft = FitsTable.open(p)
        schema = ft.arrow_schema(None)
        return TableInfo(real, "fits", ft.nrows, schema, header=header_dict(ft.header), extension=ft.extname)
    if fmt == "parquet":
        from xmmtools.tables.parquet import open_parquet

        pf = open_parquet(real)
        schema = normalise_schema(pf.schema_arrow)
        check_metadata(schema, real)
        return TableInfo(real, "parquet", pf.metadata.num_rows, schema)
    if fmt == "arrows" or (fmt == "arrow" and is_saved_stream(real)):
        t = read_table(real)
        return TableInfo(real, "arrow-stream", t.num_rows, t.schema)
    if fmt == "arrow":
        schema = normalise_schema(open_ipc(real).schema)
        check_metadata(schema, real)
        return TableInfo(real, "arrow", count_ipc_rows(real), schema)
    # CSV has no metadata: count by streaming
    from xmmtools.tables.csv import iter_csv

    n = 0
    schema = None
    for t in iter_csv(real, None, None):
        n += t.num_rows
        schema = t.schema
    return TableInfo(real, "csv", n, schema)
