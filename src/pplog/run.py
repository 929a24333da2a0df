"""Orchestration: `summarize` as map -> merge -> finish, and `diagnose`.

    inputs --plan--> tasks (a format and policy per rotation set)
           --map---> one Partial per task (this process, or --jobs processes)
           --merge-> one Partial
           --finish> Summary

A dataset written by `pplog ingest` and a frame of rows are mapped the same
way; every road gives the same tables. `diagnose` opens access logs and error
logs the same way for `pplog doctor`'s findings.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl

from pplog import sources
from pplog._ipaddr import Network
from pplog.clientip import ProxyPolicy
from pplog.enrich.geo import (
    HOW_TO_GET,
    GeoDatabases,
    default_database_paths,
    open_databases,
)
from pplog.enrich.routes import parse_rules
from pplog.errors import OptionError
from pplog.pipeline import LogSpec, PathArg, PplogWarning, open_log, rows
from pplog.pipeline.opening import formats_of, groups_note, unknown_format_warning
from pplog.reports.finish import FinishSettings, finish
from pplog.reports.mapping import MapSettings
from pplog.reports.overview import checked_ranges
from pplog.reports.partial import Partial, merge
from pplog.reports.summary import Summary
from pplog.reports.timeline import interval_seconds
from pplog.schema import CLIENT_IP, PATH, RAW, REJECT_REASON, STATUS, TIME
from pplog.sources import LINES_SCHEMA
from pplog.tasks import Task, map_frame, run_tasks

if TYPE_CHECKING:
    from pplog.formats import LogFormat
    from pplog.reports.doctor import Finding
    from pplog.sources import ProblemHandler, ProgressHandler

BY = ("path", "route")
Frame = TypeVar("Frame", pl.LazyFrame, pl.DataFrame)


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
    jobs: int = 1,
    approx: bool = False,
    spec: LogSpec | None = None,
    on_problem: ProblemHandler | None = None,
    on_progress: ProgressHandler | None = None,
) -> Summary:
    """Summarize access logs (or rows from `scan_log`) into report tables.

    Parameters
    ----------
    source
        Paths, globs, directories or ``"-"`` (as for `scan_log`), a dataset
        directory written by `pplog ingest`, or a frame of rows from
        `scan_log` / `read_log` (with or without ``include_rejects``).
    top
        Rows per table; 0 keeps every row.
    format, log_format, nginx_conf, log_format_name
        How the logs are laid out, as for `scan_log` (default: detected for
        each input).
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
    jobs
        Processes to read with: files, and byte ranges of large plain files,
        are mapped in parallel and merged, each process given at least 2
        GiB (below that one process, whose polars threads use every core, is
        faster). The tables are the same for any value. Processes are
        spawned: a script passing ``jobs > 1`` calls pplog under
        ``if __name__ == "__main__":``.
    approx
        Count distinct paths per client and clients per path with
        HyperLogLog (about 1.6% error) and latency percentiles with DDSketch
        (within 1%), in fixed memory per row shown, instead of exactly; for
        inputs whose distinct (client, path) pairs would not fit in memory.
        The overview's ``approximate`` names the estimated columns.
    spec
        A `LogSpec` holding the format, real-IP, GeoIP and filter settings
        (instead of those keywords).

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
    if not isinstance(jobs, int) or jobs < 1:
        msg = f"`jobs` must be 1 or more, not {jobs}"
        raise OptionError(msg)
    spec = LogSpec.of(
        spec,
        format=format,
        log_format=log_format,
        nginx_conf=nginx_conf,
        log_format_name=log_format_name,
        trusted=trusted,
        real_ip_header=real_ip_header,
        recursive=recursive,
        policy=policy,
        geoip=geoip,
        geoip_skip_special=geoip_skip_special,
        since=since,
        until=until,
        status=status,
        client=client,
        path=path,
        exclude_bots=exclude_bots,
    )
    if interval is not None:
        interval_seconds(interval)  # a bad interval fails before any reading
    if isinstance(routes, str):
        routes = [routes]
    if routes and by == "path":
        by = "route"  # a route rule asks for routes
    rules = parse_rules(list(routes)) if by == "route" else ()
    dataset = _dataset_dir(source)
    if dataset is not None:
        if spec.reads_options:
            msg = (
                f"`{dataset}` is a dataset: its format and client attribution were "
                "fixed by `pplog ingest`; drop the format and real-IP options (or "
                "summarize the logs themselves)"
            )
            raise OptionError(msg)
        partial, run_policy = _map_dataset(dataset, spec, approx), spec.resolve_policy()
        meta: dict[str, object] = {"format": "dataset", "sources": [str(dataset)]}
    elif isinstance(source, pl.DataFrame | pl.LazyFrame):
        frame: pl.LazyFrame | pl.DataFrame = (
            _as_rows(source) if isinstance(source, pl.DataFrame) else _as_rows(source)
        )
        _check_filters(spec, frame.collect_schema().names())
        run_policy = spec.resolve_policy()
        partial = map_frame(frame, _map_settings(spec, run_policy, {}, approx=approx))
        meta = {"format": "frame"}
    else:
        srcs = sources.expand(source)  # type: ignore[arg-type]
        groups = spec.groups(srcs)
        first = next((g for g in groups if g.format is not None), groups[0])
        run_policy = first.policy
        names: set[str] = set()
        for g in groups:
            if g.format is not None:
                empty = pl.LazyFrame(schema=LINES_SCHEMA)
                names |= set(rows(empty, g.format, policy=g.policy).collect_schema())
        _check_filters(spec, sorted(names), every=not names)
        ranks = {src.name: i for i, src in enumerate(srcs)}
        tasks = [
            Task(
                tuple(g.sources),
                g.format,
                g.policy,
                None if g.format else unknown_format_warning(g.note),
            )
            for g in groups
        ]
        partials = run_tasks(
            tasks,
            _map_settings(spec, run_policy, ranks, approx=approx),
            jobs=jobs,
            rejects=rejects,
            on_problem=on_problem or _warn,
            on_progress=on_progress,
        )
        partial = merge(partials)
        rejects = None  # written by the tasks
        meta = {
            "format": "mixed"
            if len(groups) > 1
            else (first.format.name if first.format else "custom"),
            "detection": groups_note(groups),
            "formats": formats_of(srcs, groups),
            "sources": [s.name for s in srcs],
            "problems": partial.problems(),
        }
    if rejects is not None:
        _write_frame_rejects(source, dataset, spec, rejects)
    settings = FinishSettings(
        top=top,
        interval=interval,
        by=by,
        rules=tuple(rules),
        policy=run_policy,
        geoip_skip_special=spec.geoip_skip_special,
        left_out=bool(spec.filters) or spec.exclude_bots,
    )
    dbs, geo_note = _geo_databases(spec.geoip)
    if dbs is not None:
        with dbs:
            tables = finish(partial, settings, dbs)
    else:
        tables = finish(partial, settings)
    return Summary(
        overview=tables.overview,
        clients=tables.clients,
        paths=tables.paths,
        errors=tables.errors,
        rejects=tables.rejects,
        reject_samples=tables.reject_samples,
        top=top,
        extra=tables.extra,
        interval=tables.interval,
        by=by,
        geoip=geo_note,
        filters=spec.filters.labels + (("bots left out",) if spec.exclude_bots else ()),
        **meta,  # type: ignore[arg-type]
    )


