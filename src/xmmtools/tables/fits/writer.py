"""Writing FITS binary tables (FITS 4.0 sect. 7.3) without astropy: column formats, TNULL
values the data do not use, the header (kept keywords and provenance), then the rows.

FITS needs the row count and string widths in its header before the rows: the first chunk is
held in memory; from a second one on the chunks are spooled to an anonymous Arrow file, and the
FITS is written in one pass at close (a whole table given at once never touches the spool).
"""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmmtools.errors import OutputError
from xmmtools.tables.atomic import TempFile, close_quietly
from xmmtools.tables.fits import header as fh
from xmmtools.tables.formats import is_gzip
from xmmtools.tables.interop import drop_astropy_block, fits_comment_lines, ucd_of
from xmmtools.tables.model import HEADER_KEY, description_of, null_mask, raw_values, unit_of
from xmmtools.tables.provenance import provenance_of


class FitsWriter:
    """A FITS file with one binary table (gzip-compressed for ``.gz``/``.ftz``)."""

    def __init__(
        self, path: str, schema: pa.Schema, tmp: TempFile | None, stdout: BinaryIO | None, row_group_rows: int
    ) -> None:
        assert tmp is not None
        self.path = path
        self.schema = schema
        self.rows = 0
        self._tmp = tmp
        for f in schema:  # fail before any work for types and names FITS cannot hold
            fits_out_col(f, 1, path)
            try:
                fh.single_card("TTYPE999", f.name)
            except ValueError:
                raise OutputError(
                    f"{path}: column name {f.name!r} cannot be written to FITS (one "
                    "80-character card: at most 68 printable ASCII characters); rename it "
                    "or write .parquet"
                ) from None
        self._widths: dict[str, Any] = {}
        self._held: pa.Table | None = None
        self._spool: TempFile | None = None
        self._sink: Any = None
        self._writer: Any = None

    def write(self, chunk: pa.Table) -> None:
        update_widths(self._widths, chunk)
        if self._writer is None and self._held is None:
            self._held = chunk
        else:
            if self._writer is None:  # a second chunk: spool from now on
                self._spool = TempFile(self.path)
                self._sink = self._spool.arrow_sink()
                self._writer = pa.ipc.new_file(self._sink, self.schema)
                self._writer.write_table(self._held)
                self._held = None
            self._writer.write_table(chunk)
        self.rows += chunk.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._sink is not None:
            self._sink.close()
        batches: Iterator[pa.RecordBatch]
        if self._spool is not None:
            rd = pa.ipc.open_file(pa.OSFile(self._spool.read_path, "r"))
            batches = (rd.get_batch(i) for i in range(rd.num_record_batches))
        else:
            batches = iter(self._held.to_batches() if self._held is not None else [])
        write_fits(batches, self._tmp, self.schema, self._widths, gz=is_gzip(self.path), nrows=self.rows)
        self._held = None
        if self._spool is not None:
            self._spool.discard()
            self._spool = None

    def abort(self) -> None:
        close_quietly(self._writer, self._sink)
        if self._spool is not None:
            self._spool.discard()
        self._spool = None


