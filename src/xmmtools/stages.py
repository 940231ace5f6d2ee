"""Registry of batch stages and the columns each needs.

A stage module registers a :class:`StageSpec` when it is imported; ``xmmtools info`` uses the
registry to say which stages can run on a table and what each still misses, and the stage's
command uses the same spec to resolve its columns (so the two can never disagree).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from xmmtools.columns import Need, require, resolve
from xmmtools.errors import ColumnError


@dataclass(frozen=True)
class StageSpec:
    name: str
    summary: str
    needs: Sequence[Need] = ()
    #: groups of alternatives: at least one column of each group must be present
    any_of: Sequence[Sequence[Need]] = field(default_factory=tuple)
    #: inputs declared as canonical counterpart bands (xmmtools.bands.Input), resolved by
    #: --columns, the recorded map, their own name, the canonical name, then known aliases
    inputs: Sequence = field(default_factory=tuple)
    #: the model's recorded map (input -> training column)
    recorded: Mapping[str, str] = field(default_factory=dict)

    def feeds(self, available: Iterable[str], user_map: Mapping[str, str] | None = None) -> dict:
        """input name -> :class:`xmmtools.bands.Feed` (the column feeding each declared input)."""
        if not self.inputs:
            return {}
        from xmmtools.bands import resolve_inputs

        return resolve_inputs(available, self.inputs, user_map=user_map, recorded=self.recorded, what=self.name)

    def input_map(self, available: Iterable[str], user_map: Mapping[str, str] | None = None) -> dict[str, str]:
        """``user_map`` plus the columns found for the declared inputs."""
        avail = list(available)
        return {**{k: f.column for k, f in self.feeds(avail, user_map).items()}, **(user_map or {})}

    def check(
        self,
        available: Iterable[str],
        *,
        source: str,
        user_map: Mapping[str, str] | None = None,
        types: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Resolve the stage's columns or raise a one-line ColumnError."""
        avail = list(available)
        user_map = self.input_map(avail, user_map)
        found = require(avail, self.needs, stage=self.name, source=source, user_map=user_map, types=types)
        for group in self.any_of:
            hit = resolve(avail, [n.name for n in group], user_map)
            if not hit:
                names = " or ".join(f"{n.name} ({n.what})" for n in group)
                raise ColumnError(f"{self.name} needs one of the columns {names}; {source} has none of them")
            found.update(hit)
        return found

    def missing(self, available: Iterable[str], user_map: Mapping[str, str] | None = None) -> list[str]:
        """Names (or 'A|B' alternatives) the table lacks for this stage; empty when it can run."""
        avail = list(available)
        user_map = self.input_map(avail, user_map)
        found = resolve(avail, [n.name for n in self.needs], user_map)
        out = [n.name for n in self.needs if not n.optional and n.name not in found]
        for group in self.any_of:
            if not resolve(avail, [n.name for n in group], user_map):
                out.append("|".join(n.name for n in group))
        return out


_REGISTRY: dict[str, StageSpec] = {}


def register(spec: StageSpec) -> StageSpec:
    _REGISTRY[spec.name] = spec
    return spec


#: Stage packages whose ``__init__`` registers a spec.  Keep those ``__init__`` modules light
#: (no scikit-learn / scipy imports): ``xmmtools info`` imports all of them.
STAGE_PACKAGES = ("crossmatch", "classify", "photoz", "variability", "sensitivity")


def load_all() -> None:
    import importlib

    for name in STAGE_PACKAGES:
        mod = f"xmmtools.{name}"
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name and (mod == e.name or mod.startswith(e.name + ".")):
                continue
            raise


def registered() -> dict[str, StageSpec]:
    load_all()
    return dict(_REGISTRY)
