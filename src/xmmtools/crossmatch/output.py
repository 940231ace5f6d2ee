"""Assemble output tables: the primary's columns plus counterpart columns and probabilities.

Counterpart columns are prefixed with the catalogue name in upper case (``GAIA_RA``,
``GAIA_SEP``); absent counterparts are nulls (NaN for floats).  Every new column carries a unit
and a description (see docs/crossmatch.md for the full list).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from xmmtools import tables
from xmmtools.errors import DataError
from xmmtools.tables.model import NewColumn


def _take(t: pa.Table, idx: np.ndarray) -> pa.Table:
    """Rows ``idx`` of ``t``; -1 gives a row of nulls."""
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size and (idx < 0).any():
        return t.take(tables.arrow_from_numpy(np.maximum(idx, 0), idx < 0))
    return t.take(tables.arrow_from_numpy(idx))


def counterpart_columns(name: str, gathered: pa.Table, rows: np.ndarray, members: np.ndarray) -> list[NewColumn]:
    """Columns ``NAME_<COL>`` of the secondary rows ``members`` (-1: null); ``gathered`` holds the
    sorted unique secondary ``rows``."""
    members = np.asarray(members)
    valid = np.flatnonzero(members >= 0)
    mv = members[valid]
    o = np.argsort(mv)  # sorted look-ups stay in cache: faster than random ones even with the sort
    pv = np.empty(len(mv), dtype=np.int64)
    pv[o] = np.searchsorted(rows, mv[o])
    pos = np.full(len(members), -1, dtype=np.int64)
    pos[valid] = pv
    sub = _take(gathered, pos)
    out = []
    for f, col in zip(sub.schema, sub.columns, strict=True):
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if pa.types.is_floating(arr.type) and arr.null_count:
            arr = tables.arrow_from_numpy(tables.to_numpy(arr, arr.type.to_pandas_dtype()))
        desc = tables.description_of(f)
        out.append(
            NewColumn(
                f"{name}_{f.name.upper()}",
                arr,
                tables.unit_of(f),
                f"{name} counterpart: {desc}" if desc else f"{name} counterpart column {f.name}",
            )
        )
    return out


def assemble(base: pa.Table, new: Sequence[NewColumn]) -> pa.Table:
    """Append columns, with one-line errors for name clashes."""
    names = [c.name for c in new]
    seen = set()
    for n in names:
        if n in seen:
            raise DataError(
                f"two output columns would be called {n}; rename a counterpart column or choose another catalogue name"
            )
        seen.add(n)
    clash = [n for n in names if n in base.schema.names]
    if clash:
        raise DataError(
            f"the primary table already has a column {clash[0]}; choose another catalogue name with --catalog NAME=FILE"
        )
    return tables.add_columns(base, list(new))


def sep_column(name: str, sep: np.ndarray) -> NewColumn:
    return NewColumn(
        f"{name}_SEP",
        np.asarray(sep, dtype=float),
        "arcsec",
        f"separation between the primary source and its {name} counterpart",
    )
