"""Training the naive Bayes model and estimating its held-out quality.

* Category exponents w_k (Tranin et al. 2022, A&A 657, A138: "tempering" the
  categories whose features are correlated) are fitted with
  :func:`scipy.optimize.differential_evolution` in [0, 1]^K to maximise an objective of
  *out-of-fold* predictions (stratified k-fold, seeded): macro-F1 (default), balanced accuracy,
  or the F1 of one class (``f1:CLASS``, as in the reference which optimised one class at a time).
  During the fit the priors are the training class fractions, because the folds have the
  training mix.
* The outlier-score distribution stored in the model is that of the out-of-fold training scores
  (a source is never scored by densities that contain itself), so the 0.997 quantile flags
  0.3 % of sources drawn like the training set.
* With ``FitOptions.shrink_grid`` (``--shrink auto``) the pseudo-count m of the density
  m-estimate is chosen first, by the same out-of-fold objective (:func:`select_shrink`).
* :func:`cross_validate` is *nested*: the weights (and m) are re-fitted inside every outer
  training fold, so the reported metrics are held-out for the whole procedure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from xmmtools.classify import evaluate as ev
from xmmtools.classify.naive_bayes import (
    Model,
    Settings,
    category_log_likelihoods,
    feature_log_likelihoods,
    fit_densities,
    log_posterior,
    normalise,
    outlier_score,
)

if TYPE_CHECKING:
    from xmmtools.classify.features import FeatureSet


@dataclass(frozen=True)
class FitOptions:
    folds: int = 5
    seed: int = 1
    objective: str = "macro_f1"  # macro_f1 | balanced_accuracy | f1:CLASS
    fit_weights: bool = True
    maxiter: int = 40
    popsize: int = 12
    #: pseudo-counts m tried for ``Settings.shrink`` (chosen by :func:`select_shrink` on the
    #: training rows); None keeps ``settings.shrink``
    shrink_grid: tuple[float, ...] | None = None


#: pseudo-counts m tried by ``--shrink auto``
SHRINK_GRID = (0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0)


def prepare_labels(
    labels: Iterable, merge: Mapping[str, Sequence[str]] | None = None, min_count: int = 2
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Labels -> (class index per kept row, class names, kept-row mask).

    ``merge`` maps a new class to the labels it groups (``{"STAR": ["LM-STAR", "HM-STAR"]}``);
    empty labels are dropped; classes with fewer than ``min_count`` rows raise ValueError.
    """
    lab = np.array(["" if v is None else str(v).strip() for v in labels], dtype=object)
    lookup = {old: new for new, olds in (merge or {}).items() for old in olds}
    lab = np.array([lookup.get(v, v) for v in lab], dtype=object)
    keep = (lab != "") & (lab != "nan") & (lab != "None")
    classes = tuple(sorted(set(lab[keep])))
    if len(classes) < 2:
        raise ValueError(f"need at least two classes to train, found {len(classes)}")
    counts = {c: int(np.sum(lab[keep] == c)) for c in classes}
    small = [f"{c} ({n})" for c, n in counts.items() if n < min_count]
    if small:
        raise ValueError(
            f"classes with fewer than {min_count} labelled rows: {', '.join(small)}; "
            "merge them with --merge NEW=OLD1+OLD2"
        )
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[v] for v in lab[keep]], dtype=int)
    return y, classes, keep


def stratified_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number (0..k-1) of each row: every class spread evenly over the folds (seeded)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), int)
    offset = 0
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        fold[idx] = (np.arange(idx.size) + offset) % k
        offset += idx.size
    return fold


