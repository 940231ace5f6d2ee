"""Find and read XMM-Newton light-curve files (FITS time series are not catalogue tables).

Naming rules (documented in docs/variability_short.md), applied to every file below a folder:

* PPS source time series ``P<OBSID><INST><EXPID>SRCTSR<NNNN>.FTZ`` (INST = PN, M1, M2; NNNN =
  SRC_NUM in hexadecimal): a source curve with BACKV/BACKE columns (epiclccorr format).
* Background curves are never sources: names containing ``FBKTSR`` (PPS flaring background),
  ``BKGTSR``, or a ``_bgd`` / ``_bkg`` / ``_back`` token.  A source curve ``X_src.lc`` is paired
  with ``X_bgd.lc`` (or ``_bkg``) in the same folder.
* evselect / epiclccorr output: any ``*.lc`` / ``*.lc.gz``, and ``*.fits``/``*.fits.gz``/``*.ftz``
  whose name contains ``_src`` or ``lccorr``.  Files without a RATE (or first) table holding
  TIME and RATE/COUNTS are reported as errors.

A file is read into counts per bin (see :class:`LightCurve`); the statistics live in
:mod:`xmmtools.variability.short.statistics`.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from xmmtools.errors import DataError
from xmmtools.variability.gti import file_gti, overlap

PPS_RE = re.compile(r"P(\d{10})(PN|M1|M2)([SU]\d{3})SRCTSR([0-9A-Fa-f]{4})")
BKG_RE = re.compile(r"(FBKTSR|BKGTSR|_(bgd|bkg|back)(?=[._]|$))", re.I)
JNAME_RE = re.compile(r"J(\d{2})(\d{2})(\d{2}(?:\.\d+)?)([+-])(\d{2})(\d{2})(\d{2}(?:\.\d+)?)")
LC_EXT = (".lc", ".lc.gz")
FITS_EXT = (".fits", ".fits.gz", ".fit", ".fit.gz", ".ftz")
CAMERA = {"EPN": "PN", "EMOS1": "M1", "EMOS2": "M2", "PN": "PN", "M1": "M1", "M2": "M2", "MOS1": "M1", "MOS2": "M2"}
KIND_RANK = {"pps": 0, "lccorr": 1, "evselect": 2}


@dataclass
class LightCurve:
    """One source light curve as counts per bin (all arrays over the kept bins).

    ``counts`` gross photons in the source region; ``exposure`` = fractional exposure x bin width
    [s]; ``bkg_counts`` photons in the background region (None without background) and
    ``bkg_scale`` = source/background area ratio; ``rate_scale`` k converts raw net rates to the
    file's (possibly PSF/vignetting-corrected) rates.
    """

    path: str
    kind: str
    time: np.ndarray
    counts: np.ndarray
    exposure: np.ndarray
    timedel: float
    bkg_counts: np.ndarray | None = None
    bkg_scale: float = 0.0
    bkg_source: str = "none"  # none | curve | backv
    rate_scale: float = 1.0
    obs_id: str = ""
    camera: str = ""
    exp_id: str = ""
    src_num: int | None = None
    name: str = ""
    ra: float = math.nan
    dec: float = math.nan
    pos_source: str = ""  # header | region | name
    gti: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    bkg_path: str = ""
    dropped: int = 0  # bins dropped (outside GTI, FRACEXP below the limit, NaN)


def find_lightcurves(folder: str, pattern: str | None = None) -> list[tuple[str, str | None]]:
    """Source light curves below ``folder`` as (path, paired background path or None), sorted."""
    import fnmatch

    if not os.path.isdir(folder):
        raise DataError(f"--lightcurves {folder}: not a folder")
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        names = set(files)
        for f in sorted(files):
            if pattern and not fnmatch.fnmatch(f, pattern):
                continue
            if BKG_RE.search(f) or not is_source_curve_name(f):
                continue
            out.append((os.path.join(root, f), _paired_background(f, names, root)))
    return out


def is_source_curve_name(name: str) -> bool:
    low = name.lower()
    if PPS_RE.search(name):
        return True
    if low.endswith(LC_EXT):
        return True
    return low.endswith(FITS_EXT) and ("_src" in low or "lccorr" in low)


def _paired_background(name: str, names: set[str], root: str) -> str | None:
    m = re.search(r"_src(?=[._]|$)", name)
    if not m:
        return None
    for tok in ("_bgd", "_bkg", "_back"):
        cand = name[: m.start()] + tok + name[m.end() :]
        if cand in names:
            return os.path.join(root, cand)
    return None


def read_lightcurve(
    path: str,
    *,
    bkg_path: str | None = None,
    gti: np.ndarray | None = None,
    min_fracexp: float = 0.1,
    bkg_scale: float | None = None,
    bin_size: float | None = None,
) -> LightCurve:
    """Read one light curve into counts per bin; raises :class:`DataError` on a bad file.

    Rules: bins with NaN RATE, fractional exposure below ``min_fracexp`` (FRACEXP, or the
    overlap of the bin with the file's own GTIs when there is no FRACEXP column) or outside a
    user ``gti`` (bins must lie wholly inside it) are dropped; kept partial bins enter with
    their reduced exposure.  ``bin_size`` [s] regroups consecutive bins (counts and exposures
    summed) into bins of that width.
    """
    from astropy.io import fits

    kind = "pps" if PPS_RE.search(os.path.basename(path)) else "evselect"
    try:
        with fits.open(path, memmap=False) as hdul:
            hdu = _rate_hdu(hdul, path)
            cols = {c.upper() for c in hdu.columns.names}
            if "BACKV" in cols or str(hdu.header.get("HDUCLAS2", "")).upper() == "NET":
                kind = "pps" if kind == "pps" else "lccorr"
            with warnings.catch_warnings():  # NaN in float32 columns of gzip'ed files
                warnings.simplefilter("ignore", RuntimeWarning)
                data = {
                    c: np.asarray(hdu.data[c], dtype=float)
                    for c in ("TIME", "RATE", "ERROR", "COUNTS", "FRACEXP", "BACKV", "BACKE")
                    if c in cols
                }
            hdr = {**dict(hdul[0].header), **dict(hdu.header)}
            own_gti = file_gti(hdul)
            region_area, region_xy = _region(hdul)
    except DataError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: cannot read as a FITS light curve ({' '.join(str(e).split())[:120]})") from None
    lc = _counts_from_columns(path, kind, data, hdr, own_gti, min_fracexp)
    lc.gti = own_gti
    _metadata(lc, hdr, region_xy)
    if bkg_path:
        bkg = read_lightcurve(bkg_path, gti=gti, min_fracexp=min_fracexp)
        _attach_background(lc, bkg, bkg_scale, region_area, path)
    elif bkg_scale is not None and lc.bkg_counts is not None:
        lc.bkg_scale = float(bkg_scale)
    if gti is not None and len(gti):
        keep = overlap(lc.time - lc.timedel / 2, lc.time + lc.timedel / 2, gti) >= 0.99 * lc.timedel
        _keep(lc, keep)
    if bin_size:
        _rebin(lc, bin_size)
    if lc.counts.size == 0:
        raise DataError(f"{path}: no usable bins (all NaN, zero exposure or outside the GTIs)")
    return lc


# -----------------------------------------------------------------------------------------


def _rate_hdu(hdul, path):
    cands = [h for h in hdul[1:] if getattr(h, "columns", None) is not None]
    named = [h for h in cands if h.name.upper() == "RATE"]
    for h in named + cands:
        names = {c.upper() for c in h.columns.names}
        if "TIME" in names and ({"RATE", "COUNTS"} & names):
            return h
    raise DataError(f"{path}: no light-curve table (a RATE extension with TIME and RATE or COUNTS columns)")


def _counts_from_columns(path, kind, d, hdr, own_gti, min_fracexp) -> LightCurve:
    t = d["TIME"]
    n = t.size
    if n == 0:
        raise DataError(f"{path}: the light curve has no rows")
    if not np.all(np.isfinite(t)):
        raise DataError(f"{path}: TIME has NaN values")
    if n > 1 and np.any(np.diff(t) <= 0):
        raise DataError(f"{path}: TIME is not strictly increasing (unsorted or repeated bins)")
    dt = float(hdr.get("TIMEDEL") or (np.median(np.diff(t)) if n > 1 else 0.0))
    if not dt > 0:
        raise DataError(f"{path}: no positive bin width (TIMEDEL)")
    pixr = float(hdr.get("TIMEPIXR", 0.5))
    tc = t + (0.5 - pixr) * dt
    if "FRACEXP" in d:
        frac = np.nan_to_num(d["FRACEXP"], nan=0.0)
        denom = frac * dt  # epiclccorr divides by the exposed part of the bin
    else:
        frac = overlap(tc - dt / 2, tc + dt / 2, own_gti) / dt if len(own_gti) else np.ones(n)
        denom = np.full(n, dt)  # evselect divides by the bin width
    backv = np.nan_to_num(d.get("BACKV", np.zeros(n)), nan=0.0)
    backe = np.nan_to_num(d.get("BACKE", np.zeros(n)), nan=0.0)
    if "COUNTS" in d:
        counts, k = d["COUNTS"], 1.0
    else:
        k = _rate_scale(d, denom, backv, backe, frac)
        counts = d["RATE"] * denom / k + backv * denom
    keep = np.isfinite(counts) & (frac >= min_fracexp) & (frac > 0)
    if not keep.any():
        raise DataError(f"{path}: no usable bins (RATE all NaN, zero exposure, or FRACEXP < {min_fracexp})")
    if np.any(counts[keep] < -1e-6):
        raise DataError(f"{path}: negative counts reconstructed from RATE (not a gross or epiclccorr curve?)")
    lc = LightCurve(
        path=path, kind=kind, time=tc, counts=np.clip(counts, 0, None), exposure=frac * dt, timedel=dt, rate_scale=k
    )
    if "BACKV" in d:
        with np.errstate(invalid="ignore", divide="ignore"):
            M = np.where(backe > 0, (backv / backe) ** 2, 0.0)
            ka = np.where((backv > 0) & keep, backe**2 * denom / backv, np.nan)
        if np.isfinite(ka).any():
            lc.bkg_counts, lc.bkg_scale, lc.bkg_source = M, float(np.nanmedian(ka)), "backv"
    _keep(lc, keep)
    return lc


def _rate_scale(d, denom, backv, backe, frac) -> float:
    """The correction factor k of an epiclccorr / PPS SRCTSR curve (1 for raw curves).

    epiclccorr writes RATE = k (N - alpha M)/x, ERROR = k sqrt(N + alpha^2 M)/x, BACKV = alpha M/x,
    BACKE = alpha sqrt(M)/x with x = FRACEXP * TIMEDEL and k the (PSF, vignetting, dead-time)
    correction when applyabsolutecorrections=yes.  With r = RATE x, b = BACKV x, c = BACKE^2 x^2
    and E = ERROR^2 x^2 each bin gives (b + c) k^2 + r k - E = 0; k is the median root.
    Without an ERROR column, k = 1.
    """
    if "ERROR" not in d:
        return 1.0
    r, b = d["RATE"] * denom, backv * denom
    c, E = (backe * denom) ** 2, (d["ERROR"] * denom) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        a = b + c
        k = np.where(a > 0, (-r + np.sqrt(r**2 + 4 * a * E)) / (2 * np.where(a > 0, a, 1.0)), E / r)
    sel = np.isfinite(k) & (k > 0) & (E > 0) & (frac > 0)
    return float(np.median(k[sel])) if sel.any() else 1.0


def _keep(lc: LightCurve, keep: np.ndarray) -> None:
    lc.dropped += int((~keep).sum())
    lc.time, lc.counts, lc.exposure = lc.time[keep], lc.counts[keep], lc.exposure[keep]
    if lc.bkg_counts is not None:
        lc.bkg_counts = lc.bkg_counts[keep]


def _attach_background(lc: LightCurve, bkg: LightCurve, scale, region_area, path) -> None:
    idx = np.searchsorted(bkg.time, lc.time)
    idx = np.clip(idx, 0, max(bkg.time.size - 1, 0))
    match = np.abs(bkg.time[idx] - lc.time) < 0.01 * lc.timedel if bkg.time.size else np.zeros(lc.time.size, bool)
    if abs(bkg.timedel - lc.timedel) > 1e-6 * lc.timedel:
        raise DataError(f"{path}: background curve {bkg.path} has bins of {bkg.timedel} s, source {lc.timedel} s")
    _keep(lc, match)
    lc.bkg_counts = bkg.counts[idx[match]]
    lc.exposure = np.minimum(lc.exposure, bkg.exposure[idx[match]])
    if scale is None:
        a_src, a_bkg = region_area, _region_area_of(bkg.path)
        scale = a_src / a_bkg if (a_src and a_bkg) else 1.0
    lc.bkg_scale, lc.bkg_source, lc.bkg_path = float(scale), "curve", bkg.path


def _region_area_of(path):
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        return _region(hdul)[0]


def _region(hdul):
    """(area of the included shapes in sky pixels^2 or None, (x, y) of the first included shape)."""
    for h in hdul[1:]:
        if h.name.upper().startswith("REG") and getattr(h, "columns", None) is not None:
            names = {c.upper() for c in h.columns.names}
            if not {"SHAPE", "R"} <= names:
                continue
            area, xy = 0.0, None
            for row in h.data:
                shape = str(row["SHAPE"]).strip().upper()
                if shape.startswith("!"):
                    continue
                r = np.atleast_1d(np.asarray(row["R"], float))
                if shape == "CIRCLE":
                    area += math.pi * r[0] ** 2
                elif shape == "ANNULUS" and r.size > 1:
                    area += math.pi * (r[1] ** 2 - r[0] ** 2)
                elif shape == "ELLIPSE" and r.size > 1:
                    area += math.pi * r[0] * r[1]
                if xy is None and {"X", "Y"} <= names:
                    xy = (float(np.atleast_1d(row["X"])[0]), float(np.atleast_1d(row["Y"])[0]))
            return (area or None), xy
    return None, None


def _rebin(lc: LightCurve, width: float) -> None:
    if width < lc.timedel * 0.999:
        raise DataError(f"{lc.path}: --time-bin {width} s is shorter than the curve's bins ({lc.timedel} s)")
    grp = np.floor((lc.time - lc.time[0]) / width + 1e-9).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, np.diff(grp) != 0])
    add = lambda a: np.add.reduceat(a, starts)  # noqa: E731
    lc.time = lc.time[0] + (grp[starts] + 0.5) * width - lc.timedel / 2
    lc.counts, lc.exposure = add(lc.counts), add(lc.exposure)
    if lc.bkg_counts is not None:
        lc.bkg_counts = add(lc.bkg_counts)
    lc.timedel = float(width)


def _metadata(lc: LightCurve, hdr: dict, region_xy) -> None:
    base = os.path.basename(lc.path)
    m = PPS_RE.search(base)
    lc.obs_id = str(hdr.get("OBS_ID") or (m.group(1) if m else obsid_in_path(lc.path))).strip()
    cam = str(hdr.get("INSTRUME", "")).strip().upper()
    lc.camera = CAMERA.get(cam) or (m.group(2) if m else camera_in_name(base))
    lc.exp_id = m.group(3) if m else str(hdr.get("EXPIDSTR", "") or "").strip()
    if m:
        lc.src_num = int(m.group(4), 16)
    else:
        for key in ("SRC_NUM", "SRCNUM", "SRCID"):
            if key in hdr and str(hdr[key]).strip().lstrip("-").isdigit():
                lc.src_num = int(hdr[key])
                break
    j = JNAME_RE.search(base)
    lc.name = j.group(0) if j else str(hdr.get("SRCNAME", "") or "").strip()
    for rk, dk in (("SRC_RA", "SRC_DEC"), ("RA_SRC", "DEC_SRC"), ("SRCRA", "SRCDEC")):
        if rk in hdr and dk in hdr:
            lc.ra, lc.dec, lc.pos_source = float(hdr[rk]), float(hdr[dk]), "header"
            return
    if region_xy is not None and "REFXCRVL" in hdr:
        from astropy.wcs import WCS

        w = WCS(naxis=2)
        w.wcs.ctype = [hdr.get("REFXCTYP", "RA---TAN"), hdr.get("REFYCTYP", "DEC--TAN")]
        w.wcs.crpix = [hdr["REFXCRPX"], hdr["REFYCRPX"]]
        w.wcs.crval = [hdr["REFXCRVL"], hdr["REFYCRVL"]]
        w.wcs.cdelt = [hdr["REFXCDLT"], hdr["REFYCDLT"]]
        ra, dec = w.all_pix2world([[region_xy[0], region_xy[1]]], 1)[0]
        lc.ra, lc.dec, lc.pos_source = float(ra), float(dec), "region"
    elif j:
        (lc.ra, lc.dec), lc.pos_source = jname_position(j.group(0)), "name"


def refine_positions(curves: Sequence[LightCurve]) -> None:
    """A curve placed only by its (truncated) IAU name takes the position of a curve of the same
    observation, camera and name that has a header or region position (epiclccorr output and
    its evselect input, for instance)."""
    best = {(c.obs_id, c.camera, c.name): c for c in curves if c.name and c.pos_source in ("header", "region")}
    for c in curves:
        ref = best.get((c.obs_id, c.camera, c.name))
        if c.pos_source == "name" and ref is not None:
            c.ra, c.dec, c.pos_source = ref.ra, ref.dec, ref.pos_source


def jname_position(name: str) -> tuple[float, float]:
    """RA, Dec [deg] from an IAU 'JHHMMSS(.s)+DDMMSS(.s)' name (truncated: accurate to the last digit)."""
    m = JNAME_RE.search(name)
    if m is None:
        raise ValueError(f"{name!r} is not an IAU 'JHHMMSS+DDMMSS' name")
    h, mi, s, sg, d, dm, ds = m.groups()
    ra = 15.0 * (int(h) + int(mi) / 60 + float(s) / 3600)
    dec = (int(d) + int(dm) / 60 + float(ds) / 3600) * (-1 if sg == "-" else 1)
    return ra, dec


def obsid_in_path(path: str) -> str:
    """The last 10-digit observation id in a path ('' if none)."""
    m = re.findall(r"(?<!\d)(\d{10})(?!\d)", path)
    return m[-1] if m else ""


def camera_in_name(name: str) -> str:
    """EPIC camera (PN, M1, M2) named in a file name ('' if none)."""
    m = re.search(r"(?<![A-Za-z])(PN|M1|M2|MOS1|MOS2|EPN|EMOS1|EMOS2)(?![A-Za-z0-9])", name, re.I)
    return CAMERA.get(m.group(1).upper(), "") if m else ""


def iter_read(pairs: Sequence[tuple[str, str | None]], **kw) -> Iterator[tuple[str, LightCurve | None, str]]:
    """Read each (source, background) pair; yields (path, curve or None, error message or '')."""
    for src, bkg in pairs:
        try:
            yield src, read_lightcurve(src, bkg_path=bkg, **kw), ""
        except DataError as e:
            yield src, None, e.message
