"""Long-term variability between epochs and missions, STONKS style (Quintin et al. 2024, A&A 687, A250).

The story, top-down:

1. *Epochs* (:class:`Epochs`): every flux measurement of a source in the common 0.1-12 keV band:
   its 4XMM detections (rows sharing SRCID), rows of other catalogues matched to it
   (:mod:`xmmtools.variability.long.match`) and upper limits (from the sensitivity stage).
   Native fluxes are divided by the band factor f of :mod:`xmmtools.variability.long.bands`.
2. *Ratios* (:func:`long_term_stats`): per source, the pessimistic ratio
   R = max_i(F_i - sigma_i) / min_j(F_j + sigma_j), upper limits entering the minimum with their
   value (Quintin et al. 2024, Sect. 2.4, eq. 1), the optimistic ratio F_max/F_min, the amplitude
   max(F - sigma) - min(F + sigma) and its significance, the number of epochs, the baseline and
   the epochs of the maximum and minimum; ``LT_VARIABLE`` when R > threshold (5).
3. *Alerts* (:func:`stonks_alerts`): a new detection against the history of its source:
   'First Detection', 'High Flux State', 'Low Flux State' or 'Past Variability' (Sect. 2.5).

Functions here take numpy arrays (or an Arrow table plus its resolved column names) and return
arrays; they never open files, print or exit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pyarrow as pa

from xmmtools.columns import detect_kind, ecf, resolve, summary_rows
from xmmtools.errors import ColumnError, DataError
from xmmtools.tables import NewColumn, field_meta, to_numpy
from xmmtools.variability.long.bands import (DEFAULT_MODEL, PowerLaw, factors_for, hardness_range,
                                        lookup_catalogue)
from xmmtools.sky import unit_vectors
from xmmtools.variability.long.match import nearest_within, stonks_match

#: LT_FLAG bits (documented in docs/variability_long.md)
FLAG_NO_ERROR = 1        # an epoch had no flux error: used with sigma = 0 (optimistic)
FLAG_NONPOSITIVE = 2     # a detection with flux <= 0 or NaN: never the maximum; F + sigma > 0 only in the minimum
FLAG_AMBIGUOUS = 4       # an archival match was ambiguous (STONKS 5x score rule failed)
FLAG_SPECTRAL = 8        # an epoch's hardness ratio is outside the Gamma range of its instrument
FLAG_ONE_EPOCH = 16      # fewer than two usable epochs: no ratio

ALERT_TYPES = ("First Detection", "High Flux State", "Low Flux State", "Past Variability")


@dataclass(frozen=True)
class LongTermConfig:
    """Parameters of the method (defaults: STONKS)."""

    threshold: float = 5.0                     # pessimistic ratio above which a source is variable
    model: PowerLaw = DEFAULT_MODEL            # spectrum of the band conversion
    gamma_range: tuple[float, float] = (0.5, 2.5)   # spectral-shape warning range
    radius: float = 20.0                       # arcsec, matching search radius
    score_ratio: float = 5.0                   # best/next positional score for an unambiguous match


@dataclass
class LongTermResult:
    """Everything the stage computes: per-row columns, the alerts and the light curves."""

    columns: list[NewColumn]      # one value per input row (per-source values broadcast)
    alerts: pa.Table              # one row per alert
    epochs: Epochs
    sources: Sources
    stats: SourceStats
    unmatched: dict[str, int]     # rows of each auxiliary table that belong to no source
    alerts_new: np.ndarray        # per source, epoch index of its new detection (-1: none)


def long_term_variability(table: pa.Table, *, archives: Sequence[tuple[str, pa.Table]] = (),
                          upper_limits: pa.Table | None = None, config: LongTermConfig = LongTermConfig(),
                          catalogue: str = "4XMM", user_map: Mapping[str, str] | None = None,
                          new_since: float | None = None) -> LongTermResult:
    """Long-term variability of every source of ``table`` (a 4XMM detection, stacked, 5XMM or
    generic table) with archival catalogues and upper limits, and the STONKS alerts.

    The new detection of a source is its latest detection in ``table`` (with ``new_since``: only
    if its MJD >= new_since); its history is every earlier epoch from any table.
    """
    sources = sources_of(table, user_map)
    parts = [catalogue_epochs(table, sources, catalogue=catalogue, config=config, user_map=user_map)]
    unmatched: dict[str, int] = {}
    for name, t in archives:
        ep, lost = archive_epochs(t, name, sources, config=config, where=f"archive {name}")
        parts.append(ep)
        unmatched[name] = lost
    if upper_limits is not None:
        ep, lost = upper_limit_epochs(upper_limits, sources, config=config)
        parts.append(ep)
        unmatched["upper-limits"] = lost
    ep = Epochs.concat(parts)
    ns = len(sources)
    stats = long_term_stats(ep.source, ep.flux, ep.err, ep.is_ul, ep.mjd, ns, config.threshold)
    flags = source_flags(ep, stats, ns)
    cat = (ep.origin == "catalogue") & ~ep.is_ul & np.isfinite(ep.flux)
    new = group_extreme(ep.source, np.where(cat, ep.mjd, np.nan), ns, largest=True)
    if new_since is not None:
        new = np.where(take(ep.mjd, new) >= new_since, new, -1)
    alerts = stonks_alerts(ep.source, ep.flux, ep.err, ep.is_ul, ep.mjd, new, ns, config.threshold)
    columns = row_columns(table, ep, sources, stats, flags, config)
    return LongTermResult(columns, alerts_table(table, ep, sources, alerts, flags, user_map), ep, sources,
                          stats, unmatched, alerts.new)


def source_flags(ep: Epochs, stats: SourceStats, n_sources: int) -> np.ndarray:
    """LT_FLAG bits per source from its epochs (see the FLAG_* constants)."""
    det = ~ep.is_ul
    with np.errstate(invalid="ignore"):
        bits = (np.where(det & ~np.isfinite(ep.err), FLAG_NO_ERROR, 0)
                | np.where(det & ~(ep.flux > 0), FLAG_NONPOSITIVE, 0)
                | np.where(ep.ambiguous, FLAG_AMBIGUOUS, 0)
                | np.where(ep.spectral_warning, FLAG_SPECTRAL, 0))
    flags = np.zeros(n_sources, np.int64)
    np.bitwise_or.at(flags, ep.source, bits.astype(np.int64))
    flags |= np.where(np.isnan(stats.ratio), FLAG_ONE_EPOCH, 0)
    return flags.astype(np.int16)


def row_columns(table: pa.Table, ep: Epochs, sources: Sources, s: SourceStats, flags: np.ndarray,
                config: LongTermConfig) -> list[NewColumn]:
    """The per-row output columns: the row's own 0.1-12 keV flux and its source's statistics."""
    r = sources.of_row
    n = table.num_rows
    own = ep.origin == "catalogue"
    flux, err, hr = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    warn = np.zeros(n, bool)
    flux[ep.row[own]], err[ep.row[own]] = ep.flux[own], ep.err[own]
    hr[ep.row[own]], warn[ep.row[own]] = ep.hr[own], ep.spectral_warning[own]
    cat = ep.catalogue.astype(object)

    def lab(i):
        return np.where(i >= 0, cat[np.maximum(i, 0)], "").astype(object)[r] if len(cat) else np.full(n, "", object)

    band = "0.1-12 keV"
    F = "erg/cm**2/s"
    return [
        NewColumn("LT_FLUX", flux, F, f"this detection's flux converted to {band} (STONKS band factor)"),
        NewColumn("LT_FLUX_ERR", err, F, f"1-sigma error of LT_FLUX ({band})"),
        NewColumn("LT_HR", hr, "", "flux hardness ratio (H-S)/(H+S), S 0.2-2 keV, H 2-12 keV (or EP_HR3)"),
        NewColumn("LT_SPEC_WARN", warn, "", f"hardness ratio outside the range of Gamma "
                  f"{config.gamma_range[0]}-{config.gamma_range[1]} power laws: band factors unreliable"),
        NewColumn("LT_N_EPOCHS", s.n_epochs[r].astype(np.int32), "", "number of epochs of the source "
                  "(detections in all catalogues + upper limits)"),
        NewColumn("LT_N_DET", s.n_det[r].astype(np.int32), "", "number of detections of the source"),
        NewColumn("LT_N_UL", s.n_ul[r].astype(np.int32), "", "number of upper limits of the source"),
        NewColumn("LT_VAR_RATIO", s.ratio[r], "", "pessimistic long-term ratio max(F-sigma)/min(F+sigma), "
                  "upper limits in the minimum (Quintin+2024 eq. 1)"),
        NewColumn("LT_VAR_RATIO_OPT", s.ratio_opt[r], "", "optimistic long-term ratio F_max/F_min"),
        NewColumn("LT_AMPL", s.amplitude[r], F, f"amplitude max(F-sigma) - min(F+sigma), {band}"),
        NewColumn("LT_AMPL_SIG", s.significance[r], "", "significance (F_max - F_min)/sqrt(sigma_max^2 + "
                  "sigma_min^2) of the extreme epochs"),
        NewColumn("LT_FLUX_MAX", take(ep.flux, s.i_max)[r], F, f"flux of the epoch with the largest F-sigma ({band})"),
        NewColumn("LT_FLUX_MAX_ERR", take(ep.err, s.i_max)[r], F, "1-sigma error of LT_FLUX_MAX"),
        NewColumn("LT_MJD_MAX", take(ep.mjd, s.i_max)[r], "d", "MJD of the epoch of LT_FLUX_MAX"),
        NewColumn("LT_CAT_MAX", lab(s.i_max), "", "catalogue of the epoch of LT_FLUX_MAX"),
        NewColumn("LT_FLUX_MIN", take(ep.flux, s.i_min)[r], F, f"flux or upper limit of the epoch with the "
                  f"smallest F+sigma ({band})"),
        NewColumn("LT_FLUX_MIN_ERR", take(ep.err, s.i_min)[r], F, "1-sigma error of LT_FLUX_MIN (0 for an upper limit)"),
        NewColumn("LT_MJD_MIN", take(ep.mjd, s.i_min)[r], "d", "MJD of the epoch of LT_FLUX_MIN"),
        NewColumn("LT_CAT_MIN", lab(s.i_min), "", "catalogue of the epoch of LT_FLUX_MIN"),
        NewColumn("LT_MIN_IS_UL", take(ep.is_ul.astype(float), s.i_min, 0.0)[r] > 0, "",
                  "the minimum is an upper limit"),
        NewColumn("LT_BASELINE", s.baseline[r], "d", "time between the first and last epoch"),
        NewColumn("LT_VARIABLE", s.variable[r], "", f"LT_VAR_RATIO > {config.threshold:g}"),
        NewColumn("LT_FLAG", flags[r], "", "bits: 1 missing flux error (sigma=0 used), 2 non-positive flux, "
                  "4 ambiguous archival match, 8 spectral-shape warning, 16 fewer than two epochs"),
    ]


def alerts_table(table: pa.Table, ep: Epochs, sources: Sources, a: Alerts, flags: np.ndarray,
                 user_map: Mapping[str, str] | None = None) -> pa.Table:
    """One row per alert with the fields of a STONKS alert (Quintin+2024 Sect. 2.5, Fig. 4)."""
    idx = np.flatnonzero(a.type != "")
    new = a.new[idx]
    warnings = []
    for i, j in zip(idx, new):
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


def catalogue_variability(table: pa.Table, sources: Sources,
                          user_map: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
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


def short_term_history(table: pa.Table, ep: Epochs, sources: Sources, *, new_rows, idx,
                       user_map: Mapping[str, str] | None = None) -> np.ndarray | None:
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


# =========================================================================================
# 2. Ratios
# =========================================================================================

@dataclass
class SourceStats:
    """Per-source long-term statistics (arrays of length n_sources)."""

    n_det: np.ndarray
    n_ul: np.ndarray
    ratio: np.ndarray
    ratio_opt: np.ndarray
    amplitude: np.ndarray
    significance: np.ndarray
    baseline: np.ndarray
    i_max: np.ndarray      # epoch index of max(F - sigma), -1 if none
    i_min: np.ndarray      # epoch index of min(F + sigma) (detection or upper limit), -1 if none
    variable: np.ndarray

    @property
    def n_epochs(self) -> np.ndarray:
        return self.n_det + self.n_ul


def long_term_stats(source, flux, err, is_ul, mjd, n_sources: int, threshold: float = 5.0) -> SourceStats:
    """Pessimistic and optimistic long-term variability per source (STONKS, Quintin+2024 Sect. 2.4).

    Inputs, one value per epoch: ``source`` (int index 0..n_sources-1), ``flux`` (erg/cm^2/s, common
    band; for an upper limit its value), ``err`` (1 sigma, NaN treated as 0), ``is_ul``, ``mjd`` (d).

    * R = max_i(F_i - sigma_i) / min_j(F_j + sigma_j) over detections i and detections or upper
      limits j (upper limits enter the minimum as their value, sigma = 0) -- Quintin et al. 2024,
      eq. 1.  A numerator <= 0 (no epoch significantly above zero) gives R = 0; R is NaN with
      fewer than two epochs.
    * optimistic ratio F_max / F_min (F_min over positive detections and upper limits);
    * amplitude A = max(F - sigma) - min(F + sigma) (erg/cm^2/s) and its significance
      (F_a - F_b) / sqrt(sigma_a^2 + sigma_b^2) for the epochs a, b attaining the two extremes
      (the XMM2ATHENA/4XMM long-term amplitude significance; sigma_b = 0 for an upper limit);
    * baseline = max(MJD) - min(MJD) (d); variable = R > threshold.
    """
    src = np.asarray(source, dtype=np.int64)
    f = np.asarray(flux, float)
    e = np.nan_to_num(np.asarray(err, float), nan=0.0)
    ul = np.asarray(is_ul, bool)
    t = np.asarray(mjd, float)
    usable = np.isfinite(f)
    det = usable & ~ul
    lower = np.where(det, f - e, np.nan)
    upper = np.where(ul, f, f + e)
    upper = np.where(usable & (upper > 0), upper, np.nan)
    i_max = group_extreme(src, lower, n_sources, largest=True)
    i_min = group_extreme(src, upper, n_sources, largest=False)
    max_lower = take(lower, i_max)
    min_upper = take(upper, i_min)
    n_det = np.bincount(src[det], minlength=n_sources)
    n_ul = np.bincount(src[ul & usable], minlength=n_sources)
    enough = (n_det + n_ul >= 2) & (i_max >= 0) & (i_min >= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(enough, np.maximum(max_lower, 0.0) / min_upper, np.nan)
        f_hi = take(f, group_extreme(src, np.where(det, f, np.nan), n_sources, largest=True))
        f_lo = take(f, group_extreme(src, np.where(usable & (f > 0), f, np.nan), n_sources, largest=False))
        ratio_opt = np.where(enough, f_hi / f_lo, np.nan)
        amplitude = np.where(enough, max_lower - min_upper, np.nan)
        e_a = take(e, i_max)
        e_b = np.where(take(ul.astype(float), i_min) > 0, 0.0, take(e, i_min))
        den = np.hypot(e_a, e_b)
        significance = np.where(enough & (den > 0), (take(f, i_max) - take(f, i_min)) / den, np.nan)
    t_ok = np.where(usable, t, np.nan)
    t_hi = take(t, group_extreme(src, t_ok, n_sources, largest=True))
    t_lo = take(t, group_extreme(src, t_ok, n_sources, largest=False))
    baseline = t_hi - t_lo
    variable = np.nan_to_num(ratio, nan=0.0) > threshold
    return SourceStats(n_det, n_ul, ratio, ratio_opt, amplitude, significance, baseline, i_max, i_min,
                       variable)


def group_extreme(group, values, n_groups: int, *, largest: bool) -> np.ndarray:
    """Index of the largest (or smallest) finite value of each group; -1 for groups without one.

    Vectorised without sorting: the group maxima by ``np.maximum.at``, then the first epoch
    (lowest index) attaining it, by ``np.minimum.at`` over the tied indices.
    """
    values = np.asarray(values, float)
    valid = np.flatnonzero(np.isfinite(values))
    out = np.full(n_groups, -1, dtype=np.int64)
    if valid.size == 0:
        return out
    v = values[valid] if largest else -values[valid]
    g = np.asarray(group)[valid]
    best = np.full(n_groups, -np.inf)
    np.maximum.at(best, g, v)
    hit = v == best[g]
    none = np.iinfo(np.int64).max
    first = np.full(n_groups, none, dtype=np.int64)
    np.minimum.at(first, g[hit], valid[hit])
    return np.where(first == none, -1, first)


def take(values, index, fill=np.nan) -> np.ndarray:
    """values[index] with ``fill`` where index is -1."""
    values = np.asarray(values)
    ok = index >= 0
    out = np.full(len(index), fill, dtype=float)
    out[ok] = values[index[ok]]
    return out


# =========================================================================================
# 3. Alerts
# =========================================================================================

@dataclass
class Alerts:
    """One entry per source with a new detection (``new`` >= 0); ``type`` '' when no alert."""

    new: np.ndarray            # epoch index of the new detection per source, -1 if none
    type: np.ndarray           # alert type per source ('' = no alert)
    ratio: np.ndarray          # pessimistic ratio over history + new detection
    hist_n_det: np.ndarray
    hist_n_ul: np.ndarray
    hist_flux_max: np.ndarray  # max flux of the historical detections
    hist_flux_min: np.ndarray  # min flux of the historical detections
    hist_ul_min: np.ndarray    # lowest historical upper limit
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
        low = (f_new + e_new < np.fmin(h_min, u_min))
    kind = np.select([first_det, high, low], list(ALERT_TYPES[:3]), default=ALERT_TYPES[3])
    kind = np.where(alert, kind, "")
    return Alerts(new, kind.astype(object), np.where(has_new, s.ratio, np.nan), n_hd, n_hu, h_max, h_min,
                  u_min, first)


# =========================================================================================
# 1. Epochs
# =========================================================================================

@dataclass
class Epochs:
    """Long-format light curves: one row per flux measurement or upper limit."""

    source: np.ndarray       # source index (into the catalogue's sources)
    mjd: np.ndarray          # d
    flux: np.ndarray         # erg/cm^2/s, 0.1-12 keV (upper limit: its value)
    err: np.ndarray          # erg/cm^2/s, 1 sigma, 0.1-12 keV (NaN: unknown)
    is_ul: np.ndarray
    catalogue: np.ndarray    # object array of catalogue names
    origin: np.ndarray       # object array: 'catalogue' | 'archive' | 'upper-limit'
    factor: np.ndarray       # band factor used (F_common = F_native / factor)
    hr: np.ndarray           # hardness ratio (NaN if unknown)
    spectral_warning: np.ndarray
    row: np.ndarray          # row in the input catalogue (-1 for archive / upper-limit rows)
    ambiguous: np.ndarray    # came from an ambiguous archival match

    def __len__(self) -> int:
        return len(self.flux)

    @staticmethod
    def concat(parts: Sequence["Epochs"]) -> "Epochs":
        names = [f for f in Epochs.__dataclass_fields__]
        return Epochs(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})

    def select(self, mask) -> "Epochs":
        return Epochs(**{n: getattr(self, n)[mask] for n in Epochs.__dataclass_fields__})


@dataclass
class Sources:
    """The catalogue's sources: key (SRCID or name), mean position and error, row -> source."""

    key: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    poserr: np.ndarray
    of_row: np.ndarray            # source index of every catalogue row
    key_name: str = "SRCID"

    def __len__(self) -> int:
        return len(self.key)


