"""``xmmtools run recipe.toml``: a release build as a list of stages, skipped by content.

A recipe (TOML)::

    input = "4XMM_DR14cat_slim_v1.0.fits"   # paths are relative to the recipe's folder
    workdir = "build"                        # outputs go here (default: the recipe's folder)

    [[stage]]
    command = "crossmatch"                   # any xmmtools command, nested ones too
    args = ["--catalog", "gaia=gaia_dr3.parquet", "--radius", "10"]
    output = "dr14_xmatch.parquet"

    [[stage]]
    command = "variability long"             # input: the previous stage's output
    args = ["--upper-limits", "ul.parquet"]  # a file of the recipe's folder or an earlier output
    output = "dr14_lt.parquet"
    products = { "--alerts" = "alerts.csv" } # side products: outputs too, for skipping

    [[stage]]
    command = "sensitivity-map"
    input = false                            # a command without an INPUT argument
    args = ["--obs", "obs/"]
    output = "sensmap.parquet"

Stages run in the work folder, so a file an argument names that the recipe did not resolve
(e.g. ``--plot figs``) is written there too.  Before anything runs the whole recipe is
checked: every command exists (a typo is an error, also with ``--dry-run``), no output or side
product is an input of the recipe or the recipe itself, every output stays inside the work
folder, and no stage's arguments make it write nothing (``--help``).  Stages run in order and
the run stops at the first failure naming the stage; finished outputs stay intact (every write
is atomic).

A stage is up to date when its outputs exist, the run log (``<recipe>.runlog.jsonl`` beside
the outputs) records a successful run with the same fingerprint (command, arguments, the
SHA-256 of every input file and the xmmtools version) and the same output checksums, and the
provenance recorded in a table output names the same input checksums and version.  Otherwise it
reruns, and so does every stage downstream of it.  A lock file beside the outputs refuses a
second concurrent run of the same recipe; a lock left by a dead process is taken over.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shlex
import socket
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from xmmtools.cli import CONTEXT_SETTINGS, Settings, common_options, find_command, pass_settings
from xmmtools.errors import DataError, XmmtoolsError

#: arguments that make a command print and write nothing
_NO_OUTPUT_ARGS = {"-h", "--help", "--version"}
#: arguments the recipe sets itself
_RESERVED_ARGS = {"-o", "--output", "--overwrite"}


@dataclass
class Stage:
    index: int
    command: str
    input: str | None
    output: str
    args: list[str] = field(default_factory=list)
    name: str = ""
    products: dict[str, str] = field(default_factory=dict)  # option -> path
    #: files the stage reads (its input and files named in its arguments)
    reads: list[str] = field(default_factory=list)
    #: the arguments as written in the recipe, paths relative to the recipe (for fingerprints)
    shown_args: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"stage {self.index} ({self.name or self.command})"

    @property
    def outputs(self) -> list[str]:
        return [self.output, *self.products.values()]

    def argv(self) -> list[str]:
        head = [self.input] if self.input is not None else []
        prods = [x for opt, p in self.products.items() for x in (opt, p)]
        return [*head, *self.args, *prods, "-o", self.output, "--overwrite"]


@dataclass
class Recipe:
    path: str
    base: Path
    workdir: Path
    stages: list[Stage]
    #: files the recipe reads that no stage of it makes (its inputs)
    sources: list[str] = field(default_factory=list)

    @property
    def stem(self) -> str:
        return Path(self.path).stem

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.stem}.runlog.jsonl"

    @property
    def lock_path(self) -> Path:
        return self.workdir / f".{self.stem}.lock"


def _inside(path: str, folder: Path) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(folder)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def _out_path(path: str, value: Any, workdir: Path, what: str) -> str:
    v = str(value)
    if not v or os.path.isabs(v) or v.startswith("~"):
        raise DataError(f"{path}: {what} {v!r} must be a path relative to the work folder")
    p = str(workdir / v)
    if not _inside(p, workdir):
        raise DataError(f"{path}: {what} {v!r} is outside the work folder {workdir}")
    return p


def load_recipe(path: str, workdir: str | None = None) -> Recipe:
    """Parse and check a recipe; paths are resolved against the recipe's folder, outputs
    against the work folder.  Nothing is created."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path}: no such recipe file")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a valid TOML recipe ({' '.join(str(e).split())})") from None
    base = p.resolve().parent
    wd = Path(os.path.abspath(workdir)) if workdir is not None else base / str(doc.get("workdir", "."))
    work = Path(os.path.normpath(wd))
    stages = doc.get("stage")
    if not isinstance(stages, list) or not stages:
        raise DataError(f"{path}: the recipe has no [[stage]] entries")
    if "input" not in doc and (not isinstance(stages[0], dict) or "input" not in stages[0]):
        raise DataError(f"{path}: the recipe names no input (top-level 'input = ...')")
    produced: dict[str, str] = {}  # name as written -> path in the work folder

    def resolve(v: str) -> str | None:
        """An argument naming an earlier output, or an existing file of the recipe's folder."""
        if v in produced:
            return produced[v]
        cand = os.path.normpath(base / v)
        return cand if v and os.path.exists(cand) else None

    current = os.path.normpath(base / str(doc["input"])) if "input" in doc else None
    sources = [current] if current is not None else []
    out: list[Stage] = []
    for i, st in enumerate(stages, 1):
        if not isinstance(st, dict) or "command" not in st or "output" not in st:
            raise DataError(f"{path}: stage {i} needs 'command' and 'output'")
        command = " ".join(str(st["command"]).split())
        args = st.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, (str, int, float)) for a in args):
            raise DataError(f"{path}: stage {i} 'args' must be a list of strings")
        args = [str(a) for a in args]
        bad = sorted(set(args) & (_NO_OUTPUT_ARGS | _RESERVED_ARGS))
        if any(a in _NO_OUTPUT_ARGS for a in bad):
            raise DataError(f"{path}: stage {i} ({command}): {bad[0]} makes the stage write nothing")
        if bad:
            raise DataError(f"{path}: stage {i} ({command}): {bad[0]} is set by the recipe ('output = ...')")
        reads: list[str] = []
        if "input" in st and st["input"] is False:
            inp = None
        elif "input" in st:
            v = str(st["input"])
            inp = resolve(v) or os.path.normpath(base / v)
            if v not in produced:
                sources.append(inp)
        else:
            inp = current
        if inp is not None:
            reads.append(inp)
        resolved: list[str] = []
        for a in args:
            name, eq, val = a.rpartition("=") if "=" in a else ("", "", a)
            r = resolve(val) if val and not val.startswith("-") else None
            if r is not None:
                reads.append(r)
                if val not in produced:
                    sources.append(r)
                resolved.append(f"{name}{eq}{r}")
            else:
                resolved.append(a)
        prods_raw = st.get("products", {})
        if not isinstance(prods_raw, dict):
            raise DataError(f"{path}: stage {i} 'products' must be a table of option = file")
        products = {str(k): _out_path(path, v, work, f"stage {i} product") for k, v in prods_raw.items()}
        outp = _out_path(path, st["output"], work, f"stage {i} output")
        stage = Stage(i, command, inp, outp, resolved, str(st.get("name", "")), products, reads, args)
        for name, o in [(str(st["output"]), outp), *((str(v), products[k]) for k, v in prods_raw.items())]:
            if o in produced.values():
                raise DataError(f"{path}: stage {i} writes {name}, which an earlier stage writes too")
            produced[name] = o
        out.append(stage)
        current = outp
    recipe = Recipe(str(path), base, work, out, sources)
    _check_outputs(recipe)
    return recipe


