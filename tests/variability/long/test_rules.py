"""Pessimistic ratios, alert rules and STONKS matching against hand-worked examples.

The inputs here are synthetic on purpose: each test controls the one property it checks
(which epoch is extreme, an upper limit, a missing error, a candidate's separation).
Fluxes are in units of 1e-14 erg/cm2/s; the rules are scale-free.
"""

from __future__ import annotations

import numpy as np
import pytest

from xmmtools.variability.long.alerts import stonks_alerts
from xmmtools.variability.long.match import stonks_match
from xmmtools.variability.long.statistics import long_term_stats

NAN = np.nan


def stats(flux, err, ul, mjd=None, src=None):
    n = len(flux)
    src = np.zeros(n, int) if src is None else np.asarray(src)
    mjd = np.arange(n, dtype=float) if mjd is None else mjd
    return long_term_stats(src, flux, err, ul, mjd, int(src.max()) + 1)


def test_pessimistic_ratio_amplitude_and_significance_by_hand():
    s = stats([10.0, 1.0, 4.0], [2.0, 0.5, 1.0], [False] * 3, mjd=[100.0, 400.0, 250.0])
    # max(F - s) = 10 - 2 = 8 ; min(F + s) = 1 + 0.5 = 1.5
    assert s.ratio[0] == pytest.approx(8 / 1.5)
    assert s.variable[0]
    assert s.ratio_opt[0] == pytest.approx(10.0)
    assert s.amplitude[0] == pytest.approx(6.5)
    assert s.significance[0] == pytest.approx(9 / np.sqrt(4 + 0.25))
    assert (s.i_max[0], s.i_min[0]) == (0, 1)
    assert s.baseline[0] == pytest.approx(300.0)
    assert s.n_epochs[0] == 3


def test_upper_limit_enters_the_minimum_with_its_value():
    s = stats([10.0, 1.5], [1.0, 0.0], [False, True])
    assert s.ratio[0] == pytest.approx(9 / 1.5)
    assert s.i_min[0] == 1 and s.n_ul[0] == 1 and s.n_det[0] == 1
    assert s.ratio_opt[0] == pytest.approx(10 / 1.5)
    assert s.significance[0] == pytest.approx(8.5 / 1.0)  # sigma of an upper limit is 0
    # an upper limit above every detection changes nothing
    s2 = stats([10.0, 8.0, 50.0], [1.0, 1.0, 0.0], [False, False, True])
    assert s2.ratio[0] == pytest.approx(9 / 9)


def test_threshold_is_configurable_and_strict():
    s = long_term_stats([0, 0], [6.0, 1.0], [0.0, 0.0], [False, False], [0.0, 1.0], 1, threshold=6.0)
    assert s.ratio[0] == pytest.approx(6.0) and not s.variable[0]


def test_missing_errors_count_as_zero_and_negative_fluxes_stay_out_of_the_extremes():
    s = stats([10.0, 1.0], [NAN, NAN], [False, False])
    assert s.ratio[0] == pytest.approx(10.0)
    # F = -1 +- 2: upper bound 1 enters the minimum; F - s = -3 is not the maximum
    s = stats([-1.0, 5.0], [2.0, 1.0], [False, False])
    assert s.ratio[0] == pytest.approx(4 / 1)
    # F = -3 +- 1: upper bound -2 <= 0 is left out of the minimum
    s = stats([-3.0, 5.0], [1.0, 1.0], [False, False])
    assert s.ratio[0] == pytest.approx(4 / 6)
    # no epoch significantly above zero: R = 0, not negative
    s = stats([1.0, 0.5], [2.0, 1.0], [False, False])
    assert s.ratio[0] == 0.0


def test_one_epoch_gives_no_ratio_and_sources_are_independent():
    s = stats([10.0, 3.0, 1.0], [1.0, 0.1, 0.1], [False] * 3, src=[0, 1, 1])
    assert np.isnan(s.ratio[0]) and s.n_epochs[0] == 1
    assert s.ratio[1] == pytest.approx(2.9 / 1.1)


def alerts(flux, err, ul, mjd, new):
    n = len(flux)
    return stonks_alerts(np.zeros(n, int), flux, err, ul, mjd, np.array([new]), 1)


