"""`xmmtools photoz` (apply, train, evaluate) end to end on the shipped MGS/quasar data, and the
shipped default models reproducing their recorded metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import DATA, run_main

from xmmtools import tables
from xmmtools.photoz.model import FLAG_NOT_EXTRAGALACTIC, load_model, model_path

PHOTOZ = DATA / "photoz"
TRAIN = PHOTOZ / "sdss_mgs_train.parquet"
TEST = PHOTOZ / "sdss_mgs_test.parquet"
QSO = PHOTOZ / "sdss_dr3_quasars.parquet"
ATTRS = "u,g,r,i,z,u-g,g-r,r-i,i-z"


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory):
    """A 10-tree model trained through the command line."""
    folder = tmp_path_factory.mktemp("model")
    out = folder / "mgs.json"
    code, _, err = run_main(
        [
            "photoz",
            "train",
            TRAIN,
            "--z-column",
            "zs",
            "--attributes",
            ATTRS,
            "--zmin",
            "0.001",
            "--zmax",
            "0.3",
            "--nzbins",
            "80",
            "--nrandom",
            "2",
            "--ntrees",
            "5",
            "--natt",
            "5",
            "--seed",
            "3",
            "--no-importance",
            "-o",
            out,
            "-q",
            "--oob-table",
            folder / "oob.parquet",
        ]
    )
    assert code == 0, err
    return out


def _err_line(err):
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_train_writes_json_and_npz_with_provenance(cli_model):
    doc = json.loads(cli_model.read_text())
    assert doc["format"] == "xmmtools-photoz-tpz" and doc["attributes"] == ATTRS.split(",")
    assert doc["grid"] == {"zmin": 0.001, "zmax": 0.3, "nzbins": 80}
    assert doc["parameters"]["NRandom"] == 2 and doc["parameters"]["NTrees"] == 5
    assert doc["training"]["rows"] == 5000 and len(doc["training"]["checksum_sha256"]) == 64
    assert doc["training"]["file_sha256"] == tables.file_sha256(TRAIN)
    assert doc["error_columns"]["u"] == "eu"
    assert 0.012 < doc["oob_metrics"]["sigma_nmad"] < 0.025
    assert cli_model.with_suffix(".npz").exists()
    # --mode-smooth auto (default): the width with the lowest OOB sigma_NMAD, stored and recorded
    sel = doc["mode_smooth_selection"]
    assert doc["postprocess"]["mode_smooth"] == sel["chosen_bins"]
    assert min(sel["oob_sigma_nmad"]) == sel["oob_sigma_nmad"][sel["candidates_bins"].index(sel["chosen_bins"])]
    # out-of-bag estimates of every training galaxy, from the trees that did not draw it
    oob = tables.read_table(cli_model.parent / "oob.parquet")
    assert oob.num_rows == 5000 and {"zs", "u", "eu", "Z_PHOT", "Z_PDF"} <= set(oob.column_names)
    zp, zs = tables.to_numpy(oob.column("Z_PHOT")), tables.to_numpy(oob.column("zs"))
    ok = np.isfinite(zp)
    assert ok.mean() > 0.97  # with 10 trees ~1 % of galaxies (0.632^10) are in every bootstrap
    from xmmtools.photoz.metrics import point_metrics

    assert point_metrics(zp[ok], zs[ok])["sigma_nmad"] == pytest.approx(doc["oob_metrics"]["sigma_nmad"], rel=1e-6)


def test_apply_streams_chunks_and_writes_every_column(tmp_path, cli_model, capsys):
    out = tmp_path / "test_z.parquet"
    code, _, err = run_main(["photoz", TEST, "-o", out, "--model", cli_model, "--chunk-size", "700", "-q"], capsys)
    assert code == 0, err
    t = tables.read_table(out)
    assert t.num_rows == 2500 and t.column_names[:19] == pq.read_schema(TEST).names
    for c in ("Z_PHOT", "Z_MEAN", "Z_MEDIAN", "Z_ERR", "Z_L68", "Z_U68", "Z_L95", "Z_U95", "Z_CONF", "Z_FLAG"):
        assert c in t.column_names and tables.description_of(t.schema.field(c))
    pdf = t.column("Z_PDF")
    assert pa.types.is_fixed_size_list(pdf.type) and pdf.type.list_size == 80
    assert pdf.type.value_type == pa.float32()
    p = np.asarray(pdf.combine_chunks().flatten()).reshape(-1, 80)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert "80 uniform bins from z=0.001 to 0.3" in tables.description_of(t.schema.field("Z_PDF"))
    prov = tables.provenance_of(t.schema)[-1]
    assert prov["stage"] == "photoz" and len(prov["photoz"]["pdf_edges"]) == 81
    zp = tables.to_numpy(t.column("Z_PHOT"))
    zs = tables.to_numpy(t.column("zs"))
    assert 1.48 * np.median(np.abs(zp - zs - np.median(zp - zs)) / (1 + zs)) < 0.016
    # the same chunked and in one piece: identical
    out2 = tmp_path / "one.parquet"
    assert run_main(["photoz", TEST, "-o", out2, "--model", cli_model, "-q"])[0] == 0
    t2 = tables.read_table(out2)
    assert t2.column("Z_PDF").equals(t.column("Z_PDF")) and t2.column("Z_PHOT").equals(t.column("Z_PHOT"))


def test_apply_fits_vector_column_and_quantiles(tmp_path, cli_model):
    small = tmp_path / "small.parquet"
    pq.write_table(pq.read_table(TEST).slice(0, 50), small)
    fits = tmp_path / "small_z.fits"
    assert run_main(["photoz", small, "-o", fits, "--model", cli_model, "-q"])[0] == 0
    from astropy.io import fits as pf

    with pf.open(fits) as h:
        assert h[1].columns["Z_PDF"].format == "80E"
        np.testing.assert_allclose(h[1].data["Z_PDF"].sum(axis=1), 1.0, atol=1e-5)
    q = tmp_path / "small_q.parquet"
    assert run_main(["photoz", small, "-o", q, "--model", cli_model, "--pdf-format", "quantiles", "-q"])[0] == 0
    t = tables.read_table(q)
    v = np.asarray(t.column("Z_PDF_Q").combine_chunks().flatten()).reshape(50, -1)
    assert (np.diff(v, axis=1) >= 0).all() and "Z_PDF" not in t.column_names
    med = tables.to_numpy(t.column("Z_MEDIAN"))
    np.testing.assert_allclose(v[:, 7], med, rtol=1e-6)  # level 0.5
    csv = tmp_path / "small_z.csv"
    assert run_main(["photoz", small, "-o", csv, "--model", cli_model, "--pdf-format", "none", "-q"])[0] == 0
    assert "Z_PDF" not in tables.read_table(csv).column_names


def test_class_routes_rows_to_the_shipped_models(tmp_path, capsys):
    """CLASS AGN -> agn model, GALAXY -> galaxy model, STAR/unknown skipped (flag 16) unless --all."""
    src = pq.read_table(TEST).slice(0, 8)
    classes = ["AGN", "GALAXY", "STAR", None, "QSO", "galaxy", "XRB", "CV"]
    cat = tmp_path / "cls.parquet"
    pq.write_table(src.append_column("CLASS", pa.array(classes)), cat)
    out = tmp_path / "cls_z.parquet"
    code, _, err = run_main(["photoz", cat, "-o", out, "-q"], capsys)
    assert code == 0, err
    t = tables.read_table(out)
    flag = tables.to_numpy(t.column("Z_FLAG"), None)
    zp = tables.to_numpy(t.column("Z_PHOT"))
    skipped = np.array([c not in ("AGN", "GALAXY", "QSO", "galaxy") for c in classes])
    assert ((flag & FLAG_NOT_EXTRAGALACTIC) > 0).tolist() == skipped.tolist()
    assert np.isnan(zp[skipped]).all() and np.isfinite(zp[~skipped]).all()
    # the galaxy rows match the galaxy model alone; the PDFs live on the union of both grids
    galaxy = tmp_path / "g.parquet"
    assert run_main(["photoz", cat, "-o", galaxy, "--model", "galaxy", "--all", "-q"])[0] == 0
    zg = tables.to_numpy(tables.read_table(galaxy).column("Z_PHOT"))
    assert zp[1] == zg[1] and zp[5] == zg[5] and zp[0] != zg[0]
    edges = np.array(tables.provenance_of(t.schema)[-1]["photoz"]["pdf_edges"])
    n = t.column("Z_PDF").type.list_size
    assert len(edges) == n + 1 and edges[0] == 0.0 and edges[-1] == 6.0
    p = np.asarray(t.column("Z_PDF").combine_chunks().flatten()).reshape(8, n)
    np.testing.assert_allclose(p[~skipped].sum(axis=1), 1.0, atol=1e-5)
    centres = 0.5 * (edges[1:] + edges[:-1])
    mean = (p[~skipped] * centres).sum(axis=1)
    np.testing.assert_allclose(mean, tables.to_numpy(t.column("Z_MEAN"))[~skipped], atol=2e-4)


def test_shipped_galaxy_model_reproduces_its_recorded_metrics(capsys):
    doc = json.loads(Path(model_path("galaxy")).read_text())
    rec = doc["test_metrics"]
    code, out, err = run_main(["photoz", "evaluate", TEST, "--model", "galaxy", "--z-column", "zs", "--json"], capsys)
    assert code == 0, err
    got = json.loads(out)
    for k in ("bias", "sigma_nmad", "outliers_005", "crps", "pit_ks", "coverage_68"):
        assert got[k] == pytest.approx(rec[k], rel=1e-9, abs=1e-12), k
    # the quality bar on the MGS test half (Z_PHOT smoothing width chosen by OOB: 8 bins)
    assert doc["postprocess"]["mode_smooth"] == doc["mode_smooth_selection"]["chosen_bins"] == 8.0
    assert got["sigma_nmad"] <= 0.0135 and got["outliers_005"] <= 0.012 and got["crps"] <= 0.0094
    assert got["pit_ks"] <= 0.04 and 0.66 <= got["coverage_68"] <= 0.71
    assert abs(got["bias"]) <= 0.001 and abs(got["median_bias"]) <= 0.001
    assert Path(model_path("galaxy")).with_suffix(".npz").stat().st_size < 5e6


@pytest.mark.slow
def test_shipped_galaxy_model_is_rebuilt_bit_for_bit():
    from xmmtools.photoz.defaults import build

    shipped = load_model(model_path("galaxy"))
    fresh = build("galaxy", n_jobs=1)
    assert fresh.info["training"]["checksum_sha256"] == shipped.info["training"]["checksum_sha256"]
    for a, b in zip(
        fresh.forest.threshold + fresh.forest.leaf_bins,
        shipped.forest.threshold + shipped.forest.leaf_bins,
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    for k in ("sigma_nmad", "crps", "pit_ks", "coverage_68"):
        assert fresh.info["oob_metrics"][k] == shipped.info["oob_metrics"][k]
        assert fresh.info["test_metrics"][k] == shipped.info["test_metrics"][k]


def test_shipped_agn_model_reproduces_its_recorded_numbers():
    from xmmtools.photoz import metrics
    from xmmtools.photoz.attributes import resolve_attributes

    model = load_model(model_path("agn"))
    doc = json.loads(Path(model_path("agn")).read_text())
    t = pq.read_table(QSO).slice(0, 2000)
    aset = resolve_attributes(model.attributes, t.column_names, source="qso", user_map=doc["training"]["columns"])
    X, _ = aset.values(lambda c: t[c].to_numpy())
    p, est = model.estimate(X)
    got = metrics.all_metrics(p, model.grid.edges, t["z"].to_numpy(), est)
    rec = doc["resubstitution_first_2000"]
    for k in ("sigma_nmad", "outliers_015", "crps", "pit_ks"):
        assert got[k] == pytest.approx(rec[k], rel=1e-9, abs=1e-12)
    cv = doc["cv5_metrics"]  # the bar: sigma_NMAD <= 0.060, outliers(>0.15) <= 18 %
    assert cv["sigma_nmad"] <= 0.060 and cv["outliers_015"] <= 0.18 and cv["n"] == 32494
    assert Path(model_path("agn")).with_suffix(".npz").stat().st_size < 5e6


def test_evaluate_report_writes_metrics_and_figures(tmp_path, cli_model, capsys):
    rep = tmp_path / "report"
    code, out, err = run_main(["photoz", "evaluate", TEST, "--model", cli_model, "--report", rep], capsys)
    assert code == 0, err
    assert "sigma_nmad" in out and "pit_ks" in out
    m = json.loads((rep / "metrics.json").read_text())["metrics"]
    assert m["n"] == 2500 and 0 < m["crps"] < 0.012
    for f in ("zphot_vs_zspec.png", "pit_histogram.png", "nz.png"):
        assert (rep / f).stat().st_size > 1000


def test_train_with_derived_colours_mapping_and_config(tmp_path, capsys):
    """Colours of columns that are not in the table; MLZ-style config; sentinel values."""
    cfg = tmp_path / "qso.inputs"
    cfg.write_text(
        "# MLZ names\nNRandom : 2\nNTrees : 3\nNatt : 4\nMinLeaf : 10\nzmin : 0.0\nzmax : 6.0\n"
        "nzbins : 120\nRmsFactor : 0.03\nSomethingElse : ignored\n"
    )
    qso = tmp_path / "qso.parquet"
    pq.write_table(pq.read_table(QSO).slice(0, 3000), qso)
    out = tmp_path / "q.json"
    code, _, err = run_main(
        [
            "photoz",
            "train",
            qso,
            "--z-column",
            "z",
            "--config",
            cfg,
            "--attributes",
            "u_mag,g_mag,r_mag,u_mag-g_mag,g_mag-r_mag,J_mag",
            "--missing",
            "0",
            "-o",
            out,
            "--no-importance",
            "--mode-smooth",
            "2",
        ],
        capsys,
    )
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["parameters"]["NRandom"] == 2 and doc["parameters"]["MinLeaf"] == 10
    assert doc["grid"]["nzbins"] == 120 and doc["postprocess"]["RmsFactor"] == 0.03
    assert doc["postprocess"]["mode_smooth"] == 2.0 and "mode_smooth_selection" not in doc
    assert doc["error_columns"] == {"u_mag": "sig_u", "g_mag": "sig_g", "r_mag": "sig_r", "J_mag": "sig_J"}
    assert doc["training"]["columns"]["u_mag-g_mag"] is None  # derived, not a column
    # 2MASS J is 0 (= not detected) for most quasars: a missing pattern, not the value 0
    assert sum(doc["missing_patterns"].values()) == 3000 and "32" in doc["missing_patterns"]
    assert "wrote" in err and "OOB sigma_NMAD" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--attributes", "u,g,w1"], "attribute w1: .* has no column w1"),
        (["--attributes", "u,g", "--z-column", "zspec"], "has no redshift column zspec"),
        (["--attributes", "u,g", "--natt", "3"], "Natt=3 is more than the 2 attributes"),
        (["--attributes", "u,g", "--errors", "eu"], "--errors lists 1 columns but 2"),
    ],
)
def test_train_bad_input_is_one_line(tmp_path, capsys, args, message):
    base = ["photoz", "train", TRAIN, "-o", tmp_path / "m.json", "--ntrees", "2"]
    if "--z-column" not in args:
        base += ["--z-column", "zs"]
    code, _, err = run_main(base + args, capsys)
    assert code == 1
    import re

    assert re.search(message, _err_line(err))


def test_train_mode_smooth_must_be_auto_or_bins(tmp_path, capsys):
    code, _, err = run_main(
        [
            "photoz",
            "train",
            TRAIN,
            "--z-column",
            "zs",
            "--attributes",
            "u,g",
            "-o",
            tmp_path / "m.json",
            "--mode-smooth",
            "wide",
        ],
        capsys,
    )
    assert code != 0 and "neither 'auto' nor a number of bins" in err
    assert not (tmp_path / "m.json").exists()


def test_train_nan_redshift_and_missing_errors_are_one_line(tmp_path, capsys):
    t = pq.read_table(TRAIN).slice(0, 300)
    z = t["zs"].to_numpy().copy()
    z[5] = np.nan
    bad = tmp_path / "nanz.parquet"
    pq.write_table(t.set_column(0, "zs", pa.array(z)), bad)
    code, _, err = run_main(
        ["photoz", "train", bad, "--z-column", "zs", "--attributes", "u,g,r", "-o", tmp_path / "m.json"], capsys
    )
    assert code == 1 and "no valid spectroscopic redshift (first at row 5)" in _err_line(err)
    noerr = tmp_path / "noerr.parquet"
    pq.write_table(t.select(["zs", "u", "g", "r"]), noerr)
    code, _, err = run_main(["photoz", "train", noerr, "--attributes", "u,g,r", "-o", tmp_path / "m.json"], capsys)
    assert code == 1 and "no error column for u, g, r" in _err_line(err)
    # without perturbations no errors are needed
    code, _, err = run_main(
        [
            "photoz",
            "train",
            noerr,
            "--attributes",
            "u,g,r",
            "--nrandom",
            "1",
            "--ntrees",
            "2",
            "--natt",
            "2",
            "--no-importance",
            "-o",
            tmp_path / "m.json",
            "-q",
        ],
        capsys,
    )
    assert code == 0, err
    code, _, err = run_main(
        ["photoz", "train", noerr, "--attributes", "u,g,r", "--nrandom", "1", "-o", tmp_path / "m.json"], capsys
    )
    assert code == 1 and "exists; use --overwrite" in _err_line(err)


def test_apply_bad_inputs_are_one_line(tmp_path, cli_model, capsys):
    cat = tmp_path / "cat.parquet"
    pq.write_table(pq.read_table(TEST).select(["zs", "u", "g", "r"]).slice(0, 10), cat)
    code, _, err = run_main(["photoz", cat, "--model", cli_model, "-o", tmp_path / "o.parquet"], capsys)
    assert code == 1 and "attribute i: " in _err_line(err)
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    code, _, err = run_main(["photoz", TEST, "--model", junk, "-o", tmp_path / "o.parquet"], capsys)
    assert code == 1 and "not a readable photoz model" in _err_line(err)
    # a damaged arrays file is refused by its checksum
    doc = json.loads(cli_model.read_text())
    doc["arrays"] = "bad.npz"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    (tmp_path / "bad.npz").write_bytes(cli_model.with_suffix(".npz").read_bytes()[:-10] + b"0123456789")
    code, _, err = run_main(["photoz", TEST, "--model", bad, "-o", tmp_path / "o.parquet"], capsys)
    assert code == 1 and "checksum differs" in _err_line(err)
    code, _, err = run_main(["photoz", TEST, "--model", tmp_path / "none.json", "-o", tmp_path / "o.parquet"], capsys)
    assert code == 1 and "no such model file" in _err_line(err)
    assert not (tmp_path / "o.parquet").exists()
    code, _, err = run_main(["photoz", TEST, "--pdf-format", "pdf"], capsys)
    assert code == 2


def test_apply_default_output_name_and_column_mapping(tmp_path, cli_model, capsys):
    src = pq.read_table(TEST).slice(0, 20)
    renamed = src.rename_columns([f"mag_{c}" if c in ("u", "g", "r", "i", "z") else c for c in src.column_names])
    cat = tmp_path / "cat.parquet"
    pq.write_table(renamed, cat)
    code, _, err = run_main(
        ["photoz", cat, "--model", cli_model, "--columns", "u=mag_u,g=mag_g,r=mag_r,i=mag_i,z=mag_z", "-q"], capsys
    )
    assert code == 0, err
    t = tables.read_table(tmp_path / "cat_photoz.parquet")
    direct = tmp_path / "direct.parquet"
    pq.write_table(src, direct)
    assert run_main(["photoz", direct, "--model", cli_model, "-o", tmp_path / "d.parquet", "-q"])[0] == 0
    assert t.column("Z_PHOT").equals(tables.read_table(tmp_path / "d.parquet").column("Z_PHOT"))


def test_apply_reads_an_arrow_stream_on_stdin(tmp_path, cli_model):
    from helpers import run_cli

    sink = pa.BufferOutputStream()
    t = pq.read_table(TEST).slice(0, 100)
    with pa.ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)
    out = tmp_path / "piped.parquet"
    r = run_cli(["photoz", "-", "--model", cli_model, "-o", out, "-q"], input=sink.getvalue().to_pybytes())
    assert r.returncode == 0, r.stderr
    res = tables.read_table(out)
    assert res.num_rows == 100 and res.column("Z_PDF").type.list_size == 80
    prov = tables.provenance_of(res.schema)[-1]
    assert prov["inputs"][0]["name"] == "-" and len(prov["photoz"]["pdf_edges"]) == 81


def test_apply_mlz_postprocessing_options(tmp_path, cli_model):
    """--smooth/--cut (MLZ SigmaFactor and 20 %-of-peak cut) change the PDFs, which stay normalised."""
    small = tmp_path / "small.parquet"
    pq.write_table(pq.read_table(TEST).slice(0, 200), small)
    plain, mlz = tmp_path / "plain.parquet", tmp_path / "mlz.parquet"
    assert run_main(["photoz", small, "-o", plain, "--model", cli_model, "-q"])[0] == 0
    assert run_main(["photoz", small, "-o", mlz, "--model", cli_model, "--smooth", "3", "--cut", "0.2", "-q"])[0] == 0
    p0 = np.asarray(tables.read_table(plain).column("Z_PDF").combine_chunks().flatten()).reshape(200, 80)
    t1 = tables.read_table(mlz)
    p1 = np.asarray(t1.column("Z_PDF").combine_chunks().flatten()).reshape(200, 80)
    np.testing.assert_allclose(p1.sum(axis=1), 1.0, atol=1e-5)
    # after the cut every non-zero bin is at least 20 % of the peak
    assert ((p1 == 0) | (p1 >= 0.2 * p1.max(axis=1, keepdims=True) - 1e-7)).all()
    assert not np.allclose(p0, p1)
    assert tables.provenance_of(t1.schema)[-1]["parameters"]["smooth"] == 3.0


def test_info_readiness_needs_the_galaxy_model_columns(tmp_path, capsys):
    """`xmmtools info` checks the default (galaxy) model's attributes with the stage's own resolution."""

    def photoz_stage(args):
        code, out, err = run_main(["info", "--json", *args], capsys)
        assert code == 0, err
        stage = json.loads(out)["stages"]["photoz"]
        stage.pop("inputs", None)  # which column feeds each magnitude: see test_value_chain.py
        return stage

    assert photoz_stage([TEST]) == {"ready": True, "missing": []}
    # DR3 quasars: magnitudes are u_mag, ...; its "z" column (the redshift!) resolves as the z band
    assert photoz_stage([QSO]) == {"ready": False, "missing": ["u", "g", "r", "i"]}
    assert photoz_stage([QSO, "--columns", "u=u_mag,g=g_mag,r=r_mag,i=i_mag,z=z_mag"])["ready"]
    # upper-case names resolve case-insensitively; colours are derived from the magnitudes
    upper = tmp_path / "upper.parquet"
    pq.write_table(pa.table({b: [20.0] for b in ("U", "G", "R", "I", "Z")}), upper)
    assert photoz_stage([upper])["ready"]
    xray = tmp_path / "xray.parquet"
    pq.write_table(pa.table({"RA": [1.0], "DEC": [2.0], "CLASS": ["AGN"]}), xray)
    assert photoz_stage([xray]) == {"ready": False, "missing": ["u", "g", "r", "i", "z"]}
    code, out, _ = run_main(["info", xray], capsys)
    assert "photoz             missing u, g, r, i, z" in out or "missing u, g, r, i, z" in out
