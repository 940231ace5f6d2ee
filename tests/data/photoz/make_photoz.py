"""Rebuild the photoz fixtures (three Parquet files) from the team's shared data folder.

    .venv/bin/python tests/data/photoz/make_photoz.py SHARED_DATA [OUT_DIR]

SHARED_DATA is the shared data folder (the one holding photoz/ and photoz/agn/); OUT_DIR defaults to
this folder.  Nothing is recomputed: the ASCII/CSV values are parsed and written as float64 (the
quasar names as strings), Parquet with zstd level 19.  With pyarrow 26.0.1 and pandas 3.1.1 the
output is byte-identical to the shipped files.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# MLZ's column order; the upstream train header omits `eu`, so the names are not read from the files.
MGS_NAMES = ["zs", "u", "g", "r", "i", "z", "u-g", "g-r", "r-i", "i-z",
             "eu", "eg", "er", "ei", "ez", "eu-g", "eg-r", "er-i", "ei-z"]  # fmt: skip
# The quasar columns kept: positions, FIRST `Radio` and `M_i` (computed from z) are dropped.
QSO_COLUMNS = ["SDSS_J", "z", "u_mag", "sig_u", "g_mag", "sig_g", "r_mag", "sig_r", "i_mag", "sig_i",
               "z_mag", "sig_z", "J_mag", "sig_J", "H_mag", "sig_H", "K_mag", "sig_K", "X.ray"]  # fmt: skip


def write(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", compression_level=19)
    print(f"{path}: {table.num_rows} rows x {table.num_columns} columns")


def main(shared: Path, out: Path) -> None:
    for part in ("train", "test"):  # the shared test file is already the project's random half
        values = np.loadtxt(shared / "photoz" / f"SDSS_MGS.{part}")
        write(pa.table({name: values[:, k] for k, name in enumerate(MGS_NAMES)}), out / f"sdss_mgs_{part}.parquet")
    quasars = pd.read_csv(shared / "photoz" / "agn" / "sdss_dr3_quasars.csv")[QSO_COLUMNS]
    write(pa.Table.from_pandas(quasars, preserve_index=False), out / "sdss_dr3_quasars.parquet")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).parent))
