"""Every byte that touches disk: reading and writing catalogue tables.

Formats are chosen by extension: FITS (``.fits``, ``.fit``, ``.fts``, ``.fits.gz``, ``.ftz``),
Parquet (``.parquet``, ``.pq``), Arrow IPC files (``.arrow``, ``.feather``, ``.ipc``), CSV
(``.csv``, ``.csv.gz``; XSA style: empty = null, ``t``/``f`` booleans) and ``-``, an Arrow IPC
*stream* on stdin/stdout so stages chain in shell pipes.

The in-memory form is a :class:`pyarrow.Table`:

* each field may carry ``unit`` and ``description`` metadata (FITS TUNITn/TCOMMn, Parquet and
  Arrow field metadata);
* float nulls are NaN (the FITS convention); integer and boolean nulls are Arrow nulls (FITS
  TNULLn and the undefined logical value);
* schema metadata ``xmmtools.provenance`` holds the JSON list of processing steps, and
  ``xmmtools.header`` the non-structural keywords of a FITS table header, so they survive
  FITS -> Parquet -> FITS.

FITS tables are read with our own row reader and header parser (:mod:`xmmtools.fits_header`;
astropy only for gzip files and for anything unusual or damaged): only the requested columns
are converted, and large files are read in row chunks of bounded memory.
Writes are atomic: a temporary file in the target folder, flushed, fsync'ed and renamed.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import gzip
import hashlib
import io
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmmtools.errors import ColumnError, DataError, OutputError

STDIO = "-"
PROVENANCE_KEY = b"xmmtools.provenance"
HEADER_KEY = b"xmmtools.header"
DEFAULT_CHUNK_ROWS = 100_000
#: bytes of raw FITS rows read at once when scanning a table
FITS_CHUNK_BYTES = 64 * 2**20

_EXTENSIONS = {
    ".fits": "fits", ".fit": "fits", ".fts": "fits", ".fits.gz": "fits", ".fit.gz": "fits",
    ".ftz": "fits",
    ".parquet": "parquet", ".pq": "parquet",
    ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow",
    ".csv": "csv", ".csv.gz": "csv",
}


# =========================================================================================
# Formats and paths
# =========================================================================================

def detect_format(path: str | os.PathLike) -> str:
    """'fits', 'parquet', 'arrow', 'csv' or 'stream' (for ``-``), from the file name."""
    p = str(path)
    if p == STDIO:
        return "stream"
    p = _strip_hdu(p)[0]
    low = p.lower()
    for ext in sorted(_EXTENSIONS, key=len, reverse=True):
        if low.endswith(ext):
            return _EXTENSIONS[ext]
    known = ", ".join(sorted(_EXTENSIONS))
    raise DataError(f"{p}: unknown table format (use one of {known}, or - for an Arrow stream)")


def _strip_hdu(p: str) -> tuple[str, str | None]:
    """``cat.fits[SRCLIST]`` -> ('cat.fits', 'SRCLIST') when no file has the literal name."""
    m = re.match(r"^(.*)\[([^\[\]]+)\]$", p)
    if m and not os.path.exists(p):
        return m.group(1), m.group(2)
    return p, None


def _is_gzip(p: str) -> bool:
    low = p.lower()
    return low.endswith(".gz") or low.endswith(".ftz")


def file_sha256(path: str | os.PathLike, bufsize: int = 8 * 2**20) -> str:
    """SHA-256 of a file (for provenance); the result of :func:`prefetch_sha256` when it has
    hashed this very file (same size and modification time) in the background."""
    key = _hash_key(path)
    if key in _HASHED:
        return _HASHED[key]
    job = _HASH_JOBS.pop(key, None) if key else None
    if job is not None:
        job[0].join()
    digest = job[1][0] if job is not None and job[1] else _sha256_now(path, bufsize)
    if key:
        _HASHED[key] = digest  # a second record of the same input (e.g. --calibrate-out) reuses it
    return digest


def prefetch_sha256(paths: Iterable[str | os.PathLike]) -> None:
    """Start hashing input files on a background thread (hashlib releases the GIL), so the
    provenance checksums written at the end cost no wall time: 0.3 s for the 240 MB
    counterpart file of the crossmatch benchmark.  Unreadable paths are left for the real
    call to report."""
    import threading

    for p in paths:
        p = str(p)
        if p == STDIO:
            continue
        real, _ = _strip_hdu(p)
        key = _hash_key(real)
        if key is None or key in _HASH_JOBS or key in _HASHED:
            continue
        out: list[str] = []

        def work(path=real, out=out):
            with contextlib.suppress(OSError):
                out.append(_sha256_now(path))

        t = threading.Thread(target=work, name="xmmtools-sha256", daemon=True)
        _HASH_JOBS[key] = (t, out)
        t.start()


#: (realpath, size, mtime_ns) -> (thread, [hexdigest]) of prefetch_sha256
_HASH_JOBS: dict[tuple, tuple] = {}
#: (realpath, size, mtime_ns) -> hexdigest already computed in this process
_HASHED: dict[tuple, str] = {}


def _hash_key(path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns)


def _sha256_now(path, bufsize: int = 8 * 2**20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(bufsize)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _check_input(path: str) -> str:
    p, _ = _strip_hdu(path)
    if not os.path.exists(p):
        raise DataError(f"{p}: no such file")
    if os.path.isdir(p):
        raise DataError(f"{p}: is a folder, not a table file")
    if not os.access(p, os.R_OK):
        raise DataError(f"{p}: not readable (permission denied)")
    return p


# =========================================================================================
# Public reading API
# =========================================================================================

def read_table(
    path: str | os.PathLike,
    columns: Sequence[str] | None = None,
    *,
    stdin: io.BufferedIOBase | None = None,
    progress: bool = False,
) -> pa.Table:
    """Read a whole table (or only ``columns``) into memory.

    Only the requested columns are converted; for FITS the other columns' bytes are read
    past but never decoded.  Raises :class:`DataError` naming the file for anything wrong.
    """
    chunks = list(iter_table(path, columns, stdin=stdin, progress=progress))
    if not chunks:  # pragma: no cover - iter_table always yields at least a schema chunk
        raise DataError(f"{path}: no data")
    if len(chunks) == 1:
        return chunks[0]
    try:
        return pa.concat_tables(chunks)
    except pa.ArrowInvalid as e:
        raise DataError(f"{path}: chunks disagree in schema ({e})") from None


def iter_table(
    path: str | os.PathLike,
    columns: Sequence[str] | None = None,
    *,
    chunk_rows: int | None = None,
    stdin: io.BufferedIOBase | None = None,
    progress: bool = False,
) -> Iterator[pa.Table]:
    """Yield the table in row chunks (each a :class:`pyarrow.Table` with the full schema
    metadata).  Always yields at least one (possibly empty) chunk."""
    p = str(path)
    if p != STDIO:
        _check_input(p)
    fmt = detect_format(p)
    if columns is not None:
        columns = list(columns)
        dup = _duplicates(columns)
        if dup:
            raise DataError(f"column {dup} requested twice")
    if fmt == "stream":
        yield from _iter_stream(stdin if stdin is not None else sys.stdin.buffer, columns)
        return
    real = _check_input(p)
    reader = {"fits": _iter_fits, "parquet": _iter_parquet, "arrow": _iter_ipc, "csv": _iter_csv}[fmt]
    yield from _progress(reader(p, columns, chunk_rows), real, progress)


def _progress(it: Iterator[pa.Table], path: str, enabled: bool) -> Iterator[pa.Table]:
    if not enabled:
        yield from it
        return
    from tqdm import tqdm

    with tqdm(desc=f"reading {os.path.basename(path)}", unit=" rows", unit_scale=True,
              file=sys.stderr, leave=False) as bar:
        for t in it:
            bar.update(t.num_rows)
            yield t


@dataclass
class TableInfo:
    """What ``xmmtools info`` shows: read from metadata only, never the data (except CSV)."""

    path: str
    format: str
    num_rows: int
    schema: pa.Schema
    header: dict[str, Any] = field(default_factory=dict)
    extension: str | None = None

    @property
    def provenance(self) -> list[dict]:
        return provenance_of(self.schema)


def inspect_table(path: str | os.PathLike, *, stdin: io.BufferedIOBase | None = None) -> TableInfo:
    p = str(path)
    hats = _hats_info(p)
    if hats is not None:
        return hats
    if p != STDIO:
        _check_input(p)
    fmt = detect_format(p)
    if fmt == "stream":
        t = read_table(p, stdin=stdin)
        return TableInfo(p, "arrow-stream", t.num_rows, t.schema)
    real = _check_input(p)
    if fmt == "fits":
        ft = _FitsTable.open(p)
        schema = ft.arrow_schema(None)
        return TableInfo(real, "fits", ft.nrows, schema, header=_header_dict(ft.header),
                         extension=ft.extname)
    if fmt == "parquet":
        pf = _open_parquet(real)
        return TableInfo(real, "parquet", pf.metadata.num_rows, _normalise_schema(pf.schema_arrow))
    if fmt == "arrow":
        rd = _open_ipc(real)
        return TableInfo(real, "arrow", sum(rd.get_batch(i).num_rows for i in range(rd.num_record_batches)),
                         _normalise_schema(rd.schema))
    # CSV has no metadata: count by streaming
    n = 0
    schema = None
    for t in _iter_csv(real, None, None):
        n += t.num_rows
        schema = t.schema
    return TableInfo(real, "csv", n, schema)


def _hats_info(p: str) -> TableInfo | None:
    """A HATS catalogue (``hats:DIR`` or a catalogue/collection folder), from its properties and
    ``dataset/_common_metadata`` only (no LSDB needed); None when ``p`` is not one.  Its rows are
    read by the stages that support HATS (crossmatch, through LSDB)."""
    folder = p[len("hats:"):] if p.startswith("hats:") else p
    if not os.path.isdir(folder):
        if p.startswith("hats:"):
            raise DataError(f"{p}: no such HATS catalogue directory")
        return None

    def props(path: str) -> dict[str, str]:
        out = {}
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                k, eq, v = line.partition("=")
                if eq and not line.lstrip().startswith("#"):
                    out[k.strip()] = v.strip()
        return out

    if os.path.isfile(os.path.join(folder, "collection.properties")):
        main = props(os.path.join(folder, "collection.properties")).get("hats_primary_table_url", "")
        folder = os.path.join(folder, main)
    prop = next((os.path.join(folder, n) for n in ("hats.properties", "properties")
                 if os.path.isfile(os.path.join(folder, n))), None)
    meta = os.path.join(folder, "dataset", "_common_metadata")
    if prop is None or not os.path.isfile(meta):
        if p.startswith("hats:") or prop is not None:
            raise DataError(f"{p}: not a HATS catalogue (no properties or dataset/_common_metadata)")
        return None
    import pyarrow.parquet as pq

    d = props(prop)
    try:
        rows = int(d.get("hats_nrows", ""))
        schema = pq.read_schema(meta)
    except (ValueError, OSError, pa.ArrowInvalid) as e:
        raise DataError(f"{p}: unreadable HATS catalogue ({_short(e)})") from None
    header = {k: v for k, v in d.items() if k.startswith(("hats_", "obs_", "moc_"))}
    return TableInfo(folder, "hats", rows, _normalise_schema(schema.remove_metadata()), header=header)


def _header_dict(header) -> dict[str, Any]:
    out = {}
    for card in header.cards:
        if card.keyword and card.keyword not in ("HISTORY", "COMMENT", ""):
            out[card.keyword] = card.value
    return out


# =========================================================================================
# Column helpers for stages
# =========================================================================================

def column_kind(t: pa.DataType) -> str:
    """'number', 'bool', 'text', 'list' or the type name: used for type checks of needs."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        return "text"
    if pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t):
        return "list"
    if pa.types.is_null(t):
        return "number"
    return str(t)


