"""`xmmtools classify` end to end on shipped real data, and its one-line errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import LIN, SAMPLE, SLIM_CSV, run_cli, run_main

from xmmtools import tables

MERGE = ["--merge", "STAR=LM-STAR+HM-STAR", "--merge", "OTHER=CV+HMXB+LMXB+NS+NS_BIN"]
FAST = ["--folds", "3", "--maxiter", "3", "--popsize", "5", "--grid-size", "128"]


def test_classify_shipped_sample_round_trip(tmp_path, capsys):
    out = tmp_path / "ngc5139_classify.fits"
    code, _, err = run_main(["classify", SAMPLE, "-o", out], capsys)
    assert code == 0, err
    assert "classified 52 rows" in err
    t = tables.read_table(out)
    src = tables.read_table(SAMPLE)
    assert t.schema.names[: len(src.schema.names)] == src.schema.names  # every input column kept
    new = t.schema.names[len(src.schema.names) :]
    assert new == [
        "P_AGN",
        "P_OTHER",
        "P_STAR",
        "CLASS",
        "CLASS_MARGIN",
        "OUTLIER_SCORE",
        "OUTLIER_QUANTILE",
        "OUTLIER_FLAG",
        "N_MISSING_FEATURES",
        "CLASS_LOCATION",
        "CLASS_SPECTRUM",
        "CLASS_MULTIWAVELENGTH",
        "CLASS_VARIABILITY",
        "EVIDENCE_LOCATION",
        "EVIDENCE_SPECTRUM",
        "EVIDENCE_MULTIWAVELENGTH",
        "EVIDENCE_VARIABILITY",
    ]
    assert [c for c in new if c.startswith("P_")] == ["P_AGN", "P_OTHER", "P_STAR"]
    p = np.column_stack([tables.to_numpy(t.column(c), float) for c in ("P_AGN", "P_OTHER", "P_STAR")])
    assert p.sum(axis=1) == pytest.approx(1.0, abs=1e-12)
    cls = t.column("CLASS").to_pylist()
    assert cls == [("AGN", "OTHER", "STAR")[i] for i in p.argmax(axis=1)]
    # omega Cen field (b = +15 deg, globular cluster): soft, point-like X-ray sources; the
    # X-ray-only evidence of the shipped model favours compact binaries (OTHER) and active stars
    # issue 17 model (m-estimate densities): 31 / 21; issue 19: 47 / 5; before: 51 / 1
    assert cls.count("OTHER") == 31 and cls.count("STAR") == 21
    # no counterpart columns in a bare 4XMM catalogue: that category carries no evidence
    assert set(t.column("CLASS_MULTIWAVELENGTH").to_pylist()) == {""}
    assert set(t.column("CLASS_LOCATION").to_pylist()) == {"STAR"}
    # ... and its EVIDENCE_ is NaN; the others say in dex how much each category favours CLASS
    assert np.isnan(tables.to_numpy(t.column("EVIDENCE_MULTIWAVELENGTH"), float)).all()
    for cat in ("LOCATION", "SPECTRUM", "VARIABILITY"):
        ev = tables.to_numpy(t.column(f"EVIDENCE_{cat}"), float)
        agrees = np.array(t.column(f"CLASS_{cat}").to_pylist()) == np.array(cls)
        assert np.isfinite(ev).all() and ((ev > 0) == agrees).all()
    assert tables.unit_of(t.schema.field("P_AGN")) == ""
    assert "posterior probability of class AGN" in tables.description_of(t.schema.field("P_AGN"))
    prov = tables.inspect_table(out).provenance[-1]
    assert prov["stage"] == "classify" and prov["parameters"]["model"] == "default.json"


def test_classify_default_output_name_and_priors(tmp_path, capsys):
    cat = tmp_path / "cat.fits"
    shutil.copy(SAMPLE, cat)
    code, _, err = run_main(["classify", cat, "--priors", "AGN=0.98,STAR=0.01,OTHER=0.01", "-q"], capsys)
    assert code == 0, err
    t = tables.read_table(tmp_path / "cat_classify.fits")
    assert tables.inspect_table(tmp_path / "cat_classify.fits").provenance[-1]["parameters"]["priors"] == pytest.approx(
        {"AGN": 0.98, "STAR": 0.01, "OTHER": 0.01}
    )
    p_default = tables.to_numpy(tables.read_table(_classified(tmp_path, capsys)).column("P_AGN"), float)
    assert (tables.to_numpy(t.column("P_AGN"), float) > p_default).all()


def _classified(tmp_path, capsys):
    out = tmp_path / "default.parquet"
    code, _, err = run_main(["classify", SAMPLE, "-o", out, "--overwrite"], capsys)
    assert code == 0, err
    return out


def test_classify_slim_csv_with_lowercase_names(tmp_path, capsys):
    out = tmp_path / "slim.parquet"
    code, _, err = run_main(["classify", SLIM_CSV, "-o", out], capsys)
    assert code == 1  # the slim table has its own 'Class' column (0/1 labels)
    assert err.strip() == (
        f"error: {SLIM_CSV} already has a column Class (the same name as the new CLASS in "
        "FITS, where names ignore case); use --prefix, e.g. --prefix NB_"
    )
    assert not out.exists()
    code, _, err = run_main(["classify", SLIM_CSV, "-o", out, "--prefix", "NB_"], capsys)
    assert code == 0, err
    t = tables.read_table(out)
    assert t.num_rows == 200
    assert [n for n in t.schema.names if n.startswith("NB_P_")] == ["NB_P_AGN", "NB_P_OTHER", "NB_P_STAR"]
    # the slim table has no SC_CHI2PROB/SC_FVAR/SC_EXT_ML and no counterparts: 9 features ignored,
    # N_MISSING_FEATURES counts only the missing values of the 7 remaining ones
    n_miss = tables.to_numpy(t.column("NB_N_MISSING_FEATURES"), float)
    assert n_miss.max() <= 7
    assert set(t.column("NB_CLASS").to_pylist()) <= {"AGN", "STAR", "OTHER"}


def test_classify_streams_through_pipes():
    conv = run_cli(["convert", SAMPLE, "-o", "-"])
    assert conv.returncode == 0
    res = run_cli(["classify", "-", "-o", "-", "--chunk-size", "10"], input=conv.stdout)
    assert res.returncode == 0, res.stderr.decode()
    import pyarrow as pa

    t = pa.ipc.open_stream(res.stdout).read_all()
    assert t.num_rows == 52 and "OUTLIER_SCORE" in t.schema.names


@pytest.mark.parametrize(
    "args, message",
    [
        (["classify", SAMPLE, "--model", "nope.json", "-o", "x.fits"], "nope.json: no such model file"),
        (["classify", SAMPLE, "--priors", "AGN=1,CV=1", "-o", "x.fits"], "--priors names class 'CV'"),
        (["classify", SAMPLE, "--priors", "AGN=x", "-o", "x.fits"], "'x' is not a number"),
        (["classify", "missing.fits"], "missing.fits: no such file"),
    ],
)
def test_classify_bad_inputs_are_one_line_errors(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(args, capsys)
    assert code == 1
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_classify_table_lacking_a_feature_column(tmp_path, capsys):
    cut = tmp_path / "cut.parquet"
    code, _, err = run_main(
        ["convert", SAMPLE, "-o", cut, "--select", "RA,DEC,SC_HR1,SC_HR3,SC_HR4,SC_EXTENT,SC_EP_8_FMIN,SC_EP_8_FMAX"],
        capsys,
    )
    assert code == 0, err
    code, _, err = run_main(["classify", cut, "-o", tmp_path / "o.parquet"], capsys)
    assert code == 1
    assert err.strip() == (
        f"error: classify needs column SC_HR2 (for feature HR2); {cut} has no such "
        "column (closest: SC_HR1, SC_HR3, SC_HR4)"
    )
    # ... unless the column is mapped
    code, _, err = run_main(["classify", cut, "-o", tmp_path / "o.parquet", "--columns", "SC_HR2=SC_HR3"], capsys)
    assert code == 0, err


def test_train_with_missing_configuration_then_apply(tmp_path, capsys):
    toml = tmp_path / "f.toml"
    toml.write_text(
        '[[feature]]\nname = "HR2"\ncategory = "spectrum"\ncolumns = ["SC_HR2"]\nwhen_absent = "missing"\n\n'
        '[[feature]]\nname = "HR3"\ncategory = "spectrum"\ncolumns = ["SC_HR3"]\n\n'
        '[[feature]]\nname = "ABS_B"\ncategory = "location"\nkind = "galactic_latitude"\nra = "RA"\ndec = "DEC"\n'
    )
    model = tmp_path / "m.json"
    code, _, err = run_main(["classify", "train", LIN, "--features", toml, *MERGE, *FAST, "-o", model], capsys)
    assert code == 0, err
    doc = json.loads(model.read_text())
    assert doc["classes"] == ["AGN", "OTHER", "STAR"]
    assert doc["training"]["class_counts"] == {"AGN": 477, "OTHER": 25, "STAR": 204}
    assert doc["training"]["sha256"] == tables.file_sha256(LIN)
    assert set(doc["category_weights"]) == {"location", "spectrum"}
    cut = tmp_path / "cut.parquet"
    run_main(["convert", SAMPLE, "-o", cut, "--select", "RA,DEC,SC_HR3"], capsys)
    code, _, err = run_main(["classify", cut, "--model", model, "-o", tmp_path / "o.parquet"], capsys)
    assert code == 0, err
    t = tables.read_table(tmp_path / "o.parquet")
    # HR2 is absent -> a missing value in every row (evidence P(missing|c)); HR3 is NaN in some
    n_hr3_missing = np.isnan(tables.to_numpy(t.column("SC_HR3"), float)).astype(int)
    assert tables.to_numpy(t.column("N_MISSING_FEATURES"), float).tolist() == (1 + n_hr3_missing).tolist()


def test_train_chooses_the_shrink_pseudo_count_on_the_training_rows(tmp_path, capsys):
    # --shrink auto (default): every candidate m scored by the out-of-fold objective, recorded
    code, _, err = run_main(["classify", "train", LIN, *MERGE, *FAST, "-o", tmp_path / "a.json"], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "a.json").read_text())
    sel = doc["training"]["shrink_selection"]
    assert list(sel["candidates"]) == ["0", "1", "2", "3", "5", "10", "20"]
    best = max(sel["candidates"].values())
    assert (
        sel["chosen"] == doc["settings"]["shrink"] == min(float(m) for m, v in sel["candidates"].items() if v == best)
    )
    assert sel["method"].startswith("out-of-fold macro_f1 (stratified 3-fold, seed 1")
    # a number is taken as it is (0: the reference method, no shrinkage) and nothing is selected
    code, _, err = run_main(
        ["classify", "train", LIN, *MERGE, *FAST, "--shrink", "0", "-o", tmp_path / "z.json"], capsys
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "z.json").read_text())
    assert doc["settings"]["shrink"] == 0.0 and "shrink_selection" not in doc["training"]
    for bad in ("-1", "lots", "nan"):
        code, _, err = run_main(
            ["classify", "train", LIN, *MERGE, *FAST, "--shrink", bad, "-o", tmp_path / "b.json"], capsys
        )
        assert code == 1 and f"--shrink '{bad}': give a pseudo-count >= 0 or auto" in err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b.json").exists()


def test_train_and_evaluate_errors(tmp_path, capsys):
    code, _, err = run_main(["classify", "train", LIN, "--label-column", "TYPE", "-o", tmp_path / "m.json"], capsys)
    assert code == 1 and "has no label column 'TYPE'" in err
    code, _, err = run_main(["classify", "train", LIN, "-o", tmp_path / "m.json"], capsys)
    assert code == 1 and "classes with fewer than 2 labelled rows: LMXB (1), NS_BIN (1)" in err
    code, _, err = run_main(
        ["classify", "train", LIN, *MERGE, "--objective", "f1:XRB", "-o", tmp_path / "m.json"], capsys
    )
    assert code == 1 and "objective f1:XRB: no class 'XRB'" in err
    code, _, err = run_main(["classify", "train", LIN, *MERGE, "-o", tmp_path / "m.pkl"], capsys)
    assert code == 1 and "must end in .json" in err
    code, _, err = run_main(
        [
            "classify",
            "evaluate",
            LIN,
            "--merge",
            "STAR=LM-STAR+HM-STAR",
            "--drop",
            "LMXB",
            "--drop",
            "NS_BIN",
            "--model",
            "src/none.json",
        ],
        capsys,
    )
    assert code == 1 and "no such model file" in err


def test_evaluate_kfold_report(tmp_path, capsys):
    rep = tmp_path / "report"
    code, out, err = run_main(
        ["classify", "evaluate", LIN, *MERGE, *FAST, "--report", rep, "--priors", "AGN=0.66,STAR=0.25,OTHER=0.09"],
        capsys,
    )
    assert code == 0, err
    assert "macro-F1" in out and "confusion matrix" in out
    m = json.loads((rep / "metrics.json").read_text())
    assert np.sum(m["confusion_matrix"]) == 706 and m["support"] == [477, 25, 204]
    assert m["macro_f1"] > 0.85 and m["recall"][0] > 0.97
    assert m["priors_for_correction"] == pytest.approx([0.66, 0.09, 0.25])
    per = tables.read_table(rep / "per_class.csv")
    assert per.column("CLASS").to_pylist() == ["AGN", "OTHER", "STAR"]
    pred = tables.read_table(rep / "predictions.csv")
    assert pred.num_rows == 706
    assert sorted(p.name for p in rep.iterdir()) == [
        "confusion.csv",
        "confusion.png",
        "metrics.json",
        "per_class.csv",
        "precision_recall.png",
        "predictions.csv",
        "reliability.png",
        "roc.png",
    ]
    # an existing report is not replaced without --overwrite
    code, _, err = run_main(["classify", "evaluate", LIN, *MERGE, *FAST, "--report", rep], capsys)
    assert code == 1 and "metrics.json exists; use --overwrite" in err


def test_evaluate_shipped_model_on_labelled_table(capsys):
    # resubstitution on the shipped model's own training rows (not a held-out number)
    code, out, err = run_main(
        ["classify", "evaluate", LIN, *MERGE, "--model", "src/xmmtools/data/models/classify/default.json"], capsys
    )
    assert code == 0, err
    assert "model default.json applied" in out
    assert "AGN" in out and "macro-F1" in out
