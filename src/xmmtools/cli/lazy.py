"""Commands imported on first use, so ``xmmtools info`` does not pay for scikit-learn."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click


def load_command(target: str | None) -> click.Command | None:
    """The command at ``"module:attribute"``; None when ``target`` is None or its module is
    not part of this version (an import error inside the module is raised)."""
    if target is None:
        return None
    mod, attr = target.split(":")
    try:
        m = importlib.import_module(mod)
    except ModuleNotFoundError as e:
        if e.name and (mod == e.name or mod.startswith(e.name + ".")):
            return None  # that command is not part of this version
        raise
    cmd = getattr(m, attr)
    if not isinstance(cmd, click.Command):
        raise TypeError(f"{target} is not a Click command")
    return cmd


class LazyGroup(click.Group):
    """A Click group whose commands (``name -> "module:attribute"``) are imported on first use;
    a command whose module is absent from this version is simply not listed."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        names.update(n for n in self.lazy_commands if self._load(n) is not None)
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        return cmd if cmd is not None else self._load(cmd_name)

    def _load(self, name: str) -> click.Command | None:
        return load_command(self.lazy_commands.get(name))
