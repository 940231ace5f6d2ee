"""Column selection, chunked reading, real 4XMM values, and the FITS reader against astropy."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest
from astropy.table import Table
from helpers import COSMOS, DR9, SAMPLE, SLIM_CSV

from xmmtools import tables as T
from xmmtools.tables.fits import reader as fits_reader
from xmmtools.tables.fits.reader import FitsTable


def test_sample_holds_the_real_omega_cen_detections():
    t = T.read_table(SAMPLE, ["DETID", "SRCID", "OBS_ID", "RA", "DEC", "EP_8_FLUX", "PN_FILTER", "PN_1_FLUX"])
    assert t.num_rows == 52
    # 3 observations and 35 unique sources, 11 of them detected more than once (origin README)
    assert sorted(set(t.column("OBS_ID").to_pylist())) == ["0112220101", "0117740101", "0412780101"]
    srcid = t.column("SRCID").to_numpy()
    _, counts = np.unique(srcid, return_counts=True)
    assert len(counts) == 35 and (counts > 1).sum() == 11
    ra, dec = T.to_numpy(t.column("RA")), T.to_numpy(t.column("DEC"))
    # all within 5 arcmin of omega Cen (201.6937, -47.4830)
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    sep = SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(201.6937 * u.deg, -47.4830 * u.deg))
    assert sep.max() < 5.01 * u.arcmin
    # an unused camera has NaN fluxes, not the 0.0 XCatDB wrote
    undef = np.array(t.column("PN_FILTER").to_pylist()) == "UNDEF"
    assert undef.sum() == 20 and np.isnan(T.to_numpy(t.column("PN_1_FLUX"))[undef]).all()


def test_fits_reader_agrees_with_astropy_on_every_column():
    ours = T.read_table(DR9)
    ref = Table.read(DR9)
    assert ours.schema.names == ref.colnames
    for name in ref.colnames:
        a = ref[name]
        b = ours.column(name)
        if a.dtype.kind in "SU":
            filled = a.filled("") if hasattr(a, "filled") else a  # astropy masks blank strings
            assert b.to_pylist() == [str(x) for x in filled], name
        elif a.dtype.kind == "b":  # astropy turns logical nulls into False
            assert T.to_numpy(b, bool).tolist() == np.asarray(a).tolist(), name
        else:
            mask = np.ma.getmaskarray(a)
            vals = np.asarray(np.ma.getdata(a), dtype=float)
            got = T.to_numpy(b)
            assert np.array_equal(np.isnan(got), mask | np.isnan(vals)), name
            ok = ~np.isnan(got)
            assert np.array_equal(got[ok], vals[ok]), name


def test_read_only_requested_columns_in_requested_order():
    t = T.read_table(DR9, ["EP_8_FLUX", "SRCID", "RA"])
    assert t.schema.names == ["EP_8_FLUX", "SRCID", "RA"]
    assert t.schema.field("EP_8_FLUX").type == pa.float32()
    assert T.unit_of(t.schema.field("RA")) == "deg"


def test_fits_reader_converts_only_requested_columns(monkeypatch):
    """The other 333 columns are never decoded (the reason a 15-of-336 read is cheap)."""
    converted = []
    real = FitsTable._convert

    def spy(self, raw, c):
        converted.append(c.name)
        return real(self, raw, c)

    monkeypatch.setattr(FitsTable, "_convert", spy)
    T.read_table(DR9, ["RA", "DEC", "SRCID"])
    assert sorted(set(converted)) == ["DEC", "RA", "SRCID"]


@pytest.mark.parametrize("fmt", ["fits", "fits.gz", "parquet", "arrow", "csv"])
def test_chunked_reading_equals_whole_read(tmp_path, fmt):
    whole = T.read_table(DR9, ["DETID", "OBS_ID", "EP_8_FLUX", "POSCOROK"])
    p = tmp_path / f"d.{fmt}"
    if fmt == "arrow":
        with T.TableWriter(p, whole.schema) as w:  # several record batches
            for start in range(0, 100, 30):
                w.write(whole.slice(start, 30))
    else:
        T.write_table(whole, p)
    chunks = list(T.iter_table(p, chunk_rows=7))
    assert sum(c.num_rows for c in chunks) == 100
    if fmt in ("fits", "fits.gz", "parquet"):
        assert len(chunks) == 15 and max(c.num_rows for c in chunks) == 7
    if fmt == "arrow":
        assert len(chunks) == 4
    back = pa.concat_tables(chunks)
    assert back.column("DETID").to_pylist() == whole.column("DETID").to_pylist()
    assert back.column("OBS_ID").to_pylist() == whole.column("OBS_ID").to_pylist()
    assert back.column("POSCOROK").to_pylist() == whole.column("POSCOROK").to_pylist()
    np.testing.assert_array_equal(T.to_numpy(back.column("EP_8_FLUX")), T.to_numpy(whole.column("EP_8_FLUX")))


def test_fits_chunks_respect_the_byte_budget(monkeypatch):
    monkeypatch.setattr(fits_reader, "FITS_CHUNK_BYTES", 10 * 1356)  # about 10 rows of a 4XMM row
    chunks = list(T.iter_table(DR9, ["SRCID"]))
    assert len(chunks) > 5 and sum(c.num_rows for c in chunks) == 100


def test_inspect_reads_metadata_only():
    info = T.inspect_table(COSMOS)
    assert info.num_rows == 300 and info.format == "fits"
    assert info.header["SKYAREA"] == 2.0 and info.extension == "XMM"
    assert info.schema.names == ["ID", "RA", "DEC", "pos_err"]


def test_hdu_selection_by_name_and_number(tmp_path):
    assert T.read_table(f"{COSMOS}[XMM]", ["ID"]).num_rows == 300
    assert T.read_table(f"{COSMOS}[1]", ["ID"]).num_rows == 300
    from xmmtools.errors import DataError

    with pytest.raises(DataError, match="no HDU named or numbered 'NOPE'"):
        T.read_table(f"{COSMOS}[NOPE]")


def test_slim_csv_in_lower_case_reads_with_4xmm_types():
    t = T.read_table(SLIM_CSV)
    assert t.num_rows == 200
    assert t.schema.field("sc_ep_8_flux").type == pa.float32()  # typed from the 4XMM schema
    assert t.schema.field("sc_ra").type == pa.float64()
    assert t.schema.field("Class").type == pa.int64()  # not a 4XMM column: inferred


def test_empty_table_roundtrip(tmp_path):
    t = T.read_table(DR9, ["SRCID", "OBS_ID"]).slice(0, 0)
    for ext in ("fits", "parquet", "arrow", "csv"):
        p = tmp_path / f"e.{ext}"
        T.write_table(t, p)
        back = T.read_table(p)
        assert back.num_rows == 0 and back.schema.names == ["SRCID", "OBS_ID"]


@pytest.mark.parametrize("fmt", ["fits", "fits.gz"])
def test_fits_written_in_chunks_equals_whole_write(tmp_path, fmt):
    # one table at once is written without a spool; several chunks go through the spool file;
    # both must give the same FITS (string widths and integer nulls seen across all chunks)
    whole = T.read_table(DR9, ["DETID", "OBS_ID", "IAUNAME", "EP_8_FLUX", "SC_EXTENT"])
    longer = pa.table(
        {
            **{n: whole.column(n).slice(99, 1) for n in whole.column_names},
            "IAUNAME": pa.array(["4XMM J000000.0+000000 and a longer name"]),
        },
        schema=whole.schema,
    )
    full = pa.concat_tables([whole, longer])
    a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
    T.write_table(full, a)
    with T.TableWriter(b, full.schema) as w:
        for start in range(0, full.num_rows, 30):
            w.write(full.slice(start, 30))
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no spool left behind
    ta, tb = T.read_table(a), T.read_table(b)
    assert ta.num_rows == tb.num_rows == 101
    for n in full.column_names:
        assert ta.column(n).to_pylist() == tb.column(n).to_pylist() == full.column(n).to_pylist(), n
    assert tb.column("IAUNAME")[-1].as_py().endswith("longer name")
