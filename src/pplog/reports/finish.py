"""`finish`: the report tables from one (merged) `Partial`.

Every table is grouped, sorted and cut by its own module, from the
partial's frames alone; nothing reads rows again. Ties are broken by the
key's text, so the tables are the same however the input was split.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pplog.clientip import ProxyPolicy
from pplog.enrich.geo import ASN, GeoDatabases
from pplog.enrich.routes import ROUTE, RouteRule
from pplog.enrich.useragents import stored_answers
from pplog.reports import clients as clients_report
from pplog.reports import devices as devices_report
from pplog.reports import errors as errors_report
from pplog.reports import lb as lb_report
from pplog.reports import overview as overview_report
from pplog.reports import paths as paths_report
from pplog.reports.breakdowns import by_requests, statuses
from pplog.reports.enriched import agent_answers, agent_tables, geo_tables, located
from pplog.reports.partial import (
    AGENTS,
    REJECT_SAMPLES,
    SAMPLE_KEYS,
    SHOWN,
    Partial,
    estimated_clients,
)
from pplog.reports.summary import Summary
from pplog.reports.timeline import choose_interval, rebucketed
from pplog.schema import (
    CLIENT_IP,
    HTTP_REFERER,
    HTTP_USER_AGENT,
    LINE,
    PATH,
    RAW,
    REJECT_REASON,
    SOURCE,
)

# The frames `finish` groups again by coarser keys, so that it gives the
# same tables from their rows concatenated as from them merged (partials
# made for `finish` alone skip their merge: `batch.rollup.merge_all`).
REGROUPED = ("pairs", "clients", "errors", "timeline")

EXTRA_ORDER = (
    "timeline",
    "status",
    "user_agents",
    "referrers",
    "hosts",
    "lb",
    "agents",
    "browsers",
    "operating_systems",
    "devices",
    "countries",
    "networks",
)


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
    # the extra tables to make (`EXTRA_ORDER` names); None: every one
    extra: frozenset[str] | None = None


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

    def summary(self, *, top: int, by: str, **meta: Any) -> Summary:
        """The `Summary` of these tables; `meta` is its other fields (format,
        sources, geoip, filters, ...)."""
        return Summary(
            overview=self.overview,
            clients=self.clients,
            paths=self.paths,
            errors=self.errors,
            rejects=self.rejects,
            reject_samples=self.reject_samples,
            top=top,
            extra=self.extra,
            interval=self.interval,
            by=by,
            **meta,
        )


def _agent_tables(
    per_client: pl.DataFrame,
    top: int,
    stop: threading.Event,
    known: pl.DataFrame | None,
) -> dict[str, pl.DataFrame]:
    """`user_agents`, `agents`, `browsers`, `operating_systems`, `devices`."""
    # each distinct user agent classified and parsed once, for both sets of
    # tables; none when a dataset's rollups stored every answer (`known`)
    answers = agent_answers(per_client, known, stop=stop)
    return {
        **agent_tables(per_client, top, answers),
        **devices_report.tables(per_client, top, answers),
    }


def finish(
    partial: Partial,
    settings: FinishSettings | None = None,
    dbs: GeoDatabases | None = None,
) -> Tables:
    """Every table from `partial`; `dbs` adds the countries and networks.

    The `REGROUPED` frames may hold a key more than once (concatenated,
    not merged): the tables are the same.
    """
    settings = settings or FinishSettings()
    _check_shown(partial, settings)
    wanted = frozenset(EXTRA_ORDER) if settings.extra is None else settings.extra
    if HTTP_USER_AGENT not in partial.logged or not wanted & {
        "user_agents",
        "agents",
        *devices_report.TABLES,
    }:
        return _finish(partial, settings, wanted, dbs, None)
    # the user-agent tables need only the per-client frame (and ua-parser's
    # rules, maybe still being built): made in a thread while this one makes
    # the others (polars releases the GIL)
    stop = threading.Event()
    known = stored_answers(partial.get(AGENTS))
    work = functools.partial(_agent_tables, known=known)
    agents = _in_thread(work, partial["clients"], settings.top, stop)
    try:
        return _finish(partial, settings, wanted, dbs, agents)
    except BaseException:
        # an error elsewhere, or Ctrl-C, comes out now; the thread stops at
        # its next 256 agents (ua-parser's Python resolver, where the native
        # one is missing, takes about 1 ms an agent)
        stop.set()
        raise


def _check_shown(partial: Partial, settings: FinishSettings) -> None:
    """A partial whose pairs hold only the rows of the tables it was mapped
    for (`mapping.Shown`) is finished with that cut and no other."""
    shown = partial.get(SHOWN)
    if shown is None:
        return
    cut = (settings.top, settings.by, [r.pattern for r in settings.rules])
    if shown.row(0) != cut:
        msg = (
            f"this partial's pairs hold only the rows of tables cut as {shown.row(0)}, "
            f"not {cut}: map its rows again for this cut, or without one"
        )
        raise ValueError(msg)


def _in_thread(
    fn: Callable[[pl.DataFrame, int, threading.Event], dict[str, pl.DataFrame]],
    frame: pl.DataFrame,
    top: int,
    stop: threading.Event,
) -> Future[dict[str, pl.DataFrame]]:
    """`fn(frame, top, stop)` in a thread of its own. Not a daemon: a process
    that ends meanwhile waits for it rather than stopping it inside
    ua-parser-rs, which aborts the process."""
    future: Future[dict[str, pl.DataFrame]] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(frame, top, stop))
        except BaseException as exc:  # noqa: BLE001 - re-raised by result()
            future.set_exception(exc)

    threading.Thread(target=run, name="pplog-agents").start()
    return future


def _finish(
    partial: Partial,
    settings: FinishSettings,
    wanted: frozenset[str],
    dbs: GeoDatabases | None,
    agents: Future[dict[str, pl.DataFrame]] | None,
) -> Tables:
    top = settings.top
    logged = partial.logged
    with_agents = HTTP_USER_AGENT in logged
    per_client = partial["clients"]
    visitors = clients_report.visitor_sums(per_client)
    estimated = estimated_clients(partial)
    ov = overview_report.table(
        partial["totals"],
        per_client,
        visitors,
        settings.policy,
        with_agents=with_agents,
        left_out=settings.left_out,
        approximate=paths_report.approximate(partial),
        estimated_clients=estimated,
    )
    clients = clients_report.table(partial, visitors, top, with_agents=with_agents)
    key = ROUTE if settings.by == "route" else PATH
    routes = paths_report.routes_of(partial, settings.rules) if key == ROUTE else None
    paths = paths_report.table(partial, key, routes, top)
    errors = errors_report.table(partial, top)
    extra: dict[str, pl.DataFrame] = {}
    interval = None
    first, last = ov.item(0, "first_time"), ov.item(0, "last_time")
    if first is not None and "timeline" in wanted:
        interval = choose_interval(first, last, settings.interval)
        extra["timeline"] = rebucketed(partial["timeline"], interval)
    if "status" in wanted:
        extra["status"] = statuses(partial["status"])
    if agents is not None:
        extra.update(agents.result())
    if (referrers := partial.get("referrers")) is not None and "referrers" in wanted:
        extra["referrers"] = by_requests(referrers, [HTTP_REFERER], top)
    if "host" in logged and "hosts" in wanted:
        extra["hosts"] = by_requests(partial["hosts"], ["host"], top)
    if "lb" in logged and "lb" in wanted:
        extra["lb"] = lb_report.finish(
            by_requests(partial["lb"], ["peer"], top), settings.policy
        )
    if dbs is not None and wanted & {"countries", "networks"}:
        where = located(visitors, dbs, skip_special=settings.geoip_skip_special)
        extra.update(geo_tables(where, top))
        if clients.height:
            clients = clients.join(
                where.select(CLIENT_IP, "country", ASN),
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
        .head(REJECT_SAMPLES)
        .select(SOURCE, LINE, REJECT_REASON, RAW)
    )
    extra = {n: extra[n] for n in EXTRA_ORDER if n in extra and n in wanted}
    if estimated is not None:
        ov = _folded_counts(ov, extra)
    return Tables(ov, clients, paths, errors, rejects, samples, interval, extra)


# the distinct clients a table counts, which `capped`'s folding makes one
# `(other)` for the clients past the cap: (table, column)
_FOLDED_COUNTS = (
    ("paths", "clients"),
    ("errors", "clients"),
    ("browsers", "visitors"),
    ("operating_systems", "visitors"),
    ("devices", "visitors"),
    ("countries", "clients"),
    ("networks", "clients"),
)


def _folded_counts(ov: pl.DataFrame, extra: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """`ov`, of a partial whose clients were folded (`pplog top` past
    `--max-keys`), with `approximate` naming, after `overview.clients`,
    every column of its tables that counts distinct clients: each counts
    the folded ones as one, so it is at most the number it would be (a
    browser's 200 visitors shown as 5); the sums stay exact."""
    named = [
        f"{table}.{column}"
        for table, column in _FOLDED_COUNTS
        if table in ("paths", "errors")
        or (table in extra and column in extra[table].columns)
    ]
    said = ov.item(0, "approximate").split(", ")
    return ov.with_columns(
        pl.lit(", ".join([said[0], *named, *said[1:]])).alias("approximate")
    )
