"""EXOD-style transient search in XMM-Newton EPIC event lists (Pastor-Marazuela et al. 2020,
A&A 640, A124; EXODUS, Gupta et al.).

For each CCD in raw detector pixels, counts are accumulated in time windows of ``TW`` seconds
over a 3x3 pixel neighbourhood; windows with a good-time fraction below ``GTR`` are dropped and
the others scaled by 1/fraction.  Per pixel the variability is

    V = max(C_max - C_med, |C_min - C_med|) / C_med     (C_med > 0),   V = C_max  (C_med = 0)

(Pastor-Marazuela et al. 2020, eq. 1 and Sect. 3.1).  A box of b x b pixels is variable when the
*sum of V over the box* exceeds DL * b^2 * V_med, V_med the median V of all pixels floored at
0.75 (Sect. 3.2).  The public EXOD/EXODUS code sums the box's corner value b^2 times instead of
the box; we implement the documented intent.  Overlapping variable boxes are merged into one
candidate (connected pixels).  Counting is sparse (one entry per event and neighbour pixel),
so memory scales with the number of events, not with pixels x windows.

The functions take arrays and return arrays / dicts; file reading is in
:mod:`xmmtools.variability.events.eventlist`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: (TW [s], DL) pairs of Pastor-Marazuela et al. 2020 (Sect. 4), used when DL is not given
DEFAULT_DL = {3.0: 5.0, 10.0: 6.0, 30.0: 7.0, 100.0: 8.0}
#: raw pixel grid per CCD (RAWX, RAWY)
GRID = {"PN": (64, 200), "M1": (600, 600), "M2": (600, 600)}
#: EXODUS box sizes: 3 pixels for pn, 13 for MOS (MOS pixels are 1.1" against pn 4.1")
DEFAULT_BOX = {"PN": 3, "M1": 13, "M2": 13}
SKY_ARCSEC = 0.05  # arcsec per sky (X, Y) unit


@dataclass(frozen=True)
class ExodConfig:
    time_window: float = 100.0
    detection_level: float | None = None  # default from DEFAULT_DL (nearest TW)
    box: int | None = None  # default from DEFAULT_BOX
    gtr: float = 1.0  # minimum good-time fraction of a window
    v_floor: float = 0.75  # floor of the median variability

    def dl(self) -> float:
        if self.detection_level is not None:
            return float(self.detection_level)
        tw = min(DEFAULT_DL, key=lambda k: abs(math.log(k / self.time_window)))
        return DEFAULT_DL[tw]


def time_windows(gti: np.ndarray, tw: float) -> tuple[np.ndarray, np.ndarray]:
    """Window start times from the first GTI start and each window's good-time fraction."""
    from xmmtools.variability.gti import overlap

    t0, t1 = float(gti[:, 0].min()), float(gti[:, 1].max())
    n = max(1, int(math.ceil((t1 - t0) / tw)))
    starts = t0 + tw * np.arange(n)
    return starts, overlap(starts, starts + tw, gti) / tw


