"""Light curves -> table columns: one row per curve, or per-camera columns for a catalogue.

Column names follow 4XMM where the meaning is the same, with an ``XT_`` prefix so recomputed
values never replace catalogue values (``XT_PN_CHI2PROB`` beside 4XMM ``PN_CHI2PROB``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from xmmtools.sky import pair_separation_arcsec
from xmmtools.tables.model import NewColumn
from xmmtools.variability.short import statistics as st
from xmmtools.variability.short.lightcurves import KIND_RANK, LightCurve

CAMERAS = ("PN", "M1", "M2")

#: statistic -> (unit, description); the per-curve table uses XT_<KEY>, the catalogue XT_<CAM>_<KEY>
STAT_COLUMNS: dict[str, tuple[str, str]] = {
    "NBINS": ("", "light-curve bins used (after GTI, FRACEXP and NaN cuts)"),
    "EXPOSURE": ("s", "sum of the bins' effective exposure (FRACEXP x bin width)"),
    "COUNTS": ("count", "gross counts in the source region"),
    "BKG_COUNTS": ("count", "model background counts in the source region"),
    "RATE": ("count/s", "mean net source rate (file's corrections applied, e.g. epiclccorr PSF/vignetting)"),
    "CHI2": ("", "Pearson chi2 of the net counts against a constant, model variance (SAS ekstest)"),
    "DOF": ("", "degrees of freedom of XT_CHI2 (bins - 1)"),
    "CHI2PROB": ("", "chi2 probability that the curve is constant (ekstest definition, as 4XMM *_CHI2PROB)"),
    "CHI2PROB_CAL": ("", "chi2 probability matched to the exact (Haldane 1937) variance of Pearson's sum"),
    "POISPROB": ("", "exact Poisson max-bin probability (Sidak over bins) that the curve is constant"),
    "KSPROB": ("", "Kolmogorov-Smirnov probability of the cumulative counts under a constant rate"),
    "REBINPROB": ("", "exact Poisson probability of the brightest group of bins expecting ~min-counts counts"),
    "VARPROB": ("", "probability of constancy used for the flag (see XT_VARTEST)"),
    "VARTEST": (
        "",
        "test behind XT_VARPROB: chi2 (calibrated), or poisson+ks+rebin (sparse: < min-counts per bin; Bonferroni)",
    ),
    "VAR_FLAG": ("", "XT_VARPROB below the threshold (default 1e-5, as 4XMM VAR_FLAG)"),
    "FVAR": ("", "fractional rms variability amplitude (Vaughan et al. 2003 eq. 10); null if no excess"),
    "FVARERR": ("", "1-sigma error on XT_FVAR (Vaughan et al. 2003 eq. B2)"),
    "NXS": ("", "normalised excess variance (Vaughan et al. 2003 eqs. 8-9); may be negative"),
    "NXSERR": ("", "1-sigma error on XT_NXS (Vaughan et al. 2003 eq. 11)"),
    "MAXSIG": ("", "largest |residual|/sigma of a bin against the constant model"),
}
FEATURE_COLUMNS: dict[str, tuple[str, str]] = {
    "VN_RATIO": ("", "von Neumann ratio of the net rates (2 for white noise, small for trends)"),
    "STETSON_J": ("", "Stetson J index of consecutive bins (0 for noise, > 0 for correlated excursions)"),
    "SKEW": ("", "skewness of the residuals (D - mu e)/sqrt(V)"),
    "KURT": ("", "excess kurtosis of the residuals"),
    "FRAC3SIG": ("", "fraction of bins more than 3 sigma from the constant model"),
    "LS_PERIOD": ("s", "period of the highest Lomb-Scargle peak"),
    "LS_POWER": ("", "Lomb-Scargle power of that peak (standard normalisation)"),
    "LS_FAP": ("", "false-alarm probability of that peak (Baluev 2008)"),
    "BB_NBLOCKS": ("", "number of Bayesian blocks (computed for candidates only, else null)"),
    "BB_RMAX": ("count/s", "net rate of the brightest Bayesian block (raw counts/s)"),
    "BB_RMIN": ("count/s", "net rate of the faintest Bayesian block (raw counts/s)"),
    "BB_RATIO": ("", "max/min Bayesian-block net rate (null when the faintest block is <= 0)"),
    "BB_TPEAK": ("s", "mission time (TT) of the centre of the brightest block"),
}
SAME_SOURCE_ARCSEC = 2.0
PER_CAMERA = ("CHI2PROB", "VARPROB", "VARTEST", "FVAR", "FVARERR", "NXS", "NXSERR", "NBINS", "EXPOSURE")


@dataclass(frozen=True)
class ShortConfig:
    """Options of the short-term analysis (defaults are the command's)."""

    threshold: float = st.DEFAULT_THRESHOLD
    min_counts: float = st.DEFAULT_MIN_COUNTS
    blocks_pmax: float = 1e-3  # Bayesian blocks only where VARPROB < this
    blocks_p0: float = 0.01
    features: bool = True


@dataclass
class CurveResult:
    lc: LightCurve | None
    path: str
    error: str
    stats: dict


def analyse(lc: LightCurve, cfg: ShortConfig) -> dict:
    """All statistics and features of one curve as a flat dict (keys of STAT/FEATURE_COLUMNS)."""
    res = st.single(
        st.lightcurve_statistics(
            lc.counts, lc.exposure, lc.bkg_counts, lc.bkg_scale, min_counts=cfg.min_counts, threshold=cfg.threshold
        )
    )
    res["VARTEST"] = (st.TEST_SPARSE if res["SPARSE"] else st.TEST_CHI2) if res["USABLE"] else ""
    if math.isfinite(res["RATE"]):
        res["RATE"] *= lc.rate_scale
    feats = {k: math.nan for k in FEATURE_COLUMNS}
    if cfg.features and res["USABLE"]:
        p = curve_products(lc)
        feats.update(st.shape_features(lc.time, p["rate"], p["rate_err"], p["resid"]))
        if res["VARPROB"] < cfg.blocks_pmax:
            feats.update(st.bayesian_block_features(lc.time, lc.counts, lc.exposure, p["bkg_model"], p0=cfg.blocks_p0))
    res.update(feats)
    return res


def curve_products(lc: LightCurve) -> dict[str, np.ndarray]:
    """Per-bin net rate, its model error, residuals and background model of one curve (for
    features and figures)."""
    M = lc.bkg_counts if lc.bkg_counts is not None else np.zeros_like(lc.counts)
    B = st.background_model(M, lc.exposure, lc.bkg_scale) if lc.bkg_counts is not None else np.zeros_like(lc.counts)
    D = lc.counts - lc.bkg_scale * M
    mu = max(D.sum() / lc.exposure.sum(), 0.0)
    V = mu * lc.exposure + B * (1 + lc.bkg_scale)
    with np.errstate(invalid="ignore", divide="ignore"):
        resid = np.where(V > 0, (D - mu * lc.exposure) / np.sqrt(V), 0.0)
    return {
        "rate": D / lc.exposure,
        "rate_err": np.sqrt(V) / lc.exposure,
        "resid": resid,
        "bkg_model": B,
        "bkg_rate": B / lc.exposure,
        "mu": mu,
    }


# -----------------------------------------------------------------------------------------
# one row per light curve
# -----------------------------------------------------------------------------------------


def per_curve_table(results: Sequence[CurveResult], root: str) -> pa.Table:
    """The table written without a catalogue: identification columns + XT_* statistics."""

    def ident(get, default):
        return [get(r.lc) if r.lc is not None else default(i) for i, r in enumerate(results)]

    rel = [os.path.relpath(r.path, root) for r in results]
    guess = [_guess_ident(r.path) for r in results]
    cols = [
        NewColumn("FILE", rel, "", "light-curve file, relative to the --lightcurves folder"),
        NewColumn("OBS_ID", ident(lambda lc: lc.obs_id, lambda i: guess[i][0]), "", "XMM-Newton observation id"),
        NewColumn("CAMERA", ident(lambda lc: lc.camera, lambda i: guess[i][1]), "", "EPIC camera: PN, M1 or M2"),
        NewColumn(
            "SRC_NUM",
            pa.array(ident(lambda lc: lc.src_num, lambda i: None), pa.int32()),
            "",
            "pipeline source number (from the PPS file name or header), null if unknown",
        ),
        NewColumn("EXPID", ident(lambda lc: lc.exp_id, lambda i: ""), "", "exposure id (S001, U002...) when known"),
        NewColumn("SRC_NAME", ident(lambda lc: lc.name, lambda i: ""), "", "source name from the file name"),
        NewColumn(
            "RA",
            ident(lambda lc: lc.ra, lambda i: math.nan),
            "deg",
            "source position (header, region + WCS, or IAU name)",
        ),
        NewColumn("DEC", ident(lambda lc: lc.dec, lambda i: math.nan), "deg", "source position"),
        NewColumn("XT_LC_KIND", ident(lambda lc: lc.kind, lambda i: ""), "", "pps, lccorr or evselect"),
        NewColumn(
            "XT_BKG",
            ident(lambda lc: lc.bkg_source, lambda i: ""),
            "",
            "background used: curve (paired file), backv (BACKV/BACKE columns) or none",
        ),
        NewColumn(
            "XT_BKG_SCALE",
            ident(lambda lc: lc.bkg_scale, lambda i: math.nan),
            "",
            "source/background region area ratio",
        ),
        NewColumn("XT_TIMEDEL", ident(lambda lc: lc.timedel, lambda i: math.nan), "s", "bin width"),
        NewColumn(
            "XT_NDROPPED",
            pa.array(ident(lambda lc: lc.dropped, lambda i: None), pa.int32()),
            "",
            "bins dropped (NaN, FRACEXP below the limit, outside the GTIs)",
        ),
    ]
    cols += stat_columns([r.stats for r in results], "XT_", list(STAT_COLUMNS) + list(FEATURE_COLUMNS))
    cols.append(
        NewColumn(
            "XT_STATUS",
            ["ok" if not r.error else r.error for r in results],
            "",
            "ok, or why the file could not be analysed",
        )
    )
    fields, arrays = zip(*(c.to_field_array(len(results)) for c in cols), strict=True)
    return pa.Table.from_arrays(list(arrays), schema=pa.schema(list(fields)))


def stat_columns(stats: Sequence[Mapping | None], prefix: str, keys: Sequence[str], note: str = "") -> list[NewColumn]:
    """NewColumns ``prefix + key`` from a list of result dicts (missing -> null); ``note`` is
    appended to each description (e.g. the camera)."""
    out = []
    for k in keys:
        unit, desc = STAT_COLUMNS.get(k) or FEATURE_COLUMNS[k]
        desc = desc.replace("XT_", prefix) + note
        vals = [s.get(k) if s else None for s in stats]
        if k == "VAR_FLAG":
            arr = pa.array(
                [
                    None if v is None or not s or not s.get("USABLE") else bool(v)
                    for v, s in zip(vals, stats, strict=True)
                ],
                pa.bool_(),
            )
        elif k == "VARTEST":
            arr = pa.array(["" if v is None else v for v in vals], pa.string())
        elif k in ("NBINS",):
            arr = pa.array([None if v is None else int(v) for v in vals], pa.int32())
        else:
            arr = pa.array([math.nan if v is None else float(v) for v in vals], pa.float64())
        out.append(NewColumn(prefix + k, arr, unit, desc))
    return out


def _guess_ident(path: str) -> tuple[str, str]:
    from xmmtools.variability.short.lightcurves import camera_in_name, obsid_in_path

    return obsid_in_path(path), camera_in_name(os.path.basename(path))


# -----------------------------------------------------------------------------------------
# catalogue mode
# -----------------------------------------------------------------------------------------


def normalise_obsid(v) -> str:
    """'XMM 0831790701', 831790701, b'0831790701' -> '0831790701'."""
    if v is None:
        return ""
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and math.isfinite(v)):
        return f"{int(v):010d}"
    m = re.search(r"\d{9,10}", str(v))
    return m.group(0).zfill(10) if m else str(v).strip()