def update_widths(widths: dict[str, Any], t: pa.Table) -> None:
    """Running facts FITS needs before its header: string widths, and for integer columns
    (null count, min, max) to choose a TNULL the data do not use."""
    stats = widths.setdefault("\0int", {})
    for f in t.schema:
        typ = f.type.value_type if pa.types.is_fixed_size_list(f.type) else f.type
        if pa.types.is_integer(typ):
            col = t.column(f.name)
            if pa.types.is_fixed_size_list(f.type):
                col = pa.chunked_array([c.flatten() for c in col.chunks], type=typ) if col.num_chunks else col
                nulls = sum(c.null_count for c in t.column(f.name).chunks) + col.null_count
            else:
                nulls = col.null_count
            mm = pc.min_max(col).as_py() if len(col) else {"min": None, "max": None}
            old = stats.get(f.name, (0, None, None, None))
            lo = mm["min"] if old[1] is None else (old[1] if mm["min"] is None else min(old[1], mm["min"]))
            hi = mm["max"] if old[2] is None else (old[2] if mm["max"] is None else max(old[2], mm["max"]))
            used = old[3]
            bw = typ.bit_width
            lo_v = -(1 << (bw - 1)) if pa.types.is_signed_integer(typ) else 0

            if bw <= 16:  # small types: remember every value used (a 64 KiB bitmap at most)
                if used is None:
                    used = np.zeros(1 << bw, dtype=bool)
                used[_valid_values(col, typ).astype(np.int64) - lo_v] = True
            else:  # wide types: remember which of a few candidate TNULLs near the ends are used
                hi_v = (1 << (bw - 1)) - 1 if lo_v else (1 << bw) - 1
                cands = [c for k in range(8) for c in (lo_v + k, hi_v - k)]
                if used is None:
                    used = {c: False for c in cands}
                # only values within 8 of either end can be candidates: skip the search otherwise
                if len(col) and mm["min"] is not None and (mm["min"] <= lo_v + 7 or mm["max"] >= hi_v - 7):
                    v = _valid_values(col, typ)
                    hit = np.isin(np.asarray(cands, dtype=v.dtype), v)
                    for c, h in zip(cands, hit, strict=True):
                        used[c] = used[c] or bool(h)
            stats[f.name] = (old[0] + nulls, lo, hi, used)
            continue
        if pa.types.is_boolean(f.type) and t.column(f.name).null_count:
            widths.setdefault("\0boolnull", set()).add(f.name)  # written as bytes with TNULL
            continue
        if pa.types.is_dictionary(f.type) and (
            pa.types.is_string(f.type.value_type) or pa.types.is_large_string(f.type.value_type)
        ):
            col = t.column(f.name)  # dictionary-encoded strings: the width of the decoded values
            col = pc.cast(col, f.type.value_type) if len(col) else col
            w = (pc.max(pc.binary_length(col)).as_py() or 0) if len(col) else 0
            widths[f.name] = max(widths.get(f.name, 1), w, 1)
            continue
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_binary(f.type):
            col = t.column(f.name)
            if len(col) == 0:
                w = 0
            else:
                lens = pc.binary_length(col)
                w = pc.max(lens).as_py() or 0
            widths[f.name] = max(widths.get(f.name, 1), w, 1)


def _valid_values(col: pa.ChunkedArray | pa.Array, typ: pa.DataType) -> np.ndarray:
    """The non-null values of an integer column, as one numpy array."""
    parts = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    vals = [raw_values(c)[~null_mask(c)] if c.null_count else raw_values(c) for c in parts]
    return np.concatenate(vals) if vals else np.zeros(0, dtype=typ.to_pandas_dtype())


@dataclass
class _OutCol:
    name: str
    tform: str
    np_dtype: np.dtype
    convert: Callable[[pa.Array], np.ndarray]
    unit: str = ""
    description: str = ""
    tnull: int | None = None
    tzero: int | None = None
    tdim: str | None = None
    tdisp: str | None = None


#: null booleans: FITS logicals have an undefined value (a zero byte, FITS 4.0 sect. 7.3.3.1),
#: but astropy reads it back as False.  A boolean column with nulls is written instead as
#: unsigned bytes 1/0 with TNULLn = 255 and TDISPn = 'L1' (astropy: a masked 0/1 column; TOPCAT:
#: blank cells; xmmtools reads it back as booleans with nulls).
BOOL_NULL = 255


