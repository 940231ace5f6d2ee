"""Outputs open everywhere with their meaning: every stage's output read with astropy (units,
descriptions, UCDs; FITS checked with ``verify('exception')``), pandas, pyarrow, duckdb and
polars (docs/tables.md, "What astropy, TOPCAT and VO tools read")."""

from __future__ import annotations

import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from astropy.io.votable.ucd import check_ucd
from astropy.table import Table
from helpers import DATA, SAMPLE, run_main

from xmmtools import tables
from xmmtools.columns import schema as xmm_schema

duckdb = pytest.importorskip("duckdb")
polars = pytest.importorskip("polars")

ELL = DATA / "crossmatch" / "nway_elltest"
OBS = DATA / "sensitivity" / "obs"
VAR = DATA / "variability"
EV = VAR / "events" / "0001730201"
ARCHIVE = DATA / "variability_long" / "3xmm_dr8_ngc5139.csv"


def stage_runs(out: Path) -> dict[str, list[str]]:
    """One run of every stage on shipped data: output name -> arguments."""
    pos = out / "pos.txt"
    pos.write_text("149.50 -11.00 gap\n09:58:21.6, -11:05:24 centre\n")
    cat = ["crossmatch", ELL / "randomcatX.fits", "--catalog", f"opt={ELL / 'randomcatO.fits'}", "--pos-err", "opt=0.1"]
    return {
        "xm.fits": [*cat, "--radius", "10"],
        "xm_all.parquet": [*cat, "--radius", "10", "--all"],
        "cl.fits": ["classify", SAMPLE],
        "cl.parquet": ["classify", DATA / "xmm_ml_slim_200.csv", "--prefix", "NB_"],
        "pz.parquet": ["photoz", DATA / "photoz" / "sdss_mgs_test.parquet", "--model", "galaxy"],
        "pz.fits": ["photoz", DATA / "photoz" / "sdss_mgs_test.parquet", "--model", "galaxy"],
        "vs.parquet": ["variability", "short", "--lightcurves", VAR / "lc"],
        "ev.fits": [
            "variability",
            "events",
            EV / "M1_clean.fits.gz",
            "--gti",
            EV / "M1_gti.fits",
            "--time-bin",
            "100",
            "--detection-level",
            "4",
            "--box",
            "13",
        ],  # fmt: skip
        "lt.parquet": [
            "variability",
            "long",
            SAMPLE,
            "--archive",
            f"3XMM={DATA / 'variability_long' / '3xmm_dr8_ngc5139.csv'}",
            "--epochs",
            out / "ep.fits",
        ],  # fmt: skip
        "ul.parquet": ["sensitivity", pos, "--obs", OBS, "--band", "0.5-2"],
        "ul.fits": ["sensitivity", pos, "--obs", OBS, "--band", "0.5-2"],
        "map.fits": ["sensitivity-map", "--obs", OBS / "0201903501", "--order", "12"],
        "alerts.vot": ["convert", SAMPLE, "--select", "SRCID,RA,DEC,EP_8_FLUX,SC_VAR_FLAG"],
    }


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("interop")
    made = {}
    for name, args in stage_runs(out).items():
        code, _, _ = run_main([*args, "-o", out / name, "-q"])
        assert code == 0, (name, args)
        made[name] = out / name
    made["ep.fits"] = out / "ep.fits"
    return made


def astropy_read(path: Path) -> Table:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no unit, null or string-width warnings either
        warnings.filterwarnings("ignore", message=".*has been deprecated in the VOUnit standard.*")
        return Table.read(path)


#: columns a stage passes through from its inputs (their UCDs are the input's business)
PASSED = set(xmm_schema()) | {"ID", "RA", "DEC", "NAME", "a", "b", "phi", "pos_err"}


