"""``xmmtools models``: the shipped default models, what each was trained on, its held-out
metrics and where not to trust it (read from the model files themselves)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import click

from xmmtools.cli import common_options


def shipped_models() -> list[dict[str, Any]]:
    """One summary per shipped model file (classify default, photoz galaxy/agn)."""
    root = resources.files("xmmtools").joinpath("data/models")
    out = []
    for stage in ("classify", "photoz"):
        folder = root.joinpath(stage)
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            if not entry.name.endswith(".json"):
                continue
            d = json.loads(entry.read_text())
            out.append(_summary(stage, entry.name[: -len(".json")], d))
    return out


def _summary(stage: str, name: str, d: dict[str, Any]) -> dict[str, Any]:
    training = d.get("training", {})
    if stage == "classify":
        m = d.get("metrics", {})
        classes = m.get("classes", d.get("classes", []))
        recall = dict(zip(classes, m.get("recall", []), strict=False))
        support = dict(zip(classes, m.get("support", []), strict=False))
        feats = d.get("features", {})
        return {
            "stage": "classify",
            "name": name,
            "use": "xmmtools classify CAT (default)" if name == "default" else f"--model {name}",
            "method": d.get("method", "naive Bayes"),
            "classes": classes,
            "features": feats.get("name", "") if isinstance(feats, dict) else "",
            "trained_on": f"{training.get('file', '?')} ({training.get('rows', '?')} labelled 4XMM-DR13 sources)",
            "metrics": {
                "kind": m.get("kind", ""),
                "macro_f1": m.get("macro_f1"),
                "recall": recall,
                "accuracy": m.get("accuracy"),
            },
            "limits": "classes AGN/STAR/OTHER only (CV, XRB, NS merged in OTHER: recall "
            f"{recall.get('OTHER', float('nan')):.2f} from {support.get('OTHER', '?')}"
            " sources); priors are the target population's, set them with --priors; "
            "rows far from the training set get OUTLIER_FLAG",
        }
    held = d.get("test_metrics") or d.get("cv5_metrics") or d.get("oob_metrics") or {}
    kind = "test set" if "test_metrics" in d else "5-fold CV" if "cv5_metrics" in d else "out-of-bag"
    grid = d.get("grid", {})
    return {
        "stage": "photoz",
        "name": name,
        "use": f"xmmtools photoz CAT --model {name}",
        "method": "TPZ random forest (Carrasco Kind & Brunner 2013)",
        "attributes": d.get("attributes", []),
        "grid": grid,
        "trained_on": f"{training.get('file', '?')} ({training.get('rows', '?')} rows, z {training.get('z_range')})",
        "metrics": {
            "kind": kind,
            "n": held.get("n"),
            "bias": held.get("bias"),
            "sigma_nmad": held.get("sigma_nmad"),
            "outliers_015": held.get("outliers_015"),
        },
        "limits": d.get("trained_on", ""),
    }


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@common_options
def models(as_json: bool) -> None:
    """The shipped models: what each was trained on, its held-out metrics, where not to trust it.

    \b
    Example:
      xmmtools models
    """
    rows = shipped_models()
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    for r in rows:
        click.echo(f"{r['stage']} {r['name']}: {r['method']}")
        click.echo(f"  use:        {r['use']}")
        click.echo(f"  trained on: {r['trained_on']}")
        m: dict[str, Any] = {}
        for k, v in r["metrics"].items():
            if isinstance(v, dict):
                m[k] = {c: round(x, 3) for c, x in v.items()}
            elif v is not None:
                m[k] = round(v, 4) if isinstance(v, float) else v
        click.echo(f"  metrics:    {json.dumps(m)}")
        click.echo(f"  limits:     {r['limits']}")
