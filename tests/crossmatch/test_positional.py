"""Positional matching: pairs and nearest neighbours identical to astropy's."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord, search_around_sky

from xmmtools.crossmatch import positional
from xmmtools.crossmatch.positional import CellMask, Pairs, nearest, search_around, tangent_offsets
from xmmtools.crossmatch.synthetic import sky
from xmmtools.errors import DataError
from xmmtools.sky import check_coordinates, chord_to_arcsec, separation_arcsec


def _astropy_pairs(ra1, dec1, ra2, dec2, r):
    c1, c2 = SkyCoord(ra1, dec1, unit="deg"), SkyCoord(ra2, dec2, unit="deg")
    i1, i2, d, _ = search_around_sky(c1, c2, r * u.arcsec)
    o = np.lexsort((i2, i1))
    return i1[o], i2[o], d.arcsec[o]


def _assert_astropy_pairs(p, ra1, dec1, ra2, dec2, r, min_pairs):
    """search_around's pairs ``p`` are astropy's, same separations."""
    a1, a2, ad = _astropy_pairs(ra1, dec1, ra2, dec2, r)
    o = np.lexsort((p.idx2, p.idx1))
    assert len(p) == len(a1) > min_pairs
    np.testing.assert_array_equal(p.idx1[o], a1)
    np.testing.assert_array_equal(p.idx2[o], a2)
    np.testing.assert_allclose(p.sep[o], ad, rtol=0, atol=1e-6)


@pytest.mark.parametrize("chunk", [None, 97])
def test_all_pairs_identical_to_astropy_whole_sky(chunk):
    # whole sphere incl. the poles and the RA wrap; a small chunk forces many declination stripes
    ra1, dec1 = sky(4000, seed=1)
    ra2, dec2 = sky(40000, seed=2)
    ra1[:5], dec1[:5] = [0.0, 359.999, 10.0, 200.0, 0.0], [0.0, 0.0, 89.99, -89.995, 90.0]
    ra2[:5], dec2[:5] = [359.9995, 0.0003, 190.0, 20.0, 123.0], [0.0, 0.0, 89.995, -89.999, 89.999]
    p = search_around(ra1, dec1, ra2, dec2, 1800.0, chunk=chunk)
    _assert_astropy_pairs(p, ra1, dec1, ra2, dec2, 1800.0, 1000)
    # pole pairs and the wrap pair are found
    got = set(zip(p.idx1.tolist(), p.idx2.tolist(), strict=True))
    assert {(0, 0), (0, 1), (1, 0), (2, 2), (3, 3), (4, 4)} <= got


@pytest.mark.parametrize("radius", [2.0, 10.0, 600.0, 7200.0])
def test_cell_mask_never_drops_a_true_pair(radius):
    # sparse primaries (fields) and dense secondaries over the whole sphere, poles and RA wrap
    rng = np.random.default_rng(int(radius))
    ra1, dec1 = sky(3000, seed=5)
    ra1[:6], dec1[:6] = [0.0, 359.99999, 180.0, 45.0, 0.0, 300.0], [0.0, 0.0, 90.0, -90.0, 89.9999, -89.99]
    # secondaries scattered around the primaries (within 2 radii) plus a uniform field
    k = rng.integers(0, len(ra1), 60000)
    d = np.radians(dec1[k])
    off = rng.normal(0, radius / 3600.0, (2, len(k)))
    ra2 = np.mod(ra1[k] + off[0] / np.maximum(np.cos(d), 1e-3), 360.0)
    dec2 = np.clip(dec1[k] + off[1], -90, 90)
    f_ra, f_dec = sky(60000, seed=6)
    ra2, dec2 = np.r_[ra2, f_ra, 359.9999999999], np.r_[dec2, f_dec, 0.0]
    mask = CellMask(ra1, dec1, radius)(ra2, dec2)
    a1, a2, _ = _astropy_pairs(ra1, dec1, ra2, dec2, radius)
    assert len(a2) > 1000
    assert mask[a2].all()  # every secondary with a primary within the radius passes
    if radius <= 10:
        assert mask.mean() < 0.6  # and the far field is mostly dropped


def test_search_around_with_cell_mask_identical_to_astropy():
    # 10^5 secondaries >= 4x the primaries: search_around filters them with the cell mask first
    ra1, dec1 = sky(5000, ra_range=(350, 370), dec_range=(-5, 5), seed=7)
    ra1 = np.mod(ra1, 360.0)
    ra2, dec2 = sky(150000, ra_range=(340, 380), dec_range=(-10, 10), seed=8)
    ra2 = np.mod(ra2, 360.0)
    rows = positional.near_rows(ra1, dec1, ra2, dec2, 30.0)
    assert rows is not None and len(rows) < 0.5 * len(ra2)
    _assert_astropy_pairs(search_around(ra1, dec1, ra2, dec2, 30.0), ra1, dec1, ra2, dec2, 30.0, 100)


def test_pairs_sorted_by_primary_then_separation():
    ra1, dec1 = sky(300, ra_range=(10, 11), dec_range=(-1, 0), seed=3)
    ra2, dec2 = sky(3000, ra_range=(10, 11), dec_range=(-1, 0), seed=4)
    p = search_around(ra1, dec1, ra2, dec2, 120.0)
    assert np.all(np.diff(p.idx1) >= 0)
    same = np.diff(p.idx1) == 0
    assert np.all(np.diff(p.sep)[same] >= 0)
    assert p.sep.max() <= 120.0


def test_nearest_equals_astropy_match_to_catalog():
    ra1, dec1 = sky(3000, seed=5)
    ra2, dec2 = sky(30000, seed=6)
    c1, c2 = SkyCoord(ra1, dec1, unit="deg"), SkyCoord(ra2, dec2, unit="deg")
    jj, dd, _ = c1.match_to_catalog_sky(c2)
    j, s = nearest(ra1, dec1, ra2, dec2, 1200.0, chunk=250)
    ok = dd.arcsec <= 1200
    assert ok.sum() > 100 and (~ok).sum() > 100
    np.testing.assert_array_equal(j[ok], jj[ok])
    np.testing.assert_allclose(s[ok], dd.arcsec[ok], atol=1e-6)
    assert np.all(j[~ok] == -1) and np.all(np.isnan(s[~ok]))
    j2, s2 = nearest(ra1, dec1, ra2, dec2, None)
    np.testing.assert_array_equal(j2, jj)
    np.testing.assert_allclose(s2, dd.arcsec, atol=1e-6)


def test_separation_and_offsets_against_astropy():
    ra1, dec1 = sky(50, seed=7)
    ra2 = ra1 + np.linspace(-0.01, 0.01, 50)
    dec2 = np.clip(dec1 + np.linspace(0.01, -0.01, 50), -90, 90)
    c1, c2 = SkyCoord(ra1, dec1, unit="deg"), SkyCoord(ra2, dec2, unit="deg")
    np.testing.assert_allclose(separation_arcsec(ra1, dec1, ra2, dec2), c1.separation(c2).arcsec, atol=1e-7)
    xi, eta = tangent_offsets(ra1, dec1, ra2, dec2)
    off = c1.spherical_offsets_to(c2)
    # gnomonic and astropy's offset frame agree to second order at 36 arcsec
    np.testing.assert_allclose(xi, off[0].arcsec, atol=2e-4)
    np.testing.assert_allclose(eta, off[1].arcsec, atol=2e-4)
    assert chord_to_arcsec(np.array([2 * np.sin(np.radians(0.5))]))[0] == pytest.approx(3600.0)


def test_empty_inputs_and_bad_radius():
    p = search_around([], [], [1.0], [1.0], 10.0)
    assert isinstance(p, Pairs) and len(p) == 0
    j, s = nearest([1.0], [1.0], [], [], 10.0)
    assert j[0] == -1 and np.isnan(s[0])
    with pytest.raises(DataError, match="radius must be positive"):
        search_around([1.0], [1.0], [1.0], [1.0], 0.0)


def test_invalid_coordinates_named():
    with pytest.raises(DataError, match=r"DEC=91 at row 1 is outside \[-90, 90\]"):
        check_coordinates([1.0, 2.0], [0.0, 91.0], "cat.fits")
    with pytest.raises(DataError, match="missing \\(NaN/null\\) RA or DEC, first at row 0"):
        check_coordinates([np.nan, 2.0], [0.0, 1.0], "cat.fits")
