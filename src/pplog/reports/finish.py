"""`finish`: the report tables from one (merged) `Partial`.

Every table is grouped, sorted and cut here, from the partial's frames
alone; nothing reads rows again. Ties are broken by the key's text, so the
tables are the same however the input was split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from pplog.clientip import ProxyPolicy
from pplog.enrich.agents import agent_class
from pplog.enrich.geo import AS_ORG, ASN, GeoDatabases, geo_table
from pplog.enrich.routes import ROUTE, RouteRule, route_table
from pplog.reports import clients as clients_report
from pplog.reports import errors as errors_report
from pplog.reports import lb as lb_report
from pplog.reports import paths as paths_report
from pplog.reports import sketches
from pplog.reports.breakdowns import busiest
from pplog.reports.enriched import AGENT_CLASS
from pplog.reports.overview import (
    STATUS_CLASSES,
    checked_ranges,
    private_or_trusted,
    v4_number,
)
from pplog.reports.partial import (
    CLIENT_HASH,
    COUNT,
    MEASURE,
    PATH_HASH,
    RANK,
    SAMPLE_KEYS,
    VALUE,
    VISITOR,
    Partial,
    text_hash,
)
from pplog.reports.timeline import choose_interval, fill_gaps, floor_to
from pplog.schema import (
    CLIENT_IP,
    HTTP_REFERER,
    HTTP_USER_AGENT,
    LINE,
    PATH,
    RAW,
    REJECT_REASON,
    SOURCE,
    STATUS,
    TIME,
)

OVERVIEW = (
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
    *(f"status_{n}" for n in (*STATUS_CLASSES, "other")),
)
EXTRA_ORDER = (
    "timeline",
    "status",
    "user_agents",
    "referrers",
    "hosts",
    "lb",
    "agents",
    "countries",
    "networks",
)
TOP_CLIENTS = errors_report.TOP_CLIENTS


@dataclass(frozen=True)
class FinishSettings:
    """How the tables are cut and grouped."""

    top: int = 10
    interval: str | None = None
    by: str = "path"
    rules: tuple[RouteRule, ...] = ()
    policy: ProxyPolicy | None = None
    geoip_skip_special: bool = True
    left_out: bool = False  # filters or the bot exclusion applied: count them


@dataclass
class Tables:
    """The finished tables."""

    overview: pl.DataFrame
    clients: pl.DataFrame
    paths: pl.DataFrame
    errors: pl.DataFrame
    rejects: pl.DataFrame
    reject_samples: pl.DataFrame
    interval: str | None
    extra: dict[str, pl.DataFrame] = field(default_factory=dict)


def _head(table: pl.DataFrame, top: int) -> pl.DataFrame:
    return table.head(top) if top else table


def _sorted(table: pl.DataFrame, keys: list[str], top: int) -> pl.DataFrame:
    """Busiest first, ties by `keys` (nulls last), cut to `top`."""
    descending = [True] + [False] * len(keys)
    return _head(
        table.sort(["requests", *keys], descending=descending, nulls_last=True), top
    )


def finish(
    partial: Partial,
    settings: FinishSettings | None = None,
    dbs: GeoDatabases | None = None,
) -> Tables:
    """Every table from `partial`; `dbs` adds the countries and networks."""
    settings = settings or FinishSettings()
    top = settings.top
    logged = partial.logged
    with_agents = HTTP_USER_AGENT in logged
    per_client = partial["clients"]
    visitors = (
        per_client.filter(pl.col(VISITOR))
        .group_by(CLIENT_IP)
        .agg(
            pl.col("requests", "bytes", "errors_4xx", "errors_5xx").sum(),
            pl.col("first_time").min(),
            pl.col("last_time").max(),
        )
    )
    ov = _overview(partial, per_client, visitors, settings, with_agents=with_agents)
    clients = _clients(partial, visitors, top, with_agents=with_agents)
    key = ROUTE if settings.by == "route" else PATH
    routes = _routes(partial, settings.rules) if key == ROUTE else None
    paths = _paths(partial, key, routes, top)
    errors = _errors(partial, top)
    extra: dict[str, pl.DataFrame] = {}
    interval = None
    first, last = ov.item(0, "first_time"), ov.item(0, "last_time")
    if first is not None:
        interval = choose_interval(first, last, settings.interval)
        extra["timeline"] = _timeline(partial["timeline"], interval)
    extra["status"] = (
        partial["status"]
        .with_columns((pl.col("requests") / pl.col("requests").sum()).alias("share"))
        .sort(STATUS, nulls_last=True)
    )
    if with_agents:
        per_ua = per_client.group_by(HTTP_USER_AGENT).agg(
            pl.col("requests").sum(), pl.col("bytes").sum()
        )
        classes = per_ua.select(HTTP_USER_AGENT).with_columns(
            agent_class(HTTP_USER_AGENT)
        )
        extra["user_agents"] = (
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
    if (referrers := partial.get("referrers")) is not None:
        extra["referrers"] = _sorted(referrers, [HTTP_REFERER], top)
    if "host" in logged:
        extra["hosts"] = _sorted(partial["hosts"], ["host"], top)
    if "lb" in logged:
        extra["lb"] = lb_report.finish(
            _sorted(partial["lb"], ["peer"], top), settings.policy
        )
    if with_agents:
        extra["agents"] = (
            per_ua.join(classes, on=HTTP_USER_AGENT, how="left", nulls_equal=True)
            .group_by(AGENT_CLASS)
            .agg(pl.col("requests").sum(), pl.col("bytes").sum())
            .sort(["requests", AGENT_CLASS], descending=[True, False])
        )
    if dbs is not None:
        located = visitors.join(
            geo_table(
                visitors.get_column(CLIENT_IP).drop_nulls(),
                dbs,
                skip_special=settings.geoip_skip_special,
            ),
            on=CLIENT_IP,
            how="left",
        )
        extra["countries"] = _by_place(located, ["country"], [], top)
        extra["networks"] = _by_place(
            located, [ASN], [pl.col(AS_ORG).min().alias(AS_ORG)], top
        )
        if clients.height:
            clients = clients.join(
                located.select(CLIENT_IP, "country", ASN),
                on=CLIENT_IP,
                how="left",
                nulls_equal=True,
                maintain_order="left",
            )
    rejects = partial["rejects"].sort(
        ["lines", REJECT_REASON], descending=[True, False]
    )
    samples = (
        partial["samples"]
        .sort(SAMPLE_KEYS)
        .head(5)
        .select(SOURCE, LINE, REJECT_REASON, RAW)
    )
    extra = {n: extra[n] for n in EXTRA_ORDER if n in extra}
    return Tables(ov, clients, paths, errors, rejects, samples, interval, extra)


def _overview(
    partial: Partial,
    per_client: pl.DataFrame,
    visitors: pl.DataFrame,
    settings: FinishSettings,
    *,
    with_agents: bool,
) -> pl.DataFrame:
    totals = partial["totals"]
    every = per_client.group_by(CLIENT_IP).agg(pl.col("requests").sum())
    every = every.filter(pl.col(CLIENT_IP).is_not_null())
    private = private_or_trusted(checked_ranges(settings.policy), pl.col("_v4"))
    in_private = (
        every.with_columns(v4_number().alias("_v4"))
        .filter(private)
        .get_column("requests")
        .sum()
    )
    counted = visitors if with_agents else every
    clients = counted.get_column(CLIENT_IP).drop_nulls().len()
    ov = totals.with_columns(
        pl.lit(clients, pl.UInt64).alias("clients"),
        pl.lit(in_private or 0, pl.UInt64).alias("client_private_or_trusted"),
    ).select(OVERVIEW)
    if settings.left_out:
        parsed, matching = totals.item(0, "parsed"), totals.item(0, "matching")
        requests = totals.item(0, "requests")
        ov = ov.with_columns(
            (pl.col("lines") + (parsed - requests)).alias("lines"),
            pl.lit(parsed - matching, pl.UInt64).alias("filtered_out"),
            pl.lit(matching - requests, pl.UInt64).alias("excluded_bots"),
        )
    if with_agents:
        ov = ov.with_columns(totals.get_column("health_checks"))
    if (sketched := approximate(partial)) is not None:
        ov = ov.with_columns(pl.lit(sketched).alias("approximate"))
    return ov


def _clients(
    partial: Partial, visitors: pl.DataFrame, top: int, *, with_agents: bool
) -> pl.DataFrame:
    table = _sorted(visitors, [CLIENT_IP], top)
    shown = table.select(CLIENT_IP)
    if "pairs" not in partial.frames:  # sketched (`approx`)
        paths = sketches.hll_estimate(
            partial["hll_clients"]
            .join(shown, on=CLIENT_IP, how="semi", nulls_equal=True)
            .lazy(),
            [CLIENT_IP],
        ).collect()
        table = table.join(
            paths.rename({"estimate": "paths"}),
            on=CLIENT_IP,
            how="left",
            nulls_equal=True,
            maintain_order="left",
        ).with_columns(pl.col("paths").fill_null(0))
        return _with_top_agent(partial, table, shown, with_agents=with_agents)
    paths = (
        partial["pairs"]
        .filter(pl.col(VISITOR) & pl.col(PATH_HASH).is_not_null())
        .join(
            shown.select(text_hash(pl.col(CLIENT_IP)).alias(CLIENT_HASH)),
            on=CLIENT_HASH,
            how="semi",
            nulls_equal=True,
        )
        .group_by(CLIENT_HASH)
        .agg(pl.col(PATH_HASH).n_unique().cast(pl.UInt64).alias("paths"))
    )
    table = (
        table.with_columns(text_hash(pl.col(CLIENT_IP)).alias(CLIENT_HASH))
        .join(
            paths, on=CLIENT_HASH, how="left", nulls_equal=True, maintain_order="left"
        )
        .with_columns(pl.col("paths").fill_null(0))
    )
    return _with_top_agent(partial, table, shown, with_agents=with_agents)


def _with_top_agent(
    partial: Partial, table: pl.DataFrame, shown: pl.DataFrame, *, with_agents: bool
) -> pl.DataFrame:
    """Each shown client's most frequent user agent, in contract order."""
    if with_agents:
        ua = pl.col(HTTP_USER_AGENT)
        top_ua = (
            partial["clients"]
            .filter(pl.col(VISITOR))
            .join(shown, on=CLIENT_IP, how="semi", nulls_equal=True)
            .group_by(CLIENT_IP, HTTP_USER_AGENT)
            .agg(pl.col("requests").sum().alias("_n"))
            .group_by(CLIENT_IP)
            .agg(
                ua.sort_by(
                    ["_n", HTTP_USER_AGENT], descending=[True, False], nulls_last=True
                )
                .first()
                .alias("top_user_agent")
            )
        )
        table = table.join(
            top_ua, on=CLIENT_IP, how="left", nulls_equal=True, maintain_order="left"
        )
    else:
        table = table.with_columns(pl.lit(None, pl.String).alias("top_user_agent"))
    return table.select(clients_report.COLUMNS)


