"""``xmmtools crossmatch``: wiring only (reading, the science modules, writing)."""

from __future__ import annotations

import os

import click

from xmmtools.cli import common_options, engine_options, output_options, pass_settings

EXAMPLES = """
\b
Examples:
  xmmtools crossmatch cat.fits --catalog opt=optical.fits --pos-err opt=0.1 -o cat_opt.fits
  xmmtools crossmatch cat.fits --catalog gaia=gaia.parquet --catalog wise=allwise.fits \\
      --radius 15 --prior-completeness 0.9 --mag wise:W1mag auto --all -o pairs.fits
  xmmtools crossmatch cat.fits --catalog gaia=vizier:I/355/gaiadr3 --radius 10
  xmmtools crossmatch cat.fits --catalog gaia=hats:/data/gaia_dr3 --radius 5
  xmmtools crossmatch cat.fits --catalog gaia=hats:/data/gaia_dr3 --engine dask --scheduler tcp://head:8786
  xmmtools crossmatch cat.fits --catalog opt=opt.fits --method nearest --radius 5
  xmmtools crossmatch cat.fits --catalog sdss=sdss_dr16.fits -o cat_sdss.fits   # then: xmmtools photoz cat_sdss.fits
"""


@click.command(epilog=EXAMPLES)
@click.argument("primary")
@click.option(
    "--catalog",
    "catalogs",
    multiple=True,
    required=True,
    metavar="NAME=FILE[:KNOWN]",
    help="Counterpart catalogue (repeat for several). FILE may be vizier:TABLE or xmatch:TABLE "
    "(remote, cached), or hats:DIR (a HATS catalogue, read through LSDB). A known NAME "
    "(gaia, gaiadist, allwise, catwise, tmass, sdss, ps1, ls; or FILE:KNOWN for another "
    "label) sets coordinates, errors and writes the best counterpart's bands under canonical "
    "names (SDSS_U, GAIA_G, WISE_W1, ...); NAME=vizier: fetches its VizieR table.",
)
@click.option("-o", "--output", default=None, help="Output file (format from extension) or '-'.")
@click.option(
    "--primary-name",
    default="PRIMARY",
    show_default=True,
    metavar="NAME",
    help="Name of the primary catalogue in --pos-err/--area and provenance.",
)
@click.option(
    "--pos-err",
    "pos_errs",
    multiple=True,
    metavar="NAME=COL|ARCSEC|ERA:EDEC|A:B:PHI",
    help="Positional error of a catalogue: a column (1 sigma per axis; 4XMM POSERR/RADEC_ERR are "
    "divided by sqrt(2)), a fixed value in arcsec, RA/Dec errors, or an ellipse.",
)
@click.option(
    "--radius",
    type=click.FloatRange(min=0, min_open=True),
    default=15.0,
    show_default=True,
    help="Search radius in arcsec.",
)
@click.option(
    "--method",
    type=click.Choice(["auto", "bayes", "nearest", "all"]),
    default="auto",
    show_default=True,
    help="auto = bayes when every catalogue has positional errors, else nearest.",
)
@click.option(
    "--prior-completeness",
    default="0.9",
    show_default=True,
    metavar="C[,C...]",
    help="Expected fraction of primaries with a counterpart (one value, split over the catalogues, "
    "or one per catalogue).",
)
@click.option(
    "--mag",
    "mags",
    nargs=2,
    multiple=True,
    metavar="NAME:COLUMN auto|FILE",
    help="Attribute prior q(m)/n(m) for a counterpart column: built from the data (auto) or read "
    "from a file 'lo hi selected others'.",
)
@click.option(
    "--mag-min-post",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.9,
    show_default=True,
    help="Positional posterior above which a candidate counts as secure for --mag auto.",
)
@click.option(
    "--min-prob",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="With --all: drop combinations with P_I below this.",
)
@click.option("--all", "all_rows", is_flag=True, help="One row per candidate combination (with MATCH_FLAG), as NWAY.")
@click.option(
    "--area",
    "areas",
    multiple=True,
    metavar="NAME=DEG2|MOC",
    help="Sky area of a catalogue in deg2, or a MOC file (FITS/Parquet UNIQ column, JSON or ASCII) "
    "whose area is used (default: SKYAREA header, else a HEALPix footprint estimate).",
)
@click.option(
    "--ellipse",
    type=click.Choice(["exact", "nway"]),
    default="exact",
    show_default=True,
    help="Elliptical errors: exact Gaussian, or NWAY 4.8's approximation (for reproduction).",
)
@click.option(
    "--calibrate",
    is_flag=True,
    help="Also match primaries shifted by --calibrate-shift and write the false-positive rate vs P_ANY cut.",
)
@click.option(
    "--calibrate-shift",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Shift of the fake primaries (arcsec).",
)
@click.option(
    "--calibrate-out", default=None, metavar="FILE", help="Calibration table (default: OUTPUT stem + _calibration.csv)."
)
@click.option(
    "--cache-dir",
    default=None,
    metavar="DIR",
    help="Cache of remote (vizier:/xmatch:) queries (default: ~/.cache/xmmtools/crossmatch).",
)
@click.option(
    "--stream-rows",
    type=click.IntRange(min=0),
    default=20_000_000,
    show_default=True,
    metavar="N",
    help="Counterpart files with more rows are read in chunks, keeping only the sources that can lie "
    "within the radius of a primary (memory follows the primaries' footprint, not the file).",
)
@output_options
@engine_options
@common_options
@pass_settings
def crossmatch(
    s,
    primary,
    catalogs,
    output,
    primary_name,
    pos_errs,
    radius,
    method,
    prior_completeness,
    mags,
    mag_min_post,
    min_prob,
    all_rows,
    areas,
    ellipse,
    calibrate,
    calibrate_shift,
    calibrate_out,
    cache_dir,
    stream_rows,
    overwrite,
    column_map,
    chunk_size,
    engine,
    scheduler,
    workers,
):
    """Find counterparts of PRIMARY's sources in other catalogues.

    The Bayesian method (NWAY-style: Budavari & Szalay 2008; Salvato et al. 2018) writes, per
    primary source, P_ANY (probability of any counterpart), the best counterpart's columns
    prefixed NAME_, NAME_SEP, NAME_P_I and N_CANDIDATES; with --all one row per candidate
    combination with P_I and MATCH_FLAG.  nearest/all are purely positional.
    """
    from xmmtools import engine as engines
    from xmmtools.crossmatch.run import Request, run
    from xmmtools.runtime import tune_for_large_arrays

    tune_for_large_arrays()
    req = Request(
        primary=primary,
        catalogs=list(catalogs),
        output=output,
        primary_name=primary_name,
        pos_errs=list(pos_errs),
        radius=radius,
        method=method,
        completeness=prior_completeness,
        mags=[tuple(m) for m in mags],
        mag_min_post=mag_min_post,
        min_prob=min_prob,
        all_rows=all_rows,
        areas=list(areas),
        ellipse=ellipse,
        calibrate=calibrate,
        calibrate_shift=calibrate_shift,
        calibrate_out=calibrate_out,
        cache_dir=cache_dir,
        overwrite=overwrite,
        column_map=list(column_map),
        chunk_size=chunk_size,
        stream_rows=stream_rows,
        engine=engines.from_options(engine, scheduler, workers),
    )
    notes = run(req, progress=s.progress)
    if not s.quiet:
        for line in notes:
            click.echo(line, err=True)


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "xmmtools", "crossmatch")


__all__ = ["crossmatch", "default_cache_dir"]
