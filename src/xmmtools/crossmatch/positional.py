"""Positional matching on unit vectors: all pairs within a radius, and nearest neighbours.

Both catalogues are turned into unit vectors; a pair is accepted when its chord length is at
most ``2 sin(r/2)`` -- the same criterion as astropy's ``search_around_sky``, so the pairs are
identical.  Memory stays bounded for large counterpart catalogues by working in declination
stripes: the primary is sorted by declination and cut into chunks; for each chunk only the
secondary rows with declinations inside the chunk's range widened by the radius are put in a
KD-tree (scipy.spatial.cKDTree).  Peak memory is the two coordinate arrays plus one stripe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from xmmtools.errors import DataError

ARCSEC = np.pi / 180.0 / 3600.0
#: default primary rows per declination stripe
DEFAULT_CHUNK = 50_000


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """(N, 3) unit vectors from RA/Dec in degrees."""
    ra = np.radians(np.asarray(ra_deg, dtype=float))
    dec = np.radians(np.asarray(dec_deg, dtype=float))
    cd = np.cos(dec)
    return np.column_stack([cd * np.cos(ra), cd * np.sin(ra), np.sin(dec)])


def chord_to_arcsec(chord: np.ndarray) -> np.ndarray:
    """Great-circle angle (arcsec) from the chord length between unit vectors: 2 arcsin(c/2)."""
    return 2.0 * np.arcsin(np.clip(np.asarray(chord) / 2.0, 0.0, 1.0)) / ARCSEC


def separation_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Angular separation in arcsec (Vincenty formula, accurate at all angles)."""
    l1, b1, l2, b2 = (np.radians(np.asarray(x, dtype=float)) for x in (ra1, dec1, ra2, dec2))
    dl = l2 - l1
    sb1, cb1, sb2, cb2 = np.sin(b1), np.cos(b1), np.sin(b2), np.cos(b2)
    num1 = cb2 * np.sin(dl)
    num2 = cb1 * sb2 - sb1 * cb2 * np.cos(dl)
    den = sb1 * sb2 + cb1 * cb2 * np.cos(dl)
    return np.arctan2(np.hypot(num1, num2), den) / ARCSEC


