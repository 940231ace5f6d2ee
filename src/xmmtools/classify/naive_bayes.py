"""CLAXBOI-style naive Bayes: per-feature, per-class likelihoods with missing values as evidence.

Reference: Tranin, Godet, Webb & Primorac 2022, A&A 657, A138 (hereafter T22), their naive Bayes
classifier; equations are written out here by content (the paper's equation numbers were not
checked offline).
For a source with features x_f (f = 1..F, grouped in categories k) the unnormalised
posterior of class c is (T22 naive Bayes with category exponents)

    P(c | x) ∝ π_c · Π_k [ Π_{f in k} L_f(x_f | c) ]^{w_k}

    L_f(x | c) = P(present_f | c) · p_f(x | c)      if x_f is measured,
               = P(missing_f | c)^α                 if it is missing,

with π_c the class fractions of the *target* population (not the training mix), w_k the
category exponents fitted on the training set, and p_f(x | c) a kernel density estimate of the
training values of class c (exponential kernel, bandwidth h = range / (5 N^{1/5}), T22)
or, when class c has fewer than 10 distinct values of f, a histogram.  A class with few measured
values is shrunk towards the density of all classes pooled, the m-estimate of Cestnik (1990,
Proc. ECAI-90, 147-149) carried over to densities:

    p_f(x | c) = (n_fc p̂_fc(x) + m p̂_f(x)) / (n_fc + m)

with n_fc the measured values of f in class c and m a pseudo-count (``Settings.shrink``; 0 = off):
a class of 20 sources does not claim every tail of its broad kernels.  A class with *no* measured
value of f gets a flat density over the training range, or the range a feature set declares
for it (``unmeasured``, e.g. the prior-dominated Gaia distances of extragalactic sources).
Densities are floored so no class is excluded by one feature, and a value outside the training
range of f is neutral (the same floor density for every class).  Posteriors are normalised in
log space.

Densities are tabulated on a regular grid of ``grid_size`` points over the training range and
interpolated (linearly in log density), which makes applying the model O(rows x features x
classes) with numpy gathers: 10^6 sources take seconds, not the hours of a per-source loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # this module stays free of xmmtools imports at run time
    from xmmtools.classify.features import FeatureSet

LN10 = np.log(10.0)


@dataclass(frozen=True)
class Settings:
    """How the class-conditional likelihoods are built (stored in the model)."""

    kernel: str = "exponential"  # exponential (T22) | gaussian
    bandwidth: str = "tranin"  # tranin: range/(5 N^1/5) | scott | silverman
    grid_size: int = 512
    min_distinct: int = 10  # fewer distinct values in a class -> histogram (T22)
    floor: float = 1e-3  # density floor, as a fraction of the uniform density 1/range
    missing_alpha: float = 1.0  # exponent α of P(missing | c)
    shrink: float = 0.0  # pseudo-count m of the m-estimate towards the pooled density (0 = off)

    def __post_init__(self):
        if self.kernel not in ("exponential", "gaussian"):
            raise ValueError(f"kernel must be exponential or gaussian, not {self.kernel!r}")
        if self.bandwidth not in ("tranin", "scott", "silverman"):
            raise ValueError(f"bandwidth must be tranin, scott or silverman, not {self.bandwidth!r}")
        if self.grid_size < 16 or self.min_distinct < 1 or not 0 < self.floor < 1 or self.missing_alpha < 0:
            raise ValueError("grid_size >= 16, min_distinct >= 1, 0 < floor < 1 and missing_alpha >= 0 required")
        if not (np.isfinite(self.shrink) and self.shrink >= 0):
            raise ValueError(f"shrink (a pseudo-count) must be a finite number >= 0, not {self.shrink!r}")


@dataclass
class Densities:
    """Tabulated likelihood terms of F features and C classes."""

    lo: np.ndarray  # (F,) training minimum per feature
    hi: np.ndarray  # (F,) training maximum
    log_density: np.ndarray  # (F, C, G) natural log of the floored density on the grid
    log_present: np.ndarray  # (F, C) ln P(present | c)
    log_missing: np.ndarray  # (F, C) ln P(missing | c)
    log_neutral: np.ndarray  # (F,) ln density given to out-of-range values (every class)
    histogram: np.ndarray  # (F, C) bool: histogram instead of KDE


# ----------------------------------------------------------------------------------------
# Public API: fit densities, compute log-likelihoods and posteriors
# ----------------------------------------------------------------------------------------


def fit_densities(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    settings: Settings = Settings(),
    presence_free: np.ndarray | None = None,
    unmeasured: Sequence[Mapping[int, tuple[float, float]]] | None = None,
) -> Densities:
    """Tabulate p_f(x | c), P(present | c) and P(missing | c) from training rows.

    ``unmeasured[j]`` maps class index -> (low, high): the range of feature j a class with no
    measured training value takes (flat inside, the floor outside) instead of the whole
    training range.  With ``settings.shrink`` = m > 0 every class's density is the m-estimate
    (n p̂_c + m p̂_pooled) / (n + m) (module docstring).

    Features marked in ``presence_free`` (F,) carry no presence evidence: ln P(present | c) =
    ln P(missing | c) = 0, so a measured value contributes its density alone and a missing one
    nothing (for features whose presence the construction of the training set decided).

    ``X`` (N, F) feature values with NaN = missing; ``y`` (N,) class indices 0..C-1.
    P(present | c) uses Laplace's rule of succession, (n_present + 1) / (n_c + 2), so a feature
    never seen (or never missing) in a class still gives a finite term.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=int)
    F, C, G = X.shape[1], n_classes, settings.grid_size
    present = np.isfinite(X)
    lo = np.where(present.any(0), np.nanmin(np.where(present, X, np.inf), axis=0), 0.0)
    hi = np.where(present.any(0), np.nanmax(np.where(present, X, -np.inf), axis=0), 0.0)
    log_density = np.zeros((F, C, G))
    log_neutral = np.zeros(F)
    histogram = np.zeros((F, C), bool)
    n_c = np.bincount(y, minlength=C).astype(float)
    n_present = np.stack([np.bincount(y[present[:, j]], minlength=C) for j in range(F)]).astype(float)
    log_present = np.log((n_present + 1.0) / (n_c + 2.0))
    log_missing = np.log((n_c - n_present + 1.0) / (n_c + 2.0))
    if presence_free is not None:
        free = np.asarray(presence_free, bool)
        log_present[free] = 0.0
        log_missing[free] = 0.0
    for j in range(F):
        width = hi[j] - lo[j]
        if not width > 0:  # a constant (or never measured) feature: no density evidence
            continue
        grid = np.linspace(lo[j], hi[j], G)
        uniform = 1.0 / width
        floor = settings.floor * uniform
        log_neutral[j] = np.log(floor)
        h_all = tranin_bandwidth(X[present[:, j], j])
        pooled = None
        if settings.shrink > 0:
            v_all = X[present[:, j], j]
            pooled = kde(grid, v_all, bandwidth(v_all, settings.bandwidth), settings.kernel)
        for c in range(C):
            v = X[(y == c) & present[:, j], j]
            if v.size == 0:
                rng = unmeasured[j].get(c) if unmeasured is not None else None
                dens = np.full(G, uniform) if rng is None else _flat(grid, *rng)
            else:
                if np.unique(v).size < settings.min_distinct:
                    histogram[j, c] = True
                    dens = histogram_density(grid, v, h_all)
                else:
                    dens = kde(grid, v, bandwidth(v, settings.bandwidth), settings.kernel)
                if pooled is not None:  # m-estimate (Cestnik 1990) towards the pooled density
                    dens = (v.size * dens + settings.shrink * pooled) / (v.size + settings.shrink)
            log_density[j, c] = np.log(np.maximum(dens, floor))
    return Densities(lo, hi, log_density, log_present, log_missing, log_neutral, histogram)


