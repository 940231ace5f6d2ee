"""Write a 4XMM-detection-like catalogue of any size for performance work.

    python bench/make_4xmm_like.py --rows 1000000 --out bench/out/4xmm_like_1e6 [--seed 1]

writes ``<out>.fits`` and ``<out>.parquet`` with all 336 columns of the 4XMM-DR14 detection
schema (names, order, types, units), streamed in chunks so memory stays bounded:

* several detections per unique source (SRCID), the source's detections scattered around its
  position by their POSERR, in ~12 000 observations (10-digit OBS_IDs with leading zeros);
* realistic ranges: log-normal fluxes around 1e-14 erg/cm2/s with 10-30 % errors, rates from
  fluxes through the catalogue ECFs, DET_ML > 6, hardness ratios in [-1, 1], exposures
  1e3-1.3e5 s, MJD 51500-60500, off-axis angles 0-15 arcmin;
* nulls where the catalogue has them: a camera not used in an observation (filter UNDEF) has NaN
  in all its float columns, no time series -> NaN CHI2PROB/FVAR, integer sentinels ->
  nulls, 10-20 % NaN hardness ratios.

The values are synthetic; the structure is the real catalogue's.  Used by bench_tables.py and
by the stages' benchmarks.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from xmmtools.columns import ecf, parse_family, schema
from xmmtools.tables import Provenance, TableWriter, field_meta

ARROW = {
    "float32": pa.float32(),
    "float64": pa.float64(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
    "str": pa.string(),
}
FILTERS = np.array(["Thin1", "Thin2", "Medium", "Thick"])
SUBMODES = np.array(["PrimeFullWindow", "PrimeFullWindowExtended", "PrimeLargeWindow", "PrimeSmallWindow"])


def make_sources(rows: int, rng: np.random.Generator):
    """Unique sources and the number of detections of each (1 + Poisson(0.6), like 4XMM's ~1.5)."""
    n_det = 1 + rng.poisson(0.6, size=int(rows / 1.5) + 10)
    cum = np.cumsum(n_det)
    n_src = int(np.searchsorted(cum, rows) + 1)
    n_det = n_det[:n_src]
    n_det[-1] -= cum[n_src - 1] - rows
    src_ra = rng.uniform(0, 360, n_src)
    src_dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n_src)))
    return n_det, src_ra, src_dec


def chunk_table(start: int, stop: int, det_src: np.ndarray, src_ra, src_dec, obs_ids, rng) -> pa.Table:
    n = stop - start
    s = det_src[start:stop]
    cols: dict[str, pa.Array] = {}
    raw: dict[str, np.ndarray] = {}
    sch = schema()
    obs_idx = rng.integers(0, len(obs_ids), n)
    cam_on = {c: rng.random(n) > p for c, p in (("PN", 0.15), ("M1", 0.08), ("M2", 0.08))}
    poserr = rng.gamma(2.0, 0.8, n).astype(np.float32) + 0.3
    jitter = rng.normal(0, 1, (2, n)) * poserr / 3600.0
    ra = (src_ra[s] + jitter[0] / np.maximum(np.cos(np.radians(src_dec[s])), 1e-3)) % 360
    dec = np.clip(src_dec[s] + jitter[1], -90, 90)
    flux8 = 10 ** rng.normal(-14.0, 0.6, n)
    tseries = rng.random(n) < 0.36
    for name, col in sch.items():
        fam = parse_family(name)
        cam = fam.camera if fam else None
        off = ~cam_on[cam] if cam in cam_on else np.zeros(n, bool)
        if name == "DETID":
            v = 100000000000000 + start + np.arange(n, dtype=np.int64) + 1
        elif name == "SRCID":
            v = 200000000000000 + s.astype(np.int64)
        elif name in ("RA", "RA_UNC", "SC_RA"):
            v = ra
        elif name in ("DEC", "DEC_UNC", "SC_DEC"):
            v = dec
        elif name in ("POSERR", "SC_POSERR"):
            v = poserr
        elif name == "OBS_ID":
            v = obs_ids[obs_idx]
        elif name == "REVOLUT":
            v = np.char.zfill((obs_idx % 4000).astype(str), 4)
        elif name == "IAUNAME":
            v = _iau_names(src_ra[s], src_dec[s])
        elif name.endswith("_FILTER"):
            v = np.where(off, "UNDEF", FILTERS[obs_idx % 4])
        elif name.endswith("_SUBMODE"):
            v = np.where(off, "UNDEF", SUBMODES[obs_idx % 4])
        elif col.dtype == "str":
            v = (
                np.where(rng.random(n) < 0.5, "FFFFFFFFFFFF", "TFFFFFFFFFFF")
                if "FLAG" in name
                else np.where(rng.random(n) < 0.8, "", "S003")
            )
        elif col.dtype == "bool":
            v = tseries if name == "TSERIES" else rng.random(n) < 0.05
        elif col.dtype.startswith("int"):
            hi = {"int16": 30000, "int32": 2_000_000_000, "int64": 2**62}[col.dtype]
            v = rng.integers(0, 400 if "RAW" in name or "CCD" in name else min(hi, 100), n).astype(col.dtype)
            if "SRCID" in name or "DETID" in name:
                v = rng.integers(0, hi, n).astype(col.dtype)
        else:
            v = _float_values(name, col, fam, n, flux8, rng)
            if cam in cam_on and not name.startswith("SC_"):
                v[off] = np.nan
            if name.endswith("CHI2PROB") or "FVAR" in name:
                v[~tseries] = np.nan
        raw[name] = v
        if col.dtype == "bool":
            cols[name] = pa.array(v, mask=rng.random(n) < 0.02) if name != "TSERIES" else pa.array(v)
        elif col.dtype.startswith("int") and name not in ("DETID", "SRCID", "SRC_NUM"):
            cols[name] = pa.array(v, mask=rng.random(n) < 0.05).cast(ARROW[col.dtype])
        else:
            cols[name] = pa.array(v, type=ARROW[col.dtype]) if col.dtype != "str" else pa.array(v.tolist())
    fields = [pa.field(k, cols[k].type, metadata=field_meta(sch[k].unit, sch[k].description)) for k in cols]
    return pa.Table.from_arrays(list(cols.values()), schema=pa.schema(fields))


