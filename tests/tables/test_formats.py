"""Every format round trip keeps values, types, nulls, units and descriptions."""

from __future__ import annotations

import io
import math

import numpy as np
import pyarrow as pa
import pytest
from astropy.io import fits
from astropy.table import Table
from helpers import DR9, SAMPLE

from xmmtools import tables as T


def _same(a, b) -> bool:
    """Value equality with NaN == NaN, through Python lists."""
    la, lb = a.to_pylist(), b.to_pylist()
    if len(la) != len(lb):
        return False
    for x, y in zip(la, lb, strict=True):
        if isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y) or any(not _eq(p, q) for p, q in zip(x, y, strict=True)):
                return False
        elif not _eq(x, y):
            return False
    return True


def _eq(x, y) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        return (math.isnan(x) and math.isnan(y)) or x == y
    return x == y


def rich_table() -> pa.Table:
    """Every type a 4XMM-derived table carries, with nulls where the catalogue has them."""
    f = T.field_meta
    cols = {
        "DETID": (pa.array([101122201010052, 104127801010038, 2**62 + 5, 1, 0], pa.int64()), f("", "detection id")),
        "OBS_ID": (pa.array(["0112220101", "0001730201", "0412780101", "0000000001", ""]), f("", "observation")),
        "VAR_FLAG": (pa.array([True, False, None, True, False]), f("", "variability flag")),
        "EP_8_FLUX": (
            pa.array([1.5e-14, np.nan, 3.25e-15, 0.0, -1.0], pa.float32()),
            f("erg/cm**2/s", "flux 0.2-12 keV"),
        ),
        "RA": (pa.array([201.6937, 0.0, 359.999999, 12.3456789012, 180.0]), f("deg", "right ascension")),
        "SRC_NUM": (pa.array([5, None, 43, 1, 2], pa.int32()), f("", "source number")),
        "CCDPN": (pa.array([None, 4, 7, 1, 12], pa.int16()), None),
        "FLAGS8": (pa.array([0, -128, 127, None, 5], pa.int8()), None),
        "BIGU": (pa.array([0, 2**32 - 1, 7, None, 2**31], pa.uint32()), None),
        "Z_PDF": (
            pa.FixedSizeListArray.from_arrays(pa.array(np.arange(15, dtype=np.float32) / 7), 3),
            f("", "redshift PDF on the grid"),
        ),
        "IAUNAME": (pa.array(["4XMM J132652.4-472736", "x", "", "4XMM J000000.0+000000", "é-name"]), None),
    }
    fields = [pa.field(k, v[0].type, metadata=v[1]) for k, v in cols.items()]
    return pa.Table.from_arrays([v[0] for v in cols.values()], schema=pa.schema(fields))


BINARY_FORMATS = ["fits", "fits.gz", "ftz", "fit", "parquet", "arrow", "feather"]


@pytest.mark.parametrize("ext", BINARY_FORMATS)
def test_roundtrip_binary_formats_keep_values_types_and_metadata(tmp_path, ext):
    t = rich_table()
    p = tmp_path / f"t.{ext}"
    T.write_table(t, p)
    back = T.read_table(p)
    assert back.schema.names == t.schema.names
    for f in t.schema:
        g = back.schema.field(f.name)
        assert g.type == f.type, (f.name, g.type, f.type)
        assert _same(back.column(f.name), t.column(f.name)), f.name
        assert T.unit_of(g) == T.unit_of(f)
        assert T.description_of(g) == T.description_of(f)
    # the nullable boolean really has its null (FITS logical 0 byte, not False)
    assert back.column("VAR_FLAG").to_pylist() == [True, False, None, True, False]
    assert back.column("SRC_NUM").null_count == 1


