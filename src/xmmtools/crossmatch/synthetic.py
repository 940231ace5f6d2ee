"""Synthetic counterpart catalogues with known truth (tests and benchmarks).

Counterparts of a fraction ``completeness`` of the primaries are drawn around the primary
positions with the combined 1-sigma error per axis sqrt(sigma_primary^2 + sigma_secondary^2)
(the model the Bayes factor assumes); field sources are uniform on the sphere inside the RA/Dec
box of the primaries.  Magnitudes: counterparts N(21, 1.5), field sources follow rising number
counts dN/dm ~ 10^(0.3 m) on [18, 27] (a bright-counterpart case where a magnitude prior helps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Synthetic:
    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray
    truth: np.ndarray  # primary row of a true counterpart, -1 for field sources
    area_deg2: float


def box_area(ra_lo, ra_hi, dec_lo, dec_hi) -> float:
    """Area (deg^2) of an RA/Dec box."""
    return float(
        np.degrees(np.radians(ra_hi - ra_lo)) * np.degrees(np.sin(np.radians(dec_hi)) - np.sin(np.radians(dec_lo)))
    )


def counterparts(
    ra,
    dec,
    sigma_primary,
    *,
    density_deg2: float,
    sigma_secondary: float = 0.1,
    completeness: float = 0.9,
    seed: int = 1,
) -> Synthetic:
    rng = np.random.default_rng(seed)
    ra, dec, sp = (np.asarray(v, dtype=float) for v in (ra, dec, sigma_primary))
    lo_r, hi_r, lo_d, hi_d = ra.min(), ra.max(), dec.min(), dec.max()
    area = box_area(lo_r, hi_r, lo_d, hi_d)
    has = rng.random(len(ra)) < completeness
    rows = np.flatnonzero(has)
    s = np.sqrt(sp[rows] ** 2 + sigma_secondary**2) / 3600.0
    c_dec = dec[rows] + rng.normal(0, 1, len(rows)) * s
    c_ra = ra[rows] + rng.normal(0, 1, len(rows)) * s / np.cos(np.radians(dec[rows]))
    n_field = int(rng.poisson(density_deg2 * area))
    f_ra = rng.uniform(lo_r, hi_r, n_field)
    f_dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(lo_d)), np.sin(np.radians(hi_d)), n_field)))
    c_mag = rng.normal(21.0, 1.5, len(rows))
    u = rng.random(n_field)
    a = 0.3 * np.log(10)
    f_mag = np.log(np.exp(a * 18) + u * (np.exp(a * 27) - np.exp(a * 18))) / a
    order = rng.permutation(len(rows) + n_field)
    return Synthetic(
        np.r_[c_ra, f_ra][order],
        np.r_[c_dec, f_dec][order],
        np.r_[c_mag, f_mag][order],
        np.r_[rows, np.full(n_field, -1)][order],
        area,
    )


def sky(
    n: int,
    *,
    ra_range: tuple[float, float] = (0.0, 360.0),
    dec_range: tuple[float, float] = (-90.0, 90.0),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """n positions uniform on the sphere inside an RA/Dec box."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(*ra_range, n)
    s = np.sin(np.radians(dec_range))
    dec = np.degrees(np.arcsin(rng.uniform(s[0], s[1], n)))
    return ra, dec
