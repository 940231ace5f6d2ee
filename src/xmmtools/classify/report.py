"""The ``classify evaluate --report DIR`` files: metrics JSON, CSV tables, optional figures."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from xmmtools import tables
from xmmtools.classify import evaluate as ev
from xmmtools.errors import OutputError


def write_report(
    folder: str, summary: dict, y: np.ndarray, proba: np.ndarray, classes: Sequence[str], *, overwrite: bool = False
) -> list[str]:
    """metrics.json, confusion.csv, per_class.csv, predictions.csv; confusion.png and
    reliability.png when matplotlib is installed.  Returns the file names written."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{folder}: cannot create the report folder ({e.strerror})") from None
    prov = tables.Provenance("classify-evaluate", {"kind": summary["kind"]}, [])
    written = []
    path = os.path.join(folder, "metrics.json")
    if os.path.exists(path) and not overwrite:
        raise OutputError(f"{path} exists; use --overwrite to replace it")
    with open(path, "w") as f:
        json.dump(summary, f, indent=1)
    written.append("metrics.json")
    cm = np.asarray(summary["confusion_matrix"])
    conf = pa.table({"TRUE_CLASS": list(classes), **{f"PRED_{c}": cm[:, j] for j, c in enumerate(classes)}})
    per = pa.table(
        {
            "CLASS": list(classes),
            "N": summary["support"],
            "RECALL": _f(summary["recall"]),
            "PRECISION": _f(summary["precision"]),
            "PRIOR": _f(summary["priors_for_correction"]),
            "PRECISION_PRIOR_CORRECTED": _f(summary["prior_corrected_precision"]),
            "F1": _f(summary["f1"]),
        }
    )
    pred = pa.table(
        {
            "TRUE_CLASS": [classes[i] for i in y],
            "PRED_CLASS": [classes[i] for i in proba.argmax(1)],
            **{f"P_{c}": proba[:, j] for j, c in enumerate(classes)},
        }
    )
    for name, t in (("confusion.csv", conf), ("per_class.csv", per), ("predictions.csv", pred)):
        tables.write_table(t, os.path.join(folder, name), provenance=prov, overwrite=overwrite)
        written.append(name)
    written += _figures(folder, cm, y, proba, classes, overwrite)
    return written


