"""The 4XMM schema, bands, ECFs, aliases, required-column messages and catalogue kinds."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import COSMOS, DR9, SAMPLE, SLIM_CSV
from hypothesis import given
from hypothesis import strategies as st

from xmmtools import columns as C
from xmmtools import tables as T
from xmmtools.errors import ColumnError, DataError


def test_schema_has_the_336_detection_columns_with_units():
    s = C.schema()
    assert len(s) == 336
    assert list(s)[:3] == ["DETID", "SRCID", "DR3SRCID"]
    assert s["DETID"].dtype == "int64" and s["OBS_ID"].dtype == "str"
    assert s["EP_8_FLUX"].unit == "erg/cm**2/s" and s["RA"].unit == "deg"
    assert s["PN_8_RATE"].unit == "count/s"  # FITS-standard spelling
    assert s["SC_HR2"].in_slim and not s["DETID"].in_slim


def test_bands_and_band_ranges():
    assert C.BANDS[8] == (0.2, 12.0) and C.BANDS[9] == (0.5, 4.5)
    assert [C.BANDS[b] for b in (1, 2, 3, 4, 5)] == [(0.2, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.5), (4.5, 12.0)]
    assert C.band_range("0.5-2") == (0.5, 2.0)
    with pytest.raises(DataError, match="unknown 4XMM band"):
        C.band_range(10)
    with pytest.raises(DataError, match="0 < lo < hi"):
        C.band_range("2-0.5")


def test_column_families_name_real_columns():
    s = C.schema()
    for cam in C.CAMERAS:
        for band in C.CATALOGUE_BANDS:
            assert C.flux_column(cam, band) in s
            assert C.flux_column(cam, band, err=True) in s
        for n in (1, 2, 3, 4):
            assert C.hr_column(n, cam) in s
    for cam in C.INSTRUMENTS:
        for band in (1, 2, 3, 4, 5):
            assert C.exposure_column(cam, band) in s and C.background_column(cam, band) in s
    assert C.flux_column("EP", 8, source=True) == "SC_EP_8_FLUX" in s
    assert C.hr_column(2, source=True) == "SC_HR2" in s
    assert C.flux_column("MOS1", 3) == "M1_3_FLUX"
    fam = C.parse_family("SC_EP_8_FLUX_ERR")
    assert (fam.source, fam.camera, fam.band, fam.quantity, fam.err) == (True, "EP", 8, "FLUX", True)
    assert C.parse_family("PN_HR3").band is None and C.parse_family("RA") is None


def test_ecf_values_from_the_catalogue_tables():
    # DESIGN §11: PN bands 1-5, 8 thin: 9.52, 8.12, 5.87, 1.95, 0.58, 3.32; MOS1: 1.73 ... 0.93
    assert [C.ecf("PN", b, "Thin1") for b in (1, 2, 3, 4, 5, 8)] == [9.52, 8.12, 5.87, 1.95, 0.58, 3.32]
    assert [C.ecf("M1", b, "thin") for b in (1, 2, 3, 4, 5, 8)] == [1.73, 1.75, 2.04, 0.74, 0.15, 0.93]
    assert C.ecf("M2", 8, "Thick") == 0.78
    assert C.ecf("PN", 1, "Open", table="mateos2009") == 16.530
    with pytest.raises(DataError, match="unknown filter"):
        C.ecf("PN", 8, "CalClosed")
    with pytest.raises(DataError, match="no ECF for PN band 8 filter Open"):
        C.ecf("PN", 8, "Open")


def test_resolve_aliases_lower_case_heasarc_and_user_map():
    vizier = ["4XMM", "RA_ICRS", "DE_ICRS", "ePos", "Flux8", "e_Flux8", "HR1", "srcML", "Source"]
    got = C.resolve(vizier, ["IAUNAME", "SC_RA", "RA", "DEC", "POSERR", "SC_EP_8_FLUX", "SC_HR1", "SC_DET_ML", "SRCID"])
    assert got == {
        "IAUNAME": "4XMM",
        "SC_RA": "RA_ICRS",
        "RA": "RA_ICRS",
        "DEC": "DE_ICRS",
        "POSERR": "ePos",
        "SC_EP_8_FLUX": "Flux8",
        "SC_HR1": "HR1",
        "SC_DET_ML": "srcML",
        "SRCID": "Source",
    }
    heasarc = ["name", "ra", "dec", "error_radius", "ep_8_flux", "ep_8_flux_error", "time"]
    got = C.resolve(heasarc, ["IAUNAME", "RA", "DEC", "POSERR", "EP_8_FLUX", "EP_8_FLUX_ERR", "MJD_START"])
    assert got["EP_8_FLUX_ERR"] == "ep_8_flux_error" and got["POSERR"] == "error_radius"
    assert got["MJD_START"] == "time" and got["RA"] == "ra"
    # exact names win over aliases; the user's mapping wins over everything
    assert C.resolve(["RA", "RA_ICRS"], ["RA"]) == {"RA": "RA"}
    assert C.resolve(["RA", "ra_deg"], ["RA"], {"RA": "ra_deg"}) == {"RA": "ra_deg"}
    assert C.parse_column_map("RA=ra_deg, DEC=dec_deg") == {"RA": "ra_deg", "DEC": "dec_deg"}
    with pytest.raises(DataError, match="is not NAME=COLUMN"):
        C.parse_column_map("RA:ra_deg")


def test_require_message_names_stage_column_file_and_closest():
    avail = T.inspect_table(SAMPLE).schema.names
    avail = [a for a in avail if a != "SC_HR2"]
    with pytest.raises(ColumnError) as e:
        C.require(avail, [C.Need("SC_HR2")], stage="classify", source="cat.fits")
    desc = C.describe("SC_HR2")
    assert desc
    assert str(e.value) == (
        f"classify needs column SC_HR2 ({desc}); cat.fits has no such column (closest: SC_HR1, SC_HR3, SC_HR4)"
    )


def test_require_checks_types_and_user_map():
    with pytest.raises(
        ColumnError, match=r"needs column ra_deg \(used as RA\) in t.csv to hold a number, but it holds text"
    ):
        C.require(
            ["ra_deg", "DEC"],
            [C.Need("RA"), C.Need("DEC")],
            stage="crossmatch",
            source="t.csv",
            user_map={"RA": "ra_deg"},
            types={"ra_deg": "text", "DEC": "number"},
        )
    with pytest.raises(ColumnError, match="--columns maps RA to 'ra_dg', but t.csv has no such column"):
        C.require(["ra_deg"], ["RA"], stage="crossmatch", source="t.csv", user_map={"RA": "ra_dg"})
    assert C.require(["ra"], [C.Need("RA"), C.Need("DEC", optional=True)], stage="x", source="t") == {"RA": "ra"}


def test_detect_kind_on_real_and_structured_tables():
    assert C.detect_kind(T.inspect_table(SAMPLE).schema.names).name == "4xmm-detections"
    assert C.detect_kind(T.inspect_table(DR9).schema.names).name == "4xmm-detections"
    assert C.detect_kind(T.inspect_table(SLIM_CSV).schema.names).name == "4xmm-slim"
    assert C.detect_kind(T.inspect_table(COSMOS).schema.names).name == "generic"
    slim = [c for c in C.schema() if C.schema()[c].in_slim]
    assert C.detect_kind(slim).name == "4xmm-slim"
    stacked = ["SRCID", "OBS_ID", "N_OBS", "N_CONTRIB", "RA", "DEC", "EP_FLUX"]
    assert C.detect_kind(stacked).name == "4xmm-stacked"
    five = ["SRCID", "IAUNAME", "OBS_ID", "PPS_SRCNUM", "N_OBS", "N_CONTRIB", "N_EXP", "VAR_PROB"]
    assert C.detect_kind(five).name == "5xmm"
    assert C.detect_kind(["RA", "DEC"], {"CATALOG": "4XMM-DR13s"}).name == "4xmm-stacked"
    assert C.detect_kind(["RA", "DEC"], {"EXTNAME": "5XMM-DR15"}).name == "5xmm"


def test_summary_rows_of_stacked_catalogue():
    n_obs = np.array([3, np.nan, np.nan, np.nan, 1, np.nan])
    n_con = np.array([2, np.nan, np.nan, np.nan, 1, np.nan])
    assert C.summary_rows(n_obs, n_con).tolist() == [True, False, False, False, True, False]


@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,12}", fullmatch=True),
        st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,12}", fullmatch=True),
        max_size=6,
    )
)
def test_parse_column_map_roundtrips(mapping):
    text = ",".join(f"{k}={v}" for k, v in mapping.items())
    parsed = C.parse_column_map(text)
    expected = {}
    for k, v in mapping.items():
        expected[k.upper()] = v
    assert parsed == expected
