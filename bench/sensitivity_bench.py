"""Benchmark of the sensitivity stage at realistic sizes, with a straightforward
scipy/astropy reference implementation run side by side in the same process.

    .venv/bin/python bench/sensitivity_bench.py [--obs DIR] [--n 1000000] [--ref 300]

1. statistics on 10^6 values: threshold N(B; L=10) from the table vs the exact solver vs
   scipy.stats.poisson.isf (integer form); KBN limits tabulated vs gammainccinv vs quadrature.
2. 10^6 random positions over the shipped observations (3 obs x 3 cameras x 2 bands): the
   full command `xmmtools sensitivity` in a subprocess (time, peak memory, rows written), and
   the reference (astropy WCS per position, direct pixel sums, brentq/quad statistics) on a
   subset, extrapolated, with the agreement of the numbers.
3. `xmmtools sensitivity-map --order 16` of one observation.
The reference data (../shared) are read here only; tests use tests/data.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", module="astropy")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "sensitivity" / "xga_0201901401_0201903501_0404910601"


def timed(f, *a, **k):
    t = time.perf_counter()
    out = f(*a, **k)
    return out, time.perf_counter() - t


def bench_statistics(n: int) -> dict:
    from scipy import integrate, optimize, stats

    from xmmtools.sensitivity.flix import threshold_counts
    from xmmtools.sensitivity.upper_limits import kbn_upper_limit, kbn_upper_limit_tabulated

    rng = np.random.default_rng(1)
    b = 10 ** rng.uniform(-1, 2.5, n)
    threshold_counts(b[:10])  # build the table once (cached per L)
    tab, t_tab = timed(threshold_counts, b)
    exact, t_exact = timed(threshold_counts, b, exact=True)
    # scipy reference for the integer threshold: smallest N with P(>= N | B) <= e^-L
    isf, t_isf = timed(stats.poisson.isf, np.exp(-10.0), b)
    ref_int = isf + 1
    ours_int = threshold_counts(b, integer=True)
    counts = rng.poisson(b).astype(float)
    kbn_upper_limit_tabulated(counts[:10], b[:10])
    kt, t_kt = timed(kbn_upper_limit_tabulated, counts, b)
    kd, t_kd = timed(kbn_upper_limit, counts, b)
    m = 300  # quadrature reference: per element, as a straightforward script would do

    def quad_ul(nn, bb, cl=0.9545):
        def post(s):
            return np.exp(nn * np.log(s + bb) - (s + bb) - (nn * np.log(max(nn + bb, 1.0)) - (nn + bb)))

        z = integrate.quad(post, 0, np.inf)[0]
        return optimize.brentq(lambda x: integrate.quad(post, 0, x)[0] / z - cl, 0, 10 * (nn + bb) + 50)

    t0 = time.perf_counter()
    kq = np.array([quad_ul(counts[i], b[i]) for i in range(m)])
    t_q = (time.perf_counter() - t0) / m * n
    return {
        "n": n,
        "threshold_table_s": t_tab,
        "threshold_exact_s": t_exact,
        "poisson_isf_s": t_isf,
        "threshold_table_max_rel_err": float(np.max(np.abs(tab / exact - 1))),
        "integer_threshold_equals_poisson_isf+1": float(np.mean(ours_int == ref_int)),
        "kbn_tabulated_s": t_kt,
        "kbn_gammainccinv_s": t_kd,
        "kbn_quadrature_extrapolated_s": t_q,
        "kbn_tabulated_max_rel_err": float(np.max(np.abs(kt / kd - 1))),
        "kbn_vs_quadrature_max_rel_err": float(np.max(np.abs(kd[:m] / kq - 1))),
    }


def reference_positions(ra, dec, products, radius=30.0, annulus=(60.0, 120.0)):
    """Straightforward per-position reference: astropy WCS and separations, direct sums over the
    pixels, annulus background without source masking, brentq threshold, KBN by quadrature-free
    gammainccinv.  Returns {(i, obs, inst, band): (exposure, counts, thresh_flux)}."""
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.wcs import WCS
    from scipy import optimize
    from scipy.special import gammainc

    from xmmtools.sensitivity import psf
    from xmmtools.sensitivity.ecf import band_ecf

    out = {}
    for p in products:
        with fits.open(p.expmap) as h:
            e = h[0].data.astype(float)
            w = WCS(h[0].header)
        with fits.open(p.image) as h:
            c = h[0].data.astype(float)
        ny, nx = e.shape
        yy, xx = np.mgrid[0:ny, 0:nx]
        sky = w.pixel_to_world(xx.ravel(), yy.ravel())
        pnt = SkyCoord(p.ra_pnt, p.dec_pnt, unit="deg")
        ecf = band_ecf(p.instrument, p.band, p.filter)
        for i, (r, d) in enumerate(zip(ra, dec, strict=True)):
            pos = SkyCoord(r, d, unit="deg")
            x, y = w.world_to_pixel(pos)
            col, row = int(np.rint(x)), int(np.rint(y))
            if not (0 <= col < nx and 0 <= row < ny):
                continue
            t = e[row, col]
            if t <= 0:
                out[(i, p.obs_id, p.instrument, p.band)] = (0.0, np.nan, np.nan)
                continue
            sep = sky.separation(w.pixel_to_world(col, row)).arcsec.reshape(ny, nx)
            disc = sep <= radius
            ann = (sep >= annulus[0]) & (sep <= annulus[1]) & (e > 0)
            bkg = c[ann].sum() / e[ann].sum() * e[disc].sum()
            n_thr = optimize.brentq(
                lambda nn, bkg=bkg: gammainc(nn, bkg) - np.exp(-10.0), 1e-9, bkg + 200 + 20 * np.sqrt(bkg)
            )
            eef = psf.eef(
                p.instrument, np.sqrt(disc.sum() / np.pi) * 4.35, psf.band_energy(*p.band), pos.separation(pnt).arcmin
            )
            out[(i, p.obs_id, p.instrument, p.band)] = (t, c[disc].sum(), (n_thr - bkg) / (eef * t) / (ecf * 1e11))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--obs", default=str(SHARED if SHARED.exists() else ROOT / "tests/data/sensitivity/obs"))
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--ref", type=int, default=40, help="positions for the per-position reference")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    res = {"obs": args.obs}
    print("statistics ...", file=sys.stderr)
    res["statistics"] = bench_statistics(args.n)

    from xmmtools import tables
    from xmmtools.sensitivity.io import discover_products

    rng = np.random.default_rng(2)
    ra = 149.59 + rng.uniform(-0.35, 0.35, args.n) / np.cos(np.radians(11.09))
    dec = -11.09 + rng.uniform(-0.35, 0.35, args.n)
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        import pyarrow as pa

        src = os.path.join(tmp, "pos.parquet")
        tables.write_table(pa.table({"SRCID": np.arange(args.n), "RA": ra, "DEC": dec}), src)
        out = os.path.join(tmp, "ul.parquet")
        cmd = [
            sys.executable,
            "-m",
            "xmmtools",
            "sensitivity",
            src,
            "--obs",
            args.obs,
            "-o",
            out,
            "-q",
            "--chunk-size",
            "50000",
        ]
        print("positions (CLI) ...", file=sys.stderr)
        t0 = time.perf_counter()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, check=True)
        t_cli = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        peak = r1.ru_maxrss / 1024
        info = tables.inspect_table(out)
        res["positions"] = {
            "n": args.n,
            "cli_s": t_cli,
            "cli_cpu_s": cpu,
            "peak_rss_mb": peak,
            "load_average_1min": os.getloadavg()[0],
            "rows": info.num_rows,
            "output_mb": os.path.getsize(out) / 2**20,
        }
        # agreement with the reference on a subset
        got = tables.read_table(out, ["SRCID", "OBS_ID", "INSTRUMENT", "BAND", "EXPOSURE", "COUNTS", "THRESH_FLUX"])
        sel = np.flatnonzero(np.isin(got.column("SRCID").to_numpy(), np.arange(args.ref)))
        sub = got.take(sel).to_pylist()
        products = discover_products(args.obs)
        print("reference ...", file=sys.stderr)
        ref, t_ref = timed(reference_positions, ra[: args.ref], dec[: args.ref], products)
        pairs = []
        for r in sub:
            if r["INSTRUMENT"] == "EP":
                continue
            lo, hi = (float(x) for x in r["BAND"].split("-"))
            key = (r["SRCID"], r["OBS_ID"], r["INSTRUMENT"], (lo, hi))
            if key in ref:
                pairs.append((r["EXPOSURE"], r["COUNTS"], r["THRESH_FLUX"], *ref[key]))
        a = np.array(pairs, dtype=float)
        cov = a[:, 3] > 0
        res["reference"] = {
            "positions": args.ref,
            "rows_compared": len(pairs),
            "seconds": t_ref,
            "extrapolated_to_n_s": t_ref / args.ref * args.n,
            "rows_missing_in_ours": len(ref) - len(pairs),
            "exposure_max_abs_diff_s": float(np.max(np.abs(a[:, 0] - a[:, 3]))),
            "counts_max_abs_diff": float(np.nanmax(np.abs(a[cov, 1] - a[cov, 4]))),
            "thresh_flux_median_ratio_ours_over_ref": float(np.nanmedian(a[cov, 2] / a[cov, 5])),
            "thresh_flux_ratio_5_95": [float(x) for x in np.nanpercentile(a[cov, 2] / a[cov, 5], [5, 95])],
        }
        obs_one = next(str(Path(p.expmap).parent) for p in products)
        print("map ...", file=sys.stderr)
        mp = os.path.join(tmp, "map.parquet")
        t0 = time.perf_counter()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [sys.executable, "-m", "xmmtools", "sensitivity-map", "--obs", obs_one, "--order", "16", "-o", mp, "-q"],
            check=True,
        )
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        res["map_order16_one_obs"] = {
            "seconds": time.perf_counter() - t0,
            "cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
            "cells": tables.inspect_table(mp).num_rows,
        }
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
