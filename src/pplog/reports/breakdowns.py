"""Requests counted by one column: status codes, user agents, referrers, hosts."""

from __future__ import annotations

from typing import TypeVar

import polars as pl

from pplog.reports._columns import bytes_column
from pplog.schema import HTTP_REFERER, HTTP_USER_AGENT, STATUS

# Which logged variable names the host, in order of preference.
HOST_COLUMNS = ("host", "http_host", "server_name")


def host_column(columns: list[str]) -> str | None:
    """`$host`, else `$http_host`, else `$server_name`; None when none is logged."""
    return next((c for c in HOST_COLUMNS if c in columns), None)


Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def busiest(table: Frame, key: str, top: int) -> Frame:
    """The `top` rows with the most `requests` (ties by `key`; 0 = all)."""
    table = table.sort(["requests", key], descending=[True, False], nulls_last=True)
    return table.head(top) if top else table


def counted(lf: pl.LazyFrame, key: str, *, top: int = 10) -> pl.LazyFrame:
    """Requests and bytes per value of `key`, busiest first (nulls included)."""
    columns = lf.collect_schema().names()
    table = lf.group_by(key).agg(
        pl.len().cast(pl.UInt64).alias("requests"),
        bytes_column(columns).sum().cast(pl.UInt64).alias("bytes"),
    )
    return busiest(table, key, top)


def statuses(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Every status code with its requests and share of all requests, by code."""
    return (
        lf.group_by(STATUS)
        .agg(pl.len().cast(pl.UInt64).alias("requests"))
        .with_columns((pl.col("requests") / pl.col("requests").sum()).alias("share"))
        .sort(STATUS, nulls_last=True)
    )


def user_agents(lf: pl.LazyFrame, *, top: int = 10) -> pl.LazyFrame:
    """The busiest user-agent strings (`agent_class` is joined by the summary)."""
    return counted(lf, HTTP_USER_AGENT, top=top)


def referrers(lf: pl.LazyFrame, *, top: int = 10) -> pl.LazyFrame:
    """The busiest referrers; requests without one (`-` or empty) are left out."""
    ref = pl.col(HTTP_REFERER)
    return counted(lf.filter(ref.is_not_null() & (ref != "")), HTTP_REFERER, top=top)


def hosts(lf: pl.LazyFrame, column: str, *, top: int = 10) -> pl.LazyFrame:
    """Requests, bytes and errors per virtual host (`column` from `host_column`)."""
    columns = lf.collect_schema().names()
    status = pl.col(STATUS)
    table = (
        lf.group_by(pl.col(column).alias("host"))
        .agg(
            pl.len().cast(pl.UInt64).alias("requests"),
            bytes_column(columns).sum().cast(pl.UInt64).alias("bytes"),
            ((status >= 400) & (status < 500))
            .sum()
            .cast(pl.UInt64)
            .alias("errors_4xx"),
            (status >= 500).sum().cast(pl.UInt64).alias("errors_5xx"),
        )
        .sort(["requests", "host"], descending=[True, False], nulls_last=True)
    )
    return table.head(top) if top else table
