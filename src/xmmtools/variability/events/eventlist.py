"""Read XMM-Newton EPIC event lists and hot-pixel lists for the EXOD-style search (astropy)."""

from __future__ import annotations

import csv
import math
import os
from typing import Any

import numpy as np

from xmmtools.errors import DataError
from xmmtools.variability.gti import event_file_gti, inside_gti
from xmmtools.variability.short.lightcurves import CAMERA

EVENT_COLUMNS = ("TIME", "RAWX", "RAWY", "CCDNR", "X", "Y", "PI", "PATTERN", "FLAG")

#: FLAG masks of the SAS selection macros when the event list's header does not define them:
#: #XMMEA_EM = (FLAG & 0x766ba000) == 0 (the XMMEA_EM keyword SAS writes into MOS event lists,
#: e.g. P0001730201M1S002MIEVLI); for pn without an XMMEA_EP keyword FLAG == 0 (every bit), the
#: stricter pipeline selection.
DEFAULT_FLAG_MASK = {"M1": 0x766BA000, "M2": 0x766BA000, "PN": 0xFFFFFFFF}
#: PI range (eV) of EXOD2 (Khan et al. 2025, A&A 697, A50, Sect. 2.1; nx1/EXOD2 defaults)
EXOD2_PI_RANGE = (200.0, 12000.0)


def flag_mask(header, camera: str) -> int:
    """FLAG bit mask of #XMMEA_EP (pn) / #XMMEA_EM (MOS): parsed from the event list's own
    ``XMMEA_EP`` / ``XMMEA_EM`` keyword ('(FLAG & 0x766ba000) == 0'), else
    :data:`DEFAULT_FLAG_MASK`."""
    import re

    key = "XMMEA_EP" if camera == "PN" else "XMMEA_EM"
    m = re.search(r"FLAG\s*&\s*(0x[0-9a-fA-F]+)", str(header.get(key, "")))
    return int(m.group(1), 16) if m else DEFAULT_FLAG_MASK[camera]


def read_events(
    path: str,
    *,
    gti: np.ndarray | None = None,
    pi_range=EXOD2_PI_RANGE,
    max_pattern: int | None = None,
    flag_filter: bool = True,
) -> tuple[dict, dict]:
    """Events (arrays, time-sorted, inside the GTIs and the PI range) and metadata.

    Filtered as the pipelines and EXOD2 do (Khan et al. 2025, A&A 697, A50, Sect. 2.1), so a raw
    pipeline list gives the same events as a cleaned one: FLAG passing #XMMEA_EP (pn) /
    #XMMEA_EM (MOS) (:func:`flag_mask`; ``flag_filter=False`` skips it), PATTERN <= 4 (pn) or 12
    (MOS) unless ``max_pattern`` is given, PI in ``pi_range`` (eV).
    GTIs: ``gti`` if given (e.g. a flare-filtered GTI file; it also sets the window grid, as
    in EXOD), else every GTI table of the file: the union of the STDGTInn extensions (one per
    CCD) intersected with the flare-filter GTI0xxxx tables (:func:`event_file_gti`).
    Metadata: CAMERA, OBS_ID, REVOLUT, the sky WCS keywords, GTI (the one used), FILE_GTI (the
    file's own) and N_FLAGGED (events removed by the FLAG test).
    """
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            if "EVENTS" not in hdul:
                raise DataError(f"{path}: no EVENTS extension (not an XMM event list)")
            h = hdul["EVENTS"]
            names = {c.upper() for c in h.columns.names}
            miss = [c for c in EVENT_COLUMNS if c not in names and c not in ("PI", "PATTERN", "FLAG")]
            if miss:
                raise DataError(f"{path}: EVENTS has no column {', '.join(miss)}")
            d = {c: np.asarray(h.data[c]) for c in EVENT_COLUMNS if c in names}
            hdr = {**dict(hdul[0].header), **dict(h.header)}
            own = event_file_gti(hdul)
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
    flagged = np.zeros(len(t), bool)
    if flag_filter and "FLAG" in d:
        flagged = (d["FLAG"].astype(np.int64) & flag_mask(hdr, camera)) != 0
        keep &= ~flagged
    d.pop("FLAG", None)
    order = np.argsort(t[keep], kind="stable")
    ev = {c: v[keep][order] for c, v in d.items()}
    wcs = {k: hdr[k] for k in ("REFXCRPX", "REFXCRVL", "REFXCDLT", "REFYCRPX", "REFYCRVL", "REFYCDLT") if k in hdr}
    meta: dict[str, Any] = {
        "CAMERA": camera,
        "OBS_ID": str(hdr.get("OBS_ID", "")).strip(),
        "GTI": g,
        "FILE_GTI": own,
        "N_FLAGGED": int(flagged.sum()),
        "REVOLUT": int(hdr["REVOLUT"]) if str(hdr.get("REVOLUT", "")).strip().isdigit() else None,
        "MJDREF": mjdref(hdr),
        "WCS": wcs,
    }
    if len(wcs) < 6:
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
