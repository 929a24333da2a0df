"""Make log-derived text safe to show: no control bytes, no bidi tricks."""

from __future__ import annotations

import re

# C0, DEL, C1, and the Unicode controls that reorder or hide text on screen.
# What json.dumps(ensure_ascii=False) leaves raw: DEL, C1 and the Unicode
# controls (the C0 range it escapes itself).
UNSAFE_PRINTED = re.compile("[\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02X}" if code < 0x100 else f"\\u{code:04X}"


def safe_text(value: object) -> str:
    r"""`value` as text with every control character written as `\xHH` / `\uHHHH`.

    >>> safe_text("evil\x1b[31m")
    'evil\\x1B[31m'
    """
    if value is None:
        return "-"
    return UNSAFE.sub(_escape, str(value))
