"""HEALPix sensitivity maps (RapidXMM-style; Ruiz et al. 2022, MNRAS 511, 4265).

For every product the detection-threshold flux (:mod:`.flix`) is computed on its image grid
(aperture background, vignetted exposure, King EEF at each pixel's off-axis angle, ECF) and
sampled at the centres of the HEALPix cells (nested scheme, healpy) that fall on the image.
Per band, a cell's value is the best (lowest) threshold over all observations and cameras
-- the same rule as the 'ALL' rows of the position mode.  Only covered cells are stored: a
sparse (NPIX, value) table, never a dense all-sky array (a float32 all-sky map is 0.8 GB at
order 12, 12.9 GB at order 14).  The coverage is also returned as a normalised MOC (NUNIQ).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from xmmtools.sensitivity import psf
from xmmtools.sensitivity.ecf import band_label
from xmmtools.sensitivity.flix import rate_to_flux, threshold_rate
from xmmtools.sensitivity.positions import Settings, offaxis_arcmin
from xmmtools.sensitivity.products import ProductMaps

MAX_ORDER = 29


def threshold_image(m: ProductMaps, s: Settings) -> np.ndarray:
    """Threshold flux (erg/cm^2/s) at every pixel of a product; NaN where not covered."""
    p = m.product
    if m.ap_bkg is None:
        return np.full(m.shape, np.nan)
    yy, xx = np.mgrid[0 : m.shape[0], 0 : m.shape[1]]
    ra, dec = m.wcs.celestial.wcs_pix2world(xx.ravel().astype(float), yy.ravel().astype(float), 0)
    off = offaxis_arcmin(ra, dec, p.ra_pnt, p.dec_pnt).reshape(m.shape)
    eef = psf.eef(p.instrument, m.radius_arcsec, psf.band_energy(*p.band), off)
    rate = threshold_rate(m.ap_bkg, eef, m.exposure, s.likelihood, integer=s.integer_threshold)
    flux = rate_to_flux(rate, s.ecf_for(p.instrument, p.band, p.filter))
    return np.where(m.usable, flux, np.nan)


def product_cells(m: ProductMaps, values: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Nested HEALPix cells of ``order`` whose centres fall on covered pixels, and the values there."""
    import healpy as hp

    nside = hp.order2nside(order)
    ny, nx = m.shape
    corners = np.array([[-0.5, -0.5], [nx - 0.5, -0.5], [nx - 0.5, ny - 0.5], [-0.5, ny - 0.5]])
    ra, dec = m.wcs.celestial.wcs_pix2world(corners[:, 0], corners[:, 1], 0)
    vec = hp.ang2vec(ra, dec, lonlat=True)
    cells = hp.query_polygon(nside, vec, inclusive=False, nest=True)
    if cells.size == 0:  # image smaller than a cell: the cell of the image centre
        c_ra, c_dec = m.wcs.celestial.wcs_pix2world([(nx - 1) / 2], [(ny - 1) / 2], 0)
        cells = hp.ang2pix(nside, c_ra, c_dec, nest=True, lonlat=True)
    cra, cdec = hp.pix2ang(nside, cells, nest=True, lonlat=True)
    r, c, inside = m.pixels(cra, cdec)
    v = np.where(inside, values[r, c], np.nan)
    ok = np.isfinite(v)
    return cells[ok].astype(np.int64), v[ok]


