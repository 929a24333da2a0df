"""`Summary` and `summarize`: every table from one parse of the logs."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape as html_escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from pplog.clientip import ProxyPolicy, attribute, with_pair_key
from pplog.enrich.geo import (
    HOW_TO_GET,
    GeoDatabases,
    default_database_paths,
    open_databases,
)
from pplog.enrich.routes import parse_rules
from pplog.errors import OptionError, ReportError
from pplog.pipeline import LogScan, PathArg, open_log, parse_lines, resolve_policy
from pplog.reports._spool import spooled, with_report_columns, write_rejects
from pplog.reports._tables import TableSet, build_tables
from pplog.reports.enriched import agent_classes, bot_rows
from pplog.reports.filters import Filters
from pplog.reports.overview import overview, rejects_by_reason
from pplog.reports.timeline import interval_seconds
from pplog.schema import (
    CLIENT_IP,
    LINE,
    PATH,
    RAW,
    REJECT_REASON,
    SOURCE,
    STATUS,
    TIME,
)

if TYPE_CHECKING:
    from pplog.formats import LogFormat
    from pplog.sources import ProblemHandler, ProgressHandler

REJECT_SAMPLES = 5
BY = ("path", "route")


@dataclass
class Summary:
    """Every report table for one set of logs.

    Attributes
    ----------
    overview
        One row: ``lines``, ``requests``, ``rejected``, ``clients``, ``bytes``,
        ``first_time``, ``last_time``, ``status_1xx`` ... ``status_other``, and
        the attribution checks. With filters, ``requests`` and everything
        after it describe the matching requests; ``filtered_out`` and
        ``excluded_bots`` count the rest, and ``lines`` stays every line read.
    clients, paths, errors
        The tables, busiest first, cut to ``top`` rows (0 = all). With
        ``by="route"`` the paths table is grouped by ``route`` instead.
    rejects
        Rejected lines per ``reject_reason``.
    reject_samples
        The first few rejected lines (``source``, ``line``, ``reject_reason``, ``raw``).
    extra
        The other tables by name: ``timeline``, ``status``, ``user_agents``,
        ``referrers``, ``hosts`` and ``lb`` when the format logs what they
        need, and ``agents``, ``countries``, ``networks`` when enriched.
    formats
        Which input was read with which format (``source``, ``format``,
        ``detection``); ``format`` is None for an input no preset fits, whose
        lines are rejects (``unknown_format``).
    interval
        The timeline's interval (``1m`` ... ``1w``).
    filters
        The filters applied, as readable labels.
    """

    overview: pl.DataFrame
    clients: pl.DataFrame
    paths: pl.DataFrame
    errors: pl.DataFrame
    rejects: pl.DataFrame
    reject_samples: pl.DataFrame
    format: str = "custom"
    detection: str | None = None
    formats: list[dict[str, str | None]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    top: int = 10
    extra: dict[str, pl.DataFrame] = field(default_factory=dict)
    geoip: str | None = None
    interval: str | None = None
    filters: tuple[str, ...] = ()
    by: str = "path"

    def tables(self) -> dict[str, pl.DataFrame]:
        """The row tables by name, in report order (enrichment tables last)."""
        paths = "routes" if self.by == "route" else "paths"
        return {
            "clients": self.clients,
            paths: self.paths,
            "errors": self.errors,
            **self.extra,
        }

    def overview_dict(self) -> dict[str, Any]:
        """The overview as a plain dict, with rejects by reason and the format."""
        row = self.overview.row(0, named=True) if self.overview.height else {}
        row["rejected_by_reason"] = {
            r[REJECT_REASON]: r["lines"] for r in self.rejects.iter_rows(named=True)
        }
        row["format"] = self.format
        row["formats"] = [dict(f) for f in self.formats]
        row["geoip"] = self.geoip
        row["interval"] = self.interval
        row["filters"] = list(self.filters)
        row["sources"] = list(self.sources)
        row["unreadable"] = [{"source": s, "problem": p} for s, p in self.problems]
        return row

    def __repr__(self) -> str:
        ov = self.overview_dict()
        return (
            f"<pplog.Summary {ov.get('requests', 0):,} requests from "
            f"{ov.get('clients', 0):,} clients, {ov.get('rejected', 0):,} rejected; "
            f"tables: overview, {', '.join(self.tables())}, rejects>"
        )

    def _repr_html_(self) -> str:
        parts = [f"<p>{html_escape(repr(self))}</p>"]
        for name, table in {"overview": self.overview, **self.tables()}.items():
            parts.append(f"<h4>{name}</h4>{table._repr_html_()}")
        return "".join(parts)


def summarize(
    source: PathArg | pl.LazyFrame | pl.DataFrame,
    *,
    top: int = 10,
    format: str | LogFormat | None = "auto",  # noqa: A002 - mirrors --format
    log_format: str | None = None,
    nginx_conf: str | os.PathLike[str] | None = None,
    log_format_name: str | None = None,
    rejects: str | os.PathLike[str] | None = None,
    geoip: Sequence[str | os.PathLike[str]] | None = None,
    geoip_skip_special: bool = True,
    exclude_bots: bool = False,
    trusted: Sequence[str] | None = None,
    real_ip_header: str | None = None,
    recursive: bool | None = None,
    policy: ProxyPolicy | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    status: str | Sequence[str] | None = None,
    client: str | Sequence[str] | None = None,
    path: str | Sequence[str] | None = None,
    interval: str | None = None,
    by: str = "path",
    routes: Sequence[str] = (),
    on_problem: ProblemHandler | None = None,
    on_progress: ProgressHandler | None = None,
) -> Summary:
    """Summarize access logs (or rows from `scan_log`) into report tables.

    Parameters
    ----------
    source
        Paths, globs, directories or ``"-"`` (as for `scan_log`), or a frame of
        rows from `scan_log` / `read_log` (with or without ``include_rejects``).
    top
        Rows per table; 0 keeps every row.
    trusted, real_ip_header, recursive, policy
        Who to believe about client addresses, as for `scan_log`.
    geoip
        MaxMind DB files (country or city, and ASN; GeoLite2 or DB-IP
        layouts); None looks in /usr/share/GeoIP and /var/lib/GeoIP.
    geoip_skip_special
        Do not look up private, documentation and other special addresses.
    exclude_bots
        Leave out requests from crawlers, AI crawlers, health checkers and
        scanners (by user agent).
    since, until
        Only requests in ``since <= time < until``: ISO 8601 (UTC unless an
        offset is given), nginx's ``27/Nov/2026:08:00:00 +0000``, or a
        duration back from now such as ``15m``, ``1h``, ``2d``.
    status
        Only these statuses: ``5xx``, ``404``, ``400-499`` (a list, or commas).
    client
        Only these clients: addresses or CIDR ranges (a drilldown).
    path
        Only paths matching one of these regular expressions (a drilldown).
    interval
        The timeline interval (``30s``, ``5m``, ``1h``, ``1d``, ...); by
        default chosen from the time span for about 60 to 120 points.
    by
        ``"path"``, or ``"route"`` to group the paths table by URL template
        (numeric ids, UUIDs and hashes become ``:id``).
    routes
        Route rules tried before the automatic templates, e.g. ``/users/*``
        (``*`` one segment, ``**`` the rest).
    rejects
        Write every rejected line to this file as JSON lines (``source``,
        ``line``, ``offset``, ``reject_reason``, ``raw``).

    Returns
    -------
    Summary

    Examples
    --------
    >>> import pplog
    >>> s = pplog.summarize("sample_logs/elb-access.log", top=3)
    >>> s.clients.columns[:3]
    ['client_ip', 'requests', 'bytes']
    >>> errors = pplog.summarize("sample_logs/elb-access.log", status="5xx")
    >>> errors.overview["status_2xx"].item()
    0
    """
    if top < 0:
        msg = f"`top` must be 0 (all rows) or more, not {top}"
        raise OptionError(msg)
    if by not in BY:
        msg = f"`by` is `path` or `route`, not `{by}`"
        raise OptionError(msg)
    filters = Filters.parse(
        since=since, until=until, status=status, client=client, path=path
    )
    if interval is not None:
        interval_seconds(interval)  # a bad interval fails before any reading
    if isinstance(routes, str):
        routes = [routes]
    if routes and by == "path":
        by = "route"  # a route rule asks for routes
    rules = parse_rules(list(routes)) if by == "route" else ()

    def run(source: PathArg | pl.LazyFrame | pl.DataFrame, filters: Filters) -> Summary:
        scan: LogScan | None = None
        dataset = _dataset_dir(source)
        if dataset is not None:  # written by `pplog ingest`: rows are ready
            from pplog.batch.dataset import scan_dataset

            source = scan_dataset(
                dataset, since=filters.since, until=filters.until, include_rejects=True
            )
        if isinstance(source, pl.DataFrame | pl.LazyFrame):
            lf = _as_rows(source.lazy())
        else:
            scan = open_log(
                source,
                format,
                log_format=log_format,
                nginx_conf=nginx_conf,
                log_format_name=log_format_name,
                trusted=trusted,
                real_ip_header=real_ip_header,
                recursive=recursive,
                policy=policy,
                on_problem=on_problem,
                on_progress=on_progress,
            )
            if scan.mixed:
                # each input parsed and attributed with its own format: the
                # rows arrive decoded, as from a frame
                lf = _as_rows(scan.frame)
            else:
                # free text stays escaped through the aggregations; tables decode
                # it and the client is attributed after the spool, from its inputs
                lf = with_pair_key(
                    parse_lines(scan.lines, scan.format, decode=False), scan.policy
                )
        late = scan is not None and not scan.mixed  # decoded and attributed later
        escape = scan.format.escape if late and scan is not None else "none"
        with tempfile.TemporaryDirectory(prefix="pplog-") as spool:
            if not isinstance(source, pl.DataFrame):
                # offsets of polars-read lines cost a running sum: see write_rejects
                with_offset = scan is None or not scan.native
                lf = spooled(lf, Path(spool), with_offset=with_offset)
            # rejects are read from the lines as spooled, in their order; the
            # attributed rows feed aggregations only, so their joins may reorder
            lines = with_report_columns(lf)
            if late and scan is not None:
                lf = attribute(lf, scan.policy, eager_decisions=True)
            _check_filters(filters, lf.collect_schema().names())
            lf = with_report_columns(lf)
            filters = filters.bind(lf)
            classes = agent_classes(lf)
            # what the tables look at: the filters' requests, bots left out if asked
            keep = filters.expr(escape)
            if exclude_bots:
                keep = keep & ~bot_rows(classes)
            selected = (
                lf.filter(pl.col(REJECT_REASON).is_not_null() | keep)
                if filters or exclude_bots
                else lf
            )
            dbs, geo_note = _geo_databases(geoip)
            settings = TableSet(
                top=top,
                interval=interval,
                by=by,
                rules=rules,
                escape=escape,
                policy=scan.policy
                if scan
                else resolve_policy(
                    policy,
                    trusted=trusted,
                    real_ip_header=real_ip_header,
                    recursive=recursive,
                ),
                geoip_skip_special=geoip_skip_special,
                keep_health_checks=bool(filters.client),
            )
            with dbs if dbs is not None else contextlib.nullcontext():
                summary = _summarize(
                    lines,
                    lf,
                    selected,
                    scan,
                    classes,
                    settings,
                    rejects,
                    filters,
                    dbs,
                )
            summary.geoip = geo_note
            if dataset is not None:
                summary.format, summary.sources = "dataset", [str(dataset)]
            summary.filters = filters.labels + (
                ("bots left out",) if exclude_bots else ()
            )
            return summary

    dataset = _dataset_dir(source)
    if dataset is None:
        return run(source, filters)
    given = trusted or real_ip_header or recursive is not None or policy
    if given or format not in (None, "auto") or log_format or nginx_conf:
        msg = (
            f"`{dataset}` is a dataset: its format and client attribution were fixed "
            "by `pplog ingest`; drop the format and real-IP options (or summarize "
            "the logs themselves)"
        )
        raise OptionError(msg)
    # a compaction may delete files a reader has just listed: list again
    for attempt in range(3):
        try:
            return run(source, filters)
        except (OSError, pl.exceptions.ComputeError) as exc:
            if attempt == 2 or "No such file" not in str(exc):
                raise
    raise AssertionError  # pragma: no cover - the loop returns or raises


def _as_rows(lf: pl.LazyFrame) -> pl.LazyFrame:
    """A frame from the user, in the shape the tables expect.

    `reject_reason` and `raw` are added when missing, and `time` becomes UTC
    microseconds (a naive time is taken as UTC).
    """
    schema = lf.collect_schema()
    if REJECT_REASON not in schema.names():
        lf = lf.with_columns(
            pl.lit(None, pl.String).alias(REJECT_REASON),
            pl.lit(None, pl.String).alias(RAW),
        )
    dtype = schema.get(TIME)
    if isinstance(dtype, pl.Datetime) and dtype != pl.Datetime("us", "UTC"):
        time = pl.col(TIME)
        time = (
            time.dt.replace_time_zone("UTC")
            if dtype.time_zone is None
            else time.dt.convert_time_zone("UTC")
        )
        lf = lf.with_columns(time.dt.cast_time_unit("us").alias(TIME))
    elif dtype is not None and not isinstance(dtype, pl.Datetime):
        msg = f"the frame's `time` column is {dtype}, not a datetime"
        raise OptionError(msg)
    return lf


def _check_filters(filters: Filters, logged: list[str]) -> None:
    """Refuse filters on what the format does not log: they would match nothing."""
    needs = (
        (
            filters.since or filters.until,
            TIME,
            "--since/--until need a time in the "
            "log format ($time_local, $time_iso8601 or $msec)",
        ),
        (filters.status, STATUS, "--status needs $status in the log format"),
        (
            filters.path,
            PATH,
            "--path needs $request, $request_uri or $uri in the log format",
        ),
        (
            filters.client,
            CLIENT_IP,
            "--client needs a client address in the log "
            "format ($remote_addr, $proxy_protocol_addr, ...)",
        ),
    )
    for wanted, column, message in needs:
        if wanted and column not in logged:
            raise OptionError(message)


def _dataset_dir(source: object) -> Path | None:
    """The dataset directory `source` names, if it is one path to a dataset."""
    from pplog.batch.state import is_dataset

    if isinstance(source, list | tuple) and len(source) == 1:
        source = source[0]
    if isinstance(source, str | os.PathLike) and os.fspath(source) != "-":
        path = Path(source)
        if path.is_dir() and is_dataset(path):
            return path
    return None


def _geo_databases(
    geoip: Sequence[str | os.PathLike[str]] | None,
) -> tuple[GeoDatabases | None, str]:
    """Open the given databases, or those in the usual directories; and a note."""
    paths = list(geoip) if geoip else default_database_paths()
    if not paths:
        return None, HOW_TO_GET
    dbs = open_databases(paths)
    names = ", ".join(Path(p).name for p in paths)
    return dbs, f"GeoIP: {names}"


def _summarize(
    lines: pl.LazyFrame,
    lf: pl.LazyFrame,
    selected: pl.LazyFrame,
    scan: LogScan | None,
    classes: pl.DataFrame | None,
    settings: TableSet,
    rejects: str | os.PathLike[str] | None,
    filters: Filters,
    dbs: GeoDatabases | None,
) -> Summary:
    """Overview and rejects over every line; the tables over `selected`.

    `lines` are the lines as spooled, in order (rejects are read from them);
    `lf` every row attributed; `selected` the rows the filters keep.
    """
    rejected = lines.filter(pl.col(REJECT_REASON).is_not_null()).select(
        SOURCE, LINE, REJECT_REASON, RAW
    )
    frames = [rejects_by_reason(lines), _first(rejected, scan)]
    tmp: Path | None = None
    if rejects is not None:
        sink, tmp = write_rejects(lines, scan, rejects)
        frames.append(sink)
    ov = overview(selected, settings.policy)
    try:
        rj, samples = (frame.collect(engine="streaming") for frame in frames[:2])
        if len(frames) > 2:
            frames[2].collect(engine="streaming")
    except OSError as exc:
        msg = f"cannot write rejects to `{rejects}`: {exc.strerror or exc}"
        raise ReportError(msg) from exc
    if tmp is not None and rejects is not None and tmp != Path(rejects):
        tmp.replace(rejects)
    if selected is not lf:
        ov = _with_left_out(ov, lf, filters, settings.escape)
    tables = build_tables(selected, ov, classes, settings, dbs)
    return Summary(
        overview=tables.overview,
        clients=tables.clients,
        paths=tables.paths,
        errors=tables.errors,
        rejects=rj,
        reject_samples=samples,
        format=(("mixed" if scan.mixed else scan.format.name) if scan else "frame"),
        detection=scan.detection if scan else None,
        formats=scan.formats() if scan else [],
        sources=[s.name for s in scan.sources] if scan else [],
        problems=list(scan.problems) if scan else [],
        top=settings.top,
        extra=tables.extra,
        interval=tables.interval,
        by=settings.by,
    )


def _first(rejected: pl.LazyFrame, scan: LogScan | None) -> pl.LazyFrame:
    """The first rejected lines, in the order of the inputs.

    Rows of several formats are read a format at a time, so their order is
    not the inputs' order: the inputs' positions and the line numbers are.
    """
    if scan is None or not scan.mixed:
        return rejected.head(REJECT_SAMPLES)
    rank = {src.name: i for i, src in enumerate(scan.sources)}
    order = [
        pl.col(SOURCE).replace_strict(rank, default=len(rank), return_dtype=pl.UInt32),
        pl.col(LINE),
    ]
    return rejected.bottom_k(REJECT_SAMPLES, by=order).sort(order)


def _with_left_out(
    ov: pl.DataFrame, lf: pl.LazyFrame, filters: Filters, escape: str
) -> pl.DataFrame:
    """Count what the filters and the bot exclusion left out; `lines` stays all."""
    parsed = lf.filter(pl.col(REJECT_REASON).is_null())
    counts = [pl.len().cast(pl.UInt64).alias("parsed")]
    if filters:
        counts.append(filters.expr(escape).sum().cast(pl.UInt64).alias("matching"))
    row = parsed.select(counts).collect(engine="streaming").row(0)
    parsed_total, matching = row[0], row[-1]
    requests = ov.item(0, "requests")
    return ov.with_columns(
        (pl.col("lines") + (parsed_total - requests)).alias("lines"),
        pl.lit(parsed_total - matching, pl.UInt64).alias("filtered_out"),
        pl.lit(matching - requests, pl.UInt64).alias("excluded_bots"),
    )
