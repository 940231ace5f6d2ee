"""The crossmatch stage end to end: parse the request, read the tables (xmmtools.tables), run the
positional or Bayesian matcher, assemble and write the output with provenance.

``run`` returns notes for stderr; it never prints.  Python users can call the science
modules directly (positional.search_around / nearest, bayes.match).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
import pyarrow as pa

from xmmtools import catalogs as known
from xmmtools import stage_io, tables
from xmmtools.columns import parse_column_map
from xmmtools.crossmatch import SPEC, bayes, hats_source, priors, remote
from xmmtools.crossmatch import calibrate as calib
from xmmtools.crossmatch.catalogs import (
    LoadedCatalog,
    coordinate_columns,
    gather_rows,
    header_from_schema,
    make_catalog,
    needed_columns,
    parse_pairs,
    read_near,
)
from xmmtools.crossmatch.output import _take, assemble, band_columns, counterpart_columns, sep_column, without_replaced
from xmmtools.crossmatch.positional import CellMask, n_stripes, nearest, search_around
from xmmtools.errors import DataError
from xmmtools.tables import NewColumn, Provenance


class _CatalogOptions(TypedDict):
    """The keyword arguments of :func:`make_catalog` shared by every counterpart source."""

    user_map: dict[str, str]
    pos_err: str | None
    need_errors: bool
    area: float | None
    attributes: list[tuple[str, str, priors.Histogram | None]]
    profile: known.Profile | None


@dataclass
class Request:
    primary: str
    catalogs: list
    output: str | None = None
    primary_name: str = "PRIMARY"
    pos_errs: list = field(default_factory=list)
    radius: float = 15.0
    method: str = "auto"
    completeness: str = "0.9"
    mags: list = field(default_factory=list)
    mag_min_post: float = 0.9
    min_prob: float = 0.0
    all_rows: bool = False
    areas: list = field(default_factory=list)
    ellipse: str = "exact"
    calibrate: bool = False
    calibrate_shift: float = 60.0
    calibrate_out: str | None = None
    cache_dir: str | None = None
    overwrite: bool = False
    column_map: list = field(default_factory=list)
    chunk_size: int | None = None
    #: counterpart files with more rows are streamed, keeping only the sources near the primaries
    stream_rows: int = 20_000_000
    #: --engine/--scheduler/--workers (xmmtools.engine.Engine); None: local
    engine: Any = None
    #: primaries per partition on the Dask engine
    partition_rows: int | None = None


def _area(v: str, key: str) -> tuple[float, str | None]:
    """--area NAME=DEG2 or NAME=MOC-file: (deg^2, note or None)."""
    try:
        float(v)
    except ValueError:
        from xmmtools.crossmatch.priors import moc_area

        return moc_area(v)
    return _float(v, "--area", key), None


def _float(v: str, option: str, key: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise DataError(f"{option} {key}={v!r}: not a number") from None
    if not (np.isfinite(x) and x > 0):
        raise DataError(f"{option} {key}={v!r}: must be positive")
    return x


def parse_completeness(text: str) -> list[float]:
    try:
        vals = [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise DataError(f"--prior-completeness {text!r}: expected a number in (0, 1] or a comma list") from None
    if not vals:
        raise DataError("--prior-completeness is empty")
    return vals


def read_histogram_file(path: str, label: str) -> priors.Histogram:
    """A prior file with rows ``lo hi selected others`` ('#' comments), as NWAY writes them."""
    try:
        rows = np.loadtxt(path, comments="#", ndmin=2)
    except OSError as e:
        raise DataError(f"--mag {label}: cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise DataError(f"--mag {label}: {path} is not a table of numbers 'lo hi selected others' ({e})") from None
    return priors.histogram_from_rows(rows, f"--mag {label}: {path}")


def parse_mags(items, cats: dict) -> dict[str, list[tuple[str, str, priors.Histogram | None]]]:
    """--mag NAME:COLUMN auto|FILE -> {NAME: [(label, column, Histogram or None)]}."""
    out: dict[str, list[tuple[str, str, priors.Histogram | None]]] = {}
    for target, spec in items:
        if ":" not in target:
            raise DataError(f"--mag {target!r}: expected NAME:COLUMN (e.g. opt:MAG)")
        name, col = (x.strip() for x in target.split(":", 1))
        if name.upper() not in cats or not col:
            raise DataError(f"--mag {target!r}: {name!r} is not a --catalog name ({', '.join(cats) or 'none'})")
        label = f"{name.upper()}_{col.upper()}"
        hist = None if spec.strip().lower() == "auto" else read_histogram_file(spec, target)
        out.setdefault(name.upper(), []).append((label, col, hist))
    return out


def run(req: Request, progress: bool = False) -> list[str]:
    if req.engine is not None and req.engine.dask:
        from xmmtools import engine as engines

        with engines.session(req.engine) as client:
            return _run(req, progress, client)
    return _run(req, progress, None)


def _run(req: Request, progress: bool, client: Any) -> list[str]:
    notes: list[str] = []
    user_map = parse_column_map(req.column_map)
    cats = parse_pairs(req.catalogs, "--catalog", "gaia=gaia.parquet")
    profiles = {}
    for name, value in list(cats.items()):
        cats[name], profiles[name] = split_profile(name, value)
    pname = req.primary_name.upper()
    if pname in cats:
        raise DataError(f"--catalog name {pname} is the primary's name; choose another")
    known = set(cats) | {pname, "PRIMARY"}
    pos = parse_pairs(req.pos_errs, "--pos-err", "opt=0.1")
    areas_raw = parse_pairs(req.areas, "--area", "opt=2.0")
    for opt, d in (("--pos-err", pos), ("--area", areas_raw)):
        for k in d:
            if k not in known:
                raise DataError(
                    f"{opt} names {k}, which is neither the primary ({pname}) nor a --catalog ({', '.join(cats)})"
                )
    areas, area_notes = {}, {}
    for k, v in areas_raw.items():
        areas[k], area_notes[k] = _area(v, k)
    mags = parse_mags(req.mags, cats)
    completeness = parse_completeness(req.completeness)
    for name, src in cats.items():
        if src == tables.STDIO:
            raise DataError(f"--catalog {name}=-: only the primary can be read from stdin")
    local = {k: v for k, v in cats.items() if not remote.is_remote(v)}
    output = req.output or stage_io.default_output(req.primary, "crossmatch")
    inputs = [req.primary, *local.values()]
    cal_out = (req.calibrate_out or _calibration_name(output)) if req.calibrate else None
    tables.check_outputs({"-o": output, "--calibrate-out": cal_out}, inputs=inputs, overwrite=req.overwrite)

    tables.prefetch_sha256(inputs)  # provenance checksums, hashed while we match
    # --- primary
    pt = tables.read_table(req.primary, progress=progress)
    SPEC.check(pt.schema.names, source=req.primary, user_map=user_map, types=tables.schema_kinds(pt.schema))
    P = make_catalog(
        pname,
        pt,
        req.primary,
        header_from_schema(pt.schema),
        user_map=user_map,
        pos_err=pos.get(pname, pos.get("PRIMARY")),
        need_errors=False,
        area=areas.get(pname),
    )
    P.area_note = area_notes.get(pname) or P.area_note
    method = req.method
    if method == "auto":
        method = "bayes" if P.error_note else "nearest"
        if method == "nearest":
            notes.append(
                f"note: {req.primary} has no positional-error column; nearest-neighbour matching "
                "(give --pos-err for Bayesian probabilities)"
            )
    if method == "bayes":
        if not P.error_note:
            raise DataError(
                f"{req.primary} has no positional-error column (POSERR, RADEC_ERR, ra_error/dec_error, "
                f"a:b:phi, pos_err); give --pos-err {pname}=COLUMN or --pos-err {pname}=ARCSEC"
            )
        P.catalog.errors.validate(f"primary {req.primary}")
    if (req.all_rows or req.min_prob > 0) and method != "bayes":
        raise DataError(
            "--all and --min-prob need the Bayesian method (positional errors); "
            "--method all already writes one row per pair"
        )
    if req.min_prob > 0 and not req.all_rows:
        raise DataError("--min-prob trims the rows of --all; without --all cut on the P_ANY/P_I columns instead")
    if mags and method != "bayes":
        raise DataError("--mag needs the Bayesian method (positional errors for every catalogue)")
    if req.calibrate and method != "bayes":
        raise DataError("--calibrate needs the Bayesian method (positional errors for every catalogue)")

    # --- counterpart catalogues (only the columns the matcher needs)
    secs: list[LoadedCatalog] = []
    remote_prov = []
    near = None  # sky-cell mask of the primaries (streamed files, --mag auto's local field)
    for name, src in cats.items():
        attrs = mags.get(name, [])
        where = f"catalogue {name} ({src})"
        opts = _CatalogOptions(
            user_map=user_map,
            pos_err=pos.get(name),
            need_errors=method == "bayes",
            area=areas.get(name),
            attributes=attrs,
            profile=profiles[name],
        )

        def need(names, name=name, attrs=attrs, where=where):
            return needed_columns(
                names,
                user_map=user_map,
                pos_err=pos.get(name),
                mags=[c for _, c, _ in attrs],
                where=where,
                profile=profiles[name],
            )

        if remote.is_remote(src):
            t, header, rec = remote.fetch(src, P.catalog.ra, P.catalog.dec, req.radius, cache_dir=req.cache_dir)
            remote_prov.append(rec)
            notes.append(
                f"note: {name}: {rec['rows']} rows from {rec['service']} {rec['table']}"
                + (" (cache)" if rec.get("cached") else "")
            )
            lc = make_catalog(name, t, src, header, **opts)
            lc.area_note = f"{lc.catalog.area_deg2:.4g} deg2 (union of the search cones)"
        elif hats_source.is_hats(src):
            if client is not None:
                from xmmtools.crossmatch import dask_engine

                got = dask_engine.load_near_hats(
                    src,
                    *_near_positions(req, P),
                    req.radius,
                    need,
                    where=where,
                    partition_rows=req.partition_rows or dask_engine.PRIMARY_PARTITION_ROWS,
                )
            else:
                got = hats_source.load_near(
                    src, *_near_positions(req, P), req.radius, need, where=where, progress=progress
                )
            if not got.table.num_rows:
                raise _no_overlap(name, src, req.radius, req.primary)
            if opts["area"] is None and got.area_deg2 is None:
                raise DataError(
                    f"{where}: the HATS catalogue has no skymap or MOC for its sky area; give --area {name}=DEG2"
                )
            opts["area"] = opts["area"] if opts["area"] is not None else got.area_deg2
            lc = make_catalog(name, got.table, src, {}, total_rows=got.total_rows, **opts)
            lc.area_note = got.area_note
            notes.append(
                f"note: {name}: {got.table.num_rows} of the {got.total_rows} rows of the HATS catalogue "
                "lie in the primaries' neighbourhood (read with LSDB)"
            )
        else:
            info = tables.inspect_table(src)
            cols = need(info.schema.names)
            header = info.header or header_from_schema(info.schema)
            if client is not None:
                from xmmtools.crossmatch import dask_engine

                ra_c, dec_c = coordinate_columns(info.schema.names, user_map, where, profiles[name])
                fn = dask_engine.load_near_file(
                    src,
                    cols,
                    ra_c,
                    dec_c,
                    *_near_positions(req, P),
                    req.radius,
                    progress=progress,
                    partition_rows=req.partition_rows or dask_engine.PRIMARY_PARTITION_ROWS,
                )
                if not len(fn.rows):
                    raise _no_overlap(name, src, req.radius, req.primary)
                notes.append(
                    f"note: {name}: {fn.total_rows} rows partitioned on Dask; the {len(fn.rows)} within "
                    f"{req.radius:g} arcsec of a primary are matched"
                )
                lc = make_catalog(
                    name, fn.table, src, header, total_rows=fn.total_rows, footprint_sample=fn.sample, **opts
                )
                lc.rows = fn.rows
            elif info.num_rows is not None and info.num_rows > req.stream_rows:
                near = near or _near_mask(req, P)
                ra_c, dec_c = coordinate_columns(info.schema.names, user_map, where, profiles[name])
                t, file_rows, total, sample = read_near(src, cols, ra_c, dec_c, near, where=where, progress=progress)
                if not len(file_rows):
                    raise _no_overlap(name, src, req.radius, req.primary)
                notes.append(
                    f"note: {name}: {total} rows streamed; the {len(file_rows)} that can lie within "
                    f"{req.radius:g} arcsec of a primary are matched"
                )
                lc = make_catalog(name, t, src, header, total_rows=total, footprint_sample=sample, **opts)
                lc.rows = file_rows
            else:
                lc = make_catalog(name, tables.read_table(src, cols, progress=progress), src, header, **opts)
        if area_notes.get(name) or name in areas:
            lc.area_note = area_notes.get(name) or f"{areas[name]:g} deg2 (--area)"
        if attrs and not remote.is_remote(src):  # the local field for --mag auto (see priors)
            near = near or _near_mask(req, P)
            lc.catalog.field_rows = near(lc.catalog.ra, lc.catalog.dec)
        if method == "bayes" and not lc.error_note:
            raise DataError(
                f"catalogue {name} ({src}) has no positional-error column; give --pos-err {name}=COLUMN "
                f"or --pos-err {name}=ARCSEC (NWAY-style fixed error)"
            )
        lc.profile = profiles[name]
        secs.append(lc)

    bar, tick = _progress_bar(progress, P.catalog.n, len(secs), req.chunk_size)
    try:
        if method == "bayes":
            out, extra, more = _run_bayes(req, pt, P, secs, completeness, tick)
        else:
            out, extra, more = _run_positional(req, method, pt, P, secs, tick)
    finally:
        if bar is not None:
            bar.close()
    notes += more
    result = extra.pop("_result", None)
    cat_prov = {
        lc.catalog.name: {
            "source": lc.source,
            "rows": lc.catalog.n_total or lc.catalog.n,
            "rows_matched": lc.catalog.n,
            "area_deg2": lc.catalog.area_deg2,
            "area": lc.area_note,
            "errors": lc.error_note,
            "density_full_sky": lc.catalog.density(),
        }
        for lc in [P, *secs]
    }
    extra.update({"catalogues": cat_prov, "remote": remote_prov})
    if client is not None:
        extra["engine"] = req.engine.describe()
    canon = {
        lc.catalog.name: {
            "profile": lc.profile.name,
            "file": lc.profile.path.rsplit("/", 1)[-1],
            "bands": {b: v for b, v, _ in lc.profile.band_columns(_names_of(lc))},
        }
        for lc in secs
        if lc.profile is not None
    }
    if canon:
        extra["known_catalogues"] = canon
    params = {
        "catalogs": cats,
        "method": method,
        "radius_arcsec": req.radius,
        "pos_err": pos or None,
        "prior_completeness": completeness,
        "mag": [list(m) for m in req.mags] or None,
        "mag_min_post": req.mag_min_post,
        "min_prob": req.min_prob,
        "all": req.all_rows,
        "area": areas or None,
        "ellipse": req.ellipse,
        "columns": user_map or None,
    }
    stage_io.write_output(
        out,
        output,
        stage="crossmatch",
        parameters=params,
        inputs=inputs,
        overwrite=req.overwrite,
        extra_provenance={"crossmatch": extra},
    )
    for lc in [P, *secs]:
        notes.append(
            f"note: {lc.catalog.name}: {lc.catalog.n_total or lc.catalog.n} rows, area {lc.area_note}"
            + (f"; errors {lc.error_note}" if lc.error_note else "")
        )
    if output != tables.STDIO:
        notes.append(f"wrote {out.num_rows} rows x {out.num_columns} columns to {output}")
    if req.calibrate:
        notes += _run_calibration(req, P, secs, result, completeness, cal_out, inputs)
    return notes


def _near_positions(req: Request, P: LoadedCatalog) -> tuple[np.ndarray, np.ndarray]:
    """Positions whose neighbourhood a streamed or HATS counterpart catalogue must cover: the
    primaries, and the shifted fakes of --calibrate."""
    ra, dec = P.catalog.ra, P.catalog.dec
    if req.calibrate:
        fake, _ = calib.shifted_primary(P.catalog, req.calibrate_shift, req.radius)
        ra, dec = np.concatenate([ra, fake.ra]), np.concatenate([dec, fake.dec])
    return ra, dec


def _near_mask(req: Request, P: LoadedCatalog) -> CellMask:
    """Cells within the radius of the primaries (and of the shifted fakes of --calibrate)."""
    return CellMask(*_near_positions(req, P), req.radius)


def _calibration_name(output: str) -> str:
    if output == tables.STDIO:
        raise DataError("--calibrate with -o -: give --calibrate-out FILE for the calibration table")
    return _stem(output) + "_calibration.csv"


def _stem(path: str) -> str:
    low = path.lower()
    for ext in sorted(tables.EXTENSIONS, key=len, reverse=True):
        if low.endswith(ext):
            return path[: -len(ext)]
    return path


def _progress_bar(enabled: bool, n1: int, k: int, chunk: int | None):
    if not enabled:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=n_stripes(n1, chunk) * k, desc="crossmatch sky stripes", unit="stripe", leave=False)
    return bar, bar.update


def _no_overlap(name: str, src: str, radius: float, primary: str) -> DataError:
    return DataError(
        f"no source of catalogue {name} ({src}) lies within {radius:g} arcsec of any source of "
        f"{primary}: the footprints do not overlap (or the coordinates/radius are wrong)"
    )


def _gathered(lc: LoadedCatalog, members: np.ndarray, chunk: int | None):
    """All columns of the counterparts ``members`` (catalogue rows, -1 none): (table of the
    sorted unique file rows, those rows, ``members`` as file rows)."""
    members = lc.file_rows(members)
    rows = np.sort(members[members >= 0])
    rows = rows[np.r_[True, rows[1:] != rows[:-1]]] if len(rows) else rows
    if remote.is_remote(lc.source) or hats_source.is_hats(lc.source):  # the table holds every column read
        return lc.table.take(tables.arrow_from_numpy(rows)), rows, members
    return gather_rows(lc.source, rows, chunk), rows, members


def split_profile(name: str, value: str) -> tuple[str, known.Profile | None]:
    """``--catalog NAME=FILE[:PROFILE]`` -> (FILE, profile): an explicit known-catalogue label,
    else the profile called NAME, else None.  ``NAME=vizier:`` (or ``xmatch:``) with a known
    catalogue fetches the profile's VizieR table."""
    src, prof = value, None
    if ":" in value:
        head, tail = value.rsplit(":", 1)
        if head and tail and known.profile(tail) is not None:
            src, prof = head, known.profile(tail)
    prof = prof or known.profile(name)
    if src.lower().rstrip(":") in remote.SERVICES and prof is not None:  # else remote.parse says what is wrong
        if not prof.vizier:
            raise DataError(
                f"--catalog {name}={value}: known catalogue {prof.name} has no VizieR table; "
                f"give a file or {src.rstrip(':')}:TABLE"
            )
        src = f"{src.rstrip(':').lower()}:{prof.vizier}"
    return src, prof


