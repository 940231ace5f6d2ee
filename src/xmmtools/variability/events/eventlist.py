"""Read XMM-Newton EPIC event lists and hot-pixel lists for the EXOD-style search (astropy)."""

from __future__ import annotations

import csv
import math
import os

import numpy as np

from xmmtools.errors import DataError
from xmmtools.variability.gti import ccd_gti_union, inside_gti
from xmmtools.variability.short.lightcurves import CAMERA

EVENT_COLUMNS = ("TIME", "RAWX", "RAWY", "CCDNR", "X", "Y", "PI", "PATTERN")


def read_events(
    path: str, *, gti: np.ndarray | None = None, pi_range=(500.0, 12000.0), max_pattern: int | None = None
) -> tuple[dict, dict]:
    """Events (arrays, time-sorted, inside the GTIs and the PI range) and metadata.

    GTIs: ``gti`` if given (e.g. a flare-filtered GTI file; it also sets the window grid, as
    in EXOD), else the union of the file's STDGTInn extensions (one per CCD; each CCD's events
    already obey their own).  PATTERN <= 4 (pn) or 12 (MOS) unless
    ``max_pattern`` is given.  Metadata: CAMERA, OBS_ID, REVOLUT, the sky WCS keywords, GTI (the one used) and
    FILE_GTI (the file's own).
    """
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            if "EVENTS" not in hdul:
                raise DataError(f"{path}: no EVENTS extension (not an XMM event list)")
            h = hdul["EVENTS"]
            names = {c.upper() for c in h.columns.names}
            miss = [c for c in EVENT_COLUMNS if c not in names and c not in ("PI", "PATTERN")]
            if miss:
                raise DataError(f"{path}: EVENTS has no column {', '.join(miss)}")
            d = {c: np.asarray(h.data[c]) for c in EVENT_COLUMNS if c in names}
            hdr = {**dict(hdul[0].header), **dict(h.header)}
            own = ccd_gti_union(hdul)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({' '.join(str(e).split())[:120]})") from None
    camera = CAMERA.get(str(hdr.get("INSTRUME", "")).strip().upper(), "")
    if camera not in ("PN", "M1", "M2"):
        raise DataError(f"{path}: INSTRUME {hdr.get('INSTRUME')!r} is not an EPIC camera")
    g = np.asarray(gti, float) if gti is not None and len(gti) else own
    if not len(g):
        raise DataError(f"{path}: no GTI (give --gti)")
    t = d["TIME"].astype(float)
    keep = inside_gti(t, g)
    if "PI" in d:
        keep &= (d["PI"] >= pi_range[0]) & (d["PI"] <= pi_range[1])
    if "PATTERN" in d:
        keep &= d["PATTERN"] <= (max_pattern if max_pattern is not None else (4 if camera == "PN" else 12))
    order = np.argsort(t[keep], kind="stable")
    ev = {c: v[keep][order] for c, v in d.items()}
    meta = {
        "CAMERA": camera,
        "OBS_ID": str(hdr.get("OBS_ID", "")).strip(),
        "GTI": g,
        "FILE_GTI": own,
        "REVOLUT": int(hdr["REVOLUT"]) if str(hdr.get("REVOLUT", "")).strip().isdigit() else None,
        "MJDREF": mjdref(hdr),
        "WCS": {
            k: hdr[k] for k in ("REFXCRPX", "REFXCRVL", "REFXCDLT", "REFYCRPX", "REFYCRVL", "REFYCDLT") if k in hdr
        },
    }
    if len(meta["WCS"]) < 6:
        raise DataError(f"{path}: no sky WCS keywords (REFXCRVL ...) to give RA/DEC")
    return ev, meta


#: MJD of XMM-Newton mission time 0 (1998-01-01T00:00:00 TT): MJDREF of every XMM event list
XMM_MJDREF = 50814.0


def mjdref(hdr: dict) -> float:
    """MJD (TT) of mission time 0: MJDREF, or MJDREFI + MJDREFF (OGIP), else XMM's 50814."""
    try:
        if "MJDREF" in hdr:
            return float(hdr["MJDREF"])
        if "MJDREFI" in hdr:
            return float(hdr["MJDREFI"]) + float(hdr.get("MJDREFF", 0.0))
    except (TypeError, ValueError):
        pass
    return XMM_MJDREF


def sky_to_radec(x, y, wcs: dict):
    """RA, Dec [deg] of sky pixel coordinates (X, Y) with the event file's TAN projection."""
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crpix = [wcs["REFXCRPX"], wcs["REFYCRPX"]]
    w.wcs.crval = [wcs["REFXCRVL"], wcs["REFYCRVL"]]
    w.wcs.cdelt = [wcs["REFXCDLT"], wcs["REFYCDLT"]]
    ra, dec = w.all_pix2world(np.asarray(x, float), np.asarray(y, float), 1)
    return ra, dec


def read_hot_pixels(path: str) -> dict:
    """4XMM-DR14 hot-pixel list (CCDM1, BAND, M1_RAWX, M1_RAWY1, M1_RAWY2, REV1, REV2) as arrays
    with the camera prefixes removed."""
    if not os.path.exists(path):
        raise DataError(f"--hot-pixels {path}: no such file")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, list] = {}
    for r in rows:
        for k, v in r.items():
            key = k.upper()
            for p in ("PN_", "M1_", "M2_"):
                key = key.replace(p, "")
            key = "CCD" if key.startswith("CCD") else key
            out.setdefault(key, []).append(float(v) if v not in ("", None) else math.nan)
    need = {"CCD", "RAWX", "RAWY1", "RAWY2", "REV1", "REV2"}
    if not need <= set(out):
        raise DataError(f"--hot-pixels {path}: needs columns CCD, RAWX, RAWY1, RAWY2, REV1, REV2")
    return out