def _routes(partial: Partial, rules: tuple[RouteRule, ...]) -> pl.DataFrame:
    """Each distinct path of the partial with its route."""
    paths = pl.concat(
        [
            partial["paths"].select(PATH),
        ]
    ).unique()
    return route_table(paths.get_column(PATH), rules).unique(subset=PATH)


def _keyed(frame: pl.DataFrame, key: str, routes: pl.DataFrame | None) -> pl.DataFrame:
    """`frame` with its `path` replaced by the route when grouping by route."""
    if routes is None:
        return frame
    return frame.join(routes, on=PATH, how="left", nulls_equal=True).drop(PATH)


def _paths(
    partial: Partial, key: str, routes: pl.DataFrame | None, top: int
) -> pl.DataFrame:
    base = _keyed(partial["paths"], key, routes)
    if routes is not None:
        base = base.group_by(key).agg(pl.exclude(key).sum())
    table = _sorted(base, [key], top)
    shown = table.select(key)
    if "pairs" not in partial.frames:  # sketched (`approx`)
        return _sketched_paths(partial, table, shown, key, routes)
    # pairs name paths by hash: each shown key with the hashes of its paths
    named = (
        routes.filter(
            pl.col(ROUTE).is_in(shown.get_column(ROUTE).implode(), nulls_equal=True)
        )
        if routes is not None
        else shown
    )
    hashes = named.select(key, text_hash(pl.col(PATH)).alias(PATH_HASH))
    clients = (
        partial["pairs"]
        .filter(pl.col(CLIENT_HASH).is_not_null())
        .join(hashes, on=PATH_HASH, how="inner", nulls_equal=True)
        .group_by(key)
        .agg(pl.col(CLIENT_HASH).n_unique().cast(pl.UInt64).alias("clients"))
    )
    table = (
        table.join(clients, on=key, how="left", nulls_equal=True, maintain_order="left")
        .with_columns(pl.col("clients").fill_null(0))
        .select(key, *paths_report.COLUMNS[1:])
    )
    latency = _keyed(partial["latency"], key, routes).join(
        shown, on=key, how="semi", nulls_equal=True
    )
    for measure in _measures(partial):
        table = table.join(
            _percentiles(latency.filter(pl.col(MEASURE) == measure), key, measure),
            on=key,
            how="left",
            nulls_equal=True,
            maintain_order="left",
        )
    return table


