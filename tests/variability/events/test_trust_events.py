"""Issue 19, event-list transients: events filtered as EXOD2 and the pipelines do, every GTI
table of the file honoured, cameras merged on unit vectors.

Real data (tests/data/variability/events/0001730201, README there): the raw pipeline MOS1 list
of 0001730201 (``M1_raw_sel.fits.gz``: the PATTERN <= 12, PI 200-12000 eV rows of
P0001730201M1S002MIEVLI, every FLAG kept; ``make_m1_raw.py``) and the cleaned EXOD list
``M1_clean.fits.gz`` with its STDGTInn and flare-filter GTI0xxxx extensions."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from helpers import DATA, run_main

from xmmtools import tables
from xmmtools.variability.events.eventlist import flag_mask, read_events
from xmmtools.variability.events.exod2_search import Exod2Config, search_exod2
from xmmtools.variability.events.search import merged_position

EV = DATA / "variability" / "events" / "0001730201"
RAW = EV / "M1_raw_sel.fits.gz"
CLEAN = EV / "M1_clean.fits.gz"


def test_flag_mask_is_read_from_the_event_list_header():
    with fits.open(RAW) as h:
        assert flag_mask(h["EVENTS"].header, "M1") == 0x766BA000  # XMMEA_EM = (FLAG & 0x766ba000) == 0
    ev, meta = read_events(str(RAW))
    assert meta["N_FLAGGED"] > 1000  # flagged events (particle tracks, bad columns) removed
    ev_all, _ = read_events(str(RAW), flag_filter=False)
    assert len(ev["TIME"]) + meta["N_FLAGGED"] >= len(ev_all["TIME"])


@pytest.mark.parametrize("time_bin, before", [(50.0, 1), (200.0, 2)])
def test_raw_list_particle_tracks_are_not_bursts(time_bin, before):
    # before issue 19: flagged particle tracks (13-18 events within 2 s along one CCD column)
    # were reported as 1 burst at 50 s bins and 2 at 200 s bins
    t = search_exod2([str(RAW)], Exod2Config(time_bin=time_bin))
    assert t.num_rows == 0


def test_cleaned_list_flare_gaps_are_not_eclipses():
    # before issue 19: 5 "eclipses" of HD 159176 (0-1 counts where 49-632 were expected) inside
    # the flare-filter gaps, because only the STDGTInn tables were used
    with fits.open(CLEAN) as h:
        assert any(x.name.startswith("GTI0") for x in h)
    t = search_exod2([str(CLEAN)], Exod2Config(time_bin=200.0))
    assert "eclipse" not in t.column("TYPE").to_pylist()
    _, meta = read_events(str(CLEAN))
    with fits.open(CLEAN) as h:
        flare = h["GTI00004"].data
        assert meta["FILE_GTI"][:, 1].max() <= flare["STOP"].max() + 1e-6
    assert (meta["FILE_GTI"][:, 1] - meta["FILE_GTI"][:, 0]).sum() < (flare["STOP"] - flare["START"]).sum() + 1e-6


def test_cli_default_pi_range_is_exod2s(tmp_path, capsys):
    out = tmp_path / "c.parquet"
    code, _, err = run_main(["variability", "events", RAW, "--method", "exod2", "--time-bin", "200", "-o", out], capsys)
    assert code == 0, err
    assert tables.read_table(out).num_rows == 0
    assert tables.inspect_table(out).provenance[-1]["parameters"]["pi_min"] == 200.0


def test_cameras_merge_on_unit_vectors_across_ra_zero():
    # synthetic positions (the property needs RA on both sides of 0 h)
    g = [
        {"RA": 359.99999, "DEC": 10.0, "POSERR": 1.0, "CAMERA": "PN"},
        {"RA": 0.00001, "DEC": 10.0, "POSERR": 1.0, "CAMERA": "M1"},
    ]
    p = merged_position(g)  # before issue 19: RA 180
    assert p["RA"] == pytest.approx(0.0, abs=1e-9) and p["DEC"] == pytest.approx(10.0)
    assert p["CAMERAS"] == "PN+M1"


def test_candidates_report_poisson_false_alarm_and_cells_searched():
    # the flagged particle tracks of the raw list, kept on purpose (flag_filter=False), are real
    # candidates to check the reported probabilities on
    from scipy import stats

    from xmmtools.variability.events import exod2_search as X

    ev, meta = read_events(str(RAW), flag_filter=False)
    cfg = Exod2Config(time_bin=200.0)
    cands = X.exod2_candidates(ev, meta["GTI"], cfg)
    assert cands  # before issue 19 these had no P_FALSE / N_TRIALS
    c = X.bin_cells(ev, meta["GTI"], cfg)
    n_cells = int((np.bincount(c.cell, minlength=c.bkg.size) > 0).sum())
    for k in cands:
        assert k["N_TRIALS"] == n_cells * int((c.s > 0).sum())
        assert 0 < k["P_FALSE"] < 1e-4
    t = search_exod2([str(RAW)], cfg)  # flag-filtered: nothing left
    assert t.num_rows == 0 and {"P_FALSE", "N_TRIALS", "FAP_OBS"} <= set(t.schema.names)
    # P_FALSE is the Poisson tail P(N >= n | mu) of the candidate's most significant cell-frame
    best = max(cands, key=lambda k: k["LOG10_B"])
    keys, n, mu, lb = X.flag_cells(c)["burst"]
    i = int(np.argmax(lb))
    assert best["P_FALSE"] == pytest.approx(stats.poisson.sf(n[i] - 1, mu[i]), rel=1e-6)
