"""Mutation fuzz of every reader: damaged copies of the shipped tables (tests/fuzz_mutations.py)
either read correctly or end in a one-line data error, never an internal error, a traceback
or an output file.

Bounded for CI (XMMTOOLS_FUZZ_N files, 400 by default: about 4 s, well under 60 s); set
XMMTOOLS_FUZZ_N=2000 (and XMMTOOLS_FUZZ_SEED) for a longer run.  The figures are printed
with ``-s``.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from pathlib import Path

from fuzz_mutations import mutations

N = int(os.environ.get("XMMTOOLS_FUZZ_N", "400"))
SEED = int(os.environ.get("XMMTOOLS_FUZZ_SEED", "18"))
BUDGET_S = float(os.environ.get("XMMTOOLS_FUZZ_SECONDS", "55"))


def _run(args: list[str]) -> tuple[int, str]:
    from xmmtools.main import main

    err = io.StringIO()
    out = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            main(args)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, err.getvalue()


def fuzz(tmp: Path, seed: int = SEED, n: int = N, budget_s: float = BUDGET_S) -> dict[str, object]:
    stats: dict[str, object] = {"tried": 0, "reads": 0, "clean_errors": 0, "internal": []}
    t0 = time.monotonic()
    bad: list[str] = []
    for name, suffix, data in mutations(seed, n):
        if time.monotonic() - t0 > budget_s:
            break
        src = tmp / f"m{suffix}"
        src.write_bytes(data)
        commands = [["info", str(src)], ["convert", str(src), "-o", str(tmp / "out.parquet")]]
        if "4xmm" in name:  # a stage too: its column checks and science on damaged 4XMM rows
            commands.append(["classify", str(src), "-o", str(tmp / "out.parquet")])
        for cmd in commands:
            out = tmp / "out.parquet"
            code, err = _run(cmd)
            lines = [x for x in err.splitlines() if x.strip()]
            if code == 0:
                stats["reads"] = int(stats["reads"]) + 1  # type: ignore[call-overload]
            elif (
                code == 1
                and len(lines) == 1
                and lines[0].startswith("error: ")
                and "internal error" not in lines[0]
                and not (cmd[0] != "info" and out.exists())
            ):
                stats["clean_errors"] = int(stats["clean_errors"]) + 1  # type: ignore[call-overload]
            else:
                bad.append(f"{name} {cmd[0]}: exit {code}: {' | '.join(lines)[:300]}")
            out.unlink(missing_ok=True)
        stats["tried"] = int(stats["tried"]) + 1  # type: ignore[call-overload]
    stats["internal"] = bad
    return stats


def test_damaged_copies_of_shipped_tables_give_data_errors_or_read(tmp_path: Path) -> None:
    stats = fuzz(tmp_path)
    bad = stats["internal"]
    assert isinstance(bad, list)
    print(
        f"\nfuzz seed {SEED}: files tried {stats['tried']}; runs of info, convert and classify: "
        f"reads {stats['reads']}, clean errors {stats['clean_errors']}, internal errors {len(bad)}"
    )
    assert int(stats["tried"]) >= min(N, 100)  # type: ignore[call-overload]
    assert not bad, "\n".join(bad[:20])


if __name__ == "__main__":  # pragma: no cover - a long run by hand: python tests/test_fuzz.py N
    import sys
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else N
    with tempfile.TemporaryDirectory() as d:
        s = fuzz(Path(d), n=n, budget_s=1e9)
    bad = s.pop("internal")
    print(s, "internal:", len(bad))  # type: ignore[arg-type]
    for b in bad:  # type: ignore[attr-defined]
        print(b)
