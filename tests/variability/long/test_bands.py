"""Band conversion to 0.1-12 keV (STONKS factors) and its recomputation from the spectral model."""

from __future__ import annotations

import numpy as np
import pytest

from xmmtools.errors import DataError
from xmmtools.variability.long import bands
from xmmtools.variability.long.bands import PowerLaw, band_factor, factor_for

STONKS = {"4XMM": 0.999, "CSC2": 0.69, "2SXPS": 0.9, "eRASS1": 0.39, "2RXS": 0.41}


@pytest.mark.parametrize("cat,expected", STONKS.items())
def test_integrated_factors_reproduce_the_stonks_table_within_0_01(cat, expected):
    cb = bands.lookup_catalogue(cat)
    assert cb.factor == expected
    # absorbed power law Gamma=1.7, N_H=3e20, Morrison & McCammon 1983 cross-sections
    assert band_factor(*cb.band) == pytest.approx(expected, abs=0.01)


def test_largest_difference_is_csc_and_stays_below_1_5_percent():
    diffs = {c: abs(band_factor(*bands.lookup_catalogue(c).band) / f - 1) for c, f in STONKS.items()}
    assert max(diffs.values()) < 0.015
    assert band_factor(0.5, 7.0) == pytest.approx(0.6985, abs=5e-4)


def test_unabsorbed_factor_is_the_closed_form_power_law_ratio():
    # N_H = 0: F(lo,hi) ∝ (hi^(2-G) - lo^(2-G)) / (2-G), independent of the integrator
    for g in (1.4, 1.7, 2.3):
        m = PowerLaw(g, 0.0)
        expect = (7.0 ** (2 - g) - 0.5 ** (2 - g)) / (12.0 ** (2 - g) - 0.1 ** (2 - g))
        assert band_factor(0.5, 7.0, m) == pytest.approx(expect, rel=1e-7)
    # Gamma = 2: logarithmic
    assert band_factor(0.5, 7.0, PowerLaw(2.0, 0.0)) == pytest.approx(np.log(14) / np.log(120), rel=1e-7)


def test_cross_section_at_1_kev_is_mm83_table_value():
    # (c0 + c1 E + c2 E^2)/E^3 with the 0.867-1.303 keV coefficients at E = 1 keV
    assert bands.cross_section(1.0) == pytest.approx((120.6 + 169.3 - 47.7) * 1e-24)
    assert bands.cross_section(0.25) == pytest.approx((34.6 + 267.9 * 0.25 - 476.1 * 0.0625) / 0.25**3 * 1e-24)


def test_integration_is_converged_and_insensitive_to_the_c2_transcription():
    fine = bands.band_energy_flux(0.5, 7.0, n=400001)
    assert bands.band_energy_flux(0.5, 7.0) == pytest.approx(fine, rel=1e-5)
    alt = bands._MM83_COEFF.copy()
    alt[11, 2] = -0.75
    a = bands.band_energy_flux(0.5, 7.0, coefficients=alt) / bands.band_energy_flux(0.1, 12.0, coefficients=alt)
    assert abs(a - band_factor(0.5, 7.0)) < 1e-5


def test_round_trip_between_two_bands_through_the_common_band():
    m = PowerLaw(1.9, 1e21)
    f_csc, f_swift = band_factor(0.5, 7.0, m), band_factor(0.3, 10.0, m)
    f_native = np.array([1e-13, 3.3e-12])
    common = f_native / f_csc
    np.testing.assert_allclose(common * f_csc, f_native, rtol=1e-14)
    # the same source seen in the Swift band: ratio of band fluxes of the model
    np.testing.assert_allclose(
        common * f_swift / f_native,
        bands.band_energy_flux(0.3, 10.0, m) / bands.band_energy_flux(0.5, 7.0, m),
        rtol=1e-12,
    )


def test_factor_lookup_by_band_catalogue_and_model():
    assert factor_for("Chandra") == 0.69  # alias
    assert factor_for(None, "0.5-7") == 0.69  # same band as a tabulated catalogue
    assert factor_for("4XMM", 8) == 0.999
    assert factor_for("4XMM", 3) == pytest.approx(band_factor(1.0, 2.0))
    assert factor_for("CSC2", model=PowerLaw(2.5, 3e20)) == pytest.approx(band_factor(0.5, 7.0, PowerLaw(2.5, 3e20)))
    with pytest.raises(DataError, match="not in the band-factor table"):
        factor_for("EINSTEIN")
    with pytest.raises(DataError):
        factor_for("4XMM", "7-2")


def test_hardness_range_brackets_the_default_spectrum_and_rejects_absorbed_ones():
    lo, hi = bands.hardness_range((0.2, 2.0), (2.0, 12.0), 3e20)
    assert lo < bands.flux_hardness((0.2, 2.0), (2.0, 12.0), PowerLaw()) < hi
    # a Gamma=1.7 power law behind N_H = 1e23 is harder than any unabsorbed Gamma >= 0.5
    assert bands.flux_hardness((0.2, 2.0), (2.0, 12.0), PowerLaw(1.7, 1e23)) > hi
