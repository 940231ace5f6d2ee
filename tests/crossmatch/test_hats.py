"""Counterparts from a HATS catalogue read with LSDB (the scale path): same answers as a file."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pyarrow as pa
import pytest
from helpers import COSMOS, run_main

from xmmtools import tables

lsdb = pytest.importorskip("lsdb")
# every test reads the LSDB-built HATS catalogue of the module fixture (~5 s to build)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def opt_hats(tmp_path_factory, cosmos_counterparts):
    syn = cosmos_counterparts
    folder = tmp_path_factory.mktemp("hats")
    table = pa.table({"OID": np.arange(len(syn.ra)), "ra": syn.ra, "dec": syn.dec, "MAG": syn.mag})
    tables.write_table(table, folder / "opt.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cat = lsdb.from_dataframe(
            table.to_pandas(), ra_column="ra", dec_column="dec", lowest_order=3, highest_order=9, partition_rows=20000
        )
        cat.to_hats(folder / "opt_hats", catalog_name="opt", overwrite=True, progress_bar=False)
    return folder, syn


def _same(a, b):
    assert a.column_names == b.column_names and a.num_rows == b.num_rows
    for c in a.column_names:
        x, y = a.column(c).to_pylist(), b.column(c).to_pylist()
        if x != y:
            np.testing.assert_array_equal(np.array(x, dtype=float), np.array(y, dtype=float), err_msg=c)


@pytest.mark.parametrize("extra", [[], ["--all"], ["--method", "nearest"]], ids=["best", "all", "nearest"])
def test_hats_catalogue_gives_the_file_answer(opt_hats, tmp_path, capsys, extra):
    folder, syn = opt_hats
    outs = []
    for src in (folder / "opt.parquet", f"hats:{folder / 'opt_hats'}"):
        out = tmp_path / f"o{len(outs)}.parquet"
        code, _, err = run_main(
            [
                "crossmatch",
                COSMOS,
                "--catalog",
                f"opt={src}",
                "--pos-err",
                "opt=0.1",
                "--area",
                f"opt={syn.area_deg2}",
                "-o",
                out,
                "-q",
                *extra,
            ],
            capsys,
        )
        assert code == 0, err
        outs.append(tables.read_table(out))
    _same(*outs)
    rec = tables.provenance_of(outs[1].schema)[-1]["crossmatch"]["catalogues"]["OPT"]
    assert rec["rows"] == len(syn.ra) and rec["rows_matched"] < len(syn.ra) / 2


def test_hats_area_from_its_skymap_and_messages(opt_hats, tmp_path, capsys):
    folder, syn = opt_hats
    code, _, err = run_main(
        [
            "crossmatch",
            COSMOS,
            "--catalog",
            f"opt={folder / 'opt_hats'}",
            "--pos-err",
            "opt=0.1",
            "-o",
            tmp_path / "a.fits",
        ],
        capsys,
    )
    assert code == 0, err
    assert "(read with LSDB)" in err and "HATS skymap footprint" in err
    rec = tables.provenance_of(tables.read_table(tmp_path / "a.fits").schema)[-1]["crossmatch"]["catalogues"]["OPT"]
    assert rec["area_deg2"] == pytest.approx(syn.area_deg2, rel=0.02)  # 1.1529 vs 1.1581 deg2


@pytest.mark.parametrize(
    "case,message",
    [
        ("missing", "no such HATS catalogue directory"),
        ("garbage", "not a readable HATS catalogue"),
        ("no_lsdb", "needs LSDB: pip install 'xmmtools[scale]'"),
        ("bad_err", "no column 'e_pos'"),
    ],
)
def test_hats_bad_inputs_one_line(opt_hats, tmp_path, capsys, monkeypatch, case, message):
    folder, _ = opt_hats
    src = f"hats:{folder / 'opt_hats'}"
    pos = "opt=0.1"
    if case == "missing":
        src = f"hats:{tmp_path / 'nope'}"
    elif case == "garbage":
        (tmp_path / "g").mkdir()
        (tmp_path / "g" / "hats.properties").write_text("not a catalogue\n")
        src = str(tmp_path / "g")
    elif case == "no_lsdb":
        monkeypatch.setitem(sys.modules, "lsdb", None)
    else:
        pos = "opt=e_pos"
    code, _, err = run_main(
        ["crossmatch", COSMOS, "--catalog", f"opt={src}", "--pos-err", pos, "-o", tmp_path / "x.fits"], capsys
    )
    assert code == 1, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err


def test_info_on_a_hats_catalogue(opt_hats, capsys):
    folder, syn = opt_hats
    for path in (folder / "opt_hats", f"hats:{folder / 'opt_hats'}"):
        code, out, err = run_main(["info", path], capsys)
        assert code == 0, err
        assert "format:   hats" in out and f"rows:     {len(syn.ra)}" in out
        assert "crossmatch counterpart catalogue" in out and "classify" not in out
    code, out, _ = run_main(["info", "--json", folder / "opt_hats"], capsys)
    import json

    d = json.loads(out)
    assert d["format"] == "hats" and [c["name"] for c in d["columns"]][:4] == ["OID", "ra", "dec", "MAG"]
    code, _, err = run_main(["info", f"hats:{folder / 'nope'}"], capsys)
    assert code == 1 and "no such HATS catalogue directory" in err and err.count("\n") == 1
