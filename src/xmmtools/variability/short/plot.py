"""Figures for ``variability short --plot``: net rate with errors, background, Bayesian blocks
and GTIs.  matplotlib is an optional dependency (``pip install xmmtools[plot]``)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence


def plot_curves(results: Sequence, folder: str) -> tuple[int, str]:
    """One PNG per analysed curve; returns (figures written, message if plotting was skipped)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 0, "note: --plot-dir skipped: matplotlib is not installed (pip install 'xmmtools[plot]')"
    os.makedirs(folder, exist_ok=True)
    n = 0
    for r in results:
        fig = figure(r.lc, r.stats, plt)
        fig.savefig(os.path.join(folder, _png_name(r.lc)), dpi=110)
        plt.close(fig)
        n += 1
    return n, ""


def figure(lc, stats, plt):
    """Net rate (points with model errors), background in the source region, Bayesian blocks
    (when computed) and the GTIs as shaded spans; times in ks from the first bin."""
    import numpy as np

    from xmmtools.variability.short.statistics import bayesian_block_segments
    from xmmtools.variability.short.table import curve_products

    p = curve_products(lc)
    t0 = lc.time[0]
    tk = (lc.time - t0) / 1e3
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for start, stop in lc.gti:
        ax.axvspan((start - t0) / 1e3, (stop - t0) / 1e3, color="0.93", lw=0)
    ax.errorbar(tk, p["rate"], yerr=p["rate_err"], fmt=".", ms=2, lw=0.5, color="k", label="net rate")
    if lc.bkg_counts is not None:
        ax.step(tk, p["bkg_rate"], where="mid", color="tab:orange", lw=0.8, label="background (model)")
    if np.isfinite(stats.get("BB_NBLOCKS", np.nan)):
        starts, stops, rates = bayesian_block_segments(lc.counts, lc.exposure, p["bkg_model"])
        for a, b, r in zip(starts, stops, rates, strict=True):
            ax.hlines(r, tk[a], tk[b - 1], color="tab:blue", lw=2)
    ax.set_xlabel(f"time - {t0:.0f} s (ks)")
    ax.set_ylabel("net rate (counts/s)")
    ax.set_title(
        f"{lc.obs_id} {lc.camera} {lc.name or os.path.basename(lc.path)}  "
        f"p={stats.get('VARPROB', np.nan):.2g} ({stats.get('VARTEST', '')})  "
        f"Fvar={stats.get('FVAR', np.nan):.2g}",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def _png_name(lc) -> str:
    base = os.path.basename(lc.path)
    stem = re.sub(r"(\.gz|\.ftz|\.fits|\.fit|\.lc)+$", "", base, flags=re.I)
    return f"{lc.obs_id}_{lc.camera}_{stem}.png"