def fits_out_col(
    f: pa.Field,
    width: int | None,
    where: str,
    stats: dict[str, tuple[int, int | None, int | None, Any]] | None = None,
    nullable_bools: set[str] | None = None,
) -> _OutCol:
    t = f.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    unit, desc = unit_of(f), description_of(f)
    tdim = (f.metadata or {}).get(b"fits.tdim", b"").decode() or None
    repeat = 1
    base = t
    is_list = pa.types.is_fixed_size_list(t)
    if is_list:
        repeat = t.list_size
        base = t.value_type
        if repeat == 1 and not tdim:
            tdim = "(1)"  # otherwise a length-1 vector would read back as a scalar
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        raise OutputError(
            f"{where}: column {f.name} has variable-length lists, which FITS tables here "
            "cannot hold; use .parquet or .arrow"
        )

    def values(a: pa.Array) -> pa.Array:
        if pa.types.is_dictionary(a.type):
            a = a.dictionary_decode()
        if is_list:
            a = pc.list_flatten(a) if a.null_count == 0 else _fill_list_nulls(a, repeat)
        return a

    if pa.types.is_string(base) or pa.types.is_large_string(base) or pa.types.is_binary(base):
        if repeat != 1:
            raise OutputError(f"{where}: column {f.name} is a list of strings, which FITS cannot hold")
        w = max(int(width or 1), 1)
        dt = np.dtype(f"S{w}")

        def conv_text(a: pa.Array, dt: np.dtype[Any] = dt) -> np.ndarray:
            a = values(a)
            # FITS strings are bytes: UTF-8 text is stored as its bytes and decoded on reading
            a = pc.fill_null(a.cast(pa.binary()), b"")
            return np.array(a.to_pylist(), dtype=dt) if len(a) else np.zeros(0, dt)

        return _OutCol(f.name, f"{w}A", dt, conv_text, unit, desc)
    if pa.types.is_boolean(base) and not is_list and f.name in (nullable_bools or ()):

        def conv_bool_bytes(a: pa.Array) -> np.ndarray:
            a = values(a)
            out = raw_values(a).astype(np.uint8)
            if a.null_count:
                out[null_mask(a)] = BOOL_NULL
            return out

        return _OutCol(f.name, "B", np.dtype("u1"), conv_bool_bytes, unit, desc, tnull=BOOL_NULL, tdisp="L1")
    if pa.types.is_boolean(base):
        dt = np.dtype("u1") if not is_list else np.dtype(("u1", (repeat,)))

        def conv_bool(a: pa.Array) -> np.ndarray:
            a = values(a)
            out = np.where(raw_values(a), ord("T"), ord("F")).astype(np.uint8)
            if a.null_count:
                out[null_mask(a)] = 0
            return out.reshape(-1, repeat) if is_list else out

        return _OutCol(f.name, f"{repeat}L" if is_list else "L", dt, conv_bool, unit, desc, tdim=tdim)
    if pa.types.is_floating(base):
        code, npt = ("D", ">f8") if pa.types.is_float64(base) else ("E", ">f4")
        dt = np.dtype(npt) if not is_list else np.dtype((npt, (repeat,)))

        def conv_float(a: pa.Array, npt: str = npt) -> np.ndarray:
            a = values(a)
            v = raw_values(a).astype(npt)
            if a.null_count:
                v[null_mask(a)] = np.nan
            return v.reshape(-1, repeat) if is_list else v

        return _OutCol(f.name, f"{repeat if is_list else ''}{code}", dt, conv_float, unit, desc, tdim=tdim)
    if pa.types.is_integer(base):
        bw = base.bit_width
        signed = pa.types.is_signed_integer(base)
        code = {8: "B", 16: "I", 32: "J", 64: "K"}[bw]
        npt = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8"}[bw]
        tzero = None
        if bw == 8 and signed:
            tzero = -128
        elif bw > 8 and not signed:
            tzero = 1 << (bw - 1)
        # TNULL only when the column has nulls, and never a value the data use: the most
        # negative value first (4XMM's -32768 / -2147483648 convention), else the largest.
        st = (stats or {}).get(f.name)
        tnull = tnull_raw = None
        if st is not None and st[0] > 0:
            lo_v = -(1 << (bw - 1)) if signed else 0
            hi_v = (1 << (bw - 1)) - 1 if signed else (1 << bw) - 1
            dmin, dmax, used = st[1], st[2], st[3]
            free = None
            if isinstance(used, dict):
                free = next((c for c, u in used.items() if not u), None)
            elif used is not None and not used.all():
                free = int(np.flatnonzero(~used)[0]) + lo_v
            if dmin is None or dmin > lo_v:
                null_v = lo_v
            elif dmax < hi_v:
                null_v = hi_v
            elif free is not None:
                null_v = free
            else:
                raise OutputError(
                    f"{where}: integer column {f.name} uses every value from {lo_v} to "
                    f"{hi_v} and has nulls; FITS has no free TNULL value for it"
                )
            if bw == 8 and signed:
                tnull_raw = null_v + 128
            elif bw > 8 and not signed:
                tnull_raw = null_v - (1 << (bw - 1))
            else:
                tnull_raw = null_v
            tnull = tnull_raw
        dt = np.dtype(npt) if not is_list else np.dtype((npt, (repeat,)))

        def conv_int(
            a: pa.Array, npt: str = npt, bw: int = bw, signed: bool = signed, tnull_raw: int | None = tnull_raw
        ) -> np.ndarray:
            a = values(a)
            mask = null_mask(a) if a.null_count else None
            v = raw_values(a)  # values under nulls are arbitrary: TNULL replaces them below
            if bw == 8 and signed:
                raw = (v.astype(np.int16) + 128).astype(np.uint8)
            elif bw > 8 and not signed:
                raw = (v ^ np.array(1 << (bw - 1), dtype=v.dtype)).view(np.dtype(f"i{bw // 8}"))
            else:
                raw = v
            raw = raw.astype(npt)
            if mask is not None:
                if tnull_raw is None:
                    raise AssertionError("nulls found in a column planned without TNULL")  # pragma: no cover
                raw[mask] = tnull_raw
            return raw.reshape(-1, repeat) if is_list else raw

        return _OutCol(
            f.name, f"{repeat if is_list else ''}{code}", dt, conv_int, unit, desc, tnull=tnull, tzero=tzero, tdim=tdim
        )
    if pa.types.is_null(base):
        return _OutCol(f.name, "D", np.dtype(">f8"), lambda a: np.full(len(a), np.nan, dtype=">f8"), unit, desc)
    raise OutputError(
        f"{where}: column {f.name} has type {t}, which FITS cannot hold; "
        "convert it (e.g. dates to MJD) or write .parquet"
    )


