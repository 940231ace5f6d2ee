"""Coordinates (issue 18): an RA outside [0, 360] deg and a boolean column taken as coordinates
are refused with a one-line error naming the value and row (not wrapped, not read as 0/1 deg):
before, RA = 1e308 came back as P_ANY = 0, indistinguishable from a non-match."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from helpers import COSMOS, DATA, run_main

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
    from xmmtools.crossmatch.positional import check_coordinates
    from xmmtools.errors import DataError

    with pytest.raises(DataError, match=r"RA=400 at row 12 is outside \[0, 360\]"):
        check_coordinates(np.array([1.0, 400.0]), np.array([0.0, 0.0]), "cat", offset=11)


def test_counterpart_file_with_nothing_near_the_primaries_is_a_data_error(tmp_path, capsys):
    """Found by the fuzz run over stages: a zone index of zero kept rows raised IndexError."""
    from helpers import SAMPLE

    code, err, out = _crossmatch(tmp_path, capsys, SAMPLE)
    assert code == 1 and "do not overlap" in err and "internal" not in err and not out.exists(), err
