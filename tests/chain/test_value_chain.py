"""The value-added chain: crossmatch writes known catalogues' bands under canonical names, and
classify / photoz find them without --columns (tests/data/chain/, see its README)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import DATA, LIN, run_main

from xmmtools import tables

CHAIN = DATA / "chain"
S82X = CHAIN / "s82x_xray.fits"
S82X_SDSS = CHAIN / "s82x_sdss_vizier.fits"
S82X_PRE = CHAIN / "s82x_prematched.fits"
QSO = DATA / "photoz" / "sdss_dr3_quasars.parquet"


def _ok(args, capsys):
    code, out, err = run_main(args, capsys)
    assert code == 0, err
    return out, err


@pytest.fixture(scope="module")
def s82x_matched(tmp_path_factory):
    """Stripe 82X X-ray positions matched to their published counterparts written as a VizieR
    SDSS DR16 table (no --pos-err for sdss: the profile's 0.1 arcsec), then photoz --model agn."""
    d = tmp_path_factory.mktemp("s82x")
    xm, z = d / "x_sdss.parquet", d / "x_sdss_z.parquet"
    assert (
        run_main(
            [
                "crossmatch",
                S82X,
                "--catalog",
                f"sdss={S82X_SDSS}",
                "--pos-err",
                "PRIMARY=XRAY_RA_DEC_ERR",
                "-o",
                xm,
                "-q",
            ]
        )[0]
        == 0
    )
    assert run_main(["photoz", xm, "--model", "agn", "--pdf-format", "none", "-o", z, "-q"])[0] == 0
    return xm, z


def test_stripe82x_crossmatch_recovers_the_published_associations(s82x_matched):
    xm, _ = s82x_matched
    t = tables.read_table(xm)
    rec, obj = tables.to_numpy(t["REC_NO"]), tables.to_numpy(t["SDSS_OBJID"])
    p_any = tables.to_numpy(t["P_ANY"])
    assert t.num_rows == 1056
    # the best counterpart is the published one for every source; 1037 (98.2 %) also have P_ANY > 0.5
    assert np.mean(obj == rec) >= 0.95 and int((obj == rec).sum()) == 1056
    assert int(((obj == rec) & (p_any > 0.5)).sum()) == 1037
    prov = tables.provenance_of(t.schema)[-1]["crossmatch"]
    assert (
        "fixed 0.1 arcsec" in prov["catalogues"]["SDSS"]["errors"]
        and "sdss profile default" in prov["catalogues"]["SDSS"]["errors"]
    )
    assert prov["known_catalogues"]["SDSS"]["bands"] == {
        "SDSS_U": "umag",
        "SDSS_G": "gmag",
        "SDSS_R": "rmag",
        "SDSS_I": "imag",
        "SDSS_Z": "zmag",
    }
    # canonical columns beside the prefixed raw ones, with units and the VizieR values
    assert {"SDSS_UMAG", "SDSS_E_UMAG", "SDSS_U", "SDSS_U_ERR", "SDSS_Z", "SDSS_Z_ERR"} <= set(t.schema.names)
    np.testing.assert_array_equal(tables.to_numpy(t["SDSS_U"], float), tables.to_numpy(t["SDSS_UMAG"], float))
    assert tables.unit_of(t.schema.field("SDSS_U")) == "mag"
    assert "(AB)" in tables.description_of(t.schema.field("SDSS_U"))


def test_chained_photoz_equals_photoz_on_the_prematched_magnitudes(s82x_matched, tmp_path, capsys):
    _, z = s82x_matched
    # the published magnitudes, -99 (missing) blanked as VizieR does
    pre = tables.read_table(S82X_PRE)
    cols = {n: pre[n] for n in pre.column_names}
    for b in "UGRIZ":
        v = tables.to_numpy(pre[b], float)
        cols[b] = pa.array(np.where(v < -90, np.nan, v))
    direct_in, direct_out = tmp_path / "pre.parquet", tmp_path / "pre_z.parquet"
    pq.write_table(pa.table(cols), direct_in)
    _ok(
        [
            "photoz",
            direct_in,
            "--model",
            "agn",
            "--pdf-format",
            "none",
            "--columns",
            "u=U,g=G,r=R,i=I,z=Z",
            "-o",
            direct_out,
            "-q",
        ],
        capsys,
    )
    chained, direct = tables.read_table(z), tables.read_table(direct_out)
    assert tables.to_numpy(chained["REC_NO"]).tolist() == tables.to_numpy(direct["REC_NO"]).tolist()
    for k in ("Z_PHOT", "Z_MEAN", "Z_L68", "Z_FLAG"):
        np.testing.assert_array_equal(tables.to_numpy(chained[k], float), tables.to_numpy(direct[k], float), k)
    zp = tables.to_numpy(chained["Z_PHOT"], float)
    assert np.isfinite(zp).all() and 0 < np.median(zp) < 3
    used = tables.provenance_of(chained.schema)[-1]["photoz"]["inputs"]["agn"]
    assert used["u"] == {"column": "SDSS_U", "from": "canonical"} and used["z"]["column"] == "SDSS_Z"
    out, _ = _ok(["info", z], capsys)
    assert "u <- SDSS_U (canonical SDSS_U)" in out and "columns used: agn.u=SDSS_U" in out


def test_shipped_agn_model_applies_to_its_own_training_table_without_columns(tmp_path, capsys):
    small, a, b = tmp_path / "q.parquet", tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pq.read_table(QSO).slice(0, 300), small)
    _, err = _ok(["photoz", small, "--model", "agn", "--pdf-format", "none", "-o", a, "-v"], capsys)
    assert "u <- u_mag (the model's recorded map)" in err
    _ok(
        [
            "photoz",
            small,
            "--model",
            "agn",
            "--pdf-format",
            "none",
            "-o",
            b,
            "-q",
            "--columns",
            "u=u_mag,g=g_mag,r=r_mag,i=i_mag,z=z_mag",
        ],
        capsys,
    )
    np.testing.assert_array_equal(
        tables.to_numpy(pq.read_table(a)["Z_PHOT"], float), tables.to_numpy(pq.read_table(b)["Z_PHOT"], float)
    )


