"""`scan_log` / `read_log`: sources -> parse -> attribute, as one LazyFrame."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from pplog import clientip, sources
from pplog.clientip import ProxyPolicy
from pplog.enrich.agents import agent_class
from pplog.errors import LogFormatError, OptionError
from pplog.formats import (
    DETECTION_ORDER,
    PRESETS,
    LogFormat,
    format_from_config,
    get_format,
    realip_from_config,
)
from pplog.parse import parse
from pplog.schema import (
    HTTP_USER_AGENT,
    LINE,
    OFFSET,
    RAW,
    REJECT_REASON,
    SOURCE,
    TEXT,
)

if TYPE_CHECKING:
    from pplog.enrich.geo import GeoDatabases
    from pplog.sources import ProblemHandler, ProgressHandler, Source

PathArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

DETECT_LINES = 200


class PplogWarning(UserWarning):
    """A problem with one input that did not stop the run (unreadable file, ...)."""


@dataclass
class LogScan:
    """A log opened for reading: the lazy rows plus what is known about them."""

    frame: pl.LazyFrame  # every line, with `reject_reason` and `raw`
    lines: pl.LazyFrame  # what `frame` is parsed from
    native: bool  # True when polars reads every source itself (one shared scan)
    format: LogFormat
    detection: str | None
    sources: list[Source]
    problems: list[tuple[str, str]] = field(default_factory=list)
    policy: ProxyPolicy = field(default_factory=lambda: ProxyPolicy())


def detect_format(lines: Sequence[str]) -> tuple[LogFormat, int]:
    """The preset that parses the most of `lines` (ties go to DETECTION_ORDER)."""
    sample = [x for x in lines if x.strip()]
    frame = pl.LazyFrame(
        {
            SOURCE: ["<sample>"] * len(sample),
            LINE: pl.Series(range(1, len(sample) + 1), dtype=pl.UInt64),
            OFFSET: pl.Series([0] * len(sample), dtype=pl.UInt64),
            TEXT: pl.Series(sample, dtype=pl.String),
        }
    )
    best, best_ok = PRESETS[DETECTION_ORDER[0]], -1
    for name in DETECTION_ORDER:
        fmt = PRESETS[name]
        ok = (
            parse(frame, fmt)
            .select(pl.col(REJECT_REASON).is_null().sum())
            .collect()
            .item()
        )
        if ok > best_ok:
            best, best_ok = fmt, ok
    return best, best_ok


def resolve_format(
    srcs: Sequence[Source],
    format: str | LogFormat | None = "auto",  # noqa: A002 - mirrors --format
    *,
    log_format: str | None = None,
    nginx_conf: str | os.PathLike[str] | None = None,
    log_format_name: str | None = None,
) -> tuple[LogFormat, str | None]:
    """The format to parse with, and a note saying how it was chosen."""
    if log_format is not None and nginx_conf is not None:
        msg = "give either a log format string or an nginx configuration, not both"
        raise OptionError(msg)
    if log_format is not None:
        return LogFormat.from_string(log_format), None
    if nginx_conf is not None:
        fmt = format_from_config(nginx_conf, log_format_name)
        return fmt, f"log_format `{fmt.name}` from {os.fspath(nginx_conf)}"
    if log_format_name is not None:
        msg = "`log_format_name` needs an nginx configuration (--nginx-conf FILE)"
        raise OptionError(msg)
    if isinstance(format, LogFormat):
        return format, None
    if format not in (None, "auto"):
        return get_format(format), None
    failure: LogFormatError | None = None
    for src in srcs:  # the first source that a preset fits decides
        head = sources.read_head(src, DETECT_LINES)
        sample = [x for x in head if x.strip()]
        if not sample:
            continue
        fmt, ok = detect_format(sample)
        if ok * 2 < len(sample):
            first = sample[0][:120]
            msg = (
                f"no preset fits `{src.name}` (best: {fmt.name}, {max(ok, 0)} of "
                f"{len(sample)} lines; first line: {first!r}); pass "
                "--log-format 'YOUR nginx log_format' or "
                "--nginx-conf /etc/nginx/nginx.conf"
            )
            failure = failure or LogFormatError(msg)
            continue
        return fmt, f"auto-detected: {ok} of {len(sample)} sample lines fit"
    if failure is not None:
        raise failure
    return PRESETS["combined"], "no lines to detect from; assumed combined"


def _warn(name: str, message: str) -> None:
    warnings.warn(f"{name}: {message}", PplogWarning, stacklevel=3)


def open_log(
    source: PathArg,
    format: str | LogFormat | None = "auto",  # noqa: A002
    *,
    log_format: str | None = None,
    nginx_conf: str | os.PathLike[str] | None = None,
    log_format_name: str | None = None,
    trusted: Sequence[str] | None = None,
    real_ip_header: str | None = None,
    recursive: bool | None = None,
    policy: ProxyPolicy | None = None,
    on_problem: ProblemHandler | None = None,
    on_progress: ProgressHandler | None = None,
) -> LogScan:
    """Resolve inputs, format and proxy policy; the `LogScan` frame keeps rejects."""
    srcs = sources.expand(source)  # type: ignore[arg-type]
    fmt, note = resolve_format(
        srcs,
        format,
        log_format=log_format,
        nginx_conf=nginx_conf,
        log_format_name=log_format_name,
    )
    problems: list[tuple[str, str]] = []

    def problem(name: str, message: str) -> None:
        problems.append((name, message))
        (on_problem or _warn)(name, message)

    policy = resolve_policy(
        policy,
        trusted=trusted,
        real_ip_header=real_ip_header,
        recursive=recursive,
        nginx_conf=nginx_conf,
        fmt=fmt,
    )
    lines, native = sources.scan_lines(
        srcs, on_problem=problem, on_progress=on_progress
    )
    frame = rows(lines, fmt, policy=policy)
    return LogScan(frame, lines, native, fmt, note, srcs, problems, policy)


def resolve_policy(
    policy: ProxyPolicy | None,
    *,
    trusted: Sequence[str] | None = None,
    real_ip_header: str | None = None,
    recursive: bool | None = None,
    nginx_conf: str | os.PathLike[str] | None = None,
    fmt: LogFormat | None = None,
) -> ProxyPolicy:
    """The proxy policy: explicit settings, else nginx.conf's realip, else defaults."""
    if policy is not None:
        return policy
    settings = None
    if nginx_conf is not None and fmt is not None:
        settings = realip_from_config(nginx_conf, fmt.name)
    base = ProxyPolicy(
        trusted=settings.trusted if settings else None,
        header=settings.header if settings else "auto",
        recursive=settings.recursive if settings else True,
    )
    return ProxyPolicy(
        trusted=trusted if trusted is not None else base.trusted,
        header=real_ip_header if real_ip_header is not None else base.header,
        recursive=recursive if recursive is not None else base.recursive,
    )


