"""``hats:DIR`` as a table format: written through LSDB, opened by ``lsdb.read_hats``, read back
(in HEALPix order) with the same rows, columns, units, descriptions and provenance."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DATA, SAMPLE

from xmmtools import tables
from xmmtools.errors import DataError, OutputError
from xmmtools.tables import hats

lsdb = pytest.importorskip("lsdb")


def test_hats_output_round_trips_and_opens_in_lsdb(tmp_path):
    t = tables.read_table(SAMPLE)
    out = f"hats:{tmp_path / 'cat'}"
    tables.write_table(t, out, provenance=tables.Provenance("convert", {"x": 1}, [str(SAMPLE)]))
    back = tables.read_table(out)
    assert back.column_names == t.column_names
    i = np.argsort(tables.to_numpy(back["DETID"], None), kind="stable")
    j = np.argsort(tables.to_numpy(t["DETID"], None), kind="stable")
    a, b = back.take(i), t.take(j)
    assert a.schema.remove_metadata().equals(b.schema.remove_metadata())  # types
    for c in t.column_names:  # values (NaN where NaN)
        x, y = tables.to_numpy(a[c], None), tables.to_numpy(b[c], None)
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), c
    for name in ("RA", "SC_EP_8_FLUX"):
        assert tables.unit_of(back.schema.field(name)) == tables.unit_of(t.schema.field(name))
    assert tables.provenance_of(back.schema)[-1]["stage"] == "convert"
    info = tables.inspect_table(out)
    assert info.format == "hats" and info.num_rows == t.num_rows
    assert '"stage":"convert"' in info.header[hats.PROVENANCE_PROPERTY]
    cat = lsdb.read_hats(tmp_path / "cat")
    assert len(cat.compute()) == t.num_rows


def test_stated_sky_area_goes_into_the_properties(tmp_path):
    t = tables.read_table(DATA / "crossmatch" / "nway_elltest" / "randomcatX.fits")
    tables.write_table(t, f"hats:{tmp_path / 'x'}")
    assert float(tables.inspect_table(f"hats:{tmp_path / 'x'}").header[hats.SKYAREA_PROPERTY]) == 0.01


def test_hats_output_checks(tmp_path):
    t = tables.read_table(SAMPLE)
    out = f"hats:{tmp_path / 'cat'}"
    tables.write_table(t, out)
    with pytest.raises(OutputError, match="exists"):
        tables.write_table(t, out)
    tables.write_table(t.slice(0, 10), out, overwrite=True)
    assert tables.read_table(out).num_rows == 10
    with pytest.raises(OutputError, match="the input"):
        tables.check_output(out, inputs=[out])
    with pytest.raises(DataError, match="no such HATS"):
        tables.read_table(f"hats:{tmp_path / 'none'}")
