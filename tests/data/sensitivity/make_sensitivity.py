"""Rebuild the sensitivity fixtures from the team's shared data folder.

    .venv/bin/python tests/data/sensitivity/make_sensitivity.py SHARED_DATA [OUT_DIR]

SHARED_DATA is the shared data folder (the one holding sensitivity/ and 4xmm/); OUT_DIR defaults to
this folder.  Writes

* ``obs/``: byte copies of XGA's 0.5-2 keV maps of 0201903501 and 0201901401, the 2-10 keV PN maps
  of 0201903501 (a second band), and XGA's census.csv;
* ``xsa_listing.csv``: the archive (PPS) name each copied map stands for, built from the map's
  EXPIDSTR keyword and band (first written by hand; this rebuilds it byte for byte);
* ``xmmatlas_full_band.fits``: the FULL-band 80 % EEF columns of the XMM-ATLAS source list, written
  by astropy's Table writer (astropy 8.0.2).

All output is byte-identical to the shipped files.
"""

import shutil
import sys
from pathlib import Path

from astropy.io import fits
from astropy.table import Table

OBSIDS = ("0201903501", "0201901401")  # listing order
CAMERA = {"mos1": "M1", "mos2": "M2", "pn": "PN"}
BAND_DIGIT = {(500, 2000): 2, (2000, 10000): 4}  # nearest 4XMM band digit (the SAS bands are no PPS bands)


def copy_maps(shared: Path, out: Path) -> list[str]:
    """Copy the shipped maps and XGA's census; return the lines of xsa_listing.csv."""
    xga = shared / "sensitivity" / "xga_0201901401_0201903501_0404910601"
    (out / "obs").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(xga / "census.csv", out / "obs" / "census.csv")
    lines = ["obs_id,archive_name,shipped_file,pimin_ev,pimax_ev"]
    for obsid in OBSIDS:
        maps = sorted((xga / obsid / "images").glob("*0.50-2.00keV*"))
        if obsid == "0201903501":
            maps += sorted((xga / obsid / "images").glob("*_pn_exp1-2.00-10.00keV*"))
        (out / "obs" / obsid).mkdir(exist_ok=True)
        for src in maps:
            shutil.copyfile(src, out / "obs" / obsid / src.name)
            # e.g. 0201903501_mos1_exp1-0.50-2.00keVexpmap.fits.gz -> P0201903501M1S001EXPMAP2000.FTZ
            _, cam, band = src.name.split("_", 2)
            lo, hi = (round(float(e) * 1000) for e in band.removeprefix("exp1-").split("keV")[0].split("-"))
            kind = "EXPMAP" if "expmap" in src.name else "IMAGE_"
            expid = fits.getheader(src)["EXPIDSTR"]
            name = f"P{obsid}{CAMERA[cam]}{expid}{kind}{BAND_DIGIT[lo, hi]}000.FTZ"
            lines.append(f"{obsid},{name},obs/{obsid}/{src.name},{lo},{hi}")
    return lines


def xmmatlas(shared: Path, out: Path) -> None:
    cols = ["UXID", "RA", "DEC", "CNT_TOTAL_FULL_80", "BKG_TOTAL_FULL_80", "FLUX_FULL", "FLUX_LO_FULL", "FLUX_HI_FULL"]
    for cam in ("PN", "M1", "M2"):
        cols += [f"CNT_{cam}_FULL_80", f"BKG_{cam}_FULL_80", f"EXP_{cam}_FULL_80", f"ECF_{cam}_FULL"]
    src = shared / "4xmm" / "ruizca__astromatch" / "xmmatlas_srclistnew_Legacy.fits"
    Table(fits.getdata(src, 1))[cols].write(out / "xmmatlas_full_band.fits", overwrite=True)


def main(shared: Path, out: Path) -> None:
    lines = copy_maps(shared, out)
    (out / "xsa_listing.csv").write_text("\n".join(lines) + "\n")
    xmmatlas(shared, out)
    print(f"{out}: {len(lines) - 1} maps, census.csv, xsa_listing.csv, xmmatlas_full_band.fits")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).parent))
