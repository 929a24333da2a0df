"""The overview: lines, requests, rejects, clients, bytes, time range, statuses."""

from __future__ import annotations

import polars as pl

from pplog.reports._columns import bytes_column, key_hash
from pplog.schema import CLIENT_IP, REJECT_REASON, STATUS, TIME

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def overview(lf: pl.LazyFrame) -> pl.LazyFrame:
    """One row of totals over every line, parsed or rejected.

    Written as plain streaming aggregations over the parsed rows, plus a
    unique over 64-bit client hashes for the distinct client count.
    """
    columns = lf.collect_schema().names()
    ok_rows = lf.filter(pl.col(REJECT_REASON).is_null())
    status = pl.col(STATUS) if STATUS in columns else pl.lit(None, pl.UInt16)
    time = pl.col(TIME) if TIME in columns else pl.lit(None, pl.Datetime("us", "UTC"))
    exprs = [
        pl.len().cast(pl.UInt64).alias("requests"),
        bytes_column(columns).sum().cast(pl.UInt64).alias("bytes"),
        time.min().alias("first_time"),
        time.max().alias("last_time"),
    ]
    for i, name in enumerate(STATUS_CLASSES, start=1):
        in_class = (status >= i * 100) & (status < (i + 1) * 100)
        exprs.append(in_class.sum().cast(pl.UInt64).alias(f"status_{name}"))
    other = status.is_null() | (status < 100) | (status >= 600)
    exprs.append(other.sum().cast(pl.UInt64).alias("status_other"))
    totals = lf.select(
        pl.len().cast(pl.UInt64).alias("lines"),
        pl.col(REJECT_REASON).is_not_null().sum().cast(pl.UInt64).alias("rejected"),
    )
    parsed = ok_rows.select(exprs)
    clients = (
        ok_rows.filter(pl.col(CLIENT_IP).is_not_null())
        .select(key_hash([CLIENT_IP]))
        .unique()
        .select(pl.len().cast(pl.UInt64).alias("clients"))
    )
    order = [
        "lines",
        "requests",
        "rejected",
        "clients",
        "bytes",
        "first_time",
        "last_time",
    ]
    out = pl.concat([totals, parsed, clients], how="horizontal")
    return out.select(order + [f"status_{n}" for n in (*STATUS_CLASSES, "other")])


def rejects_by_reason(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Rejected lines counted per reason."""
    return (
        lf.filter(pl.col(REJECT_REASON).is_not_null())
        .group_by(REJECT_REASON)
        .agg(pl.len().cast(pl.UInt64).alias("lines"))
        .sort(["lines", REJECT_REASON], descending=[True, False])
    )
