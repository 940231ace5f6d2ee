"""``xmmtools variability short|long|events``: a group whose commands load lazily."""

from __future__ import annotations

import click

from xmmtools.cli import LazyGroup

SUBCOMMANDS = {
    "short": "xmmtools.variability.short.cli:short",
    "long": "xmmtools.variability.long.cli:long",
    "events": "xmmtools.variability.events.cli:events",
}


@click.group(cls=LazyGroup, lazy_commands=SUBCOMMANDS)
def variability():
    """Find what varies: within an observation (short) or between epochs and missions (long).

    \b
    Examples:
      xmmtools variability short --lightcurves lc/ -o lc_stats.parquet
      xmmtools variability short cat.fits --lightcurves lc/ -o cat_var.fits
      xmmtools variability long detections.fits --upper-limits ul.parquet -o cat_lt.fits
    """