def test_fits_output_is_standard_for_astropy(tmp_path):
    """What we write, astropy reads back with the same values, masks and units."""
    p = tmp_path / "t.fits"
    t = rich_table()
    # astropy cannot mask an unsigned column that has a TNULL; give it one without nulls
    t = t.set_column(t.schema.get_field_index("BIGU"), "BIGU", pa.array([0, 2**32 - 1, 7, 8, 2**31], pa.uint32()))
    T.write_table(t, p)
    a = Table.read(p)
    assert a["DETID"].dtype.kind == "i" and a["DETID"].dtype.itemsize == 8 and a["DETID"][2] == 2**62 + 5
    assert list(a["OBS_ID"][:2]) == ["0112220101", "0001730201"]
    assert a["SRC_NUM"].mask.tolist() == [False, True, False, False, False]
    assert a["FLAGS8"][1] == -128  # signed byte via TZERO=-128 (astropy may scale it to float)
    assert a["BIGU"].dtype.kind == "u" and a["BIGU"][1] == 2**32 - 1
    assert a["Z_PDF"].shape == (5, 3)
    assert str(a["EP_8_FLUX"].unit) == "erg / (s cm2)"
    hdr = fits.getheader(p, 1)
    assert hdr["TCOMM4"] == "flux 0.2-12 keV"
    # a boolean with nulls is written as bytes 1/0 with TNULL 255 (astropy reads a FITS logical's
    # undefined 0 byte as False): astropy sees it masked, never False
    k = a.colnames.index("VAR_FLAG") + 1
    assert (hdr[f"TFORM{k}"], hdr[f"TNULL{k}"], hdr[f"TDISP{k}"]) == ("B", 255, "L1")
    assert a["VAR_FLAG"].mask.tolist() == [False, False, True, False, False]
    assert a["VAR_FLAG"].filled(7).tolist() == [1, 0, 7, 1, 0]


def test_fits_to_parquet_to_fits_real_4xmm_is_lossless(tmp_path):
    """The real 4XMM-DR9 sample (336 columns) survives FITS -> Parquet -> FITS unchanged."""
    src = T.read_table(DR9)
    T.write_table(src, tmp_path / "a.parquet")
    T.write_table(T.read_table(tmp_path / "a.parquet"), tmp_path / "b.fits")
    back = T.read_table(tmp_path / "b.fits")
    assert back.num_rows == 100 and back.num_columns == 336
    for f in src.schema:
        g = back.schema.field(f.name)
        assert g.type == f.type, f.name
        assert _same(back.column(f.name), src.column(f.name)), f.name
        assert g.metadata == f.metadata, f.name
    # catalogue specifics: int64 ids, leading-zero OBS_ID, nullable logicals, NaN floats
    assert back.column("DETID").type == pa.int64()
    assert all(len(o) == 10 for o in back.column("OBS_ID").to_pylist())
    assert back.column("POSCOROK").type == pa.bool_()
    assert back.column("DR3SRCID").null_count == src.column("DR3SRCID").null_count > 0
    # the FITS header keywords of the input (CATALOG) survive the Parquet leg
    assert T.inspect_table(tmp_path / "b.fits").header["CATALOG"] == "4XMM-DR9"


def test_csv_roundtrip_xsa_conventions(tmp_path):
    t = rich_table().drop_columns(["Z_PDF"])
    p = tmp_path / "t.csv"
    T.write_table(t, p)
    text = p.read_text()
    header, first = text.splitlines()[:2]
    assert '"OBS_ID"' in header
    back = T.read_table(p)
    # OBS_ID is a known 4XMM text column: leading zeros kept; VAR_FLAG a known logical
    assert back.column("OBS_ID").to_pylist()[:2] == ["0112220101", "0001730201"]
    assert back.column("VAR_FLAG").to_pylist() == [True, False, None, True, False]
    assert _same(back.column("EP_8_FLUX"), t.column("EP_8_FLUX"))  # float32 from the 4XMM schema
    assert back.column("SRC_NUM").to_pylist() == [5, None, 43, 1, 2]
    assert back.column("DETID").to_pylist()[2] == 2**62 + 5