def _names_of(lc: LoadedCatalog) -> list[str]:
    """Columns read from a counterpart catalogue (they include its canonical bands' columns)."""
    return lc.table.schema.names if lc.table is not None else []


def _counterpart(lc: LoadedCatalog, g: pa.Table, rows: np.ndarray, members: np.ndarray, more: list) -> list:
    """A counterpart's prefixed raw columns, ``more`` (separation, probability), then its
    canonical band columns when the catalogue is a known one."""
    raw = counterpart_columns(lc.catalog.name, g, rows, members)
    if lc.profile is None:
        return raw + more
    canon = band_columns(lc.profile, lc.catalog.name, g, rows, members)
    return without_replaced(raw, canon) + more + canon


def _run_positional(req: Request, method: str, pt, P: LoadedCatalog, secs, tick):
    notes = []
    if method == "all":
        if len(secs) != 1:
            raise DataError("--method all pairs one counterpart catalogue at a time; give one --catalog")
        lc = secs[0]
        pairs = search_around(
            P.catalog.ra, P.catalog.dec, lc.catalog.ra, lc.catalog.dec, req.radius, chunk=req.chunk_size, progress=tick
        )
        if not len(pairs):
            raise _no_overlap(lc.catalog.name, lc.source, req.radius, req.primary)
        g, rows, m = _gathered(lc, pairs.idx2, req.chunk_size)
        base = _take(pt, pairs.idx1)
        new = _counterpart(lc, g, rows, m, [sep_column(lc.catalog.name, pairs.sep)])
        notes.append(
            f"note: {len(pairs)} pairs within {req.radius:g} arcsec "
            f"({len(np.unique(pairs.idx1))} of {P.catalog.n} primaries have one)"
        )
        return assemble(base, new), {}, notes
    new = []
    for lc in secs:
        idx, sep = nearest(
            P.catalog.ra, P.catalog.dec, lc.catalog.ra, lc.catalog.dec, req.radius, chunk=req.chunk_size, progress=tick
        )
        if not (idx >= 0).any():
            raise _no_overlap(lc.catalog.name, lc.source, req.radius, req.primary)
        g, rows, m = _gathered(lc, idx, req.chunk_size)
        new += _counterpart(lc, g, rows, m, [sep_column(lc.catalog.name, sep)])
        notes.append(
            f"note: {lc.catalog.name}: {int((idx >= 0).sum())} of {P.catalog.n} primaries have a "
            f"neighbour within {req.radius:g} arcsec"
        )
    return assemble(pt, new), {}, notes


