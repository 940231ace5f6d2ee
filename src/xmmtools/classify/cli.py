"""``xmmtools classify``: apply (default), ``train``, ``evaluate`` and ``votes`` (thin wiring only).

``xmmtools classify CAT`` is short for ``xmmtools classify apply CAT``; a catalogue file that is
literally called ``train`` or ``evaluate`` can be given as ``xmmtools classify apply train``.
"""

from __future__ import annotations

import json
import os

import click

from xmmtools.cli import common_options, engine_options, output_options, pass_settings
from xmmtools.cli.lazy import DefaultApplyGroup

SHIPPED_FEATURE_SETS = ("xclass", "4xmm", "cscv2")


class _DefaultToApply(DefaultApplyGroup):
    """A group whose first argument, when it is not a subcommand, goes to ``apply``."""

    def format_usage(self, ctx, formatter):
        formatter.write_usage(ctx.command_path, "CAT [-o OUT] [OPTIONS] | train | evaluate | votes ...")


@click.group(cls=_DefaultToApply, invoke_without_command=False)
def classify():
    """Class probabilities and outlier scores (naive Bayes, Tranin et al. 2022, A&A 657, A138).

    \b
    xmmtools classify CAT [-o OUT]     apply the shipped model (or --model FILE)
    xmmtools classify train ...        fit a model on a labelled table
    xmmtools classify evaluate ...     held-out metrics (k-fold) or a model on labelled data
    xmmtools classify votes ...        consensus labels from volunteer votes

    \b
    Example:
      xmmtools classify data/sample/4xmm_dr10_ngc5139.fits -o ngc5139_classes.fits
    """


# -----------------------------------------------------------------------------------------
# apply
# -----------------------------------------------------------------------------------------