def _f(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


def _figures(folder, cm, y, proba, classes, overwrite) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    out = []
    frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2, 1.1 * len(classes) + 1.5))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(
                j,
                i,
                f"{cm[i, j]}\n{frac[i, j]:.2f}",
                ha="center",
                va="center",
                color="white" if frac[i, j] > 0.6 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("confusion matrix (row-normalised)")
    fig.tight_layout()
    out += _save(fig, folder, "confusion.png", overwrite)
    rc = ev.reliability_curve(proba, y)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ok = np.array(rc["count"]) > 0
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.plot(np.array(rc["confidence"])[ok], np.array(rc["accuracy"])[ok], "o-")
    ax.set_xlabel("predicted probability of the top class")
    ax.set_ylabel("fraction correct")
    ax.set_title(f"reliability (ECE {ev.expected_calibration_error(proba, y):.3f})")
    fig.tight_layout()
    out += _save(fig, folder, "reliability.png", overwrite)
    out += _one_vs_rest(plt, folder, y, proba, classes, overwrite)
    plt.close("all")
    return out


def _one_vs_rest(plt, folder, y, proba, classes, overwrite) -> list[str]:
    """One-vs-rest ROC and precision-recall curves of every class (scikit-learn metrics)."""
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    fig1, ax1 = plt.subplots(figsize=(4.8, 4.5))
    fig2, ax2 = plt.subplots(figsize=(4.8, 4.5))
    for j, c in enumerate(classes):
        truth = y == j
        if truth.all() or not truth.any():
            continue
        fpr, tpr, _ = roc_curve(truth, proba[:, j])
        ax1.plot(fpr, tpr, label=f"{c} (AUC {auc(fpr, tpr):.3f})")
        prec, rec, _ = precision_recall_curve(truth, proba[:, j])
        ax2.plot(rec, prec, label=f"{c} (AP {average_precision_score(truth, proba[:, j]):.3f})")
    ax1.plot([0, 1], [0, 1], "k:", lw=1)
    ax1.set_xlabel("false-positive rate")
    ax1.set_ylabel("true-positive rate (recall)")
    ax1.set_title("one-vs-rest ROC")
    ax2.set_xlabel("recall")
    ax2.set_ylabel("precision (evaluated set's class mix)")
    ax2.set_title("one-vs-rest precision-recall")
    for ax, fig in ((ax1, fig1), (ax2, fig2)):
        ax.legend(fontsize=7, loc="lower right" if ax is ax1 else "lower left")
        fig.tight_layout()
    return _save(fig1, folder, "roc.png", overwrite) + _save(fig2, folder, "precision_recall.png", overwrite)


def _save(fig, folder, name, overwrite) -> list[str]:
    path = os.path.join(folder, name)
    if os.path.exists(path) and not overwrite:
        raise OutputError(f"{path} exists; use --overwrite to replace it")
    fig.savefig(path, dpi=120)
    return [name]


def write_outlier_report(
    folder: str,
    summaries: Sequence[dict],
    runs: Sequence[dict],
    y: np.ndarray,
    classes: Sequence[str],
    *,
    overwrite: bool = False,
) -> list[str]:
    """The ``classify evaluate --leave-out`` files: outliers.json (one summary per left-out
    set), outliers.csv (every scored row: left-out set, true class, score, its fold model's
    threshold, flag) and, with matplotlib, outliers.png (score distributions, known vs left out)."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{folder}: cannot create the report folder ({e.strerror})") from None
    path = os.path.join(folder, "outliers.json")
    if os.path.exists(path) and not overwrite:
        raise OutputError(f"{path} exists; use --overwrite to replace it")
    with open(path, "w") as f:
        json.dump(list(summaries), f, indent=1)
    written = ["outliers.json"]
    y = np.asarray(y, int)
    rows: dict[str, list] = {
        "LEFT_OUT": [],
        "TRUE_CLASS": [],
        "IS_LEFT_OUT": [],
        "FOLD": [],
        "OUTLIER_SCORE": [],
        "THRESHOLD": [],
        "OUTLIER_FLAG": [],
    }
    for s, r in zip(summaries, runs, strict=True):
        rows["LEFT_OUT"] += ["+".join(s["left_out"])] * len(y)
        rows["TRUE_CLASS"] += [classes[i] for i in y]
        rows["IS_LEFT_OUT"] += r["left_out"].tolist()
        rows["FOLD"] += r["fold"].tolist()
        rows["OUTLIER_SCORE"] += r["score"].tolist()
        rows["THRESHOLD"] += r["threshold"].tolist()
        rows["OUTLIER_FLAG"] += r["flag"].tolist()
    prov = tables.Provenance("classify-evaluate", {"kind": "leave-class-out"}, [])
    tables.write_table(pa.table(rows), os.path.join(folder, "outliers.csv"), provenance=prov, overwrite=overwrite)
    written.append("outliers.csv")
    written += outlier_figure(folder, summaries, runs, overwrite=overwrite)
    return written


def outlier_figure(
    folder: str, summaries: Sequence[dict], runs: Sequence[dict], *, overwrite: bool = False, name: str = "outliers.png"
) -> list[str]:
    """One panel per left-out set: histograms of OUTLIER_SCORE minus the fold model's flag
    threshold for held-out known rows and left-out rows (flagged: right of 0)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    n = len(runs)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.8), squeeze=False)
    for ax, s, r in zip(axes[0], summaries, runs, strict=True):
        d = r["score"] - r["threshold"]
        lo = r["left_out"]
        bins = np.linspace(np.percentile(d, 0.5), np.percentile(d, 99.8), 40)
        ax.hist(
            np.clip(d[~lo], bins[0], bins[-1]),
            bins,
            density=True,
            alpha=0.55,
            label=f"known, held out (n={int((~lo).sum())})",
        )
        ax.hist(
            np.clip(d[lo], bins[0], bins[-1]),
            bins,
            density=True,
            alpha=0.55,
            histtype="stepfilled",
            label=f"left out: {'+'.join(s['left_out'])} (n={int(lo.sum())})",
        )
        ax.axvline(0, color="k", lw=1, ls="--")
        ax.set_xlabel("OUTLIER_SCORE − flag threshold (dex)")
        ax.set_title(
            f"recall {s['recall']:.2f}, false flags {s['false_flag_rate']:.3f}, AUROC {s['auroc']:.3f}", fontsize=9
        )
        ax.legend(fontsize=7, loc="upper right")
    axes[0][0].set_ylabel("density")
    fig.tight_layout()
    out = _save(fig, folder, name, overwrite)
    plt.close(fig)
    return out
