"""Long-term variability between epochs and missions, STONKS style (Quintin et al. 2024, A&A 687, A250).

The story, top-down:

1. *Epochs* (:class:`Epochs`): every flux measurement of a source in the common 0.1-12 keV band:
   its 4XMM detections (rows sharing SRCID), rows of other catalogues matched to it
   (:mod:`xmmtools.variability.long.match`) and upper limits (from the sensitivity stage).
   Native fluxes are divided by the band factor f of :mod:`xmmtools.variability.long.bands`.
2. *Ratios* (:func:`long_term_stats`): per source, the pessimistic ratio
   R = max_i(F_i - sigma_i) / min_j(F_j + sigma_j), upper limits entering the minimum with their
   value (Quintin et al. 2024, Sect. 2.4, eq. 1), the optimistic ratio F_max/F_min, the amplitude
   max(F - sigma) - min(F + sigma) and its significance, the number of epochs, the baseline and
   the epochs of the maximum and minimum; ``LT_VARIABLE`` when R > threshold (5).
3. *Alerts* (:func:`stonks_alerts`): a new detection against the history of its source:
   'First Detection', 'High Flux State', 'Low Flux State' or 'Past Variability' (Sect. 2.5).

This module puts the three together (:func:`long_term_variability`) into the stage's
per-row columns (:func:`row_columns`): epochs in :mod:`~xmmtools.variability.long.epochs`,
ratios in :mod:`~xmmtools.variability.long.statistics`, alerts in
:mod:`~xmmtools.variability.long.alerts`.  Functions here take numpy arrays (or an Arrow table
plus its resolved column names) and return arrays; they never open files, print or exit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from xmmtools.tables.model import NewColumn
from xmmtools.variability.long.alerts import alerts_table, stonks_alerts
from xmmtools.variability.long.epochs import (
    Epochs,
    LongTermConfig,
    Sources,
    archive_epochs,
    catalogue_epochs,
    merge_observations,
    sources_of,
    upper_limit_epochs,
)
from xmmtools.variability.long.statistics import SourceStats, group_extreme, long_term_stats, source_flags, take


@dataclass
class LongTermResult:
    """Everything the stage computes: per-row columns, the alerts and the light curves."""

    columns: list[NewColumn]  # one value per input row (per-source values broadcast)
    alerts: pa.Table  # one row per alert
    epochs: Epochs
    sources: Sources
    stats: SourceStats
    unmatched: dict[str, int]  # rows of each auxiliary table that belong to no source
    alerts_new: np.ndarray  # per source, epoch index of its new detection (-1: none)
    notes: tuple[str, ...] = ()  # what was left out and why (undated limits, repeated observations)


def long_term_variability(
    table: pa.Table,
    *,
    archives: Sequence[tuple[str, pa.Table]] = (),
    upper_limits: pa.Table | None = None,
    config: LongTermConfig = LongTermConfig(),
    catalogue: str = "4XMM",
    user_map: Mapping[str, str] | None = None,
    new_since: float | None = None,
    where: str = "input catalogue",
) -> LongTermResult:
    """Long-term variability of every source of ``table`` (a 4XMM detection, stacked, 5XMM or
    generic table) with archival catalogues and upper limits, and the STONKS alerts.

    The new detection of a source is its latest detection in ``table`` (with ``new_since``: only
    if its MJD >= new_since); its history is every earlier epoch from any table.
    """
    sources = sources_of(table, user_map, where)
    parts = [catalogue_epochs(table, sources, catalogue=catalogue, config=config, user_map=user_map)]
    unmatched: dict[str, int] = {}
    for name, t in archives:
        ep, lost = archive_epochs(t, name, sources, config=config, where=f"archive {name}")
        parts.append(ep)
        unmatched[name] = lost
    notes = []
    if upper_limits is not None:
        ep, lost, undated = upper_limit_epochs(upper_limits, sources, config=config)
        parts.append(ep)
        unmatched["upper-limits"] = lost
        if undated:
            notes.append(f"{undated} undated upper-limit rows (e.g. OBS_ID ALL stacks) ignored: not epochs")
    ep, merged = merge_observations(Epochs.concat(parts))
    if merged:
        notes.append(f"{merged} epochs of an observation already counted (same OBS_ID or date) merged")
    ns = len(sources)
    stats = long_term_stats(ep.source, ep.flux, ep.err, ep.is_ul, ep.mjd, ns, config.threshold)
    flags = source_flags(ep, stats, ns)
    cat = (ep.origin == "catalogue") & ~ep.is_ul & np.isfinite(ep.flux)
    new = group_extreme(ep.source, np.where(cat, ep.mjd, np.nan), ns, largest=True)
    if new_since is not None:
        new = np.where(take(ep.mjd, new) >= new_since, new, -1)
    alerts = stonks_alerts(ep.source, ep.flux, ep.err, ep.is_ul, ep.mjd, new, ns, config.threshold)
    columns = row_columns(table, ep, sources, stats, flags, config)
    return LongTermResult(
        columns,
        alerts_table(table, ep, sources, alerts, flags, user_map),
        ep,
        sources,
        stats,
        unmatched,
        alerts.new,
        tuple(notes),
    )


def row_columns(
    table: pa.Table, ep: Epochs, sources: Sources, s: SourceStats, flags: np.ndarray, config: LongTermConfig
) -> list[NewColumn]:
    """The per-row output columns: the row's own 0.1-12 keV flux and its source's statistics."""
    r = sources.of_row
    n = table.num_rows
    own = ep.origin == "catalogue"
    flux, err, hr = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    warn = np.zeros(n, bool)
    flux[ep.row[own]], err[ep.row[own]] = ep.flux[own], ep.err[own]
    hr[ep.row[own]], warn[ep.row[own]] = ep.hr[own], ep.spectral_warning[own]
    cat = ep.catalogue.astype(object)

    def lab(i):
        return np.where(i >= 0, cat[np.maximum(i, 0)], "").astype(object)[r] if len(cat) else np.full(n, "", object)

    band = "0.1-12 keV"
    F = "erg/cm**2/s"
    return [
        NewColumn("LT_FLUX", flux, F, f"this detection's flux converted to {band} (STONKS band factor)"),
        NewColumn("LT_FLUX_ERR", err, F, f"1-sigma error of LT_FLUX ({band})"),
        NewColumn("LT_HR", hr, "", "flux hardness ratio (H-S)/(H+S), S 0.2-2 keV, H 2-12 keV (or EP_HR3)"),
        NewColumn(
            "LT_SPEC_WARN",
            warn,
            "",
            f"hardness ratio outside the range of Gamma "
            f"{config.gamma_range[0]}-{config.gamma_range[1]} power laws: band factors unreliable",
        ),
        NewColumn(
            "LT_N_EPOCHS",
            s.n_epochs[r].astype(np.int32),
            "",
            "number of epochs of the source (dated observations: detections in all catalogues + upper limits)",
        ),
        NewColumn("LT_N_DET", s.n_det[r].astype(np.int32), "", "number of detections of the source"),
        NewColumn(
            "LT_N_UL", s.n_ul[r].astype(np.int32), "", "number of upper-limit epochs (dated observations) of the source"
        ),
        NewColumn(
            "LT_VAR_RATIO",
            s.ratio[r],
            "",
            "pessimistic long-term ratio max(F-sigma)/min(F+sigma), upper limits in the minimum (Quintin+2024 eq. 1)",
        ),
        NewColumn("LT_VAR_RATIO_OPT", s.ratio_opt[r], "", "optimistic long-term ratio F_max/F_min"),
        NewColumn("LT_AMPL", s.amplitude[r], F, f"amplitude max(F-sigma) - min(F+sigma), {band}"),
        NewColumn(
            "LT_AMPL_SIG",
            s.significance[r],
            "",
            "significance (F_max - F_min)/sqrt(sigma_max^2 + sigma_min^2) of the extreme epochs",
        ),
        NewColumn("LT_FLUX_MAX", take(ep.flux, s.i_max)[r], F, f"flux of the epoch with the largest F-sigma ({band})"),
        NewColumn("LT_FLUX_MAX_ERR", take(ep.err, s.i_max)[r], F, "1-sigma error of LT_FLUX_MAX"),
        NewColumn("LT_MJD_MAX", take(ep.mjd, s.i_max)[r], "d", "MJD of the epoch of LT_FLUX_MAX"),
        NewColumn("LT_CAT_MAX", lab(s.i_max), "", "catalogue of the epoch of LT_FLUX_MAX"),
        NewColumn(
            "LT_FLUX_MIN",
            take(ep.flux, s.i_min)[r],
            F,
            f"flux or upper limit of the epoch with the smallest F+sigma ({band})",
        ),
        NewColumn(
            "LT_FLUX_MIN_ERR", take(ep.err, s.i_min)[r], F, "1-sigma error of LT_FLUX_MIN (0 for an upper limit)"
        ),
        NewColumn("LT_MJD_MIN", take(ep.mjd, s.i_min)[r], "d", "MJD of the epoch of LT_FLUX_MIN"),
        NewColumn("LT_CAT_MIN", lab(s.i_min), "", "catalogue of the epoch of LT_FLUX_MIN"),
        NewColumn(
            "LT_MIN_IS_UL", take(ep.is_ul.astype(float), s.i_min, 0.0)[r] > 0, "", "the minimum is an upper limit"
        ),
        NewColumn("LT_BASELINE", s.baseline[r], "d", "time between the first and last epoch"),
        NewColumn("LT_VARIABLE", s.variable[r], "", f"LT_VAR_RATIO > {config.threshold:g}"),
        NewColumn(
            "LT_FLAG",
            flags[r],
            "",
            "bits: 1 missing flux error (sigma=0 used), 2 non-positive flux, "
            "4 ambiguous archival match, 8 spectral-shape warning, 16 fewer than two epochs",
        ),
    ]
