"""--engine dask: the same stage functions on partitions on a Dask LocalCluster (2 workers,
threads) give the local engine's output: byte for byte for the row-wise stages, row for row
(pairs, P_ANY, P_I to 1e-9) for crossmatch, with primaries split into many partitions so that
pairs cross partition borders (found through the counterparts' margin)."""

from __future__ import annotations

import warnings

import healpy as hp
import numpy as np
import pyarrow as pa
import pytest
from helpers import COSMOS, DATA, SAMPLE, run_main

from xmmtools import tables
from xmmtools.crossmatch.synthetic import counterparts

pytest.importorskip("lsdb")
pytest.importorskip("distributed")

ELL = DATA / "crossmatch" / "nway_elltest"
PHOTOZ = DATA / "photoz" / "sdss_mgs_test.parquet"
DASK = ["--engine", "dask", "--workers", "2"]


@pytest.fixture(autouse=True)
def _fixed_date(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # provenance dates equal run to run
    warnings.simplefilter("ignore")


def _run(args, capsys):
    code, _, err = run_main([*args, "-q"], capsys)
    assert code == 0, err


@pytest.mark.parametrize(
    "stage",
    [
        ["classify", SAMPLE],
        ["sensitivity", SAMPLE, "--from-catalogue"],
        ["photoz", PHOTOZ],
    ],
    ids=["classify", "sensitivity", "photoz"],
)
def test_rowwise_stages_over_partitions_equal_local_byte_for_byte(stage, tmp_path, capsys):
    chunk = ["--chunk-size", "20" if stage[0] != "photoz" else "700"]
    _run([*stage, "-o", tmp_path / "local.parquet", *chunk], capsys)
    _run([*stage, "-o", tmp_path / "dask.parquet", *chunk, *DASK], capsys)
    assert (tmp_path / "local.parquet").read_bytes() == (tmp_path / "dask.parquet").read_bytes()


def test_bad_position_on_a_worker_names_the_file_row(tmp_path, capsys):
    # the file row, not the row within its partition (row 45 is in the third 20-row chunk)
    t = tables.read_table(SAMPLE)
    ra = tables.to_numpy(t.column("RA"), float).copy()
    ra[45] = 400.0
    bad = tmp_path / "bad.parquet"
    tables.write_table(t.set_column(t.schema.get_field_index("RA"), "RA", pa.array(ra)), bad)
    out = tmp_path / "o.parquet"
    code, _, err = run_main(["classify", bad, "-o", out, "--chunk-size", "20", *DASK], capsys)
    assert code == 1 and f"{bad}: RA=400 at row 45 is outside [0, 360] deg" in err, err
    assert not out.exists()


def test_engine_options_are_checked(tmp_path, capsys):
    code, _, err = run_main(["classify", SAMPLE, "-o", tmp_path / "x.parquet", "--workers", "2"], capsys)
    assert code != 0 and "--engine dask" in err
    code, _, err = run_main(["sensitivity", SAMPLE, "-o", tmp_path / "x.parquet", *DASK], capsys)
    assert code != 0 and "catalogue mode" in err


@pytest.fixture(scope="module")
def cosmos_field(tmp_path_factory):
    """COSMOS X-ray primaries (1797, 2 deg2) and synthetic counterparts around them."""
    t = tables.read_table(COSMOS)
    ra, dec, pe = (tables.to_numpy(t[c]) for c in ("RA", "DEC", "pos_err"))
    syn = counterparts(ra, dec, pe, density_deg2=20000.0, seed=7)
    folder = tmp_path_factory.mktemp("field")
    opt = pa.table({"OID": np.arange(len(syn.ra)), "ra": syn.ra, "dec": syn.dec, "MAG": syn.mag})
    tables.write_table(opt, folder / "opt.parquet")
    return folder, syn, ra, dec


def _columns_equal(a: pa.Table, b: pa.Table):
    assert a.column_names == b.column_names and a.num_rows == b.num_rows
    for c in a.column_names:
        x, y = tables.to_numpy(a[c], None), tables.to_numpy(b[c], None)
        if x.dtype.kind == "f":
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-9, equal_nan=True, err_msg=c)
        else:
            np.testing.assert_array_equal(x, y, err_msg=c)


