"""`xmmtools crossmatch`: outputs, pipes, calibration, remote catalogues (mocked) and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from helpers import COSMOS, SAMPLE, run_cli, run_main

from xmmtools import tables
from xmmtools.crossmatch import bayes, remote
from xmmtools.crossmatch.bayes import Catalog
from xmmtools.crossmatch.poserr import PosErrors
from xmmtools.crossmatch.positional import nearest, search_around
from xmmtools.crossmatch.synthetic import counterparts
from xmmtools.tables.fits import reader as fits_reader


def _cosmos_head():
    t = tables.read_table(COSMOS)
    return t, (tables.to_numpy(t[c]) for c in ("RA", "DEC", "pos_err"))


def write_secondary(path, syn, *, skyarea=True, err=None, extra=None):
    cols = {"OID": np.arange(len(syn.ra)), "ra": syn.ra, "dec": syn.dec, "MAG": syn.mag, "TRUTH": syn.truth}
    if err is not None:
        cols.update(err)
    cols.update(extra or {})
    t = pa.table(cols)
    if skyarea:
        t = t.replace_schema_metadata({tables.HEADER_KEY: json.dumps([["SKYAREA", syn.area_deg2, "deg2"]]).encode()})
    tables.write_table(t, path)
    return path


@pytest.fixture(scope="module")
def opt(tmp_path_factory, cosmos_counterparts):
    syn = cosmos_counterparts
    folder = tmp_path_factory.mktemp("xm_cli")
    return write_secondary(folder / "opt.fits", syn), syn


def test_best_counterpart_output(opt, tmp_path, capsys):
    path, syn = opt
    out = tmp_path / "best.fits"
    code, _, err = run_main(
        ["crossmatch", COSMOS, "--catalog", f"opt={path}", "--pos-err", "opt=0.1", "-o", out], capsys
    )
    assert code == 0, err
    assert "header SKYAREA" in err and "wrote 300 rows" in err
    t = tables.read_table(out)
    prim, (ra, dec, pe) = _cosmos_head()
    assert t.num_rows == 300
    assert t["ID"].to_pylist() == prim["ID"].to_pylist()  # identifier kept, input order
    for c in ("OPT_OID", "OPT_RA", "OPT_MAG", "OPT_SEP", "OPT_P_I", "P_ANY", "P_I", "N_CANDIDATES"):
        assert c in t.schema.names
    assert tables.unit_of(t.schema.field("OPT_SEP")) == "arcsec"
    assert tables.description_of(t.schema.field("P_ANY"))
    # same numbers as the library call
    P = Catalog("X", ra, dec, PosErrors.circular(pe), 2.0)
    S = Catalog("OPT", syn.ra, syn.dec, PosErrors.circular(0.1, len(syn.ra)), syn.area_deg2)
    r = bayes.match(P, [S], 15.0)
    np.testing.assert_allclose(tables.to_numpy(t["P_ANY"]), r.p_any, rtol=1e-12)
    np.testing.assert_allclose(tables.to_numpy(t["OPT_P_I"]), tables.to_numpy(t["P_I"]))
    sep = tables.to_numpy(t["OPT_SEP"])
    assert np.nanmax(sep) < 15.0
    # known truth: confident matches are right
    truth_of = {int(j): i for i, j in zip(np.flatnonzero(syn.truth >= 0), syn.truth[syn.truth >= 0], strict=True)}
    oid = tables.to_numpy(t["OPT_OID"])
    pany = tables.to_numpy(t["P_ANY"])
    conf = np.flatnonzero(pany > 0.9)
    assert len(conf) > 100
    right = np.mean([truth_of.get(i) == oid[i] for i in conf])
    assert right > 0.9  # measured 0.947
    prov = tables.inspect_table(out).provenance[-1]
    assert prov["stage"] == "crossmatch" and prov["parameters"]["method"] == "bayes"


def test_positional_methods_equal_library(opt, tmp_path, capsys):
    path, syn = opt
    _, (ra, dec, _) = _cosmos_head()
    out = tmp_path / "near.parquet"
    code, _, err = run_main(
        ["crossmatch", COSMOS, "--catalog", f"opt={path}", "--method", "nearest", "--radius", "3", "-o", out], capsys
    )
    assert code == 0, err
    t = tables.read_table(out)
    j, s = nearest(ra, dec, syn.ra, syn.dec, 3.0)
    np.testing.assert_array_equal(np.nan_to_num(tables.to_numpy(t["OPT_OID"]), nan=-1), j)
    np.testing.assert_allclose(tables.to_numpy(t["OPT_SEP"]), s, equal_nan=True)
    out2 = tmp_path / "all.csv"
    code, _, err = run_main(
        ["crossmatch", COSMOS, "--catalog", f"opt={path}", "--method", "all", "--radius", "6", "-o", out2], capsys
    )
    assert code == 0, err
    t2 = tables.read_table(out2)
    p = search_around(ra, dec, syn.ra, syn.dec, 6.0)
    assert t2.num_rows == len(p) > 300
    np.testing.assert_array_equal(tables.to_numpy(t2["OPT_OID"]).astype(int), p.idx2)


def test_auto_method_without_errors_is_nearest(opt, tmp_path, capsys):
    path, _ = opt
    prim = tmp_path / "noerr.parquet"
    tables.write_table(tables.read_table(COSMOS, ["ID", "RA", "DEC"]), prim)
    code, _, err = run_main(["crossmatch", prim, "--catalog", f"opt={path}", "--radius", "2"], capsys)
    assert code == 0, err
    assert "nearest-neighbour" in err
    t = tables.read_table(tmp_path / "noerr_crossmatch.parquet")
    assert "OPT_SEP" in t.schema.names and "P_ANY" not in t.schema.names


def test_all_rows_min_prob_and_stdout_pipe(opt, tmp_path):
    path, _ = opt
    r = run_cli(
        [
            "crossmatch",
            COSMOS,
            "--catalog",
            f"opt={path}",
            "--pos-err",
            "opt=0.1",
            "--all",
            "--min-prob",
            "0.1",
            "-o",
            "-",
        ]
    )
    assert r.returncode == 0, r.stderr.decode()
    t = pa.ipc.open_stream(r.stdout).read_all()
    pi = t["P_I"].to_numpy()
    assert pi.min() >= 0.1 and set(t["MATCH_FLAG"].to_pylist()) <= {0, 1, 2}
    assert (t["MATCH_FLAG"].to_numpy() == 1).sum() == len(set(t["ID"].to_pylist()))
    assert b"candidate combinations" in r.stderr and b"wrote" not in r.stderr  # notes on stderr only


def test_4xmm_sample_with_gaia_like_catalogue(tmp_path, capsys):
    t = tables.read_table(SAMPLE, ["RA", "DEC", "POSERR", "SRCID"])
    srcid = t["SRCID"].to_pylist()
    ra, dec, poserr = (tables.to_numpy(t[c]) for c in ("RA", "DEC", "POSERR"))
    syn = counterparts(ra, dec, poserr / np.sqrt(2), density_deg2=5000.0, sigma_secondary=0.0005, seed=2)
    n = len(syn.ra)
    err = {"ra_error": np.full(n, 0.5), "dec_error": np.full(n, 0.5), "ra_dec_corr": np.zeros(n)}  # mas
    g = write_secondary(tmp_path / "gaia.parquet", syn, skyarea=False, err=err)
    out = tmp_path / "x.parquet"
    code, _, e = run_main(
        ["crossmatch", SAMPLE, "--catalog", f"gaia={g}", "--area", f"gaia={syn.area_deg2}", "-o", out], capsys
    )
    assert code == 0, e
    assert "POSERR / sqrt(2)" in e and "mas" in e and "(--area)" in e
    o = tables.read_table(out)
    assert o.num_rows == 52 and o.num_columns == 336 + 5 + 5 + 3
    assert o["DETID"].to_pylist() == tables.read_table(SAMPLE, ["DETID"])["DETID"].to_pylist()
    # 52 detections of 35 unique sources: a counterpart drawn for one detection belongs to all
    # detections with the same SRCID
    gid = tables.to_numpy(o["GAIA_OID"])
    pany = tables.to_numpy(o["P_ANY"])
    src_of = {int(k): srcid[int(syn.truth[k])] for k in np.flatnonzero(syn.truth >= 0)}
    confident = [i for i in range(52) if pany[i] > 0.5]
    good = [src_of.get(int(gid[i])) == srcid[i] for i in confident]
    assert len(confident) >= 35 and np.mean(good) >= 0.95, (len(confident), np.mean(good))


def test_calibration_table(opt, tmp_path, capsys):
    path, _ = opt
    out = tmp_path / "c.fits"
    code, _, err = run_main(
        ["crossmatch", COSMOS, "--catalog", f"opt={path}", "--pos-err", "opt=0.1", "--calibrate", "-o", out], capsys
    )
    assert code == 0, err
    assert "calibration (" in err and "FPR 5%" in err
    c = tables.read_table(tmp_path / "c_calibration.csv")
    cut, fpr, real = (tables.to_numpy(c[k]) for k in ("P_ANY_CUT", "FALSE_POSITIVE_RATE", "REAL_SELECTED"))
    assert len(cut) == 100 and np.all(np.diff(fpr) <= 0) and np.all(np.diff(real) <= 0)
    # fakes rarely look secure; real sources do
    i = int(np.flatnonzero(cut == 0.9)[0])
    assert fpr[i] < 0.1 < real[i]


# -- remote catalogues (astroquery replaced by fakes: no network here) -----------------------


def _fake_service(syn, calls):
    from astropy.table import Table

    def query(table, ra, dec, radius):
        calls.append((table, len(ra)))
        p = search_around(ra, dec, syn.ra, syn.dec, radius)
        rows = np.unique(p.idx2)
        t = Table(
            {
                "_q": np.ones(len(rows), int),
                "Source": rows,
                "RA_ICRS": syn.ra[rows],
                "DE_ICRS": syn.dec[rows],
                "e_RA_ICRS": np.full(len(rows), 100.0),
                "e_DE_ICRS": np.full(len(rows), 100.0),
                "e_Pos": np.full(len(rows), 0.1),
            }
        )
        t["e_RA_ICRS"].unit = t["e_DE_ICRS"].unit = "mas"  # as VizieR's Gaia DR3 table
        return t

    return query


def test_vizier_chunks_cache_and_provenance(opt, tmp_path, capsys, monkeypatch):
    _, syn = opt
    calls = []
    monkeypatch.setattr(remote, "query_vizier", _fake_service(syn, calls))
    monkeypatch.setitem(remote.CHUNK, "vizier", 100)
    args = [
        "crossmatch",
        COSMOS,
        "--catalog",
        "opt=vizier:I/999/test",
        "--cache-dir",
        tmp_path / "cache",
        "-o",
        tmp_path / "r.parquet",
    ]
    code, _, err = run_main(args, capsys)
    assert code == 0, err
    assert "e_RA_ICRS:e_DE_ICRS (1 sigma in RA cos Dec and Dec" in err  # VizieR Gaia errors found, mas unit
    assert [c[1] for c in calls] == [100, 100, 100] and calls[0][0] == "I/999/test"
    t = tables.read_table(tmp_path / "r.parquet")
    assert "OPT_SOURCE" in t.schema.names
    assert tables.unit_of(t.schema.field("OPT_E_RA_ICRS")) == "mas"
    rec = tables.inspect_table(tmp_path / "r.parquet").provenance[-1]["crossmatch"]["remote"][0]
    assert rec["service"] == "vizier" and rec["table"] == "I/999/test" and rec["query_date"]
    # the density comes from the area of the search cones: 300 cones of 15" at most
    assert 0 < rec["area_deg2"] <= 300 * np.pi * (15 / 3600) ** 2 * 1.001
    # second run: all from the cache, no query
    code, _, err = run_main(args + ["--overwrite"], capsys)
    assert code == 0, err and len(calls) == 3
    assert "(cache)" in err
    np.testing.assert_array_equal(
        tables.to_numpy(tables.read_table(tmp_path / "r.parquet")["P_ANY"]), tables.to_numpy(t["P_ANY"])
    )


def test_xmatch_service(opt, tmp_path, capsys, monkeypatch):
    _, syn = opt
    calls = []
    monkeypatch.setattr(remote, "query_xmatch", _fake_service(syn, calls))
    code, _, err = run_main(
        [
            "crossmatch",
            COSMOS,
            "--catalog",
            "opt=xmatch:I/999/test",
            "--pos-err",
            "opt=0.1",
            "--cache-dir",
            tmp_path,
            "-o",
            tmp_path / "x.parquet",
        ],
        capsys,
    )
    assert code == 0, err
    assert len(calls) == 1 and calls[0][1] == 300


def test_offline_is_one_line_error(tmp_path, capsys, monkeypatch):
    def offline(*a):
        raise ConnectionError("Failed to establish a new connection: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(remote, "query_vizier", offline)
    monkeypatch.setattr(remote, "PAUSE", 0.0)
    code, out, err = run_main(
        [
            "crossmatch",
            COSMOS,
            "--catalog",
            "gaia=vizier:I/355/gaiadr3",
            "--cache-dir",
            tmp_path,
            "-o",
            tmp_path / "o.fits",
        ],
        capsys,
    )
    assert code == 1
    assert err.startswith("error: cannot query vizier for I/355/gaiadr3 after 3 attempts (ConnectionError")
    assert err.count("\n") == 1 and not (tmp_path / "o.fits").exists()


# -- bad inputs: one line, exit 1 ---------------------------------------------------------


def _bad_files(tmp):
    t = tables.read_table(COSMOS)
    ra = tables.to_numpy(t["RA"]).copy()
    dec = tables.to_numpy(t["DEC"]).copy()
    nan = t.set_column(1, "RA", pa.array(np.where(np.arange(300) == 7, np.nan, ra)))
    tables.write_table(nan, tmp / "nan.parquet")
    big = t.set_column(2, "DEC", pa.array(np.where(np.arange(300) == 3, 95.0, dec)))
    tables.write_table(big, tmp / "dec95.parquet")
    far = pa.table({"ra": ra + 180.0, "dec": -dec, "e": np.full(300, 0.1)})
    tables.write_table(far, tmp / "far.parquet")
    noerr = pa.table({"ra": ra, "dec": dec})
    tables.write_table(noerr, tmp / "noerr.parquet")
    zero = pa.table({"ra": ra, "dec": dec, "pos_err": np.zeros(300)})
    tables.write_table(zero, tmp / "zero.parquet")
    (tmp / "bad_mag.txt").write_text("# lo hi selected others\n1 2 3\n")
    (tmp / "exists.fits").write_text("x")
    (tmp / "bad_moc.txt").write_text("3/1-5 0/12\n")  # order 0 has cells 0..11 only
    (tmp / "latin1_moc.txt").write_bytes("3/1-5 \u00e9\n".encode("latin-1"))
    tables.write_table(pa.table({"UNIQ": ["100", "101"]}), tmp / "text_uniq.parquet")
    tables.write_table(pa.table({"UNIQ": pa.array([100, None], pa.int64())}), tmp / "null_uniq.parquet")


BAD = [
    (["--catalog", "opt"], "is not NAME=VALUE"),
    (["--catalog", "opt={tmp}/missing.fits"], "no such file"),
    (["--catalog", "opt={tmp}/far.parquet", "--pos-err", "xyz=0.1"], "neither the primary"),
    (["--catalog", "opt={tmp}/noerr.parquet", "--method", "bayes"], "no positional-error column"),
    (["--catalog", "opt={tmp}/zero.parquet"], "is missing or not positive"),
    (["--catalog", "opt={tmp}/far.parquet", "--pos-err", "opt=e", "--area", "opt=1"], "footprints do not overlap"),
    (
        ["--catalog", "opt={tmp}/far.parquet", "--catalog", "b={tmp}/far.parquet", "--method", "all"],
        "one counterpart catalogue at a time",
    ),
    (
        ["--catalog", "opt={tmp}/far.parquet", "--pos-err", "opt=e", "--mag", "opt:e", "{tmp}/nothere.txt"],
        "cannot read",
    ),
    (
        ["--catalog", "opt={tmp}/far.parquet", "--pos-err", "opt=e", "--mag", "opt:e", "{tmp}/bad_mag.txt"],
        "expected rows of 4 numbers",
    ),
    (["--catalog", "opt={tmp}/far.parquet", "--mag", "gaia:G", "auto"], "is not a --catalog name"),
    (["--catalog", "opt={tmp}/far.parquet", "--pos-err", "opt=e", "--prior-completeness", "2"], r"in (0, 1]"),
    (["--catalog", "opt=-"], "only the primary can be read from stdin"),
    (["--catalog", "opt={tmp}/far.parquet", "--pos-err", "opt=e", "--min-prob", "0.5"], "trims the rows of --all"),
    (["--catalog", "opt=vizier:"], "expected vizier:TABLE"),
    (["--catalog", "opt={tmp}/far.parquet", "--pos-err", "opt=nosuch"], "no column 'nosuch'"),
    (["--catalog", "opt={tmp}/far.parquet", "-o", "{tmp}/exists.fits"], "exists"),
    (["--catalog", "opt={tmp}/far.parquet", "--pos-err", "opt=-1"], "must be a positive number"),
    (["--catalog", "opt={tmp}/far.parquet", "--area", "opt={tmp}/nomoc.fits"], "no such MOC file"),
    (["--catalog", "opt={tmp}/far.parquet", "--area", "opt={tmp}/far.parquet"], "not a MOC (no UNIQ/NUNIQ column"),
    (["--catalog", "opt={tmp}/far.parquet", "--area", "opt={tmp}/bad_moc.txt"], "is not a valid HEALPix cell"),
    (["--catalog", "opt={tmp}/far.parquet", "--area", "opt={tmp}/latin1_moc.txt"], "not an ASCII MOC"),
    (["--catalog", "opt={tmp}/far.parquet", "--area", "opt={tmp}/text_uniq.parquet"], "not integers"),
    (["--catalog", "opt={tmp}/far.parquet", "--area", "opt={tmp}/null_uniq.parquet"], "1 null values"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_inputs_one_line(tmp_path, capsys, args, message):
    _bad_files(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "out.fits")]
    code, out, err = run_main(["crossmatch", COSMOS, *args], capsys)
    assert code == 1, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err


@pytest.mark.parametrize(
    "primary,message",
    [
        ("nan.parquet", "missing (NaN/null) RA or DEC, first at row 7"),
        ("dec95.parquet", "DEC=95 at row 3 is outside [-90, 90]"),
    ],
)
def test_bad_primary_coordinates(tmp_path, capsys, primary, message):
    _bad_files(tmp_path)
    code, _, err = run_main(
        [
            "crossmatch",
            tmp_path / primary,
            "--catalog",
            f"opt={tmp_path}/far.parquet",
            "--pos-err",
            "opt=e",
            "-o",
            tmp_path / "o.fits",
        ],
        capsys,
    )
    assert code == 1 and message in err and err.count("\n") == 1, err


def test_help_shows_example():
    r = run_cli(["crossmatch", "--help"])
    assert r.returncode == 0 and b"xmmtools crossmatch cat.fits --catalog" in r.stdout


def test_columns_map_for_unusual_coordinate_names(opt, tmp_path, capsys):
    path, _ = opt
    t = tables.read_table(COSMOS).rename_columns(["ID", "alpha", "delta", "sig"])
    tables.write_table(t, tmp_path / "odd.parquet")
    out = tmp_path / "odd_x.parquet"
    code, _, err = run_main(
        [
            "crossmatch",
            tmp_path / "odd.parquet",
            "--columns",
            "RA=alpha,DEC=delta",
            "--pos-err",
            "primary=sig",
            "--catalog",
            f"opt={path}",
            "--pos-err",
            "opt=0.1",
            "-o",
            out,
        ],
        capsys,
    )
    assert code == 0, err
    ref = tables.read_table(COSMOS)
    code, _, err = run_main(
        ["crossmatch", COSMOS, "--catalog", f"opt={path}", "--pos-err", "opt=0.1", "-o", tmp_path / "ref.parquet"],
        capsys,
    )
    assert code == 0, err
    np.testing.assert_array_equal(
        tables.to_numpy(tables.read_table(out)["P_ANY"]),
        tables.to_numpy(tables.read_table(tmp_path / "ref.parquet")["P_ANY"]),
    )
    assert ref.num_rows == 300
    code, _, err = run_main(
        ["crossmatch", tmp_path / "odd.parquet", "--catalog", f"opt={path}", "-o", tmp_path / "o2.parquet"], capsys
    )
    assert code == 1 and "crossmatch needs column RA" in err and err.count("\n") == 1


def test_moc_area_formats(tmp_path):
    from xmmtools.crossmatch.priors import moc_area

    full_sky = 4 * np.pi * (180 / np.pi) ** 2
    # order 0 cell 3 (1/12 of the sky) + cells 4..7 of order 1 (4/48 = one order-0 cell)
    uniq = np.array([4 + 3, 16 + 4, 16 + 5, 16 + 6, 16 + 7, 16 + 7], dtype=np.int64)  # one duplicate
    tables.write_table(pa.table({"UNIQ": uniq}), tmp_path / "m.fits")
    (tmp_path / "m.json").write_text(json.dumps({"0": [3], "1": [4, 5, 6, 7]}))
    (tmp_path / "m.txt").write_text("0/3 1/4-6 7\n")
    for name in ("m.fits", "m.json", "m.txt"):
        area, note = moc_area(str(tmp_path / name))
        assert area == pytest.approx(full_sky / 6, rel=1e-12), name
        assert "5 cells, order <= 1" in note
    # deep cells: NUNIQ at order 29 decoded with integers (floats would round the order)
    deep = np.array([4 * 4**29 + 12 * 4**29 - 1], dtype=np.int64)
    tables.write_table(pa.table({"NUNIQ": deep}), tmp_path / "deep.parquet")
    area, note = moc_area(str(tmp_path / "deep.parquet"))
    assert area == pytest.approx(full_sky / (12 * 4.0**29), rel=1e-12)
    assert "order <= 29" in note


def test_area_from_a_moc_matches_the_same_number(opt, tmp_path, capsys):
    # the sensitivity stage's MOC of a field, used as the counterpart catalogue's area
    path, syn = opt
    from xmmtools.sensitivity.maps import moc_uniq

    order = 10
    import healpy as hp

    cells = np.unique(hp.ang2pix(2**order, syn.ra, syn.dec, nest=True, lonlat=True))
    moc = tmp_path / "opt_moc.fits"
    tables.write_table(pa.table({"UNIQ": moc_uniq(cells, order)}), moc)
    area = len(cells) * hp.nside2pixarea(2**order, degrees=True)
    outs = []
    for value in (str(moc), repr(float(area))):
        out = tmp_path / f"o{len(outs)}.fits"
        code, _, err = run_main(
            [
                "crossmatch",
                COSMOS,
                "--catalog",
                f"opt={path}",
                "--pos-err",
                "opt=0.1",
                "--area",
                f"opt={value}",
                "-o",
                out,
            ],
            capsys,
        )
        assert code == 0, err
        outs.append(tables.to_numpy(tables.read_table(out)["P_ANY"]))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-9)
    rec = tables.provenance_of(tables.read_table(tmp_path / "o0.fits").schema)[-1]
    assert "MOC opt_moc.fits" in rec["crossmatch"]["catalogues"]["OPT"]["area"]


@pytest.mark.parametrize(
    "extra",
    [[], ["--all"], ["--method", "nearest"], ["--method", "all"], ["--calibrate"], ["--mag", "opt:MAG", "auto"]],
    ids=["best", "all-rows", "nearest", "all-pairs", "calibrate", "mag-auto"],
)
def test_streamed_counterparts_give_the_same_output(opt, tmp_path, capsys, monkeypatch, extra):
    # a counterpart file above --stream-rows is read in chunks keeping only the sources near the
    # primaries; the densities still count every row, so every output column is identical
    path, syn = opt
    monkeypatch.setattr(fits_reader, "FITS_CHUNK_BYTES", 7 * 1024 * 40)  # many chunks
    outs = []
    for stream in ("100000000", "1000"):
        out = tmp_path / f"s{stream}.fits"
        args = [
            "crossmatch",
            COSMOS,
            "--catalog",
            f"opt={path}",
            "--pos-err",
            "opt=0.1",
            "--stream-rows",
            stream,
            "-o",
            out,
            *extra,
        ]
        if "--calibrate" in extra:
            args += ["--calibrate-out", tmp_path / f"cal{stream}.csv"]
        code, _, err = run_main(args, capsys)
        assert code == 0, err
        outs.append(tables.read_table(out))
        if stream == "1000":
            assert f"{len(syn.ra)} rows streamed" in err
    a, b = outs
    assert a.schema.names == b.schema.names and a.num_rows == b.num_rows
    for c in a.schema.names:
        assert a.column(c).to_pylist() == b.column(c).to_pylist() or np.allclose(
            tables.to_numpy(a[c]), tables.to_numpy(b[c]), rtol=0, atol=0, equal_nan=True
        ), c
    if "--calibrate" in extra:
        ca, cb = (tables.read_table(tmp_path / f"cal{s}.csv") for s in ("100000000", "1000"))
        assert ca.equals(cb)
    rec = tables.provenance_of(b.schema)[-1]["crossmatch"]["catalogues"]["OPT"]
    assert rec["rows"] == len(syn.ra) and rec["rows_matched"] < 0.5 * len(syn.ra)


def test_streamed_counterparts_footprint_area_and_bad_rows(tmp_path, capsys, monkeypatch):
    _, (ra, dec, pe) = _cosmos_head()
    syn = counterparts(ra, dec, pe, density_deg2=40000.0, seed=22)
    p = write_secondary(tmp_path / "noarea.parquet", syn, skyarea=False)
    outs = []
    for stream in ("100000000", "10"):
        out = tmp_path / f"f{stream}.parquet"
        code, _, err = run_main(
            ["crossmatch", COSMOS, "--catalog", f"opt={p}", "--pos-err", "opt=0.1", "--stream-rows", stream, "-o", out],
            capsys,
        )
        assert code == 0, err
        assert "HEALPix footprint" in err
        outs.append(tables.to_numpy(tables.read_table(out)["P_ANY"]))
    np.testing.assert_array_equal(outs[0], outs[1])  # the position sample is the whole file here
    # a bad coordinate far from every primary is still reported, with its file row
    t = tables.read_table(p)
    dec_bad = tables.to_numpy(t["dec"]).copy()
    dec_bad[-3] = 95.0
    bad = tmp_path / "bad.parquet"
    tables.write_table(t.set_column(t.schema.get_field_index("dec"), "dec", pa.array(dec_bad)), bad)
    code, _, err = run_main(
        [
            "crossmatch",
            COSMOS,
            "--catalog",
            f"opt={bad}",
            "--pos-err",
            "opt=0.1",
            "--stream-rows",
            "10",
            "-o",
            tmp_path / "x.fits",
        ],
        capsys,
    )
    assert code == 1 and f"DEC=95 at row {t.num_rows - 3} is outside" in err and err.count("\n") == 1
    # no counterpart near any primary: the non-overlap error, not an empty success
    far = tmp_path / "far.parquet"
    tables.write_table(
        pa.table({"ra": (tables.to_numpy(t["ra"]) + 180.0) % 360, "dec": -tables.to_numpy(t["dec"])}), far
    )
    code, _, err = run_main(
        [
            "crossmatch",
            COSMOS,
            "--catalog",
            f"opt={far}",
            "--pos-err",
            "opt=0.1",
            "--area",
            "opt=2",
            "--stream-rows",
            "10",
            "-o",
            tmp_path / "y.fits",
        ],
        capsys,
    )
    assert code == 1 and "footprints do not overlap" in err