def train_model(
    X: np.ndarray,
    y: np.ndarray,
    classes: Sequence[str],
    feature_set: FeatureSet,
    settings: Settings = Settings(),
    options: FitOptions = FitOptions(),
    priors: np.ndarray | None = None,
    outlier_quantile: float = 0.997,
    outlier_false_flag_rate: float | None = None,
) -> Model:
    """Fit densities on all rows, category weights on out-of-fold predictions, and the
    out-of-fold outlier-score distribution.  ``priors`` default: the training fractions.

    With ``outlier_false_flag_rate`` (e.g. 0.02) the OUTLIER_FLAG quantile is not
    ``outlier_quantile`` but chosen on these rows by :func:`select_outlier_quantile`
    (leave each class out in turn); the choice, its false-flag rate and recall go to
    ``model.outlier_selection``.  A single-class model keeps all category exponents at 1."""
    X = np.asarray(X, float)
    y = np.asarray(y, int)
    C = len(classes)
    K = len(feature_set.categories)
    train_frac = np.bincount(y, minlength=C) / len(y)
    training: dict = {}
    if options.shrink_grid is not None and C > 1:
        m, training["shrink_selection"] = select_shrink(X, y, classes, feature_set, settings, options)
        settings = replace(settings, shrink=m)
        options = replace(options, shrink_grid=None)  # the nested runs below keep this m
    oof_ll, oof = _out_of_fold(X, y, classes, feature_set, settings, options)
    weights = fit_weights(oof, y, train_frac, options) if options.fit_weights and C > 1 else np.ones(K)
    dens = fit_densities(X, y, C, settings, feature_set.presence_free(), feature_set.unmeasured_ranges(classes))
    selection: dict = {}
    if outlier_false_flag_rate is not None:
        outlier_quantile, selection = select_outlier_quantile(
            X, y, classes, feature_set, outlier_false_flag_rate, settings, options
        )
    return Model(
        feature_set,
        tuple(classes),
        dens,
        weights,
        train_frac if priors is None else np.asarray(priors, float),
        train_frac,
        oof_ll,
        settings,
        outlier_quantile,
        training=training,
        outlier_selection=selection,
    )


def select_shrink(
    X: np.ndarray,
    y: np.ndarray,
    classes: Sequence[str],
    feature_set: FeatureSet,
    settings: Settings = Settings(),
    options: FitOptions = FitOptions(),
) -> tuple[float, dict]:
    """Pseudo-count m of the density m-estimate (``Settings.shrink``) chosen on the training rows.

    For each m of ``options.shrink_grid`` the category exponents are fitted as in
    :func:`train_model` and the out-of-fold predictions (stratified k-fold, training-fraction
    priors) scored by the fit objective (``options.objective``, macro-F1 by default); the best
    score wins, the smallest m on a tie.  Returns m and a JSON-able record of every candidate."""
    grid = tuple(options.shrink_grid or SHRINK_GRID)
    C = len(classes)
    pri = np.bincount(y, minlength=C) / len(y)
    score = _objective(options.objective, C)
    scores = []
    for m in grid:
        _, oof = _out_of_fold(X, y, classes, feature_set, replace(settings, shrink=float(m)), options)
        w = fit_weights(oof, y, pri, options) if options.fit_weights else np.ones(oof.shape[1])
        scores.append(score(y, log_posterior(oof, pri, w).argmax(axis=1)))
    i = int(np.argmax(scores))  # first maximum: the smallest m on a tie
    return float(grid[i]), {
        "method": f"out-of-fold {options.objective} (stratified {options.folds}-fold, seed {options.seed}, "
        "category exponents fitted per candidate)",
        "candidates": {f"{m:g}": round(float(v), 6) for m, v in zip(grid, scores, strict=True)},
        "chosen": float(grid[i]),
    }


def fit_weights(cat_ll: np.ndarray, y: np.ndarray, priors: np.ndarray, options: FitOptions) -> np.ndarray:
    """Category exponents in [0, 1]^K maximising the objective of the given (out-of-fold)
    category log-likelihoods, by differential evolution (Storn & Price 1997; scipy)."""
    from scipy.optimize import differential_evolution

    K = cat_ll.shape[1]
    C = cat_ll.shape[2]
    score = _objective(options.objective, C)
    log_pi = np.log(priors)[None, :, None]

    def loss(W):  # W: (K, S) population of weight vectors (vectorised DE)
        W = W.reshape(K, -1)
        pred = (log_pi + np.einsum("nkc,ks->ncs", cat_ll, W)).argmax(axis=1)  # (N, S)
        return np.array([-score(y, pred[:, s]) for s in range(W.shape[1])])

    res = differential_evolution(
        loss,
        [(0.0, 1.0)] * K,
        seed=options.seed,
        maxiter=options.maxiter,
        popsize=options.popsize,
        polish=False,
        tol=1e-6,
        vectorized=True,
        updating="deferred",
        init="sobol",
    )
    return np.asarray(res.x, float)


