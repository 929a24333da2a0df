"""Errors table: 4xx and 5xx responses by status and path."""

from __future__ import annotations

import polars as pl

from pplog.schema import CLIENT_IP, PATH, STATUS, TIME


def errors(lf: pl.LazyFrame, *, top: int = 10) -> pl.LazyFrame:
    """Requests with status >= 400 grouped by (status, path), most frequent first."""
    table = (
        lf.filter(pl.col(STATUS) >= 400)
        .group_by(STATUS, PATH)
        .agg(
            pl.len().cast(pl.UInt64).alias("requests"),
            pl.col(CLIENT_IP).drop_nulls().n_unique().cast(pl.UInt64).alias("clients"),
            pl.col(TIME).min().alias("first_time"),
            pl.col(TIME).max().alias("last_time"),
        )
        .sort(["requests", STATUS, PATH], descending=[True, False, False], nulls_last=True)
    )
    return table.head(top) if top else table
