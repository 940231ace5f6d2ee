"""What other tools read from our outputs: astropy, TOPCAT and VO tools.

Our own metadata (Arrow field ``unit``/``description``, FITS TUNITn/TCOMMn) is kept; this module
adds what the astronomer's tools look for, beside it:

* **UCDs** (IVOA UCD1+): a field's ``ucd`` metadata, else the one ``columns.ucd_for`` knows for
  the column name; written as FITS TUCDn, in the astropy header and in VOTable FIELDs.
* **astropy's column header**: astropy reads column descriptions (and ``meta``) from a YAML
  header -- in FITS the ``--BEGIN-ASTROPY-SERIALIZED-COLUMNS--`` COMMENT block, in Parquet the
  ``table_meta_yaml`` key-value entry (with ``table::len::NAME`` string widths).  Without it
  ``Table.read`` leaves every description None and, for Parquet, every unit None.
* **plain text**: dictionary-encoded text columns are written as plain strings (astropy cannot
  read Arrow dictionaries); Parquet still dictionary-encodes them on disk.

The YAML is written by hand (JSON-quoted scalars are valid YAML), so writing never imports
astropy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from xmmtools.tables.model import META_PREFIX, column_meta, description_of, unit_of

#: FITS COMMENT lines that delimit astropy's serialized column header
ASTROPY_BEGIN = "--BEGIN-ASTROPY-SERIALIZED-COLUMNS--"
ASTROPY_END = "--END-ASTROPY-SERIALIZED-COLUMNS--"
#: Parquet key-value entries astropy reads; stale copies from an input are dropped on writing
PARQUET_YAML_KEY = b"table_meta_yaml"
PARQUET_LEN_PREFIX = b"table::len::"


def ucd_of(f: pa.Field) -> str:
    """The UCD of a column: its ``ucd`` field metadata, else the schema's UCD for its name."""
    own = str((f.metadata or {}).get(b"ucd", b"").decode())
    if own:
        return own
    from xmmtools.columns import ucd_for

    return ucd_for(f.name)


def plain_type(t: pa.DataType) -> pa.DataType:
    """Dictionary types as their value type (every reader copes with plain strings)."""
    return t.value_type if pa.types.is_dictionary(t) else t


def plain_schema(schema: pa.Schema) -> pa.Schema:
    """The schema with dictionary columns decoded and stale astropy entries dropped."""
    fields = [pa.field(f.name, plain_type(f.type), f.nullable, f.metadata) for f in schema]
    meta = {k: v for k, v in (schema.metadata or {}).items() if not is_astropy_key(k)}
    return pa.schema(fields, metadata=meta or None)


def is_astropy_key(key: bytes) -> bool:
    return key == PARQUET_YAML_KEY or key.startswith(PARQUET_LEN_PREFIX)


def has_dictionaries(schema: pa.Schema) -> bool:
    return any(pa.types.is_dictionary(f.type) for f in schema)


def _datatype(t: pa.DataType) -> str:
    t = plain_type(t)
    if pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        return "string"
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return str(t.to_pandas_dtype().__name__)
    return "float64" if pa.types.is_null(t) else "string"


_FACTOR = re.compile(r"^([A-Za-z]+)(?:\*\*|\^)?(-?\d+)?$")


def plain_unit(unit: str) -> str:
    """A unit without slashes, as the FITS standard prefers and astropy's generic parser reads
    without a warning: ``erg/cm**2/s`` -> ``erg cm-2 s-1``, ``count/s`` -> ``count s-1``.  Units
    it does not recognise are returned unchanged."""
    if "/" not in unit and "**" not in unit:
        return unit
    num, *dens = unit.split("/")
    out = re.sub(r"([A-Za-z])\*\*(-?\d)", r"\1\2", num).split()
    for d in dens:
        m = _FACTOR.match(d.strip())
        if m is None:
            return unit
        power = -int(m.group(2) or 1)
        out.append(f"{m.group(1)}{power}")
    return " ".join(out)


def _q(s: str) -> str:
    return json.dumps(s, ensure_ascii=True)  # a JSON string is a YAML double-quoted scalar


