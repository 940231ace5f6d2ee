"""Feature sets (TOML) and physical features on the real Lin et al. 2024 4XMM-DR13 table."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import LIN, SAMPLE

from xmmtools import tables
from xmmtools.classify.apply import stage_spec, table_features
from xmmtools.classify.features import (
    FeatureSet,
    default_feature_set_path,
    galactic_latitude,
    load_feature_set,
    parse_feature_set,
    xray_luminosity,
    xray_to_band_flux_ratio,
)
from xmmtools.errors import ColumnError, DataError


def test_galactic_latitude_matches_astropy():
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(2)
    ra = rng.uniform(0, 360, 50)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 50)))
    b = SkyCoord(ra=ra, dec=dec, unit="deg", frame="icrs").galactic.b.deg
    # the Hipparcos ICRS matrix and astropy's FK5-based frame agree to ~0.01 arcsec
    assert galactic_latitude(ra, dec) == pytest.approx(b, abs=1e-5)
    # the north Galactic pole (ICRS 192.85948, +27.12825) is b = +90
    assert galactic_latitude(np.array([192.85948]), np.array([27.12825]))[0] == pytest.approx(90.0, abs=1e-4)


def test_zero_points_give_the_stated_band_fluxes():
    fs = load_feature_set(default_feature_set_path("xclass"))
    f0 = {f.name: f.band.f0 for f in fs.features if f.band is not None}
    assert f0["LOG_FX_FG"] == pytest.approx(2.50e-9 * 4052.97)  # Gaia G, SVO Vega
    assert f0["LOG_FX_FW1"] == pytest.approx(309.540e-23 * 2.99792458e14 / 3.3526)  # Jarrett+2011
    assert f0["LOG_FX_FW2"] == pytest.approx(171.787e-23 * 2.99792458e14 / 4.6028)
    # Fx = 1e-13 erg/cm2/s with G = 15: ratio = 1e-13 / (1.0132e-5 * 10^-6)
    r = xray_to_band_flux_ratio(np.array([1e-13]), np.array([15.0]), f0["LOG_FX_FG"])[0]
    assert r == pytest.approx(1e-13 / (1.0132425e-5 * 1e-6))


def test_luminosity_of_a_source_at_one_kiloparsec():
    # 4 pi (3.0857e21 cm)^2 x 1e-13 = 1.1965e31 erg/s
    assert xray_luminosity(np.array([1e-13]), np.array([1000.0]))[0] == pytest.approx(1.19649e31, rel=1e-4)


def test_features_of_the_real_lin2024_table():
    t = tables.read_table(LIN)
    fs = load_feature_set(default_feature_set_path("xclass"))
    fm = table_features(t, fs, source=str(LIN))
    X = fm.values
    assert X.shape == (706, 16)
    assert not fm.ignored.any()
    col = {n: X[:, j] for j, n in enumerate(fs.names)}
    # first row: 4XMM J005942.0+000619 (ra 14.925, dec 0.106), F8 NaN -> Fx from SC_EP_8_FMAX
    # 1.02e-14, G = 20.113, W1 = 17.468
    assert col["HR1"][0] != col["HR1"][0]  # NaN = missing
    assert col["LOG_FX_FG"][0] == pytest.approx(math.log10(1.02e-14 / (1.0132425e-5 * 10 ** (-0.4 * 20.113))), abs=1e-6)
    assert col["LOG_FX_FW1"][0] == pytest.approx(
        math.log10(1.02e-14 / (309.540e-23 * 2.99792458e14 / 3.3526 * 10 ** (-0.4 * 17.468))), abs=1e-6
    )
    assert col["W1_W2"][0] == pytest.approx(17.468 - 16.255, abs=1e-9)
    assert col["LT_VAR_RATIO"][0] == pytest.approx(0.0)
    # second row: F8 NaN, FMAX 5.76e-14, FMIN 3.16e-14
    assert col["LT_VAR_RATIO"][1] == pytest.approx(math.log10(5.76e-14 / 3.16e-14), abs=1e-6)
    # how often each feature is measured in the table (missing values are evidence)
    frac = np.isfinite(X).mean(axis=0)
    assert frac[fs.names.index("HR1")] == pytest.approx(401 / 706)
    assert frac[fs.names.index("LOG_DIST")] == pytest.approx(212 / 706)
    assert frac[fs.names.index("W1_W2")] == pytest.approx(669 / 706)


def test_counterpart_features_are_ignored_on_a_bare_4xmm_catalogue():
    t = tables.read_table(SAMPLE)
    fs = load_feature_set(default_feature_set_path("xclass"))
    fm = table_features(t, fs, source=str(SAMPLE))
    ignored = [n for n, i in zip(fs.names, fm.ignored, strict=True) if i]
    assert ignored == ["LOG_FX_FG", "LOG_FX_FW1", "LOG_FX_FW2", "W1_W2", "LOG_DIST", "LOG_LX"]
    # the X-ray features come from the 4XMM columns (SC_HR1 etc.)
    assert np.isfinite(fm.values[:, fs.names.index("HR2")]).sum() == int(
        np.isfinite(tables.to_numpy(t.column("SC_HR2"), float)).sum()
    )


def test_missing_required_column_is_a_column_error_naming_it():
    t = tables.read_table(
        SAMPLE, ["RA", "DEC", "SC_HR1", "SC_HR3", "SC_HR4", "SC_EXTENT", "SC_EP_8_FMIN", "SC_EP_8_FMAX"]
    )
    fs = load_feature_set(default_feature_set_path("xclass"))
    with pytest.raises(ColumnError, match=r"classify needs column SC_HR2 \(for feature HR2\)"):
        table_features(t, fs, source="cut.fits")


def test_when_absent_missing_treats_an_absent_column_as_missing_values():
    doc = {
        "feature": [
            {"name": "HR2", "category": "spectrum", "columns": ["SC_HR2"], "when_absent": "missing"},
            {"name": "HR1", "category": "spectrum", "columns": ["SC_HR1"]},
        ]
    }
    fs = parse_feature_set(doc)
    t = tables.read_table(SAMPLE, ["SC_HR1"])
    fm = table_features(t, fs, source="x")
    assert np.isnan(fm.values[:, 0]).all() and not fm.ignored.any()
    assert [n.name for n in stage_spec(fs).needs if not n.optional] == ["SC_HR1"]


@pytest.mark.parametrize(
    "doc, message",
    [
        ({}, "no \\[\\[feature\\]\\] entries"),
        (
            {"feature": [{"name": "A", "category": "spectrum", "kind": "magic", "columns": ["X"]}]},
            "unknown kind 'magic'",
        ),
        ({"feature": [{"name": "A", "category": "colour", "columns": ["X"]}]}, "category 'colour'"),
        ({"feature": [{"name": "A", "category": "spectrum", "columns": ["X"], "transform": "ln"}]}, "transform 'ln'"),
        (
            {
                "feature": [
                    {"name": "A", "category": "spectrum", "kind": "flux_ratio", "flux": "F", "mag": "G", "band": "V"}
                ]
            },
            "band 'V', not defined",
        ),
        ({"feature": [{"name": "A", "category": "spectrum", "kind": "ratio", "numerator": "F"}]}, "needs denominator"),
        (
            {
                "feature": [
                    {"name": "A", "category": "spectrum", "columns": ["X"]},
                    {"name": "A", "category": "spectrum", "columns": ["Y"]},
                ]
            },
            "declared twice",
        ),
    ],
)
def test_bad_feature_sets_are_one_line_errors(doc, message):
    with pytest.raises(DataError, match=message):
        parse_feature_set(doc, where="f.toml")


def test_feature_set_file_errors(tmp_path):
    with pytest.raises(DataError, match="no such feature-set file"):
        load_feature_set(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[feature]\nname = ")
    with pytest.raises(DataError, match="not a valid TOML feature set"):
        load_feature_set(bad)


def test_shipped_feature_sets_load():
    for name, n in (("xclass", 16), ("4xmm", 10), ("cscv2", 18)):
        fs = load_feature_set(default_feature_set_path(name))
        assert len(fs.features) == n
        expect = (
            ("location", "spectrum", "variability")
            if name == "4xmm"
            else ("location", "spectrum", "multiwavelength", "variability")
        )
        assert fs.categories == expect


# ---------------------------------------------------------- unmeasured classes (issue 17)


def _dist_doc(unmeasured):
    dist = {"name": "LOG_DIST", "category": "multiwavelength", "columns": ["dist"], "transform": "log10"}
    return {
        "feature": [{**dist, "unmeasured": unmeasured}, {"name": "HR2", "category": "spectrum", "columns": ["HR2"]}]
    }


def test_shipped_feature_set_declares_prior_dominated_agn_distances():
    fs = load_feature_set(default_feature_set_path("xclass"))
    (f,) = [f for f in fs.features if f.name == "LOG_DIST"]
    assert f.unmeasured["AGN"]["low"] == 3.0 and f.unmeasured["AGN"]["high"] == 4.0  # 1-10 kpc
    assert "Bailer-Jones" in f.unmeasured["AGN"]["reference"]
    ranges = fs.unmeasured_ranges(("AGN", "OTHER", "STAR"))
    assert ranges[fs.names.index("LOG_DIST")] == {0: (3.0, 4.0)}
    assert ranges[fs.names.index("HR2")] == {}
    assert fs.unmeasured_ranges(("OTHER", "STAR"))[fs.names.index("LOG_DIST")] == {}  # no AGN class trained
    # and it survives the model file round trip
    assert FeatureSet.from_json(fs.to_json()).unmeasured_ranges(("AGN",)) == fs.unmeasured_ranges(("AGN",))


@pytest.mark.parametrize(
    ("unmeasured", "message"),
    [
        ({"AGN": {"low": 3.0}}, "unmeasured.AGN needs numbers low and high"),
        ({"AGN": {"low": "far", "high": 4.0}}, "unmeasured.AGN needs numbers low and high"),
        ({"AGN": {"low": 4.0, "high": 3.0}}, r"unmeasured.AGN needs finite low < high \(got 4.0, 3.0\)"),
        ({"AGN": {"low": float("nan"), "high": 3.0}}, "unmeasured.AGN needs finite low < high"),
        ([3.0, 4.0], "unmeasured must be a table"),
    ],
)
def test_bad_unmeasured_declarations_are_one_line_errors(unmeasured, message):
    with pytest.raises(DataError, match=f"fs.toml: feature LOG_DIST: {message}"):
        parse_feature_set(_dist_doc(unmeasured), where="fs.toml")