def test_gaia_allwise_crossmatch_then_classify_uses_g_w1_w2(tmp_path, capsys):
    xm, cl = tmp_path / "x.parquet", tmp_path / "x_cl.parquet"
    _ok(
        [
            "crossmatch",
            CHAIN / "lin_xray.csv",
            "--catalog",
            f"gaia={CHAIN / 'lin_gaia_vizier.csv'}",
            "--catalog",
            f"allwise={CHAIN / 'lin_allwise_vizier.csv'}",
            "--catalog",
            f"gaiadist={CHAIN / 'lin_gaiadist_vizier.csv'}",
            "--pos-err",
            "PRIMARY=poserr",
            "--radius",
            "10",
            "-o",
            xm,
            "-q",
        ],
        capsys,
    )
    out, _ = _ok(["info", xm], capsys)
    assert (
        "inputs: G <- GAIA_G (canonical GAIA_G); W1 <- WISE_W1 (canonical WISE_W1); "
        "W2 <- WISE_W2 (canonical WISE_W2); dist <- GAIA_DIST (canonical GAIA_DIST)"
    ) in out
    _ok(["classify", xm, "--prefix", "NB_", "-o", cl, "-q"], capsys)
    t = tables.read_table(cl)
    assert tables.provenance_of(t.schema)[-1]["classify"]["inputs"] == {
        "G": {"column": "GAIA_G", "from": "canonical"},
        "W1": {"column": "WISE_W1", "from": "canonical"},
        "W2": {"column": "WISE_W2", "from": "canonical"},
        "dist": {"column": "GAIA_DIST", "from": "canonical"},
    }
    out, _ = _ok(["info", cl], capsys)
    assert "columns used: G=GAIA_G, W1=WISE_W1, W2=WISE_W2, dist=GAIA_DIST" in out
    # the same rows of the Lin et al. table, with its own G/W1/W2/dist columns: same probabilities
    lin = pq.read_table(tmp_path / "x.parquet").column("name").to_pylist()
    full = tables.read_table(LIN)
    pos = {n: i for i, n in enumerate(full["name"].to_pylist())}
    direct_in, direct_out = tmp_path / "lin.parquet", tmp_path / "lin_cl.parquet"
    pq.write_table(full.take(pa.array([pos[n] for n in lin])), direct_in)
    _ok(["classify", direct_in, "--prefix", "NB_", "-o", direct_out, "-q"], capsys)
    d = tables.read_table(direct_out)
    assert t.num_rows == d.num_rows == 81
    g = tables.to_numpy(t["GAIA_G"], float)
    assert np.isfinite(g).sum() == 75 and np.isfinite(tables.to_numpy(t["GAIA_DIST"], float)).sum() == 27
    for k in ("NB_P_AGN", "NB_P_STAR", "NB_P_OTHER", "NB_OUTLIER_SCORE"):
        np.testing.assert_array_equal(tables.to_numpy(t[k], float), tables.to_numpy(d[k], float), k)
    assert t["NB_CLASS"].to_pylist() == d["NB_CLASS"].to_pylist()