def _run_bayes(req: Request, pt, P: LoadedCatalog, secs, completeness, tick):
    res = bayes.match(
        P.catalog,
        [lc.catalog for lc in secs],
        req.radius,
        completeness=completeness,
        ellipse=req.ellipse,
        mag_min_post=req.mag_min_post,
        chunk=req.chunk_size,
        progress=tick,
    )
    comb = res.comb
    for k, lc in enumerate(secs):
        if not (comb.members[:, k] >= 0).any():
            raise _no_overlap(lc.catalog.name, lc.source, req.radius, req.primary)
    hists = {
        label: {"lo_hi_selected_others": h.rows().tolist(), "secure": h.n_secure, "field": h.n_field}
        for label, h in res.histograms.items()
    }
    extra = {"histograms": hists, "_result": res}
    notes = [
        f"note: {len(comb) - len(comb.start)} candidate combinations for {P.catalog.n} primaries; "
        f"{int((res.p_any > 0.5).sum())} have P_ANY > 0.5, {int((res.p_any > 0.9).sum())} > 0.9"
    ]
    for label, h in res.histograms.items():
        if h.n_secure:
            notes.append(
                f"note: --mag {label} auto: {h.n_secure} secure counterparts, {h.n_field} field sources, "
                f"{len(h.selected)} bins"
            )
    out = _all_rows_table(req, pt, secs, res) if req.all_rows else _best_table(req, pt, secs, res)
    return out, extra, notes


