"""The naive Bayes method (Tranin et al. 2022) against hand-computed values.

Small controlled inputs are synthetic on purpose: each test pins one term of the likelihood.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from xmmtools.classify import evaluate as ev
from xmmtools.classify.apply import classify_features
from xmmtools.classify.features import FeatureSet, parse_feature_set
from xmmtools.classify.naive_bayes import (
    Model,
    Settings,
    bandwidth,
    feature_log_likelihoods,
    fit_densities,
    histogram_density,
    kde,
    log_posterior,
    normalise,
    outlier_score,
    parse_priors,
    tranin_bandwidth,
)


def _fs(n_features: int, categories=("spectrum",)) -> FeatureSet:
    doc = {
        "feature": [
            {"name": f"X{j}", "category": categories[j % len(categories)], "columns": [f"C{j}"]}
            for j in range(n_features)
        ]
    }
    return parse_feature_set(doc)


def _model(X, y, classes=("A", "B"), settings=Settings(), priors=None, categories=("spectrum",)):
    fs = _fs(X.shape[1], categories)
    d = fit_densities(X, y, len(classes), settings)
    frac = np.bincount(y, minlength=len(classes)) / len(y)
    ref = feature_log_likelihoods(d, X, None, settings.missing_alpha)
    return Model(
        fs, classes, d, np.ones(len(fs.categories)), frac if priors is None else np.asarray(priors), frac, ref, settings
    )


# ---------------------------------------------------------------------------------- kernels


def test_exponential_kde_matches_hand_computed_value():
    # (1/N) sum exp(-|x-s|/h) / (2h) with s = 0, 1, 3, h = 0.5, x = 1
    expect = (math.exp(-2) + 1 + math.exp(-4)) / 3
    assert kde(np.array([1.0]), np.array([0.0, 1.0, 3.0]), 0.5)[0] == pytest.approx(expect, rel=1e-12)


def test_gaussian_kde_matches_hand_computed_value():
    expect = (math.exp(-0.5 * 4) + 1) / 2 / math.sqrt(2 * math.pi) / 0.5
    assert kde(np.array([1.0]), np.array([0.0, 1.0]), 0.5, "gaussian")[0] == pytest.approx(expect, rel=1e-12)


def test_kde_integrates_to_one():
    s = np.random.default_rng(3).normal(0, 1, 200)
    x = np.linspace(-20, 20, 40001)
    assert np.trapezoid(kde(x, s, tranin_bandwidth(s)), x) == pytest.approx(1.0, abs=1e-4)


def test_tranin_bandwidth_is_range_over_five_n_to_the_fifth():
    v = np.arange(10.0)
    assert tranin_bandwidth(v) == pytest.approx(9 / (5 * 10**0.2))
    assert tranin_bandwidth(v) == pytest.approx(1.135723, rel=1e-6)


def test_scott_and_silverman_bandwidths():
    v = np.arange(10.0)
    sd = np.std(v, ddof=1)
    assert bandwidth(v, "scott") == pytest.approx(1.06 * sd * 10**-0.2)
    iqr = np.percentile(v, 75) - np.percentile(v, 25)
    assert bandwidth(v, "silverman") == pytest.approx(0.9 * min(sd, iqr / 1.34) * 10**-0.2)


def test_histogram_density_is_count_over_n_width():
    grid = np.array([0.0, 0.5, 1.0])
    d = histogram_density(grid, np.array([0.0, 0.0, 0.0, 1.0]), width=0.2)
    assert d.tolist() == pytest.approx([3 / (4 * 0.2), 0.0, 1 / (4 * 0.2)])


# ---------------------------------------------------------------------------------- densities


def test_presence_terms_use_laplace_rule():
    X = np.array([[1.0], [2.0], [3.0], [np.nan], [5.0], [np.nan]])
    y = np.array([0, 0, 0, 0, 1, 1])
    d = fit_densities(X, y, 2)
    assert np.exp(d.log_present[0]).tolist() == pytest.approx([(3 + 1) / (4 + 2), (1 + 1) / (2 + 2)])
    assert np.exp(d.log_missing[0]).tolist() == pytest.approx([(1 + 1) / (4 + 2), (1 + 1) / (2 + 2)])


def test_present_term_is_presence_times_kde_density():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 40)
    b = rng.normal(3, 1, 30)
    X = np.concatenate([a, b])[:, None]
    y = np.array([0] * 40 + [1] * 30)
    s = Settings(grid_size=4001)
    d = fit_densities(X, y, 2, s)
    x = 0.3
    ll = feature_log_likelihoods(d, np.array([[x]]))[0, 0]
    for c, v in enumerate((a, b)):
        dens = max(kde(np.array([x]), v, tranin_bandwidth(v))[0], s.floor / (X.max() - X.min()))
        assert ll[c] == pytest.approx(math.log(41 / 42 if c == 0 else 31 / 32) + math.log(dens), abs=2e-4)


def test_classes_with_few_distinct_values_use_histograms_and_floor():
    X = np.array([[0.0]] * 6 + [[1.0]] * 4 + [[v] for v in np.linspace(0, 1, 12)])
    y = np.array([0] * 10 + [1] * 12)
    d = fit_densities(X, y, 2)
    assert d.histogram[0].tolist() == [True, False]
    floor = Settings().floor / 1.0
    assert np.exp(d.log_density[0]).min() == pytest.approx(floor)  # class 0 between 0 and 1: floored
    # at x = 0 the histogram density of class 0 is 6 / (10 * width), width = the feature's h
    h = tranin_bandwidth(X[:, 0])
    assert math.exp(d.log_density[0, 0, 0]) == pytest.approx(6 / (10 * h))


def test_values_outside_training_range_are_neutral():
    X = np.array([[0.0], [0.2], [0.4], [0.6], [1.0], [1.5], [2.0], [2.5]] * 3)
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1] * 3)
    d = fit_densities(X, y, 2)
    out = feature_log_likelihoods(d, np.array([[-5.0], [99.0]]))[:, 0, :]
    expect = d.log_present[0] + d.log_neutral[0]
    assert out[0].tolist() == pytest.approx(expect.tolist())
    assert out[1].tolist() == pytest.approx(expect.tolist())
    assert d.log_present[0, 0] == d.log_present[0, 1]  # so both classes get the same term


# ---------------------------------------------------------------------------------- posteriors


def _two_class_model(alpha=1.0, priors=None):
    rng = np.random.default_rng(1)
    x0 = rng.normal(0, 1, 60)
    x1 = rng.normal(2, 1, 40)
    x0[:30] = np.nan  # class A misses the feature half of the time
    x1[:4] = np.nan
    X = np.concatenate([x0, x1])[:, None]
    y = np.array([0] * 60 + [1] * 40)
    return _model(X, y, settings=Settings(missing_alpha=alpha), priors=priors)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_missing_value_posterior_follows_the_formula(alpha):
    m = _two_class_model(alpha)
    p = normalise(log_posterior(m.category_ll(np.array([[np.nan]])), m.priors, m.weights))[0]
    pm = np.array([(30 + 1) / (60 + 2), (4 + 1) / (40 + 2)]) ** alpha
    expect = m.priors * pm / np.sum(m.priors * pm)
    assert p.tolist() == pytest.approx(expect.tolist(), rel=1e-12)


def test_priors_shift_posteriors_by_bayes_rule():
    m = _two_class_model()
    X = np.array([[0.5], [1.2], [np.nan], [2.5]])
    p_train = normalise(log_posterior(m.category_ll(X), m.priors, m.weights))
    new = np.array([0.9, 0.1])
    cols = classify_features(m, X, priors=new)
    p_new = np.column_stack([c.values for c in cols[:2]])
    expect = p_train * new / m.priors
    expect /= expect.sum(axis=1, keepdims=True)
    assert p_new == pytest.approx(expect, rel=1e-10)


def test_posteriors_normalised_in_log_space_do_not_underflow():
    ll = np.full((2, 1, 3), -2000.0)  # 20 features of density ~ e^-100 each
    ll[1, 0, 2] = -1990.0
    p = normalise(log_posterior(ll, np.array([0.5, 0.3, 0.2]), np.ones(1)))
    assert np.all(np.isfinite(p))
    assert p[0].tolist() == pytest.approx([0.5, 0.3, 0.2])
    assert p[1, 2] == pytest.approx(0.2 * math.exp(10) / (0.8 + 0.2 * math.exp(10)))
    assert outlier_score(log_posterior(ll, np.array([0.5, 0.3, 0.2]), np.ones(1)))[0] == pytest.approx(
        (2000 - math.log(0.5)) / math.log(10)
    )


def test_category_weights_temper_each_category():
    m = _two_class_model()
    cat = m.category_ll(np.array([[1.7]]))
    lp1 = log_posterior(cat, m.priors, np.array([1.0]))
    lp05 = log_posterior(cat, m.priors, np.array([0.5]))
    assert (lp05 - np.log(m.priors))[0].tolist() == pytest.approx((0.5 * (lp1 - np.log(m.priors)))[0].tolist())


def test_outlier_far_from_every_class_is_flagged_and_typical_source_is_not():
    rng = np.random.default_rng(5)
    X = np.column_stack(
        [
            np.concatenate([rng.normal(0, 1, 300), rng.normal(5, 1, 300)]),
            np.concatenate([rng.normal(0, 1, 300), rng.normal(-5, 1, 300)]),
        ]
    )
    y = np.array([0] * 300 + [1] * 300)
    m = _model(X, y)
    # inside both features' ranges, but where neither class has sources (x far from 0 and 5, y
    # far from 0 and -5): only the density floors / tails remain
    cols = {c.name: c for c in classify_features(m, np.array([[0.0, 0.0], [2.5, 3.0], [5.0, -5.0]]))}
    assert cols["OUTLIER_FLAG"].values.tolist() == [False, True, False]
    assert cols["OUTLIER_SCORE"].values[1] > m.outlier_threshold
    assert cols["OUTLIER_QUANTILE"].values[1] == 1.0


def test_output_columns_and_margin():
    m = _two_class_model()
    cols = {c.name: c for c in classify_features(m, np.array([[0.0], [2.0], [np.nan]]))}
    assert list(cols) == [
        "P_A",
        "P_B",
        "CLASS",
        "CLASS_MARGIN",
        "OUTLIER_SCORE",
        "OUTLIER_QUANTILE",
        "OUTLIER_FLAG",
        "N_MISSING_FEATURES",
        "CLASS_SPECTRUM",
        "EVIDENCE_SPECTRUM",
    ]
    p = np.column_stack([cols["P_A"].values, cols["P_B"].values])
    assert p.sum(axis=1) == pytest.approx(1.0)
    assert cols["CLASS"].values.to_pylist() == ["A", "B", "A"]
    assert cols["CLASS_MARGIN"].values == pytest.approx(np.abs(p[:, 0] - p[:, 1]))
    assert cols["N_MISSING_FEATURES"].values.tolist() == [0, 0, 1]


def test_parse_priors_errors_name_the_problem():
    assert parse_priors("A=3,B=1", ("A", "B")).tolist() == [0.75, 0.25]
    with pytest.raises(ValueError, match="class 'C'"):
        parse_priors("A=1,C=1", ("A", "B"))
    with pytest.raises(ValueError, match="no fraction for class B"):
        parse_priors("A=1", ("A", "B"))
    with pytest.raises(ValueError, match="positive"):
        parse_priors("A=1,B=-1", ("A", "B"))


# ---------------------------------------------------------------------------------- metrics


def test_prior_corrected_precision_by_hand():
    cm = np.array([[8, 2], [1, 9]])
    pc = ev.prior_corrected_precision(cm, np.array([0.9, 0.1]))
    assert pc[0] == pytest.approx(0.9 * 0.8 / (0.9 * 0.8 + 0.1 * 0.1))
    assert pc[1] == pytest.approx(0.1 * 0.9 / (0.9 * 0.2 + 0.1 * 0.9))
    # with the data's own fractions it is the ordinary precision
    assert ev.prior_corrected_precision(cm, np.array([0.5, 0.5])) == pytest.approx(ev.precision(cm))


def test_summary_metrics_by_hand():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    m = ev.summarise(y, proba, ("A", "B"))
    assert m["confusion_matrix"] == [[1, 1], [0, 2]]
    assert m["recall"] == [0.5, 1.0]
    assert m["balanced_accuracy"] == 0.75
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2, abs=1e-6)
    assert m["brier"] == pytest.approx(np.mean([0.02, 0.72, 0.08, 0.18]), abs=1e-6)
    # ECE: bins 0.6, 0.7, 0.8, 0.9 each hold one source: |acc - conf| = 0.6, 0.3, 0.2, 0.1
    assert m["ece"] == pytest.approx((0.6 + 0.3 + 0.2 + 0.1) / 4, abs=1e-6)


def test_hgb_comparison_uses_the_same_stratified_folds():
    from xmmtools.classify.training import FitOptions, cross_validate_hgb, stratified_folds

    rng = np.random.default_rng(4)
    X = np.column_stack([np.concatenate([rng.normal(0, 1, 60), rng.normal(4, 1, 40)]), rng.normal(0, 1, 100)])
    X[::7, 0] = np.nan  # native missing values
    y = np.array([0] * 60 + [1] * 40)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # tiny fits: OpenMP thread start-up would dominate on a busy machine
        res = cross_validate_hgb(X, y, 2, FitOptions(folds=4, seed=3), max_iter=10)
    assert np.array_equal(res["fold"], stratified_folds(y, 4, 3))
    assert np.bincount(res["fold"][y == 1]).tolist() == [10, 10, 10, 10]
    assert res["proba"].sum(axis=1) == pytest.approx(1.0)
    assert ev.summarise(y, res["proba"], ("A", "B"))["balanced_accuracy"] > 0.85


# --------------------------------------------------------- m-estimate and unmeasured classes (issue 17)


def test_shrink_is_the_m_estimate_towards_the_pooled_density():
    rng = np.random.default_rng(3)
    a = rng.normal(0, 1, 200)
    b = rng.normal(2, 0.3, 12)
    X = np.concatenate([a, b])[:, None]
    y = np.array([0] * 200 + [1] * 12)
    s0, s5 = Settings(grid_size=64), Settings(grid_size=64, shrink=5.0)
    raw, shrunk = fit_densities(X, y, 2, s0), fit_densities(X, y, 2, s5)
    grid = np.linspace(X.min(), X.max(), 64)
    pooled = kde(grid, X[:, 0], tranin_bandwidth(X[:, 0]))
    floor = s0.floor / (X.max() - X.min())
    for c, n in ((0, 200), (1, 12)):
        own = kde(grid, X[y == c, 0], tranin_bandwidth(X[y == c, 0]))
        expect = np.log(np.maximum((n * own + 5.0 * pooled) / (n + 5.0), floor))
        assert shrunk.log_density[0, c] == pytest.approx(expect, abs=1e-12)
        assert raw.log_density[0, c] == pytest.approx(np.log(np.maximum(own, floor)), abs=1e-12)
    # the small class loses most of its peak, the large one hardly changes
    assert shrunk.log_density[0, 1].max() < raw.log_density[0, 1].max() - 0.2
    assert np.abs(shrunk.log_density[0, 0] - raw.log_density[0, 0]).max() < 0.15
    assert (shrunk.log_present == raw.log_present).all()  # presence terms are not shrunk


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_shrink_must_be_a_finite_non_negative_pseudo_count(bad):
    with pytest.raises(ValueError, match="shrink"):
        Settings(shrink=bad)


def test_unmeasured_range_replaces_the_flat_density_of_a_class_without_values():
    X = np.array([[1.0], [1.5], [2.0], [2.5], [np.nan], [np.nan], [np.nan]] * 3)
    y = np.array([1, 1, 1, 1, 0, 0, 0] * 3)  # class 0 is never measured
    s = Settings(grid_size=101)
    flat = fit_densities(X, y, 2, s)
    ranged = fit_densities(X, y, 2, s, unmeasured=[{0: (2.0, 2.5)}])
    assert np.exp(flat.log_density[0, 0]) == pytest.approx(np.full(101, 1 / 1.5))  # 1 / training range
    grid = np.linspace(1.0, 2.5, 101)
    inside = (grid >= 2.0) & (grid <= 2.5)
    assert np.exp(ranged.log_density[0, 0, inside]) == pytest.approx(2.0)  # 1 / (2.5 - 2.0)
    assert np.exp(ranged.log_density[0, 0, ~inside]) == pytest.approx(s.floor / 1.5)  # floored outside
    assert (ranged.log_density[0, 1] == flat.log_density[0, 1]).all()  # measured class untouched
    # a class with measured values keeps its own density even when a range is declared for it
    again = fit_densities(X, y, 2, s, unmeasured=[{1: (2.0, 2.5)}])
    assert (again.log_density == flat.log_density).all()


def test_category_evidence_is_the_tempered_log10_ratio_against_the_best_other_class():
    from xmmtools.classify.apply import category_evidence

    ck = np.array(
        [
            [-1.0, -3.0, -2.0],  # predicted 0: favours it by 1 nat over class 2
            [-1.0, -3.0, -2.0],  # predicted 2: argues against it by 1 nat (class 0 is better)
            [-5.0, -5.0, -5.0],  # no evidence
        ]
    )
    ev = category_evidence(ck, np.array([0, 2, 1]), 0.5)
    assert ev[0] == pytest.approx(0.5 / math.log(10))
    assert ev[1] == pytest.approx(-0.5 / math.log(10))
    assert math.isnan(ev[2])
