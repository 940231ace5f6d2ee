"""Seeded mutations of the shipped tables, for the reader fuzz test (tests/test_fuzz.py).

Each mutation is a damaged copy of a real file shipped in tests/data or data/sample:
truncations, byte flips in the header and in the data, edited FITS header cards (the card
classes of issue 18: TFORMn, TTYPEn, TNULLn, TUNITn, TCOMMn, NAXIS2, TSCALn/TZEROn, CONTINUE),
Parquet/Arrow schema metadata of unexpected types, bad UTF-8 in field metadata, damaged gzip
streams.  ``mutations(seed, n)`` yields ``(name, suffix, bytes)``; the same seed gives the
same files, so a failure is reproducible from the name alone.
"""

from __future__ import annotations

import gzip
import io
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"

#: the shipped fixtures mutated (small ones: the fuzz test reads hundreds of copies)
FITS_FILES = [
    ROOT / "data" / "sample" / "4xmm_dr10_ngc5139.fits",
    DATA / "cosmos_xmm_head.fits",
    DATA / "crossmatch" / "nway_elltest" / "randomcatX.fits",
    DATA / "chain" / "s82x_xray.fits",
]
PARQUET_FILES = [DATA / "photoz" / "sdss_mgs_test.parquet"]
CSV_FILES = [DATA / "xmm_ml_slim_200.csv", DATA / "chain" / "lin_xray.csv"]

#: FITS header edits: (keyword pattern, replacement value field) - each an issue-18 class
CARD_EDITS: list[tuple[str, str]] = [
    (r"TFORM\d+", "'ZZZ'"),
    (r"TFORM\d+", "42"),
    (r"TFORM\d+", "'99999999999999999999E'"),
    (r"TFORM\d+", "'-1E'"),
    (r"TTYPE\d+", "12"),
    (r"TTYPE\d+", "T"),
    (r"TTYPE\d+", "''"),
    (r"TNULL\d+", "'abc'"),
    (r"TNULL\d+", "1.5"),
    (r"TUNIT\d+", "3"),
    (r"TCOMM\d+", "4.5"),
    (r"NAXIS2", "-1"),
    (r"NAXIS2", ""),
    (r"NAXIS2", "'many'"),
    (r"NAXIS2", "999999999999"),
    (r"NAXIS1", "0"),
    (r"NAXIS1", "-8"),
    (r"TFIELDS", "'x'"),
    (r"TFIELDS", "99999"),
    (r"TFIELDS", "-3"),
    (r"TSCAL\d+|TFORM\d+", "'x'"),
    (r"TZERO\d+|TFORM\d+", "'x'"),
    (r"TDIM\d+|TFORM\d+", "'(3,'"),
    (r"BITPIX", "'8'"),
    (r"PCOUNT", "'a'"),
    (r"EXTNAME", "5"),
]


def _cards(data: bytes) -> list[tuple[int, str]]:
    """(offset, keyword) of the header cards of the first two HDUs."""
    out: list[tuple[int, str]] = []
    ends = 0
    for k in range(0, min(len(data), 2880 * 60), 80):
        key = data[k : k + 8].decode("ascii", "replace").rstrip()
        out.append((k, key))
        if key == "END":
            ends += 1
            if ends == 2:
                break
    return out


def _set_card(data: bytes, offset: int, key: str, value: str) -> bytes:
    image = f"{key:8}= {value:>20}".ljust(80)[:80].encode("ascii")
    return data[:offset] + image + data[offset + 80 :]


