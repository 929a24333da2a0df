"""Which logged columns the reports use for bytes, status and latency."""

from __future__ import annotations

import polars as pl

from pplog.schema import BODY_BYTES_SENT, BYTES_SENT, REQUEST_TIME


def bytes_column(columns: list[str]) -> pl.Expr:
    """Response bytes: `$body_bytes_sent`, else `$bytes_sent`, else 0."""
    for name in (BODY_BYTES_SENT, BYTES_SENT):
        if name in columns:
            return pl.col(name).fill_null(0)
    return pl.lit(0, pl.UInt64)


def has_latency(columns: list[str]) -> bool:
    """True when the format logs `$request_time` (or an AWS equivalent)."""
    return REQUEST_TIME in columns
