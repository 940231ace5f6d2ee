"""The writing API: :func:`write_table`, :func:`write_chunks` and :class:`TableWriter`.

Every write is atomic (:mod:`xmmtools.tables.atomic`); the format's own writer comes from the
registry in :mod:`xmmtools.tables.formats`.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, BinaryIO, cast

import pyarrow as pa

from xmmtools.errors import DataError, OutputError
from xmmtools.tables.atomic import TempFile
from xmmtools.tables.formats import EXTENSIONS, STDIO, FormatWriter, detect_format, strip_hdu, writer_for
from xmmtools.tables.provenance import Provenance, with_provenance
from xmmtools.tables.schema import check_schema_names, normalise_schema


def check_output(path: str, *, inputs: Sequence[str] = (), overwrite: bool = False) -> str:
    """Validate an output path before any work is done; returns its format."""
    p = str(path)
    fmt = detect_format(p) if p == STDIO else _output_format(p)
    if p == STDIO:
        if _stdout_is_terminal():
            raise OutputError(
                "-: standard output is a terminal; an Arrow stream is binary: pipe it into another "
                "command (| xmmtools convert - -o out.parquet) or save it (> out.arrows)"
            )
        return fmt
    if fmt == "hats":
        return _check_hats_output(p, inputs, overwrite)
    check_not_input(p, inputs)
    parent = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(parent):
        raise OutputError(f"{p}: folder {parent} does not exist")
    if os.path.isdir(p):
        raise OutputError(f"{p}: is a folder")
    check_replaceable(p)
    if os.path.exists(p) and not overwrite:
        raise OutputError(f"{p}: exists; use --overwrite to replace it")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{p}: folder {parent} is not writable")
    return fmt


def check_not_input(p: str, inputs: Sequence[str]) -> None:
    """Refuse an output path that is one of the inputs (same name, link or hard link)."""
    out_real = os.path.realpath(p)
    for i in inputs:
        i = str(i)
        if i == STDIO:
            continue
        ireal = os.path.realpath(strip_hdu(i)[0])
        same = ireal == out_real
        if not same and os.path.exists(p) and os.path.exists(ireal):
            with contextlib.suppress(OSError):
                same = os.path.samefile(ireal, p)
        if same:
            raise OutputError(f"{p}: output is the input file {i}; refusing to write over it")


def check_replaceable(p: str) -> None:
    """An existing output must be a regular file: a device node, FIFO or socket named like a
    table is never replaced (not even with --overwrite), nor written into."""
    try:
        st = os.stat(p)
    except OSError:
        return
    if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(st.st_mode)
            else "a device"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "not a regular file"
        )
        raise OutputError(f"{p}: is {kind}, not a regular file; refusing to write to it (use - for standard output)")


def check_outputs(
    outputs: Mapping[str, str | None],
    *,
    inputs: Sequence[str] = (),
    overwrite: bool = False,
    plain: Sequence[str] = (),
) -> None:
    """Check all the outputs of one command before anything is written: each against every
    input, against the others (two options naming one file would leave only the last write),
    and, for table outputs, as :func:`check_output` does.

    ``outputs``: option label (``"-o"``, ``"--alerts"``) -> path or None (not asked for);
    ``plain``: labels of outputs that are not tables (JSON, a folder of figures): checked for
    collisions, inputs, devices and existing files only."""
    seen: dict[str, str] = {}
    for label, path in outputs.items():
        if not path:
            continue
        p = str(path)
        key = STDIO if p == STDIO else os.path.realpath(strip_hdu(p)[0])
        if key in seen:
            raise OutputError(f"{p}: given as both {seen[key]} and {label}; each output needs its own file")
        seen[key] = label
        if label not in plain:
            check_output(p, inputs=inputs, overwrite=overwrite)
        elif p != STDIO:
            check_not_input(p, inputs)
            if not os.path.isdir(p):
                check_replaceable(p)
                if os.path.exists(p) and not overwrite:
                    raise OutputError(f"{p}: exists; use --overwrite to replace it")


def _stdout_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # replaced by a capture without a descriptor
        return False


def _check_hats_output(p: str, inputs: Sequence[str], overwrite: bool) -> str:
    folder = os.path.realpath(p[len("hats:") :])
    for i in inputs:
        i = str(i)
        real = os.path.realpath(i[len("hats:") :] if i.startswith("hats:") else strip_hdu(i)[0])
        if real == folder or real.startswith(folder + os.sep):
            raise OutputError(f"{p}: output is the input catalogue; refusing to write over it")
    parent = os.path.dirname(folder)
    if not os.path.isdir(parent):
        raise OutputError(f"{p}: folder {parent} does not exist")
    if os.path.exists(folder) and not overwrite:
        raise OutputError(f"{p}: exists; use --overwrite to replace it")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{p}: folder {parent} is not writable")
    return "hats"


def _output_format(p: str) -> str:
    try:
        return detect_format(p)
    except DataError:
        known = ", ".join(sorted(EXTENSIONS))
        raise OutputError(f"{p}: unknown output format (use one of {known}, or - for an Arrow stream)") from None


def write_table(
    table: pa.Table,
    path: str | os.PathLike[str],
    *,
    provenance: Provenance | dict[str, Any] | None = None,
    overwrite: bool = False,
    inputs: Sequence[str] = (),
    stdout: io.BufferedIOBase | None = None,
) -> None:
    """Write a whole table atomically (see :class:`TableWriter`)."""
    with TableWriter(path, table.schema, provenance=provenance, overwrite=overwrite, inputs=inputs, stdout=stdout) as w:
        w.write(table)


def write_chunks(
    chunks: Iterable[pa.Table],
    path: str | os.PathLike[str],
    *,
    provenance: Provenance | dict[str, Any] | None = None,
    overwrite: bool = False,
    inputs: Sequence[str] = (),
    stdout: io.BufferedIOBase | None = None,
) -> TableWriter:
    """Write a stream of chunks (the first one fixes the schema) atomically; on any error the
    partial output is dropped.  Returns the closed writer (``.rows``, ``.schema``)."""
    writer = None
    try:
        for chunk in chunks:
            if writer is None:
                writer = TableWriter(
                    path, chunk.schema, provenance=provenance, overwrite=overwrite, inputs=inputs, stdout=stdout
                )
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
        path: str | os.PathLike[str],
        schema: pa.Schema,
        *,
        provenance: Provenance | dict[str, Any] | None = None,
        overwrite: bool = False,
        inputs: Sequence[str] = (),
        stdout: io.BufferedIOBase | None = None,
        row_group_rows: int = 128 * 1024,
    ):
        self.path = str(path)
        self.format = check_output(self.path, inputs=inputs, overwrite=overwrite)
        check_schema_names(schema, self.path)
        self.schema = with_provenance(normalise_schema(schema), provenance)
        self.overwrite = overwrite
        self.rows = 0
        self._stdout = stdout
        self._rg = row_group_rows
        self._tmp: TempFile | None = None
        self._out: FormatWriter | None = None
        self._closed = False

    # -- context management ------------------------------------------------------------
    def __enter__(self) -> TableWriter:
        try:
            self._open()
        except OSError as e:
            self.abort()
            raise self._write_error(e) from None
        except BaseException:
            self.abort()  # e.g. a column FITS cannot hold: leave no temporary file behind
            raise
        return self

    def _write_error(self, e: OSError) -> BaseException:
        """An OSError while writing as a one-line OutputError (a full disk, a closed or full
        standard output); a reader of stdout that went away stays a BrokenPipeError."""
        if isinstance(e, BrokenPipeError) or e.errno == errno.EPIPE:
            return e
        where = "standard output" if self.format == "stream" else "the output"
        reason = e.strerror or " ".join(str(e).split())[:200] or type(e).__name__
        return OutputError(f"{self.path}: cannot write {where} ({reason}); no output was written")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _open(self) -> None:
        if self.format not in ("stream", "hats"):  # a HATS catalogue commits its own folder
            self._tmp = TempFile(self.path)
        elif self._stdout is None and (sys.stdout is None or not _fd_open(1)):
            raise OutputError("-: standard output is closed; nothing can be written to it")
        # the format's writer checks first what it cannot hold (FITS: types and names)
        self._out = writer_for(self.format)(
            self.path, self.schema, self._tmp, cast("BinaryIO | None", self._stdout), self._rg
        )
        if self.format == "hats":
            setattr(self._out, "overwrite", self.overwrite)  # noqa: B010

    def write(self, chunk: pa.Table | pa.RecordBatch) -> None:
        if self._out is None:
            self._open()
        if isinstance(chunk, pa.RecordBatch):
            chunk = pa.Table.from_batches([chunk])
        if chunk.schema.names != self.schema.names:
            raise ValueError(f"chunk columns {chunk.schema.names[:5]}... differ from the writer's schema")
        chunk = chunk.cast(self.schema) if not chunk.schema.equals(self.schema) else chunk
        chunk = chunk.replace_schema_metadata(self.schema.metadata)
        assert self._out is not None
        try:
            self._out.write(chunk)
        except OSError as e:
            self.abort()
            raise self._write_error(e) from None
        self.rows += chunk.num_rows

    def close(self) -> None:
        if self._closed:
            return
        if self._out is None:
            self._open()
        try:
            assert self._out is not None
            self._out.close()
            if self.format in ("stream", "hats"):
                self._closed = True
                return
            if os.path.exists(self.path) and not self.overwrite:  # appeared meanwhile
                raise OutputError(f"{self.path}: exists; use --overwrite to replace it")
            assert self._tmp is not None
            self._tmp.commit()
            self._tmp = None
            self._closed = True
        except OSError as e:
            self.abort()
            raise self._write_error(e) from None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop everything written so far; an existing output is left untouched."""
        self._closed = True
        if self._out is not None:
            self._out.abort()
        if self._tmp is not None:
            self._tmp.discard()
        self._tmp = None


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
