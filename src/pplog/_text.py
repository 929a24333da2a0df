"""The one rule for log text shown or written for people: which characters are escaped.

Log content is attacker-controlled. On a terminal, in an editor or in a browser
some characters act instead of showing: C0 controls (ESC starts terminal
sequences), DEL, C1 controls (U+009B is a one-byte CSI), the bidi controls
that reorder a line (U+202E), line/paragraph separators, and every other
character Unicode says to show as nothing (its Default_Ignorable_Code_Point
set: zero-width characters, the soft hyphen, Hangul fillers, variation
selectors, tag characters), which would make `/adm\u00adin` a second
`/admin` on the screen. Every output escapes the same set, each in its own
syntax:

- text (terminal, CSV, HTML before HTML escaping): ``\\xHH``, ``\\uHHHH``,
  ``\\UHHHHHHHH``; a reader sees the code point, nothing acts;
- JSON (summarize, doctor, ``--rejects``): ``\\uhhhh`` escapes (surrogate pairs
  beyond the BMP), so a JSON reader gets the exact text back.

Both have a Python form (for the few strings of a report) and a polars form
(for whole columns: one Aho-Corasick pass, no Python per row).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import polars as pl

# C0, DEL, C1, the line separators and Unicode 16's Default_Ignorable_Code_Point
# (DerivedCoreProperties.txt), the interlinear annotation controls with them
_RANGES = (
    (0x00, 0x1F),  # C0
    (0x7F, 0x9F),  # DEL, C1
    (0xAD, 0xAD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark (bidi)
    (0x115F, 0x1160),  # Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian variation selectors, vowel separator
    (0x200B, 0x200F),  # zero-width space/non-joiner/joiner, LRM, RLM
    (0x2028, 0x202E),  # line and paragraph separators, bidi embeddings/overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates, deprecated
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # zero-width no-break space (BOM)
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFFB),  # reserved, interlinear annotation controls
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format controls
    (0xE0000, 0xE007F),  # tag characters
    (0xE0080, 0xE0FFF),  # variation selectors 17-256, reserved (`_RARE`)
)
UNSAFE_CHARS = "".join(chr(c) for lo, hi in _RANGES for c in range(lo, hi + 1))
UNSAFE = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _RANGES) + "]")
# The last range is 3,968 of the set's 4,244 characters: polars builds the
# Aho-Corasick automaton of a `replace_many` each time it runs (5 ms with
# them, 0.9 ms without), so a frame's columns leave them out when no value
# holds one (`rare_in`), as nearly always.
_RARE = _RANGES[-1]
_COMMON = len(UNSAFE_CHARS) - (_RARE[1] - _RARE[0] + 1)
_RARE_CLASS = f"[\\x{{{_RARE[0]:X}}}-\\x{{{_RARE[1]:X}}}]"


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


def rare_in(df: pl.DataFrame, columns: Sequence[str]) -> bool:
    """Whether a value of `df`'s string `columns` holds one of the set's
    rare characters (variation selectors 17-256 and the reserved code points
    after them), which `escape_text_expr` may then not leave out."""
    if not columns or df.height == 0:
        return False
    found = df.select(
        pl.any_horizontal(
            pl.col(columns).cast(pl.String).str.contains(_RARE_CLASS).any()
        )
    )
    return bool(found.item())


def escape_text_expr(
    expr: pl.Expr, also: Mapping[str, str] | None = None, *, rare: bool = True
) -> pl.Expr:
    """`escape_text` over a string column, in one pass with the replacements `also`.

    `also` maps other characters to their escapes (HTML's `&`, `<` ...); they
    are applied to the original text, never to an escape. `rare=False` leaves
    out the rare characters (`rare_in` found none).
    """
    also = also or {}
    n = len(UNSAFE_CHARS) if rare else _COMMON
    return expr.str.replace_many(
        [*UNSAFE_CHARS[:n], *also], [*_TEXT_ESCAPES[:n], *also.values()]
    )


def escape_json_expr(expr: pl.Expr) -> pl.Expr:
    """`escape_json` over a column of encoded JSON (every character of the
    set: it runs only on tables `json_safe` found one in, and on rejects)."""
    return expr.str.replace_many(_JSON_CHARS, _JSON_ESCAPES)
