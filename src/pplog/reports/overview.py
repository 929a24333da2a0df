"""The overview: lines, requests, rejects, clients, bytes, time range, statuses."""

from __future__ import annotations

import polars as pl

from pplog._ipaddr import _V4_STRICT, Network, parse_networks
from pplog.clientip import DEFAULT_TRUSTED, FORWARDED_BY_UNTRUSTED, ProxyPolicy
from pplog.reports._columns import bytes_column
from pplog.schema import CLIENT_IP, REJECT_REASON, STATUS, TIME

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def overview(lf: pl.LazyFrame, policy: ProxyPolicy | None = None) -> pl.DataFrame:
    """One row of totals over every line, parsed or rejected.

    Besides the totals it counts what a reader should distrust:
    `without_client_address` (no address to credit), `forwarded_by_untrusted`
    (a forwarding header from a peer outside the trusted ranges, ignored: may
    be spoofing), `client_private_or_trusted` (the credited address is private
    or one of the trusted proxies: realip probably not configured).

    Two streaming queries: one select of aggregations over every line (the
    parsed rows' figures are masked aggregations), and one grouping by client
    for the distinct count and the address test. Run as one plan, the shared
    read would be held in memory for the second consumer (290 MiB more on
    8M lines); run apart, each holds its aggregation state only.
    """
    columns = lf.collect_schema().names()
    ok = pl.col(REJECT_REASON).is_null()
    status = pl.col(STATUS) if STATUS in columns else pl.lit(None, pl.UInt16)
    time = pl.col(TIME) if TIME in columns else pl.lit(None, pl.Datetime("us", "UTC"))

    def count(condition: pl.Expr) -> pl.Expr:
        return (condition & ok).fill_null(False).sum().cast(pl.UInt64)  # noqa: FBT003

    exprs = [
        pl.len().cast(pl.UInt64).alias("lines"),
        ok.sum().cast(pl.UInt64).alias("requests"),
        (~ok).sum().cast(pl.UInt64).alias("rejected"),
        # when/then, not filter: a filter inside select holds the whole column
        pl.when(ok).then(bytes_column(columns)).sum().cast(pl.UInt64).alias("bytes"),
        pl.when(ok).then(time).min().alias("first_time"),
        pl.when(ok).then(time).max().alias("last_time"),
        count(pl.col(CLIENT_IP).is_null()).alias("without_client_address"),
        (
            count(pl.col(FORWARDED_BY_UNTRUSTED))
            if FORWARDED_BY_UNTRUSTED in columns
            else pl.lit(0, pl.UInt64)
        ).alias("forwarded_by_untrusted"),
    ]
    for i, name in enumerate(STATUS_CLASSES, start=1):
        in_class = (status >= i * 100) & (status < (i + 1) * 100)
        exprs.append(count(in_class).alias(f"status_{name}"))
    other = status.is_null() | (status < 100) | (status >= 600)
    exprs.append(count(other).alias("status_other"))
    totals = lf.select(exprs).collect(engine="streaming")
    clients = _clients(lf.filter(ok), checked_ranges(policy)).collect(
        engine="streaming"
    )
    order = [
        "lines",
        "requests",
        "rejected",
        "clients",
        "bytes",
        "first_time",
        "last_time",
        "without_client_address",
        "forwarded_by_untrusted",
        "client_private_or_trusted",
    ]
    out = pl.concat([totals, clients], how="horizontal")
    return out.select(order + [f"status_{n}" for n in (*STATUS_CLASSES, "other")])


# IPv6 private space: ULA fc00::/7, link-local fe80::/10, loopback, and
# IPv4-mapped forms of the IPv4 private ranges.
_V6_PRIVATE = (
    r"(?i)^(?:f[cd][0-9a-f]{0,2}:|fe[89ab][0-9a-f]:|::1$|"
    r"::ffff:(?:10|127)\.|::ffff:192\.168\.|::ffff:172\.(?:1[6-9]|2\d|3[01])\.|"
    r"::ffff:169\.254\.)"
)


def private_or_trusted(
    ranges: tuple[Network, ...], v4: pl.Expr | None = None
) -> pl.Expr:
    """True where `client_ip` is private or in a trusted range (False if null).

    `client_ip` is already nginx's rendering, so IPv4 converts to an integer
    with plain string expressions and each range is one mask test; IPv6 is
    tested against the standard private prefixes. No per-address parsing.
    """
    ip = pl.col(CLIENT_IP)
    if v4 is None:
        v4 = v4_number()
    tests = [(v4 & net.v4[1]) == net.v4[0] for net in ranges if net.v4 is not None]
    if any(net.unix for net in ranges):
        tests.append(ip == "unix:")
    tests.append(ip.str.contains(_V6_PRIVATE))
    return pl.any_horizontal(tests).fill_null(False)  # noqa: FBT003


def v4_number() -> pl.Expr:
    """`client_ip` as a 32-bit number when it is dotted IPv4, else null.

    Over many rows, materialise it once (`with_columns`) and pass it to
    `private_or_trusted`: the streaming engine does not share it between the
    range tests.
    """
    ip = pl.col(CLIENT_IP)
    octets = pl.when(ip.str.contains(_V4_STRICT)).then(ip.str.split("."))
    return (
        octets.list.get(0, null_on_oob=True).cast(pl.UInt32) * (1 << 24)
        + octets.list.get(1, null_on_oob=True).cast(pl.UInt32) * (1 << 16)
        + octets.list.get(2, null_on_oob=True).cast(pl.UInt32) * (1 << 8)
        + octets.list.get(3, null_on_oob=True).cast(pl.UInt32)
    )


def checked_ranges(policy: ProxyPolicy | None) -> tuple[Network, ...]:
    """The trusted ranges plus the private ones: addresses that are no client."""
    trusted = list((policy or ProxyPolicy()).trusted or ())
    return parse_networks((*trusted, *DEFAULT_TRUSTED))


def _clients(lf: pl.LazyFrame, ranges: tuple[Network, ...]) -> pl.LazyFrame:
    """Distinct clients, and the requests whose `client_ip` is private or trusted.

    The address test runs once per distinct client, on the grouped counts,
    not once per request (the grouping is the one the clients table does).
    """
    per_client = (
        lf.filter(pl.col(CLIENT_IP).is_not_null())
        .group_by(CLIENT_IP)
        .agg(pl.len().alias("_n"))
        .with_columns(v4_number().alias("_v4"))
    )
    private = private_or_trusted(ranges, pl.col("_v4"))
    return per_client.select(
        pl.len().cast(pl.UInt64).alias("clients"),
        pl.col("_n")
        .filter(private)
        .sum()
        .cast(pl.UInt64)
        .alias("client_private_or_trusted"),
    )


def rejects_by_reason(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Rejected lines counted per reason."""
    return (
        lf.filter(pl.col(REJECT_REASON).is_not_null())
        .group_by(REJECT_REASON)
        .agg(pl.len().cast(pl.UInt64).alias("lines"))
        .sort(["lines", REJECT_REASON], descending=[True, False])
    )
