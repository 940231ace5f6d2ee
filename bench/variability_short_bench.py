"""Short-term variability benchmarks (not part of `make test`).

1. chi2 + Fvar for 4x10^5 light curves of 1000 bins (target <= 10 s), fast uniform path, and
   the general path (background, NaN bins, sparse tests) per 10^4 curves for comparison.
2. VAR_FLAG false-positive rate on >= 10^5 simulated constant Poisson curves at 0.2, 1, 5, 20 and
   100 counts per bin (target <= 1e-5), for the flag probability and, for comparison, the plain
   chi2 probability.
3. Detection efficiency of injected flares versus amplitude.
4. EXOD-style search on one observation's MOS1 events: time and peak memory (targets 30 s, 1 GB).

Usage:  .venv/bin/python bench/variability_short_bench.py [--curves 400000] [--fp-curves 100000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np

from xmmtools.variability.short import statistics as st

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVENTS = [
    os.path.join(ROOT, "tests/data/variability/events/0001730201/M1_clean.fits.gz"),
    "/work/shared/data/variability/exodus_0001730201/events/P0001730201M1S002MIEVLI.FTZ",
]


def bench_speed(n_curves: int, n_bins: int = 1000, chunk: int = 20000) -> None:
    rng = np.random.default_rng(0)
    e = np.full(n_bins, 100.0)
    total, flagged = 0.0, 0
    for start in range(0, n_curves, chunk):
        m = min(chunk, n_curves - start)
        N = rng.poisson(rng.uniform(0.5, 50, (m, 1)), (m, n_bins)).astype(np.float64)
        t = time.perf_counter()
        r = st.chi2_fvar_uniform(N, e)
        total += time.perf_counter() - t
        flagged += int(r["VAR_FLAG"].sum())
    print(
        f"[speed] chi2+Fvar, {n_curves} curves x {n_bins} bins (fast path): {total:.2f} s "
        f"(target <= 10 s); flagged {flagged}"
    )
    m = 10000
    N = rng.poisson(3.0, (m, n_bins)).astype(float)
    M = rng.poisson(1.0, (m, n_bins)).astype(float)
    N[:, ::97] = np.nan
    t = time.perf_counter()
    st.lightcurve_statistics(N, e, M, 0.3)
    dt = time.perf_counter() - t
    print(
        f"[speed] general path (background, NaN bins, Poisson/KS/grouped-Poisson tests): {m} curves in {dt:.2f} s "
        f"-> {dt * 40:.0f} s per 4x10^5"
    )


def bench_false_positives(n_curves: int, n_bins: int = 1000, chunk: int = 5000) -> None:
    print(f"[false positives] {n_curves} constant Poisson curves x {n_bins} bins per rate; threshold 1e-5")
    print("  counts/bin  test        VAR_FLAG rate   p<1e-3 rate   plain-chi2 p<1e-5   plain p<1e-3")
    for lam in (0.2, 1.0, 5.0, 20.0, 100.0):
        rng = np.random.default_rng(int(lam * 100))
        flag = f3 = plain5 = plain3 = 0
        for start in range(0, n_curves, chunk):
            m = min(chunk, n_curves - start)
            N = rng.poisson(lam, (m, n_bins)).astype(float)
            r = st.lightcurve_statistics(N, np.ones(n_bins))
            flag += int(r["VAR_FLAG"].sum())
            f3 += int((r["VARPROB"] < 1e-3).sum())
            plain5 += int((r["CHI2PROB"] < 1e-5).sum())
            plain3 += int((r["CHI2PROB"] < 1e-3).sum())
        test = "poisson+ks+rebin" if lam < st.DEFAULT_MIN_COUNTS else "chi2"
        print(
            f"  {lam:9.1f}  {test:16s} {flag / n_curves:10.2e}   {f3 / n_curves:10.2e}   "
            f"{plain5 / n_curves:10.2e}          {plain3 / n_curves:10.2e}"
        )


def bench_flares(n_curves: int = 2000, n_bins: int = 1000) -> None:
    print("[flares] detection efficiency (p < 1e-5) of a Gaussian flare (sigma = 5 bins) at bin 500")
    amps = (0.5, 1, 2, 4, 8)
    print("  counts/bin  " + "  ".join(f"amp={a:<4}" for a in amps))
    t = np.arange(n_bins)
    for lam in (0.2, 1.0, 5.0, 20.0):
        rng = np.random.default_rng(7)
        effs = []
        for a in amps:
            shape = 1.0 + a * np.exp(-0.5 * ((t - 500) / 5.0) ** 2)
            N = rng.poisson(lam * shape, (n_curves, n_bins)).astype(float)
            effs.append(st.lightcurve_statistics(N, np.ones(n_bins))["VAR_FLAG"].mean())
        print(f"  {lam:9.1f}  " + "  ".join(f"{e:8.3f}" for e in effs))


def bench_events() -> None:
    code = (
        "import sys, time, resource\n"
        "from xmmtools.variability.events.search import search_events\n"
        "from xmmtools.variability.events.exod import ExodConfig\n"
        "t = time.perf_counter()\n"
        "tab = search_events([sys.argv[1]], ExodConfig(100.0, 4.0, 13, 1.0))\n"
        "print(f'{time.perf_counter() - t:.2f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} '"
        " f'{tab.num_rows}')\n"
    )
    for path in EVENTS:
        if not os.path.exists(path):
            continue
        out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True)
        if out.returncode:
            print(f"[events] {os.path.basename(path)}: failed: {out.stderr.strip().splitlines()[-1]}")
            continue
        secs, mb, n = out.stdout.split()
        print(f"[events] {os.path.basename(path)}: {secs} s, peak RSS {mb} MB, {n} candidates (targets 30 s, 1 GB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--curves", type=int, default=400_000)
    ap.add_argument("--fp-curves", type=int, default=100_000)
    ap.add_argument("--skip", nargs="*", default=[], choices=["speed", "fp", "flares", "events"])
    a = ap.parse_args()
    if "events" not in a.skip:  # first: a child's ru_maxrss starts from the parent's at fork
        bench_events()
    if "speed" not in a.skip:
        bench_speed(a.curves)
    if "flares" not in a.skip:
        bench_flares()
    if "fp" not in a.skip:
        bench_false_positives(a.fp_curves)
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
