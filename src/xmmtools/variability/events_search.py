"""Event lists -> candidate table for ``xmmtools variability events`` (EXOD-style search)."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import pyarrow as pa

from xmmtools.tables import NewColumn
from xmmtools.variability.events import read_events, read_hot_pixels, sky_to_radec
from xmmtools.variability.exod import ExodConfig, exod_candidates, hot_pixel_flags, merge_cameras

CANDIDATE_COLUMNS = {
    "RA": ("deg", "candidate position: mean of its events in the brightest window (weighted over cameras)"),
    "DEC": ("deg", "candidate position"),
    "POSERR": ("arcsec", "1-sigma statistical position error (standard error of the event positions)"),
    "CAMERAS": ("", "cameras that detected it, e.g. M1+M2"),
    "N_CAMERAS": ("", "number of cameras"),
    "OBS_ID": ("", "XMM-Newton observation id"),
    "SIGNIF": ("", "best box sum of V over the threshold DL*b^2*median(V) (> 1: detected)"),
    "VMAX": ("", "largest pixel variability V = max(Cmax-Cmed, |Cmin-Cmed|)/Cmed"),
    "TSTART": ("s", "start of the brightest time window (mission time)"),
    "TSTOP": ("s", "end of the brightest time window (mission time)"),
    "COUNTS_PEAK": ("count", "events in the candidate pixels in the brightest window (summed over cameras)"),
    "COUNTS_MEDIAN": ("count", "median events per window in the candidate pixels (summed over cameras)"),
    "COUNTS": ("count", "events in the candidate pixels over the observation (summed over cameras)"),
    "CCDNR": ("", "CCD of the most variable pixel (first camera)"),
    "RAWX": ("", "raw X of the most variable pixel (first camera)"),
    "RAWY": ("", "raw Y of the most variable pixel (first camera)"),
    "HOT_PIXEL": ("", "the most variable pixel is within 1 pixel of a listed hot pixel/column"),
}


def search_events(paths: Sequence[str], cfg: ExodConfig, *, gti=None, pi_range=(500.0, 12000.0),
                  merge_radius: float = 10.0, hot_pixel_files: Mapping[str, str] | None = None) -> pa.Table:
    """Search each event list, convert positions to RA/DEC, flag hot pixels, merge cameras."""
    hot = {cam: read_hot_pixels(p) for cam, p in (hot_pixel_files or {}).items()}
    cands = []
    for path in paths:
        ev, meta = read_events(path, gti=gti, pi_range=pi_range)
        found = exod_candidates(ev, meta["GTI"], meta["CAMERA"], cfg)
        flags = hot_pixel_flags(found, meta["CAMERA"], meta["REVOLUT"], hot.get(meta["CAMERA"]))
        for c, f in zip(found, flags):
            ra, dec = sky_to_radec(c["X"], c["Y"], meta["WCS"])
            c.update(RA=float(ra), DEC=float(dec), CAMERA=meta["CAMERA"], OBS_ID=meta["OBS_ID"], HOT_PIXEL=f,
                     FILE=os.path.basename(path))
            cands.append(c)
    rows = [_merge([cands[i] for i in g]) for g in merge_cameras(cands, merge_radius)]
    rows.sort(key=lambda r: -r["SIGNIF"])
    cols = []
    for k, (unit, desc) in CANDIDATE_COLUMNS.items():
        vals = [r[k] for r in rows]
        typ = {"CAMERAS": pa.string(), "OBS_ID": pa.string(), "HOT_PIXEL": pa.bool_()}.get(
            k, pa.int32() if k in ("N_CAMERAS", "CCDNR", "RAWX", "RAWY", "COUNTS_PEAK", "COUNTS") else pa.float64())
        cols.append(NewColumn(k, pa.array(vals, typ), unit, desc))
    fields, arrays = zip(*(c.to_field_array(len(rows)) for c in cols))
    return pa.Table.from_arrays(list(arrays), schema=pa.schema(list(fields)))


def _merge(group: Sequence[dict]) -> dict:
    """One row from the same transient seen by several cameras: inverse-variance mean position."""
    w = np.array([1.0 / c["POSERR"] ** 2 if np.isfinite(c["POSERR"]) and c["POSERR"] > 0 else 1.0 for c in group])
    ra = np.array([c["RA"] for c in group])
    dec = np.array([c["DEC"] for c in group])
    first = group[0]
    return {
        "RA": float(np.sum(w * ra) / w.sum()), "DEC": float(np.sum(w * dec) / w.sum()),
        "POSERR": float(1.0 / np.sqrt(w.sum())) if len(group) > 1 else first["POSERR"],
        "CAMERAS": "+".join(sorted({c["CAMERA"] for c in group}, key=["PN", "M1", "M2"].index)),
        "N_CAMERAS": len({c["CAMERA"] for c in group}), "OBS_ID": first["OBS_ID"],
        "SIGNIF": max(c["SIGNIF"] for c in group), "VMAX": max(c["VMAX"] for c in group),
        "TSTART": min(c["TSTART"] for c in group), "TSTOP": max(c["TSTOP"] for c in group),
        "COUNTS_PEAK": sum(c["COUNTS_PEAK"] for c in group), "COUNTS_MEDIAN": sum(c["COUNTS_MEDIAN"] for c in group),
        "COUNTS": sum(c["COUNTS"] for c in group), "CCDNR": first["CCDNR"], "RAWX": first["RAWX"],
        "RAWY": first["RAWY"], "HOT_PIXEL": any(c["HOT_PIXEL"] for c in group),
    }
