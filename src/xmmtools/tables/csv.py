"""CSV files (``.csv``, ``.csv.gz``) in the XSA style: ``#`` comment lines before the header,
empty = null (NaN also read as null), ``t``/``f`` booleans; known 4XMM columns keep their types
(OBS_ID its leading zeros)."""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterator, Sequence
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmmtools.errors import DataError, OutputError
from xmmtools.tables.atomic import TempFile, close_quietly
from xmmtools.tables.formats import short_error
from xmmtools.tables.model import column_kind
from xmmtools.tables.schema import check_read_names, missing_column, nan_nulls

CSV_NULLS = ["", "NULL", "null", "None", "NaN", "nan"]  # NaN: pandas/numpy-written CSVs (Lin+2024 XCLASS)
CSV_TRUE = ["t", "T", "true", "True", "TRUE"]
CSV_FALSE = ["f", "F", "false", "False", "FALSE"]


def _csv_header(p: str) -> tuple[list[str], int]:
    """Column names and the number of leading '#' comment lines."""
    opener = gzip.open if p.lower().endswith(".gz") else open
    try:
        with opener(p, "rt", newline="", encoding="utf-8", errors="strict") as f:
            skip = 0
            for line in f:
                if line.startswith("#"):
                    skip += 1
                    continue
                names = next(csv.reader([line]))
                return [n.strip() for n in names], skip
    except UnicodeDecodeError:
        raise DataError(f"{p}: unreadable CSV (not UTF-8 text)") from None
    except (OSError, EOFError, csv.Error) as e:
        raise DataError(f"{p}: unreadable CSV ({short_error(e)})") from None
    raise DataError(f"{p}: empty CSV file (no header line)")


def _csv_types(names: Sequence[str]) -> dict[str, pa.DataType]:
    """Force the types of known 4XMM text and boolean columns (OBS_ID keeps its leading zeros)."""
    from xmmtools.columns import canonical_names, schema

    sch = schema()
    types = {
        "str": pa.string(),
        "bool": pa.bool_(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "int16": pa.int16(),
        "int32": pa.int32(),
        "int64": pa.int64(),
    }
    out = {}
    for actual, canon in canonical_names(names).items():
        col = sch.get(canon)
        if col is not None and col.dtype in types:
            out[actual] = types[col.dtype]
    return out


def iter_csv(p: str, columns: Sequence[str] | None, chunk_rows: int | None) -> Iterator[pa.Table]:
    import pyarrow.csv as pcsv

    names, skip = _csv_header(p)
    if not any(names):
        raise DataError(f"{p}: CSV header line has no column names")
    check_read_names(names, p)
    if columns is not None:
        missing = [c for c in columns if c not in names]
        if missing:
            raise missing_column(missing[0], names, p)
    ropts = pcsv.ReadOptions(skip_rows=skip, block_size=8 * 2**20)
    copts = pcsv.ConvertOptions(
        column_types=_csv_types(names),
        null_values=CSV_NULLS,
        true_values=CSV_TRUE,
        false_values=CSV_FALSE,
        strings_can_be_null=True,
        include_columns=columns,
    )
    n = 0
    try:
        reader = pcsv.open_csv(
            p, read_options=ropts, convert_options=copts, parse_options=pcsv.ParseOptions(newlines_in_values=False)
        )
        schema = reader.schema
        for batch in reader:
            n += 1
            yield nan_nulls(_fix_null_columns(pa.Table.from_batches([batch], schema=schema)))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError) as e:
        msg = short_error(e)
        m = re.search(r"In CSV column #(\d+)", msg)
        if m and int(m.group(1)) < len(names):
            msg = f"column {names[int(m.group(1))]}: " + msg.split(": ", 1)[-1]
        raise DataError(f"{p}: unreadable CSV ({msg})") from None
    if n == 0:
        yield _fix_null_columns(schema.empty_table())


def _fix_null_columns(t: pa.Table) -> pa.Table:
    """An all-empty CSV column has Arrow type null: make it a float column of NaN."""
    for i, f in enumerate(t.schema):
        if pa.types.is_null(f.type):
            t = t.set_column(
                i, pa.field(f.name, pa.float64(), metadata=f.metadata), pa.array(np.full(t.num_rows, np.nan))
            )
    return t


def check_csv_writable(schema: pa.Schema, p: str) -> None:
    for f in schema:
        if column_kind(f.type) == "list":
            raise OutputError(
                f"{p}: CSV cannot hold the vector column {f.name}; write .parquet, .fits or .arrow instead"
            )


def csv_ready(t: pa.Table) -> pa.Table:
    """NaN -> empty (null), the XSA convention."""
    for i, f in enumerate(t.schema):
        if pa.types.is_floating(f.type):
            col = t.column(i)
            t = t.set_column(i, f, pc.if_else(pc.is_nan(col), pa.scalar(None, f.type), col))
    return t


class CsvWriter:
    """A CSV file (gzip-compressed for ``.gz``); NaN is written as empty."""

    def __init__(
        self, path: str, schema: pa.Schema, tmp: TempFile | None, stdout: BinaryIO | None, row_group_rows: int
    ) -> None:
        assert tmp is not None
        check_csv_writable(schema, path)
        import pyarrow.csv as pcsv

        self._sink = tmp.arrow_sink()
        try:
            if path.lower().endswith(".gz"):
                self._sink = pa.CompressedOutputStream(self._sink, "gzip")
            self._writer = pcsv.CSVWriter(self._sink, schema)
        except BaseException:
            close_quietly(self._sink)
            raise

    def write(self, chunk: pa.Table) -> None:
        self._writer.write_table(csv_ready(chunk))

    def close(self) -> None:
        self._writer.close()
        self._sink.close()

    def abort(self) -> None:
        close_quietly(self._writer, self._sink)
