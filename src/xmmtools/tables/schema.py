"""Checks and normalisation shared by every reader and writer: column names (unique,
case-insensitively as in FITS), column selection, pandas metadata, float nulls as NaN."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmmtools.errors import ColumnError, DataError, OutputError


def duplicates(names: Sequence[str]) -> str | None:
    seen = set()
    for n in names:
        k = n.upper()
        if k in seen:
            return n
        seen.add(k)
    return None


def check_schema_names(schema: pa.Schema, where: str) -> None:
    dup = duplicates(schema.names)
    if dup:
        raise OutputError(f"{where}: duplicate column name {dup!r} (names are case-insensitive in FITS)")
    for n in schema.names:
        if not n or not n.strip():
            raise OutputError(f"{where}: a column has an empty name")


def normalise_schema(schema: pa.Schema) -> pa.Schema:
    """Drop pandas' metadata blob (it goes stale as soon as a column is added)."""
    meta = dict(schema.metadata or {})
    meta.pop(b"pandas", None)
    return schema.with_metadata(meta or None)


def nan_nulls(t: pa.Table) -> pa.Table:
    """Float nulls are NaN everywhere (FITS convention), so NaN and null never disagree."""
    for i, f in enumerate(t.schema):
        if pa.types.is_floating(f.type):
            col = t.column(i)
            if col.null_count:
                t = t.set_column(i, f, pc.fill_null(col, pa.scalar(np.nan, f.type)))
    return t


def check_read_names(names: Sequence[str], where: str) -> None:
    dup = duplicates(names)
    if dup:
        raise DataError(f"{where}: duplicate column name {dup!r}")


def select_columns(schema: pa.Schema, columns: Sequence[str] | None, where: str) -> list[int]:
    if columns is None:
        return list(range(len(schema)))
    out = []
    for c in columns:
        i = schema.get_field_index(c)
        if i < 0:
            raise missing_column(c, schema.names, where)
        out.append(i)
    return out


def missing_column(name: str, available: Sequence[str], where: str) -> ColumnError:
    from xmmtools.columns import closest

    near = closest(name, available)
    note = f" (closest: {', '.join(near)})" if near else ""
    return ColumnError(f"{where}: no column {name}{note}")
