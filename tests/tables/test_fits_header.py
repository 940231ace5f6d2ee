"""FITS header cards read and written without astropy (xmmtools.tables.fits.header), checked against astropy."""

from __future__ import annotations

import glob
import os
import warnings

import numpy as np
import pyarrow as pa
import pytest
from astropy.io import fits
from helpers import DATA, DR9, SAMPLE
from hypothesis import given, settings
from hypothesis import strategies as st

from xmmtools import tables as T
from xmmtools.errors import OutputError
from xmmtools.tables.fits import header as FH

FILES = sorted(glob.glob(str(DATA / "**" / "*.fits"), recursive=True)) + [str(SAMPLE)]


def _astropy_cards(path, i):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path) as hl:
            h = hl[i].header
            return [
                (c.keyword, None if isinstance(c.value, fits.card.Undefined) else c.value, c.comment) for c in h.cards
            ], hl[i].fileinfo()["datLoc"]


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_header_cards_equal_astropy(path):
    try:
        h, offset, i = FH.find_bintable(path, None)
    except FH.Unsupported:
        pytest.skip("needs astropy (fallback path)")
    ref, loc = _astropy_cards(path, i)
    assert offset == loc
    ours = [(c.keyword, c.value, c.comment) for c in h.cards]
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref, strict=True):
        if a[0] == "TCOMM292":  # astropy mis-splits a CONTINUE string holding '/': we read it whole
            assert a[1] == "exposure id ('S'/'U' + 3 digits) with the smallest chi2 probability"
            continue
        assert a == b


def test_named_extension_and_fallbacks(tmp_path):
    h, _, i = FH.find_bintable(DR9, None)
    assert i == 1 and h.get("NAXIS2") == 100
    assert FH.find_bintable(DR9, "1")[2] == 1
    with pytest.raises(FH.Unsupported):
        FH.find_bintable(DR9, "0")  # the primary HDU is not a table
    # a HIERARCH card: astropy reads the file (the fast path declines), the keyword survives
    t = pa.table({"A": np.arange(3.0)})
    p = tmp_path / "h.fits"
    T.write_table(t, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(p, mode="update") as hl:
            hl[1].header["HIERARCH LONG KEYWORD"] = 5
    with pytest.raises(FH.Unsupported):
        FH.find_bintable(str(p), None)
    back = T.read_table(p)
    assert back.column("A").to_pylist() == [0.0, 1.0, 2.0]


_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200)
_value = st.one_of(st.booleans(), st.integers(-(2**62), 2**62), st.floats(allow_nan=False, allow_infinity=False), _text)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["KEYA", "KEY_B", "SKYAREA", "OBJECT", "X-1"]),
            _value,
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=90),
        ),
        min_size=1,
        max_size=5,
        unique_by=lambda c: c[0],
    )
)
def test_written_cards_read_back_by_us_and_astropy(cards):
    data = FH.format_header([("XTENSION", "BINTABLE", ""), *cards])
    assert len(data) % 2880 == 0
    text = data.decode("ascii")
    assert all(len(text[k : k + 80]) == 80 for k in range(0, len(text), 80))
    parsed, done = FH.parse_cards(text)
    assert done
    got = {c.keyword: c.value for c in parsed}
    got_comment = {c.keyword: c.comment for c in parsed}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = fits.Header.fromstring(text)
    for key, value, comment in cards:
        want = value.rstrip() if isinstance(value, str) else value
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-12, abs=0)  # 20 characters at most
            continue
        assert got[key] == want
        if len(FH.format_card(key, value, comment)) <= 80:
            assert got_comment[key] == comment.strip()
        elif isinstance(value, str):  # long string: comment parts joined with single blanks
            assert got_comment[key].split() == comment.split() or "".join(got_comment[key].split()) == "".join(
                comment.split()
            )
        long_slash = isinstance(value, str) and len(FH.format_card(key, value, comment)) > 80 and "/" in value
        if not long_slash and "'" not in comment:
            # (astropy mis-reads long strings holding '/', and '' before a comment holding a quote)
            assert ref[key] == want


def test_history_and_long_strings_wrap():
    long = "x" * 150
    text = FH.format_header([("HISTORY", long, ""), ("XMMTPROV", "q'" * 60, "a comment")]).decode()
    parsed, _ = FH.parse_cards(text)
    hist = [c.value for c in parsed if c.keyword == "HISTORY"]
    assert "".join(hist) == long and max(len(h) for h in hist) == 72
    prov = [c for c in parsed if c.keyword == "XMMTPROV"][0]
    assert prov.value == "q'" * 60 and prov.comment == "a comment"
    with pytest.raises(ValueError):
        FH.format_card("BAD KEY", 1)
    with pytest.raises(ValueError):
        FH.format_card("OBJECT", "caf\u00e9")


def test_review_edge_cases(tmp_path):
    # a blank comment after a long string must not leave a dangling '&' in the value
    for comment in ("   ", ""):
        parsed, _ = FH.parse_cards(FH.format_header([("S", "x" * 80, comment)]).decode())
        assert parsed[0].value == "x" * 80
    # a long string whose last CONTINUE holds only the comment: trailing blanks dropped, as astropy
    text = FH.format_header([("LONGSTR", "a" * 66 + " b" + " " * 3, "note")]).decode()
    parsed, _ = FH.parse_cards(text)
    assert parsed[0].value == fits.Header.fromstring(text)["LONGSTR"] == "a" * 66 + " b"
    # a column name that cannot fit on one TTYPE card is refused before anything is written
    with pytest.raises(OutputError, match="column name 'NNNN.*at most 68"):
        T.write_table(pa.table({"N" * 69: [1.0]}), tmp_path / "long.fits")
    assert not list(tmp_path.iterdir())
    T.write_table(pa.table({"N" * 68: [1.0]}), tmp_path / "ok.fits")
    assert fits.getdata(tmp_path / "ok.fits").columns.names == ["N" * 68]  # astropy opens it
