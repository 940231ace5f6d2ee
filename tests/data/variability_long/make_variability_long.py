"""Rebuild the long-term variability fixtures from the team's shared data folder.

    .venv/bin/python tests/data/variability_long/make_variability_long.py SHARED_DATA [OUT_DIR]

SHARED_DATA is the shared data folder (the one holding 4xmm/); OUT_DIR defaults to this folder.

* ``3xmm_dr8_ngc5139.csv``: all 15 rows of the shared 3XMM-DR8 ω Cen export, 17 columns, values
  copied as text (never parsed), written by the csv module (CRLF line ends);
* ``sgra_4xmm_J174544.4-290024_hr.csv``: a byte copy.

Both are byte-identical to the shipped files.
"""

import csv
import shutil
import sys
from pathlib import Path

COLUMNS = ["SRCID", "DETID", "OBS_ID", "MJD_START", "MJD_STOP", "RA", "DEC", "POSERR", "EP_1_FLUX", "EP_2_FLUX",
           "EP_3_FLUX", "EP_4_FLUX", "EP_5_FLUX", "EP_8_FLUX", "EP_8_FLUX_ERR", "EP_HR3", "VAR_FLAG"]  # fmt: skip


def main(shared: Path, out: Path) -> None:
    derived = shared / "4xmm" / "detections" / "derived"
    with open(derived / "3xmm_dr8_ngc5139_detections.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(out / "3xmm_dr8_ngc5139.csv", "w", newline="") as f:
        writer = csv.writer(f)  # default dialect: minimal quoting, "\r\n"
        writer.writerow(COLUMNS)
        writer.writerows([row[c] for c in COLUMNS] for row in rows)
    shutil.copyfile(derived / "4xmm_J174544.4-290024_xsa_epic_source_cat_hr.csv",
                    out / "sgra_4xmm_J174544.4-290024_hr.csv")  # fmt: skip
    print(f"{out}: 3xmm_dr8_ngc5139.csv ({len(rows)} rows), sgra_4xmm_J174544.4-290024_hr.csv")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).parent))
