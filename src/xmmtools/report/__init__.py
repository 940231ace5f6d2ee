"""The static HTML report of a release (``xmmtools report``): the provenance chain, summaries of
the value-added columns and the figures each stage can make, in one self-contained page."""

from xmmtools.report.figures import figures_for
from xmmtools.report.page import render_report

__all__ = ["figures_for", "render_report"]
