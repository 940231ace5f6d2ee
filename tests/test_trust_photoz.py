"""Issue 19, photo-z defaults: without CLASS the model follows each row's training domain, and
sentinel magnitudes given with --missing are never used as data.

Real data: SDSS DR7 Main Galaxy Sample test rows and SDSS DR3 quasars (tests/data/photoz/README.md)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from helpers import DATA, run_main

from xmmtools import tables

PZ = DATA / "photoz"
QSO_MAP = "u=u_mag,g=g_mag,r=r_mag,i=i_mag,z=z_mag"


def _run(capsys, *args):
    code, _, err = run_main(["photoz", *map(str, args), "--pdf-format", "none", "-q"], capsys)
    assert code == 0, err


def test_default_model_without_class_gives_galaxies_galaxy_redshifts(tmp_path, capsys):
    out = tmp_path / "g.parquet"
    _run(capsys, PZ / "sdss_mgs_test.parquet", "-o", out)
    t = tables.read_table(out)
    z, p = t.column("zs").to_numpy(), t.column("Z_PHOT").to_numpy()
    d = (p - z) / (1 + z)
    # before issue 19 (agn model on every row): median Z_PHOT 2.865, 65 % outliers
    assert np.median(p) < 0.15
    assert np.mean(np.abs(d) > 0.15) < 0.01


def test_default_model_without_class_keeps_quasars_on_the_agn_model(tmp_path, capsys):
    src = tables.read_table(PZ / "sdss_dr3_quasars.parquet").slice(0, 2000)
    inp = tmp_path / "q.parquet"
    pq.write_table(src, inp)
    out = tmp_path / "qz.parquet"
    _run(capsys, inp, "-o", out, "--columns", QSO_MAP)
    t = tables.read_table(out)
    z, p = t.column("z").to_numpy(), t.column("Z_PHOT").to_numpy()
    assert np.median(np.abs(p - z) / (1 + z)) < 0.1  # quasars are not pushed to galaxy redshifts
    assert np.median(p) > 1.0


def test_missing_sentinel_is_not_used_as_data(tmp_path, capsys):
    t = tables.read_table(PZ / "sdss_mgs_test.parquet").slice(0, 300)
    u = t.column("u").to_numpy().copy()
    u[:] = -99.0  # the sentinel of catalogues without a u detection
    inp = tmp_path / "s.parquet"
    pq.write_table(t.set_column(t.schema.get_field_index("u"), "u", pa.array(u)), inp)
    out = tmp_path / "sz.parquet"
    # before issue 19: no --missing at apply time; -99 was used as a magnitude (Z_FLAG 4 on every row)
    _run(capsys, inp, "-o", out, "--model", "galaxy", "--missing", "-99")
    f = tables.read_table(out).column("Z_FLAG").to_numpy()
    assert np.all(f & 1) and np.mean((f & 4) > 0) < 0.01  # one row has another attribute out of range
