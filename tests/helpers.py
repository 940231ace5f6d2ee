"""Shared test helpers: paths to the real data shipped with the project, and the CLI runners.

Tests never read the team's shared data folder: everything here lives in the repository
(``data/sample/`` for the shipped default sample, ``tests/data/`` for the test files, each
folder with its README and the script that made it). Import with ``from helpers import ...``
(``tests/`` is on the path through ``pythonpath`` in ``pyproject.toml``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SAMPLE = ROOT / "data" / "sample" / "4xmm_dr10_ngc5139.fits"
DR9 = DATA / "4xmm_dr9_sample100.fits"
SLIM_CSV = DATA / "xmm_ml_slim_200.csv"
COSMOS = DATA / "cosmos_xmm_head.fits"
# Lin et al. (2024) 4XMM-DR13 training set: classify's shipped model is trained on it.
LIN = DATA / "classify" / "lin2024_4xmmdr13_xclass_train.csv"


def run_main(args, capsys=None):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from xmmtools.main import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    if capsys is not None:
        out, err = capsys.readouterr()
        return code, out, err
    return code, "", ""


def run_cli(args, *, input: bytes | None = None, cwd=None, timeout=120):
    """Run ``python -m xmmtools`` in a subprocess (real exit codes, stdin/stdout pipes)."""
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    return subprocess.run(
        [sys.executable, "-m", "xmmtools", *map(str, args)],
        input=input,
        capture_output=True,
        cwd=cwd,
        timeout=timeout,
        env=env,
    )
