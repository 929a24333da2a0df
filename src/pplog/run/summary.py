"""`summarize`: inputs -> tasks -> partials -> merge -> finish -> `Summary`.

    inputs --plan--> tasks (a format and policy per rotation set)
           --map---> one Partial per task (this process, or --jobs processes)
           --merge-> one Partial
           --finish> Summary

A dataset written by `pplog ingest` (`run.dataset`) and a frame of rows are
mapped the same way; every road gives the same tables."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from pplog import sources
from pplog._paths import unwritable
from pplog.clientip import ProxyPolicy
from pplog.enrich.routes import parse_rules
from pplog.enrich.useragents import prepare as prepare_agents
from pplog.enrich.useragents import stored_answers
from pplog.errors import OptionError, ReportError
from pplog.pipeline import LogSpec, PathArg, rows
from pplog.pipeline.opening import formats_of, groups_note
from pplog.reports.finish import REGROUPED, FinishSettings, finish
from pplog.reports.mapping import Shown
from pplog.reports.partial import AGENTS, merge
from pplog.reports.summary import Summary
from pplog.reports.timeline import interval_seconds
from pplog.run._common import (
    as_rows,
    check_count,
    check_filters,
    geo_databases,
    map_settings,
    nothing_read,
    warn,
)
from pplog.run.dataset import dataset_dir, dataset_spec, map_dataset
from pplog.sources import LINES_SCHEMA
from pplog.tasks import Task, map_frame, run_tasks

if TYPE_CHECKING:
    from pplog.formats import LogFormat
    from pplog.reports.mapping import MapSettings
    from pplog.reports.partial import Partial
    from pplog.sources import ProblemHandler, ProgressHandler

BY = ("path", "route")


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
    cluster: object = None,
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
        ``line``, ``offset``, ``reject_reason``, ``raw``). Its directory must
        exist (checked before any reading; a `ReportError` if it cannot be
        written).
    jobs
        Cores to use. This process's polars threads are fixed when polars
        loads (``POLARS_MAX_THREADS``; ``pplog summarize --jobs N`` sets it);
        from 2 GiB of input, files and byte ranges of large plain files are
        also mapped in up to ``jobs`` processes, one per 2 GiB at least
        (below that one process, whose polars threads use every core, is
        faster), each worker given its share of the cores as threads. The
        tables are the same for any value. Processes are spawned: a script
        passing ``jobs > 1`` calls pplog under ``if __name__ == "__main__":``.
    cluster
        Map on a Dask cluster instead (``pip install 'pplog[dask]'``): a
        scheduler address such as ``"tcp://10.0.0.5:8786"`` (connected to
        with a 5 s timeout and closed at the end), a `distributed.Client`
        (used as it is) or a cluster object such as `LocalCluster`. Each
        file, and each 64 MiB range of a large plain file, is a task (a
        dataset: each rollup, and each file read as rows); up to 16
        partials come back and merge here (more are first merged on the
        workers, 8 at a time) and this process finishes the tables, the same
        as a local run. The workers must see the paths (a shared
        filesystem). `jobs` is then not used; stdin, a frame of rows and
        `rejects` cannot be used.
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

    Raises
    ------
    SourceError
        When an input does not exist, or when no input could be read at all
        (each was reported through `on_problem`): nothing to summarize.

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
    check_count("top", top, 0)  # 0: every row
    if by not in BY:
        msg = f"`by` is `path` or `route`, not `{by}`"
        raise OptionError(msg)
    check_count("jobs", jobs, 1)
    if cluster is not None and rejects is not None:
        msg = (
            "`rejects` cannot be written from a cluster run (the rejected lines "
            "are read on the workers): summarize without the cluster to write "
            "them, or ingest the logs and read `rejects/` in the dataset"
        )
        raise OptionError(msg)
    if rejects is not None:  # before any reading, not after the whole input
        why = unwritable(Path(rejects))
        if why is not None:
            msg = f"cannot write rejects to `{os.fspath(rejects)}`: {why}"
            raise ReportError(msg)
    if cluster is not None and isinstance(source, pl.DataFrame | pl.LazyFrame):
        msg = (
            "a frame of rows is summarized in this process: drop `cluster`, or "
            "pass the paths the frame was read from"
        )
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
    # finish parses the user agents into browsers and systems: their rules
    # (0.1 s) are built in a thread while the inputs are mapped. A dataset's
    # rollups hold the answers (built only for rollups without them, once
    # read: the build holds the GIL most of its time, and then overlaps
    # finish's other tables)
    dataset = dataset_dir(source)
    if dataset is None:
        prepare_agents()
    if dataset is not None:
        if spec.reads_options:
            msg = (
                f"`{dataset}` is a dataset: its format and client attribution were "
                "fixed by `pplog ingest`; drop the format and real-IP options (or "
                "summarize the logs themselves)"
            )
            raise OptionError(msg)
        spec = dataset_spec(dataset, spec)  # the trust its rows were read with
        partial = map_dataset(dataset, spec, approx, cluster=cluster)
        if stored_answers(partial.get(AGENTS)) is None:
            prepare_agents()  # else rollups answered (most of) them
        run_policy = spec.resolve_policy()
        meta: dict[str, object] = {"format": "dataset", "sources": [str(dataset)]}
    elif isinstance(source, pl.DataFrame | pl.LazyFrame):
        frame: pl.LazyFrame | pl.DataFrame = (
            as_rows(source) if isinstance(source, pl.DataFrame) else as_rows(source)
        )
        check_filters(spec, frame.collect_schema().names())
        run_policy = spec.resolve_policy()
        partial = map_frame(frame, map_settings(spec, run_policy, {}, approx=approx))
        meta = {"format": "frame"}
    else:
        srcs = sources.expand(source)  # type: ignore[arg-type]
        if cluster is not None:
            from pplog.run.cluster import shared

            for src in srcs:
                shared(src)  # stdin cannot be read on the workers: before reading
        groups = spec.groups(srcs)
        first = next((g for g in groups if g.format is not None), groups[0])
        run_policy = first.policy
        names: set[str] = set()
        for g in groups:
            if g.format is not None:
                empty = pl.LazyFrame(schema=LINES_SCHEMA)
                names |= set(rows(empty, g.format, policy=g.policy).collect_schema())
        check_filters(spec, sorted(names), every=not names)
        ranks = {src.name: i for i, src in enumerate(srcs)}
        tasks = [
            Task(
                tuple(g.sources),
                g.format,
                g.policy,
                None if g.format else g.note,
                g.zone,
                tuple(
                    (s.name, g.warnings[s.name])
                    for s in g.sources
                    if s.name in g.warnings
                ),
            )
            for g in groups
        ]
        settings = map_settings(spec, run_policy, ranks, approx=approx)
        if cluster is not None:
            partial = _on_cluster(cluster, tasks, settings, on_problem, on_progress)
        else:
            # finish groups the REGROUPED frames again: only concatenated
            # the tables' cut: a plan of one task mapped here maps the pairs
            # of the shown rows only (`run_tasks`)
            shown = None if approx or not top else Shown(top, by, tuple(rules))
            partial = merge(
                run_tasks(
                    tasks,
                    settings,
                    jobs=jobs,
                    rejects=rejects,
                    on_problem=on_problem or warn,
                    on_progress=on_progress,
                    shown=shown,
                ),
                concatenated=REGROUPED,
            )
        rejects = None  # written by the tasks
        unread = {name for name, _ in partial.problems()}
        if partial.lines == 0 and all(s.name in unread for s in srcs):
            raise nothing_read([s.name for s in srcs], "nothing to summarize")
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
    finishing = FinishSettings(
        top=top,
        interval=interval,
        by=by,
        rules=tuple(rules),
        policy=run_policy,
        geoip_skip_special=spec.geoip_skip_special,
        left_out=bool(spec.filters) or spec.exclude_bots,
    )
    dbs, geo_note = geo_databases(spec.geoip)
    if dbs is not None:
        with dbs:
            tables = finish(partial, finishing, dbs)
    else:
        tables = finish(partial, finishing)
    return tables.summary(
        top=top,
        by=by,
        geoip=geo_note,
        filters=spec.filters.labels + (("bots left out",) if spec.exclude_bots else ()),
        **meta,
    )


def _on_cluster(
    cluster: object,
    tasks: Sequence[Task],
    settings: MapSettings,
    on_problem: ProblemHandler | None,
    on_progress: ProgressHandler | None,
) -> Partial:
    """The tasks mapped and merged on a Dask cluster (`run.cluster`)."""
    from pplog.run import cluster as dask_cluster

    with dask_cluster.connected(cluster) as client:
        return dask_cluster.run(
            client,
            dask_cluster.map_work(tasks, settings),
            merge,
            on_problem=on_problem or warn,
            on_progress=on_progress,
            final=lambda parts: merge(parts, concatenated=REGROUPED),
        )


def _write_frame_rejects(
    source: object, dataset: Path | None, spec: LogSpec, target: str | os.PathLike[str]
) -> None:
    """`--rejects` for a dataset or a frame: its rows with a `reject_reason`."""
    import tempfile

    from pplog.reports import write_rejects
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
    frame = as_rows(frame)
    with tempfile.TemporaryDirectory(prefix="pplog-") as folder:
        part = Path(folder) / "0.jsonl"
        write_rejects(frame.lazy(), None, part).collect(engine="streaming")
        join_parts([str(part)], Path(target))
