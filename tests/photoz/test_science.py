"""photoz science: perturbations, leaf-histogram PDFs, summaries, metrics, forests on real data.

Real data: the SDSS Main Galaxy Sample train/test files shipped with MLZ (tests/data/photoz).
Small hand-built forests check the gather-and-sum and the summaries exactly.
"""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import DATA

from xmmtools.errors import ColumnError, DataError
from xmmtools.photoz import metrics
from xmmtools.photoz.attributes import clip_sigma, perturb, resolve_attributes
from xmmtools.photoz.model import (
    FLAG_EXTRAPOLATION,
    FLAG_MISSING,
    FLAG_NO_DATA,
    FLAG_RARE_PATTERN,
    MODE_SMOOTH_CANDIDATES,
    cross_validate,
    load_model,
    model_path,
    select_mode_smooth,
    train_model,
)
from xmmtools.photoz.pdf import cdf, normalise, postprocess, quantiles, rebin_matrix, summarise
from xmmtools.photoz.tpz import Forest, ForestParams, Grid, float32_floor, realisations, train_forest

PHOTOZ = DATA / "photoz"
ATTRS = ["u", "g", "r", "i", "z", "u-g", "g-r", "r-i", "i-z"]
GRID = Grid(0.001, 0.3, 80)


@pytest.fixture(scope="module")
def mgs():
    tr = pq.read_table(PHOTOZ / "sdss_mgs_train.parquet")
    te = pq.read_table(PHOTOZ / "sdss_mgs_test.parquet")
    return tr, te


def _getter(table, rows=None):
    return lambda c: table[c].to_numpy() if rows is None else table[c].to_numpy()[rows]


@pytest.fixture(scope="module")
def small_model(mgs):
    """40 trees (NRandom 2 x NTrees 20) on the 5000 MGS training galaxies."""
    tr, _ = mgs
    aset = resolve_attributes(ATTRS, tr.column_names, source="train")
    return train_model(
        "mgs-small",
        aset,
        _getter(tr),
        tr["zs"].to_numpy(),
        GRID,
        ForestParams(n_random=2, n_trees=20, natt=5, min_leaf=5, seed=7),
        n_jobs=1,
        importance=True,
    )


# -- attributes and perturbations ---------------------------------------------------------------


def test_colour_columns_are_perturbed_with_their_magnitudes(mgs):
    tr, _ = mgs
    aset = resolve_attributes(ATTRS, tr.column_names, source="train")
    assert aset.bases == ["u", "g", "r", "i", "z"]
    assert aset.error_columns == {"u": "eu", "g": "eg", "r": "er", "i": "ei", "z": "ez"}
    X, sig = aset.values(_getter(tr))
    np.testing.assert_allclose(X[:, 5], X[:, 0] - X[:, 1], atol=1e-12)  # the u-g column is u - g
    Xp = perturb(X, sig, aset.coef, np.random.default_rng(1))
    d = Xp - X
    # the colour moved by exactly (delta u - delta g), not by an independent draw
    np.testing.assert_allclose(d[:, 5], d[:, 0] - d[:, 1], atol=1e-9)
    np.testing.assert_allclose(d[:, 8], d[:, 3] - d[:, 4], atol=1e-9)
    # each magnitude moved by N(0, clip(sigma)): the normalised shifts have unit variance
    zscore = (d[:, :5] / sig).ravel()
    assert abs(zscore.std() - 1) < 0.02 and abs(zscore.mean()) < 0.03


