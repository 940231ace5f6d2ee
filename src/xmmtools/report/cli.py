"""``xmmtools report``: one static HTML page of a release."""

from __future__ import annotations

import os

import click

from xmmtools import tables
from xmmtools.cli import Settings, common_options, pass_settings
from xmmtools.errors import OutputError


@click.command(name="report")
@click.argument("table", nargs=-1, required=True)
@click.option(
    "--html", "-o", "--output", "out_dir", required=True, metavar="DIR", help="Folder of the report (index.html)."
)
@click.option(
    "--labels", metavar="COLUMN", default=None, help="True classes: adds a confusion matrix and reliability curves."
)
@click.option("--epochs", metavar="FILE", default=None, help="Long-term light curves (variability long --epochs).")
@click.option("--alerts", metavar="FILE", default=None, help="Alerts (variability long --alerts): their light curves.")
@click.option("--sensmap", metavar="FILE", default=None, help="A sensitivity-map table (NPIX, THRESH_FLUX_*).")
@click.option("--overwrite", is_flag=True, help="Replace an existing report folder.")
@common_options
@pass_settings
def report(
    settings: Settings,
    table: tuple[str, ...],
    out_dir: str,
    labels: str | None,
    epochs: str | None,
    alerts: str | None,
    sensmap: str | None,
    overwrite: bool,
) -> None:
    """A static HTML report of one or more tables: provenance, value-added columns, figures.

    \b
    Example:
      xmmtools report build/demo/ngc5139_release.parquet --html build/demo/report
    """
    from xmmtools.report.figures import light_curves, sensitivity_map
    from xmmtools.report.page import render_report

    inputs = [*table, *(p for p in (epochs, alerts, sensmap) if p)]
    for p in inputs:
        if p != "-" and os.path.realpath(p) == os.path.realpath(out_dir):
            raise OutputError(f"{out_dir}: the report folder is an input; refusing to write over it")
    extra = []
    if epochs:
        al = tables.read_table(alerts) if alerts else None
        f = light_curves(tables.read_table(table[0]), tables.read_table(epochs), al)
        if f is not None:
            extra.append(f)
    if sensmap:
        f = sensitivity_map(tables.read_table(sensmap))
        if f is not None:
            extra.append(f)
    path = render_report(list(table), out_dir, labels=labels, extra=extra, overwrite=overwrite)
    if not settings.quiet:
        click.echo(f"wrote the report {path}", err=True)
