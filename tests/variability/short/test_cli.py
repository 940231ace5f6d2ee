"""``xmmtools variability short`` on real XMM light curves (tests/data/variability, see its README)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from astropy.io import fits
from helpers import DATA, run_main

from xmmtools import tables
from xmmtools.errors import DataError
from xmmtools.variability import gti as G
from xmmtools.variability.short import lightcurves as L
from xmmtools.variability.short.statistics import lightcurve_statistics, single

VAR = DATA / "variability"
LC = VAR / "lc"
GSN = LC / "0831790701"
HD = LC / "0001730201"
HD_M1 = HD / "lcurve_100_M1_1"


@pytest.fixture(scope="module")
def per_curve(tmp_path_factory):
    out = tmp_path_factory.mktemp("vs") / "lc.parquet"
    code, _, _ = run_main(["variability", "short", "--lightcurves", LC, "-o", out, "-q"])
    assert code == 0
    return tables.read_table(str(out)).to_pylist()


def _row(rows, endswith):
    (r,) = [r for r in rows if r["FILE"].endswith(endswith)]
    return r


# ------------------------------------------------------------------------------- discovery


def test_naming_rules_pair_sources_with_backgrounds_and_skip_backgrounds():
    pairs = L.find_lightcurves(str(LC))
    names = [Path(p).name for p, _ in pairs]
    assert len(pairs) == 8  # 6 evselect 100 s curves, HD 159176 MOS1 2.604 s src + lccorr
    assert not any("_bgd" in n for n in names)
    bk = dict((Path(p).name, b and Path(b).name) for p, b in pairs)
    assert bk["J011908-341133_lc_100_src.lc.gz"] == "J011908-341133_lc_100_bgd.lc.gz"
    assert bk["J173442-323451_lccorr_2.604.lc.gz"] is None
    assert L.is_source_curve_name("P0831790701PNS001SRCTSR000A.FTZ")
    assert L.BKG_RE.search("P0831790701PNS001FBKTSR0000.FTZ")
    assert not L.is_source_curve_name("M1_clean.fits.gz")


def test_pps_name_gives_obsid_camera_and_hex_source_number(tmp_path):
    # an epiclccorr curve renamed as a PPS product: SRC_NUM is the hexadecimal field
    src = HD_M1 / "J173442-323451_lccorr_2.604.lc.gz"
    dst = tmp_path / "P0001730201M1S002SRCTSR001F.FTZ"
    dst.write_bytes(src.read_bytes())
    lc = L.read_lightcurve(str(dst))
    assert (lc.kind, lc.camera, lc.obs_id, lc.src_num) == ("pps", "M1", "0001730201", 31)


# ------------------------------------------------------------------------------- reading


def test_epiclccorr_counts_are_recovered_exactly():
    """epiclccorr (absolute corrections) rates give back the integer counts of its input
    evselect curve: same total source and background counts, correction factor k = 1.773."""
    corr = L.read_lightcurve(str(HD_M1 / "J173442-323451_lccorr_2.604.lc.gz"))
    assert corr.kind == "lccorr" and corr.bkg_source == "backv"
    assert corr.rate_scale == pytest.approx(1.77304, rel=1e-5)
    assert corr.bkg_scale == pytest.approx(0.99684, rel=1e-4)
    assert np.abs(corr.counts - np.round(corr.counts)).max() < 1e-5
    assert corr.counts.sum() == pytest.approx(2456, abs=1e-3)
    assert corr.bkg_counts.sum() == pytest.approx(57, abs=1e-3)
    raw = L.read_lightcurve(
        str(HD_M1 / "J173442-323451_lc_2.604_src.lc.gz"), bkg_path=str(HD_M1 / "J173442-323451_lc_2.604_bgd.lc.gz")
    )
    assert raw.counts.sum() == 2452 and raw.bkg_counts.sum() == 57  # 4 counts in dropped partial bins


def test_evselect_curve_gti_and_region_handling():
    lc = L.read_lightcurve(
        str(GSN / "lcurve_100_PN_1" / "J011908-341133_lc_100_src.lc.gz"),
        bkg_path=str(GSN / "lcurve_100_PN_1" / "J011908-341133_lc_100_bgd.lc.gz"),
    )
    assert lc.timedel == 100.0 and lc.counts.size == 929 and lc.dropped == 453
    assert lc.exposure.max() == pytest.approx(100.0) and lc.exposure.min() >= 10.0
    # every kept bin overlaps the (intersected) GTIs by its exposure
    ov = G.overlap(lc.time - 50, lc.time + 50, lc.gti)
    np.testing.assert_allclose(ov, lc.exposure, atol=1e-6)
    assert lc.bkg_scale == 1.0  # equal 800-pixel circles
    assert (lc.ra, lc.dec) == pytest.approx((19.7857, -34.1914), abs=2e-4)  # region centre via WCS
    # GSN 069 in 4XMM: 19.785856, -34.191667 -> within 2"
    assert L.jname_position("J011908-341133") == pytest.approx((19.78333, -34.19250), abs=1e-4)


def test_user_gti_keeps_only_bins_inside_it(tmp_path):
    gti = np.array([[6.64003e8, 6.64020e8], [6.64060e8, 6.64080e8]])
    path = tmp_path / "gti.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.BinTableHDU.from_columns(
                [fits.Column("START", "D", array=gti[:, 0]), fits.Column("STOP", "D", array=gti[:, 1])], name="STDGTI01"
            ),
        ]
    ).writeto(path)
    g = G.read_gti(str(path))
    lc = L.read_lightcurve(str(GSN / "lcurve_100_PN_1" / "J011908-341133_lc_100_src.lc.gz"), gti=g)
    assert lc.counts.size < 929
    inside = ((lc.time - 50 >= gti[0, 0]) & (lc.time + 50 <= gti[0, 1])) | (
        (lc.time - 50 >= gti[1, 0]) & (lc.time + 50 <= gti[1, 1])
    )
    assert inside.all()


def test_rebinning_sums_counts_and_exposure():
    path = str(HD_M1 / "J173442-323451_lc_2.604_src.lc.gz")
    a = L.read_lightcurve(path)
    b = L.read_lightcurve(path, bin_size=104.16)  # 40 frames
    assert b.counts.sum() == a.counts.sum() and b.exposure.sum() == pytest.approx(a.exposure.sum())
    assert b.timedel == 104.16 and b.counts.size < a.counts.size / 30


# ------------------------------------------------------------------------------- real results


def test_gsn069_is_flagged_in_every_camera(per_curve):
    for cam, f in (
        ("PN", "J011908-341133_lc_100_src.lc.gz"),
        ("M1", "J011908-341131_lc_100_src.lc.gz"),
        ("M2", "J011908-341128_lc_100_src.lc.gz"),
    ):
        r = _row(per_curve, f)
        assert r["CAMERA"] == cam and r["OBS_ID"] == "0831790701" and r["XT_STATUS"] == "ok"
        assert r["XT_VAR_FLAG"] is True
        assert r["XT_VARPROB"] < 1e-30 and r["XT_CHI2PROB"] < 1e-30
        assert 2.2 < r["XT_FVAR"] < 2.6 and r["XT_FVARERR"] < 0.05  # QPEs: ~100x bursts
        assert r["XT_BB_NBLOCKS"] >= 9 and r["XT_BB_RATIO"] > 10 or math.isnan(r["XT_BB_RATIO"])
    pn = _row(per_curve, "J011908-341133_lc_100_src.lc.gz")
    assert pn["XT_NBINS"] == 929 and pn["XT_COUNTS"] == 6653 and pn["XT_VARTEST"] == "chi2"
    assert pn["XT_CHI2"] == pytest.approx(19561.28, rel=1e-5)
    assert pn["XT_FVAR"] == pytest.approx(2.3336, rel=1e-3)
    # eruptions every ~32.5 ks in this observation (Miniutti et al. 2019); narrow pulses put the
    # highest Lomb-Scargle peak on the recurrence or its first harmonic (here 16.1 ks)
    k = 32500.0 / pn["XT_LS_PERIOD"]
    assert round(k) in (1, 2) and abs(k - round(k)) < 0.05 and pn["XT_LS_FAP"] < 1e-10


def test_hd159176_and_lcstats_references(per_curve):
    """LC_LOG_1 (XRONOS lcstats on the frame-time lccorr curves): MOS1 P_chi2 = 0.447 (constant
    by chi2) but P_KS = 4e-12; the PN source P_chi2 = 0.51 and P_KS = 0."""
    m1 = _row(per_curve, "J173442-323451_lc_100_src.lc.gz")
    assert m1["XT_CHI2PROB"] == pytest.approx(0.9162, abs=1e-3) and m1["XT_VAR_FLAG"] is False
    corr = _row(per_curve, "J173442-323451_lccorr_2.604.lc.gz")
    assert corr["XT_VARTEST"] == "poisson+ks+rebin"
    assert corr["XT_CHI2PROB"] == pytest.approx(0.45, abs=0.01)  # lcstats: 0.447
    assert corr["XT_KSPROB"] < 0.01  # lcstats: 4.3e-12 (its KS is unbinned-like)
    assert corr["XT_RATE"] == pytest.approx(0.3596, rel=1e-3)  # PSF/vignetting-corrected
    # the lccorr file has no WCS: it takes the region position of its evselect input curve
    src = _row(per_curve, "J173442-323451_lc_2.604_src.lc.gz")
    assert (corr["RA"], corr["DEC"]) == (src["RA"], src["DEC"]) and corr["EXPID"] == "S001"
    pn = _row(per_curve, "J173446-323317_lc_100_src.lc.gz")
    assert pn["XT_COUNTS"] == 38 and pn["XT_VARTEST"] == "poisson+ks+rebin"
    assert pn["XT_CHI2PROB"] > 0.5  # lcstats 0.51
    assert pn["XT_KSPROB"] < 1e-8 and pn["XT_VAR_FLAG"] is True  # lcstats P_KS = 0


def test_per_curve_table_columns_and_units(tmp_path):
    out = tmp_path / "lc.fits"
    code, _, _ = run_main(["variability", "short", "--lightcurves", GSN, "-o", out, "-q", "--no-features"])
    assert code == 0
    info = tables.inspect_table(str(out))
    names = info.schema.names
    for c in (
        "FILE",
        "OBS_ID",
        "CAMERA",
        "SRC_NUM",
        "RA",
        "DEC",
        "XT_NBINS",
        "XT_EXPOSURE",
        "XT_CHI2PROB",
        "XT_VARPROB",
        "XT_VARTEST",
        "XT_VAR_FLAG",
        "XT_FVAR",
        "XT_FVARERR",
        "XT_NXS",
        "XT_NXSERR",
        "XT_STATUS",
    ):
        assert c in names
    assert tables.unit_of(info.schema.field("XT_EXPOSURE")) == "s"
    t = tables.read_table(str(out))
    assert t.num_rows == 3 and all(math.isnan(v) for v in t.column("XT_LS_PERIOD").to_pylist())
    assert info.provenance[-1]["stage"] == "variability-short"


# ------------------------------------------------------------------------------- catalogue mode


def _catalogue(tmp_path, extra=None):
    cols = {
        "OBS_ID": ["0831790701", "XMM 0001730201", "0001730201", "0831790701"],
        "RA": [19.785856, 263.677098, 263.69082, 10.0],
        "DEC": [-34.191667, -32.581688, -32.55839, 10.0],
        "PN_CHI2PROB": [1e-20, 0.5, 0.1, 0.3],
    }
    cols.update(extra or {})
    path = tmp_path / "cat.parquet"
    tables.write_table(pa.table(cols), str(path))
    return path


def test_catalogue_mode_matches_by_position_and_keeps_catalogue_values(tmp_path):
    cat = _catalogue(tmp_path)
    out = tmp_path / "cat_var.parquet"
    code, _, _ = run_main(["variability", "short", cat, "--lightcurves", LC, "-o", out, "-q"])
    assert code == 0
    t = tables.read_table(str(out)).to_pylist()
    gsn, hd, pnsrc, nothing = t
    assert gsn["PN_CHI2PROB"] == 1e-20  # catalogue value untouched
    assert gsn["XT_N_LC"] == 3 and gsn["XT_VAR_FLAG"] is True
    assert gsn["XT_PN_LCFILE"].endswith("J011908-341133_lc_100_src.lc.gz")
    assert gsn["XT_EP_CHI2PROB"] < 1e-30 and gsn["XT_PN_VARTEST"] == "chi2"
    # HD 159176: MOS1 -> the epiclccorr curve is preferred to evselect; MOS2 evselect; no PN
    assert hd["XT_M1_LCFILE"].endswith("_lccorr_2.604.lc.gz") and hd["XT_M2_LCFILE"].endswith("_lc_100_src.lc.gz")
    assert hd["XT_PN_LCFILE"] == "" and math.isnan(hd["XT_PN_CHI2PROB"]) and hd["XT_N_LC"] == 2
    assert pnsrc["XT_PN_LCFILE"].endswith("J173446-323317_lc_100_src.lc.gz") and pnsrc["XT_VAR_FLAG"] is True
    assert pnsrc["XT_VAR_INST"] == "PN"
    assert nothing["XT_N_LC"] == 0 and nothing["XT_VAR_FLAG"] is None


def test_catalogue_mode_matches_by_src_num(tmp_path):
    # PPS-named copy with SRC_NUM 0x1F = 31; a catalogue row with SRC_NUM 31 and no position
    d = tmp_path / "pps"
    d.mkdir()
    (d / "P0001730201M1S002SRCTSR001F.FTZ").write_bytes((HD_M1 / "J173442-323451_lccorr_2.604.lc.gz").read_bytes())
    cat = tmp_path / "c.csv"
    cat.write_text("OBS_ID,SRC_NUM\n0001730201,31\n0001730201,32\n")
    out = tmp_path / "o.csv"
    code, _, _ = run_main(["variability", "short", cat, "--lightcurves", d, "-o", out, "-q"])
    assert code == 0
    t = tables.read_table(str(out)).to_pylist()
    assert t[0]["XT_M1_LCFILE"] == "P0001730201M1S002SRCTSR001F.FTZ" and t[0]["XT_N_LC"] == 1
    assert t[1]["XT_N_LC"] == 0


# ------------------------------------------------------------------------------- bad input


def _write_lc(path, cols, header=None):
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(k, "D", array=np.asarray(v, float)) for k, v in cols.items()], name="RATE"
    )
    for k, v in (header or {"TIMEDEL": 10.0}).items():
        hdu.header[k] = v
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return str(path)


@pytest.mark.parametrize(
    "cols,msg",
    [
        ({"TIME": [1.0, 2.0], "FOO": [1.0, 2.0]}, "no light-curve table"),
        ({"TIME": [10.0, 20.0, 30.0], "RATE": [np.nan] * 3}, "no usable bins"),
        ({"TIME": [10.0, 20.0, 30.0], "RATE": [1.0] * 3, "FRACEXP": [0.0] * 3}, "no usable bins"),
        ({"TIME": [30.0, 10.0, 20.0], "RATE": [1.0] * 3}, "not strictly increasing"),
    ],
)
def test_bad_light_curves_give_one_line_errors(tmp_path, capsys, cols, msg):
    path = _write_lc(tmp_path / "x_src.lc", cols)
    with pytest.raises(DataError, match=msg) as e:
        L.read_lightcurve(path)
    assert "\n" not in e.value.message
    # in a folder run the bad file becomes a row with its reason, never a crash
    out = tmp_path / "o.parquet"
    code, _, err = run_main(["variability", "short", "--lightcurves", tmp_path, "-o", out], capsys)
    assert code == 0 and "1 unreadable" in err
    (row,) = tables.read_table(str(out)).to_pylist()
    assert msg in row["XT_STATUS"] and row["XT_VAR_FLAG"] is None


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--lightcurves", "/nonexistent/dir", "-o", "x.csv"], "not a folder"),
        (["--lightcurves", str(VAR / "events")], "needs -o"),
        (["--lightcurves", str(VAR / "events"), "-o", "OUT"], "no source light curves found"),
    ],
)
def test_command_errors_are_one_line(tmp_path, capsys, args, msg):
    args = [str(tmp_path / "o.csv") if a == "OUT" else a for a in args]
    code, out, err = run_main(["variability", "short", *args], capsys)
    assert code == 1 and err.startswith("error:") and msg in err and err.count("\n") == 1


def test_catalogue_without_src_num_or_position_is_an_error(tmp_path, capsys):
    cat = tmp_path / "c.csv"
    cat.write_text("OBS_ID,FLUX\n0001730201,1e-13\n")
    code, _, err = run_main(["variability", "short", cat, "--lightcurves", LC, "-o", tmp_path / "o.csv"], capsys)
    assert code == 1 and "SRC_NUM or RA and DEC" in err


def test_catalogue_refuses_to_overwrite_its_own_xt_columns(tmp_path, capsys):
    cat = _catalogue(tmp_path, {"XT_VAR_FLAG": [True, False, False, False]})
    code, _, err = run_main(["variability", "short", cat, "--lightcurves", GSN, "-o", tmp_path / "o.parquet"], capsys)
    assert code == 1 and "XT_VAR_FLAG" in err and "refusing" in err


# ------------------------------------------------------------------------------- figures


def test_plot_writes_figures(tmp_path, capsys):
    code, _, err = run_main(
        [
            "variability",
            "short",
            "--lightcurves",
            GSN / "lcurve_100_PN_1",
            "-o",
            tmp_path / "o.csv",
            "--plot",
            tmp_path / "figs",
        ],
        capsys,
    )
    assert code == 0 and "wrote 1 figures" in err
    (png,) = (tmp_path / "figs").glob("*.png")
    assert png.name == "0831790701_PN_J011908-341133_lc_100_src.png" and png.stat().st_size > 20000


def test_plot_without_matplotlib_is_skipped_with_a_message(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run_main(
        [
            "variability",
            "short",
            "--lightcurves",
            GSN / "lcurve_100_PN_1",
            "-o",
            tmp_path / "o.csv",
            "--plot",
            tmp_path / "figs",
        ],
        capsys,
    )
    assert code == 0 and "matplotlib is not installed" in err
    assert (tmp_path / "o.csv").exists()


def test_statistics_do_not_depend_on_file_reading():
    lc = L.read_lightcurve(
        str(GSN / "lcurve_100_M1_1" / "J011908-341131_lc_100_src.lc.gz"),
        bkg_path=str(GSN / "lcurve_100_M1_1" / "J011908-341131_lc_100_bgd.lc.gz"),
    )
    r = single(lightcurve_statistics(lc.counts, lc.exposure, lc.bkg_counts, lc.bkg_scale))
    assert r["VAR_FLAG"] and r["COUNTS"] == 2410
