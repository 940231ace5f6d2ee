"""Known counterpart catalogues (data/catalogs/*.toml) and canonical bands (data/bands.toml, bands.py)."""

from __future__ import annotations

import pytest

from xmmtools import bands, catalogs
from xmmtools.bands import Input, offset, resolve_inputs
from xmmtools.crossmatch.run import split_profile
from xmmtools.errors import DataError

SHIPPED = {"gaia", "gaiadist", "allwise", "catwise", "tmass", "sdss", "ps1", "ls"}


def test_every_shipped_catalogue_loads_with_known_bands_and_a_vizier_table():
    got = catalogs.profiles()
    assert set(got) >= SHIPPED
    for name in SHIPPED:
        p = got[name]
        assert p.bands and all(b.band in bands.bands() for b in p.bands), name
        assert p.vizier or name == "ls"  # the Legacy Surveys are not on VizieR
        assert p.ra and p.dec
    assert got["sdss"].pos_err_default == 0.1 and got["sdss"].vizier == "V/154/sdss16"
    assert [b.band for b in got["sdss"].bands] == ["SDSS_U", "SDSS_G", "SDSS_R", "SDSS_I", "SDSS_Z"]
    assert got["gaia"].vizier == "I/355/gaiadr3" and got["allwise"].vizier == "II/328/allwise"
    # VizieR and archive spellings of the same quantity
    names = ["RA_ICRS", "DE_ICRS", "umag", "e_umag", "gmag"]
    assert got["sdss"].coordinates(names) == ("RA_ICRS", "DE_ICRS")
    assert got["sdss"].band_columns(names) == [("SDSS_U", "umag", "e_umag"), ("SDSS_G", "gmag", None)]
    assert got["allwise"].band_columns(["w1mpro", "w1sigmpro"]) == [("WISE_W1", "w1mpro", "w1sigmpro")]


def test_documented_ab_vega_offsets():
    # WISE (Cutri et al. 2012 IV.4.h / Jarrett et al. 2011), 2MASS (Blanton & Roweis 2007),
    # Gaia (Riello et al. 2021 Table 3 zero points)
    assert offset("WISE_W1", "Vega", "AB") == pytest.approx(2.699)
    assert offset("WISE_W2", "AB", "Vega") == pytest.approx(-3.339)
    assert offset("TMASS_KS", "Vega", "AB") == pytest.approx(1.85)
    assert offset("GAIA_G", "Vega", "AB") == pytest.approx(25.8010 - 25.6874)
    assert offset("SDSS_U", "AB", "AB") == 0.0
    with pytest.raises(DataError, match="PS1_G in the Vega system but the column is AB"):
        offset("PS1_G", "AB", "Vega")


def test_input_resolution_order_columns_recorded_name_canonical_alias():
    inp = [Input("u", "SDSS_U", "AB")]
    avail = ["u", "u_mag", "SDSS_U", "modelMag_u", "my_u"]
    assert resolve_inputs(avail, inp, user_map={"u": "my_u"}, recorded={"u": "u_mag"})["u"].how == "--columns"
    assert resolve_inputs(avail, inp, recorded={"u": "u_mag"})["u"].column == "u_mag"
    assert resolve_inputs(avail[:1] + avail[2:], inp)["u"].how == "name"
    assert resolve_inputs(avail[2:], inp)["u"].column == "SDSS_U"
    f = resolve_inputs(["modelMag_u"], inp)["u"]
    assert (f.column, f.how) == ("modelMag_u", "alias")
    assert resolve_inputs(["gmag"], [Input("g", "SDSS_G")]) == {}  # gmag is SDSS, PS1 and LS: no alias
    # a model trained on AB W1 gets the Vega canonical column shifted by +2.699 mag
    w = resolve_inputs(["WISE_W1"], [Input("W1", "WISE_W1", "AB")])["W1"]
    assert w.offset == pytest.approx(2.699) and "+2.699 mag" in w.describe()


def test_user_catalogue_file_is_found_and_replaces_nothing_shipped(tmp_path, monkeypatch):
    (tmp_path / "mywise.toml").write_text(
        'name = "mywise"\nra = ["RA"]\ndec = ["DEC"]\npos_err_default = 0.3\nsystem = "AB"\n'
        '[bands.WISE_W1]\nvalue = ["W1"]\nerror = ["W1ERR"]\n'
    )
    monkeypatch.setenv("XMMTOOLS_CATALOGS", str(tmp_path))
    p = catalogs.profile("mywise")
    assert p is not None and p.system == "AB" and p.pos_err_default == 0.3
    assert catalogs.profile("sdss") is not None
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "bad.toml").write_text('name = "bad"\nra = ["RA"]\ndec = ["DEC"]\n[bands.FOO_X]\nvalue = ["x"]\n')
    monkeypatch.setenv("XMMTOOLS_CATALOGS", str(bad))
    with pytest.raises(DataError, match="FOO_X.* is not a canonical band"):
        catalogs.profiles()


def test_catalog_value_with_known_label_and_vizier_shortcut():
    src, p = split_profile("OPT", "tests/x.fits:sdss")
    assert src == "tests/x.fits" and p.name == "sdss"
    src, p = split_profile("GAIA", "vizier:")
    assert src == "vizier:I/355/gaiadr3" and p.name == "gaia"
    assert split_profile("GAIA", "vizier:I/355/gaiadr3")[0] == "vizier:I/355/gaiadr3"
    assert split_profile("OPT", "opt.fits") == ("opt.fits", None)
    with pytest.raises(DataError, match="no VizieR table"):
        split_profile("LS", "vizier:")


def test_a_band_without_a_documented_offset_is_refused_naming_both_systems():
    with pytest.raises(DataError) as e:
        resolve_inputs(["PS1_G"], [Input("g", "PS1_G", "Vega")], what="photoz model m")
    msg = str(e.value)
    assert "\n" not in msg and "Vega" in msg and "AB" in msg and msg.startswith("photoz model m:")
