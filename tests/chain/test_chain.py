"""Stages chain: each keeps every input column, adds its own, and extends the provenance."""

from __future__ import annotations

import subprocess
import sys

from helpers import SAMPLE

from xmmtools import tables as T


def test_classify_then_long_term_variability_through_a_pipe(tmp_path):
    out = tmp_path / "chain.fits"
    p1 = subprocess.Popen(
        [sys.executable, "-m", "xmmtools", "-q", "classify", str(SAMPLE), "-o", "-"], stdout=subprocess.PIPE
    )
    p2 = subprocess.run(
        [sys.executable, "-m", "xmmtools", "-q", "variability", "long", "-", "-o", str(out)],
        stdin=p1.stdout,
        capture_output=True,
        timeout=300,
    )
    p1.stdout.close()
    assert p1.wait(timeout=120) == 0 and p2.returncode == 0, p2.stderr
    t = T.read_table(out)
    names = t.schema.names
    # all 336 catalogue columns, then classify's, then variability's
    assert names[:336] == T.inspect_table(SAMPLE).schema.names
    assert {"CLASS", "P_AGN", "OUTLIER_SCORE", "LT_VAR_RATIO", "LT_N_EPOCHS"} <= set(names)
    assert names.index("CLASS") < names.index("LT_VAR_RATIO")
    assert t.num_rows == 52
    chain = T.inspect_table(out).provenance
    assert [s["stage"] for s in chain] == ["sample", "classify", "variability-long"]
    # every new column says what it is
    for name in ("CLASS", "P_AGN", "LT_VAR_RATIO"):
        assert T.description_of(t.schema.field(name))