def _all_rows_table(req, pt, secs, res):
    comb = res.comb
    keep = np.ones(len(comb), dtype=bool)
    if req.min_prob > 0:
        keep = ~(res.p_i < req.min_prob)
    base = _take(pt, comb.primary[keep])
    new: list[NewColumn] = []
    for k, lc in enumerate(secs):
        g, rows, m = _gathered(lc, comb.members[keep, k], req.chunk_size)
        new += _counterpart(lc, g, rows, m, [sep_column(lc.catalog.name, comb.sep[keep, k])])
    new += [
        NewColumn(
            "NCAT", comb.ncat[keep].astype(np.int16), "", "number of catalogues in this combination (primary included)"
        ),
        NewColumn("DIST_BAYESFACTOR", res.log_bf[keep], "", "log10 positional Bayes factor (Budavari & Szalay 2008)"),
        NewColumn("DIST_POST", res.dist_post[keep], "", "positional posterior of this association alone"),
        NewColumn("P_SINGLE", res.p_single[keep], "", "posterior of this association alone incl. attribute priors"),
        NewColumn("P_ANY", res.p_any_row[keep], "", "probability that the primary source has any counterpart"),
        NewColumn("P_I", res.p_i[keep], "", "probability that this combination is the right one, given there is one"),
        NewColumn(
            "MATCH_FLAG", res.match_flag[keep], "", "1: most probable combination; 2: p_i > 0.5 x best; 0: other"
        ),
    ]
    for label, lb in res.log_bias.items():
        new.append(NewColumn(f"BIAS_{label}", 10.0 ** lb[keep], "", f"attribute prior factor q(m)/n(m) for {label}"))
    return assemble(base, new)


