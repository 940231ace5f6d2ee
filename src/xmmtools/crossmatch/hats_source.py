"""Counterpart catalogues in HATS format (HEALPix-partitioned Parquet), read with LSDB.

A Gaia- or Pan-STARRS-sized catalogue is not a file one reads: published HATS catalogues
(Gaia DR3, 2MASS, AllWISE, ZTF, ... on data.lsdb.io) are directories of Parquet partitions, one
per HEALPix pixel.  ``--catalog gaia=hats:/data/gaia_dr3`` (or just the directory) asks LSDB
(Caplar et al. 2025, the astronomy-commons HATS/LSDB stack on Dask) for the sources inside a
MOC of the primaries' neighbourhood: only the partitions that overlap it are opened, and only
rows inside it are kept (``MOCSearch``), in parallel on Dask.  The few sources left are matched
by the same in-memory code as any other catalogue.

The MOC: every primary's nested HEALPix cell at an order whose pixels are at least three match
radii wide, plus its 8 neighbours, so it covers every point within the radius of a primary.
Densities use the catalogue's total row count (``hats_nrows``) and an area from ``--area``, else
from the catalogue's skymap (source counts per HEALPix pixel, with the interior-pixel method of
:func:`~xmmtools.crossmatch.priors.footprint_area`), else from its MOC sky fraction.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from xmmtools.errors import DataError
from xmmtools.sky import FULL_SKY_DEG2

PREFIX = "hats:"


def is_hats(src: str) -> bool:
    """``hats:PATH``, or a directory holding a HATS catalogue or collection."""
    if src.startswith(PREFIX):
        return True
    return os.path.isdir(src) and any(
        os.path.exists(os.path.join(src, f)) for f in ("hats.properties", "collection.properties", "properties")
    )


def path_of(src: str) -> str:
    return src[len(PREFIX) :] if src.startswith(PREFIX) else src


@dataclass
class HatsNear:
    table: pa.Table  # default columns + the matcher's columns, sources near the primaries
    total_rows: int
    area_deg2: float | None  # from the skymap/MOC (None when the catalogue has neither)
    area_note: str
    ra_column: str
    dec_column: str


def _lsdb():
    try:
        import lsdb
    except ImportError:
        raise DataError(
            "reading a HATS catalogue needs LSDB: pip install 'xmmtools[scale]' (lsdb, hats, dask)"
        ) from None
    return lsdb


def neighbourhood_moc(ra: np.ndarray, dec: np.ndarray, radius_arcsec: float):
    """A MOC covering every point within ``radius`` of the positions (cell + 8 neighbours at an
    order whose pixels are >= 3 radii wide)."""
    import healpy as hp
    from mocpy import MOC

    order = 0
    while order < 29 and hp.nside2resol(2 ** (order + 1), arcmin=True) * 60.0 >= 3.0 * radius_arcsec:
        order += 1
    nside = 2**order
    pix = hp.ang2pix(nside, np.asarray(ra, float), np.asarray(dec, float), nest=True, lonlat=True)
    pix = np.unique(pix)
    nb = hp.get_all_neighbours(nside, pix, nest=True).ravel()
    cells = np.unique(np.concatenate([pix, nb[nb >= 0]])).astype(np.uint64)
    return MOC.from_healpix_cells(cells, np.full(len(cells), order, dtype=np.uint8), max_depth=order)


def load_near(
    src: str,
    ra: np.ndarray,
    dec: np.ndarray,
    radius_arcsec: float,
    needed_for: Callable[[Sequence[str]], Sequence[str]],
    *,
    where: str,
    progress: bool = False,
) -> HatsNear:
    """The catalogue's sources within the MOC of the primaries' neighbourhood; ``needed_for``
    gives the matcher's columns from the catalogue's column names."""
    import logging
    import warnings

    lsdb = _lsdb()
    path = path_of(src)
    if not os.path.exists(path):
        raise DataError(f"{where}: no such HATS catalogue directory {path}")
    try:
        whole = lsdb.open_catalog(path)
    except Exception as e:  # hats raises assorted errors on a directory that is not a catalogue
        raise DataError(f"{where}: not a readable HATS catalogue ({' '.join(str(e).split())[:160]})") from None
    info = whole.hc_structure.catalog_info
    ra_c, dec_c = info.ra_column, info.dec_column
    default = list(whole.columns)
    needed = list(needed_for(list(whole.all_columns)))
    columns = list(dict.fromkeys([*default, ra_c, dec_c, *needed]))
    moc = neighbourhood_moc(ra, dec, radius_arcsec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet = logging.getLogger("lsdb").level
        logging.getLogger("lsdb").setLevel(logging.ERROR)  # size warnings: we hold only the near rows
        try:
            cat = lsdb.read_hats(path, search_filter=lsdb.MOCSearch(moc), columns=columns, error_empty_filter=False)
            df = cat.compute(progress_bar=progress)
        finally:
            logging.getLogger("lsdb").setLevel(quiet)
    table = pa.Table.from_pandas(df, preserve_index=False)
    area, note = _area(whole)
    return HatsNear(table, int(info.total_rows), area, note, ra_c, dec_c)


def _area(whole) -> tuple[float | None, str]:
    """The sky area a catalogue states (``xmmtools_skyarea_deg2``: the SKYAREA of the table it
    was written from, so a FITS file and its HATS copy give the same densities), else the
    skymap footprint, else the MOC."""
    from xmmtools.crossmatch.priors import footprint_area_from_counts
    from xmmtools.tables.hats import SKYAREA_PROPERTY, find_hats

    found = find_hats(str(whole.hc_structure.catalog_path))
    stated = found.properties.get(SKYAREA_PROPERTY) if found is not None else None
    if stated:
        try:
            area = float(stated)
        except ValueError:
            area = float("nan")
        if np.isfinite(area) and area > 0:
            return area, f"{area:g} deg2 (SKYAREA stated in the HATS catalogue's properties)"

    sky = os.path.join(str(whole.hc_structure.catalog_path), "skymap.fits")
    if os.path.exists(sky):
        import healpy as hp

        counts = hp.read_map(sky, nest=True, dtype=np.float64)  # UNSEEN (< 0) where empty
        order = int(round(np.log2(np.sqrt(len(counts) / 12))))
        pix = np.flatnonzero(counts > 0)
        area, nside = footprint_area_from_counts(pix, counts[pix], order)
        return area, f"{area:.6g} deg2 (HATS skymap footprint, nside {nside}; give --area to override)"
    moc = whole.hc_structure.moc
    if moc is not None:
        area = float(moc.sky_fraction) * FULL_SKY_DEG2
        return area, f"{area:.6g} deg2 (HATS catalogue MOC; give --area to override)"
    return None, ""
