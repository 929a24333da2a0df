"""Which format each input is read with: detection per rotation set, or forced."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from pplog import sources
from pplog.clientip import ProxyPolicy
from pplog.errors import LogFormatError, OptionError
from pplog.formats import (
    DETECTION_ORDER,
    PRESETS,
    LogFormat,
    RealIPSettings,
    SeveralFormatsError,
    format_from_config,
    formats_by_log_path,
    get_format,
    realip_by_log_path,
)
from pplog.parse import parse
from pplog.schema import LINE, OFFSET, REJECT_REASON, SOURCE, TEXT
from pplog.sources import rotation_key

if TYPE_CHECKING:
    from pplog.sources import Source

DETECT_LINES = 200


@dataclass
class FileGroup:
    """Inputs read with one format: a rotation set, or every input when forced.

    `format` is None when no preset fits (the lines are then rejects).
    `notes` says how each input's format was chosen, where groups detected
    apart were merged (else `note` says it for all).
    """

    sources: list[Source]
    format: LogFormat | None
    note: str | None
    policy: ProxyPolicy = field(default_factory=lambda: ProxyPolicy())
    notes: dict[str, str | None] = field(default_factory=dict)


UNKNOWN_FORMAT = "unknown_format"  # reject reason: no preset fits the file

# how a detection's note starts when the input is an nginx error log
ERROR_LOG = "an nginx error log, not an access log"


def is_error_log(note: str | None) -> bool:
    """Whether a detection's note says its input is an nginx error log."""
    return note is not None and note.startswith(ERROR_LOG)


# how a detection's note starts when its input had no line to detect from
NO_LINES = "no lines to detect from"


def had_no_lines(note: str | None) -> bool:
    """Whether a detection's note says its input had no line (empty): its
    format is another input's, or `combined`."""
    return note is not None and note.startswith(NO_LINES)


def doctor_command(name: str) -> str:
    """The command that reads the error log `name`, as a warning suggests it
    (stdin's as ``-``: `<stdin>` names no file)."""
    word = sources.STDIN if name == sources.STDIN_NAME else sources.shell_word(name)
    return f"`pplog doctor --error-log {word}`"


def detection_of(note: str | None, name: str) -> str | None:
    """A detection's note as told of the input `name`: an error log's note
    ends with the command that reads that file (a rotation set is detected
    once, from one member, and the note is told of every member)."""
    if not is_error_log(note):
        return note
    return f"{note}; read it with {doctor_command(name)}"


_ERROR_LOG_LINE = (
    r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} "
    r"\[(?:debug|info|notice|warn|error|crit|alert|emerg)\] \d+#\d+: "
)


def _sample_frame(sample: Sequence[str]) -> pl.LazyFrame:
    """Sample lines as the lines a parse takes."""
    return pl.LazyFrame(
        {
            SOURCE: ["<sample>"] * len(sample),
            LINE: pl.Series(range(1, len(sample) + 1), dtype=pl.UInt64),
            OFFSET: pl.Series([0] * len(sample), dtype=pl.UInt64),
            TEXT: pl.Series(sample, dtype=pl.String),
        }
    )


def _parsed(frame: pl.LazyFrame, fmt: LogFormat) -> int:
    """How many lines of `frame` `fmt` parses."""
    return int(
        parse(frame, fmt).select(pl.col(REJECT_REASON).is_null().sum()).collect().item()
    )


def detect_format(lines: Sequence[str]) -> tuple[LogFormat, int]:
    """The preset that parses the most of `lines` (ties go to DETECTION_ORDER)."""
    frame = _sample_frame([x for x in lines if x.strip()])
    best, best_ok = PRESETS[DETECTION_ORDER[0]], -1
    for name in DETECTION_ORDER:
        fmt = PRESETS[name]
        ok = _parsed(frame, fmt)
        if ok > best_ok:
            best, best_ok = fmt, ok
    return best, best_ok


def _error_log_note(sample: Sequence[str]) -> str | None:
    """Detection's note for sample lines (none blank) that are an nginx
    error log: its entries cover at least half of them. Said of a whole
    rotation set: the command to run names each file where the note is told
    of it (`detection_of`)."""
    entries, covered = _error_log_lines(sample)
    n = len(sample)
    if n == 0 or covered * 2 < n:
        return None
    what = "entry" if entries == 1 else "entries"
    return f"{ERROR_LOG} ({entries} error-log {what} in {covered} of {n} sample lines)"


