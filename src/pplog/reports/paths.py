"""Per-path table: requests, distinct clients, bytes, status mix and latency."""

from __future__ import annotations

import polars as pl

from pplog.reports import sketches
from pplog.reports._columns import (
    APPROXIMATE,
    add_counts,
    bytes_column,
    distinct_for,
    exact_fits,
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


UPSTREAM_RESPONSE_TIME = "upstream_response_time"


def paths(lf: pl.LazyFrame, *, top: int = 10, key: str = PATH) -> pl.LazyFrame:
    """Requests per `path` (the target without its query), busiest first.

    Requests whose line had no usable target (binary junk, PROXY headers) are
    grouped under a null path. `key` may name another column to group by
    (``route``, with `pplog.enrich.routes`); the table then has that column.
    """
    columns = lf.collect_schema().names()
    status = pl.col(STATUS)
    table = lf.group_by(key).agg(
        pl.len().cast(pl.UInt64).alias("requests"),
        bytes_column(columns).sum().cast(pl.UInt64).alias("bytes"),
        ((status >= 200) & (status < 400)).sum().cast(pl.UInt64).alias("ok_2xx_3xx"),
        ((status >= 400) & (status < 500)).sum().cast(pl.UInt64).alias("errors_4xx"),
        (status >= 500).sum().cast(pl.UInt64).alias("errors_5xx"),
    )
    table = table.sort(["requests", key], descending=[True, False], nulls_last=True)
    return table.head(top) if top else table


def latency_columns(columns: list[str]) -> list[str]:
    """The logged latencies the table reports percentiles of."""
    found = [REQUEST_TIME] if has_latency(columns) else []
    return found + (
        [UPSTREAM_RESPONSE_TIME] if UPSTREAM_RESPONSE_TIME in columns else []
    )


def details(
    lf: pl.LazyFrame, table: pl.DataFrame, key: str = PATH
) -> list[pl.LazyFrame]:
    """Follow-up queries for the paths shown: distinct clients and latencies."""
    queries = [distinct_for(lf, table, [key], CLIENT_IP, "clients")]
    shown = shown_rows(lf, table, [key])
    schema = lf.collect_schema()
    for column in latency_columns(schema.names()):
        value = seconds(column, schema[column])
        if exact_fits(shown, table, [key], value):
            queries.append(_latency(shown, key, value, column))
        else:
            queries.append(_sketched_latency(shown, key, value, column))
    return queries


def finish(
    table: pl.DataFrame, extra: list[pl.DataFrame], key: str = PATH
) -> pl.DataFrame:
    """The table with the follow-up columns, in contract order."""
    out = add_counts(table, extra[0], [key], "clients").select(key, *COLUMNS[1:])
    for latency in extra[1:]:
        out = out.join(
            latency, on=key, how="left", nulls_equal=True, maintain_order="left"
        )
    return out


def seconds(column: str, dtype: pl.DataType) -> pl.Expr:
    """A latency in seconds per request; upstream lists add up the tries."""
    col = pl.col(column)
    if isinstance(dtype, pl.List):
        tried = col.list.drop_nulls()
        return pl.when(tried.list.len() > 0).then(tried.list.sum()).alias(column)
    return col


QUANTILES = (0.50, 0.95, 0.99)


def _sketched_latency(
    lf: pl.LazyFrame, key: str, value: pl.Expr, name: str
) -> pl.LazyFrame:
    """p50/p95/p99 within 1% (DDSketch, `sketches`), and the exact max."""
    values = lf.select(key, value.alias("_v"))
    names = {q: f"{name}_p{round(q * 100)}" for q in QUANTILES}
    quantiles = sketches.dd_quantiles(
        sketches.dd_state(values, [key], "_v"), [key], QUANTILES, names=names
    )
    top = values.group_by(key).agg(pl.col("_v").max().alias(f"{name}_max"))
    return quantiles.join(top, on=key, how="left", nulls_equal=True).with_columns(
        pl.lit(f"{name}_p50/p95/p99").alias(APPROXIMATE)
    )


def _latency(lf: pl.LazyFrame, key: str, value: pl.Expr, name: str) -> pl.LazyFrame:
    """Exact nearest-rank p50/p95/p99 and max per `key` from a histogram.

    nginx logs times in milliseconds, so counting each distinct value per key
    is exact and needs memory for distinct (key, value) pairs only.
    """
    hist = (
        lf.select(key, value.alias("_v"))
        .filter(pl.col("_v").is_not_null())
        .group_by(key, "_v")
        .agg(pl.len().alias("_n"))
        .sort(key, "_v", nulls_last=True)
        .with_columns(
            pl.col("_n").cum_sum().over(key).alias("_cum"),
            pl.col("_n").sum().over(key).alias("_total"),
        )
    )

    def rank(q: float) -> pl.Expr:
        reached = pl.col("_cum") >= (pl.col("_total") * q).ceil()
        return pl.col("_v").filter(reached).first()

    return hist.group_by(key).agg(
        rank(0.50).alias(f"{name}_p50"),
        rank(0.95).alias(f"{name}_p95"),
        rank(0.99).alias(f"{name}_p99"),
        pl.col("_v").max().alias(f"{name}_max"),
    )
