"""The report page: one self-contained HTML file (figures inlined as PNG data URIs, no
scripts, no external assets), written atomically into its folder."""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from xmmtools import tables
from xmmtools.errors import OutputError
from xmmtools.report.figures import Figure, figures_for

CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:.5em;vertical-align:top;max-width:520px}
figcaption{font-size:.8em;color:#555}code{font-size:.85em}
"""


@dataclass
class Section:
    """One table of the report."""

    path: str
    table: pa.Table
    figures: list[Figure] = field(default_factory=list)


def _is_catalogue_column(name: str) -> bool:
    from xmmtools.columns import schema

    return name in schema()


def value_added(t: pa.Table) -> list[str]:
    """Columns added by xmmtools stages: not 4XMM catalogue columns, and not columns of the
    table the provenance chain started from."""
    return [n for n in t.column_names if not _is_catalogue_column(n)]


def summarise(t: pa.Table, name: str) -> dict[str, str]:
    f = t.schema.field(name)
    out = {
        "column": name,
        "type": str(f.type),
        "unit": tables.unit_of(f) or "",
        "description": tables.description_of(f) or "",
    }
    col = t[name]
    out["non-null"] = f"{t.num_rows - col.null_count:,}"
    typ = f.type
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        v = np.asarray(tables.to_numpy(col, float), dtype=float)
        v = v[np.isfinite(v)]
        out["non-null"] = f"{v.size:,}"
        if v.size:
            q = np.percentile(v, [0, 50, 100])
            out["summary"] = f"min {q[0]:.4g} · median {q[1]:.4g} · max {q[2]:.4g}"
    elif pa.types.is_string(typ) or pa.types.is_boolean(typ) or pa.types.is_large_string(typ):
        vals, counts = np.unique(np.asarray([str(x) for x in col.to_pylist() if x is not None]), return_counts=True)
        top = sorted(zip(counts, vals, strict=True), reverse=True)[:5]
        out["summary"] = ", ".join(f"{v}: {c:,}" for c, v in top) + (" …" if len(vals) > 5 else "")
    elif pa.types.is_fixed_size_list(typ):
        out["summary"] = f"vector of {typ.list_size} values per row"
    return out


def _provenance_html(t: pa.Table) -> str:
    rows = []
    for i, step in enumerate(tables.provenance_of(t.schema), 1):
        if not isinstance(step, dict):
            continue
        ins = ", ".join(
            f"{html.escape(str(x.get('name')))} <code>{html.escape(str(x.get('sha256') or '')[:12])}</code>"
            for x in step.get("inputs", [])
            if isinstance(x, dict)
        )
        params = json.dumps(step.get("parameters", {}), separators=(", ", ": "))
        params = params if len(params) < 400 else params[:400] + " …"
        rows.append(
            f"<tr><td>{i}</td><td>{html.escape(str(step.get('stage')))}</td>"
            f"<td>{html.escape(str(step.get('date')))}</td><td>{html.escape(str(step.get('xmmtools')))}</td>"
            f"<td>{ins}</td><td><code>{html.escape(params)}</code></td></tr>"
        )
    if not rows:
        return "<p>No provenance recorded.</p>"
    head = "<tr><th>#</th><th>stage</th><th>date</th><th>xmmtools</th><th>inputs (sha256)</th><th>parameters</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _figure_html(f: Figure) -> str:
    data = base64.b64encode(f.png).decode()
    return (
        f'<figure><img alt="{html.escape(f.title)}" src="data:image/png;base64,{data}" width="100%">'
        f"<figcaption><b>{html.escape(f.title)}.</b> {html.escape(f.caption)}</figcaption></figure>"
    )


def render_html(sections: Sequence[Section], extra: Sequence[Figure] = (), title: str = "xmmtools report") -> str:
    from xmmtools import __version__

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p>Made by xmmtools {html.escape(__version__)}: "
        f"{len(sections)} table(s). A self-contained page: no server, no external files.</p>",
    ]
    if extra:
        parts.append("<h2>Light curves and maps</h2>" + "".join(_figure_html(f) for f in extra))
    for s in sections:
        t = s.table
        parts.append(f"<h2>{html.escape(os.path.basename(s.path))}</h2>")
        parts.append(f"<p>{t.num_rows:,} rows × {t.num_columns} columns.</p>")
        if s.figures:
            parts.append("<h3>Figures</h3>" + "".join(_figure_html(f) for f in s.figures))
        parts.append("<h3>Provenance chain</h3>" + _provenance_html(t))
        cols = value_added(t)
        parts.append(f"<h3>Value-added columns ({len(cols)})</h3>")
        if cols:
            keys = ["column", "type", "unit", "non-null", "summary", "description"]
            parts.append("<table><tr>" + "".join(f"<th>{k}</th>" for k in keys) + "</tr>")
            for c in cols:
                d = summarise(t, c)
                parts.append("<tr>" + "".join(f"<td>{html.escape(d.get(k, ''))}</td>" for k in keys) + "</tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_report(
    paths: Sequence[str],
    out_dir: str,
    *,
    labels: str | None = None,
    extra: Sequence[Figure] = (),
    overwrite: bool = False,
) -> str:
    """Read the tables, draw their figures, write ``out_dir/index.html``; returns its path.
    The folder appears whole or not at all (built beside it, then renamed)."""
    sections = []
    for p in paths:
        t = tables.read_table(p)
        sections.append(Section(p, t, figures_for(t, labels)))
    page = render_html(sections, extra)
    return write_folder(out_dir, {"index.html": page.encode()}, overwrite=overwrite)


def write_folder(out_dir: str, files: dict[str, bytes], *, overwrite: bool) -> str:
    out_dir = os.path.normpath(out_dir)
    if os.path.exists(out_dir) and not overwrite:
        raise OutputError(f"{out_dir}: exists; use --overwrite to replace it")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise OutputError(f"{out_dir}: exists and is not a folder")
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        raise OutputError(f"{out_dir}: folder {parent} does not exist")
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.", dir=parent)
    try:
        for name, data in files.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o755)
        old = None
        if os.path.exists(out_dir):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.old.", dir=parent)
            os.rmdir(old)
            os.rename(out_dir, old)
        os.rename(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return os.path.join(out_dir, "index.html")
