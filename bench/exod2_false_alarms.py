"""Observation-level false-alarm rate of the EXOD2 search on simulated constant fields.

Each field is MOS-like (as tests/variability/events/test_variability_short_exod2.py): 60,000
uniform background events whose rate triples during a 2 ks flare, three constant point sources
(20,000 / 3,000 / 300 events), 40 ks with a GTI gap; nothing varies, so every candidate is a
false alarm.  Prints, per time bin, the mean number of 3-level and 5-level candidates per
observation, the fraction of observations with at least one, the cell-frames searched and the
smallest single-trial P_FALSE seen.  Run: python bench/exod2_false_alarms.py [N_FIELDS]
"""

from __future__ import annotations

import sys

import numpy as np

from xmmtools.variability.events.exod2_search import Exod2Config, exod2_candidates


def constant_field(seed: int):
    rng = np.random.default_rng(seed)
    gti = np.array([[0.0, 15020.0], [15500.0, 40010.0]])

    def times(n, rate_curve=None):
        good = np.concatenate([rng.uniform(a, b, int(4 * n * (b - a) / 40000) + 1) for a, b in gti])
        if rate_curve is not None:
            good = good[rng.random(good.size) < rate_curve(good)]
        return rng.choice(good, n, replace=False)

    def flare(t):
        return np.where((t > 20000) & (t < 22000), 1.0, 1 / 3)

    nb = 60000
    r, a = 18000 * np.sqrt(rng.random(nb)), rng.uniform(0, 2 * np.pi, nb)
    parts = [(times(nb, flare), 25000 + r * np.cos(a), 25000 + r * np.sin(a))]
    for n, (sx, sy) in ((20000, (25000, 25000)), (3000, (30000, 22000)), (300, (20000, 28000))):
        parts.append((times(n), sx + rng.normal(0, 100, n), sy + rng.normal(0, 100, n)))
    t, x, y = (np.concatenate(v) for v in zip(*parts, strict=True))
    o = np.argsort(t)
    ev = {"TIME": t[o], "X": x[o], "Y": y[o], **{k: np.ones(t.size) for k in ("CCDNR", "RAWX", "RAWY")}}
    return ev, gti


def main(n_fields: int = 20) -> None:
    fields = [constant_field(1000 + s) for s in range(n_fields)]
    for tb in (50.0, 200.0):
        n3, n5, trials, pmin = [], [], [], []
        for ev, gti in fields:
            c = exod2_candidates(ev, gti, Exod2Config(tb))
            n3.append(sum(1 for k in c if k["SIGMA"] == 3))
            n5.append(sum(1 for k in c if k["SIGMA"] == 5))
            trials += [k["N_TRIALS"] for k in c]
            pmin += [k["P_FALSE"] for k in c]
        print(
            f"time bin {tb:g} s, {n_fields} constant fields: level-3 candidates per observation "
            f"{np.mean(n3):.2f} (>= 1 in {np.mean(np.array(n3) > 0):.0%}), level-5 {np.mean(n5):.2f}; "
            f"cell-frames searched {int(np.median(trials)) if trials else 'n/a'}; "
            f"smallest P_FALSE {min(pmin) if pmin else float('nan'):.2g}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
