"""The one rule for log text shown or written for people: which characters are escaped.

Log content is attacker-controlled. On a terminal, in an editor or in a browser
some characters act instead of showing: C0 controls (ESC starts terminal
sequences), DEL, C1 controls (U+009B is a one-byte CSI), the bidi controls
that reorder a line (U+202E), zero-width characters that hide text, tag
characters (U+E0000-E007F, invisible), and line/paragraph separators.
Every output escapes the same set, each in its own syntax:

- text (terminal, CSV, HTML before HTML escaping): ``\\xHH``, ``\\uHHHH``,
  ``\\UHHHHHHHH``; a reader sees the code point, nothing acts;
- JSON (summarize, doctor, ``--rejects``): ``\\uhhhh`` escapes (surrogate pairs
  beyond the BMP), so a JSON reader gets the exact text back.

Both have a Python form (for the few strings of a report) and a polars form
(for whole columns: one Aho-Corasick pass, no Python per row).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import polars as pl

_RANGES = (
    (0x00, 0x1F),  # C0
    (0x7F, 0x9F),  # DEL, C1
    (0x061C, 0x061C),  # Arabic letter mark (bidi)
    (0x200B, 0x200F),  # zero-width space/non-joiner/joiner, LRM, RLM
    (0x2028, 0x202E),  # line and paragraph separators, bidi embeddings/overrides
    (0x2060, 0x2069),  # word joiner, invisible operators, bidi isolates
    (0xFEFF, 0xFEFF),  # zero-width no-break space (BOM)
    (0xE0000, 0xE007F),  # tag characters
)
UNSAFE_CHARS = "".join(chr(c) for lo, hi in _RANGES for c in range(lo, hi + 1))
UNSAFE = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _RANGES) + "]")


def _text_escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02X}"
    return f"\\u{code:04X}" if code < 0x10000 else f"\\U{code:08X}"


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON spells it
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


_TEXT_ESCAPES = [_text_escape(c) for c in UNSAFE_CHARS]
_TEXT = dict(zip(UNSAFE_CHARS, _TEXT_ESCAPES, strict=True))
# JSON encoders (json.dumps, polars) escape C0 themselves, and the newlines
# between a JSON document's lines are C0: left alone
_JSON_CHARS = [c for c in UNSAFE_CHARS if c >= " "]
_JSON_ESCAPES = [_json_escape(c) for c in _JSON_CHARS]
_JSON = dict(zip(_JSON_CHARS, _JSON_ESCAPES, strict=True))
# the same characters as a class of polars' (Rust) regex syntax
_JSON_CLASS = (
    "["
    + "".join(f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in _RANGES if lo >= 0x20)
    + "]"
)
_JSON_UNSAFE = re.compile(UNSAFE.pattern.replace(f"{chr(0)}-{chr(0x1F)}", ""))


def valid_text(text: str) -> str:
    r"""`text` as valid Unicode: the lone surrogates by which Python carries
    bytes that are not UTF-8 (`os.fsdecode` of a file named in Latin-1) are
    written ``\xHH`` for the byte (``\udHHH`` for any other surrogate);
    polars, terminals and JSON files refuse them raw. Valid text is
    returned unchanged.

    >>> valid_text("lat\udce9.log")
    'lat\\xe9.log'
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
        return raw.decode("utf-8", "backslashreplace")
    return text


def escape_text(text: str) -> str:
    r"""`text` with each unsafe character as ``\xHH``, ``\uHHHH`` or ``\UHHHHHHHH``
    (and made valid first: `valid_text`).

    >>> escape_text("evil\x1b[31m\u202e\U000e0041")
    'evil\\x1B[31m\\u202E\\U000E0041'
    """
    return UNSAFE.sub(lambda m: _TEXT[m.group()], valid_text(text))


def escape_json(text: str) -> str:
    r"""JSON `text` with each unsafe character the encoder left raw as a ``\u`` escape.

    Only valid on encoded JSON, whose encoder escaped C0 already: the other
    characters can only occur inside its strings, where the escape means the
    same character.

    >>> escape_json('"\x9b\u202e"')
    '"\\u009b\\u202e"'
    """
    if text.isascii() and "\x7f" not in text:  # isascii is O(1): most JSON
        return text
    return _JSON_UNSAFE.sub(lambda m: _JSON[m.group()], text)


def json_safe(df: pl.DataFrame) -> bool:
    """Whether no text in `df` holds a character `escape_json` would escape
    (one vectorised pass, so JSON of a large table can skip the escaping)."""
    texts = [c for c, dtype in df.schema.items() if dtype == pl.String]
    if not texts:
        return True
    hit = df.select(pl.any_horizontal(pl.col(texts).str.contains(_JSON_CLASS).any()))
    return not hit.item()


def escape_text_expr(expr: pl.Expr, also: Mapping[str, str] | None = None) -> pl.Expr:
    """`escape_text` over a string column, in one pass with the replacements `also`.

    `also` maps other characters to their escapes (HTML's `&`, `<` ...); they
    are applied to the original text, never to an escape.
    """
    also = also or {}
    return expr.str.replace_many(
        [*UNSAFE_CHARS, *also], [*_TEXT_ESCAPES, *also.values()]
    )


def escape_json_expr(expr: pl.Expr) -> pl.Expr:
    """`escape_json` over a column of encoded JSON."""
    return expr.str.replace_many(_JSON_CHARS, _JSON_ESCAPES)
