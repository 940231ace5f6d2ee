"""Apply photo-z models to catalogue rows: routing by CLASS, estimates, output columns.

Pure functions over arrays: they never open files or print.  The command (cli.py) streams
chunks through :func:`photoz_columns`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xmmtools.photoz.attributes import AttributeSet, taking_rows
from xmmtools.photoz.model import FLAG_NOT_EXTRAGALACTIC, Model
from xmmtools.photoz.pdf import QUANTILE_LEVELS, quantiles, rebin_matrix, union_edges
from xmmtools.tables.model import NewColumn

#: CLASS values (upper case) that select the AGN model; prefixes AGN*/QSO* also count.
AGN_CLASSES = {"AGN", "QSO", "BLAZAR", "SEYFERT", "BLAGN", "NLAGN"}
#: Other extragalactic CLASS values (galaxy model).
GALAXY_CLASSES = {"GALAXY", "GAL", "EXTENDED", "CLUSTER", "ULX", "EXGAL_XRB", "EXTRAGALACTIC", "NUCLEAR"}

_DESCRIPTIONS = {
    "Z_PHOT": "photometric redshift: mode of the TPZ PDF",
    "Z_MEAN": "mean of the photo-z PDF",
    "Z_MEDIAN": "median of the photo-z PDF",
    "Z_ERR": "half-width of the central 68% interval of the photo-z PDF",
    "Z_L68": "lower bound of the central 68% photo-z interval",
    "Z_U68": "upper bound of the central 68% photo-z interval",
    "Z_L95": "lower bound of the central 95% photo-z interval",
    "Z_U95": "upper bound of the central 95% photo-z interval",
    "Z_CONF": "photo-z PDF mass within Z_PHOT +- 0.02(1+Z_PHOT) (TPZ zConf)",
    "Z_FLAG": "photo-z flags: 1 attribute missing, 2 no attributes, 4 outside training range, "
    "8 rare missing-band pattern, 16 not extragalactic (skipped)",
}


def route(classes: np.ndarray | None, names: Sequence[str], *, all_rows: bool) -> np.ndarray | None:
    """Index into ``names`` (the models in use) per row; -1 = skip the row.

    With one model every selected row uses it.  With two (``agn``, ``galaxy``), AGN-like
    classes use the first, other extragalactic classes the second.  Without CLASS every row
    uses the first model.  Rows whose CLASS is galactic, empty or unknown are skipped unless
    ``all_rows`` (then they use the last model).
    """
    if classes is None:
        return None
    n = len(classes)
    cls = np.array(
        [("" if c is None else c.decode() if isinstance(c, bytes) else str(c)).strip().upper() for c in classes],
        dtype=object,
    )
    agn = np.array([c in AGN_CLASSES or c.startswith(("AGN", "QSO")) for c in cls], dtype=bool)
    gal = np.array([c in GALAXY_CLASSES for c in cls], dtype=bool)
    out = np.full(n, len(names) - 1 if all_rows else -1, np.int64)
    out[gal] = len(names) - 1
    out[agn] = 0
    return out


def in_domain(model: Model, X: np.ndarray) -> np.ndarray:
    """True for rows with at least one attribute whose every measured attribute lies inside
    the model's training range (``model.ranges``): the trees were grown on such rows; outside
    them TPZ extrapolates (Carrasco Kind & Brunner 2013, Sect. 5: the training set must
    represent the photometric sample)."""
    X = np.asarray(X, float)
    with np.errstate(invalid="ignore"):
        ok = ~np.isfinite(X) | ((model.ranges[:, 0] <= X) & (model.ranges[:, 1] >= X))
    return ok.all(axis=1) & np.isfinite(X).any(axis=1)


def route_by_domain(app: Applier, get: Callable[[str], np.ndarray], n: int) -> np.ndarray:
    """Model index per row for a table without CLASS and models (``agn``, ``galaxy``): galaxy
    where the row lies inside the galaxy model's training domain (:func:`in_domain`: SDSS MGS
    galaxies, r < 17.77), else agn, whose quasar training set spans the wider range.  Rows
    outside the chosen model's domain keep Z_FLAG bit 4."""
    agn, gal = 0, 1
    X, _ = app.attrs[gal].values(get)
    which = np.full(n, agn, np.int64)
    which[in_domain(app.models[gal], X)] = gal
    return which


