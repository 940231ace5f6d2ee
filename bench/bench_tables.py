"""Table I/O benchmark: 15 of 336 columns from a 10^6-row 4XMM-like catalogue.

    python bench/bench_tables.py [--rows 1000000] [--keep]

Generates bench/out/4xmm_like_<rows>.{fits,parquet} (bench/make_4xmm_like.py) if missing,
then runs each measurement in a fresh process (time and peak resident memory), side by side
with the reference readers in the same run:

* xmmtools.tables.read_table(path, 15 columns) vs astropy (fits.open memmap + copy of the
  15 fields; Table.read of the whole file is not needed to compare) and pyarrow.parquet;
* writing the 15 columns back to FITS and Parquet: xmmtools vs astropy Table.write / pyarrow;
* streaming the whole 336-column table FITS -> Parquet in chunks (bounded memory).

Targets (issue 2): the 15-column read in <= 5 s and <= 1 GB on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

COLS = [
    "SRCID",
    "DETID",
    "OBS_ID",
    "RA",
    "DEC",
    "POSERR",
    "EP_8_FLUX",
    "EP_8_FLUX_ERR",
    "EP_HR1",
    "EP_HR2",
    "EP_HR3",
    "EP_HR4",
    "EP_EXTENT",
    "EP_8_DET_ML",
    "VAR_FLAG",
]

PRELUDE = (
    textwrap.dedent("""
    import json, resource, sys, time
    import numpy, pyarrow, pyarrow.parquet, pyarrow.csv, astropy.io.fits, astropy.table  # imports are not timed
    cols = %r
    def report(name, t0, **kw):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(dict(name=name, seconds=round(time.perf_counter() - t0, 3), peak_mb=round(peak), **kw)))
""")
    % COLS
)

JOBS = {
    "baseline: python + imports": """
import numpy, pyarrow, astropy.io.fits, xmmtools.tables
t0 = time.perf_counter(); report("baseline: python + imports", t0)
""",
    "read 15 cols FITS: xmmtools": """
from xmmtools import tables as T
t0 = time.perf_counter(); t = T.read_table(sys.argv[1] + ".fits", cols)
report("read 15 cols FITS: xmmtools", t0, rows=t.num_rows)
""",
    "read 15 cols FITS: astropy memmap": """
from astropy.io import fits
import numpy as np
t0 = time.perf_counter()
with fits.open(sys.argv[1] + ".fits", memmap=True) as h:
    d = h[1].data
    out = {c: np.array(d[c]) for c in cols}
report("read 15 cols FITS: astropy memmap", t0, rows=len(out["RA"]))
""",
    "read 15 cols Parquet: xmmtools": """
from xmmtools import tables as T
t0 = time.perf_counter(); t = T.read_table(sys.argv[1] + ".parquet", cols)
report("read 15 cols Parquet: xmmtools", t0, rows=t.num_rows)
""",
    "read 15 cols Parquet: pyarrow": """
import pyarrow.parquet as pq
t0 = time.perf_counter(); t = pq.read_table(sys.argv[1] + ".parquet", columns=cols)
report("read 15 cols Parquet: pyarrow", t0, rows=t.num_rows)
""",
    "write 15 cols FITS+Parquet: xmmtools": """
from xmmtools import tables as T
t = T.read_table(sys.argv[1] + ".parquet", cols)
t0 = time.perf_counter()
T.write_table(t, sys.argv[1] + "_15.fits", overwrite=True)
t1 = time.perf_counter()
T.write_table(t, sys.argv[1] + "_15.parquet", overwrite=True)
report("write 15 cols FITS+Parquet: xmmtools", t0, fits_s=round(t1 - t0, 3))
""",
    "write 15 cols FITS+Parquet: astropy/pyarrow": """
import pyarrow.parquet as pq
from astropy.table import Table
t = pq.read_table(sys.argv[1] + ".parquet", columns=cols)
t0 = time.perf_counter()
import numpy as np
arr = {c: t.column(c).to_numpy(zero_copy_only=False) for c in cols}
arr = {c: (v.astype(str) if v.dtype == object and c != "VAR_FLAG" else v) for c, v in arr.items()}
arr["VAR_FLAG"] = np.asarray(t.column("VAR_FLAG").fill_null(False).to_numpy(zero_copy_only=False), bool)
Table(arr).write(sys.argv[1] + "_ref15.fits", overwrite=True)
t1 = time.perf_counter()
pq.write_table(t, sys.argv[1] + "_ref15.parquet", compression="zstd")
report("write 15 cols FITS+Parquet: astropy/pyarrow", t0, fits_s=round(t1 - t0, 3))
""",
    "stream 336 cols FITS -> Parquet: xmmtools convert": """
from xmmtools import tables as T
t0 = time.perf_counter()
chunks = T.iter_table(sys.argv[1] + ".fits")
first = next(chunks)
with T.TableWriter(sys.argv[1] + "_copy.parquet", first.schema, overwrite=True) as w:
    w.write(first)
    for c in chunks:
        w.write(c)
report("stream 336 cols FITS -> Parquet: xmmtools convert", t0, rows=w.rows)
""",
}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    a = ap.parse_args(argv)
    here = Path(__file__).resolve().parent
    base = here / "out" / f"4xmm_like_{a.rows}"
    if not (Path(f"{base}.fits").exists() and Path(f"{base}.parquet").exists()):
        subprocess.run(
            [sys.executable, str(here / "make_4xmm_like.py"), "--rows", str(a.rows), "--out", str(base)], check=True
        )
    sizes = {ext: os.path.getsize(f"{base}.{ext}") / 2**20 for ext in ("fits", "parquet")}
    print(f"# {a.rows} rows x 336 columns: FITS {sizes['fits']:.0f} MiB, Parquet {sizes['parquet']:.0f} MiB")
    for ext in ("fits", "parquet"):  # warm the page cache so no job pays the disk read alone
        with open(f"{base}.{ext}", "rb") as fh:
            while fh.read(64 * 2**20):
                pass
    results = []
    for name, code in JOBS.items():
        # every job runs with a warm page cache (the files were read once above)
        r = subprocess.run([sys.executable, "-c", PRELUDE + code, str(base)], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"{name}: FAILED\n{r.stderr}")
            continue
        res = json.loads(r.stdout.strip().splitlines()[-1])
        results.append(res)
        print(
            f"{res['name']:<48} {res['seconds']:>8.2f} s  peak {res['peak_mb']:>6} MB"
            + (f"  (FITS part {res['fits_s']:.2f} s)" if "fits_s" in res else "")
        )
    by = {r["name"]: r for r in results}

    def ratio(a_, b_):
        if a_ in by and b_ in by:
            print(f"ratio {a_} / {b_}: time {by[a_]['seconds'] / max(by[b_]['seconds'], 1e-9):.2f}")

    ratio("read 15 cols FITS: xmmtools", "read 15 cols FITS: astropy memmap")
    ratio("read 15 cols Parquet: xmmtools", "read 15 cols Parquet: pyarrow")
    ratio("write 15 cols FITS+Parquet: xmmtools", "write 15 cols FITS+Parquet: astropy/pyarrow")
    if not a.keep:
        for suffix in ("_15.fits", "_15.parquet", "_ref15.fits", "_ref15.parquet", "_copy.parquet"):
            Path(f"{base}{suffix}").unlink(missing_ok=True)
    return results


if __name__ == "__main__":
    main()