@pytest.mark.parametrize("extra", [[], ["--all"], ["--method", "nearest"]], ids=["best", "all", "nearest"])
def test_crossmatch_dask_equals_local_across_partition_borders(cosmos_field, tmp_path, monkeypatch, extra):
    from xmmtools import engine as engines
    from xmmtools.crossmatch import dask_engine
    from xmmtools.crossmatch.run import Request, run

    folder, syn, ra, dec = cosmos_field
    monkeypatch.setattr(dask_engine, "COUNTERPART_PARTITION_ROWS", 4000)  # many counterpart partitions
    outs = []
    for eng in (None, engines.Engine("dask", workers=2)):
        out = tmp_path / f"{'dask' if eng else 'local'}.parquet"
        req = Request(
            primary=str(COSMOS),
            catalogs=[f"opt={folder / 'opt.parquet'}"],
            pos_errs=["opt=0.1"],
            output=str(out),
            all_rows="--all" in extra,
            method=extra[1] if "--method" in extra else "auto",
            engine=eng,
            partition_rows=150,  # ~12 partitions of primaries
        )
        run(req)
        outs.append(tables.read_table(out))
    _columns_equal(*outs)
    local = outs[0]
    if extra == ["--all"]:
        # some candidate pairs have their primary and counterpart in different pixels
        # of the finest partition order: found through the margin, once
        oid = tables.to_numpy(local["OPT_OID"], float)
        has = np.isfinite(oid) & (oid >= 0)
        pra, pdec = tables.to_numpy(local["RA"])[has], tables.to_numpy(local["DEC"])[has]
        nside = 2**dask_engine.HIGHEST_ORDER
        p1 = hp.ang2pix(nside, pra, pdec, nest=True, lonlat=True)
        p2 = hp.ang2pix(nside, syn.ra[oid[has].astype(int)], syn.dec[oid[has].astype(int)], nest=True, lonlat=True)
        assert (p1 != p2).sum() > 0  # 6 on this field


@pytest.fixture(scope="module")
def opt_hats_copy(tmp_path_factory):
    """``xmmtools hats import`` of the dense NWAY test catalogue (FITS, SKYAREA = 0.01 deg2)."""
    folder = tmp_path_factory.mktemp("hats")
    code, _, err = run_main(["hats", "import", ELL / "randomcatO.fits", "-o", f"hats:{folder / 'opt'}", "-q"])
    assert code == 0, err
    return f"hats:{folder / 'opt'}"


def test_fits_and_hats_copies_give_the_same_p_any_on_both_engines(opt_hats_copy, tmp_path, capsys):
    base = ["crossmatch", ELL / "randomcatX.fits", "--pos-err", "opt=0.1", "--radius", "15"]
    runs = {
        "fits": [*base, "--catalog", f"opt={ELL / 'randomcatO.fits'}"],
        "hats": [*base, "--catalog", f"opt={opt_hats_copy}"],
        "hats-dask": [*base, "--catalog", f"opt={opt_hats_copy}", *DASK],
        "fits-dask": [*base, "--catalog", f"opt={ELL / 'randomcatO.fits'}", *DASK],
    }
    got = {}
    for name, args in runs.items():
        _run([*args, "-o", tmp_path / f"{name}.parquet"], capsys)
        got[name] = tables.read_table(tmp_path / f"{name}.parquet")
    ref = got["fits"]
    rec = tables.provenance_of(got["hats"].schema)[-1]["crossmatch"]["catalogues"]["OPT"]
    assert rec["area_deg2"] == 0.01  # the FITS SKYAREA travelled with the HATS copy
    for name, t in got.items():
        np.testing.assert_allclose(tables.to_numpy(t["P_ANY"]), tables.to_numpy(ref["P_ANY"]), atol=1e-9, err_msg=name)
        np.testing.assert_allclose(tables.to_numpy(t["P_I"]), tables.to_numpy(ref["P_I"]), atol=1e-9, err_msg=name)
        np.testing.assert_array_equal(tables.to_numpy(t["OPT_ID"], None), tables.to_numpy(ref["OPT_ID"], None))


def test_hats_primary_in_and_hats_out(tmp_path, capsys):
    import lsdb

    src = f"hats:{tmp_path / 'cat'}"
    tables.write_table(tables.read_table(SAMPLE), src)
    _run(["classify", SAMPLE, "-o", tmp_path / "local.parquet"], capsys)
    _run(["classify", src, "-o", f"hats:{tmp_path / 'out'}", *DASK], capsys)
    back = tables.read_table(f"hats:{tmp_path / 'out'}")
    local = tables.read_table(tmp_path / "local.parquet")
    order = np.argsort(tables.to_numpy(back["DETID"], None), kind="stable")
    ref = np.argsort(tables.to_numpy(local["DETID"], None), kind="stable")
    _columns_equal(back.take(order), local.take(ref))
    assert [s["stage"] for s in tables.provenance_of(back.schema)][-1] == "classify"
    cat = lsdb.read_hats(tmp_path / "out")
    assert len(cat.compute()) == local.num_rows and "P_AGN" in cat.columns


def test_sensitivity_map_products_on_dask_equal_local(tmp_path, capsys):
    obs = DATA / "sensitivity" / "obs" / "0201903501"
    args = ["sensitivity-map", "--obs", obs, "--order", "12"]
    _run([*args, "-o", tmp_path / "local.fits"], capsys)
    _run([*args, "-o", tmp_path / "dask.fits", *DASK], capsys)
    assert (tmp_path / "local.fits").read_bytes() == (tmp_path / "dask.fits").read_bytes()
