"""From tables to :class:`~xmmtools.crossmatch.bayes.Catalog`: find coordinates, positional
errors (converted to 1 sigma per axis, see poserr.py), sky areas and attribute columns.

Reads only through xmmtools.tables.  Every problem a user can cause is a one-line DataError naming
the catalogue, file and column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from xmmtools import tables
from xmmtools.catalogs import Profile
from xmmtools.columns import resolve
from xmmtools.crossmatch.bayes import Catalog
from xmmtools.crossmatch.poserr import RADIAL_NAMES, PosErrors, fourxmm_sigma, radial_to_sigma, unit_scale
from xmmtools.errors import ColumnError, DataError
from xmmtools.sky import check_coordinates

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def parse_pairs(items: Sequence[str], option: str, example: str) -> dict[str, str]:
    """``NAME=VALUE`` items -> {NAME upper: VALUE}; one-line errors for bad or repeated names."""
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise DataError(f"{option} {item!r} is not NAME=VALUE (e.g. {example})")
        k, v = (s.strip() for s in item.split("=", 1))
        if not _NAME.match(k) or not v:
            raise DataError(
                f"{option} {item!r}: NAME must be letters/digits starting with a letter, "
                f"and VALUE not empty (e.g. {example})"
            )
        if k.upper() in out:
            raise DataError(f"{option} names {k!r} twice")
        out[k.upper()] = v
    return out


@dataclass
class LoadedCatalog:
    catalog: Catalog
    source: str  # file name (or remote query description)
    table: pa.Table  # the columns read (whole table for the primary)
    columns: dict[str, str]  # role -> actual column (RA, DEC, error columns)
    error_note: str = ""
    area_note: str = ""
    notes: list = field(default_factory=list)
    #: file row of each catalogue row when only the sources near the primaries were kept
    rows: np.ndarray | None = None
    #: the known catalogue (xmmtools/data/catalogs) whose canonical bands are written
    profile: Profile | None = None

    def file_rows(self, members: np.ndarray) -> np.ndarray:
        """File rows of catalogue rows ``members`` (-1 stays -1)."""
        members = np.asarray(members, dtype=np.int64)
        if self.rows is None:
            return members
        return np.where(members >= 0, self.rows[np.maximum(members, 0)], -1)


def coordinate_columns(
    names: Sequence[str], user_map: Mapping[str, str] | None, where: str, profile: Profile | None = None
) -> tuple[str, str]:
    """Actual RA and DEC column names (--columns, a known catalogue's spellings, 4XMM names,
    VizieR/HEASARC aliases, ra/dec)."""
    um = {k: v for k, v in (user_map or {}).items() if v in names or v.upper() in {n.upper() for n in names}}
    if profile is not None:
        for role, col in zip(("RA", "DEC"), profile.coordinates(names), strict=True):
            if col is not None:
                um.setdefault(role, col)
    found = resolve(names, ["RA", "DEC"], um)
    for role in ("RA", "DEC"):
        if role not in found:
            raise ColumnError(
                f"{where} has no {role} column (looked for {role}, its aliases and "
                f"--columns {role}=...); columns are: {', '.join(list(names)[:12])}"
                + (" ..." if len(names) > 12 else "")
            )
    return found["RA"], found["DEC"]


def _find(names: Sequence[str], wanted: str) -> str | None:
    up = {n.upper(): n for n in names}
    return up.get(wanted.upper())


def error_columns(names: Sequence[str], spec: str | None, where: str) -> tuple[str, list[str]] | None:
    """Which columns hold the positional error and how: (kind, columns).

    kind is 'fixed' (columns = [value]), 'radial', 'sigma', 'radec' ([era, edec] or with a
    correlation), '4xmm' ([RADEC_ERR, SYSERRCC?]) or 'ellipse' ([a, b, phi])."""
    if spec is not None:
        try:
            v = float(spec)
        except ValueError:
            v = None
        if v is not None:
            if not (v > 0 and np.isfinite(v)):
                raise DataError(
                    f"--pos-err for {where}: a fixed error must be a positive number of arcsec, got {spec!r}"
                )
            return "fixed", [spec]
        parts = [p.strip() for p in spec.split(":")]
        cols = []
        for p in parts:
            c = _find(names, p)
            if c is None:
                raise ColumnError(f"--pos-err for {where}: no column {p!r}")
            cols.append(c)
        if len(cols) == 1:
            return ("radial" if cols[0].upper() in RADIAL_NAMES else "sigma"), cols
        if len(cols) == 2:
            return "radec", cols
        if len(cols) == 3:
            return "ellipse", cols
        raise DataError(f"--pos-err for {where}: {spec!r} has more than 3 columns (use COL, ERA:EDEC or A:B:PHI)")
    # automatic, most specific first
    for e1, e2, c in (
        ("ra_error", "dec_error", "ra_dec_corr"),  # Gaia archive
        ("e_RA_ICRS", "e_DE_ICRS", "RADEcor"),  # Gaia DR3 on VizieR (I/355)
        ("e_RAJ2000", "e_DEJ2000", None),
    ):
        era, edec = _find(names, e1), _find(names, e2)
        if era and edec:
            corr = _find(names, c) if c else None
            return "radec", [era, edec] + ([corr] if corr else [])
    maj, mnr, pa = _find(names, "eeMaj"), _find(names, "eeMin"), _find(names, "eePA")
    if maj and mnr and pa:  # AllWISE/2MASS on VizieR: error ellipse with PA east of north
        return "ellipse_pa", [maj, mnr, pa]
    for n in ("POSERR", "SC_POSERR", "ePos", "error_radius"):
        c = _find(names, n)
        if c:
            return "radial", [c]
    c = _find(names, "RADEC_ERR")
    if c:
        s = _find(names, "SYSERRCC")
        return "4xmm", [c] + ([s] if s else [])
    a, b, phi = _find(names, "a"), _find(names, "b"), _find(names, "phi")
    if a and b and phi:
        return "ellipse", [a, b, phi]
    for n in ("pos_err", "e_pos", "poserror", "pos_error", "err_pos", "sigma_pos"):
        c = _find(names, n)
        if c:
            return "sigma", [c]
    return None


def _coordinate(t: pa.Table, col: str, where: str) -> np.ndarray:
    """A coordinate column in degrees: numbers only (a boolean column would become 0/1 deg)."""
    if tables.column_kind(t.schema.field(col).type) != "number":
        kind = tables.column_kind(t.schema.field(col).type)
        raise DataError(f"{where}: coordinate column {col} holds {kind} values, not degrees")
    return _values(t, col)


def _values(t: pa.Table, col: str, scale: float = 1.0) -> np.ndarray:
    v = tables.to_numpy(t.column(col), float)
    return v * scale if scale != 1.0 else v  # no copy of 10^7 coordinates for nothing


def build_errors(
    t: pa.Table, kind: str, cols: list[str], where: str, scale: float | None = None
) -> tuple[PosErrors, str]:
    """PosErrors (1 sigma per axis, arcsec) and a one-line note of the conversion.

    ``scale``: factor to arcsec of columns whose file gives no unit (a known catalogue's
    convention); by default arcsec, or mas for Gaia's ra_error/e_RA_ICRS."""
    n = t.num_rows

    def unit(c, default):
        return unit_scale(tables.unit_of(t.schema.field(c)), default if scale is None else scale, f"{where} column {c}")

    if kind == "fixed":
        return PosErrors.circular(float(cols[0]), n), f"fixed {cols[0]} arcsec (1 sigma per axis)"
    if kind == "radial":
        e = PosErrors.circular(radial_to_sigma(_values(t, cols[0], unit(cols[0], 1.0))))
        return e, f"{cols[0]} / sqrt(2) (4XMM radial 63% error -> 1 sigma per axis)"
    if kind == "4xmm":
        s = _values(t, cols[1], unit(cols[1], 1.0)) if len(cols) > 1 else None
        e = PosErrors.circular(fourxmm_sigma(_values(t, cols[0], unit(cols[0], 1.0)), s))
        return e, f"sqrt({' ^2 + '.join(cols)}^2) / sqrt(2) (4XMM radial errors -> 1 sigma per axis)"
    if kind == "sigma":
        return PosErrors.circular(_values(t, cols[0], unit(cols[0], 1.0))), f"{cols[0]} (1 sigma per axis)"
    if kind == "radec":
        gaia = cols[0].lower() in ("ra_error", "e_ra_icrs")
        sx = _values(t, cols[0], unit(cols[0], 1e-3 if gaia else 1.0))
        sy = _values(t, cols[1], unit(cols[1], 1e-3 if gaia else 1.0))
        rho = _values(t, cols[2]) if len(cols) > 2 else np.zeros(n)
        mas = scale == 1e-3 or (gaia and scale is None)
        u = "mas" if mas and not tables.unit_of(t.schema.field(cols[0])) else "their unit"
        return PosErrors(sx, sy, rho), f"{':'.join(cols)} (1 sigma in RA cos Dec and Dec, {u})"
    if kind in ("ellipse", "ellipse_pa"):
        a = _values(t, cols[0], unit(cols[0], 1.0))
        b = _values(t, cols[1], unit(cols[1], 1.0))
        phi = _values(t, cols[2]) + (90.0 if kind == "ellipse_pa" else 0.0)
        how = "position angle east of north" if kind == "ellipse_pa" else "NWAY angle"
        return PosErrors.ellipse(a, b, phi), f"ellipse {':'.join(cols)} (1 sigma semi-axes, {how})"
    raise ValueError(kind)  # pragma: no cover


