"""``xmmtools variability short``: parse options, call the library, hand results to xmmtools.tables."""

from __future__ import annotations

import click

from xmmtools.cli import common_options, output_options, pass_settings
from xmmtools.cli.options import renamed

_PROB = click.FloatRange(min=0.0, max=1.0, min_open=True)


@click.command("short")
@click.argument("catalogue", required=False, metavar="[CAT]")
@click.option(
    "--lightcurves",
    "lc_dir",
    required=True,
    metavar="DIR",
    help="Folder searched recursively for source light curves (PPS *SRCTSR*, evselect *_src.lc "
    "paired with *_bgd.lc, epiclccorr output); naming rules in docs/variability_short.md.",
)
@click.option(
    "-o",
    "--output",
    default=None,
    help="Output table (default with CAT: CAT_variability-short.EXT; required without CAT).",
)
@click.option(
    "--gti",
    "gti_file",
    default=None,
    metavar="FILE",
    help="Extra GTI file: only bins wholly inside its intervals are used.",
)
@click.option("--pattern", default=None, metavar="GLOB", help="Only light-curve files whose name matches GLOB.")
@click.option(
    "--min-fracexp",
    type=click.FloatRange(0.0, 1.0),
    default=0.1,
    show_default=True,
    help="Drop bins with a smaller fractional exposure; partial bins above it are scaled.",
)
@click.option(
    "--time-bin",
    "bin_size",
    **renamed("variability short", "--time-bin"),
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Regroup consecutive bins into bins of this width before testing.",
)
@click.option(
    "--bkg-scale",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Source/background area ratio (default: from the region extensions, else 1).",
)
@click.option(
    "--max-prob",
    "threshold",
    **renamed("variability short", "--max-prob"),
    type=_PROB,
    default=1e-5,
    show_default=True,
    help="XT_VAR_FLAG when the probability of constancy is below this.",
)
@click.option(
    "--min-counts",
    type=click.FloatRange(min=0.0),
    default=5.0,
    show_default=True,
    help="Curves with fewer expected counts per bin use exact Poisson (single bins and groups) + KS tests, not chi2.",
)
@click.option(
    "--blocks-max-prob",
    "blocks_pmax",
    **renamed("variability short", "--blocks-max-prob"),
    type=click.FloatRange(0.0, 1.0),
    default=1e-3,
    show_default=True,
    help="Bayesian blocks only for curves whose XT_VARPROB is below this (about 0.2 s per curve).",
)
@click.option(
    "--radius",
    "match_radius",
    **renamed("variability short", "--radius"),
    type=click.FloatRange(min=0.0, min_open=True),
    default=15.0,
    show_default=True,
    help="With CAT: match curves without SRC_NUM by position within this radius (arcsec).",
)
@click.option("--no-features", is_flag=True, help="Skip shape features, Lomb-Scargle and Bayesian blocks.")
@click.option(
    "--plot-dir",
    "plot_dir",
    **renamed("variability short", "--plot-dir"),
    default=None,
    metavar="DIR",
    help="Write one PNG per light curve (rate, background, blocks, GTIs) into DIR (needs matplotlib).",
)
@output_options
@common_options
@pass_settings
def short(
    s,
    catalogue,
    lc_dir,
    output,
    gti_file,
    pattern,
    min_fracexp,
    bin_size,
    bkg_scale,
    threshold,
    min_counts,
    blocks_pmax,
    match_radius,
    no_features,
    plot_dir,
    overwrite,
    column_map,
    chunk_size,
):
    """Short-term variability from light curves: 4XMM-style chi2, Fvar, excess variance, and more.

    Without CAT: one row per source light curve found below DIR.  With CAT: per catalogue row and
    camera (matched by OBS_ID + SRC_NUM, else by position), XT_PN/M1/M2_* columns, their
    combination (XT_EP_CHI2PROB, XT_VAR_FLAG) and the shape features of the most variable camera.

    \b
    Examples:
      xmmtools variability short --lightcurves tests/data/variability/lc -o lc_stats.csv
      xmmtools variability short cat.fits --lightcurves pps/ --plot-dir figs/ -o cat_var.fits
    """
    from xmmtools import tables
    from xmmtools.errors import DataError
    from xmmtools.stage_io import default_output
    from xmmtools.variability.gti import read_gti
    from xmmtools.variability.short.lightcurves import find_lightcurves, iter_read, refine_positions
    from xmmtools.variability.short.spec import SPEC
    from xmmtools.variability.short.table import CurveResult, ShortConfig, analyse

    if catalogue is None and output is None:
        raise DataError("variability short without a catalogue needs -o OUTPUT")
    output = output or default_output(catalogue, SPEC.name)
    inputs = [catalogue] if catalogue else []
    tables.check_output(output, inputs=inputs, overwrite=overwrite)
    gti = read_gti(gti_file) if gti_file else None
    pairs = find_lightcurves(lc_dir, pattern)
    if not pairs:
        raise DataError(
            f"--lightcurves {lc_dir}: no source light curves found (see the naming rules in docs/variability_short.md)"
        )
    cfg = ShortConfig(threshold=threshold, min_counts=min_counts, blocks_pmax=blocks_pmax, features=not no_features)
    results = []
    for path, lc, err in _progress(
        iter_read(pairs, gti=gti, min_fracexp=min_fracexp, bkg_scale=bkg_scale, bin_size=bin_size),
        len(pairs),
        s.progress,
    ):
        results.append(CurveResult(lc, path, err, analyse(lc, cfg) if lc is not None else {}))
    refine_positions([r.lc for r in results if r.lc is not None])
    params = {
        "lightcurves": lc_dir,
        "gti": gti_file,
        "pattern": pattern,
        "min_fracexp": min_fracexp,
        "bin_size": bin_size,
        "bkg_scale": bkg_scale,
        "threshold": threshold,
        "min_counts": min_counts,
        "blocks_pmax": blocks_pmax,
        "match_radius": match_radius,
        "features": not no_features,
    }
    if catalogue is None:
        table, what = _per_curve(results, lc_dir), "light curves"
    else:
        table, unmatched = _catalogue(catalogue, results, lc_dir, match_radius, column_map, s.progress)
        what = "rows"
        if unmatched and not s.quiet:
            click.echo(
                f"note: {unmatched} of {table.num_rows} catalogue rows matched no light curve; "
                "their XT_ columns and flags are null (unknown), not false",
                err=True,
            )
    tables.write_table(
        table, output, provenance=tables.Provenance(SPEC.name, params, inputs), overwrite=overwrite, inputs=inputs
    )
    if plot_dir:
        _plots(results, plot_dir, s.quiet)
    if output != "-" and not s.quiet:
        bad = sum(1 for r in results if r.error)
        flagged = sum(1 for r in results if r.stats.get("VAR_FLAG"))
        note = (
            f"; {bad} unreadable (see XT_STATUS)"
            if bad and catalogue is None
            else (f"; {bad} unreadable light curves skipped" if bad else "")
        )
        click.echo(
            f"analysed {len(results)} light curves, {flagged} variable{note}; wrote {table.num_rows} "
            f"{what} to {output}",
            err=True,
        )


