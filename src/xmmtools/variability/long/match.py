"""STONKS matching of new detections against archival sources (Quintin et al. 2024, Sect. 2.3).

Rules, per new detection:

1. candidates are archival sources within ``radius`` (20") and with separation
   psi < max(3 sigma_new, 1") + max(sigma_arch, 1")  (sigma: 1-sigma position errors, arcsec);
2. if several candidates remain and some of them have an XMM-Newton detection, only those are
   kept (XMM positions and fluxes are the reference in STONKS);
3. if several still remain, each gets the positional score of a two-source association,
   S = exp(-psi^2 / (2 (sigma_new^2 + sigma_arch^2))) / (sigma_new^2 + sigma_arch^2)
   (the two-catalogue Bayes factor of Budavari & Szalay 2008, eq. 17, up to a constant), and
   the best is accepted when it exceeds ``score_ratio`` (5) times the next; otherwise the match
   is *ambiguous*: the best candidate is kept and the ambiguity flagged.

This is self-contained (scipy KD-tree on unit vectors) because the project's crossmatch stage
is built concurrently; :func:`stonks_match` takes and returns plain arrays, so it can later call
the crossmatch stage's candidate search instead of :func:`_candidates` without changing callers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xmmtools.sky import ARCSEC, chord_to_arcsec, unit_vectors


@dataclass(frozen=True)
class Match:
    """Per new detection: archival index (-1: none), candidates kept by rule 1, ambiguity,
    separation (arcsec) and the score ratio best/next (inf with a single candidate)."""

    index: np.ndarray
    n_candidates: np.ndarray
    ambiguous: np.ndarray
    separation: np.ndarray
    score_ratio: np.ndarray


def stonks_match(
    new_ra,
    new_dec,
    new_err,
    arch_ra,
    arch_dec,
    arch_err,
    arch_is_xmm=None,
    *,
    radius: float = 20.0,
    score_ratio: float = 5.0,
    max_candidates: int = 16,
) -> Match:
    """Match each new detection to at most one archival source with the STONKS rules above.

    Positions in degrees, errors in arcsec (NaN errors count as 0, i.e. the 1" floor applies).
    ``max_candidates`` bounds the candidates examined per detection within ``radius``.
    """
    new_err = np.nan_to_num(np.asarray(new_err, float), nan=0.0)
    arch_err = np.nan_to_num(np.asarray(arch_err, float), nan=0.0)
    n_new = len(new_err)
    xmm = np.zeros(len(arch_err), bool) if arch_is_xmm is None else np.asarray(arch_is_xmm, bool)
    idx, sep = _candidates(new_ra, new_dec, arch_ra, arch_dec, radius, max_candidates)
    out = Match(
        np.full(n_new, -1, dtype=np.int64),
        np.zeros(n_new, dtype=np.int64),
        np.zeros(n_new, bool),
        np.full(n_new, np.nan),
        np.full(n_new, np.nan),
    )
    near = np.flatnonzero(idx[:, 0] >= 0)  # only rows with a neighbour within the radius
    if near.size == 0:
        return out
    kmax = int((idx[near] >= 0).sum(axis=1).max())
    idx, sep, e_new = idx[near, :kmax], sep[near, :kmax], new_err[near][:, None]
    ok = idx >= 0
    j = np.where(ok, idx, 0)
    # rule 1: psi < max(3 sigma_new, 1") + max(sigma_arch, 1")
    ok &= sep < np.maximum(3.0 * e_new, 1.0) + np.maximum(arch_err[j], 1.0)
    out.n_candidates[near] = ok.sum(axis=1)
    # rule 2: prefer archival sources with an XMM detection
    ok_xmm = ok & xmm[j]
    ok = np.where(ok_xmm.any(axis=1)[:, None], ok_xmm, ok)
    # rule 3: positional score, best must beat the next by score_ratio
    s2 = e_new**2 + arch_err[j] ** 2
    s2 = np.where(s2 > 0, s2, 1.0)
    logscore = np.where(ok, -(sep**2) / (2 * s2) - np.log(s2), -np.inf)
    order = np.argsort(-logscore, axis=1)
    rows = np.arange(len(near))
    best = order[:, 0]
    best_ls = logscore[rows, best]
    second_ls = logscore[rows, order[:, 1]] if kmax > 1 else np.full(len(near), -np.inf)
    has = np.isfinite(best_ls)
    with np.errstate(invalid="ignore"):
        ratio = np.exp(np.minimum(best_ls - second_ls, 700.0))
    out.score_ratio[near] = np.where(has & ~np.isfinite(second_ls), np.inf, np.where(has, ratio, np.nan))
    out.ambiguous[near] = has & np.isfinite(second_ls) & (ratio < score_ratio)
    out.index[near] = np.where(has, idx[rows, best], -1)
    out.separation[near] = np.where(has, sep[rows, best], np.nan)
    return out


def nearest_within(ra, dec, ref_ra, ref_dec, ref_err, *, radius: float = 20.0):
    """Reference source each position belongs to, for rows without a position error of their
    own (upper limits computed at a source position): the STONKS rule with sigma = 0 on the
    row side, i.e. psi < 1" + max(sigma_ref, 1").  Returns (index or -1, ambiguous)."""
    m = stonks_match(ra, dec, np.zeros(len(np.atleast_1d(ra))), ref_ra, ref_dec, ref_err, radius=radius)
    return m.index, m.ambiguous


def _candidates(ra1, dec1, ra2, dec2, radius: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to k archival neighbours within ``radius`` arcsec of each new position: (index, sep")
    arrays of shape (n_new, k), index -1 and sep inf where there is none."""
    from scipy.spatial import cKDTree

    a = unit_vectors(ra1, dec1)
    b = unit_vectors(ra2, dec2)
    n = len(a)
    if len(b) == 0 or n == 0:
        return np.full((n, 1), -1), np.full((n, 1), np.inf)
    good_b = np.all(np.isfinite(b), axis=1)
    tree = cKDTree(np.where(good_b[:, None], b, 10.0))  # non-finite positions parked far away
    chord = 2.0 * np.sin(radius * ARCSEC / 2.0)
    k = max(1, min(k, len(b)))
    q = np.nan_to_num(a, nan=10.0)
    idx = np.full((n, k), -1, dtype=np.int64)
    sep = np.full((n, k), np.inf)
    # most new positions have no neighbour at all: find those that do with k=1, then ask for k
    d1, _ = tree.query(q, k=1, distance_upper_bound=chord)
    near = np.flatnonzero(np.isfinite(d1))
    if near.size == 0:
        return idx, sep
    d, i = tree.query(q[near], k=k, distance_upper_bound=chord)
    d = np.asarray(d, float).reshape(len(near), k)
    i = np.asarray(i).reshape(len(near), k)
    found = np.isfinite(d) & (i < len(b))
    idx[near] = np.where(found, i, -1)
    sep[near] = np.where(found, chord_to_arcsec(d), np.inf)
    return idx, sep
