"""Held-out quality on the Chandra CSCv2 MUWCLASS training set (Yang et al. 2022, ApJ 941, 104).

Compares xmmtools' naive Bayes (nested stratified 5-fold, seeded) and a scikit-learn
HistGradientBoosting baseline (same folds, same features, native missing values) with the
MUWCLASS leave-one-out probabilities shipped in the same file (columns P_<class>).

    .venv/bin/python bench/classify_cscv2.py [/work/shared/data/classify/yang2022_cscv2_TD.csv]

The CSV has two columns that differ only in case (b_rgeo, B_rgeo), which xmmtools.tables refuses
(FITS names are case-insensitive); this script renames them in a temporary Parquet copy.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from xmmtools import tables
from xmmtools.classify import evaluate as ev
from xmmtools.classify.apply import table_features
from xmmtools.classify.features import default_feature_set_path, load_feature_set
from xmmtools.classify.training import FitOptions, cross_validate, prepare_labels, stratified_folds

SRC = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/classify/yang2022_cscv2_TD.csv"


def main():
    df = pd.read_csv(SRC).rename(columns={"b_rgeo": "rgeo_lo", "B_rgeo": "rgeo_hi"})
    with tempfile.TemporaryDirectory() as tmp:
        pq = os.path.join(tmp, "cscv2.parquet")
        df.to_parquet(pq)
        t = tables.read_table(pq)
    fs = load_feature_set(default_feature_set_path("cscv2"))
    X = table_features(t, fs, source=SRC).values
    y, classes, keep = prepare_labels(df["True_Class"].to_numpy())
    X = X[keep]
    out = {"n": int(len(y)), "classes": classes}

    # MUWCLASS leave-one-out probabilities from the file
    P = df.loc[keep, [f"P_{c}" for c in classes]].to_numpy(float)
    m = ev.summarise(y, P / P.sum(1, keepdims=True), classes)
    out["muwclass_loo"] = {k: m[k] for k in ("macro_f1", "balanced_accuracy", "accuracy", "ece", "recall")}

    t0 = time.perf_counter()
    cv = cross_validate(X, y, classes, fs, options=FitOptions(folds=5, seed=1))
    m = ev.summarise(y, cv["proba"], classes)
    out["xmmtools_nb_5fold"] = {k: m[k] for k in ("macro_f1", "balanced_accuracy", "accuracy", "ece", "recall")}
    out["xmmtools_nb_5fold"]["seconds"] = round(time.perf_counter() - t0, 2)

    from sklearn.ensemble import HistGradientBoostingClassifier

    fold = stratified_folds(y, 5, 1)
    proba = np.zeros((len(y), len(classes)))
    t0 = time.perf_counter()
    for f in range(5):
        clf = HistGradientBoostingClassifier(
            random_state=1, class_weight="balanced", max_iter=300, learning_rate=0.05, early_stopping=False
        )
        clf.fit(X[fold != f], y[fold != f])
        proba[fold == f] = clf.predict_proba(X[fold == f])
    m = ev.summarise(y, proba, classes)
    out["sklearn_hgb_5fold"] = {k: m[k] for k in ("macro_f1", "balanced_accuracy", "accuracy", "ece", "recall")}
    out["sklearn_hgb_5fold"]["seconds"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
