"""Sensitivity stage on real SAS exposure maps and counts images (tests/data/sensitivity)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from helpers import DATA

from xmmtools.errors import DataError
from xmmtools.sensitivity import maps as hmaps
from xmmtools.sensitivity.flix import threshold_counts
from xmmtools.sensitivity.io import discover_products, parse_positions, read_image, read_position_list
from xmmtools.sensitivity.positions import Settings, evaluate_positions, offaxis_arcmin
from xmmtools.sensitivity.products import build_maps, disc_kernel
from xmmtools.sensitivity.upper_limits import SIGMA_CL, kbn_upper_limit

pytestmark = pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")

OBS = DATA / "sensitivity" / "obs"
GAP = (149.50, -11.00)  # 0201903501 MOS2 chip gap
CENTRE = (149.59, -11.09)


@pytest.fixture(scope="module")
def products():
    return discover_products(str(OBS))


@pytest.fixture(scope="module")
def pmaps(products):
    return [build_maps(p, read_image(p.expmap), read_image(p.image)) for p in products]


def _table(pos, cols) -> pa.Table:
    t = pa.table({c.name: c.values for c in cols})
    return t.append_column("POS", pa.array(pos))


def _rows(t: pa.Table, **match) -> list[dict]:
    out = t.to_pylist()
    return [r for r in out if all(r[k] == v for k, v in match.items())]


# -- reading ---------------------------------------------------------------------------------


def test_discover_groups_expmaps_and_images_by_obs_camera_band(products):
    keys = {(p.obs_id, p.instrument, p.band) for p in products}
    assert len(products) == 7
    assert ("0201903501", "M2", (0.5, 2.0)) in keys and ("0201903501", "PN", (2.0, 10.0)) in keys
    p = next(p for p in products if p.obs_id == "0201903501" and p.instrument == "M2")
    assert p.image and p.image.endswith("img.fits.gz") and p.expmap.endswith("expmap.fits.gz")
    assert p.filter == "Thin1" and p.date_obs == "2004-06-17T10:39:07"
    assert (p.ra_pnt, p.dec_pnt) == pytest.approx((149.59475, -11.0876388888889))
    assert len(discover_products(str(OBS), [(2.0, 10.0)])) == 1


def test_discover_errors(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        discover_products(str(tmp_path / "nope"))
    with pytest.raises(DataError, match="no exposure maps"):
        discover_products(str(tmp_path))
    with pytest.raises(DataError, match="no exposure maps.*band"):
        discover_products(str(OBS), [(0.2, 12.0)])


def test_read_image_has_celestial_wcs_and_pixel_scale(products):
    img = read_image(products[0].expmap)
    assert img.data.shape == (512, 512)
    assert img.pixel_arcsec == pytest.approx(4.35, abs=1e-6)


def test_read_image_rejects_tables_and_garbage(tmp_path):
    bad = tmp_path / "x_expmap.fits"
    bad.write_bytes(b"not a fits file" * 200)
    with pytest.raises(DataError, match="cannot read FITS image"):
        read_image(str(bad))
    tab = tmp_path / "t.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("A", "E", array=[1.0])])]).writeto(tab)
    with pytest.raises(DataError, match="no 2-D image"):
        read_image(str(tab))


@pytest.mark.parametrize(
    "line,ra,dec,name",
    [
        ("149.5 -11.0 gap", 149.5, -11.0, "gap"),
        ("149.5,-11.0", 149.5, -11.0, "1"),
        ("09:58:00.0 -11:00:00 src A", 149.5, -11.0, "src A"),
        ("09 58 00.0 -11 00 00", 149.5, -11.0, "1"),
        ("09 58 21.6 +11 05 24 n", 149.59, 11.09, "n"),
        ("0 0 0 -0 30 0", 0.0, -0.5, "1"),
    ],
)
def test_parse_positions_formats(line, ra, dec, name):
    r, d, n = parse_positions([line])
    assert r[0] == pytest.approx(ra, abs=1e-9) and d[0] == pytest.approx(dec, abs=1e-9) and n == [name]


def test_parse_positions_skips_comments_and_reports_bad_lines(tmp_path):
    r, d, n = parse_positions(["# header", "", "10 20 a  # note", "11 -21"])
    assert list(r) == [10, 11] and n == ["a", "4"]
    with pytest.raises(DataError, match="line 2: cannot read a position"):
        parse_positions(["10 20", "hello world"])
    with pytest.raises(DataError, match="line 1: position out of range"):
        parse_positions(["400 20"])
    with pytest.raises(DataError, match="line 1: bad sexagesimal"):
        parse_positions(["25:99:00 10:00:00"])
    with pytest.raises(DataError, match="no positions"):
        parse_positions(["# nothing"])
    with pytest.raises(DataError, match="cannot read"):
        read_position_list(str(tmp_path / "missing.txt"))


# -- maps on the image grid ------------------------------------------------------------------


def test_exposure_at_position_equals_the_fits_pixel(pmaps):
    for m in pmaps:
        with fits.open(m.product.expmap) as h:
            data = h[0].data
            w = WCS(h[0].header)
        row, col = w.world_to_array_index(SkyCoord(CENTRE[0], CENTRE[1], unit="deg"))
        r, c, inside = m.pixels([CENTRE[0]], [CENTRE[1]])
        assert inside[0] and (r[0], c[0]) == (row, col)
        assert m.exposure[r[0], c[0]] == pytest.approx(float(data[row, col]))


def test_aperture_counts_equal_a_direct_sum_of_the_counts_image(pmaps):
    m = next(
        m
        for m in pmaps
        if m.product.instrument == "PN" and m.product.obs_id == "0201903501" and m.product.band == (0.5, 2.0)
    )
    with fits.open(m.product.image) as h:
        counts = h[0].data
        w = WCS(h[0].header)
    r, c, _ = m.pixels([CENTRE[0]], [CENTRE[1]])
    centre = w.pixel_to_world(c[0], r[0])
    yy, xx = np.mgrid[0:512, 0:512]
    sep = w.pixel_to_world(xx.ravel(), yy.ravel()).separation(centre).arcsec.reshape(512, 512)
    direct = counts[sep <= 30.0 + 0.01].sum()  # pixel centres inside 30"
    assert m.ap_counts[r[0], c[0]] == pytest.approx(direct, abs=0.5)
    assert m.radius_arcsec == pytest.approx(30.0, rel=0.02)  # same area as the 30" disc


def test_chip_gap_position_has_zero_mos2_exposure_but_pn_and_mos1(pmaps):
    expo = {}
    for m in pmaps:
        if m.product.obs_id == "0201903501" and m.product.band == (0.5, 2.0):
            r, c, inside = m.pixels([GAP[0]], [GAP[1]])
            assert inside[0]
            expo[m.product.instrument] = m.exposure[r[0], c[0]]
    assert expo["M2"] == 0.0 and expo["M1"] > 5000 and expo["PN"] > 2000


def test_annulus_background_close_to_a_direct_source_free_annulus(pmaps):
    m = next(m for m in pmaps if m.product.instrument == "M1" and m.product.obs_id == "0201903501")
    with fits.open(m.product.image) as h:
        counts = h[0].data
    r, c, _ = m.pixels([GAP[0]], [GAP[1]])  # 7.7' off-axis, away from the cluster
    y, x = np.mgrid[0:512, 0:512]
    rr = np.hypot(y - r[0], x - c[0]) * m.pixel_arcsec
    ann = (rr >= 60) & (rr <= 120) & (m.exposure > 0)
    rate = counts[ann].sum() / m.exposure[ann].sum()
    disc = rr <= 30
    expected = rate * m.exposure[disc].sum()
    # source masking can only lower the estimate; here it changes it by less than 30 %
    assert 0.7 * expected < m.ap_bkg[r[0], c[0]] <= expected * 1.0001


def test_disc_kernel_area():
    k = disc_kernel(30 / 4.35)
    assert abs(k.sum() - np.pi * (30 / 4.35) ** 2) / k.sum() < 0.05
    ring = disc_kernel(10, 5)
    assert ring[10, 10] == 0 and ring[10, 0] == 1


# -- evaluation at positions -----------------------------------------------------------------


def test_evaluate_positions_rows_coverage_and_numbers(pmaps):
    s = Settings()
    pos, cols = evaluate_positions([GAP[0], CENTRE[0], 10.0], [GAP[1], CENTRE[1], 5.0], pmaps, s)
    t = _table(pos, cols)
    gap = _rows(t, POS=0, BAND="0.5-2")
    assert len(gap) == 6 + 2 + 1  # 2 obs x 3 cameras, 2 EPIC rows, ALL
    m2 = _rows(t, POS=0, BAND="0.5-2", OBS_ID="0201903501", INSTRUMENT="M2")[0]
    assert not m2["COVERED"] and "CHIP_GAP" in m2["FLAG"] and np.isnan(m2["THRESH_FLUX"])
    m1 = _rows(t, POS=0, BAND="0.5-2", OBS_ID="0201903501", INSTRUMENT="M1")[0]
    assert m1["COVERED"] and m1["FLAG"] == "BKG_ANNULUS"
    # the numbers follow the formulas from the row's own columns
    n_thr = threshold_counts(m1["BKG_COUNTS"], 10.0)
    assert m1["THRESH_RATE"] == pytest.approx((n_thr - m1["BKG_COUNTS"]) / (m1["EEF"] * m1["EXPOSURE"]), rel=1e-5)
    assert m1["THRESH_FLUX"] == pytest.approx(m1["THRESH_RATE"] / (m1["ECF"] * 1e11), rel=1e-5)
    assert m1["ECF"] == pytest.approx(1.9474, rel=1e-4)  # ecfxa M1 thin 0.5-2 keV
    s_up = kbn_upper_limit(m1["COUNTS"], m1["BKG_COUNTS"], SIGMA_CL[2])
    assert m1["UL_RATE_2S"] == pytest.approx(s_up / (m1["EEF"] * m1["EXPOSURE"]), rel=1e-5)
    assert m1["FLUX_UL"] == m1["UL_FLUX_3S"]  # default 3 sigma, as STONKS (issue 19; before: 2S)
    assert m1["UL_FLUX_1S"] < m1["UL_FLUX_2S"] < m1["UL_FLUX_3S"]
    assert m1["OFFAXIS"] == pytest.approx(offaxis_arcmin(GAP[0], GAP[1], 149.59475, -11.0876388888889))
    assert m1["MJD"] == pytest.approx(53173.5287, abs=1e-3)  # 2004-06-17 mid-exposure
    # the far position: one not-covered row per band, never an error
    far = _rows(t, POS=2)
    assert [r["OBS_ID"] for r in far] == ["ALL", "ALL"] and not any(r["COVERED"] for r in far)
    assert all("NOT_COVERED" in r["FLAG"] for r in far)


def test_stacked_rows_sum_the_covered_cameras(pmaps):
    pos, cols = evaluate_positions([GAP[0]], [GAP[1]], pmaps, Settings())
    t = _table(pos, cols)
    cams = [r for r in _rows(t, BAND="0.5-2", OBS_ID="0201903501") if r["INSTRUMENT"] != "EP"]
    ep = _rows(t, BAND="0.5-2", OBS_ID="0201903501", INSTRUMENT="EP")[0]
    cov = [r for r in cams if r["COVERED"]]
    assert len(cov) == 2  # MOS2 is in its gap
    n = sum(r["COUNTS"] for r in cov)
    b = sum(r["BKG_COUNTS"] for r in cov)
    resp = sum(r["EEF"] * r["EXPOSURE"] * r["ECF"] * 1e11 for r in cov)
    assert ep["COUNTS"] == n and ep["BKG_COUNTS"] == pytest.approx(b, rel=1e-5)
    assert ep["FLUX_UL"] == pytest.approx(kbn_upper_limit(n, b, SIGMA_CL[3]) / resp, rel=1e-5)
    assert ep["THRESH_FLUX"] == pytest.approx((threshold_counts(b, 10.0) - b) / resp, rel=1e-5)
    assert ep["THRESH_FLUX"] < min(r["THRESH_FLUX"] for r in cov)  # cameras together see fainter
    every = _rows(t, BAND="0.5-2", OBS_ID="ALL")[0]
    rows = _rows(t, BAND="0.5-2")
    assert every["THRESH_FLUX"] == pytest.approx(np.nanmin([r["THRESH_FLUX"] for r in rows if r["OBS_ID"] != "ALL"]))
    assert every["FLUX_UL"] < ep["FLUX_UL"]  # more exposure, tighter limit at this empty position
    assert np.isnan(every["MJD"])


def test_settings_change_the_limits_as_expected(pmaps):
    base = _table(*evaluate_positions([GAP[0]], [GAP[1]], pmaps, Settings()))
    other = _table(
        *evaluate_positions(
            [GAP[0]], [GAP[1]], pmaps, Settings(likelihood=6.0, cl=0.9, integer_threshold=True, ecf=(("*", 2.0),))
        )
    )
    b = _rows(base, BAND="0.5-2", OBS_ID="0201903501", INSTRUMENT="M1")[0]
    o = _rows(other, BAND="0.5-2", OBS_ID="0201903501", INSTRUMENT="M1")[0]
    assert o["ECF"] == 2.0 and o["THRESH_RATE"] < b["THRESH_RATE"]
    assert o["FLUX_UL"] == pytest.approx(o["UL_FLUX_CL"]) and "UL_FLUX_CL" not in b
    n_int = threshold_counts(o["BKG_COUNTS"], 6.0, integer=True)
    assert n_int == np.floor(n_int)
    assert o["THRESH_RATE"] == pytest.approx((n_int - o["BKG_COUNTS"]) / (o["EEF"] * o["EXPOSURE"]), rel=1e-5)


def test_bkgmap_is_used_when_supplied(products, tmp_path):
    p = next(p for p in products if p.obs_id == "0201903501" and p.instrument == "PN" and p.band == (0.5, 2.0))
    exp = read_image(p.expmap)
    bkg = type(exp)(np.where(exp.data > 0, 0.01, 0.0), exp.wcs, exp.header, "synthetic")  # 0.01 counts/pixel
    m = build_maps(p, exp, read_image(p.image), bkg)
    pos, cols = evaluate_positions([GAP[0]], [GAP[1]], [m], Settings())
    row = _rows(_table(pos, cols), INSTRUMENT="PN")[0]
    assert "BKG_MAP" in row["FLAG"]
    inside = m.ap_zero[m.pixels([GAP[0]], [GAP[1]])[0][0], m.pixels([GAP[0]], [GAP[1]])[1][0]]
    assert row["BKG_COUNTS"] == pytest.approx(0.01 * (disc_kernel(30 / 4.35).sum() - inside), rel=1e-4)


def test_mismatched_grids_are_refused(products):
    p = products[0]
    exp = read_image(p.expmap)
    small = type(exp)(exp.data[:100, :100], exp.wcs, exp.header, "small.fits")
    with pytest.raises(DataError, match="must share a grid"):
        build_maps(p, exp, small)


# -- HEALPix ---------------------------------------------------------------------------------


def test_healpix_map_covers_the_exposed_area_and_takes_the_best_threshold(pmaps):
    one = [m for m in pmaps if m.product.obs_id == "0201903501" and m.product.band == (0.5, 2.0)]
    order = 13
    result = hmaps.sensitivity_map(one, order)
    cells, vals = result["0.5-2"]
    assert np.all(np.diff(cells) > 0) and vals.dtype == np.float32 and np.all(vals > 0)
    cell_area = 4 * np.pi * (180 / np.pi * 3600) ** 2 / (12 * 4**order)  # arcsec^2
    exposed = max((m.exposure > 0).sum() for m in one) * 4.35**2  # PN and MOS cover different chips
    union = np.logical_or.reduce([m.exposure > 0 for m in one]).sum() * 4.35**2
    assert exposed * 0.97 < cells.size * cell_area < union * 1.03
    # a cell's value is the minimum over the cameras' threshold images at its centre
    import healpy as hp

    k = cells.size // 2
    ra, dec = hp.pix2ang(2**order, cells[k], nest=True, lonlat=True)
    per_cam = []
    for m in one:
        r, c, inside = m.pixels([ra], [dec])
        per_cam.append(hmaps.threshold_image(m, Settings())[r[0], c[0]])
    assert vals[k] == pytest.approx(np.nanmin(per_cam), rel=1e-6)


def test_moc_is_normalised_and_expands_back():
    order = 6
    cells = np.arange(64, 128)  # the 64 order-6 descendants of order-3 cell 1
    cells = np.concatenate([cells, [5000, 5001]])
    uniq = hmaps.moc_uniq(cells, order)
    orders = (np.log2(uniq // 4) / 2).astype(int)
    back = []
    for u, o in zip(uniq, orders, strict=True):
        ipix = u - 4 * 4**o
        back.append(np.arange(ipix * 4 ** (order - o), (ipix + 1) * 4 ** (order - o)))
    np.testing.assert_array_equal(np.sort(np.concatenate(back)), np.sort(cells))
    assert len(uniq) == 3  # one order-3 cell + two order-6 cells


def test_threshold_image_is_nan_outside_coverage_and_follows_the_formula(pmaps):
    from xmmtools.sensitivity import psf

    m = next(m for m in pmaps if m.product.instrument == "M1" and m.product.obs_id == "0201903501")
    img = hmaps.threshold_image(m, Settings())
    assert np.all(np.isnan(img[m.exposure <= 0]))
    ok = np.isfinite(img)
    assert ok.sum() > 0.9 * (m.exposure > 0).sum()
    r, c, _ = m.pixels([GAP[0]], [GAP[1]])
    b = m.ap_bkg[r[0], c[0]]
    eef = psf.eef(
        "M1",
        m.radius_arcsec,
        np.sqrt(0.5 * 2.0),
        offaxis_arcmin(*m.wcs.celestial.wcs_pix2world([c[0]], [r[0]], 0), 149.59475, -11.0876388888889),
    )
    expected = (threshold_counts(b, 10.0) - b) / (eef * m.exposure[r[0], c[0]]) / (1.9474e11)
    assert img[r[0], c[0]] == pytest.approx(float(expected[0]), rel=1e-5)


def test_detection_mask_marks_positions_masked(products):
    p = next(p for p in products if p.obs_id == "0201903501" and p.instrument == "M1" and p.band == (0.5, 2.0))
    exp = read_image(p.expmap)
    probe = build_maps(p, exp)
    r, c, _ = probe.pixels([GAP[0]], [GAP[1]])
    mask = np.ones_like(exp.data)
    mask[r[0] - 3 : r[0] + 4, c[0] - 3 : c[0] + 4] = 0  # a masked patch around the position
    m = build_maps(p, exp, read_image(p.image), mask=type(exp)(mask, exp.wcs, exp.header, "mask"))
    pos, cols = evaluate_positions([GAP[0], CENTRE[0]], [GAP[1], CENTRE[1]], [m], Settings())
    t = _table(pos, cols)
    masked = _rows(t, POS=0, INSTRUMENT="M1")[0]
    assert not masked["COVERED"] and "MASKED" in masked["FLAG"] and masked["EXPOSURE"] > 0
    assert _rows(t, POS=1, INSTRUMENT="M1")[0]["COVERED"]
    # without counts image: exposure and coverage, but no background, threshold or limit
    bare = _table(*evaluate_positions([CENTRE[0]], [CENTRE[1]], [probe], Settings()))
    row = _rows(bare, INSTRUMENT="M1")[0]
    assert row["COVERED"] and "NO_COUNTS_IMAGE" in row["FLAG"] and np.isnan(row["FLUX_UL"])
