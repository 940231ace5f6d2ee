"""Long-term variability on real data: ω Cen 4XMM-DR10 epochs, its 3XMM-DR8 rows as an archive,
the Sgr A* 10-epoch source; the command line and its errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from astropy.io import fits
from helpers import DATA, SAMPLE, run_main

from xmmtools import tables
from xmmtools.columns import resolve
from xmmtools.variability.long.bands import PowerLaw, band_factor, hardness_range
from xmmtools.variability.long.epochs import LongTermConfig, _mjd, sources_of, spectral_shape
from xmmtools.variability.long.run import long_term_variability
from xmmtools.variability.long.statistics import FLAG_AMBIGUOUS, FLAG_NO_ERROR, FLAG_NONPOSITIVE, FLAG_SPECTRAL

HERE = DATA / "variability_long"
ARCH_3XMM = HERE / "3xmm_dr8_ngc5139.csv"
SGRA = HERE / "sgra_4xmm_J174544.4-290024_hr.csv"


@pytest.fixture(scope="module")
def sample():
    return tables.read_table(SAMPLE)


@pytest.fixture(scope="module")
def raw():
    """The sample read independently with astropy."""
    with fits.open(SAMPLE) as h:
        d = h[1].data
        return {c: np.array(d[c]) for c in ("SRCID", "EP_8_FLUX", "EP_8_FLUX_ERR", "MJD_START", "MJD_STOP")}


def col(res, name):
    return np.asarray([c for c in res.columns if c.name == name][0].values)


def test_grouping_by_srcid_on_the_shipped_sample(sample, raw):
    res = long_term_variability(sample)
    ids, counts = np.unique(raw["SRCID"], return_counts=True)
    assert len(res.sources) == len(ids) == 35
    assert (counts > 1).sum() == 11
    n_ep = col(res, "LT_N_EPOCHS")
    for i, c in zip(ids, counts, strict=True):
        assert set(n_ep[raw["SRCID"] == i]) == {c}
    # baseline: 3 observations, MJD 51590.9 .. 53968.5 (mid-exposure times)
    sel = raw["SRCID"] == 201177401010002
    mid = 0.5 * (raw["MJD_START"][sel] + raw["MJD_STOP"][sel])
    assert col(res, "LT_BASELINE")[sel][0] == pytest.approx(mid.max() - mid.min())


def test_ratio_of_a_real_source_by_hand(sample, raw):
    res = long_term_variability(sample)
    sel = raw["SRCID"] == 201177401010002
    f, e = raw["EP_8_FLUX"][sel].astype(float), raw["EP_8_FLUX_ERR"][sel].astype(float)
    # catalogue values (erg/cm2/s): 2.59909e-13 +- 3.46599e-14, 8.21276e-14 +- 5.61131e-15, 2.96074e-13 +- 7.18631e-14
    expect = max(f - e) / min(f + e)
    assert expect == pytest.approx((2.59909e-13 - 3.46599e-14) / (8.21276e-14 + 5.61131e-15), rel=1e-5)
    assert col(res, "LT_VAR_RATIO")[sel][0] == pytest.approx(expect, rel=1e-6)
    assert col(res, "LT_VAR_RATIO_OPT")[sel][0] == pytest.approx(f.max() / f.min(), rel=1e-6)
    assert col(res, "LT_FLUX")[sel] == pytest.approx(f / 0.999, rel=1e-6)
    # ω Cen alone: nothing varies by a factor 5; the largest pessimistic ratio is 201177401010005
    r = col(res, "LT_VAR_RATIO")
    assert not col(res, "LT_VARIABLE").any()
    assert raw["SRCID"][np.nanargmax(r)] == 201177401010005
    assert np.nanmax(r) == pytest.approx((9.783791e-13 - 1.58928e-13) / (2.080780e-13 + 8.30388e-15), rel=1e-5)
    assert np.isnan(r[raw["SRCID"] == 201122201010023]).all()


def test_3xmm_archive_rows_match_the_4xmm_source_with_the_same_srcid(sample):
    from xmmtools.variability.long.epochs import archive_epochs, sources_of

    arch = tables.read_table(ARCH_3XMM)
    ep, lost = archive_epochs(arch, "3XMM", sources_of(sample))
    assert lost == 0
    assert len(ep) == 15
    # 3XMM-DR8 kept the SRCIDs of this field: the STONKS positional match must find them again
    flux = tables.to_numpy(arch.column("EP_8_FLUX"), float)
    ids = tables.to_numpy(arch.column("SRCID"), None)
    keys = sources_of(sample).key
    for k, fnat in zip(keys[ep.source], ep.flux * ep.factor, strict=True):
        assert ids[np.argmin(abs(flux - fnat))] == k
    assert not ep.ambiguous.any()
    # every 3XMM-DR8 row repeats an observation of the 4XMM sample (same OBS_ID): one epoch per
    # observation (issue 19), the input's own row kept -- 201177401010005 keeps its 3 epochs
    # (before issue 19: 6, with the 3XMM 2001 row as the minimum)
    res = long_term_variability(sample, archives=[("3XMM", arch)])
    assert res.unmatched["3XMM"] == 0
    assert (res.epochs.origin == "archive").sum() == 0
    srcid = tables.to_numpy(sample.column("SRCID"), None)
    sel = srcid == 201177401010005
    assert col(res, "LT_N_EPOCHS")[sel][0] == 3
    assert col(res, "LT_VAR_RATIO")[sel][0] == pytest.approx(
        (9.783791e-13 - 1.58928e-13) / (2.080780e-13 + 8.30388e-15), rel=1e-5
    )
    assert set(col(res, "LT_CAT_MIN")[sel]) == {"4XMM"}


def ul_table(**cols):
    return pa.table({k: pa.array(v) for k, v in cols.items()})


def test_upper_limit_from_an_earlier_observation_raises_a_first_detection_alert(sample, raw):
    # 201122201010023 is detected only in 0112220101 (MJD 52134); an upper limit of 2e-15
    # erg/cm2/s (band 8) in the earlier observation 0117740101 (MJD 51590.9) -- a value chosen
    # for the test, the shipped data have no non-detection table
    ul = ul_table(SRCID=[201122201010023], MJD=[51590.9], FLUX_UL=[2e-15], BAND=["8"], INSTRUMENT=["EPIC"])
    res = long_term_variability(sample, upper_limits=ul)
    al = res.alerts.to_pydict()
    assert al["SRCID"] == [201122201010023]
    assert al["ALERT_TYPE"] == ["First Detection"]
    sel = raw["SRCID"] == 201122201010023
    f, e = float(raw["EP_8_FLUX"][sel][0]), float(raw["EP_8_FLUX_ERR"][sel][0])
    assert al["LT_VAR_RATIO"][0] == pytest.approx((f - e) / 2e-15, rel=1e-6)
    assert al["HIST_UL_MIN"][0] == pytest.approx(2e-15 / 0.999)
    assert col(res, "LT_MIN_IS_UL")[sel].all() and col(res, "LT_VARIABLE")[sel].all()
    # --new-since: that detection (MJD 52134) is not new after MJD 53000; the ratio stays
    late = long_term_variability(sample, upper_limits=ul, new_since=53000.0)
    assert late.alerts.num_rows == 0 and col(late, "LT_VARIABLE")[sel].all()
    assert long_term_variability(sample, upper_limits=ul, new_since=52000.0).alerts.num_rows == 1


def test_upper_limit_by_position_and_band_range(sample):
    src = tables.read_table(SAMPLE, ["SRCID", "SC_RA", "SC_DEC"]).to_pydict()
    i = src["SRCID"].index(201122201010026)
    ul = ul_table(
        RA=[src["SC_RA"][i] + 0.3 / 3600],
        DEC=[src["SC_DEC"][i]],
        MJD=[60000.0],
        FLUX_UL=[1e-15],
        BAND=["0.5-2"],
        CATALOGUE=["XRISM"],
    )
    res = long_term_variability(sample, upper_limits=ul)
    ulep = res.epochs.is_ul
    assert ulep.sum() == 1
    assert res.sources.key[res.epochs.source[ulep]][0] == 201122201010026
    assert res.epochs.factor[ulep][0] == pytest.approx(band_factor(0.5, 2.0))
    # a later, deeper limit: the latest 4XMM detection is older, so this is not an alert
    assert res.alerts.num_rows == 0


def test_upper_limit_srcid_join_wins_and_null_srcid_falls_back_to_position(sample):
    src = tables.read_table(SAMPLE, ["SRCID", "SC_RA", "SC_DEC"]).to_pydict()
    i = src["SRCID"].index(201122201010026)
    ul = pa.table(
        {
            "SRCID": pa.array([201122201010023, None], pa.int64()),
            "RA": [0.0, src["SC_RA"][i]],
            "DEC": [0.0, src["SC_DEC"][i]],  # row 1: RA/DEC ignored
            "MJD": [51590.9, 51590.9],
            "FLUX_UL": [2e-15, 1e-15],
            "BAND": ["8", "8"],
        }
    )
    res = long_term_variability(sample, upper_limits=ul)
    assert res.unmatched["upper-limits"] == 0
    assert list(res.sources.key[res.epochs.source[res.epochs.is_ul]]) == [201122201010023, 201122201010026]


def test_instrument_column_selects_the_band_factor(sample):
    ul = pa.table(
        {
            "SRCID": [201122201010023, 201122201010023, 201122201010023],
            "MJD": [50000.0, 50001.0, 50002.0],
            "FLUX_UL": [1e-14, 1e-14, 1e-14],
            "INSTRUMENT": ["XRT", "PN", "PSPC"],
        }
    )
    res = long_term_variability(sample, upper_limits=ul)
    u = res.epochs.is_ul
    assert list(res.epochs.catalogue[u]) == ["2SXPS", "4XMM", "2RXS"]  # PN: not a catalogue -> 4XMM
    assert list(res.epochs.factor[u]) == [0.9, 0.999, 0.41]


def test_rows_without_srcid_are_sources_of_their_own():
    t = pa.table(
        {
            "SRCID": pa.array([5, None, None, 5], pa.int64()),
            "EP_8_FLUX": [1e-13, 2e-13, 1e-15, 1e-14],
            "EP_8_FLUX_ERR": [1e-15] * 4,
            "MJD_START": [55000.0, 55001.0, 55002.0, 55003.0],
        }
    )
    res = long_term_variability(t)
    assert len(res.sources) == 3
    assert list(col(res, "LT_N_EPOCHS")) == [2, 1, 1, 2]


def test_stacked_summary_rows_are_not_epochs():
    # 5XMM-like: per source one summary row (N_OBS, N_CONTRIB filled) + per-observation rows
    t = pa.table(
        {
            "SRCID": [1, 1, 1, 2, 2],
            "N_OBS": [None, None, 2, None, 1],
            "N_CONTRIB": [None, None, 2, None, 1],
            "VAR_PROB": [None, None, 0.1, None, None],
            "FRATIO": [None, None, 12.0, None, None],
            "EP_8_FLUX": [12.0e-14, 1.0e-14, 5e-14, 3e-14, 3e-14],
            "EP_8_FLUX_ERR": [1e-14, 0.1e-14, 1e-15, 1e-15, 1e-15],
            "MJD_START": [59000.0, 59500.0, np.nan, 59000.0, np.nan],
        }
    )
    res = long_term_variability(t)
    assert list(col(res, "LT_N_EPOCHS")) == [2, 2, 2, 1, 1]
    assert col(res, "LT_VAR_RATIO")[0] == pytest.approx(11 / 1.1)
    assert np.isnan(col(res, "LT_FLUX")[2])  # the summary row's own flux is not an epoch
    al = res.alerts.to_pydict()
    assert al["ALERT_TYPE"] == ["Low Flux State"]
    assert al["CAT_FRATIO"] == [12.0] and al["CAT_VAR_PROB"] == [0.1]  # the 5XMM summary-row values


def test_negative_flux_is_flagged_and_kept_out_of_the_maximum():
    t = pa.table(
        {
            "SRCID": [7, 7, 7],
            "EP_8_FLUX": [-2e-15, 4e-14, 1e-14],
            "EP_8_FLUX_ERR": [3e-15, 4e-15, 1e-15],
            "MJD_START": [55000.0, 56000.0, 57000.0],
        }
    )
    res = long_term_variability(t)
    assert (col(res, "LT_FLAG") & FLAG_NONPOSITIVE).all()
    # max(F - s) = 3.6e-14 (0.999 cancels); min(F + s) = -2e-15 + 3e-15 = 1e-15
    assert col(res, "LT_VAR_RATIO")[0] == pytest.approx(36.0)
    assert col(res, "LT_MJD_MIN")[0] == 55000.0


def test_ambiguous_archive_match_is_flagged_and_warned(sample):
    # two archival sources 1.0" east and 1.0" west of 201122201010023 (errors 1"): equal scores
    src = tables.read_table(SAMPLE, ["SRCID", "SC_RA", "SC_DEC"]).to_pydict()
    i = src["SRCID"].index(201122201010023)
    ra, dec = src["SC_RA"][i], src["SC_DEC"][i]
    d = 1.0 / 3600 / np.cos(np.radians(dec))
    arch = pa.table(
        {
            "RA": [ra + d, ra - d],
            "DEC": [dec, dec],
            "POSERR": [1.0, 1.0],
            "MJD": [50000.0, 50001.0],
            "FLUX": [1e-16, 1e-16],
            "FLUX_ERR": [1e-17, 1e-17],
        }
    )
    res = long_term_variability(sample, archives=[("CSC2", arch)])
    srcid = tables.to_numpy(sample.column("SRCID"), None)
    sel = srcid == 201122201010023
    assert (col(res, "LT_FLAG")[sel] & FLAG_AMBIGUOUS).all()
    assert res.unmatched["CSC2"] == 1  # the best candidate is kept, the other is not used
    al = res.alerts.to_pydict()
    j = al["SRCID"].index(201122201010023)
    assert al["ALERT_TYPE"][j] == "High Flux State" and "ambiguous archival match" in al["WARNINGS"][j]


def test_missing_error_column_is_flagged(sample):
    t = sample.drop_columns(["EP_8_FLUX_ERR"])
    res = long_term_variability(t)
    flags = col(res, "LT_FLAG")
    assert (flags & FLAG_NO_ERROR).all()
    srcid = tables.to_numpy(t.column("SRCID"), None)
    sel = srcid == 201177401010002
    assert col(res, "LT_VAR_RATIO")[sel][0] == pytest.approx(2.96074e-13 / 8.21276e-14, rel=1e-5)


def test_sgra_epochs_group_by_iauname_and_warn_of_absorbed_spectra():
    t = tables.read_table(SGRA)
    s = sources_of(t)
    assert len(s) == 1 and s.key_name == "IAUNAME"
    m = resolve(t.schema.names, ["DATE_OBS", "EP_HR3"])
    mjd = _mjd(t, m, "sgra")
    # 2001-09-04T01:20:42 = MJD 52156 + 4842 s
    assert mjd.min() == pytest.approx(52156 + 4842 / 86400, abs=1e-8)
    # .. 2019-08-31T22:07:31: 18 years with 4 leap days, minus 4 days, plus 20h46m49s
    assert mjd.max() - mjd.min() == pytest.approx(6570 + (22 * 3600 + 7 * 60 + 31 - 4842) / 86400, abs=1e-8)
    hr, warn = spectral_shape(t, m, np.full(t.num_rows, "4XMM", dtype=object), LongTermConfig())
    # EP_HR3 0.97-1.0 (N_H ~ 1e23 towards the Galactic centre) vs <= 0.11 for Gamma >= 0.5
    assert warn.all() and hr.min() > 0.96


def test_spectral_warning_in_omega_cen_marks_the_softest_sources(sample):
    res = long_term_variability(sample)
    warn, hr = col(res, "LT_SPEC_WARN"), col(res, "LT_HR")
    lo_hi = hardness_range((0.2, 2.0), (2.0, 12.0), 3e20)  # Gamma 2.5 .. 0.5, band-flux HR
    assert lo_hi == pytest.approx((-0.4034, 0.8796), abs=1e-4)
    fin = np.isfinite(hr)
    assert np.array_equal(warn[fin], (hr[fin] < lo_hi[0]) | (hr[fin] > lo_hi[1]))
    assert warn.sum() >= 3 and (col(res, "LT_FLAG")[warn] & FLAG_SPECTRAL).all()


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------


def test_cli_end_to_end_with_archive_upper_limits_and_alerts(tmp_path, capsys):
    ul = tmp_path / "ul.csv"
    ul.write_text("SRCID,MJD,FLUX_UL,BAND,INSTRUMENT\n201122201010023,51590.9,2e-15,8,EPIC\n")
    out, alerts, js, eps = tmp_path / "lt.parquet", tmp_path / "alerts.csv", tmp_path / "json", tmp_path / "ep.fits"
    code, _, err = run_main(
        [
            "variability",
            "long",
            SAMPLE,
            "--archive",
            f"3XMM={ARCH_3XMM}",
            "--upper-limits",
            ul,
            "-o",
            out,
            "--alerts",
            alerts,
            "--alerts-json",
            js,
            "--epochs",
            eps,
        ],
        capsys,
    )
    assert code == 0, err
    assert "35 sources, 53 epochs" in err and "1 alerts" in err  # 68 before issue 19 (3XMM repeats)
    assert "note: 15 epochs of an observation already counted" in err
    t = tables.read_table(out)
    assert t.num_rows == 52 and "EP_8_FLUX" in t.schema.names and "LT_VAR_RATIO" in t.schema.names
    assert tables.unit_of(t.schema.field("LT_FLUX")) == "erg/cm**2/s"
    assert tables.read_table(alerts).column("ALERT_TYPE").to_pylist() == ["First Detection"]
    rec = json.loads((js / "alert_201122201010023.json").read_text())
    assert rec["ALERT_TYPE"] == "First Detection" and len(rec["light_curve"]) == 2
    assert [p["upper_limit"] for p in rec["light_curve"]] == [True, False]
    assert tables.read_table(eps).num_rows == 53
    prov = tables.inspect_table(out).provenance[-1]
    assert prov["stage"] == "variability-long" and prov["parameters"]["archives"] == ["3XMM"]


def test_cli_plot_writes_one_png_per_alert(tmp_path, capsys):
    ul = tmp_path / "ul.csv"
    ul.write_text("SRCID,MJD,FLUX_UL,BAND\n201122201010023,51590.9,2e-15,8\n201177401010007,51000,1e-15,8\n")
    code, _, err = run_main(
        ["variability", "long", SAMPLE, "--upper-limits", ul, "--plot", tmp_path / "png", "-o", tmp_path / "o.parquet"],
        capsys,
    )
    assert code == 0, err
    pngs = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert pngs == ["alert_201122201010023.png", "alert_201177401010007.png"]
    assert all((tmp_path / "png" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_cli_threshold_and_spectral_model_options(tmp_path, capsys):
    out = tmp_path / "lt.fits"
    code, _, err = run_main(
        ["variability", "long", SAMPLE, "--threshold", "3", "--gamma", "2.0", "--nh", "1e21", "-o", out, "-q"], capsys
    )
    assert code == 0, err
    t = tables.read_table(out, ["SRCID", "LT_VARIABLE", "LT_FLUX", "EP_8_FLUX"])
    ids = tables.to_numpy(t.column("SRCID"), None)
    assert set(ids[tables.to_numpy(t.column("LT_VARIABLE"), bool)]) == {201177401010005}
    ratio = tables.to_numpy(t.column("EP_8_FLUX"), float) / tables.to_numpy(t.column("LT_FLUX"), float)
    assert ratio == pytest.approx(band_factor(0.2, 12.0, PowerLaw(2.0, 1e21)), rel=1e-6)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--archive", "CSC2={tmp}/noflux.csv"], "needs a flux column"),
        (["--archive", "EINSTEIN={tmp}/arch.csv"], "not in the band-factor table"),
        (["--upper-limits", "{tmp}/noul.csv"], "needs an upper-limit column FLUX_UL"),
        (["--upper-limits", "{tmp}/missing.csv"], "missing.csv"),
    ],
)
def test_cli_bad_auxiliary_tables_give_one_line_errors(tmp_path, capsys, args, needle):
    (tmp_path / "noflux.csv").write_text("RA,DEC,MJD\n201.7,-47.48,55000\n")
    (tmp_path / "arch.csv").write_text("RA,DEC,MJD,FLUX,FLUX_ERR\n201.7,-47.48,55000,1e-13,1e-14\n")
    (tmp_path / "noul.csv").write_text("SRCID,MJD\n1,55000\n")
    args = [a.format(tmp=tmp_path) for a in args]
    code, _, err = run_main(["variability", "long", SAMPLE, "-o", tmp_path / "o.fits", *args], capsys)
    assert code == 1
    assert err.startswith("error:") and needle in err and err.count("\n") == 1


def test_cli_input_without_flux_or_time_and_bad_archive_spec(tmp_path, capsys):
    code, _, err = run_main(["variability", "long", SGRA, "-o", tmp_path / "o.csv"], capsys)
    assert code == 1 and err.startswith("error:") and "EP_8_FLUX" in err
    code, _, err = run_main(["variability", "long", SAMPLE, "--archive", "nofile", "-o", tmp_path / "o.csv"], capsys)
    assert code == 2 and "NAME=FILE" in err
