"""FLIX-style evaluation of sky positions on observation products (Carrera et al. 2007).

For every position and every product (observation x camera x band) whose image contains
it, one row: exposure, aperture counts and background, EEF, coverage, the detection
threshold (:mod:`.flix`), the KBN upper limits (:mod:`.upper_limits`) at 1/2/3 sigma and at
the chosen confidence level, and the encircled flux.  Stacked rows (INSTRUMENT 'EP') add
up the covered cameras: the upper limit on the source flux F from the summed counts and
background, S_up(sum N_i, sum B_i) / sum_i (EEF_i t_i ECF_i 1e11) (a common flux F gives
F EEF_i t_i ECF_i 1e11 expected counts in product i):
* per observation and band (OBS_ID = the observation): the cameras detecting together, with
  the combined threshold (N(sum B_i; L) - sum B_i) / sum_i (EEF_i t_i ECF_i 1e11) -- the rows
  the long-term variability stage wants (one epoch per observation);
* per position and band, OBS_ID 'ALL': every covering observation and camera, with the best
  (lowest) threshold of any row.  Positions outside every product get only this row, with
  COVERED false.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from xmmtools.sensitivity import psf
from xmmtools.sensitivity.ecf import band_ecf, band_label
from xmmtools.sensitivity.flix import counts_to_rate, rate_to_flux, threshold_counts
from xmmtools.sensitivity.products import ProductMaps
from xmmtools.sensitivity.upper_limits import SIGMA_CL, upper_limit
from xmmtools.tables.model import NewColumn

#: FLAG tokens (bit values) written as a comma-separated string.
FLAGS = {
    "CHIP_GAP": 1,  # zero exposure inside the field of view (CCD gap, bad column)
    "OUTSIDE_FIELD": 2,  # zero exposure beyond the field radius
    "MASKED": 4,  # excluded by a detection mask
    "PARTIAL_APERTURE": 8,  # covered, but the aperture includes zero-exposure pixels
    "BKG_ANNULUS": 16,  # background from the counts image in an annulus (no background map)
    "BKG_MAP": 32,  # background from a supplied background map
    "NO_COUNTS_IMAGE": 64,  # no counts image: no upper limit, no encircled flux
    "NO_BACKGROUND": 128,  # the annulus had no exposure: background unknown
    "COMBINED": 256,  # a per-position stack of all covering products
    "NOT_COVERED": 512,  # no product covers the position
}


@dataclass(frozen=True)
class Settings:
    """Parameters of the evaluation (units: arcsec, arcmin, cm^-2)."""

    likelihood: float = 10.0
    # FLUX_UL at 3 sigma (0.9973), the level of the upper limits STONKS compares with
    # (Quintin et al. 2024, A&A 687, A250; RapidXMM band8_ul_sigma3, Ruiz et al. 2022)
    cl: float = SIGMA_CL[3]
    radius_arcsec: float = 30.0
    integer_threshold: bool = False
    ul_method: str = "kbn"
    gamma: float = 1.7
    nh: float = 3e20
    fov_arcmin: float = 15.0
    ecf: tuple[tuple[str, float], ...] = ()  # explicit ECFs per instrument ('*' = all)

    def ecf_for(self, instrument: str, band: tuple[float, float], filter: str) -> float:
        given = dict(self.ecf)
        if instrument in given:
            return given[instrument]
        if "*" in given:
            return given["*"]
        return band_ecf(instrument, band, filter or "thin", self.gamma, self.nh)


def offaxis_arcmin(ra, dec, ra0: float, dec0: float) -> np.ndarray:
    """Angular distance (arcmin) from (ra0, dec0), haversine formula (all in degrees)."""
    r1, d1, r0, d0 = (np.radians(np.asarray(v, dtype=float)) for v in (ra, dec, ra0, dec0))
    h = np.sin((d1 - d0) / 2) ** 2 + np.cos(d1) * np.cos(d0) * np.sin((r1 - r0) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))) * 60.0


def mjd_mid(date_obs: str, date_end: str) -> float:
    """Mid-observation MJD from DATE-OBS/DATE-END (NaN when absent)."""
    from astropy.time import Time

    try:
        t0 = Time(date_obs, format="isot", scale="tt")
    except ValueError:
        return float("nan")
    try:
        return float((t0.mjd + Time(date_end, format="isot", scale="tt").mjd) / 2)
    except ValueError:
        return float(t0.mjd)


def evaluate_positions(
    ra, dec, maps: list[ProductMaps], settings: Settings = Settings()
) -> tuple[np.ndarray, list[NewColumn]]:
    """Rows for every (position, product) pair on the product's image, the per-observation
    EPIC rows and the per-position 'ALL' rows (see the module docstring).

    Returns the position index of each row (into ``ra``/``dec``) and the new columns.
    """
    ra = np.asarray(ra, dtype=float)
    dec = np.asarray(dec, dtype=float)
    npos = ra.size
    bands = sorted({m.product.band for m in maps})
    observations = sorted({m.product.obs_id for m in maps})
    groups = [_Group.of_product(m.product) for m in maps]
    obs_group = {}
    for obs in observations:
        obs_group[obs] = len(groups)
        groups.append(_Group.of_observation([m.product for m in maps if m.product.obs_id == obs]))
    all_group = len(groups)
    groups.append(_Group("ALL", "EP", "", "", float("nan")))

    parts: list[dict] = []
    per_obs = {(b, o): _Stack(npos) for b in bands for o in observations}
    total = {b: _Stack(npos) for b in bands}
    for i, m in enumerate(maps):
        part = _product_rows(ra, dec, m, settings)
        if part is None:
            continue
        _label(part, i, bands.index(m.product.band), 0)
        per_obs[(m.product.band, m.product.obs_id)].add(part)
        total[m.product.band].add(part)
        parts.append(part)
    for (band, obs), st in per_obs.items():
        first = next(m.product for m in maps if m.product.obs_id == obs)
        part = _stack_rows(st, settings, combined_threshold=True)
        keep = st.seen
        part = {k: v[keep] for k, v in part.items()}
        part["OFFAXIS"] = offaxis_arcmin(ra[keep], dec[keep], first.ra_pnt, first.dec_pnt)
        _label(part, obs_group[obs], bands.index(band), 1)
        total[band].improve(part)
        parts.append(part)
    for bi in range(max(len(bands), 1)):  # one 'ALL' row per position and band (one even without maps)
        part = _stack_rows(total[bands[bi]] if bands else _Stack(npos), settings, combined_threshold=False)
        _label(part, all_group, bi, 2)
        parts.append(part)
    key = np.concatenate(
        [(p["_pos"].astype(np.int64) * max(len(bands), 1) + p["_band"]) * 3 + p["_kind"] for p in parts]
    )
    order = np.argsort(key, kind="stable")  # by position, band, then cameras / EPIC / ALL
    rows = {k: np.concatenate([_compact(k, p[k]) for p in parts])[order] for k in parts[0]}
    return rows["_pos"], _columns(rows, groups, bands, settings)


def _compact(name: str, values: np.ndarray) -> np.ndarray:
    """float32 for the columns written as float32 (halves the memory traffic of large chunks)."""
    return values.astype(np.float32) if name in _FLOAT32 else values


@dataclass(frozen=True)
class _Group:
    """What the rows of one product, one observation's EPIC stack or the total stack share."""

    obs_id: str
    instrument: str
    filter: str
    date_obs: str
    mjd: float

    @classmethod
    def of_product(cls, p) -> _Group:
        return cls(p.obs_id, p.instrument, p.filter, p.date_obs, mjd_mid(p.date_obs, p.date_end))

    @classmethod
    def of_observation(cls, products) -> _Group:
        filters = sorted({p.filter for p in products})
        mjds = [mjd_mid(p.date_obs, p.date_end) for p in products]
        return cls(
            products[0].obs_id,
            "EP",
            filters[0] if len(filters) == 1 else "/".join(filters),
            min(p.date_obs for p in products),
            float(np.nanmean(mjds)) if np.isfinite(mjds).any() else float("nan"),
        )


