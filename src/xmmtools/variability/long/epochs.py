"""Epochs: every flux measurement of a source in the common 0.1-12 keV band (Quintin et al. 2024).

Owns the method's parameters (:class:`LongTermConfig`), the long-format light curves
(:class:`Epochs`) and the catalogue's sources (:class:`Sources`, :func:`sources_of`), built from
the input catalogue's detections (:func:`catalogue_epochs`), rows of other catalogues matched to
them (:func:`archive_epochs`, :mod:`xmmtools.variability.long.match`) and upper limits
(:func:`upper_limit_epochs`); native fluxes are divided by the band factor of
:mod:`xmmtools.variability.long.bands`.  Also the column names the stage reads
(:data:`INPUT_COLUMNS`) and the epochs output table (:func:`epochs_table`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from xmmtools.columns import detect_kind, ecf, resolve, summary_rows
from xmmtools.errors import ColumnError, DataError
from xmmtools.sky import check_coordinates, unit_vectors
from xmmtools.tables.model import field_meta, to_numpy
from xmmtools.variability.long.bands import DEFAULT_MODEL, PowerLaw, factors_for, hardness_range, lookup_catalogue
from xmmtools.variability.long.match import nearest_within, stonks_match
from xmmtools.variability.long.statistics import group_extreme, take


@dataclass(frozen=True)
class LongTermConfig:
    """Parameters of the method (defaults: STONKS)."""

    threshold: float = 5.0  # pessimistic ratio above which a source is variable
    model: PowerLaw = DEFAULT_MODEL  # spectrum of the band conversion
    gamma_range: tuple[float, float] = (0.5, 2.5)  # spectral-shape warning range
    radius: float = 20.0  # arcsec, matching search radius
    score_ratio: float = 5.0  # best/next positional score for an unambiguous match


# =========================================================================================
# 1. Epochs
# =========================================================================================


@dataclass
class Epochs:
    """Long-format light curves: one row per flux measurement or upper limit."""

    source: np.ndarray  # source index (into the catalogue's sources)
    mjd: np.ndarray  # d
    flux: np.ndarray  # erg/cm^2/s, 0.1-12 keV (upper limit: its value)
    err: np.ndarray  # erg/cm^2/s, 1 sigma, 0.1-12 keV (NaN: unknown)
    is_ul: np.ndarray
    catalogue: np.ndarray  # object array of catalogue names
    origin: np.ndarray  # object array: 'catalogue' | 'archive' | 'upper-limit'
    factor: np.ndarray  # band factor used (F_common = F_native / factor)
    hr: np.ndarray  # hardness ratio (NaN if unknown)
    spectral_warning: np.ndarray
    row: np.ndarray  # row in the input catalogue (-1 for archive / upper-limit rows)
    ambiguous: np.ndarray  # came from an ambiguous archival match
    obs: np.ndarray  # object array: XMM-Newton OBS_ID (10 digits) or "" when unknown

    def __len__(self) -> int:
        return len(self.flux)

    @staticmethod
    def concat(parts: Sequence[Epochs]) -> Epochs:
        names = [f for f in Epochs.__dataclass_fields__]
        return Epochs(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})

    def select(self, mask) -> Epochs:
        return Epochs(**{n: getattr(self, n)[mask] for n in Epochs.__dataclass_fields__})


@dataclass
class Sources:
    """The catalogue's sources: key (SRCID or name), mean position and error, row -> source."""

    key: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    poserr: np.ndarray
    of_row: np.ndarray  # source index of every catalogue row
    key_name: str = "SRCID"

    def __len__(self) -> int:
        return len(self.key)


