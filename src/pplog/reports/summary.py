"""`Summary` and `summarize`: every table from one pass over the rows."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from pplog._paths import writes_through
from pplog._unescape import unescape
from pplog.clientip import FORWARDED_BY_UNTRUSTED, HEADERS, ProxyPolicy, attribute
from pplog.enrich.geo import (
    HOW_TO_GET,
    GeoDatabases,
    by_asn,
    by_country,
    default_database_paths,
    open_databases,
)
from pplog.errors import OptionError, ReportError
from pplog.parse import parse
from pplog.pipeline import LogScan, PathArg, open_log
from pplog.reports import clients as clients_report
from pplog.reports import errors as errors_report
from pplog.reports import paths as paths_report
from pplog.reports.clients import clients
from pplog.reports.enriched import (
    AGENT_CLASS,
    HEALTH_CHECK,
    agent_classes,
    agents,
    distinct_clients,
    with_geo,
    without_bots,
    without_health_checks,
)
from pplog.reports.errors import errors
from pplog.reports.overview import overview, rejects_by_reason
from pplog.reports.paths import paths
from pplog.schema import (
    BODY_BYTES_SENT,
    BYTES_SENT,
    CLIENT_IP,
    HTTP_USER_AGENT,
    HTTP_X_FORWARDED_FOR,
    LINE,
    OFFSET,
    PATH,
    PROXY_PROTOCOL_ADDR,
    RAW,
    REALIP_REMOTE_ADDR,
    REJECT_REASON,
    REMOTE_ADDR,
    REQUEST_TIME,
    SOURCE,
    STATUS,
    TIME,
)

if TYPE_CHECKING:
    from pplog.formats import LogFormat
    from pplog.sources import ProblemHandler, ProgressHandler

REJECT_SAMPLES = 5
TABLES = ("clients", "paths", "errors")


@dataclass
class Summary:
    """Every report table for one set of logs.

    Attributes
    ----------
    overview
        One row: ``lines``, ``requests``, ``rejected``, ``clients``, ``bytes``,
        ``first_time``, ``last_time`` and ``status_1xx`` ... ``status_other``.
    clients, paths, errors
        The tables, busiest first, cut to ``top`` rows (0 = all).
    rejects
        Rejected lines per ``reject_reason``.
    reject_samples
        The first few rejected lines (``source``, ``line``, ``reject_reason``, ``raw``).
    """

    overview: pl.DataFrame
    clients: pl.DataFrame
    paths: pl.DataFrame
    errors: pl.DataFrame
    rejects: pl.DataFrame
    reject_samples: pl.DataFrame
    format: str = "custom"
    detection: str | None = None
    sources: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    top: int = 10
    extra: dict[str, pl.DataFrame] = field(default_factory=dict)
    geoip: str | None = None

    def tables(self) -> dict[str, pl.DataFrame]:
        """The row tables by name, in report order (enrichment tables last)."""
        return {**{name: getattr(self, name) for name in TABLES}, **self.extra}

    def overview_dict(self) -> dict[str, Any]:
        """The overview as a plain dict, with rejects by reason and the format."""
        row = self.overview.row(0, named=True) if self.overview.height else {}
        row["rejected_by_reason"] = {
            r[REJECT_REASON]: r["lines"] for r in self.rejects.iter_rows(named=True)
        }
        row["format"] = self.format
        row["geoip"] = self.geoip
        row["sources"] = list(self.sources)
        row["unreadable"] = [{"source": s, "problem": p} for s, p in self.problems]
        return row

    def __repr__(self) -> str:
        ov = self.overview_dict()
        return (
            f"<pplog.Summary {ov.get('requests', 0):,} requests from "
            f"{ov.get('clients', 0):,} clients, {ov.get('rejected', 0):,} rejected; "
            f"tables: overview, {', '.join(TABLES)}, rejects>"
        )

    def _repr_html_(self) -> str:
        parts = [
            f"<p>{self!r}</p>".replace("<pplog", "&lt;pplog").replace(
                "rejects>", "rejects&gt;"
            )
        ]
        for name, table in {"overview": self.overview, **self.tables()}.items():
            parts.append(f"<h4>{name}</h4>{table._repr_html_()}")
        return "".join(parts)


def _write_rejects(
    lf: pl.LazyFrame, scan: LogScan | None, path: str | os.PathLike[str]
) -> tuple[pl.LazyFrame, Path]:
    """A lazy sink of every rejected line as JSON lines, and its temporary path.

    Byte offsets of lines read by polars itself are a running sum over every
    line, which the streaming engine cannot overlap with parsing; they are
    computed here, in a cheap second pass over the lines, for the rejects only.
    """
    target = Path(path)
    # a device or symlink is written through; a regular file replaced atomically
    tmp = (
        target
        if writes_through(target)
        else target.with_name(f".{target.name}.pplog-tmp")
    )
    rejected = lf.filter(pl.col(REJECT_REASON).is_not_null())
    keys = [SOURCE, LINE]
    if OFFSET not in lf.collect_schema().names() and scan is not None:
        offsets = scan.lines.select(SOURCE, LINE, OFFSET).join(
            rejected.select(keys), on=keys, how="semi"
        )
        rejected = rejected.join(offsets, on=keys, how="left", maintain_order="left")
    elif OFFSET not in lf.collect_schema().names():
        rejected = rejected.with_columns(pl.lit(None, pl.UInt64).alias(OFFSET))
    rows = rejected.select(SOURCE, LINE, OFFSET, REJECT_REASON, RAW)
    return rows.sink_ndjson(tmp, lazy=True), tmp


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
    """
    if top < 0:
        msg = f"`top` must be 0 (all rows) or more, not {top}"
        raise OptionError(msg)
    scan: LogScan | None = None
    if isinstance(source, pl.DataFrame | pl.LazyFrame):
        lf = source.lazy()
        if REJECT_REASON not in lf.collect_schema().names():
            lf = lf.with_columns(
                pl.lit(None, pl.String).alias(REJECT_REASON),
                pl.lit(None, pl.String).alias(RAW),
            )
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
        # free text stays escaped through the aggregations; tables decode it
        # and the client is attributed after the spool, from its raw inputs
        lf = parse(scan.lines, scan.format, decode=False)
    with tempfile.TemporaryDirectory(prefix="pplog-") as spool:
        if not isinstance(source, pl.DataFrame):
            # offsets of polars-read lines cost a running sum: see _write_rejects
            with_offset = scan is None or not scan.native
            lf = _spooled(lf, Path(spool), with_offset=with_offset)
        if scan is not None:
            lf = attribute(lf, scan.policy, eager_decisions=True)
        lf = _with_report_columns(lf)
        classes = agent_classes(lf)
        everything = lf  # the overview counts every line read
        if exclude_bots:
            lf = without_bots(lf, classes)
        dbs, geo_note = _geo_databases(geoip)
        if dbs is not None:
            with dbs:
                located = with_geo(lf, dbs, skip_special=geoip_skip_special)
                summary = _summarize(
                    lf, located, scan, classes, top=top, rejects=rejects
                )
        else:
            summary = _summarize(
                lf, None, scan, classes, top=top, rejects=rejects, everything=everything
            )
        summary.geoip = geo_note
        return summary


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