def _best_table(req, pt, secs, res):
    comb = res.comb
    n = len(comb)
    start = comb.start
    sizes = np.diff(np.r_[start, n])
    block = np.repeat(np.arange(len(start)), sizes) if len(secs) > 1 else None
    # the first row with match_flag 1 per block (the "none" row if there is no candidate)
    flag1 = np.where(res.match_flag == 1, np.arange(n), n)
    best = np.minimum.reduceat(flag1, start)
    best = np.where(best == n, start, best)
    p_i = res.p_i[best]
    new: list[NewColumn] = []
    for k, lc in enumerate(secs):
        name = lc.catalog.name
        m_all = comb.members[:, k]
        # marginal probability of the best row's counterpart in this catalogue
        if len(secs) == 1:  # each combination holds one counterpart: the marginal is p_i
            marg = res.p_i
        else:
            key = block * (lc.catalog.n + 1) + (m_all + 1)
            uniq, inv = np.unique(key, return_inverse=True)
            marg = np.bincount(inv, weights=res.p_i, minlength=len(uniq))[inv]
        m = m_all[best]
        g, rows, m_file = _gathered(lc, m, req.chunk_size)
        new += _counterpart(
            lc,
            g,
            rows,
            m_file,
            [
                sep_column(name, comb.sep[best, k]),
                NewColumn(
                    f"{name}_P_I",
                    np.where(m >= 0, marg[best], 0.0),
                    "",
                    f"probability that this {name} source is the counterpart, given there is one "
                    "(summed over combinations with it)",
                ),
            ],
        )
    new += [
        NewColumn("P_ANY", res.p_any, "", "probability that the primary source has any counterpart"),
        NewColumn("P_I", p_i, "", "probability of the best combination of counterparts, given there is one"),
        NewColumn("N_CANDIDATES", (sizes - 1).astype(np.int32), "", "candidate combinations within the radius"),
    ]
    return assemble(pt, new)