def _map_settings(
    spec: LogSpec, policy: ProxyPolicy, ranks: dict[str, int], *, approx: bool = False
) -> MapSettings:
    return MapSettings(
        approx=approx,
        filters=spec.filters,
        exclude_bots=spec.exclude_bots,
        checked=checked_ranges(policy),
        keep_health_checks=bool(spec.filters.client),
        ranks=ranks,
    )


# Test hook: False makes `summarize DIR` read every row, as before rollups.
_ROLLUPS = True


def dataset_checked_ranges() -> tuple[Network, ...]:
    """The ranges whose health checks are no visitors, in a dataset's summary.

    A dataset's attribution was fixed at ingest; its summary takes the
    default policy, and so do its rollups.
    """
    return checked_ranges(LogSpec().resolve_policy())


def map_dataset_rows(
    rows: pl.LazyFrame | pl.DataFrame,
    spec: LogSpec | None = None,
    *,
    approx: bool = False,
) -> Partial:
    """The `Partial` of rows read from a dataset (or staged into one).

    `summarize DIR` and the rollups `ingest` writes map rows here, so that
    merging rollups gives what reading the rows gives. A frame in memory (a
    batch `ingest` stages) is mapped as it is; a lazy one is spooled first
    (`map_frame`). The first rejected lines are in ingest order
    (`batch.rollup.first_rejects`).
    """
    from pplog.batch.rollup import first_rejects

    spec = spec or LogSpec()
    rows = _as_rows(rows) if isinstance(rows, pl.DataFrame) else _as_rows(rows)
    _check_filters(spec, rows.collect_schema().names())
    settings = _map_settings(spec, spec.resolve_policy(), {}, approx=approx)
    partial = map_frame(rows, settings)
    partial.frames["samples"] = first_rejects(rows.lazy())
    return partial