# What the tables read; everything else is never materialised.
REPORT_COLUMNS = (
    CLIENT_IP,
    HTTP_USER_AGENT,
    FORWARDED_BY_UNTRUSTED,
    PATH,
    STATUS,
    BODY_BYTES_SENT,
    BYTES_SENT,
    TIME,
    REQUEST_TIME,
    REJECT_REASON,
    SOURCE,
    LINE,
    OFFSET,
    RAW,
)


# What `clientip.attribute` reads, for logs attributed after spooling.
ATTRIBUTION_INPUTS = (
    REALIP_REMOTE_ADDR,
    REMOTE_ADDR,
    PROXY_PROTOCOL_ADDR,
    HTTP_X_FORWARDED_FOR,
    *(
        c
        for c in HEADERS.values()
        if c not in (PROXY_PROTOCOL_ADDR, HTTP_X_FORWARDED_FOR)
    ),
)


# Columns every table may read, for formats that do not log them.
_REPORT_DTYPES: dict[str, pl.DataType] = {
    CLIENT_IP: pl.String(),
    PATH: pl.String(),
    STATUS: pl.UInt16(),
    TIME: pl.Datetime("us", "UTC"),
    REJECT_REASON: pl.String(),
    SOURCE: pl.String(),
    LINE: pl.UInt64(),
    RAW: pl.String(),
}