def _fill_list_nulls(a: pa.FixedSizeListArray, repeat: int) -> pa.Array:
    """Flatten a fixed-size list column whose rows may be null (null row -> NaN/zero values)."""
    vals = a.flatten()  # skips null rows
    valid = pc.is_valid(a).to_numpy(zero_copy_only=False)
    if pa.types.is_floating(vals.type) or pa.types.is_integer(vals.type):
        fill = np.nan if pa.types.is_floating(vals.type) else 0
        out = np.full((len(a), repeat), fill, dtype=vals.type.to_pandas_dtype())
        out[valid] = pc.fill_null(vals, fill).to_numpy(zero_copy_only=False).reshape(-1, repeat)
        return pa.array(out.ravel())
    out = np.zeros((len(a), repeat), dtype=bool)
    out[valid] = pc.fill_null(vals, False).to_numpy(zero_copy_only=False).reshape(-1, repeat)
    return pa.array(out.ravel())


def _fits_headers(schema: pa.Schema, outcols: list[_OutCol], nrows: int, where: str) -> tuple[bytes, bytes]:
    """The empty primary header and the binary-table header (FITS 4.0 sect. 7.3), as bytes."""
    cards: list[tuple[str, Any, str]] = [
        ("XTENSION", "BINTABLE", "binary table extension"),
        ("BITPIX", 8, "array data type"),
        ("NAXIS", 2, "number of array dimensions"),
        ("NAXIS1", sum(c.np_dtype.itemsize for c in outcols), "length of dimension 1"),
        ("NAXIS2", nrows, "length of dimension 2"),
        ("PCOUNT", 0, "number of group parameters"),
        ("GCOUNT", 1, "number of groups"),
        ("TFIELDS", len(outcols), "number of table fields"),
    ]
    for k, c in enumerate(outcols, start=1):
        cards += [(f"TTYPE{k}", c.name, ""), (f"TFORM{k}", c.tform, "")]
        cards += [(f"TUNIT{k}", c.unit, "")] if c.unit else []
        cards += [(f"TNULL{k}", int(c.tnull), "")] if c.tnull is not None else []
        cards += [(f"TZERO{k}", c.tzero, "")] if c.tzero is not None else []
        cards += [(f"TDIM{k}", c.tdim, "")] if c.tdim else []
        cards += [(f"TDISP{k}", c.tdisp, "")] if c.tdisp else []
    images = []
    for key, val, comment in cards:  # structure: one card each, or the file is not FITS
        try:
            images.append(fh.single_card(key, val, comment))
        except ValueError:
            what = "column name" if key.startswith("TTYPE") else key.rstrip("0123456789")
            raise OutputError(
                f"{where}: {what} {val!r} cannot be written to FITS (one 80-character card: "
                "at most 68 printable ASCII characters); rename it or write .parquet"
            ) from None
    descriptions = [(f"TCOMM{k}", c.description, "") for k, c in enumerate(outcols, start=1) if c.description]
    # TUCDn: the IVOA UCD1+ of the column (TOPCAT, VO tools)
    descriptions += [(f"TUCD{k}", u, "") for k, f in enumerate(schema, start=1) if (u := ucd_of(f))]
    images += [im for im in (_card_or_none(*c) for c in descriptions) if im is not None]
    cards += descriptions
    seen = {c[0] for c in cards}
    meta = schema.metadata or {}
    kept = []
    if HEADER_KEY in meta:
        with contextlib.suppress(ValueError):
            kept = json.loads(meta[HEADER_KEY])
    prov = provenance_of(schema)
    ours = {"XMMTVER", "XMMTSTG"} if prov else set()  # rewritten below for this step
    # astropy's column header (descriptions, UCDs): written afresh below, never copied
    kept = drop_astropy_block(kept)
    for raw_key, val, comment in kept:  # the input's other keywords; ones FITS cannot hold are dropped
        key = str(raw_key).upper()
        if (
            fh.STRUCTURAL.match(key)
            or key in ours
            or (key not in ("HISTORY", "COMMENT") and (key in seen or val is None))
        ):
            continue
        image = _card_or_none(key, val, str(comment or ""))
        if image is not None:
            images.append(image)
            seen.add(key)
    if prov:
        last = prov[-1]
        extra = [
            ("XMMTPROV", json.dumps(prov, separators=(",", ":")), "xmmtools provenance (JSON)"),
            ("XMMTVER", str(last.get("xmmtools", "")), "xmmtools version of the last step"),
            ("XMMTSTG", str(last.get("stage", "")), "xmmtools stage of the last step"),
        ]
        hist = [f"xmmtools {last.get('xmmtools')} {last.get('stage')} {last.get('date')}"]
        for i in last.get("inputs", []):
            hist.append(f"input {i['name']}")
            if i.get("sha256"):
                hist.append(f"sha256 {i['sha256']}")
        if last.get("parameters"):
            hist.append("parameters: " + json.dumps(last["parameters"], separators=(",", ":")))
        for card in extra + [("HISTORY", h, "") for h in hist]:
            image = _card_or_none(*card)
            if image is not None:
                images.append(image)
    # what astropy's Table.read restores: descriptions and UCDs (FITS keeps units in TUNITn)
    images += [fh.format_card("COMMENT", line, "") for line in fits_comment_lines(schema)]
    body = "".join(images) + "END".ljust(80)
    body += " " * (-len(body) % 2880)
    return fh.primary_header(), body.encode("ascii")


