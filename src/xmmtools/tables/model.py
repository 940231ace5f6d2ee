"""The in-memory column model: what a table is once read, and how a stage adds columns.

This is the only part of :mod:`xmmtools.tables` that science code imports: it never touches disk.

The in-memory form is a :class:`pyarrow.Table`:

* each field may carry ``unit`` and ``description`` metadata (FITS TUNITn/TCOMMn, Parquet and
  Arrow field metadata): :func:`field_meta`, :func:`unit_of`, :func:`description_of`;
* float nulls are NaN (the FITS convention); integer and boolean nulls are Arrow nulls (FITS
  TNULLn and the undefined logical value);
* schema metadata ``xmmtools.provenance`` holds the JSON list of processing steps
  (:mod:`xmmtools.tables.provenance`), and ``xmmtools.header`` (:data:`HEADER_KEY`) the
  non-structural keywords of a FITS table header, so they survive FITS -> Parquet -> FITS.

Columns become numpy arrays with :func:`to_numpy` and numpy arrays become Arrow arrays with
:func:`arrow_from_numpy`, both straight from the buffers (no pandas import).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmmtools.errors import ColumnError, DataError

#: schema metadata key of the kept FITS header keywords (JSON list of [key, value, comment])
HEADER_KEY = b"xmmtools.header"


def column_kind(t: pa.DataType) -> str:
    """'number', 'bool', 'text', 'list' or the type name: used for type checks of needs."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        return "text"
    if pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t):
        return "list"
    if pa.types.is_null(t):
        return "number"
    return str(t)


def schema_kinds(schema: pa.Schema) -> dict[str, str]:
    return {f.name: column_kind(f.type) for f in schema}


def to_numpy(col: pa.ChunkedArray | pa.Array, dtype: Any = float) -> np.ndarray:
    """A column as a numpy array; nulls become NaN for floats (ints are promoted to float when
    they have nulls) and False for booleans with ``dtype=bool``."""
    fast = _plain_numbers(col, dtype)
    if fast is not None:
        return fast
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if dtype is bool:
        return np.asarray(pc.fill_null(col, False).to_numpy(zero_copy_only=False), dtype=bool)
    if dtype in (float, np.float64, np.float32):
        if pa.types.is_boolean(col.type):
            col = pc.cast(col, pa.float64())
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_null(col.type)):
            raise ColumnError(f"column of type {col.type} is not numeric")
        arr = pc.cast(col, pa.float64()) if not pa.types.is_floating(col.type) else col
        arr = pc.fill_null(arr, np.nan) if arr.null_count else arr
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=dtype)
    out: np.ndarray = col.to_numpy(zero_copy_only=False)
    return out


def _plain_numbers(col: pa.ChunkedArray | pa.Array, dtype: Any) -> np.ndarray | None:
    """Integer/float columns without nulls, straight from their Arrow buffers: one copy at
    most (joining chunks or casting), and no pandas import -- pyarrow's ``to_numpy`` with
    ``zero_copy_only=False`` goes through its pandas conversion layer, which imports pandas
    (0.13 s) on first use.  None when the column needs the general path."""
    if dtype not in (float, np.float64, np.float32, int, np.int64):
        return None
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    typ = col.type
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ)) or pa.types.is_float16(typ):
        return None
    want = np.dtype(dtype)
    nulls = any(c.null_count for c in chunks)
    if nulls and not (pa.types.is_floating(typ) and want.kind == "f"):
        return None  # integers with nulls are promoted to float by the general path
    if want.kind == "i" and not pa.types.is_integer(typ):
        return None
    chunks = [c for c in chunks if len(c)]
    views = [raw_values(c) for c in chunks]
    if nulls:  # float nulls -> NaN, in a copy
        views = [_nan_where_null(v, c) for v, c in zip(views, chunks, strict=True)]
    if not views:
        return np.zeros(0, dtype=want)
    if len(views) == 1:
        return views[0].astype(want, copy=False)
    if views[0].dtype == want:
        return np.concatenate(views)
    out = np.empty(sum(len(v) for v in views), dtype=want)
    np.concatenate(views, out=out, casting="unsafe")
    return out


def _nan_where_null(values: np.ndarray, arr: pa.Array) -> np.ndarray:
    if not arr.null_count:
        return values
    out = values.copy()
    out[null_mask(arr)] = np.nan
    return out


def field_meta(unit: str | None = None, description: str | None = None) -> dict[bytes, bytes]:
    meta = {}
    if unit:
        meta[b"unit"] = unit.encode()
    if description:
        meta[b"description"] = " ".join(description.split()).encode()
    return meta


#: field metadata keys ``meta.NAME`` hold JSON values describing a column for other tools (e.g.
#: the redshift grid of Z_PDF); writers put them in astropy's column ``meta`` and VOTable
META_PREFIX = b"meta."


def column_meta(f: pa.Field) -> dict[str, Any]:
    """The ``meta.NAME`` entries of a field, decoded from JSON."""
    import json

    out = {}
    for k, v in (f.metadata or {}).items():
        if k.startswith(META_PREFIX):
            with contextlib.suppress(ValueError):
                out[k[len(META_PREFIX) :].decode()] = json.loads(v)
    return out


