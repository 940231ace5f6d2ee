"""Canonical counterpart bands and how a stage finds the column feeding each model input.

Counterpart magnitudes meet the stages under canonical names (``SDSS_U``, ``GAIA_G``,
``WISE_W1``, ``GAIA_DIST``, ...), listed with their magnitude system and m_AB − m_Vega offset
(with its reference) in ``xmmtools/data/bands.toml``.  crossmatch writes them for known
catalogues (``catalogs.py``); photoz models and classify feature sets declare which canonical
band each of their inputs is (:class:`Input`), and :func:`resolve_inputs` finds the column
feeding each input, in this order:

1. explicit ``--columns NAME=COLUMN``;
2. the model's own recorded map (the training table's column, e.g. ``u -> u_mag``);
3. the input's own name (``u``, ``G``, ``W1``);
4. the canonical band name (``SDSS_U``);
5. a known alias: a spelling of that band in a known catalogue (``w1mpro``, ``phot_g_mean_mag``)
   used by no other band.

Only columns found by canonical name or alias have a known system; when it differs from the
system the model was trained in, the values are shifted by the documented offset
(:func:`offset`), or the stage refuses with a one-line error naming both systems.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from xmmtools.errors import DataError

SYSTEMS = ("AB", "Vega")


@dataclass(frozen=True)
class Band:
    name: str
    system: str | None  # AB, Vega, or None (not a magnitude, e.g. a distance)
    ab_minus_vega: float | None  # m_AB - m_Vega of a source in this band
    unit: str
    description: str
    reference: str


@lru_cache(maxsize=1)
def bands() -> dict[str, Band]:
    """The canonical bands, by name (upper case)."""
    doc = tomllib.loads((resources.files("xmmtools") / "data" / "bands.toml").read_text())
    out = {}
    for name, d in doc.items():
        off = d.get("ab_minus_vega")
        out[name.upper()] = Band(
            name.upper(),
            d.get("system"),
            None if off is None else float(off),
            str(d.get("unit", "mag")),
            str(d.get("description", name)),
            str(d.get("reference", "")),
        )
    return out


def band(name: str, *, where: str = "") -> Band:
    b = bands().get(name.upper())
    if b is None:
        raise DataError(f"{where or 'band'}: {name!r} is not a canonical band (known: {', '.join(bands())})")
    return b


def offset(name: str, have: str | None, want: str | None, *, what: str = "") -> float:
    """Magnitude shift taking band ``name`` from system ``have`` to ``want``: m_want = m_have + offset.

    m_AB = m_Vega + (m_AB − m_Vega), the band's documented offset.  Raises a one-line DataError
    when the systems differ and no offset is documented for the band."""
    if have is None or want is None or have == want:
        return 0.0
    for s in (have, want):
        if s not in SYSTEMS:
            raise DataError(f"{what or name}: unknown magnitude system {s!r} (use {' or '.join(SYSTEMS)})")
    b = band(name)
    if b.ab_minus_vega is None:
        raise DataError(
            f"{what or name}: the model expects {name} in the {want} system but the column is {have}, "
            f"and no {want}-{have} offset is documented for {name}; give --columns to use it as is"
        )
    return b.ab_minus_vega if want == "AB" else -b.ab_minus_vega


# ----------------------------------------------------------------------------------------
# Model inputs and the columns that feed them
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    """A model input declared as a canonical band (and the system the model was trained in)."""

    name: str  # the model's own name: "u", "G", "dist"
    band: str  # canonical band: "SDSS_U", "GAIA_G", "GAIA_DIST"
    system: str | None = None

    @staticmethod
    def parse(name: str, d: str | Mapping, where: str) -> Input:
        if isinstance(d, str):
            d = {"band": d}
        b = band(str(d.get("band", "")), where=f"{where}: input {name}")
        system = d.get("system", b.system)
        if system is not None and system not in SYSTEMS:
            raise DataError(f"{where}: input {name} has system {system!r}; use {' or '.join(SYSTEMS)}")
        return Input(name, b.name, system)

    def to_json(self) -> dict:
        return {"band": self.band, **({"system": self.system} if self.system else {})}


@dataclass(frozen=True)
class Feed:
    """Where one input's values come from."""

    name: str
    column: str
    how: str  # "--columns", "model", "name", "canonical", "alias"
    band: str | None = None
    offset: float = 0.0  # added to the column's values (magnitude-system conversion)

    def to_json(self) -> dict:
        d: dict[str, str | float] = {"column": self.column, "from": self.how}
        if self.offset:
            d["offset_mag"] = round(self.offset, 6)
        return d

    def describe(self) -> str:
        how = {
            "--columns": "--columns",
            "model": "the model's recorded map",
            "name": "its own name",
            "canonical": f"canonical {self.band}",
            "alias": f"alias of {self.band}",
        }[self.how]
        conv = f", {self.offset:+g} mag to the model's system" if self.offset else ""
        return f"{self.name} <- {self.column} ({how}{conv})"


