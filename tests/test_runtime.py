"""Process memory settings used by the crossmatch command (xmmtools.runtime)."""

from __future__ import annotations

import subprocess
import sys


def test_tune_for_large_arrays_in_a_fresh_process():
    code = (
        "import sys, numpy as np\n"
        "from numpy._core import multiarray as m\n"
        "from xmmtools.runtime import tune_for_large_arrays\n"
        "assert m._get_madvise_hugepage() in (True, False)\n"
        "ok = tune_for_large_arrays()\n"
        "assert tune_for_large_arrays() is True  # idempotent\n"
        "assert m._get_madvise_hugepage() is False\n"
        "a = np.ones(20_000_000); a *= 2; del a  # big arrays still work after mallopt\n"
        "print(ok)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    if sys.platform.startswith("linux"):
        import ctypes

        glibc = hasattr(ctypes.CDLL(None), "mallopt")
        assert r.stdout.strip() == str(glibc)
