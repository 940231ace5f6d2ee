"""Make the value-added-chain test files in this folder from the team's shared data folder (run from the repo root):

    .venv/bin/python tests/data/chain/make_chain_data.py /work/shared/data

1. Stripe 82X (photoz/agn/stripe82x_agn_z_lt1.fits, Ananna et al. 2017 counterparts):
   * ``s82x_xray.fits``: the X-ray sources: REC_NO, CATALOG, RA/DEC (= XRAY_RA/XRAY_DEC),
     XRAY_RA_DEC_ERR, FULL_FLUX, REDSHIFT.
   * ``s82x_prematched.fits``: REC_NO and the published counterparts' SDSS magnitudes U..Z /
     UERR..ZERR exactly as in the file (-99 = missing): the "pre-matched" magnitudes.
   * ``s82x_sdss_vizier.fits``: the published counterparts written as a VizieR SDSS DR16
     (V/154/sdss16) table: objID (= REC_NO of the X-ray source whose counterpart it is),
     RA_ICRS/DE_ICRS (= CTP_RA/CTP_DEC), umag/e_umag .. zmag/e_zmag (-99/99 -> null, as VizieR
     leaves them blank).  No positional-error column (the sdss profile's 0.1" default applies).
2. Lin et al. 2024 XCLASS training table (classify/lin2024_4xmmdr13_xclass_train.csv): every
   8th row with a Gaia G magnitude and every 20th row without one (AGN, stars, CVs, XRBs):
   * ``lin_xray.csv``: the X-ray columns (name, ra, dec, poserr, F*, HR*, sc_*) without G/W1/W2/dist.
   * ``lin_gaia_vizier.csv`` (RA_ICRS, DE_ICRS, e_RA_ICRS, e_DE_ICRS [mas], Source, Gmag),
     ``lin_gaiadist_vizier.csv`` (RA_ICRS, DE_ICRS, Source, rgeo) and
     ``lin_allwise_vizier.csv`` (RAJ2000, DEJ2000, eeMaj, eeMin, eePA, W1mag, W2mag) with the
     table's real G, dist, W1, W2 values.  The table has no counterpart positions, so each
     counterpart is placed at the X-ray position plus a Gaussian offset (seeded, sigma 0.7"
     per axis; e_RA_ICRS = e_DE_ICRS = 0.5 mas), and its AllWISE position 0.3" (sigma per axis)
     from that (eeMaj 0.4", eeMin 0.3"): synthetic positions, real magnitudes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from astropy.table import Table

HERE = Path(__file__).resolve().parent


def stripe82x(shared: Path) -> None:
    t = Table.read(shared / "photoz" / "agn" / "stripe82x_agn_z_lt1.fits")
    ok = (np.asarray(t["CTP_RA"]) > -90) & (np.asarray(t["CTP_DEC"]) > -90)
    t = t[ok]
    x = Table()
    x["REC_NO"] = t["REC_NO"]
    x["CATALOG"] = t["CATALOG"]
    x["RA"], x["DEC"] = t["XRAY_RA"], t["XRAY_DEC"]
    x["XRAY_RA_DEC_ERR"] = t["XRAY_RA_DEC_ERR"]
    x["FULL_FLUX"] = t["FULL_FLUX"]
    x["REDSHIFT"] = t["REDSHIFT"]
    x.write(HERE / "s82x_xray.fits", overwrite=True)
    pre = Table()
    pre["REC_NO"] = t["REC_NO"]
    for b in "UGRIZ":
        pre[b], pre[b + "ERR"] = t[b], t[b + "ERR"]
    pre.write(HERE / "s82x_prematched.fits", overwrite=True)
    s = Table()
    s["objID"] = t["REC_NO"]
    s["RA_ICRS"], s["DE_ICRS"] = t["CTP_RA"], t["CTP_DEC"]
    for b in "UGRIZ":
        m = np.asarray(t[b], float)
        e = np.asarray(t[b + "ERR"], float)
        bad = (m < -90) | (e > 90) | ~np.isfinite(m)
        s[b.lower() + "mag"] = np.ma.masked_array(m, bad)
        s["e_" + b.lower() + "mag"] = np.ma.masked_array(e, bad)
    s.write(HERE / "s82x_sdss_vizier.fits", overwrite=True)
    print(f"stripe82x: {len(x)} X-ray sources and counterparts", file=sys.stderr)


def lin(shared: Path) -> None:
    import pandas as pd

    t = pd.read_csv(shared / "classify" / "lin2024_4xmmdr13_xclass_train.csv")
    has_g = np.isfinite(t["G"])
    keep = np.sort(np.r_[np.flatnonzero(has_g)[::8], np.flatnonzero(~has_g)[::20]])
    t = t.iloc[keep].reset_index(drop=True)
    rng = np.random.default_rng(20240214)
    xray = [
        c
        for c in t.columns
        if c
        not in (
            "G",
            "BP",
            "RP",
            "J",
            "H",
            "K",
            "W1",
            "W2",
            "W3",
            "dist",
            "F_x/F_o",
            "BP-G",
            "BP-RP",
            "G-K",
            "J-H",
            "H-K",
            "W1-W2",
            "M_G",
        )
    ]
    t[xray].to_csv(HERE / "lin_xray.csv", index=False)
    n = len(t)

    def moved(ra, dec, sigma_arcsec):
        d = rng.normal(0, sigma_arcsec / 3600, (2, n))
        return ra + d[0] / np.cos(np.radians(dec)), dec + d[1]

    ra, dec = moved(t["ra"].to_numpy(), t["dec"].to_numpy(), 0.7)  # the optical source (Gaia position)
    src = np.arange(1, n + 1) * 1000
    g = t[np.isfinite(t["G"])]
    pd.DataFrame(
        {
            "Source": src[g.index],
            "RA_ICRS": ra[g.index],
            "DE_ICRS": dec[g.index],
            "e_RA_ICRS": 0.5,
            "e_DE_ICRS": 0.5,
            "Gmag": g["G"],
        }
    ).to_csv(HERE / "lin_gaia_vizier.csv", index=False)
    d = t[np.isfinite(t["dist"])]
    pd.DataFrame({"Source": src[d.index], "RA_ICRS": ra[d.index], "DE_ICRS": dec[d.index], "rgeo": d["dist"]}).to_csv(
        HERE / "lin_gaiadist_vizier.csv", index=False
    )
    w = t[np.isfinite(t["W1"]) | np.isfinite(t["W2"])]
    wra, wdec = moved(ra, dec, 0.3)  # AllWISE: the same source, measured within its 0.3-0.4" errors
    pd.DataFrame(
        {
            "RAJ2000": wra[w.index],
            "DEJ2000": wdec[w.index],
            "eeMaj": 0.4,
            "eeMin": 0.3,
            "eePA": 30.0,
            "W1mag": w["W1"],
            "W2mag": w["W2"],
        }
    ).to_csv(HERE / "lin_allwise_vizier.csv", index=False)
    print(f"lin: {n} X-ray sources, {len(g)} Gaia, {len(d)} distances, {len(w)} AllWISE", file=sys.stderr)


if __name__ == "__main__":
    shared = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data")
    stripe82x(shared)
    lin(shared)
