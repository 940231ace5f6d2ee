"""Energy conversion factors for any band: flux [erg/cm^2/s] = rate / (ECF * 1e11).

Sources (shipped in ``xmmtools/data/ecf``):
* 4XMM band numbers 1-9 with the catalogue spectrum (absorbed power law Gamma = 1.7,
  N_H = 3e20 cm^-2): the 3XMM/4XMM catalogue ECFs (Rosen et al. 2016; Mateos et al. 2009
  eq. 1 for the definition), through :func:`xmmtools.columns.ecf`.
* Other spectral models (Gamma = 1.42, N_H = 1.7e20) and the non-4XMM bands 0.5-2 and
  2-10 keV of the SAS exposure maps: ECFs computed with ecfxa 1.0 (A. Ruiz), observed flux.
Anything else needs an explicit ``--ecf``.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

from xmmtools import columns
from xmmtools.errors import DataError

CATALOGUE_MODEL = (1.7, 3e20)


@lru_cache(maxsize=1)
def _derived() -> list[dict]:
    text = resources.files("xmmtools").joinpath("data/ecf/ecf_ecfxa_derived.csv").read_text()
    return list(csv.DictReader(ln for ln in text.splitlines() if ln and not ln.startswith("#")))


def band_ecf(
    instrument: str, band: tuple[float, float], filter: str = "thin", gamma: float = 1.7, nh: float = 3e20
) -> float:
    """ECF (1e11 counts cm^2 erg^-1) of ``instrument`` in the energy band ``(lo, hi)`` keV.

    The 4XMM catalogue table is used for 4XMM bands with the catalogue spectrum; the ecfxa
    table for the other tabulated (band, spectrum) pairs.  Raises :class:`DataError` otherwise.
    """
    inst = columns._instrument(instrument)
    lo, hi = band
    number = band_number(band)
    if number is not None and abs(gamma - CATALOGUE_MODEL[0]) < 1e-6 and abs(nh / CATALOGUE_MODEL[1] - 1) < 1e-6:
        return columns.ecf(inst, number, filter)
    filt = columns._FILTER_ALIASES.get(str(filter).strip().upper())
    for row in _derived():
        if (
            row["instrument"] == inst
            and abs(float(row["emin_keV"]) - lo) < 1e-6
            and abs(float(row["emax_keV"]) - hi) < 1e-6
            and abs(float(row["gamma"]) - gamma) < 1e-6
            and abs(float(row["nh_cm2"]) / nh - 1) < 1e-6
            and filt in row
            and row[filt]
        ):
            return float(row[filt])
    raise DataError(
        f"no ECF for {inst} {lo:g}-{hi:g} keV, filter {filter}, Gamma={gamma:g}, "
        f"NH={nh:.3g}: tabulated spectra are Gamma=1.7/NH=3e20 and Gamma=1.42/NH=1.7e20; "
        "give --ecf"
    )


def band_number(band: tuple[float, float]) -> int | None:
    """The 4XMM band number of an energy range, or None."""
    for n, (lo, hi) in columns.BANDS.items():
        if abs(lo - band[0]) < 1e-6 and abs(hi - band[1]) < 1e-6:
            return n
    return None


def band_label(band: tuple[float, float]) -> str:
    """'8' for a 4XMM band, else 'lo-hi' in keV ('0.5-2')."""
    n = band_number(band)
    return str(n) if n is not None else f"{band[0]:g}-{band[1]:g}"
