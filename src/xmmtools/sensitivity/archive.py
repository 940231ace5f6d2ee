"""``--download``: pipeline products of the observations covering the positions, fetched from
the XMM-Newton Science Archive (XSA) through ``astroquery.esa.xmm_newton`` into a cache.

1. **Which observations.** An obslist (any table with OBS_ID/ObsID, RA_PNT, DEC_PNT) or the
   input catalogue's own OBS_ID (+ RA_PNT/DEC_PNT) columns.  An observation is kept when its
   pointing lies within ``radius_arcmin`` (default 15', the EPIC field radius: the MOS field of
   view is 30' across and pn's slightly smaller) of at least one position.  A catalogue with
   OBS_ID but no pointing columns keeps every OBS_ID it lists (its rows are detections in them).
2. **Cache.** ``<cache>/<OBS_ID>/`` (default ``$XDG_CACHE_HOME/xmmtools/xsa``, else
   ``~/.cache/xmmtools/xsa``).  A product type already fetched for an observation (a
   ``.xsa-<TYPE>.json`` marker listing the files, possibly none) is never asked for again.
3. **Download.** Per observation and PPS product type (EXPMAP exposure maps, IMAGE_ counts
   images, BKGMAP background maps, DETMSK detection masks) one
   ``XMMNewtonClass.download_data(obs, level="PPS", name=TYPE, extension="FTZ")`` call (the
   archive answers with a tar of every camera and band, or one FTZ file); the EPIC
   (M1/M2/PN) FITS files are kept.  Connection errors, time-outs and HTTP 5xx are retried
   ``retries`` times with doubling pauses; then, like a refusal (HTTP 4xx, proprietary data)
   or an observation without exposure maps, a one-line :class:`DataError`.
4. **Names.** Files keep their PPS names (``P0201903501M1S002EXPMAP2000.FTZ``: band digit 1-5
   or 8 = the 4XMM bands) with ``_<lo>-<hi>keV`` appended from that digit unless the header has
   PIMIN/PIMAX, and ``_mask`` after DETMSK names, so that :func:`io.discover_products` (the
   ``--obs`` reader) finds and groups them unchanged.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from xmmtools.errors import DataError
from xmmtools.sky import unit_vectors

SERVICE = "XMM-Newton Science Archive (nxsa.esac.esa.int) via astroquery.esa.xmm_newton"
#: Pointing-to-position distance (arcmin) within which an observation can cover a position.
FIELD_RADIUS_ARCMIN = 15.0
#: PPS product types fetched, and whether an observation without them is an error.
PRODUCT_TYPES = (("EXPMAP", True), ("IMAGE_", False), ("BKGMAP", False), ("DETMSK", False))
#: PPS band digit -> keV (the 4XMM bands; 8 = 0.2-12 keV).
PPS_BANDS = {1: (0.2, 0.5), 2: (0.5, 1.0), 3: (1.0, 2.0), 4: (2.0, 4.5), 5: (4.5, 12.0), 8: (0.2, 12.0)}
#: P + OBS_ID + instrument + S/U + exposure + type + band digit + 3 characters + .FTZ
PPS_NAME = re.compile(r"^P(\d{10})(M1|M2|PN)([SUX])(\d{3})(EXPMAP|IMAGE_|BKGMAP|DETMSK)(\w)(\w{3})\.FTZ$", re.I)

_ID_COLUMNS = ("OBS_ID", "OBSID", "OBSERVATION_ID")
_PNT_COLUMNS = (("RA_PNT", "RAPNT"), ("DEC_PNT", "DECPNT"))


def default_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "xmmtools", "xsa")


# ----------------------------------------------------------------------------------------
# 1. observations
# ----------------------------------------------------------------------------------------


def _column(names, wanted) -> str | None:
    upper = {n.upper(): n for n in names}
    return next((upper[w] for w in wanted if w in upper), None)


def _obs_ids(values, source: str) -> list[str]:
    out = []
    for v in values:
        s = str(v).strip()
        if s.isdigit() and len(s) <= 10:
            s = s.zfill(10)  # integer columns lose the leading zero
        if not (len(s) == 10 and s.isdigit()):
            raise DataError(f"{source}: {v!r} is not a 10-digit XMM-Newton OBS_ID")
        out.append(s)
    return out


def pointings(table, source: str, *, need_pointing: bool) -> tuple[list[str], np.ndarray | None, np.ndarray | None]:
    """Unique OBS_IDs of a table and their RA_PNT/DEC_PNT (None when the table has none)."""
    from xmmtools import tables

    names = table.schema.names
    idcol = _column(names, _ID_COLUMNS)
    racol, deccol = (_column(names, c) for c in _PNT_COLUMNS)
    if idcol is None or (need_pointing and (racol is None or deccol is None)):
        want = "OBS_ID, RA_PNT and DEC_PNT columns" if need_pointing else "an OBS_ID column"
        raise DataError(f"{source}: --download needs {want} (or give --obslist FILE)")
    ids = _obs_ids(table.column(idcol).to_pylist(), source)
    _, first = np.unique(np.asarray(ids), return_index=True)
    first = np.sort(first)
    ids = [ids[k] for k in first]
    if racol is None or deccol is None:
        return ids, None, None
    ra = tables.to_numpy(table.column(racol), float)[first]
    dec = tables.to_numpy(table.column(deccol), float)[first]
    bad = ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: observation {ids[k]} has no valid pointing (RA_PNT {ra[k]}, DEC_PNT {dec[k]})")
    return ids, ra, dec


def read_obslist(path: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """OBS_ID, RA_PNT, DEC_PNT of an obslist file (any table format read_table knows)."""
    from xmmtools import tables

    ids, ra, dec = pointings(tables.read_table(path), path, need_pointing=True)
    if ra is None or dec is None:  # not reached: need_pointing=True raises first
        raise DataError(f"{path}: --download needs OBS_ID, RA_PNT and DEC_PNT columns")
    return ids, ra, dec


def select_observations(ra, dec, obs_ids, ra_pnt, dec_pnt, radius_arcmin: float = FIELD_RADIUS_ARCMIN) -> list[str]:
    """The observations whose pointing is within ``radius_arcmin`` of at least one position."""
    from scipy.spatial import cKDTree

    if len(obs_ids) == 0 or len(ra) == 0:
        return []
    chord = 2.0 * np.sin(np.radians(radius_arcmin / 60.0) / 2.0)
    tree = cKDTree(unit_vectors(ra, dec))
    counts = tree.query_ball_point(unit_vectors(ra_pnt, dec_pnt), chord, return_length=True)
    return [o for o, n in zip(obs_ids, np.atleast_1d(counts), strict=True) if n > 0]


# ----------------------------------------------------------------------------------------
# 2.-4. cache and download
# ----------------------------------------------------------------------------------------


@dataclass
class FetchResult:
    folders: list[str]  # one per observation with exposure maps
    downloaded: list[str] = field(default_factory=list)  # observations asked of the archive
    cached: list[str] = field(default_factory=list)  # observations served from the cache only
    missing: list[str] = field(default_factory=list)  # observations without exposure maps
    query_date: str | None = None

    def provenance(self, cache: str) -> dict:
        return {
            "service": SERVICE,
            "cache": cache,
            "observations": sorted(self.downloaded + self.cached),
            "downloaded": self.downloaded,
            "from_cache": self.cached,
            "without_products": self.missing,
            "query_date": self.query_date,
        }


def _client():
    from astroquery.esa.xmm_newton import XMMNewtonClass

    return XMMNewtonClass()


def _transient(exc: BaseException) -> bool:
    import requests

    if isinstance(exc, requests.HTTPError):
        code = getattr(exc.response, "status_code", None)
        return code is None or code >= 500
    return isinstance(
        exc,
        (
            ConnectionError,
            TimeoutError,
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ),
    )


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 140:  # requests' messages end with the cause ("[Errno 101] Network is unreachable")
        text = "..." + text[-137:]
    return f"{type(exc).__name__}: {text}"


def _request(client, obs_id: str, ptype: str, staging: str, retries: int, backoff: float, sleep) -> bool:
    """One product type of one observation into ``staging``; False if the archive has none."""
    import requests
    from astroquery.exceptions import LoginError

    last: Exception
    for attempt in range(1, retries + 1):
        try:
            with contextlib.chdir(staging):  # astroquery writes into the working folder
                client.download_data(
                    obs_id, level="PPS", name=ptype, extension="FTZ", filename=f"{obs_id}_{ptype}", cache=False
                )
            return True
        except (UnboundLocalError, KeyError):
            # astroquery 0.4.x: the archive answers a request matching no file with a text page,
            # which download_data cannot parse (no Content-Disposition)
            return False
        except LoginError as e:
            raise DataError(
                f"XMM-Newton Science Archive refused observation {obs_id} ({e}; proprietary "
                "data need credentials): give its products with --obs"
            ) from None
        except requests.HTTPError as e:
            if not _transient(e):
                code = getattr(e.response, "status_code", "?")
                raise DataError(f"XMM-Newton Science Archive refused {obs_id} {ptype} (HTTP {code})") from None
            last = e
        except Exception as e:  # noqa: BLE001 - only transient network errors are retried
            if not _transient(e):
                raise
            last = e
        if attempt < retries:
            sleep(backoff * 2 ** (attempt - 1))
    raise DataError(
        f"cannot reach the XMM-Newton Science Archive for {obs_id} after {retries} attempts "
        f"({_short(last)}); offline? give local products with --obs DIR"
    )


def _local_name(pps_name: str, header) -> str | None:
    """Name under which io.discover_products recognises a PPS file (None: band unknown)."""
    m = PPS_NAME.match(pps_name)
    if m is None:  # e.g. a single FTZ whose header gives an EXPIDSTR unlike [SUX]nnn
        return None
    stem, ext = os.path.splitext(pps_name)
    if m[5].upper() == "DETMSK":
        stem += "_mask"
    if "PIMIN" in header and "PIMAX" in header:
        return stem + ext
    band = PPS_BANDS.get(int(m[6])) if m[6].isdigit() else None
    if band is None:
        return None
    return f"{stem}_{band[0]:g}-{band[1]:g}keV{ext}"


def _keep(dest: str, pps_name: str, data: bytes, kept: list[str]) -> None:
    from astropy.io import fits

    tmp = os.path.join(dest, f".part-{pps_name}")
    with open(tmp, "wb") as f:
        f.write(data)
    try:
        header = fits.getheader(tmp, 0)
    except OSError:
        os.remove(tmp)
        raise DataError(f"{pps_name} from the XMM-Newton Science Archive is not a FITS file") from None
    name = _local_name(pps_name, header)
    if name is None:
        os.remove(tmp)
        return
    os.replace(tmp, os.path.join(dest, name))
    kept.append(name)


def _unpack(staging: str, obs_id: str, ptype: str, dest: str) -> list[str]:
    """Move the EPIC FITS files of a download (tar or single FTZ) from ``staging`` to ``dest``."""
    from astropy.io import fits

    kept: list[str] = []
    for got in sorted(os.listdir(staging)):
        path = os.path.join(staging, got)
        if tarfile.is_tarfile(path):
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    base = os.path.basename(member.name)
                    m = PPS_NAME.match(base)
                    if member.isfile() and m and m[1] == obs_id and m[5].upper() == ptype:
                        data = tar.extractfile(member)  # None only for non-regular members
                        if data is not None:
                            _keep(dest, base, data.read(), kept)
        elif got.upper().endswith(".FTZ"):
            # a single matching file comes under our name: rebuild a PPS-like one from its header
            hdr = fits.getheader(path, 0)
            inst = {"EMOS1": "M1", "EMOS2": "M2", "EPN": "PN"}.get(str(hdr.get("INSTRUME", "")).strip().upper())
            if inst:
                expid = str(hdr.get("EXPIDSTR", "X000")).strip() or "X000"
                with open(path, "rb") as f:
                    _keep(dest, f"P{obs_id}{inst}{expid[:4]}{ptype}X000.FTZ", f.read(), kept)
    return kept


def fetch_products(
    obs_ids, cache: str | None = None, *, retries: int = 3, backoff: float = 2.0, log=None, client=None, sleep=None
) -> FetchResult:
    """Exposure maps, counts images, background maps and masks of ``obs_ids`` in ``cache``."""
    cache = cache or default_cache()
    sleep = sleep or time.sleep
    try:
        os.makedirs(cache, exist_ok=True)
    except OSError as e:
        raise DataError(f"--cache-dir {cache}: cannot create ({e.strerror})") from None
    result = FetchResult(folders=[])
    for obs_id in obs_ids:
        dest = os.path.join(cache, obs_id)
        os.makedirs(dest, exist_ok=True)
        asked = False
        has_expmap = True
        for ptype, required in PRODUCT_TYPES:
            marker = os.path.join(dest, f".xsa-{ptype}.json")
            files = _cached(marker, dest)
            if files is None:
                if client is None:
                    client = _client()
                if log and not asked:
                    log(f"downloading PPS products of {obs_id} from the XMM-Newton Science Archive")
                asked = True
                if result.query_date is None:
                    result.query_date = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
                staging = tempfile.mkdtemp(prefix=".staging-", dir=dest)
                try:
                    found = _request(client, obs_id, ptype, staging, retries, backoff, sleep)
                    files = _unpack(staging, obs_id, ptype, dest) if found else []
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
                with open(marker + ".part", "w") as f:
                    json.dump(
                        {
                            "obs_id": obs_id,
                            "type": ptype,
                            "files": files,
                            "service": SERVICE,
                            "date": result.query_date,
                        },
                        f,
                    )
                os.replace(marker + ".part", marker)
            if required and not files:
                has_expmap = False
                break
        (result.downloaded if asked else result.cached).append(obs_id)
        if has_expmap:
            result.folders.append(dest)
        else:
            result.missing.append(obs_id)
            if log:
                log(f"warning: the XMM-Newton Science Archive has no EPIC exposure maps for {obs_id}; skipped")
    if not result.folders:
        raise DataError(
            f"the XMM-Newton Science Archive has no EPIC PPS exposure maps for observation(s) {', '.join(obs_ids)}"
        )
    return result


def _cached(marker: str, dest: str) -> list[str] | None:
    """Files recorded by a previous fetch, or None when it must be (re)fetched."""
    try:
        with open(marker) as f:
            files = json.load(f)["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if all(os.path.isfile(os.path.join(dest, n)) for n in files):
        return files
    return None


def discover(folders: list[str], bands=None) -> list:
    """io.discover_products over the observation folders; those without the band are skipped."""
    from xmmtools.sensitivity.io import discover_products

    products = []
    for folder in folders:
        try:
            products += discover_products(folder, bands)
        except DataError as e:
            if not e.message.startswith(f"--obs {folder}: no exposure maps"):
                raise
    if not products:
        what = "" if bands is None else " in the requested band(s)"
        raise DataError(f"no exposure maps{what} among the {len(folders)} downloaded observation(s)")
    return products


def products_for(
    table,
    ra,
    dec,
    source: str,
    obslist: str | None,
    cache: str | None,
    radius_arcmin: float = FIELD_RADIUS_ARCMIN,
    log=None,
    **fetch,
) -> tuple[list[str], dict]:
    """``--download`` in one call: the product folders of the observations covering the
    positions, and the provenance record (service, observations, query date)."""
    ra_pnt: np.ndarray | None
    dec_pnt: np.ndarray | None
    if obslist:
        ids, ra_pnt, dec_pnt = read_obslist(obslist)
        src = obslist
    else:
        ids, ra_pnt, dec_pnt = pointings(table, source, need_pointing=False)
        src = source
    # a catalogue without pointings: its rows are detections in these observations
    chosen = ids if ra_pnt is None else select_observations(ra, dec, ids, ra_pnt, dec_pnt, radius_arcmin)
    if not chosen:
        raise DataError(
            f"no observation of {src} ({len(ids)}) has its pointing within {radius_arcmin:g}' "
            f"of any of the {len(ra)} position(s): nothing to download"
        )
    if log:
        log(f"{len(chosen)} of {len(ids)} observations of {src} are within {radius_arcmin:g}' of the positions")
    cache = cache or default_cache()
    result = fetch_products(chosen, cache, log=log, **fetch)
    return result.folders, result.provenance(cache)
