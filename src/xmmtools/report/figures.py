"""The figures of the report: each a function of an Arrow table that returns PNG bytes, or
None when the table lacks what the figure needs.  Plots of more than ``MAX_PLOT_ROWS`` rows use
a seeded random subsample (the caption says so); histograms of one column use every row."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from xmmtools import tables

#: rows drawn in scatter plots and per-row figures (seeded subsample beyond this)
MAX_PLOT_ROWS = 100_000


@dataclass
class Figure:
    title: str
    caption: str
    png: bytes


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    _plt().close(fig)
    return buf.getvalue()


def _num(t: pa.Table, name: str) -> np.ndarray:
    return np.asarray(tables.to_numpy(t[name], float), dtype=float)


def _subsample(n: int) -> tuple[np.ndarray, str]:
    if n <= MAX_PLOT_ROWS:
        return np.arange(n), ""
    idx = np.sort(np.random.default_rng(0).choice(n, MAX_PLOT_ROWS, replace=False))
    return idx, f" (random subsample of {MAX_PLOT_ROWS:,} of {n:,} rows, seed 0)"


def _find(t: pa.Table, *names: str) -> str | None:
    for n in names:
        if n in t.column_names:
            return n
    return None


def class_prefix(t: pa.Table) -> str | None:
    """The prefix of classify's columns (``""`` for CLASS, ``"NB_"`` for NB_CLASS), found by
    the CLASS / CLASS_MARGIN pair classify writes; None without them."""
    for n in t.column_names:
        if n.endswith("CLASS") and n[: -len("CLASS")] + "CLASS_MARGIN" in t.column_names:
            return n[: -len("CLASS")]
    return "" if "CLASS" in t.column_names else None


def class_fractions(t: pa.Table, labels: str | None) -> Figure | None:
    prefix = class_prefix(t)
    if prefix is None:
        return None
    col = prefix + "CLASS"
    vals = [v if v is not None else "(none)" for v in t[col].to_pylist()]
    names, counts = np.unique(np.asarray(vals, dtype=str), return_counts=True)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(names, counts / counts.sum(), color="#4c72b0")
    for i, c in enumerate(counts):
        ax.text(i, c / counts.sum(), str(c), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("fraction of rows")
    ax.set_title("CLASS")
    return Figure(
        "Class fractions", f"Predicted CLASS over all {t.num_rows:,} rows (counts above the bars).", _png(fig)
    )


def outlier_scores(t: pa.Table, labels: str | None) -> Figure | None:
    prefix = class_prefix(t)
    col = _find(t, (prefix or "") + "OUTLIER_SCORE")
    if col is None:
        return None
    v = _num(t, col)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(v, bins=min(50, max(5, v.size // 3)), color="#dd8452")
    ax.set_xlabel(f"{col} = -log10 max_c posterior")
    ax.set_ylabel("rows")
    return Figure("Outlier scores", f"{v.size:,} finite scores.", _png(fig))


def confusion(t: pa.Table, labels: str | None) -> Figure | None:
    prefix = class_prefix(t)
    if labels is None or labels not in t.column_names or prefix is None:
        return None
    true = np.asarray([str(x) for x in t[labels].to_pylist()])
    pred = np.asarray([str(x) for x in t[prefix + "CLASS"].to_pylist()])
    classes = sorted(set(pred) | set(true))
    m = np.zeros((len(classes), len(classes)), int)
    pos = {c: i for i, c in enumerate(classes)}
    for a, b in zip(true, pred, strict=True):
        m[pos[a], pos[b]] += 1
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(m, cmap="Blues")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(classes)), classes, rotation=45)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel(f"{prefix}CLASS (predicted)")
    ax.set_ylabel(f"{labels} (label)")
    return Figure("Confusion matrix", f"Rows: the labels of {labels}; columns: {prefix}CLASS.", _png(fig))


def reliability(t: pa.Table, labels: str | None) -> Figure | None:
    prefix = class_prefix(t)
    if labels is None or labels not in t.column_names or prefix is None:
        return None
    start = prefix + "P_"
    probs = [n for n in t.column_names if n.startswith(start) and n[len(start) :] and n not in ("P_ANY", "P_I")]
    true = np.asarray([str(x) for x in t[labels].to_pylist()])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    drawn = 0
    for p in probs:
        cls = p[len(start) :]
        if not (true == cls).any():
            continue
        v = _num(t, p)
        ok = np.isfinite(v)
        edges = np.linspace(0, 1, 11)
        k = np.clip(np.digitize(v[ok], edges) - 1, 0, 9)
        hit = (true[ok] == cls).astype(float)
        xs, ys = [], []
        for b in range(10):
            sel = k == b
            if sel.sum() >= 3:
                xs.append(v[ok][sel].mean())
                ys.append(hit[sel].mean())
        ax.plot(xs, ys, "o-", label=cls)
        drawn += 1
    if not drawn:
        _plt().close(fig)
        return None
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed fraction")
    ax.legend(fontsize=8)
    return Figure("Reliability", "Ten probability bins with at least 3 rows each.", _png(fig))


def redshifts(t: pa.Table, labels: str | None) -> Figure | None:
    if "Z_PHOT" not in t.column_names:
        return None
    z = _num(t, "Z_PHOT")
    z = z[np.isfinite(z)]
    if z.size == 0:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(z, bins=40, color="#55a868")
    ax.set_xlabel("Z_PHOT")
    ax.set_ylabel("rows")
    return Figure("Photometric redshifts", f"{z.size:,} finite Z_PHOT.", _png(fig))


def pdfs(t: pa.Table, labels: str | None) -> Figure | None:
    if "Z_PDF" not in t.column_names or not pa.types.is_fixed_size_list(t.schema.field("Z_PDF").type):
        return None
    col = t["Z_PDF"]
    nb = t.schema.field("Z_PDF").type.list_size
    zmax = 6.0
    desc = tables.description_of(t.schema.field("Z_PDF")) or ""
    if "to " in desc:
        with contextlib.suppress(ValueError, IndexError):
            zmax = float(desc.rsplit("to ", 1)[1].split()[0])
    grid = (np.arange(nb) + 0.5) * zmax / nb
    rows = np.linspace(0, t.num_rows - 1, min(5, t.num_rows)).astype(int)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    for r in rows:
        v = col[int(r)].as_py()
        if v is None:
            continue
        ax.plot(grid, v, lw=1, label=f"row {r}")
    ax.set_xlabel("z")
    ax.set_ylabel("probability per bin")
    ax.legend(fontsize=7)
    return Figure("Redshift PDFs", f"Z_PDF of {len(rows)} rows spread over the table.", _png(fig))


def variability(t: pa.Table, labels: str | None) -> Figure | None:
    if "LT_VAR_RATIO" not in t.column_names:
        return None
    v = _num(t, "LT_VAR_RATIO")
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(np.log10(v), bins=30, color="#8172b3")
    ax.set_xlabel("log10 LT_VAR_RATIO")
    ax.set_ylabel("rows")
    return Figure("Long-term variability", f"{v.size:,} rows with a positive ratio; alerts above 5.", _png(fig))


def sky_thresholds(t: pa.Table, labels: str | None) -> Figure | None:
    col = _find(t, "EP_8_THRESH_FLUX")
    if col is None or "RA" not in t.column_names or "DEC" not in t.column_names:
        return None
    idx, note = _subsample(t.num_rows)
    ra, dec, f = _num(t, "RA")[idx], _num(t, "DEC")[idx], _num(t, col)[idx]
    ok = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(f) & (f > 0)
    if not ok.any():
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    sc = ax.scatter(ra[ok], dec[ok], c=np.log10(f[ok]), s=12, cmap="viridis")
    ax.invert_xaxis()
    ax.set_xlabel("RA (deg)")
    ax.set_ylabel("Dec (deg)")
    fig.colorbar(sc, label=f"log10 {col} (erg/cm2/s)")
    return Figure("Detection thresholds", f"Threshold flux at each detection{note}.", _png(fig))


def sensitivity_map(t: pa.Table) -> Figure | None:
    """A sparse HEALPix map (NPIX, THRESH_FLUX_<band>) of ``xmmtools sensitivity-map``."""
    cols = [n for n in t.column_names if n.startswith("THRESH_FLUX")]
    if "NPIX" not in t.column_names or not cols:
        return None
    import healpy as hp

    meta = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in (t.schema.metadata or {}).items()}
    order = None
    for chain in tables.provenance_of(t.schema)[::-1]:
        order = chain.get("parameters", {}).get("order") if isinstance(chain, dict) else None
        if order is not None:
            break
    order = int(order if order is not None else meta.get("HPX_ORDER", 16))
    idx, note = _subsample(t.num_rows)
    npix = np.asarray(tables.to_numpy(t["NPIX"]), dtype=np.int64)[idx]
    f = _num(t, cols[0])[idx]
    lon, lat = hp.pix2ang(2**order, npix, nest=True, lonlat=True)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    ok = np.isfinite(f) & (f > 0)
    sc = ax.scatter(lon[ok], lat[ok], c=np.log10(f[ok]), s=4, marker="s", cmap="magma")
    ax.invert_xaxis()
    ax.set_xlabel("RA (deg)")
    ax.set_ylabel("Dec (deg)")
    fig.colorbar(sc, label=f"log10 {cols[0]} (erg/cm2/s)")
    return Figure("Sensitivity map", f"{int(ok.sum()):,} HEALPix cells of order {order}{note}.", _png(fig))


def light_curves(t: pa.Table, epochs: pa.Table, alerts: pa.Table | None, n: int = 4) -> Figure | None:
    """Long-term light curves (the ``--epochs`` table) of the alerted sources, else of the
    sources with the largest LT_VAR_RATIO."""
    if not {"SRCID", "MJD", "FLUX"} <= set(epochs.column_names):
        return None
    if alerts is not None and "SRCID" in alerts.column_names and alerts.num_rows:
        ids = list(dict.fromkeys(alerts["SRCID"].to_pylist()))[:n]
        why = "alerted sources"
    elif "LT_VAR_RATIO" in t.column_names and "SRCID" in t.column_names:
        r = _num(t, "LT_VAR_RATIO")
        order = np.argsort(np.where(np.isfinite(r), -r, np.inf))
        ids = list(dict.fromkeys(np.asarray(t["SRCID"].to_pylist(), dtype=object)[order].tolist()))[:n]
        why = "largest LT_VAR_RATIO (no alerts)"
    else:
        return None
    src = np.asarray(epochs["SRCID"].to_pylist(), dtype=object)
    mjd, flux = _num(epochs, "MJD"), _num(epochs, "FLUX")
    err = _num(epochs, "FLUX_ERR") if "FLUX_ERR" in epochs.column_names else np.zeros_like(flux)
    ul = (
        np.asarray(epochs["IS_UL"].to_pylist(), dtype=bool)
        if "IS_UL" in epochs.column_names
        else np.zeros(len(flux), bool)
    )
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for s in ids:
        m = src == s
        det = m & ~ul
        line = ax.errorbar(mjd[det], flux[det], yerr=np.nan_to_num(err[det]), fmt="o-", ms=3, label=str(s))
        if (m & ul).any():
            ax.plot(mjd[m & ul], flux[m & ul], "v", color=line[0].get_color())
    ax.set_yscale("log")
    ax.set_xlabel("MJD")
    ax.set_ylabel("0.1-12 keV flux (erg/cm2/s)")
    ax.legend(fontsize=7, title="SRCID", title_fontsize=7)
    return Figure("Light curves", f"Long-term light curves of the {why}; triangles are upper limits.", _png(fig))


#: the per-table figures, in page order
TABLE_FIGURES: list[Callable[[pa.Table, str | None], Figure | None]] = [
    class_fractions,
    outlier_scores,
    confusion,
    reliability,
    redshifts,
    pdfs,
    variability,
    sky_thresholds,
]


def figures_for(t: pa.Table, labels: str | None = None) -> list[Figure]:
    """Every figure the table's columns allow."""
    return [f for f in (make(t, labels) for make in TABLE_FIGURES) if f is not None]