def _label(part: dict, group: int, band: int, kind: int) -> None:
    n = part["_pos"].size
    part["_product"] = np.full(n, group, np.int32)
    part["_band"] = np.full(n, band, np.int32)
    part["_kind"] = np.full(n, kind, np.int8)


# ----------------------------------------------------------------------------------------


def _product_rows(ra, dec, m: ProductMaps, s: Settings) -> dict | None:
    p = m.product
    r, c, inside = m.pixels(ra, dec)
    pos = np.flatnonzero(inside)
    if pos.size == 0:
        return None
    r, c = r[pos], c[pos]
    off = offaxis_arcmin(ra[pos], dec[pos], p.ra_pnt, p.dec_pnt)
    t = m.exposure[r, c]
    covered = (t > 0) & m.usable[r, c]
    flag = np.zeros(pos.size, dtype=np.int64)
    flag[(t <= 0) & (off <= s.fov_arcmin)] |= FLAGS["CHIP_GAP"]
    flag[(t <= 0) & (off > s.fov_arcmin)] |= FLAGS["OUTSIDE_FIELD"]
    flag[(t > 0) & ~m.usable[r, c]] |= FLAGS["MASKED"]
    flag[covered & (m.ap_zero[r, c] > 0)] |= FLAGS["PARTIAL_APERTURE"]
    flag |= {"annulus": FLAGS["BKG_ANNULUS"], "map": FLAGS["BKG_MAP"], "none": FLAGS["NO_COUNTS_IMAGE"]}[m.bkg_method]
    nan = np.full(pos.size, np.nan)
    n = m.ap_counts[r, c] if m.ap_counts is not None else nan
    b = m.ap_bkg[r, c] if m.ap_bkg is not None else nan
    flag[covered & ~np.isfinite(b) & (m.bkg_method != "none")] |= FLAGS["NO_BACKGROUND"]
    n = np.where(covered, n, np.nan)
    b = np.where(covered, b, np.nan)
    t_ok = np.where(covered, t, 0.0)
    energy = psf.band_energy(*p.band)
    eef = psf.eef(p.instrument, m.radius_arcsec, energy, off)
    ecf = s.ecf_for(p.instrument, p.band, p.filter)
    out = {
        "_pos": pos,
        "OFFAXIS": off,
        "EXPOSURE": t,
        "COUNTS": n,
        "BKG_COUNTS": b,
        "EEF": eef,
        "ECF": np.full(pos.size, ecf),
        "COVERED": covered,
        "FLAG": flag,
    }
    thr = threshold_counts(b, s.likelihood, integer=s.integer_threshold)
    out["THRESH_RATE"] = counts_to_rate(thr - b, eef, t_ok)
    out["THRESH_FLUX"] = rate_to_flux(out["THRESH_RATE"], ecf)
    for key, cl in _levels(s):
        out[f"UL_RATE_{key}"] = counts_to_rate(upper_limit(n, b, cl, s.ul_method), eef, t_ok)
        out[f"UL_FLUX_{key}"] = rate_to_flux(out[f"UL_RATE_{key}"], ecf)
    enc_rate = counts_to_rate(n - b, eef, t_ok)
    out["ENC_FLUX"] = rate_to_flux(enc_rate, ecf)
    out["ENC_FLUX_ERR"] = rate_to_flux(counts_to_rate(1.0 + np.sqrt(n + 0.75), eef, t_ok), ecf)
    out["_response"] = np.where(covered, eef * t_ok * ecf * 1e11, 0.0)  # counts per (erg/cm^2)
    return out


