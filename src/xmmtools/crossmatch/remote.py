"""Remote counterpart catalogues: VizieR cone searches and the CDS XMatch service (astroquery).

``--catalog gaia=vizier:I/355/gaiadr3`` fetches the sources of any VizieR table within the
search radius of the primary sources (several positions per request, ``CHUNK`` at a time);
``--catalog gaia=xmatch:I/355/gaiadr3`` uploads the positions to CDS XMatch instead (better for
10^4+ primaries).  Each chunk's answer is cached as Parquet (a safe format) under the cache
folder, keyed by service, table, radius and the chunk's positions, so a rerun works offline.
Failures are retried (``RETRIES`` attempts, growing pauses); when the service cannot be reached
the error is one line.

The sky area for the density prior is that of the union of the search cones (counted on a
fine HEALPix grid): the fetched sources are complete inside it and absent outside.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import time
from typing import Any

import numpy as np
import pyarrow as pa

from xmmtools import tables
from xmmtools.errors import DataError

SERVICES = ("vizier", "xmatch")
CHUNK = {"vizier": 200, "xmatch": 50_000}
RETRIES = 3
PAUSE = 2.0  # seconds, doubled after each failure
#: columns the services add that are not catalogue columns
_SERVICE_COLUMNS = {"_q", "_r", "angDist", "_ra_query", "_dec_query"}


def is_remote(src: str) -> bool:
    return str(src).split(":", 1)[0].lower() in SERVICES and ":" in str(src)


def parse(src: str) -> tuple[str, str]:
    service, table = str(src).split(":", 1)
    service = service.lower()
    if service not in SERVICES or not table.strip():
        raise DataError(f"remote catalogue {src!r}: expected vizier:TABLE or xmatch:TABLE (e.g. vizier:I/355/gaiadr3)")
    return service, table.strip()


def cache_folder(cache_dir: str | None) -> str:
    if cache_dir:
        return cache_dir
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "xmmtools", "crossmatch")


def cache_key(service: str, table: str, radius: float, ra: np.ndarray, dec: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(f"{service}|{table}|{radius:.6f}|".encode())
    h.update(np.round(np.asarray(ra, dtype=float), 7).tobytes())
    h.update(np.round(np.asarray(dec, dtype=float), 7).tobytes())
    return h.hexdigest()[:32]


# -- the two service calls (the only functions touching the network; tests replace them) ----


def query_vizier(table: str, ra: np.ndarray, dec: np.ndarray, radius: float):
    """All columns of VizieR ``table`` within ``radius`` arcsec of the positions (astropy Table)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astroquery.vizier import Vizier

    v = Vizier(columns=["**"], row_limit=-1)
    res = v.query_region(SkyCoord(ra, dec, unit="deg"), radius=radius * u.arcsec, catalog=table)
    if res is None or len(res) == 0:
        return None
    return res[0]


def query_xmatch(table: str, ra: np.ndarray, dec: np.ndarray, radius: float):
    """CDS XMatch of uploaded positions with ``vizier:table`` within ``radius`` arcsec."""
    import astropy.units as u
    from astropy.table import Table
    from astroquery.xmatch import XMatch

    up = Table({"_ra_query": ra, "_dec_query": dec})
    return XMatch.query(
        cat1=up, cat2=f"vizier:{table}", max_distance=radius * u.arcsec, colRA1="_ra_query", colDec1="_dec_query"
    )


_CALLS = {"vizier": "query_vizier", "xmatch": "query_xmatch"}


def _call(service: str, table: str, ra, dec, radius: float):
    fn = globals()[_CALLS[service]]
    pause = PAUSE
    last: BaseException | None = None
    for attempt in range(RETRIES):
        try:
            return fn(table, ra, dec, radius)
        except DataError:
            raise
        except Exception as e:  # network, HTTP, service errors
            last = e
            if attempt + 1 < RETRIES:
                time.sleep(pause)
                pause *= 2
    reason = " ".join(str(last).split())[:160] or type(last).__name__
    raise DataError(
        f"cannot query {service} for {table} after {RETRIES} attempts ({type(last).__name__}: {reason}); "
        "check the network, or download the table and give it as a local file"
    )


