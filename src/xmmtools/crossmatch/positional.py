"""Positional matching: all pairs within a radius, and nearest neighbours.

Pairs are found with a zone sweep (Gray, Nieto-Santisteban & Szalay 2006, "The Zones Algorithm
for Finding Points-Near-a-Point or Cross-Matching Spatial Datasets", MSR-TR-2006-52): the
secondary catalogue is cut into declination zones of height h >= radius and sorted by
(zone, RA) into one key array.  For a primary at declination d the candidates lie in the zones
overlapping [d - r, d + r] and, within each, in the RA window +-alpha with
alpha = arctan(sin r / sqrt(|cos(d - r) cos(d + r)|)) (the half-width in RA of the cap; 180 deg
near a pole), split in two at RA 0/360.  The windows are found with ``searchsorted`` for a
whole chunk of primaries at once, and each candidate is kept when its chord length
2 sqrt(hav(psi)) is at most 2 sin(r/2) -- the same criterion as astropy's ``search_around_sky``
(KD-tree on unit vectors), so the pairs are identical.  Memory: the secondary coordinates, one
sorted key and one index array (8 bytes each per row), plus the candidates of one chunk of
primaries (``chunk`` rows); no tree is built.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from xmmtools.errors import DataError
from xmmtools.sky import ARCSEC, chord_to_arcsec, unit_vectors

#: default primary rows per declination stripe
DEFAULT_CHUNK = 50_000
#: at most this many threads (numpy releases the GIL in sort, searchsorted and ufuncs)
MAX_THREADS = 2


def n_threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, n))


def sort_inplace(a: np.ndarray) -> None:
    """``a.sort()``, on two threads for large arrays: partition at the median, sort each half."""
    n = len(a)
    if n < 1_000_000 or n_threads() < 2:
        a.sort()
        return
    h = n // 2
    a.partition(h)
    with ThreadPoolExecutor(2) as ex:
        for f in [ex.submit(a[h:].sort), ex.submit(a[:h].sort)]:
            f.result()


def tangent_offsets(ra0, dec0, ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (xi, eta) in arcsec of (ra, dec) from (ra0, dec0) on the gnomonic tangent plane:
    xi towards east (increasing RA), eta towards north."""
    a0, d0, a, d = (np.radians(np.asarray(x, dtype=float)) for x in (ra0, dec0, ra, dec))
    da = a - a0
    sd0, cd0, sd, cd, cda = np.sin(d0), np.cos(d0), np.sin(d), np.cos(d), np.cos(da)  # each once
    cosc = sd0 * sd + cd0 * cd * cda
    xi = cd * np.sin(da) / cosc
    eta = (cd0 * sd - sd0 * cd * cda) / cosc
    return xi / ARCSEC, eta / ARCSEC


@dataclass
class Pairs:
    """All pairs within the radius: primary row, secondary row, separation (arcsec).

    Sorted by primary row, then by separation."""

    idx1: np.ndarray
    idx2: np.ndarray
    sep: np.ndarray

    def __len__(self) -> int:
        return len(self.idx1)


#: minimum zone height (deg): keeps the number of zones (and the key's magnitude) small
_MIN_ZONE = 10.0 / 3600.0


def ra_half_width(dec_deg: np.ndarray, radius_deg: float) -> np.ndarray:
    """Half-width in RA (deg) of the cap of ``radius`` around each declination; 180 at a pole."""
    d = np.radians(np.asarray(dec_deg, dtype=float))
    r = np.radians(radius_deg)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.degrees(np.arctan(np.sin(r) / np.sqrt(np.abs(np.cos(d - r) * np.cos(d + r)))))
    polar = np.abs(d) + r >= np.pi / 2 - 1e-12
    return np.where(polar | ~np.isfinite(a), 180.0, a * (1 + 1e-9) + 1e-10)