#: canonical names looked up in every input table (4XMM names; resolve() adds aliases)
FLUX_NAMES = ("FLUX", "EP_8_FLUX", "SC_EP_8_FLUX")
UL_NAMES = ("FLUX_UL", "UL_FLUX", "UL_8_FLUX", "EP_8_FLUX_UL")
TIME_NAMES = ("MJD", "MJD_START", "MJD_STOP", "MJD_OBS", "DATE_OBS")
KEY_NAMES = ("SRCID", "IAUNAME", "NAME", "SOURCE_ID")
LABEL_NAMES = ("CATALOGUE", "CATALOG", "INSTRUMENT", "MISSION")
SOFT_BANDS, HARD_BANDS = (1, 2, 3), (4, 5)
#: every canonical column the stage may read from its input (the CLI reads only these, then
#: streams the full table to append the new columns)
INPUT_COLUMNS = (*KEY_NAMES, "RA", "DEC", "POSERR", "SC_RA", "SC_DEC", "SC_POSERR", *FLUX_NAMES,
                 *(f + "_ERR" for f in FLUX_NAMES), "BAND", *LABEL_NAMES, *TIME_NAMES, "HR",
                 *(f"EP_{b}_FLUX" for b in (*SOFT_BANDS, *HARD_BANDS)), "EP_HR3", "N_OBS", "N_CONTRIB",
                 "VAR_FLAG", "DETID", "OBS_ID", "SRC_NUM", "EP_8_DET_ML", "PPS_SRCNUM", "N_EXP", "VAR_PROB",
                 "FRATIO", "FLUXVAR")


