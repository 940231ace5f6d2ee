"""Local vs Dask engine for crossmatch: time, peak memory of the local process and of each Dask
worker, and per-worker memory as the counterpart catalogue grows 10x.

Synthetic sky at realistic densities: X-ray primaries at 1000 deg^-2 (4XMM-like deep fields,
positional errors 0.5-3"), counterparts at 10^4 deg^-2 (Gaia at high latitude, 0.1"), true
counterparts for 70 % of the primaries.  Size N (primaries) -> 10 N counterparts over N / 1000
deg^2.  For each size: the counterparts as Parquet (local engine) and as a HATS catalogue made by
``xmmtools hats import`` (Dask engine), then ``xmmtools crossmatch`` with each engine.  The Dask
run uses a LocalCluster of 2 worker *processes* started here (``--scheduler``), so each
worker's peak RSS can be read.

    python bench/engine_bench.py --sizes 100000 1000000      # 10^5 x 10^6, then 10^6 x 10^7
    python bench/engine_bench.py --sizes 100000 --factors 10 100   # the counterparts grow 10x
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

import numpy as np
import pyarrow as pa

from xmmtools import tables


def make_sky(n: int, folder: str, seed: int = 1, factor: int = 10) -> tuple[str, str, float]:
    rng = np.random.default_rng(seed)
    area = n / 1000.0  # deg^2
    side = np.sqrt(area)
    dec0 = 10.0
    ra = 150.0 + rng.uniform(0, side / np.cos(np.radians(dec0)), n)
    dec = dec0 + rng.uniform(0, side, n)
    err = rng.uniform(0.5, 3.0, n)
    x = pa.table({"SRCID": np.arange(n), "RA": ra, "DEC": dec, "POSERR": err})
    xpath = os.path.join(folder, f"x_{n}.fits")
    schema = x.schema.with_metadata({tables.HEADER_KEY: json.dumps([["SKYAREA", area, "deg2"]]).encode()})
    tables.write_table(x.replace_schema_metadata(schema.metadata), xpath, overwrite=True)
    m = factor * n
    true = rng.random(n) < 0.7
    k = int(true.sum())
    off = rng.normal(0, 1, (2, k)) * err[true] / 3600.0
    cra = np.concatenate([ra[true] + off[0] / np.cos(np.radians(dec[true])), rng.uniform(ra.min(), ra.max(), m - k)])
    cdec = np.concatenate([dec[true] + off[1], rng.uniform(dec.min(), dec.max(), m - k)])
    o = pa.table({"OID": np.arange(m), "ra": cra, "dec": cdec, "MAG": rng.uniform(15, 22, m)})
    schema = o.schema.with_metadata({tables.HEADER_KEY: json.dumps([["SKYAREA", area, "deg2"]]).encode()})
    opath = os.path.join(folder, f"o_{m}.parquet")
    tables.write_table(o.replace_schema_metadata(schema.metadata), opath, overwrite=True)
    return xpath, opath, area


def timed(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of a command."""
    t0 = time.time()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return time.time() - t0, int(r.stderr.strip().splitlines()[-1]) / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument(
        "--factors",
        type=int,
        nargs="+",
        default=[10],
        help="counterparts per primary on the same sky (10: 10^4 deg^-2; 100: 10^5 deg^-2, the catalogue 10x)",
    )
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    xm = [sys.executable, "-m", "xmmtools"]
    folder = args.dir or tempfile.mkdtemp(prefix="xmm_engine_bench_")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    rows = []
    try:
        for n, factor in [(n, f) for n in args.sizes for f in args.factors]:
            xpath, opath, area = make_sky(n, folder, factor=factor)
            hats = f"hats:{os.path.join(folder, f'o_{factor * n}_hats')}"
            t_imp, m_imp = timed([*xm, "hats", "import", opath, "-o", hats, "--overwrite", "-q"])
            common = ["crossmatch", xpath, "--radius", "10", "--overwrite", "-q"]
            t_loc, m_loc = timed(
                [
                    *xm,
                    *common,
                    "--catalog",
                    f"opt={opath}",
                    "--pos-err",
                    "opt=0.1",
                    "-o",
                    os.path.join(folder, "local.parquet"),
                ]
            )
            client.restart()  # fresh workers: their peak RSS is this run's
            t_dask, m_drv = timed(
                [
                    *xm,
                    *common,
                    "--catalog",
                    f"opt={hats}",
                    "--pos-err",
                    "opt=0.1",
                    "-o",
                    os.path.join(folder, "dask.parquet"),
                    "--engine",
                    "dask",
                    "--scheduler",
                    cluster.scheduler_address,
                ]
            )
            peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
            a = tables.read_table(os.path.join(folder, "local.parquet"), ["P_ANY"])
            b = tables.read_table(os.path.join(folder, "dask.parquet"), ["P_ANY"])
            dmax = float(np.max(np.abs(tables.to_numpy(a["P_ANY"]) - tables.to_numpy(b["P_ANY"]))))
            row = {
                "primaries": n,
                "counterparts": factor * n,
                "area_deg2": area,
                "hats_import_s": round(t_imp, 1),
                "hats_import_MB": round(m_imp),
                "local_s": round(t_loc, 1),
                "local_peak_MB": round(m_loc),
                "dask_s": round(t_dask, 1),
                "dask_driver_peak_MB": round(m_drv),
                "dask_worker_peak_MB": [round(v) for v in peaks.values()],
                "max_abs_dP_ANY": dmax,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
