"""Consensus labels from volunteer votes (citizen-science classification).

Each vote is (source, user, class[, user success rate]).  Per source, a user counts once (their
first vote).  With success rates s_u (the fraction of a user's answers on gold-standard sources
that were right) each vote weighs s_u, otherwise 1; the consensus class is the one with the
largest summed weight, AGREEMENT = its weight / total weight, and sources with fewer than
``min_votes`` votes (default 20, the platform's retirement limit) get no label, so they are
dropped by ``classify train``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from xmmtools.tables.model import NewColumn


def consensus(
    source: ArrayLike, user: ArrayLike, label: ArrayLike, success: np.ndarray | None = None, min_votes: int = 20
) -> tuple[np.ndarray, list[NewColumn]]:
    """Returns (unique source ids, [LABEL, AGREEMENT, N_VOTES] columns, one row per source).

    ``success``: per-vote user success rate in [0, 1] (NaN -> weight 1)."""
    source = np.asarray(source)
    user = np.asarray(user)
    label = np.asarray(label).astype(str)
    ok = (label != "") & (label != "None") & (label != "nan")
    src_ids, s_idx = np.unique(source, return_inverse=True)
    _, u_idx = np.unique(user, return_inverse=True)
    # one vote per (source, user): keep the first
    pair = s_idx.astype(np.int64) * (u_idx.max() + 1 if u_idx.size else 1) + u_idx
    first = np.zeros(len(source), bool)
    valid = np.flatnonzero(ok)
    _, pos = np.unique(pair[valid], return_index=True)
    first[valid[pos]] = True
    classes, c_idx = np.unique(label, return_inverse=True)
    w = np.ones(len(source)) if success is None else np.asarray(success, float)
    w = np.where(np.isfinite(w), np.clip(w, 0.0, 1.0), 1.0)
    tally = np.zeros((src_ids.size, classes.size))
    np.add.at(tally, (s_idx[first], c_idx[first]), w[first])
    n_votes = np.bincount(s_idx[first], minlength=src_ids.size)
    total = tally.sum(axis=1)
    best = tally.argmax(axis=1)
    agree = np.where(total > 0, tally[np.arange(src_ids.size), best] / np.where(total > 0, total, 1), np.nan)
    lab = np.where(n_votes >= min_votes, classes[best] if classes.size else "", "")
    return src_ids, [
        NewColumn("LABEL", lab.astype(str), "", f"consensus class (empty below {min_votes} votes)"),
        NewColumn("AGREEMENT", agree, "", "weighted vote fraction of the consensus class"),
        NewColumn("N_VOTES", n_votes.astype(np.int32), "", "number of users who voted on this source"),
    ]
