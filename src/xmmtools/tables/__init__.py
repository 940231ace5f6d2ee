"""Every byte that touches disk: reading and writing catalogue tables.

Formats are chosen by extension: FITS (``.fits``, ``.fit``, ``.fts``, ``.fits.gz``, ``.ftz``),
Parquet (``.parquet``, ``.pq``), Arrow IPC files (``.arrow``, ``.feather``, ``.ipc``), CSV
(``.csv``, ``.csv.gz``; XSA style: empty = null, ``t``/``f`` booleans) and ``-``, an Arrow IPC
*stream* on stdin/stdout so stages chain in shell pipes.

The in-memory form is a :class:`pyarrow.Table` (:mod:`~xmmtools.tables.model`): field metadata
carries ``unit`` and ``description``, float nulls are NaN, and schema metadata holds the
provenance chain and the kept FITS header keywords, so they survive FITS -> Parquet -> FITS.
Writes are atomic: a temporary file in the target folder, flushed, fsync'ed and renamed.

One job per module:

========================  ====================================================================
``formats``               format detection, extensions, input checks, SHA-256, the registry
``model``                 the in-memory column model (the only part science code imports)
``provenance``            processing steps recorded in every output
``schema``                column-name checks and schema normalisation shared by all formats
``atomic``                temporary files committed by rename
``read`` / ``write``      the public reading and writing API
``fits/``                 ``header`` (cards without astropy), ``reader``, ``writer``
``parquet``, ``ipc``,     one module per file format (reader and writer)
``csv``
``hats``                  HATS catalogue inspection
========================  ====================================================================

This package re-exports the public API (``from xmmtools import tables as T; T.read_table``).
The format modules are imported on first use, so reading Parquet never imports the FITS code.
"""

from __future__ import annotations

from typing import Any

from xmmtools.tables.atomic import leftover_files
from xmmtools.tables.formats import (
    DEFAULT_CHUNK_ROWS,
    EXTENSIONS,
    STDIO,
    detect_format,
    file_sha256,
    prefetch_sha256,
    strip_hdu,
)
from xmmtools.tables.model import (
    HEADER_KEY,
    NewColumn,
    add_columns,
    arrow_from_numpy,
    column_kind,
    column_meta,
    description_of,
    field_meta,
    schema_kinds,
    to_numpy,
    unit_of,
)
from xmmtools.tables.provenance import PROVENANCE_KEY, Provenance, provenance_of, with_provenance
from xmmtools.tables.read import TableInfo, inspect_table, iter_table, read_table
from xmmtools.tables.write import TableWriter, check_output, check_outputs, write_chunks, write_table

__all__ = [
    "CSV_FALSE",
    "CSV_NULLS",
    "CSV_TRUE",
    "DEFAULT_CHUNK_ROWS",
    "EXTENSIONS",
    "FITS_CHUNK_BYTES",
    "HEADER_KEY",
    "PROVENANCE_KEY",
    "STDIO",
    "NewColumn",
    "Provenance",
    "TableInfo",
    "TableWriter",
    "add_columns",
    "arrow_from_numpy",
    "check_output",
    "check_outputs",
    "column_kind",
    "description_of",
    "detect_format",
    "field_meta",
    "file_sha256",
    "inspect_table",
    "leftover_files",
    "iter_table",
    "prefetch_sha256",
    "provenance_of",
    "read_table",
    "schema_kinds",
    "strip_hdu",
    "to_numpy",
    "unit_of",
    "column_meta",
    "with_provenance",
    "write_chunks",
    "write_table",
]

#: names whose module is imported only when they are asked for (PEP 562)
_LAZY = {
    "FITS_CHUNK_BYTES": "xmmtools.tables.fits.reader",
    "CSV_NULLS": "xmmtools.tables.csv",
    "CSV_TRUE": "xmmtools.tables.csv",
    "CSV_FALSE": "xmmtools.tables.csv",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
