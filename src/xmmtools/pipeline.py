"""``xmmtools run recipe.toml``: a release build as a list of stages, run like make.

A recipe (TOML)::

    input = "4XMM_DR14cat_slim_v1.0.fits"   # paths are relative to the recipe's folder
    workdir = "build"                        # outputs go here (default: the recipe's folder)

    [[stage]]
    command = "crossmatch"                   # any xmmtools command that takes INPUT ... -o OUTPUT
    args = ["--catalog", "gaia=gaia_dr3.parquet", "--radius", "10"]
    output = "dr14_xmatch.parquet"

    [[stage]]
    command = "classify"                     # input: the previous stage's output
    output = "dr14_class.parquet"

Stages run in order, each output the next input. The run stops at the first failure, naming
the stage; outputs already finished stay intact (every write is atomic). Re-running skips a
stage whose output is newer than its input, the recipe and any file named in its arguments.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import click

from xmmtools.cli import CONTEXT_SETTINGS, Settings, find_command, pass_settings
from xmmtools.errors import DataError, XmmtoolsError


@dataclass
class Stage:
    index: int
    command: str
    input: str
    output: str
    args: list[str] = field(default_factory=list)
    name: str = ""

    @property
    def label(self) -> str:
        return f"stage {self.index} ({self.name or self.command})"


def load_recipe(path: str) -> list[Stage]:
    """Parse and check a recipe; paths are resolved against the recipe's folder."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path}: no such recipe file")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a valid TOML recipe ({' '.join(str(e).split())})") from None
    base = p.resolve().parent
    workdir = base / str(doc.get("workdir", "."))
    stages = doc.get("stage")
    if not isinstance(stages, list) or not stages:
        raise DataError(f"{path}: the recipe has no [[stage]] entries")
    if "input" not in doc and "input" not in stages[0]:
        raise DataError(f"{path}: the recipe names no input (top-level 'input = ...')")
    current = str(base / str(doc["input"])) if "input" in doc else None
    out: list[Stage] = []
    seen_outputs: set[str] = set()
    for i, st in enumerate(stages, 1):
        if not isinstance(st, dict) or "command" not in st or "output" not in st:
            raise DataError(f"{path}: stage {i} needs 'command' and 'output'")
        args = st.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, (str, int, float)) for a in args):
            raise DataError(f"{path}: stage {i} 'args' must be a list of strings")
        inp = str(base / str(st["input"])) if "input" in st else current
        if inp is None:  # not reached: checked above for the first stage, later ones chain
            raise DataError(f"{path}: the recipe names no input (top-level 'input = ...')")
        outp = str(workdir / str(st["output"]))
        if outp in seen_outputs:
            raise DataError(f"{path}: stage {i} writes {st['output']}, which an earlier stage writes too")
        seen_outputs.add(outp)
        out.append(Stage(i, str(st["command"]), inp, outp, [str(a) for a in args], str(st.get("name", ""))))
        current = outp
    return out


def _dependencies(stage: Stage, recipe: str) -> list[str]:
    """The input, the recipe, and files named in the arguments (``FILE`` or ``NAME=FILE``)."""
    deps = [stage.input, recipe]
    for a in stage.args:
        for cand in (a, a.split("=", 1)[-1]):
            if cand and os.path.isfile(cand):
                deps.append(cand)
    return deps


def up_to_date(stage: Stage, recipe: str) -> bool:
    if not os.path.exists(stage.output):
        return False
    t_out = os.path.getmtime(stage.output)
    return all(os.path.exists(d) and os.path.getmtime(d) <= t_out for d in _dependencies(stage, recipe))


@click.command(name="run")
@click.argument("recipe")
@click.option("--force", is_flag=True, help="Run every stage even if its output is up to date.")
@click.option("--dry-run", is_flag=True, help="Print what would run, run nothing.")
@pass_settings
def run(settings, recipe, force, dry_run):
    """Run a TOML recipe of stages in order (a reproducible release build).

    \b
    Example:
      xmmtools run release.toml
      xmmtools run release.toml --dry-run
    """
    stages = load_recipe(recipe)
    quiet = settings.quiet
    os.makedirs(os.path.dirname(stages[-1].output) or ".", exist_ok=True)
    for st in stages:
        os.makedirs(os.path.dirname(st.output) or ".", exist_ok=True)
        if not force and up_to_date(st, recipe):
            if not quiet:
                click.echo(f"{st.label}: {os.path.basename(st.output)} is up to date", err=True)
            continue
        args = [st.input, *st.args, "-o", st.output, "--overwrite"]
        if dry_run:
            click.echo("xmmtools " + " ".join([*(["--quiet"] if quiet else []), st.command, *args]))
            continue
        command = find_command(st.command)
        if command is None:
            raise DataError(f"{recipe}: {st.label}: no such xmmtools command {st.command!r}")
        if not quiet:
            click.echo(f"{st.label}: {st.command} -> {os.path.basename(st.output)}", err=True)
        stage = Settings(quiet=quiet, verbose=settings.verbose)  # a stage's own -q/-v stay its own
        try:
            command.main(
                args=args, prog_name=f"xmmtools {st.command}", standalone_mode=False, obj=stage, **CONTEXT_SETTINGS
            )
        except XmmtoolsError as e:
            settings.verbose = stage.verbose  # but its -v shows the traceback of its failure
            raise type(e)(f"{recipe}: {st.label} failed: {e.message}") from None
        except click.ClickException as e:
            raise DataError(f"{recipe}: {st.label} has bad arguments: {e.format_message()}") from None
        except Exception:
            settings.verbose = stage.verbose
            raise