def test_derived_colours_and_sigma_clipping():
    cols = {
        "U": np.array([20.0, 21.0, np.nan]),
        "G": np.array([19.0, -99.0, 18.0]),
        "eU": np.array([0.0, 5.0, np.nan]),
        "eG": np.array([0.05, np.nan, 0.02]),
    }
    aset = resolve_attributes(["U", "G", "U-G"], list(cols), source="t", missing=[-99.0])
    assert aset.attributes[2].column is None and aset.attributes[2].parts == ("U", "G")
    X, sig = aset.values(lambda c: cols[c])
    np.testing.assert_array_equal(X[0], [20.0, 19.0, 1.0])
    assert np.isnan(X[1, 1]) and np.isnan(X[1, 2])  # the -99 sentinel is missing, and so its colour
    assert np.isnan(X[2, 0]) and np.isnan(X[2, 2])
    # clip(σ, 0.001, 0.3); an unknown error counts as the upper clip
    np.testing.assert_array_equal(sig[:, 0], [0.001, 0.3, 0.3])
    np.testing.assert_array_equal(clip_sigma(np.array([0.01, 1e-6, 2.0])), [0.01, 0.001, 0.3])


def test_realisation_zero_is_the_measured_training_set(mgs):
    tr, _ = mgs
    aset = resolve_attributes(ATTRS, tr.column_names, source="train")
    X, sig = aset.values(_getter(tr))
    reals = list(realisations(X, sig, aset.coef, ForestParams(n_random=3, n_trees=2, seed=5)))
    assert len(reals) == 3 and all(len(seeds) == 2 for _, seeds in reals)
    np.testing.assert_array_equal(reals[0][0], X.astype(np.float32))
    assert not np.array_equal(reals[1][0], reals[0][0])
    assert not np.array_equal(reals[1][0], reals[2][0])


def test_attribute_errors_are_one_line(mgs):
    tr, _ = mgs
    with pytest.raises(ColumnError, match="attribute w1: .* has no column w1"):
        resolve_attributes(["u", "w1"], tr.column_names, source="train")
    with pytest.raises(DataError, match="--errors lists 1 columns but 2"):
        resolve_attributes(["u", "g"], tr.column_names, source="train", errors=["eu"])
    aset = resolve_attributes(["u", "g"], ["u", "g", "zs"], source="t")
    with pytest.raises(ColumnError, match="no error column for u, g"):
        aset.require_errors("t")


# -- forest: hand-built trees --------------------------------------------------------------------


def _stump_forest(weight="counts"):
    """Two stumps on x0 (thresholds 0.5 and 0.25) on a 4-bin grid [0, 4)."""
    grid = Grid(0.0, 4.0, 4)
    left = [np.array([1, -1, -1], np.int32)] * 2
    right = [np.array([2, -1, -1], np.int32)] * 2
    feature = [np.array([0, -2, -2], np.int16)] * 2
    threshold = [np.array([0.5, -2, -2], np.float32), np.array([0.25, -2, -2], np.float32)]
    nan_left = [np.array([True, False, False]), np.array([False, False, False])]
    leaf_ptr = [np.array([0, 3, 4]), np.array([0, 1, 5])]
    # tree 0: left leaf holds redshift bins {0,0,1}, right {3}; tree 1: left {0}, right {1,2,2,3}
    leaf_bins = [np.array([0, 0, 1, 3], np.uint8), np.array([0, 1, 2, 2, 3], np.uint8)]
    return Forest(
        grid, ForestParams(1, 2, 1, 1, 0, weight), 1, left, right, feature, threshold, nan_left, leaf_ptr, leaf_bins
    )


def test_pdf_is_the_sum_of_leaf_histograms():
    f = _stump_forest()
    X = np.array([[0.1], [0.4], [0.9], [np.nan]])
    raw = f.pdf(X)
    np.testing.assert_array_equal(
        raw,
        [
            [3, 1, 0, 0],  # left, left
            [2, 2, 2, 1],  # left (0.4<=0.5), right (0.4>0.25)
            [0, 1, 2, 2],  # right, right
            [2, 2, 2, 1],
        ],
    )  # NaN: tree 0 learnt left, tree 1 right
    fw = _stump_forest("tree")  # each tree contributes unit mass
    np.testing.assert_allclose(fw.pdf(X)[1], [2 / 3, 1 / 3 + 0.25, 0.5, 0.25])