def _sketched_paths(
    partial: Partial,
    table: pl.DataFrame,
    shown: pl.DataFrame,
    key: str,
    routes: pl.DataFrame | None,
) -> pl.DataFrame:
    """Distinct clients and latency percentiles per shown key from sketches."""
    hll = _keyed(partial["hll_paths"], key, routes).join(
        shown, on=key, how="semi", nulls_equal=True
    )
    hll = hll.group_by(key, "_reg").agg(pl.col("_rank").max())
    clients = sketches.hll_estimate(hll.lazy(), [key]).collect()
    table = (
        table.join(
            clients.rename({"estimate": "clients"}),
            on=key,
            how="left",
            nulls_equal=True,
            maintain_order="left",
        )
        .with_columns(pl.col("clients").fill_null(0))
        .select(key, *paths_report.COLUMNS[1:])
    )
    for measure in _measures(partial):
        state = (
            _keyed(partial["dd_latency"], key, routes)
            .filter(pl.col(MEASURE) == measure)
            .join(shown, on=key, how="semi", nulls_equal=True)
            .group_by(key, "_bucket")
            .agg(pl.col("_count").sum())
        )
        names = {q: f"{measure}_p{round(q * 100)}" for q in paths_report.QUANTILES}
        quantiles = sketches.dd_quantiles(
            state.lazy(), [key], paths_report.QUANTILES, names=names
        ).collect()
        maxima = (
            _keyed(partial["latency_max"], key, routes)
            .filter(pl.col(MEASURE) == measure)
            .group_by(key)
            .agg(pl.col("max").max().alias(f"{measure}_max"))
        )
        table = table.join(
            quantiles.join(maxima, on=key, how="left", nulls_equal=True),
            on=key,
            how="left",
            nulls_equal=True,
            maintain_order="left",
        )
    return table


