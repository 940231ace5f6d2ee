"""Long-term variability on a catalogue without any source key column (found by mypy)."""

from __future__ import annotations

import numpy as np
from helpers import SAMPLE, run_main

from xmmtools import tables


def test_positions_without_a_source_key_group_by_row(tmp_path, capsys):
    t = tables.read_table(str(SAMPLE))
    keep = [n for n in t.schema.names if n not in ("DETID", "SRCID", "IAUNAME", "SRC_NUM", "NAME")]
    src = tmp_path / "nokey.parquet"
    tables.write_table(t.select(keep), str(src))
    out = tmp_path / "lt.parquet"
    code, _, err = run_main(["variability", "long", src, "-o", out], capsys)
    assert code == 0, err
    res = tables.read_table(str(out))
    assert res.num_rows == 52
    # each row is its own source: one epoch each, so no ratio can be formed
    assert (tables.to_numpy(res["LT_N_EPOCHS"]) == 1).all()
    assert np.isnan(tables.to_numpy(res["LT_VAR_RATIO"]).astype(float)).all()