def schema_kinds(schema: pa.Schema) -> dict[str, str]:
    return {f.name: column_kind(f.type) for f in schema}


def to_numpy(col: pa.ChunkedArray | pa.Array, dtype: Any = float) -> np.ndarray:
    """A column as a numpy array; nulls become NaN for floats (ints are promoted to float when
    they have nulls) and False for booleans with ``dtype=bool``."""
    fast = _plain_numbers(col, dtype)
    if fast is not None:
        return fast
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if dtype is bool:
        return np.asarray(pc.fill_null(col, False).to_numpy(zero_copy_only=False), dtype=bool)
    if dtype in (float, np.float64, np.float32):
        if pa.types.is_boolean(col.type):
            col = pc.cast(col, pa.float64())
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_null(col.type)):
            raise ColumnError(f"column of type {col.type} is not numeric")
        arr = pc.cast(col, pa.float64()) if not pa.types.is_floating(col.type) else col
        arr = pc.fill_null(arr, np.nan) if arr.null_count else arr
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=dtype)
    return col.to_numpy(zero_copy_only=False)


def _plain_numbers(col: pa.ChunkedArray | pa.Array, dtype: Any) -> np.ndarray | None:
    """Integer/float columns without nulls, straight from their Arrow buffers: one copy at
    most (joining chunks or casting), and no pandas import -- pyarrow's ``to_numpy`` with
    ``zero_copy_only=False`` goes through its pandas conversion layer, which imports pandas
    (0.13 s) on first use.  None when the column needs the general path."""
    if dtype not in (float, np.float64, np.float32, int, np.int64):
        return None
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    typ = col.type
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ)) or pa.types.is_float16(typ):
        return None
    want = np.dtype(dtype)
    nulls = any(c.null_count for c in chunks)
    if nulls and not (pa.types.is_floating(typ) and want.kind == "f"):
        return None  # integers with nulls are promoted to float by the general path
    if want.kind == "i" and not pa.types.is_integer(typ):
        return None
    chunks = [c for c in chunks if len(c)]
    views = [_raw_values(c) for c in chunks]
    if nulls:  # float nulls -> NaN, in a copy
        views = [_nan_where_null(v, c) for v, c in zip(views, chunks)]
    if not views:
        return np.zeros(0, dtype=want)
    if len(views) == 1:
        return views[0].astype(want, copy=False)
    if views[0].dtype == want:
        return np.concatenate(views)
    out = np.empty(sum(len(v) for v in views), dtype=want)
    np.concatenate(views, out=out, casting="unsafe")
    return out


def _nan_where_null(values: np.ndarray, arr: pa.Array) -> np.ndarray:
    if not arr.null_count:
        return values
    out = values.copy()
    out[_null_mask(arr)] = np.nan
    return out


def field_meta(unit: str | None = None, description: str | None = None) -> dict[bytes, bytes]:
    meta = {}
    if unit:
        meta[b"unit"] = unit.encode()
    if description:
        meta[b"description"] = " ".join(description.split()).encode()
    return meta


def unit_of(f: pa.Field) -> str:
    return (f.metadata or {}).get(b"unit", b"").decode()


def description_of(f: pa.Field) -> str:
    return (f.metadata or {}).get(b"description", b"").decode()


@dataclass
class NewColumn:
    """A column a stage adds: values plus the unit and one-line description it carries."""

    name: str
    values: Any
    unit: str = ""
    description: str = ""
    type: pa.DataType | None = None

    def to_field_array(self, nrows: int) -> tuple[pa.Field, pa.Array]:
        v = self.values
        if isinstance(v, (pa.Array, pa.ChunkedArray)):
            arr = v if self.type is None else v.cast(self.type)
        else:
            v = np.asarray(v)
            if v.ndim == 2:  # a vector per row -> fixed-size list
                flat = pa.array(np.ascontiguousarray(v).ravel(), type=self.type.value_type
                                if self.type is not None and pa.types.is_fixed_size_list(self.type) else None)
                arr = pa.FixedSizeListArray.from_arrays(flat, v.shape[1])
            elif v.ndim == 1 and v.dtype.kind in "fiub" and v.dtype.byteorder in "=|":
                arr = arrow_from_numpy(v)  # zero-copy for numbers; NaN stays NaN (not null)
                if self.type is not None and arr.type != self.type:
                    arr = arr.cast(self.type)
            elif v.dtype.kind == "f":
                arr = pa.array(v, type=self.type)
            else:
                arr = pa.array(v, type=self.type, from_pandas=True)
        if len(arr) != nrows:
            raise ValueError(f"new column {self.name} has {len(arr)} rows, table has {nrows}")
        return pa.field(self.name, arr.type, metadata=field_meta(self.unit, self.description)), arr


def add_columns(table: pa.Table, new: Sequence[NewColumn], *, replace: bool = False) -> pa.Table:
    """Append new columns (keeping every input column).  A name already present raises unless
    ``replace``: recomputed values must never silently replace catalogue values."""
    for c in new:
        f, arr = c.to_field_array(table.num_rows)
        idx = table.schema.get_field_index(c.name)
        if idx >= 0:
            if not replace:
                raise DataError(f"the table already has a column {c.name}; refusing to overwrite it")
            table = table.set_column(idx, f, arr)
        else:
            table = table.append_column(f, arr)
    return table


# =========================================================================================
# Provenance
# =========================================================================================

@dataclass
class Provenance:
    """One processing step: written into every output, appended to the input's history."""

    stage: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    inputs: Sequence[str] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        from xmmtools import __version__

        ins = []
        for p in self.inputs:
            p = str(p)
            if p == STDIO:
                ins.append({"name": "-", "sha256": None})
            else:
                real, _ = _strip_hdu(p)
                ins.append({"name": os.path.basename(real),
                            "sha256": file_sha256(real) if os.path.isfile(real) else None})
        rec = {
            "xmmtools": __version__,
            "stage": self.stage,
            "date": _provenance_date(),
            "parameters": _jsonable(dict(self.parameters)),
            "inputs": ins,
        }
        rec.update(_jsonable(dict(self.extra)))
        return rec


