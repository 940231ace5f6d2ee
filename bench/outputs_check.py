"""Byte-identity check of every stage's output on the shipped data (used for refactors).

Runs one command per stage (and the common output formats) on files shipped in the project,
then records the SHA-256 of every output. The provenance date, the only field that changes from
run to run, is fixed with SOURCE_DATE_EPOCH (reproducible-builds.org convention).

    python bench/outputs_check.py record before.json     # on the old tree
    python bench/outputs_check.py record after.json      # on the new tree
    python bench/outputs_check.py compare before.json after.json
    python bench/outputs_check.py record-values before.json   # data only: metadata may differ

``record-values`` hashes each output's column names, types and values as read back with
pyarrow (FITS through xmmtools' reader), ignoring every unit, description, UCD and keyword:
the check that a change added metadata without changing data.

Exit status 1 when any output differs or any command fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "4xmm_dr10_ngc5139.fits"
DATA = ROOT / "tests" / "data"
ELL = DATA / "crossmatch" / "nway_elltest"
OBS = DATA / "sensitivity" / "obs"
VAR = DATA / "variability"
EV = VAR / "events" / "0001730201"


def commands(out: Path) -> list[tuple[str, list[str], list[str]]]:
    """(name, arguments, output files) for each run."""
    pos = out / "pos.txt"
    pos.write_text("# FLIX-style list\n149.50 -11.00 gap\n09:58:21.6, -11:05:24 centre\n10.0 5.0 far\n")
    ul = out / "ul.csv"
    ul.write_text("SRCID,MJD,FLUX_UL,BAND,INSTRUMENT\n201122201010023,51590.9,2e-15,8,EPIC\n")
    o = lambda name: str(out / name)  # noqa: E731
    return [
        ("convert-parquet", ["convert", str(SAMPLE), "-o", o("s.parquet")], [o("s.parquet")]),
        ("convert-fits", ["convert", o("s.parquet"), "-o", o("s.fits")], [o("s.fits")]),
        ("convert-csv", ["convert", str(SAMPLE), "-o", o("s.csv")], [o("s.csv")]),
        ("convert-arrow", ["convert", str(SAMPLE), "-o", o("s.arrow")], [o("s.arrow")]),
        (
            "crossmatch-bayes",
            [
                "crossmatch",
                str(ELL / "randomcatX.fits"),
                "--catalog",
                f"opt={ELL / 'randomcatO.fits'}",
                "--pos-err",
                "opt=0.1",
                "--radius",
                "10",
                "-o",
                o("xm.fits"),
            ],
            [o("xm.fits")],
        ),
        (
            "crossmatch-all",
            [
                "crossmatch",
                str(ELL / "randomcatX.fits"),
                "--catalog",
                f"opt={ELL / 'randomcatO.fits'}",
                "--pos-err",
                "opt=0.1",
                "--radius",
                "10",
                "--all",
                "-o",
                o("xm_all.parquet"),
            ],
            [o("xm_all.parquet")],
        ),
        (
            "crossmatch-nearest",
            [
                "crossmatch",
                str(ELL / "randomcatX.fits"),
                "--catalog",
                f"opt={ELL / 'randomcatO.fits'}",
                "--method",
                "nearest",
                "--radius",
                "5",
                "-o",
                o("xm_near.parquet"),
            ],
            [o("xm_near.parquet")],
        ),
        ("classify-fits", ["classify", str(SAMPLE), "-o", o("cl.fits")], [o("cl.fits")]),
        (
            "classify-csv",
            ["classify", str(DATA / "xmm_ml_slim_200.csv"), "--prefix", "NB_", "-o", o("cl_slim.parquet")],
            [o("cl_slim.parquet")],
        ),
        (
            "photoz",
            ["photoz", str(DATA / "photoz" / "sdss_mgs_test.parquet"), "--model", "galaxy", "-o", o("pz.parquet")],
            [o("pz.parquet")],
        ),
        (
            "photoz-fits",
            [
                "photoz",
                str(DATA / "photoz" / "sdss_dr3_quasars.parquet"),
                "--model",
                "agn",
                "--columns",
                "u=u_mag,g=g_mag,r=r_mag,i=i_mag,z=z_mag,eu=sig_u,eg=sig_g,er=sig_r,ei=sig_i,ez=sig_z",
                "-o",
                o("pz.fits"),
            ],
            [o("pz.fits")],
        ),
        (
            "var-short",
            ["variability", "short", "--lightcurves", str(VAR / "lc"), "-o", o("vs.parquet")],
            [o("vs.parquet")],
        ),
        (
            "var-events",
            [
                "variability",
                "events",
                str(EV / "M1_clean.fits.gz"),
                "--gti",
                str(EV / "M1_gti.fits"),
                "--time-bin",
                "100",
                "--detection-level",
                "4",
                "--box",
                "13",
                "-o",
                o("ev.parquet"),
            ],
            [o("ev.parquet")],
        ),
        (
            "var-long",
            [
                "variability",
                "long",
                str(SAMPLE),
                "--archive",
                f"3XMM={DATA / 'variability_long' / '3xmm_dr8_ngc5139.csv'}",
                "--upper-limits",
                str(ul),
                "-o",
                o("lt.parquet"),
                "--alerts",
                o("alerts.csv"),
                "--epochs",
                o("ep.fits"),
            ],
            [o("lt.parquet"), o("alerts.csv"), o("ep.fits")],
        ),
        (
            "sensitivity",
            ["sensitivity", str(pos), "--obs", str(OBS), "--band", "0.5-2", "-o", o("ul.parquet")],
            [o("ul.parquet")],
        ),
        (
            "sensitivity-map",
            ["sensitivity-map", "--obs", str(OBS / "0201903501"), "--order", "12", "-o", o("map.fits")],
            [o("map.fits")],
        ),
    ]


def values_digest(path: str) -> str:
    """SHA-256 of the column names, types and values of a table, metadata excluded."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if path.endswith(".parquet"):
        t = pq.read_table(path)
    elif path.endswith(".csv"):
        t = pcsv.read_csv(path)
    else:
        from xmmtools import tables

        t = tables.read_table(path)
    t = t.replace_schema_metadata(None)
    t = pa.table([c.combine_chunks() for c in t.columns], names=t.column_names)
    h = hashlib.sha256()
    for name, col in zip(t.column_names, t.columns, strict=True):
        if pa.types.is_dictionary(col.type):  # text written plainly now: compare the values
            col = col.cast(col.type.value_type)
        h.update(name.encode() + b"\0" + str(col.type).encode() + b"\0")
        h.update(repr(col.to_pylist()).encode())
    return h.hexdigest()


