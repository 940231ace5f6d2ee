"""Per observation x camera x band: the maps a position is evaluated on.

From the exposure map E (s, vignetted), the counts image C and optionally a background map,
build on the image grid (FFT convolutions, so 10^6 positions cost one lookup each):

* aperture sums  N_ap = sum_disc C,  E_ap = sum_disc E  over a disc of radius ``radius``;
* background counts in the aperture: from a supplied background map (counts/pixel), B_ap =
  sum_disc BKG; otherwise from an annulus (default 60-120") around every pixel,
  b = sum_ann C / sum_ann E (counts s^-1 pixel^-1, source pixels excluded) and B_ap = b E_ap.
  Source pixels are found as in a sliding-box detection (SAS eboxdetect local mode): a 10"
  cell whose counts have P(>= n | b E_cell) < e^-10 is a source and a 20" disc around it is
  excluded from the annulus; two passes.  The vignetted E in b E_ap treats the background
  as vignetted like the sky (the particle background is not: a documented approximation).
* the number of zero-exposure pixels in the aperture (a chip gap or field edge inside it).

Pixels are sampled at the pixel nearest to a position (4.35" pixels: <= 3" offset).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from xmmtools.errors import DataError
from xmmtools.sensitivity.io import Image, Product

if TYPE_CHECKING:  # astropy is imported lazily at run time
    from astropy.wcs import WCS

#: Detection cell radius and masking radius (arcsec) and the cell likelihood for masking.
SOURCE_CELL_ARCSEC = 10.0
SOURCE_MASK_ARCSEC = 20.0
SOURCE_MASK_LIKELIHOOD = 10.0


@dataclass
class ProductMaps:
    product: Product
    wcs: WCS
    shape: tuple[int, int]
    pixel_arcsec: float
    radius_arcsec: float  # effective radius of the pixelised aperture (same area)
    exposure: np.ndarray  # s, at the pixel
    ap_counts: np.ndarray | None  # counts in the aperture
    ap_bkg: np.ndarray | None  # expected background counts in the aperture
    ap_zero: np.ndarray  # zero-exposure pixels in the aperture
    usable: np.ndarray  # mask (True = usable)
    bkg_method: str  # 'annulus', 'map' or 'none'

    def pixels(self, ra, dec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest pixel (row, col) of each position and whether it falls on the image."""
        x, y = self.wcs.celestial.wcs_world2pix(np.asarray(ra, float), np.asarray(dec, float), 0)
        col = np.rint(x)
        row = np.rint(y)
        inside = (
            np.isfinite(col)
            & np.isfinite(row)
            & (col >= 0)
            & (row >= 0)
            & (col < self.shape[1])
            & (row < self.shape[0])
        )
        return np.where(inside, row, 0).astype(np.intp), np.where(inside, col, 0).astype(np.intp), inside


def build_maps(
    product: Product,
    expmap: Image,
    counts: Image | None = None,
    bkgmap: Image | None = None,
    mask: Image | None = None,
    *,
    radius_arcsec: float = 30.0,
    annulus_arcsec: tuple[float, float] = (60.0, 120.0),
) -> ProductMaps:
    """Aperture and background maps of one product (see the module docstring)."""
    e = np.where(np.isfinite(expmap.data) & (expmap.data > 0), expmap.data, 0.0)
    for other in (counts, bkgmap, mask):
        if other is not None and other.data.shape != e.shape:
            raise DataError(
                f"{other.path}: image is {other.data.shape[1]}x{other.data.shape[0]} pixels but the "
                f"exposure map {expmap.path} is {e.shape[1]}x{e.shape[0]}; they must share a grid"
            )
    pix = expmap.pixel_arcsec
    disc = disc_kernel(radius_arcsec / pix)
    r_eff = float(np.sqrt(disc.sum() / np.pi) * pix)
    usable = e > 0
    if mask is not None:
        usable &= mask.data > 0
    ap_exp = convolve(e, disc)
    ap_zero = np.rint(convolve((e <= 0).astype(float), disc))
    ap_counts = ap_bkg = None
    method = "none"
    if counts is not None:
        c = np.where(np.isfinite(counts.data) & (counts.data > 0), counts.data, 0.0)
        ap_counts = np.maximum(convolve(c, disc), 0.0)
        if np.allclose(c, np.rint(c)):
            ap_counts = np.rint(ap_counts)
    if bkgmap is not None:
        ap_bkg = np.maximum(convolve(np.nan_to_num(bkgmap.data), disc), 0.0)
        method = "map"
    elif counts is not None:
        rate = annulus_background(c, e, pix, annulus_arcsec)
        ap_bkg = rate * ap_exp
        method = "annulus"
    return ProductMaps(product, expmap.wcs, e.shape, pix, r_eff, e, ap_counts, ap_bkg, ap_zero, usable, method)


