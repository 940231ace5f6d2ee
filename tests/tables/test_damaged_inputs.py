"""Each class of damaged input found by the mutation run of issue 18 ends in a named data error
(``error: FILE: header card TFORM3 is unparsable (...)``), exit 1, one line, no traceback and
no output file - never ``internal error``.  The files are edited copies of shipped fixtures."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import DATA, SAMPLE, run_main

XCAT = DATA / "crossmatch" / "nway_elltest" / "randomcatX.fits"
PARQUET = DATA / "photoz" / "sdss_mgs_test.parquet"


def _card_offset(data: bytes, key: str) -> int:
    for k in range(0, 2880 * 40, 80):
        if data[k : k + 8].decode("ascii").rstrip() == key and k >= 2880:  # in the table header
            return k
    raise KeyError(key)


def edit_card(src: Path, key: str, image: str) -> bytes:
    """``src`` with the card ``key`` of its table header replaced by the 80-character ``image``."""
    data = src.read_bytes()
    k = _card_offset(data, key)
    return data[:k] + image.ljust(80)[:80].encode("ascii") + data[k + 80 :]


def _continue_after(src: Path, key: str, value: str) -> bytes:
    """``key`` made a long string ending in '&' and the next card a CONTINUE with ``value``."""
    data = src.read_bytes()
    k = _card_offset(data, key)
    cards = f"{key:8}= 'X&'".ljust(80) + f"CONTINUE  {value}".ljust(80)
    return data[:k] + cards.encode("ascii") + data[k + 160 :]


def _parquet(meta: dict[bytes, bytes] | None = None, field_meta: dict[bytes, bytes] | None = None) -> bytes:
    t = pq.read_table(PARQUET)
    if meta:
        t = t.replace_schema_metadata({**(t.schema.metadata or {}), **meta})
    if field_meta:
        f = t.schema.field(0)
        t = t.cast(t.schema.set(0, f.with_metadata(field_meta)))
    buf = io.BytesIO()
    pq.write_table(t, buf)
    return buf.getvalue()


def _arrow() -> bytes:
    t = pq.read_table(PARQUET)
    buf = io.BytesIO()
    with pa.ipc.new_file(buf, t.schema) as w:
        w.write_table(t, max_chunksize=300)
    return buf.getvalue()


#: byte edits of randomcatX.fits found by the fuzz run (seed 5) that make astropy's HDU "corrupted"
_CORRUPTED_HDU_FLIPS = {31: 111, 2976: 42, 3536: 13, 4610: 32, 6525: 104, 12315: 86, 14145: 253, 16168: 16}


def _flips(src: Path, edits: dict[int, int]) -> bytes:
    b = bytearray(src.read_bytes())
    for pos, value in edits.items():
        b[pos] = value
    return bytes(b)


def _flip(data: bytes, pos: int, value: int) -> bytes:
    b = bytearray(data)
    b[pos] = value
    return bytes(b)


def _gzip_bad_crc(src: Path) -> bytes:
    z = bytearray(gzip.compress(src.read_bytes(), mtime=0))
    z[-8] ^= 0xFF  # the CRC-32 of the trailer: the deflate stream itself is intact
    return bytes(z)


# (id, suffix, bytes factory, text the message must contain)
CASES = [
    ("tform-unparsable", ".fits", lambda: edit_card(XCAT, "TFORM3", "TFORM3  = 'E"), "header card TFORM3"),
    ("tform-number", ".fits", lambda: edit_card(XCAT, "TFORM3", "TFORM3  =                   42"), "TFORM3"),
    ("tform-unknown-code", ".fits", lambda: edit_card(XCAT, "TFORM3", "TFORM3  = 'Z'"), "TFORM3"),
    ("ttype-unparsable", ".fits", lambda: edit_card(XCAT, "TTYPE2", "TTYPE2  = 'RA"), "header card TTYPE2"),
    ("ttype-number", ".fits", lambda: edit_card(XCAT, "TTYPE2", "TTYPE2  =                   12"), "TTYPE2"),
    ("ttype-flipped", ".fits", lambda: edit_card(XCAT, "TTYPE2", "TTYPE2  = 'RA' \x7f junk"), "TTYPE2"),
    ("tnull-text", ".fits", lambda: edit_card(SAMPLE, "TNULL1", "TNULL1  = 'abc'"), "TNULL1"),
    ("tnull-unparsable", ".fits", lambda: edit_card(SAMPLE, "TNULL1", "TNULL1  = 1x2"), "TNULL1"),
    ("tunit-unparsable", ".fits", lambda: edit_card(SAMPLE, "TUNIT5", "TUNIT5  = 'deg"), "TUNIT5"),
    ("tcomm-unparsable", ".fits", lambda: edit_card(SAMPLE, "TCOMM2", "TCOMM2  = 'text"), "TCOMM2"),
    ("naxis2-negative", ".fits", lambda: edit_card(XCAT, "NAXIS2", "NAXIS2  =                   -1"), "NAXIS2"),
    ("naxis2-empty", ".fits", lambda: edit_card(XCAT, "NAXIS2", "NAXIS2  ="), "NAXIS2"),
    ("naxis2-text", ".fits", lambda: edit_card(XCAT, "NAXIS2", "NAXIS2  = 'many'"), "NAXIS2"),
    ("naxis1-negative", ".fits", lambda: edit_card(XCAT, "NAXIS1", "NAXIS1  =                   -8"), "NAXIS1"),
    ("tfields-text", ".fits", lambda: edit_card(XCAT, "TFIELDS", "TFIELDS = 'x'"), "TFIELDS"),
    ("tfields-huge", ".fits", lambda: edit_card(XCAT, "TFIELDS", "TFIELDS =               100000"), "TFIELDS"),
    ("tscal-text", ".fits", lambda: edit_card(XCAT, "TFORM3", "TSCAL3  = 'x'"), "TFORM3"),
    ("tzero-text", ".fits", lambda: _tzero_text(), "TZERO"),
    ("continue-number", ".fits", lambda: _continue_after(XCAT, "TTYPE2", "12"), "TTYPE2"),
    ("continue-logical", ".fits", lambda: _continue_after(XCAT, "TTYPE2", "T"), "TTYPE2"),
    ("primary-naxis1-missing", ".fits", lambda: _flips(XCAT, {248: ord("5")}), "header card NAXIS1 is missing"),
    ("hdu-corrupted", ".fits", lambda: _flips(XCAT, _CORRUPTED_HDU_FLIPS), "HDU 0 is damaged"),
    ("truncated-fits", ".fits", lambda: SAMPLE.read_bytes()[:100_000], "truncated"),
    ("gzip-crc", ".fits.gz", lambda: _gzip_bad_crc(SAMPLE), "damaged gzip"),
    ("gzip-truncated", ".fits.gz", lambda: gzip.compress(SAMPLE.read_bytes(), mtime=0)[:-5000], "gzip"),
    ("prov-plain-string", ".parquet", lambda: _parquet({b"xmmtools.provenance": b'"by hand"'}), "xmmtools.provenance"),
    ("prov-list-of-text", ".parquet", lambda: _parquet({b"xmmtools.provenance": b'["a"]'}), "processing steps"),
    ("prov-bad-json", ".parquet", lambda: _parquet({b"xmmtools.provenance": b"[{"}), "not JSON"),
    ("header-rows-shape", ".parquet", lambda: _parquet({b"xmmtools.header": b'[["A"]]'}), "xmmtools.header"),
    ("header-rows-dict", ".parquet", lambda: _parquet({b"xmmtools.header": b'{"A": 1}'}), "header cards"),
    ("field-unit-utf8", ".parquet", lambda: _parquet(field_meta={b"unit": b"\xff\xfe"}), "not UTF-8"),
    ("field-description-utf8", ".parquet", lambda: _parquet(field_meta={b"description": b"\xc3("}), "not UTF-8"),
    ("arrow-truncated", ".arrow", lambda: _arrow()[:-300], "Arrow"),
    ("arrow-footer-flipped", ".arrow", lambda: _arrow_footer_flip(), "Arrow"),
    ("arrow-name-utf8", ".arrow", lambda: _arrow_bad_name(), "not UTF-8"),
]


def _tzero_text() -> bytes:
    # the sample has TZERO cards on its unsigned columns
    data = SAMPLE.read_bytes()
    for k in range(2880, 2880 * 40, 80):
        key = data[k : k + 8].decode("ascii").rstrip()
        if key.startswith("TZERO"):
            return data[:k] + f"{key:8}= 'x'".ljust(80).encode() + data[k + 80 :]
    # no TZERO in the file: turn a TUNIT card into one (same effect)
    k = _card_offset(data, "TUNIT5")
    return data[:k] + "TZERO5  = 'x'".ljust(80).encode() + data[k + 80 :]


def _arrow_footer_flip() -> bytes:
    data = _arrow()
    # the footer (flatbuffer of record batch blocks) sits before the last 10 bytes
    return _flip(data, len(data) - 10 - 40, 0xBA)


def _arrow_bad_name() -> bytes:
    data = _arrow()
    name = pq.read_schema(PARQUET).names[0].encode()
    return data.replace(name, b"\xba" + name[1:])


@pytest.mark.parametrize(("suffix", "make", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_damaged_input_gives_a_named_data_error(tmp_path: Path, capsys, suffix, make, needle) -> None:
    src = tmp_path / f"damaged{suffix}"
    src.write_bytes(make())
    out = tmp_path / "out.parquet"
    # info reads metadata only: the data of a .fits.gz (and its CRC) are checked when read
    commands = [["convert", src, "-o", out]] + ([] if suffix == ".fits.gz" else [["info", src]])
    for args in commands:
        code, _, err = run_main(args, capsys)
        lines = err.strip().splitlines()
        assert code == 1, (args[0], err)
        assert len(lines) == 1 and lines[0].startswith(f"error: {src}"), err
        assert "internal error" not in err and "Traceback" not in err
        assert needle in lines[0], lines[0]
        assert not out.exists()


def test_unparsable_card_message_names_the_card(tmp_path: Path, capsys) -> None:
    src = tmp_path / "cat.fits"
    src.write_bytes(edit_card(XCAT, "TFORM3", "TFORM3  = 'E"))
    code, _, err = run_main(["info", src], capsys)
    assert code == 1
    assert err.startswith(f"error: {src}: header card TFORM3 is unparsable (")


def test_damaged_fits_gz_is_not_read_as_valid_data(tmp_path: Path, capsys) -> None:
    """Data loss case of issue 18: the reader stopped after NAXIS2 x NAXIS1 bytes and never
    checked the gzip CRC, so a damaged copy was read as valid (and different) data."""
    src = tmp_path / "cat.fits.gz"
    src.write_bytes(_gzip_bad_crc(SAMPLE))
    code, _, err = run_main(["convert", src, "-o", tmp_path / "o.parquet"], capsys)
    assert code == 1 and "damaged gzip-compressed FITS file" in err and "CRC" in err
    assert not (tmp_path / "o.parquet").exists()


def test_intact_fits_gz_still_reads(tmp_path: Path, capsys) -> None:
    src = tmp_path / "cat.fits.gz"
    src.write_bytes(gzip.compress(SAMPLE.read_bytes(), mtime=0))
    code, _, err = run_main(["convert", src, "-o", tmp_path / "o.parquet"], capsys)
    assert code == 0, err
    assert pq.read_metadata(tmp_path / "o.parquet").num_rows > 0


def test_provenance_of_an_intact_file_still_reads(tmp_path: Path, capsys) -> None:
    out = tmp_path / "a.parquet"
    assert run_main(["convert", SAMPLE, "-o", out], capsys)[0] == 0
    meta = pq.read_schema(out).metadata
    assert isinstance(json.loads(meta[b"xmmtools.provenance"]), list)
    assert run_main(["convert", out, "-o", tmp_path / "b.fits"], capsys)[0] == 0
