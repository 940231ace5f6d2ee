"""Held-out evaluation metrics for classifiers (pure numpy, no files).

* Confusion matrix M[k, j] = number of sources of true class k predicted as j.
* Recall r_j = M[j, j] / n_j; precision on the evaluated set M[j, j] / Σ_k M[k, j].
* Prior-corrected precision (Tranin et al. 2022, A&A 657, A138, their prior-corrected precision): the precision expected
  in a population with class fractions π,
  prec_j = π_j r_j / Σ_k π_k P(pred j | true k), with P(pred j | true k) = M[k, j] / n_k.
* F1_j = 2 prec_j r_j / (prec_j + r_j); macro-F1 = mean over classes; balanced accuracy =
  mean recall.
* Brier score (Brier 1950): mean over sources of Σ_c (p_c − 1[c = true])².
* Expected calibration error (Guo et al. 2017, ICML, eq. 3): Σ_b (n_b / N) |acc_b − conf_b| over
  10 equal-width bins of the top-class probability.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    y_true = np.asarray(y_true, int)
    y_pred = np.asarray(y_pred, int)
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def recall(cm: np.ndarray) -> np.ndarray:
    n = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.diag(cm) / np.maximum(n, 1), np.nan)


def precision(cm: np.ndarray) -> np.ndarray:
    p = cm.sum(axis=0)
    return np.where(p > 0, np.diag(cm) / np.maximum(p, 1), 0.0)


def prior_corrected_precision(cm: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """prec_j = π_j r_j / Σ_k π_k P(pred j | true k) (Tranin et al. 2022, prior-corrected precision)."""
    n = np.maximum(cm.sum(axis=1, keepdims=True), 1)
    rate = cm / n  # P(pred j | true k), rows k
    pi = np.asarray(priors, float)
    num = pi * np.diag(rate)
    den = pi @ rate
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def f1(prec: np.ndarray, rec: np.ndarray) -> np.ndarray:
    rec = np.nan_to_num(rec)
    s = prec + rec
    return np.where(s > 0, 2 * prec * rec / np.where(s > 0, s, 1.0), 0.0)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    cm = confusion_matrix(y_true, y_pred, n_classes)
    present = cm.sum(axis=1) > 0
    return float(f1(precision(cm), recall(cm))[present].mean())


def brier(proba: np.ndarray, y_true: np.ndarray) -> float:
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(y_true)), y_true] = 1.0
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def expected_calibration_error(proba: np.ndarray, y_true: np.ndarray, bins: int = 10) -> float:
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def reliability_curve(proba: np.ndarray, y_true: np.ndarray, bins: int = 10) -> dict:
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    n = np.bincount(idx, minlength=bins)
    acc = np.bincount(idx, weights=correct, minlength=bins) / np.maximum(n, 1)
    mean_conf = np.bincount(idx, weights=conf, minlength=bins) / np.maximum(n, 1)
    return {"bin_lo": (np.arange(bins) / bins).tolist(), "count": n.tolist(),
            "accuracy": acc.tolist(), "confidence": mean_conf.tolist()}


def summarise(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str],
              priors: np.ndarray | None = None) -> dict:
    """All metrics of predictions ``proba`` (N, C) for true labels ``y_true`` as a JSON-able dict.
    ``priors``: target population fractions for the prior-corrected precision (default: the
    class fractions of ``y_true``, where it equals the ordinary precision)."""
    C = len(classes)
    y_true = np.asarray(y_true, int)
    pred = proba.argmax(axis=1)
    cm = confusion_matrix(y_true, pred, C)
    rec = recall(cm)
    prec = precision(cm)
    pi = np.bincount(y_true, minlength=C) / len(y_true) if priors is None else np.asarray(priors, float)
    pcp = prior_corrected_precision(cm, pi)
    present = cm.sum(axis=1) > 0
    f1s = f1(prec, rec)
    f1pc = f1(pcp, rec)
    return {
        "classes": list(classes),
        "n": int(len(y_true)),
        "support": cm.sum(axis=1).tolist(),
        "confusion_matrix": cm.tolist(),
        "recall": _r(rec), "precision": _r(prec),
        "priors_for_correction": _r(pi),
        "prior_corrected_precision": _r(pcp),
        "f1": _r(f1s), "f1_prior_corrected": _r(f1pc),
        "macro_f1": round(float(f1s[present].mean()), 6),
        "macro_f1_prior_corrected": round(float(f1pc[present].mean()), 6),
        "balanced_accuracy": round(float(np.nanmean(rec[present])), 6),
        "accuracy": round(float(np.mean(pred == y_true)), 6),
        "brier": round(brier(proba, y_true), 6),
        "ece": round(expected_calibration_error(proba, y_true), 6),
    }


def _r(a: np.ndarray) -> list:
    return [None if not np.isfinite(v) else round(float(v), 6) for v in np.asarray(a, float)]
