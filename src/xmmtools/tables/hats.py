"""HATS catalogues (``hats:DIR`` or a catalogue/collection folder): what ``xmmtools info``
shows of them, read from their properties and ``dataset/_common_metadata`` only (no LSDB
needed).  Their rows are read by the stages that support HATS (crossmatch, through LSDB)."""

from __future__ import annotations

import os
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
    header = {k: v for k, v in d.items() if k.startswith(("hats_", "obs_", "moc_"))}
    return HatsCatalogue(folder, rows, normalise_schema(schema.remove_metadata()), header)
