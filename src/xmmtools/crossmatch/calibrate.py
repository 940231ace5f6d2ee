"""Calibrating p_any cuts with fake primaries (Salvato et al. 2018, App. B.4, as NWAY's
nway-create-shifted-catalogue / nway-calibrate-cutoff).

Each primary is moved by ``shift`` arcsec (directions cycling through east, north, west,
south so no coherent offset builds up); fakes falling within ``exclude`` arcsec of any real
primary are dropped, so their candidates are unrelated field sources.  Matching the fakes with
the same densities, completeness and attribute histograms gives, for each cut c, the
false-positive rate FPR(c) = fraction of fakes with p_any > c, and the selected fraction of the
real primaries, so a cut can be chosen at a wanted FPR.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from xmmtools.crossmatch.bayes import BayesResult, Catalog
from xmmtools.crossmatch.positional import nearest
from xmmtools.errors import DataError
from xmmtools.tables.model import NewColumn


def shifted_primary(cat: Catalog, shift: float, exclude: float) -> tuple[Catalog, np.ndarray]:
    """The fake primary catalogue and the rows of ``cat`` it came from."""
    n = cat.n
    ang = np.radians(90.0 * (np.arange(n) % 4))
    dx, dy = shift * np.cos(ang), shift * np.sin(ang)  # arcsec east, north
    dec = cat.dec + dy / 3600.0
    ra = cat.ra + dx / 3600.0 / np.cos(np.radians(np.clip(dec, -89.9, 89.9)))
    over = np.abs(dec) > 90  # past a pole: reflect
    dec = np.where(over, np.sign(dec) * 180 - dec, dec)
    ra = np.where(over, ra + 180.0, ra) % 360.0
    _, sep = nearest(ra, dec, cat.ra, cat.dec, exclude)
    keep = ~np.isfinite(sep)
    if not keep.any():
        raise DataError(
            f"--calibrate: every primary shifted by {shift} arcsec lands within {exclude} arcsec "
            "of another primary; use a larger --calibrate-shift"
        )
    rows = np.flatnonzero(keep)
    fake = replace(cat, name=cat.name + "_FAKE", ra=ra[rows], dec=dec[rows], errors=cat.errors.take(rows))
    return fake, rows


def with_fixed_histograms(cat: Catalog, result: BayesResult) -> Catalog:
    """The catalogue with its automatic attribute histograms replaced by those of ``result``."""
    attrs = [
        (label, values, hist if hist is not None else result.histograms[label])
        for label, values, hist in cat.attributes
    ]
    return replace(cat, attributes=attrs)


def false_positive_curve(p_any_real: np.ndarray, p_any_fake: np.ndarray, cuts=None) -> list[NewColumn]:
    """Columns P_ANY_CUT, FALSE_POSITIVE_RATE, REAL_SELECTED for cuts 0, 0.01, ..., 0.99."""
    cuts = np.round(np.arange(0, 1.0, 0.01), 2) if cuts is None else np.asarray(cuts, dtype=float)
    fake = np.sort(np.asarray(p_any_fake, dtype=float))
    real = np.sort(np.asarray(p_any_real, dtype=float))
    fpr = 1.0 - np.searchsorted(fake, cuts, side="right") / max(len(fake), 1)
    sel = 1.0 - np.searchsorted(real, cuts, side="right") / max(len(real), 1)
    return [
        NewColumn("P_ANY_CUT", cuts, "", "cut: sources with P_ANY above it are selected"),
        NewColumn("FALSE_POSITIVE_RATE", fpr, "", "fraction of shifted (fake) primaries with P_ANY above the cut"),
        NewColumn("REAL_SELECTED", sel, "", "fraction of the real primaries with P_ANY above the cut"),
    ]


def cut_for_rate(cuts: np.ndarray, fpr: np.ndarray, rate: float) -> float | None:
    """Smallest cut whose false-positive rate is at most ``rate`` (None if none reaches it)."""
    ok = np.flatnonzero(np.asarray(fpr) <= rate)
    return float(np.asarray(cuts)[ok[0]]) if len(ok) else None