def _provenance_date() -> str:
    """UTC time of the run, or SOURCE_DATE_EPOCH (reproducible-builds.org) when it is set."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc).isoformat()
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def provenance_of(schema: pa.Schema | None) -> list[dict]:
    meta = (schema.metadata or {}) if schema is not None else {}
    raw = meta.get(PROVENANCE_KEY)
    if not raw:
        return []
    try:
        val = json.loads(raw)
    except ValueError:
        return []
    return val if isinstance(val, list) else []


def with_provenance(schema: pa.Schema, step: Provenance | dict | None) -> pa.Schema:
    if step is None:
        return schema
    rec = step.record() if isinstance(step, Provenance) else step
    chain = provenance_of(schema) + [rec]
    meta = dict(schema.metadata or {})
    meta[PROVENANCE_KEY] = json.dumps(chain, separators=(",", ":")).encode()
    return schema.with_metadata(meta)


# =========================================================================================
# Public writing API
# =========================================================================================

def check_output(path: str, *, inputs: Sequence[str] = (), overwrite: bool = False) -> str:
    """Validate an output path before any work is done; returns its format."""
    p = str(path)
    fmt = detect_format(p) if p == STDIO else _output_format(p)
    if p == STDIO:
        return fmt
    out_real = os.path.realpath(p)
    for i in inputs:
        i = str(i)
        if i == STDIO:
            continue
        ireal = os.path.realpath(_strip_hdu(i)[0])
        same = ireal == out_real
        if not same and os.path.exists(p) and os.path.exists(ireal):
            with contextlib.suppress(OSError):
                same = os.path.samefile(ireal, p)
        if same:
            raise OutputError(f"{p}: output is the input file; refusing to write over it")
    parent = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(parent):
        raise OutputError(f"{p}: folder {parent} does not exist")
    if os.path.isdir(p):
        raise OutputError(f"{p}: is a folder")
    if os.path.exists(p) and not overwrite:
        raise OutputError(f"{p}: exists; use --overwrite to replace it")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{p}: folder {parent} is not writable")
    return fmt


def _output_format(p: str) -> str:
    try:
        return detect_format(p)
    except DataError:
        known = ", ".join(sorted(_EXTENSIONS))
        raise OutputError(f"{p}: unknown output format (use one of {known}, or - for an Arrow stream)") from None


def write_table(
    table: pa.Table,
    path: str | os.PathLike,
    *,
    provenance: Provenance | dict | None = None,
    overwrite: bool = False,
    inputs: Sequence[str] = (),
    stdout: io.BufferedIOBase | None = None,
) -> None:
    """Write a whole table atomically (see :class:`TableWriter`)."""
    with TableWriter(path, table.schema, provenance=provenance, overwrite=overwrite,
                     inputs=inputs, stdout=stdout) as w:
        w.write(table)


def write_chunks(
    chunks: Iterable[pa.Table],
    path: str | os.PathLike,
    *,
    provenance: Provenance | dict | None = None,
    overwrite: bool = False,
    inputs: Sequence[str] = (),
    stdout: io.BufferedIOBase | None = None,
) -> "TableWriter":
    """Write a stream of chunks (the first one fixes the schema) atomically; on any error the
    partial output is dropped.  Returns the closed writer (``.rows``, ``.schema``)."""
    writer = None
    try:
        for chunk in chunks:
            if writer is None:
                writer = TableWriter(path, chunk.schema, provenance=provenance, overwrite=overwrite,
                                     inputs=inputs, stdout=stdout)
                writer.__enter__()
            writer.write(chunk)
        if writer is None:
            raise DataError(f"{path}: nothing to write (no table chunks)")
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    writer.close()
    return writer


class TableWriter:
    """Write a table chunk by chunk; the output appears only when the ``with`` block ends
    without error (temporary file in the target folder, flush, fsync, rename).

    >>> with TableWriter("out.parquet", schema, provenance=step) as w:   # doctest: +SKIP
    ...     for chunk in chunks:
    ...         w.write(chunk)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        schema: pa.Schema,
        *,
        provenance: Provenance | dict | None = None,
        overwrite: bool = False,
        inputs: Sequence[str] = (),
        stdout: io.BufferedIOBase | None = None,
        row_group_rows: int = 128 * 1024,
    ):
        self.path = str(path)
        self.format = check_output(self.path, inputs=inputs, overwrite=overwrite)
        _check_schema_names(schema, self.path)
        self.schema = with_provenance(_normalise_schema(schema), provenance)
        self.overwrite = overwrite
        self.rows = 0
        self._stdout = stdout
        self._rg = row_group_rows
        self._tmp: _TempFile | None = None
        self._spool: _TempFile | None = None
        self._sink = None
        self._writer = None
        self._closed = False

    # -- context management ------------------------------------------------------------
    def __enter__(self) -> "TableWriter":
        try:
            self._open()
        except BaseException:
            self.abort()  # e.g. a column FITS cannot hold: leave no temporary file behind
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _open(self) -> None:
        if self.format == "stream":
            out = self._stdout if self._stdout is not None else sys.stdout.buffer
            self._writer = pa.ipc.new_stream(out, self.schema)
            return
        self._tmp = _TempFile(self.path)
        if self.format == "parquet":
            import pyarrow.parquet as pq

            self._sink = self._tmp.arrow_sink()
            # dictionary-encode text columns only: on float columns the dictionary attempt
            # tripled the write time and grew the file by 40 % (measured on 4XMM-like data)
            text = [f.name for f in self.schema if column_kind(f.type) == "text"]
            self._writer = pq.ParquetWriter(self._sink, self.schema, compression="zstd",
                                            use_dictionary=text, write_statistics=True)
        elif self.format == "arrow":
            self._sink = self._tmp.arrow_sink()
            self._writer = pa.ipc.new_file(self._sink, self.schema)
        elif self.format == "csv":
            _check_csv_writable(self.schema, self.path)
            import pyarrow.csv as pcsv

            self._sink = self._tmp.arrow_sink()
            if self.path.lower().endswith(".gz"):
                self._sink = pa.CompressedOutputStream(self._sink, "gzip")
            self._writer = pcsv.CSVWriter(self._sink, self.schema)
        elif self.format == "fits":
            # FITS needs the row count and string widths in its header before the rows: the
            # first chunk is held in memory; from a second one on the chunks are spooled to an
            # anonymous Arrow file.  The FITS is written in one pass at close (a whole table
            # given at once never touches the spool).
            from xmmtools import fits_header

            for f in self.schema:  # fail before any work for types and names FITS cannot hold
                _fits_out_col(f, 1, self.path)
                try:
                    fits_header.single_card("TTYPE999", f.name)
                except ValueError:
                    raise OutputError(f"{self.path}: column name {f.name!r} cannot be written to FITS (one "
                                      "80-character card: at most 68 printable ASCII characters); rename it "
                                      "or write .parquet") from None
            self._widths: dict[str, int] = {}
            self._held: pa.Table | None = None

    def write(self, chunk: pa.Table | pa.RecordBatch) -> None:
        if self._writer is None and self._tmp is None:
            self._open()
        if isinstance(chunk, pa.RecordBatch):
            chunk = pa.Table.from_batches([chunk])
        if chunk.schema.names != self.schema.names:
            raise ValueError(f"chunk columns {chunk.schema.names[:5]}... differ from the writer's schema")
        chunk = chunk.cast(self.schema) if not chunk.schema.equals(self.schema) else chunk
        chunk = chunk.replace_schema_metadata(self.schema.metadata)
        if self.format == "fits":
            _update_widths(self._widths, chunk)
            if self._writer is None and self._held is None:
                self._held = chunk
            else:
                if self._writer is None:  # a second chunk: spool from now on
                    self._spool = _TempFile(self.path)
                    self._sink = self._spool.arrow_sink()
                    self._writer = pa.ipc.new_file(self._sink, self.schema)
                    self._writer.write_table(self._held)
                    self._held = None
                self._writer.write_table(chunk)
        elif self.format == "csv":
            self._writer.write_table(_csv_ready(chunk))
        elif self.format == "parquet":
            self._writer.write_table(chunk, row_group_size=self._rg)
        else:
            self._writer.write_table(chunk)
        self.rows += chunk.num_rows

    def close(self) -> None:
        if self._closed:
            return
        if self._writer is None and self._tmp is None:
            self._open()
        try:
            if self._writer is not None:
                self._writer.close()
            if self._sink is not None:
                self._sink.close()
            if self.format == "stream":
                out = self._stdout if self._stdout is not None else sys.stdout.buffer
                out.flush()
                self._closed = True
                return
            if self.format == "fits":
                if self._spool is not None:
                    rd = pa.ipc.open_file(pa.OSFile(self._spool.read_path, "r"))
                    batches = (rd.get_batch(i) for i in range(rd.num_record_batches))
                else:
                    batches = iter(self._held.to_batches() if self._held is not None else [])
                _write_fits(batches, self._tmp, self.schema, self._widths, gz=_is_gzip(self.path),
                            nrows=self.rows)
                self._held = None
                if self._spool is not None:
                    self._spool.discard()
                    self._spool = None
            if os.path.exists(self.path) and not self.overwrite:  # appeared meanwhile
                raise OutputError(f"{self.path}: exists; use --overwrite to replace it")
            self._tmp.commit()
            self._tmp = None
            self._closed = True
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop everything written so far; an existing output is left untouched."""
        self._closed = True
        for closer in (self._writer, self._sink):
            with contextlib.suppress(Exception):
                if closer is not None:
                    closer.close()
        for tmp in (self._tmp, getattr(self, "_spool", None)):
            if tmp is not None:
                tmp.discard()
        self._tmp = None
        self._spool = None


_ANON_OK: dict[int, bool] = {}


def _remove_stale_parts(folder: str, name: str) -> None:
    """Remove ``.NAME.<pid>.*.part`` files left by a writer that was killed (SIGKILL, power
    loss) and whose process no longer exists."""
    pat = re.compile(r"^\." + re.escape(name) + r"\.(\d+)\.[^/]*\.part$")
    with contextlib.suppress(OSError):
        for entry in os.listdir(folder):
            m = pat.match(entry)
            if not m:
                continue
            pid = int(m.group(1))
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, 0)
                continue  # that writer is still running
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, entry))


def _anonymous_files_work(folder: str) -> bool:
    """Can this folder's file system create an O_TMPFILE and link it in?  (Probed once per
    device: some kernels and sandboxes refuse the link with EXDEV or EOPNOTSUPP.)"""
    if not hasattr(os, "O_TMPFILE") or not os.path.isdir("/proc/self/fd"):
        return False
    try:
        dev = os.stat(folder).st_dev
    except OSError:
        return False
    if dev in _ANON_OK:
        return _ANON_OK[dev]
    ok = False
    probe = os.path.join(folder, f".xmmtools-probe.{os.getpid()}")
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o600)
        try:
            os.link(f"/proc/self/fd/{fd}", probe, follow_symlinks=True)
            ok = True
        finally:
            os.close(fd)
    except OSError:
        ok = False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)
    _ANON_OK[dev] = ok
    return ok


class _TempFile:
    """The bytes of an output before it exists.

    On Linux an anonymous ``O_TMPFILE`` in the target folder: it has no name until
    :meth:`commit` links it in (fsync, link to a hidden name, rename over the output), so a
    process killed at any moment - even by SIGKILL - leaves no partial file behind.  Where the
    file system lacks ``O_TMPFILE`` a hidden ``.NAME.XXXX.part`` file is used instead (removed
    on errors and signals the process can catch).
    """

    def __init__(self, final: str):
        self.final = final
        self.folder = os.path.dirname(os.path.abspath(final))
        self.name: str | None = None
        self.fd: int | None = None
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
        with contextlib.suppress(OSError):
            mode = os.stat(final).st_mode & 0o777  # keep the mode of the file being replaced
        if _anonymous_files_work(self.folder):
            with contextlib.suppress(OSError):
                self.fd = os.open(self.folder, os.O_TMPFILE | os.O_RDWR, mode)
        if self.fd is None:
            _remove_stale_parts(self.folder, os.path.basename(final))
            fd, self.name = tempfile.mkstemp(prefix=f".{os.path.basename(final)}.{os.getpid()}.",
                                             suffix=".part", dir=self.folder)
            os.close(fd)
            with contextlib.suppress(OSError):
                os.chmod(self.name, mode)

    @property
    def read_path(self) -> str:
        return f"/proc/self/fd/{self.fd}" if self.fd is not None else self.name

    def open(self, mode: str = "wb"):
        if self.fd is not None:
            return os.fdopen(os.dup(self.fd), mode)
        return open(self.name, mode)

    def arrow_sink(self):
        if self.fd is not None:
            return pa.PythonFile(self.open("wb"), mode="w")
        return pa.OSFile(self.name, "wb")

    def commit(self) -> None:
        if self.fd is not None:
            os.fsync(self.fd)
            hidden = os.path.join(self.folder, f".{os.path.basename(self.final)}.{os.getpid()}.{id(self):x}.part")
            os.link(f"/proc/self/fd/{self.fd}", hidden, follow_symlinks=True)
            try:
                os.replace(hidden, self.final)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(hidden)
                raise
            os.close(self.fd)
            self.fd = None
        else:
            _fsync_path(self.name)
            os.replace(self.name, self.final)
            self.name = None
        _fsync_dir(self.folder)

    def discard(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        if self.name:
            with contextlib.suppress(OSError):
                os.unlink(self.name)
            self.name = None


def _fsync_path(p: str) -> None:
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(d: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _duplicates(names: Sequence[str]) -> str | None:
    seen = set()
    for n in names:
        k = n.upper()
        if k in seen:
            return n
        seen.add(k)
    return None


def _check_schema_names(schema: pa.Schema, where: str) -> None:
    dup = _duplicates(schema.names)
    if dup:
        raise OutputError(f"{where}: duplicate column name {dup!r} (names are case-insensitive in FITS)")
    for n in schema.names:
        if not n or not n.strip():
            raise OutputError(f"{where}: a column has an empty name")


def _normalise_schema(schema: pa.Schema) -> pa.Schema:
    """Drop pandas' metadata blob (it goes stale as soon as a column is added)."""
    meta = dict(schema.metadata or {})
    meta.pop(b"pandas", None)
    return schema.with_metadata(meta or None)