def sensitivity_map(
    maps: list[ProductMaps], order: int, s: Settings = Settings(), mapper=map
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per band label: sorted unique cells and their best threshold flux (float32).

    ``mapper(fn, maps)`` computes each observation product's cells (``map`` here; the Dask
    engine's ordered map on a cluster): results in the products' order, so the map is the same."""
    if not 0 <= order <= MAX_ORDER:
        raise ValueError(f"HEALPix order must be 0..{MAX_ORDER}")
    per_band: dict[str, list] = {}
    for m, (cells, vals) in zip(maps, mapper(partial(_cells_of, order=order, s=s), maps), strict=True):
        per_band.setdefault(band_label(m.product.band), []).append((cells, vals))
    out = {}
    for label, parts in per_band.items():
        cells = np.concatenate([c for c, _ in parts])
        vals = np.concatenate([v for _, v in parts])
        out[label] = reduce_min(cells, vals)
    return out


def _cells_of(m: ProductMaps, order: int, s: Settings) -> tuple[np.ndarray, np.ndarray]:
    return product_cells(m, threshold_image(m, s), order)


def reduce_min(cells: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique sorted cells with the minimum value of each."""
    if cells.size == 0:
        return cells.astype(np.int64), values.astype(np.float32)
    order = np.lexsort((values, cells))
    cells, values = cells[order], values[order]
    first = np.r_[True, cells[1:] != cells[:-1]]
    return cells[first], values[first].astype(np.float32)


def merge_bands(bands: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One cell list for all bands (union), with NaN where a band does not cover a cell."""
    allcells = np.unique(np.concatenate([c for c, _ in bands.values()])) if bands else np.zeros(0, np.int64)
    cols = {}
    for label, (cells, vals) in bands.items():
        v = np.full(allcells.size, np.nan, dtype=np.float32)
        v[np.searchsorted(allcells, cells)] = vals
        cols[label] = v
    return allcells, cols


def moc_uniq(cells: np.ndarray, order: int) -> np.ndarray:
    """Normalised MOC (IVOA MOC 1.1 NUNIQ = 4 * 4^k + ipix) of a set of nested cells of ``order``:
    four complete siblings are replaced by their parent, recursively."""
    cur = np.unique(np.asarray(cells, dtype=np.int64))
    out = []
    for k in range(order, 0, -1):
        parent = cur >> 2
        uniq_parent, counts = np.unique(parent, return_counts=True)
        full = uniq_parent[counts == 4]
        keep = cur[~np.isin(parent, full)]
        out.append(4 * 4**k + keep)
        cur = full
        if cur.size == 0:
            break
    else:
        out.append(4 + cur)
    return np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)


def plot_map(cells: np.ndarray, values: np.ndarray, order: int, path: str, title: str = "") -> None:
    """Quick-look gnomonic view of a sparse map around its covered area (healpy + matplotlib)."""
    import healpy as hp
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nside = hp.order2nside(order)
    ra, dec = hp.pix2ang(nside, cells, nest=True, lonlat=True)
    ra_c = float(np.degrees(np.arctan2(np.mean(np.sin(np.radians(ra))), np.mean(np.cos(np.radians(ra))))) % 360)
    dec_c = float(np.mean(dec))
    size_deg = max(float(np.ptp(dec)), float(np.ptp(ra) * np.cos(np.radians(dec_c))), 1e-3) * 1.1
    npix_side = 800
    reso = size_deg * 60 / npix_side
    # build the image by sampling the sparse map at the view's pixel centres
    x = (np.arange(npix_side) - npix_side / 2 + 0.5) * np.radians(reso / 60)
    gx, gy = np.meshgrid(x, x)
    rho = np.hypot(gx, gy)
    c = np.arctan(rho)
    d0, r0 = np.radians(dec_c), np.radians(ra_c)
    with np.errstate(invalid="ignore", divide="ignore"):
        dd = np.arcsin(np.cos(c) * np.sin(d0) + np.where(rho > 0, gy * np.sin(c) * np.cos(d0) / rho, 0))
        rr = r0 + np.arctan2(-gx * np.sin(c), rho * np.cos(d0) * np.cos(c) - gy * np.sin(d0) * np.sin(c))
    pix = hp.ang2pix(nside, np.degrees(rr), np.degrees(dd), nest=True, lonlat=True)
    idx = np.searchsorted(cells, pix)
    idx = np.clip(idx, 0, max(cells.size - 1, 0))
    img = np.where(cells[idx] == pix, values[idx], np.nan) if cells.size else np.full(pix.shape, np.nan)
    fig, ax = plt.subplots(figsize=(6, 5))
    ext = (size_deg / 2 * 60, -size_deg / 2 * 60, -size_deg / 2 * 60, size_deg / 2 * 60)
    lg = np.log10(img)
    lo, hi = np.nanpercentile(lg, [1, 99]) if np.isfinite(lg).any() else (0, 1)
    im = ax.imshow(lg, origin="lower", extent=ext, cmap="viridis_r", vmin=lo, vmax=hi)
    fig.colorbar(im, ax=ax, label="log10 threshold flux [erg cm$^{-2}$ s$^{-1}$]")
    ax.set_xlabel(f"east offset from RA {ra_c:.4f} [arcmin]")
    ax.set_ylabel(f"north offset from Dec {dec_c:.4f} [arcmin]")
    ax.set_title(title or f"HEALPix order {order} sensitivity")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
