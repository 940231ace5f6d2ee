"""Known counterpart catalogues, described as data: one TOML file per catalogue.

A profile says how a catalogue is spelled and what it provides: the coordinate columns (VizieR
names such as ``RA_ICRS`` and the archive's own such as ``ra``), its positional-error columns
with their convention and unit, the error to assume when a file has none (``pos_err_default``,
arcsec, 1 sigma per axis), its magnitude system, its VizieR table (for ``vizier:`` fetches) and
the canonical bands it provides (``SDSS_U``, ``GAIA_G``, ``WISE_W1``, ...; see ``bands.py``),
each with the column spellings of its value and error.

Shipped profiles live in ``xmmtools/data/catalogs/``.  Users add their own files (same format)
in ``~/.config/xmmtools/catalogs/`` or in the folders listed in ``$XMMTOOLS_CATALOGS``
(separated by ``os.pathsep``); a user file with a shipped profile's name replaces it.

This module only answers questions about names; it never opens a user's table.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from xmmtools.errors import DataError

#: positional-error conventions a profile may declare (see crossmatch/catalogs.py build_errors)
ERROR_KINDS = ("sigma", "radial", "radec", "ellipse", "ellipse_pa")
#: units of positional-error columns, in arcsec
ERROR_UNITS = {"arcsec": 1.0, "mas": 1e-3, "deg": 3600.0}
SYSTEMS = ("AB", "Vega")


@dataclass(frozen=True)
class ErrorSpec:
    """One way a catalogue gives positional errors: the convention, the columns, their unit."""

    kind: str
    columns: tuple[str, ...]
    unit: str = "arcsec"

    @property
    def scale(self) -> float:
        """Factor to arcsec for columns without a unit in the file."""
        return ERROR_UNITS[self.unit]


@dataclass(frozen=True)
class BandColumns:
    """Spellings of one canonical band's value and its 1-sigma error in a catalogue."""

    band: str
    value: tuple[str, ...]
    error: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    reference: str
    vizier: str
    ra: tuple[str, ...]
    dec: tuple[str, ...]
    pos_err: tuple[ErrorSpec, ...]
    pos_err_default: float | None
    system: str | None
    bands: tuple[BandColumns, ...]
    path: str = ""

    def coordinates(self, names: Sequence[str]) -> tuple[str | None, str | None]:
        """Actual (RA, DEC) columns of a table with these ``names`` (None where absent)."""
        return find_column(names, self.ra), find_column(names, self.dec)

    def errors(self, names: Sequence[str]) -> tuple[ErrorSpec, list[str]] | None:
        """The first error convention whose columns the table has: (spec, actual columns)."""
        for spec in self.pos_err:
            cols = [find_column(names, [c]) for c in spec.columns]
            if all(cols):
                return spec, [c for c in cols if c]
        return None

    def band_columns(self, names: Sequence[str]) -> list[tuple[str, str, str | None]]:
        """(canonical band, value column, error column or None) for the bands the table has."""
        out = []
        for b in self.bands:
            v = find_column(names, b.value)
            if v is not None:
                out.append((b.band, v, find_column(names, b.error)))
        return out


def find_column(names: Sequence[str], candidates: Iterable[str]) -> str | None:
    """The first candidate present in ``names``: exact spelling first, then ignoring case."""
    names = list(names)
    upper: dict[str, str] = {}
    for n in names:
        upper.setdefault(n.upper(), n)
    for c in candidates:
        if c in names:
            return c
        if c.upper() in upper:
            return upper[c.upper()]
    return None


# ----------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------


def profile(name: str) -> Profile | None:
    """The known catalogue called ``name`` (case-insensitive), or None."""
    return profiles().get(name.lower())


def require_profile(name: str, where: str) -> Profile:
    p = profile(name)
    if p is None:
        raise DataError(
            f"{where}: no known catalogue {name!r} (known: {', '.join(sorted(profiles()))}; "
            "add your own TOML file to ~/.config/xmmtools/catalogs/ or $XMMTOOLS_CATALOGS)"
        )
    return p


