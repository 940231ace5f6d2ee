"""HATS catalogues (``hats:DIR`` or a catalogue/collection folder): inspection (properties and
``dataset/_common_metadata``), reading (every stage's input; pyarrow only, partitions in HEALPix
order) and writing (``-o hats:DIR``; through LSDB).

Rows of a HATS catalogue are ordered by HEALPix pixel, so a table written as HATS reads back
with the same rows, columns, units, descriptions and provenance in HEALPix order.  Our
provenance chain also goes into the catalogue's properties (``xmmtools_provenance``), as does a
stated sky area (``xmmtools_skyarea_deg2`` from the SKYAREA keyword): the same catalogue gives
the same densities whether it is read as a file or as HATS.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import pyarrow as pa

from xmmtools.errors import DataError
from xmmtools.tables.formats import short_error
from xmmtools.tables.schema import normalise_schema


class HatsCatalogue(NamedTuple):
    """The folder of a HATS catalogue, its row count, Arrow schema and ``hats_``/``obs_``/``moc_``
    properties."""

    folder: str
    num_rows: int
    schema: pa.Schema
    properties: dict[str, Any]


def find_hats(p: str) -> HatsCatalogue | None:
    """A HATS catalogue (``hats:DIR`` or a catalogue/collection folder), from its properties and
    ``dataset/_common_metadata`` only (no LSDB needed); None when ``p`` is not one.  Its rows are
    read by the stages that support HATS (crossmatch, through LSDB)."""
    folder = p[len("hats:") :] if p.startswith("hats:") else p
    if not os.path.isdir(folder):
        if p.startswith("hats:"):
            raise DataError(f"{p}: no such HATS catalogue directory")
        return None

    def props(path: str) -> dict[str, str]:
        out: dict[str, str] = {}
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                k, eq, v = line.partition("=")
                if eq and not line.lstrip().startswith("#"):
                    out[k.strip()] = v.strip()
        return out

    if os.path.isfile(os.path.join(folder, "collection.properties")):
        main = props(os.path.join(folder, "collection.properties")).get("hats_primary_table_url", "")
        folder = os.path.join(folder, main)
    prop = next(
        (os.path.join(folder, n) for n in ("hats.properties", "properties") if os.path.isfile(os.path.join(folder, n))),
        None,
    )
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
        raise DataError(f"{p}: unreadable HATS catalogue ({short_error(e)})") from None
    header = {k: v for k, v in d.items() if k.startswith(("hats_", "obs_", "moc_", "xmmtools_"))}
    return HatsCatalogue(folder, rows, normalise_schema(schema.remove_metadata()), header)


#: the HEALPix index column HATS adds; not part of the table the stages see
HEALPIX_INDEX = "_healpix_29"
#: property keys written with our catalogues
PROVENANCE_PROPERTY = "xmmtools_provenance"
SKYAREA_PROPERTY = "xmmtools_skyarea_deg2"
#: rows per partition when writing HATS (a few tens of MB per partition)
PARTITION_ROWS = 500_000

_PIXEL = re.compile(r"Norder=(\d+)/Dir=\d+/Npix=(\d+)")


def hats_folder(p: str) -> str:
    """``hats:DIR`` -> DIR."""
    return p[len("hats:") :] if p.startswith("hats:") else p


def partition_files(p: str) -> list[str]:
    """The Parquet files of a HATS catalogue's partitions, in HEALPix order (order then pixel,
    expressed at a common order)."""
    cat = find_hats(p)
    if cat is None:
        raise DataError(f"{p}: not a HATS catalogue")
    root = os.path.join(cat.folder, "dataset")
    found: list[tuple[int, int, str]] = []
    for folder, _dirs, files in os.walk(root):
        for f in files:
            if not f.endswith(".parquet"):
                continue
            full = os.path.join(folder, f)
            m = _PIXEL.search(os.path.relpath(full, root).replace(os.sep, "/"))
            if m:
                order, pix = int(m.group(1)), int(m.group(2))
                found.append((pix << (2 * (29 - order)), order, full))
    found.sort()
    return [f for _, _, f in found]


def _table_schema(cat: HatsCatalogue, columns: Sequence[str] | None) -> pa.Schema:
    import pyarrow.parquet as pq

    meta = pq.read_schema(os.path.join(cat.folder, "dataset", "_common_metadata"))
    names = [n for n in meta.names if n != HEALPIX_INDEX] if columns is None else list(columns)
    missing = [c for c in names if c not in meta.names]
    if missing:
        raise DataError(f"{cat.folder}: no column {missing[0]!r} in the HATS catalogue")
    return normalise_schema(pa.schema([meta.field(n) for n in names], metadata=meta.metadata))


def table_schema(p: str, columns: Sequence[str] | None = None) -> pa.Schema:
    """The schema the stages see of the HATS catalogue ``p`` (without its HEALPix index)."""
    cat = find_hats(p)
    if cat is None:
        raise DataError(f"{p}: not a HATS catalogue")
    return _table_schema(cat, columns)


def read_partition(path: str, schema: pa.Schema) -> pa.Table:
    """One partition file with the catalogue's schema (units, descriptions, provenance)."""
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=schema.names)
    arrays = [t.column(n).cast(schema.field(n).type) for n in schema.names]
    return pa.Table.from_arrays(arrays, schema=schema)


