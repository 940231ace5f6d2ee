"""EXOD2 Bayes-factor thresholds (Khan et al. 2025, A&A 697, A50): how many counts in a cell and
frame make a burst or an eclipse, given the expected counts mu.

With a flat prior on the extra (or missing) rate, the Bayes factor of a burst against a constant
is B_burst = Q(n+1, mu) / Pois(n; mu) (Q the regularised upper incomplete gamma: the integral of
Pois(n; x) over x > mu), and of an eclipse B_eclipse = P(n+1, mu) / Pois(n; mu) (P the lower one:
x < mu).  Khan et al. calibrate log10 B thresholds to Gaussian 3 and 5 sigma at mu = 1000:
5.94 / 13.28 (burst) and 5.71 / 12.38 (eclipse).  The search compares each cell's counts with
the precomputed n(mu) table; :mod:`xmmtools.variability.events.exod2_search` evaluates the Bayes
factors exactly per cell and frame (the same decision as the table).
"""

from __future__ import annotations

import numpy as np
from scipy import special

#: sigma -> (log10 B burst, log10 B eclipse), Khan et al. 2025
THRESHOLDS = {3: (5.94, 5.71), 5: (13.28, 12.38)}


def log10_bayes_burst(n, mu):
    """log10 [Q(n+1, mu) / Pois(n; mu)] (Khan et al. 2025)."""
    n, mu = np.asarray(n, float), np.asarray(mu, float)
    with np.errstate(divide="ignore"):  # Q underflows to 0 far below mu: log B = -inf, not significant
        return (np.log(special.gammaincc(n + 1, mu)) - _log_pois(n, mu)) / np.log(10)


def log10_bayes_eclipse(n, mu):
    """log10 [P(n+1, mu) / Pois(n; mu)] (Khan et al. 2025)."""
    n, mu = np.asarray(n, float), np.asarray(mu, float)
    with np.errstate(divide="ignore"):
        return (np.log(special.gammainc(n + 1, mu)) - _log_pois(n, mu)) / np.log(10)


def bayes_factor_limits(mu, sigma: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(n_peak, n_eclipse) for each expected count mu: a burst when n >= n_peak (the smallest n
    with log10 B_burst above the threshold), an eclipse when n < n_eclipse (one more than the
    largest n with log10 B_eclipse above its threshold; 0 when no count is low enough).  The same
    convention as the EXOD2 table; integer bisection, vectorised over mu."""
    mu = np.asarray(mu, float)
    t_burst, t_ecl = THRESHOLDS[sigma]
    hi = np.ceil(mu + 60 * np.sqrt(mu) + 200)
    # burst: log B increases with n -> smallest n with log B > t
    n_peak = _bisect(lambda n: log10_bayes_burst(n, mu) > t_burst, np.zeros_like(mu), hi)
    # eclipse: log B decreases with n -> smallest n with log B <= t
    n_ecl = _bisect(lambda n: ~(log10_bayes_eclipse(n, mu) > t_ecl), np.zeros_like(mu), hi)
    return n_peak, n_ecl


def _bisect(pred, lo, hi):
    """Smallest integer n in [lo, hi] with pred(n) True (pred monotone False -> True)."""
    lo, hi = lo.copy(), hi.copy()
    done = pred(lo)
    hi = np.where(done, lo, hi)
    while np.any(hi - lo > 1):
        mid = np.floor((lo + hi) / 2)
        ok = pred(mid)
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return np.where(done, lo, hi)


def _log_pois(n, mu):
    return n * np.log(mu) - mu - special.gammaln(n + 1)
