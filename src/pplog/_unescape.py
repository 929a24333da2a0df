"""Decode nginx `\\xHH` and `escape=json` value escapes, column at a time.

Only the values that contain a backslash are touched, and each distinct one is
decoded once, so a log with no escapes pays for one vectorised `contains`.
"""

from __future__ import annotations

import json
import re

import polars as pl

from pplog.sources import decode_bytes

_HEX = re.compile(rb"\\x([0-9A-Fa-f]{2})")


def decode_xhh(value: str) -> str:
    r"""Decode one nginx default-escaped value.

    Each `\xHH` becomes byte HH; the bytes are read as UTF-8, and bytes that do
    not form valid UTF-8 are written back as `\xHH` (upper-case), so nothing is
    lost. Decoding is single-pass: `\x5Cx41` gives the four characters `\x41`.
    """
    raw = _HEX.sub(lambda m: bytes([int(m.group(1), 16)]), value.encode("utf-8"))
    return decode_bytes(raw)


def decode_json_escapes(value: str) -> str:
    r"""Decode one `escape=json` value (`\"`, `\\`, `\n`, `\u0001`, ...)."""
    try:
        decoded = json.loads(f'"{value}"')
    except ValueError:
        return value
    assert isinstance(decoded, str)
    return decoded


def _decode_series(series: pl.Series, decode: type[str] | object) -> pl.Series:
    mask = series.str.contains("\\", literal=True).fill_null(False)  # noqa: FBT003
    if not mask.any():
        return series
    idx = mask.arg_true()
    values = series.gather(idx)
    table = {v: decode(v) for v in values.unique().to_list()}  # type: ignore[operator]
    return series.scatter(idx, values.replace_strict(table, return_dtype=pl.String))


def unescape(expr: pl.Expr, escape: str) -> pl.Expr:
    """An expression decoding a string column written with `escape`."""
    if escape == "default":
        func = decode_xhh
    elif escape == "json":
        func = decode_json_escapes
    else:
        return expr
    return expr.map_batches(
        lambda s: _decode_series(s, func), return_dtype=pl.String, is_elementwise=True
    )


def unescape_aws(expr: pl.Expr) -> pl.Expr:
    r"""AWS quoted fields: take off the quotes and read `\"` as `"`."""
    inner = expr.str.strip_prefix('"').str.strip_suffix('"')
    return inner.str.replace_all('\\"', '"', literal=True)