def _map_dataset(dataset: Path, spec: LogSpec, approx: bool) -> Partial:  # noqa: FBT001
    """A dataset's partial: its rollups merged where they serve, else its rows.

    Rollups serve when the only filters are `--since/--until` on whole UTC
    days (or none) and no bots are left out; then each committed file in the
    window is its rollup, or its rows when it has none this process can use.
    Other filters read every row in the window, as a frame of rows is read.
    A compaction may delete files a reader has just listed: list again.
    """
    from pplog.batch.dataset import scan_dataset

    for attempt in range(3):
        try:
            # rollups hold exact pairs: sketches are mapped from the rows
            merged = _merge_rollups(dataset, spec) if _ROLLUPS and not approx else None
            if merged is not None:
                return merged
            frame = scan_dataset(
                dataset,
                since=spec.filters.since,
                until=spec.filters.until,
                include_rejects=True,
            )
            return map_dataset_rows(frame, spec, approx=approx)
        except (OSError, pl.exceptions.ComputeError) as exc:
            if attempt == 2 or "No such file" not in str(exc):
                raise
    raise AssertionError  # pragma: no cover - the loop returns or raises


def _whole_days(when: datetime | None) -> bool:
    return when is None or when.time() == time()  # filters hold UTC times


def _merge_rollups(dataset: Path, spec: LogSpec) -> Partial | None:
    """The rollup road of `_map_dataset`; None when rollups cannot serve.

    The row road reads the date partitions from `--since`'s day to
    `--until`'s day, both included, and counts every request it read in the
    overview's `lines` (and `filtered_out`); with whole days every row of a
    partition before `--until`'s day is kept and none of that day's, so that
    day's files add their row count (from the state) and nothing else.
    """
    from pplog.batch import rollup
    from pplog.batch.dataset import listing

    filters = spec.filters
    if filters.status or filters.client or filters.path or spec.exclude_bots:
        return None
    if not (_whole_days(filters.since) and _whole_days(filters.until)):
        return None
    window = filters.since is not None or filters.until is not None
    last_day = f"{filters.until:%Y-%m-%d}" if filters.until else None
    files = listing(dataset, since=filters.since, until=filters.until)
    partials: list[Partial] = []
    rest: list[Path] = []
    uncounted = 0
    wanted = []
    for f in files.entries:
        if f.kind == "data" and f.date == last_day:
            uncounted += f.rows  # read, and all left out
            continue
        usable = f.rollup is not None and not (window and f.date == "unknown")
        wanted.append((f, f.rollup if usable else None))

    def load(entry: tuple[Any, Path | None]) -> Partial | None:
        return None if entry[1] is None else rollup.read(files.layout, entry[1])

    # polars reads Parquet without the GIL: rollups are read side by side
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for (f, _), found in zip(wanted, pool.map(load, wanted), strict=True):
            if found is None:
                rest.append(f.path)
            else:
                partials.append(found)
    if not partials:
        return None  # nothing to merge: the rows are as cheap
    if rest or window:
        # with the columns of every file in the window, as the row road has
        # them (a window of rejects and --until's day still logs what the
        # format logs); refuses --since on a format without times, as it does
        partials.append(map_dataset_rows(files.scan(rest), spec))
    partial = rollup.merge_all(partials, distinct_pairs=False)  # for finish alone
    if uncounted:
        totals = partial.frames["totals"]
        partial.frames["totals"] = totals.with_columns(
            (pl.col("parsed") + uncounted).cast(totals.schema["parsed"])
        )
    return partial


def _write_frame_rejects(
    source: object, dataset: Path | None, spec: LogSpec, target: str | os.PathLike[str]
) -> None:
    """`--rejects` for a dataset or a frame: its rows with a `reject_reason`."""
    import tempfile

    from pplog.reports._spool import write_rejects
    from pplog.tasks import join_parts

    if dataset is not None:
        from pplog.batch.dataset import scan_dataset

        frame = scan_dataset(
            dataset,
            since=spec.filters.since,
            until=spec.filters.until,
            include_rejects=True,
        )
    else:
        assert isinstance(source, pl.DataFrame | pl.LazyFrame)
        frame = source.lazy()
    frame = _as_rows(frame)
    with tempfile.TemporaryDirectory(prefix="pplog-") as folder:
        part = Path(folder) / "0.jsonl"
        write_rejects(frame.lazy(), None, part).collect(engine="streaming")
        join_parts([str(part)], Path(target))