def annulus_background(
    counts: np.ndarray,
    exposure: np.ndarray,
    pixel_arcsec: float,
    annulus_arcsec: tuple[float, float] = (60.0, 120.0),
    passes: int = 2,
) -> np.ndarray:
    """Background rate (counts s^-1 pixel^-1) at every pixel from an annulus around it,
    excluding source pixels (see the module docstring).  NaN where the annulus has no exposure."""
    from scipy.special import gammainc

    inner, outer = annulus_arcsec
    if not 0 <= inner < outer:
        raise DataError(f"background annulus {inner:g}-{outer:g} arcsec: need 0 <= inner < outer")
    ann = disc_kernel(outer / pixel_arcsec, inner / pixel_arcsec)
    cell = disc_kernel(SOURCE_CELL_ARCSEC / pixel_arcsec)
    grow = disc_kernel(SOURCE_MASK_ARCSEC / pixel_arcsec)
    cell_counts = np.rint(convolve(counts, cell))
    cell_exp = convolve(exposure, cell)
    keep = exposure > 0
    for _ in range(passes + 1):
        num = convolve(np.where(keep, counts, 0.0), ann)
        den = convolve(np.where(keep, exposure, 0.0), ann)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(den > 1e-6 * max(den.max(), 1.0), np.maximum(num, 0.0) / den, np.nan)
        mu = np.nan_to_num(rate) * cell_exp
        with np.errstate(invalid="ignore"):
            src = (
                (cell_counts >= 1)
                & (mu > 0)
                & (gammainc(np.maximum(cell_counts, 1.0), np.maximum(mu, 1e-300)) < np.exp(-SOURCE_MASK_LIKELIHOOD))
            )
        new_keep = (exposure > 0) & ~(convolve(src.astype(float), grow) > 0.5)
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return rate


def disc_kernel(radius_pix: float, inner_pix: float = 0.0) -> np.ndarray:
    """Pixels whose centres lie within ``radius_pix`` (and beyond ``inner_pix``) of the centre."""
    n = int(np.ceil(radius_pix))
    y, x = np.mgrid[-n : n + 1, -n : n + 1]
    r2 = x * x + y * y
    k = (r2 <= radius_pix**2) & (r2 >= inner_pix**2 if inner_pix > 0 else True)
    return k.astype(float)


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Sum of ``image`` under ``kernel`` (odd-sized) centred on each pixel (zero outside the
    image): a zero-padded FFT convolution (scipy.fft; what scipy.signal.fftconvolve 'same' does)."""
    from scipy import fft

    full = [a + b - 1 for a, b in zip(image.shape, kernel.shape, strict=True)]
    shape = tuple(fft.next_fast_len(n, real=True) for n in full)
    conv = fft.irfft2(fft.rfft2(image, shape) * _kernel_spectrum(kernel.shape, kernel.tobytes(), shape), shape)
    k0, k1 = (kernel.shape[0] - 1) // 2, (kernel.shape[1] - 1) // 2
    out = conv[k0 : k0 + image.shape[0], k1 : k1 + image.shape[1]]
    out[np.abs(out) < 1e-9 * max(float(np.abs(image).max()) * kernel.sum(), 1e-300)] = 0.0
    return out


@lru_cache(maxsize=32)
def _kernel_spectrum(kshape: tuple[int, int], kbytes: bytes, shape: tuple[int, int]) -> np.ndarray:
    """FFT of a (float64) kernel padded to ``shape``; the same few kernels serve every image."""
    from scipy import fft

    return fft.rfft2(np.frombuffer(kbytes, dtype=float).reshape(kshape), shape)