def variability_map(ccd, rawx, rawy, window, good, shape, n_ccd):
    """Per-pixel EXOD variability V on the raw grid of every CCD (Pastor-Marazuela+2020 eq. 1).

    ``ccd`` (0-based), ``rawx``/``rawy`` (0-based) and ``window`` (index into the kept windows)
    per event; ``good``: good-time fraction of each kept window.  Returns V with shape
    (n_ccd, nx, ny).  Each event counts in the 3x3 neighbourhood of its pixel.
    """
    nx, ny = shape
    nw = good.size
    off = np.array([(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)])
    px = (rawx[:, None] + off[:, 0]).ravel()
    py = (rawy[:, None] + off[:, 1]).ravel()
    c = np.repeat(ccd, 9)
    w = np.repeat(window, 9)
    inside = (px >= 0) & (px < nx) & (py >= 0) & (py < ny)
    pix = (c[inside] * nx + px[inside]) * ny + py[inside]
    keys, counts = np.unique(pix.astype(np.int64) * nw + w[inside], return_counts=True)
    pid, win = keys // nw, keys % nw
    scaled = counts / good[win]
    order = np.lexsort((scaled, pid))
    pid, scaled = pid[order], scaled[order]
    first = np.flatnonzero(np.r_[True, np.diff(pid) != 0])
    k = np.diff(np.r_[first, pid.size])  # windows with counts, per pixel
    zeros = nw - k

    def at(pos):  # value at sorted position ``pos`` of the full (zeros + counts) vector
        j = np.clip(first + pos - zeros, 0, pid.size - 1)
        return np.where(pos < zeros, 0.0, scaled[j])

    med = (
        at(np.full(k.size, nw // 2))
        if nw % 2
        else 0.5 * (at(np.full(k.size, nw // 2 - 1)) + at(np.full(k.size, nw // 2)))
    )
    cmax = scaled[first + k - 1]
    cmin = np.where(zeros > 0, 0.0, scaled[first])
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.where(med > 0, np.maximum(cmax - med, np.abs(cmin - med)) / np.where(med > 0, med, 1.0), cmax)
    V = np.zeros(n_ccd * nx * ny)
    V[pid[first]] = v
    return V.reshape(n_ccd, nx, ny)


def variable_boxes(V: np.ndarray, box: int, dl: float, v_floor: float = 0.75):
    """Boxes whose summed V exceeds DL * b^2 * max(median V, v_floor), merged into candidates.

    Returns (labels with the candidate number of each pixel (0 = none), threshold, best box sum
    per candidate as an array indexed by label - 1).
    """
    from scipy import ndimage

    vmed = max(float(np.median(V)), v_floor)
    thr = dl * box * box * vmed
    n_ccd, nx, ny = V.shape
    labels = np.zeros(V.shape, np.int32)
    best: list[float] = []
    for c in range(n_ccd):
        S = np.zeros((nx + 1, ny + 1))
        S[1:, 1:] = V[c].cumsum(0).cumsum(1)
        sums = S[box:, box:] - S[:-box, box:] - S[box:, :-box] + S[:-box, :-box]  # top-left (i, j)
        hit = sums > thr
        if not hit.any():
            continue
        d = np.zeros((nx + 1, ny + 1))
        i, j = np.nonzero(hit)
        np.add.at(d, (i, j), 1)
        np.add.at(d, (i + box, j), -1)
        np.add.at(d, (i, j + box), -1)
        np.add.at(d, (i + box, j + box), 1)
        mask = d.cumsum(0).cumsum(1)[:nx, :ny] > 0
        lab, n = ndimage.label(mask, structure=np.ones((3, 3)))
        top = ndimage.maximum(sums[i, j], lab[i, j], index=np.arange(1, n + 1))
        labels[c][lab > 0] = lab[lab > 0] + len(best)
        best.extend(np.atleast_1d(top).tolist())
    return labels, thr, np.array(best)


def exod_candidates(ev: dict, gti: np.ndarray, camera: str, cfg: ExodConfig) -> list[dict]:
    """Run the search on one camera's events and describe each candidate.

    ``ev``: arrays TIME, RAWX, RAWY (1-based), CCDNR (1-based), X, Y (sky units).  Returns one
    dict per candidate: sky X/Y (mean position of the candidate pixels' events in the brightest
    window, else over all windows), POSERR [arcsec] (their standard error), CCDNR, RAWX/RAWY of the
    most variable pixel, VMAX, SIGNIF (best box sum / threshold), TSTART/TSTOP of the brightest
    window, COUNTS_PEAK, COUNTS_MEDIAN (median counts per window in the candidate pixels),
    COUNTS, NPIX.
    """
    nx, ny = GRID[camera]
    n_ccd = 12 if camera == "PN" else 7
    starts, frac = time_windows(gti, cfg.time_window)
    keep_w = frac >= cfg.gtr
    if keep_w.sum() < 2:
        return []
    widx = np.full(starts.size, -1)
    widx[keep_w] = np.arange(keep_w.sum())
    w_all = np.floor((ev["TIME"] - starts[0]) / cfg.time_window).astype(np.int64)
    ok = (w_all >= 0) & (w_all < starts.size)
    ok[ok] = widx[w_all[ok]] >= 0
    ccd = ev["CCDNR"].astype(np.int64) - 1
    rx, ry = ev["RAWX"].astype(np.int64) - 1, ev["RAWY"].astype(np.int64) - 1
    ok &= (ccd >= 0) & (ccd < n_ccd) & (rx >= 0) & (rx < nx) & (ry >= 0) & (ry < ny)
    w = widx[w_all[ok]]
    V = variability_map(ccd[ok], rx[ok], ry[ok], w, frac[keep_w], (nx, ny), n_ccd)
    box = cfg.box or DEFAULT_BOX[camera]
    labels, thr, best = variable_boxes(V, box, cfg.dl(), cfg.v_floor)
    if not best.size:
        return []
    ev_lab = labels[ccd[ok], rx[ok], ry[ok]]
    X, Y = ev["X"][ok].astype(float), ev["Y"][ok].astype(float)
    kept_starts = starts[keep_w]
    out = []
    for lab in range(1, best.size + 1):
        sel = ev_lab == lab
        per_win = np.bincount(w[sel], minlength=kept_starts.size)
        peak = int(np.argmax(per_win))
        pos = sel & (w == peak)
        if pos.sum() < 3:
            pos = sel
        n = max(int(pos.sum()), 1)
        x, y = (X[pos].mean(), Y[pos].mean()) if pos.any() else (math.nan, math.nan)
        err = math.sqrt((X[pos].var() + Y[pos].var()) / 2.0 / n) * SKY_ARCSEC if n > 1 else math.nan
        c, i, j = np.unravel_index(np.argmax(np.where(labels == lab, V, -1.0)), V.shape)
        out.append(
            {
                "X": x,
                "Y": y,
                "POSERR": err,
                "CCDNR": int(c) + 1,
                "RAWX": int(i) + 1,
                "RAWY": int(j) + 1,
                "VMAX": float(V[c, i, j]),
                "SIGNIF": float(best[lab - 1] / thr),
                "TSTART": float(kept_starts[peak]),
                "TSTOP": float(kept_starts[peak] + cfg.time_window),
                "COUNTS_PEAK": int(per_win[peak]),
                "COUNTS_MEDIAN": float(np.median(per_win)),
                "COUNTS": int(sel.sum()),
                "NPIX": int((labels == lab).sum()),
            }
        )
    return out


def merge_cameras(cands: Sequence[dict], radius_arcsec: float) -> list[list[int]]:
    """Groups of candidate indices closer than ``radius_arcsec`` (RA/DEC keys; friends of
    friends), so a transient seen by pn and both MOS is one row."""
    from xmmtools.sky import pair_separation_arcsec

    parent = list(range(len(cands)))

    def root(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a in range(len(cands)):
        for b in range(a + 1, len(cands)):
            if (
                pair_separation_arcsec(cands[a]["RA"], cands[a]["DEC"], cands[b]["RA"], cands[b]["DEC"])
                <= radius_arcsec
            ):
                parent[root(b)] = root(a)
    groups: dict[int, list[int]] = {}
    for a in range(len(cands)):
        groups.setdefault(root(a), []).append(a)
    return list(groups.values())


def hot_pixel_flags(cands: Sequence[dict], camera: str, revolution: int | None, hot: dict | None) -> list[bool]:
    """True where the candidate's most variable pixel is within 1 pixel of a listed hot pixel or
    column segment (4XMM-DR14 lists: CCD, RAWX, RAWY1..RAWY2, valid for REV1..REV2)."""
    if not hot:
        return [False] * len(cands)
    ccd, x, y1, y2, r1, r2 = (np.asarray(hot[k], float) for k in ("CCD", "RAWX", "RAWY1", "RAWY2", "REV1", "REV2"))
    rev_ok = np.ones(ccd.size, bool) if revolution is None else (r1 <= revolution) & (revolution <= r2)
    out = []
    for c in cands:
        near = (
            rev_ok & (ccd == c["CCDNR"]) & (np.abs(x - c["RAWX"]) <= 1) & (c["RAWY"] >= y1 - 1) & (c["RAWY"] <= y2 + 1)
        )
        out.append(bool(near.any()))
    return out
