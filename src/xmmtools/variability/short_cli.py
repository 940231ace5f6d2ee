"""``xmmtools variability short``: parse options, call the library, hand results to tables.py."""

from __future__ import annotations

import click

from xmmtools.cli import common_options, output_options, pass_settings

_PROB = click.FloatRange(min=0.0, max=1.0, min_open=True)


@click.command("short")
@click.argument("catalogue", required=False, metavar="[CAT]")
@click.option("--lightcurves", "lc_dir", required=True, metavar="DIR",
              help="Folder searched recursively for source light curves (PPS *SRCTSR*, evselect *_src.lc "
                   "paired with *_bgd.lc, epiclccorr output); naming rules in docs/variability_short.md.")
@click.option("-o", "--output", default=None,
              help="Output table (default with CAT: CAT_variability-short.EXT; required without CAT).")
@click.option("--gti", "gti_file", default=None, metavar="FILE",
              help="Extra GTI file: only bins wholly inside its intervals are used.")
@click.option("--pattern", default=None, metavar="GLOB", help="Only light-curve files whose name matches GLOB.")
@click.option("--min-fracexp", type=click.FloatRange(0.0, 1.0), default=0.1, show_default=True,
              help="Drop bins with a smaller fractional exposure; partial bins above it are scaled.")
@click.option("--bin-size", type=click.FloatRange(min=0.0, min_open=True), default=None, metavar="SECONDS",
              help="Regroup consecutive bins into bins of this width before testing.")
@click.option("--bkg-scale", type=click.FloatRange(min=0.0), default=None,
              help="Source/background area ratio (default: from the region extensions, else 1).")
@click.option("--threshold", type=_PROB, default=1e-5, show_default=True,
              help="XT_VAR_FLAG when the probability of constancy is below this.")
@click.option("--min-counts", type=click.FloatRange(min=0.0), default=5.0, show_default=True,
              help="Curves with fewer expected counts per bin use exact Poisson (single bins and groups) + KS tests, not chi2.")
@click.option("--blocks-pmax", type=click.FloatRange(0.0, 1.0), default=1e-3, show_default=True,
              help="Bayesian blocks only for curves whose XT_VARPROB is below this (about 0.2 s per curve).")
@click.option("--match-radius", type=click.FloatRange(min=0.0, min_open=True), default=15.0, show_default=True,
              help="With CAT: match curves without SRC_NUM by position within this radius (arcsec).")
@click.option("--no-features", is_flag=True, help="Skip shape features, Lomb-Scargle and Bayesian blocks.")
@click.option("--plot", "plot_dir", default=None, metavar="DIR",
              help="Write one PNG per light curve (rate, background, blocks, GTIs) into DIR (needs matplotlib).")
