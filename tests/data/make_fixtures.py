"""Rebuild the three top-level fixtures of tests/data/ from the team's shared data folder.

    .venv/bin/python tests/data/make_fixtures.py SHARED_DATA [OUT_DIR]

SHARED_DATA is the shared data folder (the one holding 4xmm/ and crossmatch/); OUT_DIR defaults to
this folder.  Run from a checkout with xmmtools installed (needed for the 4XMM-DR9 sample only).

* ``xmm_ml_slim_200.csv``: the first 201 lines (header + 200 rows) of the shared XMM_ML.csv, bytes
  untouched (CRLF line ends), i.e. ``head -201``.  Byte-identical.
* ``cosmos_xmm_head.fits``: the first 300 rows of the shared COSMOS_XMM.fits with its extension
  keywords, the TTYPE comments as TCOMMn and a TNULL1 for the int32 ID (the layout xmmtools' FITS
  writer gave it in 2026-11), written with astropy.  Byte-identical.
* ``4xmm_dr9_sample100.fits``: typed from the shared XCatDB CSV by ``typed_4xmm`` of
  data/sample/make_samples.py (the script that first made it) and written by today's xmmtools
  FITS writer, with the provenance date pinned to the original run.  Data bytes identical; the
  header has the same columns, units, descriptions and keyword values, but today's writer declares
  TNULLn only for integer columns that hold nulls and wraps long cards differently (see README.md).
"""

import importlib.util
import os
import sys
from pathlib import Path

from astropy.io import fits

HERE = Path(__file__).resolve().parent
MAKE_SAMPLES = HERE.parents[1] / "data" / "sample" / "make_samples.py"  # typed_4xmm lives there
DR9_DATE = "1795304873"  # 2026-11-21T23:47:53Z, the date recorded in the shipped file's provenance


def xmm_ml_head(shared: Path, out: Path) -> None:
    with open(shared / "4xmm" / "CVKuala__XMM_ML_imblearn" / "XMM_ML.csv", "rb") as f:
        lines = [f.readline() for _ in range(201)]
    (out / "xmm_ml_slim_200.csv").write_bytes(b"".join(lines))


def cosmos_head(shared: Path, out: Path, nrows: int = 300) -> None:
    with fits.open(shared / "crossmatch" / "COSMOS_XMM.fits") as hdul:
        src = hdul[1]
        cols = [
            fits.Column(name=c.name, format=c.format, null=-(2**31) if c.format == "J" else None,
                        array=src.data[c.name][:nrows])
            for c in src.columns
        ]  # fmt: skip
        hdu = fits.BinTableHDU.from_columns(cols)
        for k in range(1, len(cols) + 1):
            hdu.header[f"TCOMM{k}"] = src.header.comments[f"TTYPE{k}"]
        for key in ("EXTNAME", "DATE-HDU", "STILVERS", "STILCLAS", "SKYAREA"):
            hdu.header.append((key, src.header[key], src.header.comments[key]))
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(out / "cosmos_xmm_head.fits", overwrite=True)


def dr9_sample(shared: Path, out: Path) -> None:
    os.environ["SOURCE_DATE_EPOCH"] = DR9_DATE  # read by xmmtools for the provenance date
    spec = importlib.util.spec_from_file_location("make_samples", MAKE_SAMPLES)
    assert spec is not None and spec.loader is not None
    samples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(samples)
    from xmmtools.tables import Provenance, write_table

    src = shared / "4xmm" / "detections" / "derived" / "4xmm_dr9_xcatdb_sample100_detections.csv"
    header = ('[["CATALOG", "4XMM-DR9", "XMM-Newton serendipitous source catalogue release"],'
              ' ["ORIGIN", "XCatDB (Saada) export, converted by xmmtools", ""]]')  # fmt: skip
    table = samples.typed_4xmm(src).replace_schema_metadata({b"xmmtools.header": header.encode()})
    write_table(table, out / "4xmm_dr9_sample100.fits", overwrite=True,
                provenance=Provenance("sample", {"source": src.name}, []))  # fmt: skip


def main(shared: Path, out: Path) -> None:
    xmm_ml_head(shared, out)
    cosmos_head(shared, out)
    dr9_sample(shared, out)
    print(f"{out}: xmm_ml_slim_200.csv, cosmos_xmm_head.fits, 4xmm_dr9_sample100.fits")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else HERE))
