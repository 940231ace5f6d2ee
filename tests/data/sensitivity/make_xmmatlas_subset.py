"""Make xmmatlas_full_band.fits: the FULL-band (80 % EEF aperture) columns of the real
XMM-ATLAS source list (GitHub ruizca/astromatch, xmmatlas_srclistnew_Legacy.fits, as copied
into the project's shared data folder).  Run once from the repository root:

    .venv/bin/python tests/data/sensitivity/make_xmmatlas_subset.py $SHARED_DATA/4xmm/ruizca__astromatch/xmmatlas_srclistnew_Legacy.fits
"""

import sys

from astropy.io import fits
from astropy.table import Table

cols = ["UXID", "RA", "DEC", "CNT_TOTAL_FULL_80", "BKG_TOTAL_FULL_80", "FLUX_FULL", "FLUX_LO_FULL", "FLUX_HI_FULL"]
for cam in ("PN", "M1", "M2"):
    cols += [f"CNT_{cam}_FULL_80", f"BKG_{cam}_FULL_80", f"EXP_{cam}_FULL_80", f"ECF_{cam}_FULL"]
t = Table(fits.getdata(sys.argv[1], 1))[cols]
t.write("tests/data/sensitivity/xmmatlas_full_band.fits", overwrite=True)