def unit_of(f: pa.Field) -> str:
    return str((f.metadata or {}).get(b"unit", b"").decode())


def description_of(f: pa.Field) -> str:
    return str((f.metadata or {}).get(b"description", b"").decode())


@dataclass
class NewColumn:
    """A column a stage adds: values plus the unit and one-line description it carries."""

    name: str
    values: Any
    unit: str = ""
    description: str = ""
    type: pa.DataType | None = None
    #: extra machine-readable facts (JSON values), e.g. ``{"z_edges": [...]}`` for a PDF grid
    meta: dict[str, Any] | None = None

    def to_field_array(self, nrows: int) -> tuple[pa.Field, pa.Array]:
        v = self.values
        if isinstance(v, (pa.Array, pa.ChunkedArray)):
            arr = v if self.type is None else v.cast(self.type)
        else:
            v = np.asarray(v)
            if v.ndim == 2:  # a vector per row -> fixed-size list
                flat = pa.array(
                    np.ascontiguousarray(v).ravel(),
                    type=self.type.value_type
                    if self.type is not None and pa.types.is_fixed_size_list(self.type)
                    else None,
                )
                arr = pa.FixedSizeListArray.from_arrays(flat, v.shape[1])
            elif v.ndim == 1 and v.dtype.kind in "fiub" and v.dtype.byteorder in "=|":
                arr = arrow_from_numpy(v)  # zero-copy for numbers; NaN stays NaN (not null)
                if self.type is not None and arr.type != self.type:
                    arr = arr.cast(self.type)
            elif v.dtype.kind == "f":
                arr = pa.array(v, type=self.type)
            else:
                arr = pa.array(v, type=self.type, from_pandas=True)
        if len(arr) != nrows:
            raise ValueError(f"new column {self.name} has {len(arr)} rows, table has {nrows}")
        meta = field_meta(self.unit, self.description)
        if self.meta:
            import json

            meta.update({META_PREFIX + k.encode(): json.dumps(v).encode() for k, v in self.meta.items()})
        return pa.field(self.name, arr.type, metadata=meta), arr


def add_columns(table: pa.Table, new: Sequence[NewColumn], *, replace: bool = False) -> pa.Table:
    """Append new columns (keeping every input column).  A name already present raises unless
    ``replace``: recomputed values must never silently replace catalogue values."""
    for c in new:
        f, arr = c.to_field_array(table.num_rows)
        idx = table.schema.get_field_index(c.name)
        if idx >= 0:
            if not replace:
                raise DataError(f"the table already has a column {c.name}; refusing to overwrite it")
            table = table.set_column(idx, f, arr)
        else:
            table = table.append_column(f, arr)
    return table


# =========================================================================================
# Arrow buffers <-> numpy (no pandas import)
# =========================================================================================


def arrow_from_numpy(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """A 1-D numeric or boolean numpy array (nulls where ``mask``) as an Arrow array, zero-copy
    for numbers.  Built from buffers: ``pa.array(..., mask=)`` would import pandas (0.3 s)."""
    n = len(values)
    validity, nulls = None, 0
    if mask is not None and mask.any():
        nulls = int(mask.sum())
        validity = pa.py_buffer(np.packbits(~mask, bitorder="little"))
    if values.dtype == bool:
        return pa.Array.from_buffers(
            pa.bool_(), n, [validity, pa.py_buffer(np.packbits(values, bitorder="little"))], null_count=nulls
        )
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(values.dtype), n, [validity, pa.py_buffer(values)], null_count=nulls
    )


def raw_values(a: pa.Array) -> np.ndarray:
    """The value buffer of a numeric or boolean Arrow array as numpy, ignoring validity (the
    values under nulls are arbitrary).  Read straight from the buffers: pyarrow's
    ``to_numpy(zero_copy_only=False)`` would import pandas (0.13 s) on first use."""
    t = a.type
    if pa.types.is_boolean(t):
        if not len(a):
            return np.zeros(0, dtype=bool)
        bits = np.frombuffer(a.buffers()[1], dtype=np.uint8)
        return np.unpackbits(bits, bitorder="little", count=a.offset + len(a))[a.offset :].view(bool)
    if (pa.types.is_integer(t) or pa.types.is_floating(t)) and not pa.types.is_float16(t):
        dt = np.dtype(t.to_pandas_dtype())
        if not len(a):
            return np.zeros(0, dtype=dt)
        return np.frombuffer(a.buffers()[1], dtype=dt, count=len(a), offset=a.offset * dt.itemsize)
    out: np.ndarray = a.to_numpy(zero_copy_only=False)
    return out


def null_mask(a: pa.Array) -> np.ndarray:
    """True where ``a`` is null."""
    if not a.null_count:
        return np.zeros(len(a), dtype=bool)
    bits = np.frombuffer(a.buffers()[0], dtype=np.uint8)
    return ~np.unpackbits(bits, bitorder="little", count=a.offset + len(a))[a.offset :].view(bool)
