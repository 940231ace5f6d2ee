"""FITS headers read and written without astropy (FITS Standard 4.0, sects. 4.1-4.2, 7.3).

``astropy.io.fits`` costs 0.3 s to import (it pulls in astropy.units), on every command that
touches a FITS file, while xmmtools only needs the header cards of a binary table: the rows are
read and written by :mod:`xmmtools.tables.fits.reader` and :mod:`xmmtools.tables.fits.writer`.
This module parses and formats those cards.

Reading is a fast path: :func:`find_bintable` handles well-formed uncompressed files and raises
:class:`Unsupported` for anything unusual (HIERARCH or malformed cards, complex values, HDUs it
cannot size, an HDU that is not a binary table), and :mod:`xmmtools.tables.fits.reader` then
falls back to astropy, which also gives the error messages for damaged files.  Values follow astropy's
conventions: strings lose trailing blanks, ``''`` is a quote, long strings continue on
``CONTINUE`` cards (the OGIP long-string convention, a trailing ``&``), HISTORY/COMMENT cards keep
their text.  Formatting follows astropy's card layout (values right-justified to column 30,
strings quoted from column 11, floats as ``str()`` with an upper-case exponent, at most 20
characters), so the headers written are the ones astropy would write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, KeysView
from typing import Any, BinaryIO, NamedTuple

BLOCK = 2880
CARD = 80
_COMMENTARY = ("HISTORY", "COMMENT", "")
_KEY = re.compile(r"[A-Z0-9_-]{0,8}")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][+-]?\d+)?")
#: keywords that describe the table structure: rewritten on output, never kept from an input
STRUCTURAL = re.compile(
    r"^(XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|THEAP|EXTEND|SIMPLE|END|CHECKSUM|DATASUM|"
    r"T(TYPE|FORM|UNIT|NULL|SCAL|ZERO|DIM|DISP|COMM|UCD|DMIN|DMAX|LMIN|LMAX)\d+|XMMTPROV)$"
)


class Unsupported(Exception):
    """The fast path does not handle this file; use astropy."""


class Card(NamedTuple):
    keyword: str
    value: Any
    comment: str


class Header:
    """The cards of one HDU with the look-ups xmmtools needs (``get``, ``in``, ``[key]``,
    ``comments[key]``, ``cards``); the first card of a repeated keyword wins, as in astropy."""

    def __init__(self, cards: list[Card]):
        self.cards = cards
        self._first: dict[str, Card] = {}
        for c in cards:
            if c.keyword not in _COMMENTARY:
                self._first.setdefault(c.keyword, c)

    def get(self, key: str, default: Any = None) -> Any:
        c = self._first.get(key.upper())
        return default if c is None else c.value

    def __contains__(self, key: str) -> bool:
        return key.upper() in self._first

    def __getitem__(self, key: str) -> Any:
        return self._first[key.upper()].value

    def keys(self) -> KeysView[str]:
        return self._first.keys()

    @property
    def comments(self) -> _Comments:
        return _Comments(self._first)

    def copy(self) -> Header:
        return self


class _Comments:
    def __init__(self, first: dict[str, Card]):
        self._first = first

    def __getitem__(self, key: str) -> str:
        return self._first[key.upper()].comment


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------


def parse_card(image: str) -> Card:
    """One 80-character card image (CONTINUE cards are joined by :func:`parse_cards`)."""
    key = image[:8].rstrip()
    if key == "HIERARCH" or not _KEY.fullmatch(key):
        raise Unsupported(f"keyword {key!r}")
    if key in _COMMENTARY or image[8:10] != "= ":
        return Card(key, image[8:].rstrip(), "")
    value, comment = _split_value(image[10:])
    return Card(key, value, comment)


def _split_value(field: str) -> tuple[Any, str]:
    s = field.lstrip()
    if s.startswith("'"):
        i, out = 1, []
        while True:
            j = s.find("'", i)
            if j < 0:
                raise Unsupported("unterminated string")
            out.append(s[i:j])
            if s[j + 1 : j + 2] == "'":  # '' is a quote inside the string
                out.append("'")
                i = j + 2
                continue
            break
        rest = s[j + 1 :]
        value: Any = "".join(out).rstrip()
    else:
        k = s.find("/")
        token, rest = (s, "") if k < 0 else (s[:k], s[k:])
        token = token.strip()
        if token == "":
            value = None
        elif token in ("T", "F"):
            value = token == "T"
        elif _INT.fullmatch(token):
            value = int(token)
        elif _FLOAT.fullmatch(token):
            value = float(token.replace("D", "E").replace("d", "e"))
        else:
            raise Unsupported(f"value {token!r}")
    rest = rest.strip()
    if rest and not rest.startswith("/"):
        raise Unsupported(f"text after the value: {rest!r}")
    return value, rest[1:].strip() if rest else ""


def parse_cards(block: str) -> tuple[list[Card], bool]:
    """Cards of a header text (a multiple of 80 characters) and whether END was seen."""
    cards: list[Card] = []
    for k in range(0, len(block), CARD):
        image = block[k : k + CARD]
        if image[:8] == "END     ":
            return cards, True
        if image[:8] == "CONTINUE":
            prev = cards[-1] if cards else None
            if prev is None or not isinstance(prev.value, str) or not prev.value.endswith("&"):
                raise Unsupported("CONTINUE without a long string before it")
            more, comment = _split_value(image[8:]) if image[8:].strip() else ("", "")
            if not isinstance(more, str):
                raise Unsupported("CONTINUE without a string")
            joined = " ".join(x for x in (prev.comment, comment) if x)
            value = prev.value[:-1] + more
            # the whole string loses its trailing blanks, as a one-card string does
            cards[-1] = Card(prev.keyword, value if value.endswith("&") else value.rstrip(), joined)
            continue
        cards.append(parse_card(image))
    return cards, False


def read_header(f: BinaryIO) -> tuple[Header, int]:
    """The header starting at the file position; returns it and its length in bytes."""
    text, n = [], 0
    while True:
        block = f.read(BLOCK)
        if len(block) < BLOCK:
            raise Unsupported("truncated header")
        n += BLOCK
        try:
            s = block.decode("ascii")
        except UnicodeDecodeError:
            raise Unsupported("non-ASCII header") from None
        text.append(s)
        if "END" in s:
            cards, done = parse_cards("".join(text))
            if done:
                return Header(cards), n
        if n > 2000 * BLOCK:
            raise Unsupported("header without END")


def data_size(h: Header) -> int:
    """Bytes of the data unit of an HDU (FITS 4.0 eq. 1/2), before padding."""
    naxis = h.get("NAXIS")
    bitpix = h.get("BITPIX")
    if not isinstance(naxis, int) or not isinstance(bitpix, int) or naxis < 0:
        raise Unsupported("NAXIS/BITPIX")
    if naxis == 0:
        return 0
    size = 1
    for i in range(1, naxis + 1):
        v = h.get(f"NAXIS{i}")
        if not isinstance(v, int) or v < 0:
            raise Unsupported(f"NAXIS{i}")
        size *= v
    pcount, gcount = h.get("PCOUNT", 0), h.get("GCOUNT", 1)
    if not isinstance(pcount, int) or not isinstance(gcount, int):
        raise Unsupported("PCOUNT/GCOUNT")
    if "SIMPLE" in h and h.get("GROUPS") is True:
        raise Unsupported("random groups")
    return abs(bitpix) // 8 * gcount * (pcount + size)


def find_bintable(path: str, ext: str | None) -> tuple[Header, int, int]:
    """(header, data offset, HDU index) of the binary table ``ext`` (a number or an EXTNAME)
    or of the first binary table; :class:`Unsupported` when the file needs astropy."""
    with open(path, "rb") as f:
        pos, i = 0, 0
        while True:
            f.seek(pos)
            h, hlen = read_header(f)
            first = h.cards[0].keyword if h.cards else ""
            if (i == 0) != (first == "SIMPLE") or (i > 0 and first != "XTENSION"):
                raise Unsupported("not a FITS HDU")
            xt = str(h.get("XTENSION", "")).strip().upper()
            name = str(h.get("EXTNAME", "")).strip().upper()
            hit = (ext is None and xt == "BINTABLE") or (
                ext is not None and ((ext.isdigit() and int(ext) == i) or name == ext.upper())
            )
            if hit:
                if xt != "BINTABLE":
                    raise Unsupported("not a binary table")
                return h, pos + hlen, i
            pos += hlen + -(-data_size(h) // BLOCK) * BLOCK
            i += 1


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------


def format_float(value: float) -> str:
    """``str()`` with an upper-case exponent (as astropy writes floats); a value that needs
    more than the 20 characters of a fixed-format field is rounded to the most significant
    digits that fit (astropy truncates them)."""
    s = str(float(value)).replace("e", "E")
    p = 17
    while len(s) > 20 and p > 1:
        p -= 1
        s = f"{float(value):.{p}E}"
    return s


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return "''" if value == "" else f"{_quoted(value):20}"
    if isinstance(value, bool):
        return f"{'T' if value else 'F':>20}"
    if isinstance(value, int):
        return f"{value:>20d}"
    if isinstance(value, float):
        return f"{format_float(value):>20}"
    raise ValueError(f"cannot write a FITS value of type {type(value).__name__}")


def _quoted(value: str) -> str:
    inner = value.replace("'", "''")
    return f"'{inner:8}'"


def format_card(key: str, value: Any = None, comment: str = "") -> str:
    """Card image(s), a multiple of 80 characters.  Long strings continue on CONTINUE cards;
    long HISTORY/COMMENT text on further cards of 72 characters."""
    key = key.upper()
    comment = str(comment or "").strip()
    if not _KEY.fullmatch(key) or key == "":
        raise ValueError(f"keyword {key!r} is not a FITS keyword")
    text = f"{value}" if key in ("HISTORY", "COMMENT") else None
    for v in (value, comment) if text is None else (text,):
        if isinstance(v, str) and not (v.isascii() and v.isprintable()):
            raise ValueError(f"{key}: FITS header text must be printable ASCII")
    if text is not None:
        parts = [text[i : i + 72] for i in range(0, len(text), 72)] or [""]
        return "".join(f"{key:8}{p:72}" for p in parts)
    image = f"{key:8}= {format_value(value)}"
    if comment:
        image += f" / {comment}"
    if len(image) <= CARD:
        return f"{image:80}"
    if not isinstance(value, str):
        return image[:CARD]  # a number with a long comment: the comment is cut, as astropy does
    return _long_string(key, value, comment)


def _long_string(key: str, value: str, comment: str) -> str:
    # OGIP long-string convention: chunks of <= 67 characters once quotes are doubled (a
    # doubled quote is never split), '&' ending every chunk but the last
    chunks, cur = [], ""
    for ch in value:
        e = "''" if ch == "'" else ch
        if len(cur) + len(e) > 67:
            chunks.append(cur)
            cur = ""
        cur += e
    chunks.append(cur)
    out = []
    for n, c in enumerate(chunks):
        head = f"{key:8}= " if n == 0 else "CONTINUE  "
        last = n == len(chunks) - 1 and not comment
        out.append(f"{head}'{c}{'' if last else '&'}'".ljust(CARD))
    if comment:  # readers join the comment parts with a blank: split at blanks where possible
        words, rest = [], comment.strip()
        while rest:
            cut = rest.rfind(" ", 0, 65) if len(rest) > 64 else len(rest)
            cut = cut if cut > 0 else 64
            words.append(rest[:cut].strip())
            rest = rest[cut:].strip()
        for n, w in enumerate(words):
            head = "CONTINUE  '' / " if n == len(words) - 1 else "CONTINUE  '&' / "
            out.append(f"{head}{w}".ljust(CARD))
    return "".join(out)


def single_card(key: str, value: Any, comment: str = "") -> str:
    """:func:`format_card` for a keyword that must fit on one card (TTYPEn, TFORMn, ...: FITS
    readers such as astropy do not accept the long-string convention there)."""
    image = format_card(key, value, comment)
    if len(image) > CARD:
        raise ValueError(f"{key}={value!r} does not fit on one 80-character FITS card")
    return image


def format_header(cards: Iterable[tuple[str, Any, str]]) -> bytes:
    """A whole header: the cards, END, blank padding to a multiple of 2880 bytes."""
    text = "".join(format_card(k, v, c) for k, v, c in cards) + "END".ljust(CARD)
    text += " " * (-len(text) % BLOCK)
    return text.encode("ascii")


def primary_header() -> bytes:
    """The empty primary HDU in front of a binary table (as astropy writes it)."""
    return format_header(
        [
            ("SIMPLE", True, "conforms to FITS standard"),
            ("BITPIX", 8, "array data type"),
            ("NAXIS", 0, "number of array dimensions"),
            ("EXTEND", True, ""),
        ]
    )
