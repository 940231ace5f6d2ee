"""``xmmtools convert``: the command, and its column selection and renaming to 4XMM names (pure
table work)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import click
import pyarrow as pa
import pyarrow.compute as pc

from xmmtools.cli import common_options, output_options, pass_settings
from xmmtools.columns import canonical_names, closest, resolve, schema
from xmmtools.errors import ColumnError, DataError
from xmmtools.tables.model import column_kind, field_meta

_ARROW = {
    "float32": pa.float32(),
    "float64": pa.float64(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
    "str": pa.string(),
}
_KIND = {
    "float32": "number",
    "float64": "number",
    "int16": "number",
    "int32": "number",
    "int64": "number",
    "bool": "bool",
    "str": "text",
}


@dataclass(frozen=True)
class Step:
    source: str
    target: str
    field: pa.Field  # output field (name, type, metadata)
    cast: bool


def plan_conversion(
    sch: pa.Schema,
    *,
    source: str,
    select: Sequence[str] | None = None,
    rename: bool = False,
    user_map: Mapping[str, str] | None = None,
) -> list[Step]:
    """Which input columns go out, under which names and types.

    ``select`` accepts 4XMM names, their aliases, or the file's own names.  With ``rename``
    every column that has a 4XMM name (exact, lower case, VizieR/HEASARC alias or the user's
    ``--columns`` mapping) is renamed to it and cast to the 4XMM type; a column whose values
    cannot be that type (text where a number belongs) is an error naming both.
    """
    names = sch.names
    if select:
        found = resolve(names, select, user_map)
        keep = []
        for want in select:
            if want not in found:
                near = closest(want, names)
                note = f" (closest: {', '.join(near)})" if near else ""
                raise ColumnError(f"convert --select: {source} has no column {want}{note}")
            if found[want] not in keep:
                keep.append(found[want])
    else:
        keep = list(names)
    canon = canonical_names(keep, user_map) if rename else {}
    sch4 = schema()
    steps: list[Step] = []
    used: set[str] = set()
    for name in keep:
        f = sch.field(name)
        target = canon.get(name, name)
        if target in used or (target != name and target in keep):
            target = name  # never let an alias shadow a column that already has the 4XMM name
        used.add(target.upper())
        col = sch4.get(target) if rename else None
        if col is None:
            steps.append(Step(name, target, f.with_name(target), False))
            continue
        got = column_kind(f.type)
        want = _KIND[col.dtype]
        if (
            got != want
            and not (want == "number" and got == "bool")
            and got != "number"
            or (want == "text" and got != "text")
            or (want == "bool" and got not in ("bool", "number"))
        ):
            shown = name if name == target else f"{name} (4XMM {target})"
            raise ColumnError(
                f"convert --rename-4xmm: column {shown} in {source} holds {got} values, "
                f"but 4XMM {target} is {col.dtype}{' [' + col.unit + ']' if col.unit else ''}"
            )
        meta = dict(f.metadata or {})
        base = field_meta(col.unit, col.description)
        for k, v in base.items():
            meta.setdefault(k, v)
        steps.append(Step(name, target, pa.field(target, _ARROW[col.dtype], metadata=meta), True))
    return steps


def convert_chunks(first: pa.Table, rest: Iterable[pa.Table], steps: Sequence[Step]) -> Iterator[pa.Table]:
    """Apply a plan to each chunk; the schema metadata (provenance, FITS header) is kept."""
    out_schema = pa.schema([s.field for s in steps], metadata=first.schema.metadata)

    def one(t: pa.Table) -> pa.Table:
        arrays = []
        for s in steps:
            a = t.column(s.source)
            if s.cast and a.type != s.field.type:
                try:
                    a = pc.cast(a, s.field.type, safe=True)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                    raise DataError(
                        f"column {s.source} cannot be cast to {s.field.type} for 4XMM "
                        f"{s.target}: {' '.join(str(e).split())[:160]}"
                    ) from None
            arrays.append(a)
        return pa.Table.from_arrays(arrays, schema=out_schema)

    yield one(first)
    for t in rest:
        yield one(t)


@click.command()
@click.argument("input")
@click.option("-o", "--output", required=True, help="Output file (format from extension) or '-'.")
@click.option(
    "--select",
    "select",
    metavar="COL[,COL...]",
    multiple=True,
    help="Keep only these columns (4XMM names, aliases or the file's own names).",
)
@click.option(
    "--rename-4xmm",
    is_flag=True,
    help="Rename VizieR/HEASARC/XSA/--columns spellings to 4XMM names and cast to 4XMM types.",
)
@output_options
@common_options
@pass_settings
def convert(s, input, output, select, rename_4xmm, overwrite, column_map, chunk_size):
    """Copy a table to another format, streaming it in chunks (provenance is kept and extended).

    \b
    Examples:
      xmmtools convert 4XMM_DR14cat_v1.0.fits -o dr14.parquet --select SRCID,RA,DEC,POSERR,EP_8_FLUX
      xmmtools convert vizier.csv -o cat.fits --rename-4xmm --columns RA=ra_deg
    """
    from xmmtools import tables
    from xmmtools.columns import parse_column_map

    user_map = parse_column_map(column_map)
    tables.check_output(output, inputs=[input], overwrite=overwrite)
    wanted = [c.strip() for item in select for c in item.split(",") if c.strip()] or None
    chunks = tables.iter_table(input, None, chunk_rows=chunk_size, progress=s.progress)
    first = next(chunks)
    plan = plan_conversion(first.schema, source=input, select=wanted, rename=rename_4xmm, user_map=user_map)
    step = tables.Provenance(
        "convert", {"select": wanted, "rename_4xmm": rename_4xmm, "columns": user_map or None}, [input]
    )
    writer = tables.write_chunks(
        convert_chunks(first, chunks, plan), output, provenance=step, overwrite=overwrite, inputs=[input]
    )
    if output != "-" and not s.quiet:
        click.echo(f"wrote {writer.rows} rows x {len(writer.schema)} columns to {output}", err=True)
