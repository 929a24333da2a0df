"""Load-balancer hygiene: what each balancer (TCP peer) sent, and how it was credited.

One row per peer address nginx saw (`$realip_remote_addr`, else `$remote_addr`
when a forwarding header is logged too; null when the format logs no peer, as
`elb_log` does). The columns say how each request's client was found: from
the PROXY protocol, from a forwarding header, or not at all, and how many
requests carried a forwarding header that was ignored because the peer is not
trusted. A balancer that is missing from the trusted ranges shows up here as
`trusted = false` with many requests.
"""

from __future__ import annotations

import polars as pl

from pplog._ipaddr import addr_in_networks
from pplog.clientip import (
    FORWARDED_BY_UNTRUSTED,
    HEADERS,
    ProxyPolicy,
)
from pplog.reports._columns import by_key, error_counts
from pplog.schema import (
    CLIENT_IP,
    CLIENT_IP_SOURCE,
    REALIP_REMOTE_ADDR,
    REMOTE_ADDR,
)

COLUMNS = (
    "peer",
    "trusted",
    "requests",
    "via_proxy_protocol",
    "via_header",
    "direct",
    "without_client_address",
    "forwarded_by_untrusted",
    "errors_4xx",
    "errors_5xx",
)


def applies(columns: list[str]) -> bool:
    """True when the format logs something a balancer adds (a header or PROXY)."""
    return any(c in columns for c in HEADERS.values())


def peer_column(columns: list[str]) -> str | None:
    """The column holding the TCP peer, as `clientip` reads it."""
    for name in (REALIP_REMOTE_ADDR, REMOTE_ADDR):
        if name in columns:
            return name
    return None


def lb(lf: pl.LazyFrame, *, top: int = 10) -> pl.LazyFrame:
    """Requests per peer and how their clients were credited, busiest first."""
    columns = lf.collect_schema().names()
    peer = peer_column(columns)
    source = (
        pl.col(CLIENT_IP_SOURCE)
        if CLIENT_IP_SOURCE in columns
        else pl.lit(None, pl.String)
    )
    untrusted = (
        pl.col(FORWARDED_BY_UNTRUSTED).fill_null(False)  # noqa: FBT003
        if FORWARDED_BY_UNTRUSTED in columns
        else pl.lit(False)  # noqa: FBT003
    )
    table = by_key(
        lf,
        peer,
        "peer",
        [
            pl.len().cast(pl.UInt64).alias("requests"),
            (source == "proxy_protocol")
            .sum()
            .cast(pl.UInt64)
            .alias("via_proxy_protocol"),
            source.is_in(["x_forwarded_for", "x_real_ip", "forwarded"])
            .sum()
            .cast(pl.UInt64)
            .alias("via_header"),
            source.is_in([REMOTE_ADDR, REALIP_REMOTE_ADDR])
            .sum()
            .cast(pl.UInt64)
            .alias("direct"),
            pl.col(CLIENT_IP)
            .is_null()
            .sum()
            .cast(pl.UInt64)
            .alias("without_client_address"),
            untrusted.sum().cast(pl.UInt64).alias("forwarded_by_untrusted"),
            *error_counts(),
        ],
    ).sort(["requests", "peer"], descending=[True, False], nulls_last=True)
    return table.head(top) if top else table


def finish(table: pl.DataFrame, policy: ProxyPolicy | None) -> pl.DataFrame:
    """Add `trusted`: whether each peer is in the trusted ranges (null if unknown)."""
    ranges = (policy or ProxyPolicy()).networks
    trusted = (
        pl.when(pl.col("peer").is_not_null())
        .then(addr_in_networks(pl.col("peer"), ranges))
        .alias("trusted")
    )
    return table.with_columns(trusted).select(COLUMNS)
