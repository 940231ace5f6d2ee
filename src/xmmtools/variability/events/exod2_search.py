"""EXOD2 search (Khan et al. 2025, A&A 697, A50, arXiv:2503.14208; github.com/nx1/EXOD2):
20" sky cells x time frames, expected counts from a source-masked background template,
burst/eclipse Bayes factors.

Per camera:

1. Events (sky X/Y, 0.05"/unit) are counted in cells of ``cell`` arcsec (20" as EXOD2) and frames
   of ``time_bin`` seconds (50 s as EXOD2) starting at the first GTI start.  Each frame's good
   exposure is e_f = (good-time fraction) x time_bin; frames with e_f = 0 hold no events.  Counts
   are kept sparse (one entry per occupied cell-frame), never a dense float cube.
2. Source mask: with b = the median total counts of the cells that have any event (the field
   background per cell), a cell is a source when P(>= N_c | b) < ``source_p`` (Poisson), and the
   mask is dilated by one cell (PSF wings; EXOD2 also masks sources before building its
   background template).
3. Background light curve w_f: counts per frame in the unmasked cells, plus one pseudo-count per
   full frame (so that a frame with no background counts still has a positive expectation),
   normalised to sum 1.  Exposure shape s_f = e_f / sum(e).
4. Expected counts (the EXOD2 model of Khan et al. 2025: source-masked background template x
   background light curve, plus constant sources):
       mu(c, f) = b_c w_f + (N_c - b_c) s_f,   b_c = N_c (unmasked) or min(b, N_c) (masked),
   so sum_f mu(c, f) = N_c: a constant source keeps its own average, the background follows the
   field's background light curve (soft-proton flares are not transients).
5. Bayes factors (:mod:`xmmtools.variability.events.exod2`, Khan et al. 2025: B_burst =
   Q(n+1, mu) / Pois(n; mu), B_eclipse = P(n+1, mu) / Pois(n; mu)) per occupied cell-frame
   (bursts) and per frame of cells bright enough that an empty frame can be an eclipse; a
   cell-frame is flagged when log10 B exceeds the 3 sigma threshold (5.94 burst, 5.71
   eclipse) -- the same as n >= n_peak(mu) or n < n_eclipse(mu) of the n(mu)
   table.  Flagged cell-frames touching in space or time (26-neighbourhood) form one candidate;
   its SIGMA is 5 when any of its cell-frames passes the 5 sigma threshold (13.28 / 12.38).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from xmmtools.variability.events.exod import SKY_ARCSEC, time_windows
from xmmtools.variability.events.exod2 import THRESHOLDS, log10_bayes_burst, log10_bayes_eclipse


@dataclass(frozen=True)
class Exod2Config:
    time_bin: float = 50.0  # frame length [s] (EXOD2 uses 5, 50 and 200 s)
    cell: float = 20.0  # sky cell [arcsec] (EXOD2: 20")
    source_p: float = 1e-3  # a cell is masked as a source when P(>= N | field background) < this


@dataclass
class Cells:
    """Sparse cell x frame counts of one camera and their expectations."""

    cell: np.ndarray  # per event: cell id (ix * ncy + iy)
    frame: np.ndarray  # per event: frame index
    shape: tuple  # (ncx, ncy, nf)
    origin: tuple  # sky (x0, y0) of cell (0, 0)
    starts: np.ndarray  # frame start times
    bkg: np.ndarray  # b_c per cell
    src: np.ndarray  # N_c - b_c per cell
    w: np.ndarray  # background light curve (sum 1)
    s: np.ndarray  # exposure shape (sum 1)
    masked: np.ndarray  # per cell: source mask

    def mu(self, cell, frame):
        """Expected counts mu(c, f) = b_c w_f + (N_c - b_c) s_f (step 4 of the module doc)."""
        return self.bkg[cell] * self.w[frame] + self.src[cell] * self.s[frame]


def bin_cells(ev: dict, gti: np.ndarray, cfg: Exod2Config) -> Cells:
    """Steps 1-4 of the module doc: cells, frames, source mask, expected-count model."""
    from scipy import ndimage, stats

    starts, frac = time_windows(gti, cfg.time_bin)
    nf = starts.size
    size = cfg.cell / SKY_ARCSEC
    x, y = np.asarray(ev["X"], float), np.asarray(ev["Y"], float)
    x0, y0 = (math.floor(x.min()), math.floor(y.min())) if x.size else (0.0, 0.0)
    ix = ((x - x0) // size).astype(np.int64)
    iy = ((y - y0) // size).astype(np.int64)
    ncx, ncy = (int(ix.max()) + 1, int(iy.max()) + 1) if x.size else (1, 1)
    cell = ix * ncy + iy
    frame = np.clip(((np.asarray(ev["TIME"], float) - starts[0]) // cfg.time_bin).astype(np.int64), 0, nf - 1)
    n_c = np.bincount(cell, minlength=ncx * ncy).astype(float)
    seen = n_c > 0
    b = float(np.median(n_c[seen])) if seen.any() else 0.0
    source = seen & (stats.poisson.sf(n_c - 1, max(b, 1e-9)) < cfg.source_p)
    masked = ndimage.binary_dilation(source.reshape(ncx, ncy), structure=np.ones((3, 3), bool)).ravel() & seen
    e = frac * cfg.time_bin
    mean_e = e[e > 0].mean() if (e > 0).any() else 1.0
    w = np.bincount(frame[~masked[cell]], minlength=nf) + e / mean_e
    w = np.where(e > 0, w, 0.0)
    bkg = np.where(masked, np.minimum(b, n_c), n_c)
    return Cells(cell, frame, (ncx, ncy, nf), (x0, y0), starts, bkg, n_c - bkg, w / w.sum(), e / e.sum(), masked)


def flag_cells(c: Cells) -> dict:
    """Step 5: flagged cell-frames per kind, as (keys cell * nf + frame, counts, mu, log10 B)."""
    nf = c.shape[2]
    keys, n = np.unique(c.cell * nf + c.frame, return_counts=True)
    out: dict[str, Any] = {}
    mu = c.mu(keys // nf, keys % nf)
    lb = log10_bayes_burst(n, mu)
    hit = lb > THRESHOLDS[3][0]
    out["burst"] = (keys[hit], n[hit], mu[hit], lb[hit])
    n_good = int(np.sum(c.s > 0))
    trials = {"burst": int(np.sum(np.bincount(c.cell, minlength=c.bkg.size) > 0)) * n_good, "eclipse": 0}
    # eclipses: only cells whose brightest frame could be empty at 3 sigma (mu >~ 13 counts)
    mu_max = c.bkg * c.w.max() + c.src * c.s.max()
    bright = np.flatnonzero(mu_max > 0)
    bright = bright[log10_bayes_eclipse(0, mu_max[bright]) > THRESHOLDS[3][1]]
    if bright.size:
        good = np.flatnonzero(c.s > 0)
        row = np.full(c.bkg.size, -1)
        row[bright] = np.arange(bright.size)
        counts = np.zeros((bright.size, good.size), np.int32)  # small dense block: bright cells x good frames
        col = np.full(nf, -1)
        col[good] = np.arange(good.size)
        r, k = row[keys // nf], col[keys % nf]
        sel = (r >= 0) & (k >= 0)
        counts[r[sel], k[sel]] = n[sel]
        mu_e = c.bkg[bright, None] * c.w[good] + c.src[bright, None] * c.s[good]
        le = log10_bayes_eclipse(counts, mu_e)
        i, j = np.nonzero(le > THRESHOLDS[3][1])
        out["eclipse"] = (bright[i] * nf + good[j], counts[i, j], mu_e[i, j], le[i, j])
        trials["eclipse"] = int(bright.size * good.size)
    else:
        out["eclipse"] = (np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0), np.zeros(0))
    out["trials"] = trials  # cell-frames searched per kind
    return out


def group_cells(keys: np.ndarray, shape: tuple) -> np.ndarray:
    """Connected components (26-neighbourhood in cell x, cell y, frame) of sorted flagged keys."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ncx, ncy, nf = shape
    if not keys.size:
        return np.zeros(0, np.int64)
    ix, iy, f = keys // nf // ncy, keys // nf % ncy, keys % nf
    a_parts, b_parts = [np.arange(keys.size)], [np.arange(keys.size)]
    for dx, dy, df in [(dx, dy, df) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for df in (-1, 0, 1)]:
        if (dx, dy, df) <= (0, 0, 0):
            continue  # one direction of each pair is enough for an undirected graph
        jx, jy, jf = ix + dx, iy + dy, f + df
        inside = (jx >= 0) & (jx < ncx) & (jy >= 0) & (jy < ncy) & (jf >= 0) & (jf < nf)
        nk = (jx * ncy + jy) * nf + jf
        pos = np.clip(np.searchsorted(keys, nk), 0, keys.size - 1)
        hit = inside & (keys[pos] == nk)
        a_parts.append(np.flatnonzero(hit))
        b_parts.append(pos[hit])
    a, b = np.concatenate(a_parts), np.concatenate(b_parts)
    g = coo_matrix((np.ones(a.size, np.int8), (a, b)), shape=(keys.size, keys.size))
    return connected_components(g, directed=False)[1]


