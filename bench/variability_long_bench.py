"""Benchmark: ``xmmtools variability long`` end to end on the generated 4XMM-like catalogue.

    .venv/bin/python bench/variability_long_bench.py [--rows 1000000] [--archive-rows 100000]
                                                   [--ul-rows 100000] [--workdir /tmp/variability_long_bench]

Input: ``bench/out/4xmm_like_<rows>.fits`` from ``bench/make_4xmm_like.py`` (all 336 columns of
the 4XMM-DR14 detection schema; generated if missing).  From its unique sources (SRCID, SC_RA,
SC_DEC, EP_8_FLUX) the script draws, seeded, a Chandra-like archive (positions scattered by
their errors, CSC-band fluxes) and an upper-limit table (SRCID, MJD, FLUX_UL, BAND 8).  Two runs,
each a fresh process timed with its peak RSS (``ru_maxrss`` of the child):

1. ``full``: the 336-column FITS in, every input column kept, Parquet out (the stage reads the
   ~25 columns it uses, computes, then streams the whole table to append its columns);
2. ``slim``: the same rows with only the columns the stage uses, as Parquet.

Target (issue 6): 10^6 detections <= 30 s and <= 2 GB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]


def sources_of_input(path: str):
    """Unique sources of the input: SRCID, position, one flux (for the archive and ULs)."""
    from xmmtools import tables

    t = tables.read_table(path, ["SRCID", "SC_RA", "SC_DEC", "EP_8_FLUX"])
    srcid = t.column("SRCID").to_numpy()
    _, first = np.unique(srcid, return_index=True)
    col = lambda c: tables.to_numpy(t.column(c), float)[first]  # noqa: E731
    return srcid[first], col("SC_RA"), col("SC_DEC"), np.nan_to_num(col("EP_8_FLUX"), nan=1e-14)


def make_archive(n: int, ra0, dec0, f0, rng) -> pa.Table:
    pick = rng.choice(len(ra0), size=n, replace=False)
    err = rng.uniform(0.3, 1.5, n)
    return pa.table(
        {
            "RA": ra0[pick] + rng.normal(0, err / 3600) / np.cos(np.radians(dec0[pick])),
            "DEC": dec0[pick] + rng.normal(0, err / 3600),
            "POSERR": err,
            "MJD": rng.uniform(51500, 60500, n),
            "FLUX": f0[pick] * 0.69,
            "FLUX_ERR": f0[pick] * 0.69 * 0.2,
        }
    )


def make_uls(n: int, srcid, f0, rng) -> pa.Table:
    pick = rng.choice(len(srcid), size=n, replace=False)
    return pa.table(
        {
            "SRCID": srcid[pick],
            "MJD": rng.uniform(51500, 60500, n),
            "FLUX_UL": f0[pick] * 10 ** rng.uniform(-2, 0.5, n),
            "BAND": np.full(n, "8"),
        }
    )


def run(label: str, cmd: list[str]) -> tuple[float, float]:
    """Run in a fresh process; wall time and the child's own peak RSS (via /usr/bin/time-like
    wait4 accounting)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{label}: command failed: {err.strip()}")
    print(f"  {label}: {err.strip()}")
    return wall, usage.ru_maxrss / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--archive-rows", type=int, default=100_000)
    ap.add_argument("--ul-rows", type=int, default=100_000)
    ap.add_argument("--workdir", default="/tmp/variability_long_bench")
    ap.add_argument("--seed", type=int, default=6)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    fits_in = ROOT / "bench" / "out" / f"4xmm_like_{a.rows}.fits"
    if not fits_in.exists():
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "make_4xmm_like.py"),
                "--rows",
                str(a.rows),
                "--out",
                str(fits_in.with_suffix("")),
            ],
            check=True,
        )
    rng = np.random.default_rng(a.seed)
    srcid, ra0, dec0, f0 = sources_of_input(str(fits_in))
    w = Path(a.workdir)
    pq.write_table(make_archive(min(a.archive_rows, len(ra0)), ra0, dec0, f0, rng), w / "csc.parquet")
    pq.write_table(make_uls(min(a.ul_rows, len(ra0)), srcid, f0, rng), w / "ul.parquet")
    from xmmtools import tables
    from xmmtools.columns import resolve
    from xmmtools.variability.long.epochs import INPUT_COLUMNS

    names = tables.inspect_table(str(fits_in)).schema.names
    slim_cols = list(dict.fromkeys(resolve(names, INPUT_COLUMNS).values()))
    pq.write_table(tables.read_table(str(fits_in), slim_cols), w / "slim.parquet")
    print(
        f"{a.rows} detections of {len(srcid)} sources ({fits_in.name}); archive {a.archive_rows} rows, "
        f"{a.ul_rows} upper limits; slim input = {len(slim_cols)} columns"
    )
    exe = str(Path(sys.executable).parent / "xmmtools")
    common = ["--archive", f"CSC2={w / 'csc.parquet'}", "--upper-limits", str(w / "ul.parquet"), "--overwrite"]
    results = {}
    for label, inp in (("full", str(fits_in)), ("slim", str(w / "slim.parquet"))):
        cmd = [
            exe,
            "variability",
            "long",
            inp,
            *common,
            "--alerts",
            str(w / f"alerts_{label}.parquet"),
            "-o",
            str(w / f"out_{label}.parquet"),
        ]
        results[label] = run(label, cmd)
    print(f"{'run':<6} {'wall s':>8} {'peak GB':>8}   (target <= 30 s, <= 2 GB)")
    for label, (wall, gb) in results.items():
        print(f"{label:<6} {wall:8.1f} {gb:8.2f}")


if __name__ == "__main__":
    main()
