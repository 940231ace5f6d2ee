"""The layering rules of docs/architecture.md, checked on the source (imports parsed with ast).

CLI (main.py) -> stages (crossmatch, classify, photoz, variability, sensitivity) -> stage I/O
(stage_io, stages, model_files) -> tables/ -> schema (columns, bands, catalogs, sky, errors).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "xmmtools"
STAGES = ("crossmatch", "classify", "photoz", "variability", "sensitivity")
BOTTOM = ("columns", "bands", "catalogs", "sky", "errors", "runtime")


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import in the file, lazy ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module(path).split(".")
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_pkg else here[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, [a.name for a in node.names]))
    return out


FILES = sorted(SRC.rglob("*.py"))


def _top(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "xmmtools" else ""


def test_the_source_tree_is_found():
    assert len(FILES) > 80 and (SRC / "tables" / "__init__.py").exists()


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_layering(path):
    me = _module(path)
    my_top = _top(me)
    for mod, names in _imports(path):
        if not mod.startswith("xmmtools"):
            continue
        top = _top(mod)
        # nobody imports the face; only __main__ starts it
        if me not in ("xmmtools.__main__", "xmmtools.main"):
            assert mod != "xmmtools.main", f"{me} imports the root command module"
        # tables/ privates stay inside tables/
        if my_top != "tables" and (top == "tables" or mod == "xmmtools"):
            private = [n for n in names if n.startswith("_") and not n.endswith("__")]
            assert not private, f"{me} imports private {private} from {mod}"
            assert not any(p.startswith("_") for p in mod.split(".")[2:]), f"{me} imports private module {mod}"
        # stages are vertical slices: none imports another
        if my_top in STAGES and top in STAGES:
            assert top == my_top, f"stage module {me} imports another stage: {mod}"
        # lower floors never import higher ones
        if my_top in ("tables", *BOTTOM, "cli"):
            assert top not in STAGES, f"{me} (lower floor) imports a stage: {mod}"
            assert top not in ("stage_io", "pipeline", "info", "convert"), f"{me} imports {mod}"
        if my_top in ("tables", *BOTTOM):
            assert top != "cli", f"{me} imports the CLI plumbing"
        if my_top == "cli":
            assert top in ("cli", "errors", ""), f"the CLI plumbing imports {mod}"
        # the Dask engine sits on the stage-I/O floor: stages pass it their functions
        if my_top == "engine":
            assert top not in STAGES, f"the engine imports a stage: {mod}"
            assert top not in ("stage_io", "pipeline", "info", "convert", "hats_cli"), f"{me} imports {mod}"


def test_sky_constants_are_defined_once():
    for name in (r"def _?unit_vectors\b", r"FULL_SKY_DEG2\s*=", r"ARCSEC\s*=", r"def _?sep(aration)?_arcsec\b"):
        pattern = re.compile(rf"^{name}", re.M)
        where = [str(p.relative_to(SRC)) for p in FILES if pattern.search(p.read_text())]
        assert where == ["sky.py"], f"{name!r} defined in {where}"
