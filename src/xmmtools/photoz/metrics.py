"""Photo-z quality metrics: point estimates and PDFs (DESIGN §9).

Δz = z_phot − z_spec.  bias = mean(Δz/(1+z_spec)); σNMAD = 1.48·median(|Δz − median(Δz)|/(1+z_spec))
(Brammer et al. 2008, ApJ 686, 1503; Ilbert et al. 2006); σ68 = half the central 68 % range of
Δz/(1+z_spec); η = fraction with |Δz|/(1+z_spec) above 0.15 (and 0.05).  PDFs: CRPS
(Hersbach 2000, Weather Forecast. 15, 559, eq. 5: ∫(F(z) − H(z − z_spec))² dz, exact for the
piecewise-linear CDF), PIT = F(z_spec) (Polsterer et al. 2016) with its Kolmogorov–Smirnov and
Cramér–von Mises distances from uniform, and the coverage of the central 68 % interval.
"""

from __future__ import annotations

import numpy as np

from xmmtools.photoz.pdf import cdf, cdf_at_edges, quantiles


def point_metrics(z_phot: np.ndarray, z_spec: np.ndarray) -> dict[str, float]:
    """bias, σNMAD, σ68 and outlier fractions of a point estimate (NaN estimates skipped)."""
    ok = np.isfinite(z_phot) & np.isfinite(z_spec)
    dz = (z_phot[ok] - z_spec[ok]) / (1.0 + z_spec[ok])
    raw = z_phot[ok] - z_spec[ok]
    if not len(dz):
        return {"n": 0}
    lo, hi = np.percentile(dz, [15.865, 84.135])
    return {
        "n": int(ok.sum()),
        "bias": float(np.mean(dz)),
        "bias_median": float(np.median(dz)),
        "sigma_nmad": float(1.48 * np.median(np.abs(raw - np.median(raw)) / (1.0 + z_spec[ok]))),
        "sigma_68": float(0.5 * (hi - lo)),
        "outliers_015": float(np.mean(np.abs(dz) > 0.15)),
        "outliers_005": float(np.mean(np.abs(dz) > 0.05)),
    }


def crps(p: np.ndarray, edges: np.ndarray, z_spec: np.ndarray) -> np.ndarray:
    """CRPS per object, ∫ (F(z) − H(z − z_spec))² dz (Hersbach 2000, eq. 5).

    F is linear inside each bin, so each bin's integral is exact: over [a, b] with F going
    from Fa to Fb, ∫F² = (b − a)(Fa² + FaFb + Fb²)/3 (and the same with 1 − F above z_spec);
    the bin holding z_spec is split there.  Outside the grid F is 0 (below) or 1 (above).
    """
    z = np.asarray(z_spec, dtype=np.float64)
    c = cdf_at_edges(p)
    a, b = edges[:-1][None, :], edges[1:][None, :]
    fa, fb = c[:, :-1], c[:, 1:]
    zz = z[:, None]
    below = b <= zz
    above = a >= zz
    total = np.where(below, (b - a) * (fa * fa + fa * fb + fb * fb) / 3.0, 0.0)
    ga, gb = 1.0 - fa, 1.0 - fb
    total += np.where(above, (b - a) * (ga * ga + ga * gb + gb * gb) / 3.0, 0.0)
    split = ~below & ~above
    with np.errstate(invalid="ignore", divide="ignore"):
        fz = fa + (fb - fa) * (zz - a) / (b - a)
    left = (zz - a) * (fa * fa + fa * fz + fz * fz) / 3.0
    gz = 1.0 - fz
    right = (b - zz) * (gz * gz + gz * gb + gb * gb) / 3.0
    total += np.where(split, left + right, 0.0)
    out = total.sum(axis=1) + np.clip(edges[0] - z, 0, None) + np.clip(z - edges[-1], 0, None)
    return np.where(np.isnan(p).any(axis=1), np.nan, out)


def pdf_metrics(p: np.ndarray, edges: np.ndarray, z_spec: np.ndarray) -> dict[str, float]:
    """Mean CRPS, PIT KS and Cramér–von Mises statistics, and 68 % interval coverage."""
    from scipy import stats

    ok = ~np.isnan(p).any(axis=1) & np.isfinite(z_spec)
    p, z = p[ok], z_spec[ok]
    if not len(z):
        return {}
    pit = cdf(p, edges, z)
    q = quantiles(p, edges, (0.16, 0.84))
    return {
        "crps": float(np.mean(crps(p, edges, z))),
        "pit_ks": float(stats.kstest(pit, "uniform").statistic),
        "pit_cvm": float(stats.cramervonmises(pit, "uniform").statistic),
        "coverage_68": float(np.mean((z >= q[:, 0]) & (z <= q[:, 1]))),
    }


def all_metrics(p: np.ndarray, edges: np.ndarray, z_spec: np.ndarray, estimates: dict) -> dict:
    """Point metrics of Z_PHOT (mode), plus σNMAD/η of Z_MEAN and Z_MEDIAN, plus PDF metrics."""
    out = point_metrics(estimates["Z_PHOT"], z_spec)
    for key, name in (("Z_MEAN", "mean"), ("Z_MEDIAN", "median")):
        m = point_metrics(estimates[key], z_spec)
        out.update(
            {f"{name}_{k}": v for k, v in m.items() if k in ("bias", "sigma_nmad", "outliers_015", "outliers_005")}
        )
    out.update(pdf_metrics(p, edges, z_spec))
    return out


def pit_values(p: np.ndarray, edges: np.ndarray, z_spec: np.ndarray) -> np.ndarray:
    return cdf(p, edges, z_spec)
