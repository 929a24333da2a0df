"""Helpers shared by the outputs: cut raw lines, format times and sizes, cut tables."""

from __future__ import annotations

import dataclasses
from typing import Any

import polars as pl

from pplog.reports import Summary

# Raw lines (reject samples) are cut to this many characters wherever they are
# shown: a 500 MB line must not make a 500 MB report. `--rejects FILE` keeps
# them whole.
RAW_LIMIT = 2000


def cut_raw(text: str, limit: int = RAW_LIMIT) -> str:
    """`text` cut to `limit` characters, marked `… (N bytes)` (its UTF-8 length).

    >>> cut_raw("abcdef", 3)
    'abc… (6 bytes)'
    """
    if len(text) <= limit:
        return text
    size = len(text.encode("utf-8", "surrogatepass"))
    return f"{text[:limit]}… ({size:,} bytes)"


def format_inputs(summary: Summary) -> list[tuple[str, str | None]]:
    """(input, format) of a mixed summary; a file read in two formats (its
    `log_format` changed within it) named with the lines of each, the end of
    its detection notes (`lines 1 to 300`, `lines 301 on`)."""
    names = [f["source"] or "" for f in summary.formats]
    return [
        (
            f"{name} ({(f['detection'] or '').rsplit('; ', 1)[-1]})"
            if names.count(name) > 1
            else name,
            f["format"],
        )
        for name, f in zip(names, summary.formats, strict=True)
    ]


def human_bytes(n: int | None) -> str:
    """1536 -> '1.5 KiB'."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


# Times are formatted by polars, which holds years Python's datetime cannot
# (a frame may reach past 9999; a timeline end may too).
WHEN = "%Y-%m-%d %H:%M:%S"


def when_text(column: str | pl.Expr) -> pl.Expr:
    """A datetime column as `2026-11-20 00:00:00` (UTC as stored)."""
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.dt.to_string(WHEN)


def with_times_as_text(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with every datetime column as `when_text` (nulls stay null)."""
    return df.with_columns(
        when_text(c).alias(c)
        for c, dtype in df.schema.items()
        if isinstance(dtype, pl.Datetime)
    )


def _iso(column: str, dtype: pl.Datetime) -> pl.Expr:
    """`datetime.isoformat()` with `+00:00` as `Z`, computed by polars."""
    col = pl.col(column)
    text = (
        pl.when(col.dt.microsecond() != 0)
        .then(col.dt.to_string("%Y-%m-%dT%H:%M:%S%.6f"))
        .otherwise(col.dt.to_string("%Y-%m-%dT%H:%M:%S"))
    )
    if dtype.time_zone is not None:
        text = text + col.dt.to_string("%:z").str.replace(r"^\+00:00$", "Z")
    return text.alias(column)


def with_iso_times(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with every datetime column as ISO 8601 text (`2026-11-20T00:00:00Z`)."""
    return df.with_columns(
        _iso(c, dtype)
        for c, dtype in df.schema.items()
        if isinstance(dtype, pl.Datetime)
    )


def overview(summary: Summary, times: str = "text") -> dict[str, Any]:
    """`summary.overview_dict()` with its times as text (`iso` for JSON)."""
    row = summary.overview
    row = with_iso_times(row) if times == "iso" else with_times_as_text(row)
    return dataclasses.replace(summary, overview=row).overview_dict()


# Tables that `top` never cuts: every interval, every status code, every class.
WHOLE = frozenset({"timeline", "status", "agents", "devices"})


def shown(summary: Summary, top: int | None) -> Summary:
    """`summary` with its tables cut to the `top` busiest rows (None or 0: as is).

    A summary computed with `top=0` and cut here has the tables of one
    computed with `top` (they are sorted busiest first), so one summary can
    feed whole tables to Parquet and the top rows to the terminal.
    """
    if not top:
        return summary
    extra = {
        name: df if name in WHOLE else df.head(top)
        for name, df in summary.extra.items()
    }
    return dataclasses.replace(
        summary,
        clients=summary.clients.head(top),
        paths=summary.paths.head(top),
        errors=summary.errors.head(top),
        extra=extra,
        top=top,
    )
