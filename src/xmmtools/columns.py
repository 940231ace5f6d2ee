"""The 4XMM schema: column names, units, bands, column families, ECFs, catalogue kinds, aliases.

Built from ``data/schema/4xmm_columns.csv`` (the 336 columns of the 4XMM-DR14 detection
catalogue, Webb et al. 2020, A&A 641, A136, with units and types from the XMM-SSC user guide)
and the ECF tables in ``data/ecf/``.  This module never opens a user's file: it answers
questions about names.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import TYPE_CHECKING

from xmmtools.errors import ColumnError, DataError

if TYPE_CHECKING:  # numpy is imported lazily at run time
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

# ----------------------------------------------------------------------------------------
# Bands and cameras
# ----------------------------------------------------------------------------------------

#: 4XMM energy bands in keV (Webb et al. 2020, Table 1); 6 and 7 are the RapidXMM/upper-limit
#: soft and hard bands that appear only in the ECF tables, not as catalogue columns.
BANDS: dict[int, tuple[float, float]] = {
    1: (0.2, 0.5),
    2: (0.5, 1.0),
    3: (1.0, 2.0),
    4: (2.0, 4.5),
    5: (4.5, 12.0),
    6: (0.2, 2.0),
    7: (2.0, 12.0),
    8: (0.2, 12.0),
    9: (0.5, 4.5),
}
#: Bands that have flux / rate columns in the 4XMM catalogues.
CATALOGUE_BANDS = (1, 2, 3, 4, 5, 8, 9)
#: EP is the EPIC combination of the three cameras.
CAMERAS = ("EP", "PN", "M1", "M2")
INSTRUMENTS = ("PN", "M1", "M2")


def band_range(band: int | str) -> tuple[float, float]:
    """Energy range (keV) of a 4XMM band number or a ``'lo-hi'`` string."""
    if isinstance(band, str) and "-" in band:
        try:
            lo, hi = (float(x) for x in band.split("-", 1))
        except ValueError:
            raise DataError(f"band {band!r} is neither a 4XMM band number nor 'lo-hi' in keV") from None
        if not 0 < lo < hi:
            raise DataError(f"band {band!r}: need 0 < lo < hi keV")
        return lo, hi
    try:
        return BANDS[int(band)]
    except (KeyError, ValueError):
        raise DataError(f"unknown 4XMM band {band!r} (bands: {', '.join(map(str, BANDS))})") from None


# ----------------------------------------------------------------------------------------
# Column families
# ----------------------------------------------------------------------------------------


def flux_column(camera: str = "EP", band: int = 8, *, err: bool = False, source: bool = False) -> str:
    """``EP_8_FLUX``, ``PN_3_FLUX_ERR``; ``source=True`` gives the unique-source ``SC_EP_8_FLUX``."""
    name = f"{_camera(camera)}_{int(band)}_FLUX" + ("_ERR" if err else "")
    return "SC_" + name if source else name


def rate_column(camera: str = "EP", band: int = 8, *, err: bool = False) -> str:
    return f"{_camera(camera)}_{int(band)}_RATE" + ("_ERR" if err else "")


def hr_column(n: int, camera: str = "EP", *, err: bool = False, source: bool = False) -> str:
    """Hardness ratio ``EP_HR1`` .. ``EP_HR4`` (bands n and n+1); unique source: ``SC_HR1``."""
    if n not in (1, 2, 3, 4):
        raise ValueError(f"hardness ratios are HR1..HR4, not HR{n}")
    if source:
        return f"SC_HR{n}" + ("_ERR" if err else "")
    return f"{_camera(camera)}_HR{n}" + ("_ERR" if err else "")


def exposure_column(camera: str, band: int) -> str:
    """Per-camera band exposure (s), e.g. ``PN_1_EXP``."""
    return f"{_instrument(camera)}_{int(band)}_EXP"


def background_column(camera: str, band: int) -> str:
    """Per-camera band background (counts/pixel), e.g. ``M1_3_BG``."""
    return f"{_instrument(camera)}_{int(band)}_BG"


_FAMILY = re.compile(r"^(?P<sc>SC_)?(?P<cam>EP|PN|M1|M2)_(?:(?P<band>\d)_)?(?P<qty>[A-Z0-9_]+?)(?P<err>_ERR)?$")


@dataclass(frozen=True)
class Family:
    """A parsed 4XMM column name: ``SC_EP_8_FLUX_ERR`` -> source, EP, 8, FLUX, err."""

    name: str
    source: bool
    camera: str
    band: int | None
    quantity: str
    err: bool


def parse_family(name: str) -> Family | None:
    """Split a camera/band column name into its parts, or ``None`` for other columns."""
    m = _FAMILY.match(name.upper())
    if not m:
        return None
    return Family(
        name=name.upper(),
        source=bool(m["sc"]),
        camera=m["cam"],
        band=int(m["band"]) if m["band"] else None,
        quantity=m["qty"],
        err=bool(m["err"]),
    )


def _camera(camera: str) -> str:
    c = _CAMERA_ALIASES.get(camera.upper(), camera.upper())
    if c not in CAMERAS:
        raise ValueError(f"camera must be one of {CAMERAS}, not {camera!r}")
    return c


def _instrument(camera: str) -> str:
    c = _camera(camera)
    if c == "EP":
        raise ValueError("EP is the camera combination; give PN, M1 or M2")
    return c


_CAMERA_ALIASES = {"EPIC": "EP", "EPN": "PN", "MOS1": "M1", "MOS2": "M2", "EMOS1": "M1", "EMOS2": "M2"}

# ----------------------------------------------------------------------------------------
# The schema table
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaColumn:
    name: str
    unit: str
    dtype: str  # numpy-style: float32, float64, int16, int32, int64, bool, str
    description: str
    fits_tform: str
    null: str
    group: str
    in_slim: bool

    @property
    def numeric(self) -> bool:
        return self.dtype not in ("str", "bool")


@lru_cache(maxsize=1)
def schema() -> dict[str, SchemaColumn]:
    """The 4XMM detection-catalogue columns, in catalogue order."""
    text = resources.files("xmmtools").joinpath("data/schema/4xmm_columns.csv").read_text()
    out: dict[str, SchemaColumn] = {}
    for row in csv.DictReader(text.splitlines()):
        out[row["name"]] = SchemaColumn(
            name=row["name"],
            # FITS standard spelling (count, not counts) so astropy parses TUNIT without warnings
            unit=re.sub(r"\bcounts\b", "count", row["unit"]),
            dtype=row["dtype"],
            description=row["description"],
            fits_tform=row["fits_tform"],
            null=row["null"],
            group=row["group"],
            in_slim=row["in_slim"] == "yes",
        )
    return out


def ucd_for(name: str) -> str:
    """The IVOA UCD1+ of a column xmmtools writes (``data/schema/ucds.csv``), or '' when the
    name is not one of ours (4XMM catalogue columns are the catalogue's business).  A classify
    ``--prefix`` (``NB_``) before the name is allowed."""
    if name in schema():
        return ""
    head, sep, rest = name.partition("_")
    for candidate in (name, rest) if sep and rest else (name,):
        for pattern, ucd in _ucd_patterns():
            if pattern.fullmatch(candidate):
                return ucd
    return ""


@cache
def _ucd_patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    text = resources.files("xmmtools").joinpath("data/schema/ucds.csv").read_text()
    rows = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")][1:]
    out = []
    for ln in rows:
        pattern, _, ucd = ln.rpartition(",")
        out.append((re.compile(f"(?:{pattern})"), ucd.strip()))
    return tuple(out)


def describe(name: str) -> str:
    """A short description of a 4XMM column for messages; empty if unknown."""
    col = schema().get(name.upper())
    if col is None:
        return ""
    return col.description


# ----------------------------------------------------------------------------------------
# ECFs
# ----------------------------------------------------------------------------------------

_FILTER_ALIASES = {
    "THIN": "thin",
    "THIN1": "thin",
    "THIN2": "thin",
    "MEDIUM": "medium",
    "MED": "medium",
    "THICK": "thick",
    "OPEN": "open",
}

ECF_TABLES = {
    # name -> (file, description)
    "4xmm": (
        "ecf_3xmm_4xmm_catalogue.csv",
        "3XMM/4XMM catalogue ECFs (Rosen et al. 2016 bands 1-5,9; RapidXMM bands 6-8), "
        "absorbed power law Gamma=1.7, NH=3e20 cm-2",
    ),
    "mateos2009": (
        "ecf_mateos2009_table1.csv",
        "Mateos et al. 2009, A&A 496, 879, Table 1 (2XMM), Gamma=1.7, NH=3e20 cm-2",
    ),
}


@cache
def ecf_table(name: str = "4xmm") -> dict[tuple[str, int, str], float]:
    """ECFs in units of 1e11 counts cm^2 erg^-1 keyed by (instrument, band, filter).

    flux [erg/cm^2/s] = rate [counts/s] / (ECF * 1e11)  (Mateos et al. 2009, eq. 1).
    """
    try:
        fname, _ = ECF_TABLES[name]
    except KeyError:
        raise DataError(f"unknown ECF table {name!r} (known: {', '.join(ECF_TABLES)})") from None
    text = resources.files("xmmtools").joinpath(f"data/ecf/{fname}").read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    out: dict[tuple[str, int, str], float] = {}
    for row in csv.DictReader(lines):
        for filt in ("open", "thin", "medium", "thick"):
            if filt in row and row[filt]:
                out[(row["instrument"], int(row["band"]), filt)] = float(row[filt])
    return out


def ecf(instrument: str, band: int, filter: str = "thin", table: str = "4xmm") -> float:
    """Energy conversion factor (1e11 counts cm^2 erg^-1) for a camera, band and filter.

    ``filter`` accepts the catalogue spellings (Thin1, Thin2, Medium, Thick, Open).
    """
    inst = _instrument(instrument)
    filt = _FILTER_ALIASES.get(str(filter).strip().upper())
    if filt is None:
        raise DataError(f"unknown filter {filter!r} (expected Thin1, Thin2, Medium, Thick or Open)")
    try:
        return ecf_table(table)[(inst, int(band), filt)]
    except KeyError:
        raise DataError(f"no ECF for {inst} band {band} filter {filter} in table {table!r}") from None


# ----------------------------------------------------------------------------------------
# Aliases: VizieR, HEASARC and XSA spellings -> 4XMM FITS names
# ----------------------------------------------------------------------------------------

#: Alternative spellings of 4XMM columns.  Lower-case XSA/HEASARC names equal to the FITS name
#: are handled by case-insensitive matching and need no entry here.
ALIASES: dict[str, tuple[str, ...]] = {
    # Evidence: VizieR slim tables IX/59 (DR9) .. IX/69 (DR13) as queried in public code
    # (RA_ICRS, DE_ICRS, ePos, srcML, FluxN, e_FluxN, HRn, ext, extML, Cst, Fvar, V, S, Nd,
    # MJD0/MJD1, "4XMM"); HEASARC xmmssc (name, error_radius, time, end_time, *_error);
    # 5XMM-DR15 column pages (PPS_SRCNUM).  VizieR slim tables are one row per source, so their
    # names map to the SC_* columns; RA/DEC/POSERR fall back to SC_RA/SC_DEC/SC_POSERR.
    "RA": ("RA_ICRS", "RAJ2000", "SC_RA", "ra_deg"),
    "DEC": ("DE_ICRS", "DEJ2000", "SC_DEC", "dec_deg"),
    "SC_RA": ("RA_ICRS",),
    "SC_DEC": ("DE_ICRS",),
    "LII": ("GLON",),
    "BII": ("GLAT",),
    "POSERR": ("error_radius", "ePos", "SC_POSERR", "pos_err"),
    "SC_POSERR": ("ePos",),
    "IAUNAME": ("4XMM", "_4XMM", "Name"),
    "SRCID": ("Source",),
    "SRC_NUM": ("PPS_SRCNUM",),
    "MJD_START": ("time",),
    "MJD_STOP": ("end_time",),
    "MJD_FIRST": ("MJD0",),
    "MJD_LAST": ("MJD1",),
    "N_DETECTIONS": ("Nd",),
    "EP_8_FLUX": ("ep_flux",),
    "EP_8_DET_ML": ("ep_det_ml",),
    "EP_EXTENT": ("extent",),
    "SC_DET_ML": ("srcML",),
    "SC_EXTENT": ("ext",),
    "SC_EXT_ML": ("extML",),
    "SC_CHI2PROB": ("Cst",),
    "SC_FVAR": ("Fvar",),
    "SC_VAR_FLAG": ("V",),
    "SC_SUM_FLAG": ("S",),
    "SC_EP_8_FMIN": ("F8min",),
    "SC_EP_8_FMIN_ERR": ("e_F8min",),
    "SC_EP_8_FMAX": ("F8max",),
    "SC_EP_8_FMAX_ERR": ("e_F8max",),
}
for _n in (1, 2, 3, 4, 5, 8, 9):
    # VizieR FluxN; the Lin et al. 2024 XCLASS table writes FN for the same SC_EP_N_FLUX
    ALIASES[f"SC_EP_{_n}_FLUX"] = (f"Flux{_n}", f"F{_n}")
    ALIASES[f"SC_EP_{_n}_FLUX_ERR"] = (f"e_Flux{_n}",)
for _n in range(1, 5):
    ALIASES[f"SC_HR{_n}"] = (f"HR{_n}",)
    ALIASES[f"SC_HR{_n}_ERR"] = (f"e_HR{_n}",)


@lru_cache(maxsize=1)
def _alias_index() -> dict[str, str]:
    """alias (upper case) -> canonical name."""
    idx: dict[str, str] = {}
    for canon, alts in ALIASES.items():
        for a in alts:
            idx.setdefault(a.upper(), canon)
    return idx


def parse_column_map(text: str | Sequence[str] | None) -> dict[str, str]:
    """Parse a user mapping ``RA=ra_deg,DEC=dec_deg`` (canonical=actual) into a dict."""
    if not text:
        return {}
    items = [text] if isinstance(text, str) else list(text)
    out: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise DataError(f"--columns entry {part!r} is not NAME=COLUMN (e.g. RA=ra_deg)")
            k, v = (s.strip() for s in part.split("=", 1))
            if not k or not v:
                raise DataError(f"--columns entry {part!r} is not NAME=COLUMN (e.g. RA=ra_deg)")
            out[k.upper()] = v
    return out


def resolve(
    available: Iterable[str],
    wanted: Iterable[str],
    user_map: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Map canonical 4XMM names to the table's actual column names.

    Order of precedence: the user's mapping, the exact name, a case-insensitive match
    (XSA/HEASARC lower case), then the alias table (VizieR spellings).  Names that cannot be
    found are left out of the result.
    """
    avail = list(available)
    by_upper: dict[str, str] = {}
    for a in avail:
        by_upper.setdefault(a.upper(), a)
    user = {k.upper(): v for k, v in (user_map or {}).items()}
    aliases = ALIASES
    out: dict[str, str] = {}
    for name in wanted:
        key = name.upper()
        if key in user:
            actual = user[key]
            if actual in avail:
                out[name] = actual
            elif actual.upper() in by_upper:
                out[name] = by_upper[actual.upper()]
            continue  # a user mapping to a missing column is reported by require()
        if name in avail:
            out[name] = name
            continue
        if key in by_upper:
            out[name] = by_upper[key]
            continue
        if key.endswith("_ERR") and key + "OR" in by_upper:  # HEASARC spells *_ERR as *_ERROR
            out[name] = by_upper[key + "OR"]
            continue
        for alt in aliases.get(key, ()):
            if alt in avail:
                out[name] = alt
                break
            if alt.upper() in by_upper:
                out[name] = by_upper[alt.upper()]
                break
    return out


def canonical_names(available: Iterable[str], user_map: Mapping[str, str] | None = None) -> dict[str, str]:
    """actual name -> canonical 4XMM name, for every column that has one."""
    avail = list(available)
    known = set(schema()) | set(ALIASES)
    user = {v: k for k, v in (user_map or {}).items()}
    idx = _alias_index()
    out: dict[str, str] = {}
    for a in avail:
        u = a.upper()
        if a in user:
            out[a] = user[a].upper()
        elif u in known:
            out[a] = u
        elif u in idx:
            out[a] = idx[u]
        elif u.endswith("_ERROR") and u[:-2] in known:  # HEASARC *_ERROR
            out[a] = u[:-2]
    return out


def summary_rows(n_obs: ArrayLike, n_contrib: ArrayLike | None = None) -> NDArray[np.bool_]:
    """Stacked 4XMM-DRNs / 5XMM: True for the per-source summary rows.

    The catalogues fill N_OBS and N_CONTRIB only in the summary row of each source and leave
    them null in the per-observation rows, so "N_OBS > 0" selects one row per source
    (XMM-SSC 5XMM-DR15 column description; Traulsen et al. 2019 for the stacked catalogue).
    """
    import numpy as np

    n = np.asarray(n_obs, dtype=float)
    sel: NDArray[np.bool_] = np.isfinite(n) & (n > 0)
    if n_contrib is not None:
        c = np.asarray(n_contrib, dtype=float)
        sel &= np.isfinite(c)
    return sel


#: needs holding sky coordinates in degrees: a boolean column is refused for them
COORDINATE_NEEDS = frozenset({"RA", "DEC", "SC_RA", "SC_DEC"})


@dataclass(frozen=True)
class Need:
    """A column a stage needs: its canonical name, what it is, and whether it must be numeric."""

    name: str
    description: str = ""
    kind: str = "number"  # number | text | bool | any
    optional: bool = False

    @property
    def what(self) -> str:
        return self.description or describe(self.name) or "no description"


def closest(name: str, available: Iterable[str], n: int = 3) -> list[str]:
    avail = list(available)
    upper = {a.upper(): a for a in avail}
    hits = difflib.get_close_matches(name.upper(), list(upper), n=n, cutoff=0.6)
    return sorted(upper[h] for h in hits)


def require(
    available: Iterable[str],
    needs: Sequence[Need | str],
    *,
    stage: str,
    source: str,
    user_map: Mapping[str, str] | None = None,
    types: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Resolve the columns a stage needs or raise a one-line :class:`ColumnError`.

    ``types`` maps actual column names to a kind ("number", "text", "bool", "list") so the
    column's type can be checked without reading it.  Returns canonical -> actual names
    (optional needs that are absent are left out).
    """
    avail = list(available)
    resolved = [Need(n) if isinstance(n, str) else n for n in needs]
    found = resolve(avail, [n.name for n in resolved], user_map)
    user = {k.upper(): v for k, v in (user_map or {}).items()}
    for need in resolved:
        if need.name not in found:
            if need.optional:
                continue
            if need.name.upper() in user:
                raise ColumnError(
                    f"{stage}: --columns maps {need.name} to {user[need.name.upper()]!r}, "
                    f"but {source} has no such column" + _closest_note(user[need.name.upper()], avail)
                )
            raise ColumnError(
                f"{stage} needs column {need.name} ({need.what}); {source} has no such column"
                + _closest_note(need.name, avail)
            )
        actual = found[need.name]
        if types is not None and need.kind != "any":
            got = types.get(actual)
            # booleans pass as numbers (0/1), but never as sky coordinates
            bool_ok = got == "bool" and not any(found.get(k) == actual for k in COORDINATE_NEEDS)
            if got is not None and got != need.kind and not (need.kind == "number" and bool_ok):
                shown = actual if actual == need.name else f"{actual} (used as {need.name})"
                raise ColumnError(
                    f"{stage} needs column {shown} in {source} to hold a {need.kind}, but it holds {got} values"
                )
    return found


def _closest_note(name: str, avail: Sequence[str]) -> str:
    near = closest(name, avail)
    return f" (closest: {', '.join(near)})" if near else ""


# ----------------------------------------------------------------------------------------
# Catalogue kinds
# ----------------------------------------------------------------------------------------

KINDS = {
    "4xmm-detections": "4XMM detection catalogue (one row per detection; SRCID groups detections)",
    "4xmm-slim": "4XMM slim catalogue (one row per unique source, SC_* columns)",
    "4xmm-stacked": "stacked 4XMM-DRNs catalogue (summary rows with N_OBS > 0 and per-observation rows)",
    "5xmm": "5XMM-DR15 source catalogue (stack-based, inter-observation variability columns)",
    "generic": "generic table (no 4XMM catalogue structure recognised)",
}


@dataclass(frozen=True)
class Kind:
    name: str
    reason: str

    @property
    def description(self) -> str:
        return KINDS[self.name]


def detect_kind(names: Iterable[str], header: Mapping[str, object] | None = None) -> Kind:
    """Recognise the catalogue kind from column names (and header keywords when given).

    Rules, in order: a header naming 5XMM or 4XMM-DRNs; 5XMM's stack variability columns;
    stacked 4XMM's N_OBS/N_CONTRIB; detection keys (DETID, or OBS_ID+SRC_NUM with per-detection
    EP_* columns); unique-source SC_* columns without per-detection keys; else generic.
    """
    canon = set(canonical_names(names).values()) | {n.upper() for n in names}
    hdr = " ".join(
        str(v) for k, v in (header or {}).items() if k.upper() in ("CATALOG", "CATNAME", "EXTNAME", "TITLE", "ORIGIN")
    ).upper()
    if "5XMM" in hdr:
        return Kind("5xmm", "header names 5XMM")
    if re.search(r"4XMM-DR\d+S\b", hdr):
        return Kind("4xmm-stacked", "header names a stacked 4XMM-DRNs catalogue")
    has_stack = "N_OBS" in canon or "N_CONTRIB" in canon
    five = {"PPS_SRCNUM", "N_EXP", "VAR_PROB", "FRATIO", "FLUXVAR"} & canon or any(
        c.startswith("CLASSX_") for c in canon
    )
    if has_stack and five:
        return Kind(
            "5xmm",
            "N_OBS/N_CONTRIB with 5XMM inter-observation columns "
            f"({', '.join(sorted(five)) if isinstance(five, set) and five else 'CLASSX_*'})",
        )
    if has_stack:
        return Kind("4xmm-stacked", "N_OBS/N_CONTRIB columns of the stacked catalogue")
    det_cols = {"EP_8_FLUX", "EP_8_DET_ML", "POSERR", "RA", "DEC"} & canon
    if "DETID" in canon or ({"OBS_ID", "SRC_NUM", "SRCID"} <= canon and det_cols):
        return Kind("4xmm-detections", "detection keys DETID/OBS_ID+SRC_NUM present")
    sc = [c for c in canon if c.startswith("SC_")]
    if "SRCID" in canon and len(sc) >= 3:
        return Kind("4xmm-slim", f"SRCID with {len(sc)} SC_* unique-source columns, no detection keys")
    if len(sc) >= 5:
        return Kind("4xmm-slim", f"{len(sc)} SC_* unique-source columns, no detection keys")
    return Kind("generic", "no 4XMM key columns (DETID, SRCID, SC_*, N_OBS) found")
