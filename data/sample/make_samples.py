"""Rebuild the shipped 4XMM samples from the project's shared data folder (run once, by hand).

    python data/sample/make_samples.py ../shared/data

Reads the verbatim XCatDB CSV exports described in README.md and writes typed 4XMM FITS
tables with the official column order, units and null conventions:

* only the 336 catalogue columns (the 21 XCatDB bookkeeping columns are dropped);
* types from the 4XMM schema (int64 DETID/SRCID, string OBS_ID/REVOLUT with leading zeros,
  logical TSERIES/VAR_FLAG/...);
* XCatDB nulls become FITS nulls: the literal string NULL, the integer sentinels -32768 and
  -2147483648 (written back as TNULL), and the float 0.0 that XCatDB writes where the FITS
  catalogue has NaN: every PN_/M1_/M2_ float of a camera whose filter is UNDEF (camera not
  used), *_CHI2PROB of detections without a time series (TSERIES false), and *_FVAR/*_FVARERR
  equal to 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from xmmtools.columns import schema
from xmmtools.tables import Provenance, field_meta, write_table

ARROW = {"float32": pa.float32(), "float64": pa.float64(), "int16": pa.int16(), "int32": pa.int32(),
         "int64": pa.int64(), "bool": pa.bool_(), "str": pa.string()}


def typed_4xmm(csv_path: Path) -> pa.Table:
    raw = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    sch = schema()
    arrays, fields = [], []
    cams_off = {cam: raw[f"{cam}_FILTER"].isin(["UNDEF", "", "NULL"]).to_numpy() for cam in ("PN", "M1", "M2")}
    no_ts = (raw["TSERIES"] != "true").to_numpy()
    for name, col in sch.items():
        if name not in raw:
            continue
        s = raw[name]
        null = (s == "NULL") | (s == "")
        if col.dtype == "str":
            arr = pa.array(np.where(null, "", s).tolist(), type=pa.string())
        elif col.dtype == "bool":
            arr = pa.array((s == "true").tolist(), mask=null.to_numpy(), type=pa.bool_())
        elif col.dtype.startswith("int"):
            v = pd.to_numeric(s.where(~null, "0")).astype("int64").to_numpy()
            mask = null.to_numpy() | np.isin(v, (-32768, -2147483648))
            arr = pa.array(v, mask=mask).cast(ARROW[col.dtype])
        else:
            v = pd.to_numeric(s.where(~null, "nan")).astype("float64").to_numpy().copy()
            cam = name[:2]
            if cam in cams_off and name[2] == "_":
                v[cams_off[cam]] = np.nan
            if name.endswith("_CHI2PROB"):
                v[no_ts & (v == 0.0)] = np.nan
            if name.endswith("_FVAR") or name.endswith("_FVARERR"):
                v[v == 0.0] = np.nan
            arr = pa.array(v.astype(col.dtype))
        arrays.append(arr)
        fields.append(pa.field(name, arr.type, metadata=field_meta(col.unit, col.description)))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def main(shared: str) -> None:
    root = Path(shared) / "4xmm" / "detections" / "derived"
    here = Path(__file__).resolve().parent
    jobs = [
        (root / "4xmm_dr10_ngc5139_detections.csv", here / "4xmm_dr10_ngc5139.fits", "4XMM-DR10"),
        (root / "4xmm_dr9_xcatdb_sample100_detections.csv",
         here.parent.parent / "tests" / "data" / "4xmm_dr9_sample100.fits", "4XMM-DR9"),
    ]
    for src, dst, cat in jobs:
        t = typed_4xmm(src)
        meta = {b"xmmtools.header": (
            '[["CATALOG", "%s", "XMM-Newton serendipitous source catalogue release"],'
            ' ["ORIGIN", "XCatDB (Saada) export, converted by xmmtools", ""]]' % cat).encode()}
        t = t.replace_schema_metadata(meta)
        write_table(t, dst, overwrite=True, provenance=Provenance("sample", {"source": src.name}, []))
        print(f"{dst}: {t.num_rows} rows x {t.num_columns} columns")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