def tangent_offsets(ra0, dec0, ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (xi, eta) in arcsec of (ra, dec) from (ra0, dec0) on the gnomonic tangent plane:
    xi towards east (increasing RA), eta towards north."""
    a0, d0, a, d = (np.radians(np.asarray(x, dtype=float)) for x in (ra0, dec0, ra, dec))
    da = a - a0
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(da)
    xi = np.cos(d) * np.sin(da) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(da)) / cosc
    return xi / ARCSEC, eta / ARCSEC


def check_coordinates(ra: np.ndarray, dec: np.ndarray, where: str) -> None:
    """Raise a one-line DataError for NaN or out-of-range coordinates, naming the first row."""
    ra = np.asarray(ra, dtype=float)
    dec = np.asarray(dec, dtype=float)
    bad = ~np.isfinite(ra) | ~np.isfinite(dec)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where}: {int(bad.sum())} rows have missing (NaN/null) RA or DEC, "
                        f"first at row {i}; remove or fill them before matching")
    out = np.abs(dec) > 90
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise DataError(f"{where}: DEC={float(dec[i]):g} at row {i} is outside [-90, 90] deg "
                        f"({int(out.sum())} such rows)")


@dataclass
class Pairs:
    """All pairs within the radius: primary row, secondary row, separation (arcsec).

    Sorted by primary row, then by separation."""

    idx1: np.ndarray
    idx2: np.ndarray
    sep: np.ndarray

    def __len__(self) -> int:
        return len(self.idx1)


def _stripes(dec1: np.ndarray, dec2: np.ndarray, radius_arcsec: float, chunk: int
             ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (primary rows, secondary rows) per declination stripe of about ``chunk`` primaries."""
    o1 = np.argsort(dec1, kind="stable")
    o2 = np.argsort(dec2, kind="stable")
    d2s = dec2[o2]
    pad = radius_arcsec / 3600.0 * (1 + 1e-9) + 1e-12
    for start in range(0, len(o1), chunk):
        rows1 = o1[start:start + chunk]
        lo, hi = dec1[rows1[0]] - pad, dec1[rows1[-1]] + pad
        a = np.searchsorted(d2s, lo, side="left")
        b = np.searchsorted(d2s, hi, side="right")
        yield rows1, o2[a:b]


def n_stripes(n1: int, chunk: int | None) -> int:
    chunk = chunk or DEFAULT_CHUNK
    return max(1, -(-n1 // chunk))


def search_around(ra1, dec1, ra2, dec2, radius_arcsec: float, *, chunk: int | None = None,
                  progress: Callable[[int], None] | None = None) -> Pairs:
    """All (i, j) with separation(primary i, secondary j) <= radius, as astropy's
    ``search_around_sky(primary, secondary, radius)`` finds them.

    ``progress`` is called with 1 after each declination stripe (for a progress bar)."""
    from scipy.spatial import cKDTree

    ra1, dec1, ra2, dec2 = (np.asarray(x, dtype=float) for x in (ra1, dec1, ra2, dec2))
    if radius_arcsec <= 0:
        raise DataError(f"the match radius must be positive, got {radius_arcsec} arcsec")
    r_chord = 2.0 * np.sin(0.5 * radius_arcsec * ARCSEC)
    out1, out2, outd = [], [], []
    if len(ra1) and len(ra2):
        for rows1, rows2 in _stripes(dec1, dec2, radius_arcsec, chunk or DEFAULT_CHUNK):
            if len(rows2):
                t1 = cKDTree(unit_vectors(ra1[rows1], dec1[rows1]))
                t2 = cKDTree(unit_vectors(ra2[rows2], dec2[rows2]))
                m = t1.sparse_distance_matrix(t2, r_chord, output_type="ndarray")
                out1.append(rows1[m["i"]])
                out2.append(rows2[m["j"]])
                outd.append(m["v"])
            if progress:
                progress(1)
    if not out1:
        e = np.zeros(0, dtype=np.int64)
        return Pairs(e, e.copy(), np.zeros(0))
    i1 = np.concatenate(out1).astype(np.int64)
    i2 = np.concatenate(out2).astype(np.int64)
    sep = chord_to_arcsec(np.concatenate(outd))
    order = np.lexsort((i2, sep, i1))
    return Pairs(i1[order], i2[order], sep[order])


def nearest(ra1, dec1, ra2, dec2, radius_arcsec: float | None = None, *, chunk: int | None = None,
            progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nearest secondary row for every primary row: (index or -1, separation arcsec or NaN).

    With a radius, farther neighbours count as none.  Without one the whole secondary table is
    put in one tree (memory grows with it)."""
    from scipy.spatial import cKDTree

    ra1, dec1, ra2, dec2 = (np.asarray(x, dtype=float) for x in (ra1, dec1, ra2, dec2))
    idx = np.full(len(ra1), -1, dtype=np.int64)
    sep = np.full(len(ra1), np.nan)
    if not len(ra1) or not len(ra2):
        return idx, sep
    if radius_arcsec is None:
        tree = cKDTree(unit_vectors(ra2, dec2))
        d, j = tree.query(unit_vectors(ra1, dec1), k=1)
        return j.astype(np.int64), chord_to_arcsec(d)
    r_chord = 2.0 * np.sin(0.5 * radius_arcsec * ARCSEC)
    for rows1, rows2 in _stripes(dec1, dec2, radius_arcsec, chunk or DEFAULT_CHUNK):
        if len(rows2):
            tree = cKDTree(unit_vectors(ra2[rows2], dec2[rows2]))
            d, j = tree.query(unit_vectors(ra1[rows1], dec1[rows1]), k=1,
                              distance_upper_bound=r_chord * (1 + 1e-12))
            ok = np.isfinite(d) & (d <= r_chord)
            idx[rows1[ok]] = rows2[j[ok]]
            sep[rows1[ok]] = chord_to_arcsec(d[ok])
        if progress:
            progress(1)
    return idx, sep
