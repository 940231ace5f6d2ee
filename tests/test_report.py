"""`xmmtools report`: one self-contained HTML page; rendered in headless Chromium when it is
installed (Debian package `chromium`; .ci/run installs it when it can, else the browser test is
skipped and says so)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pytest
from helpers import DATA, SAMPLE, run_main

from xmmtools import tables as T
from xmmtools.report import figures

LIN = DATA / "classify" / "lin2024_4xmmdr13_xclass_train.csv"
DR8 = DATA / "variability_long" / "3xmm_dr8_ngc5139.csv"
QSO = DATA / "photoz" / "sdss_dr3_quasars.parquet"
OBS = DATA / "sensitivity" / "obs"


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    """A report of real stage outputs: classify (with labels), long-term variability with its
    light curves, photoz with PDFs, detection thresholds and a sensitivity map."""
    d = tmp_path_factory.mktemp("report")
    ok = lambda args: run_main([*map(str, args), "-q"])[0] == 0  # noqa: E731
    small = d / "q.parquet"
    T.write_table(T.read_table(QSO).slice(0, 150), small)
    assert ok(["classify", LIN, "--prefix", "NB_", "-o", d / "lin.parquet"])
    assert ok(["classify", SAMPLE, "-o", d / "cl.parquet"])
    assert ok(["sensitivity", d / "cl.parquet", "--from-catalogue", "-o", d / "se.parquet"])
    assert ok(["variability", "long", d / "se.parquet", "--archive", f"3XMM={DR8}", "--epochs", d / "ep.parquet",
               "-o", d / "lt.parquet"])  # fmt: skip
    assert ok(["photoz", small, "--model", "agn", "-o", d / "z.parquet"])
    assert ok(["sensitivity-map", "--obs", OBS, "--order", "10", "-o", d / "map.parquet"])
    out = d / "html"
    code, _, err = run_main(
        ["report", d / "lt.parquet", d / "z.parquet", d / "lin.parquet", "--labels", "Class",
         "--epochs", d / "ep.parquet", "--sensmap", d / "map.parquet", "--html", out]
    )  # fmt: skip
    assert code == 0, err
    return out


@pytest.mark.slow
def test_the_page_is_self_contained_with_every_figure(report_dir):
    page = (report_dir / "index.html").read_text()
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # no external asset, no script
    assert "<script" not in page
    imgs = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    titles = [t for t, _ in imgs]
    expected = ["Class fractions", "Outlier scores", "Confusion matrix", "Reliability", "Photometric redshifts"]
    expected += ["Redshift PDFs", "Long-term variability", "Detection thresholds", "Light curves", "Sensitivity map"]
    for t in expected:
        assert t in titles, t
    for _, data in imgs:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    # the provenance chain and the value-added columns of each table
    assert "variability-long" in page and "sensitivity" in page and "crossmatch" not in page.split("lt.parquet")[0]
    for col in ("LT_VAR_RATIO", "OUTLIER_SCORE", "Z_PHOT", "NB_P_AGN", "EP_8_THRESH_FLUX"):
        assert f"<td>{col}</td>" in page, col
    assert "<td>EP_8_FLUX</td>" not in page  # a 4XMM catalogue column is not value-added


@pytest.mark.slow
def test_an_existing_report_is_replaced_only_with_overwrite(report_dir, capsys):
    t, other = report_dir.parent / "lt.parquet", report_dir.parent / "other"
    shutil.copytree(report_dir, other)
    code, _, err = run_main(["report", t, "--html", other], capsys)
    assert code == 1 and "exists; use --overwrite" in err
    assert (other / "index.html").read_bytes() == (report_dir / "index.html").read_bytes()
    assert run_main(["report", t, "--html", other, "--overwrite", "-q"], capsys)[0] == 0
    assert (other / "index.html").read_text().count("<img ") == 4
    assert sorted(p.name for p in report_dir.parent.iterdir() if p.name.startswith(".other")) == []


def test_large_tables_are_subsampled_for_plots_and_say_so():
    n = figures.MAX_PLOT_ROWS + 5_000
    rng = np.random.default_rng(1)
    t = pa.table(
        {
            "RA": rng.uniform(10, 11, n),
            "DEC": rng.uniform(-1, 1, n),
            "EP_8_THRESH_FLUX": 10 ** rng.uniform(-15, -13, n),
            "CLASS": pa.array(rng.choice(["AGN", "STAR"], n)),
        }
    )
    figs = {f.title: f for f in figures.figures_for(t)}
    assert f"random subsample of {figures.MAX_PLOT_ROWS:,} of {n:,} rows" in figs["Detection thresholds"].caption
    assert f"over all {n:,} rows" in figs["Class fractions"].caption


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


CHECK = """<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});
</script></body>"""


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_the_report_renders_in_headless_chromium(report_dir, tmp_path):
    browser = _chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,2400"]
    shot = tmp_path / "shot.png"
    page = report_dir / "index.html"
    r = subprocess.run([browser, *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    assert r.returncode == 0 and shot.exists(), r.stderr[-500:]
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape[0] >= 2000 and (img < 200).mean() > 0.02 and img.std() > 20  # not blank
    # every image decoded: the page with a small checker (a copy: the report itself has no script)
    probe = tmp_path / "probe.html"
    html = page.read_text()
    probe.write_text(html.replace("</body>", CHECK))
    n = html.count("<img ")
    dom = subprocess.run(
        [browser, *flags, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True,
        timeout=120,
    )
    m = re.search(rb'data-images="(\d+)/(\d+)"', dom.stdout)
    assert m is not None, dom.stderr[-500:]
    assert int(m.group(1)) == int(m.group(2)) == n >= 10
