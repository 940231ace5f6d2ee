"""Make M1_raw_sel.fits.gz from the raw pipeline MOS1 event list of 0001730201.

Source: SHARED/variability/exodus_0001730201/events/P0001730201M1S002MIEVLI.FTZ
(SHARED = the team's shared data folder, given as the argument)
(XMM-Newton pipeline product, 134,685 events; see tests/data/variability/README.md).
Kept: every HDU except EVENTS unchanged (STDGTInn, EXPOSU, BADPIX, OFFSETS, CALINDEX and
the headers with XMMEA_EM); in EVENTS the rows that the PATTERN (<= 12) and PI (200-12000 eV)
selections keep, whatever their FLAG -- so the FLAG filter is what the tests exercise -- and
only the columns the event search reads.  Run from the repository root:

    python tests/data/variability/events/0001730201/make_m1_raw.py /work/shared/data
"""

import sys
from pathlib import Path

from astropy.io import fits

if len(sys.argv) != 2:
    sys.exit("usage: make_m1_raw.py SHARED_DATA_FOLDER")
shared = Path(sys.argv[1])
src = shared / "variability" / "exodus_0001730201" / "events" / "P0001730201M1S002MIEVLI.FTZ"
out = Path(__file__).with_name("M1_raw_sel.fits.gz")
keep_cols = ("TIME", "RAWX", "RAWY", "CCDNR", "X", "Y", "PI", "PATTERN", "FLAG")
with fits.open(src) as h:
    ev = h["EVENTS"]
    d = ev.data
    sel = (d["PATTERN"] <= 12) & (d["PI"] >= 200) & (d["PI"] <= 12000)
    cols = [c for c in ev.columns if c.name in keep_cols]
    new = fits.BinTableHDU.from_columns(
        fits.ColDefs([fits.Column(name=c.name, format=c.format, unit=c.unit, array=d[c.name][sel]) for c in cols]),
        header=ev.header,
        name="EVENTS",
    )
    hdus = [h[0].copy()] + [new if x.name == "EVENTS" else x.copy() for x in h[1:]]
    fits.HDUList(hdus).writeto(out, overwrite=True, checksum=True)
print(f"{out}: {int(sel.sum())} of {len(sel)} events")
