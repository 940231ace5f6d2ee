"""Event lists -> candidate table for ``xmmtools variability events`` (EXOD-style search)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from xmmtools.tables.model import NewColumn
from xmmtools.variability.events.eventlist import XMM_MJDREF, read_events, read_hot_pixels, sky_to_radec
from xmmtools.variability.events.exod import ExodConfig, exod_candidates, hot_pixel_flags, merge_cameras

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


def search_events(
    paths: Sequence[str],
    cfg: ExodConfig,
    *,
    gti=None,
    pi_range=(500.0, 12000.0),
    merge_radius: float = 10.0,
    hot_pixel_files: Mapping[str, str] | None = None,
) -> pa.Table:
    """Search each event list, convert positions to RA/DEC, flag hot pixels, merge cameras."""
    cands = per_file_candidates(
        paths,
        lambda ev, meta: exod_candidates(ev, meta["GTI"], meta["CAMERA"], cfg),
        gti=gti,
        pi_range=pi_range,
        hot_pixel_files=hot_pixel_files,
    )
    rows = [_merge([cands[i] for i in g]) for g in merge_cameras(cands, merge_radius)]
    rows.sort(key=lambda r: -r["SIGNIF"])
    return candidate_table(
        rows,
        CANDIDATE_COLUMNS,
        {"CAMERAS": pa.string(), "OBS_ID": pa.string(), "HOT_PIXEL": pa.bool_()},
        ("N_CAMERAS", "CCDNR", "RAWX", "RAWY", "COUNTS_PEAK", "COUNTS"),
    )


def per_file_candidates(
    paths: Sequence[str],
    find: Callable[[dict, dict], list],
    *,
    gti=None,
    pi_range=(500.0, 12000.0),
    hot_pixel_files: Mapping[str, str] | None = None,
) -> list[dict]:
    """Read each event list (:func:`read_events`), run ``find(events, metadata)`` (a list of dicts
    with sky X/Y and CCDNR/RAWX/RAWY of the pixel to check), and add RA/DEC, CAMERA, OBS_ID,
    FILE and HOT_PIXEL (4XMM-DR14 lists, :func:`hot_pixel_flags`)."""
    hot = {cam: read_hot_pixels(p) for cam, p in (hot_pixel_files or {}).items()}
    cands = []
    for path in paths:
        ev, meta = read_events(path, gti=gti, pi_range=pi_range)
        found = find(ev, meta)
        flags = hot_pixel_flags(found, meta["CAMERA"], meta["REVOLUT"], hot.get(meta["CAMERA"]))
        for c, f in zip(found, flags, strict=True):
            ra, dec = sky_to_radec(c["X"], c["Y"], meta["WCS"])
            c.update(
                RA=float(ra),
                DEC=float(dec),
                CAMERA=meta["CAMERA"],
                OBS_ID=meta["OBS_ID"],
                HOT_PIXEL=f,
                FILE=os.path.basename(path),
                MJDREF=meta["MJDREF"],
            )
            cands.append(c)
    return cands


def candidate_table(
    rows: Sequence[dict], columns: Mapping[str, tuple], types: Mapping[str, pa.DataType], int_columns: Sequence[str]
) -> pa.Table:
    """Arrow table of the candidate rows with units and descriptions (float64 unless typed);
    TSTART_MJD/TSTOP_MJD (MJD, TT) follow the mission times TSTART/TSTOP."""
    cols = []
    for k, (unit, desc) in columns.items():
        typ = types.get(k, pa.int32() if k in int_columns else pa.float64())
        cols.append(NewColumn(k, pa.array([r[k] for r in rows], typ), unit, desc))
        if k in ("TSTART", "TSTOP"):
            mjd = [r.get("MJDREF", XMM_MJDREF) + r[k] / 86400.0 for r in rows]
            what = "start" if k == "TSTART" else "end"
            cols.append(
                NewColumn(f"{k}_MJD", pa.array(mjd, pa.float64()), "d", f"{what} as MJD (TT): MJDREF + {k}/86400")
            )
    fields, arrays = zip(*(c.to_field_array(len(rows)) for c in cols), strict=True)
    return pa.Table.from_arrays(list(arrays), schema=pa.schema(list(fields)))


def _merge(group: Sequence[dict]) -> dict:
    """One row from the same transient seen by several cameras."""
    first = group[0]
    return {
        **merged_position(group),
        "OBS_ID": first["OBS_ID"],
        "SIGNIF": max(c["SIGNIF"] for c in group),
        "VMAX": max(c["VMAX"] for c in group),
        "TSTART": min(c["TSTART"] for c in group),
        "TSTOP": max(c["TSTOP"] for c in group),
        "COUNTS_PEAK": sum(c["COUNTS_PEAK"] for c in group),
        "COUNTS_MEDIAN": sum(c["COUNTS_MEDIAN"] for c in group),
        "COUNTS": sum(c["COUNTS"] for c in group),
        "CCDNR": first["CCDNR"],
        "RAWX": first["RAWX"],
        "RAWY": first["RAWY"],
        "HOT_PIXEL": any(c["HOT_PIXEL"] for c in group),
    }


def merged_position(group: Sequence[dict]) -> dict:
    """RA, DEC, POSERR, CAMERAS, N_CAMERAS of candidates merged over cameras.

    The position is the inverse-variance weighted mean of the candidates' unit vectors,
    normalised (never of the angles: RA 359.99999 and 0.00001 average to 0, not 180)."""
    from xmmtools.sky import unit_vectors

    w = np.array([1.0 / c["POSERR"] ** 2 if np.isfinite(c["POSERR"]) and c["POSERR"] > 0 else 1.0 for c in group])
    ra = np.array([c["RA"] for c in group], float)
    dec = np.array([c["DEC"] for c in group], float)
    v = np.sum(w[:, None] * unit_vectors(ra, dec), axis=0)
    v /= np.linalg.norm(v)
    ra_mean = float(np.degrees(np.arctan2(v[1], v[0])) % 360.0)
    return {
        "RA": 0.0 if ra_mean >= 360.0 else ra_mean,
        "DEC": float(np.degrees(np.arcsin(np.clip(v[2], -1.0, 1.0)))),
        "POSERR": float(1.0 / np.sqrt(w.sum())) if len(group) > 1 else group[0]["POSERR"],
        "CAMERAS": "+".join(sorted({c["CAMERA"] for c in group}, key=["PN", "M1", "M2"].index)),
        "N_CAMERAS": len({c["CAMERA"] for c in group}),
        "MJDREF": group[0].get("MJDREF", XMM_MJDREF),
    }
