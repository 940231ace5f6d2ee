"""One vocabulary across commands (docs/cli.md "One vocabulary"): every command's options are
listed and checked -- one spelling per meaning, old spellings hidden but still working."""

from __future__ import annotations

import click
import pytest
from helpers import run_main

from xmmtools.cli.options import RENAMED, RenamedOption
from xmmtools.main import cli


def all_options() -> dict[str, list[click.Option]]:
    """'command path' -> its options, for every command and sub-command."""
    out: dict[str, list[click.Option]] = {}

    def walk(cmd: click.Command, path: str, ctx: click.Context) -> None:
        out[path] = [p for p in cmd.params if isinstance(p, click.Option)]
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None:
                    walk(sub, f"{path} {name}".strip(), click.Context(sub, info_name=name, parent=ctx))

    walk(cli, "", click.Context(cli, info_name="xmmtools"))
    return out


OPTIONS = all_options()
#: spellings replaced for one vocabulary: never shown in --help any more
OLD = {old for renames in RENAMED.values() for old in renames}


def visible(opt: click.Option) -> list[str]:
    return [o for o in opt.opts + opt.secondary_opts if o.startswith("--")]


def test_every_command_is_listed():
    for cmd in ("crossmatch", "classify apply", "photoz apply", "variability short", "variability long",
                "variability events", "sensitivity", "sensitivity-map", "models", "info", "convert"):  # fmt: skip
        assert cmd in OPTIONS, cmd


def test_old_spellings_are_hidden_everywhere():
    shown = {(path, o) for path, opts in OPTIONS.items() for p in opts for o in visible(p)}
    stale = {(path, o) for path, o in shown if o in OLD and not (o in ("--radius", "--plot") and path in _KEPT[o])}
    assert not stale, stale


#: old spellings that remain the right word for another meaning somewhere else
_KEPT = {
    "--radius": {"crossmatch", "variability long", "variability short"},  # matching radius
    "--plot": {"sensitivity-map"},  # one figure file
}


def test_one_spelling_for_catalog():
    """US 'catalog' in option names (the prose may say catalogue)."""
    bad = [(path, o) for path, opts in OPTIONS.items() for p in opts for o in visible(p) if "catalogue" in o]
    assert not bad, bad


def test_cache_folders_are_cache_dir():
    bad = [(path, o) for path, opts in OPTIONS.items() for p in opts for o in visible(p) if o.startswith("--cache")]
    assert all(o == "--cache-dir" for _, o in bad), bad


def test_radius_means_a_matching_radius_and_aperture_is_explicit():
    for path, opts in OPTIONS.items():
        for p in opts:
            if "--radius" in p.opts:
                assert "aperture" not in (p.help or "").lower(), path
                assert any(w in (p.help or "").lower() for w in ("match", "search")), (path, p.help)
            if "--aperture-radius" in p.opts:
                assert "aperture" in (p.help or "").lower(), path


def test_plot_file_vs_plot_folder():
    for path, opts in OPTIONS.items():
        for p in opts:
            if "--plot" in p.opts:
                assert p.metavar not in ("DIR",), path
            if "--plot-dir" in p.opts:
                assert p.metavar == "DIR", path


def test_thresholds_say_what_they_cut():
    """No bare --threshold: a probability cut is --min-prob/--max-prob, a ratio --min-ratio."""
    for path, opts in OPTIONS.items():
        for p in opts:
            assert "--threshold" not in visible(p), path
            for o in visible(p):
                if o.endswith("-prob"):
                    assert "probab" in (p.help or "").lower() or "P_" in (p.help or "") or "PROB" in (p.help or ""), (
                        path,
                        o,
                    )


def test_every_option_has_help():
    missing = [(path, p.opts) for path, opts in OPTIONS.items() for p in opts if not p.hidden and not p.help]
    assert not missing, missing


def test_renamed_options_keep_their_old_spellings():
    for command, renames in RENAMED.items():
        opts = OPTIONS[command]
        for old, new in renames.items():
            owner = [p for p in opts if new in p.opts]
            assert len(owner) == 1, (command, new)
            assert isinstance(owner[0], RenamedOption) and old in owner[0].old_spellings, (command, old)


def test_an_old_spelling_still_works_with_a_note(tmp_path, capsys):
    args = ["variability", "short", "--lightcurves", tmp_path, "--threshold", "0.5", "-o", tmp_path / "o.csv"]
    code, _, err = run_main(args, capsys)
    assert "--threshold is deprecated; use --max-prob" in err
    # the run itself fails for the empty folder, after the option was accepted
    assert code == 1 and "no such option" not in err


@pytest.mark.parametrize("stage", ["classify", "photoz"])
def test_stage_help_shows_the_default_actions_options(stage, capsys):
    code, out, _ = run_main([stage, "--help"], capsys)
    assert code == 0
    assert f"Options of xmmtools {stage} CAT (apply)" in out
    assert "--model" in out and "-o, --output" in out


def test_top_level_list_shows_each_command_once(capsys):
    code, out, _ = run_main(["--help"], capsys)
    listed = [ln.split()[0] for ln in out.split("Commands:")[1].splitlines() if ln.startswith("  ") and ln.split()]
    assert "classify" in listed and "classify-train" not in listed and "photoz-evaluate" not in listed
    assert "models" in listed
    assert run_main(["classify-train", "--help"], capsys)[0] == 0  # still works


def test_models_lists_the_shipped_models(capsys):
    import json

    code, out, _ = run_main(["models", "--json"], capsys)
    assert code == 0
    rows = json.loads(out)
    assert {(r["stage"], r["name"]) for r in rows} == {("classify", "default"), ("photoz", "agn"), ("photoz", "galaxy")}
    for r in rows:
        assert r["trained_on"] and r["limits"] and r["metrics"]
    code, out, _ = run_main(["models"], capsys)
    assert "photoz galaxy" in out and "limits:" in out


def test_info_grep_and_new_narrow_the_column_list(tmp_path, capsys):
    from helpers import SAMPLE

    code, out, _ = run_main(["info", SAMPLE, "--grep", "flux.*band 8"], capsys)
    assert code == 0
    listed = out.split("column list:")[1].splitlines()[1:]
    assert listed and all("band 8" in ln for ln in listed) and any(ln.split()[0] == "EP_8_FLUX" for ln in listed)
    out_file = tmp_path / "c.parquet"
    assert run_main(["classify", SAMPLE, "-o", out_file, "-q"])[0] == 0
    code, out, _ = run_main(["info", out_file, "--new", "--json"], capsys)
    import json

    names = [c["name"] for c in json.loads(out)["columns"]]
    assert "P_AGN" in names and "CLASS" in names and "EP_8_FLUX" not in names and "SRCID" not in names
