"""Reading FITS binary tables: header by :mod:`xmmtools.tables.fits.header` (astropy only for
gzip files and for anything unusual or damaged), rows by a numpy record view of the raw bytes.

Only the requested columns are converted, and large files are read in row chunks of bounded
memory (:data:`FITS_CHUNK_BYTES`).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmmtools.errors import DataError
from xmmtools.tables.fits import header as fits_header
from xmmtools.tables.formats import is_gzip, short_error, strip_hdu
from xmmtools.tables.interop import read_fits_column_meta
from xmmtools.tables.model import HEADER_KEY, arrow_from_numpy, field_meta
from xmmtools.tables.provenance import PROVENANCE_KEY
from xmmtools.tables.schema import check_metadata, check_read_names, missing_column

#: bytes of raw FITS rows read at once when scanning a table
FITS_CHUNK_BYTES = 64 * 2**20

_TFORM = re.compile(r"^\s*(\d*)([LXBIJKAEDCMPQ])(.*)$")
_NUMPY_CODE = {
    "B": "u1",
    "I": ">i2",
    "J": ">i4",
    "K": ">i8",
    "E": ">f4",
    "D": ">f8",
    "C": ">c8",
    "M": ">c16",
    "L": "u1",
}


@dataclass
class FitsCol:
    name: str
    code: str
    repeat: int
    offset: int
    nbytes: int
    unit: str = ""
    description: str = ""
    tnull: int | None = None
    tscal: float = 1.0
    tzero: float = 0.0
    tdim: str | None = None
    tdisp: str | None = None

    @property
    def null_bools(self) -> bool:
        """Booleans with nulls as xmmtools writes them: bytes 1/0, TNULL 255, TDISP 'L1'."""
        return self.code == "B" and self.repeat == 1 and self.tnull == 255 and self.tdisp == "L1"


class FitsTable:
    """A FITS binary-table HDU located in a file: header parsed by astropy, rows read by us."""

    def __init__(self, path: str, header: Any, data_offset: int, extname: str | None, hdu_index: int) -> None:
        self.path = path
        self.header = header
        self.data_offset = data_offset
        self.extname = extname
        self.hdu_index = hdu_index
        with _damaged_header(path):
            self.nrows = self._count("NAXIS2")
            self.rowlen = self._count("NAXIS1")
            self.cols = self._columns()

    # ---- header values, checked: a damaged card is a DataError naming it ----------------
    def _card(self, key: str, default: Any = None) -> Any:
        try:
            return self.header.get(key, default)
        except Exception as e:  # astropy parses cards lazily and raises VerifyError & co.
            raise DataError(f"{self.path}: header card {key} is unparsable ({short_error(e)})") from None

    def _count(self, key: str, default: int | None = None) -> int:
        v = self._card(key, default)
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
            raise DataError(f"{self.path}: header card {key} = {_shown(v)} is not a count (an integer >= 0)")
        return int(v)

    def _number(self, key: str, default: float) -> float:
        v = self._card(key, default)
        if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, bool) or not np.isfinite(v):
            raise DataError(f"{self.path}: header card {key} = {_shown(v)} is not a finite number")
        return float(v)

    def _text(self, key: str, default: str = "") -> str:
        v = self._card(key, default)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise DataError(f"{self.path}: header card {key} = {_shown(v)} is not text")
        return str(v)

    @classmethod
    def open(cls, path: str) -> FitsTable:
        import warnings

        # astropy's header-validation warnings would print multi-line text on stderr; what
        # matters to the user is reported as one DataError line instead
        with warnings.catch_warnings(), _damaged_header(strip_hdu(path)[0]):
            warnings.simplefilter("ignore")
            return cls._open(path)

    @classmethod
    def _open(cls, path: str) -> FitsTable:
        real, ext = strip_hdu(path)
        if not is_gzip(real):  # well-formed files: our own header parser (no astropy import)
            try:
                header, dat, i = fits_header.find_bintable(real, ext)
            except (fits_header.Unsupported, OSError, ValueError):
                pass  # astropy below reads it, or says what is wrong with it
            else:
                t = cls(real, header, dat, str(header.get("EXTNAME", "")).strip() or None, i)
                t._check_size()
                return t
        from astropy.io import fits

        try:
            hdul = fits.open(real, memmap=False, lazy_load_hdus=True)
        except zlib.error as e:
            raise DataError(f"{real}: damaged gzip-compressed FITS file ({short_error(e)})") from None
        except KeyError as e:  # astropy sizes the first HDU while opening
            raise DataError(f"{real}: header card {e.args[0] if e.args else '?'} is missing") from None
        except (OSError, ValueError, EOFError, TypeError, IndexError) as e:
            raise DataError(f"{real}: not a readable FITS file ({short_error(e)})") from None
        try:
            hdus: list[Any] = []
            chosen = None
            i = 0
            while True:
                try:
                    h = hdul[i]
                except IndexError:
                    break
                except Exception as e:  # astropy raises assorted errors on damaged HDUs
                    if chosen is None and not hdus:
                        raise DataError(f"{real}: damaged FITS header ({short_error(e)})") from None
                    break
                if not hasattr(h, "fileinfo"):  # astropy's _CorruptedHDU: size or header unusable
                    raise DataError(f"{real}: HDU {i} is damaged (its header does not describe its data)")
                hdus.append(h)
                xt = str(h.header.get("XTENSION", "")).strip().upper()
                if ext is not None:
                    if (ext.isdigit() and int(ext) == i) or str(
                        h.header.get("EXTNAME", "")
                    ).strip().upper() == ext.upper():
                        chosen = (i, h)
                        break
                elif xt == "BINTABLE" and chosen is None:
                    chosen = (i, h)
                    break
                i += 1
            if chosen is None and hdus:
                info = hdus[-1].fileinfo()
                end = info["datLoc"] + info["datSpan"]
                if is_gzip(real):
                    size = _gzip_size(real)
                    if size is None:
                        raise DataError(f"{real}: truncated or damaged gzip-compressed FITS file")
                else:
                    size = os.path.getsize(real)
                if size > end:
                    raise DataError(f"{real}: truncated or damaged FITS file (an incomplete HDU starts at byte {end})")
            if chosen is None:
                if ext is not None:
                    raise DataError(f"{real}: no HDU named or numbered {ext!r}")
                kinds = ", ".join(_hdu_summary(h) for h in hdus) or "none"
                raise DataError(f"{real}: no binary table in this FITS file (HDUs: {kinds})")
            i, h = chosen
            xt = str(h.header.get("XTENSION", "")).strip().upper()
            if xt != "BINTABLE":
                raise DataError(f"{real}: HDU {ext} is {_hdu_summary(h)}, not a binary table")
            header = h.header.copy()
            dat = h.fileinfo()["datLoc"]
            extname = str(header.get("EXTNAME", "")).strip() or None
        finally:
            hdul.close()
        t = cls(real, header, dat, extname, i)
        t._check_size()
        return t

    def _check_size(self) -> None:
        if is_gzip(self.path):
            return  # checked while reading
        size = os.path.getsize(self.path)
        need = self.data_offset + self.nrows * self.rowlen
        if size < need:
            raise DataError(f"{self.path}: truncated FITS file ({size} bytes; the table header promises {need})")

    def _columns(self) -> list[FitsCol]:
        h = self.header
        n = self._count("TFIELDS", 0)
        if n > 999:  # FITS 4.0 sect. 7.3.1: 0 <= TFIELDS <= 999
            raise DataError(f"{self.path}: header card TFIELDS = {n} is more than the 999 columns FITS allows")
        cols = []
        off = 0
        for k in range(1, n + 1):
            ttype = self._card(f"TTYPE{k}", f"COL{k}")
            if not isinstance(ttype, str):
                raise DataError(f"{self.path}: header card TTYPE{k} = {_shown(ttype)} is not a column name")
            name = ttype.strip()
            tform = self._card(f"TFORM{k}", "")
            m = _TFORM.match(tform.strip().upper()) if isinstance(tform, str) else None
            if not m:
                raise DataError(f"{self.path}: header card TFORM{k} = {_shown(tform)} of column {name} is unparsable")
            tform = tform.strip().upper()
            repeat = int(m.group(1)) if m.group(1) else 1
            code = m.group(2)
            if code in "PQ":
                nbytes = (8 if code == "P" else 16) * (1 if repeat else 0)
            elif code == "X":
                nbytes = (repeat + 7) // 8
            elif code == "A":
                nbytes = repeat
            else:
                nbytes = repeat * np.dtype(_NUMPY_CODE[code]).itemsize
            desc = self._text(f"TCOMM{k}") or (h.comments[f"TTYPE{k}"] if f"TTYPE{k}" in h else "")
            tnull = self._card(f"TNULL{k}")
            if (
                tnull is not None
                and code in "BIJK"
                and (not isinstance(tnull, (int, np.integer)) or isinstance(tnull, bool))
            ):
                raise DataError(
                    f"{self.path}: header card TNULL{k} = {_shown(tnull)} of column {name} is not an integer"
                )
            cols.append(
                FitsCol(
                    name=name,
                    code=code,
                    repeat=repeat,
                    offset=off,
                    nbytes=nbytes,
                    unit=self._text(f"TUNIT{k}").strip(),
                    description=str(desc or "").strip(),
                    tnull=int(tnull) if isinstance(tnull, (int, np.integer)) and not isinstance(tnull, bool) else None,
                    tscal=self._number(f"TSCAL{k}", 1.0),
                    tzero=self._number(f"TZERO{k}", 0.0),
                    tdim=self._text(f"TDIM{k}") if f"TDIM{k}" in h else None,
                    tdisp=self._text(f"TDISP{k}").strip().upper() if f"TDISP{k}" in h else None,
                )
            )
            off += nbytes
        if off != self.rowlen:
            raise DataError(f"{self.path}: FITS column widths add up to {off} bytes, NAXIS1 says {self.rowlen}")
        check_read_names([c.name for c in cols], self.path)
        return cols

    # ---- schema ------------------------------------------------------------------------
    def arrow_type(self, c: FitsCol) -> pa.DataType:
        if c.code == "A":
            return pa.string()
        if c.code in "PQ":
            raise DataError(f"{self.path}: column {c.name} is a variable-length array, which xmmtools does not read")
        if c.code in "CM":
            raise DataError(f"{self.path}: column {c.name} is complex, which xmmtools does not read")
        if c.code == "X":
            base = pa.bool_()
            return pa.list_(base, c.repeat)
        base = pa.bool_() if c.code == "L" or c.null_bools else pa.from_numpy_dtype(self._value_dtype(c))
        return pa.list_(base, c.repeat) if _is_vector(c) else base

    def _value_dtype(self, c: FitsCol) -> np.dtype:
        raw = np.dtype(_NUMPY_CODE[c.code]).newbyteorder("=")
        if c.tscal == 1.0 and c.tzero != 0.0:
            if c.code == "B" and c.tzero == -128:
                return np.dtype("i1")
            if c.code == "I" and c.tzero == 32768:
                return np.dtype("u2")
            if c.code == "J" and c.tzero == 2**31:
                return np.dtype("u4")
            if c.code == "K" and c.tzero == 2**63:
                return np.dtype("u8")
        if c.tscal != 1.0 or c.tzero != 0.0:
            return np.dtype("f8")
        return raw

    def arrow_field(self, c: FitsCol) -> pa.Field:
        meta = field_meta(c.unit, c.description)
        meta.update(self._column_meta.get(c.name, {}))
        if c.tdim and "," in c.tdim:  # multi-dimensional cells: keep the shape for FITS outputs
            meta[b"fits.tdim"] = c.tdim.encode()
        return pa.field(c.name, self.arrow_type(c), metadata=meta or None)

    @functools.cached_property
    def _column_meta(self) -> dict[str, dict[bytes, bytes]]:
        """UCDs and ``meta.*`` entries from the astropy COMMENT block xmmtools writes."""
        cards = getattr(self.header, "cards", [])
        return read_fits_column_meta(str(c.value) for c in cards if c.keyword == "COMMENT")

    def arrow_schema(self, columns: Sequence[str] | None) -> pa.Schema:
        cols = self.select(columns)
        with _damaged_header(self.path):
            meta = {HEADER_KEY: json.dumps(_header_cards(self.header)).encode()}
            prov = self._card("XMMTPROV")
        if prov:
            meta[PROVENANCE_KEY] = str(prov).encode()
        schema = pa.schema([self.arrow_field(c) for c in cols], metadata=meta)
        check_metadata(schema, self.path)
        return schema

    def select(self, columns: Sequence[str] | None) -> list[FitsCol]:
        if columns is None:
            return list(self.cols)
        by_name = {c.name: c for c in self.cols}
        out = []
        for n in columns:
            if n not in by_name:
                raise missing_column(n, list(by_name), self.path)
            out.append(by_name[n])
        return out

    # ---- rows --------------------------------------------------------------------------
    def iter_chunks(self, columns: Sequence[str] | None, chunk_rows: int | None) -> Iterator[pa.Table]:
        cols = self.select(columns)
        schema = self.arrow_schema(columns)
        for c in cols:
            self.arrow_type(c)  # raise early for unsupported column types
        per = chunk_rows or max(1, FITS_CHUNK_BYTES // max(self.rowlen, 1))
        if self.nrows == 0:
            yield schema.empty_table()
            return
        dtype = np.dtype(
            {
                "names": [f"f{i}" for i in range(len(cols))],
                "formats": [self._raw_dtype(c) for c in cols],
                "offsets": [c.offset for c in cols],
                "itemsize": self.rowlen,
            }
        )
        opener = gzip.open if is_gzip(self.path) else open
        with opener(self.path, "rb") as f:
            try:
                f.seek(self.data_offset)
            except (OSError, EOFError) as e:
                raise DataError(f"{self.path}: truncated or corrupt FITS file ({short_error(e)})") from None
            start = 0
            # one read buffer for all chunks: fresh 64 MiB buffers cost page faults every time;
            # every column is copied out of it (_convert), so reusing it is safe
            buf = bytearray(min(per, self.nrows) * self.rowlen)
            while start < self.nrows:
                n = min(per, self.nrows - start)
                try:
                    got_bytes = _readinto_exact(f, memoryview(buf)[: n * self.rowlen])
                except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
                    raise DataError(f"{self.path}: truncated or corrupt FITS file ({short_error(e)})") from None
                if got_bytes < n * self.rowlen:
                    got = start + got_bytes // self.rowlen
                    raise DataError(f"{self.path}: truncated FITS file ({got} of {self.nrows} rows present)")
                rec = np.frombuffer(buf, dtype=dtype, count=n)
                arrays = [self._convert(rec[f"f{i}"], c) for i, c in enumerate(cols)]
                if start + n >= self.nrows and is_gzip(self.path):
                    _drain_gzip(f, self.path)  # before the last chunk is handed out
                yield pa.Table.from_arrays(arrays, schema=schema)
                start += n

    def _raw_dtype(self, c: FitsCol) -> np.dtype[Any]:
        if c.code == "A":
            return np.dtype(f"S{max(c.repeat, 1)}") if c.repeat else np.dtype("S1")
        if c.code == "X":
            return np.dtype(("u1", (c.nbytes,)))
        base = np.dtype(_NUMPY_CODE[c.code])
        return base if c.repeat == 1 else np.dtype((base, (c.repeat,)))

    def _convert(self, raw: np.ndarray, c: FitsCol) -> pa.Array:
        n = raw.shape[0]
        if c.code == "A":
            if c.repeat == 0:
                return pa.array([""] * n, type=pa.string())
            s = np.ascontiguousarray(np.char.rstrip(np.ascontiguousarray(raw), b" "))
            fixed = pa.Array.from_buffers(pa.binary(s.dtype.itemsize), n, [None, pa.py_buffer(s)])
            try:
                text = pc.cast(pc.cast(fixed, pa.binary()), pa.string())
            except pa.ArrowInvalid:  # not UTF-8: decode what can be decoded
                return pa.array([v.decode("utf-8", "replace") for v in s.tolist()], type=pa.string())
            return pc.utf8_rtrim(text, characters="\x00")  # the NUL padding of shorter values
        if c.code == "X":
            bits = np.unpackbits(np.ascontiguousarray(raw), axis=1)[:, : c.repeat].astype(bool)
            return pa.FixedSizeListArray.from_arrays(arrow_from_numpy(bits.ravel()), c.repeat)
        if c.code == "L":
            v = np.ascontiguousarray(raw)
            flat = v.ravel()
            arr = arrow_from_numpy(flat == ord("T"), flat == 0)
            return pa.FixedSizeListArray.from_arrays(arr, c.repeat) if _is_vector(c) else arr
        if c.null_bools:
            flat = np.ascontiguousarray(raw).ravel()
            return arrow_from_numpy(flat == 1, flat == 255)
        # one copy, out of the (reused) read buffer and into native byte order
        vals = np.array(raw, dtype=raw.dtype.newbyteorder("="), copy=True, order="C")
        mask = None
        if c.tnull is not None and c.code in "BIJK":
            mask = vals == c.tnull
            if not mask.any():
                mask = None
        target = self._value_dtype(c)
        if target.kind == "u" and vals.dtype.kind == "i":
            vals = vals.view(vals.dtype.str.replace("i", "u")) ^ np.array(
                1 << (8 * vals.itemsize - 1), dtype=vals.dtype.str.replace("i", "u")
            )
        elif target == np.dtype("i1") and vals.dtype == np.dtype("u1"):
            vals = (vals.astype(np.int16) - 128).astype(np.int8)
        elif target == np.dtype("f8") and (c.tscal != 1.0 or c.tzero != 0.0):
            vals = vals.astype(np.float64) * c.tscal + c.tzero
        flat = vals.reshape(-1)
        fmask = None if mask is None else mask.reshape(-1)
        arr = arrow_from_numpy(flat, fmask)
        return pa.FixedSizeListArray.from_arrays(arr, c.repeat) if _is_vector(c) else arr


@contextlib.contextmanager
def _damaged_header(path: str) -> Iterator[None]:
    """Errors astropy raises on damaged header cards (``VerifyError: Unparsable card
    (TFORM53)``, ``CONTINUE cards must have string values``) as one-line DataErrors."""
    try:
        yield
    except DataError:
        raise
    except zlib.error as e:  # astropy reading the header of a damaged .fits.gz
        raise DataError(f"{path}: damaged gzip-compressed FITS file ({short_error(e)})") from None
    except Exception as e:
        if not type(e).__module__.startswith("astropy"):
            raise
        msg = short_error(e)
        m = re.search(r"card \(?'?([A-Z0-9_-]{1,8})'?\)?", msg)
        if m:
            raise DataError(f"{path}: header card {m.group(1)} is unparsable ({msg})") from None
        raise DataError(f"{path}: damaged FITS header ({msg})") from None


def _shown(v: Any) -> str:
    return "(no value)" if v is None or v == "" else repr(v)[:40]


def _drain_gzip(f: Any, path: str) -> None:
    """Read a gzip stream to its end, so its CRC-32 and length are checked: the rows of a
    table stop before the end of the stream, and a damaged stream would otherwise be taken
    for valid data (RFC 1952 sect. 2.3.1)."""
    try:
        while f.read(8 * 2**20):
            pass
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: damaged gzip-compressed FITS file ({short_error(e)})") from None


def _gzip_size(p: str) -> int | None:
    """Decompressed size of a gzip file, or None when the stream is truncated or corrupt."""
    n = 0
    try:
        with gzip.open(p, "rb") as f:
            while True:
                b = f.read(8 * 2**20)
                if not b:
                    return n
                n += len(b)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error):
        return None


def _is_vector(c: FitsCol) -> bool:
    """A cell holds a vector when its repeat count is > 1, or when TDIM says so (a vector of
    length 1, which xmmtools writes with TDIM = '(1)')."""
    return c.code not in "A" and (c.repeat > 1 or c.tdim is not None)


def _readinto_exact(f: io.BufferedIOBase, view: memoryview) -> int:
    """Fill ``view`` from ``f``; the number of bytes read (short only at the end of the file)."""
    got = 0
    while got < len(view):
        k = f.readinto(view[got:])
        if not k:
            break
        got += k
    return got


def _hdu_summary(h: Any) -> str:
    xt = str(h.header.get("XTENSION", "PRIMARY")).strip() or "PRIMARY"
    naxis = int(h.header.get("NAXIS", 0))
    shape = "x".join(str(h.header.get(f"NAXIS{i}", 0)) for i in range(1, naxis + 1))
    name = str(h.header.get("EXTNAME", "")).strip()
    return f"{name or xt} {xt.lower()}{' ' + shape if shape else ''}"


def _header_cards(header: Any) -> list[list[Any]]:
    cards: list[list[Any]] = []
    for card in header.cards:
        key = card.keyword
        if not key or fits_header.STRUCTURAL.match(key):
            continue
        val = card.value
        if key in ("HISTORY", "COMMENT"):
            val = str(val)
        elif not isinstance(val, (bool, int, float, str)):
            val = None
        if isinstance(val, float) and not np.isfinite(val):
            val = None
        cards.append([key, val, card.comment if key not in ("HISTORY", "COMMENT") else ""])
    return cards


def iter_fits(p: str, columns: Sequence[str] | None, chunk_rows: int | None) -> Iterator[pa.Table]:
    yield from FitsTable.open(p).iter_chunks(columns, chunk_rows)


def header_dict(header: Any) -> dict[str, Any]:
    """The keywords of a FITS header with their values (no HISTORY/COMMENT), for ``info``."""
    out: dict[str, Any] = {}
    for card in header.cards:
        if card.keyword and card.keyword not in ("HISTORY", "COMMENT", ""):
            out[card.keyword] = card.value
    return out


# =========================================================================================
