"""Per-client table: requests, bytes, errors and when each client was seen.

Built from a `Partial`: the per-client sums of the visitors (health checks
left out), distinct paths from the (client, path) pairs, and each client's
most frequent user agent.
"""

from __future__ import annotations

import polars as pl

from pplog.reports import sketches
from pplog.reports.breakdowns import by_requests
from pplog.reports.partial import (
    CLIENT_HASH,
    PATH_HASH,
    VISITOR,
    Partial,
    text_hash,
    visitors_of,
)
from pplog.schema import CLIENT_IP, HTTP_USER_AGENT

COLUMNS = (
    "client_ip",
    "requests",
    "bytes",
    "errors_4xx",
    "errors_5xx",
    "paths",
    "first_time",
    "last_time",
    "top_user_agent",
)


def visitor_sums(per_client: pl.DataFrame) -> pl.DataFrame:
    """Each client's sums over its visitor rows (a partial's `clients` frame):
    the rows of the table, and what the overview and the locations count."""
    return (
        visitors_of(per_client)
        .group_by(CLIENT_IP)
        .agg(
            pl.col("requests", "bytes", "errors_4xx", "errors_5xx").sum(),
            pl.col("first_time").min(),
            pl.col("last_time").max(),
        )
    )


def ranked(visitors: pl.DataFrame, top: int) -> pl.DataFrame:
    """The clients the table shows (`visitor_sums`), in its order."""
    return by_requests(visitors, [CLIENT_IP], top)


def table(
    partial: Partial, visitors: pl.DataFrame, top: int, *, with_agents: bool
) -> pl.DataFrame:
    """The clients table: visitors' requests, distinct paths, top user agent."""
    table = ranked(visitors, top)
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
    # the shown clients' pairs first: a literal set, then the smaller rest
    wanted = shown.select(text_hash(pl.col(CLIENT_IP))).to_series().implode()
    paths = (
        partial["pairs"]
        .filter(pl.col(CLIENT_HASH).is_in(wanted, nulls_equal=True))
        .filter(pl.col(VISITOR) & pl.col(PATH_HASH).is_not_null())
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
            .join(shown, on=CLIENT_IP, how="semi", nulls_equal=True)
            .filter(pl.col(VISITOR))
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
    return table.select(COLUMNS)