def _flat(grid: np.ndarray, low: float, high: float) -> np.ndarray:
    """Flat density 1/(high - low) on [low, high], 0 elsewhere (the floor applies after)."""
    return np.where((grid >= low) & (grid <= high), 1.0 / (high - low), 0.0)


def feature_log_likelihoods(
    d: Densities, X: np.ndarray, ignored: np.ndarray | None = None, alpha: float = 1.0
) -> np.ndarray:
    """ln L_f(x_f | c) for every row, feature and class: (N, F, C), T22's likelihood with missing values as evidence.

    Measured values inside the training range: ln P(present|c) + ln p_f(x|c) (grid interpolation);
    outside it: ln P(present|c) + the neutral floor; missing: α ln P(missing|c); features in
    ``ignored`` (columns absent from the table, configured as neutral): 0.
    """
    X = np.asarray(X, dtype=float)
    F, C = X.shape[1], d.log_density.shape[1]
    out = np.zeros((X.shape[0], F, C))
    for j in range(F):
        if ignored is None or not ignored[j]:
            out[:, j, :] = feature_term(d, j, X[:, j], alpha).T
    return out


def feature_term(d: Densities, j: int, x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """(C, N) log-likelihood term of feature ``j`` (see :func:`feature_log_likelihoods`)."""
    G = d.log_density.shape[2]
    meas = np.isfinite(x)
    width = d.hi[j] - d.lo[j]
    present = d.log_present[j][:, None]
    if width > 0:
        inside = meas & (x >= d.lo[j]) & (x <= d.hi[j])
        t = np.where(inside, (np.where(inside, x, d.lo[j]) - d.lo[j]) * ((G - 1) / width), 0.0)
        i = np.minimum(t.astype(np.int32), G - 2)
        frac = t - i
        tab = d.log_density[j]  # (C, G)
        lo_v = tab[:, i]
        dens = lo_v + frac * (tab[:, i + 1] - lo_v)
        dens = np.where(inside, dens, d.log_neutral[j])
    else:  # constant training feature: presence evidence only
        dens = np.zeros((1, x.size))
    return np.where(meas, present + dens, alpha * d.log_missing[j][:, None])


def category_log_likelihoods(ll: np.ndarray, category: np.ndarray, n_categories: int) -> np.ndarray:
    """Sum the feature terms of each category: (N, F, C) -> (N, K, C)."""
    out = np.zeros((ll.shape[0], n_categories, ll.shape[2]))
    for k in range(n_categories):
        out[:, k, :] = ll[:, category == k, :].sum(axis=1)
    return out


def log_posterior(cat_ll: np.ndarray, priors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Unnormalised ln posterior ln π_c + Σ_k w_k ln L_k(c) (T22 posterior with category exponents)."""
    return np.log(np.asarray(priors, float))[None, :] + np.einsum("nkc,k->nc", cat_ll, np.asarray(weights, float))


def normalise(log_post: np.ndarray) -> np.ndarray:
    """Class probabilities from unnormalised ln posteriors, normalised in log space
    (log-sum-exp), so 20 features of tiny densities never underflow to 0/0."""
    m = log_post.max(axis=1, keepdims=True)
    p = np.exp(log_post - m)
    return p / p.sum(axis=1, keepdims=True)


def outlier_score(log_post: np.ndarray) -> np.ndarray:
    """T22 outlier measure: −log10 of the largest unnormalised posterior max_c π_c Π L."""
    return -log_post.max(axis=1) / LN10


# ----------------------------------------------------------------------------------------
# Kernels and bandwidths
# ----------------------------------------------------------------------------------------


def kde(x: np.ndarray, samples: np.ndarray, h: float, kernel: str = "exponential", block: int = 4096) -> np.ndarray:
    """Kernel density estimate at ``x``: (1/N) Σ_i K((x − s_i)/h)/h.

    exponential (Laplace) kernel K(u) = exp(−|u|)/2 (T22); gaussian K(u) = φ(u).
    """
    x = np.asarray(x, float)
    s = np.asarray(samples, float)
    out = np.empty(x.shape)
    for a in range(0, x.size, block):
        u = np.abs(x[a : a + block, None] - s[None, :]) / h
        k = 0.5 * np.exp(-u) if kernel == "exponential" else np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi)
        out[a : a + block] = k.mean(axis=1) / h
    return out


def tranin_bandwidth(v: np.ndarray) -> float:
    """h = range / (5 N^{1/5}) (T22); a tiny positive value for a single value."""
    v = np.asarray(v, float)
    r = float(v.max() - v.min()) if v.size else 0.0
    return r / (5.0 * v.size**0.2) if r > 0 else 1e-6


def bandwidth(v: np.ndarray, rule: str) -> float:
    """tranin (default); scott h = 1.06 σ N^{-1/5}; silverman h = 0.9 min(σ, IQR/1.34) N^{-1/5}
    (Silverman 1986, eqs. 3.28, 3.31)."""
    if rule == "tranin":
        return tranin_bandwidth(v)
    n = v.size
    sd = float(np.std(v, ddof=1)) if n > 1 else 0.0
    if rule == "scott":
        h = 1.06 * sd * n**-0.2
    else:
        q75, q25 = np.percentile(v, [75, 25])
        spread = min(sd, (q75 - q25) / 1.34) or sd
        h = 0.9 * spread * n**-0.2
    return h if h > 0 else tranin_bandwidth(v)


def histogram_density(grid: np.ndarray, v: np.ndarray, width: float) -> np.ndarray:
    """Histogram density (count / (N · width)) of ``v`` in bins of ``width`` centred on the
    feature's minimum, read at the grid points (for classes with few distinct values)."""
    origin = grid[0] - 0.5 * width
    bins_v = np.floor((np.asarray(v, float) - origin) / width).astype(np.int64)
    bins_g = np.floor((grid - origin) / width).astype(np.int64)
    nb = int(max(bins_v.max(), bins_g.max())) + 1
    counts = np.bincount(bins_v, minlength=nb)
    return counts[bins_g] / (v.size * width)


# ----------------------------------------------------------------------------------------
# The model object
# ----------------------------------------------------------------------------------------


@dataclass
class Model:
    """A trained classifier: feature set, classes, densities, category weights, priors,
    the training distribution of outlier scores, and provenance/metrics for the model file."""

    feature_set: FeatureSet
    classes: tuple[str, ...]
    densities: Densities
    weights: np.ndarray  # (K,) exponents of feature_set.categories
    priors: np.ndarray  # (C,) target-population class fractions
    training_fractions: np.ndarray  # (C,) class fractions of the training set
    reference_ll: np.ndarray  # (N, F, C) out-of-fold feature log-likelihoods of the training rows
    settings: Settings = field(default_factory=Settings)
    outlier_quantile: float = 0.997
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    outlier_selection: dict = field(default_factory=dict)  # how outlier_quantile was chosen (leave-class-out)

    def reference_scores(self, ignored: np.ndarray | None = None, priors: np.ndarray | None = None) -> np.ndarray:
        """Sorted out-of-fold outlier scores of the training sources, computed with the same
        priors and the same ignored (absent) features as the sources being classified, so
        OUTLIER_FLAG compares like with like."""
        ll = self.reference_ll
        if ignored is not None and np.any(ignored):
            ll = ll.copy()
            ll[:, np.asarray(ignored, bool), :] = 0.0
        cat = category_log_likelihoods(ll, self.feature_set.category_index(), len(self.feature_set.categories))
        pri = self.priors if priors is None else priors
        return np.sort(outlier_score(log_posterior(cat, pri, self.weights)))

    @property
    def outlier_threshold(self) -> float:
        return float(np.quantile(self.reference_scores(), self.outlier_quantile))

    def category_ll(self, X: np.ndarray, ignored: np.ndarray | None = None, block: int = 16384) -> np.ndarray:
        """Per-category log-likelihoods (N, K, C), accumulated feature by feature (no (N, F, C)
        array: 10^6 rows stay a few hundred MB)."""
        X = np.asarray(X, dtype=float)
        cat = self.feature_set.category_index()
        acc = np.zeros((len(self.feature_set.categories), len(self.classes), X.shape[0]))
        used = [j for j in range(X.shape[1]) if ignored is None or not ignored[j]]
        for a in range(0, X.shape[0], block):  # row blocks keep the temporaries in cache
            sl = slice(a, a + block)
            for j in used:
                acc[cat[j], :, sl] += feature_term(self.densities, j, X[sl, j], self.settings.missing_alpha)
        return acc.transpose(2, 0, 1)


def parse_priors(text: str | Mapping[str, float] | None, classes: Sequence[str]) -> np.ndarray | None:
    """``AGN=0.66,STAR=0.25,OTHER=0.09`` -> array in class order, normalised to sum 1.
    Raises ValueError (turned into a one-line error by the CLI) naming the bad entry."""
    if text is None or text == "":
        return None
    if isinstance(text, str):
        items = {}
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise ValueError(f"--priors entry {part!r} is not CLASS=FRACTION")
            k, v = (s.strip() for s in part.split("=", 1))
            try:
                items[k] = float(v)
            except ValueError:
                raise ValueError(f"--priors entry {part!r}: {v!r} is not a number") from None
    else:
        items = dict(text)
    unknown = [k for k in items if k not in classes]
    if unknown:
        raise ValueError(f"--priors names class {unknown[0]!r}; the model's classes are {', '.join(classes)}")
    missing = [c for c in classes if c not in items]
    if missing:
        raise ValueError(f"--priors gives no fraction for class {missing[0]} (classes: {', '.join(classes)})")
    p = np.array([items[c] for c in classes], float)
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ValueError("--priors fractions must be positive numbers")
    return p / p.sum()
