"""``xmmtools photoz``: apply (default), ``train`` and ``evaluate`` TPZ photo-z models."""

from __future__ import annotations

import json
import os

import click

from xmmtools.cli import common_options, engine_options, output_options, pass_settings
from xmmtools.cli.lazy import DefaultApplyGroup

Z_COLUMN_GUESSES = ("zs", "z_spec", "zspec", "specz", "spec_z", "redshift", "z_true")


class ModeSmooth(click.ParamType):
    """``auto`` or a number of bins >= 0."""

    name = "auto|BINS"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) or value == "auto":
            return value
        try:
            v = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither 'auto' nor a number of bins", param, ctx)
        if not v >= 0:
            self.fail(f"{value!r} must be >= 0", param, ctx)
        return v


class PhotozGroup(DefaultApplyGroup):
    """``xmmtools photoz CAT ...`` is ``xmmtools photoz apply CAT ...``."""


@click.group(cls=PhotozGroup)
def photoz():
    """Photometric redshift PDFs with TPZ random forests (Carrasco Kind & Brunner 2013).

    \b
    Examples:
      xmmtools photoz cat.parquet -o cat_z.parquet                 # shipped models
      xmmtools photoz cat.fits --model galaxy --columns u=umag,g=gmag,r=rmag,i=imag,z=zmag
      xmmtools photoz train specz.parquet --z-column zs --attributes u,g,r,i,z,u-g,g-r -o m.json
      xmmtools photoz evaluate test.parquet --z-column zs --model m.json --report out/
    """


