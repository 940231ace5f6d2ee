"""`xmmtools run recipe.toml`: stages in order, make-like skipping, stop at the first failure."""

from __future__ import annotations

import os
import time

from helpers import DR9, run_main

from xmmtools import tables as T


def _recipe(tmp_path, select2="SRCID,RA,DEC"):
    r = tmp_path / "release.toml"
    r.write_text(f'''
input = "{DR9}"
workdir = "build"

[[stage]]
command = "convert"
args = ["--select", "SRCID,OBS_ID,RA,DEC,EP_8_FLUX"]
output = "step1.parquet"

[[stage]]
name = "to-fits"
command = "convert"
args = ["--select", "{select2}"]
output = "step2.fits"
''')
    return r


def test_recipe_runs_in_order_and_chains_outputs(tmp_path, capsys):
    r = _recipe(tmp_path)
    code, out, err = run_main(["run", r], capsys)
    assert code == 0, err
    t = T.read_table(tmp_path / "build" / "step2.fits")
    assert t.schema.names == ["SRCID", "RA", "DEC"] and t.num_rows == 100
    chain = T.inspect_table(tmp_path / "build" / "step2.fits").provenance
    assert [c["stage"] for c in chain] == ["sample", "convert", "convert"]
    assert chain[-1]["inputs"][0]["name"] == "step1.parquet"


def test_rerun_skips_up_to_date_stages_and_reruns_after_recipe_change(tmp_path, capsys):
    r = _recipe(tmp_path)
    assert run_main(["run", r], capsys)[0] == 0
    m1 = os.path.getmtime(tmp_path / "build" / "step1.parquet")
    code, _, err = run_main(["run", r], capsys)
    assert code == 0 and err.count("is up to date") == 2
    assert os.path.getmtime(tmp_path / "build" / "step1.parquet") == m1
    time.sleep(0.05)
    os.utime(r)  # skipping is by content: touching the recipe changes nothing
    code, _, err = run_main(["run", r], capsys)
    assert code == 0 and err.count("is up to date") == 2
    r.write_text(r.read_text().replace("EP_8_FLUX", "EP_8_FLUX,EP_1_FLUX"))
    code, _, err = run_main(["run", r], capsys)  # stage 1's arguments changed: it and stage 2 rerun
    assert code == 0 and "up to date" not in err
    assert os.path.getmtime(tmp_path / "build" / "step1.parquet") > m1


def test_failure_stops_the_run_and_keeps_finished_outputs(tmp_path, capsys):
    r = _recipe(tmp_path, select2="SRCID,NOPE")
    code, _, err = run_main(["run", r], capsys)
    assert code == 1
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0]  # progress notes, then one error line
    assert "stage 2 (to-fits) failed" in errors[0] and "has no column NOPE" in errors[0]
    assert T.read_table(tmp_path / "build" / "step1.parquet").num_rows == 100
    assert not (tmp_path / "build" / "step2.fits").exists()


def test_bad_recipes_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("input = [unclosed")
    code, _, err = run_main(["run", bad], capsys)
    assert code == 1 and "not a valid TOML recipe" in err
    bad.write_text('input = "x.fits"\n')
    code, _, err = run_main(["run", bad], capsys)
    assert code == 1 and "has no [[stage]] entries" in err
    bad.write_text(f'input = "{DR9}"\n[[stage]]\ncommand = "nosuch"\noutput = "o.fits"\n')
    code, _, err = run_main(["run", bad], capsys)
    assert code == 1 and "no such xmmtools command 'nosuch'" in err
    code, _, err = run_main(["run", tmp_path / "missing.toml"], capsys)
    assert code == 1 and "no such recipe file" in err


def test_dry_run_prints_the_commands(tmp_path, capsys):
    r = _recipe(tmp_path)
    code, out, _ = run_main(["run", r, "--dry-run"], capsys)
    assert code == 0
    lines = [ln for ln in out.strip().splitlines() if not ln.startswith("#")]
    assert len(lines) == 2 and "&& xmmtools convert " in lines[0] and "-o" in lines[1]
    assert not (tmp_path / "build" / "step1.parquet").exists()
