"""What ``--quiet`` / ``--verbose`` set, handed to commands as the Click context object."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import click


@dataclass
class Settings:
    """Process-wide command-line settings.

    ``xmmtools.main.main()`` creates one and passes it as the root context's ``obj``; every
    subcommand's context inherits it, the ``-q``/``-v`` option callbacks switch its flags on
    (on the root group or after any subcommand), and ``main()`` reads ``verbose`` back to decide
    whether an error shows its traceback.
    """

    quiet: bool = False
    verbose: bool = False

    @property
    def progress(self) -> bool:
        """tqdm bars only on a terminal and never with --quiet."""
        return not self.quiet and sys.stderr.isatty()


#: ``@pass_settings`` passes the context's :class:`Settings` as a command's first argument
#: (like ``@click.pass_obj``, but a command invoked on its own still gets one).
pass_settings = click.make_pass_decorator(Settings, ensure=True)
