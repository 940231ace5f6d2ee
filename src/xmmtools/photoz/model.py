"""A trained photo-z model: forest, attributes, grid, provenance and OOB metrics.

Files: ``NAME.json`` (format, attributes, error columns, grid, parameters, training checksum,
OOB metrics, permutation importance) and ``NAME.npz`` beside it (tree arrays and leaf
histograms, loaded with ``allow_pickle=False``; its sha256 is in the JSON).  Never pickle.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xmmtools import model_files
from xmmtools.errors import DataError
from xmmtools.photoz import metrics as _metrics
from xmmtools.photoz.attributes import AttributeSet, taking_rows
from xmmtools.photoz.pdf import normalise, postprocess, summarise
from xmmtools.photoz.tpz import (
    MIN_PATTERN_ROWS,
    Forest,
    ForestParams,
    Grid,
    oob_pdf,
    pattern_key,
    train_forest,
    training_checksum,
)

FORMAT = "xmmtools-photoz-tpz"
FORMAT_VERSION = 1

#: Z_FLAG bits (documented in docs/photoz.md).
FLAG_MISSING = 1  # at least one attribute missing
FLAG_NO_DATA = 2  # every attribute missing: no estimate
FLAG_EXTRAPOLATION = 4  # an attribute outside the training range
FLAG_RARE_PATTERN = 8  # this pattern of missing attributes had < MIN_PATTERN_ROWS training rows
FLAG_NOT_EXTRAGALACTIC = 16  # CLASS is not extragalactic: skipped

#: Widths (bins) tried by ``mode_smooth="auto"``: the Gaussian smoothing used only to locate the
#: mode Z_PHOT is the one with the lowest out-of-bag σNMAD of the training set (ties: the smaller).
MODE_SMOOTH_CANDIDATES = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0)


@dataclass
class Model:
    name: str
    attributes: list[str]
    error_columns: dict[str, str | None]
    missing: tuple[float, ...]
    forest: Forest
    ranges: np.ndarray  # (n_attr, 2) training min, max
    patterns: dict[int, int]  # missing-pattern bit mask -> training rows
    smooth: float = 0.0
    cut: float = 0.0
    rms_factor: float = 0.02
    mode_smooth: float = 3.0
    info: dict[str, Any] = field(default_factory=dict)
    #: after training: out-of-bag (PDFs, estimates) of the training rows (not saved)
    oob: tuple[np.ndarray, dict[str, np.ndarray]] | None = field(default=None, repr=False)

    @property
    def grid(self) -> Grid:
        return self.forest.grid

    # -- prediction -------------------------------------------------------------------------

    def pdfs(self, X: np.ndarray, n_jobs: int = 1) -> np.ndarray:
        """Normalised, post-processed PDFs (n, nzbins); NaN rows where every attribute is missing.

        Missing attributes: rows whose pattern of missing attributes was common in training
        (>= MIN_PATTERN_ROWS rows) follow the trees' learnt routing; rows with a rare or unseen
        pattern have the missing attributes marginalised (:meth:`Forest.pdf_marginal`), since
        the trees never learnt where such objects go and would send them down one default side.
        """
        X = np.asarray(X, dtype=float)
        none = np.isnan(X).all(axis=1)
        raw = self.forest.pdf(X, n_jobs=n_jobs)
        rare = self.rare_pattern(X) & ~none
        if rare.any():
            raw[rare] = self.forest.pdf_marginal(X[rare], n_jobs=n_jobs)
        p = normalise(raw)
        p[none] = np.nan
        return postprocess(p, smooth=self.smooth, cut=self.cut)

    def rare_pattern(self, X: np.ndarray) -> np.ndarray:
        """Rows with missing attributes in a pattern seen in fewer than MIN_PATTERN_ROWS training rows."""
        miss = np.isnan(X)
        keys = pattern_key(X)
        uniq, inv = np.unique(keys, return_inverse=True)
        seen = np.array([self.patterns.get(int(k), 0) >= MIN_PATTERN_ROWS for k in uniq])
        return ~seen[inv] & miss.any(axis=1)

    def flags(self, X: np.ndarray) -> np.ndarray:
        miss = np.isnan(X)
        flag = np.where(miss.any(axis=1), FLAG_MISSING, 0)
        flag |= np.where(miss.all(axis=1), FLAG_NO_DATA, 0)
        with np.errstate(invalid="ignore"):
            out = (self.ranges[:, 0] > X) | (self.ranges[:, 1] < X)
        flag |= np.where(out.any(axis=1), FLAG_EXTRAPOLATION, 0)
        flag |= np.where(self.rare_pattern(X) & ~miss.all(axis=1), FLAG_RARE_PATTERN, 0)
        return flag.astype(np.int16)

    def estimate(self, X: np.ndarray, n_jobs: int = 1) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(PDFs, {Z_PHOT, Z_MEAN, ..., Z_CONF, Z_FLAG}) for an attribute matrix."""
        p = self.pdfs(X, n_jobs=n_jobs)
        est = summarise(p, self.grid.edges, self.rms_factor, self.mode_smooth)
        est["Z_FLAG"] = self.flags(np.asarray(X, dtype=float))
        return p, est

    # -- files ------------------------------------------------------------------------------

    def save(self, path: str) -> tuple[str, str]:
        """Write ``path`` (.json) and the arrays beside it (.npz); returns both paths."""
        if not path.endswith(".json"):
            raise DataError(f"{path}: a model file name must end in .json (the arrays go beside it as .npz)")
        npz = path[:-5] + ".npz"
        f = self.forest
        arrays = {
            "node_offsets": np.concatenate([[0], np.cumsum([len(a) for a in f.left])]).astype(np.int64),
            "leaf_offsets": np.concatenate([[0], np.cumsum([len(a) - 1 for a in f.leaf_ptr])]).astype(np.int64),
            "member_offsets": np.concatenate([[0], np.cumsum([len(a) for a in f.leaf_bins])]).astype(np.int64),
            # scikit-learn grows depth first: a split node's left child is the next node, so only
            # the right child is stored, as an offset (0 marks a leaf)
            "right_step": np.concatenate([_right_step(lf, r) for lf, r in zip(f.left, f.right, strict=True)]),
            "feature": np.concatenate(f.feature).astype(np.int16),
            "threshold": np.concatenate(f.threshold).astype(np.float32),
            "nan_left": np.concatenate(f.nan_left).astype(bool),
            "leaf_sizes": np.concatenate([np.diff(p) for p in f.leaf_ptr]).astype(np.uint16),
            "leaf_bins": np.concatenate(f.leaf_bins).astype(np.uint8 if f.grid.nzbins <= 256 else np.uint16),
            "ranges": self.ranges.astype(np.float64),
        }
        _atomic_npz(npz, arrays)
        doc = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "arrays": os.path.basename(npz),
            "arrays_sha256": _sha256(npz),
            "attributes": self.attributes,
            "error_columns": self.error_columns,
            "missing_values": list(self.missing),
            "grid": {"zmin": f.grid.zmin, "zmax": f.grid.zmax, "nzbins": f.grid.nzbins},
            "parameters": {
                "NRandom": f.params.n_random,
                "NTrees": f.params.n_trees,
                "Natt": f.params.natt,
                "MinLeaf": f.params.min_leaf,
                "seed": f.params.seed,
                "leaf_weight": f.params.leaf_weight,
                "n_features": f.n_features,
            },
            "postprocess": {
                "smooth": self.smooth,
                "cut": self.cut,
                "RmsFactor": self.rms_factor,
                "mode_smooth": self.mode_smooth,
            },
            "missing_patterns": {str(k): v for k, v in sorted(self.patterns.items())},
            **self.info,
        }
        model_files.write_json(path, doc)
        return path, npz


