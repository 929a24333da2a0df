"""Requests counted by one key: the shared ordering, and the status table."""

from __future__ import annotations

from typing import TypeVar

import polars as pl

from pplog.schema import STATUS

# Which logged variable names the host, in order of preference.
HOST_COLUMNS = ("host", "http_host", "server_name")


def host_column(columns: list[str]) -> str | None:
    """`$host`, else `$http_host`, else `$server_name`; None when none is logged."""
    return next((c for c in HOST_COLUMNS if c in columns), None)


Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def busiest(table: Frame, key: str, top: int) -> Frame:
    """The `top` rows with the most `requests` (ties by `key`; 0 = all)."""
    return by_requests(table, [key], top)


def by_requests(table: Frame, keys: list[str], top: int) -> Frame:
    """Busiest first, ties by `keys` (nulls last), cut to `top` (0 = all).

    With `top`, the cut is planned with the sort (polars keeps the `top`
    rows instead of sorting every row): 1 ms instead of 16 for the clients
    of 2M lines.
    """
    descending = [True] + [False] * len(keys)
    ordered = table.lazy().sort(
        ["requests", *keys], descending=descending, nulls_last=True
    )
    if top:
        ordered = ordered.head(top)
    if isinstance(table, pl.LazyFrame):
        return ordered
    return ordered.collect()


def statuses(counts: pl.DataFrame) -> pl.DataFrame:
    """Every status code with its requests and share of all requests, by code."""
    return counts.with_columns(
        (pl.col("requests") / pl.col("requests").sum()).alias("share")
    ).sort(STATUS, nulls_last=True)
