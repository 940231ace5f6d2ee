"""NWAY-style Bayesian multi-catalogue association (Budavari & Szalay 2008; Salvato et al. 2018).

For every primary source all candidate combinations with counterparts from one or several
secondary catalogues (each possibly absent) within the search radius are enumerated.  Each
combination gets

* a positional Bayes factor B (Budavari & Szalay 2008, ApJ 679, 301, eqs. 16-18), generalised
  to error ellipses as the ratio of the Gaussian likelihood of one common position to that of
  independent uniform positions (Pineau et al. 2017, A&A 597, A89, Sect. 2);
* a prior from the sky densities and the expected completeness (Salvato et al. 2018, App. B.1);
* optional attribute (magnitude) weights q(m)/n(m) (Salvato et al. 2018, App. B.2; see priors.py);

and per primary the probabilities p_any (any counterpart) and p_i (this combination, given
there is one) follow (Salvato et al. 2018, App. B.3).  All functions work on arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from xmmtools.crossmatch.poserr import PosErrors
from xmmtools.crossmatch.positional import search_around, tangent_offsets
from xmmtools.errors import DataError
from xmmtools.sky import ARCSEC, FULL_SKY_DEG2, separation_arcsec

LOG10_ARCSEC = np.log10(ARCSEC)
LOG10_E = np.log10(math.e)  # log10(e): Gaussian exponents in log10 units (math.e is np.e)


@dataclass
class Catalog:
    """One catalogue's matching inputs (arrays only; no file)."""

    name: str
    ra: np.ndarray
    dec: np.ndarray
    errors: PosErrors
    area_deg2: float
    #: attribute priors: list of (label, values per row, Histogram or None for automatic)
    attributes: list = field(default_factory=list)
    #: rows of the whole catalogue when only the sources near the primaries are held (streamed)
    n_total: int | None = None
    #: rows that may serve as field sources for automatic attribute priors (None: all)
    field_rows: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.ra)

    def density(self, plus: bool = False) -> float:
        """Sources per full sky, N / area * 4 pi sr (N + 1 with ``plus``: Salvato+2018 App. B.1);
        N counts the whole catalogue, also when only the sources near the primaries are held."""
        if not (self.area_deg2 > 0):
            raise DataError(f"catalogue {self.name}: sky area {self.area_deg2!r} deg2 is not positive")
        n = self.n if self.n_total is None else self.n_total
        return (n + (1 if plus else 0)) / self.area_deg2 * FULL_SKY_DEG2


# -----------------------------------------------------------------------------------------
# Bayes factor and posterior
# -----------------------------------------------------------------------------------------


def log10_bayes_factor(x, y, w11, w12, w22, present) -> np.ndarray:
    """log10 of the k-way positional Bayes factor for rows of m possible members.

    Arrays have shape (n, m): tangent-plane offsets x, y (arcsec, any common origin), the
    precision matrices (w11, w12, w22 in arcsec^-2) and ``present`` (bool).  With W_i the
    precision of member i, W = sum W_i, xbar = W^-1 sum W_i x_i and k members present:

        B = 2^(k-1) prod_i sqrt(det W_i) / sqrt(det W) * exp(-Q/2),
        Q = sum_i x_i' W_i x_i - xbar' W xbar          (W in rad^-2)

    For circular errors W_i = w_i I this is Budavari & Szalay (2008) eq. 18,
    B = 2^(k-1) prod w_i / sum w_i exp(-sum_{i<j} w_i w_j psi_ij^2 / (2 sum w_i)); for two
    sources eq. 16, B = 2/(s1^2+s2^2) exp(-psi^2 / (2 (s1^2+s2^2))).  A single member gives B = 1.
    """
    p = np.asarray(present, dtype=bool)
    k_all = p.sum(axis=1)
    multi = k_all >= 2
    if not multi.all():  # single members have B = 1: compute only the others
        out = np.zeros(len(p))
        if multi.any():
            rows = np.flatnonzero(multi)
            out[rows] = log10_bayes_factor(x[rows], y[rows], w11[rows], w12[rows], w22[rows], p[rows])
        return out
    if p.shape[1] == 2:  # both present in every row: the same sums, one column at a time
        return _log10_bf_pairs(x, y, w11, w12, w22)
    z = p.astype(float)
    w11, w12, w22 = w11 * z, w12 * z, w22 * z
    x, y = np.where(p, x, 0.0), np.where(p, y, 0.0)
    k = p.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        logdet_i = np.where(p, np.log10(np.where(p, w11 * w22 - w12 * w12, 1.0)), 0.0).sum(axis=1)
    W11, W12, W22 = w11.sum(axis=1), w12.sum(axis=1), w22.sum(axis=1)
    detW = W11 * W22 - W12 * W12
    bx = (w11 * x + w12 * y).sum(axis=1)
    by = (w12 * x + w22 * y).sum(axis=1)
    quad_i = (w11 * x * x + 2 * w12 * x * y + w22 * y * y).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        quad_bar = (W22 * bx * bx - 2 * W12 * bx * by + W11 * by * by) / detW
        q = np.maximum(quad_i - quad_bar, 0.0)
        out = (
            (k - 1) * np.log10(2.0)
            + 0.5 * logdet_i
            - 0.5 * np.log10(detW)
            - 0.5 * q * LOG10_E
            - 2 * (k - 1) * LOG10_ARCSEC
        )
    return np.where(k <= 1, 0.0, out)


