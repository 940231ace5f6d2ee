"""Positional errors: every convention converted to a 2-d Gaussian with 1-sigma per axis.

The Bayes factor (Budavari & Szalay 2008; Pineau et al. 2017, A&A 597, A89, Sect. 2) needs,
per source, the covariance of its position on the tangent plane: sigma_x (along RA cos Dec,
towards east), sigma_y (along Dec, north) and their correlation rho, in arcsec.

Conventions handled (see docs/crossmatch.md):

* Generic error column / fixed value (NWAY's ``:pos_err`` and ``catalogue.fits 0.1``): 1 sigma
  per axis, circular: sigma_x = sigma_y = e.
* 4XMM ``POSERR`` (= sqrt(RADEC_ERR^2 + SYSERRCC^2), Webb et al. 2020, A&A 641, A136) and
  ``RADEC_ERR`` are radial errors sqrt(sigma_RA^2 + sigma_Dec^2): for a circular Gaussian the
  radius sqrt(2) sigma encloses 1 - exp(-1) = 63.2 % of the probability, so
  sigma = POSERR / sqrt(2).  The same holds for ``SC_POSERR``, VizieR ``ePos`` and HEASARC
  ``error_radius``.
* Gaia ``ra_error``/``dec_error`` (mas, sigma of RA cos Dec and Dec) with ``ra_dec_corr``.
* Error ellipse ``a:b:phi`` (1-sigma semi-axes, angle in degrees) in NWAY's convention:
  phi = 0 puts the major axis along RA, phi = 90 along Dec; phi is the usual position angle
  (east of north) plus 90 deg.  The covariance follows Pineau et al. 2017, eqs. 8-10.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xmmtools.errors import DataError

#: Column names whose values are 4XMM-style radial (63 %) errors: sigma = value / sqrt(2).
RADIAL_NAMES = ("POSERR", "SC_POSERR", "RADEC_ERR", "EPOS", "ERROR_RADIUS")


@dataclass
class PosErrors:
    """1-sigma tangent-plane errors in arcsec: sx (RA cos Dec), sy (Dec), rho (correlation)."""

    sx: np.ndarray
    sy: np.ndarray
    rho: np.ndarray

    @classmethod
    def circular(cls, sigma, n: int | None = None) -> PosErrors:
        s = np.asarray(sigma, dtype=float)
        if s.ndim == 0:  # a fixed error: read-only broadcast views, no memory per row
            s = np.broadcast_to(s, (n if n is not None else 1,))
            return cls(s, s, np.broadcast_to(0.0, s.shape))
        return cls(s, s, np.zeros_like(s))

    @classmethod
    def ellipse(cls, a, b, phi_deg) -> PosErrors:
        """From 1-sigma semi-axes a >= b (arcsec) and NWAY's angle phi (deg); Pineau+2017 eqs 8-10
        with the angle t = phi - 90 deg: sx^2 = a^2 sin^2 t + b^2 cos^2 t,
        sy^2 = a^2 cos^2 t + b^2 sin^2 t, rho = cos t sin t (a^2 - b^2) / (sx sy)."""
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        t = np.radians(np.asarray(phi_deg, dtype=float) - 90.0)
        s, c = np.sin(t), np.cos(t)
        sx = np.sqrt(a * a * s * s + b * b * c * c)
        sy = np.sqrt(a * a * c * c + b * b * s * s)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.where(sx * sy > 0, c * s * (a * a - b * b) / (sx * sy), 0.0)
        return cls(sx, sy, rho)

    def __len__(self) -> int:
        return len(self.sx)

    def take(self, idx: np.ndarray) -> PosErrors:
        return PosErrors(self.sx[idx], self.sy[idx], self.rho[idx])

    @property
    def is_circular(self) -> bool:
        return bool(np.all(self.rho == 0) and np.all(self.sx == self.sy))

    def precision(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Inverse covariance (w11, w12, w22) in arcsec^-2."""
        sx2, sy2 = self.sx**2, self.sy**2
        cxy = self.rho * self.sx * self.sy
        det = sx2 * sy2 - cxy * cxy
        return sy2 / det, -cxy / det, sx2 / det

    def max_sigma(self) -> float:
        return float(np.nanmax(np.maximum(self.sx, self.sy))) if len(self.sx) else 0.0

    def validate(self, where: str) -> None:
        """One-line DataError for missing, zero or negative errors or |rho| >= 1."""
        for name, v in (("error", self.sx), ("error", self.sy)):
            bad = ~np.isfinite(v) | (v <= 0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"{where}: positional {name} {float(v[i]):g} at row {i} is missing or not positive "
                    f"({int(bad.sum())} such rows); give --pos-err NAME=ARCSEC or fix the column"
                )
        bad = ~np.isfinite(self.rho) | (np.abs(self.rho) >= 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{where}: error-ellipse correlation {float(self.rho[i]):g} at row {i} is not in (-1, 1)")


def radial_to_sigma(radial) -> np.ndarray:
    """4XMM POSERR / RADEC_ERR (radial, 63 % radius) -> 1-sigma per axis: value / sqrt(2)."""
    return np.asarray(radial, dtype=float) / np.sqrt(2.0)


def fourxmm_sigma(radec_err, syserrcc=None) -> np.ndarray:
    """1-sigma per axis from 4XMM RADEC_ERR and (optionally) SYSERRCC, both radial:
    sqrt(RADEC_ERR^2 + SYSERRCC^2) / sqrt(2) (= POSERR / sqrt(2))."""
    r = np.asarray(radec_err, dtype=float)
    if syserrcc is not None:
        r = np.hypot(r, np.asarray(syserrcc, dtype=float))
    return radial_to_sigma(r)


#: arcsec per unit for error columns that carry a unit
UNIT_SCALE = {
    "arcsec": 1.0,
    "as": 1.0,
    '"': 1.0,
    "mas": 1e-3,
    "deg": 3600.0,
    "degree": 3600.0,
    "arcmin": 60.0,
    "rad": 180.0 / np.pi * 3600.0,
}


def unit_scale(unit: str, default: float, where: str) -> float:
    """Multiplier to arcsec for a column unit ('' -> ``default``)."""
    u = (unit or "").strip().lower()
    if not u:
        return default
    if u in UNIT_SCALE:
        return UNIT_SCALE[u]
    raise DataError(
        f"{where}: unit {unit!r} of a positional-error column is not an angle "
        f"(expected one of {', '.join(sorted(UNIT_SCALE))})"
    )