def record(target: str, values: bool = False) -> int:
    results: dict[str, dict[str, str]] = {}
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, args, outs in commands(Path(tmp)):
            env = dict(os.environ, SOURCE_DATE_EPOCH="946684800")
            r = subprocess.run([sys.executable, "-m", "xmmtools", "-q", *args], capture_output=True, cwd=tmp, env=env)
            if r.returncode != 0:
                print(f"{name}: exit {r.returncode}: {r.stderr.decode()[-400:]}", file=sys.stderr)
                results[name] = {"error": r.stderr.decode()[-400:]}
                bad += 1
                continue
            for f in outs:
                digest = values_digest(f) if values else hashlib.sha256(Path(f).read_bytes()).hexdigest()
                results.setdefault(name, {})[Path(f).name] = digest
            print(f"{name}: ok", file=sys.stderr)
    Path(target).write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return 1 if bad else 0


def compare(a: str, b: str) -> int:
    ra, rb = json.loads(Path(a).read_text()), json.loads(Path(b).read_text())
    diff = 0
    for name in sorted(set(ra) | set(rb)):
        same = ra.get(name) == rb.get(name) and "error" not in (ra.get(name) or {"error": 1})
        print(f"{'same' if same else 'DIFFERENT'}  {name}")
        diff += not same
    print(f"{len(set(ra) | set(rb)) - diff} identical, {diff} different")
    return 1 if diff else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "record":
        sys.exit(record(sys.argv[2]))
    if len(sys.argv) == 3 and sys.argv[1] == "record-values":
        sys.exit(record(sys.argv[2], values=True))
    if len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    sys.exit(__doc__)
