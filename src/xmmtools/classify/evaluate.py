"""Held-out evaluation metrics for classifiers (pure numpy, no files).

* Confusion matrix M[k, j] = number of sources of true class k predicted as j.
* Recall r_j = M[j, j] / n_j; precision on the evaluated set M[j, j] / Σ_k M[k, j].
* Prior-corrected precision (Tranin et al. 2022, A&A 657, A138, their prior-corrected precision): the precision expected
  in a population with class fractions π,
  prec_j = π_j r_j / Σ_k π_k P(pred j | true k), with P(pred j | true k) = M[k, j] / n_k.
* F1_j = 2 prec_j r_j / (prec_j + r_j); macro-F1 = mean over classes; balanced accuracy =
  mean recall.
* Brier score (Brier 1950): mean over sources of Σ_c (p_c − 1[c = true])².
* Outlier detection (leave-class-out): AUROC of the outlier score, left-out rows against held-out
  known rows (Mann–Whitney U / (n₁ n₀)); flag recall on left-out rows; false-flag rate on known rows.
* Spread over folds: macro-F1 and per-class F1 of each outer fold's held-out rows (mean, sample
  standard deviation).
* Expected calibration error (Guo et al. 2017, ICML, eq. 3): Σ_b (n_b / N) |acc_b − conf_b| over
  10 equal-width bins of the top-class probability.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def balanced_log_loss(y_true: np.ndarray, proba: np.ndarray, n_classes: int, eps: float = 1e-15) -> float:
    """Class-balanced log loss: the mean over classes present of the mean −ln P(true class)
    of their rows (probabilities clipped at ``eps``)."""
    y_true = np.asarray(y_true, int)
    p = np.clip(np.asarray(proba, float)[np.arange(len(y_true)), y_true], eps, 1.0)
    per = [float(-np.log(p[y_true == c]).mean()) for c in range(n_classes) if np.any(y_true == c)]
    return float(np.mean(per))


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
    return {
        "bin_lo": (np.arange(bins) / bins).tolist(),
        "count": n.tolist(),
        "accuracy": acc.tolist(),
        "confidence": mean_conf.tolist(),
    }


def summarise(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str], priors: np.ndarray | None = None) -> dict:
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
        "recall": _r(rec),
        "precision": _r(prec),
        "priors_for_correction": _r(pi),
        "prior_corrected_precision": _r(pcp),
        "f1": _r(f1s),
        "f1_prior_corrected": _r(f1pc),
        "macro_f1": round(float(f1s[present].mean()), 6),
        "macro_f1_prior_corrected": round(float(f1pc[present].mean()), 6),
        "balanced_accuracy": round(float(np.nanmean(rec[present])), 6),
        "accuracy": round(float(np.mean(pred == y_true)), 6),
        "brier": round(brier(proba, y_true), 6),
        "ece": round(expected_calibration_error(proba, y_true), 6),
    }


def fold_spread(y_true: np.ndarray, proba: np.ndarray, fold: np.ndarray, classes: Sequence[str]) -> dict:
    """Macro-F1 and per-class F1 of each fold's held-out rows: the spread behind the pooled numbers."""
    C = len(classes)
    y_true = np.asarray(y_true, int)
    pred = np.asarray(proba).argmax(axis=1)
    macro: list[float] = []
    per_fold: list[np.ndarray] = []
    for f in np.unique(fold):
        sel = fold == f
        cm = confusion_matrix(y_true[sel], pred[sel], C)
        macro.append(macro_f1(y_true[sel], pred[sel], C))
        per_fold.append(f1(precision(cm), recall(cm)))
    per = np.array(per_fold)
    return {
        "fold_macro_f1": _r(np.array(macro)),
        "fold_macro_f1_mean": round(float(np.mean(macro)), 6),
        "fold_macro_f1_std": round(float(np.std(macro, ddof=1)) if len(macro) > 1 else 0.0, 6),
        "fold_f1_mean": _r(per.mean(axis=0)),
        "fold_f1_std": _r(per.std(axis=0, ddof=1) if len(per) > 1 else np.zeros(C)),
    }


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counting one
    half (Mann–Whitney U / (n_pos n_neg))."""
    from scipy.stats import rankdata

    pos, neg = np.asarray(positive, float), np.asarray(negative, float)
    if not pos.size or not neg.size:
        return float("nan")
    r = rankdata(np.concatenate([pos, neg]))
    return float((r[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def outlier_summary(y_true: np.ndarray, run: dict, classes: Sequence[str], left_out: Sequence[int]) -> dict:
    """Leave-class-out result of :func:`xmmtools.classify.training.leave_class_out` as a JSON-able
    dict: per left-out class (and the group) the flag recall and AUROC of OUTLIER_SCORE against
    the held-out known rows; per known class the false-flag rate."""
    y_true = np.asarray(y_true, int)
    lo, score, flag = run["left_out"], run["score"], run["flag"]
    known = ~lo
    rows = [
        {
            "class": classes[c],
            "n": int(np.sum(y_true == c)),
            "recall": round(float(flag[y_true == c].mean()), 6),
            "auroc": round(auroc(score[y_true == c], score[known]), 6),
        }
        for c in left_out
    ]
    per_known = {
        classes[c]: round(float(flag[y_true == c].mean()), 6) for c in range(len(classes)) if c not in set(left_out)
    }
    return {
        "left_out": [classes[c] for c in left_out],
        "n_left_out": int(lo.sum()),
        "n_known": int(known.sum()),
        "recall": round(float(flag[lo].mean()), 6),
        "auroc": round(auroc(score[lo], score[known]), 6),
        "false_flag_rate": round(float(flag[known].mean()), 6),
        "false_flag_rate_per_class": per_known,
        "per_class": rows,
        "fold_quantiles": [round(q, 6) for q in run["quantile"]],
    }


def _r(a: np.ndarray) -> list:
    return [None if not np.isfinite(v) else round(float(v), 6) for v in np.asarray(a, float)]