def test_marginalised_missing_attribute_on_hand_built_trees():
    f = _stump_forest()
    X = np.array([[0.1], [0.4], [0.9], [np.nan]])
    raw = f.pdf_marginal(X)
    np.testing.assert_allclose(raw[:3], f.pdf(X)[:3])  # rows without NaN: the ordinary PDF
    # NaN: both branches, weighted by the training objects that went each way
    # tree 0: 3/4 x {0,0,1} + 1/4 x {3}; tree 1: 1/5 x {0} + 4/5 x {1,2,2,3}
    want = (
        0.75 * np.array([2, 1, 0, 0])
        + 0.25 * np.array([0, 0, 0, 1])
        + 0.2 * np.array([1, 0, 0, 0])
        + 0.8 * np.array([0, 1, 2, 1])
    )
    np.testing.assert_allclose(raw[3], want, rtol=1e-6)


def test_unseen_missing_pattern_is_marginalised_on_real_galaxies(mgs):
    # the galaxy model never saw a missing band: rows lacking g (and its colours) would follow
    # one default side at every g split; marginalising them gives far better redshifts
    _, te = mgs
    m = load_model(model_path("galaxy"))
    X, _ = resolve_attributes(m.attributes, te.column_names, source="t").values(lambda c: te[c].to_numpy())
    zs = te["zs"].to_numpy()
    X[:, [k for k, a in enumerate(m.attributes) if "g" in a.split("-")]] = np.nan
    assert m.rare_pattern(X).all()
    p, est = m.estimate(X)
    learnt = summarise(normalise(m.forest.pdf(X)), m.grid.edges, m.rms_factor, m.mode_smooth)
    got, ref = metrics.point_metrics(est["Z_PHOT"], zs), metrics.point_metrics(learnt["Z_PHOT"], zs)
    assert got["sigma_nmad"] < 0.030 < ref["sigma_nmad"]  # measured 0.0286 vs 0.0330
    assert got["outliers_005"] < 0.10 < ref["outliers_005"]  # 9.2 % vs 16 %
    assert (est["Z_FLAG"] & FLAG_RARE_PATTERN).all()
    np.testing.assert_allclose(np.nansum(p, axis=1), 1.0, rtol=1e-5)


def test_numpy_tree_walk_equals_scikit_learn(mgs, monkeypatch):
    # the stored trees are walked by scikit-learn's Tree rebuilt from our arrays; if a future
    # scikit-learn cannot be rebuilt that way, the numpy walk gives the same leaves
    _, te = mgs
    m = load_model(model_path("galaxy"))
    X, _ = resolve_attributes(m.attributes, te.column_names, source="t").values(lambda c: te[c].to_numpy())
    X = np.ascontiguousarray(X, dtype=np.float32)
    X[::7, 0] = np.nan  # learnt NaN routing too
    for t in (0, 37, 99):
        assert m.forest.tree(t) is not None
        np.testing.assert_array_equal(m.forest._leaves_numpy(t, X), m.forest.tree(t).apply(X))
    ref = m.forest.pdf(X[:200])
    import xmmtools.photoz.tpz as tpz_mod

    def broken(*a, **k):
        raise TypeError("Tree state changed")

    monkeypatch.setattr(tpz_mod, "_sk_tree", broken)
    m2 = load_model(model_path("galaxy"))
    np.testing.assert_array_equal(m2.forest.pdf(X[:200]), ref)
    assert m2.forest.tree(0) is None


