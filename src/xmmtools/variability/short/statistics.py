"""Short-term (within one observation) variability statistics of binned X-ray light curves.

Every function takes numpy arrays and returns arrays; nothing here opens a file or prints.
Batches of light curves are 2-D arrays ``(n_curves, n_bins)`` padded with NaN (a bin is used
when its counts are finite and its exposure is > 0); a single curve may be given as 1-D.

Counts, not rates, are the data: for bin *i* of a curve

* ``counts`` N_i        photons in the source region (gross: source + background),
* ``exposure`` e_i      effective exposure of the bin in s (bin width x fractional exposure),
* ``bkg_counts`` M_i    photons in the background region (optional),
* ``bkg_scale`` alpha   source-region / background-region area ratio, so that alpha*M_i is
                        the measured background in the source region,
* ``bkg_model`` B_i     the *expected* background counts in the source region (a smooth model
                        of alpha*M, see :func:`background_model`).

The net counts are D_i = N_i - alpha*M_i and, under the constant-source hypothesis,
D_i ~ mu*e_i with mu = sum(D)/sum(e) (clipped at 0).  Their variance under that hypothesis is
the model's own (Pearson, as in SAS ekstest, Webb et al. 2020 Sect. 6.6):

    V_i = mu*e_i + B_i + alpha*B_i      (source + background Poisson noise in the source region,
                                          plus the noise of the background measurement)

Using the *measured* background alpha*M_i in V_i instead of a smooth model is what makes a
constant faint source with a noisy background look variable (bins with M_i = 0 get V_i ~ mu*e_i
and a single photon then gives a huge chi2 term); using data errors sqrt(N_i) is what makes
Poisson curves at a few counts per bin 'variable' most of the time.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import special

#: 4XMM VAR_FLAG threshold on the probability of constancy (Webb et al. 2020, Sect. 6.6).
DEFAULT_THRESHOLD = 1e-5
#: below this mean expected count per bin the chi2 approximation is not used for the flag.
DEFAULT_MIN_COUNTS = 5.0

TEST_CHI2 = "chi2"
TEST_SPARSE = "poisson+ks+rebin"


def lightcurve_statistics(
    counts,
    exposure,
    bkg_counts=None,
    bkg_scale=0.0,
    bkg_model=None,
    *,
    min_counts: float = DEFAULT_MIN_COUNTS,
    threshold: float = DEFAULT_THRESHOLD,
    sparse_tests: bool = True,
) -> dict[str, np.ndarray]:
    """Constancy tests and variability amplitudes of binned light curves.

    Returns a dict of 1-D arrays (one value per curve):

    ``NBINS, EXPOSURE`` [s], ``COUNTS`` (gross), ``BKG_COUNTS`` (model background in the source
    region), ``RATE`` (mean net rate mu, counts/s, not PSF-corrected), ``CHI2, DOF, CHI2PROB``
    (Pearson chi2 against a constant with the model as its own variance, p = Q(chi2 | n-1):
    the SAS ekstest definition behind 4XMM *_CHI2PROB), ``CHI2PROB_CAL`` (the same statistic
    against a scaled chi2 whose variance matches the exact (Haldane) variance of Pearson's sum,
    see :func:`pearson_chi2`), ``POISPROB`` (exact Poisson max-bin test), ``KSPROB``
    (Kolmogorov-Smirnov test of the cumulative counts), ``REBINPROB`` (exact Poisson test of
    the brightest group of consecutive bins expecting ~``min_counts``), ``SPARSE`` (mean
    expected counts per bin < ``min_counts``), ``VARPROB`` (CHI2PROB_CAL for dense curves, else
    min(1, 3 min(POISPROB, KSPROB, REBINPROB)) -- a Bonferroni combination: single-bin flares,
    slow trends, multi-bin flares), ``VAR_FLAG`` (VARPROB <
    ``threshold``), ``NXS, NXSERR, FVAR, FVARERR`` (Vaughan et al. 2003 eqs. 8-11, B2; see
    :func:`excess_variance`), and ``MAXSIG`` (largest |residual| / sigma).

    Curves with fewer than 2 usable bins or no counts at all get NaN statistics and
    VAR_FLAG False.
    """
    N, e, M, alpha, B = _as_batch(counts, exposure, bkg_counts, bkg_scale, bkg_model)
    use = np.isfinite(N) & np.isfinite(e) & (e > 0) & np.isfinite(M) & np.isfinite(B)
    N0, e0, M0, B0 = (np.where(use, a, 0.0) for a in (N, e, M, B))
    n = use.sum(axis=1)
    D = N0 - alpha[:, None] * M0
    etot = e0.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.clip(D.sum(axis=1) / etot, 0.0, None)
    model = mu[:, None] * e0
    V = model + B0 * (1.0 + alpha[:, None])  # Pearson: the model is its own variance
    ok = (n >= 2) & (etot > 0) & np.all(~use | (V > 0), axis=1)

    chi2, dof, p_chi2, p_cal, resid = pearson_chi2(D, model, V, use, n)
    rate = np.where(use, D / np.where(use, e0, 1.0), np.nan)
    rate_var = np.where(use, (N0 + alpha[:, None] ** 2 * M0) / np.where(use, e0, 1.0) ** 2, np.nan)
    nxs, nxs_err, fvar, fvar_err = excess_variance(rate, rate_var)

    expected = model + B0  # gross counts expected in the source region
    with np.errstate(invalid="ignore", divide="ignore"):
        sparse = expected.sum(axis=1) / n < min_counts
    out = {
        "NBINS": n.astype(np.int32),
        "EXPOSURE": etot,
        "COUNTS": N0.sum(axis=1),
        "BKG_COUNTS": B0.sum(axis=1),
        "RATE": np.where(ok, mu, np.nan),
        "CHI2": chi2,
        "DOF": dof,
        "CHI2PROB": p_chi2,
        "CHI2PROB_CAL": p_cal,
        "NXS": nxs,
        "NXSERR": nxs_err,
        "FVAR": fvar,
        "FVARERR": fvar_err,
        "MAXSIG": np.nanmax(np.where(use, np.abs(resid), np.nan), axis=1, initial=-np.inf),
        "SPARSE": sparse & ok,
    }
    if sparse_tests:
        p_pois = poisson_maxbin_prob(N0, expected, use)
        p_ks = ks_prob(N0, expected, use)
        p_rebin = grouped_poisson_prob(N0, expected, use, min_counts)
        p_sparse = np.minimum(1.0, 3.0 * np.fmin(np.fmin(p_pois, p_ks), p_rebin))
        out["POISPROB"], out["KSPROB"], out["REBINPROB"] = p_pois, p_ks, p_rebin
        varprob = np.where(sparse, p_sparse, p_cal)
    else:
        varprob = p_cal
    for k in (
        "CHI2",
        "CHI2PROB",
        "CHI2PROB_CAL",
        "NXS",
        "NXSERR",
        "FVAR",
        "FVARERR",
        "MAXSIG",
        "POISPROB",
        "KSPROB",
        "REBINPROB",
    ):
        if k in out:
            out[k] = np.where(ok, out[k], np.nan)
    out["MAXSIG"][~np.isfinite(out["MAXSIG"])] = np.nan
    out["VARPROB"] = np.where(ok, varprob, np.nan)
    out["VAR_FLAG"] = ok & (out["VARPROB"] < threshold)
    out["USABLE"] = ok
    return out


def chi2_fvar_uniform(counts, exposure, *, threshold: float = DEFAULT_THRESHOLD) -> dict[str, np.ndarray]:
    """Catalogue-scale fast path: chi2 test and Fvar for many complete curves sharing one bin grid.

    Same definitions as :func:`lightcurve_statistics` (no background, every bin used), written
    as sums so that a batch costs one elementwise square and a few matrix-vector products:
    with mu = sum N / sum e,

        chi2 = sum (N - mu e)^2 / (mu e) = sum(N^2/e)/mu - sum N,
        S^2 = [sum x^2 - n xbar^2]/(n-1) with x = N/e,   <sigma_err^2> = mean(N/e^2).

    ``counts``: (n_curves, n_bins); ``exposure``: (n_bins,) [s].  Returns CHI2, DOF, CHI2PROB,
    CHI2PROB_CAL, VAR_FLAG (from CHI2PROB_CAL), NXS, NXSERR, FVAR, FVARERR.
    """
    N = np.asarray(counts)
    e = np.asarray(exposure, float)
    nb = N.shape[1]
    inv_e, inv_e2 = 1.0 / e, 1.0 / e**2
    tot = N.sum(axis=1, dtype=float)
    N2 = np.square(N, dtype=float)
    s_n2e, s_n2e2 = N2 @ inv_e, N2 @ inv_e2  # sum N^2/e, sum x^2
    s_x, s_ne2 = N @ inv_e, N @ inv_e2  # sum x, sum N/e^2
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = tot / e.sum()
        chi2 = s_n2e / mu - tot
        dof = np.full(N.shape[0], nb - 1.0)
        prob = special.gammaincc(dof / 2.0, chi2 / 2.0)
        prob_cal = _satterthwaite(chi2, dof, nb, inv_e.sum() / mu, tot)  # V = mu e
        xbar = s_x / nb
        s2 = (s_n2e2 - nb * xbar**2) / (nb - 1)
        err2 = s_ne2 / nb
    nxs, nxs_err, fvar, fvar_err = _vaughan(float(nb), xbar, s2, err2)
    ok = tot > 0
    nan = lambda a: np.where(ok, a, np.nan)  # noqa: E731
    return {
        "CHI2": nan(chi2),
        "DOF": dof,
        "CHI2PROB": nan(prob),
        "CHI2PROB_CAL": nan(prob_cal),
        "VAR_FLAG": ok & (prob_cal < threshold),
        "NXS": nan(nxs),
        "NXSERR": nan(nxs_err),
        "FVAR": nan(fvar),
        "FVARERR": nan(fvar_err),
    }


def pearson_chi2(D, model, V, use, n):
    """Pearson chi2 of net counts against a constant-rate model, with its probabilities.

    chi2 = sum_i (D_i - mu e_i)^2 / V_i, V_i the model variance (Pearson 1900; SAS ekstest,
    Webb et al. 2020 Sect. 6.6), dof = n - 1 (the mean rate is fitted);
    ``CHI2PROB`` = Q(chi2/2, dof/2) (upper regularised incomplete gamma, i.e. the chi2 survival
    function).

    Calibrated probability: with the mean fitted, Poisson counts are multinomial given their
    total, and Pearson's statistic has the exact variance (Haldane 1937, Biometrika 29, 133)
    var = 2(n-1) + [sum 1/p_i - n^2 - 2n + 2]/N_tot, p_i the cell probabilities; with cells of
    unequal exposure this exceeds the 2(n-1) a chi2 assumes and the plain tail is too thin.  We
    use p_i = V_i / sum V and N_tot = sum V (exact without background) and match the first two
    moments with a scaled chi2 (Satterthwaite 1946, Biometrics Bull. 2, 110):
    c = var/(2 dof), nu = 2 dof^2/var, ``CHI2PROB_CAL`` = Q(chi2/c | nu).

    Returns (chi2, dof, prob, prob_cal, residuals Z_i).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        Vs = np.where(use, V, 1.0)
        resid = np.where(use, (D - model) / np.sqrt(Vs), 0.0)
        chi2 = (resid**2).sum(axis=1)
        dof = (n - 1).astype(float)
        prob = special.gammaincc(dof / 2.0, chi2 / 2.0)
        inv_sum = np.where(use, 1.0 / Vs, 0.0).sum(axis=1)
        vtot = np.where(use, V, 0.0).sum(axis=1)
        prob_cal = _satterthwaite(chi2, dof, n, inv_sum, vtot)
    return chi2, dof, prob, prob_cal, resid


