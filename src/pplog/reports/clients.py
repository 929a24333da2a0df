"""Per-client table: requests, bytes, errors and when each client was seen."""

from __future__ import annotations

import polars as pl

from pplog.reports._columns import add_counts, bytes_column, distinct_for, shown_rows
from pplog.schema import CLIENT_IP, HTTP_USER_AGENT, PATH, STATUS, TIME

COLUMNS = (
    "client_ip",
    "requests",
    "bytes",
    "errors_4xx",
    "errors_5xx",
    "paths",
    "first_time",
    "last_time",
    "top_user_agent",
)


DISTINCT = "_distinct"


def clients(lf: pl.LazyFrame, *, top: int = 10, distinct: bool = False) -> pl.LazyFrame:
    """Requests per `client_ip`, busiest first (ties by address); see `finish`.

    With `distinct`, every row also carries the number of distinct non-null
    addresses (column `_distinct`), counted from the same grouping.
    """
    columns = lf.collect_schema().names()
    status = pl.col(STATUS)
    table = lf.group_by(CLIENT_IP).agg(
        pl.len().cast(pl.UInt64).alias("requests"),
        bytes_column(columns).sum().cast(pl.UInt64).alias("bytes"),
        ((status >= 400) & (status < 500)).sum().cast(pl.UInt64).alias("errors_4xx"),
        (status >= 500).sum().cast(pl.UInt64).alias("errors_5xx"),
        pl.col(TIME).min().alias("first_time"),
        pl.col(TIME).max().alias("last_time"),
    )
    if distinct:
        table = table.with_columns(
            pl.col(CLIENT_IP).count().cast(pl.UInt64).alias(DISTINCT)
        )
    table = table.sort(
        ["requests", CLIENT_IP], descending=[True, False], nulls_last=True
    )
    return table.head(top) if top else table


def details(lf: pl.LazyFrame, table: pl.DataFrame) -> list[pl.LazyFrame]:
    """Follow-up queries for the clients shown: distinct paths, top user agent."""
    queries = [distinct_for(lf, table, [CLIENT_IP], PATH, "paths")]
    if HTTP_USER_AGENT in lf.collect_schema().names():
        ua = pl.col(HTTP_USER_AGENT)
        queries.append(
            shown_rows(lf, table, [CLIENT_IP])
            .group_by(CLIENT_IP, HTTP_USER_AGENT)
            .agg(pl.len().alias("_n"))
            .group_by(CLIENT_IP)
            .agg(
                ua.sort_by(
                    ["_n", HTTP_USER_AGENT], descending=[True, False], nulls_last=True
                )
                .first()
                .alias("top_user_agent")
            )
        )
    return queries


def finish(table: pl.DataFrame, extra: list[pl.DataFrame]) -> pl.DataFrame:
    """The table with the follow-up columns, in contract order."""
    out = add_counts(table, extra[0], [CLIENT_IP], "paths")
    if len(extra) > 1:
        out = out.join(
            extra[1], on=CLIENT_IP, how="left", nulls_equal=True, maintain_order="left"
        )
    else:
        out = out.with_columns(pl.lit(None, pl.String).alias("top_user_agent"))
    return out.select(COLUMNS)