def _warn(name: str, message: str) -> None:
    """Without a handler, problems with one input are Python warnings."""
    warnings.warn(f"{name}: {message}", PplogWarning, stacklevel=4)


def _as_rows(lf: Frame) -> Frame:
    """A frame from the user, in the shape the tables expect.

    `reject_reason` and `raw` are added when missing, categorical columns
    become text, and `time` becomes UTC microseconds (a naive time is taken
    as UTC).
    """
    schema = lf.collect_schema()
    if REJECT_REASON not in schema.names():
        lf = lf.with_columns(
            pl.lit(None, pl.String).alias(REJECT_REASON),
            pl.lit(None, pl.String).alias(RAW),
        )
    # categorical text (a user's frame) groups and hashes as text
    coded = [n for n, t in schema.items() if isinstance(t, pl.Categorical | pl.Enum)]
    if coded:
        lf = lf.with_columns(pl.col(coded).cast(pl.String))
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


def _check_filters(spec: LogSpec, logged: list[str], *, every: bool = False) -> None:
    """Refuse filters on what the format does not log: they would match nothing.

    `every`: no input has a format (all rejects), nothing to refuse.
    """
    filters = spec.filters
    if every:
        return
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


def diagnose(
    source: PathArg | pl.LazyFrame | pl.DataFrame | None = None,
    error_log: PathArg | pl.DataFrame | Iterable[pl.DataFrame] | None = None,
    *,
    spec: LogSpec | None = None,
    policy: ProxyPolicy | None = None,
    balancer_share: float | None = None,
    on_problem: ProblemHandler | None = None,
    **keywords: Any,  # noqa: ANN401 - the format and real-IP keywords of `scan_log`
) -> list[Finding]:
    """Findings about the load-balancer / PROXY-protocol setup behind these logs.

    Parameters
    ----------
    source
        Access logs: paths, globs, directories or ``"-"`` (read as for
        `scan_log`, rejected lines kept), or a frame of rows from `scan_log` /
        `read_log` (best with ``include_rejects=True``, so examples show the
        logged line).
    error_log
        nginx error logs: paths (read in batches), a frame from
        `pplog.formats.errorlog.read_error_log`, or batches of them.
    spec
        A `LogSpec` with the format and real-IP settings; or the keywords of
        `scan_log` (``format``, ``log_format``, ``nginx_conf``, ``trusted``,
        ...), not both. Its filters must be empty: every line is diagnosed.
    policy
        The proxy policy (as for `scan_log`); its trusted ranges decide
        ``balancer-addresses-as-clients``. For paths, the policy each input
        was read with.
    balancer_share
        Least share of parsed rows attributed to trusted addresses for
        ``balancer-addresses-as-clients`` to be reported (default 0.5).
    on_problem
        Called with (input, message) for an input that cannot be read; the
        run goes on. Default: a `PplogWarning`.

    Returns
    -------
    list[Finding]
        Non-zero findings, by severity (error, warning, info), then count.

    Examples
    --------
    >>> import pplog
    >>> found = pplog.diagnose("sample_logs/elb-access.log", format="elb_log")
    >>> "tls-on-plain-listener" in [f.code for f in found]
    True
    """
    from pplog.reports import doctor

    spec = LogSpec.of(spec, policy=policy, **keywords)
    if spec.filters or spec.exclude_bots:
        msg = "`diagnose` reads every line: drop the filters (`since`, `status`, ...)"
        raise OptionError(msg)
    handler = on_problem or _warn
    rows: pl.LazyFrame | pl.DataFrame | None = None
    run_policy = spec.resolve_policy()
    if isinstance(source, pl.LazyFrame | pl.DataFrame):
        rows = source
    elif source is not None:
        scan = open_log(source, spec=spec, on_problem=handler)
        rows, run_policy = scan.frame, scan.policy
    entries = error_log
    if _are_paths(error_log):
        from pplog.formats.errorlog import iter_error_log

        entries = iter_error_log(error_log, on_problem=handler)  # type: ignore[arg-type]
    share = doctor.BALANCER_SHARE if balancer_share is None else balancer_share
    return doctor.diagnose(
        rows,
        entries,  # type: ignore[arg-type]
        policy=run_policy,
        balancer_share=share,
    )


def _are_paths(value: object) -> bool:
    """True for a path, or a non-empty list of them (not frames of entries)."""
    if isinstance(value, str | os.PathLike):
        return True
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(v, str | os.PathLike) for v in value)
    )