#: rows of a counterpart file kept for the footprint estimate when it is streamed
FOOTPRINT_SAMPLE = 2_000_000


def read_near(
    src: str,
    columns: Sequence[str],
    ra_col: str,
    dec_col: str,
    near,
    *,
    where: str,
    chunk_rows: int | None = None,
    progress: bool = False,
) -> tuple[pa.Table, np.ndarray, int, tuple[np.ndarray, np.ndarray]]:
    """Stream a counterpart file in row chunks, keeping only the rows ``near`` accepts (a
    :class:`~xmmtools.crossmatch.positional.CellMask` of the primaries): a Gaia-sized file is
    never held whole.  Returns the kept rows (``columns``), their file row numbers, the total
    row count (for the density) and an evenly spaced sample of at most FOOTPRINT_SAMPLE
    positions of the whole file (for a footprint area estimate).  Every chunk's coordinates
    are checked, so a bad row is named wherever it is."""
    n = tables.inspect_table(src).num_rows or 0
    step = max(1, -(-n // FOOTPRINT_SAMPLE))
    parts, rows, sra, sdec = [], [], [], []
    total, empty = 0, None
    for chunk in tables.iter_table(src, columns, chunk_rows=chunk_rows, progress=progress):
        empty = chunk.slice(0, 0) if empty is None else empty
        ra, dec = _coordinate(chunk, ra_col, where), _coordinate(chunk, dec_col, where)
        check_coordinates(ra, dec, where, offset=total)
        keep = np.flatnonzero(near(ra, dec))
        if len(keep):
            parts.append(chunk.take(tables.arrow_from_numpy(keep)))
            rows.append(keep + total)
        first = (-total) % step
        sra.append(ra[first::step].copy())  # copies: a view would keep the chunk alive
        sdec.append(dec[first::step].copy())
        total += chunk.num_rows
        del chunk, ra, dec
    sample = (np.concatenate(sra), np.concatenate(sdec)) if sra else (np.zeros(0), np.zeros(0))
    if not parts:
        return empty, np.zeros(0, dtype=np.int64), total, sample
    kept = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
    return kept, np.concatenate(rows), total, sample


def sky_area(header: Mapping, ra: np.ndarray, dec: np.ndarray, override: float | None, where: str) -> tuple[float, str]:
    """Area in deg^2: --area, else the SKYAREA keyword, else a HEALPix footprint estimate."""
    from xmmtools.crossmatch.priors import footprint_area

    if override is not None:
        return override, f"{override:g} deg2 (--area)"
    for key in ("SKYAREA", "SKY_AREA", "AREA"):
        if key in (header or {}):
            try:
                v = float(header[key])
            except (TypeError, ValueError):
                raise DataError(f"{where}: header {key}={header[key]!r} is not a number of deg2") from None
            if not v > 0:
                raise DataError(f"{where}: header {key}={v!r} deg2 is not positive")
            return v, f"{v:g} deg2 (header {key})"
    area, nside = footprint_area(ra, dec)
    return area, f"{area:.4g} deg2 (estimated from the HEALPix footprint, nside {nside}; give --area to override)"


def header_of(path: str) -> dict:
    """FITS keywords (SKYAREA...) of a file, or the header cards kept in its schema metadata."""
    if path == tables.STDIO:
        return {}
    info = tables.inspect_table(path)
    return dict(info.header) if info.header else header_from_schema(info.schema)


def header_from_schema(schema: pa.Schema) -> dict:
    """Header cards that xmmtools.tables keeps in the schema metadata (FITS files passed through
    Parquet/Arrow/stdin keep their SKYAREA this way)."""
    import json

    raw = (schema.metadata or {}).get(tables.HEADER_KEY)
    if not raw:
        return {}
    try:
        cards = json.loads(raw)
    except ValueError:
        return {}
    if isinstance(cards, dict):
        return cards
    return {
        c[0]: c[1]
        for c in cards
        if isinstance(c, (list, tuple)) and len(c) >= 2 and c[0] not in ("HISTORY", "COMMENT", "")
    }


def make_catalog(
    name: str,
    t: pa.Table,
    source: str,
    header: Mapping,
    *,
    user_map=None,
    pos_err: str | None = None,
    need_errors: bool = True,
    area: float | None = None,
    attributes: Sequence[tuple[str, str, object]] = (),
    total_rows: int | None = None,
    footprint_sample: tuple[np.ndarray, np.ndarray] | None = None,
    profile: Profile | None = None,
) -> LoadedCatalog:
    """Catalog from a table holding at least the coordinate, error and attribute columns.

    ``attributes``: (label, column, Histogram or None) for the attribute priors.
    ``total_rows``/``footprint_sample``: when ``t`` holds only the rows of a streamed file near
    the primaries (:func:`read_near`), the file's row count and position sample.
    ``profile``: a known catalogue (coordinates, error convention and default error)."""
    where = f"catalogue {name} ({source})"
    names = t.schema.names
    ra_c, dec_c = coordinate_columns(names, user_map, where, profile)
    ra, dec = _coordinate(t, ra_c, where), _coordinate(t, dec_c, where)
    check_coordinates(ra, dec, where)
    if t.num_rows == 0 and not total_rows:
        raise DataError(f"{where} has no rows")
    cols = {"RA": ra_c, "DEC": dec_c}
    found, scale, why = _errors_of(names, pos_err, where, profile)
    note = ""
    if found is None:
        if need_errors:
            raise ColumnError(
                f"{where} has no positional-error column (POSERR, RADEC_ERR, ra_error/dec_error, "
                f"a:b:phi, pos_err); give --pos-err {name}=COLUMN or --pos-err {name}=ARCSEC"
            )
        errors = PosErrors.circular(np.nan, t.num_rows)
    else:
        kind, ecols = found
        errors, note = build_errors(t, kind, ecols, where, scale)
        note += why
        if need_errors:
            errors.validate(where)
        if kind != "fixed":
            cols.update({f"ERR{i}": c for i, c in enumerate(ecols)})
    fra, fdec = footprint_sample if footprint_sample is not None else (ra, dec)
    a, area_note = sky_area(header, fra, fdec, area, where)
    if footprint_sample is not None and "HEALPix footprint" in area_note:
        area_note += f" from {len(fra)} of the {total_rows} rows"
    attrs = []
    for label, col, hist in attributes:
        c = _find(names, col)
        if c is None:
            raise ColumnError(f"--mag {label}: {where} has no column {col!r}")
        attrs.append((label, _values(t, c), hist))
    cat = Catalog(name, ra, dec, errors, a, attrs, n_total=total_rows)
    return LoadedCatalog(cat, source, t, cols, note, area_note)


def _errors_of(names: Sequence[str], pos_err: str | None, where: str, profile: Profile | None):
    """(kind, columns) or None, the unit scale of the columns, and a note: --pos-err first, then a
    known catalogue's error columns, its default error, else the automatic detection."""
    if pos_err is not None or profile is None:
        return error_columns(names, pos_err, where), None, ""
    hit = profile.errors(names)
    if hit is not None:
        spec, cols = hit
        return (spec.kind, cols), spec.scale, f" [{profile.name} profile]"
    if profile.pos_err_default is not None:
        return ("fixed", [f"{profile.pos_err_default:g}"]), None, f" [{profile.name} profile default]"
    return error_columns(names, None, where), None, ""


def needed_columns(
    names: Sequence[str],
    *,
    user_map,
    pos_err: str | None,
    mags: Sequence[str],
    where: str,
    profile: Profile | None = None,
) -> list[str]:
    """The columns of a counterpart file the matcher reads (coordinates, errors, attributes)."""
    ra_c, dec_c = coordinate_columns(names, user_map, where, profile)
    want = [ra_c, dec_c]
    found, _, _ = _errors_of(names, pos_err, where, profile)
    if found and found[0] != "fixed":
        want += found[1]
    for m in mags:
        c = _find(names, m)
        if c is None:
            raise ColumnError(f"--mag: {where} has no column {m!r}")
        want.append(c)
    if profile is not None:  # the canonical bands' columns (HATS reads only what is asked for)
        want += [c for _, v, e in profile.band_columns(names) for c in (v, e) if c]
    return list(dict.fromkeys(want))


def gather_rows(path: str, rows: np.ndarray, chunk_rows: int | None = None) -> pa.Table:
    """All columns of the given (sorted, unique) rows of a table, streamed in chunks so only
    the wanted rows are kept in memory."""
    rows = np.asarray(rows, dtype=np.int64)
    parts = []
    offset = 0
    for chunk in tables.iter_table(path, None, chunk_rows=chunk_rows):
        n = chunk.num_rows
        a, b = np.searchsorted(rows, [offset, offset + n])
        if b > a:
            parts.append(chunk.take(tables.arrow_from_numpy(rows[a:b] - offset)))
        elif not parts and chunk.num_rows == 0:
            parts.append(chunk)
        offset += n
    if not parts:
        return chunk.slice(0, 0)
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]
