"""Property-based round trips: any table of catalogue-like columns survives every binary format."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmmtools import tables as T

INT_TYPES = {
    "int16": (pa.int16(), -(2**15), 2**15 - 1),
    "int32": (pa.int32(), -(2**31), 2**31 - 1),
    "int64": (pa.int64(), -(2**63), 2**63 - 1),
}


@st.composite
def tables(draw):
    n = draw(st.integers(0, 25))
    cols, fields = [], []
    for k in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["f32", "f64", "int16", "int32", "int64", "bool", "str", "vec"]))
        name = f"C{k}_{kind.upper()}"
        if kind in ("f32", "f64"):
            width = 32 if kind == "f32" else 64
            vals = draw(st.lists(st.floats(width=width, allow_nan=True, allow_infinity=True), min_size=n, max_size=n))
            arr = pa.array(np.array(vals, dtype=np.float32 if width == 32 else np.float64))
        elif kind in INT_TYPES:
            typ, lo, hi = INT_TYPES[kind]
            vals = draw(st.lists(st.one_of(st.none(), st.integers(lo, hi)), min_size=n, max_size=n))
            arr = pa.array(vals, type=typ)
        elif kind == "bool":
            arr = pa.array(draw(st.lists(st.one_of(st.none(), st.booleans()), min_size=n, max_size=n)), type=pa.bool_())
        elif kind == "str":
            # FITS strips trailing blanks by definition; leading zeros and inner blanks survive
            text = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=12)
            vals = draw(st.lists(st.builds(lambda a, b: (a + " " + b).strip(), text, text), min_size=n, max_size=n))
            arr = pa.array(vals, type=pa.string())
        else:
            size = draw(st.integers(1, 4))
            flat = draw(st.lists(st.floats(width=32, allow_nan=True), min_size=n * size, max_size=n * size))
            arr = pa.FixedSizeListArray.from_arrays(pa.array(np.array(flat, np.float32)), size)
        cols.append(arr)
        fields.append(pa.field(name, arr.type, metadata=T.field_meta("deg" if k % 2 else "", f"column {k}")))
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def _py(v):
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if isinstance(v, list):
        return [_py(x) for x in v]
    return v


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.sampled_from(["fits", "fits.gz", "parquet", "arrow"]))
def test_any_table_roundtrips(t, ext):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"t.{ext}"
        T.write_table(t, p)
        back = T.read_table(p)
    assert back.schema.names == t.schema.names
    for f in t.schema:
        g = back.schema.field(f.name)
        assert g.type == f.type
        assert g.metadata == f.metadata
        assert [_py(v) for v in back.column(f.name).to_pylist()] == [_py(v) for v in t.column(f.name).to_pylist()]
