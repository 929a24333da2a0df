"""`browsers`, `operating_systems` and `devices`: who the visitors are.

Built at finish time from a `Partial`'s per (client, user agent, visitor)
sums: health checks are left out (as in the clients table), each distinct
user agent is parsed once (`pplog.enrich.useragents.parse_agents`), and the
answers are joined back to the sums, so the tables are exact however the
input was split.
"""

from __future__ import annotations

import polars as pl

from pplog.enrich.useragents import BROWSER, DEVICE, MAJOR, OS, OS_VERSION
from pplog.reports.breakdowns import by_requests
from pplog.reports.partial import visitors_of
from pplog.schema import CLIENT_IP, HTTP_USER_AGENT

TABLES = {
    "browsers": [BROWSER, MAJOR],
    "operating_systems": [OS, OS_VERSION],
    "devices": [DEVICE],
}
"""Each table's key columns; then ``requests``, ``visitors`` (distinct
clients) and ``bytes``."""


def tables(
    per_client: pl.DataFrame, top: int, answers: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    """The three tables from a partial's ``clients`` frame, cut to `top` (0 = all).

    `answers`: `parse_agents`' answers for (at least) its user agents
    (`enriched.agent_answers`), each parsed once for these tables and the
    agent classes.

    The requests of each table add up to the requests that are not health
    checks.
    """
    rows = (
        visitors_of(per_client)
        .lazy()
        .select(CLIENT_IP, pl.col(HTTP_USER_AGENT).cast(pl.String), "requests", "bytes")
    )
    out = {}
    for name, keys in TABLES.items():
        # each table's answers joined as its query streams: the rows with
        # every answer joined (8M elb_log lines: 140k rows and five texts
        # each) are never held, beside the finish that runs meanwhile
        answer = answers.lazy().select(HTTP_USER_AGENT, *keys)
        table = (
            rows.join(answer, on=HTTP_USER_AGENT, how="left", nulls_equal=True)
            .group_by(keys)
            .agg(
                pl.col("requests").sum().cast(pl.UInt64),
                pl.col(CLIENT_IP)
                .drop_nulls()
                .n_unique()
                .cast(pl.UInt64)
                .alias("visitors"),
                pl.col("bytes").sum().cast(pl.UInt64),
            )
            .collect(engine="streaming")
        )
        # five device types at most: never cut, like the agent classes
        out[name] = by_requests(table, keys, 0 if name == "devices" else top)
    return out
