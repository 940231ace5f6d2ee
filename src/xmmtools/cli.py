"""The ``xmmtools`` command line: it only wires tables.py, columns.py and the stages.

Exit codes: 0 ok; 1 data error (bad or missing file or column, refused output); 2 usage
error.  User errors are one line on stderr, ``error: ...``; the traceback is shown only with
``--verbose``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Sequence

import click

from xmmtools import __version__
from xmmtools.errors import XmmtoolsError

_STATE = {"verbose": False, "quiet": False}


@dataclass
class Settings:
    quiet: bool = False
    verbose: bool = False

    @property
    def progress(self) -> bool:
        """tqdm bars only on a terminal and never with --quiet."""
        return not self.quiet and sys.stderr.isatty()


def _set_verbosity(ctx: click.Context, quiet: bool, verbose: bool) -> Settings:
    s = ctx.find_object(Settings)
    if s is None:
        s = ctx.ensure_object(Settings)
    s.quiet = s.quiet or quiet
    s.verbose = s.verbose or verbose
    _STATE["quiet"], _STATE["verbose"] = s.quiet, s.verbose
    return s


def common_options(f):
    """--quiet/--verbose accepted after the command too (``xmmtools info x.fits -q``)."""
    f = click.option("-q", "--quiet", "cmd_quiet", is_flag=True, help="No progress bars or notes.")(f)
    f = click.option("-v", "--verbose", "cmd_verbose", is_flag=True, help="Tracebacks on errors.")(f)
    return f


def output_options(f):
    f = click.option("--overwrite", is_flag=True, help="Replace an existing output file.")(f)
    f = click.option("--columns", "column_map", metavar="NAME=COL[,...]", multiple=True,
                     help="Map 4XMM names to this table's columns, e.g. RA=ra_deg,DEC=dec_deg.")(f)
    f = click.option("--chunk-size", type=click.IntRange(min=1), default=None, metavar="ROWS",
                     help="Rows per chunk when streaming large tables.")(f)
    return f


#: Stage commands, imported only when used (so `xmmtools info` does not pay for scikit-learn).
#: Each stage package provides ``xmmtools.<stage>.cli:<command>``.
STAGE_COMMANDS = {
    "crossmatch": "xmmtools.crossmatch.cli:crossmatch",
    "classify": "xmmtools.classify.cli:classify",
    "photoz": "xmmtools.photoz.cli:photoz",
    "variability": "xmmtools.variability.cli:variability",
    "sensitivity": "xmmtools.sensitivity.cli:sensitivity",
    "sensitivity-map": "xmmtools.sensitivity.cli:sensitivity_map",
    "run": "xmmtools.pipeline:run",
    # the issues' hyphenated spellings of the training/evaluation subcommands
    "classify-train": "xmmtools.classify.cli:train_cmd",
    "classify-evaluate": "xmmtools.classify.cli:evaluate_cmd",
    "classify-votes": "xmmtools.classify.cli:votes_cmd",
    "photoz-train": "xmmtools.photoz.cli:train",
    "photoz-evaluate": "xmmtools.photoz.cli:evaluate",
}


class LazyGroup(click.Group):
    """A Click group whose commands (``name -> "module:attribute"``) are imported on first use;
    a command whose module is absent from this version is simply not listed."""

    def __init__(self, *args, lazy_commands=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx):
        names = set(super().list_commands(ctx))
        names.update(n for n in self.lazy_commands if self._load(n) is not None)
        return sorted(names)

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        return cmd if cmd is not None else self._load(name)

    def _load(self, name):
        target = self.lazy_commands.get(name)
        if target is None:
            return None
        import importlib

        mod, attr = target.split(":")
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name and (mod == e.name or mod.startswith(e.name + ".")):
                return None  # that command is not part of this version
            raise
        return getattr(m, attr)


@click.group(cls=LazyGroup, lazy_commands=STAGE_COMMANDS, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="xmmtools")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or notes on stderr.")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """Value-added catalogues from XMM-Newton 4XMM source catalogues.

    \b
    Each stage reads a catalogue table (FITS, Parquet, Arrow, CSV, or '-' for an Arrow
    stream on stdin) and writes it back with new columns, so stages chain:
      xmmtools info data/sample/4xmm_dr10_ngc5139.fits
      xmmtools convert cat.fits -o cat.parquet
      xmmtools convert cat.fits -o - | xmmtools convert - -o copy.fits
    """
    ctx.obj = Settings(quiet=quiet, verbose=verbose)
    _STATE["quiet"], _STATE["verbose"] = quiet, verbose


# -----------------------------------------------------------------------------------------
# info
# -----------------------------------------------------------------------------------------

@cli.command()
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--columns", "column_map", metavar="NAME=COL[,...]", multiple=True,
              help="Map 4XMM names to this table's columns when checking stages.")
@common_options
@click.pass_context
def info(ctx, file, as_json, column_map, cmd_quiet, cmd_verbose):
    """Rows, columns with units, catalogue kind, provenance, and which stages can run.

    Reads metadata only (a CSV is scanned to count its rows).

    \b
    Example:
      xmmtools info data/sample/4xmm_dr10_ngc5139.fits
    """
    from xmmtools import tables
    from xmmtools.columns import detect_kind, parse_column_map
    from xmmtools.stages import registered

    _set_verbosity(ctx, cmd_quiet, cmd_verbose)
    user_map = parse_column_map(column_map)
    ti = tables.inspect_table(file)
    kind = detect_kind(ti.schema.names, ti.header)
    stages = {name: spec.missing(ti.schema.names, user_map) for name, spec in registered().items()
              if ti.format != "hats"}  # a HATS catalogue is only read as a crossmatch counterpart
    cols = [{"name": f.name, "type": str(f.type), "unit": tables.unit_of(f),
             "description": tables.description_of(f)} for f in ti.schema]
    if as_json:
        click.echo(json.dumps({
            "file": ti.path, "format": ti.format, "extension": ti.extension, "rows": ti.num_rows,
            "kind": kind.name, "kind_reason": kind.reason, "columns": cols,
            "provenance": ti.provenance,
            "stages": {k: {"ready": not v, "missing": v,
                           **({"inputs": {n: f.to_json() for n, f in fd.items()}} if (fd := registered()[k].feeds(
                               ti.schema.names, user_map)) else {})} for k, v in stages.items()},
        }, indent=2))
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
        click.echo(f"  {i}. {rec.get('date', '?')}  xmmtools {rec.get('xmmtools', '?')}  "
                   f"{rec.get('stage', '?')}  inputs: {ins or '-'}  parameters: {params}")
        fed = (rec.get(rec.get("stage")) or {}).get("inputs") if isinstance(rec.get(rec.get("stage")), dict) else None
        if fed:  # which column fed each model input (classify, photoz: canonical bands)
            flat = {**{k: v for k, v in fed.items() if "column" in v},
                    **{f"{m}.{k}": v for m, d in fed.items() if "column" not in d for k, v in d.items()}}
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
    click.echo("column list:")
    w = max([len(c["name"]) for c in cols] + [4])
    for c in cols:
        unit = f"[{c['unit']}]" if c["unit"] else ""
        click.echo(f"  {c['name']:<{w}}  {c['type']:<10} {unit:<14} {c['description']}".rstrip())


# -----------------------------------------------------------------------------------------
# convert
# -----------------------------------------------------------------------------------------

@cli.command()
@click.argument("input")
@click.option("-o", "--output", required=True, help="Output file (format from extension) or '-'.")
@click.option("--select", "select", metavar="COL[,COL...]", multiple=True,
              help="Keep only these columns (4XMM names, aliases or the file's own names).")
@click.option("--rename-4xmm", is_flag=True,
              help="Rename VizieR/HEASARC/XSA/--columns spellings to 4XMM names and cast to 4XMM types.")
@output_options
@common_options
@click.pass_context
def convert(ctx, input, output, select, rename_4xmm, overwrite, column_map, chunk_size, cmd_quiet, cmd_verbose):
    """Copy a table to another format, streaming it in chunks (provenance is kept and extended).

    \b
    Examples:
      xmmtools convert 4XMM_DR14cat_v1.0.fits -o dr14.parquet --select SRCID,RA,DEC,POSERR,EP_8_FLUX
      xmmtools convert vizier.csv -o cat.fits --rename-4xmm --columns RA=ra_deg
    """
    from xmmtools import tables
    from xmmtools.columns import parse_column_map
    from xmmtools.convert import convert_chunks, plan_conversion

    s = _set_verbosity(ctx, cmd_quiet, cmd_verbose)
    user_map = parse_column_map(column_map)
    tables.check_output(output, inputs=[input], overwrite=overwrite)
    wanted = [c.strip() for item in select for c in item.split(",") if c.strip()] or None
    chunks = tables.iter_table(input, None, chunk_rows=chunk_size, progress=s.progress)
    first = next(chunks)
    plan = plan_conversion(first.schema, source=input, select=wanted, rename=rename_4xmm, user_map=user_map)
    step = tables.Provenance("convert", {"select": wanted, "rename_4xmm": rename_4xmm,
                                         "columns": user_map or None}, [input])
    writer = tables.write_chunks(convert_chunks(first, chunks, plan), output, provenance=step,
                                 overwrite=overwrite, inputs=[input])
    if output != "-" and not s.quiet:
        click.echo(f"wrote {writer.rows} rows x {len(writer.schema)} columns to {output}", err=True)


# -----------------------------------------------------------------------------------------
# entry point
# -----------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in args)
    _terminate_cleanly()
    try:
        cli.main(args=args, prog_name="xmmtools", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: interrupted; no output was written", err=True)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:  # usage errors: Click's own message, exit 2
        e.show()
        sys.exit(e.exit_code)
    except XmmtoolsError as e:
        if verbose or _STATE["verbose"]:
            traceback.print_exc()
        click.echo(f"error: {e.message}", err=True)
        sys.exit(e.exit_code)
    except BrokenPipeError:
        # the reader of our stdout went away (e.g. `| head`): not an error of ours
        with contextlib.suppress(Exception):
            sys.stdout = open(os.devnull, "w")
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("error: interrupted; no output was written", err=True)
        sys.exit(130)
    except Exception as e:  # a bug: still one line unless --verbose
        if verbose or _STATE["verbose"]:
            traceback.print_exc()
        msg = " ".join(str(e).split())[:300]
        click.echo(f"error: internal error {type(e).__name__}: {msg} (rerun with --verbose for the "
                   "traceback and please report it)", err=True)
        sys.exit(1)
    sys.exit(0)


def _terminate_cleanly() -> None:
    """SIGTERM (cron time-outs, batch schedulers) unwinds like Ctrl-C, so a half-written
    output is discarded and the previous output stays intact."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    with contextlib.suppress(Exception):
        signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":  # pragma: no cover
    main()