def test_csv_reads_xsa_style_empty_null_and_t_f_booleans(tmp_path):
    p = tmp_path / "xsa.csv"
    p.write_text(
        "# exported from the XSA\nsrcid,obs_id,ep_8_flux,var_flag,note\n"
        "201122201010052,0112220101,1.2E-14,t,a\n"
        "201122201010053,0001730201,,f,\n"
        "201122201010054,0412780101,NaN,,NULL\n"
    )
    t = T.read_table(p)
    assert t.column("obs_id").to_pylist() == ["0112220101", "0001730201", "0412780101"]
    assert t.column("var_flag").to_pylist() == [True, False, None]
    flux = T.to_numpy(t.column("ep_8_flux"))
    assert flux[0] == pytest.approx(1.2e-14) and np.isnan(flux[1:]).all()
    assert t.column("note").to_pylist() == ["a", None, None]
    assert t.column("srcid").type == pa.int64()


def test_csv_refuses_vector_columns(tmp_path):
    from xmmtools.errors import OutputError

    with pytest.raises(OutputError, match="vector column Z_PDF"):
        T.write_table(rich_table(), tmp_path / "t.csv")
    assert not (tmp_path / "t.csv").exists()


def test_arrow_stream_roundtrip_in_memory():
    t = rich_table()
    buf = io.BytesIO()
    T.write_table(t, "-", stdout=buf)
    back = T.read_table("-", stdin=io.BytesIO(buf.getvalue()))
    for f in t.schema:
        assert _same(back.column(f.name), t.column(f.name))
        assert back.schema.field(f.name).metadata == f.metadata


def test_provenance_chain_in_every_binary_format(tmp_path):
    step = T.Provenance("test", {"alpha": 0.5, "classes": ["AGN", "STAR"]}, [str(SAMPLE)])
    for ext in ("fits", "parquet", "arrow"):
        p = tmp_path / f"p.{ext}"
        T.write_table(T.read_table(SAMPLE, ["DETID", "RA"]), p, provenance=step)
        chain = T.inspect_table(p).provenance
        # the sample itself carries one step (how it was made); ours is appended
        assert [c["stage"] for c in chain] == ["sample", "test"]
        last = chain[-1]
        assert last["parameters"] == {"alpha": 0.5, "classes": ["AGN", "STAR"]}
        assert last["inputs"][0]["name"] == SAMPLE.name
        assert last["inputs"][0]["sha256"] == T.file_sha256(SAMPLE)
        assert last["xmmtools"]
    hdr = fits.getheader(tmp_path / "p.fits", 1)
    assert hdr["XMMTSTG"] == "test"
    assert "sha256 " + T.file_sha256(SAMPLE) in [str(h) for h in hdr["HISTORY"]]


def test_new_columns_carry_unit_and_description(tmp_path):
    t = T.read_table(SAMPLE, ["SRCID", "EP_8_FLUX"])
    flux = T.to_numpy(t.column("EP_8_FLUX"))
    t2 = T.add_columns(
        t,
        [
            T.NewColumn("LOGFLUX", np.log10(flux), "dex(erg/cm**2/s)", "log10 of EP_8_FLUX"),
            T.NewColumn("PDF", np.ones((t.num_rows, 4), np.float32), "", "a vector"),
        ],
    )
    T.write_table(t2, tmp_path / "n.fits")
    back = T.read_table(tmp_path / "n.fits")
    f = back.schema.field("LOGFLUX")
    assert T.unit_of(f) == "dex(erg/cm**2/s)" and T.description_of(f) == "log10 of EP_8_FLUX"
    assert back.schema.field("PDF").type == pa.list_(pa.float32(), 4)
    from xmmtools.errors import DataError

    with pytest.raises(DataError, match="already has a column EP_8_FLUX"):
        T.add_columns(t, [T.NewColumn("EP_8_FLUX", flux)])


def test_long_descriptions_survive_fits(tmp_path):
    desc = "a description that is much longer than the sixty-eight characters a FITS card can hold in one line"
    t = pa.table({"X": pa.array([1.0])}).cast(pa.schema([pa.field("X", pa.float64(), metadata=T.field_meta("", desc))]))
    T.write_table(t, tmp_path / "d.fits")
    assert T.description_of(T.read_table(tmp_path / "d.fits").schema.field("X")) == desc