def inputs_from_mapping(doc: Mapping | None, where: str) -> tuple[Input, ...]:
    """``{name: band}`` or ``{name: {band=..., system=...}}`` -> Inputs."""
    return tuple(Input.parse(str(k), v, where) for k, v in (doc or {}).items())


def resolve_inputs(
    available: Iterable[str],
    inputs: Sequence[Input],
    *,
    user_map: Mapping[str, str] | None = None,
    recorded: Mapping[str, str] | None = None,
    what: str = "",
) -> dict[str, Feed]:
    """The column feeding each input (order in the module docstring); inputs no column feeds are
    left out (the stage reports them in its own words)."""
    avail = list(available)
    upper: dict[str, str] = {}
    for a in avail:
        upper.setdefault(a.upper(), a)
    user = {k.upper(): v for k, v in (user_map or {}).items()}
    rec = dict(recorded or {})

    def col(name: str | None) -> str | None:
        if not name:
            return None
        return name if name in avail else upper.get(name.upper())

    out: dict[str, Feed] = {}
    for inp in inputs:
        key = inp.name.upper()
        if key in user:
            c = col(user[key])
            if c is not None:
                out[inp.name] = Feed(inp.name, c, "--columns", inp.band)
            continue  # a mapping to a missing column is the stage's error to report
        if (c := col(rec.get(inp.name))) is not None:
            out[inp.name] = Feed(inp.name, c, "model", inp.band)
            continue
        if (c := col(inp.name)) is not None:
            out[inp.name] = Feed(inp.name, c, "name", inp.band)
            continue
        b = band(inp.band)
        c, how = col(inp.band), "canonical"
        if c is None:
            c, how = next((upper[a] for a in alias_spellings(inp.band) if a in upper), None), "alias"
        if c is not None:
            out[inp.name] = Feed(
                inp.name, c, how, inp.band, offset(inp.band, b.system, inp.system, what=what or f"input {inp.name}")
            )
    return out


def alias_spellings(band_name: str) -> list[str]:
    """Upper-case spellings of a band in known catalogues that no other band uses (one- and
    two-letter spellings such as SDSS ``u`` or ``z`` are too generic to count)."""
    return [a for a, b in _alias_index().items() if b == band_name.upper()]


@lru_cache(maxsize=1)
def _alias_index() -> dict[str, str]:
    from xmmtools.catalogs import profiles

    seen: dict[str, set[str]] = {}
    for p in profiles().values():
        for bc in p.bands:
            for s in bc.value:
                seen.setdefault(s.upper(), set()).add(bc.band)
    return {s: next(iter(b)) for s, b in seen.items() if len(b) == 1 and len(s) > 2}


__all__ = ["Band", "Feed", "Input", "band", "bands", "inputs_from_mapping", "offset", "resolve_inputs"]
