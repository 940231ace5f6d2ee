"""The command table: every ``xmmtools`` command and where it lives.

The root group (:mod:`xmmtools.main`) and ``xmmtools run`` (recipes) both resolve commands here,
so a recipe can run exactly the commands the command line offers.  Only names are kept: a module
is imported when its command is used.
"""

from __future__ import annotations

from typing import Any

import click

from xmmtools.cli.lazy import load_command

#: name -> "module:attribute".  Each stage package provides ``xmmtools.<stage>.cli:<command>``.
COMMANDS: dict[str, str] = {
    "info": "xmmtools.info:info",
    "convert": "xmmtools.convert:convert",
    "crossmatch": "xmmtools.crossmatch.cli:crossmatch",
    "classify": "xmmtools.classify.cli:classify",
    "photoz": "xmmtools.photoz.cli:photoz",
    "variability": "xmmtools.variability.cli:variability",
    "sensitivity": "xmmtools.sensitivity.cli:sensitivity",
    "sensitivity-map": "xmmtools.sensitivity.cli:sensitivity_map",
    "run": "xmmtools.pipeline:run",
    "clean": "xmmtools.clean:clean",
    "report": "xmmtools.report.cli:report",
    "models": "xmmtools.shipped_models:models",
    "hats": "xmmtools.hats_cli:hats",
    # the issues' hyphenated spellings of the training/evaluation subcommands
    "classify-train": "xmmtools.classify.cli:train_cmd",
    "classify-evaluate": "xmmtools.classify.cli:evaluate_cmd",
    "classify-votes": "xmmtools.classify.cli:votes_cmd",
    "photoz-train": "xmmtools.photoz.cli:train",
    "photoz-evaluate": "xmmtools.photoz.cli:evaluate",
}

#: Click context settings of the root group, inherited by every command under it (and given
#: to a command that ``xmmtools run`` invokes on its own).
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def find_command(name: str) -> click.Command | None:
    """The command called ``name`` (imported now), or None when there is no such command."""
    return load_command(COMMANDS.get(name))