def match_curves(
    obs_id: Sequence[str], src_num, ra, dec, results: Sequence[CurveResult], radius_arcsec: float
) -> dict[str, list[int | None]]:
    """For each catalogue row and camera, the index of its light curve in ``results`` (or None).

    A curve matches a row of the same OBS_ID and camera when both know SRC_NUM and they are
    equal, or else when the curve's position is within ``radius_arcsec`` of the row's (the
    nearest source wins: curves within SAME_SOURCE_ARCSEC of the nearest one are taken as the
    same source).  Among several matching curves of one source the preferred is PPS, then epiclccorr, then evselect,
    then the longest bins, then the smallest XT_VARPROB (several exposures of one camera: the
    4XMM convention of the smallest probability over exposures), then the file name.
    """
    by_key: dict[tuple[str, str], list[tuple[int, LightCurve]]] = {}
    for i, r in enumerate(results):
        if r.lc is not None and r.stats.get("USABLE"):
            by_key.setdefault((r.lc.obs_id, r.lc.camera), []).append((i, r.lc))
    out: dict[str, list[int | None]] = {cam: [None] * len(obs_id) for cam in CAMERAS}
    for row, ob in enumerate(obs_id):
        for cam in CAMERAS:
            cands = []
            for i, lc in by_key.get((ob, cam), []):
                sep = pair_separation_arcsec(ra[row], dec[row], lc.ra, lc.dec) if ra is not None else math.nan
                if src_num is not None and lc.src_num is not None and np.isfinite(src_num[row]):
                    if int(src_num[row]) != lc.src_num:
                        continue
                elif not sep <= radius_arcsec:
                    continue
                p = results[i].stats.get("VARPROB", math.nan)
                cands.append(
                    (
                        0.0 if math.isnan(sep) else sep,
                        KIND_RANK.get(lc.kind, 9),
                        -lc.timedel,
                        2.0 if math.isnan(p) else p,
                        lc.path,
                        i,
                    )
                )
            if cands:
                nearest = min(c[0] for c in cands)
                same_source = [c[1:] for c in cands if c[0] <= nearest + SAME_SOURCE_ARCSEC]
                out[cam][row] = min(same_source)[-1]
    return out