def error_log_note(lines: Sequence[str], fmt: LogFormat) -> str | None:
    """Detection's note when `lines` (a file's first lines) are an nginx
    error log that `fmt` does not read, else None: as detection judges a
    file no preset fits (`ingest` checks each file it meets for the first
    time, `--nginx-conf` each input no `access_log` names)."""
    sample = [x for x in lines if x.strip()]
    note = _error_log_note(sample)
    if note is None or _parsed(_sample_frame(sample), fmt) * 2 >= len(sample):
        return None
    return note


def detect_sample(src: Source, sample: list[str]) -> tuple[LogFormat | None, str]:
    """The preset for lines of one input (a file first seen growing), or None
    with a one-line reason, as detection decides for a file."""
    fmt, note, _ = _detect_one(src, sample)
    return fmt, note


def _error_log_lines(sample: Sequence[str]) -> tuple[int, int]:
    """The nginx error-log entries that start in `sample`, and how many of its
    lines they cover. nginx before 1.23.2 wrote what a client sent raw into
    `broken header: "..."` entries, so an entry whose quote is left open goes
    on over the lines after it, up to the one that closes it (8 entries over
    25 lines in a real log of PROXY-protocol mistakes); other lines are not
    the error log's, such as the access lines after nginx's start-up notices
    in a container's output. The sample is a file's first lines: a loop over
    at most `DETECT_LINES` of them."""
    starts = pl.Series(sample, dtype=pl.String).str.contains(_ERROR_LOG_LINE)
    entries = covered = 0
    open_quote = False
    for line, start in zip(sample, starts, strict=True):
        if start:
            entries += 1
            covered += 1
            open_quote = line.count('"') % 2 == 1
        elif open_quote:
            covered += 1
            open_quote = line.count('"') % 2 == 0
    return entries, covered


def _detect_one(
    src: Source, sample: list[str], fits: dict[str, int] | None = None
) -> tuple[LogFormat | None, str, LogFormatError | None]:
    """The preset for one input's sample, or None with a one-line reason and
    the error to raise should no input fit at all.

    `fits` (lines each preset parses) when already counted, else counted here.
    """
    if fits is None:
        fmt, ok = detect_format(sample)
    else:
        name = max(DETECTION_ORDER, key=lambda n: (fits[n], -DETECTION_ORDER.index(n)))
        fmt, ok = PRESETS[name], fits[name]
    n = len(sample)
    if ok * 2 >= n:
        return fmt, f"auto-detected: {ok} of {n} sample lines fit", None
    note = _error_log_note(sample)
    if note is not None:
        error = LogFormatError(f"`{src.name}` is {detection_of(note, src.name)}")
        return None, note, error
    if ok <= 0:
        why, anyway = f"none parses any of {n} sample lines", ""
    else:
        why = f"the closest, `{fmt.name}`, fits {ok} of {n} sample lines"
        anyway = (
            f"--format {fmt.name} to read it with that preset anyway (lines that "
            "do not fit are counted as rejects), "
        )
    msg = (
        f"no preset fits `{src.name}` ({why}); first line: {sample[0][:120]!r}; "
        f"pass {anyway}--log-format 'YOUR nginx log_format' or "
        "--nginx-conf /etc/nginx/nginx.conf"
    )
    return None, f"no preset fits ({why})", LogFormatError(msg)


def _fits(samples: list[list[str]]) -> list[dict[str, int]]:
    """Lines of each sample that each preset parses: one parse per preset for
    all samples together (a directory of 500 small logs is 6 parses, not 3,000)."""
    ids = [str(i) for i, sample in enumerate(samples) for _ in sample]
    frame = pl.LazyFrame(
        {
            SOURCE: pl.Series(ids, dtype=pl.String),
            LINE: pl.Series(range(1, len(ids) + 1), dtype=pl.UInt64),
            OFFSET: pl.Series([0] * len(ids), dtype=pl.UInt64),
            TEXT: pl.Series([x for sample in samples for x in sample], dtype=pl.String),
        }
    )
    out: list[dict[str, int]] = [dict.fromkeys(DETECTION_ORDER, 0) for _ in samples]
    for name in DETECTION_ORDER:
        counts = (
            parse(frame, PRESETS[name])
            .group_by(SOURCE)
            .agg(pl.col(REJECT_REASON).is_null().sum().alias("ok"))
            .collect()
        )
        for sid, ok in counts.iter_rows():
            out[int(sid)][name] = ok
    return out