def sources_of(table: pa.Table, user_map: Mapping[str, str] | None = None) -> Sources:
    """Group catalogue rows into sources: by SRCID (4XMM detection, stacked and 5XMM tables),
    else IAUNAME/NAME, else one source per row.  Position: SC_RA/SC_DEC/SC_POSERR when present,
    else the inverse-variance weighted mean of the row positions (unit vectors)."""
    names = table.schema.names
    m = resolve(names, [*KEY_NAMES, "RA", "DEC", "POSERR", "SC_RA", "SC_DEC", "SC_POSERR"], user_map)
    keyname = next((k for k in KEY_NAMES if k in m), None)
    n = table.num_rows
    if keyname is None:
        keys, of_row = np.arange(n), np.arange(n)
    else:
        # a row without a key (null SRCID / name) is a source of its own, never grouped with others
        raw = to_numpy(table.column(m[keyname]), None)
        bad = _is_null(raw)
        if raw.dtype.kind == "f":
            raw = np.where(bad, -1.0 - np.arange(n), raw).astype(np.int64)
        elif raw.dtype.kind == "O":
            raw = raw.astype(str)
            raw[bad] = [f"(row {i})" for i in np.flatnonzero(bad)]
        keys, of_row = np.unique(raw, return_inverse=True)
    ns = len(keys)
    rcol, dcol, ecol = (("SC_RA", "SC_DEC", "SC_POSERR") if {"SC_RA", "SC_DEC"} <= set(m)
                        else ("RA", "DEC", "POSERR"))
    if rcol not in m or dcol not in m:
        nan = np.full(ns, np.nan)
        return Sources(keys, nan, nan.copy(), nan.copy(), of_row, keyname or "ROW")
    ra = to_numpy(table.column(m[rcol]), float)
    dec = to_numpy(table.column(m[dcol]), float)
    err = to_numpy(table.column(m[ecol]), float) if ecol in m else np.full(n, np.nan)
    w = 1.0 / np.maximum(np.nan_to_num(err, nan=1.0), 0.1) ** 2
    xyz = unit_vectors(ra, dec) * w[:, None]
    good = np.all(np.isfinite(xyz), axis=1)
    s = np.stack([np.bincount(of_row[good], xyz[good, k], minlength=ns) for k in range(3)], axis=1)
    sw = np.bincount(of_row[good], w[good], minlength=ns)
    with np.errstate(invalid="ignore", divide="ignore"):
        sra = np.degrees(np.arctan2(s[:, 1], s[:, 0])) % 360.0
        sdec = np.degrees(np.arcsin(np.clip(s[:, 2] / np.linalg.norm(s, axis=1), -1, 1)))
        serr = np.where(sw > 0, 1.0 / np.sqrt(sw), np.nan)
    if ecol == "SC_POSERR" or ecol not in m:
        serr = take(err, group_extreme(of_row, np.where(np.isfinite(err), err, np.nan), ns, largest=True))
    return Sources(keys, sra, sdec, serr, of_row, keyname)