# =========================================================================================
# Arrow IPC (files and the stdin/stdout stream)
# =========================================================================================

def _iter_stream(stream, columns):
    try:
        reader = pa.ipc.open_stream(stream)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"-: standard input is not an Arrow IPC stream ({_short(e)})") from None
    try:
        yield from _iter_batches(iter(reader), reader.schema, columns, "-")
    except pa.ArrowInvalid as e:
        raise DataError(f"-: broken Arrow stream on standard input ({_short(e)})") from None


def _open_ipc(p: str):
    try:
        return pa.ipc.open_file(pa.memory_map(p, "r"))
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{p}: not an Arrow IPC/Feather file ({_short(e)})") from None


def _iter_ipc(p, columns, chunk_rows):
    rd = _open_ipc(p)
    yield from _iter_batches((rd.get_batch(i) for i in range(rd.num_record_batches)), rd.schema, columns, p)


def _iter_batches(batches, schema: pa.Schema, columns, where: str):
    """Record batches of an Arrow file or stream as tables with the file's metadata; at least
    one (possibly empty) table."""
    schema = _normalise_schema(schema)
    _check_read_names(schema.names, where)
    sel = _select(schema, columns, where)
    n = 0
    for b in batches:
        t = pa.Table.from_batches([b]).replace_schema_metadata(schema.metadata)
        n += 1
        yield _nan_nulls(t.select(sel) if columns is not None else t)
    if n == 0:
        t = schema.empty_table()
        yield _nan_nulls(t.select(sel) if columns is not None else t)


# =========================================================================================
# Parquet
# =========================================================================================

def _open_parquet(p: str):
    import pyarrow.parquet as pq

    try:
        # no pre-buffering: it holds whole column chunks and doubled peak memory on 336 columns
        return pq.ParquetFile(p, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{p}: not a Parquet file ({_short(e)})") from None


def _iter_parquet(p, columns, chunk_rows):
    pf = _open_parquet(p)
    schema = _normalise_schema(pf.schema_arrow)
    _check_read_names(schema.names, p)
    sel = _select(schema, columns, p)
    names = [schema.names[i] for i in sel] if columns is not None else None
    out_schema = pa.schema([schema.field(i) for i in sel], metadata=schema.metadata) \
        if columns is not None else schema
    n = 0
    per = chunk_rows or DEFAULT_CHUNK_ROWS
    try:
        for rg in range(pf.metadata.num_row_groups):
            rows = pf.metadata.row_group(rg).num_rows
            if rows <= 4 * per:
                # one row group at a time: the least memory and the fastest path (measured on
                # 10^6 x 336: 0.4 GB vs 2.3 GB for iter_batches with pre-buffering)
                parts = pf.read_row_group(rg, columns=names, use_pandas_metadata=False).to_batches(per)
            else:  # a huge row group: stream it in batches
                parts = pf.iter_batches(batch_size=per, row_groups=[rg], columns=names, use_pandas_metadata=False)
            for batch in parts:
                if batch.num_rows == 0:
                    continue
                t = pa.Table.from_batches([batch]).cast(out_schema)
                n += 1
                yield _nan_nulls(t)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{p}: unreadable Parquet data ({_short(e)})") from None
    if n == 0:
        yield out_schema.empty_table()


# =========================================================================================
# CSV (XSA style)
# =========================================================================================

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
        raise DataError(f"{p}: unreadable CSV ({_short(e)})") from None
    raise DataError(f"{p}: empty CSV file (no header line)")


def _csv_types(names: Sequence[str]) -> dict[str, pa.DataType]:
    """Force the types of known 4XMM text and boolean columns (OBS_ID keeps its leading zeros)."""
    from xmmtools.columns import canonical_names, schema

    sch = schema()
    types = {"str": pa.string(), "bool": pa.bool_(), "float32": pa.float32(), "float64": pa.float64(),
             "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64()}
    out = {}
    for actual, canon in canonical_names(names).items():
        col = sch.get(canon)
        if col is not None and col.dtype in types:
            out[actual] = types[col.dtype]
    return out


def _iter_csv(p, columns, chunk_rows):
    import pyarrow.csv as pcsv

    names, skip = _csv_header(p)
    if not any(names):
        raise DataError(f"{p}: CSV header line has no column names")
    _check_read_names(names, p)
    if columns is not None:
        missing = [c for c in columns if c not in names]
        if missing:
            raise _missing(missing[0], names, p)
    ropts = pcsv.ReadOptions(skip_rows=skip, block_size=8 * 2**20)
    copts = pcsv.ConvertOptions(
        column_types=_csv_types(names), null_values=CSV_NULLS, true_values=CSV_TRUE,
        false_values=CSV_FALSE, strings_can_be_null=True, include_columns=columns,
    )
    n = 0
    try:
        reader = pcsv.open_csv(p, read_options=ropts, convert_options=copts,
                               parse_options=pcsv.ParseOptions(newlines_in_values=False))
        schema = reader.schema
        for batch in reader:
            n += 1
            yield _nan_nulls(_fix_null_columns(pa.Table.from_batches([batch], schema=schema)))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError) as e:
        msg = _short(e)
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
            t = t.set_column(i, pa.field(f.name, pa.float64(), metadata=f.metadata),
                             pa.array(np.full(t.num_rows, np.nan)))
    return t


def _check_csv_writable(schema: pa.Schema, p: str) -> None:
    for f in schema:
        if column_kind(f.type) == "list":
            raise OutputError(
                f"{p}: CSV cannot hold the vector column {f.name}; write .parquet, .fits or .arrow instead"
            )


def _csv_ready(t: pa.Table) -> pa.Table:
    """NaN -> empty (null), the XSA convention."""
    for i, f in enumerate(t.schema):
        if pa.types.is_floating(f.type):
            col = t.column(i)
            t = t.set_column(i, f, pc.if_else(pc.is_nan(col), pa.scalar(None, f.type), col))
    return t


# =========================================================================================
# FITS binary tables: reading
# =========================================================================================

_TFORM = re.compile(r"^\s*(\d*)([LXBIJKAEDCMPQ])(.*)$")
_NUMPY_CODE = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8",
               "C": ">c8", "M": ">c16", "L": "u1"}