def _satterthwaite(chi2, dof, n, inv_sum, vtot):
    """Q(chi2/c | nu) with Haldane's exact multinomial variance (see :func:`pearson_chi2`)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        var = 2.0 * dof + inv_sum - (n**2 + 2.0 * n - 2.0) / vtot
        var = np.maximum(var, dof)  # guard: never below half the chi2 variance
        c, nu = var / (2.0 * dof), 2.0 * dof**2 / var
        return special.gammaincc(nu / 2.0, chi2 / (2.0 * c))


def excess_variance(rate, rate_var):
    """Normalised excess variance and fractional variability amplitude with their errors.

    Vaughan, Edelson, Warwick & Uttley 2003, MNRAS 345, 1271:

    * eq. 8:  sigma_XS^2 = S^2 - <sigma_err^2>, S^2 = sum (x_i - xbar)^2 / (N - 1)
    * eq. 9 (text): sigma_NXS^2 = sigma_XS^2 / xbar^2                       -> ``NXS``
    * eq. 10: F_var = sqrt(sigma_NXS^2)                                     -> ``FVAR``
    * eq. 11: err(sigma_NXS^2) = sqrt[(sqrt(2/N) <s2>/xbar^2)^2 + (sqrt(<s2>/N) 2 F_var/xbar)^2]
    * eq. B2: err(F_var) = sqrt[(sqrt(1/(2N)) <s2>/(xbar^2 F_var))^2 + (sqrt(<s2>/N)/xbar)^2]

    ``rate``: (n_curves, n_bins) net rates, NaN where unused; ``rate_var``: their measurement
    variances.  We use the Poisson variance estimated from the counts themselves,
    (N_i + alpha^2 M_i)/e_i^2: it is unbiased for <sigma_err^2> even in empty bins, which a
    Gehrels-style ERROR column is not.  F_var and its error are NaN when the excess variance is
    not positive (no detectable variability); NXS keeps its (negative) value then.  For
    NXSERR with F_var undefined, F_var = 0 is used in eq. 11.
    """
    rate = np.atleast_2d(rate)
    rate_var = np.atleast_2d(rate_var)
    use = np.isfinite(rate) & np.isfinite(rate_var)
    n = use.sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(use, rate, 0.0)
        xbar = x.sum(axis=1) / n
        s2 = (np.where(use, rate - xbar[:, None], 0.0) ** 2).sum(axis=1) / (n - 1)
        err2 = np.where(use, rate_var, 0.0).sum(axis=1) / n
    nxs, nxs_err, fvar, fvar_err = _vaughan(n, xbar, s2, err2)
    bad = (n < 2) | ~(xbar > 0)
    return (
        np.where(bad, np.nan, nxs),
        np.where(bad, np.nan, nxs_err),
        np.where(bad, np.nan, fvar),
        np.where(bad, np.nan, fvar_err),
    )


def _vaughan(n, xbar, s2, err2):
    """Vaughan et al. 2003 eqs. 8-11 and B2 from N, the mean, the sample variance S^2 and the
    mean squared error <sigma_err^2> (see :func:`excess_variance`)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        nxs = (s2 - err2) / xbar**2
        fvar = np.where(nxs > 0, np.sqrt(np.where(nxs > 0, nxs, 0.0)), np.nan)
        f0 = np.nan_to_num(fvar, nan=0.0)
        nxs_err = np.sqrt((np.sqrt(2.0 / n) * err2 / xbar**2) ** 2 + (np.sqrt(err2 / n) * 2.0 * f0 / xbar) ** 2)
        fvar_err = np.sqrt((np.sqrt(1.0 / (2.0 * n)) * err2 / (xbar**2 * fvar)) ** 2 + (np.sqrt(err2 / n) / xbar) ** 2)
    return nxs, nxs_err, fvar, fvar_err


