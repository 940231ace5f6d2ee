"""Assemble output tables: the primary's columns plus counterpart columns and probabilities.

Counterpart columns are prefixed with the catalogue name in upper case (``GAIA_RA``,
``GAIA_SEP``); absent counterparts are nulls (NaN for floats).  Every new column carries a unit
and a description (see docs/crossmatch.md for the full list).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from xmmtools import bands, tables
from xmmtools.catalogs import Profile
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
    sub = _take(gathered, _positions(rows, members))
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


def _positions(rows: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Index into the sorted unique ``rows`` of each of ``members`` (-1 stays -1)."""
    members = np.asarray(members)
    valid = np.flatnonzero(members >= 0)
    mv = members[valid]
    o = np.argsort(mv)  # sorted look-ups stay in cache: faster than random ones even with the sort
    pv = np.empty(len(mv), dtype=np.int64)
    pv[o] = np.searchsorted(rows, mv[o])
    pos = np.full(len(members), -1, dtype=np.int64)
    pos[valid] = pv
    return pos


def band_columns(
    profile: Profile, name: str, gathered: pa.Table, rows: np.ndarray, members: np.ndarray
) -> list[NewColumn]:
    """Canonical band columns (``SDSS_U``, ``SDSS_U_ERR``, ...) of the counterparts ``members``
    of a known catalogue, in each band's canonical system (xmmtools/data/bands.toml): a profile
    in another system is converted with the band's documented AB - Vega offset."""
    found = profile.band_columns(gathered.schema.names)
    if not found:
        return []
    pos = _positions(rows, members)
    out = []
    for canon, vcol, ecol in found:
        b = bands.band(canon)
        shift = bands.offset(
            canon, profile.system if b.system else None, b.system, what=f"catalogue {name} ({profile.name} profile)"
        )
        conv = f", {shift:+g} mag from {profile.system}" if shift else ""
        system = f" ({b.system})" if b.system else ""
        for col, suffix, what in ((vcol, "", b.description + system), (ecol, "_ERR", f"1-sigma error of {canon}")):
            if col is None:
                continue
            v = tables.to_numpy(gathered.column(col), float)
            v = np.where(np.isfinite(v), v + (shift if suffix == "" else 0.0), np.nan)
            taken = np.where(pos >= 0, v[np.maximum(pos, 0)] if len(v) else np.nan, np.nan)
            out.append(
                NewColumn(canon + suffix, taken, b.unit, f"{what} of the {name} counterpart (column {col}{conv})")
            )
    return out


def without_replaced(raw: Sequence[NewColumn], canonical: Sequence[NewColumn]) -> list[NewColumn]:
    """Raw prefixed columns minus those a canonical column of the same name replaces (a file
    column ``u`` of catalogue ``sdss`` is both SDSS_U raw and canonical: the values are equal)."""
    names = {c.name for c in canonical}
    return [c for c in raw if c.name not in names]


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