_STRUCTURAL = re.compile(
    r"^(XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|THEAP|EXTEND|SIMPLE|END|CHECKSUM|DATASUM|"
    r"T(TYPE|FORM|UNIT|NULL|SCAL|ZERO|DIM|DISP|COMM|DMIN|DMAX|LMIN|LMAX)\d+|XMMTPROV)$"
)


@dataclass
class _FitsCol:
    name: str
    code: str
    repeat: int
    offset: int
    nbytes: int
    unit: str = ""
    description: str = ""
    tnull: int | None = None
    tscal: float = 1.0
    tzero: float = 0.0
    tdim: str | None = None


class _FitsTable:
    """A FITS binary-table HDU located in a file: header parsed by astropy, rows read by us."""

    def __init__(self, path, header, data_offset, extname, hdu_index):
        self.path = path
        self.header = header
        self.data_offset = data_offset
        self.extname = extname
        self.hdu_index = hdu_index
        self.nrows = int(header["NAXIS2"])
        self.rowlen = int(header["NAXIS1"])
        self.cols = self._columns()

    @classmethod
    def open(cls, path: str) -> "_FitsTable":
        import warnings

        # astropy's header-validation warnings would print multi-line text on stderr; what
        # matters to the user is reported as one DataError line instead
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls._open(path)

    @classmethod
    def _open(cls, path: str) -> "_FitsTable":
        real, ext = _strip_hdu(path)
        if not _is_gzip(real):  # well-formed files: our own header parser (no astropy import)
            from xmmtools import fits_header

            try:
                header, dat, i = fits_header.find_bintable(real, ext)
            except (fits_header.Unsupported, OSError, ValueError):
                pass  # astropy below reads it, or says what is wrong with it
            else:
                t = cls(real, header, dat, str(header.get("EXTNAME", "")).strip() or None, i)
                t._check_size()
                return t
        from astropy.io import fits

        try:
            hdul = fits.open(real, memmap=False, lazy_load_hdus=True)
        except (OSError, ValueError, EOFError, TypeError, IndexError) as e:
            raise DataError(f"{real}: not a readable FITS file ({_short(e)})") from None
        try:
            hdus = []
            chosen = None
            i = 0
            while True:
                try:
                    h = hdul[i]
                except IndexError:
                    break
                except Exception as e:  # astropy raises assorted errors on damaged HDUs
                    if chosen is None and not hdus:
                        raise DataError(f"{real}: damaged FITS header ({_short(e)})") from None
                    break
                hdus.append(h)
                xt = str(h.header.get("XTENSION", "")).strip().upper()
                if ext is not None:
                    if (ext.isdigit() and int(ext) == i) or str(h.header.get("EXTNAME", "")).strip().upper() == ext.upper():
                        chosen = (i, h)
                        break
                elif xt == "BINTABLE" and chosen is None:
                    chosen = (i, h)
                    break
                i += 1
            if chosen is None and hdus:
                info = hdus[-1].fileinfo()
                end = info["datLoc"] + info["datSpan"]
                if _is_gzip(real):
                    size = _gzip_size(real)
                    if size is None:
                        raise DataError(f"{real}: truncated or damaged gzip-compressed FITS file")
                else:
                    size = os.path.getsize(real)
                if size > end:
                    raise DataError(f"{real}: truncated or damaged FITS file (an incomplete HDU "
                                    f"starts at byte {end})")
            if chosen is None:
                if ext is not None:
                    raise DataError(f"{real}: no HDU named or numbered {ext!r}")
                kinds = ", ".join(_hdu_summary(h) for h in hdus) or "none"
                raise DataError(f"{real}: no binary table in this FITS file (HDUs: {kinds})")
            i, h = chosen
            xt = str(h.header.get("XTENSION", "")).strip().upper()
            if xt != "BINTABLE":
                raise DataError(f"{real}: HDU {ext} is {_hdu_summary(h)}, not a binary table")
            header = h.header.copy()
            dat = h.fileinfo()["datLoc"]
            extname = str(header.get("EXTNAME", "")).strip() or None
        finally:
            hdul.close()
        t = cls(real, header, dat, extname, i)
        t._check_size()
        return t

    def _check_size(self) -> None:
        if _is_gzip(self.path):
            return  # checked while reading
        size = os.path.getsize(self.path)
        need = self.data_offset + self.nrows * self.rowlen
        if size < need:
            raise DataError(
                f"{self.path}: truncated FITS file ({size} bytes; the table header promises {need})"
            )

    def _columns(self) -> list[_FitsCol]:
        h = self.header
        n = int(h.get("TFIELDS", 0))
        cols = []
        off = 0
        for k in range(1, n + 1):
            name = str(h.get(f"TTYPE{k}", f"COL{k}")).strip()
            tform = str(h.get(f"TFORM{k}", "")).strip().upper()
            m = _TFORM.match(tform)
            if not m:
                raise DataError(f"{self.path}: column {name} has an unknown TFORM {tform!r}")
            repeat = int(m.group(1)) if m.group(1) else 1
            code = m.group(2)
            if code in "PQ":
                nbytes = (8 if code == "P" else 16) * (1 if repeat else 0)
            elif code == "X":
                nbytes = (repeat + 7) // 8
            elif code == "A":
                nbytes = repeat
            else:
                nbytes = repeat * np.dtype(_NUMPY_CODE[code]).itemsize
            desc = h.get(f"TCOMM{k}") or h.comments[f"TTYPE{k}"] if f"TTYPE{k}" in h else ""
            tnull = h.get(f"TNULL{k}")
            cols.append(_FitsCol(
                name=name, code=code, repeat=repeat, offset=off, nbytes=nbytes,
                unit=str(h.get(f"TUNIT{k}", "") or "").strip(),
                description=str(desc or "").strip(),
                tnull=int(tnull) if isinstance(tnull, (int, np.integer)) and not isinstance(tnull, bool) else None,
                tscal=float(h.get(f"TSCAL{k}", 1.0)),
                tzero=float(h.get(f"TZERO{k}", 0.0)),
                tdim=str(h.get(f"TDIM{k}")) if f"TDIM{k}" in h else None,
            ))
            off += nbytes
        if off != self.rowlen:
            raise DataError(f"{self.path}: FITS column widths add up to {off} bytes, NAXIS1 says {self.rowlen}")
        _check_read_names([c.name for c in cols], self.path)
        return cols

    # ---- schema ------------------------------------------------------------------------
    def arrow_type(self, c: _FitsCol) -> pa.DataType:
        if c.code == "A":
            return pa.string()
        if c.code in "PQ":
            raise DataError(f"{self.path}: column {c.name} is a variable-length array, which xmmtools does not read")
        if c.code in "CM":
            raise DataError(f"{self.path}: column {c.name} is complex, which xmmtools does not read")
        if c.code == "X":
            base = pa.bool_()
            return pa.list_(base, c.repeat)
        if c.code == "L":
            base = pa.bool_()
        else:
            base = pa.from_numpy_dtype(self._value_dtype(c))
        return pa.list_(base, c.repeat) if _is_vector(c) else base

    def _value_dtype(self, c: _FitsCol) -> np.dtype:
        raw = np.dtype(_NUMPY_CODE[c.code]).newbyteorder("=")
        if c.tscal == 1.0 and c.tzero != 0.0:
            if c.code == "B" and c.tzero == -128:
                return np.dtype("i1")
            if c.code == "I" and c.tzero == 32768:
                return np.dtype("u2")
            if c.code == "J" and c.tzero == 2**31:
                return np.dtype("u4")
            if c.code == "K" and c.tzero == 2**63:
                return np.dtype("u8")
        if c.tscal != 1.0 or c.tzero != 0.0:
            return np.dtype("f8")
        return raw

    def arrow_field(self, c: _FitsCol) -> pa.Field:
        meta = field_meta(c.unit, c.description)
        if c.tdim and "," in c.tdim:  # multi-dimensional cells: keep the shape for FITS outputs
            meta[b"fits.tdim"] = c.tdim.encode()
        return pa.field(c.name, self.arrow_type(c), metadata=meta or None)

    def arrow_schema(self, columns: Sequence[str] | None) -> pa.Schema:
        cols = self.select(columns)
        meta = {HEADER_KEY: json.dumps(_header_cards(self.header)).encode()}
        prov = self.header.get("XMMTPROV")
        if prov:
            meta[PROVENANCE_KEY] = str(prov).encode()
        return pa.schema([self.arrow_field(c) for c in cols], metadata=meta)

    def select(self, columns: Sequence[str] | None) -> list[_FitsCol]:
        if columns is None:
            return list(self.cols)
        by_name = {c.name: c for c in self.cols}
        out = []
        for n in columns:
            if n not in by_name:
                raise _missing(n, list(by_name), self.path)
            out.append(by_name[n])
        return out

    # ---- rows --------------------------------------------------------------------------
    def iter_chunks(self, columns: Sequence[str] | None, chunk_rows: int | None) -> Iterator[pa.Table]:
        cols = self.select(columns)
        schema = self.arrow_schema(columns)
        for c in cols:
            self.arrow_type(c)  # raise early for unsupported column types
        per = chunk_rows or max(1, FITS_CHUNK_BYTES // max(self.rowlen, 1))
        if self.nrows == 0:
            yield schema.empty_table()
            return
        dtype = np.dtype({
            "names": [f"f{i}" for i in range(len(cols))],
            "formats": [self._raw_dtype(c) for c in cols],
            "offsets": [c.offset for c in cols],
            "itemsize": self.rowlen,
        })
        opener = gzip.open if _is_gzip(self.path) else open
        with opener(self.path, "rb") as f:
            try:
                f.seek(self.data_offset)
            except (OSError, EOFError) as e:
                raise DataError(f"{self.path}: truncated or corrupt FITS file ({_short(e)})") from None
            start = 0
            # one read buffer for all chunks: fresh 64 MiB buffers cost page faults every time;
            # every column is copied out of it (_convert), so reusing it is safe
            buf = bytearray(min(per, self.nrows) * self.rowlen)
            while start < self.nrows:
                n = min(per, self.nrows - start)
                try:
                    got_bytes = _readinto_exact(f, memoryview(buf)[: n * self.rowlen])
                except (OSError, EOFError, gzip.BadGzipFile) as e:
                    raise DataError(f"{self.path}: truncated or corrupt FITS file ({_short(e)})") from None
                if got_bytes < n * self.rowlen:
                    got = start + got_bytes // self.rowlen
                    raise DataError(f"{self.path}: truncated FITS file ({got} of {self.nrows} rows present)")
                rec = np.frombuffer(buf, dtype=dtype, count=n)
                arrays = [self._convert(rec[f"f{i}"], c) for i, c in enumerate(cols)]
                yield pa.Table.from_arrays(arrays, schema=schema)
                start += n

    def _raw_dtype(self, c: _FitsCol):
        if c.code == "A":
            return np.dtype(f"S{max(c.repeat, 1)}") if c.repeat else np.dtype("S1")
        if c.code == "X":
            return np.dtype(("u1", (c.nbytes,)))
        base = np.dtype(_NUMPY_CODE[c.code])
        return base if c.repeat == 1 else np.dtype((base, (c.repeat,)))

    def _convert(self, raw: np.ndarray, c: _FitsCol) -> pa.Array:
        n = raw.shape[0]
        if c.code == "A":
            if c.repeat == 0:
                return pa.array([""] * n, type=pa.string())
            s = np.ascontiguousarray(np.char.rstrip(np.ascontiguousarray(raw), b" "))
            fixed = pa.Array.from_buffers(pa.binary(s.dtype.itemsize), n, [None, pa.py_buffer(s)])
            try:
                text = pc.cast(pc.cast(fixed, pa.binary()), pa.string())
            except pa.ArrowInvalid:  # not UTF-8: decode what can be decoded
                return pa.array([v.decode("utf-8", "replace") for v in s.tolist()], type=pa.string())
            return pc.utf8_rtrim(text, characters="\x00")  # the NUL padding of shorter values
        if c.code == "X":
            bits = np.unpackbits(np.ascontiguousarray(raw), axis=1)[:, : c.repeat].astype(bool)
            return pa.FixedSizeListArray.from_arrays(arrow_from_numpy(bits.ravel()), c.repeat)
        if c.code == "L":
            v = np.ascontiguousarray(raw)
            flat = v.ravel()
            arr = arrow_from_numpy(flat == ord("T"), flat == 0)
            return pa.FixedSizeListArray.from_arrays(arr, c.repeat) if _is_vector(c) else arr
        # one copy, out of the (reused) read buffer and into native byte order
        vals = np.array(raw, dtype=raw.dtype.newbyteorder("="), copy=True, order="C")
        mask = None
        if c.tnull is not None and c.code in "BIJK":
            mask = vals == c.tnull
            if not mask.any():
                mask = None
        target = self._value_dtype(c)
        if target.kind == "u" and vals.dtype.kind == "i":
            vals = (vals.view(vals.dtype.str.replace("i", "u")) ^ np.array(1 << (8 * vals.itemsize - 1),
                    dtype=vals.dtype.str.replace("i", "u")))
        elif target == np.dtype("i1") and vals.dtype == np.dtype("u1"):
            vals = (vals.astype(np.int16) - 128).astype(np.int8)
        elif target == np.dtype("f8") and (c.tscal != 1.0 or c.tzero != 0.0):
            vals = vals.astype(np.float64) * c.tscal + c.tzero
        flat = vals.reshape(-1)
        fmask = None if mask is None else mask.reshape(-1)
        arr = arrow_from_numpy(flat, fmask)
        return pa.FixedSizeListArray.from_arrays(arr, c.repeat) if _is_vector(c) else arr


def _gzip_size(p: str) -> int | None:
    """Decompressed size of a gzip file, or None when the stream is truncated or corrupt."""
    n = 0
    try:
        with gzip.open(p, "rb") as f:
            while True:
                b = f.read(8 * 2**20)
                if not b:
                    return n
                n += len(b)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None


def arrow_from_numpy(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """A 1-D numeric or boolean numpy array (nulls where ``mask``) as an Arrow array, zero-copy
    for numbers.  Built from buffers: ``pa.array(..., mask=)`` would import pandas (0.3 s)."""
    n = len(values)
    validity, nulls = None, 0
    if mask is not None and mask.any():
        nulls = int(mask.sum())
        validity = pa.py_buffer(np.packbits(~mask, bitorder="little"))
    if values.dtype == bool:
        return pa.Array.from_buffers(pa.bool_(), n, [validity, pa.py_buffer(np.packbits(values, bitorder="little"))],
                                     null_count=nulls)
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), n, [validity, pa.py_buffer(values)],
                                 null_count=nulls)