def _iau_names(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """'4XMM Jhhmmss.s+ddmmss' (truncated, as IAU designations are)."""
    h = ra / 15.0
    hh = np.floor(h).astype(int)
    mm = np.floor((h - hh) * 60).astype(int)
    ss = np.floor(((h - hh) * 60 - mm) * 600) / 10
    sign = np.where(dec < 0, "-", "+")
    ad = np.abs(dec)
    dd = np.floor(ad).astype(int)
    dm = np.floor((ad - dd) * 60).astype(int)
    ds = np.floor(((ad - dd) * 60 - dm) * 60).astype(int)
    return np.array(
        [
            f"4XMM J{a:02d}{b:02d}{c:04.1f}{g}{d:02d}{e:02d}{f:02d}"
            for a, b, c, g, d, e, f in zip(hh, mm, ss, sign, dd, dm, ds, strict=True)
        ]
    )


def _float_values(name, col, fam, n, flux8, rng):
    unit = col.unit
    if fam is not None and fam.quantity == "FLUX":
        band = fam.band or 8
        frac = {1: 0.08, 2: 0.15, 3: 0.3, 4: 0.3, 5: 0.2, 8: 1.0, 9: 0.7}.get(band, 0.5)
        f = flux8 * frac * 10 ** rng.normal(0, 0.15, n)
        return (f * rng.uniform(0.1, 0.3, n) if fam.err else f).astype(col.dtype)
    if fam is not None and fam.quantity == "RATE" and fam.camera in ("PN", "M1", "M2"):
        band = fam.band or 8
        r = flux8 * ecf(fam.camera, band if band in (1, 2, 3, 4, 5, 8, 9) else 8) * 1e11 * 0.3
        return (r * rng.uniform(0.1, 0.3, n) if fam.err else r).astype(col.dtype)
    if "HR" in name:
        v = np.clip(rng.normal(-0.1, 0.4, n), -1, 1) if not name.endswith("_ERR") else rng.uniform(0.02, 0.3, n)
        v[rng.random(n) < 0.15] = np.nan
        return v.astype(col.dtype)
    if "DET_ML" in name or name.endswith("_ML"):
        return (6 + rng.exponential(40, n)).astype(col.dtype)
    if name.endswith("_EXP") or "ONTIME" in name:
        return rng.uniform(1e3, 1.3e5, n).astype(col.dtype)
    if name.startswith("MJD"):
        return rng.uniform(51500, 60500, n).astype(col.dtype)
    if name in ("LII",):
        return rng.uniform(0, 360, n).astype(col.dtype)
    if name in ("BII",):
        return rng.uniform(-90, 90, n).astype(col.dtype)
    if unit == "arcmin":
        return rng.uniform(0, 15, n).astype(col.dtype)
    if unit == "arcsec":
        return rng.gamma(2.0, 1.0, n).astype(col.dtype)
    if unit.startswith("count"):
        return rng.gamma(2.0, 20.0, n).astype(col.dtype)
    if "CHI2PROB" in name:
        return rng.uniform(0, 1, n).astype(col.dtype)
    return rng.uniform(0, 1, n).astype(col.dtype)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", default="bench/out/4xmm_like_1e6")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=50_000)
    ap.add_argument("--formats", default="fits,parquet")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    n_det, src_ra, src_dec = make_sources(a.rows, rng)
    det_src = np.repeat(np.arange(len(n_det)), n_det)
    obs_ids = np.char.zfill(rng.integers(1, 900_000_000, 12_000).astype(str), 10)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    first = chunk_table(0, min(a.chunk, a.rows), det_src, src_ra, src_dec, obs_ids, rng)
    step = Provenance("make_4xmm_like", {"rows": a.rows, "seed": a.seed}, [])
    writers = [
        TableWriter(f"{out}.{fmt}", first.schema, provenance=step, overwrite=True) for fmt in a.formats.split(",")
    ]
    t0 = time.time()
    for w in writers:
        w.__enter__()
    try:
        for w in writers:
            w.write(first)
        for start in range(a.chunk, a.rows, a.chunk):
            t = chunk_table(start, min(start + a.chunk, a.rows), det_src, src_ra, src_dec, obs_ids, rng)
            for w in writers:
                w.write(t)
            print(f"\r{min(start + a.chunk, a.rows)}/{a.rows} rows", end="", file=sys.stderr)
    except BaseException:
        for w in writers:
            w.abort()
        raise
    for w in writers:
        w.close()
    print(
        f"\nwrote {a.rows} rows x {first.num_columns} columns, {len(n_det)} sources, "
        f"to {', '.join(w.path for w in writers)} in {time.time() - t0:.0f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
