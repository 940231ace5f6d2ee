"""Before/after figures of the classify outlier flag (docs/classify.md, issue 17).

Leave-class-out on the shipped labelled set: AGN+STAR models (nested stratified 5-fold, seed 1)
score held-out AGN/STAR rows and the 25 compact objects (OTHER = CV+HMXB+LMXB+NS+NS_BIN) they
never saw.  "before": the old fixed flag quantile 0.997 of the out-of-fold training scores;
"after": each fold model's quantile chosen by leave-class-out on its own training rows for a 2 %
false-flag rate (the `classify train` default).  Both with the current densities (m-estimate,
pseudo-count chosen per fold model as `classify train --shrink auto` does).  Run from the repository root:

    .venv/bin/python docs/figures/classify_outliers.py
"""

from __future__ import annotations

from pathlib import Path

from xmmtools import tables
from xmmtools.classify import evaluate as ev
from xmmtools.classify.apply import table_features
from xmmtools.classify.features import default_feature_set_path, load_feature_set
from xmmtools.classify.report import outlier_figure
from xmmtools.classify.training import SHRINK_GRID, FitOptions, leave_class_out, prepare_labels

ROOT = Path(__file__).resolve().parents[2]
LIN = ROOT / "tests" / "data" / "classify" / "lin2024_4xmmdr13_xclass_train.csv"
MERGE = {"STAR": ["LM-STAR", "HM-STAR"], "OTHER": ["CV", "HMXB", "LMXB", "NS", "NS_BIN"]}


def main() -> None:
    fs = load_feature_set(default_feature_set_path("xclass"))
    t = tables.read_table(str(LIN))
    y, classes, keep = prepare_labels(t.column("Class").to_pylist(), MERGE)
    X = table_features(t, fs, source=str(LIN)).values[keep]
    other = [classes.index("OTHER")]
    out = Path(__file__).parent
    for name, kw in (("before", {"quantile": 0.997}), ("after", {"false_flag_rate": 0.02})):
        # the `classify train` defaults: m-estimate pseudo-count chosen per fold model (issue 17)
        run = leave_class_out(X, y, classes, fs, other, options=FitOptions(shrink_grid=SHRINK_GRID), **kw)
        s = ev.outlier_summary(y, run, classes, other)
        outlier_figure(str(out), [s], [run], overwrite=True, name=f"classify_outliers_{name}.png")
        print(f"{name}: recall {s['recall']:.3f}  false flags {s['false_flag_rate']:.4f}  AUROC {s['auroc']:.3f}")


if __name__ == "__main__":
    main()
