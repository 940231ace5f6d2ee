"""VOTable files (``.vot``, ``.votable``, ``.xml``) for the small tables people open in TOPCAT or
Aladin: one TABLE, each FIELD with its unit, UCD and description (written by
``astropy.io.votable``, the field's library; TABLEDATA serialization).

A VOTable is written in one piece at close, so the whole table is held in memory: meant for
source lists and alerts, not for 10^6-row catalogues (use Parquet or FITS there).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from xmmtools.errors import DataError, OutputError
from xmmtools.tables.atomic import TempFile
from xmmtools.tables.formats import short_error
from xmmtools.tables.interop import plain_schema, ucd_of
from xmmtools.tables.model import description_of, field_meta, null_mask, unit_of


class VOTableWriter:
    """A VOTable file (format version 1.4 as astropy writes it)."""

    def __init__(
        self, path: str, schema: pa.Schema, tmp: TempFile | None, stdout: BinaryIO | None, row_group_rows: int
    ) -> None:
        assert tmp is not None
        self.path = path
        self._tmp = tmp
        self._schema = plain_schema(schema)
        for f in self._schema:
            if pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
                raise OutputError(f"{path}: column {f.name} has variable-length lists; write .parquet")
        self._chunks: list[pa.Table] = []

    def write(self, chunk: pa.Table) -> None:
        self._chunks.append(chunk.cast(self._schema) if not chunk.schema.equals(self._schema) else chunk)

    def close(self) -> None:
        from astropy.io.votable import from_table

        table = pa.concat_tables(self._chunks) if self._chunks else self._schema.empty_table()
        votable = from_table(to_astropy(table))
        with self._tmp.open("wb") as f:
            votable.to_xml(f)
        self._chunks = []

    def abort(self) -> None:
        self._chunks = []


def to_astropy(table: pa.Table) -> Any:
    """An astropy Table with units, descriptions and UCDs (``meta['ucd']``); nulls masked."""
    from astropy.table import MaskedColumn, Table

    out = Table()
    for f, col in zip(table.schema, table.columns, strict=True):
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        mask = null_mask(arr) if arr.null_count else None
        if pa.types.is_fixed_size_list(arr.type):
            data = np.asarray(arr.flatten().to_numpy(zero_copy_only=False)).reshape(len(arr), arr.type.list_size)
            mask = None
        elif pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            data = np.array([v if v is not None else "" for v in arr.to_pylist()], dtype=str)
        elif pa.types.is_boolean(arr.type) or pa.types.is_integer(arr.type):
            data = np.asarray(
                arr.fill_null(False if pa.types.is_boolean(arr.type) else 0).to_numpy(zero_copy_only=False)
            )
        else:
            data = np.asarray(arr.to_numpy(zero_copy_only=False))
        c = MaskedColumn(data, name=f.name, mask=mask) if mask is not None else data
        out[f.name] = c
        out[f.name].unit = unit_of(f) or None
        out[f.name].description = description_of(f) or None
        ucd = ucd_of(f)
        if ucd:
            out[f.name].meta["ucd"] = ucd
    return out


def iter_votable(p: str, columns: Sequence[str] | None, chunk_rows: int | None) -> Iterator[pa.Table]:
    """The first table of a VOTable, with units and descriptions as field metadata."""
    import warnings

    from astropy.io.votable import parse_single_table

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = parse_single_table(p).to_table()
    except Exception as e:  # astropy raises many types for malformed XML
        raise DataError(f"{p}: not a VOTable ({short_error(e)})") from None
    names = list(columns) if columns is not None else t.colnames
    missing = [n for n in names if n not in t.colnames]
    if missing:
        raise DataError(f"{p}: no column {missing[0]}")
    arrays, fields = [], []
    for n in names:
        c = t[n]
        data = np.asarray(c)
        mask = np.asarray(getattr(c, "mask", np.zeros(len(c), bool)), dtype=bool)
        if mask.ndim > 1:
            mask = np.zeros(len(c), bool)
        if data.ndim == 2:
            arr: pa.Array = pa.FixedSizeListArray.from_arrays(pa.array(data.ravel()), data.shape[1])
        else:
            arr = pa.array(data.tolist() if data.dtype.kind in "USO" else data, mask=mask if mask.any() else None)
        meta = field_meta(str(c.unit) if c.unit is not None else None, c.description)
        ucd = c.meta.get("ucd") if c.meta else None
        if ucd:
            meta[b"ucd"] = str(ucd).encode()
        fields.append(pa.field(n, arr.type, metadata=meta or None))
        arrays.append(arr)
    yield pa.Table.from_arrays(arrays, schema=pa.schema(fields))