def test_a_counterpart_in_another_system_is_converted(tmp_path, monkeypatch, capsys):
    """A user catalogue file declaring AB WISE magnitudes (as in the Stripe 82X table) is written
    as Vega WISE_W1 (m_Vega = m_AB - 2.699, Jarrett et al. 2011), which classify then uses."""
    prof = tmp_path / "profiles"
    prof.mkdir()
    (prof / "wiseab.toml").write_text(
        'name = "wiseab"\nra = ["RAJ2000"]\ndec = ["DEJ2000"]\npos_err_default = 0.5\n'
        'system = "AB"\n[bands.WISE_W1]\nvalue = ["W1mag"]\n[bands.WISE_W2]\n'
        'value = ["W2mag"]\n'
    )
    monkeypatch.setenv("XMMTOOLS_CATALOGS", str(prof))
    src = tables.read_table(CHAIN / "lin_allwise_vizier.csv")
    ab = {n: src[n] for n in src.column_names}
    for b in ("W1mag", "W2mag"):
        ab[b] = pa.array(tables.to_numpy(src[b], float) + {"W1mag": 2.699, "W2mag": 3.339}[b])
    wise_ab = tmp_path / "wise_ab.parquet"
    pq.write_table(pa.table(ab), wise_ab)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    xray = CHAIN / "lin_xray.csv"
    _ok(
        ["crossmatch", xray, "--catalog", f"wise={wise_ab}:wiseab", "--pos-err", "PRIMARY=poserr", "-o", a, "-q"],
        capsys,
    )
    _ok(
        [
            "crossmatch",
            xray,
            "--catalog",
            f"allwise={CHAIN / 'lin_allwise_vizier.csv'}",
            "--pos-err",
            "PRIMARY=poserr",
            "-o",
            b,
            "-q",
        ],
        capsys,
    )
    ta, tb = tables.read_table(a), tables.read_table(b)
    np.testing.assert_allclose(tables.to_numpy(ta["WISE_W1"], float), tables.to_numpy(tb["WISE_W1"], float), atol=1e-9)
    assert "-2.699 mag from AB" in tables.description_of(ta.schema.field("WISE_W1"))


def test_known_label_for_another_name_and_a_skyserver_file(tmp_path, capsys):
    """NAME=FILE:PROFILE; a SkyServer file's bare u column (raw SDSS_U) becomes the canonical one."""
    src = tables.read_table(S82X_SDSS)
    sky = pa.table(
        {"objid": src["objID"], "ra": src["RA_ICRS"], "dec": src["DE_ICRS"], "u": src["umag"], "err_u": src["e_umag"]}
    )
    f = tmp_path / "skyserver.parquet"
    pq.write_table(sky, f)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    _ok(
        ["crossmatch", S82X, "--catalog", f"opt={f}:sdss", "--pos-err", "PRIMARY=XRAY_RA_DEC_ERR", "-o", a, "-q"],
        capsys,
    )
    _ok(["crossmatch", S82X, "--catalog", f"sdss={f}", "--pos-err", "PRIMARY=XRAY_RA_DEC_ERR", "-o", b, "-q"], capsys)
    ta, tb = tables.read_table(a), tables.read_table(b)
    assert {"OPT_U", "OPT_ERR_U", "SDSS_U", "SDSS_U_ERR"} <= set(ta.schema.names)
    assert tb.schema.names.count("SDSS_U") == 1 and "SDSS_ERR_U" in tb.schema.names
    np.testing.assert_array_equal(tables.to_numpy(ta["SDSS_U"], float), tables.to_numpy(tb["SDSS_U"], float))
    assert (
        json.dumps(tables.provenance_of(tb.schema)[-1]["crossmatch"]["known_catalogues"]["SDSS"]["bands"])
        == '{"SDSS_U": "u"}'
    )