def test_first_detection_is_driven_by_earlier_upper_limits():
    a = alerts([1.0, 2.5, 10.0], [0, 0, 1.0], [True, True, False], [100.0, 150.0, 200.0], 2)
    assert a.type[0] == "First Detection"
    assert a.ratio[0] == pytest.approx(9.0)  # (10 - 1) / 1
    assert a.hist_ul_min[0] == 1.0 and a.hist_n_det[0] == 0 and a.hist_n_ul[0] == 2
    # the lowest UL must be below (F - sigma)/5 = 1.8: with UL 2 there is no alert
    b = alerts([2.0, 10.0], [0, 1.0], [True, False], [100.0, 200.0], 1)
    assert b.type[0] == ""


def test_high_and_low_flux_states():
    high = alerts([1.0, 10.0], [0.1, 1.0], [False, False], [100.0, 200.0], 1)
    assert high.type[0] == "High Flux State" and high.ratio[0] == pytest.approx(9 / 1.1)
    low = alerts([10.0, 1.0], [1.0, 0.1], [False, False], [100.0, 200.0], 1)
    assert low.type[0] == "Low Flux State"
    # upper-limit-driven comparison: F + s = 0.35 is below the earlier UL 0.5 and detection 10
    low_ul = alerts([10.0, 0.5, 0.3], [1.0, 0.0, 0.05], [False, True, False], [100.0, 150.0, 200.0], 2)
    assert low_ul.type[0] == "Low Flux State"
    # ... but above an earlier UL of 0.2: the new detection is not the lowest state seen
    past = alerts([10.0, 0.2, 0.3], [1.0, 0.0, 0.05], [False, True, False], [100.0, 150.0, 200.0], 2)
    assert past.type[0] == "Past Variability"


def test_past_variability_and_later_epochs_are_not_history():
    a = alerts([10.0, 1.0, 3.0], [1.0, 0.1, 0.3], [False] * 3, [100.0, 150.0, 200.0], 2)
    assert a.type[0] == "Past Variability" and a.ratio[0] == pytest.approx(9 / 1.1)
    # a brighter epoch AFTER the new detection is not part of its history
    b = alerts([1.0, 1.2, 50.0], [0.1, 0.1, 1.0], [False] * 3, [100.0, 200.0, 300.0], 1)
    assert b.type[0] == "" and b.hist_n_det[0] == 1


def test_stonks_match_limits_radius_xmm_preference_and_score_rule():
    arcsec = 1 / 3600
    new_ra, new_dec, new_err = np.array([10.0]), np.array([0.0]), np.array([1.0])

    def one(offsets, errs, xmm=None, **kw):
        return stonks_match(
            new_ra,
            new_dec,
            new_err,
            10.0 + np.asarray(offsets) * arcsec,
            np.zeros(len(offsets)),
            np.asarray(errs, float),
            xmm,
            **kw,
        )

    # limit = max(3*1, 1) + max(1, 1) = 4": 3.9" matches, 4.1" does not
    assert one([3.9], [1.0]).index[0] == 0
    assert one([4.1], [1.0]).index[0] == -1
    # scores exp(-d^2/4)/2: 0.5" vs 3.5" -> ratio exp(3) = 20 > 5, unambiguous
    m = one([3.5, 0.5], [1.0, 1.0])
    assert m.index[0] == 1 and not m.ambiguous[0] and m.score_ratio[0] == pytest.approx(np.exp(3.0))
    assert m.separation[0] == pytest.approx(0.5, rel=1e-6)
    # 2.0" vs 2.2": ratio exp((2.2^2-2^2)/4) = 1.23 < 5 -> ambiguous, best kept
    m = one([2.2, 2.0], [1.0, 1.0])
    assert m.index[0] == 1 and m.ambiguous[0] and m.n_candidates[0] == 2
    # an XMM candidate wins over a closer non-XMM one
    m = one([0.3, 3.0], [1.0, 1.0], xmm=[False, True])
    assert m.index[0] == 1 and not m.ambiguous[0]
    # large errors cannot reach beyond the 20" search radius
    big = stonks_match(new_ra, new_dec, np.array([10.0]), np.array([10.0 + 25 * arcsec]), np.zeros(1), np.array([10.0]))
    assert big.index[0] == -1


def test_stonks_match_across_ra_zero():
    m = stonks_match(
        np.array([359.9999]), np.array([0.0]), np.array([0.5]), np.array([0.0001]), np.array([0.0]), np.array([0.5])
    )
    assert m.index[0] == 0 and m.separation[0] == pytest.approx(0.72, rel=1e-4)
