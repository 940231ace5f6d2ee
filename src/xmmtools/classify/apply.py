"""Applying a trained model to catalogue columns: arrays in, :class:`NewColumn` list out.

Columns written (see docs/classify.md):

``P_<CLASS>``            posterior probability of each class (sum 1 per row)
``CLASS``                most probable class
``CLASS_MARGIN``         (P1 − P2)/(P1 + P2) = 2·P1/(P1 + P2) − 1 for the two most probable
                         classes: 0 for a tie, 1 when one class takes everything
``OUTLIER_SCORE``        −log10 max_c (unnormalised posterior) (Tranin et al. 2022, outlier measure)
``OUTLIER_QUANTILE``     fraction of training sources with a lower score
``OUTLIER_FLAG``         score above the model's training quantile (chosen at training by
                         leave-class-out for a 2 % false-flag rate: 0.973 for the shipped model)
``N_MISSING_FEATURES``   features without a value for this source (absent columns set to
                         "ignore" are not counted)
``CLASS_<CATEGORY>``     class favoured by that category's likelihood alone (no prior), e.g.
                         ``CLASS_SPECTRUM``: why a source was classified the way it was;
                         empty when the category carries no evidence (its columns are absent)
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from xmmtools.classify.features import FeatureSet, check_positions, compute_features
from xmmtools.classify.naive_bayes import Model, log_posterior, normalise, outlier_score
from xmmtools.columns import Need
from xmmtools.stages import StageSpec
from xmmtools.tables.model import NewColumn

SUMMARY = "class probabilities (naive Bayes, Tranin et al. 2022) and outlier scores"


def classify_arrays(
    model: Model,
    get: Callable[[str], np.ndarray | None],
    n: int,
    *,
    priors: np.ndarray | None = None,
    outlier_quantile: float | None = None,
) -> list[NewColumn]:
    """New columns for ``n`` rows; ``get(column)`` returns a float array or None if absent."""
    fm = compute_features(model.feature_set, get, n)
    return classify_features(model, fm.values, fm.ignored, priors=priors, outlier_quantile=outlier_quantile)


def classify_features(
    model: Model,
    X: np.ndarray,
    ignored: np.ndarray | None = None,
    *,
    priors: np.ndarray | None = None,
    outlier_quantile: float | None = None,
) -> list[NewColumn]:
    pri = model.priors if priors is None else np.asarray(priors, float)
    q = model.outlier_quantile if outlier_quantile is None else outlier_quantile
    cat_ll = model.category_ll(X, ignored)
    lp = log_posterior(cat_ll, pri, model.weights)
    p = normalise(lp)
    score = outlier_score(lp)
    names = pa.array(list(model.classes) + [""], pa.string())
    top2 = np.sort(p, axis=1)[:, -2:]
    p1, p2 = top2[:, 1], top2[:, 0]
    ref = model.reference_scores(ignored, pri)
    threshold = float(np.quantile(ref, q))
    n_missing = (~np.isfinite(X)).sum(axis=1)
    if ignored is not None and np.any(ignored):
        n_missing = n_missing - int(np.sum(ignored))
    cols = [
        NewColumn(
            f"P_{column_token(c)}", p[:, i], "", f"posterior probability of class {c} (naive Bayes, Tranin et al. 2022)"
        )
        for i, c in enumerate(model.classes)
    ]
    cols += [
        NewColumn("CLASS", names.take(p.argmax(axis=1)), "", "most probable class"),
        NewColumn("CLASS_MARGIN", (p1 - p2) / (p1 + p2), "", "(P1-P2)/(P1+P2) of the two most probable classes"),
        NewColumn("OUTLIER_SCORE", score, "", "-log10 of the largest unnormalised class posterior"),
        NewColumn(
            "OUTLIER_QUANTILE",
            np.searchsorted(ref, score, side="left") / ref.size,
            "",
            "fraction of training sources with a lower outlier score",
        ),
        NewColumn("OUTLIER_FLAG", score > threshold, "", f"outlier score above the training {q:g} quantile"),
        NewColumn("N_MISSING_FEATURES", n_missing.astype(np.int16), "", "features without a value"),
    ]
    for k, cat in enumerate(model.feature_set.categories):
        ck = cat_ll[:, k, :]
        idx = ck.argmax(axis=1)
        idx[ck.max(axis=1) - ck.min(axis=1) <= 1e-12] = len(model.classes)  # no evidence: ""
        cols.append(
            NewColumn(
                f"CLASS_{column_token(cat)}",
                names.take(idx),
                "",
                f"class favoured by the {cat} features alone (likelihood, no prior)",
            )
        )
    if len(model.classes) > 1:
        best = p.argmax(axis=1)
        for k, cat in enumerate(model.feature_set.categories):
            cols.append(
                NewColumn(
                    f"EVIDENCE_{column_token(cat)}",
                    category_evidence(cat_ll[:, k, :], best, float(model.weights[k])),
                    "",
                    f"log10 likelihood ratio of the {cat} features (weighted by their exponent) for "
                    "CLASS against the best other class; > 0 supports CLASS, NaN: no evidence",
                )
            )
    return cols


def category_evidence(ck: np.ndarray, best: np.ndarray, weight: float) -> np.ndarray:
    """Per row, w_k (ln L_k(ĉ) − max_{c≠ĉ} ln L_k(c)) / ln 10: how many dex category k's
    likelihood (tempered by its exponent w_k, T22) favours the predicted class ĉ over the
    strongest alternative; NaN where the category carries no evidence (equal for all classes).
    ``ck`` (N, C) category log-likelihoods, ``best`` (N,) predicted class indices."""
    rows = np.arange(ck.shape[0])
    own = ck[rows, best]
    other = np.where(np.arange(ck.shape[1])[None, :] == best[:, None], -np.inf, ck).max(axis=1)
    ev = weight * (own - other) / np.log(10.0)
    return np.where(ck.max(axis=1) - ck.min(axis=1) <= 1e-12, np.nan, ev)


def column_token(name: str) -> str:
    """Class or category name -> upper-case column token (``LM-STAR`` -> ``LM_STAR``)."""
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")


def stage_spec(fs: FeatureSet) -> StageSpec:
    """The columns a feature set needs: features that must be present (``when_absent = "error"``)
    are required (alternatives as any-of groups); the others are optional."""
    needs: dict[str, Need] = {}
    groups: list[list[Need]] = []
    for f in fs.features:
        for key, alts in f.columns.items():
            what = f"{f.name} {key}" if key != "columns" else f.name
            if f.when_absent == "error" and len(alts) == 1:
                needs[alts[0]] = Need(alts[0], f"for feature {what}")
            elif f.when_absent == "error":
                groups.append([Need(a, f"for feature {what}") for a in alts])
            for a in alts:
                needs.setdefault(a, Need(a, f"for feature {what}", optional=True))
    return StageSpec("classify", SUMMARY, needs=tuple(needs.values()), any_of=tuple(groups), inputs=fs.inputs)


def table_features(table, fs: FeatureSet, *, source: str, user_map=None):
    """Feature matrix of a whole pyarrow table (training / evaluation): the columns are
    resolved like the apply command's (one-line ColumnError for a required one that is absent)."""
    from xmmtools import tables

    spec = stage_spec(fs)
    mapping = spec.check(table.schema.names, source=source, user_map=user_map, types=tables.schema_kinds(table.schema))
    offsets = {k: f.offset for k, f in spec.feeds(table.schema.names, user_map).items() if f.offset}
    get = _getter(table, mapping, offsets)
    check_positions(fs, get, source)
    return compute_features(fs, get, table.num_rows)


def _getter(table, mapping, offsets=None):
    """``get(name)``: the column feeding ``name`` as floats (None if absent), shifted by
    ``offsets[name]`` (magnitude-system conversion of a canonical band, see xmmtools.bands)."""
    from xmmtools import tables

    offsets = offsets or {}

    def get(name: str):
        if name not in mapping:
            return None
        v = tables.to_numpy(table.column(mapping[name]), float)
        return v + offsets[name] if offsets.get(name) else v

    return get
