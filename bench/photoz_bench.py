"""photoz benchmark: TPZ (xmmtools) side by side with a plain scikit-learn random forest.

    .venv/bin/python bench/photoz_bench.py [--rows 1000000] [--skip-cv] [--jobs 2]

1. MGS (MLZ's own test data): train 100 trees on the 5 000 training galaxies, predict the 2 500
   test galaxies; quality (σNMAD, bias, η, CRPS, PIT KS, coverage) and times for TPZ and for
   ``RandomForestRegressor(n_estimators=100, min_samples_leaf=5)`` (point estimates only).
   MLZ 1.2 itself (pure Python 2-era code) does not install on this Python; its numbers from the
   issue (430 s to train 100 trees, 5 s to predict 5 000 rows) are quoted for the ratio.
2. Scale: ``xmmtools photoz`` on 10^6 rows (the test rows repeated) with the shipped galaxy
   model, PDFs written to Parquet; wall time and peak memory (child process max RSS).
3. Quasars / X-ray AGN, 5-fold CV (shuffle seed 20261121, as in the data README's baselines):
   SDSS DR3 quasars ugriz + 4 colours, and Stripe 82X spec-z AGN (REDSHIFT > 0.002) ugriz + W1 W2
   + 6 colours with -99 = missing; TPZ (mode) vs the random forest (mean), same folds.
   Stripe 82X is read from the shared data folder (no licence to ship it).
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
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "photoz"
S82X = ROOT.parent / "shared" / "data" / "photoz" / "agn" / "stripe82x_agn_z_lt1.fits"
sys.path.insert(0, str(ROOT / "src"))

from xmmtools.photoz import metrics  # noqa: E402
from xmmtools.photoz.attributes import resolve_attributes  # noqa: E402
from xmmtools.photoz.model import cross_validate, train_model  # noqa: E402
from xmmtools.photoz.tpz import ForestParams, Grid  # noqa: E402

MGS_ATTRS = "u,g,r,i,z,u-g,g-r,r-i,i-z".split(",")
MLZ_TRAIN_S, MLZ_PREDICT_5000_S = 430.0, 5.0


def rf(n_jobs):
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=100, min_samples_leaf=5, random_state=20261121, n_jobs=n_jobs)


def fmt(m, keys=("sigma_nmad", "bias", "outliers_015", "outliers_005", "crps", "pit_ks", "coverage_68")):
    return "  ".join(f"{k}={m[k]:.4f}" for k in keys if k in m)


def mgs(n_jobs):
    tr, te = pq.read_table(DATA / "sdss_mgs_train.parquet"), pq.read_table(DATA / "sdss_mgs_test.parquet")
    aset = resolve_attributes(MGS_ATTRS, tr.column_names, source="train")
    grid = Grid(0.001, 0.3, 80)
    t0 = time.perf_counter()
    model = train_model("bench", aset, lambda c: tr[c].to_numpy(), tr["zs"].to_numpy(), grid,
                        ForestParams(4, 25, 5, 5), importance=False, oob=False, mode_smooth=3.0, n_jobs=n_jobs)
    t_train = time.perf_counter() - t0
    Xte, _ = resolve_attributes(MGS_ATTRS, te.column_names, source="t").values(lambda c: te[c].to_numpy())
    X5000 = np.concatenate([Xte, Xte])
    t0 = time.perf_counter()
    model.estimate(X5000, n_jobs=n_jobs)
    t_pred = time.perf_counter() - t0
    p, est = model.estimate(Xte, n_jobs=n_jobs)
    zs = te["zs"].to_numpy()
    m_tpz = metrics.all_metrics(p, grid.edges, zs, est)
    Xtr, _ = aset.values(lambda c: tr[c].to_numpy())
    t0 = time.perf_counter()
    forest = rf(n_jobs).fit(Xtr, tr["zs"].to_numpy())
    t_rf_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    forest.predict(X5000)
    t_rf_pred = time.perf_counter() - t0
    m_rf = metrics.point_metrics(forest.predict(Xte), zs)
    print("\n== MGS: 5000 train / 2500 test, 9 attributes, 100 trees")
    print(f"TPZ (xmmtools) train {t_train:6.2f} s  predict 5000 {t_pred:5.2f} s  | {fmt(m_tpz)}")
    print(f"sklearn RF      train {t_rf_train:6.2f} s  predict 5000 {t_rf_pred:5.2f} s  | {fmt(m_rf)}")
    print(f"MLZ 1.2 (issue) train {MLZ_TRAIN_S:6.1f} s  predict 5000 {MLZ_PREDICT_5000_S:5.2f} s  | "
          "sigma_nmad=0.0132 bias=-0.0002 outliers_005=0.011 crps=0.0093 pit_ks=0.047 coverage_68=0.73 (full test)")
    print(f"speed-up vs MLZ: train x{MLZ_TRAIN_S / t_train:.0f}, predict x{MLZ_PREDICT_5000_S / t_pred:.0f}")
    return {"tpz": {"train_s": t_train, "predict_5000_s": t_pred, **m_tpz},
            "rf": {"train_s": t_rf_train, "predict_5000_s": t_rf_pred, **m_rf}}


def scale(rows, n_jobs):
    te = pq.read_table(DATA / "sdss_mgs_test.parquet")
    reps = -(-rows // te.num_rows)
    big = pa.concat_tables([te] * reps).slice(0, rows)
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as d:
        src, out = Path(d) / "big.parquet", Path(d) / "big_z.parquet"
        pq.write_table(big, src)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "xmmtools", "photoz", str(src), "-o", str(out), "--model",
                            "galaxy", "--jobs", str(n_jobs), "-q"], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if r.returncode:
            raise SystemExit(r.stderr)
        size = out.stat().st_size
    print(f"\n== scale: xmmtools photoz on {rows:,} rows, galaxy model (100 trees), Z_PDF 80 bins -> Parquet")
    print(f"wall {wall:.1f} s ({rows / wall:,.0f} rows/s), peak RSS {max(peak, before) / 1e6:.2f} GB, "
          f"output {size / 1e6:.0f} MB")
    return {"rows": rows, "wall_s": wall, "peak_rss_gb": max(peak, before) / 1e6, "output_mb": size / 1e6}


def quasars(n_jobs):
    t = pq.read_table(DATA / "sdss_dr3_quasars.parquet")
    cols = {c: t[c].to_numpy() for c in t.column_names if c != "SDSS_J"}
    out = {}
    cases = {
        "DR3 QSO ugriz+4 colours": ("u,g,r,i,z,u-g,g-r,r-i,i-z", {}),
        "DR3 QSO ugriz+JHK (+z-J, J-K)": ("u,g,r,i,z,u-g,g-r,r-i,i-z,J,H,K,z-J,J-K", {}),
    }
    um = {b: f"{b}_mag" for b in "ugrizJHK"}
    for label, (attrs, _) in cases.items():
        out[label] = cv_pair(label, attrs.split(","), cols, cols["z"], um, (0.0,), Grid(0.0, 6.0, 200),
                             ForestParams(2, 25, 5, 5), n_jobs)
    return out


def stripe82x(n_jobs):
    if not S82X.exists():
        print(f"\n(skip Stripe 82X: {S82X} not found)")
        return {}
    from astropy.table import Table

    t = Table.read(S82X)
    keep = np.asarray(t["REDSHIFT"]) > 0.002
    names = ["U", "G", "R", "I", "Z", "W1", "W2", "UERR", "GERR", "RERR", "IERR", "ZERR", "W1ERR", "W2ERR"]
    cols = {c: np.asarray(t[c], float)[keep] for c in names}
    for c in names:  # -99 = missing; an error of 99 goes with a missing magnitude
        cols[c][np.abs(cols[c]) >= 98] = np.nan
    attrs = "U,G,R,I,Z,W1,W2,U-G,G-R,R-I,I-Z,Z-W1,W1-W2".split(",")
    return {"S82X ugriz+W1W2": cv_pair("S82X spec-z AGN ugriz+W1W2 (+6 colours)", attrs, cols,
                                       np.asarray(t["REDSHIFT"], float)[keep], {}, (), Grid(0.0, 1.05, 105),
                                       ForestParams(4, 25, 10, 5), n_jobs)}


def cv_pair(label, attrs, cols, z, user_map, missing, grid, params, n_jobs):
    from sklearn.model_selection import KFold

    aset = resolve_attributes(attrs, list(cols), source=label, user_map=user_map, missing=missing)
    get = lambda c: cols[c]  # noqa: E731
    t0 = time.perf_counter()
    _, _, m_tpz = cross_validate(aset, get, z, grid, params, folds=5, seed=20261121, n_jobs=n_jobs, mode_smooth=3.0)
    t_tpz = time.perf_counter() - t0
    X, _ = aset.values(get)
    pred = np.empty(len(z))
    t0 = time.perf_counter()
    for tr, te in KFold(5, shuffle=True, random_state=20261121).split(X):
        pred[te] = rf(n_jobs).fit(X[tr], z[tr]).predict(X[te])
    t_rf = time.perf_counter() - t0
    m_rf = metrics.point_metrics(pred, z)
    print(f"\n== {label}: {len(z)} objects, 5-fold CV")
    print(f"TPZ ({params.n_random * params.n_trees} trees, mode) {t_tpz:6.1f} s | {fmt(m_tpz)}")
    print(f"sklearn RF (100 trees, mean) {t_rf:6.1f} s | {fmt(m_rf)}")
    return {"tpz": {"time_s": t_tpz, **m_tpz}, "rf": {"time_s": t_rf, **m_rf}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip-cv", action="store_true")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    res = {"mgs": mgs(args.jobs), "scale": scale(args.rows, args.jobs)}
    if not args.skip_cv:
        res["quasars"] = quasars(args.jobs)
        res["stripe82x"] = stripe82x(args.jobs)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
