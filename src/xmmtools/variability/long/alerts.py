"""STONKS alerts (Quintin et al. 2024, Sect. 2.5): a new detection against the history of its source.

Owns the alert rules (:func:`stonks_alerts`: 'First Detection', 'High Flux State', 'Low Flux
State', 'Past Variability'), the alert table with its fields (:func:`alerts_table`), the
catalogue's own variability columns and short-term history attached to an alert, and the
JSON-ready alert records (:func:`alert_records`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from xmmtools.columns import resolve
from xmmtools.tables.model import field_meta, to_numpy
from xmmtools.variability.long.epochs import Epochs, Sources
from xmmtools.variability.long.statistics import FLAG_AMBIGUOUS, FLAG_NO_ERROR, group_extreme, long_term_stats, take

ALERT_TYPES = ("First Detection", "High Flux State", "Low Flux State", "Past Variability")


# =========================================================================================
# 3. Alerts
# =========================================================================================


@dataclass
class Alerts:
    """One entry per source with a new detection (``new`` >= 0); ``type`` '' when no alert."""

    new: np.ndarray  # epoch index of the new detection per source, -1 if none
    type: np.ndarray  # alert type per source ('' = no alert)
    ratio: np.ndarray  # pessimistic ratio over history + new detection
    hist_n_det: np.ndarray
    hist_n_ul: np.ndarray
    hist_flux_max: np.ndarray  # max flux of the historical detections
    hist_flux_min: np.ndarray  # min flux of the historical detections
    hist_ul_min: np.ndarray  # lowest historical upper limit
    hist_mjd_first: np.ndarray


def stonks_alerts(source, flux, err, is_ul, mjd, new, n_sources: int, threshold: float = 5.0) -> Alerts:
    """Classify each source's new detection against its history (Quintin+2024, Sect. 2.5).

    ``new`` gives, per source, the epoch index of its new detection (-1: no new detection).  The
    history is every other epoch of the source observed before it (MJD strictly smaller).  An
    alert is raised when the pessimistic ratio of history + new detection exceeds
    ``threshold``; its type, in this order of precedence:

    * 'First Detection': no historical detection, and the lowest upper limit
      UL_min < (F - sigma)/threshold;
    * 'High Flux State': F - sigma above the largest historical detected flux;
    * 'Low Flux State': F + sigma below both the smallest historical detected flux and the lowest
      historical upper limit;
    * 'Past Variability': the history itself varies by more than the threshold (the new
      detection is neither extreme).
    """
    src = np.asarray(source, np.int64)
    f = np.asarray(flux, float)
    e = np.nan_to_num(np.asarray(err, float), nan=0.0)
    ul = np.asarray(is_ul, bool)
    t = np.asarray(mjd, float)
    new = np.asarray(new, np.int64)
    has_new = new >= 0
    t_new = take(t, new)
    f_new = take(f, new)
    e_new = take(e, new)
    epoch = np.arange(len(f))
    with np.errstate(invalid="ignore"):
        hist = (t < t_new[src]) & (epoch != new[src]) & np.isfinite(f)
    keep = hist | (epoch == new[src])
    s = long_term_stats(src[keep], f[keep], e[keep], ul[keep], t[keep], n_sources, threshold)
    hd = hist & ~ul
    hu = hist & ul
    h_max = take(f, group_extreme(src, np.where(hd, f, np.nan), n_sources, largest=True))
    h_min = take(f, group_extreme(src, np.where(hd, f, np.nan), n_sources, largest=False))
    u_min = take(f, group_extreme(src, np.where(hu, f, np.nan), n_sources, largest=False))
    n_hd = np.bincount(src[hd], minlength=n_sources)
    n_hu = np.bincount(src[hu], minlength=n_sources)
    first = take(t, group_extreme(src, np.where(hist, t, np.nan), n_sources, largest=False))
    alert = has_new & (n_hd + n_hu > 0) & (np.nan_to_num(s.ratio) > threshold)
    with np.errstate(invalid="ignore"):
        first_det = (n_hd == 0) & (n_hu > 0) & (u_min < (f_new - e_new) / threshold)
        high = (n_hd > 0) & (f_new - e_new > h_max)
        low = f_new + e_new < np.fmin(h_min, u_min)
    kind = np.select([first_det, high, low], list(ALERT_TYPES[:3]), default=ALERT_TYPES[3])
    kind = np.where(alert, kind, "")
    return Alerts(new, kind.astype(object), np.where(has_new, s.ratio, np.nan), n_hd, n_hu, h_max, h_min, u_min, first)


def alerts_table(
    table: pa.Table,
    ep: Epochs,
    sources: Sources,
    a: Alerts,
    flags: np.ndarray,
    user_map: Mapping[str, str] | None = None,
) -> pa.Table:
    """One row per alert with the fields of a STONKS alert (Quintin+2024 Sect. 2.5, Fig. 4)."""
    idx = np.flatnonzero(a.type != "")
    new = a.new[idx]
    warnings = []
    for i, j in zip(idx, new, strict=True):
        w = []
        if ep.spectral_warning[j]:
            w.append(f"spectral shape: HR={ep.hr[j]:.2f} outside the Gamma 0.5-2.5 range")
        if flags[i] & FLAG_AMBIGUOUS:
            w.append("ambiguous archival match")
        if flags[i] & FLAG_NO_ERROR:
            w.append("an epoch has no flux error")
        warnings.append("; ".join(w))
    cols = {
        sources.key_name: pa.array(sources.key[idx].tolist()),
        "RA": pa.array(sources.ra[idx]),
        "DEC": pa.array(sources.dec[idx]),
        "ALERT_TYPE": pa.array(a.type[idx].astype(str).tolist(), pa.string()),
        "LT_VAR_RATIO": pa.array(a.ratio[idx]),
        "NEW_MJD": pa.array(ep.mjd[new]),
        "NEW_CATALOGUE": pa.array(ep.catalogue[new].astype(str).tolist(), pa.string()),
        "NEW_FLUX": pa.array(ep.flux[new]),
        "NEW_FLUX_ERR": pa.array(ep.err[new]),
        "NEW_HR": pa.array(ep.hr[new]),
        "HIST_N_DET": pa.array(a.hist_n_det[idx].astype(np.int32)),
        "HIST_N_UL": pa.array(a.hist_n_ul[idx].astype(np.int32)),
        "HIST_FLUX_MAX": pa.array(a.hist_flux_max[idx]),
        "HIST_FLUX_MIN": pa.array(a.hist_flux_min[idx]),
        "HIST_UL_MIN": pa.array(a.hist_ul_min[idx]),
        "HIST_MJD_FIRST": pa.array(a.hist_mjd_first[idx]),
    }
    var = short_term_history(table, ep, sources, new_rows=new, idx=idx, user_map=user_map)
    if var is not None:
        cols["HIST_VAR_FLAG"] = pa.array(var)
    for name, value in catalogue_variability(table, sources, user_map).items():
        cols[name] = pa.array(value[idx])
    cols["WARNINGS"] = pa.array(warnings, pa.string())
    units = {"RA": "deg", "DEC": "deg", "NEW_MJD": "d", "HIST_MJD_FIRST": "d"}
    units.update({k: "erg/cm**2/s" for k in cols if "FLUX" in k and not k.endswith("N_DET")})
    fields = [pa.field(k, v.type, metadata=field_meta(units.get(k), ALERT_FIELDS.get(k, ""))) for k, v in cols.items()]
    return pa.Table.from_arrays(list(cols.values()), schema=pa.schema(fields))


ALERT_FIELDS = {
    "ALERT_TYPE": "First Detection | High Flux State | Low Flux State | Past Variability",
    "LT_VAR_RATIO": "pessimistic ratio over the history and the new detection",
    "NEW_MJD": "MJD of the new detection",
    "NEW_FLUX": "flux of the new detection, 0.1-12 keV",
    "NEW_FLUX_ERR": "1-sigma error of NEW_FLUX",
    "NEW_HR": "hardness ratio of the new detection",
    "HIST_N_DET": "earlier detections (all catalogues)",
    "HIST_N_UL": "earlier upper limits",
    "HIST_FLUX_MAX": "largest earlier detected flux, 0.1-12 keV",
    "HIST_FLUX_MIN": "smallest earlier detected flux, 0.1-12 keV",
    "HIST_UL_MIN": "lowest earlier upper limit, 0.1-12 keV",
    "HIST_MJD_FIRST": "MJD of the first earlier epoch",
    "HIST_VAR_FLAG": "archival short-term variability: an earlier 4XMM detection has VAR_FLAG true",
    "WARNINGS": "spectral-shape, ambiguous-match and missing-error warnings",
    "CAT_VAR_PROB": "input catalogue's inter-observation variability probability of the source (5XMM VAR_PROB)",
    "CAT_FRATIO": "input catalogue's inter-observation flux ratio of the source (5XMM FRATIO)",
    "CAT_FLUXVAR": "input catalogue's inter-observation flux variability of the source (5XMM FLUXVAR)",
}

#: per-source inter-observation variability columns of 5XMM-DR15 (filled in the summary rows)
CATALOGUE_VARIABILITY = ("VAR_PROB", "FRATIO", "FLUXVAR")


def catalogue_variability(
    table: pa.Table, sources: Sources, user_map: Mapping[str, str] | None = None
) -> dict[str, np.ndarray]:
    """The input catalogue's own inter-observation variability per source (5XMM-DR15 VAR_PROB,
    FRATIO, FLUXVAR, filled only in each source's summary row): the finite value of the source's
    rows, NaN where none.  Returned as ``CAT_<name>`` arrays of length n_sources."""
    m = resolve(table.schema.names, list(CATALOGUE_VARIABILITY), user_map)
    out = {}
    for name in CATALOGUE_VARIABILITY:
        if name in m:
            v = to_numpy(table.column(m[name]), float)
            out[f"CAT_{name}"] = take(v, group_extreme(sources.of_row, v, len(sources), largest=True))
    return out


def short_term_history(
    table: pa.Table, ep: Epochs, sources: Sources, *, new_rows, idx, user_map: Mapping[str, str] | None = None
) -> np.ndarray | None:
    """Per alert: whether an earlier detection of the source in ``table`` has VAR_FLAG true
    (4XMM short-term variability, chi^2 probability < 1e-5); None without a VAR_FLAG column."""
    m = resolve(table.schema.names, ["VAR_FLAG"], user_map)
    if "VAR_FLAG" not in m:
        return None
    flag = to_numpy(table.column(m["VAR_FLAG"]), bool)
    own = (ep.origin == "catalogue") & (ep.row >= 0)
    src, t, fl = ep.source[own], ep.mjd[own], flag[ep.row[own]]
    t_new = np.full(len(sources), np.nan)
    t_new[idx] = ep.mjd[new_rows]
    with np.errstate(invalid="ignore"):
        hit = fl & (t < t_new[src])
    any_var = np.zeros(len(sources), bool)
    np.logical_or.at(any_var, src[hit], True)
    return any_var[idx]


def alert_records(alerts: pa.Table, ep: Epochs, sources: Sources) -> list[dict]:
    """Each alert as a JSON-ready dict: the alert fields plus the source's light curve."""
    key = sources.key_name
    pos = {k: i for i, k in enumerate(sources.key.tolist())}
    order = np.lexsort((ep.mjd, ep.source))  # epochs by source, then time
    bounds = np.searchsorted(ep.source[order], np.arange(len(sources) + 1))
    out = []
    for rec in alerts.to_pylist():
        s = pos[rec[key]]
        sel = order[bounds[s] : bounds[s + 1]]
        rec = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in rec.items()}
        rec["light_curve"] = [
            {
                "mjd": _num(ep.mjd[j]),
                "catalogue": str(ep.catalogue[j]),
                "flux": _num(ep.flux[j]),
                "flux_err": _num(ep.err[j]),
                "upper_limit": bool(ep.is_ul[j]),
                "hr": _num(ep.hr[j]),
            }
            for j in sel
        ]
        out.append(rec)
    return out


def _num(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None