def catalogue_epochs(table: pa.Table, sources: Sources, *, catalogue: str = "4XMM",
                     config: LongTermConfig = LongTermConfig(),
                     user_map: Mapping[str, str] | None = None) -> Epochs:
    """Epochs from the input catalogue itself: every detection row (the per-source summary rows
    of stacked 4XMM-DRNs / 5XMM tables are left out: they are not epochs)."""
    kind = detect_kind(table.schema.names)
    rows = np.arange(table.num_rows)
    if kind.name in ("4xmm-stacked", "5xmm"):
        m = resolve(table.schema.names, ["N_OBS", "N_CONTRIB"], user_map)
        nobs = to_numpy(table.column(m["N_OBS"]), float) if "N_OBS" in m else np.full(len(rows), np.nan)
        ncon = to_numpy(table.column(m["N_CONTRIB"]), float) if "N_CONTRIB" in m else None
        rows = rows[~summary_rows(nobs, ncon)]
    ep = measurements(table, catalogue=catalogue, config=config, user_map=user_map, source="input catalogue")
    ep = ep.select(rows)
    ep.source = sources.of_row[rows]
    ep.row = rows
    ep.origin = np.full(len(rows), "catalogue", dtype=object)
    return ep


def archive_epochs(table: pa.Table, name: str, sources: Sources, *, config: LongTermConfig = LongTermConfig(),
                   where: str = "archive") -> tuple[Epochs, int]:
    """Epochs from another catalogue (``--archive NAME=FILE``), matched to the input's sources.

    With RA/DEC the archive's rows are grouped into archival sources (by SRCID/IAUNAME/NAME, else
    one per row) and each input source takes at most one of them by the STONKS rules
    (:func:`~xmmtools.variability.long.match.stonks_match`: the input source is the new
    detection); without RA/DEC rows join on SRCID.  Returns the epochs and the number of archive
    rows that matched no source.
    """
    ep = measurements(table, catalogue=name, config=config, source=where)
    arch = sources_of(table)
    if np.all(np.isnan(arch.ra)):
        if arch.key_name != "SRCID":
            raise ColumnError(f"{where} has neither RA/DEC nor SRCID; cannot attach its rows to sources")
        pos = _lookup(sources.key, arch.key)             # archive source -> input source
        src_of_row = pos[arch.of_row]
        ok = src_of_row >= 0
        out = ep.select(ok)
        out.source = src_of_row[ok]
        return _tag(out, "archive"), int((~ok).sum())
    arch_xmm = np.zeros(len(arch), bool)
    np.logical_or.at(arch_xmm, arch.of_row, _is_xmm(ep.catalogue))
    m = stonks_match(sources.ra, sources.dec, sources.poserr, arch.ra, arch.dec, arch.poserr, arch_xmm,
                     radius=config.radius, score_ratio=config.score_ratio)
    # every (input source, archive row) pair whose archival source the input source matched
    matched_src = np.flatnonzero(m.index >= 0)
    arch_of_src = m.index[matched_src]
    order = np.argsort(arch.of_row, kind="stable")
    starts = np.searchsorted(arch.of_row[order], np.arange(len(arch) + 1))
    counts = starts[arch_of_src + 1] - starts[arch_of_src]
    src_rep = np.repeat(matched_src, counts)
    first = np.repeat(starts[arch_of_src], counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = order[first + within]
    out = ep.select(rows)
    out.source = src_rep
    out.ambiguous = m.ambiguous[src_rep]
    used = np.zeros(table.num_rows, bool)
    used[rows] = True
    return _tag(out, "archive"), int((~used).sum())


def upper_limit_epochs(table: pa.Table, sources: Sources, *, config: LongTermConfig = LongTermConfig(),
                       where: str = "upper-limit table") -> tuple[Epochs, int]:
    """Upper limits: SRCID (or RA/DEC), MJD, FLUX_UL (erg/cm^2/s), BAND (4XMM band number or
    'lo-hi' keV; default band 8 / the catalogue's band), optional CATALOGUE/INSTRUMENT (default
    4XMM) -- the table the sensitivity stage writes for non-detections.  Returns the epochs and
    the number of rows that belong to no source of the input."""
    names = table.schema.names
    m = resolve(names, [*UL_NAMES, "BAND", *LABEL_NAMES, *TIME_NAMES, "SRCID", "RA", "DEC"])
    ulcol = next((c for c in UL_NAMES if c in m), None)
    if ulcol is None:
        raise ColumnError(f"{where} needs an upper-limit column FLUX_UL (erg/cm2/s); it has none of "
                          f"{', '.join(UL_NAMES)}")
    n = table.num_rows
    label = _labels(table, m, "4XMM")
    bands = to_numpy(table.column(m["BAND"]), None) if "BAND" in m else None
    if bands is None and ulcol == "UL_8_FLUX":
        bands = np.full(n, "8", dtype=object)
    value = to_numpy(table.column(m[ulcol]), float)
    factor = _factors(label, bands, config.model)
    mjd = _mjd(table, m, where)
    if "SRCID" not in m and not ("RA" in m and "DEC" in m):
        raise ColumnError(f"{where} needs SRCID or RA/DEC to attach upper limits to sources")
    src = np.full(n, -1, dtype=np.int64)
    amb = np.zeros(n, bool)
    if "SRCID" in m:   # exact join; rows with a null or unknown SRCID fall back to their position
        key = to_numpy(table.column(m["SRCID"]), None)
        null = _is_null(key)
        if sources.key.dtype.kind in "iu":
            key = np.where(null, 0, key).astype(np.int64)
        src = np.where(null, -1, _lookup(sources.key, key))
    rest = np.flatnonzero(src < 0)
    if rest.size and "RA" in m and "DEC" in m:
        ra = to_numpy(table.column(m["RA"]), float)[rest]
        dec = to_numpy(table.column(m["DEC"]), float)[rest]
        src[rest], amb[rest] = nearest_within(ra, dec, sources.ra, sources.dec, sources.poserr, radius=config.radius)
    ok = (src >= 0) & np.isfinite(value)
    ep = Epochs(source=src, mjd=mjd, flux=value / factor, err=np.zeros(n), is_ul=np.ones(n, bool),
                catalogue=label, origin=np.full(n, "upper-limit", dtype=object), factor=factor,
                hr=np.full(n, np.nan), spectral_warning=np.zeros(n, bool), row=np.full(n, -1),
                ambiguous=amb)
    return ep.select(ok), int((~ok).sum())


def measurements(table: pa.Table, *, catalogue: str, config: LongTermConfig, source: str,
                 user_map: Mapping[str, str] | None = None) -> Epochs:
    """Fluxes of every row converted to 0.1-12 keV, with time, label, hardness ratio and the
    spectral-shape warning (source index not yet assigned)."""
    names = table.schema.names
    m = resolve(names, [*FLUX_NAMES, *(f + "_ERR" for f in FLUX_NAMES), "BAND", *LABEL_NAMES, *TIME_NAMES,
                        "HR", *(f"EP_{b}_FLUX" for b in (*SOFT_BANDS, *HARD_BANDS)), "EP_HR3"], user_map)
    fcol = next((c for c in FLUX_NAMES if c in m), None)
    if fcol is None:
        raise ColumnError(f"{source} needs a flux column (one of {', '.join(FLUX_NAMES)}, erg/cm2/s); "
                          "map yours with --columns FLUX=NAME")
    n = table.num_rows
    native = to_numpy(table.column(m[fcol]), float)
    err = (to_numpy(table.column(m[fcol + "_ERR"]), float) if fcol + "_ERR" in m else np.full(n, np.nan))
    label = _labels(table, m, catalogue)
    bands = to_numpy(table.column(m["BAND"]), None) if "BAND" in m else None
    factor = _factors(label, bands, config.model)
    hr, warn = spectral_shape(table, m, label, config)
    return Epochs(source=np.full(n, -1), mjd=_mjd(table, m, source), flux=native / factor, err=err / factor,
                  is_ul=np.zeros(n, bool), catalogue=label, origin=np.full(n, "", dtype=object),
                  factor=factor, hr=hr, spectral_warning=warn, row=np.full(n, -1), ambiguous=np.zeros(n, bool))


def spectral_shape(table: pa.Table, m: Mapping[str, str], label: np.ndarray,
                   config: LongTermConfig) -> tuple[np.ndarray, np.ndarray]:
    """Hardness ratio per row and the STONKS spectral-shape warning.

    HR = (H - S)/(H + S) from band fluxes: 4XMM S = EP_1+EP_2+EP_3 (0.2-2 keV), H = EP_4+EP_5
    (2-12 keV); other catalogues give an ``HR`` column in the soft/hard bands of the factor
    table.  Without band fluxes, a 4XMM EP_HR3 (count rates 1-2 vs 2-4.5 keV) is compared with
    the model range computed with the pn thin-filter ECFs as count-rate weights.  The warning is
    set when HR lies outside the range spanned by Gamma in ``config.gamma_range`` at the model's
    N_H (:func:`~xmmtools.variability.long.bands.hardness_range`), i.e. when the fixed band factors
    may be wrong for that source (Quintin et al. 2024, Sect. 2.2).
    """
    n = table.num_rows
    soft = [f"EP_{b}_FLUX" for b in SOFT_BANDS]
    hard = [f"EP_{b}_FLUX" for b in HARD_BANDS]
    lo, hi = np.full(n, np.nan), np.full(n, np.nan)
    if all(c in m for c in soft + hard):
        s = sum(to_numpy(table.column(m[c]), float) for c in soft)
        h = sum(to_numpy(table.column(m[c]), float) for c in hard)
        with np.errstate(invalid="ignore", divide="ignore"):
            hr = (h - s) / (h + s)
        lo[:], hi[:] = hardness_range((0.2, 2.0), (2.0, 12.0), config.model.nh, config.gamma_range)
    elif "HR" in m:
        hr = to_numpy(table.column(m["HR"]), float)
        for name in np.unique(label.astype(str)):
            cb = lookup_catalogue(name)
            if cb is not None and cb.soft and cb.hard:
                sel = label == name
                lo[sel], hi[sel] = hardness_range(cb.soft, cb.hard, config.model.nh, config.gamma_range)
    elif "EP_HR3" in m:
        hr = to_numpy(table.column(m["EP_HR3"]), float)
        lo[:], hi[:] = hardness_range((1.0, 2.0), (2.0, 4.5), config.model.nh, config.gamma_range,
                                      weights=(ecf("PN", 3), ecf("PN", 4)))
    else:
        return np.full(n, np.nan), np.zeros(n, bool)
    with np.errstate(invalid="ignore"):
        warn = np.isfinite(hr) & np.isfinite(lo) & ((hr < lo) | (hr > hi))
    return hr, warn


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------

def _labels(table: pa.Table, m: Mapping[str, str], default: str) -> np.ndarray:
    """Catalogue name per row: the CATALOGUE (CATALOG, MISSION) column; else an INSTRUMENT
    column whose values name a catalogue of the factor table (EPIC, ACIS, XRT, PSPC, ...), by
    that catalogue's name; else ``default``."""
    col = next((c for c in ("CATALOGUE", "CATALOG", "MISSION") if c in m), None)
    n = table.num_rows
    if col is None and "INSTRUMENT" in m:
        inst = to_numpy(table.column(m["INSTRUMENT"]), None).astype(object)
        out = np.full(n, default, dtype=object)
        for name in set(map(str, inst)):
            cb = lookup_catalogue(name)
            if cb is not None:
                out[inst.astype(str) == name] = cb.catalogue
        return out
    if col is None:
        return np.full(n, default, dtype=object)
    v = to_numpy(table.column(m[col]), None).astype(object)
    bad = np.array([x is None or str(x).strip() == "" for x in v], bool) if n else np.zeros(0, bool)
    v[bad] = default
    return np.array([str(x).strip() for x in v], dtype=object)


def _factors(label: np.ndarray, bands, model: PowerLaw) -> np.ndarray:
    out = np.empty(len(label))
    for name in np.unique(label.astype(str)):
        sel = label == name
        out[sel] = factors_for(name, None if bands is None else np.asarray(bands, dtype=object)[sel],
                               model, int(sel.sum()))
    return out


def _mjd(table: pa.Table, m: Mapping[str, str], where: str) -> np.ndarray:
    """Epoch time (MJD): MJD; else the middle of MJD_START..MJD_STOP; else DATE_OBS (ISO)."""
    col = lambda c: to_numpy(table.column(m[c]), float)  # noqa: E731
    if "MJD" in m:
        return col("MJD")
    if "MJD_START" in m and "MJD_STOP" in m:
        return 0.5 * (col("MJD_START") + col("MJD_STOP"))
    if "MJD_START" in m or "MJD_OBS" in m:
        return col("MJD_START" if "MJD_START" in m else "MJD_OBS")
    if "DATE_OBS" in m:
        raw = to_numpy(table.column(m["DATE_OBS"]), None)
        try:
            dt = np.array([str(x).strip().replace(" ", "T") for x in raw], dtype="datetime64[ms]")
        except ValueError:
            raise DataError(f"{where}: DATE_OBS values are not ISO dates (e.g. {raw[0]!r})") from None
        return (dt - np.datetime64("1858-11-17T00:00:00", "ms")) / np.timedelta64(1, "D")
    raise ColumnError(f"{where} needs an epoch time column (one of {', '.join(TIME_NAMES)})")


def _lookup(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in the sorted unique ``keys`` (-1 if absent)."""
    if len(keys) == 0:
        return np.full(len(values), -1)
    try:
        i = np.searchsorted(keys, values)
    except TypeError:
        keys, values = keys.astype(str), np.asarray(values).astype(str)
        i = np.searchsorted(keys, values)
    i = np.clip(i, 0, len(keys) - 1)
    return np.where(keys[i] == values, i, -1)


def _is_null(values) -> np.ndarray:
    """True for None / NaN entries of an object or float array."""
    v = np.asarray(values)
    if v.dtype.kind == "f":
        return np.isnan(v)
    if v.dtype.kind == "O":
        return np.array([x is None or (isinstance(x, float) and x != x) for x in v], bool)
    return np.zeros(len(v), bool)


def _is_xmm(labels: np.ndarray) -> np.ndarray:
    out = np.zeros(len(labels), bool)
    for name in np.unique(labels.astype(str)):
        cb = lookup_catalogue(name)
        out[labels == name] = bool(cb and cb.is_xmm)
    return out


def _tag(ep: Epochs, origin: str) -> Epochs:
    ep.origin = np.full(len(ep), origin, dtype=object)
    ep.row = np.full(len(ep), -1)
    return ep


# ------------------------------------------------------------------------------------------
# outputs besides the catalogue columns
# ------------------------------------------------------------------------------------------

def epochs_table(ep: Epochs, sources: Sources) -> pa.Table:
    """The long-term light curves: one row per epoch, sorted by source and time."""
    order = np.lexsort((ep.mjd, ep.source))
    e = ep.select(order)
    F = "erg/cm**2/s"
    cols = [
        (sources.key_name, pa.array(sources.key[e.source].tolist()), "", "source of the epoch"),
        ("MJD", pa.array(e.mjd), "d", "epoch time"),
        ("CATALOGUE", pa.array(e.catalogue.astype(str).tolist(), pa.string()), "", "catalogue of the measurement"),
        ("ORIGIN", pa.array(e.origin.astype(str).tolist(), pa.string()), "", "catalogue | archive | upper-limit"),
        ("FLUX_NATIVE", pa.array(e.flux * e.factor), F, "flux (or upper limit) in the catalogue's own band"),
        ("BAND_FACTOR", pa.array(e.factor), "", "F_0.1-12 = FLUX_NATIVE / BAND_FACTOR"),
        ("FLUX", pa.array(e.flux), F, "flux or upper limit, 0.1-12 keV"),
        ("FLUX_ERR", pa.array(e.err), F, "1-sigma error, 0.1-12 keV (0 for upper limits)"),
        ("IS_UL", pa.array(e.is_ul), "", "the epoch is an upper limit"),
        ("HR", pa.array(e.hr), "", "hardness ratio"),
        ("SPEC_WARN", pa.array(e.spectral_warning), "", "hardness ratio outside the Gamma range"),
        ("AMBIGUOUS_MATCH", pa.array(e.ambiguous), "", "came from an ambiguous archival match"),
    ]
    return pa.Table.from_arrays([c[1] for c in cols], schema=pa.schema(
        [pa.field(n, a.type, metadata=field_meta(u, d)) for n, a, u, d in cols]))


def alert_records(alerts: pa.Table, ep: Epochs, sources: Sources) -> list[dict]:
    """Each alert as a JSON-ready dict: the alert fields plus the source's light curve."""
    key = sources.key_name
    pos = {k: i for i, k in enumerate(sources.key.tolist())}
    order = np.lexsort((ep.mjd, ep.source))          # epochs by source, then time
    bounds = np.searchsorted(ep.source[order], np.arange(len(sources) + 1))
    out = []
    for rec in alerts.to_pylist():
        s = pos[rec[key]]
        sel = order[bounds[s]:bounds[s + 1]]
        rec = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in rec.items()}
        rec["light_curve"] = [
            {"mjd": _num(ep.mjd[j]), "catalogue": str(ep.catalogue[j]), "flux": _num(ep.flux[j]),
             "flux_err": _num(ep.err[j]), "upper_limit": bool(ep.is_ul[j]), "hr": _num(ep.hr[j])}
            for j in sel]
        out.append(rec)
    return out


def _num(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None
