"""``xmmtools sensitivity`` / ``sensitivity-map`` end to end on the shipped real products."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DATA, DR9, run_main

from xmmtools import tables
from xmmtools.sensitivity.upper_limits import kbn_upper_limit

pytestmark = pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")

SENS = DATA / "sensitivity"
OBS = SENS / "obs"


def test_positions_list_to_parquet(poslist, tmp_path, capsys):
    out = tmp_path / "ul.parquet"
    code, _, err = run_main(["sensitivity", poslist, "--obs", OBS, "--band", "0.5-2", "-o", out], capsys)
    assert code == 0, err
    t = tables.read_table(str(out))
    names = t.column("NAME").to_pylist()
    assert set(names) == {"gap", "centre", "far"}
    for col in (
        "RA",
        "DEC",
        "OBS_ID",
        "INSTRUMENT",
        "FILTER",
        "DATE_OBS",
        "MJD",
        "BAND",
        "OFFAXIS",
        "EXPOSURE",
        "BKG_COUNTS",
        "COUNTS",
        "EEF",
        "COVERED",
        "THRESH_RATE",
        "THRESH_FLUX",
        "UL_FLUX_2S",
        "FLUX_UL",
        "ENC_FLUX",
        "ENC_FLUX_ERR",
        "FLAG",
    ):
        assert col in t.schema.names
    assert tables.unit_of(t.schema.field("FLUX_UL")) == "erg/cm2/s"
    rows = t.to_pylist()
    gap_m2 = [r for r in rows if r["NAME"] == "gap" and r["OBS_ID"] == "0201903501" and r["INSTRUMENT"] == "M2"]
    assert len(gap_m2) == 1 and gap_m2[0]["COVERED"] is False and "CHIP_GAP" in gap_m2[0]["FLAG"]
    far = [r for r in rows if r["NAME"] == "far"]
    assert len(far) == 1 and far[0]["OBS_ID"] == "ALL" and far[0]["COVERED"] is False
    assert {r["BAND"] for r in rows} == {"0.5-2"}
    prov = tables.inspect_table(str(out)).provenance[-1]
    assert prov["stage"] == "sensitivity" and prov["parameters"]["likelihood"] == 10.0
    assert any(i["name"].endswith("expmap.fits.gz") for i in prov["inputs"])
    assert "wrote" in err


def test_table_input_keeps_columns_and_writes_fits(tmp_path, capsys):
    src = tmp_path / "pos.csv"
    src.write_text("SRCID,ra_deg,dec_deg,OBS_ID\n7,149.5,-11.0,x\n8,149.59,-11.09,y\n")
    out = tmp_path / "ul.fits"
    code, _, err = run_main(
        [
            "sensitivity",
            src,
            "--obs",
            OBS,
            "--columns",
            "RA=ra_deg,DEC=dec_deg",
            "--cl",
            "0.9",
            "--band",
            "0.5-2",
            "-o",
            out,
        ],
        capsys,
    )
    assert code == 0, err
    t = tables.read_table(str(out))
    assert {"SRCID", "ra_deg", "OBS_ID_INPUT", "RA", "DEC", "NAME", "UL_FLUX_CL"} <= set(t.schema.names)
    r = [r for r in t.to_pylist() if r["SRCID"] == 8 and r["INSTRUMENT"] == "PN" and r["OBS_ID"] == "0201903501"][0]
    assert r["NAME"] == "1" and r["OBS_ID_INPUT"] == "y"
    s_up = kbn_upper_limit(r["COUNTS"], r["BKG_COUNTS"], 0.9)
    assert r["FLUX_UL"] == pytest.approx(s_up / (r["EEF"] * r["EXPOSURE"] * r["ECF"] * 1e11), rel=1e-4)


def test_output_chains_into_long_term_variability_format(poslist, tmp_path, capsys):
    out = tmp_path / "ul.arrow"
    assert run_main(["sensitivity", poslist, "--obs", OBS, "-o", out, "-q"], capsys)[0] == 0
    t = tables.read_table(str(out))
    epic = [r for r in t.to_pylist() if r["INSTRUMENT"] == "EP" and r["OBS_ID"] != "ALL" and r["COVERED"]]
    assert epic and all(np.isfinite(r["MJD"]) and r["FLUX_UL"] > 0 and r["BAND"] in ("0.5-2", "2-10") for r in epic)


def test_default_output_name_and_overwrite(poslist, capsys):
    code, _, err = run_main(["sensitivity", poslist, "--obs", OBS, "--band", "2-10"], capsys)
    assert code == 0, err
    out = poslist.with_name("pos_sensitivity.parquet")
    assert out.exists()
    code, _, err = run_main(["sensitivity", poslist, "--obs", OBS, "--band", "2-10"], capsys)
    assert code == 1 and err.startswith("error:") and err.count("\n") == 1
    assert run_main(["sensitivity", poslist, "--obs", OBS, "--band", "2-10", "--overwrite"], capsys)[0] == 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["--obs", "NOPE"], "not a directory"),
        (["--obs", OBS, "--band", "8"], "no exposure maps"),
        (["--obs", OBS, "--band", "0.5-2", "--gamma", "2.5"], "no ECF"),
        (["--obs", OBS, "--band", "99"], "unknown 4XMM band"),
    ],
)
def test_bad_inputs_are_one_line_errors(poslist, tmp_path, capsys, args, message):
    code, _, err = run_main(["sensitivity", poslist, *args, "-o", tmp_path / "o.parquet"], capsys)
    assert code == 1 and err.startswith("error:") and message in err and err.count("\n") == 1


def test_bad_position_file_and_table_without_coordinates(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("149.5 -11.0\nnot a position\n")
    code, _, err = run_main(["sensitivity", bad, "--obs", OBS, "-o", tmp_path / "o.parquet"], capsys)
    assert code == 1 and "line 2" in err and err.startswith("error:")
    nocoord = tmp_path / "t.csv"
    nocoord.write_text("A,B\n1,2\n")
    code, _, err = run_main(["sensitivity", nocoord, "--obs", OBS, "-o", tmp_path / "o.parquet"], capsys)
    assert code == 1 and "needs column RA" in err


def test_usage_errors_exit_2(poslist, capsys):
    assert run_main(["sensitivity", poslist], capsys)[0] == 2
    assert run_main(["sensitivity", poslist, "--obs", OBS, "--cl", "1.5"], capsys)[0] == 2
    assert run_main(["sensitivity", poslist, "--obs", OBS, "--ecf", "PN=abc"], capsys)[0] == 2


def test_catalogue_mode_on_real_4xmm_detections(tmp_path, capsys):
    out = tmp_path / "thr.parquet"
    code, _, err = run_main(["sensitivity", DR9, "--from-catalogue", "-o", out], capsys)
    assert code == 0, err
    t = tables.read_table(str(out))
    assert t.num_rows == 100 and "EP_8_FLUX" in t.schema.names  # input columns kept
    thr = t.column("EP_8_THRESH_FLUX").to_numpy()
    flux = t.column("EP_8_FLUX").to_numpy()
    ml = t.column("EP_8_DET_ML").to_numpy()
    assert np.isfinite(thr).all() and np.all((thr > 1e-16) & (thr < 1e-12))
    # a 30" single-camera aperture is less sensitive than 4XMM's PSF fit of all cameras and
    # bands, but the scale must agree: bright detections lie above the threshold, faint ones
    # near or below it
    ratio = flux / thr
    assert np.mean(ratio[ml > 50] > 1) > 0.7
    assert np.median(ratio[ml > 50]) > 3 * np.median(ratio[ml < 10])
    best = np.fmin.reduce([t.column(f"{c}_8_THRESH_FLUX").to_numpy() for c in ("PN", "M1", "M2")])
    np.testing.assert_allclose(thr, best)


def test_catalogue_mode_errors(tmp_path, capsys):
    plain = tmp_path / "p.csv"
    plain.write_text("RA,DEC\n1,2\n")
    code, _, err = run_main(["sensitivity", plain, "--from-catalogue", "-o", tmp_path / "o.csv"], capsys)
    assert code == 1 and "OFFAX" in err
    code, _, err = run_main(["sensitivity", DR9, "--from-catalogue", "--band", "7", "-o", tmp_path / "o.csv"], capsys)
    assert code == 1 and "band 7" in err


def test_sensitivity_map_parquet_moc_and_png(tmp_path, capsys):
    out, moc, png = tmp_path / "m.parquet", tmp_path / "moc.fits", tmp_path / "m.png"
    code, _, err = run_main(
        [
            "sensitivity-map",
            "--obs",
            OBS / "0201903501",
            "--order",
            "12",
            "--band",
            "0.5-2",
            "-o",
            out,
            "--moc",
            moc,
            "--plot",
            png,
        ],
        capsys,
    )
    assert code == 0, err
    t = tables.read_table(str(out))
    assert t.schema.names == ["NPIX", "THRESH_FLUX_0P5_2KEV"]
    npix = t.column("NPIX").to_numpy()
    assert np.all(np.diff(npix) > 0) and np.all((npix >= 0) & (npix < 12 * 4**12))
    assert png.stat().st_size > 10_000
    info = tables.inspect_table(str(moc))
    assert info.header.get("ORDERING") == "NUNIQ" and info.header.get("MOCORDER") == 12
    uniq = tables.read_table(str(moc)).column("UNIQ").to_numpy()
    orders = np.floor(np.log2(uniq // 4) / 2).astype(int)
    ncells = sum(4 ** (12 - o) for o in orders)
    assert ncells == npix.size  # the MOC holds exactly the map's cells
    hdr = tables.inspect_table(str(out)).header
    assert hdr == {} or hdr.get("ORDERING") in (None, "NESTED")


def test_sensitivity_map_fits_header_and_errors(tmp_path, capsys):
    out = tmp_path / "m.fits"
    assert (
        run_main(
            ["sensitivity-map", "--obs", OBS / "0201903501", "--order", "10", "--band", "2-10", "-o", out, "-q"], capsys
        )[0]
        == 0
    )
    h = tables.inspect_table(str(out)).header
    assert h["PIXTYPE"] == "HEALPIX" and h["ORDERING"] == "NESTED" and h["NSIDE"] == 1024
    code, _, err = run_main(["sensitivity-map", "--obs", tmp_path, "-o", tmp_path / "x.parquet"], capsys)
    assert code == 1 and "no exposure maps" in err
    assert run_main(["sensitivity-map", "--obs", OBS, "--order", "30"], capsys)[0] == 2