@photoz.command("apply")
@click.argument("input")
@click.option("-o", "--output", default=None, help="Output table (default: INPUT_photoz.EXT beside it; '-' = stdout).")
@click.option(
    "--model",
    "model_name",
    default="auto",
    show_default=True,
    help="galaxy, agn, a model .json file, or auto (CLASS AGN-like rows -> agn, other "
    "extragalactic rows -> galaxy; without CLASS, galaxy for rows inside the galaxy model's "
    "training domain, agn for the others).",
)
@click.option("--all", "all_rows", is_flag=True, help="Also estimate rows whose CLASS is not extragalactic.")
@click.option(
    "--missing",
    "missing",
    type=float,
    multiple=True,
    help="Magnitude value meaning 'not measured' (e.g. -99, 99, or 0 for 2MASS); repeatable; "
    "added to the model's own training sentinels.",
)
@click.option(
    "--pdf-format",
    type=click.Choice(["grid", "quantiles", "none"]),
    default="grid",
    show_default=True,
    help="Z_PDF on the model grid, Z_PDF_Q quantiles, or no PDF column.",
)
@click.option(
    "--smooth",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SIGMAFACTOR",
    help="Override the model's Gaussian PDF smoothing (in bins; MLZ SigmaFactor).",
)
@click.option(
    "--cut",
    type=click.FloatRange(0, 1),
    default=None,
    metavar="FRACTION",
    help="Override the model's cut of bins below FRACTION x peak (MLZ: 0.2).",
)
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Threads (default: all cores).")
@output_options
@engine_options
@common_options
@pass_settings
def apply(
    s,
    input,
    output,
    model_name,
    all_rows,
    missing,
    pdf_format,
    smooth,
    cut,
    jobs,
    overwrite,
    column_map,
    chunk_size,
    engine="local",
    scheduler=None,
    workers=None,
):
    """Add Z_PHOT, Z_MEAN, Z_MEDIAN, Z_ERR, Z_L68/U68, Z_L95/U95, Z_CONF, Z_FLAG and Z_PDF.

    \b
    Example:
      xmmtools photoz counterparts.parquet -o counterparts_z.parquet --columns u=UMAG,g=GMAG
    """
    import numpy as np

    from xmmtools import engine as engines
    from xmmtools import stage_io
    from xmmtools.columns import parse_column_map
    from xmmtools.errors import DataError
    from xmmtools.photoz import SPEC
    from xmmtools.photoz.apply import Applier, model_feeds, provenance_extra, route, route_by_domain
    from xmmtools.photoz.attributes import resolve_attributes
    from xmmtools.photoz.model import load_model, model_path
    from xmmtools.tables import to_numpy

    user_map = parse_column_map(column_map)
    n_jobs = jobs or os.cpu_count() or 1
    state: dict = {}

    def setup(cols):
        has_class = "CLASS" in cols
        if model_name == "auto":
            names = ["agn", "galaxy"]
            if not has_class and not s.quiet:
                click.echo(
                    "note: no CLASS column; rows inside the galaxy model's training domain (every "
                    "attribute within its training range) use galaxy, the others agn",
                    err=True,
                )
        else:
            names = [model_name]
        paths = {n: model_path(n) for n in names}
        models = [load_model(paths[n]) for n in names]
        for n, m in zip(names, models, strict=True):
            m.name = n if n in ("agn", "galaxy") else m.name
            if smooth is not None:
                m.smooth = smooth
            if cut is not None:
                m.cut = cut
        available = cols.table.schema.names
        # which column feeds each magnitude: --columns, the model's recorded map, its own name,
        # the canonical band (SDSS_U from crossmatch), a known alias; AB/Vega offsets applied
        feeds = {m.name: model_feeds(m, available, user_map) for m in models}
        attrs = [
            resolve_attributes(
                m.attributes,
                available,
                source=input,
                user_map={**{k: f.column for k, f in feeds[m.name].items()}, **user_map},
                missing=tuple(dict.fromkeys((*m.missing, *missing))),
                stored_errors={},
            )
            for m in models
        ]
        offsets = {f.column: f.offset for fs in feeds.values() for f in fs.values() if f.offset}
        app = Applier(models, attrs, pdf_format, n_jobs)
        state.update(app=app, names=names, has_class=has_class, offsets=offsets)
        extra["photoz"].update(
            provenance_extra(
                models,
                {m.name: os.path.basename(paths[n]) for n, m in zip(names, models, strict=True)},
                pdf_format,
                app.edges,
            )["photoz"]
        )
        used = {n: {k: f.to_json() for k, f in fs.items()} for n, fs in feeds.items() if fs}
        if used:
            extra["photoz"]["inputs"] = used
        if s.verbose:
            for n, fs in feeds.items():
                click.echo(f"{n} inputs: " + "; ".join(f.describe() for f in fs.values()), err=True)

    def compute(cols):
        if not state:
            setup(cols)
        app = state["app"]
        classes = cols.values("CLASS") if state["has_class"] else None
        offsets = state["offsets"]
        which: np.ndarray | None
        if classes is None and model_name == "auto":
            which = route_by_domain(
                app, lambda c: to_numpy(cols.table.column(c), float) + offsets.get(c, 0.0), len(cols)
            )
        elif classes is not None and len(app.models) == 1:
            which = route(classes, ["one"], all_rows=all_rows)
        else:
            which = route(classes, state["names"], all_rows=all_rows)
        return app.columns(lambda c: to_numpy(cols.table.column(c), float) + offsets.get(c, 0.0), len(cols), which)

    # filled in by setup() on the first chunk, before the output (and its provenance) is opened
    extra: dict = {"photoz": {}}
    params = {
        "model": model_name,
        "all": all_rows,
        "pdf_format": pdf_format,
        "smooth": smooth,
        "cut": cut,
        "missing": list(missing) or None,
        "columns": user_map or None,
    }
    try:
        out, rows = stage_io.run_rowwise(
            input,
            output,
            spec=SPEC,
            compute=compute,
            parameters=params,
            user_map=user_map,
            overwrite=overwrite,
            chunk_rows=chunk_size,
            progress=s.progress,
            extra_provenance=extra,
            engine=engines.from_options(engine, scheduler, workers),
        )
    except ValueError as e:  # scikit-learn input checks surface as ValueError
        raise DataError(f"{input}: {' '.join(str(e).split())}") from None
    if out != "-" and not s.quiet:
        click.echo(f"wrote {rows} rows with photo-z to {out}", err=True)