def _is_vector(c: _FitsCol) -> bool:
    """A cell holds a vector when its repeat count is > 1, or when TDIM says so (a vector of
    length 1, which xmmtools writes with TDIM = '(1)')."""
    return c.code not in "A" and (c.repeat > 1 or c.tdim is not None)


def _readinto_exact(f, view: memoryview) -> int:
    """Fill ``view`` from ``f``; the number of bytes read (short only at the end of the file)."""
    got = 0
    while got < len(view):
        k = f.readinto(view[got:])
        if not k:
            break
        got += k
    return got


def _hdu_summary(h) -> str:
    xt = str(h.header.get("XTENSION", "PRIMARY")).strip() or "PRIMARY"
    naxis = int(h.header.get("NAXIS", 0))
    shape = "x".join(str(h.header.get(f"NAXIS{i}", 0)) for i in range(1, naxis + 1))
    name = str(h.header.get("EXTNAME", "")).strip()
    return f"{name or xt} {xt.lower()}{' ' + shape if shape else ''}"


def _header_cards(header) -> list[list]:
    cards = []
    for card in header.cards:
        key = card.keyword
        if not key or _STRUCTURAL.match(key):
            continue
        val = card.value
        if key in ("HISTORY", "COMMENT"):
            val = str(val)
        elif not isinstance(val, (bool, int, float, str)):
            val = None
        if isinstance(val, float) and not np.isfinite(val):
            val = None
        cards.append([key, val, card.comment if key not in ("HISTORY", "COMMENT") else ""])
    return cards


def _iter_fits(p, columns, chunk_rows):
    yield from _FitsTable.open(p).iter_chunks(columns, chunk_rows)