def created(name: str) -> bool:
    """A column xmmtools made (every one has a UCD), not one copied from an input."""
    counterpart_copy = name.startswith("OPT_") and name not in ("OPT_P_I", "OPT_SEP")
    photometry = name.islower() or "-" in name or name.startswith(("sig_", "Class"))
    return name not in PASSED and not counterpart_copy and not photometry


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "xm.fits",
        "xm_all.parquet",
        "cl.fits",
        "cl.parquet",
        "pz.parquet",
        "pz.fits",
        "vs.parquet",
        "ev.fits",
        "lt.parquet",
        "ep.fits",
        "ul.parquet",
        "ul.fits",
        "map.fits",
        "alerts.vot",
    ],  # fmt: skip
)
def test_every_output_opens_in_astropy_with_units_descriptions_and_ucds(outputs, name):
    path = outputs[name]
    ours = tables.read_table(path)
    a = astropy_read(path)
    assert a.colnames == ours.schema.names and len(a) == ours.num_rows
    for f in ours.schema:
        unit, desc = tables.unit_of(f), tables.description_of(f)
        if unit:
            assert a[f.name].unit is not None, (name, f.name, unit)
            assert a[f.name].unit == u.Unit(unit, format="fits"), f.name
        if desc:
            assert " ".join(str(a[f.name].description).split()) == desc, (name, f.name)
        ucd = a[f.name].meta.get("ucd")
        if created(f.name):
            assert ucd, (name, f.name)  # every column xmmtools creates has a UCD
        if ucd:
            assert check_ucd(ucd, check_controlled_vocabulary=True), (f.name, ucd)
    if name.endswith(".fits"):
        with fits.open(path) as hl:
            hl.verify("exception")


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["xm_all.parquet", "cl.parquet", "pz.parquet", "vs.parquet", "lt.parquet", "ul.parquet"]
)
def test_parquet_outputs_open_in_pandas_pyarrow_duckdb_and_polars(outputs, name):
    path = outputs[name]
    t = pq.read_table(path)
    assert not [f.name for f in t.schema if pa.types.is_dictionary(f.type)]  # plain strings
    df = t.to_pandas()
    assert list(df.columns) == t.schema.names
    pl = polars.read_parquet(path)
    assert pl.columns == t.schema.names and pl.height == t.num_rows
    n = duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchall()[0][0]
    assert n == t.num_rows
    cols = [d[0] for d in duckdb.sql(f"select * from read_parquet('{path}') limit 1").description]
    assert cols == t.schema.names


@pytest.mark.slow
def test_fits_outputs_open_in_pandas_through_astropy(outputs):
    for name in ("cl.fits", "ul.fits", "ev.fits"):
        a = astropy_read(outputs[name])
        single = [c for c in a.colnames if a[c].ndim == 1]
        assert len(a[single].to_pandas()) == len(a)


@pytest.mark.slow
def test_sensitivity_limits_text_columns_read_in_astropy(outputs):
    """The issue's failure: dictionary<values=string> columns made astropy raise."""
    a = astropy_read(outputs["ul.parquet"])
    assert a["BAND"].dtype.kind == "U" and set(a["BAND"]) == {"0.5-2"}


@pytest.mark.slow
def test_zpdf_grid_is_machine_readable(outputs):
    for name in ("pz.parquet", "pz.fits"):
        a = astropy_read(outputs[name])
        edges = np.asarray(a["Z_PDF"].meta["z_edges"])
        assert len(edges) == a["Z_PDF"].shape[1] + 1 and np.all(np.diff(edges) > 0)
        f = tables.read_table(outputs[name]).schema.field("Z_PDF")
        assert tables.column_meta(f)["z_edges"] == list(edges)


@pytest.mark.slow
def test_event_candidates_carry_mjd_beside_mission_time(outputs):
    a = astropy_read(outputs["ev.fits"])
    for k in ("TSTART", "TSTOP"):
        mjd = np.asarray(a[f"{k}_MJD"])
        np.testing.assert_allclose(mjd, 50814.0 + np.asarray(a[k]) / 86400.0, rtol=0, atol=1e-9)
        assert str(a[f"{k}_MJD"].unit) == "d"


# -- the writers on a controlled table (fast) -------------------------------------------------


def rich() -> pa.Table:
    f = lambda name, typ, unit="", desc="": pa.field(name, typ, metadata=tables.field_meta(unit, desc))  # noqa: E731
    schema = pa.schema(
        [
            f("RA", pa.float64(), "deg", "right ascension"),
            f("P_ANY", pa.float64(), "", "probability of any counterpart, non-ASCII σ text"),
            f("BAND", pa.dictionary(pa.int32(), pa.string()), "", "band"),
            f("NAME", pa.string(), "", "a name that may be missing"),
            f("FLAG", pa.bool_(), "", "an answer that may be missing"),
            f("Z_PDF", pa.list_(pa.float32(), 3), "", "a vector"),
            f("ECF", pa.float32(), "10**11 count cm2 erg-1", "energy conversion factor"),
        ]
    )
    return pa.table(
        [
            pa.array([1.0, 2.0, 3.0]),
            pa.array([0.1, 0.5, 0.9]),
            pa.array(["8", "0.5-2", "8"]).dictionary_encode(),
            pa.array(["a", None, "ccc"]),
            pa.array([True, None, False]),
            pa.array([[0.1, 0.2, 0.7]] * 3, pa.list_(pa.float32(), 3)),
            pa.array([1.0, 2.0, 3.0], pa.float32()),
        ],
        schema=schema,
    )