def _with_report_columns(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add the report columns a format does not log, as nulls: tables degrade."""
    names = lf.collect_schema().names()
    missing = [
        pl.lit(None, dtype).alias(c)
        for c, dtype in _REPORT_DTYPES.items()
        if c not in names
    ]
    return lf.with_columns(missing) if missing else lf


def _spooled(lf: pl.LazyFrame, spool: Path, *, with_offset: bool) -> pl.LazyFrame:
    """Parse once into a temporary Parquet file holding only the report columns.

    polars would otherwise parse the log once per table (and run a Python
    reader, for compressed files and stdin, once per table; stdin can only be
    read once). The sink streams, so memory stays bounded; the tables then
    scan the small file, sharing one read.
    """
    names = lf.collect_schema().names()
    if not with_offset:
        names = [n for n in names if n != OFFSET]
    path = spool / "rows.parquet"
    try:
        rejected = pl.col(REJECT_REASON).is_not_null()
        keep = [
            # where a line came from and its text matter for rejects only
            pl.when(rejected).then(pl.col(c)).alias(c)
            if c in (RAW, SOURCE, LINE, OFFSET)
            else pl.col(c)
            for c in (*REPORT_COLUMNS, *ATTRIBUTION_INPUTS)
            if c in names
        ]
        lf.select(keep).sink_parquet(path, compression="lz4", statistics=False)
    except OSError as exc:
        msg = f"cannot write a temporary file for the summary: {exc.strerror or exc}"
        raise ReportError(msg) from exc
    return pl.scan_parquet(path)


def _summarize(
    lf: pl.LazyFrame,
    located: pl.LazyFrame | None,
    scan: LogScan | None,
    classes: pl.DataFrame | None,
    *,
    top: int,
    rejects: str | os.PathLike[str] | None,
    everything: pl.LazyFrame | None = None,
) -> Summary:
    ok = lf.filter(pl.col(REJECT_REASON).is_null())
    # health checkers are shown on their own, not counted as clients
    visitors = without_health_checks(ok, classes)
    frames = [
        overview(
            everything if everything is not None else lf, scan.policy if scan else None
        ),
        clients(visitors, top=top),
        paths(ok, top=top),
        errors(ok, top=top),
        rejects_by_reason(lf),
        lf.filter(pl.col(REJECT_REASON).is_not_null())
        .select(SOURCE, LINE, REJECT_REASON, RAW)
        .head(REJECT_SAMPLES),
    ]
    tmp: Path | None = None
    if rejects is not None:
        sink, tmp = _write_rejects(lf, scan, rejects)
        frames.append(sink)
    try:
        # The input was parsed once into the spool; reading it once per table
        # costs little and keeps peak memory at the largest table's, not the sum.
        results = [frame.collect(engine="streaming") for frame in frames]
    except OSError as exc:
        msg = f"cannot write rejects to `{rejects}`: {exc.strerror or exc}"
        raise ReportError(msg) from exc
    if tmp is not None and rejects is not None and tmp != Path(rejects):
        tmp.replace(rejects)
    ov, cl, pa, er, rj, samples = results[:6]
    if everything is not None and everything is not lf:  # bots were left out
        kept = ok.select(pl.len()).collect(engine="streaming").item()
        ov = ov.with_columns(
            (pl.col("requests") - kept).cast(pl.UInt64).alias("excluded_bots")
        )
    extra_tables: dict[str, pl.DataFrame] = {}
    if classes is not None:
        extra_tables["agents"] = agents(ok, classes)
        health = extra_tables["agents"].filter(pl.col(AGENT_CLASS) == HEALTH_CHECK)
        health_count = int(health.get_column("requests").sum()) if health.height else 0
        ov = ov.with_columns(
            distinct_clients(visitors).collect().get_column("clients").alias("clients"),
            pl.lit(health_count, pl.UInt64).alias("health_checks"),
        )
    if located is not None:
        located_visitors = without_health_checks(
            located.filter(pl.col(REJECT_REASON).is_null()), classes
        )
        extra_tables["countries"] = by_country(located_visitors, top=top).collect(
            engine="streaming"
        )
        extra_tables["networks"] = by_asn(located_visitors, top=top).collect(
            engine="streaming"
        )
    # second round: distinct counts and latency for the rows shown only
    modules = (clients_report, paths_report, errors_report)
    queries = [m.details(ok, t) for m, t in zip(modules, (cl, pa, er), strict=True)]
    flat = [q.collect(engine="streaming") for qs in queries for q in qs]
    finished = []
    for module, table, qs in zip(modules, (cl, pa, er), queries, strict=True):
        extra, flat = flat[: len(qs)], flat[len(qs) :]
        finished.append(module.finish(table, extra))
    cl, pa, er = finished
    if located is not None and cl.height:
        geo_cols = (
            located.select(CLIENT_IP, "country", "asn")
            .filter(
                pl.col(CLIENT_IP).is_in(cl.get_column(CLIENT_IP).drop_nulls().implode())
            )
            .unique(subset=CLIENT_IP)
            .collect(engine="streaming")
        )
        cl = cl.join(
            geo_cols, on=CLIENT_IP, how="left", nulls_equal=True, maintain_order="left"
        )
    if scan is not None:
        pa, er = (_decoded(t, scan.format.escape) for t in (pa, er))
    return Summary(
        overview=ov,
        clients=cl,
        paths=pa,
        errors=er,
        rejects=rj,
        reject_samples=samples,
        format=scan.format.name if scan else "frame",
        detection=scan.detection if scan else None,
        sources=[s.name for s in scan.sources] if scan else [],
        problems=list(scan.problems) if scan else [],
        top=top,
        extra=extra_tables,
    )


def _decoded(table: pl.DataFrame, escape: str) -> pl.DataFrame:
    """Decode the escaped free-text columns of a finished (small) table."""
    text = [c for c in (PATH,) if c in table.columns]
    return table.with_columns(unescape(pl.col(c), escape) for c in text)