def iter_hats(p: str, columns: Sequence[str] | None, chunk_rows: int | None) -> Iterator[pa.Table]:
    """The reader of ``hats:DIR``: one chunk per partition, in HEALPix order."""
    cat = find_hats(p)
    if cat is None:
        raise DataError(f"{p}: not a HATS catalogue")
    schema = _table_schema(cat, columns)
    files = partition_files(p)
    if not files:
        yield schema.empty_table()
        return
    for f in files:
        try:
            yield read_partition(f, schema)
        except (OSError, pa.ArrowInvalid) as e:
            raise DataError(f"{p}: unreadable partition {os.path.basename(f)} ({short_error(e)})") from None


def coordinate_names(names: Sequence[str]) -> tuple[str, str]:
    """The RA/Dec columns of a table written as HATS."""
    pairs = (("RA", "DEC"), ("ra", "dec"), ("RA_ICRS", "DE_ICRS"), ("RAJ2000", "DEJ2000"), ("raMean", "decMean"))
    for ra, dec in pairs:
        if ra in names and dec in names:
            return ra, dec
    low = {n.lower(): n for n in names}
    if "ra" in low and "dec" in low:
        return low["ra"], low["dec"]
    raise DataError("a HATS catalogue needs RA/DEC (or ra/dec) columns; rename them with convert --columns")


def hats_properties(schema: pa.Schema) -> dict[str, str]:
    """Our properties for a catalogue with this schema: the provenance chain (one line of JSON)
    and the stated sky area (SKYAREA keyword), if any."""
    meta = schema.metadata or {}
    out: dict[str, str] = {}
    prov = meta.get(b"xmmtools.provenance")
    if prov:
        out[PROVENANCE_PROPERTY] = json.dumps(json.loads(prov), separators=(",", ":"))
    head = meta.get(b"xmmtools.header")
    if head:
        cards = json.loads(head)
        items = cards.items() if isinstance(cards, dict) else [c[:2] for c in cards if isinstance(c, list) and c]
        for k, val in items:
            if str(k).upper() in ("SKYAREA", "SKY_AREA"):
                with contextlib.suppress(TypeError, ValueError):
                    out[SKYAREA_PROPERTY] = repr(float(val))
    return out


