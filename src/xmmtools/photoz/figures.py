"""Evaluation figures for ``xmmtools photoz evaluate --report DIR`` (matplotlib, Agg)."""

from __future__ import annotations

import os

import numpy as np

from xmmtools.photoz.metrics import pit_values


def evaluation_figures(folder: str, z_spec: np.ndarray, est: dict, pdfs: np.ndarray, edges: np.ndarray) -> list[str]:
    """z_phot vs z_spec (2-D density), PIT histogram, and N(z) (spec-z, Z_PHOT, stacked PDFs)."""
    try:
        import matplotlib
    except ImportError:  # optional dependency (extra "plot")
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    zp = est["Z_PHOT"]
    ok = np.isfinite(zp)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.hist2d(z_spec[ok], zp[ok], bins=[edges, edges], cmap="Greys", cmin=1)
    lim = [edges[0], edges[-1]]
    x = np.linspace(edges[0], edges[-1], 50)
    ax.plot(lim, lim, "r-", lw=0.8)
    for sign in (1, -1):
        ax.plot(x, x + sign * 0.15 * (1 + x), "r--", lw=0.6)
    ax.set(xlabel="z_spec", ylabel="Z_PHOT (mode)", xlim=lim, ylim=lim)
    out.append(_save(fig, folder, "zphot_vs_zspec.png"))
    pit = pit_values(pdfs[ok], edges, z_spec[ok])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(pit, bins=20, range=(0, 1), color="0.5")
    ax.axhline(len(pit) / 20, color="r", lw=0.8)
    ax.set(xlabel="PIT = CDF(z_spec)", ylabel="objects")
    out.append(_save(fig, folder, "pit_histogram.png"))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    w = np.diff(edges)
    ax.hist(z_spec, bins=edges.tolist(), histtype="step", color="k", label="z_spec")  # same float64 edges
    ax.hist(zp[ok], bins=edges.tolist(), histtype="step", color="b", label="Z_PHOT")
    ax.step(edges[:-1], np.nansum(pdfs, axis=0), where="post", color="r", label="sum of PDFs")
    ax.set(xlabel="z", ylabel=f"objects per bin ({w[0]:.3g})")
    ax.legend()
    out.append(_save(fig, folder, "nz.png"))
    return out


def _save(fig, folder, name):
    path = os.path.join(folder, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
