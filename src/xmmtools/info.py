"""``xmmtools info``: what a table holds and which stages can run on it (metadata only)."""

from __future__ import annotations

import json

import click

from xmmtools.cli import common_options


@click.command()
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--columns",
    "column_map",
    metavar="NAME=COL[,...]",
    multiple=True,
    help="Map 4XMM names to this table's columns when checking stages.",
)
@click.option(
    "--grep",
    "pattern",
    metavar="PATTERN",
    default=None,
    help="List only columns whose name, unit or description matches this regular expression (any case).",
)
@click.option("--new", "only_new", is_flag=True, help="List only the columns xmmtools computed (P_ANY, Z_PHOT ...).")
@common_options
def info(file, as_json, column_map, pattern, only_new):
    """Rows, columns with units, catalogue kind, provenance, and which stages can run.

    Reads metadata only (a CSV is scanned to count its rows).

    \b
    Examples:
      xmmtools info data/sample/4xmm_dr10_ngc5139.fits
      xmmtools info cat_classify.fits --new            # the columns classify added
      xmmtools info cat.fits --grep 'flux.*band 8'     # 336 columns: find the one you need
    """
    from xmmtools import tables
    from xmmtools.columns import detect_kind, parse_column_map
    from xmmtools.stages import registered

    user_map = parse_column_map(column_map)
    ti = tables.inspect_table(file)
    kind = detect_kind(ti.schema.names, ti.header)
    stages = {
        name: spec.missing(ti.schema.names, user_map) for name, spec in registered().items() if ti.format != "hats"
    }  # a HATS catalogue is only read as a crossmatch counterpart
    cols = [
        {"name": f.name, "type": str(f.type), "unit": tables.unit_of(f), "description": tables.description_of(f)}
        for f in ti.schema
    ]
    cols = _filter_columns(cols, pattern, only_new)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "file": ti.path,
                    "format": ti.format,
                    "extension": ti.extension,
                    "rows": ti.num_rows,
                    "kind": kind.name,
                    "kind_reason": kind.reason,
                    "columns": cols,
                    "provenance": ti.provenance,
                    "stages": {
                        k: {
                            "ready": not v,
                            "missing": v,
                            **(
                                {"inputs": {n: f.to_json() for n, f in fd.items()}}
                                if (fd := registered()[k].feeds(ti.schema.names, user_map))
                                else {}
                            ),
                        }
                        for k, v in stages.items()
                    },
                },
                indent=2,
            )
        )
        return
    ext = f" (HDU {ti.extension})" if ti.extension else ""
    click.echo(f"file:     {ti.path}")
    click.echo(f"format:   {ti.format}{ext}")
    click.echo(f"rows:     {ti.num_rows}")
    click.echo(f"columns:  {len(cols)}")
    click.echo(f"kind:     {kind.name}: {kind.description} [{kind.reason}]")
    prov = ti.provenance
    click.echo("provenance:" + ("" if prov else " none (not written by xmmtools)"))
    for i, rec in enumerate(prov, 1):
        ins = ", ".join(f"{x.get('name')} (sha256 {str(x.get('sha256'))[:12]})" for x in rec.get("inputs", []))
        params = json.dumps(rec.get("parameters", {}), separators=(",", ":"))
        click.echo(
            f"  {i}. {rec.get('date', '?')}  xmmtools {rec.get('xmmtools', '?')}  "
            f"{rec.get('stage', '?')}  inputs: {ins or '-'}  parameters: {params}"
        )
        stage = rec.get("stage")
        stage_rec = rec.get(stage) if isinstance(stage, str) else None  # JSON keys are strings
        fed = stage_rec.get("inputs") if isinstance(stage_rec, dict) else None
        if fed:  # which column fed each model input (classify, photoz: canonical bands)
            flat = {
                **{k: v for k, v in fed.items() if "column" in v},
                **{f"{m}.{k}": v for m, d in fed.items() if "column" not in d for k, v in d.items()},
            }
            click.echo("     columns used: " + ", ".join(f"{k}={v['column']}" for k, v in flat.items()))
    if ti.format == "hats":
        click.echo("stages:   crossmatch counterpart catalogue (--catalog NAME=hats:DIR, read through LSDB)")
    if stages:
        click.echo("stages:")
        sw = max(len(n) for n in stages)
        for name, miss in stages.items():
            click.echo(f"  {name:<{sw}}  " + ("ready" if not miss else "missing " + ", ".join(miss)))
            feeds = registered()[name].feeds(ti.schema.names, user_map)  # which column feeds each input
            if feeds:
                click.echo(f"  {'':<{sw}}  inputs: " + "; ".join(f.describe() for f in feeds.values()))
    click.echo("column list:" + (f" {len(cols)} of {len(ti.schema)}" if pattern or only_new else ""))
    w = max([len(c["name"]) for c in cols] + [4])
    for c in cols:
        unit = f"[{c['unit']}]" if c["unit"] else ""
        click.echo(f"  {c['name']:<{w}}  {c['type']:<10} {unit:<14} {c['description']}".rstrip())


def _filter_columns(cols: list[dict], pattern: str | None, only_new: bool) -> list[dict]:
    """Columns matching ``pattern`` (name, unit or description; any case) and, with
    ``only_new``, those xmmtools computes (every one has a UCD in ``data/schema/ucds.csv``)."""
    import re

    from xmmtools.columns import schema, ucd_for

    if only_new:
        known = schema()
        cols = [c for c in cols if c["name"] not in known and ucd_for(c["name"])]
    if pattern:
        try:
            rx = re.compile(pattern, re.IGNORECASE)
        except re.error as e:
            raise click.BadParameter(f"not a regular expression ({e})", param_hint="--grep") from None
        cols = [c for c in cols if rx.search(f"{c['name']} {c['unit']} {c['description']}")]
    return cols