# -----------------------------------------------------------------------------------------


@photoz.command("train")
@click.argument("specz")
@click.option("-o", "--output", required=True, help="Model file (.json; the arrays go beside it as .npz).")
@click.option(
    "--attributes",
    required=False,
    metavar="A,B,A-B,...",
    help="Attribute columns; A-B that is not a column is the colour A - B.",
)
@click.option(
    "--errors",
    metavar="E1,E2,... | A=EA,...",
    default=None,
    help="Error column per column attribute (same order), or NAME=ERR pairs (default: eX, X_err, sig_X, ...).",
)
@click.option("--z-column", default=None, help="Spectroscopic redshift column (default: zs, z_spec, redshift, ...).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="MLZ-style 'Key : value' file (NRandom, NTrees, Natt, MinLeaf, zmin, zmax, nzbins, "
    "Attributes, SigmaFactor, RmsFactor); command-line options win.",
)
@click.option("--nrandom", type=int, default=None, help="NRandom: perturbed realisations [4].")
@click.option("--ntrees", type=int, default=None, help="NTrees: trees per realisation [25].")
@click.option("--natt", type=int, default=None, help="Natt: attributes tried per split [3].")
@click.option("--minleaf", type=int, default=None, help="MinLeaf: minimum objects per leaf [5].")
@click.option("--zmin", type=float, default=None, help="Grid lower edge [0].")
@click.option("--zmax", type=float, default=None, help="Grid upper edge [max z rounded up].")
@click.option("--nzbins", type=click.IntRange(2, 65535), default=None, help="Grid bins [80].")
@click.option(
    "--seed", type=int, default=20131483, show_default=True, help="Seed of the random realisations and trees."
)
@click.option(
    "--leaf-weight",
    type=click.Choice(["counts", "tree"]),
    default="counts",
    show_default=True,
    help="counts: every leaf redshift counts once (MLZ); tree: each tree sums to 1.",
)
@click.option(
    "--smooth",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SIGMAFACTOR",
    help="Gaussian PDF smoothing in bins (MLZ SigmaFactor) [0: off].",
)
@click.option(
    "--cut",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Zero bins below this fraction of the peak (MLZ: 0.2).",
)
@click.option(
    "--mode-smooth",
    type=ModeSmooth(),
    default="auto",
    show_default=True,
    metavar="auto|BINS",
    help="Gaussian smoothing (bins) used only to locate the PDF mode Z_PHOT; auto: the width "
    "with the lowest out-of-bag sigma_NMAD on the training set.",
)
@click.option("--rms-factor", type=float, default=None, help="Z_CONF half-width factor [0.02].")
@click.option(
    "--missing",
    "missing",
    type=float,
    multiple=True,
    help="Magnitude value meaning 'not measured' (e.g. -99, or 0 for 2MASS); repeatable.",
)
@click.option(
    "--drop-bad-z", is_flag=True, help="Drop rows whose redshift is missing or outside the grid instead of failing."
)
@click.option("--no-importance", is_flag=True, help="Skip the permutation importance.")
@click.option(
    "--oob-table",
    default=None,
    metavar="FILE",
    help="Also write the training columns used, with out-of-bag Z_* columns and Z_PDF, to FILE.",
)
@click.option("--name", default=None, help="Model name recorded in the file [file stem].")
@click.option(
    "--bands",
    "band_map",
    default=None,
    metavar="A=BAND[:SYSTEM],...",
    help="Declare magnitudes as canonical counterpart bands (e.g. u=SDSS_U,W1=WISE_W1:AB; system "
    "default: the band's own), so crossmatch's SDSS_U... feed the model without --columns.",
)
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Threads (default: all cores).")
@click.option("--overwrite", is_flag=True, help="Replace an existing model file.")
@click.option(
    "--columns",
    "column_map",
    metavar="NAME=COL[,...]",
    multiple=True,
    help="Map attribute names to this table's columns, e.g. u=u_mag.",
)
@common_options
@pass_settings
def train(
    s,
    specz,
    output,
    attributes,
    errors,
    z_column,
    config_file,
    nrandom,
    ntrees,
    natt,
    minleaf,
    zmin,
    zmax,
    nzbins,
    seed,
    leaf_weight,
    smooth,
    cut,
    mode_smooth,
    rms_factor,
    missing,
    drop_bad_z,
    no_importance,
    oob_table,
    name,
    band_map,
    jobs,
    overwrite,
    column_map,
):
    """Train a TPZ model on a table with spectroscopic redshifts.

    \b
    Example (the shipped galaxy model):
      xmmtools photoz train tests/data/photoz/sdss_mgs_train.parquet --z-column zs \\
          --attributes u,g,r,i,z,u-g,g-r,r-i,i-z --zmin 0.001 --zmax 0.3 --nzbins 80 -o galaxy.json
    """
    import numpy as np
    import pyarrow as pa

    from xmmtools import tables
    from xmmtools.columns import parse_column_map
    from xmmtools.errors import DataError, OutputError
    from xmmtools.photoz.attributes import resolve_attributes
    from xmmtools.photoz.model import parse_attributes, train_model
    from xmmtools.photoz.tpz import ForestParams, Grid

    cfg = read_mlz_config(config_file) if config_file else {}
    user_map = parse_column_map(column_map)
    if not output.endswith(".json"):
        raise OutputError(f"{output}: a model file name must end in .json")
    tables.check_outputs(
        {"-o": output, "its arrays": output[:-5] + ".npz", "--oob-table": oob_table},
        inputs=[specz],
        overwrite=overwrite,
        plain=("-o", "its arrays"),
    )
    if not os.path.isdir(os.path.dirname(os.path.abspath(output))):
        raise OutputError(f"{output}: folder {os.path.dirname(os.path.abspath(output))} does not exist")
    declared = parse_band_map(band_map)
    attr_list = parse_attributes(attributes or cfg.get("attributes", ""))
    if not attr_list:
        raise DataError("photoz train: give --attributes (or Attributes in --config)")
    info = tables.inspect_table(specz)
    names = info.schema.names
    zcol = _find_column(z_column or cfg.get("z_column"), names, specz)
    err_arg = None
    if errors:
        err_arg = [e for e in errors.split(",")]
    aset = resolve_attributes(attr_list, names, source=specz, user_map=user_map, errors=err_arg, missing=missing)
    t = tables.read_table(specz, list(dict.fromkeys([zcol, *aset.columns_needed()])))
    z = tables.to_numpy(t.column(zcol), float)
    zmin_v = _pick(zmin, cfg.get("zmin"), 0.0)
    zmax_v = _pick(zmax, cfg.get("zmax"), float(np.ceil(np.nanmax(z) * 10) / 10) if np.isfinite(z).any() else 1.0)
    if not zmax_v > zmin_v:
        raise DataError(f"photoz train: zmax ({zmax_v}) must exceed zmin ({zmin_v})")
    grid = Grid(zmin_v, zmax_v, int(_pick(nzbins, cfg.get("nzbins"), 80)))
    keep = None
    if drop_bad_z:
        keep = np.isfinite(z) & (z >= grid.zmin) & (z <= grid.zmax)
        if not s.quiet and (~keep).any():
            click.echo(f"note: dropped {(~keep).sum()} rows with a missing or out-of-grid {zcol}", err=True)
    params = ForestParams(
        int(_pick(nrandom, cfg.get("nrandom"), 4)),
        int(_pick(ntrees, cfg.get("ntrees"), 25)),
        int(_pick(natt, cfg.get("natt"), 3)),
        int(_pick(minleaf, cfg.get("minleaf"), 5)),
        seed,
        leaf_weight,
    )

    def get(c):
        v = tables.to_numpy(t.column(c), float)
        return v if keep is None else v[keep]

    model = train_model(
        name or os.path.basename(output)[:-5],
        aset,
        get,
        z if keep is None else z[keep],
        grid,
        params,
        smooth=float(_pick(smooth, cfg.get("smooth"), 0.0)),
        cut=cut,
        rms_factor=float(_pick(rms_factor, cfg.get("rms_factor"), 0.02)),
        mode_smooth=mode_smooth,
        importance=not no_importance,
        n_jobs=jobs or os.cpu_count() or 1,
        source=specz,
        info={
            "file": os.path.basename(specz),
            "file_sha256": tables.file_sha256(specz),
            "z_column": zcol,
            "columns": {a.name: a.column for a in aset.attributes},
            "dropped_rows": int((~keep).sum()) if keep is not None else 0,
        },
    )
    if declared:
        model.info["bands"] = declared
    model.save(output)
    if oob_table:
        from xmmtools.photoz.apply import oob_columns

        rows = t if keep is None else t.filter(pa.array(keep))
        tables.write_table(
            tables.add_columns(rows, oob_columns(model)),
            oob_table,
            overwrite=overwrite,
            inputs=[specz],
            provenance=tables.Provenance("photoz-oob", {"model": os.path.basename(output)}, [specz]),
        )
    if not s.quiet:
        m = model.info["oob_metrics"]
        click.echo(
            f"wrote {output} ({params.n_random * params.n_trees} trees on {m['n']} "
            f"rows); OOB sigma_NMAD {m['sigma_nmad']:.4f}, outliers(>0.15) {m['outliers_015']:.3f}, "
            f"CRPS {m['crps']:.4f}, PIT KS {m['pit_ks']:.3f}; Z_PHOT mode smoothing "
            f"{model.mode_smooth:g} bins",
            err=True,
        )


# -----------------------------------------------------------------------------------------


@photoz.command("evaluate")
@click.argument("specz")
@click.option("--model", "model_name", default="galaxy", show_default=True, help="galaxy, agn or a model .json.")
@click.option("--z-column", default=None, help="Spectroscopic redshift column (default: zs, z_spec, redshift, ...).")
@click.option(
    "--report",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for metrics.json and figures (z_phot vs z_spec, PIT histogram, N(z)).",
)
@click.option(
    "--smooth",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SIGMAFACTOR",
    help="Override the model's PDF smoothing (bins).",
)
@click.option("--cut", type=click.FloatRange(0, 1), default=None, help="Override the model's peak cut.")
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Threads (default: all cores).")
@click.option(
    "--columns",
    "column_map",
    metavar="NAME=COL[,...]",
    multiple=True,
    help="Map attribute names to this table's columns, e.g. u=u_mag.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@common_options
def evaluate(specz, model_name, z_column, report, smooth, cut, jobs, column_map, as_json):
    """Metrics of a model on a table with spectroscopic redshifts.

    bias, sigma_NMAD, sigma_68, outlier fractions (>0.15, >0.05) of Z_PHOT, Z_MEAN and Z_MEDIAN;
    CRPS, PIT KS and Cramer-von Mises, 68% coverage of the PDFs.

    \b
    Example:
      xmmtools photoz evaluate tests/data/photoz/sdss_mgs_test.parquet --model galaxy --z-column zs
    """
    import numpy as np

    from xmmtools import tables
    from xmmtools.columns import parse_column_map
    from xmmtools.photoz import metrics
    from xmmtools.photoz.apply import model_feeds
    from xmmtools.photoz.attributes import resolve_attributes
    from xmmtools.photoz.model import load_model, model_path

    user_map = parse_column_map(column_map)
    model = load_model(model_path(model_name))
    if smooth is not None:
        model.smooth = smooth
    if cut is not None:
        model.cut = cut
    info = tables.inspect_table(specz)
    zcol = _find_column(z_column, info.schema.names, specz)
    feeds = model_feeds(model, info.schema.names, user_map)
    aset = resolve_attributes(
        model.attributes,
        info.schema.names,
        source=specz,
        user_map={**{k: f.column for k, f in feeds.items()}, **user_map},
        missing=model.missing,
        stored_errors={},
    )
    offsets = {f.column: f.offset for f in feeds.values() if f.offset}
    t = tables.read_table(specz, list(dict.fromkeys([zcol, *aset.columns_needed()])))
    z = tables.to_numpy(t.column(zcol), float)
    X, _ = aset.values(lambda c: tables.to_numpy(t.column(c), float) + offsets.get(c, 0.0))
    ok = np.isfinite(z)
    p, est = model.estimate(X[ok], n_jobs=jobs or os.cpu_count() or 1)
    res = metrics.all_metrics(p, model.grid.edges, z[ok], est)
    res["flagged_fraction"] = float(np.mean(est["Z_FLAG"] != 0))
    if report:
        os.makedirs(report, exist_ok=True)
        with open(os.path.join(report, "metrics.json"), "w") as fh:
            json.dump({"model": model_name, "table": os.path.basename(specz), "metrics": res}, fh, indent=1)
        from xmmtools.photoz.figures import evaluation_figures

        evaluation_figures(report, z[ok], est, p, model.grid.edges)
    if as_json:
        click.echo(json.dumps(res, indent=1))
        return
    for k, v in res.items():
        click.echo(f"{k:<22} {v:.5g}" if isinstance(v, float) else f"{k:<22} {v}")


# -----------------------------------------------------------------------------------------

MLZ_KEYS = {
    "nrandom": "nrandom",
    "ntrees": "ntrees",
    "natt": "natt",
    "minleaf": "minleaf",
    "zmin": "zmin",
    "zmax": "zmax",
    "nzbins": "nzbins",
    "attributes": "attributes",
    "sigmafactor": "smooth",
    "rmsfactor": "rms_factor",
    "z_column": "z_column",
    "predictionattribute": "z_column",
}


def read_mlz_config(path: str) -> dict:
    """MLZ input file: ``Key : value`` lines, '#' comments; unknown MLZ keys are ignored."""
    from xmmtools.errors import DataError

    out: dict[str, str | float] = {}
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot read config ({e.strerror})") from None
    for i, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if ":" not in line:
            raise DataError(f"{path}:{i}: expected 'Key : value', got {line!r}")
        k, v = (x.strip() for x in line.split(":", 1))
        key = MLZ_KEYS.get(k.lower())
        if key is None:
            continue
        if key in ("attributes", "z_column"):
            out[key] = v
        else:
            try:
                out[key] = float(v)
            except ValueError:
                raise DataError(f"{path}:{i}: {k} must be a number, got {v!r}") from None
    return out


def parse_band_map(text: str | None) -> dict:
    """``u=SDSS_U,W1=WISE_W1:AB`` -> {"u": {"band": "SDSS_U", "system": "AB"}, ...} (checked)."""
    from xmmtools.bands import Input
    from xmmtools.errors import DataError

    out = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise DataError(f"--bands {part.strip()!r} is not NAME=BAND[:SYSTEM] (e.g. u=SDSS_U)")
        k, v = (x.strip() for x in part.split("=", 1))
        b, _, system = v.partition(":")
        out[k] = Input.parse(k, {"band": b, **({"system": system} if system else {})}, "--bands").to_json()
    return out


def _pick(*values):
    return next(v for v in values if v is not None)


def _find_column(name, names, source):
    from xmmtools.errors import ColumnError

    upper = {n.upper(): n for n in names}
    if name:
        if name in names:
            return name
        if name.upper() in upper:
            return upper[name.upper()]
        raise ColumnError(f"{source} has no redshift column {name}")
    for g in Z_COLUMN_GUESSES:
        if g.upper() in upper:
            return upper[g.upper()]
    raise ColumnError(
        f"{source}: no spectroscopic redshift column found (tried {', '.join(Z_COLUMN_GUESSES)}); give --z-column"
    )
