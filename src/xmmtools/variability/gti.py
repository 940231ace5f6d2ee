"""Good time intervals (GTIs), shared by light curves and event lists.

Owns every START/STOP interval operation of the variability stage: reading GTI files and a
FITS file's own GTI extensions, intersecting and merging interval lists, the covered time of
bins and whether event times fall inside.  Intervals are (N, 2) float arrays of seconds.
"""

from __future__ import annotations

import numpy as np

from xmmtools.errors import DataError


def read_gti(path: str) -> np.ndarray:
    """START/STOP pairs [s] from a GTI file (STDGTI*, GTI*, *_GTIS extensions; intersected)."""
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            g = file_gti(hdul)
    except OSError as e:
        raise DataError(f"--gti {path}: cannot read ({' '.join(str(e).split())[:120]})") from None
    if not len(g):
        raise DataError(f"--gti {path}: no GTI extension with START and STOP columns")
    return g


def file_gti(hdul) -> np.ndarray:
    """Intersection of every GTI table in the file (STDGTInn, GTInnnnn, SRC_GTIS, GTI)."""
    gtis = []
    for h in hdul[1:]:
        nm = h.name.upper()
        if (nm.startswith(("STDGTI", "GTI")) or nm == "SRC_GTIS") and getattr(h, "columns", None) is not None:
            names = {c.upper() for c in h.columns.names}
            if {"START", "STOP"} <= names:
                gtis.append(np.column_stack([np.asarray(h.data["START"], float), np.asarray(h.data["STOP"], float)]))
    if not gtis:
        return np.zeros((0, 2))
    out = gtis[0]
    for g in gtis[1:]:
        out = intersect_gti(out, g)
    return out


def intersect_gti(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection of two sorted START/STOP interval lists."""
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i, 0], b[j, 0]), min(a[i, 1], b[j, 1])
        if hi > lo:
            out.append((lo, hi))
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return np.array(out, float).reshape(-1, 2)


def overlap(lo: np.ndarray, hi: np.ndarray, gti: np.ndarray) -> np.ndarray:
    """Seconds of each [lo, hi) covered by the (non-overlapping, sorted) GTIs."""
    g = gti[np.argsort(gti[:, 0])]
    cum = np.concatenate([[0.0], np.cumsum(g[:, 1] - g[:, 0])])

    def covered(t):  # GTI time before t
        k = np.searchsorted(g[:, 0], t, side="right")
        inside = np.where(k > 0, np.clip(t - g[np.maximum(k - 1, 0), 0], 0, None), 0.0)
        inside = np.minimum(inside, np.where(k > 0, g[np.maximum(k - 1, 0), 1] - g[np.maximum(k - 1, 0), 0], 0.0))
        return cum[np.maximum(k - 1, 0)] * (k > 0) + inside

    return covered(hi) - covered(lo)


def ccd_gti_union(hdul) -> np.ndarray:
    """Union of the STDGTInn extensions (one per CCD), or the file's other GTI tables."""
    parts = [
        np.column_stack([np.asarray(h.data["START"], float), np.asarray(h.data["STOP"], float)])
        for h in hdul[1:]
        if h.name.upper().startswith("STDGTI") and getattr(h, "columns", None) is not None
    ]
    if not parts:
        return file_gti(hdul)
    g = np.concatenate(parts)
    g = g[np.argsort(g[:, 0])]
    merged = [list(g[0])]
    for s, e in g[1:]:
        if s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return np.array(merged)


def event_file_gti(hdul) -> np.ndarray:
    """The good time of an EPIC event list: the union of its per-CCD STDGTInn extensions
    intersected with every other GTI table it carries (the flare-filter ``GTI0xxxx`` tables
    that evselect/tabgtigen leave in a cleaned list, ``SRC_GTIS``, ``GTI``) -- every GTI
    table of the file is honoured, as :func:`file_gti` does for light curves (Khan et al.
    2025, A&A 697, A50, Sect. 2: EXOD2 searches the flare-filtered good time only)."""
    g = ccd_gti_union(hdul)
    for h in hdul[1:]:
        nm = h.name.upper()
        if nm.startswith("STDGTI") or getattr(h, "columns", None) is None:
            continue
        if nm.startswith("GTI") or nm == "SRC_GTIS":
            names = {c.upper() for c in h.columns.names}
            if {"START", "STOP"} <= names:
                other = np.column_stack([np.asarray(h.data["START"], float), np.asarray(h.data["STOP"], float)])
                other = other[np.argsort(other[:, 0])]
                g = intersect_gti(g, other) if len(g) else other
    return g


def inside_gti(t: np.ndarray, gti: np.ndarray) -> np.ndarray:
    """True for each time ``t`` inside one of the GTIs (START <= t < STOP)."""
    g = gti[np.argsort(gti[:, 0])]
    k = np.searchsorted(g[:, 0], t, side="right") - 1
    return (k >= 0) & (t < g[np.maximum(k, 0), 1])
