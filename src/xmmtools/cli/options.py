"""Options shared by the commands.

``-q``/``-v`` are not passed to the command function: their callbacks switch the flags of the
context's :class:`~xmmtools.cli.settings.Settings` on, so ``xmmtools -q info x.fits`` and
``xmmtools info x.fits -q`` mean the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from xmmtools.cli.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def _quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    s = ctx.ensure_object(Settings)
    s.quiet = s.quiet or value


def _verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    s = ctx.ensure_object(Settings)
    s.verbose = s.verbose or value


def _quiet_option(help: str) -> Callable[[F], F]:
    return click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_quiet, help=help)


def _verbose_option(help: str) -> Callable[[F], F]:
    return click.option("-v", "--verbose", is_flag=True, expose_value=False, callback=_verbose, help=help)


def root_options(f: F) -> F:
    """-q/-v of the root group (``xmmtools -q STAGE ...``)."""
    f = _verbose_option("Show tracebacks on errors.")(f)
    return _quiet_option("No progress bars or notes on stderr.")(f)


def common_options(f: F) -> F:
    """--quiet/--verbose accepted after the command too (``xmmtools info x.fits -q``)."""
    f = _quiet_option("No progress bars or notes.")(f)
    return _verbose_option("Tracebacks on errors.")(f)


def output_options(f: F) -> F:
    """--overwrite, --columns (passed as ``column_map``) and --chunk-size."""
    f = click.option("--overwrite", is_flag=True, help="Replace an existing output file.")(f)
    f = click.option(
        "--columns",
        "column_map",
        metavar="NAME=COL[,...]",
        multiple=True,
        help="Map 4XMM names to this table's columns, e.g. RA=ra_deg,DEC=dec_deg.",
    )(f)
    f = click.option(
        "--chunk-size",
        type=click.IntRange(min=1),
        default=None,
        metavar="ROWS",
        help="Rows per chunk when streaming large tables.",
    )(f)
    return f


class RenamedOption(click.Option):
    """An option whose old spellings still work, hidden from ``--help``: each use of an old
    spelling prints a one-line deprecation note on stderr naming the new one.

    >>> @click.option("--cache-dir", cls=RenamedOption, old=("--cache",))  # doctest: +SKIP
    """

    def __init__(self, *args: Any, old: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.old_spellings = tuple(old)

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        if self.old_spellings:
            action = "append" if self.multiple else "store"
            if self.is_flag:
                parser.add_option(
                    obj=self, opts=self.old_spellings, dest=f"{self.name}\0old", action=f"{action}_const", const=True
                )
            else:
                parser.add_option(
                    obj=self, opts=self.old_spellings, dest=f"{self.name}\0old", action=action, nargs=self.nargs
                )

    def handle_parse_result(self, ctx: click.Context, opts: Any, args: list[str]) -> Any:
        key = f"{self.name}\0old"
        if key in opts:
            old = opts.pop(key)
            new = self.opts[-1]
            settings = ctx.find_object(Settings)
            if not (settings is not None and settings.quiet):  # xmmtools -q STAGE ...: no notes
                click.echo(f"note: {'/'.join(self.old_spellings)} is deprecated; use {new}", err=True)
            if self.multiple:
                opts[self.name] = [*(opts.get(self.name) or ()), *old]
            elif self.name not in opts:
                opts[self.name] = old
        return super().handle_parse_result(ctx, opts, args)


#: every option renamed for one vocabulary across commands (issue 16): command -> {old: new}.
#: The old spellings stay accepted (hidden, with a deprecation note).
RENAMED: dict[str, dict[str, str]] = {
    "sensitivity": {"--from-catalogue": "--from-catalog", "--cache": "--cache-dir", "--radius": "--aperture-radius"},
    "sensitivity-map": {"--cache": "--cache-dir", "--radius": "--aperture-radius"},
    "variability long": {"--catalogue": "--input-catalog", "--threshold": "--min-ratio", "--plot": "--plot-dir"},
    "variability short": {
        "--threshold": "--max-prob",
        "--blocks-pmax": "--blocks-max-prob",
        "--match-radius": "--radius",
        "--plot": "--plot-dir",
        "--bin-size": "--time-bin",
    },
}


def renamed(command: str, new: str) -> dict[str, Any]:
    """``click.option`` keywords making ``new`` accept its old spellings in ``command``."""
    old = tuple(o for o, n in RENAMED.get(command, {}).items() if n == new)
    return {"cls": RenamedOption, "old": old}


def engine_options(f: F) -> F:
    """--engine local|dask, --scheduler ADDRESS, --workers N (passed as ``engine``,
    ``scheduler``, ``workers``; see docs/scale-out.md)."""
    f = click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="With --engine dask and no --scheduler: a LocalCluster of N workers (default 2), closed at the end.",
    )(f)
    f = click.option(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="With --engine dask: the address of a running Dask scheduler (e.g. tcp://host:8786).",
    )(f)
    f = click.option(
        "--engine",
        type=click.Choice(["local", "dask"]),
        default="local",
        show_default=True,
        help="local: this process; dask: partitions on a Dask cluster (docs/scale-out.md).",
    )(f)
    return f
