"""Rebuild the shipped photo-z models from the shipped real data (run from a source checkout).

    python -m xmmtools.photoz.defaults            # writes src/xmmtools/data/models/photoz/

* ``galaxy``: the 5 000 SDSS Main Galaxy Sample galaxies shipped with MLZ 1.2
  (tests/data/photoz/sdss_mgs_train.parquet): ugriz model magnitudes + 4 colours, z < 0.3.
  Its metrics on the MGS test half (tests/data/photoz/sdss_mgs_test.parquet) are recorded.
* ``agn``: the 32 494 SDSS DR3 quasars (tests/data/photoz/sdss_dr3_quasars.parquet): ugriz PSF
  magnitudes + 4 colours, 0.08 < z < 5.41.  Its 5-fold cross-validated metrics are recorded
  (``--cv``; slow), and a resubstitution fingerprint on the first 2 000 rows that the tests
  reproduce exactly.

Each model's JSON also records the equivalent ``xmmtools photoz train`` command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from xmmtools.photoz.attributes import resolve_attributes
from xmmtools.photoz.model import Model, cross_validate, train_model
from xmmtools.photoz.tpz import ForestParams, Grid

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "photoz"
OUT = Path(__file__).resolve().parents[1] / "data" / "models" / "photoz"
COLOURS = ["u-g", "g-r", "r-i", "i-z"]
#: both shipped models use SDSS ugriz (AB): crossmatch --catalog sdss=... writes them as SDSS_U...
SDSS_BANDS = (("u", "SDSS_U"), ("g", "SDSS_G"), ("r", "SDSS_R"), ("i", "SDSS_I"), ("z", "SDSS_Z"))


@dataclass(frozen=True)
class Recipe:
    name: str
    table: str
    z_column: str
    attributes: list[str]
    columns: dict[str, str]
    grid: Grid
    params: ForestParams
    mode_smooth: float | str = "auto"
    missing: tuple[float, ...] = ()
    #: magnitudes as canonical counterpart bands (xmmtools/data/bands.toml), recorded in the model
    bands: tuple[tuple[str, str], ...] = SDSS_BANDS

    def command(self) -> str:
        cols = ",".join(f"{k}={v}" for k, v in self.columns.items())
        p, g = self.params, self.grid
        smooth = self.mode_smooth if isinstance(self.mode_smooth, str) else f"{self.mode_smooth:g}"
        return (
            f"xmmtools photoz train tests/data/photoz/{self.table} --z-column {self.z_column} "
            f"--attributes {','.join(self.attributes)}"
            + (f" --columns {cols}" if cols else "")
            + "".join(f" --missing {m:g}" for m in self.missing)
            + f" --zmin {g.zmin:g} --zmax {g.zmax:g} --nzbins {g.nzbins} --nrandom {p.n_random}"
            f" --ntrees {p.n_trees} --natt {p.natt} --minleaf {p.min_leaf} --seed {p.seed}"
            f" --mode-smooth {smooth}"
            + (f" --bands {','.join(f'{a}={b}' for a, b in self.bands)}" if self.bands else "")
            + f" --name {self.name} -o {self.name}.json"
        )


RECIPES = {
    "galaxy": Recipe(
        "galaxy",
        "sdss_mgs_train.parquet",
        "zs",
        ["u", "g", "r", "i", "z", *COLOURS],
        {},
        Grid(0.001, 0.3, 80),
        ForestParams(n_random=4, n_trees=25, natt=5, min_leaf=5, seed=20131483),
    ),
    "agn": Recipe(
        "agn",
        "sdss_dr3_quasars.parquet",
        "z",
        ["u", "g", "r", "i", "z", *COLOURS],
        {"u": "u_mag", "g": "g_mag", "r": "r_mag", "i": "i_mag", "z": "z_mag"},
        Grid(0.0, 6.0, 200),
        ForestParams(n_random=2, n_trees=25, natt=5, min_leaf=5, seed=20131483),
    ),
}


def build(name: str, *, n_jobs: int = 2, cv: bool = False) -> Model:
    """Train one shipped model exactly as recorded, with its check metrics."""
    import pyarrow.parquet as pq

    from xmmtools.photoz import metrics
    from xmmtools.tables import file_sha256

    r = RECIPES[name]
    path = DATA / r.table
    t = pq.read_table(path)
    get = lambda c: t[c].to_numpy()  # noqa: E731
    aset = resolve_attributes(r.attributes, t.column_names, source=r.table, user_map=r.columns, missing=r.missing)
    z = t[r.z_column].to_numpy()
    model = train_model(
        name,
        aset,
        get,
        z,
        r.grid,
        r.params,
        mode_smooth=r.mode_smooth,
        n_jobs=n_jobs,
        source=r.table,
        info={"file": r.table, "file_sha256": file_sha256(path), "z_column": r.z_column, "columns": r.columns},
    )
    model.info["bands"] = {a: {"band": b, "system": "AB"} for a, b in r.bands}
    model.info["command"] = r.command()
    model.info["trained_on"] = {
        "galaxy": "SDSS Main Galaxy Sample (MLZ 1.2 test data): r < 17.8 galaxies, 0.003 < z < 0.28, "
        "extinction-corrected ugriz model magnitudes. Not for AGN, QSOs, faint or z > 0.3 sources.",
        "agn": "SDSS DR3 spectroscopic quasars (Schneider et al. 2005): broad-line, optically selected, "
        "i < 21.8, 0.08 < z < 5.41, ugriz PSF magnitudes NOT extinction corrected. Not for "
        "obscured AGN or host-dominated sources; quasar colour degeneracies give ~12 % outliers.",
    }[name]
    if name == "galaxy":
        te = pq.read_table(DATA / "sdss_mgs_test.parquet")
        X, _ = resolve_attributes(r.attributes, te.column_names, source="test").values(lambda c: te[c].to_numpy())
        p, est = model.estimate(X, n_jobs=n_jobs)
        model.info["test_metrics"] = {
            "table": "sdss_mgs_test.parquet",
            **metrics.all_metrics(p, r.grid.edges, te["zs"].to_numpy(), est),
        }
    else:
        X, _ = aset.values(lambda c: get(c)[:2000])
        p, est = model.estimate(X, n_jobs=n_jobs)
        model.info["resubstitution_first_2000"] = metrics.all_metrics(p, r.grid.edges, z[:2000], est)
        if cv:
            _, _, m = cross_validate(
                aset, get, z, r.grid, r.params, folds=5, seed=20261121, n_jobs=n_jobs, mode_smooth=r.mode_smooth
            )
            model.info["cv5_metrics"] = {"folds": 5, "shuffle_seed": 20261121, **m}
    return model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", default=list(RECIPES))
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--cv", action="store_true", help="also record 5-fold CV metrics of the agn model (slow)")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for name in args.names:
        model = build(name, n_jobs=args.jobs, cv=args.cv)
        if not args.cv and name == "agn":  # keep the CV metrics recorded by an earlier --cv run
            old = Path(args.out) / "agn.json"
            if old.exists():
                prev = json.loads(old.read_text()).get("cv5_metrics")
                if prev:
                    model.info["cv5_metrics"] = prev
        js, npz = model.save(str(Path(args.out) / f"{name}.json"))
        print(f"{js}: {os.path.getsize(npz) / 1e6:.2f} MB arrays", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
