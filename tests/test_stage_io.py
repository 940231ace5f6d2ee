"""The stage plumbing: column resolution, streaming, new columns, default names, empty tables."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DR9, SLIM_CSV

from xmmtools import tables as T
from xmmtools.columns import Need
from xmmtools.errors import ColumnError, DataError
from xmmtools.stage_io import default_output, load_for_stage, run_rowwise
from xmmtools.stages import StageSpec

SPEC = StageSpec("demo", "log of the flux", needs=[Need("EP_8_FLUX"), Need("RA")])


def _log_flux(cols):
    f = cols.float("EP_8_FLUX")
    with np.errstate(divide="ignore", invalid="ignore"):
        return [T.NewColumn("LOG_EP_8_FLUX", np.log10(f).astype(np.float32), "dex(erg/cm**2/s)", "log10 EP_8_FLUX")]


def test_default_output_names():
    assert default_output("cat.fits", "classify") == "cat_classify.fits"
    assert default_output("dir/cat.fits.gz", "photoz") == "dir/cat_photoz.fits.gz"
    assert default_output("x.parquet[1]", "s") == "x_s.parquet"
    assert default_output("-", "classify") == "-"


def test_run_rowwise_streams_chunks_and_keeps_every_input_column(tmp_path):
    out = tmp_path / "o.parquet"
    seen = []

    def compute(cols):
        seen.append(len(cols))
        return _log_flux(cols)

    path, rows = run_rowwise(str(DR9), str(out), spec=SPEC, compute=compute, parameters={"k": 1}, chunk_rows=30)
    assert rows == 100 and seen == [30, 30, 30, 10]
    t = T.read_table(out)
    assert t.num_columns == 337 and t.schema.names[-1] == "LOG_EP_8_FLUX"
    expect = np.log10(T.to_numpy(T.read_table(DR9, ["EP_8_FLUX"]).column("EP_8_FLUX")))
    np.testing.assert_allclose(T.to_numpy(t.column("LOG_EP_8_FLUX")), expect, rtol=1e-6)
    f = t.schema.field("LOG_EP_8_FLUX")
    assert T.unit_of(f) == "dex(erg/cm**2/s)" and T.description_of(f) == "log10 EP_8_FLUX"
    assert T.inspect_table(out).provenance[-1]["stage"] == "demo"


def test_run_rowwise_resolves_aliases_on_a_slim_table(tmp_path):
    spec = StageSpec("demo2", "", needs=[Need("SC_EP_8_FLUX"), Need("RA")])

    def compute(cols):
        assert cols.actual("SC_EP_8_FLUX") == "sc_ep_8_flux" and cols.actual("RA") == "sc_ra"
        return [T.NewColumn("X", cols.float("SC_EP_8_FLUX") * 2)]

    path, rows = run_rowwise(str(SLIM_CSV), str(tmp_path / "o.fits"), spec=spec, compute=compute, parameters={})
    assert rows == 200


def test_missing_column_is_reported_before_any_output(tmp_path):
    src = tmp_path / "no_hr2.parquet"
    names = [n for n in T.inspect_table(DR9).schema.names if n != "SC_HR2"]
    T.write_table(T.read_table(DR9, names), src)
    spec = StageSpec("classify", "", needs=[Need("SC_HR2")])
    with pytest.raises(ColumnError, match=r"classify needs column SC_HR2 .* has no such column \(closest: SC_HR1"):
        run_rowwise(str(src), str(tmp_path / "o.fits"), spec=spec, compute=_log_flux, parameters={})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no_hr2.parquet"]


def test_empty_table_is_a_data_error_and_writes_nothing(tmp_path):
    empty = tmp_path / "empty.parquet"
    T.write_table(T.read_table(DR9).slice(0, 0), empty)
    with pytest.raises(DataError, match="the table has no rows; nothing for demo to do"):
        run_rowwise(str(empty), str(tmp_path / "o.parquet"), spec=SPEC, compute=_log_flux, parameters={})
    assert not (tmp_path / "o.parquet").exists()
    with pytest.raises(DataError, match="has no rows"):
        load_for_stage(str(empty), SPEC)


def test_load_for_stage_reads_only_needed_columns():
    t, mapping = load_for_stage(str(DR9), SPEC, all_columns=False)
    assert sorted(t.schema.names) == ["EP_8_FLUX", "RA"] and mapping == {"EP_8_FLUX": "EP_8_FLUX", "RA": "RA"}
