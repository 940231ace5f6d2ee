"""Rebuild the short-term variability fixtures from the team's shared data folder.

    .venv/bin/python tests/data/variability/make_variability.py SHARED_DATA [OUT_DIR]

SHARED_DATA is the shared data folder (the one holding variability/); OUT_DIR defaults to this
folder.  Everything is a byte copy of a shared file except ``exod2_bayesfactorlimits_every50.csv``,
every 50th μ column of EXOD2's Bayes-factor threshold tables.  All output is byte-identical to the
shipped files.
"""

import shutil
import sys
from pathlib import Path

import numpy as np


def copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def main(shared: Path, out: Path) -> None:
    var = shared / "variability"
    # evselect light curves (100 s) and region files of every camera, the LC_LOG_1 statistics, and
    # for HD 159176 MOS1 also the frame-time (2.604 s) curves with their epiclccorr product.
    for obsid in ("0001730201", "0831790701"):
        lcs = var / f"exodus_{obsid}" / "lightcurves"
        copy(lcs / "LC_LOG_1", out / "lc" / obsid / "LC_LOG_1")
        for src in sorted(lcs.glob("lcurve_100_*_1/*")):
            if (
                "_lc_100_" in src.name
                or src.name.endswith("_region.txt")
                or (obsid == "0001730201" and src.parent.name == "lcurve_100_M1_1")
            ):
                copy(src, out / "lc" / obsid / src.parent.name / src.name)
    # HD 159176 MOS1: EXOD-filtered events, GTIs, and the EXODUS detection output (DL=4, TW=100 s, box 13)
    hd = var / "exodus_0001730201"
    copy(hd / "events" / "M1_clean.fits.gz", out / "events" / "0001730201" / "M1_clean.fits.gz")
    copy(hd / "gti" / "M1_gti.fits", out / "events" / "0001730201" / "M1_gti.fits")
    for name in ("best_match.csv", "ds9_variable_sources.reg", "log.txt"):
        copy(hd / "exod_output" / "4_100_13_1.0_M1" / name, out / "exodus" / "0001730201_4_100_13_1.0_M1" / name)
    copy(var / "exod2" / "4xmmdr14_hotpixels_M1.csv", out / "exodus" / "4xmmdr14_hotpixels_M1.csv")

    # Bayes-factor thresholds: rows are (mu grid, n_peak, n_eclipse), 51,000 columns; keep every 50th.
    # The mu grids of the 3 and 5 sigma tables are identical.
    lim3 = np.loadtxt(var / "exod2" / "bayesfactorlimits_3.txt.gz")
    lim5 = np.loadtxt(var / "exod2" / "bayesfactorlimits_5.txt.gz")
    assert (lim3[0] == lim5[0]).all()
    lines = ["MU,N_PEAK_3,N_ECLIPSE_3,N_PEAK_5,N_ECLIPSE_5"]
    for j in range(0, lim3.shape[1], 50):
        lines.append(f"{float(lim3[0, j])!r},{int(lim3[1, j])},{int(lim3[2, j])},{int(lim5[1, j])},{int(lim5[2, j])}")
    (out / "exod2_bayesfactorlimits_every50.csv").write_bytes(("\n".join(lines) + "\n").encode())
    print(f"{out}: light curves, events, EXODUS output, hot pixels, {len(lines) - 1} threshold rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).parent))
