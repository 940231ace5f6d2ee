"""Coordinates (issue 18): an RA outside [0, 360] deg and a boolean column taken as coordinates
are refused with a one-line error naming the value and row (not wrapped, not read as 0/1 deg):
before, RA = 1e308 came back as P_ANY = 0, indistinguishable from a non-match."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from helpers import COSMOS, DATA, SAMPLE, run_main

from xmmtools import tables

OPT = DATA / "crossmatch" / "nway_elltest" / "randomcatO.fits"


def _primary(tmp_path, ra=None, dec=None, name="p.parquet"):
    t = tables.read_table(COSMOS)
    if ra is not None:
        t = t.set_column(t.schema.get_field_index("RA"), "RA", ra)
    if dec is not None:
        t = t.set_column(t.schema.get_field_index("DEC"), "DEC", dec)
    path = tmp_path / name
    tables.write_table(t, path)
    return path, t.num_rows


def _crossmatch(tmp_path, capsys, primary, secondary=OPT):
    out = tmp_path / "xm.parquet"
    code, _, err = run_main(
        ["crossmatch", primary, "--catalog", f"opt={secondary}", "--pos-err", "opt=0.1", "-o", out], capsys
    )
    return code, err, out


@pytest.mark.parametrize("bad", [1e308, 360.5, -10.0, float("inf")])
def test_ra_outside_0_360_is_refused(tmp_path, capsys, bad):
    n = tables.read_table(COSMOS).num_rows
    ra = tables.to_numpy(tables.read_table(COSMOS).column("RA")).copy()
    ra[7] = bad
    path, _ = _primary(tmp_path, ra=pa.array(ra))
    code, err, out = _crossmatch(tmp_path, capsys, path)
    assert code == 1 and "row 7" in err and ("outside [0, 360]" in err or "missing" in err), err
    assert len(err.strip().splitlines()) == 1 and "internal" not in err and not out.exists()
    assert n > 7


def test_ra_360_is_accepted(tmp_path, capsys):
    ra = tables.to_numpy(tables.read_table(COSMOS).column("RA")).copy()
    ra[0] = 360.0
    path, _ = _primary(tmp_path, ra=pa.array(ra))
    code, err, _ = _crossmatch(tmp_path, capsys, path)
    assert code == 0, err


def test_boolean_primary_coordinates_are_refused(tmp_path, capsys):
    n = tables.read_table(COSMOS).num_rows
    path, _ = _primary(tmp_path, ra=pa.array(np.ones(n, bool)))
    code, err, out = _crossmatch(tmp_path, capsys, path)
    assert code == 1 and "RA" in err and "bool" in err and not out.exists(), err


def test_boolean_counterpart_coordinates_are_refused(tmp_path, capsys):
    t = tables.read_table(OPT)
    t = t.set_column(t.schema.get_field_index("DEC"), "DEC", pa.array(np.zeros(t.num_rows, bool)))
    sec = tmp_path / "o.parquet"
    tables.write_table(t, sec)
    code, err, out = _crossmatch(tmp_path, capsys, COSMOS, sec)
    assert code == 1 and "DEC" in err and "bool" in err and not out.exists(), err


def test_check_coordinates_names_the_row():
    from xmmtools.errors import DataError
    from xmmtools.sky import check_coordinates

    with pytest.raises(DataError, match=r"RA=400 at row 12 is outside \[0, 360\]"):
        check_coordinates(np.array([1.0, 400.0]), np.array([0.0, 0.0]), "cat", offset=11)


def test_counterpart_file_with_nothing_near_the_primaries_is_a_data_error(tmp_path, capsys):
    """Found by the fuzz run over stages: a zone index of zero kept rows raised IndexError."""
    from helpers import SAMPLE

    code, err, out = _crossmatch(tmp_path, capsys, SAMPLE)
    assert code == 1 and "do not overlap" in err and "internal" not in err and not out.exists(), err


# ------------------------------------------- classify and long-term variability (after issue 18)


def _sample_with(tmp_path, column, row, value, name="s.parquet"):
    t = tables.read_table(SAMPLE)
    v = tables.to_numpy(t.column(column), float).copy()
    v[row] = value
    t = t.set_column(t.schema.get_field_index(column), column, pa.array(v))
    path = tmp_path / name
    tables.write_table(t, path)
    return path


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("RA", 400.0, "RA=400 at row 9 is outside [0, 360] deg (1 such rows)"),
        ("RA", -10.0, "RA=-10 at row 9 is outside [0, 360] deg"),
        ("DEC", 91.0, "DEC=91 at row 9 is outside [-90, 90] deg"),
        ("DEC", float("inf"), "1 rows have infinite RA or DEC, first at row 9"),
    ],
)
def test_classify_refuses_positions_out_of_range(tmp_path, capsys, column, value, message):
    # before: |b| of a wrong position was computed and classified as if it were real
    path = _sample_with(tmp_path, column, 9, value)
    out = tmp_path / "c.parquet"
    code, _, err = run_main(["classify", path, "-o", out], capsys)
    assert code == 1 and f"{path}: {message}" in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_classify_rows_are_numbered_across_chunks(tmp_path, capsys):
    path = _sample_with(tmp_path, "RA", 41, 361.0)
    code, _, err = run_main(["classify", path, "--chunk-size", "10", "-o", tmp_path / "c.parquet"], capsys)
    assert code == 1 and "RA=361 at row 41 is outside [0, 360] deg" in err, err


def test_classify_takes_a_null_position_as_a_missing_latitude(tmp_path, capsys):
    path = _sample_with(tmp_path, "DEC", 3, float("nan"))
    out = tmp_path / "c.parquet"
    code, _, err = run_main(["classify", path, "-o", out], capsys)
    assert code == 0, err
    n_missing = tables.to_numpy(tables.read_table(out).column("N_MISSING_FEATURES"), float)
    ref = tmp_path / "r.parquet"
    assert run_main(["classify", SAMPLE, "-o", ref], capsys)[0] == 0
    before = tables.to_numpy(tables.read_table(ref).column("N_MISSING_FEATURES"), float)
    assert n_missing[3] == before[3] + 1 and (np.delete(n_missing, 3) == np.delete(before, 3)).all()


def test_long_term_variability_refuses_positions_out_of_range(tmp_path, capsys):
    # the source positions come from SC_RA/SC_DEC in a 4XMM detection table
    path = _sample_with(tmp_path, "SC_RA", 5, 1e308)
    out = tmp_path / "v.parquet"
    code, _, err = run_main(["variability", "long", path, "-o", out], capsys)
    assert code == 1 and f"{path}: RA=1e+308 at row 5 is outside [0, 360] deg" in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