def test_summaries_of_a_hand_computed_pdf():
    edges = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    p = normalise(np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    assert np.isnan(p[1]).all()
    s = summarise(p, edges, rms_factor=0.5)
    # uniform on [0, 2): mean = median = 1, mode = first bin's centre
    assert s["Z_MEAN"][0] == pytest.approx(1.0) and s["Z_MEDIAN"][0] == pytest.approx(1.0)
    assert s["Z_PHOT"][0] == pytest.approx(0.5)
    assert s["Z_L68"][0] == pytest.approx(0.32) and s["Z_U68"][0] == pytest.approx(1.68)
    assert s["Z_L95"][0] == pytest.approx(0.05) and s["Z_U95"][0] == pytest.approx(1.95)
    assert s["Z_ERR"][0] == pytest.approx(0.68)
    # Z_CONF: mass within 0.5 ± 0.5·1.5 = [-0.25, 1.25] -> 0.5 + 0.25·0.5
    assert s["Z_CONF"][0] == pytest.approx(0.625)
    assert all(np.isnan(v[1]) for v in s.values())
    np.testing.assert_allclose(cdf(p[:1], edges, np.array([1.5])), [0.75])
    np.testing.assert_allclose(quantiles(p[:1], edges, [0.25, 0.5]), [[0.5, 1.0]])


def test_mlz_postprocessing_cut_and_smoothing():
    p = normalise(np.array([[1.0, 10.0, 1.0, 0.0, 3.0]]))
    cut = postprocess(p, cut=0.2)
    np.testing.assert_allclose(cut, [[0, 10 / 13, 0, 0, 3 / 13]])
    sm = postprocess(p, smooth=1.0)
    assert sm.sum() == pytest.approx(1.0) and sm[0, 3] > 0 and sm.max() < p.max()


def test_rebin_conserves_probability():
    src = np.linspace(0, 1, 5)
    dst = np.array([0.0, 0.1, 0.5, 1.0, 2.0])
    p = normalise(np.array([[1.0, 2.0, 3.0, 4.0]]))
    q = p @ rebin_matrix(src, dst)
    np.testing.assert_allclose(q, [[0.04, 0.26, 0.7, 0.0]])


def test_float32_thresholds_do_not_change_splits():
    rng = np.random.default_rng(3)
    a = np.sort(rng.normal(18, 2, 2000).astype(np.float32))
    mid = a[:-1].astype(np.float64) / 2 + a[1:].astype(np.float64) / 2  # scikit-learn's thresholds
    t32 = float32_floor(mid)
    assert (t32.astype(np.float64) <= mid).all()
    for v in (a[:-1], a[1:]):
        np.testing.assert_array_equal(v <= mid, v <= t32)


# -- metrics ---------------------------------------------------------------------------------------


def test_crps_and_point_metrics_against_hand_values():
    edges = np.array([0.0, 0.1, 0.2, 0.3])
    p = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    # all mass uniform in one bin of width w, z_spec at its centre: CRPS = w/12
    c = metrics.crps(p, edges, np.array([0.15, 0.5]))
    assert c[0] == pytest.approx(0.1 / 12)
    # z_spec above the grid: the bin's ∫F² (w/3) plus the distance from the bin top to z_spec
    assert c[1] == pytest.approx(0.1 / 3 + 0.3)
    zs = np.array([0.1, 0.2, 0.3, 0.4, 1.0])
    zp = zs + np.array([0.011, -0.022, 0.0, 0.014, 0.5]) * (1 + zs)
    m = metrics.point_metrics(zp, zs)
    assert m["bias"] == pytest.approx(np.mean([0.011, -0.022, 0.0, 0.014, 0.5]))
    assert m["outliers_015"] == pytest.approx(0.2) and m["outliers_005"] == pytest.approx(0.2)
    dz = zp - zs
    assert m["sigma_nmad"] == pytest.approx(1.48 * np.median(np.abs(dz - np.median(dz)) / (1 + zs)))


def test_pit_of_calibrated_pdfs_is_uniform():
    rng = np.random.default_rng(11)
    edges = np.linspace(-4, 4, 161)
    from scipy.stats import norm

    mu = rng.normal(0, 1, 3000)
    p = np.diff(norm.cdf(edges[None, :] - mu[:, None]), axis=1)
    p /= p.sum(axis=1, keepdims=True)
    truth = mu + rng.normal(0, 1, 3000)
    m = metrics.pdf_metrics(p, edges, truth)
    assert m["pit_ks"] < 0.03 and 0.65 < m["coverage_68"] < 0.71
    wide = metrics.pdf_metrics(p, edges, mu)  # truth at the centre: PDFs far too wide
    assert wide["pit_ks"] > 0.25 and wide["coverage_68"] > 0.95


# -- forests on the MGS galaxies ------------------------------------------------------------------


def test_mgs_quality_and_normalised_pdfs(mgs, small_model):
    _, te = mgs
    aset = resolve_attributes(ATTRS, te.column_names, source="test")
    X, _ = aset.values(_getter(te))
    p, est = small_model.estimate(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert (p >= 0).all()
    m = metrics.all_metrics(p, GRID.edges, te["zs"].to_numpy(), est)
    # 40 trees: a little worse than the 100-tree shipped model (0.0131, 1.0 %, CRPS 0.0090)
    assert m["sigma_nmad"] < 0.0145
    assert m["outliers_005"] < 0.016 and m["outliers_015"] == 0.0
    assert abs(m["bias"]) < 0.002
    assert m["crps"] < 0.0095
    assert m["pit_ks"] < 0.035
    assert 0.64 < m["coverage_68"] < 0.73
    assert (est["Z_L95"] <= est["Z_L68"]).all() and (est["Z_L68"] <= est["Z_MEDIAN"]).all()
    assert (est["Z_MEDIAN"] <= est["Z_U68"]).all() and (est["Z_U68"] <= est["Z_U95"]).all()
    assert ((est["Z_CONF"] > 0) & (est["Z_CONF"] <= 1)).all()
    # OOB metrics were measured with all realisations' trees, and agree with the test set
    oob = small_model.info["oob_metrics"]
    assert oob["n"] == 5000 and oob["oob_trees_median"] > 10
    assert 0.012 < oob["sigma_nmad"] < 0.02 and abs(oob["pit_ks"] - m["pit_ks"]) < 0.03


def test_mode_smooth_auto_picks_the_width_from_oob_and_stores_it(tmp_path, mgs, small_model):
    """mode_smooth="auto" (default): the width minimising the training set's OOB σNMAD of Z_PHOT."""
    tr, te = mgs
    sel = small_model.info["mode_smooth_selection"]
    scores = sel["oob_sigma_nmad"]
    assert sel["candidates_bins"] == list(MODE_SMOOTH_CANDIDATES) and len(scores) == len(MODE_SMOOTH_CANDIDATES)
    best = MODE_SMOOTH_CANDIDATES[int(np.argmin(scores))]
    assert small_model.mode_smooth == sel["chosen_bins"] == best
    assert min(scores) < scores[0] - 0.001 and best >= 2  # smoothing the peak helps on MGS
    # recomputed from the OOB PDFs alone (no test rows involved)
    p_oob, est_oob = small_model.oob
    w, again = select_mode_smooth(p_oob, GRID.edges, tr["zs"].to_numpy())
    assert w == best and again == scores
    assert np.array_equal(est_oob["Z_PHOT"], summarise(p_oob, GRID.edges, 0.02, w)["Z_PHOT"])
    assert small_model.info["oob_metrics"]["sigma_nmad"] == pytest.approx(min(scores), abs=1e-15)
    # stored in the model file and used when applying it
    loaded = load_model(small_model.save(str(tmp_path / "auto.json"))[0])
    assert loaded.mode_smooth == best
    X, _ = resolve_attributes(ATTRS, te.column_names, source="t").values(_getter(te, slice(0, 300)))
    p, est = loaded.estimate(X)
    assert np.array_equal(est["Z_PHOT"], summarise(p, GRID.edges, 0.02, best)["Z_PHOT"])
    # ties go to the smaller width: a one-bin PDF has the same mode at every width
    one = np.zeros((3, 80))
    one[:, 40] = 1.0
    assert select_mode_smooth(one, GRID.edges, np.full(3, GRID.centres[40]), candidates=(4.0, 2.0, 8.0))[0] == 2.0
    with pytest.raises(DataError, match="no training row has one"):
        select_mode_smooth(np.full((3, GRID.nzbins), np.nan), GRID.edges, np.ones(3))
    # a fixed width is kept as given, without a selection record
    fixed = train_model(
        "fixed",
        resolve_attributes(ATTRS, tr.column_names, source="train"),
        _getter(tr),
        tr["zs"].to_numpy(),
        GRID,
        ForestParams(1, 3, 5, 5, seed=7),
        mode_smooth=1.5,
        importance=False,
        oob=False,
    )
    assert fixed.mode_smooth == 1.5 and "mode_smooth_selection" not in fixed.info
    with pytest.raises(DataError, match="auto"):
        train_model(
            "bad",
            resolve_attributes(ATTRS, tr.column_names, source="train"),
            _getter(tr),
            tr["zs"].to_numpy(),
            GRID,
            ForestParams(1, 3, 5, 5),
            mode_smooth="best",
            oob=False,
        )


def test_cross_validation_chooses_the_width_inside_each_fold(mgs):
    tr, _ = mgs
    rows = slice(0, 1500)
    aset = resolve_attributes(ATTRS, tr.column_names, source="train")
    _, est, m = cross_validate(
        aset, _getter(tr, rows), tr["zs"].to_numpy()[rows], GRID, ForestParams(1, 20, 5, 5, seed=3), folds=3, seed=1
    )
    assert len(m["mode_smooth_folds"]) == 3 and all(w in MODE_SMOOTH_CANDIDATES for w in m["mode_smooth_folds"])
    # the same fold trained by hand (OOB of its training rows only) picks the same width
    z = tr["zs"].to_numpy()[rows]
    order = np.random.default_rng(1).permutation(len(z))
    train = np.sort(np.setdiff1d(order, np.array_split(order, 3)[0]))
    m0 = train_model(
        "f0",
        aset,
        _getter(tr, np.arange(1500)[train]),
        z[train],
        GRID,
        ForestParams(1, 20, 5, 5, seed=3),
        importance=False,
        oob=False,
    )
    assert m0.mode_smooth == m["mode_smooth_folds"][0] and m["n"] == 1500


def test_permutation_importance_ranks_the_informative_colours(small_model):
    imp = small_model.info["permutation_importance"]
    assert set(imp) == set(ATTRS)
    crps = {k: v["delta_crps"] for k, v in imp.items()}
    # g-r (the 4000 Å break at z < 0.3) matters most; the noisy u band least among the colours
    assert max(crps, key=crps.get) in ("g-r", "r-i")
    assert crps["g-r"] > 5 * crps["u"] and crps["g-r"] > 0.001


def test_forest_is_bit_reproducible_with_a_seed(mgs):
    tr, te = mgs
    aset = resolve_attributes(ATTRS, tr.column_names, source="train")
    X, sig = aset.values(_getter(tr))
    z = tr["zs"].to_numpy()
    params = ForestParams(n_random=2, n_trees=3, natt=3, min_leaf=5, seed=99)
    f1, bag1 = train_forest(X, z, sig, aset.coef, GRID, params, n_jobs=1)
    f2, bag2 = train_forest(X, z, sig, aset.coef, GRID, params, n_jobs=2)
    f3, _ = train_forest(X, z, sig, aset.coef, GRID, ForestParams(2, 3, 3, 5, seed=100))
    np.testing.assert_array_equal(bag1, bag2)
    for a, b in zip(f1.threshold + f1.leaf_bins, f2.threshold + f2.leaf_bins, strict=True):
        np.testing.assert_array_equal(a, b)
    Xt, _ = aset.values(_getter(te))
    p1 = f1.pdf(Xt)
    assert np.array_equal(p1, f2.pdf(Xt, n_jobs=2))
    assert not np.array_equal(p1, f3.pdf(Xt))


def test_model_files_round_trip_exactly(tmp_path, mgs, small_model):
    _, te = mgs
    json_path, npz_path = small_model.save(str(tmp_path / "m.json"))
    loaded = load_model(json_path)
    X, _ = resolve_attributes(ATTRS, te.column_names, source="t").values(_getter(te, slice(0, 500)))
    p0, e0 = small_model.estimate(X)
    p1, e1 = loaded.estimate(X)
    assert np.array_equal(p0, p1)
    for k in e0:
        assert np.array_equal(e0[k], e1[k], equal_nan=True)
    assert loaded.info["training"]["checksum_sha256"] == small_model.info["training"]["checksum_sha256"]
    with np.load(npz_path, allow_pickle=False) as z:  # plain arrays: no pickled objects inside
        assert all(z[k].dtype != object for k in z.files)


def test_missing_bands_nan_aware_trees_and_flags(mgs):
    """Policy: no imputation; NaN-aware trees learn where objects without a band go."""
    tr, te = mgs
    rng = np.random.default_rng(4)
    cols = {c: tr[c].to_numpy().copy() for c in tr.column_names}
    drop = rng.random(len(cols["u"])) < 0.3  # 30 % of training galaxies without u
    cols["u"][drop] = np.nan
    aset = resolve_attributes(ATTRS, list(cols), source="train")
    model = train_model(
        "no-u", aset, lambda c: cols[c], cols["zs"], GRID, ForestParams(2, 10, 5, 5, seed=3), importance=False, n_jobs=1
    )
    assert model.patterns[0] == (~drop).sum() and model.patterns[1 | 32] == drop.sum()  # u, u-g missing
    tcols = {c: te[c].to_numpy().copy() for c in te.column_names}
    tcols["u"][:1000] = np.nan
    tcols["z"][1000:1010] = np.nan  # a pattern the training set never had
    for c in ("u", "g", "r", "i", "z"):
        tcols[c][1010] = np.nan  # nothing measured
    tcols["r"][1011] = 30.0  # far outside the training range
    X, _ = resolve_attributes(ATTRS, list(tcols), source="t").values(lambda c: tcols[c])
    p, est = model.estimate(X)
    flag = est["Z_FLAG"]
    assert (flag[:1000] & FLAG_MISSING).all() and not (flag[:1000] & FLAG_RARE_PATTERN).any()
    assert (flag[1000:1010] & FLAG_RARE_PATTERN).all()
    assert flag[1010] & FLAG_NO_DATA and np.isnan(p[1010]).all() and np.isnan(est["Z_PHOT"][1010])
    assert flag[1011] & FLAG_EXTRAPOLATION
    zs = tcols["zs"]
    without_u = metrics.point_metrics(est["Z_PHOT"][:1000], zs[:1000])
    # u carries little at z < 0.3: 20 trees still give sigma_NMAD ~0.0156, eta(>0.05) ~3 %
    assert without_u["sigma_nmad"] < 0.017 and without_u["outliers_005"] < 0.04
    np.testing.assert_allclose(p[:1000].sum(axis=1), 1.0, atol=1e-9)


def test_training_input_errors(mgs):
    tr, _ = mgs
    aset = resolve_attributes(ATTRS, tr.column_names, source="train")
    z = tr["zs"].to_numpy().copy()
    z[17] = np.nan
    with pytest.raises(DataError, match="1 training rows have no valid spectroscopic redshift .*row 17"):
        train_model("x", aset, _getter(tr), z, GRID, ForestParams(1, 1))
    with pytest.raises(DataError, match="outside the grid"):
        train_model("x", aset, _getter(tr), tr["zs"].to_numpy(), Grid(0.0, 0.2, 10), ForestParams(1, 1))
    with pytest.raises(DataError, match="Natt=12 is more than the 9 attributes"):
        train_model("x", aset, _getter(tr), tr["zs"].to_numpy(), GRID, ForestParams(1, 1, natt=12))