def _log10_bf_pairs(x, y, w11, w12, w22) -> np.ndarray:
    """``log10_bayes_factor`` for two members in every row (the arithmetic of the general case
    with the sums over the two columns written out, so the numbers are identical)."""
    xa, xb, ya, yb = x[:, 0], x[:, 1], y[:, 0], y[:, 1]
    a11, b11, a12, b12, a22, b22 = w11[:, 0], w11[:, 1], w12[:, 0], w12[:, 1], w22[:, 0], w22[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        logdet_i = np.log10(a11 * a22 - a12 * a12) + np.log10(b11 * b22 - b12 * b12)
        W11, W12, W22 = a11 + b11, a12 + b12, a22 + b22
        detW = W11 * W22 - W12 * W12
        bx = (a11 * xa + a12 * ya) + (b11 * xb + b12 * yb)
        by = (a12 * xa + a22 * ya) + (b12 * xb + b22 * yb)
        quad_i = (a11 * xa * xa + 2 * a12 * xa * ya + a22 * ya * ya) + (
            b11 * xb * xb + 2 * b12 * xb * yb + b22 * yb * yb
        )
        quad_bar = (W22 * bx * bx - 2 * W12 * bx * by + W11 * by * by) / detW
        q = np.maximum(quad_i - quad_bar, 0.0)
        return np.log10(2.0) + 0.5 * logdet_i - 0.5 * np.log10(detW) - 0.5 * q * LOG10_E - 2 * LOG10_ARCSEC


def log10_bayes_factor_nway(x, y, w11, w12, w22, sx, sy, present) -> np.ndarray:
    """NWAY 4.x treatment of error ellipses, for side-by-side reproduction (``ellipse='nway'``).

    Each member gets a circular error c_i^2 = (sx^2 + sy^2)/2 and each pair separation psi_ij
    is rescaled by the variances projected on the separation direction n (u = n' W n):
    psi'_ij^2 = psi_ij^2 (1/u_i + 1/u_j) / (c_i^2 + c_j^2); then B&S 2008 eq. 18 with c_i and
    psi'_ij.  This reproduces NWAY 4.8's numbers (measured against it on its elliptical test
    set); it equals the exact result only for circular errors -- for an elongated ellipse it
    favours offsets along the *minor* axis.  The default ``ellipse='exact'`` uses the full
    Gaussian likelihood (Pineau et al. 2017).
    """
    p = np.asarray(present, dtype=bool)
    c2 = np.where(p, 0.5 * (sx * sx + sy * sy), np.inf)
    wc = np.where(p, 1.0 / c2, 0.0)
    m = p.shape[1]
    k = p.sum(axis=1)
    wsum = wc.sum(axis=1)
    q = np.zeros(len(p))
    for i in range(m):
        for j in range(i + 1, m):
            both = p[:, i] & p[:, j]
            dx, dy = x[:, i] - x[:, j], y[:, i] - y[:, j]
            d2 = dx * dx + dy * dy
            d = np.sqrt(d2)
            with np.errstate(divide="ignore", invalid="ignore"):
                nx = np.where(d > 0, dx / d, np.sqrt(0.5))
                ny = np.where(d > 0, dy / d, np.sqrt(0.5))
                ui = w11[:, i] * nx * nx + 2 * w12[:, i] * nx * ny + w22[:, i] * ny * ny
                uj = w11[:, j] * nx * nx + 2 * w12[:, j] * nx * ny + w22[:, j] * ny * ny
                psi2 = d2 * (1.0 / ui + 1.0 / uj) / (c2[:, i] + c2[:, j])
            q += np.where(both, wc[:, i] * wc[:, j] * np.where(both, psi2, 0.0), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        slog = np.where(p, np.log10(np.where(p, wc, 1.0)), 0.0).sum(axis=1) - np.log10(wsum)
        out = (k - 1) * np.log10(2.0) + slog - 0.5 * q / wsum * LOG10_E - 2 * (k - 1) * LOG10_ARCSEC
    return np.where(k <= 1, 0.0, out)


def posterior(prior, log10_b) -> np.ndarray:
    """Isolated-association posterior B P / (B P + 1 - P) (Budavari & Szalay 2008, eq. 21)."""
    prior = np.asarray(prior, dtype=float)
    lb = np.asarray(log10_b, dtype=float)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return 1.0 / (1.0 + (1.0 - prior) * 10.0 ** (-lb - np.log10(prior)))


def completeness_per_catalogue(completeness, n_secondary: int) -> np.ndarray:
    """A single completeness c is split as c^(1/n) over n secondary catalogues (Salvato+2018
    App. B.1; DESIGN §7); a sequence gives one value per secondary catalogue."""
    c = np.atleast_1d(np.asarray(completeness, dtype=float))
    if c.size == 1:
        c = np.full(n_secondary, float(c[0]) ** (1.0 / n_secondary))
    if c.size != n_secondary:
        raise DataError(f"--prior-completeness needs 1 or {n_secondary} values, got {c.size}")
    if np.any(~(c > 0)) or np.any(c > 1):
        raise DataError(f"--prior-completeness must be in (0, 1], got {c.tolist()}")
    return c


# -----------------------------------------------------------------------------------------
# Candidate combinations
# -----------------------------------------------------------------------------------------


@dataclass
class Combinations:
    """One row per candidate combination; rows of one primary are contiguous, the first of
    each block being "no counterpart in any catalogue"."""

    primary: np.ndarray  # (n,) primary row
    members: np.ndarray  # (n, K) secondary rows, -1 where absent
    sep: np.ndarray  # (n, K) separation to the primary, arcsec (NaN if absent)
    start: np.ndarray  # (n_primary_with_rows,) first row of each block

    @property
    def present(self) -> np.ndarray:
        return self.members >= 0

    @property
    def ncat(self) -> np.ndarray:
        return 1 + self.present.sum(axis=1)

    def __len__(self) -> int:
        return len(self.primary)


def build_combinations(
    primary: Catalog,
    secondaries: Sequence[Catalog],
    radius: float,
    *,
    chunk: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Combinations:
    """Enumerate, per primary, the product over secondary catalogues of (absent | candidates
    within ``radius``), keeping combinations whose members are all within ``radius`` of each
    other (as NWAY's Separation_max < radius)."""
    n1 = primary.n
    prim = np.arange(n1, dtype=np.int64)
    members = np.zeros((n1, 0), dtype=np.int64)
    seps = np.zeros((n1, 0))
    for k, cat in enumerate(secondaries):
        pairs = search_around(primary.ra, primary.dec, cat.ra, cat.dec, radius, chunk=chunk, progress=progress)
        counts = np.bincount(pairs.idx1, minlength=n1)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rep = 1 + counts[prim]
        row = np.repeat(np.arange(len(prim)), rep)
        offs = np.arange(len(row)) - np.repeat(np.cumsum(rep) - rep, rep)
        cand = np.where(offs > 0, first[prim[row]] + offs - 1, 0)
        new_member = np.where(offs > 0, pairs.idx2[cand] if len(pairs) else -1, -1)
        new_sep = np.where(offs > 0, pairs.sep[cand] if len(pairs) else np.nan, np.nan)
        prim, members, seps = prim[row], members[row], seps[row]
        keep = np.ones(len(prim), dtype=bool)
        for j, other in enumerate(secondaries[:k]):
            both = (new_member >= 0) & (members[:, j] >= 0)
            if both.any():
                d = separation_arcsec(
                    cat.ra[new_member[both]],
                    cat.dec[new_member[both]],
                    other.ra[members[both, j]],
                    other.dec[members[both, j]],
                )
                keep[np.flatnonzero(both)[d >= radius]] = False
        keep &= ~(new_sep >= radius)
        prim, members, seps = (
            prim[keep],
            np.column_stack([members[keep], new_member[keep]]),
            np.column_stack([seps[keep], new_sep[keep]]),
        )
    start = np.flatnonzero(np.r_[True, prim[1:] != prim[:-1]]) if len(prim) else np.zeros(0, np.int64)
    return Combinations(prim, members, seps, start)


#: x, y, w11, w12, w22, sx, sy, present: each (n, K+1)
Geometry = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _geometry(primary: Catalog, secondaries: Sequence[Catalog], comb: Combinations) -> Geometry:
    """(n, K+1) offsets from the primary (arcsec), precisions, sigmas and presence."""
    n, K = comb.members.shape
    shape = (n, K + 1)
    x, y = np.zeros(shape), np.zeros(shape)
    w11, w12, w22 = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    sx, sy = np.ones(shape), np.ones(shape)
    present = np.zeros(shape, dtype=bool)
    present[:, 0] = True
    pe = primary.errors
    # the precision of each primary once (elementwise: the same numbers as after the take)
    for out, v in zip((w11, w12, w22, sx, sy), (*pe.precision(), pe.sx, pe.sy), strict=True):
        out[:, 0] = v[comb.primary]
    for k, cat in enumerate(secondaries):
        has = np.flatnonzero(comb.members[:, k] >= 0)
        j = comb.members[has, k]
        p1 = comb.primary[has]
        present[has, k + 1] = True
        x[has, k + 1], y[has, k + 1] = tangent_offsets(primary.ra[p1], primary.dec[p1], cat.ra[j], cat.dec[j])
        e = cat.errors.take(j)
        w11[has, k + 1], w12[has, k + 1], w22[has, k + 1] = e.precision()
        sx[has, k + 1], sy[has, k + 1] = e.sx, e.sy
    return x, y, w11, w12, w22, sx, sy, present


def _log_bf(x, y, w11, w12, w22, sx, sy, present, ellipse: str) -> np.ndarray:
    if ellipse == "nway":
        return log10_bayes_factor_nway(x, y, w11, w12, w22, sx, sy, present)
    return log10_bayes_factor(x, y, w11, w12, w22, present)


@dataclass
class BayesResult:
    comb: Combinations
    log_bf: np.ndarray  # log10 positional Bayes factor (incl. unrelated-association correction)
    prior: np.ndarray
    dist_post: np.ndarray  # positional posterior
    log_bias: dict  # label -> log10 q/n per combination
    p_single: np.ndarray
    p_any_row: np.ndarray  # P_ANY of the row's primary
    p_i: np.ndarray
    match_flag: np.ndarray
    p_any: np.ndarray  # (n_primary,)
    histograms: dict  # label -> Histogram used
    densities: list  # per catalogue, sources per full sky


def match(
    primary: Catalog,
    secondaries: Sequence[Catalog],
    radius: float,
    *,
    completeness=0.9,
    ellipse: str = "exact",
    prob_ratio_secondary: float = 0.5,
    unrelated: bool = True,
    mag_min_post: float = 0.9,
    chunk: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> BayesResult:
    """Run the full association; see the module docstring for the method."""
    from xmmtools.crossmatch import priors

    if not secondaries:
        raise DataError("give at least one --catalog NAME=FILE to match against")
    if ellipse not in ("exact", "nway"):
        raise ValueError(f"ellipse must be 'exact' or 'nway', got {ellipse!r}")
    K = len(secondaries)
    comp = completeness_per_catalogue(completeness, K)
    nu_plus = np.array([c.density(plus=True) for c in secondaries])
    comb = build_combinations(primary, secondaries, radius, chunk=chunk, progress=progress)
    geo = _geometry(primary, secondaries, comb)
    log_bf = _log_bf(*geo, ellipse)
    pres = comb.present
    # prior P = nu_1 prod c_i / prod nu_i^+ with nu_1^+ = nu_1 (Salvato+2018 App. B.1)
    log_prior = (pres * (np.log10(comp) - np.log10(nu_plus))[None, :]).sum(axis=1)
    prior = 10.0**log_prior
    if unrelated and K >= 2:
        log_bf = log_bf + _unrelated_correction(comb, geo, secondaries, ellipse)
    dist_post = posterior(prior, log_bf)

    log_bias, hists = {}, {}
    for k, cat in enumerate(secondaries):
        for label, values, hist in cat.attributes:
            j = comb.members[:, k]
            if hist is None:
                hist = priors.auto_histogram(
                    values, j, dist_post, label=label, min_post=mag_min_post, field_rows=cat.field_rows
                )
            hists[label] = hist
            m = np.where(j >= 0, np.asarray(values, dtype=float)[np.maximum(j, 0)], np.nan)
            with np.errstate(divide="ignore"):
                log_bias[label] = np.log10(hist.weight(m))
    total = log_bf + sum(log_bias.values()) if log_bias else log_bf
    p_single = posterior(prior, total) if log_bias else dist_post  # the same numbers without attributes
    W = total + log_prior
    p_any, p_i, flag = group_probabilities(W, comb.start, prob_ratio_secondary)
    p_any_primary = np.zeros(primary.n)
    p_any_primary[comb.primary[comb.start]] = p_any
    p_any_row = np.repeat(p_any, np.diff(np.r_[comb.start, len(comb)]))
    dens = [primary.density()] + [c.density() for c in secondaries]
    return BayesResult(
        comb, log_bf, prior, dist_post, log_bias, p_single, p_any_row, p_i, flag, p_any_primary, hists, dens
    )


def group_probabilities(W: np.ndarray, start: np.ndarray, ratio: float = 0.5):
    """Per primary block of log10 weights W (first row = no counterpart, W_0):

    p_any = 1 - 10^W_0 / sum_all 10^W;  p_i = 10^W_i / sum_{i>0} 10^W  (p_0 = 0);
    match_flag = 1 for the largest p_i, 2 where p_i > ratio * max, else 0
    (Salvato et al. 2018, App. B.3).  Returns (p_any per block, p_i per row, flag per row)."""
    n = len(W)
    if n == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int16)
    block = np.repeat(np.arange(len(start)), np.diff(np.r_[start, n]))
    is_first = np.zeros(n, dtype=bool)
    is_first[start] = True
    wmax = np.maximum.reduceat(W, start)
    e = 10.0 ** (W - wmax[block])
    tot = np.add.reduceat(e, start)
    p_any = 1.0 - e[start] / tot
    # p_i is normalised over the candidates alone, with their own offset, so that it stays
    # defined when every candidate is 10^-500 times less likely than "no counterpart"
    Wc = np.where(is_first, -np.inf, W)
    cmax = np.maximum.reduceat(Wc, start)
    ok = np.isfinite(cmax)[block]
    with np.errstate(invalid="ignore", over="ignore"):
        e_cand = np.where(ok & ~is_first, 10.0 ** (Wc - np.where(ok, cmax[block], 0.0)), 0.0)
    tot_cand = np.add.reduceat(e_cand, start)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_i = np.where(tot_cand[block] > 0, e_cand / tot_cand[block], 0.0)
    best = np.maximum.reduceat(p_i, start)[block]
    flag = np.where((best > 0) & (p_i == best), 1, np.where((best > 0) & (p_i > ratio * best), 2, 0)).astype(np.int16)
    return p_any, p_i, flag


def _unrelated_correction(comb: Combinations, geo, secondaries: Sequence[Catalog], ellipse: str) -> np.ndarray:
    """Correction of combinations that leave out two or more secondary catalogues for
    associations among the left-out sources themselves (Salvato+2018 App. B.1; as NWAY's
    --consider-unrelated-associations): for a combination missing the set M of catalogues the
    log10 Bayes factor gains max(0, max_j [log10 B_T + log10 P_T]) over the primary's other
    combinations j, with T = M intersected with the catalogues present in j (|T| >= 2),
    B_T the Bayes factor of those sources alone and P_T = nu_first / prod_T nu^+."""
    x, y, w11, w12, w22, sx, sy, present = geo
    K = comb.members.shape[1]
    n = len(comb)
    nu = np.array([0.0] + [c.density() for c in secondaries])
    nu_plus = np.array([0.0] + [c.density(plus=True) for c in secondaries])
    bits = 1 << np.arange(K)
    pres_mask = (comb.present * bits).sum(axis=1)
    block = np.repeat(np.arange(len(comb.start)), np.diff(np.r_[comb.start, n]))
    out = np.zeros(n)
    full = (1 << K) - 1
    for M in range(1, full + 1):
        if _popcount(np.array([M]))[0] < 2:
            continue
        rows_i = np.flatnonzero((full & ~pres_mask) == M)
        if not len(rows_i):
            continue
        T = pres_mask & M
        cand = _popcount(T) >= 2
        if not cand.any():
            continue
        cj = np.flatnonzero(cand)
        tm = T[cj]
        sub = np.zeros((len(cj), K + 1), dtype=bool)
        sub[:, 1:] = (tm[:, None] & bits[None, :]) > 0
        lb = _log_bf(x[cj], y[cj], w11[cj], w12[cj], w22[cj], sx[cj], sy[cj], sub, ellipse)
        first_cat = np.argmax(sub[:, 1:], axis=1) + 1
        log_prior = np.log10(nu[first_cat]) - (sub * np.log10(np.where(nu_plus > 0, nu_plus, 1.0))).sum(axis=1)
        best = np.zeros(len(comb.start))
        np.maximum.at(best, block[cj], lb + log_prior)
        out[rows_i] = best[block[rows_i]]
    return out


def _popcount(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.int64)
    c = np.zeros(v.shape, dtype=np.int64)
    while np.any(v):
        c += v & 1
        v = v >> 1
    return c