@classify.command("apply")
@click.argument("input")
@click.option("-o", "--output", default=None, help="Output table (default INPUT_classify.EXT); '-' = stdout.")
@click.option(
    "--model",
    "model_path",
    default=None,
    metavar="MODEL.json",
    help="Model file (default: the shipped 4XMM-DR13 AGN/STAR/OTHER model).",
)
@click.option(
    "--priors",
    default=None,
    metavar="CLASS=F,...",
    help="Target-population class fractions, e.g. AGN=0.66,STAR=0.25,OTHER=0.09 (default: the model's).",
)
@click.option(
    "--outlier-quantile",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Training-score quantile above which OUTLIER_FLAG is set (default: the model's, 0.973 shipped).",
)
@click.option(
    "--prefix",
    default="",
    metavar="TEXT",
    help="Prefix for the new column names (e.g. NB_ when the table already has a CLASS column).",
)
@output_options
@engine_options
@common_options
@pass_settings
def apply_cmd(
    s,
    input,
    output,
    model_path,
    priors,
    outlier_quantile,
    prefix,
    overwrite,
    column_map,
    chunk_size,
    engine="local",
    scheduler=None,
    workers=None,
):
    """Add P_<CLASS>, CLASS, CLASS_MARGIN, OUTLIER_*, N_MISSING_FEATURES, CLASS_/EVIDENCE_<CATEGORY> columns.

    Streams the catalogue in chunks (bounded memory). Columns are matched by 4XMM name, VizieR /
    HEASARC spelling, or --columns NAME=COL.

    \b
    Example:
      xmmtools classify data/sample/4xmm_dr10_ngc5139.fits -o ngc5139_classes.fits --priors AGN=0.7,STAR=0.2,OTHER=0.1
    """
    from xmmtools import engine as engines
    from xmmtools.classify.apply import _getter, classify_arrays, stage_spec
    from xmmtools.classify.features import check_positions
    from xmmtools.classify.model_io import default_model_path, load_model
    from xmmtools.classify.naive_bayes import parse_priors
    from xmmtools.columns import parse_column_map
    from xmmtools.errors import DataError
    from xmmtools.stage_io import run_rowwise

    eng = engines.from_options(engine, scheduler, workers)
    path = model_path or str(default_model_path())
    model = load_model(path)
    try:
        pri = parse_priors(priors, model.classes)
    except ValueError as e:
        raise DataError(str(e)) from None
    user_map = parse_column_map(column_map)
    spec = stage_spec(model.feature_set)

    extra: dict = {}  # filled on the first chunk, before the output (and its provenance) is opened
    state: dict = {}

    def compute(cols):
        if not state:  # which column feeds each declared input (canonical bands, aliases, conversions)
            state["feeds"] = spec.feeds(cols.table.schema.names, user_map)
            if state["feeds"]:
                extra["classify"] = {"inputs": {k: f.to_json() for k, f in state["feeds"].items()}}
                if s.verbose:
                    click.echo("inputs: " + "; ".join(f.describe() for f in state["feeds"].values()), err=True)
        offsets = {k: f.offset for k, f in state["feeds"].items() if f.offset}
        get = _getter(cols.table, cols.mapping, offsets)
        where = input if cols.row_offset is not None else f"{input} (a HATS partition)"
        check_positions(model.feature_set, get, where, cols.row_offset or 0)
        new = classify_arrays(model, get, len(cols), priors=pri, outlier_quantile=outlier_quantile)
        for c in new:
            c.name = prefix + c.name
        have = {n.upper(): n for n in cols.table.schema.names}
        clash = [c.name for c in new if c.name.upper() in have]
        if clash:
            raise DataError(
                f"{input} already has a column {have[clash[0].upper()]} (the same name as the new "
                f"{clash[0]} in FITS, where names ignore case); use --prefix, e.g. --prefix NB_"
            )
        return new

    params = {
        "model": os.path.basename(path),
        "prefix": prefix or None,
        "priors": dict(zip(model.classes, map(float, pri), strict=True)) if pri is not None else None,
        "outlier_quantile": outlier_quantile,
        "columns": user_map or None,
    }
    out, rows = run_rowwise(
        input,
        output,
        spec=spec,
        compute=compute,
        parameters=params,
        user_map=user_map,
        overwrite=overwrite,
        chunk_rows=chunk_size,
        progress=s.progress,
        extra_inputs=[path],
        extra_provenance=extra,
        engine=eng,
    )
    if out != "-" and not s.quiet:
        click.echo(
            f"classified {rows} rows with {os.path.basename(path)} ({', '.join(model.classes)}); wrote {out}", err=True
        )


# -----------------------------------------------------------------------------------------
# train / evaluate shared options
# -----------------------------------------------------------------------------------------


def _labelled_options(f):
    f = click.option("--label-column", default="Class", show_default=True, help="Column holding the class labels.")(f)
    f = click.option(
        "--merge",
        multiple=True,
        metavar="NEW=OLD1+OLD2",
        help="Merge labels into one class, e.g. STAR=LM-STAR+HM-STAR (repeatable).",
    )(f)
    f = click.option("--drop", multiple=True, metavar="LABEL", help="Ignore rows with this label (repeatable).")(f)
    f = click.option(
        "--columns",
        "column_map",
        metavar="NAME=COL[,...]",
        multiple=True,
        help="Map feature column names to this table's columns.",
    )(f)
    return f


def _fit_options(f):
    f = click.option(
        "--features",
        "features",
        default="xclass",
        show_default=True,
        metavar="TOML|NAME",
        help=f"Feature-set TOML file, or a shipped one: {', '.join(SHIPPED_FEATURE_SETS)}.",
    )(f)
    f = click.option(
        "--folds",
        type=click.IntRange(2, 50),
        default=5,
        show_default=True,
        help="Stratified folds (weights fit and held-out metrics).",
    )(f)
    f = click.option(
        "--seed", type=int, default=1, show_default=True, help="Seed of folds and differential evolution."
    )(f)
    f = click.option(
        "--objective",
        default="macro_f1",
        show_default=True,
        help="Weight-fit objective: macro_f1, balanced_accuracy or f1:CLASS.",
    )(f)
    f = click.option("--no-fit-weights", is_flag=True, help="Keep all category exponents at 1.")(f)
    f = click.option(
        "--maxiter", type=click.IntRange(1), default=40, show_default=True, help="Differential-evolution generations."
    )(f)
    f = click.option(
        "--popsize",
        type=click.IntRange(2),
        default=12,
        show_default=True,
        help="Differential-evolution population per parameter.",
    )(f)
    f = click.option(
        "--kernel",
        type=click.Choice(["exponential", "gaussian"]),
        default="exponential",
        show_default=True,
        help="KDE kernel (exponential as in the reference).",
    )(f)
    f = click.option(
        "--bandwidth",
        type=click.Choice(["tranin", "scott", "silverman"]),
        default="tranin",
        show_default=True,
        help="KDE bandwidth rule (tranin: range/(5 N^1/5)).",
    )(f)
    f = click.option(
        "--grid-size", type=click.IntRange(16), default=512, show_default=True, help="Points of the density tables."
    )(f)
    f = click.option(
        "--missing-alpha",
        type=click.FloatRange(0),
        default=1.0,
        show_default=True,
        help="Exponent alpha of P(missing|class).",
    )(f)
    f = click.option(
        "--shrink",
        default="auto",
        show_default=True,
        metavar="M|auto",
        help="Pseudo-count m shrinking each class's densities towards all classes pooled "
        "(m-estimate; 0 = off, T22); auto: chosen on the training rows by the out-of-fold objective.",
    )(f)
    f = click.option(
        "--floor",
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        default=1e-3,
        show_default=True,
        help="Density floor as a fraction of 1/range.",
    )(f)
    return f


def _labelled_fit_options(f):
    """The options shared by train and evaluate, gathered into the command's ``**opts``."""
    return _labelled_options(_fit_options(common_options(pass_settings(f))))


def _load_labelled(path, fs, opts):
    """Read a labelled table -> (X, y, classes, table info dict); ``opts`` holds the
    --label-column / --merge / --drop / --columns values."""
    import numpy as np

    from xmmtools import tables
    from xmmtools.classify.apply import table_features
    from xmmtools.classify.training import prepare_labels
    from xmmtools.columns import parse_column_map, resolve
    from xmmtools.errors import ColumnError, DataError

    label_column, drop = opts["label_column"], opts["drop"]
    t = tables.read_table(path)
    hit = resolve(t.schema.names, [label_column])
    if label_column not in hit:
        raise ColumnError(f"{path} has no label column {label_column!r} (use --label-column)")
    labels = tables.to_numpy(t.column(hit[label_column]), None)
    labels = np.array(["" if v is None else str(v) for v in labels], dtype=object)
    for d in drop:
        labels[labels == d] = ""
    try:
        merged = _parse_merge(opts["merge"])
        y, classes, keep = prepare_labels(labels, merged)
    except ValueError as e:
        raise DataError(f"{path}: {e}") from None
    fm = table_features(t, fs, source=path, user_map=parse_column_map(opts["column_map"]))
    info = {
        "file": os.path.basename(path),
        "sha256": tables.file_sha256(path) if path != "-" else None,
        "rows": int(keep.sum()),
        "label_column": label_column,
        "merge": merged,
        "drop": list(drop),
        "class_counts": dict(zip(classes, map(int, np.bincount(y, minlength=len(classes))), strict=True)),
    }
    return fm.values[keep], y, classes, info


def _with_distances(path, fs, opts, klass, seed):
    """Feature matrix of the labelled rows with every ``klass`` row given a log-uniform 1-10 kpc
    distance (seeded) in the feature set's distance column: geometric distances of
    zero-parallax sources are prior-dominated at ~1-10 kpc (Bailer-Jones et al. 2021, AJ 161,
    147), so real 4XMM x Gaia inputs carry such distances for quasars."""
    import numpy as np
    import pyarrow as pa

    from xmmtools import tables
    from xmmtools.classify.apply import table_features
    from xmmtools.classify.training import prepare_labels
    from xmmtools.columns import parse_column_map
    from xmmtools.errors import DataError

    names = [c for f in fs.features if f.kind == "luminosity" for c in f.columns["distance"]]
    names += [c for f in fs.features if f.kind == "column" and "dist" in f.name.lower() for c in f.columns["columns"]]
    if not names:
        raise DataError(f"--check-distances: feature set {fs.name} has no distance feature")
    col = names[0]
    t = tables.read_table(path)
    labels = np.array(
        ["" if v is None else str(v) for v in tables.to_numpy(t.column(opts["label_column"]), None)], dtype=object
    )
    for d in opts["drop"]:
        labels[labels == d] = ""
    lookup = {old: new for new, olds in _parse_merge(opts["merge"]).items() for old in olds}
    merged = np.array([lookup.get(v, v) for v in labels], dtype=object)
    _, _, keep = prepare_labels(list(labels), _parse_merge(opts["merge"]))
    sel = merged == klass
    dist = np.full(len(t), np.nan)
    if col in t.schema.names:
        dist = np.asarray(tables.to_numpy(t.column(col), None), float).copy()
    dist[sel] = 10.0 ** np.random.default_rng(seed).uniform(3.0, 4.0, int(sel.sum()))
    if col in t.schema.names:
        t = t.set_column(t.schema.get_field_index(col), col, pa.array(dist))
    else:
        t = t.append_column(col, pa.array(dist))
    return table_features(t, fs, source=path, user_map=parse_column_map(opts["column_map"])).values[keep]


def _parse_merge(items):
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--merge {item!r} is not NEW=OLD1+OLD2")
        new, olds = item.split("=", 1)
        out[new.strip()] = [o.strip() for o in olds.split("+") if o.strip()]
    return out


def _feature_set(name):
    from xmmtools.classify.features import default_feature_set_path, load_feature_set

    return load_feature_set(default_feature_set_path(name) if name in SHIPPED_FEATURE_SETS else name)


def _settings_and_options(o, classes):
    """(Settings, FitOptions) from the --kernel ... --popsize values in ``o``."""
    import numpy as np

    from xmmtools.classify.naive_bayes import Settings
    from xmmtools.classify.training import SHRINK_GRID, FitOptions, resolve_objective
    from xmmtools.errors import DataError

    try:
        obj = resolve_objective(o["objective"], classes)
    except ValueError as e:
        raise DataError(str(e)) from None
    shrink = str(o["shrink"]).strip().lower()
    if shrink == "auto":
        m, grid = 0.0, SHRINK_GRID
    else:
        try:
            m, grid = float(shrink), None
        except ValueError:
            m = float("nan")
        if not (np.isfinite(m) and m >= 0):
            raise DataError(f"--shrink {o['shrink']!r}: give a pseudo-count >= 0 or auto")
    settings = Settings(
        kernel=o["kernel"],
        bandwidth=o["bandwidth"],
        grid_size=o["grid_size"],
        missing_alpha=o["missing_alpha"],
        floor=o["floor"],
        shrink=m,
    )
    options = FitOptions(
        folds=o["folds"],
        seed=o["seed"],
        objective=obj,
        fit_weights=not o["no_fit_weights"],
        maxiter=o["maxiter"],
        popsize=o["popsize"],
        shrink_grid=grid,
    )
    return settings, options


def _priors_or_error(text, classes):
    from xmmtools.classify.naive_bayes import parse_priors
    from xmmtools.errors import DataError

    try:
        return parse_priors(text, classes)
    except ValueError as e:
        raise DataError(str(e)) from None


# -----------------------------------------------------------------------------------------
# train
# -----------------------------------------------------------------------------------------


@classify.command("train")
@click.argument("labelled")
@click.option("-o", "--output", required=True, metavar="MODEL.json", help="Model file (a .npz is written beside it).")
@click.option(
    "--priors",
    default=None,
    metavar="CLASS=F,...",
    help="Target-population class fractions stored in the model (default: training fractions).",
)
@click.option(
    "--outlier-quantile",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.997,
    show_default=True,
    help="Training-score quantile for OUTLIER_FLAG.",
)
@click.option(
    "--cv/--no-cv", default=True, show_default=True, help="Record nested k-fold held-out metrics in the model."
)
@click.option(
    "--check-distances",
    "check_distances",
    default=None,
    metavar="CLASS",
    help="With --cv: also classify the held-out rows of CLASS with log-uniform 1-10 kpc distances "
    "in the feature set's distance column (as 4XMM x Gaia gives quasars) and record that class's "
    "recall and the macro-F1 in the model's metrics.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing model file.")
@click.option(
    "--outlier-false-flag-rate",
    type=click.FloatRange(0, 0.5, min_open=True),
    default=0.02,
    show_default=True,
    help="Choose the OUTLIER_FLAG quantile by leaving each class out in turn so that "
    "this fraction of held-out known sources is flagged (ignored when --outlier-quantile is given).",
)
@_labelled_fit_options
def train_cmd(
    s, labelled, output, priors, outlier_quantile, cv, check_distances, overwrite, outlier_false_flag_rate, **opts
):
    """Fit densities, category weights and the outlier distribution on a labelled table.

    \b
    Example (the shipped default model, `make models`):
      xmmtools classify train tests/data/classify/lin2024_4xmmdr13_xclass_train.csv \\
        --label-column Class --merge STAR=LM-STAR+HM-STAR --merge OTHER=CV+HMXB+LMXB+NS+NS_BIN \\
        --features xclass --priors AGN=0.66,STAR=0.25,OTHER=0.09 --check-distances AGN -o model.json
    """
    from xmmtools import tables
    from xmmtools.classify import evaluate as ev
    from xmmtools.classify.model_io import save_model
    from xmmtools.classify.training import cross_validate, presence_leakage, train_model
    from xmmtools.errors import DataError, OutputError

    if not output.endswith(".json"):
        raise OutputError(f"{output}: a model file name must end in .json (its arrays go to a .npz beside it)")
    tables.check_outputs(
        {"-o": output, "its arrays": output[:-5] + ".npz"},
        inputs=[labelled],
        overwrite=overwrite,
        plain=("-o", "its arrays"),
    )
    fs = _feature_set(opts["features"])
    X, y, classes, info = _load_labelled(labelled, fs, opts)
    settings, options = _settings_and_options(opts, classes)
    pri = _priors_or_error(priors, classes)
    if click.get_current_context().get_parameter_source("outlier_quantile") != click.core.ParameterSource.DEFAULT:
        outlier_false_flag_rate = None  # an explicit --outlier-quantile wins
    model = train_model(
        X, y, classes, fs, settings, options, pri, outlier_quantile, outlier_false_flag_rate=outlier_false_flag_rate
    )
    model.training = {
        **model.training,  # what train_model chose on the training rows (e.g. shrink_selection)
        **info,
        "folds": options.folds,
        "seed": options.seed,
        "objective": opts["objective"],
        "fit_weights": options.fit_weights,
        "maxiter": options.maxiter,
        "popsize": options.popsize,
        "feature_set": os.path.basename(fs.source),
        "feature_set_sha256": fs.sha256,
    }
    leaks = presence_leakage(X, y, classes, fs)
    if leaks:
        model.training["presence_leakage"] = leaks
    for leak in leaks:  # a warning, not an error: the user decides (docs/classify.md)
        fr = ", ".join(f"{c} {v:.2f}" for c, v in leak["present_fraction"].items())
        click.echo(
            f"warning: presence leakage: feature {leak['feature']} is present for {fr} of the rows; "
            'its presence alone nearly separates the classes (set presence = "ignore" in the feature set '
            "if the training set's construction decided it)",
            err=True,
        )
    if check_distances and check_distances not in classes:
        raise DataError(f"--check-distances {check_distances}: no such class ({', '.join(classes)})")
    if cv:
        X_alt = _with_distances(labelled, fs, opts, check_distances, options.seed) if check_distances else None
        res = cross_validate(X, y, classes, fs, settings, options, priors=model.priors, X_alt=X_alt)
        model.metrics = {
            "kind": f"nested stratified {options.folds}-fold, held-out, the model's priors",
            **ev.summarise(y, res["proba"], classes, model.priors),
            **ev.fold_spread(y, res["proba"], res["fold"], classes),
        }
        if X_alt is not None:
            alt = ev.summarise(y, res["proba_alt"], classes, model.priors)
            k = list(classes).index(check_distances)
            model.metrics["distance_check"] = {
                "class": check_distances,
                "distances": f"log-uniform 1-10 kpc (seed {options.seed}) for every {check_distances} row",
                "recall": alt["recall"][k],
                "macro_f1": alt["macro_f1"],
            }
    elif check_distances:
        raise DataError("--check-distances needs --cv")
    paths = save_model(model, output, overwrite=overwrite)
    if not s.quiet:
        msg = f"trained {', '.join(classes)} on {len(y)} rows; wrote {paths[0]} and {paths[1]}"
        if cv:
            msg += f"; held-out macro-F1 {model.metrics['macro_f1']:.3f}"
        if "distance_check" in model.metrics:
            dc = model.metrics["distance_check"]
            msg += f"; {dc['class']} recall with 1-10 kpc distances {dc['recall']:.3f}"
        if model.outlier_selection.get("recall") is not None:
            sel = model.outlier_selection
            msg += (
                f"; OUTLIER_FLAG above the {sel['quantile']:g} quantile (leave-class-out: false flags "
                f"{sel['false_flag_rate']:.3f}, recall {sel['recall']:.2f})"
            )
        click.echo(msg, err=True)


# -----------------------------------------------------------------------------------------
# evaluate
# -----------------------------------------------------------------------------------------


@classify.command("evaluate")
@click.argument("labelled")
@click.option(
    "--model",
    "model_path",
    default=None,
    metavar="MODEL.json",
    help="Evaluate this model on LABELLED (no refit). Without it: nested k-fold training on LABELLED.",
)
@click.option(
    "--priors",
    default=None,
    metavar="CLASS=F,...",
    help="Class priors applied to the rows and used for the prior-corrected precision "
    "(default: the model's with --model; the training folds' mix without).",
)
@click.option(
    "--method",
    type=click.Choice(["nb", "hgb"]),
    default="nb",
    show_default=True,
    help="k-fold method: nb (naive Bayes, the published method) or hgb (scikit-learn "
    "HistGradientBoosting on the same features and folds, for comparison).",
)
@click.option(
    "--report",
    "report_dir",
    default=None,
    metavar="DIR",
    help="Write metrics.json, confusion.csv, per_class.csv, predictions.csv (+ figures with matplotlib).",
)
@click.option("--overwrite", is_flag=True, help="Replace existing report files.")
@click.option(
    "--leave-out",
    "leave_out",
    default=None,
    metavar="CLASS[,CLASS...]",
    help="Leave-class-out: train without these classes (nested k-fold) and report how OUTLIER_FLAG "
    "catches them (recall, AUROC of OUTLIER_SCORE, false-flag rate on the known classes).",
)
@click.option("--leave-each-out", is_flag=True, help="Leave-class-out for every class in turn.")
@click.option(
    "--outlier-false-flag-rate",
    type=click.FloatRange(0, 0.5, min_open=True),
    default=0.02,
    show_default=True,
    help="Leave-class-out: each fold model chooses its flag quantile for this "
    "false-flag rate on its own training rows, as `classify train` does.",
)
@_labelled_fit_options
def evaluate_cmd(
    s,
    labelled,
    model_path,
    priors,
    method,
    report_dir,
    overwrite,
    leave_out,
    leave_each_out,
    outlier_false_flag_rate,
    **opts,
):
    """Held-out metrics: confusion matrix, recall, precision, prior-corrected precision, macro-F1,
    balanced accuracy, Brier score, expected calibration error.

    \b
    Examples:
      xmmtools classify evaluate tests/data/classify/lin2024_4xmmdr13_xclass_train.csv \\
        --merge STAR=LM-STAR+HM-STAR --merge OTHER=CV+HMXB+LMXB+NS+NS_BIN --folds 5 --report cv_report
      xmmtools classify evaluate labelled.fits --model model.json --label-column CLASS_TRUE
      xmmtools classify evaluate tests/data/classify/lin2024_4xmmdr13_xclass_train.csv \\
        --merge STAR=LM-STAR+HM-STAR --merge OTHER=CV+HMXB+LMXB+NS+NS_BIN --leave-out OTHER --report lco
    """
    import numpy as np

    from xmmtools.classify import evaluate as ev
    from xmmtools.classify.apply import classify_features
    from xmmtools.classify.model_io import load_model
    from xmmtools.classify.training import cross_validate, cross_validate_hgb
    from xmmtools.errors import DataError

    if model_path and method != "nb":
        raise DataError("--method hgb is a k-fold comparison only; it cannot be combined with --model")
    if leave_out or leave_each_out:
        if model_path or method != "nb":
            raise DataError(
                "--leave-out / --leave-each-out train naive Bayes models; they cannot be combined "
                "with --model or --method hgb"
            )
        return _leave_class_out(
            s, labelled, opts, leave_out, leave_each_out, outlier_false_flag_rate, report_dir, overwrite
        )
    if model_path:
        model = load_model(model_path)
        X, y_data, data_classes, info = _load_labelled(labelled, model.feature_set, opts)
        unknown = [c for c in data_classes if c not in model.classes]
        if unknown:
            raise DataError(
                f"{labelled}: label {unknown[0]!r} is not a class of {model_path} "
                f"({', '.join(model.classes)}); use --merge or --drop"
            )
        y = np.array([model.classes.index(data_classes[i]) for i in y_data])
        classes = model.classes
        pri = _priors_or_error(priors, classes)
        # the priors `classify` would apply (--priors, else the model's): never the evaluation
        # table's own class fractions, which would hand the labels to the classifier
        pcorr = pri if pri is not None else model.priors
        cols = classify_features(model, X, priors=pcorr)
        proba = np.column_stack([c.values for c in cols[: len(classes)]])
        which = "--priors" if pri is not None else "the model's priors"
        kind = f"model {os.path.basename(model_path)} applied to {os.path.basename(labelled)} ({which})"
    else:
        fs = _feature_set(opts["features"])
        X, y, classes, info = _load_labelled(labelled, fs, opts)
        settings, options = _settings_and_options(opts, classes)
        if method == "hgb":
            proba = cross_validate_hgb(X, y, len(classes), options)["proba"]
            kind = f"HistGradientBoosting, stratified {options.folds}-fold (seed {options.seed}), class-balanced"
        else:
            pcorr = _priors_or_error(priors, classes)
            proba = cross_validate(X, y, classes, fs, settings, options, priors=pcorr)["proba"]
            which = "--priors" if pcorr is not None else "training-mix priors"
            kind = f"nested stratified {options.folds}-fold (seed {options.seed}), {which}"
        pcorr = _priors_or_error(priors, classes)
    summary = {"kind": kind, "data": info, **ev.summarise(y, proba, classes, pcorr)}
    if not model_path:
        from xmmtools.classify.training import stratified_folds

        summary.update(ev.fold_spread(y, proba, stratified_folds(y, options.folds, options.seed), classes))
    click.echo(format_summary(summary))
    if report_dir:
        from xmmtools.classify.report import write_report

        written = write_report(report_dir, summary, y, proba, classes, overwrite=overwrite)
        if not s.quiet:
            click.echo(f"wrote {', '.join(written)} to {report_dir}", err=True)


def _leave_class_out(s, labelled, opts, leave_out, leave_each_out, false_flag_rate, report_dir, overwrite):
    """``classify evaluate --leave-out`` / ``--leave-each-out``: nested leave-class-out runs."""
    from xmmtools.classify import evaluate as ev
    from xmmtools.classify.training import leave_class_out
    from xmmtools.errors import DataError

    fs = _feature_set(opts["features"])
    X, y, classes, info = _load_labelled(labelled, fs, opts)
    settings, options = _settings_and_options(opts, classes)
    if leave_each_out:
        groups = [[c] for c in range(len(classes))]
    else:
        names = [n.strip() for n in leave_out.split(",") if n.strip()]
        unknown = [n for n in names if n not in classes]
        if unknown:
            raise DataError(f"{labelled}: --leave-out class {unknown[0]!r} is not among {', '.join(classes)}")
        if len(set(names)) >= len(classes):
            raise DataError("--leave-out must keep at least one known class")
        groups = [[classes.index(n) for n in dict.fromkeys(names)]]
    runs, summaries = [], []
    for g in groups:
        r = leave_class_out(X, y, classes, fs, g, settings, options, false_flag_rate=false_flag_rate)
        runs.append(r)
        summaries.append(
            {
                "kind": f"leave-class-out, nested stratified {options.folds}-fold (seed {options.seed}); "
                f"flag quantile chosen per fold for false-flag rate {false_flag_rate:g}",
                "data": info,
                **ev.outlier_summary(y, r, classes, g),
            }
        )
    click.echo(format_outlier_summaries(summaries))
    if report_dir:
        from xmmtools.classify.report import write_outlier_report

        written = write_outlier_report(report_dir, summaries, runs, y, classes, overwrite=overwrite)
        if not s.quiet:
            click.echo(f"wrote {', '.join(written)} to {report_dir}", err=True)


def format_outlier_summaries(summaries) -> str:
    """Leave-class-out table (stdout of ``classify evaluate --leave-out``)."""
    lines = [summaries[0]["kind"], "", f"{'left out':<18}{'n':>6}{'recall':>9}{'AUROC':>8}{'false flags (known)':>22}"]
    for m in summaries:
        per_known = ", ".join(f"{k} {v:.3f}" for k, v in m["false_flag_rate_per_class"].items())
        lines.append(
            f"{'+'.join(m['left_out']):<18}{m['n_left_out']:>6}{m['recall']:>9.3f}{m['auroc']:>8.3f}"
            f"{m['false_flag_rate']:>10.3f} ({per_known})"
        )
        if len(m["per_class"]) > 1:
            for row in m["per_class"]:
                lines.append(f"  {row['class']:<16}{row['n']:>6}{row['recall']:>9.3f}{row['auroc']:>8.3f}")
    return "\n".join(lines)


def format_summary(m: dict) -> str:
    """A human-readable metrics table (stdout of ``classify evaluate``)."""
    lines = [f"{m['kind']}: {m['n']} sources", ""]
    w = max(len(c) for c in m["classes"]) + 2
    lines.append(f"{'class':<{w}}{'n':>6}{'recall':>9}{'prec':>9}{'prec_pc':>9}{'F1':>8}")
    for i, c in enumerate(m["classes"]):
        r = m["recall"][i]
        lines.append(
            f"{c:<{w}}{m['support'][i]:>6}{(r if r is not None else float('nan')):>9.3f}"
            f"{m['precision'][i]:>9.3f}{m['prior_corrected_precision'][i]:>9.3f}{m['f1'][i]:>8.3f}"
        )
    lines += [
        "",
        "confusion matrix (rows true, columns predicted): " + json.dumps(m["confusion_matrix"]),
        f"macro-F1 {m['macro_f1']:.4f}  balanced accuracy {m['balanced_accuracy']:.4f}  "
        f"accuracy {m['accuracy']:.4f}  Brier {m['brier']:.4f}  ECE {m['ece']:.4f}",
    ]
    if "fold_macro_f1" in m:
        lines.append(
            f"macro-F1 over folds {m['fold_macro_f1_mean']:.4f} ± {m['fold_macro_f1_std']:.4f} "
            f"(sample std of {len(m['fold_macro_f1'])} folds: "
            + ", ".join(f"{v:.3f}" for v in m["fold_macro_f1"])
            + ")"
        )
    return "\n".join(lines)


# -----------------------------------------------------------------------------------------
# votes
# -----------------------------------------------------------------------------------------


@classify.command("votes")
@click.argument("votes")
@click.option("-o", "--output", required=True, help="Labels table (one row per source); '-' = stdout.")
@click.option("--source-column", default="SOURCE_ID", show_default=True, help="Source identifier column.")
@click.option("--user-column", default="USER", show_default=True, help="Volunteer identifier column.")
@click.option("--class-column", default="CLASS", show_default=True, help="Voted class column.")
@click.option("--success-column", default=None, help="Per-vote user success rate in [0, 1] (weights the votes).")
@click.option(
    "--min-votes", type=click.IntRange(1), default=20, show_default=True, help="Votes needed for a consensus label."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@common_options
@pass_settings
def votes_cmd(s, votes, output, source_column, user_column, class_column, success_column, min_votes, overwrite):
    """Consensus labels (LABEL, AGREEMENT, N_VOTES) from a table of volunteer votes.

    The output feeds `classify train --label-column LABEL` like any labelled table.

    \b
    Example:
      xmmtools classify votes votes.csv --success-column SUCCESS -o crowd_labels.parquet
    """
    import pyarrow as pa

    from xmmtools import tables
    from xmmtools.classify.votes import consensus
    from xmmtools.errors import ColumnError

    tables.check_output(output, inputs=[votes], overwrite=overwrite)
    t = tables.read_table(votes)
    names = [c for c in (source_column, user_column, class_column, success_column) if c]
    for c in names:
        if c not in t.schema.names:
            raise ColumnError(f"{votes} has no column {c!r} (columns: {', '.join(t.schema.names[:12])})")
    success = tables.to_numpy(t.column(success_column), float) if success_column else None
    cls = [("" if v is None else str(v)) for v in t.column(class_column).to_pylist()]
    ids, cols = consensus(
        tables.to_numpy(t.column(source_column), None),
        tables.to_numpy(t.column(user_column), None),
        cls,
        success,
        min_votes,
    )
    out = tables.add_columns(pa.table({source_column: ids}), cols)
    tables.write_table(
        out,
        output,
        provenance=tables.Provenance(
            "classify-votes", {"min_votes": min_votes, "success_column": success_column}, [votes]
        ),
        overwrite=overwrite,
        inputs=[votes],
    )
    if output != "-" and not s.quiet:
        n_lab = sum(1 for v in out.column("LABEL").to_pylist() if v)
        click.echo(f"{out.num_rows} sources, {n_lab} with a consensus label; wrote {output}", err=True)