#: canonical names looked up in every input table (4XMM names; resolve() adds aliases)
FLUX_NAMES = ("FLUX", "EP_8_FLUX", "SC_EP_8_FLUX")
UL_NAMES = ("FLUX_UL", "UL_FLUX", "UL_8_FLUX", "EP_8_FLUX_UL")
TIME_NAMES = ("MJD", "MJD_START", "MJD_STOP", "MJD_OBS", "DATE_OBS")
KEY_NAMES = ("SRCID", "IAUNAME", "NAME", "SOURCE_ID")
LABEL_NAMES = ("CATALOGUE", "CATALOG", "INSTRUMENT", "MISSION")
SOFT_BANDS, HARD_BANDS = (1, 2, 3), (4, 5)
#: every canonical column the stage may read from its input (the CLI reads only these, then
#: streams the full table to append the new columns)
INPUT_COLUMNS = (
    *KEY_NAMES,
    "RA",
    "DEC",
    "POSERR",
    "SC_RA",
    "SC_DEC",
    "SC_POSERR",
    *FLUX_NAMES,
    *(f + "_ERR" for f in FLUX_NAMES),
    "BAND",
    *LABEL_NAMES,
    *TIME_NAMES,
    "HR",
    *(f"EP_{b}_FLUX" for b in (*SOFT_BANDS, *HARD_BANDS)),
    "EP_HR3",
    "N_OBS",
    "N_CONTRIB",
    "VAR_FLAG",
    "DETID",
    "OBS_ID",
    "SRC_NUM",
    "EP_8_DET_ML",
    "PPS_SRCNUM",
    "N_EXP",
    "VAR_PROB",
    "FRATIO",
    "FLUXVAR",
)


def sources_of(table: pa.Table, user_map: Mapping[str, str] | None = None, where: str = "input catalogue") -> Sources:
    """Group catalogue rows into sources: by SRCID (4XMM detection, stacked and 5XMM tables),
    else IAUNAME/NAME, else one source per row.  Position: SC_RA/SC_DEC/SC_POSERR when present,
    else the inverse-variance weighted mean of the row positions (unit vectors).  Positions out
    of range (RA outside [0, 360], |DEC| > 90, infinite) are a one-line DataError naming
    ``where`` and the row; a null position is a source without one."""
    names = table.schema.names
    m = resolve(names, [*KEY_NAMES, "RA", "DEC", "POSERR", "SC_RA", "SC_DEC", "SC_POSERR"], user_map)
    keyname = next((k for k in KEY_NAMES if k in m), None)
    n = table.num_rows
    if keyname is None:
        keys, of_row = np.arange(n), np.arange(n)
    else:
        # a row without a key (null SRCID / name) is a source of its own, never grouped with others
        raw = to_numpy(table.column(m[keyname]), None)
        bad = _is_null(raw)
        if raw.dtype.kind == "f":
            raw = np.where(bad, -1.0 - np.arange(n), raw).astype(np.int64)
        elif raw.dtype.kind == "O":
            raw = raw.astype(str)
            raw[bad] = [f"(row {i})" for i in np.flatnonzero(bad)]
        keys, of_row = np.unique(raw, return_inverse=True)
    ns = len(keys)
    rcol, dcol, ecol = ("SC_RA", "SC_DEC", "SC_POSERR") if {"SC_RA", "SC_DEC"} <= set(m) else ("RA", "DEC", "POSERR")
    if rcol not in m or dcol not in m:
        nan = np.full(ns, np.nan)
        return Sources(keys, nan, nan.copy(), nan.copy(), of_row, keyname or "ROW")
    ra = to_numpy(table.column(m[rcol]), float)
    dec = to_numpy(table.column(m[dcol]), float)
    check_coordinates(ra, dec, where, allow_missing=True)
    err = to_numpy(table.column(m[ecol]), float) if ecol in m else np.full(n, np.nan)
    w = 1.0 / np.maximum(np.nan_to_num(err, nan=1.0), 0.1) ** 2
    xyz = unit_vectors(ra, dec) * w[:, None]
    good = np.all(np.isfinite(xyz), axis=1)
    s = np.stack([np.bincount(of_row[good], xyz[good, k], minlength=ns) for k in range(3)], axis=1)
    sw = np.bincount(of_row[good], w[good], minlength=ns)
    with np.errstate(invalid="ignore", divide="ignore"):
        sra = np.degrees(np.arctan2(s[:, 1], s[:, 0])) % 360.0
        sdec = np.degrees(np.arcsin(np.clip(s[:, 2] / np.linalg.norm(s, axis=1), -1, 1)))
        serr = np.where(sw > 0, 1.0 / np.sqrt(sw), np.nan)
    if ecol == "SC_POSERR" or ecol not in m:
        serr = take(err, group_extreme(of_row, np.where(np.isfinite(err), err, np.nan), ns, largest=True))
    return Sources(keys, sra, sdec, serr, of_row, keyname or "ROW")