def _geo(frame: pl.LazyFrame, dbs: GeoDatabases) -> pl.LazyFrame:
    """Join geo columns, looked up now for each distinct client address."""
    from pplog.enrich.geo import geo_table

    with dbs:
        ips = (
            frame.filter(pl.col("client_ip").is_not_null())
            .select("client_ip")
            .unique()
            .collect(engine="streaming")
            .get_column("client_ip")
        )
        table = geo_table(ips, dbs)
    return frame.join(table.lazy(), on="client_ip", how="left", maintain_order="left")


def parse_lines(
    lines: pl.LazyFrame, fmt: LogFormat, *, decode: bool = True
) -> pl.LazyFrame:
    """`parse`, with the lines the reader cut for length as `too_long` rejects.

    A line past `sources.LINE_LIMIT` reaches the parser as its first bytes,
    marked in the `sources.TOO_LONG` column; it is a reject whatever those
    bytes parse to.
    """
    frame = parse(lines, fmt, decode=decode)
    if sources.TOO_LONG not in frame.collect_schema().names():
        return frame
    cut = pl.col(sources.TOO_LONG).fill_null(False)  # noqa: FBT003
    reason = pl.when(cut).then(pl.lit("too_long")).otherwise(pl.col(REJECT_REASON))
    return frame.with_columns(reason.alias(REJECT_REASON)).drop(sources.TOO_LONG)


def rows(
    lines: pl.LazyFrame,
    fmt: LogFormat,
    *,
    decode: bool = True,
    policy: ProxyPolicy | None = None,
    classify: bool = True,
) -> pl.LazyFrame:
    """Parse, attribute and classify a frame of lines: the row columns of the design.

    `agent_class` is an expression like any column: a query that does not
    select it does not compute it. `classify=False` leaves it out (callers
    that hold the rows classify each distinct user agent once instead).
    Columns of `lines` other than the line's own pass through.
    """
    frame = clientip.attribute(parse_lines(lines, fmt, decode=decode), policy)
    if classify and HTTP_USER_AGENT in frame.collect_schema().names():
        frame = frame.with_columns(agent_class(HTTP_USER_AGENT))
    return frame