@output_options
@common_options
@pass_settings
def short(s, catalogue, lc_dir, output, gti_file, pattern, min_fracexp, bin_size, bkg_scale, threshold,
          min_counts, blocks_pmax, match_radius, no_features, plot_dir, overwrite, column_map, chunk_size):
    """Short-term variability from light curves: 4XMM-style chi2, Fvar, excess variance, and more.

    Without CAT: one row per source light curve found below DIR.  With CAT: per catalogue row and
    camera (matched by OBS_ID + SRC_NUM, else by position), XT_PN/M1/M2_* columns, their
    combination (XT_EP_CHI2PROB, XT_VAR_FLAG) and the shape features of the most variable camera.

    \b
    Examples:
      xmmtools variability short --lightcurves tests/data/variability/lc -o lc_stats.csv
      xmmtools variability short cat.fits --lightcurves pps/ --plot figs/ -o cat_var.fits
    """
    from xmmtools import tables
    from xmmtools.errors import DataError
    from xmmtools.stage_io import default_output
    from xmmtools.variability.lightcurves import find_lightcurves, iter_read, read_gti, refine_positions
    from xmmtools.variability.short_spec import SPEC
    from xmmtools.variability.short_table import CurveResult, ShortConfig, analyse

    if catalogue is None and output is None:
        raise DataError("variability short without a catalogue needs -o OUTPUT")
    output = output or default_output(catalogue, SPEC.name)
    inputs = [catalogue] if catalogue else []
    tables.check_output(output, inputs=inputs, overwrite=overwrite)
    gti = read_gti(gti_file) if gti_file else None
    pairs = find_lightcurves(lc_dir, pattern)
    if not pairs:
        raise DataError(f"--lightcurves {lc_dir}: no source light curves found (see the naming rules in "
                        "docs/variability_short.md)")
    cfg = ShortConfig(threshold=threshold, min_counts=min_counts, blocks_pmax=blocks_pmax, features=not no_features)
    results = []
    for path, lc, err in _progress(iter_read(pairs, gti=gti, min_fracexp=min_fracexp, bkg_scale=bkg_scale,
                                             bin_size=bin_size), len(pairs), s.progress):
        results.append(CurveResult(lc, path, err, analyse(lc, cfg) if lc is not None else {}))
    refine_positions([r.lc for r in results if r.lc is not None])
    params = {"lightcurves": lc_dir, "gti": gti_file, "pattern": pattern, "min_fracexp": min_fracexp,
              "bin_size": bin_size, "bkg_scale": bkg_scale, "threshold": threshold, "min_counts": min_counts,
              "blocks_pmax": blocks_pmax, "match_radius": match_radius, "features": not no_features}
    if catalogue is None:
        table, what = _per_curve(results, lc_dir), "light curves"
    else:
        table, what = _catalogue(catalogue, results, lc_dir, match_radius, column_map, s.progress), "rows"
    tables.write_table(table, output, provenance=tables.Provenance(SPEC.name, params, inputs),
                       overwrite=overwrite, inputs=inputs)
    if plot_dir:
        _plots(results, plot_dir, s.quiet)
    if output != "-" and not s.quiet:
        bad = sum(1 for r in results if r.error)
        flagged = sum(1 for r in results if r.stats.get("VAR_FLAG"))
        note = f"; {bad} unreadable (see XT_STATUS)" if bad and catalogue is None else (
            f"; {bad} unreadable light curves skipped" if bad else "")
        click.echo(f"analysed {len(results)} light curves, {flagged} variable{note}; wrote {table.num_rows} "
                   f"{what} to {output}", err=True)


def _per_curve(results, root):
    from xmmtools.variability.short_table import per_curve_table

    return per_curve_table(results, root)


def _catalogue(path, results, root, radius, column_map, progress):
    from xmmtools import tables
    from xmmtools.columns import parse_column_map
    from xmmtools.errors import ColumnError
    from xmmtools.stage_io import load_for_stage
    from xmmtools.variability.short_spec import SPEC
    from xmmtools.variability.short_table import catalogue_columns, match_curves, normalise_obsid

    table, mapping = load_for_stage(path, SPEC, user_map=parse_column_map(column_map), progress=progress)
    if "SRC_NUM" not in mapping and not ("RA" in mapping and "DEC" in mapping):
        raise ColumnError(f"variability short needs SRC_NUM or RA and DEC in {path} to match light curves")
    obs = [normalise_obsid(v) for v in table.column(mapping["OBS_ID"]).to_pylist()]
    num = tables.to_numpy(table.column(mapping["SRC_NUM"]), float) if "SRC_NUM" in mapping else None
    ra = tables.to_numpy(table.column(mapping["RA"]), float) if "RA" in mapping and "DEC" in mapping else None
    dec = tables.to_numpy(table.column(mapping["DEC"]), float) if ra is not None else None
    matches = match_curves(obs, num, ra, dec, results, radius)
    return tables.add_columns(table, catalogue_columns(matches, results, table.num_rows, root))


def _plots(results, folder, quiet):
    from xmmtools.variability.short_plot import plot_curves

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


@click.command("events")
@click.argument("event_files", nargs=-1, required=True, metavar="EVENTS...")
@click.option("-o", "--output", required=True, help="Candidate table (one row per transient candidate).")
@click.option("--gti", "gti_file", default=None, metavar="FILE",
              help="GTI file (flare-filtered); it also fixes the window grid. Default: the event files' own.")
@click.option("--method", type=click.Choice(["exod", "exod2"]), default="exod", show_default=True,
              help="exod: pixel variability boxes (Pastor-Marazuela+2020); exod2: 20\" sky cells and "
                   "burst/eclipse Bayes factors (Khan+2025).")
@click.option("--time-bin", "time_window", type=click.FloatRange(min=0.0, min_open=True), default=None,
              help="Time window TW / frame (s). Default 100 (exod), 50 (exod2).")
