"""The ``xmmtools`` command line: the root group only wires the command table together.

Exit codes: 0 ok; 1 data error (bad or missing file or column, refused output); 2 usage
error.  User errors are one line on stderr, ``error: ...``; the traceback is shown only with
``--verbose``.  Nothing imports this module but the console script and ``python -m xmmtools``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Sequence
from types import FrameType

import click

from xmmtools import __version__
from xmmtools.cli import COMMANDS, CONTEXT_SETTINGS, LazyGroup, Settings, root_options
from xmmtools.errors import DataError, PipeClosed, XmmtoolsError


class _RootGroup(LazyGroup):
    """The root group: an ``EOFError`` raised by a command (an empty or cut array file read by
    numpy, a stream that ends early) is a data error.  Click would turn it into ``Abort``,
    which is reserved for real interrupts (Ctrl-C, SIGTERM: exit 130)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except EOFError as e:
            detail = " ".join(str(e).split())[:200] or "end of file"
            raise DataError(f"unexpected end of an input file ({detail}); no output was written") from e


@click.group(cls=_RootGroup, lazy_commands=COMMANDS, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="xmmtools")
@root_options
def cli() -> None:
    """Value-added catalogues from XMM-Newton 4XMM source catalogues.

    \b
    Each stage reads a catalogue table (FITS, Parquet, Arrow, CSV, or '-' for an Arrow
    stream on stdin) and writes it back with new columns, so stages chain:
      xmmtools info data/sample/4xmm_dr10_ngc5139.fits
      xmmtools convert cat.fits -o cat.parquet
      xmmtools convert cat.fits -o - | xmmtools convert - -o copy.fits
    """


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in args)
    settings = Settings()
    _terminate_cleanly()
    try:
        cli.main(args=args, prog_name="xmmtools", standalone_mode=False, obj=settings)
    except click.exceptions.Abort:
        click.echo("error: interrupted; no output was written", err=True)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:  # usage errors: Click's own message, exit 2
        e.show()
        sys.exit(e.exit_code)
    except PipeClosed:
        _quiet_stdout()
        sys.exit(PipeClosed.exit_code)
    except XmmtoolsError as e:
        if verbose or settings.verbose:
            traceback.print_exc()
        click.echo(f"error: {e.message}", err=True)
        sys.exit(e.exit_code)
    except BrokenPipeError:
        # the reader of our stdout went away (e.g. `| head`): not an error of ours.  End quietly
        # with the status a shell gives a process killed by SIGPIPE, 128 + 13 = 141; the stream
        # we sent has no end marker, so no reader takes it for a complete table.
        _quiet_stdout()
        sys.exit(PipeClosed.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted; no output was written", err=True)
        sys.exit(130)
    except Exception as e:  # a bug: still one line unless --verbose
        if verbose or settings.verbose:
            traceback.print_exc()
        msg = " ".join(str(e).split())[:300]
        click.echo(
            f"error: internal error {type(e).__name__}: {msg} (rerun with --verbose for the "
            "traceback and please report it)",
            err=True,
        )
        sys.exit(1)
    sys.exit(0)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so Python's final flush into a closed pipe stays silent."""
    with contextlib.suppress(Exception):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _terminate_cleanly() -> None:
    """SIGTERM (cron time-outs, batch schedulers) unwinds like Ctrl-C, so a half-written
    output is discarded and the previous output stays intact."""
    import signal

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    with contextlib.suppress(Exception):
        signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":  # pragma: no cover
    main()