def fits_card_edit(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    pattern, value = rng.choice(CARD_EDITS)
    keys = [(o, k) for o, k in _cards(data) if re.fullmatch(pattern, k)]
    if not keys:
        return "noop", data
    off, key = rng.choice(keys)
    return f"card-{key}={value or 'empty'}", _set_card(data, off, key, value)


def fits_continue(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """A CONTINUE card with a non-string value after a long string (or anywhere)."""
    cards = _cards(data)
    strings = [(o, k) for o, k in cards if k.startswith("TTYPE") or k.startswith("EXTNAME")]
    if not strings:
        return "noop", data
    off, key = rng.choice(strings)
    image = f"{key:8}= 'LONG&'".ljust(80).encode()
    cont = f"CONTINUE  {rng.choice(['12', 'T', '1.5', ''])}".ljust(80).encode()
    # the card after the string becomes the CONTINUE card (it was an ordinary card)
    nxt = off + 80
    return f"continue-{key}", data[:off] + image + cont + data[nxt + 80 :]


def fits_card_flip(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    cards = _cards(data)
    off, key = rng.choice(cards)
    pos = off + rng.randrange(80)
    b = bytearray(data)
    b[pos] = rng.choice([0x00, 0x27, 0x2F, 0x3D, 0x80, 0xFF, 0x26, 0x20, rng.randrange(256)])
    return f"cardflip-{key}@{pos}", bytes(b)


def truncate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    cut = rng.randrange(0, len(data))
    return f"trunc@{cut}", data[:cut]


def flip_bytes(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    b = bytearray(data)
    k = rng.choice([1, 1, 2, 8])
    where = []
    for _ in range(k):
        pos = rng.randrange(len(b))
        b[pos] ^= 1 << rng.randrange(8)
        where.append(pos)
    return f"flip@{','.join(map(str, where))}", bytes(b)


def flip_head(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    b = bytearray(data)
    pos = rng.randrange(min(len(b), 4096))
    b[pos] = rng.randrange(256)
    return f"headflip@{pos}", bytes(b)


def flip_tail(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    b = bytearray(data)
    pos = len(b) - 1 - rng.randrange(min(len(b), 4096))
    b[pos] = rng.randrange(256)
    return f"tailflip@{pos}", bytes(b)


def gzip_damage(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """A .fits.gz whose compressed stream is flipped, truncated or has a wrong CRC."""
    z = bytearray(gzip.compress(data, mtime=0))
    kind = rng.choice(["flip", "crc", "trunc"])
    if kind == "flip":
        pos = rng.randrange(10, len(z) - 8)
        z[pos] ^= 1 << rng.randrange(8)
        return f"gzflip@{pos}", bytes(z)
    if kind == "crc":
        z[-8] ^= 0xFF
        return "gzcrc", bytes(z)
    cut = rng.randrange(10, len(z))
    return f"gztrunc@{cut}", bytes(z[:cut])


def _arrow_table(path: Path):  # type: ignore[no-untyped-def]
    import pyarrow.parquet as pq

    return pq.read_table(path)


def _meta_variants(rng: random.Random) -> tuple[str, dict[bytes, bytes] | None, dict[bytes, bytes] | None]:
    """(name, schema metadata, field metadata) of unexpected types."""
    choices: list[tuple[str, dict[bytes, bytes] | None, dict[bytes, bytes] | None]] = [
        ("prov-string", {b"xmmtools.provenance": b'"made by hand"'}, None),
        ("prov-list-of-str", {b"xmmtools.provenance": b'["a", 3]'}, None),
        ("prov-badjson", {b"xmmtools.provenance": b"[{"}, None),
        ("prov-badutf8", {b"xmmtools.provenance": b"\xff\xfe"}, None),
        ("header-rows-short", {b"xmmtools.header": b'[["A"], ["B", 1, "c", 4]]'}, None),
        ("header-rows-types", {b"xmmtools.header": b"[[1, 2, 3], [null, {}, []]]"}, None),
        ("header-dict", {b"xmmtools.header": b'{"A": 1}'}, None),
        ("header-badjson", {b"xmmtools.header": b'[["A",'}, None),
        ("header-badutf8", {b"xmmtools.header": b"\xc3\x28"}, None),
        ("field-unit-badutf8", None, {b"unit": b"\xff\xfe"}),
        ("field-desc-badutf8", None, {b"description": b"\xc3\x28abc"}),
        ("field-tdim-bad", None, {b"fits.tdim": b"(3,"}),
        ("field-ucd-badutf8", None, {b"ucd": b"\x80"}),
    ]
    return rng.choice(choices)


def metadata_edit(path: Path, fmt: str, rng: random.Random) -> tuple[str, bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = _arrow_table(path)
    name, smeta, fmeta = _meta_variants(rng)
    if smeta is not None:
        meta = dict(t.schema.metadata or {})
        meta.update(smeta)
        t = t.replace_schema_metadata(meta)
    if fmeta is not None:
        i = rng.randrange(t.num_columns)
        f = t.schema.field(i)
        t = t.cast(t.schema.set(i, f.with_metadata({**(f.metadata or {}), **fmeta})))
    buf = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(t, buf)
    else:
        with pa.ipc.new_file(buf, t.schema) as w:
            w.write_table(t)
    return f"meta-{name}", buf.getvalue()


def _arrow_bytes(path: Path) -> bytes:
    import pyarrow as pa

    t = _arrow_table(path)
    buf = io.BytesIO()
    with pa.ipc.new_file(buf, t.schema) as w:
        w.write_table(t, max_chunksize=200)
    return buf.getvalue()


Mutation = Callable[[bytes, random.Random], tuple[str, bytes]]


def mutations(seed: int, n: int) -> Iterator[tuple[str, str, bytes]]:
    """``n`` damaged files: (name, suffix such as '.fits', bytes)."""
    rng = random.Random(seed)
    sources: list[tuple[Path, str, bytes]] = [(p, ".fits", p.read_bytes()) for p in FITS_FILES]
    sources += [(p, ".parquet", p.read_bytes()) for p in PARQUET_FILES]
    sources += [(p, ".arrow", _arrow_bytes(p)) for p in PARQUET_FILES]
    sources += [(p, ".csv", p.read_bytes()) for p in CSV_FILES]
    fits_ops: list[Mutation] = [
        fits_card_edit,
        fits_card_edit,
        fits_card_edit,
        fits_continue,
        fits_card_flip,
        truncate,
        flip_bytes,
        flip_head,
        flip_tail,
    ]
    binary_ops: list[Mutation] = [truncate, flip_bytes, flip_head, flip_tail]
    for k in range(n):
        path, suffix, data = rng.choice(sources)
        if suffix == ".fits" and rng.random() < 0.15:
            name, out = gzip_damage(data, rng)
            suffix = ".fits.gz"
        elif suffix in (".parquet", ".arrow") and rng.random() < 0.3:
            name, out = metadata_edit(path, suffix[1:], rng)
        else:
            op = rng.choice(fits_ops if suffix == ".fits" else binary_ops)
            name, out = op(data, rng)
        yield f"{k:04d}-{path.stem}-{name}", suffix, out