def _measures(partial: Partial) -> list[str]:
    """The latencies the rows log, in table order."""
    return [
        m for m in ("request_time", "upstream_response_time") if m in partial.logged
    ]


def approximate(partial: Partial) -> str | None:
    """Which columns sketches estimated, or None when every table is exact."""
    if "pairs" in partial.frames:
        return None
    sketched = ["clients.paths", "paths.clients"]
    sketched += [f"paths.{m}_p50/p95/p99" for m in _measures(partial)]
    return ", ".join(sketched)


def _percentiles(latency: pl.DataFrame, key: str, name: str) -> pl.DataFrame:
    """Exact nearest-rank p50/p95/p99 and max per `key` from value counts."""
    hist = (
        latency.group_by(key, VALUE)
        .agg(pl.col(COUNT).sum())
        .sort(key, VALUE, nulls_last=True)
        .with_columns(
            pl.col(COUNT).cum_sum().over(key).alias("_cum"),
            pl.col(COUNT).sum().over(key).alias("_total"),
        )
    )

    def rank(q: float) -> pl.Expr:
        reached = pl.col("_cum") >= (pl.col("_total") * q).ceil()
        return pl.col(VALUE).filter(reached).first()

    return hist.group_by(key).agg(
        rank(0.50).alias(f"{name}_p50"),
        rank(0.95).alias(f"{name}_p95"),
        rank(0.99).alias(f"{name}_p99"),
        pl.col(VALUE).max().alias(f"{name}_max"),
    )


def _errors(partial: Partial, top: int) -> pl.DataFrame:
    keys = [STATUS, PATH]
    triples = partial["errors"]
    table = _sorted(
        triples.group_by(keys).agg(
            pl.col("requests").sum(),
            pl.col("first_time").min(),
            pl.col("last_time").max(),
        ),
        keys,
        top,
    )
    named = triples.filter(pl.col(CLIENT_IP).is_not_null()).join(
        table.select(keys), on=keys, how="semi", nulls_equal=True
    )
    clients = named.group_by(keys).agg(
        pl.col(CLIENT_IP).n_unique().cast(pl.UInt64).alias("clients"),
        pl.format("{} ({})", CLIENT_IP, "requests")
        .sort_by(["requests", CLIENT_IP], descending=[True, False])
        .head(TOP_CLIENTS)
        .str.join(", ")
        .alias("top_clients"),
    )
    return (
        table.join(
            clients, on=keys, how="left", nulls_equal=True, maintain_order="left"
        )
        .with_columns(pl.col("clients").fill_null(0))
        .select(errors_report.COLUMNS)
    )


def _timeline(seconds: pl.DataFrame, interval: str) -> pl.DataFrame:
    """The one-second buckets re-bucketed to `interval`, gaps filled."""
    table = seconds.group_by(floor_to(interval).alias(TIME)).agg(
        pl.col("requests", "errors_4xx", "errors_5xx", "bytes").sum()
    )
    return fill_gaps(table, interval)


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
    return _sorted(table, keys, top)


__all__ = ["FinishSettings", "Tables", "finish", "RANK"]
