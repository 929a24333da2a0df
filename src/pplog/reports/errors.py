"""Errors table: 4xx and 5xx responses by status and path.

Built from a `Partial`'s (status, path, client) counts of failed requests,
so distinct and top clients stay exact after any merge.
"""

from __future__ import annotations

import polars as pl

from pplog.reports.breakdowns import by_requests
from pplog.reports.partial import Partial
from pplog.schema import CLIENT_IP, PATH, STATUS

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


def table(partial: Partial, top: int) -> pl.DataFrame:
    """The errors table: requests, distinct and top clients per (status, path)."""
    keys = [STATUS, PATH]
    triples = partial["errors"]
    table = by_requests(
        triples.group_by(keys).agg(
            pl.col("requests").sum(),
            pl.col("first_time").min(),
            pl.col("last_time").max(),
        ),
        keys,
        top,
    )
    named = (  # each shown key's clients, once each (`triples` may repeat one);
        # the shown keys' rows first: a filter of every triple copied them all
        triples.join(table.select(keys), on=keys, how="semi", nulls_equal=True)
        .filter(pl.col(CLIENT_IP).is_not_null())
        .group_by(*keys, CLIENT_IP)
        .agg(pl.col("requests").sum())
    )
    clients = named.group_by(keys).agg(
        pl.col(CLIENT_IP).n_unique().cast(pl.UInt64).alias("clients"),
        pl.format("{} ({})", CLIENT_IP, "requests")
        .sort_by(["requests", CLIENT_IP], descending=[True, False])
        .head(TOP_CLIENTS)
        .str.join(", ")
        .alias("top_clients"),
    )
    return (
        table.join(
            clients, on=keys, how="left", nulls_equal=True, maintain_order="left"
        )
        .with_columns(pl.col("clients").fill_null(0))
        .select(COLUMNS)
    )
