"""Per-path table: requests, distinct clients, bytes, status mix and latency."""

from __future__ import annotations

import polars as pl

from pplog.reports._columns import bytes_column, has_latency
from pplog.schema import CLIENT_IP, PATH, REQUEST_TIME, STATUS


def paths(lf: pl.LazyFrame, *, top: int = 10) -> pl.LazyFrame:
    """Requests per `path` (the target without its query), busiest first.

    Requests whose line had no usable target (binary junk, PROXY headers) are
    grouped under a null path. Latency percentiles are exact (nearest rank).
    """
    columns = lf.collect_schema().names()
    status = pl.col(STATUS)
    aggs = [
        pl.len().cast(pl.UInt64).alias("requests"),
        pl.col(CLIENT_IP).drop_nulls().n_unique().cast(pl.UInt64).alias("clients"),
        bytes_column(columns).sum().cast(pl.UInt64).alias("bytes"),
        ((status >= 200) & (status < 400)).sum().cast(pl.UInt64).alias("ok_2xx_3xx"),
        ((status >= 400) & (status < 500)).sum().cast(pl.UInt64).alias("errors_4xx"),
        (status >= 500).sum().cast(pl.UInt64).alias("errors_5xx"),
    ]
    if has_latency(columns):
        rt = pl.col(REQUEST_TIME)
        aggs += [
            rt.quantile(0.5, "nearest").alias("request_time_p50"),
            rt.quantile(0.95, "nearest").alias("request_time_p95"),
            rt.quantile(0.99, "nearest").alias("request_time_p99"),
            rt.max().alias("request_time_max"),
        ]
    table = lf.group_by(PATH).agg(aggs)
    table = table.sort(["requests", PATH], descending=[True, False], nulls_last=True)
    return table.head(top) if top else table
