"""Open inputs into rows: read in batches, parse, attribute, classify."""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from pplog import clientip, sources
from pplog.clientip import ProxyPolicy
from pplog.enrich.agents import AGENT_CLASS, agent_class_per_value
from pplog.errors import LogFormatError, PplogError, PplogWarning
from pplog.formats import PRESETS, LogFormat, RealIPSettings, realip_from_config
from pplog.parse import late_decoding, late_split_rows, parse
from pplog.pipeline._cuts import zone_lines
from pplog.pipeline.detect import UNKNOWN_FORMAT, detection_of, is_error_log
from pplog.pipeline.spec import FileGroup, LogSpec
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
    from pplog.sources import ProblemHandler, ProgressHandler, Source

PathArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


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
        """Which input was read with which format, and how it was chosen, in
        the order of the inputs."""
        return formats_of(self.sources, self.groups)


def formats_of(
    srcs: Sequence[Source], groups: Sequence[FileGroup]
) -> list[dict[str, str | None]]:
    """Which input is read with which format, and how it was chosen, in the
    order of the inputs."""
    of: dict[str, list[tuple[int, FileGroup]]] = {}
    for g in groups:
        for member in g.sources:  # a file cut where its log_format changed: twice
            start = member.span[0] if member.span is not None else 0
            of.setdefault(member.name, []).append((start, g))
    return [
        {
            "source": src.name,
            "format": g.format.name if g.format else None,
            "detection": detection_of(g.notes.get(src.name, g.note), src.name),
        }
        for src in srcs
        for _, g in sorted(of.get(src.name, []), key=lambda x: x[0])
    ]


def groups_note(groups: Sequence[FileGroup]) -> str | None:
    """How the format was chosen: the one group's note, or the formats used."""
    if len(groups) == 1:
        return groups[0].note
    names = sorted({g.format.name for g in groups if g.format is not None})
    inputs = [src.name for g in groups for src in g.sources]
    if len(names) == 1:
        note = f"1 format: {names[0]}"
    elif len(set(inputs)) < len(inputs):  # a file whose log_format changed
        note = f"{len(names)} formats, by input and part: " + ", ".join(names)
    else:
        note = f"{len(names)} formats, one per input: " + ", ".join(names)
    if any(g.format is None for g in groups):
        note += "; some inputs fit no preset"
    return note


def unknown_format_warning(note: str | None, name: str) -> str:
    """The warning for the input `name`, which no preset fits (`note`: why).

    An nginx error log's warning says how to read it, not how to force a
    preset on it; an access log's, how to give nginx's own format (a preset
    forced reads no more of it than detection found)."""
    counted = f"{detection_of(note, name)}; its lines are counted as rejects "
    if is_error_log(note):
        return f"{counted}(`{UNKNOWN_FORMAT}`)"
    return (
        f"{counted}(`{UNKNOWN_FORMAT}`); pass --nginx-conf /etc/nginx/nginx.conf "
        "or --log-format 'ITS log_format' to read them"
    )


def unknown_format_warnings(
    note: str | None, srcs: Sequence[Source]
) -> list[tuple[str, str]]:
    """`unknown_format_warning` of each input of a group no preset fits,
    but those with no line (a quiet vhost's empty rotations: nothing of
    theirs is counted as a reject)."""
    return [
        (src.name, unknown_format_warning(note, src.name))
        for src in srcs
        if src.path is None or src.pipe or src.span is not None or _has_lines(src)
    ]


def _has_lines(src: Source) -> bool:
    """Whether a file holds a line (decompressed: an empty `.gz` none)."""
    try:
        if src.path is not None and src.path.stat().st_size == 0:
            return False
    except OSError:
        return True  # the read reports it
    return bool(sources.read_head(src, 1))


def _warn(name: str, message: str) -> None:
    warnings.warn(f"{name}: {message}", PplogWarning, stacklevel=3)


