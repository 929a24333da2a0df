"""Per-path table: requests, distinct clients, bytes, status mix and latency."""

from __future__ import annotations

import polars as pl

from pplog.reports._columns import (
    add_counts,
    bytes_column,
    distinct_for,
    has_latency,
    shown_rows,
)
from pplog.schema import CLIENT_IP, PATH, REQUEST_TIME, STATUS

COLUMNS = (
    "path",
    "requests",
    "clients",
    "bytes",
    "ok_2xx_3xx",
    "errors_4xx",
    "errors_5xx",
)


def paths(lf: pl.LazyFrame, *, top: int = 10) -> pl.LazyFrame:
    """Requests per `path` (the target without its query), busiest first.

    Requests whose line had no usable target (binary junk, PROXY headers) are
    grouped under a null path.
    """
    columns = lf.collect_schema().names()
    status = pl.col(STATUS)
    table = lf.group_by(PATH).agg(
        pl.len().cast(pl.UInt64).alias("requests"),
        bytes_column(columns).sum().cast(pl.UInt64).alias("bytes"),
        ((status >= 200) & (status < 400)).sum().cast(pl.UInt64).alias("ok_2xx_3xx"),
        ((status >= 400) & (status < 500)).sum().cast(pl.UInt64).alias("errors_4xx"),
        (status >= 500).sum().cast(pl.UInt64).alias("errors_5xx"),
    )
    table = table.sort(["requests", PATH], descending=[True, False], nulls_last=True)
    return table.head(top) if top else table


def details(lf: pl.LazyFrame, table: pl.DataFrame) -> list[pl.LazyFrame]:
    """Follow-up queries for the paths shown: distinct clients and latency."""
    queries = [distinct_for(lf, table, [PATH], CLIENT_IP, "clients")]
    if has_latency(lf.collect_schema().names()):
        queries.append(_latency(shown_rows(lf, table, [PATH])))
    return queries


def finish(table: pl.DataFrame, extra: list[pl.DataFrame]) -> pl.DataFrame:
    """The table with the follow-up columns, in contract order."""
    out = add_counts(table, extra[0], [PATH], "clients").select(COLUMNS)
    if len(extra) > 1:
        out = out.join(
            extra[1], on=PATH, how="left", nulls_equal=True, maintain_order="left"
        )
    return out


def _latency(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Exact nearest-rank p50/p95/p99 and max per path from a histogram.

    nginx logs `$request_time` in milliseconds, so counting each distinct value
    per path is exact and needs memory for distinct (path, value) pairs only.
    """
    hist = (
        lf.filter(pl.col(REQUEST_TIME).is_not_null())
        .group_by(PATH, REQUEST_TIME)
        .agg(pl.len().alias("_n"))
        .sort(PATH, REQUEST_TIME, nulls_last=True)
        .with_columns(
            pl.col("_n").cum_sum().over(PATH).alias("_cum"),
            pl.col("_n").sum().over(PATH).alias("_total"),
        )
    )

    def rank(q: float) -> pl.Expr:
        reached = pl.col("_cum") >= (pl.col("_total") * q).ceil()
        return pl.col(REQUEST_TIME).filter(reached).first()

    return hist.group_by(PATH).agg(
        rank(0.50).alias("request_time_p50"),
        rank(0.95).alias("request_time_p95"),
        rank(0.99).alias("request_time_p99"),
        pl.col(REQUEST_TIME).max().alias("request_time_max"),
    )
