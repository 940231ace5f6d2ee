"""Command-line plumbing shared by every command: the bottom floor of the CLI.

Stage commands import from here and from nowhere higher: lazy command loading
(:mod:`.lazy`), the command table (:mod:`.commands`), the shared options (:mod:`.options`) and
the settings those options fill in (:mod:`.settings`).  The root ``xmmtools`` group and
``main()`` live in :mod:`xmmtools.main`, which only wires this table together; no stage imports it.
"""

from __future__ import annotations

from xmmtools.cli.commands import COMMANDS, CONTEXT_SETTINGS, find_command
from xmmtools.cli.lazy import LazyGroup, load_command
from xmmtools.cli.options import common_options, engine_options, output_options, root_options
from xmmtools.cli.settings import Settings, pass_settings

__all__ = [
    "COMMANDS",
    "CONTEXT_SETTINGS",
    "LazyGroup",
    "Settings",
    "common_options",
    "engine_options",
    "find_command",
    "load_command",
    "output_options",
    "pass_settings",
    "root_options",
]