class ZoneIndex:
    """The secondary catalogue sorted by (declination zone, RA) for window look-ups."""

    def __init__(self, ra, dec, radius_arcsec: float):
        ra = np.asarray(ra, dtype=float)
        # np.mod is the identity on [0, 360): skip the copy when every RA is already there
        self.ra = ra if len(ra) and ra.min() >= 0 and ra.max() < 360.0 else np.mod(ra, 360.0)
        self.dec = np.asarray(dec, dtype=float)
        self.r = radius_arcsec / 3600.0
        self.h = max(self.r, _MIN_ZONE)
        self.nzone = int(np.floor(180.0 / self.h)) + 1
        # one int64 per row, sorted without argsort (np.sort is several times faster):
        # zone | RA quantised to ``self.q`` deg | row index.  Quantising only widens the windows
        # by one quantum; the exact chord test decides.
        n = len(self.ra)
        self.idx_bits = max(1, int(n - 1).bit_length())
        zone_bits = int(self.nzone).bit_length()
        self.ra_bits = 63 - zone_bits - self.idx_bits
        if self.ra_bits < 12:
            raise DataError(f"{n} counterpart rows are too many for one zone index; split the catalogue")
        self.q = 360.0 / (1 << self.ra_bits)
        # (the same arithmetic as _zone and _ra_q, in reused buffers: fresh pages are costly)
        f = self.dec + 90.0
        f *= 1.0 / self.h
        packed = f.astype(np.int64)
        np.minimum(np.maximum(packed, 0, out=packed), self.nzone - 1, out=packed)
        packed <<= self.ra_bits
        np.multiply(self.ra, 1.0 / self.q, out=f)
        buf = np.empty(n, dtype=np.int64)
        np.copyto(buf, f, casting="unsafe")
        del f
        packed |= np.minimum(buf, (1 << self.ra_bits) - 1, out=buf)
        packed <<= self.idx_bits
        buf.fill(1)  # 0, 1, ..., n-1 in the same pages
        buf[:1] = 0  # (no row at all: a counterpart file with nothing near the primaries)
        np.cumsum(buf, out=buf)
        packed |= buf
        sort_inplace(packed)
        self.order = np.bitwise_and(packed, (1 << self.idx_bits) - 1, out=buf)
        packed >>= self.idx_bits
        self.key = packed  # (zone << ra_bits) | ra_q, sorted

    def _ra_q(self, ra):
        q = (np.asarray(ra, dtype=float) * (1.0 / self.q)).astype(np.int64)
        return np.minimum(q, (1 << self.ra_bits) - 1, out=q)

    def _zone(self, dec):
        t = np.asarray(dec, dtype=float) + 90.0
        t *= 1.0 / self.h
        z = t.astype(np.int64)  # floor: dec + 90 >= 0
        del t
        return np.minimum(np.maximum(z, 0, out=z), self.nzone - 1, out=z)

    def candidates(self, ra1, dec1) -> tuple[np.ndarray, np.ndarray]:
        """(local primary row, secondary row) of every candidate in the primaries' windows."""
        ra1 = np.mod(np.asarray(ra1, dtype=float), 360.0)
        dec1 = np.asarray(dec1, dtype=float)
        pad = self.r * (1 + 1e-9) + 1e-10
        zlo, zhi = self._zone(dec1 - pad), self._zone(dec1 + pad)
        alpha = ra_half_width(dec1, self.r)
        full = alpha >= 180.0
        a_lo = np.where(full, 0.0, np.maximum(ra1 - alpha, 0.0))
        a_hi = np.where(full, 360.0, np.minimum(ra1 + alpha, 360.0))
        wrap_lo = ~full & (ra1 - alpha < 0)
        wrap_hi = ~full & (ra1 + alpha > 360)
        b_lo = np.where(wrap_lo, ra1 - alpha + 360.0, np.where(wrap_hi, 0.0, 1.0))
        b_hi = np.where(wrap_lo, 360.0, np.where(wrap_hi, ra1 + alpha - 360.0, 0.0))  # empty if lo > hi
        row_parts: list[np.ndarray] = []
        lo_parts: list[np.ndarray] = []
        hi_parts: list[np.ndarray] = []
        for dz in range(int((zhi - zlo).max(initial=0)) + 1):
            z = zlo + dz
            ok = z <= zhi
            base = z << self.ra_bits
            for lo, hi in ((a_lo, a_hi), (b_lo, b_hi)):
                sel = np.flatnonzero(ok & (hi >= lo))  # look up only the windows that exist
                b = base[sel]
                i0 = np.searchsorted(self.key, b | self._ra_q(np.clip(lo[sel], 0, 360)), side="left")
                i1 = np.searchsorted(self.key, b | self._ra_q(np.clip(hi[sel], 0, 360)), side="right")
                m = i1 > i0
                row_parts.append(sel[m])
                lo_parts.append(i0[m])
                hi_parts.append(i1[m])
        rows, los, his = np.concatenate(row_parts), np.concatenate(lo_parts), np.concatenate(hi_parts)
        counts = his - los
        total = int(counts.sum())
        rep = np.repeat(rows, counts)
        pos = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(los, counts)
        return rep, self.order[pos]