# =========================================================================================
# FITS binary tables: writing
# =========================================================================================

def _update_widths(widths: dict, t: pa.Table) -> None:
    """Running facts FITS needs before its header: string widths, and for integer columns
    (null count, min, max) to choose a TNULL the data do not use."""
    stats = widths.setdefault("\0int", {})
    for f in t.schema:
        typ = f.type.value_type if pa.types.is_fixed_size_list(f.type) else f.type
        if pa.types.is_integer(typ):
            col = t.column(f.name)
            if pa.types.is_fixed_size_list(f.type):
                col = pa.chunked_array([c.flatten() for c in col.chunks], type=typ) if col.num_chunks else col
                nulls = sum(c.null_count for c in t.column(f.name).chunks) + col.null_count
            else:
                nulls = col.null_count
            mm = pc.min_max(col).as_py() if len(col) else {"min": None, "max": None}
            old = stats.get(f.name, (0, None, None, None))
            lo = mm["min"] if old[1] is None else (old[1] if mm["min"] is None else min(old[1], mm["min"]))
            hi = mm["max"] if old[2] is None else (old[2] if mm["max"] is None else max(old[2], mm["max"]))
            used = old[3]
            bw = typ.bit_width
            lo_v = -(1 << (bw - 1)) if pa.types.is_signed_integer(typ) else 0
            def values():
                parts = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
                vals = [_raw_values(c)[~_null_mask(c)] if c.null_count else _raw_values(c) for c in parts]
                return np.concatenate(vals) if vals else np.zeros(0, dtype=typ.to_pandas_dtype())

            if bw <= 16:  # small types: remember every value used (a 64 KiB bitmap at most)
                if used is None:
                    used = np.zeros(1 << bw, dtype=bool)
                used[values().astype(np.int64) - lo_v] = True
            else:  # wide types: remember which of a few candidate TNULLs near the ends are used
                hi_v = (1 << (bw - 1)) - 1 if lo_v else (1 << bw) - 1
                cands = [c for k in range(8) for c in (lo_v + k, hi_v - k)]
                if used is None:
                    used = {c: False for c in cands}
                # only values within 8 of either end can be candidates: skip the search otherwise
                if len(col) and mm["min"] is not None and (mm["min"] <= lo_v + 7 or mm["max"] >= hi_v - 7):
                    v = values()
                    hit = np.isin(np.asarray(cands, dtype=v.dtype), v)
                    for c, h in zip(cands, hit):
                        used[c] = used[c] or bool(h)
            stats[f.name] = (old[0] + nulls, lo, hi, used)
            continue
        if pa.types.is_dictionary(f.type) and (pa.types.is_string(f.type.value_type)
                                               or pa.types.is_large_string(f.type.value_type)):
            col = t.column(f.name)  # dictionary-encoded strings: the width of the decoded values
            col = pc.cast(col, f.type.value_type) if len(col) else col
            w = (pc.max(pc.binary_length(col)).as_py() or 0) if len(col) else 0
            widths[f.name] = max(widths.get(f.name, 1), w, 1)
            continue
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_binary(f.type):
            col = t.column(f.name)
            if len(col) == 0:
                w = 0
            else:
                lens = pc.binary_length(col)
                w = pc.max(lens).as_py() or 0
            widths[f.name] = max(widths.get(f.name, 1), w, 1)


@dataclass
class _OutCol:
    name: str
    tform: str
    np_dtype: np.dtype
    convert: Callable[[pa.Array], np.ndarray]
    unit: str = ""
    description: str = ""
    tnull: int | None = None
    tzero: int | None = None
    tdim: str | None = None


def _fits_out_col(f: pa.Field, width: int | None, where: str,
                  stats: dict[str, tuple[int, int | None, int | None]] | None = None) -> _OutCol:
    t = f.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    unit, desc = unit_of(f), description_of(f)
    tdim = (f.metadata or {}).get(b"fits.tdim", b"").decode() or None
    repeat = 1
    base = t
    is_list = pa.types.is_fixed_size_list(t)
    if is_list:
        repeat = t.list_size
        base = t.value_type
        if repeat == 1 and not tdim:
            tdim = "(1)"  # otherwise a length-1 vector would read back as a scalar
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        raise OutputError(f"{where}: column {f.name} has variable-length lists, which FITS tables here "
                          "cannot hold; use .parquet or .arrow")

    def values(a: pa.Array) -> pa.Array:
        if pa.types.is_dictionary(a.type):
            a = a.dictionary_decode()
        if is_list:
            a = pc.list_flatten(a) if a.null_count == 0 else _fill_list_nulls(a, repeat)
        return a

    if pa.types.is_string(base) or pa.types.is_large_string(base) or pa.types.is_binary(base):
        if repeat != 1:
            raise OutputError(f"{where}: column {f.name} is a list of strings, which FITS cannot hold")
        w = max(int(width or 1), 1)
        dt = np.dtype(f"S{w}")

        def conv(a, dt=dt):
            a = values(a)
            # FITS strings are bytes: UTF-8 text is stored as its bytes and decoded on reading
            a = pc.fill_null(a.cast(pa.binary()), b"")
            return np.array(a.to_pylist(), dtype=dt) if len(a) else np.zeros(0, dt)
        return _OutCol(f.name, f"{w}A", dt, conv, unit, desc)
    if pa.types.is_boolean(base):
        dt = np.dtype("u1") if not is_list else np.dtype(("u1", (repeat,)))

        def conv(a):
            a = values(a)
            out = np.where(_raw_values(a), ord("T"), ord("F")).astype(np.uint8)
            if a.null_count:
                out[_null_mask(a)] = 0
            return out.reshape(-1, repeat) if is_list else out
        return _OutCol(f.name, f"{repeat}L" if is_list else "L", dt, conv, unit, desc, tdim=tdim)
    if pa.types.is_floating(base):
        code, npt = ("D", ">f8") if pa.types.is_float64(base) else ("E", ">f4")
        dt = np.dtype(npt) if not is_list else np.dtype((npt, (repeat,)))

        def conv(a, npt=npt):
            a = values(a)
            v = _raw_values(a).astype(npt)
            if a.null_count:
                v[_null_mask(a)] = np.nan
            return v.reshape(-1, repeat) if is_list else v
        return _OutCol(f.name, f"{repeat if is_list else ''}{code}", dt, conv, unit, desc, tdim=tdim)
    if pa.types.is_integer(base):
        bw = base.bit_width
        signed = pa.types.is_signed_integer(base)
        code = {8: "B", 16: "I", 32: "J", 64: "K"}[bw]
        npt = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8"}[bw]
        tzero = None
        if bw == 8 and signed:
            tzero = -128
        elif bw > 8 and not signed:
            tzero = 1 << (bw - 1)
        # TNULL only when the column has nulls, and never a value the data use: the most
        # negative value first (4XMM's -32768 / -2147483648 convention), else the largest.
        st = (stats or {}).get(f.name)
        tnull = tnull_raw = None
        if st is not None and st[0] > 0:
            lo_v = -(1 << (bw - 1)) if signed else 0
            hi_v = (1 << (bw - 1)) - 1 if signed else (1 << bw) - 1
            dmin, dmax, used = st[1], st[2], st[3]
            free = None
            if isinstance(used, dict):
                free = next((c for c, u in used.items() if not u), None)
            elif used is not None and not used.all():
                free = int(np.flatnonzero(~used)[0]) + lo_v
            if dmin is None or dmin > lo_v:
                null_v = lo_v
            elif dmax < hi_v:
                null_v = hi_v
            elif free is not None:
                null_v = free
            else:
                raise OutputError(f"{where}: integer column {f.name} uses every value from {lo_v} to "
                                  f"{hi_v} and has nulls; FITS has no free TNULL value for it")
            if bw == 8 and signed:
                tnull_raw = null_v + 128
            elif bw > 8 and not signed:
                tnull_raw = null_v - (1 << (bw - 1))
            else:
                tnull_raw = null_v
            tnull = tnull_raw
        dt = np.dtype(npt) if not is_list else np.dtype((npt, (repeat,)))

        def conv(a, npt=npt, bw=bw, signed=signed, tnull_raw=tnull_raw):
            a = values(a)
            mask = _null_mask(a) if a.null_count else None
            v = _raw_values(a)  # values under nulls are arbitrary: TNULL replaces them below
            if bw == 8 and signed:
                raw = (v.astype(np.int16) + 128).astype(np.uint8)
            elif bw > 8 and not signed:
                raw = (v ^ np.array(1 << (bw - 1), dtype=v.dtype)).view(np.dtype(f"i{bw // 8}"))
            else:
                raw = v
            raw = raw.astype(npt)
            if mask is not None:
                if tnull_raw is None:
                    raise AssertionError("nulls found in a column planned without TNULL")  # pragma: no cover
                raw[mask] = tnull_raw
            return raw.reshape(-1, repeat) if is_list else raw
        return _OutCol(f.name, f"{repeat if is_list else ''}{code}", dt, conv, unit, desc,
                       tnull=tnull, tzero=tzero, tdim=tdim)
    if pa.types.is_null(base):
        return _OutCol(f.name, "D", np.dtype(">f8"),
                       lambda a: np.full(len(a), np.nan, dtype=">f8"), unit, desc)
    raise OutputError(f"{where}: column {f.name} has type {t}, which FITS cannot hold; "
                      "convert it (e.g. dates to MJD) or write .parquet")