def write_hats(
    table: pa.Table,
    p: str,
    *,
    overwrite: bool = False,
    partition_rows: int = PARTITION_ROWS,
    margin_arcsec: float | None = None,
) -> None:
    """Write ``table`` (schema metadata included) as the HATS catalogue ``p`` through LSDB, into
    a temporary folder renamed at the end (an existing catalogue is replaced only with
    ``overwrite``)."""
    import warnings

    import pandas as pd
    import pyarrow.parquet as pq

    try:
        import lsdb
    except ImportError:
        raise DataError("writing a HATS catalogue needs LSDB: pip install 'xmmtools[scale]'") from None
    final = os.path.abspath(hats_folder(p))
    if os.path.exists(final) and not overwrite:
        raise DataError(f"{final}: exists; use --overwrite to replace it")
    ra, dec = coordinate_names(table.schema.names)
    name = os.path.basename(final.rstrip(os.sep)) or "catalogue"
    tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=os.path.dirname(final))
    try:
        df = table.to_pandas(types_mapper=pd.ArrowDtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cat = lsdb.from_dataframe(
                df,
                ra_column=ra,
                dec_column=dec,
                lowest_order=0,
                highest_order=10,
                partition_rows=partition_rows,
                margin_threshold=margin_arcsec,
                schema=table.schema.remove_metadata(),
            )
            cat.write_catalog(
                os.path.join(tmp, name),
                catalog_name=name,
                overwrite=True,
                progress_bar=False,
                addl_hats_properties=hats_properties(table.schema),
            )
        root = os.path.join(tmp, name)  # a collection: the catalogue (and any margin) inside
        written_cat = find_hats(root)
        assert written_cat is not None
        meta_path = os.path.join(written_cat.folder, "dataset", "_common_metadata")
        written = pq.read_schema(meta_path)
        # our units, descriptions and provenance in the catalogue's own schema
        fields = [table.schema.field(f.name) if f.name in table.schema.names else f for f in written]
        merged = dict(written.metadata or {})
        merged.update(table.schema.metadata or {})
        pq.write_metadata(pa.schema(fields, metadata=merged), meta_path)
        commit_folder(root, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def add_our_metadata(root: str, schema: pa.Schema) -> None:
    """Our properties (provenance, stated sky area) and schema (units, descriptions,
    provenance) into the HATS catalogue (or collection) ``root`` written by another tool."""
    import pyarrow.parquet as pq

    cat = find_hats(root)
    if cat is None:
        raise DataError(f"{root}: not a HATS catalogue")
    props = hats_properties(schema)
    for name in ("hats.properties", "properties"):
        path = os.path.join(cat.folder, name)
        if os.path.isfile(path) and props:
            with open(path, "a", encoding="utf-8") as f:
                f.writelines(f"{k}={v}\n" for k, v in props.items())
    meta_path = os.path.join(cat.folder, "dataset", "_common_metadata")
    written = pq.read_schema(meta_path)
    fields = [
        written.field(f.name).with_metadata(schema.field(f.name).metadata) if f.name in schema.names else f
        for f in written
    ]
    merged = dict(written.metadata or {})
    merged.update(schema.metadata or {})
    pq.write_metadata(pa.schema(fields, metadata=merged), meta_path)


def commit_folder(root: str, final: str) -> None:
    """Move a finished catalogue folder into place (replacing an older one)."""
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(root, final)


class HatsWriter:
    """The ``-o hats:DIR`` format writer: chunks are collected and written as one HATS catalogue
    when closed (the whole output in memory; with ``--engine dask`` the stages write their
    partitions on the workers instead)."""

    def __init__(self, path: str, schema: pa.Schema, tmp: Any, stdout: Any, row_group_rows: int):
        self.path = path
        self.schema = schema
        self.chunks: list[pa.Table] = []
        self.overwrite = False

    def write(self, chunk: pa.Table) -> None:
        self.chunks.append(chunk)

    def close(self) -> None:
        table = pa.concat_tables(self.chunks) if self.chunks else self.schema.empty_table()
        write_hats(table.replace_schema_metadata(self.schema.metadata), self.path, overwrite=self.overwrite)
        self.chunks = []

    def abort(self) -> None:
        self.chunks = []