class CellMask:
    """Which secondaries can lie within the radius of some primary: a coarse sky-cell test
    run before the zone index is built, so counterparts far from every primary (most of a
    Gaia-sized catalogue around 4XMM fields) are never sorted.

    Cells are declination zones of height ``h`` >= 2 radius cut into RA bins at least ``h``
    wide at the zone's poleward edge (fewer bins near the poles, one bin in a polar cap).  Each
    primary marks every cell its cap can touch (the zones over dec +- r and, in each, the bins
    over RA +- alpha, as in :meth:`ZoneIndex.candidates`); a secondary passes when its own cell
    is marked.  Marks go into a hashed byte table, so a collision can only let a far secondary
    through (the exact chord test still decides); no true pair is ever lost.
    """

    def __init__(self, ra1, dec1, radius_arcsec: float, min_height_arcsec: float = 20.0):
        self.r = radius_arcsec / 3600.0
        self.h = max(2.0 * self.r, min_height_arcsec / 3600.0)
        self.nzone = int(np.ceil(180.0 / self.h))
        lo = -90.0 + self.h * np.arange(self.nzone)
        edge = np.minimum(np.maximum(np.abs(lo), np.abs(np.minimum(lo + self.h, 90.0))), 90.0)
        self.nbin = np.maximum(1, np.floor(360.0 * np.cos(np.radians(edge)) / self.h)).astype(np.int64)
        self.inv_width = self.nbin / 360.0
        # one spare id after each zone's last bin: RA x nbin/360 may round up to nbin at RA -> 360
        self.offset = np.concatenate([[0], np.cumsum(self.nbin + 1)[:-1]])
        ra1 = np.mod(np.asarray(ra1, dtype=float), 360.0)
        dec1 = np.asarray(dec1, dtype=float)
        pad = self.r * (1 + 1e-9) + 1e-10
        zlo, zhi = self._zone(dec1 - pad), self._zone(dec1 + pad)
        alpha = ra_half_width(dec1, self.r)
        mark_parts: list[np.ndarray] = []
        for dz in range(int((zhi - zlo).max(initial=0)) + 1):
            sel = np.flatnonzero(zlo + dz <= zhi)
            z = zlo[sel] + dz
            iw, nb = self.inv_width[z], self.nbin[z]
            b0 = np.floor((ra1[sel] - alpha[sel]) * iw).astype(np.int64)
            cnt = np.floor((ra1[sel] + alpha[sel]) * iw).astype(np.int64) - b0 + 1
            full = cnt >= nb
            b0[full], cnt[full] = 0, nb[full]
            row = np.repeat(np.arange(len(sel)), cnt)
            k = np.arange(len(row)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            b = np.mod(b0[row] + k, nb[row])
            off = self.offset[z][row]
            mark_parts += [off + b, off[b == nb[row] - 1] + nb[row][b == nb[row] - 1]]  # (+ the spare id)
        marks = np.concatenate(mark_parts) if mark_parts else np.zeros(0, dtype=np.int64)
        # a table >= 8x the marks keeps collisions (false passes) near 1/8 of the marked fraction
        self.bits = int(min(max(int(8 * len(marks)).bit_length(), 16), 28))
        self.table = np.zeros(1 << self.bits, dtype=np.uint8)
        self.table[self._hash(marks)] = 1

    def _zone(self, dec):
        t = np.asarray(dec, dtype=float) + 90.0
        t *= 1.0 / self.h
        z = t.astype(np.int64)
        return np.clip(z, 0, self.nzone - 1, out=z)

    def _hash(self, cell):
        # Fibonacci hashing: the top bits of cell x 2^64/phi (wrapping uint64 product)
        h = np.asarray(cell, dtype=np.int64).view(np.uint64)
        h *= np.uint64(0x9E3779B97F4A7C15)
        h >>= np.uint64(64 - self.bits)
        return h.view(np.int64)

    def cells(self, ra, dec) -> np.ndarray:
        """Cell id of each position (RA in [0, 360) after reduction)."""
        ra = np.asarray(ra, dtype=float)
        if not (len(ra) and ra.min() >= 0 and ra.max() < 360.0):
            ra = np.mod(ra, 360.0)
        z = self._zone(dec)
        t = ra * self.inv_width[z]
        b = t.astype(np.int64)  # floor: RA >= 0
        del t
        b += self.offset[z]
        return b

    def __call__(self, ra2, dec2) -> np.ndarray:
        """Boolean mask: True for secondaries that may have a primary within the radius."""
        return self.table[self._hash(self.cells(ra2, dec2))].view(bool)


#: build the cell mask when the secondaries outnumber the primaries this many times
_MASK_RATIO = 4


def near_rows(ra1, dec1, ra2, dec2, radius_arcsec: float) -> np.ndarray | None:
    """Rows of the secondary catalogue that can pair with some primary (:class:`CellMask`), or
    None when filtering would not pay (few secondaries per primary, or most of them pass)."""
    n1, n2 = len(ra1), len(ra2)
    if n2 < 100_000 or n2 < _MASK_RATIO * n1:
        return None
    keep = np.flatnonzero(CellMask(ra1, dec1, radius_arcsec)(ra2, dec2))
    return keep if len(keep) < 0.7 * n2 else None


def _chord(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Chord length between unit vectors, 2 sqrt(hav psi), from the haversine formula."""
    d1, d2 = np.radians(dec1), np.radians(dec2)
    hav = np.sin(0.5 * (d2 - d1)) ** 2 + np.cos(d1) * np.cos(d2) * np.sin(0.5 * np.radians(ra2 - ra1)) ** 2
    return 2.0 * np.sqrt(hav)


def _chunk_pairs(index: ZoneIndex, ra1, dec1, rows1, r_chord):
    i, j = index.candidates(ra1[rows1], dec1[rows1])
    c = _chord(ra1[rows1][i], dec1[rows1][i], index.ra[j], index.dec[j])
    keep = c <= r_chord
    return rows1[i[keep]], j[keep], c[keep]


def n_stripes(n1: int, chunk: int | None) -> int:
    """Number of primary chunks (progress-bar steps per counterpart catalogue)."""
    chunk = chunk or DEFAULT_CHUNK
    return max(1, -(-n1 // chunk))


def _chunks(n1: int, chunk: int | None):
    step = chunk or DEFAULT_CHUNK
    for start in range(0, n1, step):
        yield np.arange(start, min(start + step, n1))


def search_around(
    ra1,
    dec1,
    ra2,
    dec2,
    radius_arcsec: float,
    *,
    chunk: int | None = None,
    progress: Callable[[int], None] | None = None,
    index: ZoneIndex | None = None,
) -> Pairs:
    """All (i, j) with separation(primary i, secondary j) <= radius, as astropy's
    ``search_around_sky(primary, secondary, radius)`` finds them.

    ``progress`` is called with 1 after each chunk of primaries (for a progress bar)."""
    ra1, dec1, ra2, dec2 = (np.asarray(x, dtype=float) for x in (ra1, dec1, ra2, dec2))
    if not radius_arcsec > 0:
        raise DataError(f"the match radius must be positive, got {radius_arcsec} arcsec")
    r_chord = 2.0 * np.sin(0.5 * radius_arcsec * ARCSEC)
    out1, out2, outd = [], [], []
    rows2 = None
    if len(ra1) and len(ra2):
        if index is None:
            rows2 = near_rows(ra1, dec1, ra2, dec2, radius_arcsec)
            index = (
                ZoneIndex(ra2, dec2, radius_arcsec)
                if rows2 is None
                else ZoneIndex(ra2[rows2], dec2[rows2], radius_arcsec)
            )
        # primaries in (zone, RA) order: the look-ups then walk the sorted keys monotonically,
        # which keeps searchsorted in cache (x30 faster than random order at 1e6 x 1e7)
        o1 = np.argsort((index._zone(dec1) << index.ra_bits) | index._ra_q(np.mod(ra1, 360.0)))
        with ThreadPoolExecutor(n_threads()) as ex:  # chunks are independent; results in order
            for a, b, c in ex.map(lambda c: _chunk_pairs(index, ra1, dec1, o1[c], r_chord), _chunks(len(ra1), chunk)):
                out1.append(a)
                out2.append(b)
                outd.append(c)
                if progress:
                    progress(1)
    if not out1:
        e = np.zeros(0, dtype=np.int64)
        return Pairs(e, e.copy(), np.zeros(0))
    i1 = np.concatenate(out1).astype(np.int64, copy=False)
    i2 = np.concatenate(out2).astype(np.int64, copy=False)
    if rows2 is not None:
        i2 = rows2[i2]
    sep = chord_to_arcsec(np.concatenate(outd))
    order = _pair_order(i1, sep, i2)
    return Pairs(i1[order], i2[order], sep[order])


def _pair_order(i1: np.ndarray, sep: np.ndarray, i2: np.ndarray) -> np.ndarray:
    """``np.lexsort((i2, sep, i1))`` as one argsort of int64 keys (i1 << s) | q(sep), with q a
    monotone quantisation of sep to s <= 52 bits.  Equal keys (equal or all but equal
    separations of one primary) fall back to the lexsort, so the order is the same."""
    n = len(i1)
    sbits = min(52, 62 - int(i1.max()).bit_length()) if n else 0
    smax = float(sep.max()) if n else 0.0
    if n < 2 or sbits < 24 or not (np.isfinite(smax) and smax > 0):
        return np.lexsort((i2, sep, i1))
    top = (1 << sbits) - 1
    q = (sep * (top / smax)).astype(np.int64)
    key = i1 << sbits
    key |= np.minimum(q, top, out=q)
    order = np.argsort(key)
    sk = key[order]
    if (sk[1:] == sk[:-1]).any():
        return np.lexsort((i2, sep, i1))
    return order


def nearest(
    ra1,
    dec1,
    ra2,
    dec2,
    radius_arcsec: float | None = None,
    *,
    chunk: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
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
    p = search_around(ra1, dec1, ra2, dec2, radius_arcsec, chunk=chunk, progress=progress)
    first = np.r_[True, p.idx1[1:] != p.idx1[:-1]] if len(p) else np.zeros(0, dtype=bool)
    idx[p.idx1[first]] = p.idx2[first]
    sep[p.idx1[first]] = p.sep[first]
    return idx, sep