def _card_or_none(key: str, value: Any, comment: str) -> str | None:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    try:
        return fh.format_card(key, value, comment)
    except ValueError:
        return None


def write_fits(
    batches: Iterable[pa.RecordBatch], dest: TempFile, schema: pa.Schema, widths: dict[str, Any], gz: bool, nrows: int
) -> None:
    # a spool is read with plain reads, not a memory map: mapped pages of a multi-GB spool
    # would all count as resident
    outcols = [
        fits_out_col(f, widths.get(f.name), dest.final, widths.get("\0int"), widths.get("\0boolnull")) for f in schema
    ]
    primary, header = _fits_headers(schema, outcols, nrows, dest.final)
    rec_dtype = np.dtype({"names": [f"f{i}" for i in range(len(outcols))], "formats": [c.np_dtype for c in outcols]})
    raw = dest.open("wb")
    out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) if gz else raw
    with raw, out:
        out.write(primary)
        out.write(header)
        written = 0
        for batch in batches:
            for start in range(0, batch.num_rows, 65536):
                sub = batch.slice(start, 65536)
                rec = np.empty(sub.num_rows, dtype=rec_dtype)
                for k, c in enumerate(outcols):
                    rec[f"f{k}"] = c.convert(sub.column(k))
                out.write(rec.tobytes())
                written += rec.nbytes
        pad = (-written) % 2880
        if pad:
            out.write(b"\0" * pad)
        out.flush()
