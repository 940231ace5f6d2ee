"""Long-term statistics per source (STONKS, Quintin et al. 2024, Sect. 2.4).

Owns the pessimistic and optimistic flux ratios, the amplitude and its significance, the
baseline (:func:`long_term_stats`), the per-group extremes they are built on
(:func:`group_extreme`, :func:`take`) and the LT_FLAG bits (:func:`source_flags`).  Numpy
arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from xmmtools.variability.long.epochs import Epochs

#: LT_FLAG bits (documented in docs/variability_long.md)
FLAG_NO_ERROR = 1  # an epoch had no flux error: used with sigma = 0 (optimistic)
FLAG_NONPOSITIVE = 2  # a detection with flux <= 0 or NaN: never the maximum; F + sigma > 0 only in the minimum
FLAG_AMBIGUOUS = 4  # an archival match was ambiguous (STONKS 5x score rule failed)
FLAG_SPECTRAL = 8  # an epoch's hardness ratio is outside the Gamma range of its instrument
FLAG_ONE_EPOCH = 16  # fewer than two usable epochs: no ratio


def source_flags(ep: Epochs, stats: SourceStats, n_sources: int) -> np.ndarray:
    """LT_FLAG bits per source from its epochs (see the FLAG_* constants)."""
    det = ~ep.is_ul
    with np.errstate(invalid="ignore"):
        bits = (
            np.where(det & ~np.isfinite(ep.err), FLAG_NO_ERROR, 0)
            | np.where(det & ~(ep.flux > 0), FLAG_NONPOSITIVE, 0)
            | np.where(ep.ambiguous, FLAG_AMBIGUOUS, 0)
            | np.where(ep.spectral_warning, FLAG_SPECTRAL, 0)
        )
    flags = np.zeros(n_sources, np.int64)
    np.bitwise_or.at(flags, ep.source, bits.astype(np.int64))
    flags |= np.where(np.isnan(stats.ratio), FLAG_ONE_EPOCH, 0)
    return flags.astype(np.int16)


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
    i_max: np.ndarray  # epoch index of max(F - sigma), -1 if none
    i_min: np.ndarray  # epoch index of min(F + sigma) (detection or upper limit), -1 if none
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
    return SourceStats(n_det, n_ul, ratio, ratio_opt, amplitude, significance, baseline, i_max, i_min, variable)


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
