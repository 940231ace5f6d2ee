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


def schema_names(schema: pa.Schema, where: str) -> list[str]:
    """The column names of a schema read from a file: a DataError when they are not UTF-8
    (pyarrow decodes them on access)."""
    try:
        return list(schema.names)
    except UnicodeDecodeError as e:
        raise DataError(f"{where}: a column name is not UTF-8 text (byte {e.start}); the file is damaged") from None


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


#: field metadata keys xmmtools decodes as text (a reader refuses them when not UTF-8)
TEXT_FIELD_KEYS = (b"unit", b"description", b"fits.tdim", b"ucd")


def check_metadata(schema: pa.Schema, where: str) -> None:
    """Refuse xmmtools metadata of the wrong shape in a file being read, naming it: the
    provenance chain (a JSON list of objects), the kept FITS header cards (a JSON list of
    ``[keyword, value, comment]``) and the text field metadata (UTF-8)."""
    import json

    from xmmtools.tables.model import HEADER_KEY
    from xmmtools.tables.provenance import PROVENANCE_KEY

    meta = schema.metadata or {}
    raw = meta.get(PROVENANCE_KEY)
    if raw:
        try:
            steps = json.loads(raw.decode("utf-8"))
        except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise DataError(f"{where}: metadata {PROVENANCE_KEY.decode()} is not JSON ({_short(e)})") from None
        if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
            raise DataError(
                f"{where}: metadata {PROVENANCE_KEY.decode()} is not a list of processing steps "
                f"(found {type(steps).__name__})"
            )
    raw = meta.get(HEADER_KEY)
    if raw:
        try:
            cards = json.loads(raw.decode("utf-8"))
        except ValueError as e:
            raise DataError(f"{where}: metadata {HEADER_KEY.decode()} is not JSON ({_short(e)})") from None
        ok = isinstance(cards, list) and all(
            isinstance(c, list)
            and len(c) == 3
            and isinstance(c[0], str)
            and (c[1] is None or isinstance(c[1], (bool, int, float, str)))
            and isinstance(c[2], str)
            for c in cards
        )
        if not ok:
            raise DataError(
                f"{where}: metadata {HEADER_KEY.decode()} is not a list of header cards [keyword, value, comment]"
            )
    for f in schema:
        for key in TEXT_FIELD_KEYS:
            v = (f.metadata or {}).get(key)
            if v is None:
                continue
            try:
                v.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    f"{where}: column {f.name}: metadata {key.decode()!r} is not UTF-8 text (byte {e.start})"
                ) from None


def _short(e: BaseException) -> str:
    return " ".join(str(e).split())[:120]
