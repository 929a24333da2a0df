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
    formats_by_log_path,
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
from pplog.sources import rotation_key

if TYPE_CHECKING:
    from pplog.enrich.geo import GeoDatabases
    from pplog.sources import ProblemHandler, ProgressHandler, Source

PathArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

DETECT_LINES = 200


class PplogWarning(UserWarning):
    """A problem with one input that did not stop the run (unreadable file, ...)."""


@dataclass
class FileGroup:
    """Inputs read with one format: a rotation set, or every input when forced.

    `format` is None when no preset fits (the lines are then rejects).
    """

    sources: list[Source]
    format: LogFormat | None
    note: str | None
    policy: ProxyPolicy = field(default_factory=lambda: ProxyPolicy())


@dataclass
class LogScan:
    """A log opened for reading: the lazy rows plus what is known about them.

    With one format for every input (`mixed` False), `frame` is parsed from
    `lines` with `format` and `policy`. With several (`mixed`), each group
    of `groups` was parsed and attributed with its own format and policy,
    and `frame` is their rows one after the other, decoded; `format` and
    `policy` are then the first group's.
    """

    frame: pl.LazyFrame  # every line, with `reject_reason` and `raw`
    lines: pl.LazyFrame  # what `frame` is parsed from
    native: bool  # True when polars reads every source itself (one shared scan)
    format: LogFormat
    detection: str | None
    sources: list[Source]
    problems: list[tuple[str, str]] = field(default_factory=list)
    policy: ProxyPolicy = field(default_factory=lambda: ProxyPolicy())
    groups: list[FileGroup] = field(default_factory=list)

    @property
    def mixed(self) -> bool:
        """True when the inputs were read with more than one format."""
        return len(self.groups) > 1

    def formats(self) -> list[dict[str, str | None]]:
        """Which input was read with which format, and how it was chosen."""
        return [
            {
                "source": src.name,
                "format": g.format.name if g.format is not None else None,
                "detection": g.note,
            }
            for g in self.groups
            for src in g.sources
        ]


UNKNOWN_FORMAT = "unknown_format"  # reject reason: no preset fits the file

_ERROR_LOG_LINE = (
    r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} "
    r"\[(?:debug|info|notice|warn|error|crit|alert|emerg)\] \d+#\d+: "
)


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


def _error_log_lines(sample: Sequence[str]) -> int:
    """How many of `sample` are nginx error-log entries."""
    return int(
        pl.Series(sample, dtype=pl.String).str.contains(_ERROR_LOG_LINE).sum() or 0
    )


def _detect_one(src: Source, sample: list[str]) -> tuple[LogFormat | None, str]:
    """The preset for one input's sample, or None with a one-line reason."""
    fmt, ok = detect_format(sample)
    if ok * 2 >= len(sample):
        return fmt, f"auto-detected: {ok} of {len(sample)} sample lines fit"
    errors = _error_log_lines(sample)
    if errors * 2 >= len(sample):
        return None, (
            f"an nginx error log, not an access log ({errors} of {len(sample)} "
            f"sample lines are error-log entries); read it with "
            f"`pplog doctor --error-log {src.name}`"
        )
    return None, (
        f"no preset fits (the closest, `{fmt.name}`, fits {max(ok, 0)} of "
        f"{len(sample)} sample lines)"
    )


def _no_format_error(src: Source, note: str, sample_line: str) -> LogFormatError:
    """The error when auto-detection fits no input: what was found, what to do."""
    if not note.startswith("no preset fits"):
        return LogFormatError(f"`{src.name}` is {note}")
    closest = note.split("`")[1]
    msg = (
        f"no preset fits `{src.name}` {note[len('no preset fits ') :]}; first "
        f"line: {sample_line[:120]!r}; pass --format {closest} to read it with that "
        "preset anyway (lines that do not fit are counted as rejects), "
        "--log-format 'YOUR nginx log_format' or --nginx-conf /etc/nginx/nginx.conf"
    )
    return LogFormatError(msg)


