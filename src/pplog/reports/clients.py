"""Per-client table: requests, bytes, errors and when each client was seen."""

from __future__ import annotations

import polars as pl

from pplog.reports._columns import bytes_column
from pplog.schema import CLIENT_IP, PATH, STATUS, TIME


def clients(lf: pl.LazyFrame, *, top: int = 10) -> pl.LazyFrame:
    """Requests per `client_ip`, busiest first (ties by address)."""
    columns = lf.collect_schema().names()
    status = pl.col(STATUS)
    table = lf.group_by(CLIENT_IP).agg(
        pl.len().cast(pl.UInt64).alias("requests"),
        bytes_column(columns).sum().cast(pl.UInt64).alias("bytes"),
        ((status >= 400) & (status < 500)).sum().cast(pl.UInt64).alias("errors_4xx"),
        (status >= 500).sum().cast(pl.UInt64).alias("errors_5xx"),
        pl.col(PATH).drop_nulls().n_unique().cast(pl.UInt64).alias("paths"),
        pl.col(TIME).min().alias("first_time"),
        pl.col(TIME).max().alias("last_time"),
    )
    table = table.sort(["requests", CLIENT_IP], descending=[True, False], nulls_last=True)
    return table.head(top) if top else table
