"""Per-path (or per-route) table: requests, clients, bytes, status mix, latency.

Built from a `Partial`: counts per path, distinct clients from the pairs,
and exact nearest-rank percentiles from (path, value) counts (nginx logs
times in milliseconds, so the distinct values are few), or from sketches
when the partial was made with `approx`.
"""

from __future__ import annotations

import polars as pl

from pplog.enrich.routes import ROUTE, RouteRule, route_table
from pplog.reports import sketches
from pplog.reports.breakdowns import by_requests
from pplog.reports.partial import (
    CLIENT_HASH,
    COUNT,
    MEASURE,
    PATH_HASH,
    VALUE,
    VISITOR,
    Partial,
    text_hash,
)
from pplog.schema import PATH

COLUMNS = (
    "path",
    "requests",
    "clients",
    "bytes",
    "ok_2xx_3xx",
    "errors_4xx",
    "errors_5xx",
)
QUANTILES = (0.50, 0.95, 0.99)


def table(
    partial: Partial, key: str, routes: pl.DataFrame | None, top: int
) -> pl.DataFrame:
    table = ranked(partial["paths"], key, routes, top)
    shown = table.select(key)
    if "pairs" not in partial.frames:  # sketched (`approx`)
        return _sketched(partial, table, shown, key, routes)
    # pairs name paths by hash: each shown key with the hashes of its paths
    named = named_paths(shown, routes)
    hashes = named.select(key, text_hash(pl.col(PATH)).alias(PATH_HASH))
    wanted = hashes.get_column(PATH_HASH).implode()
    # health checks are kept out of client counts here too, as the pairs
    # of `clients.paths` are: the balancer's nodes are no path's clients
    pairs = partial["pairs"].filter(
        pl.col(PATH_HASH).is_in(wanted, nulls_equal=True)
        & pl.col(CLIENT_HASH).is_not_null()
        & pl.col(VISITOR)
    )
    distinct = pl.col(CLIENT_HASH).n_unique().cast(pl.UInt64).alias("clients")
    if routes is None:  # a path is its hash: count, then name the few counts
        counts = pairs.group_by(PATH_HASH).agg(distinct)
        clients = hashes.join(counts, on=PATH_HASH, nulls_equal=True).drop(PATH_HASH)
    else:  # a route's clients are the union over its paths
        clients = (
            pairs.join(hashes, on=PATH_HASH, how="inner", nulls_equal=True)
            .group_by(key)
            .agg(distinct)
        )
    table = (
        table.join(clients, on=key, how="left", nulls_equal=True, maintain_order="left")
        .with_columns(pl.col("clients").fill_null(0))
        .select(key, *COLUMNS[1:])
    )
    latency = keyed(partial["latency"], key, routes).join(
        shown, on=key, how="semi", nulls_equal=True
    )
    for measure in measures(partial):
        table = table.join(
            _percentiles(latency.filter(pl.col(MEASURE) == measure), key, measure),
            on=key,
            how="left",
            nulls_equal=True,
            maintain_order="left",
        )
    return table


def _sketched(
    partial: Partial,
    table: pl.DataFrame,
    shown: pl.DataFrame,
    key: str,
    routes: pl.DataFrame | None,
) -> pl.DataFrame:
    """Distinct clients and latency percentiles per shown key from sketches."""
    hll = keyed(partial["hll_paths"], key, routes).join(
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
        .select(key, *COLUMNS[1:])
    )
    for measure in measures(partial):
        state = (
            keyed(partial["dd_latency"], key, routes)
            .filter(pl.col(MEASURE) == measure)
            .join(shown, on=key, how="semi", nulls_equal=True)
            .group_by(key, "_bucket")
            .agg(pl.col("_count").sum())
        )
        names = {q: f"{measure}_p{round(q * 100)}" for q in QUANTILES}
        quantiles = sketches.dd_quantiles(
            state.lazy(), [key], QUANTILES, names=names
        ).collect()
        maxima = (
            keyed(partial["latency_max"], key, routes)
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


def ranked(
    paths: pl.DataFrame, key: str, routes: pl.DataFrame | None, top: int
) -> pl.DataFrame:
    """The keys the table shows with their counts (from a partial's `paths`
    frame), in its order."""
    base = keyed(paths, key, routes)
    if routes is not None:
        base = base.group_by(key).agg(pl.exclude(key).sum())
    return by_requests(base, [key], top)


def named_paths(shown: pl.DataFrame, routes: pl.DataFrame | None) -> pl.DataFrame:
    """The paths the shown keys stand for: a path itself, or every path of a
    shown route (with its route)."""
    if routes is None:
        return shown
    wanted = shown.get_column(ROUTE).implode()
    return routes.filter(pl.col(ROUTE).is_in(wanted, nulls_equal=True))


def routes_of(partial: Partial, rules: tuple[RouteRule, ...]) -> pl.DataFrame:
    """Each distinct path of the partial with its route."""
    return routes_for(partial["paths"], rules)


def routes_for(paths: pl.DataFrame, rules: tuple[RouteRule, ...]) -> pl.DataFrame:
    """Each distinct path of a `paths` frame with its route."""
    distinct = paths.select(PATH).unique()
    return route_table(distinct.get_column(PATH), rules).unique(subset=PATH)


def keyed(frame: pl.DataFrame, key: str, routes: pl.DataFrame | None) -> pl.DataFrame:
    """`frame` with its `path` replaced by the route when grouping by route."""
    if routes is None:
        return frame
    return frame.join(routes, on=PATH, how="left", nulls_equal=True).drop(PATH)


def measures(partial: Partial) -> list[str]:
    """The latencies the rows log, in table order."""
    return [
        m for m in ("request_time", "upstream_response_time") if m in partial.logged
    ]


def approximate(partial: Partial) -> str | None:
    """Which columns sketches estimated, or None when every table is exact."""
    if "pairs" in partial.frames:
        return None
    sketched = ["clients.paths", "paths.clients"]
    sketched += [f"paths.{m}_p50/p95/p99" for m in measures(partial)]
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


def overall_latency(
    partial: Partial,
) -> dict[str, tuple[float | None, float | None, float | None]]:
    """Exact nearest-rank p50, p95 and p99 over every path, per latency the
    rows log (seconds, as nginx logs them); empty when none is logged or
    counted exactly (`approx`)."""
    latency = partial.get("latency")
    if latency is None:
        return {}
    out: dict[str, tuple[float | None, float | None, float | None]] = {}
    for measure in measures(partial):
        rows = latency.filter(pl.col(MEASURE) == measure).with_columns(
            pl.lit("").alias(PATH)
        )
        if rows.height == 0:
            out[measure] = (None, None, None)
            continue
        table = _percentiles(rows, PATH, measure)
        out[measure] = (
            table.item(0, f"{measure}_p50"),
            table.item(0, f"{measure}_p95"),
            table.item(0, f"{measure}_p99"),
        )
    return out
