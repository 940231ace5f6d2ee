"""Photometric redshifts with TPZ-style random forests (Carrasco Kind & Brunner 2013, MNRAS 432, 1483).

``xmmtools photoz CAT`` gives each extragalactic counterpart a redshift PDF and point estimates
from a shipped model (``galaxy``: SDSS Main Galaxy Sample; ``agn``: SDSS DR3 quasars) or one
trained with ``xmmtools photoz train``.  A model's attribute columns (e.g. u, g, r, i, z and
colours such as u-g) are resolved when the command runs, with the model's own attribute list.
For ``xmmtools info`` the stage spec checks a table against the default (galaxy) model's
attributes, with the same name resolution (case-insensitive names, ``--columns`` mapping,
``A-B`` colours derived from two magnitude columns).

Kept light on purpose: ``xmmtools info`` imports this module (no numpy/scikit-learn/scipy here).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache

from xmmtools.columns import Need
from xmmtools.stages import StageSpec, register

#: The model whose input columns ``xmmtools info`` checks.
READINESS_MODEL = "galaxy"


@cache
def _model_doc(name: str) -> dict:
    from importlib import resources

    return json.loads((resources.files("xmmtools") / "data" / "models" / "photoz" / f"{name}.json").read_text())


def model_attributes(name: str = READINESS_MODEL) -> tuple[str, ...]:
    """Attribute names recorded in a shipped model's JSON (read without loading its arrays)."""
    return tuple(_model_doc(name)["attributes"])


@dataclass(frozen=True)
class PhotozSpec(StageSpec):
    """StageSpec whose readiness also needs the default model's attribute columns."""

    model: str = READINESS_MODEL

    def missing(self, available: Iterable[str], user_map: Mapping[str, str] | None = None) -> list[str]:
        from xmmtools.photoz.attributes import missing_attributes

        avail = list(available)
        um = {**{k: f.column for k, f in self.feeds(avail, user_map).items()}, **(user_map or {})}
        return super().missing(avail, user_map) + missing_attributes(model_attributes(self.model), avail, um)

    def feeds(self, available: Iterable[str], user_map: Mapping[str, str] | None = None) -> dict:
        """The column feeding each magnitude of the readiness model (canonical bands, the
        recorded training map, ...: see xmmtools.bands)."""
        from xmmtools.bands import inputs_from_mapping, resolve_inputs

        doc = _model_doc(self.model)
        return resolve_inputs(
            list(available),
            inputs_from_mapping(doc.get("bands"), f"photoz model {self.model}"),
            user_map=user_map,
            recorded=doc.get("training", {}).get("columns") or {},
            what=f"photoz model {self.model}",
        )


SPEC = register(
    PhotozSpec(
        name="photoz",
        summary="TPZ photometric redshift PDFs (Z_PHOT, Z_PDF, ...) from optical/IR magnitudes",
        needs=[
            Need(
                "CLASS", "source class from classify (only extragalactic rows are processed)", kind="any", optional=True
            )
        ],
    )
)