def _rotation_sets(srcs: Sequence[Source]) -> list[list[Source]]:
    """Inputs grouped by rotation set (`access.log`, `.1`, `.2.gz`), in order.

    A set is placed where its first member is; stdin is a set of its own.
    """
    sets: dict[str, list[Source]] = {}
    for i, src in enumerate(srcs):
        if src.url is not None:
            key = rotation_key(src.url)[0]
        elif src.path is None:
            key = f"<stdin:{i}>"
        else:
            key = rotation_key(src.path)[0]
        sets.setdefault(key, []).append(src)
    return list(sets.values())


def detect_each(
    srcs: Sequence[Source],
) -> list[tuple[LogFormat | None, str | None, LogFormatError | None]]:
    """What detection decides for each input alone (as `resolve_groups` of
    that input only), with one parse per preset for all of them: `pplog
    top` settling the formats of a directory of small logs at once.

    Each result's third value is the error `resolve_groups` would raise."""
    return _detect_sets([[src] for src in srcs], alone=True)


def _detect_sets(
    sets: list[list[Source]], *, alone: bool = False
) -> list[tuple[LogFormat | None, str | None, LogFormatError | None]]:
    """One detection per rotation set: the first member with lines decides
    (the next one when no preset fits it), its sample topped up to
    `DETECT_LINES` from the members after it: a live log just rotated holds
    a line or two, and presets that differ only in what few lines show
    (`combined` and `elb_log`, apart from a `-` client) tie on them.

    Each result's third value is the error to raise if no input at all fits.
    `alone`: each set is detected as if it were the only one (a set with no
    lines does not take another's format).
    """
    firsts: list[tuple[int, Source, list[str]]] = []  # (set, member, sample)
    for i, members in enumerate(sets):
        for k, src in enumerate(members):
            sample = [x for x in sources.read_head(src, DETECT_LINES) if x.strip()]
            if sample:
                for later in members[k + 1 :]:
                    if len(sample) >= DETECT_LINES:
                        break
                    more = sources.read_head(later, DETECT_LINES - len(sample))
                    sample += [x for x in more if x.strip()]
                firsts.append((i, src, sample))
                break
    fits = _fits([sample for _, _, sample in firsts]) if firsts else []
    out: list[tuple[LogFormat | None, str | None, LogFormatError | None]] = [
        (PRESETS["combined"], f"{NO_LINES}; assumed combined", None)
    ] * len(sets)
    for (i, src, sample), counted in zip(firsts, fits, strict=True):
        out[i] = _detect_one(src, sample, counted)
        if out[i][0] is not None:
            continue
        for later in sets[i][sets[i].index(src) + 1 :]:  # rare: the older members
            lines = [x for x in sources.read_head(later, DETECT_LINES) if x.strip()]
            verdict = _detect_one(later, lines) if lines else None
            if verdict is not None and verdict[0] is not None:
                out[i] = verdict
                break
    # nothing to detect from (empty, or compressed stdin that cannot be
    # peeked into): read as the first input detected, as one format was before
    sampled = {i for i, _, _ in firsts}
    known = (
        None
        if alone
        else next(
            (r[0] for i, r in enumerate(out) if i in sampled and r[0] is not None), None
        )
    )
    if known is not None:
        like = (known, f"{NO_LINES}; read as {known.name}", None)
        out = [r if i in sampled else like for i, r in enumerate(out)]
    return out