def cross_validate(
    X: np.ndarray,
    y: np.ndarray,
    classes: Sequence[str],
    feature_set: FeatureSet,
    settings: Settings = Settings(),
    options: FitOptions = FitOptions(),
    priors: np.ndarray | None = None,
    X_alt: np.ndarray | None = None,
) -> dict:
    """Nested stratified k-fold: out-of-fold class probabilities, predictions and outlier
    scores for every row; weights re-fitted per outer fold.

    ``priors``: the class priors the held-out rows are classified with -- those the trained
    model will apply (``classify`` uses ``model.priors``); default each fold's training mix.
    ``X_alt``: a second version of the same rows (e.g. with injected distances) classified by
    the same fold models; its probabilities are returned as ``proba_alt``.
    """
    X = np.asarray(X, float)
    y = np.asarray(y, int)
    C = len(classes)
    fold = stratified_folds(y, options.folds, options.seed)
    proba = np.zeros((len(y), C))
    proba_alt = np.zeros((len(y), C)) if X_alt is not None else None
    score = np.zeros(len(y))
    weights = []
    for f in range(options.folds):
        tr, te = fold != f, fold == f
        inner = FitOptions(**{**options.__dict__, "seed": options.seed + 1 + f})
        m = train_model(X[tr], y[tr], classes, feature_set, settings, inner)
        pri = m.training_fractions if priors is None else np.asarray(priors, float)
        lp = log_posterior(m.category_ll(X[te]), pri, m.weights)
        proba[te] = normalise(lp)
        score[te] = outlier_score(lp)
        if proba_alt is not None and X_alt is not None:
            proba_alt[te] = normalise(log_posterior(m.category_ll(np.asarray(X_alt, float)[te]), pri, m.weights))
        weights.append(m.weights.tolist())
    out = {"proba": proba, "fold": fold, "outlier_score": score, "weights": weights}
    if proba_alt is not None:
        out["proba_alt"] = proba_alt
    return out


#: a feature whose presence alone nearly separates two classes: P(present | a) − P(present | b)
#: at least this large (e.g. Gaia distances looked up for stars only)
PRESENCE_LEAKAGE = 0.9


def presence_leakage(
    X: np.ndarray, y: np.ndarray, classes: Sequence[str], feature_set, threshold: float = PRESENCE_LEAKAGE
) -> list[dict]:
    """Features that carry presence evidence (``presence = "evidence"``) and whose presence
    fraction differs between two classes by ``threshold`` or more: the training set's
    construction, not the sky, may decide it ("presence leakage").  Returns one record per
    such feature: its name, the presence fraction per class and the largest difference."""
    X = np.asarray(X, float)
    y = np.asarray(y, int)
    free = feature_set.presence_free()
    out = []
    for j, name in enumerate(feature_set.names):
        if free[j]:
            continue
        frac = [float(np.isfinite(X[y == c, j]).mean()) if np.any(y == c) else np.nan for c in range(len(classes))]
        gap = float(np.nanmax(frac) - np.nanmin(frac))
        if gap >= threshold:
            out.append(
                {
                    "feature": name,
                    "present_fraction": {c: round(v, 4) for c, v in zip(classes, frac, strict=True)},
                    "difference": round(gap, 4),
                }
            )
    return out


# ----------------------------------------------------------------------------------------
# Leave-class-out: does the outlier score catch a class the model never saw?
# ----------------------------------------------------------------------------------------

#: quantiles tried when the flag threshold is chosen for a target false-flag rate
QUANTILE_GRID = np.round(np.arange(0.800, 0.9995, 0.0005), 4)


