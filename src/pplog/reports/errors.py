"""Errors table: 4xx and 5xx responses by status and path."""

from __future__ import annotations

import polars as pl

from pplog.reports._columns import add_counts, distinct_for
from pplog.schema import CLIENT_IP, PATH, STATUS, TIME

COLUMNS = ("status", "path", "requests", "clients", "first_time", "last_time")


def errors(lf: pl.LazyFrame, *, top: int = 10) -> pl.LazyFrame:
    """Requests with status >= 400 grouped by (status, path), most frequent first."""
    table = (
        lf.filter(pl.col(STATUS) >= 400)
        .group_by(STATUS, PATH)
        .agg(
            pl.len().cast(pl.UInt64).alias("requests"),
            pl.col(TIME).min().alias("first_time"),
            pl.col(TIME).max().alias("last_time"),
        )
        .sort(
            ["requests", STATUS, PATH], descending=[True, False, False], nulls_last=True
        )
    )
    return table.head(top) if top else table


def details(lf: pl.LazyFrame, table: pl.DataFrame) -> list[pl.LazyFrame]:
    """Follow-up queries for the errors shown: distinct clients."""
    failed = lf.filter(pl.col(STATUS) >= 400)
    return [distinct_for(failed, table, [STATUS, PATH], CLIENT_IP, "clients")]


def finish(table: pl.DataFrame, extra: list[pl.DataFrame]) -> pl.DataFrame:
    """The table with the follow-up columns, in contract order."""
    return add_counts(table, extra[0], [STATUS, PATH], "clients").select(COLUMNS)
