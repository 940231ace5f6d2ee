"""The README's picture of the demo report (docs/figures/report_demo.png).

Needs the demo's report (``make demo`` writes build/demo/report/index.html) and headless
Chromium (``apt-get install chromium``).  The page is drawn at 1100 x 1500 CSS pixels and scaled
by 3/4 to 825 x 1125.  Run from the repository root (``make docs-figures`` runs it):

    .venv/bin/python docs/figures/report_demo.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "build" / "demo" / "report" / "index.html"
OUT = Path(__file__).parent / "report_demo.png"


def main() -> int:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print("report_demo.py: headless Chromium not found (apt-get install chromium)", file=sys.stderr)
        return 1
    if not PAGE.exists():
        print(f"report_demo.py: {PAGE} does not exist; run `make demo` first", file=sys.stderr)
        return 1
    from PIL import Image

    with tempfile.TemporaryDirectory() as d:
        shot = Path(d) / "shot.png"
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1100,1500"]
        r = subprocess.run([browser, *flags, f"--screenshot={shot}", PAGE.as_uri()], capture_output=True, timeout=120)
        if r.returncode != 0 or not shot.exists():
            print(f"report_demo.py: Chromium failed: {r.stderr.decode(errors='replace')[-300:]}", file=sys.stderr)
            return 1
        img = Image.open(shot).convert("RGB")
        img.resize((img.width * 3 // 4, img.height * 3 // 4), Image.LANCZOS).save(OUT, optimize=True)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
