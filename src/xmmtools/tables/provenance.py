"""Provenance: the processing steps recorded in every output (schema metadata
``xmmtools.provenance``, a JSON list; FITS keeps it in the XMMTPROV keyword).

Dates are the UTC time of the run, or ``SOURCE_DATE_EPOCH`` when set (reproducible builds).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from xmmtools.tables.formats import STDIO, file_sha256, strip_hdu

#: schema metadata key of the JSON list of processing steps
PROVENANCE_KEY = b"xmmtools.provenance"


@dataclass
class Provenance:
    """One processing step: written into every output, appended to the input's history."""

    stage: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    inputs: Sequence[str] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        from xmmtools import __version__

        ins: list[dict[str, Any]] = []
        for path in self.inputs:
            p = str(path)
            if p == STDIO:
                ins.append({"name": "-", "sha256": None})
            else:
                real, _ = strip_hdu(p)
                ins.append(
                    {"name": os.path.basename(real), "sha256": file_sha256(real) if os.path.isfile(real) else None}
                )
        rec = {
            "xmmtools": __version__,
            "stage": self.stage,
            "date": _provenance_date(),
            "parameters": _jsonable(dict(self.parameters)),
            "inputs": ins,
        }
        rec.update(_jsonable(dict(self.extra)))
        return rec


def _provenance_date() -> str:
    """UTC time of the run, or SOURCE_DATE_EPOCH (reproducible-builds.org) when it is set."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return _dt.datetime.fromtimestamp(int(epoch), _dt.UTC).isoformat()
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def provenance_of(schema: pa.Schema | None) -> list[dict[str, Any]]:
    meta = (schema.metadata or {}) if schema is not None else {}
    raw = meta.get(PROVENANCE_KEY)
    if not raw:
        return []
    try:
        val = json.loads(raw)
    except ValueError:
        return []
    return val if isinstance(val, list) else []


def with_provenance(schema: pa.Schema, step: Provenance | dict[str, Any] | None) -> pa.Schema:
    if step is None:
        return schema
    rec = step.record() if isinstance(step, Provenance) else step
    chain = provenance_of(schema) + [rec]
    meta = dict(schema.metadata or {})
    meta[PROVENANCE_KEY] = json.dumps(chain, separators=(",", ":")).encode()
    return schema.with_metadata(meta)
