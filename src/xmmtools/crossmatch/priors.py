"""Attribute (magnitude) priors and sky densities.

Attribute priors (Salvato et al. 2018, MNRAS 473, 4937, App. B.2; Naylor et al. 2013): the
Bayes factor of a combination is multiplied by q(m)/n(m), where q is the distribution of the
attribute m (a magnitude, a colour, a classifier probability) among true counterparts and n its
distribution among field sources.  Both are normalised histograms on the same bins; the ratio is
a step function of m.  Values outside the bins or missing give a factor 1; a bin without field
sources gives the ratio 100 (as NWAY does, so the factor stays finite).

Automatic histograms: "true counterparts" are the distinct secondary rows of combinations
with positional posterior > 0.9, each weighted by that posterior; "field sources" are the
rows with a finite value that never appear in a combination with posterior > 0.01 and that
lie in the sky cells around the primaries (``Catalog.field_rows``, set by the command from
``positional.CellMask``: the local field, as NWAY's field is the sources within the radius, and
the same rows whether a file is read whole or streamed).  The bin
edges are the weighted quantiles of the counterparts at 15 evenly spaced levels, widened by one
unit to cover all field values.  At least 100 secure counterparts are needed (as NWAY).

Sky areas for densities come from ``--area`` (a number of deg^2 or a MOC file, :func:`moc_area`),
a SKYAREA header, or are estimated from a HEALPix footprint (:func:`footprint_area`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xmmtools.errors import DataError
from xmmtools.sky import FULL_SKY_DEG2

#: factor used where the field histogram is empty
EMPTY_FIELD_RATIO = 100.0
MIN_SECURE = 100


@dataclass
class Histogram:
    """Bins ``edges`` (n+1) with normalised densities ``selected`` (q) and ``others`` (n)."""

    edges: np.ndarray
    selected: np.ndarray
    others: np.ndarray
    n_secure: int = 0
    n_field: int = 0

    def ratio(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.others == 0, EMPTY_FIELD_RATIO, self.selected / self.others)

    def weight(self, values) -> np.ndarray:
        """q(m)/n(m) for each value; 1 for NaN and values outside [edges[0], edges[-1]]."""
        v = np.asarray(values, dtype=float)
        r = self.ratio()
        i = np.searchsorted(self.edges, v, side="right") - 1
        i = np.where(v == self.edges[-1], len(r) - 1, i)
        ok = np.isfinite(v) & (i >= 0) & (i < len(r))
        out = np.ones(v.shape)
        out[ok] = r[i[ok]]
        return out

    def rows(self) -> np.ndarray:
        """(n, 4) array lo hi selected others, the file format."""
        return np.column_stack([self.edges[:-1], self.edges[1:], self.selected, self.others])


def histogram_from_rows(rows: np.ndarray, where: str) -> Histogram:
    """Build a Histogram from ``lo hi selected others`` rows, checking they are usable."""
    rows = np.asarray(rows, dtype=float)
    if rows.ndim != 2 or rows.shape[1] != 4 or len(rows) == 0:
        raise DataError(f"{where}: expected rows of 4 numbers 'lo hi selected others'")
    lo, hi, sel, oth = rows.T
    if not np.all(np.isfinite(rows)):
        raise DataError(f"{where}: non-finite value in the prior table")
    if np.any(hi <= lo) or np.any(np.abs(lo[1:] - hi[:-1]) > 1e-6 * np.maximum(1, np.abs(hi[:-1]))):
        raise DataError(f"{where}: bins must be increasing and contiguous (each lo equal to the previous hi)")
    if np.any(sel < 0) or np.any(oth < 0):
        raise DataError(f"{where}: negative density in the prior table")
    return Histogram(np.r_[lo, hi[-1]], sel, oth)


def weighted_quantile_edges(values, weights, n_points: int = 15) -> np.ndarray:
    """Bin edges at the weighted quantiles 0, 1/(n-1), ..., 1 of ``values`` (linear
    interpolation of the weighted cumulative distribution)."""
    o = np.argsort(values, kind="stable")
    v = np.asarray(values, dtype=float)[o]
    cw = np.cumsum(np.asarray(weights, dtype=float)[o])
    cw = cw / cw[-1]
    cw[0], cw[-1] = 0.0, 1.0
    return np.unique(np.interp(np.linspace(0, 1, n_points), cw, v))


def auto_histogram(
    values,
    members: np.ndarray,
    post: np.ndarray,
    *,
    label: str,
    min_post: float = 0.9,
    field_max_post: float = 0.01,
    field_rows: np.ndarray | None = None,
) -> Histogram:
    """q(m) and n(m) from the data (see the module docstring).

    ``values`` holds the attribute for every row of the secondary catalogue; ``members`` the
    secondary row of each combination (-1 when absent); ``post`` the positional posterior;
    ``field_rows`` (bool per row) the rows allowed as field sources (default all)."""
    v = np.asarray(values, dtype=float)
    has = members >= 0
    sel = has & (post > min_post)
    rows, first = np.unique(members[sel], return_index=True)
    w = post[sel][first]
    m_sel = v[rows]
    ok = np.isfinite(m_sel)
    m_sel, w = m_sel[ok], w[ok]
    field = np.isfinite(v) if field_rows is None else np.isfinite(v) & field_rows
    field[np.unique(members[has & (post > field_max_post)])] = False
    m_field = v[field]
    if len(m_sel) < MIN_SECURE:
        raise DataError(
            f"--mag {label} auto: only {len(m_sel)} secure counterparts (posterior > {min_post}) "
            f"have a value; at least {MIN_SECURE} are needed for a histogram; give a prior "
            "file 'lo hi selected others' instead"
        )
    if len(m_field) == 0:
        raise DataError(f"--mag {label} auto: no field sources with a value outside the candidates")
    edges = weighted_quantile_edges(m_sel, w)
    lo, hi = m_field.min(), m_field.max()
    if edges[-1] < hi:
        edges = np.r_[edges, hi + 1]
    if edges[0] > lo:
        edges = np.r_[lo - 1, edges]
    q, _ = np.histogram(m_sel, bins=edges, weights=w, density=True)
    n, _ = np.histogram(m_field, bins=edges, density=True)
    return Histogram(edges, q, n, n_secure=len(m_sel), n_field=len(m_field))


def footprint_area(
    ra, dec, *, min_per_pixel: float = 20.0, min_interior: int = 8, max_order: int = 13
) -> tuple[float, int]:
    """Sky area (deg^2) of a catalogue estimated from its HEALPix footprint.

    The density is measured in the *interior* pixels (occupied pixels whose 8 neighbours are
    all occupied), where the footprint's edges do not dilute it, and the area is N / density.
    The finest HEALPix order (nside = 2^order <= 2^max_order) is used at which the interior
    pixels hold on average at least ``min_per_pixel`` sources and there are at least
    ``min_interior`` of them; when no order qualifies, the occupied pixels at the coarsest
    order with ``min_per_pixel`` sources per occupied pixel are counted.  Returns (area, nside).
    """
    import healpy as hp

    ra = np.asarray(ra, dtype=float)
    dec = np.asarray(dec, dtype=float)
    if len(ra) == 0:
        raise DataError("cannot estimate the sky area of an empty catalogue")
    pix, counts = np.unique(hp.ang2pix(2**max_order, ra, dec, lonlat=True, nest=True), return_counts=True)
    return footprint_area_from_counts(pix, counts, max_order, min_per_pixel=min_per_pixel, min_interior=min_interior)


def footprint_area_from_counts(
    pix: np.ndarray, counts: np.ndarray, order: int, *, min_per_pixel: float = 20.0, min_interior: int = 8
) -> tuple[float, int]:
    """:func:`footprint_area` from source counts in nested HEALPix pixels of ``order`` (e.g. a
    HATS catalogue's skymap); coarser orders are the sums over pixel >> 2."""
    import healpy as hp

    pix = np.asarray(pix, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.float64)
    keep = counts > 0
    pix, counts = pix[keep], counts[keep]
    total = counts.sum()
    if not total > 0:
        raise DataError("cannot estimate the sky area of an empty catalogue")
    fallback = None
    for o in range(order, -1, -1):
        if o < order:  # nested: the parent of pixel p is p >> 2
            pix, inv = np.unique(pix >> 2, return_inverse=True)
            counts = np.bincount(inv, weights=counts, minlength=len(pix))
        nside = 2**o
        if fallback is None and total / len(pix) >= min_per_pixel:
            fallback = (len(pix) * hp.nside2pixarea(nside, degrees=True), nside)
        nb = hp.get_all_neighbours(nside, pix, nest=True)  # (8, n); -1 where none
        inside = np.all(np.isin(nb, pix) | (nb < 0), axis=0)
        if inside.sum() >= min_interior and counts[inside].mean() >= min_per_pixel:
            density = counts[inside].mean() / hp.nside2pixarea(nside, degrees=True)
            return float(total / density), nside
    if fallback is None:
        fallback = (FULL_SKY_DEG2, 1)
    return fallback


#: HEALPix orders a MOC may use (IVOA MOC 2.0: 0..29)
MOC_MAX_ORDER = 29


def moc_area(path: str) -> tuple[float, str]:
    """Area (deg^2) of a space MOC (IVOA MOC 1.1/2.0, Fernique et al.) and a one-line note.

    Accepted: a table with a ``UNIQ``/``NUNIQ`` column (the FITS serialisation, e.g. from
    ``xmmtools sensitivity-map --moc``, or the same column in Parquet/CSV), the JSON
    serialisation ``{"order": [ipix, ...], ...}``, or the ASCII one ``order/ipix ipix-ipix ...``.
    A cell of order k covers 4 pi / (12 * 4^k) sr; a NUNIQ value is 4 * 4^k + ipix (nested).
    Identical cells are counted once; cells of a normalised MOC never overlap.
    """
    import os

    if not os.path.isfile(path):
        raise DataError(f"--area {path}: no such MOC file (give a number of deg2 or a MOC file)")
    low = path.lower()
    if low.endswith(".json"):
        orders, ipix = _moc_json(path)
    elif low.endswith((".txt", ".moc", ".ascii")):
        orders, ipix = _moc_ascii(path)
    else:
        orders, ipix = _moc_uniq_table(path)
    if not len(orders):
        raise DataError(f"--area {path}: the MOC has no cells")
    bad = (orders < 0) | (orders > MOC_MAX_ORDER)
    bad |= (ipix < 0) | (ipix >= 12 * np.left_shift(np.int64(1), 2 * np.clip(orders, 0, MOC_MAX_ORDER)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"--area {path}: cell {int(orders[i])}/{int(ipix[i])} is not a valid HEALPix cell")
    cells = np.unique(np.column_stack([orders, ipix]), axis=0)
    sr = float(np.sum(4.0 * np.pi / (12.0 * 4.0 ** cells[:, 0].astype(np.float64))))
    area = sr * (180.0 / np.pi) ** 2
    return (
        area,
        f"{area:.6g} deg2 (MOC {os.path.basename(path)}: {len(cells)} cells, order <= {int(cells[:, 0].max())})",
    )


def _moc_uniq_table(path: str) -> tuple[np.ndarray, np.ndarray]:
    from xmmtools import tables

    names = tables.inspect_table(path).schema.names
    col = next((n for n in names if n.upper() in ("UNIQ", "NUNIQ")), None)
    if col is None:
        raise DataError(f"--area {path}: not a MOC (no UNIQ/NUNIQ column; columns: {', '.join(names[:6])})")
    column = tables.read_table(path, [col]).column(col)
    if tables.column_kind(column.type) != "number" or not str(column.type).startswith(("int", "uint")):
        raise DataError(f"--area {path}: MOC column {col} holds {column.type}, not integers")
    if column.null_count:
        raise DataError(f"--area {path}: MOC column {col} has {column.null_count} null values")
    uniq = tables.to_numpy(column, np.int64)
    if (uniq < 4).any():
        raise DataError(f"--area {path}: NUNIQ values must be >= 4")
    # order = the k with 4 * 4^k <= uniq < 4 * 4^(k+1), in integers (floats round at k >= 26)
    starts = 4 * 4 ** np.arange(MOC_MAX_ORDER + 2, dtype=np.int64)[: MOC_MAX_ORDER + 1]
    orders = np.searchsorted(starts, uniq, side="right") - 1
    return orders, uniq - starts[orders]


def _moc_json(path: str) -> tuple[np.ndarray, np.ndarray]:
    import json

    try:
        with open(path, "rb") as f:
            d = json.loads(f.read())
        pairs = [(int(k), int(v)) for k, vals in d.items() for v in vals]
    except (ValueError, TypeError, AttributeError) as e:  # (UnicodeDecodeError is a ValueError)
        raise DataError(f"--area {path}: not a JSON MOC ({e})") from None
    a = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return a[:, 0], a[:, 1]


def _moc_ascii(path: str) -> tuple[np.ndarray, np.ndarray]:
    """IVOA MOC ASCII: ``order/`` sets the order of the cells (``ipix`` or ``lo-hi`` ranges)
    that follow; MOC 2.0 may prefix the space part with ``s``."""
    import re

    token = re.compile(r"(?:(\d+)/)?(?:(\d+)(?:-(\d+))?)?")
    orders: list[int] = []
    ipix: list[int] = []
    order = None
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().replace(",", " ")
    except UnicodeDecodeError:
        raise DataError(f"--area {path}: not an ASCII MOC (non-ASCII bytes)") from None
    for tok in text.split():
        m = token.fullmatch(tok[1:] if tok.startswith("s") else tok)
        if not m or not (m.group(1) or m.group(2)):
            raise DataError(f"--area {path}: cannot read MOC token {tok!r}")
        if m.group(1) is not None:
            order = int(m.group(1))
        if m.group(2) is None:
            continue
        if order is None:
            raise DataError(f"--area {path}: MOC cell {tok!r} comes before any 'order/'")
        lo = int(m.group(2))
        hi = int(m.group(3)) if m.group(3) is not None else lo
        if hi < lo:
            raise DataError(f"--area {path}: MOC range {tok!r} runs backwards")
        orders.extend([order] * (hi - lo + 1))
        ipix.extend(range(lo, hi + 1))
    return np.asarray(orders, dtype=np.int64), np.asarray(ipix, dtype=np.int64)