def resolve_groups(
    srcs: Sequence[Source],
    format: str | LogFormat | None = "auto",  # noqa: A002 - mirrors --format
    *,
    log_format: str | None = None,
    nginx_conf: str | os.PathLike[str] | None = None,
    log_format_name: str | None = None,
    error_logs: bool = False,
) -> list[FileGroup]:
    """The format of each input, grouped: one group when a format is forced.

    `--format`, `--log-format` and `--nginx-conf --log-format-name` force one
    format for every input. `--nginx-conf` alone gives each input the format
    of the `access_log` directive that writes it (or its rotations), and the
    configuration's format to the others. Otherwise each rotation set is
    detected on its own, as lnav does per file; a set that no preset fits
    gets a group with no format (its lines become rejects), unless no input
    fits at all, which is an error. With `error_logs`, the caller reads
    nginx error logs too (`pplog doctor`): a set detected as one is not
    counted among the inputs that fit no preset.

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
        if not error_logs:
            return [FileGroup(list(srcs), fmt, note)]
        # the format forced is the access logs': error logs stay error logs
        apart = [
            FileGroup(members, None, said)
            for members in _rotation_sets(srcs)
            if (said := _set_error_log_note(members, fmt)) is not None
        ]
        named = {s.name for g in apart for s in g.sources}
        rest = [s for s in srcs if s.name not in named]
        return ([FileGroup(rest, fmt, note)] if rest else []) + apart
    groups, failures = [], []
    sets = _rotation_sets(srcs)
    for members, (found, note, failure) in zip(sets, _detect_sets(sets), strict=True):
        groups.append(FileGroup(members, found, note))
        if failure is not None and not (error_logs and is_error_log(note)):
            failures.append(failure)
    # with `error_logs`, the caller reads the error logs: they are not inputs
    # that fit no preset
    access = [g for g in groups if not (error_logs and is_error_log(g.note))]
    if failures and len(failures) == len(access):
        raise failures[0]
    return groups


def _set_error_log_note(members: Sequence[Source], fmt: LogFormat) -> str | None:
    """`error_log_note` of a rotation set, from its first member with lines."""
    return next(
        (
            error_log_note(sample, fmt)
            for src in members
            if (sample := sources.read_head(src, DETECT_LINES))
        ),
        None,
    )


def _conf_key(path: Path) -> str:
    """How an input is matched with the `access_log` that writes it: by its
    rotation set's live name, resolved (`logs/../logs/api.log`, `./api.log`,
    `api.log.2.gz` and a link to it name one file)."""
    return rotation_key(path.resolve())[0]


def logs_realip(
    nginx_conf: str | os.PathLike[str],
) -> Callable[[Source], tuple[RealIPSettings | LogFormatError | None] | None]:
    """For an input, a `(settings,)` tuple of the realip settings in force
    where the `access_log` that writes it stands (`realip_by_log_path`), or
    None when no `access_log` names it."""
    by_path = {_conf_key(p): s for p, s in realip_by_log_path(nginx_conf).items()}

    def named(src: Source) -> tuple[RealIPSettings | LogFormatError | None] | None:
        key = _conf_key(src.path) if src.path is not None else None
        return (by_path[key],) if key in by_path else None

    return named


def _groups_from_config(
    srcs: Sequence[Source], nginx_conf: str | os.PathLike[str]
) -> list[FileGroup]:
    """Each input with the format of the `access_log` that writes it.

    Inputs no `access_log` names take the configuration's one format; when
    it defines several, they are detected as without a configuration.
    """
    key = _conf_key
    by_path = {key(p): fmt for p, fmt in formats_by_log_path(nginx_conf).items()}
    conf = os.fspath(nginx_conf)
    sets = _rotation_sets(srcs)
    named = [
        by_path.get(key(m[0].path)) if m[0].path is not None else None for m in sets
    ]
    unnamed = [m for m, fmt in zip(sets, named, strict=True) if fmt is None]
    default: list[tuple[LogFormat | None, str | None, LogFormatError | None]] = []
    if unnamed:
        try:
            found = format_from_config(nginx_conf, None)
        except SeveralFormatsError:  # which one is unknown: detected per set
            default = _detect_sets(unnamed)
        else:
            # the configuration's format, unless the input is an error log
            # (its `error_log` is no `access_log`)
            for members in unnamed:
                note = _set_error_log_note(members, found)
                if note is not None:
                    default.append((None, note, None))
                else:
                    default.append(
                        (found, f"log_format `{found.name}` from {conf}", None)
                    )
    groups: list[FileGroup] = []
    rest = iter(default)
    for members, fmt in zip(sets, named, strict=True):
        if fmt is not None:
            mapped = f"log_format `{fmt.name}` of its access_log in {conf}"
            groups.append(FileGroup(members, fmt, mapped))
        else:
            detected, note, _failure = next(rest)
            groups.append(FileGroup(members, detected, note))
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

    With ``auto``, the format of the first input a preset fits (each input
    is detected by `resolve_groups`, which this is the one-format form of).
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
    first = next(g for g in resolve_groups(srcs) if g.format is not None)
    return first.format, first.note  # type: ignore[return-value]