def _run_calibration(req, P, secs, res, completeness, out_path, inputs) -> list[str]:
    fake, _ = calib.shifted_primary(P.catalog, req.calibrate_shift, req.radius)
    fixed = [calib.with_fixed_histograms(lc.catalog, res) for lc in secs]
    r2 = bayes.match(
        fake,
        fixed,
        req.radius,
        completeness=completeness,
        ellipse=req.ellipse,
        mag_min_post=req.mag_min_post,
        chunk=req.chunk_size,
    )
    cols = calib.false_positive_curve(res.p_any, r2.p_any)
    fields, arrays = zip(*(c.to_field_array(len(cols[0].values)) for c in cols), strict=True)
    table = pa.Table.from_arrays(list(arrays), schema=pa.schema(list(fields)))
    tables.write_table(
        table,
        out_path,
        overwrite=req.overwrite,
        inputs=inputs,
        provenance=Provenance(
            "crossmatch-calibrate",
            {"shift_arcsec": req.calibrate_shift, "radius_arcsec": req.radius, "fake_primaries": fake.n},
            inputs,
        ),
    )
    cuts = cols[0].values
    fpr = cols[1].values
    parts = []
    for rate in (0.10, 0.05, 0.01):
        c = calib.cut_for_rate(cuts, fpr, rate)
        parts.append(f"FPR {rate:.0%}: P_ANY > {c:.2f}" if c is not None else f"FPR {rate:.0%}: not reached")
    return [
        f"calibration ({fake.n} primaries shifted by {req.calibrate_shift:g} arcsec): "
        + "; ".join(parts)
        + f"; table in {out_path}"
    ]
