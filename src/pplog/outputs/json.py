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

from pplog._text import escape_json, json_safe
from pplog.outputs._files import atomic_write
from pplog.outputs._format import cut_raw, overview, shown, with_iso_times
from pplog.outputs._options import ReportOptions
from pplog.reports import Summary

SLICE = 1000  # rows encoded at a time


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
    """A table as the rows of an array one level inside the document."""
    if not df.height:
        yield "[]"
        return
    df = with_iso_times(df)
    flat = df.width > 0 and not any(dtype.is_nested() for dtype in df.dtypes)
    escape = (lambda text: text) if flat and json_safe(df) else escape_json
    yield "[\n"
    for start in range(0, df.height, SLICE):
        rows: list[dict[str, Any]] = df.slice(start, SLICE).to_dicts()
        if flat:
            body = escape(_flat_rows(rows))
        else:
            body = "  " + _dumps(rows)[2:-2].replace("\n", "\n  ")
        yield ("" if start == 0 else ",\n") + body
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
