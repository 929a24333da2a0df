"""Client attribution: which address a request is credited to.

This is the `auto` rule of the design: the PROXY-protocol source address when
the format logs `$proxy_protocol_addr` and it is set, otherwise the peer address
(`$realip_remote_addr`'s replacement `$remote_addr`). Full nginx realip
semantics (trusted ranges, X-Forwarded-For walks) build on these expressions.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from pplog.schema import CLIENT_IP, CLIENT_IP_SOURCE, PROXY_PROTOCOL_ADDR, REMOTE_ADDR


def _usable(name: str) -> pl.Expr:
    col = pl.col(name)
    return col.is_not_null() & (col != "")


def client_ip(columns: Iterable[str]) -> list[pl.Expr]:
    """`client_ip` and `client_ip_source` for a frame with `columns`."""
    names = set(columns)
    choices: list[tuple[str, str]] = []
    if PROXY_PROTOCOL_ADDR in names:
        choices.append((PROXY_PROTOCOL_ADDR, "proxy_protocol"))
    if REMOTE_ADDR in names:
        choices.append((REMOTE_ADDR, "remote_addr"))
    if not choices:
        return [
            pl.lit(None, pl.String).alias(CLIENT_IP),
            pl.lit(None, pl.String).alias(CLIENT_IP_SOURCE),
        ]
    ip: pl.Expr = pl.lit(None, pl.String)
    src: pl.Expr = pl.lit(None, pl.String)
    for name, label in reversed(choices):  # the first usable choice wins
        ip = pl.when(_usable(name)).then(pl.col(name)).otherwise(ip)
        src = pl.when(_usable(name)).then(pl.lit(label)).otherwise(src)
    return [ip.alias(CLIENT_IP), src.alias(CLIENT_IP_SOURCE)]
