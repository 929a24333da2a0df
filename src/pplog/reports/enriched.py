"""Enrichment: user-agent classes, health checks, bots, countries and networks.

The row-level tests (`agent_classes`, `bot_rows`, `health_checks`) run when
rows are mapped to a `Partial`; the tables are built from the partial.
"""

from __future__ import annotations

import threading

import polars as pl

from pplog._ipaddr import Network
from pplog.enrich.agents import BOT_CLASSES, agent_class
from pplog.enrich.geo import AS_ORG, ASN, GeoDatabases, geo_table
from pplog.enrich.useragents import parse_agents
from pplog.reports.breakdowns import busiest, by_requests
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
    if classes is None or not classes.get_column(AGENT_CLASS).eq(HEALTH_CHECK).any():
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


def agent_answers(
    per_client: pl.DataFrame,
    known: pl.DataFrame | None = None,
    *,
    stop: threading.Event | None = None,
) -> pl.DataFrame:
    """Each distinct user agent of a `Partial`'s per (client, user agent)
    counts with its `agent_class`, browser, OS and device (`parse_agents`).

    `known`: answers stored with a dataset's rollups (`stored_answers`);
    only the user agents missing there are parsed. `stop`: as for
    `parse_agents`.
    """
    return parse_agents(per_client.get_column(HTTP_USER_AGENT), known=known, stop=stop)


def agent_tables(
    per_client: pl.DataFrame, top: int, classes: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    """`user_agents` (the busiest, with their class) and `agents` (per class).

    From a `Partial`'s per (client, user agent) counts and the `agent_class`
    of each of its user agents (`classes`: `agent_answers`).
    """
    per_ua = per_client.group_by(HTTP_USER_AGENT).agg(
        pl.col("requests").sum(), pl.col("bytes").sum()
    )
    user_agents = (
        busiest(per_ua, HTTP_USER_AGENT, top)
        .join(
            classes,
            on=HTTP_USER_AGENT,
            how="left",
            nulls_equal=True,
            maintain_order="left",
        )
        .select(HTTP_USER_AGENT, AGENT_CLASS, "requests", "bytes")
    )
    per_class = (
        per_ua.join(classes, on=HTTP_USER_AGENT, how="left", nulls_equal=True)
        .group_by(AGENT_CLASS)
        .agg(pl.col("requests").sum(), pl.col("bytes").sum())
        .sort(["requests", AGENT_CLASS], descending=[True, False])
    )
    return {"user_agents": user_agents, "agents": per_class}


def located(
    visitors: pl.DataFrame, dbs: GeoDatabases, *, skip_special: bool = True
) -> pl.DataFrame:
    """Per-client visitor counts with `country`, `city`, `asn`, `as_org`,
    each distinct client looked up once."""
    table = geo_table(
        visitors.get_column(CLIENT_IP).drop_nulls(), dbs, skip_special=skip_special
    )
    return visitors.join(table, on=CLIENT_IP, how="left")


def geo_tables(located: pl.DataFrame, top: int) -> dict[str, pl.DataFrame]:
    """`countries` and `networks`: requests, distinct clients and bytes each."""
    return {
        "countries": _by_place(located, ["country"], [], top),
        "networks": _by_place(
            located, [ASN], [pl.col(AS_ORG).min().alias(AS_ORG)], top
        ),
    }


def _by_place(
    located: pl.DataFrame, keys: list[str], extra: list[pl.Expr], top: int
) -> pl.DataFrame:
    """Requests, distinct clients and bytes per country or network."""
    table = located.group_by(keys).agg(
        *extra,
        pl.col("requests").sum().cast(pl.UInt64),
        pl.col(CLIENT_IP).drop_nulls().n_unique().cast(pl.UInt64).alias("clients"),
        pl.col("bytes").sum().cast(pl.UInt64),
    )
    return by_requests(table, keys, top)
