"""Benchmark of `xmmtools classify` at 10^6 rows, against scikit-learn baselines.

    .venv/bin/python bench/classify_bench.py [--rows 1000000] [--full]

1. End to end (read, features, posteriors, write) with the shipped model on a 4XMM-like
   catalogue from bench/make_4xmm_like.py reduced to the model's 13 input columns (a slim
   catalogue), in a subprocess: wall time and peak memory.  ``--full`` also runs the 336-column
   detection table, next to `xmmtools convert` of the same file (the I/O floor of xmmtools.tables).
2. In-process scoring speed on the same 10^6-row feature matrix: xmmtools naive Bayes vs
   scikit-learn GaussianNB (NaN imputed by training medians) and HistGradientBoosting
   (native missing values), all trained on the shipped 4XMM-DR13 labelled table.
3. Held-out quality on that table (706 rows, AGN / STAR / OTHER), same stratified 5 folds for
   every method: xmmtools NB (nested: weights refitted per fold), GaussianNB, HistGradientBoosting.

Results are printed and written to bench/out/classify_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from xmmtools import tables  # noqa: E402
from xmmtools.classify import evaluate as ev  # noqa: E402
from xmmtools.classify.apply import classify_features, stage_spec, table_features  # noqa: E402
from xmmtools.classify.model_io import default_model_path, load_model  # noqa: E402
from xmmtools.classify.training import FitOptions, cross_validate, prepare_labels, stratified_folds  # noqa: E402

LIN = ROOT / "tests" / "data" / "classify" / "lin2024_4xmmdr13_xclass_train.csv"
MERGE = {"STAR": ["LM-STAR", "HM-STAR"], "OTHER": ["CV", "HMXB", "LMXB", "NS", "NS_BIN"]}
XMM = [str(ROOT / ".venv" / "bin" / "xmmtools")]


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of a child process."""
    t0 = time.perf_counter()
    pre = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    r = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    try:
        kb = float(r.stderr.strip().splitlines()[-1])
    except (ValueError, IndexError):
        kb = float(max(pre, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
    return round(wall, 2), round(kb / 2**20, 3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--full", action="store_true", help="also the 336-column table and the convert floor")
    args = ap.parse_args()
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(exist_ok=True)
    cat = out_dir / f"4xmm_like_{args.rows}.parquet"
    if not cat.exists():
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "make_4xmm_like.py"),
                "--rows",
                str(args.rows),
                "--out",
                str(out_dir / f"4xmm_like_{args.rows}"),
            ],
            check=True,
        )
    model = load_model(default_model_path())
    spec = stage_spec(model.feature_set)
    info = tables.inspect_table(cat)
    from xmmtools.columns import resolve

    cols = list(dict.fromkeys(resolve(info.schema.names, [n.name for n in spec.needs]).values()))
    slim = out_dir / f"4xmm_like_{args.rows}_classify_input.parquet"
    if not slim.exists():
        t = tables.read_table(cat, cols)
        tables.write_table(t, slim, provenance=tables.Provenance("bench", {}, [str(cat)]), overwrite=True)
    res: dict = {"rows": args.rows, "input_columns": cols, "machine_cpus": os.cpu_count()}

    # 1. end to end
    o = out_dir / "classify_bench_out.parquet"
    res["end_to_end_slim_parquet"] = dict(
        zip(("seconds", "peak_gb"), run([*XMM, "classify", str(slim), "-o", str(o), "--overwrite", "-q"]), strict=True)
    )
    if args.full:
        res["end_to_end_full_336_columns"] = dict(
            zip(
                ("seconds", "peak_gb"),
                run([*XMM, "classify", str(cat), "-o", str(o), "--overwrite", "-q"]),
                strict=True,
            )
        )
        res["convert_full_336_columns_io_floor"] = dict(
            zip(
                ("seconds", "peak_gb"), run([*XMM, "convert", str(cat), "-o", str(o), "--overwrite", "-q"]), strict=True
            )
        )
    o.unlink(missing_ok=True)

    # 2. scoring speed on the same feature matrix
    big = tables.read_table(slim)
    t0 = time.perf_counter()
    fm = table_features(big, model.feature_set, source=str(slim))
    res["features_seconds"] = round(time.perf_counter() - t0, 2)
    lab = tables.read_table(LIN)
    Xl = table_features(lab, model.feature_set, source=str(LIN)).values
    y, classes, keep = prepare_labels(tables.to_numpy(lab.column("Class"), None), MERGE)
    Xl = Xl[keep]
    used = ~fm.ignored  # a bare 4XMM catalogue: the X-ray features only, for every method
    t0 = time.perf_counter()
    classify_features(model, fm.values, fm.ignored)
    res["score_seconds_xmmtools_nb"] = round(time.perf_counter() - t0, 2)

    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.naive_bayes import GaussianNB

    med = np.nanmedian(Xl[:, used], axis=0)

    def impute(X):
        X = X.copy()
        bad = ~np.isfinite(X)
        X[bad] = np.broadcast_to(med, X.shape)[bad]
        return X

    gnb = GaussianNB().fit(impute(Xl[:, used]), y)
    t0 = time.perf_counter()
    gnb.predict_proba(impute(fm.values[:, used]))
    res["score_seconds_sklearn_gaussiannb"] = round(time.perf_counter() - t0, 2)
    hgb = HistGradientBoostingClassifier(random_state=1, class_weight="balanced").fit(Xl[:, used], y)
    t0 = time.perf_counter()
    hgb.predict_proba(fm.values[:, used])
    res["score_seconds_sklearn_hgb"] = round(time.perf_counter() - t0, 2)

    # 3. held-out quality on the labelled 4XMM-DR13 rows (all features)
    fold = stratified_folds(y, 5, 1)
    cv = cross_validate(Xl, y, classes, model.feature_set, model.settings, FitOptions(folds=5, seed=1))
    quality = {"xmmtools_nb": cv["proba"]}
    for name, make in (
        ("sklearn_gaussiannb", lambda: GaussianNB()),
        ("sklearn_hgb", lambda: HistGradientBoostingClassifier(random_state=1, class_weight="balanced")),
    ):
        p = np.zeros((len(y), len(classes)))
        for f in range(5):
            tr, te = fold != f, fold == f
            m = make()
            if name == "sklearn_gaussiannb":
                mf = np.nanmedian(Xl[tr], axis=0)
                fill = lambda X, mf=mf: np.where(np.isfinite(X), X, mf)  # noqa: E731
                p[te] = m.fit(fill(Xl[tr]), y[tr]).predict_proba(fill(Xl[te]))
            else:
                p[te] = m.fit(Xl[tr], y[tr]).predict_proba(Xl[te])
        quality[name] = p
    res["held_out_5fold_lin2024"] = {}
    for name, p in quality.items():
        s = ev.summarise(y, p, classes)
        res["held_out_5fold_lin2024"][name] = {k: s[k] for k in ("macro_f1", "balanced_accuracy", "recall", "ece")}
    text = json.dumps(res, indent=1)
    (out_dir / "classify_bench.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