def leave_class_out(
    X: np.ndarray,
    y: np.ndarray,
    classes: Sequence[str],
    feature_set: FeatureSet,
    left_out: Sequence[int],
    settings: Settings = Settings(),
    options: FitOptions = FitOptions(),
    *,
    false_flag_rate: float | None = None,
    quantile: float = 0.997,
) -> dict:
    """Train without the classes ``left_out`` and score every row held out.

    Rows are split in stratified k-fold over *all* classes; fold f's model is trained on the
    known-class rows of the other folds (weights fitted inside, as in :func:`cross_validate`)
    and scores all rows of fold f: held-out known rows and left-out rows, neither of which it
    has seen.  Each fold model's flag threshold is the ``quantile`` of its own out-of-fold
    training scores, or — with ``false_flag_rate`` — the quantile that model's own training
    rows select by :func:`select_outlier_quantile` (nested: the scored rows play no part).
    Priors are the known classes' training fractions.

    Returns per row ``score`` (OUTLIER_SCORE), ``threshold`` (its fold model's), ``flag``,
    ``left_out`` (bool), ``fold``, and ``reference`` (the sorted reference scores of each fold
    model) and ``quantile`` (per fold).
    """
    X = np.asarray(X, float)
    y = np.asarray(y, int)
    out = np.isin(y, np.asarray(left_out, int))
    known = [c for c in range(len(classes)) if c not in set(int(i) for i in left_out)]
    if not known:
        raise ValueError("cannot leave out every class")
    remap = np.full(len(classes), -1)
    remap[known] = np.arange(len(known))
    fold = stratified_folds(y, options.folds, options.seed)
    score = np.zeros(len(y))
    threshold = np.zeros(len(y))
    refs, quantiles = [], []
    for f in range(options.folds):
        tr, te = (fold != f) & ~out, fold == f
        inner = FitOptions(**{**options.__dict__, "seed": options.seed + 1 + f})
        m = train_model(
            X[tr],
            remap[y[tr]],
            [classes[c] for c in known],
            feature_set,
            settings,
            inner,
            outlier_quantile=quantile,
            outlier_false_flag_rate=false_flag_rate,
        )
        ref = m.reference_scores(priors=m.training_fractions)
        score[te] = outlier_score(log_posterior(m.category_ll(X[te]), m.training_fractions, m.weights))
        threshold[te] = np.quantile(ref, m.outlier_quantile)
        refs.append(ref)
        quantiles.append(float(m.outlier_quantile))
    return {
        "score": score,
        "threshold": threshold,
        "flag": score > threshold,
        "left_out": out,
        "fold": fold,
        "reference": refs,
        "quantile": quantiles,
    }


def select_outlier_quantile(
    X: np.ndarray,
    y: np.ndarray,
    classes: Sequence[str],
    feature_set: FeatureSet,
    false_flag_rate: float,
    settings: Settings = Settings(),
    options: FitOptions = FitOptions(),
) -> tuple[float, dict]:
    """OUTLIER_FLAG quantile for a target false-flag rate, chosen by leaving each class out in turn.

    For every class c, :func:`leave_class_out` trains k-fold models without c; the held-out
    rows of the known classes give the false-flag rate and the rows of c the recall at each
    quantile q of :data:`QUANTILE_GRID` (a row is flagged above its fold model's q quantile of
    out-of-fold training scores, as ``classify apply`` does).  The chosen q is the smallest
    with the false-flag rate pooled over all left-out runs ≤ ``false_flag_rate``.  Returns q
    and a JSON-able record: the false-flag rate, the recall pooled over all left-out rows
    (``recall``) and averaged over classes (``recall_class_mean``), and per left-out class its
    recall and the AUROC of OUTLIER_SCORE against the held-out known rows.
    """
    X = np.asarray(X, float)
    y = np.asarray(y, int)
    C = len(classes)
    if C < 2:  # nothing to leave out: the nominal quantile
        q = float(1.0 - false_flag_rate)
        return q, {
            "method": "nominal (single class: nothing to leave out)",
            "target_false_flag_rate": false_flag_rate,
            "quantile": q,
        }
    runs = [leave_class_out(X, y, classes, feature_set, [c], settings, options) for c in range(C)]
    ff = np.zeros(QUANTILE_GRID.size)
    n_known = 0
    hits = np.zeros((C, QUANTILE_GRID.size))
    for c, r in enumerate(runs):
        flags = _flags_on_grid(r)  # (N, Q)
        ff += flags[~r["left_out"]].sum(axis=0)
        n_known += int((~r["left_out"]).sum())
        hits[c] = flags[r["left_out"]].mean(axis=0)
    ffr = ff / n_known
    ok = np.flatnonzero(ffr <= false_flag_rate)
    i = int(ok[0]) if ok.size else QUANTILE_GRID.size - 1
    n_out = np.bincount(y, minlength=C)
    recall = float(np.sum(hits[:, i] * n_out) / n_out.sum())
    recall_mean = float(np.mean(hits[:, i]))
    per = {
        classes[c]: {
            "n": int(n_out[c]),
            "recall": round(float(hits[c, i]), 6),
            "auroc": round(ev.auroc(r["score"][r["left_out"]], r["score"][~r["left_out"]]), 6),
        }
        for c, r in enumerate(runs)
    }
    q = float(QUANTILE_GRID[i])
    return q, {
        "method": f"leave each class out in turn, stratified {options.folds}-fold (seed {options.seed})",
        "target_false_flag_rate": false_flag_rate,
        "quantile": q,
        "false_flag_rate": round(float(ffr[i]), 6),
        "recall": round(recall, 6),
        "recall_class_mean": round(recall_mean, 6),
        "left_out": per,
    }