@dataclass
class Applier:
    """Models resolved on a table, ready to be applied chunk by chunk."""

    models: list[Model]
    attrs: list[AttributeSet]
    pdf_format: str = "grid"
    n_jobs: int = 1

    @property
    def edges(self) -> np.ndarray:
        return union_edges([m.grid.edges for m in self.models])

    def columns(self, get: Callable[[str], np.ndarray], n: int, which: np.ndarray | None) -> list[NewColumn]:
        """New columns for ``n`` rows; ``which`` (model index per row, -1 skip) or None = model 0."""
        return photoz_columns(
            self.models, self.attrs, get, n, which, pdf_format=self.pdf_format, n_jobs=self.n_jobs, edges=self.edges
        )


def photoz_columns(
    models: Sequence[Model],
    attrs: Sequence[AttributeSet],
    get: Callable[[str], np.ndarray],
    n: int,
    which: np.ndarray | None,
    *,
    pdf_format: str = "grid",
    n_jobs: int = 1,
    edges: np.ndarray | None = None,
) -> list[NewColumn]:
    """Z_PHOT ... Z_FLAG (+ Z_PDF on ``edges`` or Z_PDF_Q quantiles) for one chunk of rows."""
    edges = union_edges([m.grid.edges for m in models]) if edges is None else edges
    which = np.zeros(n, np.int64) if which is None else which
    est = {k: np.full(n, np.nan, np.float32) for k in _DESCRIPTIONS if k != "Z_FLAG"}
    flag = np.where(which < 0, FLAG_NOT_EXTRAGALACTIC, 0).astype(np.int16)
    pdf_out = None
    if pdf_format == "grid":
        pdf_out = np.full((n, len(edges) - 1), np.nan, np.float32)
    elif pdf_format == "quantiles":
        pdf_out = np.full((n, len(QUANTILE_LEVELS)), np.nan, np.float32)
    for k, (model, aset) in enumerate(zip(models, attrs, strict=True)):
        rows = np.flatnonzero(which == k)
        if not len(rows):
            continue
        X, _ = aset.values(taking_rows(get, rows))
        p, e = model.estimate(X, n_jobs=n_jobs)
        for key in est:
            est[key][rows] = e[key]
        flag[rows] = e["Z_FLAG"]
        if pdf_out is None:  # no PDF column
            pass
        elif pdf_format == "grid":
            same = len(edges) == len(model.grid.edges) and np.allclose(edges, model.grid.edges)
            pdf_out[rows] = p if same else p @ rebin_matrix(model.grid.edges, edges)
        elif pdf_format == "quantiles":
            pdf_out[rows] = quantiles(p, model.grid.edges, QUANTILE_LEVELS)
    cols = [NewColumn(k, v, "", _DESCRIPTIONS[k]) for k, v in est.items()]
    cols.append(NewColumn("Z_FLAG", flag, "", _DESCRIPTIONS["Z_FLAG"]))
    if pdf_format == "grid":
        cols.append(NewColumn("Z_PDF", pdf_out, "", pdf_description(edges), meta=pdf_grid_meta(edges)))
    elif pdf_format == "quantiles":
        cols.append(
            NewColumn(
                "Z_PDF_Q", pdf_out, "", "photo-z PDF quantiles at levels " + ",".join(f"{q:g}" for q in QUANTILE_LEVELS)
            )
        )
    return cols


