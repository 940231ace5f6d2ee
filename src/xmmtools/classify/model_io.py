"""Model files: a JSON document (readable, versioned) plus an NPZ of arrays — never pickle.

``model.json`` holds the format name and version, classes, priors, feature set (every feature's
definition and band zero points), density settings, category weights, outlier quantile and
threshold (and, when the quantile was chosen by leave-class-out for a target false-flag rate,
``outlier.selection``: that rate, the quantile, the false-flag rate and recall it achieved, per
left-out class recall and AUROC; older files without it load unchanged), the training file's
name, row count and SHA-256, the k-fold metrics, and the name and SHA-256 of the NPZ beside it.
``model.npz`` (loaded with ``allow_pickle=False``) holds the tabulated densities and presence
terms, the feature and class names, and the out-of-fold feature log-likelihoods of the training
rows (the outlier reference).  Loading checks the format, the version, the NPZ checksum and that
the NPZ's feature and class lists equal the JSON's; any mismatch is a one-line DataError.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from xmmtools import __version__, model_files
from xmmtools.classify.features import FeatureSet
from xmmtools.classify.naive_bayes import Densities, Model, Settings
from xmmtools.errors import DataError, OutputError

FORMAT = "xmmtools-classify-naive-bayes"
FORMAT_VERSION = 1
_ARRAYS = ("lo", "hi", "log_density", "log_present", "log_missing", "log_neutral", "histogram")


def default_model_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("xmmtools") / "data" / "models" / "classify" / "default.json"))


def save_model(model: Model, path: str | os.PathLike, *, overwrite: bool = False) -> tuple[str, str]:
    """Write ``path`` (.json) and its NPZ beside it (same stem).  Returns both paths."""
    path = str(path)
    if not path.endswith(".json"):
        raise OutputError(f"{path}: a model file name must end in .json (its arrays go to a .npz beside it)")
    npz_path = path[:-5] + ".npz"
    for p in (path, npz_path):
        if os.path.exists(p) and not overwrite:
            raise OutputError(f"{p} exists; use --overwrite to replace it")
    d = model.densities
    blob = model_files.npz_bytes(
        {
            **{k: getattr(d, k) for k in _ARRAYS},
            "feature_names": np.array(model.feature_set.names, dtype=str),
            "classes": np.array(model.classes, dtype=str),
            "reference_ll": np.asarray(model.reference_ll, float),
        }
    )
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "xmmtools": __version__,
        "method": "naive_bayes (Tranin et al. 2022, A&A 657, A138)",
        "classes": list(model.classes),
        "priors": dict(zip(model.classes, map(float, model.priors), strict=True)),
        "training_fractions": dict(zip(model.classes, map(float, model.training_fractions), strict=True)),
        "category_weights": dict(zip(model.feature_set.categories, map(float, model.weights), strict=True)),
        "settings": asdict(model.settings),
        "outlier": {
            "quantile": model.outlier_quantile,
            "threshold": model.outlier_threshold,
            "n_training_scores": int(len(model.reference_ll)),
            **({"selection": model.outlier_selection} if model.outlier_selection else {}),
        },
        "features": model.feature_set.to_json(),
        "training": model.training,
        "metrics": model.metrics,
        "arrays": {"file": os.path.basename(npz_path), "sha256": model_files.sha256(blob)},
    }
    model_files.write_atomic(npz_path, blob)
    model_files.write_json(path, doc)
    return path, npz_path


def load_model(path: str | os.PathLike) -> Model:
    path = str(path)
    doc = model_files.read_json(path, fmt=FORMAT, version=FORMAT_VERSION, what="xmmtools classify model")
    try:
        arrays = doc["arrays"]
        npz_path = (path[:-5] if path.endswith(".json") else path) + ".npz"  # same stem, renamed pairs work
        classes = tuple(doc["classes"])
        fs = FeatureSet.from_json(doc["features"], path)
        settings = Settings(**doc["settings"])
        weights = np.array([doc["category_weights"][k] for k in fs.categories], float)
        priors = np.array([doc["priors"][c] for c in classes], float)
        train_frac = np.array([doc["training_fractions"][c] for c in classes], float)
        quantile = float(doc["outlier"]["quantile"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: model file is incomplete or malformed ({type(e).__name__}: {e})") from None
    a = model_files.read_npz(npz_path, arrays.get("sha256"), json_path=path)
    if list(a.get("feature_names", [])) != fs.names:
        raise DataError(
            f"{path}: the feature list in the JSON ({', '.join(fs.names)}) does not match "
            f"the arrays in {os.path.basename(npz_path)}"
        )
    if tuple(a.get("classes", [])) != classes:
        raise DataError(f"{path}: the class list in the JSON does not match {os.path.basename(npz_path)}")
    F, C = len(fs.names), len(classes)
    _check_model(path, a, F, C, priors, train_frac, weights, quantile)
    dens = Densities(**{k: a[k] for k in _ARRAYS})
    return Model(
        fs,
        classes,
        dens,
        weights,
        priors,
        train_frac,
        a["reference_ll"],
        settings,
        quantile,
        doc.get("training", {}),
        doc.get("metrics", {}),
        doc["outlier"].get("selection", {}),
    )


def _check_model(
    path: str,
    a: dict[str, np.ndarray],
    F: int,
    C: int,
    priors: np.ndarray,
    train_frac: np.ndarray,
    weights: np.ndarray,
    quantile: float,
) -> None:
    """Structural checks before any row is classified: array kinds and shapes for F features
    x C classes, finite densities and likelihood terms, priors finite and > 0, category
    weights finite and >= 0 (0 switches a category off), outlier quantile in [0, 1]."""
    model_files.check_arrays(
        path,
        a,
        {
            "lo": ("f", 1),
            "hi": ("f", 1),
            "log_density": ("f", 3),
            "log_present": ("f", 2),
            "log_missing": ("f", 2),
            "log_neutral": ("f", 1),
            "histogram": ("b", 2),
            "reference_ll": ("f", 3),
        },
    )
    shapes = {
        "lo": (F,),
        "hi": (F,),
        "log_present": (F, C),
        "log_missing": (F, C),
        "log_neutral": (F,),
        "histogram": (F, C),
    }
    for name, shape in shapes.items():
        if a[name].shape != shape:
            raise DataError(
                f"{path}: model array {name} has shape {a[name].shape}, expected {shape} ({F} features x {C} classes)"
            )
    if a["log_density"].shape[:2] != (F, C) or a["log_density"].shape[2] < 2:
        raise DataError(
            f"{path}: model array log_density has shape {a['log_density'].shape}, expected ({F}, {C}, grid)"
        )
    if a["reference_ll"].shape[1:] != (F, C):
        raise DataError(f"{path}: model array reference_ll has shape {a['reference_ll'].shape}, expected (N, {F}, {C})")
    for name in ("lo", "hi", "log_density", "log_present", "log_missing", "log_neutral"):
        if not np.isfinite(a[name]).all():
            raise DataError(f"{path}: model array {name} has non-finite values")
    if (a["lo"] > a["hi"]).any():
        raise DataError(f"{path}: model arrays lo/hi: a feature's lower limit is above its upper limit")
    if (a["log_present"] > 0).any() or (a["log_missing"] > 0).any():
        raise DataError(f"{path}: model arrays log_present/log_missing hold probabilities above 1")
    if not (np.isfinite(priors).all() and (priors > 0).all()):
        raise DataError(f"{path}: class priors must be finite and positive (got {priors.tolist()})")
    if not (np.isfinite(train_frac).all() and (train_frac >= 0).all()):
        raise DataError(f"{path}: training fractions must be finite and >= 0 (got {train_frac.tolist()})")
    if not (np.isfinite(weights).all() and (weights >= 0).all()):
        raise DataError(f"{path}: category weights must be finite and >= 0 (got {weights.tolist()})")
    if not 0.0 <= quantile <= 1.0:
        raise DataError(f"{path}: outlier quantile {quantile!r} is not in [0, 1]")