def scan_log(
    source: PathArg,
    format: str | LogFormat | None = "auto",  # noqa: A002
    *,
    log_format: str | None = None,
    nginx_conf: str | os.PathLike[str] | None = None,
    log_format_name: str | None = None,
    trusted: Sequence[str] | None = None,
    real_ip_header: str | None = None,
    recursive: bool | None = None,
    policy: ProxyPolicy | None = None,
    geoip: Sequence[str | os.PathLike[str]] | None = None,
    include_rejects: bool = False,
) -> pl.LazyFrame:
    """Lazily read nginx (or AWS load-balancer) access logs into typed rows.

    Parameters
    ----------
    source
        A path, glob, directory or ``"-"`` (stdin), or a list of them.
        ``.gz``, ``.bz2``, ``.xz`` and ``.zst`` files are read transparently.
    format
        A preset name (``combined``, ``common``, ``main``, ``elb_log``, ``alb``,
        ``clb``), a `LogFormat`, or ``"auto"`` to pick the preset that parses
        the first lines.
    log_format
        An nginx ``log_format`` string, used instead of `format`.
    nginx_conf
        An nginx configuration to take the ``log_format`` from.
    log_format_name
        Which ``log_format`` of `nginx_conf`; may be left out when there is one.
    trusted, real_ip_header, recursive
        nginx's ``set_real_ip_from`` ranges, ``real_ip_header`` (or ``auto``)
        and ``real_ip_recursive``; see `ProxyPolicy`. Unset values come from
        `nginx_conf`'s realip directives when given, else the defaults.
    policy
        A `ProxyPolicy`, instead of the three settings above.
    geoip
        MaxMind DB files: adds `country`, `city`, `asn` and `as_org`, looking
        each distinct client up once (this reads the input once more, to
        collect the distinct addresses).
    include_rejects
        Keep lines that did not parse, with `reject_reason` and `raw` set.

    Returns
    -------
    polars.LazyFrame
        One row per request: raw fields named after their nginx variables,
        `time` (UTC), `method`, `path`, `query`, `protocol`, `client_ip`,
        `client_ip_source`, and `source`, `line`, `offset`.

    Raises
    ------
    PplogError
        When no input exists or the format cannot be used.

    Examples
    --------
    >>> import pplog
    >>> lf = pplog.scan_log("sample_logs/elb-access.log", format="elb_log")
    >>> lf.select("client_ip", "status").head(2).collect().columns
    ['client_ip', 'status']
    """
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
    )
    frame = scan.frame
    if geoip:
        from pplog.enrich.geo import open_databases

        dbs = open_databases(list(geoip))
        # the lookup table is built now, so the databases can be closed
        frame = _geo(frame, dbs)
    if include_rejects:
        return frame
    return frame.filter(pl.col(REJECT_REASON).is_null()).drop(REJECT_REASON, RAW)


def read_log(
    source: PathArg,
    format: str | LogFormat | None = "auto",  # noqa: A002
    *,
    log_format: str | None = None,
    nginx_conf: str | os.PathLike[str] | None = None,
    log_format_name: str | None = None,
    trusted: Sequence[str] | None = None,
    real_ip_header: str | None = None,
    recursive: bool | None = None,
    policy: ProxyPolicy | None = None,
    geoip: Sequence[str | os.PathLike[str]] | None = None,
    include_rejects: bool = False,
) -> pl.DataFrame:
    """Read access logs into a DataFrame; the eager form of `scan_log`.

    Parameters
    ----------
    source, format, log_format, nginx_conf, log_format_name
        What to read and how it is laid out, as for `scan_log`.
    trusted, real_ip_header, recursive, policy
        Who to believe about client addresses, as for `scan_log`.
    geoip
        MaxMind DB files: adds `country`, `city`, `asn` and `as_org`.
    include_rejects
        Keep lines that did not parse, with `reject_reason` and `raw` set.

    Returns
    -------
    polars.DataFrame
        The rows, read with the streaming engine (memory follows the result).

    Examples
    --------
    >>> import pplog
    >>> df = pplog.read_log("sample_logs/combined-access.log", format="combined")
    >>> df.schema["status"]
    UInt16
    """
    return scan_log(
        source,
        format,
        log_format=log_format,
        nginx_conf=nginx_conf,
        log_format_name=log_format_name,
        trusted=trusted,
        real_ip_header=real_ip_header,
        recursive=recursive,
        policy=policy,
        geoip=geoip,
        include_rejects=include_rejects,
    ).collect(engine="streaming")
