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

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, without the hyphenated spellings of sub-commands
        (``classify-train`` is ``classify train``: listed once, both still work)."""
        shown = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden and not self._is_alias(ctx, name, cmd):
                shown.append((name, cmd))
        if shown:
            limit = formatter.width - 6 - max(len(n) for n, _ in shown)
            rows = [(n, c.get_short_help_str(limit)) for n, c in shown]
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def _is_alias(self, ctx: click.Context, name: str, cmd: click.Command) -> bool:
        group, _, sub = name.partition("-")
        parent = self.get_command(ctx, group) if sub else None
        return isinstance(parent, click.Group) and parent.get_command(ctx, sub) is cmd

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        return cmd if cmd is not None else self._load(cmd_name)

    def _load(self, name: str) -> click.Command | None:
        return load_command(self.lazy_commands.get(name))


class DefaultApplyGroup(click.Group):
    """A stage group whose default action is its ``apply`` sub-command: ``xmmtools STAGE CAT
    ...`` is ``xmmtools STAGE apply CAT ...``, and ``--help`` shows apply's options too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["apply", *args]
        return super().parse_args(ctx, args)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        apply = self.commands.get("apply")
        if apply is not None:
            sub = click.Context(apply, info_name="apply", parent=ctx)
            opts = [p for p in apply.get_params(sub) if isinstance(p, click.Option)]
            rows = [r for p in opts if (r := p.get_help_record(sub)) is not None]
            with formatter.section(f"Options of {ctx.command_path} CAT (apply)"):
                formatter.write_dl(rows)
        super().format_options(ctx, formatter)
