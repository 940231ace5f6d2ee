"""``xmmtools variability long``: parse options, call long_term, hand results to xmmtools.tables."""

from __future__ import annotations

import json
import os
import tempfile

import click

from xmmtools.cli import common_options, output_options, pass_settings
from xmmtools.cli.options import renamed


def _archive(ctx, param, values):
    out = []
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise click.BadParameter(f"{v!r} is not NAME=FILE (e.g. CSC2=csc.fits)")
        out.append((name.strip(), path.strip()))
    return out


@click.command("long")
@click.argument("input")
@click.option("-o", "--output", default=None, help="Output table (default: INPUT_variability-long.EXT); '-' = stdout.")
@click.option(
    "--archive",
    "archives",
    multiple=True,
    callback=_archive,
    metavar="NAME=FILE",
    help="Another catalogue's rows (RA/DEC or SRCID, MJD, FLUX[_ERR] or EP_8_FLUX, optional BAND, "
    "CATALOGUE); NAME selects its band factor (4XMM, CSC2, 2SXPS, eRASS1, 2RXS, XMMSL2).",
)
@click.option(
    "--upper-limits",
    "upper_limits",
    default=None,
    metavar="FILE",
    help="Upper limits: SRCID or RA/DEC, MJD, FLUX_UL (erg/cm2/s), BAND, optional CATALOGUE/INSTRUMENT.",
)
@click.option("--alerts", "alerts_out", default=None, metavar="FILE", help="Also write one row per STONKS alert.")
@click.option(
    "--alerts-json",
    "alerts_json",
    default=None,
    metavar="DIR",
    help="Also write one JSON per alert (fields + light curve) into DIR.",
)
@click.option(
    "--plot-dir",
    "plot_dir",
    **renamed("variability long", "--plot-dir"),
    default=None,
    metavar="DIR",
    help="Also draw each alert source's multi-mission light curve as DIR/alert_<key>.png.",
)
@click.option(
    "--epochs",
    "epochs_out",
    default=None,
    metavar="FILE",
    help="Also write the long-term light curves (one row per epoch).",
)
@click.option(
    "--min-ratio",
    "threshold",
    **renamed("variability long", "--min-ratio"),
    type=click.FloatRange(min=1.0),
    default=5.0,
    show_default=True,
    help="LT_VARIABLE / alert when the pessimistic ratio exceeds this.",
)
@click.option("--gamma", type=float, default=1.7, show_default=True, help="Photon index of the band conversion.")
@click.option(
    "--nh",
    type=click.FloatRange(min=0.0),
    default=3e20,
    show_default=True,
    help="Absorbing column (cm^-2) of the band conversion.",
)
@click.option(
    "--input-catalog",
    "catalogue",
    **renamed("variability long", "--input-catalog"),
    default="4XMM",
    show_default=True,
    help="Catalogue of INPUT (its band factor, when it has no CATALOGUE column).",
)
@click.option(
    "--new-since",
    type=float,
    default=None,
    metavar="MJD",
    help="Alerts only for new detections at or after this MJD (default: each source's latest).",
)
@click.option(
    "--radius",
    type=click.FloatRange(min=0.0, min_open=True),
    default=20.0,
    show_default=True,
    help="Archive matching search radius (arcsec).",
)
@output_options
@common_options
@pass_settings
def long(
    s,
    input,
    output,
    archives,
    upper_limits,
    alerts_out,
    alerts_json,
    plot_dir,
    epochs_out,
    threshold,
    gamma,
    nh,
    catalogue,
    new_since,
    radius,
    overwrite,
    column_map,
    chunk_size,
):
    """Long-term variability between epochs and missions with upper limits (STONKS, Quintin+2024).

    Groups the detections of each SRCID with archival catalogue rows and upper limits, converts
    fluxes to 0.1-12 keV, and adds LT_VAR_RATIO = max(F-sigma)/min(F+sigma), LT_VARIABLE and
    related columns to every row; --alerts lists new detections that changed by > --min-ratio.

    \b
    Example:
      xmmtools variability long data/sample/4xmm_dr10_ngc5139.fits \\
          --archive 3XMM=tests/data/variability_long/3xmm_dr8_ngc5139.csv --alerts alerts.csv -o cat_lt.fits
    """
    from xmmtools import tables
    from xmmtools.columns import parse_column_map
    from xmmtools.stage_io import default_output
    from xmmtools.variability.long.alerts import alert_records
    from xmmtools.variability.long.bands import PowerLaw
    from xmmtools.variability.long.epochs import LongTermConfig, epochs_table
    from xmmtools.variability.long.run import long_term_variability
    from xmmtools.variability.long.spec import SPEC

    user_map = parse_column_map(column_map)
    output = output or default_output(input, SPEC.name)
    extra = [p for _, p in archives] + ([upper_limits] if upper_limits else [])
    tables.check_outputs(
        {
            "-o": output,
            "--alerts": alerts_out,
            "--epochs": epochs_out,
            "--alerts-json": alerts_json,
            "--plot": plot_dir,
        },
        inputs=[input, *extra],
        overwrite=overwrite,
        plain=("--alerts-json", "--plot"),
    )
    table, streamed = _read_needed(input, SPEC, user_map, s.progress)
    arch = [(name, tables.read_table(path)) for name, path in archives]
    ul = tables.read_table(upper_limits) if upper_limits else None
    config = LongTermConfig(threshold=threshold, model=PowerLaw(gamma, nh), radius=radius)
    res = long_term_variability(
        table,
        archives=arch,
        upper_limits=ul,
        config=config,
        catalogue=catalogue,
        user_map=user_map,
        new_since=new_since,
        where=input,
    )
    params = {
        "threshold": threshold,
        "gamma": gamma,
        "nh": nh,
        "catalogue": catalogue,
        "radius": radius,
        "archives": [n for n, _ in archives],
        "new_since": new_since,
        "columns": user_map or None,
    }
    chunks = tables.iter_table(input, None, chunk_rows=chunk_size, progress=s.progress) if streamed else [table]
    _write_with_columns(
        chunks, res.columns, output, tables.Provenance(SPEC.name, params, [input, *extra]), overwrite, [input, *extra]
    )
    prov = tables.Provenance(SPEC.name, params, [input, *extra])
    if alerts_out:
        tables.write_table(res.alerts, alerts_out, provenance=prov, overwrite=overwrite, inputs=[input, *extra])
    if epochs_out:
        tables.write_table(
            epochs_table(res.epochs, res.sources),
            epochs_out,
            provenance=prov,
            overwrite=overwrite,
            inputs=[input, *extra],
        )
    if alerts_json:
        _write_json(alerts_json, alert_records(res.alerts, res.epochs, res.sources), res.sources.key_name, overwrite)
    if plot_dir:
        _write_plots(plot_dir, res, overwrite)
    if not s.quiet:
        n_var = int(res.stats.variable.sum())
        for note in res.notes:
            click.echo(f"note: {note}", err=True)
        lost = ", ".join(f"{k}: {v} rows matched no source" for k, v in res.unmatched.items() if v)
        click.echo(
            f"{len(res.sources)} sources, {len(res.epochs)} epochs, {n_var} with LT_VAR_RATIO > {threshold:g}, "
            f"{res.alerts.num_rows} alerts"
            + (f" ({lost})" if lost else "")
            + ("" if output == "-" else f"; wrote {output}"),
            err=True,
        )