def profiles() -> dict[str, Profile]:
    """Every known catalogue, shipped and the user's, by lower-case name."""
    return _load(tuple(str(p) for p in _folders()))


def user_folders() -> list[Path]:
    env = os.environ.get("XMMTOOLS_CATALOGS", "")
    out = [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    out.append(Path(base) / "xmmtools" / "catalogs")
    return out


def _folders() -> list[Path]:
    return [Path(str(resources.files("xmmtools") / "data" / "catalogs")), *user_folders()]


@lru_cache(maxsize=8)
def _load(folders: tuple[str, ...]) -> dict[str, Profile]:
    out: dict[str, Profile] = {}
    for folder in folders:
        f = Path(folder)
        files = [f] if f.is_file() else sorted(f.glob("*.toml")) if f.is_dir() else []
        for path in files:
            p = load_profile(path)
            out[p.name.lower()] = p  # later folders (the user's) replace shipped profiles
    return out


def load_profile(path: str | Path) -> Profile:
    """Read and check one catalogue file; every problem is a one-line DataError."""
    path = str(path)
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise DataError(f"{path}: cannot read catalogue profile ({e.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a valid TOML catalogue profile ({e})") from None
    return parse_profile(doc, where=path)


def parse_profile(doc: Mapping, *, where: str = "catalogue profile") -> Profile:
    from xmmtools.bands import band as canonical_band

    name = str(doc.get("name", Path(where).stem)).strip()
    if not name or not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise DataError(f"{where}: name {name!r} must be letters/digits starting with a letter")
    ra, dec = _names(doc, "ra", where), _names(doc, "dec", where)
    specs = []
    for i, e in enumerate(doc.get("pos_err", []), 1):
        kind, cols, unit = e.get("kind"), e.get("columns"), e.get("unit", "arcsec")
        if kind not in ERROR_KINDS:
            raise DataError(f"{where}: pos_err #{i} has kind {kind!r}; use one of {', '.join(ERROR_KINDS)}")
        if unit not in ERROR_UNITS:
            raise DataError(f"{where}: pos_err #{i} has unit {unit!r}; use one of {', '.join(ERROR_UNITS)}")
        if not cols or isinstance(cols, str):
            raise DataError(f"{where}: pos_err #{i} needs columns = [...]")
        specs.append(ErrorSpec(kind, tuple(map(str, cols)), unit))
    default = doc.get("pos_err_default")
    if default is not None:
        try:
            default = float(default)
        except (TypeError, ValueError):
            default = -1.0
        if not default > 0:
            raise DataError(f"{where}: pos_err_default must be a positive number of arcsec")
    system = doc.get("system")
    if system is not None and system not in SYSTEMS:
        raise DataError(f"{where}: system {system!r}; use one of {', '.join(SYSTEMS)}")
    bands = []
    for b, d in doc.get("bands", {}).items():
        canonical_band(b, where=f"{where}: band {b}")  # must be a known canonical band
        bands.append(
            BandColumns(b, tuple(_names(d, "value", f"{where}: band {b}")), tuple(map(str, d.get("error", []))))
        )
    return Profile(
        name,
        str(doc.get("title", name)),
        str(doc.get("reference", "")),
        str(doc.get("vizier", "")),
        tuple(ra),
        tuple(dec),
        tuple(specs),
        default,
        system,
        tuple(bands),
        where,
    )


def _names(d: Mapping, key: str, where: str) -> list[str]:
    v = d.get(key)
    if isinstance(v, str):
        v = [v]
    if not v:
        raise DataError(f"{where}: needs {key} = [column spellings]")
    return [str(x) for x in v]


__all__ = [
    "BandColumns",
    "ErrorSpec",
    "Profile",
    "find_column",
    "load_profile",
    "parse_profile",
    "profile",
    "profiles",
    "require_profile",
]
