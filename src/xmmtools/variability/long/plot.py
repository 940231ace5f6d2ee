"""Multi-mission long-term light curve of one source (the STONKS alert figure, Q24 Fig. 4).

Detections with 1-sigma error bars and upper limits as downward arrows, one marker per
catalogue, fluxes in the common 0.1-12 keV band.  Returns a matplotlib Figure; saving is the
caller's business.
"""

from __future__ import annotations

import numpy as np

from xmmtools.variability.long.epochs import Epochs

MARKERS = "osD^v<>ph*"


def light_curve_figure(ep: Epochs, source: int, title: str = "", new_epoch: int | None = None):
    """A matplotlib Figure with the light curve of ``source`` (an index into the sources)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = np.flatnonzero(ep.source == source)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    for k, cat in enumerate(sorted(set(ep.catalogue[sel].astype(str)))):
        i = sel[ep.catalogue[sel] == cat]
        det, ul = i[~ep.is_ul[i]], i[ep.is_ul[i]]
        color = f"C{k % 10}"
        m = MARKERS[k % len(MARKERS)]
        if det.size:
            ax.errorbar(
                ep.mjd[det], ep.flux[det], yerr=np.nan_to_num(ep.err[det]), fmt=m, color=color, capsize=2, label=cat
            )
        if ul.size:
            ax.errorbar(
                ep.mjd[ul],
                ep.flux[ul],
                yerr=0.3 * ep.flux[ul],
                uplims=True,
                fmt="_",
                color=color,
                label=f"{cat} upper limit",
            )
    if new_epoch is not None and new_epoch >= 0:
        ax.plot(ep.mjd[new_epoch], ep.flux[new_epoch], "o", ms=12, mfc="none", mec="k", label="new detection")
    ax.set_yscale("log")
    ax.set_xlabel("MJD")
    ax.set_ylabel("F(0.1-12 keV) [erg cm$^{-2}$ s$^{-1}$]")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return fig