def model_feeds(model: Model, available: Sequence[str], user_map: Mapping[str, str] | None = None) -> dict:
    """The column feeding each magnitude of ``model`` (name -> :class:`xmmtools.bands.Feed`).

    The model declares its magnitudes as canonical bands (``bands`` in its JSON, e.g.
    ``u -> SDSS_U`` in AB) and records its training columns (``training.columns``, e.g.
    ``u -> u_mag``).  Order: --columns, the recorded map, the magnitude's own name, the canonical
    name (``SDSS_U``, as crossmatch writes it), a known alias (see xmmtools.bands)."""
    from xmmtools.bands import Feed, inputs_from_mapping, resolve_inputs

    inputs = inputs_from_mapping(model.info.get("bands"), f"photoz model {model.name}")
    recorded = {k: v for k, v in (model.info.get("training", {}).get("columns") or {}).items() if v}
    feeds = resolve_inputs(available, inputs, user_map=user_map, recorded=recorded, what=f"photoz model {model.name}")
    # magnitudes without a declared band still use the recorded training column when present
    upper = {a.upper(): a for a in available}
    user = {k.upper() for k in (user_map or {})}
    for name, col in recorded.items():
        if name not in feeds and name.upper() not in user and col.upper() in upper:
            feeds[name] = Feed(name, upper[col.upper()], "model")
    return feeds


def oob_columns(model: Model) -> list[NewColumn]:
    """Out-of-bag Z_* columns (and Z_PDF) of a freshly trained model's training rows."""
    if model.oob is None:
        raise ValueError(f"photoz model {model.name} holds no out-of-bag estimates (trained with oob=False?)")
    p, est = model.oob
    cols = [
        NewColumn(k, np.asarray(v, np.float32), "", "out-of-bag " + _DESCRIPTIONS[k])
        for k, v in est.items()
        if k != "Z_FLAG"
    ]
    cols.append(NewColumn("Z_FLAG", est["Z_FLAG"], "", _DESCRIPTIONS["Z_FLAG"]))
    cols.append(
        NewColumn(
            "Z_PDF",
            p.astype(np.float32),
            "",
            "out-of-bag " + pdf_description(model.grid.edges),
            meta=pdf_grid_meta(model.grid.edges),
        )
    )
    return cols


def pdf_grid_meta(edges: np.ndarray) -> dict[str, list[float]]:
    """The Z_PDF redshift grid, machine-readable: bin edges (len = bins + 1) and centres; astropy
    shows them as ``t["Z_PDF"].meta["z_edges"]``, xmmtools as ``tables.column_meta(field)``."""
    e = np.asarray(edges, dtype=float)
    return {"z_edges": [float(f"{x:.6g}") for x in e], "z_centres": [float(f"{x:.6g}") for x in (e[:-1] + e[1:]) / 2]}


def pdf_description(edges: np.ndarray) -> str:
    w = np.diff(edges)
    if np.allclose(w, w[0]):
        grid = f"{len(w)} uniform bins from z={edges[0]:g} to {edges[-1]:g}"
    else:
        grid = f"{len(w)} bins from z={edges[0]:g} to {edges[-1]:g}, edges in provenance photoz.pdf_edges"
    return f"photo-z PDF: probability in each redshift bin (sums to 1); {grid}"


def provenance_extra(models: Sequence[Model], paths: Mapping[str, str], pdf_format: str, edges: np.ndarray) -> dict:
    info: dict[str, Any] = {
        "models": {
            m.name: {
                "file": paths.get(m.name),
                "attributes": m.attributes,
                "training_checksum": m.info.get("training", {}).get("checksum_sha256"),
                "grid": [m.grid.zmin, m.grid.zmax, m.grid.nzbins],
            }
            for m in models
        },
        "pdf_format": pdf_format,
    }
    if pdf_format == "grid":
        info["pdf_edges"] = [round(float(e), 9) for e in edges]
    elif pdf_format == "quantiles":
        info["quantile_levels"] = list(QUANTILE_LEVELS)
    return {"photoz": info}