def exod2_candidates(ev: dict, gti: np.ndarray, cfg: Exod2Config) -> list[dict]:
    """Run the EXOD2 search on one camera's events (arrays TIME, X, Y, CCDNR, RAWX, RAWY).

    One dict per candidate: TYPE (burst/eclipse), sky X/Y (mean position of its events: for a
    burst those in the flagged cell-frames, for an eclipse those of its cells over the whole
    observation), POSERR [arcsec] (their standard error; cell/sqrt(12) with fewer than 2 events),
    TSTART/TSTOP (first frame start, last frame end), SIGMA (3 or 5), LOG10_B (largest over its
    cell-frames), COUNTS (observed) and MU (expected) in the flagged cell-frames, N_CELLS,
    N_FRAMES, CCDNR/RAWX/RAWY of the raw pixel with most of those events (for hot pixels),
    P_FALSE (single-trial Poisson probability of its most significant cell-frame under the
    constant-sky expectation: P(N >= n | mu) for a burst, P(N <= n | mu) for an eclipse) and
    N_TRIALS (cell-frames searched for that kind in this camera: cells with events x good frames
    for bursts, bright cells x good frames for eclipses).
    """
    from scipy.special import gammainc, gammaincc

    c = bin_cells(ev, gti, cfg)
    nf = c.shape[2]
    ev_key = c.cell * nf + c.frame
    x, y = np.asarray(ev["X"], float), np.asarray(ev["Y"], float)
    raw = np.column_stack([np.asarray(ev[k], np.int64) for k in ("CCDNR", "RAWX", "RAWY")])
    out = []
    flagged = flag_cells(c)
    trials = flagged.pop("trials")
    for kind, (keys, n, mu, lb) in flagged.items():
        order = np.argsort(keys)
        keys, n, mu, lb = keys[order], n[order], mu[order], lb[order]
        labels = group_cells(keys, c.shape)
        t5 = THRESHOLDS[5][0 if kind == "burst" else 1]
        for g in range(int(labels.max()) + 1 if labels.size else 0):
            sel = labels == g
            gk = keys[sel]
            cells, frames = np.unique(gk // nf), gk % nf
            evs = np.isin(ev_key, gk) if kind == "burst" else np.isin(c.cell, cells)
            best = int(np.argmax(lb[sel]))
            nb, mb = float(n[sel][best]), float(mu[sel][best])
            # single-trial Poisson tail (regularised incomplete gamma: P(N >= n) = P(n, mu), n >= 1;
            # P(N <= n) = Q(n + 1, mu))
            p_false = float(gammainc(nb, mb)) if kind == "burst" else float(gammaincc(nb + 1.0, mb))
            out.append(
                {
                    "TYPE": kind,
                    **_position(x[evs], y[evs], raw[evs], cfg.cell),
                    "TSTART": float(c.starts[frames.min()]),
                    "TSTOP": float(c.starts[frames.max()] + cfg.time_bin),
                    "SIGMA": 5 if lb[sel].max() > t5 else 3,
                    "LOG10_B": float(lb[sel].max()),
                    "COUNTS": int(n[sel].sum()),
                    "MU": float(mu[sel].sum()),
                    "N_CELLS": int(cells.size),
                    "N_FRAMES": int(np.unique(frames).size),
                    "P_FALSE": p_false,
                    "N_TRIALS": int(trials[kind]),
                }
            )
    return out


def _position(x, y, raw, cell_arcsec):
    n = x.size
    err = math.sqrt((x.var() + y.var()) / 2.0 / n) * SKY_ARCSEC if n > 1 else cell_arcsec / math.sqrt(12.0)
    if n:
        u, cnt = np.unique(raw, axis=0, return_counts=True)
        ccd, rx, ry = (int(v) for v in u[np.argmax(cnt)])
    else:
        ccd = rx = ry = 0
    return {
        "X": float(x.mean()) if n else math.nan,
        "Y": float(y.mean()) if n else math.nan,
        "POSERR": err,
        "CCDNR": ccd,
        "RAWX": rx,
        "RAWY": ry,
    }


EXOD2_COLUMNS = {
    "RA": (
        "deg",
        "candidate position: mean of its events (burst: in the flagged cells and frames; eclipse: "
        "of its cells over the observation), inverse-variance weighted over cameras",
    ),
    "DEC": ("deg", "candidate position"),
    "POSERR": ("arcsec", "1-sigma statistical position error (standard error of the event positions)"),
    "TYPE": ("", "burst (more counts than expected) or eclipse (fewer)"),
    "CAMERAS": ("", "cameras that detected it, e.g. M1+M2"),
    "N_CAMERAS": ("", "number of cameras"),
    "OBS_ID": ("", "XMM-Newton observation id"),
    "SIGMA": (
        "",
        "EXOD2 level 3 or 5: nx1/EXOD2 log10 B thresholds (5.94/13.28 burst) defined with "
        "sigma = (N-mu)/sqrt(N+mu) -- not a Gaussian-equivalent single-trial level (see P_FALSE)",
    ),
    "LOG10_B": ("", "largest log10 Bayes factor (burst or eclipse) of its cells and frames"),
    "TSTART": ("s", "start of its first frame (mission time)"),
    "TSTOP": ("s", "end of its last frame (mission time)"),
    "COUNTS": ("count", "observed events in its flagged cells and frames (summed over cameras)"),
    "MU": ("count", "expected events there for a constant sky (summed over cameras)"),
    "N_CELLS": ("", "20-arcsec sky cells (largest over cameras)"),
    "N_FRAMES": ("", "flagged time frames (largest over cameras)"),
    "CCDNR": ("", "CCD of the raw pixel with most of its events (first camera)"),
    "RAWX": ("", "raw X of that pixel (first camera)"),
    "RAWY": ("", "raw Y of that pixel (first camera)"),
    "HOT_PIXEL": ("", "that pixel is within 1 pixel of a listed hot pixel/column"),
    "P_FALSE": (
        "",
        "single-trial Poisson false-alarm probability of its most significant cell-frame "
        "(burst P(N>=n|mu), eclipse P(N<=n|mu); smallest over cameras)",
    ),
    "N_TRIALS": ("", "cell-frames searched for this TYPE (summed over its cameras)"),
    "FAP_OBS": ("", "observation-level bound min(1, P_FALSE x N_TRIALS) (Bonferroni)"),
}


def search_exod2(
    paths, cfg: Exod2Config, *, gti=None, pi_range=(200.0, 12000.0), merge_radius: float = 10.0, hot_pixel_files=None
):
    """EXOD2 search of each event list; candidates of the same TYPE from different cameras within
    ``merge_radius`` arcsec whose time windows overlap are one row."""
    import pyarrow as pa

    from xmmtools.variability.events.exod import merge_cameras
    from xmmtools.variability.events.search import candidate_table, per_file_candidates
    from xmmtools.variability.gti import intersect_gti

    def find(ev, meta):
        g = intersect_gti(meta["GTI"], meta["FILE_GTI"]) if len(meta["FILE_GTI"]) else meta["GTI"]
        return exod2_candidates(ev, g if len(g) else meta["GTI"], cfg)

    cands = per_file_candidates(paths, find, gti=gti, pi_range=pi_range, hot_pixel_files=hot_pixel_files)
    rows = []
    for kind in ("burst", "eclipse"):
        same = [c for c in cands if c["TYPE"] == kind]
        for group in merge_cameras(same, merge_radius):
            for part in _split_in_time([same[i] for i in group]):
                rows.append(_merge(part))
    rows.sort(key=lambda r: (-r["SIGMA"], -r["LOG10_B"]))
    return candidate_table(
        rows,
        EXOD2_COLUMNS,
        {
            "TYPE": pa.string(),
            "CAMERAS": pa.string(),
            "OBS_ID": pa.string(),
            "HOT_PIXEL": pa.bool_(),
            "N_TRIALS": pa.int64(),
        },
        ("N_CAMERAS", "SIGMA", "COUNTS", "N_CELLS", "N_FRAMES", "CCDNR", "RAWX", "RAWY", "N_TRIALS"),
    )


def _split_in_time(group: list[dict]) -> list[list[dict]]:
    """Split candidates at one position into runs whose time windows overlap."""
    group = sorted(group, key=lambda c: c["TSTART"])
    parts = [[group[0]]]
    for c in group[1:]:
        if c["TSTART"] < max(p["TSTOP"] for p in parts[-1]):
            parts[-1].append(c)
        else:
            parts.append([c])
    return parts


def _merge(group: list[dict]) -> dict:
    from xmmtools.variability.events.search import merged_position

    first = max(group, key=lambda c: c["LOG10_B"])
    return {
        **merged_position(group),
        "TYPE": first["TYPE"],
        "OBS_ID": first["OBS_ID"],
        "SIGMA": max(c["SIGMA"] for c in group),
        "LOG10_B": first["LOG10_B"],
        "TSTART": min(c["TSTART"] for c in group),
        "TSTOP": max(c["TSTOP"] for c in group),
        "COUNTS": sum(c["COUNTS"] for c in group),
        "MU": sum(c["MU"] for c in group),
        "N_CELLS": max(c["N_CELLS"] for c in group),
        "N_FRAMES": max(c["N_FRAMES"] for c in group),
        "CCDNR": first["CCDNR"],
        "RAWX": first["RAWX"],
        "RAWY": first["RAWY"],
        "HOT_PIXEL": any(c["HOT_PIXEL"] for c in group),
        "P_FALSE": min(c["P_FALSE"] for c in group),
        "N_TRIALS": sum(c["N_TRIALS"] for c in group),
        "FAP_OBS": min(1.0, min(c["P_FALSE"] for c in group) * sum(c["N_TRIALS"] for c in group)),
    }
