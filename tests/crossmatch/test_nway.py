"""Side by side with NWAY 4.8 (run as a reference program; AGPL, none of its code is used).

Inputs: real XMM-COSMOS positions (Brusa et al. 2010) with synthetic optical counterparts of
known truth, and NWAY's own elliptical-error test catalogues (tests/data/crossmatch/).  NWAY
and ``xmmtools crossmatch --all`` are run on the same files; per combination P_ANY and P_I
must agree within 0.01 for >= 99 % and the best counterpart must be the same for >= 99 % of
the primaries.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from astropy.table import Table
from helpers import DATA, run_main

from xmmtools import tables
from xmmtools.crossmatch.synthetic import counterparts

XDATA = DATA / "crossmatch"
ELL = XDATA / "nway_elltest"
NWAY = shutil.which("nway.py") or os.path.join(os.path.dirname(sys.executable), "nway.py")
pytestmark = pytest.mark.skipif(not os.path.exists(NWAY), reason="nway (pip install nway) is not installed")


def run_nway(tmp, args):
    out = tmp / "nway_out.fits"
    r = subprocess.run(
        [sys.executable, NWAY, *map(str, args), f"--out={out}"], cwd=tmp, capture_output=True, timeout=300
    )
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return Table.read(out)


def run_ours(tmp, args, capsys):
    out = tmp / "ours.parquet"
    args = [str(tmp / a) if (tmp / a).exists() else a for a in map(str, args)]
    args = [
        a.split("=")[0] + "=" + str(tmp / a.split("=", 1)[1]) if "=" in a and (tmp / a.split("=", 1)[1]).exists() else a
        for a in args
    ]
    code, _, err = run_main(["crossmatch", *args, "--all", "-o", out, "-q", "--overwrite"], capsys)
    assert code == 0, err
    return tables.read_table(out).to_pandas()


def compare(nw, ours, pid_n, pid_o, keys_n, keys_o):
    """Join on (primary id, counterpart ids) and return per-row and per-primary agreement."""

    def key(cols):
        return list(
            zip(*[np.where(np.asarray(c) == -99, -1, np.asarray(c)).astype(np.int64) for c in cols], strict=True)
        )

    kn = key([nw[pid_n]] + [nw[k] for k in keys_n])
    ko = key([ours[pid_o]] + [np.nan_to_num(ours[k].to_numpy(dtype=float), nan=-1) for k in keys_o])
    pos = {k: i for i, k in enumerate(ko)}
    assert all(k in pos for k in kn), "a NWAY combination is missing from ours"
    j = np.array([pos[k] for k in kn])
    d_any = np.abs(np.asarray(nw["p_any"]) - ours["P_ANY"].to_numpy()[j])
    d_i = np.abs(np.asarray(nw["p_i"]) - ours["P_I"].to_numpy()[j])
    # best counterpart per primary: ours' flag-1 combination must have NWAY's maximal p_i
    pids = np.asarray(nw[pid_n])
    nw_pi = np.asarray(nw["p_i"], dtype=float)
    best_max = {}
    for p, v in zip(pids, nw_pi, strict=True):
        best_max[p] = max(best_max.get(p, 0.0), v)
    ours_flag = ours["MATCH_FLAG"].to_numpy()[j]
    same = [abs(v - best_max[p]) < 1e-5 for p, v, f in zip(pids, nw_pi, ours_flag, strict=True) if f == 1]
    return d_any, d_i, np.mean(same), len(set(pids))


@pytest.fixture(scope="module")
def cosmos_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nway_cosmos")
    x = Table.read(XDATA / "COSMOS_XMM.fits")
    syn = counterparts(x["RA"], x["DEC"], x["pos_err"], density_deg2=60000.0, seed=11)
    t = Table({"ID": np.arange(len(syn.ra)), "RA": syn.ra, "DEC": syn.dec, "MAG": syn.mag, "TRUTH": syn.truth})
    t.meta["EXTNAME"] = "OPT"
    t.meta["SKYAREA"] = syn.area_deg2
    t.write(tmp / "opt.fits")
    shutil.copy(XDATA / "COSMOS_XMM.fits", tmp / "xmm.fits")
    shutil.copy(XDATA / "OPT_MAG_fit.txt", tmp / "OPT_MAG_fit.txt")
    return tmp


def _check(d_any, d_i, best_same):
    assert np.mean(d_any <= 0.01) >= 0.99, np.max(d_any)
    assert np.mean(d_i <= 0.01) >= 0.99, np.max(d_i)
    assert best_same >= 0.99


@pytest.mark.slow
def test_cosmos_two_way_agrees_with_nway(cosmos_files, capsys):
    tmp = cosmos_files
    nw = run_nway(tmp, ["xmm.fits", ":pos_err", "opt.fits", "0.1", "--radius", "15", "--prior-completeness", "0.9"])
    ours = run_ours(
        tmp,
        [
            "xmm.fits",
            "--catalog",
            "opt=opt.fits",
            "--pos-err",
            "opt=0.1",
            "--radius",
            "15",
            "--prior-completeness",
            "0.9",
        ],
        capsys,
    )
    assert len(ours) == len(nw) > 5000
    d_any, d_i, best, n = compare(nw, ours, "XMM_ID", "ID", ["OPT_ID"], ["OPT_ID"])
    _check(d_any, d_i, best)
    assert n == 1797
    assert np.max(d_any) < 1e-5 and np.max(d_i) < 1e-5  # measured: 1e-7 (NWAY writes float32)


@pytest.mark.slow
def test_cosmos_magnitude_prior_file_agrees_with_nway(cosmos_files, capsys):
    tmp = cosmos_files
    nw = run_nway(
        tmp,
        [
            "xmm.fits",
            ":pos_err",
            "opt.fits",
            "0.1",
            "--radius",
            "15",
            "--prior-completeness",
            "0.9",
            "--mag",
            "OPT:MAG",
            "OPT_MAG_fit.txt",
        ],
    )
    ours = run_ours(
        tmp,
        [
            "xmm.fits",
            "--catalog",
            "opt=opt.fits",
            "--pos-err",
            "opt=0.1",
            "--radius",
            "15",
            "--mag",
            "opt:MAG",
            "OPT_MAG_fit.txt",
        ],
        capsys,
    )
    d_any, d_i, best, _ = compare(nw, ours, "XMM_ID", "ID", ["OPT_ID"], ["OPT_ID"])
    _check(d_any, d_i, best)
    np.testing.assert_allclose(
        np.sort(ours["BIAS_OPT_MAG"].to_numpy()), np.sort(np.asarray(nw["bias_OPT_MAG"])), rtol=1e-5
    )


@pytest.mark.slow
def test_elliptical_test_set_agrees_with_nway(tmp_path, capsys):
    for f in ("randomcatX.fits", "randomcatO.fits"):
        shutil.copy(ELL / f, tmp_path / f)
    nw = run_nway(
        tmp_path,
        ["randomcatX.fits", ":a:b:phi", "randomcatO.fits", "0.1", "--radius", "10", "--prior-completeness", "0.9"],
    )
    ours = run_ours(
        tmp_path,
        [
            "randomcatX.fits",
            "--catalog",
            "opt=randomcatO.fits",
            "--pos-err",
            "opt=0.1",
            "--pos-err",
            "primary=a:b:phi",
            "--radius",
            "10",
            "--ellipse",
            "nway",
        ],
        capsys,
    )
    d_any, d_i, best, n = compare(nw, ours, "CHANDRA_ID", "ID", ["OPT_ID"], ["OPT_ID"])
    _check(d_any, d_i, best)
    assert n == 120
    # the exact Gaussian treatment differs from NWAY's approximation for elongated ellipses
    exact = run_ours(
        tmp_path,
        [
            "randomcatX.fits",
            "--catalog",
            "opt=randomcatO.fits",
            "--pos-err",
            "opt=0.1",
            "--radius",
            "10",
            "--overwrite",
        ],
        capsys,
    )
    d_any_x, _, _, _ = compare(nw, exact, "CHANDRA_ID", "ID", ["OPT_ID"], ["OPT_ID"])
    assert np.mean(d_any_x > 0.01) > 0.2


@pytest.mark.slow
def test_three_way_agrees_with_nway(tmp_path, capsys):
    # 600 real COSMOS positions, synthetic optical (sigma 0.1") and IRAC-like (sigma 0.5") catalogues;
    # kept small because NWAY's correction for unrelated associations is a Python loop
    x = Table.read(XDATA / "COSMOS_XMM.fits")[:600]
    x.meta["EXTNAME"] = "XMM"
    x.write(tmp_path / "xmm.fits")
    for name, dens, sig, seed in (("OPT", 20000.0, 0.1, 5), ("IRAC", 8000.0, 0.5, 6)):
        syn = counterparts(x["RA"], x["DEC"], x["pos_err"], density_deg2=dens, sigma_secondary=sig, seed=seed)
        t = Table({"ID": np.arange(len(syn.ra)), "RA": syn.ra, "DEC": syn.dec, "ERR": np.full(len(syn.ra), sig)})
        t.meta["EXTNAME"] = name
        t.meta["SKYAREA"] = syn.area_deg2
        t.write(tmp_path / f"{name.lower()}.fits")
    nw = run_nway(
        tmp_path,
        [
            "xmm.fits",
            ":pos_err",
            "opt.fits",
            "0.1",
            "irac.fits",
            ":ERR",
            "--radius",
            "10",
            "--prior-completeness",
            "0.9",
        ],
    )
    ours = run_ours(
        tmp_path,
        [
            "xmm.fits",
            "--catalog",
            "opt=opt.fits",
            "--catalog",
            "irac=irac.fits",
            "--pos-err",
            "opt=0.1",
            "--pos-err",
            "irac=ERR",
            "--radius",
            "10",
        ],
        capsys,
    )
    assert (ours["NCAT"] == 3).sum() > 500
    d_any, d_i, best, n = compare(nw, ours, "XMM_ID", "ID", ["OPT_ID", "IRAC_ID"], ["OPT_ID", "IRAC_ID"])
    _check(d_any, d_i, best)
    assert n == 600
