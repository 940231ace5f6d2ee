"""Encircled-energy fraction of the EPIC point-spread function (King profile).

Model: the in-flight calibration of the EPIC PSF by S. Ghizzardi, XMM-SOC-CAL-TN / EPIC-MCT-TN-011
(MOS1, MOS2; 2001) and EPIC-MCT-TN-012 (pn; 2002), as quoted in the XMM-Newton Users Handbook
§3.2.1.1 and used by XIMAGE (``xmm_psf``): a King profile

    PSF(r) = A [1 + (r/r_c)^2]^(-alpha),
    r_c   = a + b E + c theta + d E theta        (arcsec),
    alpha = X + Y E + Z theta + W E theta,

E in keV, theta the off-axis angle in arcmin.  Integrated over a circle of radius R the
encircled-energy fraction is EEF(R) = 1 - [1 + (R/r_c)^2]^(1 - alpha).  The fit holds for
E = 0.2-12 keV and theta <= 15'; outside we clip E and theta into that range.  The King
profile is an azimuthal average: it ignores the off-axis elongation of the real PSF.
"""

from __future__ import annotations

import numpy as np

from xmmtools.columns import _instrument

#: (a, b, c, d, X, Y, Z, W) per camera (Ghizzardi 2001, 2002).
KING = {
    "PN": (6.636, -0.305, -0.175, -0.0067, 1.525, -0.015, -0.012, -0.0010),
    "M1": (5.074, -0.236, 0.002, -0.0180, 1.472, -0.010, -0.001, -0.0016),
    "M2": (4.759, -0.203, 0.014, -0.0229, 1.411, -0.005, -0.001, -0.0002),
}


def king_parameters(instrument: str, energy_kev, offaxis_arcmin) -> tuple[np.ndarray, np.ndarray]:
    """Core radius r_c (arcsec) and slope alpha of the King profile (Ghizzardi 2001, 2002)."""
    a, b, c, d, x, y, z, w = KING[_instrument(instrument)]
    e = np.clip(np.asarray(energy_kev, dtype=float), 0.2, 12.0)
    t = np.clip(np.asarray(offaxis_arcmin, dtype=float), 0.0, 15.0)
    return a + b * e + c * t + d * e * t, x + y * e + z * t + w * e * t


def eef(instrument: str, radius_arcsec, energy_kev, offaxis_arcmin) -> np.ndarray:
    """Fraction of a point source's counts within ``radius_arcsec``: 1 - [1 + (R/r_c)^2]^(1-alpha)."""
    rc, alpha = king_parameters(instrument, energy_kev, offaxis_arcmin)
    r = np.asarray(radius_arcsec, dtype=float)
    return 1.0 - np.power(1.0 + (r / rc) ** 2, 1.0 - alpha)


def band_energy(lo_kev: float, hi_kev: float) -> float:
    """Representative energy of a band for the PSF: the geometric mean of its edges (keV)."""
    return float(np.sqrt(lo_kev * hi_kev))