def _write_json(folder: str, records: list[dict], key: str, overwrite: bool) -> None:
    """One ``alert_<key>.json`` per alert (fields + light curve)."""
    for rec in records:
        _atomic(
            folder,
            f"alert_{rec[key]}.json",
            overwrite,
            lambda f, rec=rec: f.write(json.dumps(rec, indent=2, default=str).encode()),
        )


def _write_plots(folder: str, res, overwrite: bool) -> None:
    """One ``alert_<key>.png`` light curve per alert."""
    import matplotlib.pyplot as plt

    from xmmtools.variability.long.plot import light_curve_figure

    pos = {k: i for i, k in enumerate(res.sources.key.tolist())}
    key = res.sources.key_name
    for rec in res.alerts.select([key, "ALERT_TYPE", "LT_VAR_RATIO"]).to_pylist():
        i = pos[rec[key]]
        fig = light_curve_figure(
            res.epochs,
            i,
            f"{key} {rec[key]}: {rec['ALERT_TYPE']}, ratio {rec['LT_VAR_RATIO']:.1f}",
            int(res.alerts_new[i]),
        )
        _atomic(folder, f"alert_{rec[key]}.png", overwrite, lambda f, fig=fig: fig.savefig(f, format="png", dpi=100))
        plt.close(fig)


def _atomic(folder: str, name: str, overwrite: bool, write) -> None:
    """Write DIR/name through a temporary file in DIR (flush, fsync, rename)."""
    from xmmtools.errors import OutputError

    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name.replace(" ", "_").replace("/", "_"))
    if os.path.exists(path) and not overwrite:
        raise OutputError(f"{path} exists; use --overwrite to replace it")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.{os.getpid()}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_needed(input: str, spec, user_map, progress: bool):
    """Read only the columns the stage uses (the full table is streamed again at write time);
    stdin cannot be read twice, so it is read whole.  Returns (table, streamed)."""
    from xmmtools import tables
    from xmmtools.columns import resolve
    from xmmtools.variability.long.epochs import INPUT_COLUMNS

    if input == tables.STDIO:
        t = tables.read_table(input, progress=progress)
        spec.check(t.schema.names, source=input, user_map=user_map, types=tables.schema_kinds(t.schema))
        return t, False
    info = tables.inspect_table(input)
    spec.check(info.schema.names, source=input, user_map=user_map, types=tables.schema_kinds(info.schema))
    cols = list(dict.fromkeys(resolve(info.schema.names, INPUT_COLUMNS, user_map).values()))
    return tables.read_table(input, cols, progress=progress), True


def _write_with_columns(chunks, new, output, provenance, overwrite, inputs) -> None:
    """Append the per-row columns to each chunk of the input and write atomically."""
    from xmmtools import tables

    def with_columns():
        start = 0
        for chunk in chunks:
            stop = start + chunk.num_rows
            part = [tables.NewColumn(c.name, c.values[start:stop], c.unit, c.description, c.type) for c in new]
            yield tables.add_columns(chunk, part)
            start = stop

    tables.write_chunks(with_columns(), output, provenance=provenance, overwrite=overwrite, inputs=inputs)
