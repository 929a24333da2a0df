"""The overview: lines, requests, rejects, clients, bytes, time range, statuses."""

from __future__ import annotations

import polars as pl

from pplog.reports._columns import bytes_column
from pplog.schema import CLIENT_IP, REJECT_REASON, STATUS, TIME

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def overview(lf: pl.LazyFrame) -> pl.LazyFrame:
    """One row of totals over every line, parsed or rejected."""
    columns = lf.collect_schema().names()
    ok = pl.col(REJECT_REASON).is_null()
    status = pl.col(STATUS) if STATUS in columns else pl.lit(None, pl.UInt16)
    time = pl.col(TIME) if TIME in columns else pl.lit(None, pl.Datetime("us", "UTC"))
    exprs = [
        pl.len().cast(pl.UInt64).alias("lines"),
        ok.sum().cast(pl.UInt64).alias("requests"),
        (~ok).sum().cast(pl.UInt64).alias("rejected"),
        pl.col(CLIENT_IP).filter(ok).drop_nulls().n_unique().cast(pl.UInt64).alias("clients"),
        bytes_column(columns).filter(ok).sum().cast(pl.UInt64).alias("bytes"),
        time.filter(ok).min().alias("first_time"),
        time.filter(ok).max().alias("last_time"),
    ]
    for i, name in enumerate(STATUS_CLASSES, start=1):
        in_class = (status >= i * 100) & (status < (i + 1) * 100)
        exprs.append((in_class & ok).sum().cast(pl.UInt64).alias(f"status_{name}"))
    other = ok & (status.is_null() | (status < 100) | (status >= 600))
    exprs.append(other.sum().cast(pl.UInt64).alias("status_other"))
    return lf.select(exprs)


def rejects_by_reason(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Rejected lines counted per reason."""
    return (
        lf.filter(pl.col(REJECT_REASON).is_not_null())
        .group_by(REJECT_REASON)
        .agg(pl.len().cast(pl.UInt64).alias("lines"))
        .sort(["lines", REJECT_REASON], descending=[True, False])
    )