def _levels(s: Settings) -> list[tuple[str, float]]:
    levels = [(f"{k}S", cl) for k, cl in SIGMA_CL.items()]
    match = [k for k, cl in levels if abs(cl - s.cl) < 1e-4]
    return levels + ([] if match else [("CL", s.cl)])


class _Stack:
    """Per-position sums over a set of products of one band (one observation, or all)."""

    def __init__(self, npos: int):
        self.n = np.zeros(npos)
        self.b = np.zeros(npos)
        self.response = np.zeros(npos)
        self.exposure = np.zeros(npos)
        self.best = np.full(npos, np.inf)
        self.ncov = np.zeros(npos, dtype=np.int64)
        self.seen = np.zeros(npos, dtype=bool)

    def add(self, part: dict) -> None:
        self.seen[part["_pos"]] = True
        cov = part["COVERED"]
        pos = part["_pos"][cov]
        np.add.at(self.n, pos, part["COUNTS"][cov])
        np.add.at(self.b, pos, part["BKG_COUNTS"][cov])
        np.add.at(self.response, pos, part["_response"][cov])
        np.add.at(self.exposure, pos, part["EXPOSURE"][cov])
        np.add.at(self.ncov, pos, 1)
        self.improve(part)

    def improve(self, part: dict) -> None:
        """Lower the best threshold where ``part`` has a lower one."""
        cov = part["COVERED"]
        np.fmin.at(self.best, part["_pos"][cov], part["THRESH_FLUX"][cov])