def astropy_yaml(schema: pa.Schema, unit_for: dict[str, str] | None = None) -> list[str]:
    """astropy's YAML column header (``astropy.table.meta.get_header_from_yaml`` reads it):
    every column's name, datatype and, where known, unit, description and ``meta.ucd``.
    ``unit_for`` overrides the units (e.g. the FITS spelling written in TUNITn)."""
    lines = ["datatype:"]
    for f in schema:
        unit = plain_unit((unit_for or {}).get(f.name, unit_of(f)))
        parts = [f"name: {_q(f.name)}"]
        if unit:
            parts.append(f"unit: {_q(unit)}")
        parts.append(f"datatype: {_datatype(f.type)}")
        desc = description_of(f)
        if desc:
            parts.append(f"description: {_q(desc)}")
        meta = [f"{{ucd: {_q(ucd)}}}"] if (ucd := ucd_of(f)) else []
        meta += [f"{{{_q(k)}: {json.dumps(v)}}}" for k, v in column_meta(f).items()]
        if meta:
            parts.append(f"meta: !!omap [{', '.join(meta)}]")
        lines.append("- {" + ", ".join(parts) + "}")
    lines.append("meta: {}")
    return lines


def fits_comment_lines(schema: pa.Schema, unit_for: dict[str, str] | None = None) -> list[str]:
    """The astropy header as FITS COMMENT texts: 70 characters each, a longer YAML line
    continued with a trailing backslash (astropy's own convention in ``io.fits.connect``)."""
    out = [ASTROPY_BEGIN]
    for line in astropy_yaml(schema, unit_for):
        parts = [line[i : i + 70] for i in range(0, len(line), 70)] or [""]
        out += [p + "\\" for p in parts[:-1]] + [parts[-1]]
    out.append(ASTROPY_END)
    return out


def drop_astropy_block(cards: Iterable[Any]) -> list[Any]:
    """Kept header cards without an input's astropy COMMENT block (it is written afresh)."""
    out: list[Any] = []
    inside = False
    for card in cards:
        key, val = str(card[0]).upper(), str(card[1]).strip()
        if key == "COMMENT" and val == ASTROPY_BEGIN:
            inside = True
            continue
        if inside:
            inside = not (key == "COMMENT" and val == ASTROPY_END)
            continue
        out.append(card)
    return out


def parquet_metadata(schema: pa.Schema, text_chars: dict[str, int]) -> dict[bytes, bytes]:
    """The key-value entries astropy's Parquet reader uses: the YAML header and the widest
    string of each text column (in characters)."""
    meta = {PARQUET_YAML_KEY: "\n".join(astropy_yaml(schema)).encode()}
    for name, n in text_chars.items():
        meta[PARQUET_LEN_PREFIX + name.encode()] = str(max(int(n), 1)).encode()
    return meta


def update_text_chars(chars: dict[str, int], chunk: pa.Table) -> None:
    """Running widest string (characters) of each text column."""
    for f in chunk.schema:
        t = plain_type(f.type)
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            continue
        col = chunk.column(f.name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(t)
        n = pc.max(pc.utf8_length(col)).as_py() if len(col) else 0
        chars[f.name] = max(chars.get(f.name, 1), int(n or 0), 1)


def read_fits_column_meta(comments: Iterable[str]) -> dict[str, dict[bytes, bytes]]:
    """Field metadata (``ucd``, ``meta.NAME``) per column from an astropy COMMENT block of a
    FITS header, so what a FITS output carried survives reading it back; {} without one."""
    texts = [str(c) for c in comments]
    try:
        i0, i1 = texts.index(ASTROPY_BEGIN), texts.index(ASTROPY_END)
    except ValueError:
        return {}
    lines: list[str] = []
    cont = False
    for t in texts[i0 + 1 : i1]:
        if cont and lines:
            lines[-1] += t[:70]
        else:
            lines.append(t[:70])
        cont = len(t) == 71
    import yaml

    try:
        head = yaml.safe_load("\n".join(lines))
    except yaml.YAMLError:
        return {}
    out: dict[str, dict[bytes, bytes]] = {}
    for col in head.get("datatype", []) if isinstance(head, dict) else []:
        meta = col.get("meta") if isinstance(col, dict) else None
        if not meta:
            continue
        items = meta if isinstance(meta, list) else list(meta.items())
        md: dict[bytes, bytes] = {}
        for k, v in items:
            if k == "ucd":
                md[b"ucd"] = str(v).encode()
            else:
                md[META_PREFIX + str(k).encode()] = json.dumps(v).encode()
        out[str(col.get("name"))] = md
    return out