@click.option("--detection-level", type=click.FloatRange(min=0.0, min_open=True), default=None,
              help="DL (default by TW: 3 s->5, 10 s->6, 30 s->7, 100 s->8, Pastor-Marazuela+2020).")
@click.option("--box", type=click.IntRange(min=1), default=None, help="Box size in raw pixels (default 3 pn, 13 MOS).")
@click.option("--gtr", type=click.FloatRange(0.0, 1.0, min_open=True), default=1.0, show_default=True,
              help="Windows with a smaller good-time fraction are dropped; others are scaled.")
@click.option("--pi-min", type=float, default=500.0, show_default=True, help="Lowest PI (eV).")
@click.option("--pi-max", type=float, default=12000.0, show_default=True, help="Highest PI (eV).")
@click.option("--merge-radius", type=click.FloatRange(min=0.0), default=10.0, show_default=True,
              help="Candidates of different cameras closer than this (arcsec) are one row.")
@click.option("--hot-pixels", "hot_files", multiple=True, metavar="CAM=CSV",
              help="4XMM-DR14 hot-pixel list per camera, e.g. M1=4xmmdr14_hotpixels_M1.csv (flags candidates).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@common_options
@pass_settings
def events(s, event_files, output, method, gti_file, time_window, detection_level, box, gtr, pi_min, pi_max,
           merge_radius, hot_files, overwrite):
    """EXOD-style transient search in EPIC event lists (Pastor-Marazuela et al. 2020; Khan et al. 2025).

    --method exod (default): per raw pixel, counts in TW-second windows (3x3 neighbourhood)
    give the variability V = max(Cmax - Cmed, |Cmin - Cmed|)/Cmed; boxes whose summed V exceeds DL*b^2*median(V) are
    candidates, merged across cameras, with sky positions from the events.

    --method exod2: counts in 20" sky cells x frames against a constant-sky model (source-masked
    background template), bursts and eclipses at 3/5 sigma from Bayes factors
    (--detection-level, --box and --gtr do not apply).

    \b
    Examples:
      xmmtools variability events M1_clean.fits.gz M2_clean.fits.gz --gti M1_gti.fits \\
          --time-bin 100 --detection-level 4 -o candidates.csv
      xmmtools variability events M1_clean.fits.gz --method exod2 --time-bin 200 -o exod2.csv
    """
    from xmmtools import tables
    from xmmtools.errors import DataError
    from xmmtools.variability.events_search import search_events
    from xmmtools.variability.exod import ExodConfig
    from xmmtools.variability.lightcurves import read_gti

    hot = {}
    for item in hot_files:
        cam, sep, path = item.partition("=")
        if not sep or cam.upper() not in ("PN", "M1", "M2"):
            raise DataError(f"--hot-pixels {item!r} is not CAM=FILE with CAM PN, M1 or M2")
        hot[cam.upper()] = path
    extra = [gti_file] if gti_file else []
    inputs = [*event_files, *extra, *hot.values()]
    tables.check_output(output, inputs=inputs, overwrite=overwrite)
    gti = read_gti(gti_file) if gti_file else None
    common = {"gti": gti, "pi_range": (pi_min, pi_max), "merge_radius": merge_radius, "hot_pixel_files": hot}
    params = {"method": method, "pi_min": pi_min, "pi_max": pi_max, "merge_radius": merge_radius, "gti": gti_file}
    if method == "exod2":
        if detection_level is not None or box is not None:
            raise DataError("--detection-level and --box apply to --method exod only")
        from xmmtools.variability.exod2_search import Exod2Config, search_exod2

        cfg2 = Exod2Config(time_bin=time_window or 50.0)
        table = search_exod2(list(event_files), cfg2, **common)
        params.update(time_bin=cfg2.time_bin, cell_arcsec=cfg2.cell, source_p=cfg2.source_p)
    else:
        cfg = ExodConfig(time_window=time_window or 100.0, detection_level=detection_level, box=box, gtr=gtr)
        table = search_events(list(event_files), cfg, **common)
        params.update(time_bin=cfg.time_window, detection_level=cfg.dl(), box=box, gtr=gtr)
    tables.write_table(table, output, provenance=tables.Provenance("variability-events", params, inputs),
                       overwrite=overwrite, inputs=inputs)
    if output != "-" and not s.quiet:
        click.echo(f"searched {len(event_files)} event lists; wrote {table.num_rows} candidates to {output}", err=True)