def _stack_rows(st: _Stack, s: Settings, *, combined_threshold: bool) -> dict:
    """Rows of a stack: KBN limit S_up(sum N, sum B) / sum(EEF t ECF 1e11); the threshold is
    either the combined one, (N(sum B; L) - sum B) / sum(EEF t ECF 1e11) -- the cameras of one
    observation detecting together -- or the best single threshold."""
    npos = st.n.size
    covered = st.ncov > 0
    nan = np.full(npos, np.nan)
    n = np.where(covered, st.n, np.nan)
    b = np.where(covered, st.b, np.nan)
    resp = np.where(covered, st.response, np.nan)
    flag = np.where(covered, FLAGS["COMBINED"], FLAGS["COMBINED"] | FLAGS["NOT_COVERED"]).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if combined_threshold:
            thresh = (threshold_counts(b, s.likelihood, integer=s.integer_threshold) - b) / resp
        else:
            thresh = np.where(np.isfinite(st.best), st.best, np.nan)
        out = {
            "_pos": np.arange(npos),
            "OFFAXIS": nan,
            "EXPOSURE": np.where(covered, st.exposure, 0.0),
            "COUNTS": n,
            "BKG_COUNTS": b,
            "EEF": nan,
            "ECF": nan,
            "COVERED": covered,
            "FLAG": flag,
            "THRESH_RATE": nan,
            "THRESH_FLUX": thresh,
        }
        for key, cl in _levels(s):
            out[f"UL_RATE_{key}"] = nan
            out[f"UL_FLUX_{key}"] = upper_limit(n, b, cl, s.ul_method) / resp
        out["ENC_FLUX"] = (n - b) / resp
        out["ENC_FLUX_ERR"] = (1.0 + np.sqrt(n + 0.75)) / resp
    out["_response"] = np.where(covered, st.response, 0.0)
    return out


_DESCRIPTIONS = [
    ("OBS_ID", "", "XMM-Newton observation; 'ALL' for the stack of all covering observations and cameras"),
    ("INSTRUMENT", "", "EPIC camera (PN, M1, M2); EP for the stack of the cameras (of one observation, or ALL)"),
    ("FILTER", "", "EPIC filter of the observation"),
    ("DATE_OBS", "", "start of the exposure (DATE-OBS, TT)"),
    ("MJD", "d", "mid-time of the exposure (MJD, TT); NaN for the ALL stack"),
    ("BAND", "", "energy band: 4XMM band number or 'lo-hi' in keV"),
    ("OFFAXIS", "arcmin", "off-axis angle from the pointing direction"),
    ("EXPOSURE", "s", "vignetted exposure at the position (sum over products for the stack)"),
    ("COUNTS", "count", "counts in the aperture"),
    ("BKG_COUNTS", "count", "expected background counts in the aperture"),
    ("EEF", "", "encircled-energy fraction of the aperture (King PSF, Ghizzardi 2001/2002)"),
    ("ECF", "10**11 count cm2 erg-1", "energy conversion factor used"),
    ("COVERED", "", "the position has exposure (not a chip gap, outside the field or masked)"),
    ("THRESH_RATE", "count/s", "rate of a source detected at the likelihood threshold (PSF-corrected)"),
    (
        "THRESH_FLUX",
        "erg/cm2/s",
        "flux of a source detected at the likelihood threshold (cameras combined for an "
        "observation's EP row, best of all rows for ALL)",
    ),
    ("UL_RATE_1S", "count/s", "KBN Bayesian upper limit on the rate, 68.27 %"),
    ("UL_RATE_2S", "count/s", "KBN Bayesian upper limit on the rate, 95.45 %"),
    ("UL_RATE_3S", "count/s", "KBN Bayesian upper limit on the rate, 99.73 %"),
    ("UL_RATE_CL", "count/s", "KBN Bayesian upper limit on the rate at the chosen confidence level"),
    ("UL_FLUX_1S", "erg/cm2/s", "KBN Bayesian upper limit on the flux, 68.27 %"),
    ("UL_FLUX_2S", "erg/cm2/s", "KBN Bayesian upper limit on the flux, 95.45 %"),
    ("UL_FLUX_3S", "erg/cm2/s", "KBN Bayesian upper limit on the flux, 99.73 %"),
    ("UL_FLUX_CL", "erg/cm2/s", "KBN Bayesian upper limit on the flux at the chosen confidence level"),
    ("FLUX_UL", "erg/cm2/s", "flux upper limit at the chosen confidence level (for long-term variability)"),
    ("ENC_FLUX", "erg/cm2/s", "encircled flux: (counts - background) / (EEF t ECF), PSF-corrected"),
    ("ENC_FLUX_ERR", "erg/cm2/s", "1-sigma error of ENC_FLUX, Gehrels (1986) eq. 7 on the counts"),
    ("FLAG", "", "comma-separated: " + ", ".join(FLAGS)),
]
DESCRIPTIONS = {name: (unit, text) for name, unit, text in _DESCRIPTIONS}
_FLOAT32 = {
    "OFFAXIS",
    "EXPOSURE",
    "COUNTS",
    "BKG_COUNTS",
    "EEF",
    "ECF",
    "THRESH_RATE",
    "THRESH_FLUX",
    "UL_RATE_1S",
    "UL_RATE_2S",
    "UL_RATE_3S",
    "UL_RATE_CL",
    "UL_FLUX_1S",
    "UL_FLUX_2S",
    "UL_FLUX_3S",
    "UL_FLUX_CL",
    "FLUX_UL",
    "ENC_FLUX",
    "ENC_FLUX_ERR",
}