def _rotation_sets(srcs: Sequence[Source]) -> list[list[Source]]:
    """Inputs grouped by rotation set (`access.log`, `.1`, `.2.gz`), in order.

    A set is placed where its first member is; stdin is a set of its own.
    """
    sets: dict[str, list[Source]] = {}
    for i, src in enumerate(srcs):
        key = f"<stdin:{i}>" if src.path is None else rotation_key(src.path)[0]
        sets.setdefault(key, []).append(src)
    return list(sets.values())


def _detect_set(
    members: list[Source],
) -> tuple[LogFormat | None, str | None, LogFormatError | None]:
    """One detection for a rotation set: the first member with lines decides.

    The third value is the error to raise if no input at all can be read.
    """
    failed: tuple[str, LogFormatError] | None = None
    for src in members:
        sample = [x for x in sources.read_head(src, DETECT_LINES) if x.strip()]
        if not sample:
            continue
        fmt, note = _detect_one(src, sample)
        if fmt is not None:
            return fmt, note, None
        failed = failed or (note, _no_format_error(src, note, sample[0]))
    if failed is not None:
        return None, *failed
    return PRESETS["combined"], "no lines to detect from; assumed combined", None


def resolve_groups(
    srcs: Sequence[Source],
    format: str | LogFormat | None = "auto",  # noqa: A002 - mirrors --format
    *,
    log_format: str | None = None,
    nginx_conf: str | os.PathLike[str] | None = None,
    log_format_name: str | None = None,
) -> list[FileGroup]:
    """The format of each input, grouped: one group when a format is forced.

    `--format`, `--log-format` and `--nginx-conf --log-format-name` force one
    format for every input. `--nginx-conf` alone gives each input the format
    of the `access_log` directive that writes it (or its rotations), and the
    configuration's format to the others. Otherwise each rotation set is
    detected on its own, as lnav does per file; a set that no preset fits
    gets a group with no format (its lines become rejects), unless no input
    fits at all, which is an error.

    Raises
    ------
    LogFormatError
        When auto-detection finds no preset for any input: the message names
        the closest preset, how many sample lines it fits, and says so when
        the input is an nginx error log.
    """
    if nginx_conf is not None and log_format is None and log_format_name is None:
        return _groups_from_config(srcs, nginx_conf)
    forced = format not in (None, "auto") or log_format or nginx_conf
    if forced or log_format_name is not None:
        fmt, note = resolve_format(
            srcs,
            format,
            log_format=log_format,
            nginx_conf=nginx_conf,
            log_format_name=log_format_name,
        )
        return [FileGroup(list(srcs), fmt, note)]
    groups, failures = [], []
    for members in _rotation_sets(srcs):
        found, note, failure = _detect_set(members)
        groups.append(FileGroup(members, found, note))
        if failure is not None:
            failures.append(failure)
    if len(failures) == len(groups):
        raise failures[0]
    return groups


def _groups_from_config(
    srcs: Sequence[Source], nginx_conf: str | os.PathLike[str]
) -> list[FileGroup]:
    """Each input with the format of the `access_log` that writes it."""
    by_path = {
        rotation_key(p)[0]: fmt for p, fmt in formats_by_log_path(nginx_conf).items()
    }
    conf = os.fspath(nginx_conf)
    default: tuple[LogFormat, str] | None = None
    groups: list[FileGroup] = []
    for members in _rotation_sets(srcs):
        path = members[0].path
        key = rotation_key(path.absolute())[0] if path is not None else None
        if key is not None and key in by_path:
            fmt = by_path[key]
            groups.append(
                FileGroup(
                    members,
                    fmt,
                    f"log_format `{fmt.name}` of its access_log in {conf}",
                )
            )
            continue
        if default is None:
            found = format_from_config(nginx_conf, None)
            default = (found, f"log_format `{found.name}` from {conf}")
        groups.append(FileGroup(members, *default))
    return groups


