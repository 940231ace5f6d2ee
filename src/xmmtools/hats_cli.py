"""``xmmtools hats import TABLE -o hats:DIR``: a HATS copy of any table xmmtools reads.

The table is streamed into Parquet parts (so FITS, CSV, Arrow and stdin work as well), then
`hats-import` (LINCC Frameworks; ``pip install hats-import``) partitions it on a Dask cluster
and writes the catalogue *and its margin cache* as one collection; when hats-import is not
installed, LSDB's ``from_dataframe`` + ``write_catalog`` does the same in memory (fine for
tables that fit).  Either way our provenance chain and the table's stated sky area (SKYAREA)
go into the catalogue's properties, and the columns keep their units and descriptions, so the
copy gives the same crossmatch densities as the file.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import click

from xmmtools.cli import common_options, engine_options, pass_settings

EXAMPLES = """
\b
Examples:
  xmmtools hats import gaia_field.fits -o hats:gaia_field --margin-arcsec 30
  xmmtools hats import big.parquet -o hats:/data/big --engine dask --scheduler tcp://head:8786
"""


@click.group("hats")
def hats() -> None:
    """HATS catalogues (HEALPix-partitioned Parquet for --engine dask): import a table."""


@hats.command("import", epilog=EXAMPLES)
@click.argument("table")
@click.option("-o", "--output", required=True, metavar="hats:DIR", help="The HATS collection to write.")
@click.option(
    "--margin-arcsec",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Margin cache width: crossmatch radii up to this are exact across partition borders.",
)
@click.option(
    "--partition-rows",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="Rows per partition at most (memory per worker task follows it).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing catalogue.")
@engine_options
@common_options
@pass_settings
def import_cmd(s, table, output, margin_arcsec, partition_rows, overwrite, engine, scheduler, workers):
    """Write TABLE (any format xmmtools reads) as a HATS catalogue with a margin cache."""
    from xmmtools import engine as engines
    from xmmtools import tables
    from xmmtools.errors import DataError
    from xmmtools.tables import hats as th

    if not output.startswith("hats:"):
        raise DataError(f"-o {output}: give hats:DIR")
    tables.check_output(output, inputs=[table], overwrite=overwrite)
    eng = engines.from_options(engine, scheduler, workers)
    final = os.path.abspath(th.hats_folder(output))
    name = os.path.basename(final.rstrip(os.sep)) or "catalogue"
    info = tables.inspect_table(table)
    ra, dec = th.coordinate_names(info.schema.names)
    params = {"margin_arcsec": margin_arcsec, "partition_rows": partition_rows}
    tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=os.path.dirname(final))
    try:
        try:
            import hats_import  # noqa: F401
        except ImportError:
            tool = "lsdb"
            t = tables.read_table(table, progress=s.progress)
            schema = tables.with_provenance(t.schema, tables.Provenance("hats-import", params, [table]))
            th.write_hats(
                t.replace_schema_metadata(schema.metadata),
                output,
                overwrite=overwrite,
                partition_rows=partition_rows,
                margin_arcsec=margin_arcsec,
            )
            rows = t.num_rows
        else:
            tool = "hats-import"
            rows, schema = _with_hats_import(table, tmp, name, ra, dec, params, eng, s.progress)
            schema = tables.with_provenance(schema, tables.Provenance("hats-import", params | {"tool": tool}, [table]))
            th.add_our_metadata(os.path.join(tmp, name), schema)
            th.commit_folder(os.path.join(tmp, name), final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not s.quiet:
        click.echo(
            f"wrote {rows} rows as the HATS catalogue {final} ({tool}, margin {margin_arcsec:g} arcsec)", err=True
        )


def _with_hats_import(table, tmp, name, ra, dec, params, eng, progress):
    """Stream the table into Parquet parts, run hats-import's collection pipeline (catalogue +
    margin cache) on a Dask client; returns (rows, the table's schema)."""
    import pyarrow.parquet as pq
    from hats_import.collection.arguments import CollectionArguments
    from hats_import.pipeline import pipeline_with_client

    from xmmtools import engine as engines
    from xmmtools import tables

    parts_dir = os.path.join(tmp, "_parts")
    os.makedirs(parts_dir)
    parts, rows, schema = [], 0, None
    for i, chunk in enumerate(tables.iter_table(table, chunk_rows=params["partition_rows"], progress=progress)):
        if chunk.num_rows == 0:
            continue
        schema = schema or chunk.schema
        path = os.path.join(parts_dir, f"part{i:06d}.parquet")
        pq.write_table(chunk.replace_schema_metadata(None), path)
        parts.append(path)
        rows += chunk.num_rows
    if not parts:
        from xmmtools.errors import DataError

        raise DataError(f"{table}: the table has no rows")
    args = (
        CollectionArguments(
            output_artifact_name=name,
            output_path=tmp,
            tmp_dir=os.path.join(tmp, "_work"),
            progress_bar=progress,
            resume=False,
        )
        .catalog(
            input_file_list=parts,
            file_reader="parquet",
            ra_column=ra,
            dec_column=dec,
            pixel_threshold=params["partition_rows"],
            highest_healpix_order=10,
        )
        .add_margin(margin_threshold=params["margin_arcsec"], is_default=True)
    )
    run_on = eng if eng.dask else engines.Engine("dask", workers=1)
    with engines.session(run_on) as client:
        pipeline_with_client(args, client)
    return rows, schema
