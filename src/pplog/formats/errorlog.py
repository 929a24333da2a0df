"""Read nginx error logs into one row per entry, joining multi-line messages.

An entry starts with ``YYYY/MM/DD HH:MM:SS [level] PID#TID: [*CONN ]``; every
physical line that does not start that way continues the previous entry. nginx
older than 1.23.2 printed the whole received buffer in ``broken header: "..."``
(the request headers, raw), so one entry can span several lines. The error log
is not escaped: bytes that are not UTF-8 become `\\xHH` text, other control
bytes (NUL included) are kept as characters, and the CR of a CRLF inside a
message is lost when lines are split. Lines are read as for access logs
(`pplog.sources`): a binary file is skipped, a line past the length cap keeps
its head, and the logs stream in batches.

The time is nginx's local time without an offset, so `time` is a naive
``Datetime("us")``: pplog cannot know the zone the server ran in.

A continuation line that itself starts like an entry (an attacker can send
one in a broken header) is read as a new entry: the format is ambiguous there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl

from pplog import sources
from pplog.errors import SourceError
from pplog.schema import LINE, RAW, SOURCE, TEXT
from pplog.sources import ProblemHandler, Source

TIME = "time"
LEVEL = "level"
PID = "pid"
TID = "tid"
CONNECTION = "connection"
MESSAGE = "message"
CLIENT = "client"
SERVER = "server"
REQUEST = "request"
UPSTREAM = "upstream"
HOST = "host"
REFERRER = "referrer"

ERROR_LOG_SCHEMA = pl.Schema(
    {
        SOURCE: pl.String(),
        LINE: pl.UInt64(),
        TIME: pl.Datetime("us"),
        LEVEL: pl.String(),
        PID: pl.UInt32(),
        TID: pl.UInt64(),
        CONNECTION: pl.UInt64(),
        MESSAGE: pl.String(),
        CLIENT: pl.String(),
        SERVER: pl.String(),
        REQUEST: pl.String(),
        UPSTREAM: pl.String(),
        HOST: pl.String(),
        REFERRER: pl.String(),
        RAW: pl.String(),
    }
)

ENTRY_START = r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \["
_HEAD = (
    r"(?s)^(?P<time>\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[(?P<level>[a-z]+)\] "
    r"(?P<pid>\d+)#(?P<tid>\d+): (?:\*(?P<connection>\d+) )?(?P<body>.*)$"
)
# ngx_http_log_error / ngx_stream_log_error append this context, client first.
# The lazy message stops at the first place where the rest parses as context.
_CONTEXT = (
    r"(?s)^(?P<message>.*?)(?:, client: (?P<client>[^,\n]*)"
    r"(?:, server: (?P<server>[^,\n]*))?"
    r'(?:, request: "(?P<request>.*?)")?'
    r'(?:, subrequest: "[^"\n]*")?'
    r'(?:, upstream: "(?P<upstream>[^"\n]*)")?'
    r'(?:, host: "(?P<host>[^"\n]*)")?'
    r'(?:, referrer: "(?P<referrer>[^"\n]*)")?)?$'
)
MAX_CARRY = sources.LINE_LIMIT  # bytes of an entry's lines held for the next batch


def parse_error_lines(lines: pl.DataFrame) -> pl.DataFrame:
    """Error-log entries from a frame of lines (`source`, `line`, text).

    `lines` has the layout of `pplog.sources.iter_batches` batches, in file
    order. Lines before a file's first entry form an entry of their own with
    a null `time` and `level` and the text as `message`; nothing is dropped.

    Examples
    --------
    >>> import polars as pl
    >>> from pplog.schema import LINE, SOURCE, TEXT
    >>> lines = pl.DataFrame({
    ...     SOURCE: ["e.log"] * 3,
    ...     LINE: pl.Series([1, 2, 3], dtype=pl.UInt64),
    ...     TEXT: [
    ...         '2025/03/14 09:26:53 [error] 31#31: *8 broken header: "GET / HTTP/1.1',
    ...         "Host: x",
    ...         '" while reading PROXY protocol, client: 10.0.1.5, server: 0.0.0.0:80',
    ...     ],
    ... })
    >>> entry = parse_error_lines(lines).row(0, named=True)
    >>> entry["line"], entry["connection"], entry["client"]
    (1, 8, '10.0.1.5')
    >>> entry["message"]
    'broken header: "GET / HTTP/1.1\\nHost: x\\n" while reading PROXY protocol'
    """
    if lines.height == 0:
        return pl.DataFrame(schema=ERROR_LOG_SCHEMA)
    text = pl.col(TEXT)
    new_file = pl.col(SOURCE) != pl.col(SOURCE).shift(1)
    starts = text.str.contains(ENTRY_START) | new_file.fill_null(True)  # noqa: FBT003
    joined = (
        lines.with_columns(starts.cast(pl.UInt32).cum_sum().alias("_entry"))
        .group_by("_entry", maintain_order=True)
        .agg(pl.col(SOURCE).first(), pl.col(LINE).first(), text.str.join("\n"))
    )
    head = text.str.extract_groups(_HEAD)
    out = joined.with_columns(head.alias("_h")).unnest("_h")
    body = pl.coalesce(pl.col("body"), text)  # no timestamp: the text is the message
    out = out.with_columns(body.str.extract_groups(_CONTEXT).alias("_c"))
    out = out.drop(MESSAGE, strict=False).unnest("_c")
    return out.select(
        SOURCE,
        pl.col(LINE).cast(pl.UInt64),
        pl.col(TIME).str.strptime(pl.Datetime("us"), "%Y/%m/%d %H:%M:%S", strict=False),
        LEVEL,
        pl.col(PID).cast(pl.UInt32, strict=False),
        pl.col(TID).cast(pl.UInt64, strict=False),
        pl.col(CONNECTION).cast(pl.UInt64, strict=False),
        MESSAGE,
        CLIENT,
        SERVER,
        REQUEST,
        UPSTREAM,
        HOST,
        REFERRER,
        text.alias(RAW),
    )


def read_error_log(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    on_problem: ProblemHandler | None = None,
) -> pl.DataFrame:
    """Read nginx error logs (plain or compressed) into one row per entry.

    Parameters
    ----------
    paths
        Files, globs or ``"-"`` (stdin). Only regular files are read: a
        directory or a device (``/dev/zero`` never ends) is an error.
    on_problem
        Called with (source name, one-line reason) for a file that cannot be
        read, that breaks off (lines read before the damage are kept), or that
        holds binary data (`pplog.sources.looks_binary`). When None, such a
        problem raises `SourceError`.

    Returns
    -------
    polars.DataFrame
        `source`, `line` (first physical line of the entry), `time` (naive
        local time), `level`, `pid`, `tid`, `connection` (``*N``, null when
        absent), `message` (without the trailing context), `client`,
        `server`, `request`, `upstream`, `host`, `referrer` (null when the
        entry has no such context) and `raw` (the whole entry, lines joined
        with ``\\n``). A line longer than `pplog.sources.LINE_LIMIT` keeps its
        first `pplog.sources.RAW_KEPT` bytes.

    Raises
    ------
    SourceError
        When no input exists, a path is not a regular file, or a file cannot
        be read and `on_problem` is None.
    """
    frames = list(_entries(error_log_sources(paths), on_problem))
    if not frames:
        return pl.DataFrame(schema=ERROR_LOG_SCHEMA)
    return pl.concat(frames, how="vertical")


def iter_error_log(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    on_problem: ProblemHandler | None = None,
) -> Iterator[pl.DataFrame]:
    """The entries of `read_error_log` in batches, read as they are asked for.

    Memory follows one batch (about `pplog.sources.CHUNK_BYTES` of lines),
    however large the logs; an entry is never split between batches. Paths
    are checked now: a directory or a device raises `SourceError` here.
    """
    return _entries(error_log_sources(paths), on_problem)


def iter_error_sources(
    srcs: Sequence[Source], *, on_problem: ProblemHandler | None = None
) -> Iterator[pl.DataFrame]:
    """`iter_error_log` of inputs already found (`error_log_sources`, or
    inputs that detection found to be error logs)."""
    return _entries(srcs, on_problem)


def error_log_sources(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> list[Source]:
    """The inputs; only regular files and stdin: a device never ends."""
    items = sources.path_list(paths, "error_log")
    for text in items:
        path = Path(text)
        if text != sources.STDIN and path.exists() and not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file"
            msg = (
                f"error log `{text}` is {kind}; pass an nginx error log file "
                "(or `-` to read stdin)"
            )
            raise SourceError(msg)
    return sources.expand(items)


def _entries(
    srcs: Sequence[Source], on_problem: ProblemHandler | None
) -> Iterator[pl.DataFrame]:
    """Entries of each source, parsed batch by batch.

    The last entry of a batch may go on in the next one: its lines are
    carried over, up to `MAX_CARRY` bytes (nginx writes at most 2048 bytes
    per entry); past that they are parsed as they are.
    """

    def problem(name: str, message: str) -> None:
        _report(on_problem, name, message)

    for src in srcs:
        carry: pl.DataFrame | None = None
        for batch in sources.iter_batches([src], on_problem=problem):
            lines = batch if carry is None else pl.concat([carry, batch])
            starts = lines.get_column(TEXT).str.contains(ENTRY_START).arg_true()
            last = int(starts[-1]) if len(starts) else 0
            if last == 0 and lines.estimated_size() <= MAX_CARRY:
                carry = lines
                continue
            cut = last or lines.height
            yield parse_error_lines(lines.head(cut))
            carry = lines.slice(cut)
        if carry is not None and carry.height:
            yield parse_error_lines(carry)


def _report(handler: ProblemHandler | None, name: str, message: str) -> None:
    if handler is None:
        msg = f"cannot read error log `{name}`: {message}"
        raise SourceError(msg)
    handler(name, message)
