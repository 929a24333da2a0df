"""Errors table: 4xx and 5xx responses by status and path."""

from __future__ import annotations

import polars as pl

from pplog.reports._columns import add_counts, distinct_for, key_hash, shown_rows
from pplog.schema import CLIENT_IP, PATH, STATUS, TIME

COLUMNS = (
    "status",
    "path",
    "requests",
    "clients",
    "first_time",
    "last_time",
    "top_clients",
)
TOP_CLIENTS = 3


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
    """Follow-up queries for the errors shown: distinct and top clients."""
    failed = lf.filter(pl.col(STATUS) >= 400)
    keys = [STATUS, PATH]
    top_clients = (
        shown_rows(failed, table, keys)
        .filter(pl.col(CLIENT_IP).is_not_null())
        .group_by(key_hash(keys), CLIENT_IP)
        .agg(pl.len().alias("_n"))
        .group_by("_kh")
        .agg(
            pl.format("{} ({})", CLIENT_IP, "_n")
            .sort_by(["_n", CLIENT_IP], descending=[True, False])
            .head(TOP_CLIENTS)
            .str.join(", ")
            .alias("top_clients")
        )
    )
    return [distinct_for(failed, table, keys, CLIENT_IP, "clients"), top_clients]


def finish(table: pl.DataFrame, extra: list[pl.DataFrame]) -> pl.DataFrame:
    """The table with the follow-up columns, in contract order."""
    keys = [STATUS, PATH]
    out = add_counts(table, extra[0], keys, "clients").with_columns(key_hash(keys))
    out = out.join(extra[1], on="_kh", how="left", maintain_order="left")
    return out.drop("_kh").select(COLUMNS)