def _columns(rows: dict, groups: list[_Group], bands: list, s: Settings) -> list[NewColumn]:
    prod_idx = rows["_product"]  # index into groups
    band_idx = rows["_band"]

    def dict_col(attr: str):
        return _dictionary(np.asarray([getattr(g, attr) for g in groups], dtype=str), prod_idx)

    labels = np.asarray([band_label(b) for b in bands] or [""], dtype=str)
    cols = [
        ("OBS_ID", dict_col("obs_id")),
        ("INSTRUMENT", dict_col("instrument")),
        ("FILTER", dict_col("filter")),
        ("DATE_OBS", dict_col("date_obs")),
        ("MJD", np.array([g.mjd for g in groups])[prod_idx]),
        ("BAND", _dictionary(labels, band_idx)),
    ]
    for name in ("OFFAXIS", "EXPOSURE", "COUNTS", "BKG_COUNTS", "EEF", "ECF", "COVERED", "THRESH_RATE", "THRESH_FLUX"):
        cols.append((name, rows[name]))
    levels = _levels(s)
    for kind in ("RATE", "FLUX"):
        cols += [(f"UL_{kind}_{k}", rows[f"UL_{kind}_{k}"]) for k, _ in levels]
    chosen = next(k for k, cl in levels if abs(cl - s.cl) < 1e-4)
    cols.append(("FLUX_UL", rows[f"UL_FLUX_{chosen}"]))
    cols += [("ENC_FLUX", rows["ENC_FLUX"]), ("ENC_FLUX_ERR", rows["ENC_FLUX_ERR"])]
    codes, inverse = np.unique(rows["FLAG"], return_inverse=True)
    words = [",".join(k for k, v in FLAGS.items() if int(code) & v) for code in codes]
    cols.append(("FLAG", _dictionary(np.asarray(words, dtype=str), inverse.ravel())))
    out = []
    for name, values in cols:
        unit, text = DESCRIPTIONS[name]
        if isinstance(values, np.ndarray) and values.dtype.kind == "f":
            values = values.astype(np.float32 if name in _FLOAT32 else np.float64)
        out.append(NewColumn(name, values, unit, text))
    return out


def _dictionary(values: np.ndarray, index: np.ndarray) -> pa.DictionaryArray:
    """``values[index]`` as a dictionary-encoded string column (compact for millions of rows)."""
    uniq, inv = np.unique(values, return_inverse=True)
    return pa.DictionaryArray.from_arrays(
        pa.array(inv.ravel()[index].astype(np.int32)), pa.array(uniq.tolist(), pa.string())
    )