def catalogue_epochs(
    table: pa.Table,
    sources: Sources,
    *,
    catalogue: str = "4XMM",
    config: LongTermConfig = LongTermConfig(),
    user_map: Mapping[str, str] | None = None,
) -> Epochs:
    """Epochs from the input catalogue itself: every detection row (the per-source summary rows
    of stacked 4XMM-DRNs / 5XMM tables are left out: they are not epochs)."""
    kind = detect_kind(table.schema.names)
    rows = np.arange(table.num_rows)
    if kind.name in ("4xmm-stacked", "5xmm"):
        m = resolve(table.schema.names, ["N_OBS", "N_CONTRIB"], user_map)
        nobs = to_numpy(table.column(m["N_OBS"]), float) if "N_OBS" in m else np.full(len(rows), np.nan)
        ncon = to_numpy(table.column(m["N_CONTRIB"]), float) if "N_CONTRIB" in m else None
        rows = rows[~summary_rows(nobs, ncon)]
    ep = measurements(table, catalogue=catalogue, config=config, user_map=user_map, source="input catalogue")
    ep = ep.select(rows)
    ep.source = sources.of_row[rows]
    ep.row = rows
    ep.origin = np.full(len(rows), "catalogue", dtype=object)
    return ep


def archive_epochs(
    table: pa.Table, name: str, sources: Sources, *, config: LongTermConfig = LongTermConfig(), where: str = "archive"
) -> tuple[Epochs, int]:
    """Epochs from another catalogue (``--archive NAME=FILE``), matched to the input's sources.

    With RA/DEC the archive's rows are grouped into archival sources (by SRCID/IAUNAME/NAME, else
    one per row) and each input source takes at most one of them by the STONKS rules
    (:func:`~xmmtools.variability.long.match.stonks_match`: the input source is the new
    detection); without RA/DEC rows join on SRCID.  Returns the epochs and the number of archive
    rows that matched no source.
    """
    ep = measurements(table, catalogue=name, config=config, source=where)
    arch = sources_of(table, where=where)
    if np.all(np.isnan(arch.ra)):
        if arch.key_name != "SRCID":
            raise ColumnError(f"{where} has neither RA/DEC nor SRCID; cannot attach its rows to sources")
        pos = _lookup(sources.key, arch.key)  # archive source -> input source
        src_of_row = pos[arch.of_row]
        ok = src_of_row >= 0
        out = ep.select(ok)
        out.source = src_of_row[ok]
        return _tag(out, "archive"), int((~ok).sum())
    arch_xmm = np.zeros(len(arch), bool)
    np.logical_or.at(arch_xmm, arch.of_row, _is_xmm(ep.catalogue))
    m = stonks_match(
        sources.ra,
        sources.dec,
        sources.poserr,
        arch.ra,
        arch.dec,
        arch.poserr,
        arch_xmm,
        radius=config.radius,
        score_ratio=config.score_ratio,
    )
    # every (input source, archive row) pair whose archival source the input source matched
    matched_src = np.flatnonzero(m.index >= 0)
    arch_of_src = m.index[matched_src]
    order = np.argsort(arch.of_row, kind="stable")
    starts = np.searchsorted(arch.of_row[order], np.arange(len(arch) + 1))
    counts = starts[arch_of_src + 1] - starts[arch_of_src]
    src_rep = np.repeat(matched_src, counts)
    first = np.repeat(starts[arch_of_src], counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = order[first + within]
    out = ep.select(rows)
    out.source = src_rep
    out.ambiguous = m.ambiguous[src_rep]
    used = np.zeros(table.num_rows, bool)
    used[rows] = True
    return _tag(out, "archive"), int((~used).sum())


def upper_limit_epochs(
    table: pa.Table, sources: Sources, *, config: LongTermConfig = LongTermConfig(), where: str = "upper-limit table"
) -> tuple[Epochs, int, int]:
    """Upper limits: SRCID (or RA/DEC), MJD, FLUX_UL (erg/cm^2/s), BAND (4XMM band number or
    'lo-hi' keV; default band 8 / the catalogue's band), optional CATALOGUE/INSTRUMENT (default
    4XMM), OBS_ID -- the table the sensitivity stage writes for non-detections.

    Only dated, per-observation limits are epochs (an epoch is one dated observation, Quintin et
    al. 2024 Sect. 2): the sensitivity stage writes one row per camera (PN, M1, M2), one EPIC
    row per observation (INSTRUMENT EP) and an undated stack of all observations (OBS_ID ALL,
    MJD NaN).  Rows without a finite date are dropped (counted); of the rows of one source and
    observation (OBS_ID, else the date) the EPIC row is kept where present, else the most
    constraining (smallest) camera limit.  Returns the epochs, the number of rows that belong
    to no source and the number of undated rows ignored."""
    names = table.schema.names
    m = resolve(names, [*UL_NAMES, "BAND", *LABEL_NAMES, *TIME_NAMES, "SRCID", "RA", "DEC", "OBS_ID"])
    ulcol = next((c for c in UL_NAMES if c in m), None)
    if ulcol is None:
        raise ColumnError(
            f"{where} needs an upper-limit column FLUX_UL (erg/cm2/s); it has none of {', '.join(UL_NAMES)}"
        )
    n = table.num_rows
    label = _labels(table, m, "4XMM")
    bands = to_numpy(table.column(m["BAND"]), None) if "BAND" in m else None
    if bands is None and ulcol == "UL_8_FLUX":
        bands = np.full(n, "8", dtype=object)
    value = to_numpy(table.column(m[ulcol]), float)
    factor = _factors(label, bands, config.model)
    mjd = _mjd(table, m, where)
    if "SRCID" not in m and not ("RA" in m and "DEC" in m):
        raise ColumnError(f"{where} needs SRCID or RA/DEC to attach upper limits to sources")
    src = np.full(n, -1, dtype=np.int64)
    amb = np.zeros(n, bool)
    if "SRCID" in m:  # exact join; rows with a null or unknown SRCID fall back to their position
        key = to_numpy(table.column(m["SRCID"]), None)
        null = _is_null(key)
        if sources.key.dtype.kind in "iu":
            key = np.where(null, 0, key).astype(np.int64)
        src = np.where(null, -1, _lookup(sources.key, key))
    rest = np.flatnonzero(src < 0)
    if rest.size and "RA" in m and "DEC" in m:
        ra = to_numpy(table.column(m["RA"]), float)
        dec = to_numpy(table.column(m["DEC"]), float)
        check_coordinates(ra, dec, where, allow_missing=True)
        ra, dec = ra[rest], dec[rest]
        src[rest], amb[rest] = nearest_within(ra, dec, sources.ra, sources.dec, sources.poserr, radius=config.radius)
    obs = _obs_ids(table, m)
    dated = np.isfinite(mjd) & (obs != "ALL")
    ok = (src >= 0) & np.isfinite(value) & dated
    inst = (
        np.array([str(x).strip().upper() for x in to_numpy(table.column(m["INSTRUMENT"]), None)], dtype=object)
        if "INSTRUMENT" in m
        else None
    )
    ok &= _one_limit_per_observation(src, obs, mjd, value, inst, ok)
    ep = Epochs(
        source=src,
        mjd=mjd,
        flux=value / factor,
        err=np.zeros(n),
        is_ul=np.ones(n, bool),
        catalogue=label,
        origin=np.full(n, "upper-limit", dtype=object),
        factor=factor,
        hr=np.full(n, np.nan),
        spectral_warning=np.zeros(n, bool),
        row=np.full(n, -1),
        ambiguous=amb,
        obs=obs,
    )
    undated = int(((src >= 0) & np.isfinite(value) & ~dated).sum())
    return ep.select(ok), int((src < 0).sum()), undated


def _one_limit_per_observation(
    src: np.ndarray, obs: np.ndarray, mjd: np.ndarray, value: np.ndarray, inst: np.ndarray | None, ok: np.ndarray
) -> np.ndarray:
    """Mask keeping one upper limit per (source, observation): the EPIC (EP) row where present,
    else the smallest limit (the most constraining camera).  The observation is the OBS_ID, or
    the date when the table has none."""
    keep = np.zeros(len(src), bool)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return keep
    key = np.array([f"{o}" if o else f"MJD{d:.6f}" for o, d in zip(obs[idx], mjd[idx], strict=True)], dtype=object)
    is_ep = np.zeros(idx.size, bool) if inst is None else np.isin(inst[idx], ("EP", "EPIC"))
    # order: source, observation, EPIC first, then the smallest value; keep the first of each group
    order = np.lexsort((value[idx], ~is_ep, key, src[idx]))
    s_, k_ = src[idx][order], key[order]
    first = np.ones(order.size, bool)
    first[1:] = (s_[1:] != s_[:-1]) | (k_[1:] != k_[:-1])
    keep[idx[order[first]]] = True
    return keep


def merge_observations(ep: Epochs) -> tuple[Epochs, int]:
    """One epoch per source and observation: the same XMM-Newton observation reached through
    two catalogues (e.g. 3XMM-DR8 and 4XMM rows of one OBS_ID) is one epoch, not two.

    Epochs of one source sharing an OBS_ID are merged; epochs of XMM-Newton catalogues without
    an OBS_ID merge by date (start/mid time equal to 0.01 d).  The kept epoch is the input
    catalogue's row, else a detection before an upper limit, else the first.  Returns the
    epochs and the number dropped."""
    n = len(ep)
    if n == 0:
        return ep, 0
    xmm = _is_xmm(ep.catalogue)
    key = np.array(
        [
            f"O{o}" if o else (f"D{d:.2f}" if x and np.isfinite(d) else f"R{i}")
            for i, (o, d, x) in enumerate(zip(ep.obs, ep.mjd, xmm, strict=True))
        ],
        dtype=object,
    )
    rank = np.where(ep.origin == "catalogue", 0, np.where(ep.is_ul, 2, 1))
    order = np.lexsort((np.arange(n), rank, key, ep.source))
    s_, k_ = ep.source[order], key[order]
    first = np.ones(n, bool)
    first[1:] = (s_[1:] != s_[:-1]) | (k_[1:] != k_[:-1])
    keep = np.zeros(n, bool)
    keep[order[first]] = True
    return ep.select(keep), int(n - keep.sum())


def _obs_ids(table: pa.Table, m: Mapping[str, str]) -> np.ndarray:
    """OBS_ID per row as a 10-digit string ("ALL" kept as is, "" when unknown): a CSV reader may
    have turned 0412780101 into the integer 412780101."""
    n = table.num_rows
    if "OBS_ID" not in m:
        return np.full(n, "", dtype=object)
    out = np.full(n, "", dtype=object)
    for i, v in enumerate(to_numpy(table.column(m["OBS_ID"]), None)):
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            continue
        t = str(v).strip()
        if isinstance(v, (int, np.integer, float, np.floating)):
            t = str(int(v))
        out[i] = t.zfill(10) if t.isdigit() else t.upper()
    return out


def measurements(
    table: pa.Table, *, catalogue: str, config: LongTermConfig, source: str, user_map: Mapping[str, str] | None = None
) -> Epochs:
    """Fluxes of every row converted to 0.1-12 keV, with time, label, hardness ratio and the
    spectral-shape warning (source index not yet assigned)."""
    names = table.schema.names
    m = resolve(
        names,
        [
            *FLUX_NAMES,
            *(f + "_ERR" for f in FLUX_NAMES),
            "BAND",
            *LABEL_NAMES,
            *TIME_NAMES,
            "HR",
            *(f"EP_{b}_FLUX" for b in (*SOFT_BANDS, *HARD_BANDS)),
            "EP_HR3",
            "OBS_ID",
        ],
        user_map,
    )
    fcol = next((c for c in FLUX_NAMES if c in m), None)
    if fcol is None:
        raise ColumnError(
            f"{source} needs a flux column (one of {', '.join(FLUX_NAMES)}, erg/cm2/s); "
            "map yours with --columns FLUX=NAME"
        )
    n = table.num_rows
    native = to_numpy(table.column(m[fcol]), float)
    err = to_numpy(table.column(m[fcol + "_ERR"]), float) if fcol + "_ERR" in m else np.full(n, np.nan)
    label = _labels(table, m, catalogue)
    bands = to_numpy(table.column(m["BAND"]), None) if "BAND" in m else None
    factor = _factors(label, bands, config.model)
    hr, warn = spectral_shape(table, m, label, config)
    return Epochs(
        source=np.full(n, -1),
        mjd=_mjd(table, m, source),
        flux=native / factor,
        err=err / factor,
        is_ul=np.zeros(n, bool),
        catalogue=label,
        origin=np.full(n, "", dtype=object),
        factor=factor,
        hr=hr,
        spectral_warning=warn,
        row=np.full(n, -1),
        ambiguous=np.zeros(n, bool),
        obs=_obs_ids(table, m),
    )


def spectral_shape(
    table: pa.Table, m: Mapping[str, str], label: np.ndarray, config: LongTermConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Hardness ratio per row and the STONKS spectral-shape warning.

    HR = (H - S)/(H + S) from band fluxes: 4XMM S = EP_1+EP_2+EP_3 (0.2-2 keV), H = EP_4+EP_5
    (2-12 keV); other catalogues give an ``HR`` column in the soft/hard bands of the factor
    table -- compared only when the table says it is an energy-flux ratio (``hr_kind`` flux):
    the HRs of 2RXS, CSC and 2SXPS are count-rate ratios and get no warning.
    Without band fluxes, a 4XMM EP_HR3 (count rates 1-2 vs 2-4.5 keV) is compared with
    the model range computed with the pn thin-filter ECFs as count-rate weights.  The warning is
    set when HR lies outside the range spanned by Gamma in ``config.gamma_range`` at the model's
    N_H (:func:`~xmmtools.variability.long.bands.hardness_range`), i.e. when the fixed band factors
    may be wrong for that source (Quintin et al. 2024, Sect. 2.2).
    """
    n = table.num_rows
    soft = [f"EP_{b}_FLUX" for b in SOFT_BANDS]
    hard = [f"EP_{b}_FLUX" for b in HARD_BANDS]
    lo, hi = np.full(n, np.nan), np.full(n, np.nan)
    if all(c in m for c in soft + hard):
        # sum() is typed "array | 0" (empty input); the band lists are not empty
        s = np.asarray(sum(to_numpy(table.column(m[c]), float) for c in soft), dtype=float)
        h = np.asarray(sum(to_numpy(table.column(m[c]), float) for c in hard), dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            hr = (h - s) / (h + s)
        lo[:], hi[:] = hardness_range((0.2, 2.0), (2.0, 12.0), config.model.nh, config.gamma_range)
    elif "HR" in m:
        hr = to_numpy(table.column(m["HR"]), float)
        for name in np.unique(label.astype(str)):
            cb = lookup_catalogue(name)
            # like with like: a count-rate HR (2RXS, CSC, 2SXPS) depends on the mission's effective
            # area, so it is never compared with the energy-flux range of the model (no warning)
            if cb is not None and cb.soft and cb.hard and cb.hr_kind == "flux":
                sel = label == name
                lo[sel], hi[sel] = hardness_range(cb.soft, cb.hard, config.model.nh, config.gamma_range)
    elif "EP_HR3" in m:
        hr = to_numpy(table.column(m["EP_HR3"]), float)
        lo[:], hi[:] = hardness_range(
            (1.0, 2.0), (2.0, 4.5), config.model.nh, config.gamma_range, weights=(ecf("PN", 3), ecf("PN", 4))
        )
    else:
        return np.full(n, np.nan), np.zeros(n, bool)
    with np.errstate(invalid="ignore"):
        warn = np.isfinite(hr) & np.isfinite(lo) & ((hr < lo) | (hr > hi))
    return hr, warn


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _labels(table: pa.Table, m: Mapping[str, str], default: str) -> np.ndarray:
    """Catalogue name per row: the CATALOGUE (CATALOG, MISSION) column; else an INSTRUMENT
    column whose values name a catalogue of the factor table (EPIC, ACIS, XRT, PSPC, ...), by
    that catalogue's name; else ``default``."""
    col = next((c for c in ("CATALOGUE", "CATALOG", "MISSION") if c in m), None)
    n = table.num_rows
    if col is None and "INSTRUMENT" in m:
        inst = to_numpy(table.column(m["INSTRUMENT"]), None).astype(object)
        out = np.full(n, default, dtype=object)
        for name in set(map(str, inst)):
            cb = lookup_catalogue(name)
            if cb is not None:
                out[inst.astype(str) == name] = cb.catalogue
        return out
    if col is None:
        return np.full(n, default, dtype=object)
    v = to_numpy(table.column(m[col]), None).astype(object)
    bad = np.array([x is None or str(x).strip() == "" for x in v], bool) if n else np.zeros(0, bool)
    v[bad] = default
    return np.array([str(x).strip() for x in v], dtype=object)


def _factors(label: np.ndarray, bands, model: PowerLaw) -> np.ndarray:
    out = np.empty(len(label))
    for name in np.unique(label.astype(str)):
        sel = label == name
        out[sel] = factors_for(
            name, None if bands is None else np.asarray(bands, dtype=object)[sel], model, int(sel.sum())
        )
    return out


def _mjd(table: pa.Table, m: Mapping[str, str], where: str) -> np.ndarray:
    """Epoch time (MJD): MJD; else the middle of MJD_START..MJD_STOP; else DATE_OBS (ISO)."""
    col = lambda c: to_numpy(table.column(m[c]), float)  # noqa: E731
    if "MJD" in m:
        return col("MJD")
    if "MJD_START" in m and "MJD_STOP" in m:
        return 0.5 * (col("MJD_START") + col("MJD_STOP"))
    if "MJD_START" in m or "MJD_OBS" in m:
        return col("MJD_START" if "MJD_START" in m else "MJD_OBS")
    if "DATE_OBS" in m:
        raw = to_numpy(table.column(m["DATE_OBS"]), None)
        try:
            dt = np.array([str(x).strip().replace(" ", "T") for x in raw], dtype="datetime64[ms]")
        except ValueError:
            raise DataError(f"{where}: DATE_OBS values are not ISO dates (e.g. {raw[0]!r})") from None
        return (dt - np.datetime64("1858-11-17T00:00:00", "ms")) / np.timedelta64(1, "D")
    raise ColumnError(f"{where} needs an epoch time column (one of {', '.join(TIME_NAMES)})")


def _lookup(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in the sorted unique ``keys`` (-1 if absent)."""
    if len(keys) == 0:
        return np.full(len(values), -1)
    try:
        i = np.searchsorted(keys, values)
    except TypeError:
        keys, values = keys.astype(str), np.asarray(values).astype(str)
        i = np.searchsorted(keys, values)
    i = np.clip(i, 0, len(keys) - 1)
    return np.where(keys[i] == values, i, -1)


def _is_null(values) -> np.ndarray:
    """True for None / NaN entries of an object or float array."""
    v = np.asarray(values)
    if v.dtype.kind == "f":
        return np.isnan(v)
    if v.dtype.kind == "O":
        return np.array([x is None or (isinstance(x, float) and x != x) for x in v], bool)
    return np.zeros(len(v), bool)


def _is_xmm(labels: np.ndarray) -> np.ndarray:
    out = np.zeros(len(labels), bool)
    for name in np.unique(labels.astype(str)):
        cb = lookup_catalogue(name)
        out[labels == name] = bool(cb and cb.is_xmm)
    return out


def _tag(ep: Epochs, origin: str) -> Epochs:
    ep.origin = np.full(len(ep), origin, dtype=object)
    ep.row = np.full(len(ep), -1)
    return ep


def epochs_table(ep: Epochs, sources: Sources) -> pa.Table:
    """The long-term light curves: one row per epoch, sorted by source and time."""
    order = np.lexsort((ep.mjd, ep.source))
    e = ep.select(order)
    F = "erg/cm**2/s"
    cols = [
        (sources.key_name, pa.array(sources.key[e.source].tolist()), "", "source of the epoch"),
        ("MJD", pa.array(e.mjd), "d", "epoch time"),
        ("CATALOGUE", pa.array(e.catalogue.astype(str).tolist(), pa.string()), "", "catalogue of the measurement"),
        ("ORIGIN", pa.array(e.origin.astype(str).tolist(), pa.string()), "", "catalogue | archive | upper-limit"),
        ("FLUX_NATIVE", pa.array(e.flux * e.factor), F, "flux (or upper limit) in the catalogue's own band"),
        ("BAND_FACTOR", pa.array(e.factor), "", "F_0.1-12 = FLUX_NATIVE / BAND_FACTOR"),
        ("FLUX", pa.array(e.flux), F, "flux or upper limit, 0.1-12 keV"),
        ("FLUX_ERR", pa.array(e.err), F, "1-sigma error, 0.1-12 keV (0 for upper limits)"),
        ("IS_UL", pa.array(e.is_ul), "", "the epoch is an upper limit"),
        ("HR", pa.array(e.hr), "", "hardness ratio"),
        ("SPEC_WARN", pa.array(e.spectral_warning), "", "hardness ratio outside the Gamma range"),
        ("AMBIGUOUS_MATCH", pa.array(e.ambiguous), "", "came from an ambiguous archival match"),
    ]
    return pa.Table.from_arrays(
        [c[1] for c in cols], schema=pa.schema([pa.field(n, a.type, metadata=field_meta(u, d)) for n, a, u, d in cols])
    )