def catalogue_columns(
    matches: Mapping[str, list[int | None]], results: Sequence[CurveResult], nrows: int, root: str
) -> list[NewColumn]:
    """Per-camera XT_<CAM>_* columns, the combination over cameras, and the features of the
    camera with the smallest XT_<CAM>_VARPROB."""
    cols: list[NewColumn] = []
    per_cam: dict[str, list[dict | None]] = {}
    for cam in CAMERAS:
        stats = [results[i].stats if i is not None else None for i in matches[cam]]
        per_cam[cam] = stats
        cols += stat_columns(stats, f"XT_{cam}_", PER_CAMERA, f" [{cam} light curve]")
        cols.append(
            NewColumn(
                f"XT_{cam}_LCFILE",
                ["" if i is None else os.path.relpath(results[i].path, root) for i in matches[cam]],
                "",
                f"{cam} light curve used, relative to the --lightcurves folder",
            )
        )
    best: list[str | None] = []
    chi2min: list[float] = []
    pmin: list[float] = []
    flag: list[bool | None] = []
    ncurves: list[int] = []
    for row in range(nrows):
        have = {cam: s for cam in CAMERAS if (s := per_cam[cam][row]) is not None}
        ncurves.append(len(have))
        if not have:
            best.append(None)
            chi2min.append(math.nan)
            pmin.append(math.nan)
            flag.append(None)
            continue
        cam = min(have, key=lambda c: (np.nan_to_num(have[c]["VARPROB"], nan=2.0), c))
        best.append(cam)
        chi2min.append(
            np.nanmin([h["CHI2PROB"] for h in have.values()])
            if any(np.isfinite(h["CHI2PROB"]) for h in have.values())
            else math.nan
        )
        pmin.append(have[cam]["VARPROB"])
        flag.append(any(bool(h["VAR_FLAG"]) for h in have.values()))
    cols += [
        NewColumn("XT_N_LC", pa.array(ncurves, pa.int16()), "", "number of cameras with a usable light curve"),
        NewColumn("XT_EP_CHI2PROB", chi2min, "", "minimum of XT_PN/M1/M2_CHI2PROB (as 4XMM EP_CHI2PROB)"),
        NewColumn("XT_VARPROB", pmin, "", "minimum of XT_PN/M1/M2_VARPROB"),
        NewColumn(
            "XT_VAR_INST",
            ["" if b is None else b for b in best],
            "",
            "camera with the smallest XT_*_VARPROB (its features are given below)",
        ),
        NewColumn(
            "XT_VAR_FLAG",
            pa.array(flag, pa.bool_()),
            "",
            "any camera's XT_*_VARPROB below the threshold; null without light curves (as 4XMM VAR_FLAG)",
        ),
    ]
    feats = [per_cam[b][row] if b is not None else None for row, b in enumerate(best)]
    cols += stat_columns(feats, "XT_", list(FEATURE_COLUMNS), " [camera XT_VAR_INST]")
    return cols
