"""Table formats: which format a path is, the files behind it, their checksums, and the
registry that says which module reads and writes each format.

Formats are chosen by extension: FITS (``.fits``, ``.fit``, ``.fts``, ``.fits.gz``, ``.ftz``),
Parquet (``.parquet``, ``.pq``), Arrow IPC files (``.arrow``, ``.feather``, ``.ipc``), saved Arrow streams
(``.arrows``), CSV (``.csv``, ``.csv.gz``), VOTable (``.vot``, ``.votable``, ``.xml``) and ``-``, an Arrow IPC
*stream* on stdin/stdout.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from xmmtools.errors import DataError

if TYPE_CHECKING:
    import threading

    import pyarrow as pa

    from xmmtools.tables.atomic import TempFile

STDIO = "-"
#: rows per chunk when a format does not fix its own (Parquet row groups are split to it)
DEFAULT_CHUNK_ROWS = 100_000

EXTENSIONS = {
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".fits.gz": "fits",
    ".fit.gz": "fits",
    ".ftz": "fits",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".arrows": "arrows",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".vot": "votable",
    ".votable": "votable",
    ".xml": "votable",
}


def detect_format(path: str | os.PathLike[str]) -> str:
    """'fits', 'parquet', 'arrow', 'csv', 'votable' or 'stream' (for ``-``), from the file name."""
    p = str(path)
    if p == STDIO:
        return "stream"
    if p.startswith("hats:"):
        return "hats"
    p = strip_hdu(p)[0]
    low = p.lower()
    for ext in sorted(EXTENSIONS, key=len, reverse=True):
        if low.endswith(ext):
            return EXTENSIONS[ext]
    known = ", ".join(sorted(EXTENSIONS))
    raise DataError(f"{p}: unknown table format (use one of {known}, or - for an Arrow stream)")


def strip_hdu(p: str) -> tuple[str, str | None]:
    """``cat.fits[SRCLIST]`` -> ('cat.fits', 'SRCLIST') when no file has the literal name."""
    m = re.match(r"^(.*)\[([^\[\]]+)\]$", p)
    if m and not os.path.exists(p):
        return m.group(1), m.group(2)
    return p, None


def is_gzip(p: str) -> bool:
    low = p.lower()
    return low.endswith(".gz") or low.endswith(".ftz")


def file_sha256(path: str | os.PathLike[str], bufsize: int = 8 * 2**20) -> str:
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


def prefetch_sha256(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Start hashing input files on a background thread (hashlib releases the GIL), so the
    provenance checksums written at the end cost no wall time: 0.3 s for the 240 MB
    counterpart file of the crossmatch benchmark.  Unreadable paths are left for the real
    call to report."""
    import threading

    for path in paths:
        p = str(path)
        if p == STDIO:
            continue
        real, _ = strip_hdu(p)
        key = _hash_key(real)
        if key is None or key in _HASH_JOBS or key in _HASHED:
            continue
        out: list[str] = []

        def work(path: str = real, out: list[str] = out) -> None:
            with contextlib.suppress(OSError):
                out.append(_sha256_now(path))

        t = threading.Thread(target=work, name="xmmtools-sha256", daemon=True)
        _HASH_JOBS[key] = (t, out)
        t.start()


_Key = tuple[str, int, int]
#: (realpath, size, mtime_ns) -> (thread, [hexdigest]) of prefetch_sha256
_HASH_JOBS: dict[_Key, tuple[threading.Thread, list[str]]] = {}
#: (realpath, size, mtime_ns) -> hexdigest already computed in this process
_HASHED: dict[_Key, str] = {}


def _hash_key(path: str | os.PathLike[str]) -> _Key | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns)


def _sha256_now(path: str | os.PathLike[str], bufsize: int = 8 * 2**20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(bufsize)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def check_input(path: str) -> str:
    if path.startswith("hats:"):
        folder = path[len("hats:") :]
        if not os.path.isdir(folder):
            raise DataError(f"{path}: no such HATS catalogue directory")
        return folder
    p, _ = strip_hdu(path)
    if not os.path.exists(p):
        raise DataError(f"{p}: no such file")
    if os.path.isdir(p):
        raise DataError(f"{p}: is a folder, not a table file")
    if not os.path.isfile(p):  # a FIFO or device would be read forever (or block)
        raise DataError(f"{p}: not a regular file (a FIFO or device); use - to read a stream on standard input")
    if not os.access(p, os.R_OK):
        raise DataError(f"{p}: not readable (permission denied)")
    return p


def short_error(e: BaseException) -> str:
    s = " ".join(str(e).split())
    return s[:200] + ("..." if len(s) > 200 else "") if s else type(e).__name__


# =========================================================================================
# Registry: format -> the module that reads / writes it (imported on first use, so reading a
# Parquet file never imports the FITS code, and nothing here imports pyarrow.parquet/csv)
# =========================================================================================

#: reads a file in chunks: (path, columns or None for all, chunk_rows or None) -> tables
Reader = Callable[[str, "Sequence[str] | None", "int | None"], "Iterator[pa.Table]"]


class FormatWriter(Protocol):
    """Writes the chunks of one output (into its temporary file, or to stdout for ``-``);
    :class:`xmmtools.tables.write.TableWriter` owns the checks, provenance and the commit."""

    def write(self, chunk: pa.Table) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


#: builds a format writer: (path, schema, temporary file or None, stdout or None, row_group_rows)
WriterFactory = Callable[[str, "pa.Schema", "TempFile | None", "BinaryIO | None", int], FormatWriter]

READERS: dict[str, str] = {
    "fits": "xmmtools.tables.fits.reader:iter_fits",
    "parquet": "xmmtools.tables.parquet:iter_parquet",
    "arrow": "xmmtools.tables.ipc:iter_ipc",
    "arrows": "xmmtools.tables.ipc:iter_saved_stream",
    "csv": "xmmtools.tables.csv:iter_csv",
    "votable": "xmmtools.tables.votable:iter_votable",
    "hats": "xmmtools.tables.hats:iter_hats",
}
WRITERS: dict[str, str] = {
    "fits": "xmmtools.tables.fits.writer:FitsWriter",
    "parquet": "xmmtools.tables.parquet:ParquetWriter",
    "arrow": "xmmtools.tables.ipc:IpcFileWriter",
    "arrows": "xmmtools.tables.ipc:IpcStreamFileWriter",
    "csv": "xmmtools.tables.csv:CsvWriter",
    "votable": "xmmtools.tables.votable:VOTableWriter",
    "stream": "xmmtools.tables.ipc:IpcStreamWriter",
    "hats": "xmmtools.tables.hats:HatsWriter",
}


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def reader_for(fmt: str) -> Reader:
    """The chunk reader of a file format ('fits', 'parquet', 'arrow', 'csv')."""
    return cast(Reader, _load(READERS[fmt]))


def writer_for(fmt: str) -> WriterFactory:
    """The writer class of an output format ('fits', 'parquet', 'arrow', 'csv', 'stream')."""
    return cast(WriterFactory, _load(WRITERS[fmt]))
