"""Catalogue-only mode: detection thresholds at every detection of a 4XMM detection catalogue.

No maps are needed: the catalogue gives, per camera c and band b (1-5), the exposure at the
source position ``c_b_EXP`` (s, vignetted), the background ``c_b_BG`` (counts per 4"x4" image
pixel) and the off-axis angle ``c_OFFAX`` (arcmin).  In an aperture of radius r the background
is B = BG * pi r^2 / 16 arcsec^2 and the threshold follows :mod:`.flix` with the King EEF
(:mod:`.psf`) and the 4XMM ECF of the camera's filter.  Band 8 (0.2-12 keV) sums the
background of bands 1-5 and uses their mean exposure, the EEF at the band's geometric-mean
energy and the band-8 ECF (an approximation: the catalogue's band-8 flux is the sum of the
band fluxes).  ``EP_<b>_THRESH_FLUX`` is the best (lowest) camera threshold.
"""

from __future__ import annotations

import numpy as np

from xmmtools import columns
from xmmtools.columns import Need
from xmmtools.errors import ColumnError
from xmmtools.sensitivity import psf
from xmmtools.sensitivity.flix import rate_to_flux, threshold_rate
from xmmtools.stages import StageSpec
from xmmtools.tables.model import NewColumn

#: 4XMM background maps have 4" pixels (Webb et al. 2020 §3; XMM-SSC user guide).
BG_PIXEL_ARCSEC = 4.0
DEFAULT_BANDS = (1, 2, 3, 4, 5, 8)


def catalogue_spec(bands=DEFAULT_BANDS) -> StageSpec:
    """Columns the catalogue mode reads: per camera OFFAX, FILTER and per band EXP and BG."""
    needs = []
    for cam in columns.INSTRUMENTS:
        needs += [Need(f"{cam}_OFFAX", optional=True), Need(f"{cam}_FILTER", kind="text", optional=True)]
        for b in _raw_bands(bands):
            needs += [
                Need(columns.exposure_column(cam, b), optional=True),
                Need(columns.background_column(cam, b), optional=True),
            ]
    return StageSpec(
        "sensitivity",
        "detection thresholds from a 4XMM detection catalogue",
        needs,
        any_of=[[Need(f"{c}_OFFAX") for c in columns.INSTRUMENTS]],
    )


def catalogue_thresholds(
    cols, bands=DEFAULT_BANDS, likelihood: float = 10.0, radius_arcsec: float = 30.0
) -> list[NewColumn]:
    """``<CAM>_<b>_THRESH_FLUX`` for PN/M1/M2 and ``EP_<b>_THRESH_FLUX`` (best camera)."""
    area_pix = np.pi * radius_arcsec**2 / BG_PIXEL_ARCSEC**2
    out: list[NewColumn] = []
    n = len(cols)
    for b in bands:
        lo, hi = columns.band_range(b)
        best = np.full(n, np.inf)
        any_cam = False
        for cam in columns.INSTRUMENTS:
            raw = _raw_bands([b])
            names = [columns.exposure_column(cam, k) for k in raw] + [columns.background_column(cam, k) for k in raw]
            if f"{cam}_OFFAX" not in cols or not all(nm in cols for nm in names):
                continue
            any_cam = True
            exp = np.mean([cols.float(columns.exposure_column(cam, k)) for k in raw], axis=0)
            bkg = np.sum([cols.float(columns.background_column(cam, k)) for k in raw], axis=0) * area_pix
            eef = psf.eef(cam, radius_arcsec, psf.band_energy(lo, hi), cols.float(f"{cam}_OFFAX"))
            ecf = _ecf_per_row(cols, cam, b)
            flux = rate_to_flux(threshold_rate(bkg, eef, exp, likelihood), ecf)
            flux = np.where(exp > 0, flux, np.nan)
            best = np.fmin(best, flux)
            out.append(
                NewColumn(
                    f"{cam}_{b}_THRESH_FLUX",
                    flux,
                    "erg/cm2/s",
                    f"{cam} flux of a source at the detection threshold L={likelihood:g} in band {b} "
                    f'({lo:g}-{hi:g} keV) at this position, {radius_arcsec:g}" aperture',
                )
            )
        if not any_cam:
            raise ColumnError(f"sensitivity --from-catalog: no camera has OFFAX, EXP and BG columns for band {b}")
        out.append(
            NewColumn(
                f"EP_{b}_THRESH_FLUX",
                np.where(np.isfinite(best), best, np.nan),
                "erg/cm2/s",
                f"best (lowest) camera threshold flux in band {b} ({lo:g}-{hi:g} keV)",
            )
        )
    return out


def _raw_bands(bands) -> list[int]:
    raw: set[int] = set()
    for b in bands:
        raw.update(range(1, 6) if int(b) == 8 else [int(b)])
        if int(b) not in (1, 2, 3, 4, 5, 8):
            raise ColumnError(f"sensitivity --from-catalog: band {b} has no EXP/BG columns (bands 1-5, 8)")
    return sorted(raw)


def _ecf_per_row(cols, cam: str, band: int) -> np.ndarray:
    """ECF per row from the camera's filter column (thin when absent)."""
    n = len(cols)
    if f"{cam}_FILTER" not in cols:
        return np.full(n, columns.ecf(cam, band, "thin"))
    filt = np.asarray(cols.values(f"{cam}_FILTER"), dtype=object)
    out = np.full(n, np.nan)
    for f in set(filt.tolist()):
        key = columns._FILTER_ALIASES.get(str(f).strip().upper()) if f is not None else None
        if key is not None:
            out[filt == f] = columns.ecf(cam, band, key)
    return out
