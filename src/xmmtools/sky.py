"""Sky geometry, written once: unit vectors, angular separations and sky-area constants.

Owns the small numeric helpers every stage needs on the celestial sphere (crossmatch,
sensitivity, variability, classify) and the one check of RA/Dec columns.  Numpy only, no file
access.  The formulas (and their operation
order) are the ones the stages used before they were gathered here, so results are
bit-identical; change one only with a benchmark of what it changes.

HEALPix work stays with its users (crossmatch priors/HATS, sensitivity maps): they share no
helper today.
"""

from __future__ import annotations

import math

import numpy as np

from xmmtools.errors import DataError

#: one arcsecond in radians
ARCSEC = np.pi / 180.0 / 3600.0
#: the full sky in square degrees: 4 pi (180/pi)^2
FULL_SKY_DEG2 = 4.0 * np.pi * (180.0 / np.pi) ** 2


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """(N, 3) unit vectors from RA/Dec in degrees."""
    ra = np.radians(np.asarray(ra_deg, dtype=float))
    dec = np.radians(np.asarray(dec_deg, dtype=float))
    cd = np.cos(dec)
    return np.column_stack([cd * np.cos(ra), cd * np.sin(ra), np.sin(dec)])


def chord_to_arcsec(chord: np.ndarray) -> np.ndarray:
    """Great-circle angle (arcsec) from the chord length between unit vectors: 2 arcsin(c/2)."""
    return 2.0 * np.arcsin(np.clip(np.asarray(chord) / 2.0, 0.0, 1.0)) / ARCSEC


def separation_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Angular separation in arcsec (Vincenty formula, accurate at all angles)."""
    l1, b1, l2, b2 = (np.radians(np.asarray(x, dtype=float)) for x in (ra1, dec1, ra2, dec2))
    dl = l2 - l1
    sb1, cb1, sb2, cb2 = np.sin(b1), np.cos(b1), np.sin(b2), np.cos(b2)
    num1 = cb2 * np.sin(dl)
    num2 = cb1 * sb2 - sb1 * cb2 * np.cos(dl)
    den = sb1 * sb2 + cb1 * cb2 * np.cos(dl)
    return np.arctan2(np.hypot(num1, num2), den) / ARCSEC


def pair_separation_arcsec(ra1, dec1, ra2, dec2) -> float:
    """Angular separation of one pair of positions (Vincenty formula, as astropy's) in arcsec;
    NaN if a position is unknown (None or not finite).  Scalar companion of
    :func:`separation_arcsec` (kept with its own operation order: degrees x 3600)."""
    vals = [ra1, dec1, ra2, dec2]
    if any(v is None or not np.isfinite(v) for v in vals):
        return math.nan
    l1, b1, l2, b2 = np.radians(vals)
    dl = l2 - l1
    num = np.hypot(np.cos(b2) * np.sin(dl), np.cos(b1) * np.sin(b2) - np.sin(b1) * np.cos(b2) * np.cos(dl))
    den = np.sin(b1) * np.sin(b2) + np.cos(b1) * np.cos(b2) * np.cos(dl)
    return float(np.degrees(np.arctan2(num, den)) * 3600.0)


def check_coordinates(
    ra: np.ndarray, dec: np.ndarray, where: str, offset: int = 0, *, allow_missing: bool = False
) -> None:
    """Raise a one-line DataError for NaN or out-of-range coordinates, naming the first row
    (``offset``: the file row of ``ra[0]``, for chunks).  RA must be in [0, 360] deg and DEC
    in [-90, 90]: an RA outside is refused, not wrapped (a value such as -10 or 1e308 is far
    more often a wrong column or unit than a convention, and a wrapped wrong value would be
    indistinguishable from a non-match); boolean columns are refused as coordinates.  With
    ``allow_missing`` a NaN (null) RA or DEC is accepted as a row without a position (classify's
    |b| is then a missing feature); infinities are still refused."""
    if np.asarray(ra).dtype == bool or np.asarray(dec).dtype == bool:
        raise DataError(f"{where}: RA/DEC columns hold booleans, not coordinates in degrees")
    ra = np.asarray(ra, dtype=float)
    dec = np.asarray(dec, dtype=float)
    if not len(ra) or (
        np.isfinite(ra.min())
        and np.isfinite(ra.max())  # NaN/inf show in min/max
        and ra.min() >= 0
        and ra.max() <= 360
        and dec.min() >= -90
        and dec.max() <= 90
    ):
        return
    bad = np.isinf(ra) | np.isinf(dec) if allow_missing else ~np.isfinite(ra) | ~np.isfinite(dec)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "infinite" if allow_missing else "missing (NaN/null)"
        raise DataError(
            f"{where}: {int(bad.sum())} rows have {what} RA or DEC, first at row {i + offset}; remove or fill them"
        )
    with np.errstate(invalid="ignore"):
        out = np.abs(dec) > 90
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise DataError(
            f"{where}: DEC={float(dec[i]):g} at row {i + offset} is outside [-90, 90] deg ({int(out.sum())} such rows)"
        )
    with np.errstate(invalid="ignore"):
        out = (ra < 0) | (ra > 360)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise DataError(
            f"{where}: RA={float(ra[i]):g} at row {i + offset} is outside [0, 360] deg ({int(out.sum())} such rows); "
            "check the column and its unit (RA in [-180, 180): add 360 to the negative values)"
        )
