"""Issue 19: catalogue mode of `variability short` says how many rows matched no light curve and
leaves their flags null (unknown), never false.  Real light curves of 0831790701
(tests/data/variability/lc, README there); the second row lies where no curve was extracted."""

from __future__ import annotations

import pyarrow as pa
from helpers import DATA, run_main

from xmmtools import tables

LC = DATA / "variability" / "lc"


def test_unmatched_rows_get_a_note_and_null_flags(tmp_path, capsys):
    cat = tmp_path / "cat.parquet"
    cols = {"OBS_ID": ["0831790701", "0831790701"], "RA": [19.785856, 10.0], "DEC": [-34.191667, 10.0]}
    tables.write_table(pa.table(cols), str(cat))
    out = tmp_path / "v.parquet"
    code, _, err = run_main(["variability", "short", cat, "--lightcurves", LC, "-o", out], capsys)
    assert code == 0, err
    # before issue 19: no note; the flags were already null
    assert "note: 1 of 2 catalogue rows matched no light curve" in err
    matched, unmatched = tables.read_table(str(out)).to_pylist()
    assert matched["XT_VAR_FLAG"] is True and matched["XT_N_LC"] > 0
    assert unmatched["XT_N_LC"] == 0
    flags = [k for k in unmatched if k.endswith("VAR_FLAG")]
    assert flags and all(unmatched[k] is None for k in flags)