def load_model(path: str) -> Model:
    """Read a model written by :meth:`Model.save` (JSON + NPZ, no pickle)."""
    doc = model_files.read_json(path, fmt=FORMAT, version=FORMAT_VERSION, what="photoz model")
    npz = os.path.join(os.path.dirname(path), doc["arrays"])
    a = model_files.read_npz(npz, doc.get("arrays_sha256"), json_path=path)
    try:
        g, prm = doc["grid"], doc["parameters"]
        grid = Grid(float(g["zmin"]), float(g["zmax"]), int(g["nzbins"]))
        params = ForestParams(
            prm["NRandom"], prm["NTrees"], prm["Natt"], prm["MinLeaf"], prm["seed"], prm.get("leaf_weight", "counts")
        )
        n_features = int(prm["n_features"])
        attributes = [str(x) for x in doc["attributes"]]
        dict(doc["error_columns"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{path}: photoz model is incomplete or malformed ({type(e).__name__}: {e})") from None
    check_forest_arrays(npz, a, grid, n_features)

    def split(name, offsets):
        o = a[offsets]
        return [a[name][o[i] : o[i + 1]] for i in range(len(o) - 1)]

    steps = split("right_step", "node_offsets")
    nodes = [np.arange(len(st), dtype=np.int32) for st in steps]
    left = [np.where(st > 0, i + 1, -1).astype(np.int32) for st, i in zip(steps, nodes, strict=True)]
    right = [np.where(st > 0, i + st, -1).astype(np.int32) for st, i in zip(steps, nodes, strict=True)]
    ptrs = [np.concatenate([[0], np.cumsum(sz, dtype=np.int64)]) for sz in split("leaf_sizes", "leaf_offsets")]
    forest = Forest(
        grid,
        params,
        int(prm["n_features"]),
        left,
        right,
        split("feature", "node_offsets"),
        split("threshold", "node_offsets"),
        split("nan_left", "node_offsets"),
        ptrs,
        split("leaf_bins", "member_offsets"),
    )
    del attributes
    known = {
        "format",
        "format_version",
        "name",
        "arrays",
        "arrays_sha256",
        "attributes",
        "error_columns",
        "missing_values",
        "grid",
        "parameters",
        "postprocess",
        "missing_patterns",
    }
    pp = doc.get("postprocess", {})
    return Model(
        doc.get("name", os.path.basename(path)),
        list(doc["attributes"]),
        dict(doc["error_columns"]),
        tuple(doc.get("missing_values", ())),
        forest,
        a["ranges"],
        {int(k): int(v) for k, v in doc.get("missing_patterns", {}).items()},
        float(pp.get("smooth", 0.0)),
        float(pp.get("cut", 0.0)),
        float(pp.get("RmsFactor", 0.02)),
        float(pp.get("mode_smooth", 0.0)),
        {k: v for k, v in doc.items() if k not in known},
    )


def check_forest_arrays(where: str, a: Mapping[str, np.ndarray], grid: Grid, n_features: int) -> None:
    """Structural checks of a forest's arrays before any row is processed (a crafted file
    with a valid checksum must not index outside its arrays): kinds and dimensions, offsets
    that start at 0, never decrease and end at their array's length, one offset per tree in
    each table, children inside their tree (right_step >= 0; a node's children follow it),
    split features in [0, n_features), finite split thresholds, a leaf count and a member
    count per tree that match the leaf and member tables, leaf bins in [0, nzbins), a grid
    with zmin < zmax and at least one bin."""
    if not (np.isfinite(grid.zmin) and np.isfinite(grid.zmax) and grid.zmin < grid.zmax):
        raise DataError(f"{where}: grid zmin {grid.zmin} must be below zmax {grid.zmax}")
    if not 1 <= grid.nzbins <= 1_000_000:
        raise DataError(f"{where}: grid nzbins {grid.nzbins} is not in [1, 10^6]")
    if n_features < 1:
        raise DataError(f"{where}: n_features {n_features} must be >= 1")
    model_files.check_arrays(
        where,
        a,
        {
            "node_offsets": ("iu", 1),
            "leaf_offsets": ("iu", 1),
            "member_offsets": ("iu", 1),
            "right_step": ("iu", 1),
            "feature": ("iu", 1),
            "threshold": ("f", 1),
            "nan_left": ("b", 1),
            "leaf_sizes": ("iu", 1),
            "leaf_bins": ("iu", 1),
            "ranges": ("f", 2),
        },
    )
    nodes = len(a["right_step"])
    for name in ("feature", "threshold", "nan_left"):
        if len(a[name]) != nodes:
            raise DataError(f"{where}: model array {name} has {len(a[name])} entries, right_step {nodes}")
    for name, table in (
        ("node_offsets", "right_step"),
        ("leaf_offsets", "leaf_sizes"),
        ("member_offsets", "leaf_bins"),
    ):
        o = a[name].astype(np.int64)
        if len(o) < 2 or o[0] != 0 or (np.diff(o) < 0).any() or o[-1] != len(a[table]):
            raise DataError(f"{where}: model array {name} is not a list of offsets from 0 to the length of {table}")
    n_trees = len(a["node_offsets"]) - 1
    if len(a["leaf_offsets"]) - 1 != n_trees or len(a["member_offsets"]) - 1 != n_trees:
        raise DataError(f"{where}: model arrays node_offsets, leaf_offsets, member_offsets disagree on the tree count")
    if (np.diff(a["node_offsets"]) < 1).any():
        raise DataError(f"{where}: model array node_offsets gives a tree without nodes")
    starts = a["node_offsets"][:-1].astype(np.int64)
    sizes: np.ndarray = np.diff(a["node_offsets"].astype(np.int64))
    tree = np.repeat(np.arange(n_trees), sizes)
    local = np.arange(nodes, dtype=np.int64) - starts[tree]
    step = a["right_step"].astype(np.int64)
    inner = step > 0
    if (step < 0).any() or (local[inner] + step[inner] >= sizes[tree[inner]]).any() or (step[inner] < 2).any():
        raise DataError(f"{where}: model array right_step points a node's children outside its tree")
    feat = a["feature"][inner].astype(np.int64)
    if feat.size and (feat.min() < 0 or feat.max() >= n_features):
        raise DataError(f"{where}: model array feature has split features outside [0, {n_features})")
    if not np.isfinite(a["threshold"][inner]).all():
        raise DataError(f"{where}: model array threshold has non-finite split thresholds")
    leaves = np.bincount(tree[~inner], minlength=n_trees)
    if not np.array_equal(leaves, np.diff(a["leaf_offsets"].astype(np.int64))):
        raise DataError(f"{where}: model array leaf_offsets disagrees with the leaves of the trees")
    sizes_l = a["leaf_sizes"].astype(np.int64)
    if (sizes_l < 0).any():
        raise DataError(f"{where}: model array leaf_sizes has negative sizes")
    per_tree = np.add.reduceat(sizes_l, a["leaf_offsets"][:-1].astype(np.int64)) if len(sizes_l) else np.zeros(n_trees)
    per_tree = np.where(np.diff(a["leaf_offsets"]) > 0, per_tree, 0)
    if not np.array_equal(per_tree, np.diff(a["member_offsets"].astype(np.int64))):
        raise DataError(f"{where}: model array member_offsets disagrees with leaf_sizes")
    bins = a["leaf_bins"]
    if bins.size and (bins.astype(np.int64).min() < 0 or bins.astype(np.int64).max() >= grid.nzbins):
        raise DataError(f"{where}: model array leaf_bins has bins outside [0, {grid.nzbins})")
    r = a["ranges"]
    if r.shape != (n_features, 2) or not np.isfinite(r).all():
        raise DataError(f"{where}: model array ranges must be {n_features} finite (min, max) pairs")


def train_model(
    name: str,
    attrs: AttributeSet,
    get: Callable[[str], np.ndarray],
    z: np.ndarray,
    grid: Grid,
    params: ForestParams,
    *,
    smooth: float = 0.0,
    cut: float = 0.0,
    rms_factor: float = 0.02,
    mode_smooth: float | str = "auto",
    importance: bool = True,
    oob: bool = True,
    n_jobs: int = 1,
    source: str = "training table",
    info: Mapping[str, Any] | None = None,
) -> Model:
    """Train a TPZ model on a table's columns (``get(column) -> array``) and measure it OOB.

    ``mode_smooth``: Gaussian width (bins) used only to locate the mode Z_PHOT, or ``"auto"``
    (default): the width from :data:`MODE_SMOOTH_CANDIDATES` that minimises the out-of-bag σNMAD
    of Z_PHOT on this training set (:func:`select_mode_smooth`; OOB error as a model-selection
    estimate, Breiman 2001).  The chosen width is stored in the model; nothing of the data the
    model is later evaluated on is used.  ``oob=False`` skips the stored OOB metrics but "auto"
    still computes the OOB PDFs it needs.
    """
    z = np.asarray(z, dtype=float)
    X, sigma = attrs.values(get)
    bad = ~np.isfinite(z)
    if bad.any():
        raise DataError(
            f"{source}: {bad.sum()} training rows have no valid spectroscopic redshift "
            f"(first at row {np.flatnonzero(bad)[0]}); remove them"
        )
    empty = np.isnan(X).all(axis=1)
    if empty.any():
        raise DataError(
            f"{source}: {empty.sum()} training rows have every attribute missing "
            f"(first at row {np.flatnonzero(empty)[0]}); remove them"
        )
    outside = (z < grid.zmin) | (z > grid.zmax)
    if outside.any():
        raise DataError(
            f"{source}: {outside.sum()} training redshifts lie outside the grid "
            f"[{grid.zmin}, {grid.zmax}] (range {z.min():.4g}-{z.max():.4g}); widen --zmin/--zmax"
        )
    if len(z) < 2 * params.min_leaf:
        raise DataError(f"{source}: {len(z)} training rows are too few for MinLeaf={params.min_leaf}")
    if params.n_random > 1:
        attrs.require_errors(source)
    forest, inbag = train_forest(X, z, sigma, attrs.coef, grid, params, n_jobs=n_jobs)
    keys, counts = np.unique(pattern_key(X), return_counts=True)
    ranges = np.column_stack([np.nanmin(X, axis=0), np.nanmax(X, axis=0)])
    auto = isinstance(mode_smooth, str)
    if auto and mode_smooth != "auto":
        raise DataError(f"photoz: mode smoothing must be 'auto' or a number of bins (got {mode_smooth!r})")
    model = Model(
        name,
        attrs.names,
        dict(attrs.error_columns),
        attrs.missing,
        forest,
        ranges,
        {int(k): int(c) for k, c in zip(keys, counts, strict=True)},
        smooth,
        cut,
        rms_factor,
        0.0 if auto else float(mode_smooth),
    )
    model.info = {
        "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "training": {
            "rows": int(len(z)),
            "checksum_sha256": training_checksum(X, z),
            "z_range": [float(z.min()), float(z.max())],
            **dict(info or {}),
        },
    }
    oob_pdfs = _oob_pdfs(model, X, inbag) if auto or oob else None
    if auto and oob_pdfs is not None:
        model.mode_smooth, scores = select_mode_smooth(oob_pdfs[0], model.grid.edges, z, model.rms_factor)
        model.info["mode_smooth_selection"] = {
            "method": "minimum out-of-bag sigma_NMAD of Z_PHOT on the training set (ties: smaller width)",
            "candidates_bins": list(MODE_SMOOTH_CANDIDATES),
            "oob_sigma_nmad": scores,
            "chosen_bins": model.mode_smooth,
        }
    if oob and oob_pdfs is not None:
        model.info["oob_metrics"], p, est = oob_estimates(model, X, z, inbag, oob_pdfs)
        est["Z_FLAG"] = model.flags(X)
        model.oob = (p, est)
    if oob and importance:
        model.info["permutation_importance"] = permutation_importance(model, X, z, inbag, params.seed)
    return model


def select_mode_smooth(
    p_oob: np.ndarray,
    edges: np.ndarray,
    z: np.ndarray,
    rms_factor: float = 0.02,
    candidates: Sequence[float] = MODE_SMOOTH_CANDIDATES,
) -> tuple[float, list[float]]:
    """Width (bins) of the Gaussian used to locate the mode that minimises σNMAD of Z_PHOT over
    the training rows' out-of-bag PDFs ``p_oob`` (first minimum = smaller width on ties).

    The OOB PDF of a training row only uses trees that did not see it, so this is an honest
    (internal) estimate of the error on new data (Breiman 2001), computed from the training set
    alone.  On the MGS training half the OOB σNMAD is 0.0169 at 0 bins, 0.01555 at 3, 0.01515 at 8
    (the minimum) and 0.0153 at 16; see docs/photoz.md.  Returns (width, σNMAD per candidate).
    """
    ok = ~np.isnan(p_oob).any(axis=1)
    if not ok.any():
        raise DataError(
            "photoz: --mode-smooth auto needs out-of-bag PDFs, but no training row has one "
            "(too few rows or trees); give --mode-smooth BINS"
        )
    scores = []
    for w in candidates:
        est = summarise(p_oob[ok], edges, rms_factor, float(w))
        scores.append(_metrics.point_metrics(est["Z_PHOT"], z[ok])["sigma_nmad"])
    best = min(range(len(candidates)), key=lambda i: (scores[i], candidates[i]))
    return float(candidates[best]), scores


def _oob_pdfs(model: Model, X: np.ndarray, inbag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    raw, n_trees = oob_pdf(model.forest, X, inbag)
    return postprocess(normalise(raw), smooth=model.smooth, cut=model.cut), n_trees


def oob_estimates(
    model: Model, X: np.ndarray, z: np.ndarray, inbag: np.ndarray, pdfs: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[dict, np.ndarray, dict]:
    """Out-of-bag metrics, PDFs and estimates of the training set (all realisations' trees;
    see tpz.oob_pdf).  ``pdfs``: (OOB PDFs, OOB trees per row) when already computed."""
    p, n_trees = pdfs if pdfs is not None else _oob_pdfs(model, X, inbag)
    est = summarise(p, model.grid.edges, model.rms_factor, model.mode_smooth)
    out = _metrics.all_metrics(p, model.grid.edges, z, est)
    out["oob_trees_median"] = float(np.median(n_trees))
    return out, p, est


def permutation_importance(
    model: Model, X: np.ndarray, z: np.ndarray, inbag: np.ndarray, seed: int
) -> dict[str, dict[str, float]]:
    """Breiman (2001) permutation importance on out-of-bag PDFs.

    Each attribute's column is permuted among the training rows, and the rise of the OOB
    mean CRPS and σNMAD over the unpermuted OOB values is reported (larger = more important).
    """
    base = _oob_scores(model, X, z, inbag)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    out = {}
    for j, name in enumerate(model.attributes):
        Xp = X.copy()
        Xp[:, j] = X[rng.permutation(len(X)), j]
        s = _oob_scores(model, Xp, z, inbag)
        out[name] = {"delta_crps": s[0] - base[0], "delta_sigma_nmad": s[1] - base[1]}
    return out


def _oob_scores(model, X, z, inbag):
    raw, _ = oob_pdf(model.forest, X, inbag)
    p = postprocess(normalise(raw), smooth=model.smooth, cut=model.cut)
    ok = ~np.isnan(p).any(axis=1)
    est = summarise(p[ok], model.grid.edges, model.rms_factor, model.mode_smooth)
    crps = float(np.mean(_metrics.crps(p[ok], model.grid.edges, z[ok])))
    return crps, _metrics.point_metrics(est["Z_PHOT"], z[ok])["sigma_nmad"]


def _right_step(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    idx = np.arange(len(left))
    inner = left >= 0
    if not np.array_equal(left[inner], idx[inner] + 1):  # pragma: no cover - scikit-learn's layout
        raise DataError("photoz: unexpected tree layout (left child is not the next node); cannot save")
    return np.where(inner, right - idx, 0).astype(np.int32)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for b in iter(lambda: fh.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def _atomic_npz(path: str, arrays: Mapping[str, np.ndarray]) -> None:
    model_files.write_atomic(path, model_files.npz_bytes(arrays))


def parse_attributes(text: str | Sequence[str]) -> list[str]:
    items = [text] if isinstance(text, str) else list(text)
    return [a.strip() for item in items for a in item.split(",") if a.strip()]


def cross_validate(
    attrs: AttributeSet,
    get: Callable[[str], np.ndarray],
    z: np.ndarray,
    grid: Grid,
    params: ForestParams,
    *,
    folds: int = 5,
    seed: int = 20261121,
    n_jobs: int = 1,
    **model_options,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict]:
    """K-fold cross-validation: pooled out-of-fold PDFs, estimates and metrics.

    Rows are shuffled with ``default_rng(seed)`` and split into ``folds`` parts; each part is
    predicted by a model trained on the others (no stored OOB metrics, no importance).  With
    ``mode_smooth="auto"`` (the default) each fold's width is chosen from that fold's own
    training OOB PDFs (nested: the held-out part is never used); the chosen widths are
    returned as ``metrics["mode_smooth_folds"]``.
    """
    z = np.asarray(z, dtype=float)
    n = len(z)
    order = np.random.default_rng(seed).permutation(n)
    X, _ = attrs.values(get)
    pdfs = np.full((n, grid.nzbins), np.nan)
    est: dict[str, np.ndarray] = {}
    widths = []
    for k, test in enumerate(np.array_split(order, folds)):
        train = np.sort(np.setdiff1d(order, test))
        m = train_model(
            f"fold{k}",
            attrs,
            taking_rows(get, train),
            z[train],
            grid,
            params,
            importance=False,
            oob=False,
            n_jobs=n_jobs,
            source=f"fold {k}",
            **model_options,
        )
        widths.append(m.mode_smooth)
        p, e = m.estimate(X[test], n_jobs=n_jobs)
        pdfs[test] = p
        for key, v in e.items():
            est.setdefault(key, np.full(n, np.nan) if v.dtype.kind == "f" else np.zeros(n, v.dtype))[test] = v
    return pdfs, est, {**_metrics.all_metrics(pdfs, grid.edges, z, est), "mode_smooth_folds": widths}


#: Models shipped in src/xmmtools/data/models/photoz/ (rebuilt by ``python -m xmmtools.photoz.defaults``).
SHIPPED = ("galaxy", "agn")


def model_path(name_or_path: str) -> str:
    """Path of a shipped model (``galaxy``, ``agn``) or of a model file given by the user."""
    if name_or_path in SHIPPED:
        from importlib import resources

        return str(resources.files("xmmtools") / "data" / "models" / "photoz" / f"{name_or_path}.json")
    return name_or_path