def _to_arrow(t) -> pa.Table:
    """astropy Table -> Arrow, dropping the services' own columns and masked values -> nulls."""
    cols, fields = [], []
    for name in t.colnames:
        if name in _SERVICE_COLUMNS:
            continue
        c = t[name]
        data = np.asarray(c)
        mask = np.asarray(getattr(c, "mask", np.zeros(len(c), dtype=bool)), dtype=bool)
        if data.dtype.kind in "US":
            arr = pa.array(data.astype(str), mask=mask if mask.any() else None)
        elif data.dtype.kind == "f":
            arr = pa.array(np.where(mask, np.nan, data))
        else:
            arr = pa.array(data, mask=mask if mask.any() else None)
        unit = str(c.unit) if getattr(c, "unit", None) is not None else ""
        cols.append(arr)
        fields.append(pa.field(name, arr.type, metadata=tables.field_meta(unit, getattr(c, "description", "") or "")))
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def _dedupe(t: pa.Table) -> pa.Table:
    """A counterpart near two primaries comes back twice: keep one copy of identical rows."""
    if t.num_rows == 0:
        return t
    df = t.to_pandas()
    keep = ~df.astype(str).duplicated().to_numpy()
    return t.filter(pa.array(keep))


def cones_area(ra: np.ndarray, dec: np.ndarray, radius: float) -> float:
    """Area (deg^2) of the union of cones of ``radius`` arcsec, on a HEALPix grid with pixels
    about 1/4 of the radius (nside <= 2^20)."""
    import healpy as hp

    order = int(np.clip(np.ceil(np.log2(4 * 3600 * 58.6 / max(radius, 1e-3))), 6, 20))
    nside = 2**order
    vec = hp.ang2vec(np.asarray(ra, dtype=float), np.asarray(dec, dtype=float), lonlat=True)
    pix = set()
    r = np.radians(radius / 3600.0)
    for v in vec:
        pix.update(hp.query_disc(nside, v, r, inclusive=False, nest=True).tolist())
    return len(pix) * hp.nside2pixarea(nside, degrees=True)


def fetch(src: str, ra, dec, radius: float, *, cache_dir: str | None = None) -> tuple[pa.Table, dict, dict[str, Any]]:
    """Counterparts of ``src`` around the primaries: (table, header with SKYAREA, provenance)."""
    service, table = parse(src)
    ra = np.asarray(ra, dtype=float)
    dec = np.asarray(dec, dtype=float)
    folder = cache_folder(cache_dir)
    step = CHUNK[service]
    parts = []
    all_cached = True
    for start in range(0, len(ra), step):
        r, d = ra[start : start + step], dec[start : start + step]
        path = os.path.join(folder, f"{service}_{cache_key(service, table, radius, r, d)}.parquet")
        if os.path.exists(path):
            parts.append(tables.read_table(path))
            continue
        all_cached = False
        res = _call(service, table, r, d, radius)
        part = _to_arrow(res) if res is not None and len(res) else None
        if part is None:
            part = parts[0].slice(0, 0) if parts else pa.table({})
        os.makedirs(folder, exist_ok=True)
        if part.num_columns:
            tables.write_table(
                part,
                path,
                overwrite=True,
                provenance=tables.Provenance(
                    "crossmatch-remote", {"service": service, "table": table, "radius_arcsec": radius}, []
                ),
            )
        parts.append(part)
    parts = [p for p in parts if p.num_columns]
    if not parts:
        raise DataError(
            f"{service} returned no {table} sources within {radius:g} arcsec of any primary source: "
            "the footprints do not overlap (or the table name is wrong)"
        )
    try:
        t = pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise DataError(f"{service} {table}: chunks disagree in columns ({e}); clear the cache {folder}") from None
    t = _dedupe(t)
    area = cones_area(ra, dec, radius)
    rec = {
        "service": service,
        "table": table,
        "radius_arcsec": radius,
        "rows": t.num_rows,
        "query_date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cached": all_cached,
        "cache": folder,
        "area_deg2": area,
    }
    return t, {"SKYAREA": area}, rec
