"""``xmmtools variability short|long``: a group whose halves load lazily."""

from __future__ import annotations

import importlib

import click

SUBCOMMANDS = {
    "short": "xmmtools.variability.short_cli:short",
    "long": "xmmtools.variability.long_cli:long",
}


class _LazyVariability(click.Group):
    def list_commands(self, ctx):
        return [n for n in SUBCOMMANDS if self.get_command(ctx, n) is not None]

    def get_command(self, ctx, name):
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        mod, attr = target.split(":")
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:
                return None
            raise
        return getattr(m, attr)


@click.group(cls=_LazyVariability)
def variability():
    """Find what varies: within an observation (short) or between epochs and missions (long).

    \b
    Examples:
      xmmtools variability short --lightcurves lc/ -o lc_stats.parquet
      xmmtools variability short cat.fits --lightcurves lc/ -o cat_var.fits
      xmmtools variability long detections.fits --upper-limits ul.parquet -o cat_lt.fits
    """