def _flags_on_grid(run: dict) -> np.ndarray:
    """(N, Q) flags of every row at every quantile of :data:`QUANTILE_GRID` (its fold model's
    threshold, np.quantile of that model's reference scores, as ``classify apply``)."""
    flags = np.zeros((len(run["score"]), QUANTILE_GRID.size), bool)
    for f, ref in enumerate(run["reference"]):
        sel = run["fold"] == f
        flags[sel] = run["score"][sel, None] > np.quantile(ref, QUANTILE_GRID)[None, :]
    return flags


# ----------------------------------------------------------------------------------------


def _out_of_fold(X, y, classes, feature_set, settings, options) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold feature log-likelihoods (N, F, C) and their category sums (N, K, C)."""
    ll = _out_of_fold_feature_ll(
        X, y, len(classes), settings, options, feature_set.presence_free(), feature_set.unmeasured_ranges(classes)
    )
    return ll, category_log_likelihoods(ll, feature_set.category_index(), len(feature_set.categories))


def _out_of_fold_feature_ll(X, y, C, settings, options, presence_free=None, unmeasured=None) -> np.ndarray:
    fold = stratified_folds(y, options.folds, options.seed)
    out = np.zeros((len(y), X.shape[1], C))
    for f in range(options.folds):
        tr, te = fold != f, fold == f
        d = fit_densities(X[tr], y[tr], C, settings, presence_free, unmeasured)
        out[te] = feature_log_likelihoods(d, X[te], None, settings.missing_alpha)
    return out


def _objective(name: str, C: int):
    if name == "macro_f1":
        return lambda y, p: ev.macro_f1(y, p, C)
    if name == "balanced_accuracy":
        return lambda y, p: float(np.nanmean(ev.recall(ev.confusion_matrix(y, p, C))))
    if name.startswith("f1:"):
        raise AssertionError("f1:CLASS objectives are resolved to f1_index:N before fitting")
    if name.startswith("f1_index:"):
        j = int(name.split(":", 1)[1])

        def one(y, p):
            cm = ev.confusion_matrix(y, p, C)
            return float(ev.f1(ev.precision(cm), ev.recall(cm))[j])

        return one
    raise ValueError(f"unknown objective {name!r} (macro_f1, balanced_accuracy or f1:CLASS)")


def resolve_objective(name: str, classes: Sequence[str]) -> str:
    """``f1:CV`` -> ``f1_index:k``; validates the other names.  Raises ValueError."""
    if name in ("macro_f1", "balanced_accuracy"):
        return name
    if name.startswith("f1:"):
        cls = name[3:]
        if cls not in classes:
            raise ValueError(f"objective {name}: no class {cls!r} (classes: {', '.join(classes)})")
        return f"f1_index:{list(classes).index(cls)}"
    raise ValueError(f"unknown objective {name!r} (macro_f1, balanced_accuracy or f1:CLASS)")


def cross_validate_hgb(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    options: FitOptions = FitOptions(),
    max_iter: int = 300,
    learning_rate: float = 0.05,
) -> dict:
    """Held-out comparison method: scikit-learn HistGradientBoosting (native missing values,
    class-balanced sample weights), on the same stratified folds as :func:`cross_validate`.
    Evaluation only: a boosted model has no pickle-free file format here, so it cannot be
    shipped or applied with ``classify apply``."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    fold = stratified_folds(y, options.folds, options.seed)
    proba = np.zeros((len(y), n_classes))
    for f in range(options.folds):
        tr, te = fold != f, fold == f
        clf = HistGradientBoostingClassifier(
            random_state=options.seed,
            class_weight="balanced",
            max_iter=max_iter,
            learning_rate=learning_rate,
            early_stopping=False,
        )
        clf.fit(X[tr], y[tr])
        proba[np.ix_(te, clf.classes_)] = clf.predict_proba(X[te])
    return {"proba": proba, "fold": fold}