def _raw_values(a: pa.Array) -> np.ndarray:
    """The value buffer of a numeric or boolean Arrow array as numpy, ignoring validity (the
    values under nulls are arbitrary).  Read straight from the buffers: pyarrow's
    ``to_numpy(zero_copy_only=False)`` would import pandas (0.13 s) on first use."""
    t = a.type
    if pa.types.is_boolean(t):
        if not len(a):
            return np.zeros(0, dtype=bool)
        bits = np.frombuffer(a.buffers()[1], dtype=np.uint8)
        return np.unpackbits(bits, bitorder="little", count=a.offset + len(a))[a.offset:].view(bool)
    if (pa.types.is_integer(t) or pa.types.is_floating(t)) and not pa.types.is_float16(t):
        dt = np.dtype(t.to_pandas_dtype())
        if not len(a):
            return np.zeros(0, dtype=dt)
        return np.frombuffer(a.buffers()[1], dtype=dt, count=len(a), offset=a.offset * dt.itemsize)
    return a.to_numpy(zero_copy_only=False)


def _null_mask(a: pa.Array) -> np.ndarray:
    """True where ``a`` is null."""
    if not a.null_count:
        return np.zeros(len(a), dtype=bool)
    bits = np.frombuffer(a.buffers()[0], dtype=np.uint8)
    return ~np.unpackbits(bits, bitorder="little", count=a.offset + len(a))[a.offset:].view(bool)


def _fill_list_nulls(a: pa.FixedSizeListArray, repeat: int) -> pa.Array:
    """Flatten a fixed-size list column whose rows may be null (null row -> NaN/zero values)."""
    vals = a.flatten()  # skips null rows
    valid = pc.is_valid(a).to_numpy(zero_copy_only=False)
    if pa.types.is_floating(vals.type) or pa.types.is_integer(vals.type):
        fill = np.nan if pa.types.is_floating(vals.type) else 0
        out = np.full((len(a), repeat), fill, dtype=vals.type.to_pandas_dtype())
        out[valid] = pc.fill_null(vals, fill).to_numpy(zero_copy_only=False).reshape(-1, repeat)
        return pa.array(out.ravel())
    out = np.zeros((len(a), repeat), dtype=bool)
    out[valid] = pc.fill_null(vals, False).to_numpy(zero_copy_only=False).reshape(-1, repeat)
    return pa.array(out.ravel())


def _fits_headers(schema: pa.Schema, outcols: list[_OutCol], nrows: int, where: str) -> tuple[bytes, bytes]:
    """The empty primary header and the binary-table header (FITS 4.0 sect. 7.3), as bytes."""
    from xmmtools import fits_header as fh

    cards: list[tuple[str, Any, str]] = [
        ("XTENSION", "BINTABLE", "binary table extension"), ("BITPIX", 8, "array data type"),
        ("NAXIS", 2, "number of array dimensions"),
        ("NAXIS1", sum(c.np_dtype.itemsize for c in outcols), "length of dimension 1"),
        ("NAXIS2", nrows, "length of dimension 2"), ("PCOUNT", 0, "number of group parameters"),
        ("GCOUNT", 1, "number of groups"), ("TFIELDS", len(outcols), "number of table fields")]
    for k, c in enumerate(outcols, start=1):
        cards += [(f"TTYPE{k}", c.name, ""), (f"TFORM{k}", c.tform, "")]
        cards += [(f"TUNIT{k}", c.unit, "")] if c.unit else []
        cards += [(f"TNULL{k}", int(c.tnull), "")] if c.tnull is not None else []
        cards += [(f"TZERO{k}", c.tzero, "")] if c.tzero is not None else []
        cards += [(f"TDIM{k}", c.tdim, "")] if c.tdim else []
    images = []
    for key, val, comment in cards:  # structure: one card each, or the file is not FITS
        try:
            images.append(fh.single_card(key, val, comment))
        except ValueError:
            what = "column name" if key.startswith("TTYPE") else key.rstrip("0123456789")
            raise OutputError(f"{where}: {what} {val!r} cannot be written to FITS (one 80-character card: "
                              "at most 68 printable ASCII characters); rename it or write .parquet") from None
    descriptions = [(f"TCOMM{k}", c.description, "") for k, c in enumerate(outcols, start=1) if c.description]
    images += [im for im in (_card_or_none(fh, *c) for c in descriptions) if im is not None]
    cards += descriptions
    seen = {c[0] for c in cards}
    meta = schema.metadata or {}
    kept = []
    if HEADER_KEY in meta:
        with contextlib.suppress(ValueError):
            kept = json.loads(meta[HEADER_KEY])
    prov = provenance_of(schema)
    ours = {"XMMTVER", "XMMTSTG"} if prov else set()  # rewritten below for this step
    for key, val, comment in kept:  # the input's other keywords; ones FITS cannot hold are dropped
        key = str(key).upper()
        if _STRUCTURAL.match(key) or key in ours or \
                (key not in ("HISTORY", "COMMENT") and (key in seen or val is None)):
            continue
        image = _card_or_none(fh, key, val, str(comment or ""))
        if image is not None:
            images.append(image)
            seen.add(key)
    if prov:
        last = prov[-1]
        extra = [("XMMTPROV", json.dumps(prov, separators=(",", ":")), "xmmtools provenance (JSON)"),
                 ("XMMTVER", str(last.get("xmmtools", "")), "xmmtools version of the last step"),
                 ("XMMTSTG", str(last.get("stage", "")), "xmmtools stage of the last step")]
        hist = [f"xmmtools {last.get('xmmtools')} {last.get('stage')} {last.get('date')}"]
        for i in last.get("inputs", []):
            hist.append(f"input {i['name']}")
            if i.get("sha256"):
                hist.append(f"sha256 {i['sha256']}")
        if last.get("parameters"):
            hist.append("parameters: " + json.dumps(last["parameters"], separators=(",", ":")))
        for c in extra + [("HISTORY", h, "") for h in hist]:
            image = _card_or_none(fh, *c)
            if image is not None:
                images.append(image)
    body = "".join(images) + "END".ljust(80)
    body += " " * (-len(body) % 2880)
    return fh.primary_header(), body.encode("ascii")


def _card_or_none(fh, key: str, value: Any, comment: str) -> str | None:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    try:
        return fh.format_card(key, value, comment)
    except ValueError:
        return None


def _write_fits(batches: Iterable[pa.RecordBatch], dest: "_TempFile", schema: pa.Schema,
                widths: dict[str, int], gz: bool, nrows: int) -> None:
    # a spool is read with plain reads, not a memory map: mapped pages of a multi-GB spool
    # would all count as resident
    outcols = [_fits_out_col(f, widths.get(f.name), dest.final, widths.get("\0int")) for f in schema]
    primary, header = _fits_headers(schema, outcols, nrows, dest.final)
    rec_dtype = np.dtype({"names": [f"f{i}" for i in range(len(outcols))],
                          "formats": [c.np_dtype for c in outcols]})
    raw = dest.open("wb")
    out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) if gz else raw
    with raw, out:
        out.write(primary)
        out.write(header)
        written = 0
        for batch in batches:
            for start in range(0, batch.num_rows, 65536):
                sub = batch.slice(start, 65536)
                rec = np.empty(sub.num_rows, dtype=rec_dtype)
                for k, c in enumerate(outcols):
                    rec[f"f{k}"] = c.convert(sub.column(k))
                out.write(rec.tobytes())
                written += rec.nbytes
        pad = (-written) % 2880
        if pad:
            out.write(b"\0" * pad)
        out.flush()


# =========================================================================================
# Shared helpers
# =========================================================================================

def _nan_nulls(t: pa.Table) -> pa.Table:
    """Float nulls are NaN everywhere (FITS convention), so NaN and null never disagree."""
    for i, f in enumerate(t.schema):
        if pa.types.is_floating(f.type):
            col = t.column(i)
            if col.null_count:
                t = t.set_column(i, f, pc.fill_null(col, pa.scalar(np.nan, f.type)))
    return t


def _check_read_names(names: Sequence[str], where: str) -> None:
    dup = _duplicates(names)
    if dup:
        raise DataError(f"{where}: duplicate column name {dup!r}")


def _select(schema: pa.Schema, columns: Sequence[str] | None, where: str) -> list[int]:
    if columns is None:
        return list(range(len(schema)))
    out = []
    for c in columns:
        i = schema.get_field_index(c)
        if i < 0:
            raise _missing(c, schema.names, where)
        out.append(i)
    return out


def _missing(name: str, available: Sequence[str], where: str) -> ColumnError:
    from xmmtools.columns import closest

    near = closest(name, available)
    note = f" (closest: {', '.join(near)})" if near else ""
    return ColumnError(f"{where}: no column {name}{note}")


def _short(e: BaseException) -> str:
    s = " ".join(str(e).split())
    return s[:200] + ("..." if len(s) > 200 else "") if s else type(e).__name__
