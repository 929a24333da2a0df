"""`--to json`: the whole summary as one JSON object, written as a stream.

The document is what ``json.dumps(doc, ensure_ascii=False, indent=2)`` would
give, but each table is encoded a slice of rows at a time and written at
once, so memory follows the slice, not the table: with `--top 0` on 2M
distinct clients, one dict of everything and one string of it took 16.8 GB.
Times are formatted by polars (ISO 8601, `Z` for UTC), which also holds
years Python cannot. Characters that act on a terminal (`pplog._text`) are
JSON escapes, as the encoder already does for C0.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, ClassVar

import polars as pl

from pplog._text import escape_json, escape_json_expr, json_safe
from pplog.outputs._files import atomic_write
from pplog.outputs._format import cut_raw, overview, shown, with_iso_times
from pplog.outputs._options import ReportOptions
from pplog.reports import Summary

SLICE = 1000  # rows encoded at a time through Python's encoder
POLARS_SLICE = 5_000  # ... and by polars
POLARS_MIN_ROWS = 1000  # below this, the encoder is faster than a polars query


def _dumps(value: object) -> str:
    return escape_json(json.dumps(value, ensure_ascii=False, indent=2))


def _samples(summary: Summary) -> pl.DataFrame:
    """Reject samples with each raw line cut as everywhere else (`cut_raw`)."""
    samples = summary.reject_samples
    if "raw" not in samples.columns or not samples.height:
        return samples
    raw = [None if r is None else cut_raw(r) for r in samples.get_column("raw")]
    return samples.with_columns(pl.Series("raw", raw, dtype=pl.String))


# The rows of a table, each an object at the document's third level, in the
# layout `json.dumps(..., indent=2)` gives them (see `_flat_rows`).
_ROW_OPEN, _FIELD, _ROW_CLOSE = "    {\n      ", ",\n      ", "\n    }"
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=("\n", ": "))
# What `json.dumps(..., ensure_ascii=False)` escapes in a string: the quote,
# the backslash and C0 (short forms where JSON has them, else \u00XX)
_SHORT = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
_STRING_CHARS = [*_SHORT, *(chr(c) for c in range(0x20) if chr(c) not in _SHORT)]
_STRING_ESCAPES = [_SHORT.get(c, f"\\u{ord(c):04x}") for c in _STRING_CHARS]


def _encoded(df: pl.DataFrame, name: str, *, escape: bool) -> pl.Expr:
    """Column `name` as `json.dumps` writes each value (`escape`: and
    `escape_json` after it)."""
    dtype = df.schema[name]
    col = pl.col(name)
    if dtype == pl.String:
        text = col.str.replace_many(_STRING_CHARS, _STRING_ESCAPES)
        if escape:
            text = escape_json_expr(text)
        out = pl.concat_str(pl.lit('"'), text, pl.lit('"'))
    elif dtype == pl.Boolean:
        out = pl.when(col).then(pl.lit("true")).otherwise(pl.lit("false"))
    elif dtype.is_integer():
        out = col.cast(pl.String)
    else:  # floats: Python's own repr, NaN and Infinity as the encoder has them
        values = _COMPACT.encode(df.get_column(name).to_list())[1:-1].split("\n")
        return pl.lit(pl.Series(values, dtype=pl.String))
    return pl.when(col.is_null()).then(pl.lit("null")).otherwise(out)


def _frame_rows(df: pl.DataFrame, *, escape: bool) -> str:
    """`_flat_rows` of `df` built by polars: each value encoded per column,
    the fields and rows joined around them (`_by_polars` types only)."""
    pieces: list[pl.Expr] = []
    for i, name in enumerate(df.columns):
        key = escape_json(json.dumps(name, ensure_ascii=False))
        pieces.append(pl.lit((_ROW_OPEN if i == 0 else _FIELD) + key + ": "))
        pieces.append(_encoded(df, name, escape=escape))
    pieces.append(pl.lit(_ROW_CLOSE))
    row = pl.concat_str(pieces)
    text: str = df.select(row.str.join(",\n")).item()
    return text


def _by_polars(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Boolean) or dtype.is_integer() or dtype.is_float()


def _flat_rows(rows: list[dict[str, Any]]) -> str:
    """`rows` (objects of scalars) as `_dumps` lays them out one level down.

    `json.dumps` with `indent` runs Python's encoder, a call per value (0.5 s
    for 70,000 rows); without it the C encoder runs. Its item separator here
    is a newline, which the encoder escapes inside strings, so each newline of
    its output is a separator: between fields, or, after a closing brace,
    between rows (a scalar never ends with one). They become the indented
    separators.
    """
    body = _COMPACT.encode(rows)[2:-2]  # '[{' fields '}\n{' fields '}]'
    body = body.replace("\n", _FIELD).replace(
        "}" + _FIELD + "{", _ROW_CLOSE + ",\n" + _ROW_OPEN
    )
    return _ROW_OPEN + body + _ROW_CLOSE


def _array(df: pl.DataFrame) -> Iterator[str]:
    """A table as the rows of an array one level inside the document.

    Tables of `POLARS_MIN_ROWS` rows or more of text, numbers and flags are
    encoded by polars, a column at a time (floats by Python's repr, as the
    encoder writes them): a document of 70,000 rows in 0.14 s against 0.33 s
    through `to_dicts` and the C encoder, which other tables take (on the
    top 10 rows the encoder is faster). Either way, a slice of rows at a time.
    """
    if not df.height:
        yield "[]"
        return
    df = with_iso_times(df)
    flat = df.width > 0 and not any(dtype.is_nested() for dtype in df.dtypes)
    by_polars = (
        flat
        and df.height >= POLARS_MIN_ROWS
        and all(_by_polars(dtype) for dtype in df.dtypes)
    )
    safe = flat and json_safe(df)
    escape = (lambda text: text) if safe else escape_json
    yield "[\n"
    step = POLARS_SLICE if by_polars else SLICE
    for start in range(0, df.height, step):
        part = df.slice(start, step)
        if by_polars:
            body = _frame_rows(part, escape=not safe)
        elif flat:
            body = escape(_flat_rows(part.to_dicts()))
        else:
            body = "  " + _dumps(part.to_dicts())[2:-2].replace("\n", "\n  ")
        if start:
            yield ",\n"
        yield body
    yield "\n  ]"


def chunks(summary: Summary) -> Iterator[str]:
    """The JSON document in pieces; joined, they are one object and a newline."""
    yield '{\n  "overview": ' + _dumps(overview(summary, "iso")).replace("\n", "\n  ")
    tables = {**summary.tables(), "reject_samples": _samples(summary)}
    for name, table in tables.items():
        yield f",\n  {_dumps(name)}: "
        yield from _array(table)
    yield "\n}\n"


def _write(stream: IO[str], summary: Summary) -> None:
    for chunk in chunks(summary):
        stream.write(chunk)


class JsonReporter:
    """One JSON object on stdout, or in the file given with `-o`."""

    name: ClassVar[str] = "json"

    def write(self, summary: Summary, options: ReportOptions) -> None:
        """Write `summary` (its tables cut to `options.top` rows, if given)."""
        summary = shown(summary, options.top)
        if options.out is None:
            _write(options.stream or sys.stdout, summary)
            return
        out = options.out / "summary.json" if options.out.is_dir() else options.out

        def write(path: Path) -> None:
            with path.open("w", encoding="utf-8") as f:
                _write(f, summary)

        atomic_write(out, write, options.staging)


def one_line(summary: Summary) -> str:
    """The document `chunks` writes, on one line (`pplog top --to jsonl`):
    the same keys and values, without the indentation."""
    doc: dict[str, Any] = {"overview": overview(summary, "iso")}
    tables = {**summary.tables(), "reject_samples": _samples(summary)}
    for name, table in tables.items():
        doc[name] = with_iso_times(table).to_dicts() if table.height else []
    return escape_json(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