def open_log(
    source: PathArg,
    format: str | LogFormat | None = "auto",  # noqa: A002
    *,
    spec: LogSpec | None = None,
    on_problem: ProblemHandler | None = None,
    on_progress: ProgressHandler | None = None,
    collect: bool = False,
    rejects: bool = True,
    groups: list[FileGroup] | None = None,
    split: bool = False,
    blocks: bool = False,
    **keywords: Any,  # noqa: ANN401 - the keywords of `LogSpec.build`
) -> LogScan:
    """Resolve inputs, formats and proxy policies; the `LogScan` frame keeps rejects.

    Each input is read with its own format (see `resolve_groups`); an input
    that no preset fits is reported once through `on_problem` and its lines
    are kept as rejects (`unknown_format`). Settings come from `spec`, or
    from keywords that build one (`LogSpec.build`). With `collect`, the
    rows are read now (`collected_rows`) and `frame` is lazy over them;
    `rejects=False` then leaves the parsed rejects out as they are read.
    `groups`: some of `spec.groups` of the inputs, already resolved: only
    their inputs are read (`diagnose` sets nginx error logs apart).
    `split`: plain files are cut and split in C where the format allows,
    `blocks`: the blocks the Python reader reads (`sources.scan_lines`'
    `split` and `blocks`), for a caller that streams the rows rather than
    holding them (`pplog doctor`: the 2M elb_log 4.1 s -> 1.9 s, the same
    findings); their trust decisions are then made as the rows are built
    (`rows`' `decisions_now`), reading the lines they need once.
    """

    def rows_of(
        lines: pl.LazyFrame, fmt: LogFormat, policy: ProxyPolicy
    ) -> pl.LazyFrame:
        if collect:
            return collected_rows(lines, fmt, policy=policy, rejects=rejects).lazy()
        # streamed once by the caller: the C split's decisions taken as they are
        return rows(lines, fmt, policy=policy, decisions_now=split or blocks)

    spec = LogSpec.of(spec, format=format, **keywords)
    srcs = sources.expand(source)  # type: ignore[arg-type]
    if groups is None:
        groups = spec.groups(srcs)
    else:
        kept = {s.name for g in groups for s in g.sources}
        srcs = [s for s in srcs if s.name in kept]
    if not collect:
        groups = [_stdin_on_disk(g) for g in groups]
    problems: list[tuple[str, str]] = []

    def problem(name: str, message: str) -> None:
        problems.append((name, message))
        (on_problem or _warn)(name, message)

    def tell(g: FileGroup) -> None:  # its members no preset reads
        for src in g.sources:
            if src.name in g.warnings:
                (on_problem or _warn)(src.name, g.warnings[src.name])

    first = next((g for g in groups if g.format is not None), groups[0])
    fmt = first.format or PRESETS["combined"]
    if len(groups) == 1 and first.format is not None:
        tell(first)
        # the inputs in their order, stdin as its copy (`_stdin_on_disk`)
        copies = {s.name: s for s in first.sources}
        lines, native = sources.scan_lines(
            [copies.get(s.name, s) for s in srcs],
            on_problem=problem,
            on_progress=on_progress,
            split=first.format if split else None,
            policy=first.policy if split or blocks else None,
            blocks=first.format if blocks else None,
        )
        frame = rows_of(lines, fmt, first.policy)
        return LogScan(
            frame, lines, native, fmt, first.note, srcs, problems, first.policy, groups
        )
    frames, all_lines = [], []
    for g in groups:
        # the rest of a zone reads the bytes its other group reads: told once
        echo = g.zone is not None and not g.zone[1]
        lines, _ = sources.scan_lines(
            g.sources,
            on_problem=None if echo else problem,
            on_progress=None if echo else on_progress,
            split=g.format if split else None,
            policy=g.policy if split or blocks else None,
            blocks=g.format if blocks else None,
        )
        lines = zone_lines(lines, g.zone)
        all_lines.append(lines)
        tell(g)
        if g.format is None:
            for name, warning in unknown_format_warnings(g.note, g.sources):
                (on_problem or _warn)(name, warning)
            frames.append(unknown_format_rows(lines))
        else:
            frames.append(rows_of(lines, g.format, g.policy))
    frame = pl.concat(frames, how="diagonal_relaxed")
    note = groups_note(groups)
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


