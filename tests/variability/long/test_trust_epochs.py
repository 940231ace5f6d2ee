"""Issue 19, long-term variability: what counts as an epoch.

Real data: the shipped omega Cen 4XMM-DR10 sample (data/sample) and the 3XMM-DR8 rows of the same
field (tests/data/variability_long, the README's quick start).  Source 201177401010013 is detected
in 0117740101 and 0412780101 and not in 0112220101; the upper-limit table has the shape the
sensitivity stage writes (one row per camera, one EPIC row, an undated OBS_ID ALL stack)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from helpers import DATA, SAMPLE

from xmmtools import tables
from xmmtools.variability.long.run import long_term_variability

SRC = 201177401010013


@pytest.fixture(scope="module")
def sample():
    return tables.read_table(SAMPLE)


def _row(res, sample, name):
    i = sample.column("SRCID").to_pylist().index(SRC)
    return {c.name: c.values for c in res.columns}[name][i]


def test_undated_stack_and_camera_rows_are_not_epochs(sample):
    ul = pa.table(
        {
            "SRCID": pa.array([SRC] * 5, pa.int64()),
            "OBS_ID": ["0112220101"] * 4 + ["ALL"],
            "INSTRUMENT": ["PN", "M1", "M2", "EP", "EP"],
            "MJD": [52134.3] * 4 + [float("nan")],
            "FLUX_UL": [3e-14, 2.5e-14, 4e-14, 2e-14, 2e-15],
            "BAND": ["8"] * 5,
        }
    )
    res = long_term_variability(sample, upper_limits=ul)
    # before issue 19: LT_VAR_RATIO 13.0, LT_VARIABLE true, LT_N_UL 5 (the undated stack counted)
    assert _row(res, sample, "LT_VAR_RATIO") == pytest.approx(1.2997, abs=1e-3)
    assert not _row(res, sample, "LT_VARIABLE")
    assert _row(res, sample, "LT_N_UL") == 1
    ulep = res.epochs.flux[res.epochs.is_ul] * res.epochs.factor[res.epochs.is_ul]
    assert ulep.tolist() == pytest.approx([2e-14])  # the EPIC row of the dated observation
    assert any("1 undated upper-limit rows" in n for n in res.notes)


def test_without_epic_row_the_most_constraining_camera_is_the_epoch(sample):
    ul = pa.table(
        {
            "SRCID": pa.array([SRC] * 3, pa.int64()),
            "OBS_ID": ["0112220101"] * 3,
            "INSTRUMENT": ["PN", "M1", "M2"],
            "MJD": [52134.3] * 3,
            "FLUX_UL": [3e-14, 2.5e-14, 4e-14],
            "BAND": ["8"] * 3,
        }
    )
    res = long_term_variability(sample, upper_limits=ul)
    ulep = res.epochs.flux[res.epochs.is_ul] * res.epochs.factor[res.epochs.is_ul]
    assert ulep.tolist() == pytest.approx([2.5e-14])


def test_one_observation_through_two_catalogues_is_one_epoch(sample):
    arch = tables.read_table(DATA / "variability_long" / "3xmm_dr8_ngc5139.csv")
    res = long_term_variability(sample, archives=[("3XMM", arch)])
    e = res.epochs
    pairs = {(int(s), o) for s, o in zip(e.source, e.obs, strict=True)}
    assert len(pairs) == len(e)  # before issue 19: 67 epochs for 52 (source, observation) pairs
    assert len(e) == 52
    k = list(res.sources.key).index(201177401010002)
    assert int(np.sum(e.source == k)) == 3  # three observations (before: 6)
    assert set(e.origin[e.source == k]) == {"catalogue"}  # the input's own rows are kept
    assert any("15 epochs of an observation already counted" in n for n in res.notes)


def test_count_rate_hardness_ratios_are_not_compared_with_flux_ranges(sample):
    # an archival CSC row at the position of a real omega Cen source, with the count-rate HR of a
    # Gamma ~ 1.7 source in ACIS (h-s)/(h+s) ~ -0.5 (values set here: no CSC file is shipped);
    # the energy-flux HR range of Gamma 0.5-2.5 in 0.5-2 / 2-7 keV is -0.32..0.74
    src = tables.read_table(SAMPLE, ["SRCID", "SC_RA", "SC_DEC"]).to_pydict()
    i = src["SRCID"].index(SRC)
    arch = pa.table(
        {
            "RA": [src["SC_RA"][i]],
            "DEC": [src["SC_DEC"][i]],
            "POSERR": [0.5],
            "MJD": [55000.0],
            "FLUX": [3e-14],
            "FLUX_ERR": [5e-15],
            "HR": [-0.5],
        }
    )
    res = long_term_variability(sample, archives=[("CSC2", arch)])
    a = res.epochs.origin == "archive"
    assert a.sum() == 1 and res.epochs.hr[a][0] == -0.5
    assert not res.epochs.spectral_warning[a][0]  # before issue 19: True (rate HR vs flux range)