def _same(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    with contextlib.suppress(OSError):
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    return False


def _check_outputs(recipe: Recipe) -> None:
    """No output may be an input of the recipe (files it reads but does not make) or the
    recipe itself; outputs must not collide with each other."""
    sources = [recipe.path, *recipe.sources]
    seen: list[str] = []
    for st in recipe.stages:
        for o in st.outputs:
            for s in sources:
                if _same(o, s):
                    what = "the recipe itself" if s == recipe.path else f"an input of the recipe ({s})"
                    raise DataError(f"{recipe.path}: {st.label} would write {o}, which is {what}")
            for other in seen:
                if _same(o, other):
                    raise DataError(f"{recipe.path}: {st.label} writes {o} twice (output and side product)")
            seen.append(o)
        for r in st.reads:
            if any(_same(r, o) for o in st.outputs):
                raise DataError(f"{recipe.path}: {st.label} would write over its own input {r}")


def _find(command: str) -> tuple[click.Command, list[str]]:
    """The click command of ``"variability long"``; returns (root command, leading words)."""
    words = command.split()
    cmd = find_command(words[0]) if words else None
    if cmd is None:
        raise DataError(f"no such xmmtools command {command!r}")
    sub: click.Command = cmd
    for w in words[1:]:
        if not isinstance(sub, click.Group):
            raise DataError(f"no such xmmtools command {command!r} ({words[0]} has no subcommands)")
        nxt = sub.get_command(click.Context(sub), w)
        if nxt is None:
            raise DataError(f"no such xmmtools command {command!r}")
        sub = nxt
    return cmd, words[1:]


# -- content-based skipping ----------------------------------------------------------------


def _sha256(path: str) -> str | None:
    """SHA-256 of a file; of a folder, over its files' names and checksums; None if absent."""
    if os.path.isdir(path):
        h = hashlib.sha256()
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                full = os.path.join(root, f)
                h.update(os.path.relpath(full, path).encode() + b"\0" + (_sha256(full) or "").encode())
        return h.hexdigest()
    if not os.path.isfile(path):
        return None
    from xmmtools.tables import file_sha256

    return file_sha256(path)


def _fingerprint(st: Stage, recipe: Recipe) -> dict[str, Any]:
    from xmmtools import __version__

    def rel(p: str) -> str:
        return os.path.relpath(p, recipe.base)

    return {
        "xmmtools": __version__,
        "command": st.command,
        "args": st.shown_args,
        "input": rel(st.input) if st.input is not None else None,
        "products": {k: rel(v) for k, v in st.products.items()},
        "output": rel(st.output),
        "reads": {rel(r): _sha256(r) for r in st.reads},
    }


def _last_ok(recipe: Recipe) -> dict[str, dict[str, Any]]:
    """The last successful log entry of each output."""
    last: dict[str, dict[str, Any]] = {}
    with contextlib.suppress(OSError):
        for line in recipe.log_path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                e = json.loads(line)
                if e.get("status") == "ok":
                    last[e["output"]] = e
    return last


def _provenance_matches(st: Stage) -> str | None:
    """Why the provenance recorded in a table output disagrees with what would run now."""
    from xmmtools import __version__, tables

    try:
        chain = tables.inspect_table(st.output).provenance
    except (XmmtoolsError, OSError, ValueError):
        return None  # not a table (a report, a map image): the log's checksums decide
    if not chain:
        return None
    last = chain[-1]
    if last.get("xmmtools") != __version__:
        return f"made by xmmtools {last.get('xmmtools')}"
    recorded = {i.get("name"): i.get("sha256") for i in last.get("inputs", []) if isinstance(i, dict)}
    for r in st.reads:
        name = os.path.basename(r)
        if name in recorded and recorded[name] is not None and os.path.isfile(r) and recorded[name] != _sha256(r):
            return f"its input {name} changed"
    return None


def why_stale(st: Stage, recipe: Recipe, log: dict[str, dict[str, Any]], rebuilt: set[str]) -> str | None:
    """None when the stage is up to date, else the reason it runs."""
    for r in st.reads:
        if r in rebuilt:
            return f"its input {os.path.basename(r)} is rebuilt"
    for o in st.outputs:
        if not os.path.exists(o):
            return f"{os.path.basename(o)} does not exist"
    entry = log.get(os.path.relpath(st.output, recipe.base))
    if entry is None:
        return "no successful run in the run log"
    fp = _fingerprint(st, recipe)
    old = entry.get("fingerprint", {})
    for key, what in (("xmmtools", "xmmtools version"), ("command", "command"), ("args", "arguments")):
        if old.get(key) != fp[key]:
            return f"its {what} changed"
    if old != fp:
        changed = [k for k, v in fp["reads"].items() if old.get("reads", {}).get(k) != v]
        return f"its input {', '.join(changed)} changed" if changed else "its files changed"
    for o in st.outputs:
        rel = os.path.relpath(o, recipe.base)
        if entry.get("checksums", {}).get(rel) != _sha256(o):
            return f"{os.path.basename(o)} was changed since it was made"
    return _provenance_matches(st)


# -- the lock --------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def recipe_lock(recipe: Recipe, quiet: bool) -> Any:
    """A lock file beside the outputs for the time of a run."""
    path = recipe.lock_path
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                other = json.loads(path.read_text(encoding="utf-8") or "{}")
            except (OSError, ValueError):
                other = {}
            pid = other.get("pid")
            same_host = other.get("host") == me["host"]
            if isinstance(pid, int) and (not same_host or _pid_alive(pid)):
                raise DataError(
                    f"{recipe.path}: another run of this recipe is in progress (pid {pid} on {other.get('host')}, "
                    f"since {other.get('since')}); lock {path}"
                ) from None
            if not quiet:
                click.echo(f"note: taking over the stale lock {path} of a dead process (pid {pid})", err=True)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:  # pragma: no cover - another process took the stale lock between our two tries
        raise DataError(f"{recipe.path}: another run of this recipe is starting; lock {path}")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def _rows(path: str | None) -> int | None:
    if path is None or not os.path.isfile(path):
        return None
    from xmmtools import tables

    try:
        return int(tables.inspect_table(path).num_rows)
    except (XmmtoolsError, OSError, ValueError):
        return None


def _peak_mb() -> float | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _shown(st: Stage, base: Path) -> str:
    """The stage as a shell command run in ``base`` (the work folder), paths relative to it,
    shell-quoted."""

    def rel(a: str) -> str:
        name, eq, val = a.rpartition("=") if "=" in a else ("", "", a)
        if os.path.isabs(val):
            return f"{name}{eq}{os.path.relpath(val, base)}"
        return a

    return shlex.join(["xmmtools", *st.command.split(), *map(rel, st.argv())])


@click.command(name="run")
@click.argument("recipe")
@click.option("--force", is_flag=True, help="Run every stage even if its output is up to date.")
@click.option("--dry-run", is_flag=True, help="Print what would run and why (shell-quoted), create nothing.")
@click.option("--workdir", metavar="DIR", default=None, help="Work folder for the outputs (default: the recipe's).")
@common_options
@pass_settings
def run(settings: Settings, recipe: str, force: bool, dry_run: bool, workdir: str | None) -> None:
    """Run a TOML recipe of stages in order (a reproducible release build).

    \b
    Example:
      xmmtools run examples/release.toml
      xmmtools run examples/release.toml --dry-run
    """
    rc = load_recipe(recipe, workdir)
    commands = {}
    for st in rc.stages:  # a typo is an error before anything runs
        try:
            commands[st.index] = _find(st.command)
        except DataError as e:
            raise DataError(f"{recipe}: {st.label}: {e.message}") from None
    quiet = settings.quiet
    log = _last_ok(rc)
    if dry_run:
        rebuilt: set[str] = set()
        for st in rc.stages:
            why = "forced" if force else why_stale(st, rc, log, rebuilt)
            if why is None:
                click.echo(f"# {st.label}: up to date")
                continue
            rebuilt.update(st.outputs)
            click.echo(f"# {st.label}: runs ({why})")
            wd = shlex.quote(str(rc.workdir))
            click.echo(f"(mkdir -p {wd} && cd {wd} && {_shown(st, rc.workdir)})")
        return
    os.makedirs(rc.workdir, exist_ok=True)
    with recipe_lock(rc, quiet):
        _run_stages(rc, commands, settings, force, log)


def _run_stages(rc: Recipe, commands: dict[int, Any], settings: Settings, force: bool, log: dict[str, Any]) -> None:
    quiet = settings.quiet
    run_id = f"{_now()}-{os.getpid()}"
    rebuilt: set[str] = set()
    for st in rc.stages:
        why = "forced" if force else why_stale(st, rc, log, rebuilt)
        entry: dict[str, Any] = {
            "run": run_id,
            "stage": st.index,
            "name": st.name,
            "command": _shown(st, rc.workdir),
            "output": os.path.relpath(st.output, rc.base),
        }
        if why is None:
            if not quiet:
                click.echo(f"{st.label}: {os.path.basename(st.output)} is up to date", err=True)
            _append(rc, {**entry, "status": "skipped", "start": _now(), "end": _now()})
            continue
        rebuilt.update(st.outputs)
        for o in st.outputs:
            os.makedirs(os.path.dirname(o) or ".", exist_ok=True)
        if not quiet:
            click.echo(f"{st.label}: {st.command} -> {os.path.basename(st.output)} ({why})", err=True)
        fp = _fingerprint(st, rc)  # the inputs as they are when the stage starts
        root, words = commands[st.index]
        stage = Settings(quiet=quiet, verbose=settings.verbose)  # a stage's own -q/-v stay its own
        start, t0 = _now(), time.monotonic()
        status, message = "failed", ""
        cwd = os.getcwd()
        try:
            os.chdir(rc.workdir)  # a relative path the recipe did not resolve lands in the work folder
            root.main(
                args=[*words, *st.argv()],
                prog_name=f"xmmtools {st.command.split()[0]}",
                standalone_mode=False,
                obj=stage,
                **CONTEXT_SETTINGS,
            )
            missing = [o for o in st.outputs if not os.path.exists(o)]
            if missing:
                raise DataError(f"it wrote no {os.path.basename(missing[0])}")
            status = "ok"
        except XmmtoolsError as e:
            settings.verbose = stage.verbose  # but its -v shows the traceback of its failure
            message = e.message
            raise type(e)(f"{rc.path}: {st.label} failed: {e.message}") from None
        except click.exceptions.Exit as e:
            message = f"exited with status {e.exit_code} and wrote nothing"
            raise DataError(f"{rc.path}: {st.label} {message}") from None
        except click.ClickException as e:
            message = e.format_message()
            raise DataError(f"{rc.path}: {st.label} has bad arguments: {message}") from None
        except BaseException as e:
            settings.verbose = stage.verbose
            message = f"{type(e).__name__}: {e}"
            raise
        finally:
            os.chdir(cwd)
            rec = {
                **entry,
                "status": status,
                "start": start,
                "end": _now(),
                "seconds": round(time.monotonic() - t0, 3),
                "rows_in": _rows(st.input),
                "rows_out": _rows(st.output) if status == "ok" else None,
                "peak_rss_mb": _peak_mb(),
                "exit": 0 if status == "ok" else 1,
            }
            if status == "ok":
                rec["checksums"] = {os.path.relpath(o, rc.base): _sha256(o) for o in st.outputs}
                rec["fingerprint"] = fp
            else:
                rec["error"] = message
            _append(rc, rec)


def _append(rc: Recipe, rec: dict[str, Any]) -> None:
    """One JSON line per stage and run, appended (O_APPEND: whole lines, even from two runs)."""
    line = json.dumps(rec, separators=(",", ":"), sort_keys=False) + "\n"
    fd = os.open(rc.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