def _stdin_on_disk(group: FileGroup) -> FileGroup:
    """`group`, with stdin and each pipe named by path (`<(...)`, a FIFO)
    copied to a temporary file: a lazy frame may be read more than once,
    and a pipe gives nothing the second time (or waits forever for a writer).

    The trust decisions of an X-Forwarded-For log read the rows twice (the
    distinct peer and header pairs, then the rows they are joined to), and
    so does `scan_log`'s GeoIP lookup (the distinct clients first):
    `cat access.log | pplog doctor -` found no problem and `scan_log("-")`
    no row; a second `collect` of any such frame found nothing either. The
    copy keeps the name ``<stdin>`` (a pipe's, its path) and is deleted when
    the process exits. A pipe's copy starts with the lines detection read
    from it (`sources.open_stream` hands them out first), and a compressed
    pipe is copied as it came (read as the file it now is).
    """
    if not any(s.is_stream for s in group.sources):
        return group
    folder = Path(tempfile.mkdtemp(prefix="pplog-stdin-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    on_disk = []
    for i, src in enumerate(group.sources):
        if not src.is_stream:
            on_disk.append(src)
            continue
        copy = folder / f"stdin-{i}"
        try:
            if src.is_stdin:
                with copy.open("wb") as out:
                    shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
            else:
                _pipe_to(src, copy)
        except OSError as exc:
            what = "stdin" if src.is_stdin else f"`{src.name}`"
            msg = f"cannot keep {what} in a temporary file: {exc.strerror or exc}"
            raise PplogError(msg) from exc
        on_disk.append(sources.Source(src.name, copy))
    return dataclasses.replace(group, sources=on_disk)


def _pipe_to(src: Source, copy: Path) -> None:
    """The bytes of the pipe `src` as they come, with what detection kept of
    it, into `copy`."""
    _, raw = sources.open_stream(src)
    try:
        with copy.open("wb") as out:
            while data := raw.read(1 << 20):
                out.write(data)
    finally:
        raw.close()


def merge_same(groups: list[FileGroup]) -> list[FileGroup]:
    """Groups with the same format and policy read as one, where the first is.

    A directory of vhost logs next to their error logs is then two scans, not
    one per file (each scan costs about 65 ms and 2.5 MB of plan). Inputs no
    preset fits stay apart: each has its own reason.
    """
    out: list[FileGroup] = []
    index: dict[tuple[LogFormat, ProxyPolicy], int] = {}
    for g in groups:
        notes = {**{s.name: g.note for s in g.sources}, **g.notes}
        # a part of a file cut where its format changed stays where it is,
        # so that the file's parts are read in order; so do a zone's groups
        if (
            g.format is None
            or g.zone is not None
            or any(s.span is not None for s in g.sources)
        ):
            out.append(g)
            continue
        key = (g.format, g.policy)
        if key not in index:
            index[key] = len(out)
            out.append(dataclasses.replace(g.copy(), notes=notes))
            continue
        prev = out[index[key]]
        # the note of a detection, rather than of an input with no lines
        note = g.note if (prev.note or "").startswith("no lines") else prev.note
        out[index[key]] = dataclasses.replace(
            prev,
            sources=[*prev.sources, *g.sources],
            note=note,
            notes=prev.notes | notes,
            warnings=prev.warnings | g.warnings,
        )
    return out


def unknown_format_rows(lines: pl.LazyFrame) -> pl.LazyFrame:
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
    conf: tuple[RealIPSettings | LogFormatError | None] | None = None,
) -> ProxyPolicy:
    """The proxy policy: explicit settings, else nginx.conf's realip, else defaults.

    `conf`: a `(settings,)` tuple of nginx.conf's realip settings where the
    `access_log` that writes the inputs stands (`detect.logs_realip`;
    None in it: realip not configured there; an error: a header pplog cannot
    read); without it, those of the server whose `access_log` uses `fmt`."""
    if policy is not None:
        return policy
    settings = None
    if conf is not None:
        if isinstance(conf[0], LogFormatError):
            raise conf[0]
        settings = conf[0]
    elif nginx_conf is not None and fmt is not None:
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


def parse_lines(
    lines: pl.LazyFrame, fmt: LogFormat, *, decode: bool = True, late: bool = False
) -> pl.LazyFrame:
    """`parse`, with the lines the reader cut for length as `too_long` rejects.

    A line past `sources.LINE_LIMIT` reaches the parser as its first bytes,
    marked in the `sources.TOO_LONG` column; it is a reject whatever those
    bytes parse to.
    """
    frame = parse(lines, fmt, decode=decode, late=late)
    if sources.TOO_LONG not in frame.collect_schema().names():
        return frame
    cut = pl.col(sources.TOO_LONG).fill_null(False)  # noqa: FBT003
    reason = pl.when(cut).then(pl.lit("too_long")).otherwise(pl.col(REJECT_REASON))
    return frame.with_columns(reason.alias(REJECT_REASON)).drop(sources.TOO_LONG)


def collected_rows(
    lines: pl.LazyFrame,
    fmt: LogFormat,
    *,
    policy: ProxyPolicy | None = None,
    rejects: bool = True,
    classify: bool = True,
) -> pl.DataFrame:
    """`rows(lines, fmt, policy=policy, classify=classify)` collected, the
    same frame, sooner.

    The lines are parsed in streaming batches without the steps that call
    Python per batch (decoding, the trust decisions, the agent classes),
    which then run once per column of the collected frame: batches of a few
    thousand rows made them most of the time, and the trust decisions of a
    lazy frame read the input twice. Without `rejects`, rejected lines are
    left out as they are parsed (and `raw` is null): what `read_log` keeps.
    """
    order = rows(lines, fmt, policy=policy, classify=classify).collect_schema().names()
    parsed = parse_lines(lines, fmt, late=True)
    if not rejects:
        parsed = parsed.filter(pl.col(REJECT_REASON).is_null()).with_columns(
            pl.lit(None, pl.String).alias(RAW)
        )
    frame = parsed.collect(engine="streaming")
    # decoding: one Python call per whole column (in a streaming query it
    # would be one per batch of the collected frame)
    if decoding := late_decoding(fmt):
        frame = frame.with_columns(decoding)
    # the request split: the C split's parts where it cut a request that
    # decodes to itself, polars expressions for the others
    frame = late_split_rows(frame, fmt)
    frame = clientip.attributed(frame, policy)
    if AGENT_CLASS in order:
        frame = frame.with_columns(agent_class_per_value(HTTP_USER_AGENT))
    return frame.select(order)


def rows(
    lines: pl.LazyFrame,
    fmt: LogFormat,
    *,
    decode: bool = True,
    policy: ProxyPolicy | None = None,
    classify: bool = True,
    decisions_now: bool = False,
) -> pl.LazyFrame:
    """Parse, attribute and classify a frame of lines: the row columns of the design.

    `agent_class` is an expression like any column: a query that does not
    select it does not compute it. `classify=False` leaves it out (callers
    that hold the rows classify each distinct user agent once instead).
    Columns of `lines` other than the line's own pass through.
    `decisions_now`: the trust decisions the C split left are made now
    (`clientip.attribute_now`), for rows a caller reads once.
    """
    parsed = parse_lines(lines, fmt, decode=decode)
    attribute = clientip.attribute_now if decisions_now else clientip.attribute
    frame = attribute(parsed, policy)
    if classify and HTTP_USER_AGENT in frame.collect_schema().names():
        frame = frame.with_columns(agent_class_per_value(HTTP_USER_AGENT))
    return frame