@pytest.mark.parametrize("ext", [".fits", ".parquet", ".vot"])
def test_writers_give_astropy_units_descriptions_ucds_and_no_false_for_null(tmp_path, ext):
    p = tmp_path / f"t{ext}"
    tables.write_table(rich(), p)
    a = astropy_read(p)
    assert str(a["RA"].unit) == "deg" and a["RA"].description == "right ascension"
    assert a["P_ANY"].meta["ucd"] == "stat.probability"
    assert "σ" in a["P_ANY"].description
    assert (
        a["ECF"].unit.to_string("fits") in ("10**11 cm2 ct erg-1", "1e+11 cm2 ct erg-1") or a["ECF"].unit.scale == 1e11
    )
    assert list(a["BAND"]) == ["8", "0.5-2", "8"]
    flag = a["FLAG"]
    # "no answer" never reads back as False: masked (FITS, VOTable) or None (Parquet)
    assert not (getattr(flag, "mask", np.zeros(3, bool))[1] is np.False_ and flag[1] in (False, 0))
    assert flag[0] in (True, 1) and flag[2] in (False, 0)
    back = tables.read_table(p)
    assert back.column("FLAG").to_pylist() == [True, None, False]
    if ext == ".fits":
        with fits.open(p) as hl:
            hl.verify("exception")
            assert hl[1].header["TUCD2"] == "stat.probability"


def test_fits_rewrite_keeps_one_astropy_block(tmp_path):
    tables.write_table(rich(), tmp_path / "a.fits")
    tables.write_table(tables.read_table(tmp_path / "a.fits"), tmp_path / "b.fits")
    comments = [str(c) for c in fits.getheader(tmp_path / "b.fits", 1)["COMMENT"]]
    assert comments.count("--BEGIN-ASTROPY-SERIALIZED-COLUMNS--") == 1
    assert astropy_read(tmp_path / "b.fits")["RA"].description == "right ascension"


def test_streamed_parquet_still_reads_in_astropy(tmp_path):
    t = rich()
    tables.write_chunks([t.slice(0, 1), t.slice(1)], tmp_path / "s.parquet")
    a = astropy_read(tmp_path / "s.parquet")  # null strings too (widths recorded at the open)
    assert a["RA"].description == "right ascension" and len(a) == 3
    assert list(a["BAND"]) == ["8", "0.5-2", "8"] and a["NAME"][2] == "ccc"


def test_streamed_parquet_records_the_widest_string_of_every_chunk(tmp_path):
    # before: the widths were fixed from the first chunk (2x, at least 32 characters), so
    # astropy cut a longer string of a later chunk; now the footer carries the exact widths
    long = "4XMM J" + "x" * 94  # 100 characters, > 2 x the first chunk's and > 32
    t = rich()
    later = t.slice(1).set_column(3, t.schema.field("NAME"), pa.array([None, long]))
    w = tables.write_chunks([t.slice(0, 1), later, t.slice(0, 1)], tmp_path / "s.parquet")
    assert w.rows == 4
    a = astropy_read(tmp_path / "s.parquet")
    assert list(a["NAME"])[:1] == ["a"] and a["NAME"][2] == long and len(a) == 4
    assert a["RA"].description == "right ascension" and a["P_ANY"].meta["ucd"] == "stat.probability"
    meta = pq.read_schema(tmp_path / "s.parquet").metadata
    assert meta[b"table::len::NAME"] == b"100" and meta[b"table::len::BAND"] == b"5"
    footer = pq.read_metadata(tmp_path / "s.parquet").metadata
    assert footer[b"table::len::NAME"] == b"100"  # the same in the raw footer, for other readers
    back = tables.read_table(tmp_path / "s.parquet")
    assert back.column("NAME").to_pylist() == ["a", None, long, "a"]
    assert tables.column_meta(back.schema.field("RA")) == tables.column_meta(t.schema.field("RA"))
