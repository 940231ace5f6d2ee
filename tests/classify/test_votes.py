"""Crowd labels: consensus of volunteer votes (synthetic votes: the rule is what is checked)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_main

from xmmtools import tables
from xmmtools.classify.votes import consensus

VOTES = """SOURCE_ID,USER,CLASS,SUCCESS
1,a,AGN,0.9
1,b,AGN,0.8
1,c,STAR,0.2
1,a,STAR,0.9
2,a,CV,0.9
2,b,STAR,0.5
2,c,STAR,0.5
3,a,,0.9
4,b,AGN,0.8
"""


def test_weighted_consensus_by_hand():
    src = [1, 1, 1, 1, 2, 2, 2]
    user = ["a", "b", "c", "a", "a", "b", "c"]
    cls = ["AGN", "AGN", "STAR", "STAR", "CV", "STAR", "STAR"]
    ids, cols = consensus(src, user, cls, [0.9, 0.8, 0.2, 0.9, 0.9, 0.5, 0.5], min_votes=3)
    c = {x.name: x.values for x in cols}
    assert ids.tolist() == [1, 2]
    # source 1: user a's second vote is ignored; AGN 0.9 + 0.8 vs STAR 0.2
    assert c["LABEL"].tolist() == ["AGN", "STAR"]
    assert c["AGREEMENT"] == pytest.approx([1.7 / 1.9, 1.0 / 1.9])
    assert c["N_VOTES"].tolist() == [3, 3]
    # unweighted, source 2 is still STAR (2 of 3)
    _, cols = consensus(src, user, cls, None, min_votes=3)
    assert {x.name: x.values for x in cols}["AGREEMENT"] == pytest.approx([2 / 3, 2 / 3])


def test_too_few_votes_give_no_label():
    _, cols = consensus([5] * 19, [f"u{i}" for i in range(19)], ["CV"] * 19)
    assert cols[0].values.tolist() == [""] and cols[2].values.tolist() == [19]
    _, cols = consensus([5] * 20, [f"u{i}" for i in range(20)], ["CV"] * 20)
    assert cols[0].values.tolist() == ["CV"] and cols[1].values.tolist() == [1.0]


def test_votes_cli(tmp_path, capsys):
    v = tmp_path / "votes.csv"
    v.write_text(VOTES)
    out = tmp_path / "labels.parquet"
    code, _, err = run_main(
        ["classify", "votes", v, "--success-column", "SUCCESS", "--min-votes", "2", "-o", out], capsys
    )
    assert code == 0, err
    assert "4 sources, 2 with a consensus label" in err
    t = tables.read_table(out)
    assert t.column("SOURCE_ID").to_pylist() == [1, 2, 3, 4]
    assert t.column("LABEL").to_pylist() == ["AGN", "STAR", "", ""]
    assert np.asarray(t.column("N_VOTES")).tolist() == [3, 3, 0, 1]
    assert tables.inspect_table(out).provenance[-1]["stage"] == "classify-votes"
    code, _, err = run_main(["classify", "votes", v, "--user-column", "VOLUNTEER", "-o", tmp_path / "x.csv"], capsys)
    assert code == 1 and err.startswith("error: ") and "has no column 'VOLUNTEER'" in err