def grouped_poisson_prob(counts, expected, use, min_counts):
    """Exact Poisson test of the brightest group of g consecutive bins (multi-bin flares).

    g = ceil(min_counts / mean expected counts per bin) per curve, so a group expects about
    ``min_counts`` counts; counts and expectations are summed over non-overlapping groups and
    :func:`poisson_maxbin_prob` is applied to the groups, for two grouping offsets (0 and g/2,
    so a flare on a group boundary is not split), combined by Bonferroni (x2).  Each group's
    tail probability is exact and the groups are independent, so unlike a chi2 of regrouped
    bins (whose tail is too heavy with few groups) the result is conservative.  Curves are
    processed by distinct g (a handful of values), so the batch stays vectorised.
    """
    n = use.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_e = np.where(use, expected, 0.0).sum(axis=1) / n
        g = np.where(mean_e > 0, np.ceil(min_counts / mean_e), 0).astype(np.int64)
    out = np.full(counts.shape[0], np.nan)
    for gv in np.unique(g[(g >= 1) & (n >= 2)]):
        rows = np.flatnonzero(g == gv)
        p = np.ones(rows.size)
        for shift in sorted({0, int(gv // 2)}):
            grouped = [_group(np.where(use[rows], a[rows], 0.0)[:, shift:], gv) for a in (counts, expected)]
            ug = _group(use[rows][:, shift:].astype(float), gv) > 0
            p = np.minimum(p, poisson_maxbin_prob(grouped[0], grouped[1], ug))
        out[rows] = np.minimum(1.0, p * (2 if gv > 1 else 1))
    return out


def _group(a, g):
    pad = (-a.shape[1]) % g
    return np.pad(a, ((0, 0), (0, pad))).reshape(a.shape[0], -1, g).sum(axis=2)


def poisson_maxbin_prob(counts, expected, use):
    """Exact Poisson test for the brightest bin (flares), for sparse curves.

    p_i = P(X >= N_i | E_i) = P(N_i, E_i) (regularised lower incomplete gamma; p_i = 1 for
    N_i = 0); the probability that any of the n bins is that extreme is
    1 - (1 - min p_i)^n (Sidak).  With discrete counts P(p_i <= t) <= t, so the test is
    conservative; the mean rate is fitted from the same data (a flare raises it), which is
    conservative too.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(
            use & (counts > 0), special.gammainc(np.where(counts > 0, counts, 1.0), np.where(use, expected, 1.0)), 1.0
        )
    pmin = p.min(axis=1)
    n = use.sum(axis=1)
    return -np.expm1(n * np.log1p(-np.minimum(pmin, 1.0 - 1e-16)))


def ks_prob(counts, expected, use):
    """Kolmogorov-Smirnov test of the cumulative counts against the constant model.

    D = max_k |C_k/C_n - F_k/F_n| with C the cumulative observed and F the cumulative expected
    counts (exposure-weighted constant plus background model); p = Q_KS((sqrt(n) + 0.12 +
    0.11/sqrt(n)) D) with n = N_tot, the asymptotic Kolmogorov distribution with Stephens'
    (1970, JRSS B 32, 115) finite-n correction (accurate to ~1 % for n >= 5, and vectorised,
    unlike the exact distribution).  Conditional on the total the counts are multinomial, and for
    binned data the test is conservative (Noether 1963).  It catches slow trends that the max-bin
    test misses.
    """
    c = np.cumsum(np.where(use, counts, 0.0), axis=1)
    f = np.cumsum(np.where(use, expected, 0.0), axis=1)
    ntot = c[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.abs(c / ntot[:, None] - f / f[:, -1][:, None]).max(axis=1)
        rn = np.sqrt(ntot)
        p = special.kolmogorov((rn + 0.12 + 0.11 / rn) * d)
    return np.where(ntot > 0, p, np.nan)


def background_model(bkg_counts, exposure, bkg_scale, *, smooth: int = 5, p_const: float = 0.01):
    """Expected background counts in the source region, B_i = alpha * m_i * e_i.

    The background rate m is the mean of the background curve, sum(M)/sum(e), when that curve
    is itself consistent with a constant (Pearson chi2 with model variance, p >= ``p_const``);
    otherwise (a flaring background) it is an exposure-weighted running mean over ``smooth``
    bins, so real background changes are followed but single-bin Poisson noise is not put in the
    variance.  Returns an array like ``bkg_counts`` (0 where there is no background).
    """
    M, e = np.atleast_2d(np.asarray(bkg_counts, float)), np.atleast_2d(np.asarray(exposure, float))
    alpha = np.broadcast_to(np.asarray(bkg_scale, float), (M.shape[0],)).copy()
    use = np.isfinite(M) & np.isfinite(e) & (e > 0)
    M0, e0 = np.where(use, M, 0.0), np.where(use, e, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = M0.sum(axis=1) / e0.sum(axis=1)
        const = m[:, None] * e0
        n = use.sum(axis=1)
        chi2 = np.where(use & (const > 0), (M0 - const) ** 2 / np.where(const > 0, const, 1.0), 0.0).sum(axis=1)
        p = special.gammaincc((n - 1) / 2.0, chi2 / 2.0)
        smooth_rate = _running_sum(M0, smooth) / _running_sum(e0, smooth)
        rate = np.where((p >= p_const)[:, None] | ~np.isfinite(p)[:, None], m[:, None], smooth_rate)
    B = alpha[:, None] * np.nan_to_num(rate) * e0
    return np.where(use, B, np.nan).reshape(np.shape(bkg_counts))


# -----------------------------------------------------------------------------------------
# light-curve shape features (one curve at a time: these feed classification, not the flag)
# -----------------------------------------------------------------------------------------


def shape_features(time, rate, rate_err, resid, *, lomb_scargle: bool = True) -> dict[str, float]:
    """Shape features of one light curve (1-D arrays over the used bins).

    * ``VN_RATIO``: von Neumann ratio eta = [sum (x_{i+1}-x_i)^2/(n-1)] / S^2 (von Neumann 1941,
      Ann. Math. Stat. 12, 367); ~2 for white noise, small for smooth trends or long flares.
    * ``STETSON_J``: Stetson (1996, PASP 108, 851, eq. 1) with consecutive bins as pairs:
      delta_i = sqrt(n/(n-1)) (x_i - xbar)/sigma_i, P_k = delta_i delta_{i+1},
      J = sum sgn(P_k) sqrt|P_k| / (n-1); ~0 for noise, > 0 for correlated excursions.
    * ``SKEW``, ``KURT``: skewness and excess kurtosis of the residuals Z_i (D_i - mu e_i)/sqrt(V_i).
    * ``FRAC3SIG``: fraction of bins with |Z_i| > 3.
    * ``LS_PERIOD`` [s], ``LS_POWER``, ``LS_FAP``: highest Lomb-Scargle peak (astropy; standard
      normalisation; frequencies from 1/T to the Nyquist frequency of the median bin) and its
      false-alarm probability (Baluev 2008, MNRAS 385, 1279).
    """
    t, x, s, z = (np.asarray(a, float) for a in (time, rate, rate_err, resid))
    n = x.size
    out = dict(
        VN_RATIO=np.nan,
        STETSON_J=np.nan,
        SKEW=np.nan,
        KURT=np.nan,
        FRAC3SIG=np.nan,
        LS_PERIOD=np.nan,
        LS_POWER=np.nan,
        LS_FAP=np.nan,
    )
    if n < 3:
        return out
    s2 = x.var(ddof=1)
    if s2 > 0:
        out["VN_RATIO"] = float(np.sum(np.diff(x) ** 2) / (n - 1) / s2)
    good = s > 0
    if good.all():
        delta = np.sqrt(n / (n - 1)) * (x - x.mean()) / s
        P = delta[:-1] * delta[1:]
        out["STETSON_J"] = float(np.sum(np.sign(P) * np.sqrt(np.abs(P))) / (n - 1))
    zc = z - z.mean()
    m2 = np.mean(zc**2)
    if m2 > 0:
        out["SKEW"] = float(np.mean(zc**3) / m2**1.5)
        out["KURT"] = float(np.mean(zc**4) / m2**2 - 3.0)
    out["FRAC3SIG"] = float(np.mean(np.abs(z) > 3))
    if lomb_scargle and n >= 8 and s2 > 0 and np.ptp(t) > 0:
        out.update(lomb_scargle_peak(t, x, s if good.all() else None))
    return out


def lomb_scargle_peak(t, x, dy=None) -> dict[str, float]:
    """Highest Lomb-Scargle peak (VanderPlas 2018, ApJS 236, 16) between 1/T and the Nyquist
    frequency 1/(2 median dt), oversampled 5x, with its Baluev false-alarm probability."""
    from astropy.timeseries import LombScargle

    T = np.ptp(t)
    dt = np.median(np.diff(t))
    fmin, fmax = 1.0 / T, 0.5 / dt
    nf = int(min(2e5, max(50, 5 * T * (fmax - fmin))))
    freq = np.linspace(fmin, fmax, nf)
    ls = LombScargle(t, x, dy)
    power = ls.power(freq)
    k = int(np.nanargmax(power))
    fap = ls.false_alarm_probability(power[k], minimum_frequency=fmin, maximum_frequency=fmax, method="baluev")
    return {"LS_PERIOD": float(1.0 / freq[k]), "LS_POWER": float(power[k]), "LS_FAP": float(fap)}


def bayesian_block_features(time, counts, exposure, bkg_expected=None, *, p0: float = 0.01) -> dict[str, float]:
    """Bayesian blocks (Scargle et al. 2013, ApJ 764, 167; astropy) of one binned curve.

    Blocks are found on the gross counts with the 'events' fitness N_k (ln N_k - ln T_k)
    (Scargle eq. 19) evaluated on the *exposure* axis (the cumulative exposure at each bin), so
    gaps and partial bins do not masquerade as rate changes; ``p0`` sets the prior (eq. 21).
    Block net rates are (sum N - sum B)/sum e.

    Returns ``BB_NBLOCKS``, ``BB_RMAX``, ``BB_RMIN`` [counts/s], ``BB_RATIO`` (max/min net block
    rate; NaN when the faintest block is <= 0) and ``BB_TPEAK`` [s, mission time] (centre of the
    brightest block).
    """
    t = np.asarray(time, float)
    out = dict(BB_NBLOCKS=np.nan, BB_RMAX=np.nan, BB_RMIN=np.nan, BB_RATIO=np.nan, BB_TPEAK=np.nan)
    seg = bayesian_block_segments(counts, exposure, bkg_expected, p0=p0)
    if seg is None:
        return out
    starts, stops, r = seg
    k = int(np.argmax(r))
    out.update(
        BB_NBLOCKS=float(len(starts)),
        BB_RMAX=float(r.max()),
        BB_RMIN=float(r.min()),
        BB_RATIO=float(r.max() / r.min()) if r.min() > 0 else np.nan,
        BB_TPEAK=float(0.5 * (t[starts[k]] + t[stops[k] - 1])),
    )
    return out


def bayesian_block_segments(counts, exposure, bkg_expected=None, *, p0: float = 0.01):
    """Blocks of one binned curve as (first bin, end bin (exclusive), net rate) arrays, or None
    for fewer than 2 bins or no counts (see :func:`bayesian_block_features`)."""
    from astropy.stats import bayesian_blocks

    N, e = np.asarray(counts, float), np.asarray(exposure, float)
    B = np.zeros_like(N) if bkg_expected is None else np.asarray(bkg_expected, float)
    if N.size < 2 or N.sum() <= 0:
        return None
    cum = np.cumsum(e) - 0.5 * e  # exposure-axis bin centres
    edges = bayesian_blocks(cum, np.round(N).astype(int), fitness="events", p0=p0)
    starts = np.concatenate([[0], np.searchsorted(cum, edges[1:-1])])  # first bin of each block
    stops = np.concatenate([starts[1:], [N.size]])
    rates = (np.add.reduceat(N, starts) - np.add.reduceat(B, starts)) / np.add.reduceat(e, starts)
    return starts, stops, rates


# -----------------------------------------------------------------------------------------
# helpers
# -----------------------------------------------------------------------------------------


def _running_sum(a, width: int):
    """Centred running sum over ``width`` bins along axis 1 (truncated at the ends)."""
    w = max(1, int(width))
    c = np.concatenate([np.zeros((a.shape[0], 1)), np.cumsum(a, axis=1)], axis=1)
    i = np.arange(a.shape[1])
    lo, hi = np.clip(i - (w - 1) // 2, 0, a.shape[1]), np.clip(i + w // 2 + 1, 0, a.shape[1])
    return c[:, hi] - c[:, lo]


def _as_batch(counts, exposure, bkg_counts, bkg_scale, bkg_model):
    N = np.atleast_2d(np.asarray(counts, float))
    e = np.broadcast_to(np.atleast_2d(np.asarray(exposure, float)), N.shape)
    M = (
        np.zeros_like(N)
        if bkg_counts is None
        else np.broadcast_to(np.atleast_2d(np.asarray(bkg_counts, float)), N.shape)
    )
    alpha = np.broadcast_to(
        np.asarray(bkg_scale, float).ravel() if np.ndim(bkg_scale) else np.asarray(bkg_scale, float), (N.shape[0],)
    ).astype(float)
    if bkg_model is None:
        B = np.zeros_like(N) if bkg_counts is None else background_model(M, e, alpha)
    else:
        B = np.broadcast_to(np.atleast_2d(np.asarray(bkg_model, float)), N.shape)
    return N, e, M, alpha, B


def single(stats_dict: Mapping[str, np.ndarray], i: int = 0) -> dict:
    """Row ``i`` of a batch result as plain Python scalars."""
    return {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in stats_dict.items()}
