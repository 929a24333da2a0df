"""Tables that need enrichment: user-agent classes, countries and networks."""

from __future__ import annotations

import polars as pl

from pplog._ipaddr import Network
from pplog.enrich.agents import BOT_CLASSES, agent_class
from pplog.enrich.geo import GeoDatabases, geo_table
from pplog.reports._columns import bytes_column
from pplog.reports.overview import private_or_trusted
from pplog.schema import CLIENT_IP, HTTP_USER_AGENT

AGENT_CLASS = "agent_class"
HEALTH_CHECK = "monitoring"


def agent_classes(lf: pl.LazyFrame) -> pl.DataFrame | None:
    """Each distinct user agent with its `agent_class` (None: no user agent logged).

    Distinct user agents are few, so tables filter and group on this small
    table instead of classifying (or joining) every request.
    """
    if HTTP_USER_AGENT not in lf.collect_schema().names():
        return None
    return (
        lf.select(HTTP_USER_AGENT)
        .unique()
        .with_columns(pl.col(HTTP_USER_AGENT).cast(pl.String))
        .with_columns(agent_class(HTTP_USER_AGENT))
        .collect(engine="streaming")
    )


def _agents_in(classes: pl.DataFrame, wanted: tuple[str, ...]) -> pl.Expr:
    uas = classes.filter(pl.col(AGENT_CLASS).is_in(wanted)).get_column(HTTP_USER_AGENT)
    return pl.col(HTTP_USER_AGENT).is_in(uas.drop_nulls().implode()).fill_null(False)  # noqa: FBT003


def bot_rows(classes: pl.DataFrame | None) -> pl.Expr:
    """True for requests from crawlers, AI crawlers, health checkers and scanners."""
    if classes is None:
        return pl.lit(False)  # noqa: FBT003
    bot = _agents_in(classes, BOT_CLASSES)
    if classes.filter(pl.col(HTTP_USER_AGENT).is_null()).height:
        null_class = classes.filter(pl.col(HTTP_USER_AGENT).is_null()).item(
            0, AGENT_CLASS
        )
        if null_class in BOT_CLASSES:
            bot = bot | pl.col(HTTP_USER_AGENT).is_null()
    return bot


def health_checks(
    lf: pl.LazyFrame, classes: pl.DataFrame | None, ranges: tuple[Network, ...]
) -> tuple[pl.Expr, int]:
    """Which requests are health checks, and how many there are.

    A health checker's user agent is easy to send, so the user agent alone
    does not hide a client: the request must also come from no client
    address (a balancer check without PROXY header), or from a private or
    trusted one (the balancer's own nodes). Anything else stays a client.
    The distinct addresses behind health-checker user agents are few; they
    are looked at once, and rows are matched with a literal set.
    """
    if classes is None:
        return pl.lit(False), 0  # noqa: FBT003
    claims = _agents_in(classes, (HEALTH_CHECK,))
    per_ip = (
        lf.filter(claims)
        .group_by(CLIENT_IP)
        .agg(pl.len().alias("_n"))
        .collect(engine="streaming")
    )
    hidden = per_ip.filter(pl.col(CLIENT_IP).is_null() | private_or_trusted(ranges))
    ips = hidden.get_column(CLIENT_IP).drop_nulls()
    ip = pl.col(CLIENT_IP)
    rows = claims & (ip.is_null() | ip.is_in(ips.implode()))
    return rows, int(hidden.get_column("_n").sum() or 0)


def per_agent(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Requests and bytes per distinct user agent (the input of `agents`)."""
    return (
        lf.group_by(HTTP_USER_AGENT)
        .agg(
            pl.len().cast(pl.UInt64).alias("requests"),
            bytes_column(lf.collect_schema().names())
            .sum()
            .cast(pl.UInt64)
            .alias("bytes"),
        )
        .with_columns(pl.col(HTTP_USER_AGENT).cast(pl.String))
    )


def agents(per_agent: pl.DataFrame, classes: pl.DataFrame) -> pl.DataFrame:
    """Requests and bytes per user-agent class, from the `per_agent` table."""
    return (
        per_agent.join(classes, on=HTTP_USER_AGENT, how="left", nulls_equal=True)
        .group_by(AGENT_CLASS)
        .agg(pl.col("requests").sum(), pl.col("bytes").sum())
        .sort(["requests", AGENT_CLASS], descending=[True, False])
    )


def with_geo(
    lf: pl.LazyFrame, dbs: GeoDatabases, *, skip_special: bool = True
) -> pl.LazyFrame:
    """Add `country`, `city`, `asn`, `as_org`, looking each distinct client up once."""
    ips = (
        lf.filter(pl.col(CLIENT_IP).is_not_null())
        .select(CLIENT_IP)
        .unique()
        .collect(engine="streaming")
        .get_column(CLIENT_IP)
    )
    table = geo_table(ips, dbs, skip_special=skip_special)
    return lf.join(table.lazy(), on=CLIENT_IP, how="left")
