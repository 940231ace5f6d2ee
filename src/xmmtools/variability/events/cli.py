"""``xmmtools variability events``: parse options, call the event-list search, hand the
candidates to xmmtools.tables."""

from __future__ import annotations

import click

from xmmtools.cli import common_options, pass_settings


@click.command("events")
@click.argument("event_files", nargs=-1, required=True, metavar="EVENTS...")
@click.option("-o", "--output", required=True, help="Candidate table (one row per transient candidate).")
@click.option(
    "--gti",
    "gti_file",
    default=None,
    metavar="FILE",
    help="GTI file (flare-filtered); it also fixes the window grid. Default: the event files' own.",
)
@click.option(
    "--method",
    type=click.Choice(["exod", "exod2"]),
    default="exod",
    show_default=True,
    help='exod: pixel variability boxes (Pastor-Marazuela+2020); exod2: 20" sky cells and '
    "burst/eclipse Bayes factors (Khan+2025).",
)
@click.option(
    "--time-bin",
    "time_window",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    help="Time window TW / frame (s). Default 100 (exod), 50 (exod2).",
)
@click.option(
    "--detection-level",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    help="DL (default by TW: 3 s->5, 10 s->6, 30 s->7, 100 s->8, Pastor-Marazuela+2020).",
)
@click.option("--box", type=click.IntRange(min=1), default=None, help="Box size in raw pixels (default 3 pn, 13 MOS).")
@click.option(
    "--gtr",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=1.0,
    show_default=True,
    help="Windows with a smaller good-time fraction are dropped; others are scaled.",
)
@click.option(
    "--pi-min",
    type=float,
    default=None,
    help="Lowest PI (eV). Default 200 (exod2, as EXOD2) or 500 (exod, Pastor-Marazuela+2020).",
)
@click.option("--pi-max", type=float, default=12000.0, show_default=True, help="Highest PI (eV).")
@click.option(
    "--merge-radius",
    type=click.FloatRange(min=0.0),
    default=10.0,
    show_default=True,
    help="Candidates of different cameras closer than this (arcsec) are one row.",
)
@click.option(
    "--hot-pixels",
    "hot_files",
    multiple=True,
    metavar="CAM=CSV",
    help="4XMM-DR14 hot-pixel list per camera, e.g. M1=4xmmdr14_hotpixels_M1.csv (flags candidates).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@common_options
@pass_settings
def events(
    s,
    event_files,
    output,
    method,
    gti_file,
    time_window,
    detection_level,
    box,
    gtr,
    pi_min,
    pi_max,
    merge_radius,
    hot_files,
    overwrite,
):
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
    from xmmtools.variability.events.exod import ExodConfig
    from xmmtools.variability.events.search import search_events
    from xmmtools.variability.gti import read_gti

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
    if pi_min is None:
        pi_min = 200.0 if method == "exod2" else 500.0
    common = {"gti": gti, "pi_range": (pi_min, pi_max), "merge_radius": merge_radius, "hot_pixel_files": hot}
    params = {"method": method, "pi_min": pi_min, "pi_max": pi_max, "merge_radius": merge_radius, "gti": gti_file}
    if method == "exod2":
        if detection_level is not None or box is not None:
            raise DataError("--detection-level and --box apply to --method exod only")
        from xmmtools.variability.events.exod2_search import Exod2Config, search_exod2

        cfg2 = Exod2Config(time_bin=time_window or 50.0)
        table = search_exod2(list(event_files), cfg2, **common)
        params.update(time_bin=cfg2.time_bin, cell_arcsec=cfg2.cell, source_p=cfg2.source_p)
    else:
        cfg = ExodConfig(time_window=time_window or 100.0, detection_level=detection_level, box=box, gtr=gtr)
        table = search_events(list(event_files), cfg, **common)
        params.update(time_bin=cfg.time_window, detection_level=cfg.dl(), box=box, gtr=gtr)
    tables.write_table(
        table,
        output,
        provenance=tables.Provenance("variability-events", params, inputs),
        overwrite=overwrite,
        inputs=inputs,
    )
    if output != "-" and not s.quiet:
        click.echo(f"searched {len(event_files)} event lists; wrote {table.num_rows} candidates to {output}", err=True)
