"""Band conversion to the common 0.1-12 keV band (STONKS; Quintin et al. 2024, A&A 687, A250).

Fluxes from different missions are measured in different bands.  STONKS puts them on a common
0.1-12 keV band by dividing each catalogue flux by a fixed factor

    F_0.1-12 = F_band / f,   f = F_band / F_0.1-12  for an assumed spectrum

with the spectrum an absorbed power law, photon index Gamma = 1.7 and N_H = 3e20 cm^-2 (Quintin
et al. 2024, Sect. 2.2).  The tabulated factors (``data/variability/band_factors.csv``:
XMM EP_8 0.999, Chandra CSC broad 0.69, Swift 2SXPS 0.9, eROSITA 0.39, ROSAT 0.41) are the
paper's.  :func:`band_factor` recomputes a factor for any band and spectral model:

    f = int_lo^hi E N(E) exp(-N_H sigma(E)) dE / int_0.1^12 E N(E) exp(-N_H sigma(E)) dE,
    N(E) = E^-Gamma,

the ratio of *observed* (absorbed) energy fluxes, with sigma(E) the photo-electric cross-section
per hydrogen atom of Morrison & McCammon 1983 (ApJ 270, 119, Table 2; :func:`cross_section`).
At Gamma=1.7, N_H=3e20 it reproduces the five STONKS factors within 0.01 (largest difference:
CSC 0.6985 vs 0.69); the unabsorbed ratio would not (e.g. 0.93 for XMM), so the STONKS factors
are absorbed-flux ratios.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from xmmtools.columns import band_range
from xmmtools.errors import DataError

#: The common band of the long-term light curves (keV).
COMMON_BAND = (0.1, 12.0)


@dataclass(frozen=True)
class PowerLaw:
    """Absorbed power law: photon index ``gamma``, Galactic column ``nh`` (cm^-2)."""

    gamma: float = 1.7
    nh: float = 3e20

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_MODEL


DEFAULT_MODEL = PowerLaw()

# Morrison & McCammon 1983, ApJ 270, 119, Table 2: sigma(E) = (c0 + c1 E + c2 E^2) E^-3 1e-24 cm^2
# per H atom (solar abundances), E in keV, valid 0.03-10 keV; the last range is extrapolated
# to 12 keV (at N_H ~ 1e20-1e22 the absorption there is < 1e-3).  One transcription in circulation
# gives c2 = -0.75 for 4.038-7.111 keV; the paper's value is +0.75; the difference moves the
# factors by < 1e-5 at N_H = 3e20 (tested).
_MM83_EDGES = np.array(
    [0.030, 0.100, 0.284, 0.400, 0.532, 0.707, 0.867, 1.303, 1.840, 2.471, 3.210, 4.038, 7.111, 8.331, 10.00]
)
_MM83_COEFF = np.array(
    [
        [17.3, 608.1, -2150.0],
        [34.6, 267.9, -476.1],
        [78.1, 18.8, 4.3],
        [71.4, 66.8, -51.4],
        [95.5, 145.8, -61.1],
        [308.9, -380.6, 294.0],
        [120.6, 169.3, -47.7],
        [141.3, 146.8, -31.5],
        [202.7, 104.7, -17.0],
        [342.7, 18.7, 0.0],
        [352.2, 18.7, 0.0],
        [433.9, -2.4, 0.75],
        [629.0, 30.9, 0.0],
        [701.2, 25.2, 0.0],
    ]
)


def cross_section(energy_kev, coefficients: np.ndarray | None = None) -> np.ndarray:
    """Photo-electric cross-section per H atom (cm^2), Morrison & McCammon 1983, Table 2."""
    e = np.asarray(energy_kev, dtype=float)
    c = _MM83_COEFF if coefficients is None else coefficients
    i = np.clip(np.searchsorted(_MM83_EDGES, e, side="right") - 1, 0, len(c) - 1)
    return (c[i, 0] + c[i, 1] * e + c[i, 2] * e * e) / e**3 * 1e-24


def band_energy_flux(
    lo: float, hi: float, model: PowerLaw = DEFAULT_MODEL, *, n: int = 20001, coefficients: np.ndarray | None = None
) -> float:
    """Observed energy flux of the absorbed power law in lo-hi keV (arbitrary normalisation).

    int_lo^hi E N(E) exp(-N_H sigma(E)) dE with N(E) = E^-Gamma, integrated by the trapezoid
    rule on ``n`` points uniform in ln E (the integrand E^2 N(E) dlnE is smooth between the
    absorption edges; n = 20001 is converged to < 1e-5 relative, tested).
    """
    if not 0 < lo < hi:
        raise DataError(f"band {lo}-{hi} keV: need 0 < lo < hi")
    e = np.geomspace(lo, hi, n)
    y = e ** (2.0 - model.gamma) * np.exp(-model.nh * cross_section(e, coefficients))
    return float(np.trapezoid(y, np.log(e)))


def band_factor(
    lo: float, hi: float, model: PowerLaw = DEFAULT_MODEL, *, common: tuple[float, float] = COMMON_BAND, n: int = 20001
) -> float:
    """f = F_lo-hi / F_common for the absorbed power law (STONKS conversion, Quintin+2024 Sect. 2.2)."""
    return band_energy_flux(lo, hi, model, n=n) / band_energy_flux(*common, model, n=n)


def flux_hardness(
    soft: tuple[float, float], hard: tuple[float, float], model: PowerLaw, weights: tuple[float, float] = (1.0, 1.0)
) -> float:
    """Model hardness ratio (H - S)/(H + S) of band fluxes S, H (times optional weights, e.g.
    ECFs to turn fluxes into count rates)."""
    s = band_energy_flux(*soft, model) * weights[0]
    h = band_energy_flux(*hard, model) * weights[1]
    return (h - s) / (h + s)


def hardness_range(
    soft: tuple[float, float],
    hard: tuple[float, float],
    nh: float,
    gammas: tuple[float, float] = (0.5, 2.5),
    weights: tuple[float, float] = (1.0, 1.0),
) -> tuple[float, float]:
    """Range of (H-S)/(H+S) spanned by absorbed power laws with Gamma in ``gammas`` (STONKS
    spectral-shape check).  HR decreases monotonically with Gamma, but a grid of 21 indices is
    evaluated so the bounds hold for any band pair."""
    g = np.linspace(gammas[0], gammas[1], 21)
    hr = [flux_hardness(soft, hard, PowerLaw(float(x), nh), weights) for x in g]
    return float(min(hr)), float(max(hr))


# ------------------------------------------------------------------------------------------
# The catalogue table
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueBand:
    catalogue: str
    aliases: tuple[str, ...]
    mission: str
    is_xmm: bool
    band: tuple[float, float]
    factor: float
    soft: tuple[float, float] | None
    hard: tuple[float, float] | None
    reference: str
    hr_kind: str = "flux"  # the catalogue's HR column: flux (energy-flux ratio) or rate (count rates)


@lru_cache(maxsize=1)
def catalogue_bands() -> dict[str, CatalogueBand]:
    """The shipped STONKS factor table keyed by upper-case catalogue name and every alias."""
    text = resources.files("xmmtools").joinpath("data/variability/band_factors.csv").read_text()
    rows = csv.DictReader(ln for ln in text.splitlines() if ln and not ln.startswith("#"))
    out: dict[str, CatalogueBand] = {}
    for r in rows:

        def pair(a, b, r=r):
            return (float(r[a]), float(r[b])) if r[a] and r[b] else None

        cb = CatalogueBand(
            r["catalogue"],
            tuple(a for a in r["aliases"].split(";") if a),
            r["mission"],
            r["is_xmm"] == "1",
            pair("band_lo", "band_hi"),
            float(r["factor"]),
            pair("soft_lo", "soft_hi"),
            pair("hard_lo", "hard_hi"),
            r["reference"],
            (r.get("hr_kind") or "flux").strip(),
        )
        for key in (cb.catalogue, *cb.aliases):
            out[key.upper()] = cb
    return out


def lookup_catalogue(name: str) -> CatalogueBand | None:
    """The table row of a catalogue name or alias (case-insensitive), or None."""
    return catalogue_bands().get(str(name).strip().upper())


def factor_for(catalogue: str | None = None, band: str | int | None = None, model: PowerLaw = DEFAULT_MODEL) -> float:
    """Conversion factor f (F_common = F / f) for a catalogue and/or a band.

    ``band`` (a 4XMM band number or 'lo-hi' keV) wins over the catalogue's own band.  With the
    default model and a band equal to a tabulated catalogue band, the tabulated STONKS factor is
    returned; otherwise the factor is integrated (:func:`band_factor`).
    """
    cb = lookup_catalogue(catalogue) if catalogue else None
    if band is not None and str(band).strip() != "":
        lo_hi = band_range(_band_key(band))
    elif cb is not None:
        lo_hi = cb.band
    else:
        raise DataError(
            f"catalogue {catalogue!r} is not in the band-factor table and no BAND is given "
            f"(known: {', '.join(sorted({c.catalogue for c in catalogue_bands().values()}))})"
        )
    if model.is_default:
        if cb is not None and _same_band(cb.band, lo_hi):
            return cb.factor
        for other in catalogue_bands().values():
            if _same_band(other.band, lo_hi):
                return other.factor
    return _cached_factor(lo_hi[0], lo_hi[1], model)


def factors_for(catalogue: str | None, bands: Iterable | None, model: PowerLaw, n: int) -> np.ndarray:
    """Vector of factors for ``n`` rows: one catalogue, optional per-row bands."""
    if bands is None:
        return np.full(n, factor_for(catalogue, None, model))
    b = np.asarray([str(x).strip() if x is not None else "" for x in bands])
    out = np.empty(n)
    for key in np.unique(b):
        out[b == key] = factor_for(catalogue, key if key not in ("", "nan", "None") else None, model)
    return out


@lru_cache(maxsize=256)
def _cached_factor(lo: float, hi: float, model: PowerLaw) -> float:
    return band_factor(lo, hi, model)


def _band_key(band) -> str | int:
    s = str(band).strip()
    if "-" in s[1:]:
        return s
    try:
        return int(float(s))
    except ValueError:
        raise DataError(f"band {band!r} is neither a 4XMM band number nor 'lo-hi' in keV") from None


def _same_band(a: Sequence[float], b: Sequence[float]) -> bool:
    return abs(a[0] - b[0]) < 1e-9 and abs(a[1] - b[1]) < 1e-9