def resolve_format(
    srcs: Sequence[Source],
    format: str | LogFormat | None = "auto",  # noqa: A002 - mirrors --format
    *,
    log_format: str | None = None,
    nginx_conf: str | os.PathLike[str] | None = None,
    log_format_name: str | None = None,
) -> tuple[LogFormat, str | None]:
    """One format for every input, and a note saying how it was chosen.

    Auto-detection takes the first input that a preset fits (`pplog ingest`
    keeps one format per dataset); `resolve_groups` detects per input.
    """
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
        sample = [x for x in sources.read_head(src, DETECT_LINES) if x.strip()]
        if not sample:
            continue
        found, note = _detect_one(src, sample)
        if found is not None:
            return found, note
        failure = failure or _no_format_error(src, note, sample[0])
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
    """Resolve inputs, formats and proxy policies; the `LogScan` frame keeps rejects.

    Each input is read with its own format (see `resolve_groups`); an input
    that no preset fits is reported once through `on_problem` and its lines
    are kept as rejects (`unknown_format`).
    """
    if log_format is not None and nginx_conf is not None:
        msg = "give either a log format string or an nginx configuration, not both"
        raise OptionError(msg)
    srcs = sources.expand(source)  # type: ignore[arg-type]
    groups = resolve_groups(
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

    for g in groups:
        g.policy = resolve_policy(
            policy,
            trusted=trusted,
            real_ip_header=real_ip_header,
            recursive=recursive,
            nginx_conf=nginx_conf,
            fmt=g.format,
        )
    groups = _merge_neighbours(groups)
    first = next((g for g in groups if g.format is not None), groups[0])
    fmt = first.format or PRESETS["combined"]
    if len(groups) == 1:
        lines, native = sources.scan_lines(
            srcs, on_problem=problem, on_progress=on_progress
        )
        frame = rows(lines, fmt, policy=first.policy)
        return LogScan(
            frame, lines, native, fmt, first.note, srcs, problems, first.policy, groups
        )
    frames, all_lines = [], []
    for g in groups:
        lines, _ = sources.scan_lines(
            g.sources, on_problem=problem, on_progress=on_progress
        )
        all_lines.append(lines)
        if g.format is None:
            for src in g.sources:
                (on_problem or _warn)(
                    src.name,
                    f"{g.note}; its lines are counted as rejects "
                    f"(`{UNKNOWN_FORMAT}`); pass --format NAME to choose one",
                )
            frames.append(_unknown_format_rows(lines))
        else:
            frames.append(rows(lines, g.format, policy=g.policy))
    frame = pl.concat(frames, how="diagonal_relaxed")
    names = sorted({g.format.name for g in groups if g.format is not None})
    note = f"{len(names)} formats, one per input: " + ", ".join(names)
    if len(names) == 1:
        note = f"{names[0]}, some inputs fit no preset"
    return LogScan(
        frame,
        pl.concat(all_lines, how="vertical"),
        False,
        fmt,
        note,
        srcs,
        problems,
        first.policy,
        groups,
    )


def _merge_neighbours(groups: list[FileGroup]) -> list[FileGroup]:
    """Neighbouring groups with the same format and policy read as one."""
    out: list[FileGroup] = []
    for g in groups:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.format is not None
            and prev.format == g.format
            and prev.policy == g.policy
        ):
            merged = [*prev.sources, *g.sources]
            out[-1] = FileGroup(merged, g.format, prev.note or g.note, g.policy)
        else:
            out.append(g)
    return out


def _unknown_format_rows(lines: pl.LazyFrame) -> pl.LazyFrame:
    """The lines of an input no preset fits, as rejects (`unknown_format`)."""
    return lines.select(
        SOURCE,
        LINE,
        OFFSET,
        pl.lit(UNKNOWN_FORMAT, pl.String).alias(REJECT_REASON),
        pl.col(TEXT).alias(RAW),
    )


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
        ``clb``), a `LogFormat`, or ``"auto"`` to pick, for each input (each
        rotation set), the preset that parses its first lines. Inputs of
        different formats give one frame with the columns of all of them
        (null where a format does not log one); an input no preset fits
        gives `unknown_format` rejects.
    log_format
        An nginx ``log_format`` string, used instead of `format`.
    nginx_conf
        An nginx configuration to take the ``log_format`` from: each input
        gets the format of the ``access_log`` that names its path, others
        the configuration's one format (or `log_format_name`).
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