def _per_curve(results, root):
    from xmmtools.variability.short.table import per_curve_table

    return per_curve_table(results, root)


def _catalogue(path, results, root, radius, column_map, progress):
    from xmmtools import tables
    from xmmtools.columns import parse_column_map
    from xmmtools.errors import ColumnError
    from xmmtools.stage_io import load_for_stage
    from xmmtools.variability.short.spec import SPEC
    from xmmtools.variability.short.table import catalogue_columns, match_curves, normalise_obsid

    table, mapping = load_for_stage(path, SPEC, user_map=parse_column_map(column_map), progress=progress)
    if "SRC_NUM" not in mapping and not ("RA" in mapping and "DEC" in mapping):
        raise ColumnError(f"variability short needs SRC_NUM or RA and DEC in {path} to match light curves")
    obs = [normalise_obsid(v) for v in table.column(mapping["OBS_ID"]).to_pylist()]
    num = tables.to_numpy(table.column(mapping["SRC_NUM"]), float) if "SRC_NUM" in mapping else None
    ra = tables.to_numpy(table.column(mapping["RA"]), float) if "RA" in mapping and "DEC" in mapping else None
    dec = tables.to_numpy(table.column(mapping["DEC"]), float) if ra is not None else None
    matches = match_curves(obs, num, ra, dec, results, radius)
    unmatched = sum(1 for row in range(table.num_rows) if all(matches[cam][row] is None for cam in matches))
    return tables.add_columns(table, catalogue_columns(matches, results, table.num_rows, root)), unmatched


def _plots(results, folder, quiet):
    from xmmtools.variability.short.plot import plot_curves

    written, message = plot_curves([r for r in results if r.lc is not None], folder)
    if message and not quiet:
        click.echo(message, err=True)
    elif not quiet:
        click.echo(f"wrote {written} figures to {folder}", err=True)


def _progress(it, total, enabled):
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc="light curves", unit="lc", leave=False)
