"""Classification of X-ray sources: CLAXBOI-style naive Bayes (Tranin et al. 2022, A&A 657, A138).

Kept light (no scipy / scikit-learn): ``xmmtools info`` imports this package to list the
columns the shipped default model needs.

    from xmmtools.classify import load_model, classify_arrays
"""

from __future__ import annotations

from xmmtools.stages import register


def _default_spec():
    import json

    from xmmtools.classify.apply import stage_spec
    from xmmtools.classify.features import FeatureSet, default_feature_set_path, load_feature_set
    from xmmtools.classify.model_io import default_model_path

    try:
        doc = json.loads(default_model_path().read_text())
        return stage_spec(FeatureSet.from_json(doc["features"]))
    except (OSError, KeyError, ValueError):
        return stage_spec(load_feature_set(default_feature_set_path("xclass")))


register(_default_spec())


def __getattr__(name):  # lazy public API
    if name in ("load_model", "save_model", "default_model_path"):
        from xmmtools.classify import model_io

        return getattr(model_io, name)
    if name in ("classify_arrays", "classify_features", "stage_spec"):
        from xmmtools.classify import apply

        return getattr(apply, name)
    if name in ("train_model", "cross_validate", "FitOptions", "prepare_labels"):
        from xmmtools.classify import training

        return getattr(training, name)
    if name in ("load_feature_set", "compute_features", "default_feature_set_path"):
        from xmmtools.classify import features

        return getattr(features, name)
    raise AttributeError(name)
