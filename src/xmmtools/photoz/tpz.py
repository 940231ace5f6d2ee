"""TPZ: random forests of prediction trees giving redshift PDFs.

Carrasco Kind & Brunner 2013, MNRAS 432, 1483 (hereafter CKB13; the MLZ 1.2 code):

* NRandom realisations of the training set, realisation 0 unperturbed, the others with every
  measured magnitude drawn from N(x, clip(σ, 0.001, 0.3)) and colours following their
  magnitudes (CKB13 Sect. 3; :func:`xmmtools.photoz.attributes.perturb`);
* NTrees regression trees per realisation, each grown on a bootstrap sample, Natt attributes
  tried at each split (``max_features``), at least MinLeaf objects per leaf (CKB13 Sect. 3, Breiman 2001);
* a leaf keeps the (bootstrap) training redshifts that reached it, binned once on the model's
  redshift grid; a source's PDF is the sum over trees of its leaves' histograms (CKB13 Sect. 3),
  computed as a vectorised gather-and-sum over precomputed per-leaf histograms.

The trees are scikit-learn ``DecisionTreeRegressor`` (C, O(N log N) growth).  They are kept as
plain arrays (children, feature, threshold, missing-value direction) so models are written as
NPZ + JSON and never pickled; prediction rebuilds scikit-learn's Cython ``Tree`` from those
arrays for fast traversal (its state layout is internal to scikit-learn: should a release
change it, the trees are walked in numpy instead, with the same leaves, only slower).

Missing bands: the trees are NaN-aware (scikit-learn ≥ 1.3 learns, at each split, on which side
objects lacking that attribute go).  Nothing is imputed; rows with missing attributes are
flagged.  Rows whose pattern of missing attributes was rare or absent in training (flagged
separately) would only follow a default side at such splits: for them the missing attributes
are marginalised instead, going down both branches weighted by the training fractions
(:meth:`Forest.pdf_marginal`, C4.5's fractional cases, Quinlan 1993).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from xmmtools.errors import DataError
from xmmtools.photoz.attributes import perturb

#: Number of training rows below which a missing-attribute pattern counts as unseen.
MIN_PATTERN_ROWS = 10
#: Marginalising a missing attribute, branches below this share of the object are dropped
#: (the PDF is renormalised; the share lost per tree is at most depth x this).
MIN_BRANCH_WEIGHT = 1e-3


@dataclass(frozen=True)
class Grid:
    """Redshift grid shared by every leaf histogram: ``nzbins`` bins from ``zmin`` to ``zmax``."""

    zmin: float
    zmax: float
    nzbins: int

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(self.zmin, self.zmax, self.nzbins + 1)

    @property
    def centres(self) -> np.ndarray:
        e = self.edges
        return 0.5 * (e[:-1] + e[1:])

    def bin_of(self, z: np.ndarray) -> np.ndarray:
        k = np.floor((np.asarray(z, float) - self.zmin) / (self.zmax - self.zmin) * self.nzbins).astype(np.int64)
        return np.clip(k, 0, self.nzbins - 1)


@dataclass(frozen=True)
class ForestParams:
    """TPZ's parameters, with MLZ's names in the comments."""

    n_random: int = 4  # NRandom: realisations of the training set (1 = no perturbation)
    n_trees: int = 25  # NTrees: trees per realisation
    natt: int = 3  # Natt: attributes tried per split
    min_leaf: int = 5  # MinLeaf: minimum objects per leaf
    seed: int = 20131483  # all randomness derives from this
    leaf_weight: str = "counts"  # 'counts' (MLZ: each leaf redshift counts once) or 'tree' (each tree sums to 1)

    def check(self) -> None:
        for k in ("n_random", "n_trees", "natt", "min_leaf"):
            if getattr(self, k) < 1:
                raise DataError(f"photoz: {k} must be >= 1 (got {getattr(self, k)})")
        if self.leaf_weight not in ("counts", "tree"):
            raise DataError(f"photoz: leaf weight must be 'counts' or 'tree' (got {self.leaf_weight!r})")


@dataclass
class Forest:
    """A trained TPZ forest: tree arrays plus per-leaf redshift histograms on ``grid``."""

    grid: Grid
    params: ForestParams
    n_features: int
    left: list[np.ndarray]
    right: list[np.ndarray]
    feature: list[np.ndarray]
    threshold: list[np.ndarray]
    nan_left: list[np.ndarray]
    leaf_ptr: list[np.ndarray]  # per tree: CSR pointer over leaves (in node order)
    leaf_bins: list[np.ndarray]  # per tree: redshift-bin index of each leaf member
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_trees(self) -> int:
        return len(self.left)

    # -- prediction -------------------------------------------------------------------------

    def pdf(self, X: np.ndarray, n_jobs: int = 1, trees: Sequence[int] | None = None) -> np.ndarray:
        """Raw (unnormalised) PDFs on the grid: Σ_trees histogram(leaf(x)), shape (n, nzbins).

        CKB13: every tree sends the object to one leaf; the redshifts stored in the
        leaves of all trees form its PDF.  Rows of ``X`` with NaN go where the trees learnt.
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        idx = range(self.n_trees) if trees is None else trees
        if n_jobs == 1 or len(X) < 4096:
            return self._pdf_block(X, idx)
        from joblib import Parallel, delayed

        blocks = np.array_split(np.arange(len(X)), n_jobs)
        parts = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(self._pdf_block)(X[b], idx) for b in blocks)
        return np.concatenate(parts)

    def pdf_marginal(self, X: np.ndarray, trees: Sequence[int] | None = None, n_jobs: int = 1) -> np.ndarray:
        """Raw PDFs where a missing attribute is marginalised instead of routed: at a split on
        an attribute the object lacks, it goes down both branches, weighted by the fractions of
        the tree's (bootstrap) training objects that went each way (Quinlan 1993, C4.5's
        fractional cases).  Rows without NaN get exactly :meth:`pdf`."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        idx = list(range(self.n_trees) if trees is None else trees)
        if n_jobs == 1 or len(X) < 512:
            return self._marginal_block(X, idx)
        from joblib import Parallel, delayed

        blocks = np.array_split(np.arange(len(X)), n_jobs)
        parts = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(self._marginal_block)(X[b], idx) for b in blocks)
        return np.concatenate(parts)

    def _marginal_block(self, X: np.ndarray, trees) -> np.ndarray:
        from scipy.sparse import coo_array

        acc = np.zeros((len(X), self.grid.nzbins), np.float32)
        for t in trees:
            hist, leaf_row = self._leaf_hist(t)
            rows, nodes, w = self._descend(t, X)
            # (rows x leaves) weights times the leaf histograms: each row's weighted leaf sum
            acc += coo_array((w.astype(np.float32), (rows, leaf_row[nodes])), shape=(len(X), len(hist))) @ hist
        return acc

    def _descend(self, t: int, X: np.ndarray, min_weight: float = MIN_BRANCH_WEIGHT):
        left, right, feat, thr = self.left[t], self.right[t], self.feature[t], self.threshold[t]
        size = self._subtree_sizes(t)
        rows = np.arange(len(X))
        node = np.zeros(len(X), np.int64)
        w = np.ones(len(X))
        out_r, out_n, out_w = [], [], []
        while len(rows):
            leaf = left[node] < 0
            if leaf.any():
                out_r.append(rows[leaf])
                out_n.append(node[leaf])
                out_w.append(w[leaf])
                rows, node, w = rows[~leaf], node[~leaf], w[~leaf]
                if not len(rows):
                    break
            x = X[rows, feat[node]]
            miss = np.isnan(x)
            nxt = np.where(x <= thr[node], left[node], right[node])
            if miss.any():
                m = node[miss]
                fl = size[left[m]] / size[m]
                rows = np.concatenate([rows[~miss], rows[miss], rows[miss]])
                node = np.concatenate([nxt[~miss], left[m], right[m]])
                w = np.concatenate([w[~miss], w[miss] * fl, w[miss] * (1.0 - fl)])
                if min_weight > 0:  # branches carrying a negligible share of the object
                    keep = w >= min_weight
                    rows, node, w = rows[keep], node[keep], w[keep]
            else:
                node = nxt
        return np.concatenate(out_r), np.concatenate(out_n), np.concatenate(out_w)

    def _subtree_sizes(self, t: int) -> np.ndarray:
        """Training (bootstrap) objects under every node of tree t, from its leaves' counts."""
        key = ("size", t)
        if key not in self._cache:
            left, right = self.left[t], self.right[t]
            size = np.zeros(len(left))
            leaves = np.flatnonzero(left < 0)
            size[leaves] = np.diff(self.leaf_ptr[t])
            # children have larger indices than their parent in scikit-learn's depth-first layout
            for i in np.flatnonzero(left >= 0)[::-1]:
                size[i] = size[left[i]] + size[right[i]]
            self._cache[key] = size
        return self._cache[key]

    def _pdf_block(self, X: np.ndarray, trees, block: int = 8192) -> np.ndarray:
        """Gather-and-sum over trees, ``block`` rows at a time so the running sum stays in cache."""
        trees = list(trees)
        tables = [self._leaf_hist(t) for t in trees]
        acc = np.zeros((len(X), self.grid.nzbins), np.float32)
        tmp = np.empty((min(block, len(X)), self.grid.nzbins), np.float32)
        for lo in range(0, len(X), block):
            xb, out = X[lo : lo + block], acc[lo : lo + block]
            buf = tmp[: len(xb)]
            for t, (hist, leaf_row) in zip(trees, tables, strict=True):
                np.take(hist, leaf_row[self.leaves(t, xb)], axis=0, out=buf)
                out += buf
        return acc

    def apply(self, t: int, X: np.ndarray) -> np.ndarray:
        """Leaf (row of the tree's leaf-histogram table) reached by each row of X in tree t."""
        _, leaf_row = self._leaf_hist(t)
        return leaf_row[self.leaves(t, np.ascontiguousarray(X, dtype=np.float32))]

    def leaves(self, t: int, X: np.ndarray) -> np.ndarray:
        """Leaf node reached by each (float32, C-ordered) row of X in tree t, NaN going where the
        tree learnt: scikit-learn's compiled traversal, or the same walk in numpy when this
        scikit-learn cannot rebuild its Tree from our arrays (its state layout is internal)."""
        tree = self.tree(t)
        return tree.apply(X) if tree is not None else self._leaves_numpy(t, X)

    def tree(self, t: int):
        """scikit-learn's Cython Tree rebuilt from the stored arrays (cached), or None."""
        key = ("tree", t)
        if key not in self._cache:
            try:
                self._cache[key] = _sk_tree(
                    self.n_features, self.left[t], self.right[t], self.feature[t], self.threshold[t], self.nan_left[t]
                )
            except Exception:  # a scikit-learn whose Tree state differs: walk in numpy instead
                self._cache[key] = None
        return self._cache[key]

    def _leaves_numpy(self, t: int, X: np.ndarray) -> np.ndarray:
        left, right, feat, thr, nan_left = (
            self.left[t],
            self.right[t],
            self.feature[t],
            self.threshold[t],
            self.nan_left[t],
        )
        node = np.zeros(len(X), np.int64)
        active = np.arange(len(X))
        while len(active):
            n = node[active]
            inner = left[n] >= 0
            active, n = active[inner], n[inner]
            x = X[active, feat[n]]
            go_left = np.where(np.isnan(x), nan_left[n], x <= thr[n])
            node[active] = np.where(go_left, left[n], right[n])
        return node

    def _leaf_hist(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-leaf histograms of tree t (n_leaves, nzbins) and the node -> leaf-row map."""
        key = ("hist", t)
        if key not in self._cache:
            ptr, bins = self.leaf_ptr[t], self.leaf_bins[t]
            n_leaves = len(ptr) - 1
            owner = np.repeat(np.arange(n_leaves), np.diff(ptr))
            flat = np.bincount(owner * self.grid.nzbins + bins.astype(np.int64), minlength=n_leaves * self.grid.nzbins)
            hist = flat.reshape(n_leaves, self.grid.nzbins).astype(np.float32)
            if self.params.leaf_weight == "tree":
                hist /= np.maximum(np.diff(ptr), 1)[:, None].astype(np.float32)
            leaf_row = np.full(len(self.left[t]), -1, np.int64)
            leaves = np.flatnonzero(self.left[t] < 0)
            leaf_row[leaves] = np.arange(len(leaves))
            self._cache[key] = (hist, leaf_row)
        return self._cache[key]


def train_forest(
    X: np.ndarray,
    z: np.ndarray,
    sigma: np.ndarray,
    coef: np.ndarray,
    grid: Grid,
    params: ForestParams,
    *,
    n_jobs: int = 1,
) -> tuple[Forest, np.ndarray]:
    """Grow a TPZ forest; returns it and the in-bag counts (n_trees_total, n) for OOB use.

    ``X`` (n, n_attr) attributes with NaN for missing; ``z`` spectroscopic redshifts;
    ``sigma`` (n, n_bases) clipped errors of the measured bases and ``coef`` how each
    attribute depends on them (see :mod:`xmmtools.photoz.attributes`).

    Seeds: realisation r and tree t draw from ``SeedSequence(seed).spawn`` children, so the
    forest is bit-identical for a seed whatever ``n_jobs`` is.
    """
    params.check()
    n, p = X.shape
    if params.natt > p:
        raise DataError(f"photoz: Natt={params.natt} is more than the {p} attributes")
    jobs = [(Xr, ts) for Xr, seeds in realisations(X, sigma, coef, params) for ts in seeds]

    def grow(Xr, ts):
        from sklearn.tree import DecisionTreeRegressor

        rng = np.random.default_rng(ts)
        boot = rng.integers(0, n, n)
        state = int(rng.integers(0, 2**31 - 1))
        reg = DecisionTreeRegressor(max_features=params.natt, min_samples_leaf=params.min_leaf, random_state=state)
        Xb = Xr[boot]
        reg.fit(Xb, z[boot])
        tr = reg.tree_
        leaf_nodes = tr.apply(Xb)
        order = np.argsort(leaf_nodes, kind="stable")
        leaves = np.flatnonzero(tr.children_left < 0)
        counts = np.bincount(leaf_nodes, minlength=tr.node_count)[leaves]
        ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        bins = grid.bin_of(z[boot][order])
        nan_left = (
            tr.missing_go_to_left.astype(bool) if hasattr(tr, "missing_go_to_left") else np.zeros(tr.node_count, bool)
        )
        inbag = np.bincount(boot, minlength=n).astype(np.uint16)
        return (
            tr.children_left.astype(np.int32),
            tr.children_right.astype(np.int32),
            tr.feature.astype(np.int16),
            float32_floor(tr.threshold),
            nan_left,
            ptr,
            bins.astype(np.uint16),
            inbag,
        )

    if n_jobs == 1:
        out = [grow(*j) for j in jobs]
    else:
        from joblib import Parallel, delayed

        out = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(grow)(*j) for j in jobs)
    left, right, feature, threshold, nan_left, leaf_ptr, leaf_bins = (
        list(col) for col in zip(*[o[:7] for o in out], strict=True)
    )
    forest = Forest(grid, params, p, left, right, feature, threshold, nan_left, leaf_ptr, leaf_bins)
    inbag = np.stack([o[7] for o in out])
    return forest, inbag


def realisations(X: np.ndarray, sigma: np.ndarray, coef: np.ndarray, params: ForestParams):
    """Yield (X_r as float32, seeds of its NTrees trees) for r = 0 .. NRandom − 1.

    Realisation 0 is the measured training set; the others are drawn with
    :func:`~xmmtools.photoz.attributes.perturb` (magnitudes from N(x, σ), colours following).
    """
    for r, rs in enumerate(np.random.SeedSequence(params.seed).spawn(params.n_random)):
        noise_seed, tree_root = rs.spawn(2)
        Xr = X if r == 0 else perturb(X, sigma, coef, np.random.default_rng(noise_seed))
        yield np.ascontiguousarray(Xr, dtype=np.float32), tree_root.spawn(params.n_trees)


def oob_pdf(forest: Forest, X: np.ndarray, inbag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-bag PDFs of the training rows, from *all* realisations' trees.

    Row i is predicted, with its measured (unperturbed) attributes, by every tree whose
    bootstrap did not draw object i — in any realisation (MLZ's OOB uses realisation 0 only).
    Returns (raw PDFs (n, nzbins), number of trees that contributed per row).
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    acc = np.zeros((len(X), forest.grid.nzbins), np.float32)
    for t in range(forest.n_trees):
        rows = np.flatnonzero(inbag[t] == 0)
        hist, _ = forest._leaf_hist(t)
        acc[rows] += hist[forest.apply(t, X[rows])]
    return acc, (inbag == 0).sum(axis=0)


def float32_floor(x: np.ndarray) -> np.ndarray:
    """Largest float32 <= x.  The trees compare float32 inputs with ``v <= threshold``, and for a
    float32 v that is exactly ``v <= float32_floor(threshold)``: thresholds can be stored in
    float32 without changing a single split."""
    f = np.asarray(x, dtype=np.float64).astype(np.float32)
    up = f.astype(np.float64) > x
    f[up] = np.nextafter(f[up], np.float32(-np.inf))
    return f


def pattern_key(X: np.ndarray) -> np.ndarray:
    """Missing-attribute pattern of each row as an integer bit mask (bit j: attribute j missing)."""
    miss = np.isnan(X)
    return (miss * (1 << np.arange(X.shape[1], dtype=np.int64))).sum(axis=1)


def training_checksum(X: np.ndarray, z: np.ndarray) -> str:
    """sha256 of the training matrix and redshifts (float64, C order)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(X, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(z, dtype=np.float64).tobytes())
    return h.hexdigest()


def _sk_tree(n_features, left, right, feature, threshold, nan_left):
    """Rebuild scikit-learn's Cython ``Tree`` from arrays (its documented state layout)."""
    from sklearn.tree._tree import NODE_DTYPE, Tree

    nodes = np.zeros(len(left), dtype=NODE_DTYPE)
    nodes["left_child"] = left
    nodes["right_child"] = right
    nodes["feature"] = np.where(left < 0, -2, feature)
    nodes["threshold"] = np.where(left < 0, -2.0, threshold)
    nodes["n_node_samples"] = 1
    nodes["weighted_n_node_samples"] = 1.0
    if "missing_go_to_left" in NODE_DTYPE.names:
        nodes["missing_go_to_left"] = nan_left
    elif nan_left.any():  # pragma: no cover - old scikit-learn
        raise DataError("this model routes missing values; it needs scikit-learn >= 1.3")
    tree = Tree(n_features, np.array([1], dtype=np.intp), 1)
    depth = _depth(left, right)
    tree.__setstate__(
        {"max_depth": depth, "node_count": len(left), "nodes": nodes, "values": np.zeros((len(left), 1, 1))}
    )
    return tree


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Depth of the tree, walking it level by level."""
    frontier, depth = np.array([0]), 0
    while True:
        inner = frontier[left[frontier] >= 0]
        if not len(inner):
            return depth
        frontier = np.concatenate([left[inner], right[inner]])
        depth += 1
