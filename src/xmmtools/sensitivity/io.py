"""Reading the sensitivity stage's non-table inputs: FITS images with WCS, a folder of XMM
observation products, and FLIX-style text position lists.  (Tables go through xmmtools.tables.)"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from xmmtools.errors import DataError

if TYPE_CHECKING:  # astropy is imported lazily at run time
    from astropy.wcs import WCS

#: file roles recognised from the name (SAS/XGA ``*expmap*``, PPS ``*EXPMAP*`` ...)
_ROLES = (
    ("expmap", re.compile(r"exp_?map|expimage", re.I)),
    ("bkgmap", re.compile(r"bkg_?map|bkgimage|background", re.I)),
    ("mask", re.compile(r"mask", re.I)),
    ("image", re.compile(r"img|image", re.I)),
)
_BAND_KEV = re.compile(r"(\d+(?:\.\d*)?)-(\d+(?:\.\d*)?)\s*keV", re.I)
_FITS = re.compile(r"\.(fits|fit|fts|ftz)(\.gz)?$", re.I)
_INSTRUMENTS = {
    "EPN": "PN",
    "PN": "PN",
    "EMOS1": "M1",
    "MOS1": "M1",
    "M1": "M1",
    "EMOS2": "M2",
    "MOS2": "M2",
    "M2": "M2",
}


@dataclass(frozen=True)
class Image:
    """A 2-D image (counts, exposure or background) with its celestial WCS and header."""

    data: np.ndarray
    wcs: WCS
    header: dict
    path: str

    @property
    def pixel_arcsec(self) -> float:
        from astropy.wcs.utils import proj_plane_pixel_scales

        return float(np.mean(proj_plane_pixel_scales(self.wcs.celestial)) * 3600.0)


def read_image(path: str) -> Image:
    """The first 2-D image HDU of a FITS file, as float64 with its celestial WCS."""
    import warnings

    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    try:
        with fits.open(path, memmap=False) as hdul:
            for hdu in hdul:
                if hdu.is_image and hdu.data is not None and hdu.data.ndim == 2:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", FITSFixedWarning)
                        wcs = WCS(hdu.header, naxis=2)
                    if not wcs.has_celestial:
                        raise DataError(f"{path}: image has no celestial WCS (CTYPE RA---/DEC--)")
                    data = np.asarray(hdu.data, dtype=float)
                    return Image(
                        data,
                        wcs,
                        {k: hdu.header[k] for k in hdu.header if k and k != "HISTORY" and k != "COMMENT"},
                        path,
                    )
    except OSError as e:
        raise DataError(f"{path}: cannot read FITS image ({' '.join(str(e).split())[:120]})") from None
    raise DataError(f"{path}: no 2-D image HDU")


@dataclass(frozen=True)
class Product:
    """One observation x camera x band: the exposure map and, if found, counts image,
    background map and detection mask, plus the header facts the stage reports."""

    obs_id: str
    instrument: str  # PN, M1, M2
    band: tuple[float, float]  # keV
    filter: str
    date_obs: str
    date_end: str
    ra_pnt: float
    dec_pnt: float
    expmap: str
    image: str | None = None
    bkgmap: str | None = None
    mask: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def key(self) -> tuple[str, str, tuple[float, float]]:
        return (self.obs_id, self.instrument, self.band)


def discover_products(folder: str, bands: list[tuple[float, float]] | None = None) -> list[Product]:
    """Find exposure maps (required), counts images, background maps and masks under ``folder``.

    Files are grouped by (OBS_ID, INSTRUME, band) read from the primary header and the file
    name: the band from ``<lo>-<hi>keV`` in the name or PIMIN/PIMAX (eV) in the header.
    """
    from astropy.io import fits

    if not os.path.isdir(folder):
        raise DataError(f"--obs {folder}: not a directory")
    found: dict[tuple, dict] = {}
    for root, _, files in os.walk(folder):
        for name in sorted(files):
            if not _FITS.search(name):
                continue
            role = next((r for r, rx in _ROLES if rx.search(name)), None)
            if role is None:
                continue
            path = os.path.join(root, name)
            try:
                hdr = fits.getheader(path, 0)
            except OSError as e:
                raise DataError(f"{path}: cannot read FITS header ({' '.join(str(e).split())[:100]})") from None
            band = _band_of(name, hdr)
            inst = _INSTRUMENTS.get(str(hdr.get("INSTRUME", "")).strip().upper())
            obs = str(hdr.get("OBS_ID", "")).strip()
            if band is None or inst is None or not obs:
                raise DataError(
                    f"{path}: cannot tell OBS_ID / INSTRUME / energy band (need OBS_ID and "
                    "INSTRUME keywords and '<lo>-<hi>keV' in the name or PIMIN/PIMAX)"
                )
            if bands is not None and not any(abs(band[0] - b[0]) < 1e-6 and abs(band[1] - b[1]) < 1e-6 for b in bands):
                continue
            entry = found.setdefault((obs, inst, band), {})
            if role in entry:
                raise DataError(
                    f"two {role} files for {obs} {inst} {band[0]:g}-{band[1]:g} keV: {entry[role]} and {path}"
                )
            entry[role] = path
            if role in ("expmap", "image"):
                entry.setdefault("header", hdr)
    products = []
    for (obs, inst, band), entry in sorted(found.items()):
        if "expmap" not in entry:
            continue  # counts image without an exposure map: nothing to normalise by
        hdr = entry["header"]
        try:
            ra_pnt, dec_pnt = float(hdr["RA_PNT"]), float(hdr["DEC_PNT"])
        except (KeyError, ValueError):
            raise DataError(f"{entry['expmap']}: no RA_PNT/DEC_PNT keywords (pointing)") from None
        products.append(
            Product(
                obs_id=obs,
                instrument=inst,
                band=band,
                filter=str(hdr.get("FILTER", "")).strip(),
                date_obs=str(hdr.get("DATE-OBS", "")).strip(),
                date_end=str(hdr.get("DATE-END", "")).strip(),
                ra_pnt=ra_pnt,
                dec_pnt=dec_pnt,
                expmap=entry["expmap"],
                image=entry.get("image"),
                bkgmap=entry.get("bkgmap"),
                mask=entry.get("mask"),
            )
        )
    if not products:
        what = "" if bands is None else " in the requested band(s)"
        raise DataError(f"--obs {folder}: no exposure maps (*expmap*.fits[.gz]){what}")
    return products


def _band_of(name: str, hdr) -> tuple[float, float] | None:
    m = _BAND_KEV.search(name)
    if m:
        return (float(m[1]), float(m[2]))
    if "PIMIN" in hdr and "PIMAX" in hdr:
        return (float(hdr["PIMIN"]) / 1000.0, float(hdr["PIMAX"]) / 1000.0)
    return None


# ----------------------------------------------------------------------------------------
# FLIX-style position lists
# ----------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_positions(lines, source: str = "positions") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """RA, Dec (deg) and names from FLIX-style lines.

    One position per line: decimal degrees (``149.5 -11.0``), sexagesimal with colons
    (``09:58:00.0 -11:00:00``) or spaces (``09 58 00.0 -11 00 00``); RA and Dec separated by
    spaces or a comma; an optional name after them.  Blank lines and ``#`` comments are
    skipped.  Sexagesimal RA is in hours.  Names default to the line number.
    """
    ras, decs, names, sexa, where = [], [], [], [], []
    for i, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tok = [t for t in re.split(r"[,\s]+", line) if t]
        if len(tok) >= 2 and ":" in tok[0]:
            ra, dec, rest = tok[0], tok[1], tok[2:]
            sexa.append(True)
        elif (
            len(tok) >= 6
            and all(_NUMBER.match(t) for t in tok[:6])
            and "." not in tok[0]
            and "." not in tok[1]
            and "." not in tok[3]
        ):
            ra, dec, rest = " ".join(tok[:3]), " ".join(tok[3:6]), tok[6:]
            sexa.append(True)
        elif len(tok) >= 2 and _NUMBER.match(tok[0]) and _NUMBER.match(tok[1]):
            ra, dec, rest = tok[0], tok[1], tok[2:]
            sexa.append(False)
        else:
            raise DataError(
                f"{source} line {i}: cannot read a position from {line[:60]!r} "
                "(want 'RA DEC [name]' in degrees or hh:mm:ss dd:mm:ss)"
            )
        ras.append(ra)
        decs.append(dec)
        names.append(" ".join(rest) or str(i))
        where.append(i)
    if not ras:
        raise DataError(f"{source}: no positions")
    ra = np.empty(len(ras))
    dec = np.empty(len(ras))
    sx = np.array(sexa)
    dec_ok = ~sx
    ra[dec_ok] = [float(r) for r, s in zip(ras, sexa, strict=True) if not s]
    dec[dec_ok] = [float(d) for d, s in zip(decs, sexa, strict=True) if not s]
    if sx.any():
        import astropy.units as u
        from astropy.coordinates import Angle

        for k in np.flatnonzero(sx):
            try:
                ra[k] = Angle(ras[k], unit=u.hourangle).deg
                dec[k] = Angle(decs[k], unit=u.deg).deg
            except (ValueError, u.UnitsError):
                raise DataError(f"{source} line {where[k]}: bad sexagesimal position {ras[k]!r} {decs[k]!r}") from None
    bad = ~((ra >= 0) & (ra < 360) & (np.abs(dec) <= 90))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source} line {where[j]}: position out of range (RA {ra[j]:g}, Dec {dec[j]:g})")
    return ra, dec, names


def read_position_list(path: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a FLIX-style text list of positions (see :func:`parse_positions`)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_positions(f, source=path)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
