"""Make log-derived text safe to show: no control bytes, no bidi tricks.

The characters and their escapes are `pplog._text`'s one rule, shared with
`--rejects` (written below the outputs).
"""

from __future__ import annotations

from pplog._text import escape_text


def safe_text(value: object) -> str:
    r"""`value` as text with every control character written as `\xHH` / `\uHHHH`.

    >>> safe_text("evil\x1b[31m")
    'evil\\x1B[31m'
    """
    if value is None:
        return "-"
    return escape_text(str(value))
