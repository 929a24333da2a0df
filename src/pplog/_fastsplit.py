"""Plain log files cut into lines and split in C (`pplog._splitc`).

`parse._extract` splits a default-escaped line at its literal `"`
characters, then each segment at the literal after each variable, and checks
the values of the variables nginx formats itself (status, time, addresses)
against their shapes; the segment's regex runs only where that fails. For a
plain file polars would read itself (a map task's, above
`tasks.IN_MEMORY_BYTES`), `scan` reads the file in ranges, and the C code
reads each range, checks it is plain text, cuts it into lines and does the
cheap half of that split in one pass, on as many threads as polars has,
without the GIL: the lines frame it gives carries, beside every line,
whether the split held (`ok_column`), the values where it did
(`value_columns`) and the request's parts (`request_columns`), all Arrow
string views into the range read from disk, handed to polars through the
Arrow C data interface. `ingest` reads plain files the same way
(`split_ranges`) and takes the same split for the blocks its Python reader
cuts (`block_frame`). Given the proxy policy, the C code also makes nginx's
trust decision for lines whose addresses are all plain (`realip`), which
`clientip` takes.
`parse` takes those values and runs its polars expressions only on the lines
the C split refused, so the rows are the same: the C code may refuse more
lines than it must (it knows only ASCII digits, say), never fewer.

The extension is optional: without it (a source checkout that was not
built) `available()` is False and polars reads and splits every line.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from pathlib import Path
from types import ModuleType

import polars as pl

from pplog import _grouped
from pplog.clientip import MAX_HOPS, REALIP_PARTS, ProxyPolicy, realip_inputs
from pplog.formats import SHAPES, Literal, LogFormat, Variable
from pplog.schema import (
    LINE,
    METHOD,
    OFFSET,
    PATH,
    PROTOCOL,
    QUERY,
    REMOTE_ADDR,
    REQUEST,
    SOURCE,
    TEXT,
    TOO_LONG,
)

_splitc: ModuleType | None
try:
    from pplog import _splitc
except ImportError:  # pragma: no cover - a checkout whose extension was not built
    _splitc = None

# `_splitc.c`'s shape ids, by the shape's pattern: a shape added to SHAPES
# without C code for it has no id, and formats using it are split by polars.
SHAPE_IDS: dict[str, int] = {
    SHAPES["time_local"]: 1,
    SHAPES["time_iso8601"]: 2,
    SHAPES["msec"]: 3,
    SHAPES["request_time"]: 4,
    SHAPES["status"]: 5,
    SHAPES["body_bytes_sent"]: 6,
    SHAPES["pipe"]: 7,
    SHAPES["remote_port"]: 8,
    SHAPES["remote_addr"]: 9,
    SHAPES["server_addr"]: 10,
    SHAPES["upstream_addr"]: 11,
    SHAPES["upstream_cache_status"]: 12,
    SHAPES["upstream_response_time"]: 13,
    SHAPES["upstream_bytes_received"]: 14,
    SHAPES["upstream_status"]: 15,
}

_END_REST, _END_SUFFIX, _END_SPLIT = 0, 1, 2
# the most fields `_splitc.c`'s `read` and `lines` fill (nginx has no such
# limit: a format of 44 variables had made them refuse every range)
MAX_FIELDS = 40
_SEG_VALUE, _SEG_LITERAL, _SEG_SPLIT = 0, 1, 2

# bytes of the file per C call (the lines that start in the range), each
# one frame for polars: every later stage of the parse runs once per frame,
# so fewer, larger frames cost less. Against 2 MiB, alternating (2 cores):
# 2M elb_log lines 1.50-1.59 -> 1.45-1.50 s, 8M 5.32-6.03 -> 4.74-5.22 s,
# 2M `main` lines 1.87-2.00 -> 1.72-1.91 s, peak memory the same; 8 MiB was
# no faster
BLOCK_BYTES = 4 << 20
# ranges split ahead of the one polars is reading, per thread
AHEAD = 2

# (1 if lines with a backslash are left to polars, the column of `$request`
# to cut into its parts or -1, the segments' steps)
Program = tuple[
    int,
    int,
    tuple[tuple[int, int, bytes, tuple[tuple[int, int, int, bytes], ...]], ...],
]
# (peer field, header field, recursive, the peer is `$remote_addr` (realip may
# have replaced it already), most tokens walked, IPv4 ranges, IPv6 ranges): the
# trust decision `_splitc.c` makes where it can (`clientip.realip_marker`)
RealipProgram = tuple[
    int,
    int,
    bool,
    bool,
    int,
    tuple[tuple[int, int], ...],
    tuple[tuple[int, int, int, int], ...],
]

# The parts of `$request` the C road cuts (`request_columns`): where `ok`,
# the C split cut the request (the line's, of ASCII text), and these are its
# method, path, query and protocol as `parse.request_parts` gives them from
# the request as logged (null where nginx would not have parsed it, or the
# request has no such part).
REQUEST_PARTS = ("ok", METHOD, PATH, QUERY, PROTOCOL)


def available() -> bool:
    """Whether the C split is built and not turned off (``PPLOG_NO_C_SPLIT=1``)."""
    return _splitc is not None and os.environ.get("PPLOG_NO_C_SPLIT", "") in ("", "0")


def _shape_id(var: Variable) -> int | None:
    if var.name not in SHAPES:
        return 0
    return SHAPE_IDS.get(SHAPES[var.name])


@cache  # asked for by the reader and by every parse of the format's lines
def program(fmt: LogFormat) -> tuple[Program, tuple[str, ...]] | None:
    """The C steps of `fmt`'s split and the columns they fill, or None where
    the C split does not apply (no `"` to split at, touching variables, a
    shape it has no code for)."""
    plan = fmt.plan
    if fmt.kind != "nginx" or plan.segments is None:
        return None
    groups = fmt.group_columns()
    positions = {id(t): i for i, t in enumerate(fmt.tokens)}
    columns: list[str] = []

    def field(var: Variable) -> int:
        if groups.get(f"g{positions[id(var)]}") != var.column:
            return -1  # a variable logged twice: the first one is the column
        columns.append(var.column)
        return len(columns) - 1

    segments: list[tuple[int, int, bytes, tuple[tuple[int, int, int, bytes], ...]]] = []
    for seg in plan.segments:
        variables = [t for t in seg.tokens if isinstance(t, Variable)]
        if seg.regex is None and variables:
            # the whole segment is one free-text value (parse takes it as is)
            columns.append(variables[0].column)
            segments.append((_SEG_VALUE, len(columns) - 1, b"", ()))
            continue
        if seg.regex is None:
            text = "".join(t.text for t in seg.tokens if isinstance(t, Literal))
            segments.append((_SEG_LITERAL, -1, text.encode(), ()))
            continue
        toks = list(seg.tokens)
        prefix = b""
        if toks and isinstance(toks[0], Literal):
            prefix = toks[0].text.encode()
            toks = toks[1:]
        steps: list[tuple[int, int, int, bytes]] = []
        for k, tok in enumerate(toks):
            if not isinstance(tok, Variable):
                continue
            nxt = toks[k + 1] if k + 1 < len(toks) else None
            if isinstance(nxt, Variable):
                return None  # touching values: only the regex splits them
            shape = _shape_id(tok)
            if shape is None:
                return None
            if nxt is None:
                end, lit = _END_REST, b""
            elif k + 2 >= len(toks):
                end, lit = _END_SUFFIX, nxt.text.encode()
            else:
                end, lit = _END_SPLIT, nxt.text.encode()
            steps.append((field(tok), shape, end, lit))
        segments.append((_SEG_SPLIT, -1, prefix, tuple(steps)))
    if len(columns) > MAX_FIELDS:
        return None  # more than `_splitc.c` fills: polars splits them
    # Apache's escapes are rewritten on lines with a backslash before the
    # split (`parse`): the C split leaves those lines to polars
    request = columns.index(REQUEST) if REQUEST in columns else -1
    return (int(fmt.apache_escapes), request, tuple(segments)), tuple(columns)


@cache
def realip(
    fmt: LogFormat, policy: ProxyPolicy | None
) -> tuple[RealipProgram, str] | None:
    """The trust decision the C split makes for `fmt`'s lines under `policy`
    (nginx's realip walk, where every address it reads is in a plain form)
    and its marker column (`clientip.realip_marker`); None where it makes
    none (no policy, another strategy, the `Forwarded` header, a peer or
    header the C split does not give)."""
    built = program(fmt)
    inputs = None if policy is None else realip_inputs(policy, fmt.fields)
    if policy is None or built is None or inputs is None:
        return None
    marker, peer, header = inputs
    columns = built[1]
    if peer not in columns or header not in columns:
        return None  # a variable logged twice: its first place is the column
    v4 = tuple(n.v4 for n in policy.networks if n.v4 is not None)
    v6 = tuple(n.v6 for n in policy.networks if n.v6 is not None)
    spec = (
        columns.index(peer),
        columns.index(header),
        policy.recursive,
        peer == REMOTE_ADDR,
        MAX_HOPS,
        v4,
        v6,
    )
    return spec, marker


def _run(fmt: LogFormat, policy: ProxyPolicy | None) -> tuple[tuple[object, ...], int]:
    """The program `_splitc` runs for `fmt` (with `policy`'s trust decision
    where it makes one) and its number of fields."""
    built = program(fmt)
    assert built is not None
    prog, columns = built
    decision = realip(fmt, policy)
    return (prog if decision is None else (*prog, decision[0])), len(columns)


def release() -> None:
    """Give the memory the C library keeps free back to the system.

    The C road's blocks and columns come from the C library's heap, which
    keeps what was freed (polars allocates elsewhere): `tasks.map_task` calls
    this once the rows are spooled, else the summary's queries add to it
    (8M lines: 50 MiB).
    """
    if _splitc is not None:
        _splitc.trim()


def _tag(prog: Program) -> str:
    return hashlib.sha256(repr(prog).encode()).hexdigest()[:12]


def ok_column(fmt: LogFormat) -> str | None:
    """The lines frame's column saying the C split of `fmt` held, if any."""
    built = program(fmt)
    return None if built is None else f"_c_ok_{_tag(built[0])}"


def value_columns(fmt: LogFormat) -> dict[str, str]:
    """Field column -> the lines frame's column of its C-split value (named
    with a character no nginx variable has, so no name is taken twice)."""
    built = program(fmt)
    if built is None:
        return {}
    tag = _tag(built[0])
    return {c: f"_c_{tag}.{c}" for c in built[1]}


def request_columns(fmt: LogFormat) -> dict[str, str]:
    """`REQUEST_PARTS` -> the lines frame's column of each (none where the
    format logs no `$request` or the C split does not apply)."""
    built = program(fmt)
    if built is None or built[0][1] < 0:
        return {}
    tag = _tag(built[0])
    return {p: f"_c_{tag}:request.{p}" for p in REQUEST_PARTS}


class _Capsules:
    """A block's columns as `_splitc.read` hands them over: an Arrow struct
    array in the PyCapsule protocol, which polars imports without a copy."""

    __slots__ = ("_pair",)

    def __init__(self, pair: tuple[object, object]) -> None:
        self._pair = pair

    def __arrow_c_array__(
        self, requested_schema: object = None
    ) -> tuple[object, object]:
        del requested_schema
        return self._pair


# a range in which no line starts
_EMPTY = pl.DataFrame()


def _kept(
    df: pl.DataFrame,
    with_columns: list[str] | None,
    predicate: pl.Expr | None,
    left: int | None,
) -> pl.DataFrame:
    """What polars asked of a block's frame: its columns, rows, at most `left`."""
    if with_columns is not None:
        df = df.select(with_columns)
    if predicate is not None:
        df = df.filter(predicate)
    return df if left is None else df.head(left)


def _ranges(start: int, size: int, block_bytes: int) -> Iterator[tuple[int, int]]:
    """The file's bytes from `start` up to `size` in ranges of `block_bytes`."""
    for lo in range(start, size, block_bytes):
        yield lo, min(lo + block_bytes, size)


# what a range is read past its end, for the end of its last line (more:
# 16 times as much at a time)
_SLACK = 64 << 10


def applies(fmt: LogFormat | None) -> bool:
    """Whether `scan` reads a file for `fmt` (else it returns None)."""
    return fmt is not None and available() and program(fmt) is not None


def split_ranges(
    fd: int,
    start: int,
    size: int,
    fmt: LogFormat,
    *,
    block_bytes: int = BLOCK_BYTES,
    on_submit: Callable[[int], None] | None = None,
    policy: ProxyPolicy | None = None,
    values: bool = False,
) -> Generator[tuple[pl.DataFrame | None, int, int], None, None]:
    """The lines of the open plain file `fd` that start in bytes [start,
    size), read and split by the C code in ranges of `block_bytes`, on as
    many threads as polars has, a few ranges ahead, in file order.

    `start` must begin a line (0, or just after a newline); no line is read
    past `size`, and the last may end there without a newline. Yields
    (frame, count, offset) for each range in which lines start: `fmt`'s
    columns (`_c_schema`, without line numbers) of its `count` lines, the
    first at byte `offset`. A frame None ends the iteration: from `offset`
    on, the file is not plain text (bytes that are not UTF-8, a NUL, a CR, a
    line over `LINE_LIMIT`) and the caller's reader must read it.
    `on_submit` is told the bytes of each range as it is handed to a thread.
    With `policy`, the frames also hold the trust decisions the C code made
    (`realip`). With `values`, each column but the lines' holds its values
    in a buffer of its own, one after another, rather than views into the
    range's text: more memory while the lines are held, but polars hashes
    and compares such a column several times faster in a batch larger than
    the CPU's caches (`ingest`'s).
    """
    splitc = _splitc
    if program(fmt) is None or splitc is None:
        msg = "the C split does not apply to this format"
        raise ValueError(msg)
    from pplog.sources import LINE_LIMIT

    prog, nfields = _run(fmt, policy)
    names = tuple(_c_schema(fmt, policy))

    def frame(lo: int, hi: int) -> tuple[pl.DataFrame | None, int, int]:
        offset, count, capsules = splitc.read(
            fd, lo, hi, size, _SLACK, prog, nfields, LINE_LIMIT, names, values
        )
        if capsules is None:  # count 0: no line starts here; -1: not plain text
            return (None if count < 0 else _EMPTY), 0, offset
        return pl.DataFrame(_Capsules(capsules)), count, offset

    # as many threads as polars has; with one (`--jobs 1`: one core), or
    # one range to read, the ranges are read and split here, in the
    # caller's thread (a pool's threads cost more than a small file's split)
    workers = pl.thread_pool_size() if size - start > block_bytes else 1
    with contextlib.ExitStack() as stack:
        pending: deque[Future[tuple[pl.DataFrame | None, int, int]]] = deque()
        pool = None
        if workers > 1:
            pool = stack.enter_context(
                ThreadPoolExecutor(workers, thread_name_prefix="pplog-split")
            )
        # cancelled first when the stack unwinds: no range read for nothing
        stack.callback(lambda: [rest.cancel() for rest in pending])
        ranges = _ranges(start, size, block_bytes)
        done = False
        while True:
            while not done and len(pending) < (AHEAD * workers if pool else 1):
                got = next(ranges, None)
                if got is None:
                    done = True
                    break
                lo, hi = got
                if pool is None:
                    result: Future[tuple[pl.DataFrame | None, int, int]] = Future()
                    result.set_result(frame(lo, hi))
                else:
                    result = pool.submit(frame, lo, hi)
                pending.append(result)
                if on_submit is not None:
                    on_submit(hi - lo)
            if not pending:
                return
            df, count, offset = pending.popleft().result()
            if df is _EMPTY:
                continue
            yield df, count, offset
            if df is None:
                return


def scan(
    path: Path,
    name: str,
    fmt: LogFormat | None,
    *,
    on_problem: Callable[[str, str], None] | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
    block_bytes: int = BLOCK_BYTES,
    policy: ProxyPolicy | None = None,
    span: tuple[int, int] | None = None,
) -> pl.LazyFrame | None:
    """The lines of plain file `path` (`sources.LINES_SCHEMA`, source named
    `name`), with `fmt`'s C split beside them; None when the C split does
    not apply to `fmt` (`applies`). With `span`, the lines that start in
    those bytes ([start, end), `start` a line's), numbered and placed as in
    the whole file (`Source.span`).

    Only the file's head need have been judged (`sources` checks it for
    compression and binary content): the C code checks every block as it
    cuts it, and from the first block that is not plain text (bytes that
    are not UTF-8, a NUL, a CR, a line over `LINE_LIMIT`) to the end, the
    file is read by the Python reader, as if it had been judged whole.
    """
    if not applies(fmt):
        return None
    assert fmt is not None
    from pplog.sources import path_name

    schema = pl.Schema([(LINE, pl.UInt64()), *_c_schema(fmt, policy).items()])
    start, end = span if span is not None else (0, path.stat().st_size)

    def batches(
        progress: Callable[[int], None] | None,
    ) -> Generator[pl.DataFrame, None, None]:
        return _file_batches(
            path,
            name,
            (start, end),
            fmt,
            schema,
            on_problem,
            progress,
            block_bytes,
            policy,
        )

    return _io_source(schema, end - start, on_progress, batches).select(
        pl.lit(path_name(name), pl.String).alias(SOURCE), *schema
    )


# a small file's frames, the problems it said and the bytes it read (`scan_files`)
_Read = tuple[list[pl.DataFrame], list[tuple[str, str]], int]


def scan_files(
    files: Sequence[tuple[Path, str]],
    fmt: LogFormat | None,
    *,
    on_problem: Callable[[str, str], None] | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
    block_bytes: int = BLOCK_BYTES,
    policy: ProxyPolicy | None = None,
) -> pl.LazyFrame | None:
    """`scan` of several plain files (path, name), one after the other, in
    one frame: polars' streaming engine takes time in the square of a
    union's inputs, so a directory of many logs is one input, not hundreds.
    A larger file's ranges are split on polars' threads; files of one range
    are split several at a time, on as many threads, in file order."""
    if not applies(fmt):
        return None
    assert fmt is not None
    from pplog.sources import path_name

    schema = pl.Schema(
        [(SOURCE, pl.String()), (LINE, pl.UInt64()), *_c_schema(fmt, policy).items()]
    )
    file_schema = pl.Schema([(c, t) for c, t in schema.items() if c != SOURCE])
    sizes = [path.stat().st_size for path, _ in files]

    def read(
        path: Path,
        name: str,
        size: int,
        on_problem: Callable[[str, str], None] | None,
        progress: Callable[[int], None] | None,
    ) -> Iterator[pl.DataFrame]:
        source = pl.lit(path_name(name), pl.String).alias(SOURCE)
        for df in _file_batches(
            path,
            name,
            (0, size),
            fmt,
            file_schema,
            on_problem,
            progress,
            block_bytes,
            policy,
        ):
            yield df.select(source, *file_schema)

    def whole(path: Path, name: str, size: int) -> _Read:
        """A small file read on a pool thread, what it said kept for later."""
        said: list[tuple[str, str]] = []
        done = [0]

        def told(n: int) -> None:
            done[0] += n

        frames = list(read(path, name, size, lambda *p: said.append(p), told))
        return frames, said, done[0]

    def batches(
        progress: Callable[[int], None] | None,
    ) -> Generator[pl.DataFrame, None, None]:
        # a file of one range is split on one thread: the next few small
        # files are read beside it, on the pool, each handed over whole and
        # in order with its problems and progress (400 files of 830 KB:
        # 2.6 s one after the other, 2.2-2.7 s so; as one file 1.5-1.9 s)
        workers = pl.thread_pool_size()
        with contextlib.ExitStack() as stack:
            pool = None
            if workers > 1:
                pool = stack.enter_context(
                    ThreadPoolExecutor(workers, thread_name_prefix="pplog-split")
                )
            pending: deque[Future[_Read]] = deque()
            stack.callback(lambda: [rest.cancel() for rest in pending])
            todo = deque(zip(files, sizes, strict=True))
            room = AHEAD * workers  # small files in flight at most
            while todo or pending:
                while (
                    pool and todo and todo[0][1] <= block_bytes and len(pending) < room
                ):
                    (path, name), size = todo.popleft()
                    pending.append(pool.submit(whole, path, name, size))
                if pending:
                    frames, said, done = pending.popleft().result()
                    for problem in said:
                        if on_problem is not None:
                            on_problem(*problem)
                    if progress is not None and done:
                        progress(done)
                    yield from frames
                    continue
                (path, name), size = todo.popleft()
                yield from read(path, name, size, on_problem, progress)

    def grouped(
        progress: Callable[[int], None] | None,
    ) -> Generator[pl.DataFrame, None, None]:
        # small files' frames go on together: each frame pays every stage of
        # the parse (3,600 files of 5 lines: 4.5 s one frame a file, 1.3 s
        # by polars' reader grouped so), a range's frame goes on alone
        with contextlib.closing(batches(progress)) as frames:
            for run in _grouped.grouped(frames, alone=_grouped.GROUPED_ROWS // 4):
                yield _grouped.together(run)

    return _io_source(schema, sum(sizes), on_progress, grouped)


def _io_source(
    schema: pl.Schema,
    total: int,
    on_progress: Callable[[int, int | None], None] | None,
    batches: Callable[
        [Callable[[int], None] | None], Generator[pl.DataFrame, None, None]
    ],
) -> pl.LazyFrame:
    """A polars source of `batches(progress)` (progress told in bytes of
    `total`), giving polars what it asks of each batch (`_asked`)."""
    from polars.io.plugins import register_io_source

    def generate(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        del batch_size
        progress = None if on_progress is None else (lambda n: on_progress(n, total))
        yield from _asked(batches(progress), with_columns, predicate, n_rows)

    return register_io_source(generate, schema=schema)


def _asked(
    batches: Generator[pl.DataFrame, None, None],
    with_columns: list[str] | None,
    predicate: pl.Expr | None,
    n_rows: int | None,
) -> Iterator[pl.DataFrame]:
    """What polars asked of the batches: their columns, rows, at most
    `n_rows` (the files are closed once they are enough)."""
    left = n_rows
    with contextlib.closing(batches):
        for batch in batches:
            df = _kept(batch, with_columns, predicate, left)
            if left is not None:
                left -= df.height
            yield df
            if left is not None and left <= 0:
                return


def _file_batches(
    path: Path,
    name: str,
    span: tuple[int, int],
    fmt: LogFormat,
    schema: pl.Schema,
    on_problem: Callable[[str, str], None] | None,
    progress: Callable[[int], None] | None,
    block_bytes: int,
    policy: ProxyPolicy | None,
) -> Generator[pl.DataFrame, None, None]:
    """The numbered lines of plain file `path` that start in `span` (its
    bytes [start, end)), `schema`'s columns: split in C, then, from the
    first block that is not plain text, read by the Python reader with the
    C split's columns null."""
    from pplog.sources import Source, iter_span

    start, total = span
    reported = 0

    def submitted(n: int) -> None:
        nonlocal reported
        reported += n
        if progress is not None:
            progress(n)

    def python_rest(offset: int, line: int) -> Iterator[pl.DataFrame]:
        """The file from byte `offset` (line `line`) on, read by the Python
        reader, the C split's columns null (progress told once a byte)."""
        at = offset - start

        def told(n: int) -> None:
            nonlocal at, reported
            at += n
            if progress is not None and at > reported:
                progress(at - reported)
                reported = at

        rest = Source(name, path, (offset, total))
        nulls = [pl.lit(None, t).alias(c) for c, t in list(schema.items())[4:]]
        for df in iter_span(rest, line, on_problem=on_problem, on_progress=told):
            yield df.select(LINE, OFFSET, TEXT, TOO_LONG, *nulls)

    with contextlib.ExitStack() as stack:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        stack.callback(os.close, fd)
        line = 1 + newlines_before(fd, start)
        split = stack.enter_context(
            contextlib.closing(
                split_ranges(
                    fd,
                    start,
                    total,
                    fmt,
                    block_bytes=block_bytes,
                    on_submit=submitted,
                    policy=policy,
                )
            )
        )
        for df, count, offset in split:
            if df is None:  # the Python reader takes the rest of the file
                yield from python_rest(offset, line)
                return
            yield numbered(df, line)
            line += count


def newlines_before(fd: int, stop: int, start: int = 0) -> int:
    """The newlines in the first `stop` bytes of the open file `fd`: the
    number of the line that starts there, less one (a span's first, a
    followed file's next); those from byte `start` on when given."""
    count, at = 0, start
    while at < stop:
        data = os.pread(fd, min(BLOCK_BYTES, stop - at), at)
        if not data:
            break
        count += data.count(b"\n")
        at += len(data)
    return count


@cache  # asked for at each read of a file (3,600 files: 0.5 s); not changed
def _c_schema(fmt: LogFormat, policy: ProxyPolicy | None = None) -> pl.Schema:
    """The columns `_splitc` gives for a block of lines of `fmt`, in order:
    the lines' offsets, text and too-long flags, then the C split's, then
    the trust decision's under `policy` (`realip`: the marker's ``.ok``,
    then `clientip.REALIP_PARTS`)."""
    ok_name = ok_column(fmt)
    assert ok_name is not None
    parts = request_columns(fmt)
    decision = realip(fmt, policy)
    made: dict[str, pl.DataType] = {}
    if decision is not None:
        marker = decision[1]
        made[f"{marker}.ok"] = pl.Boolean()
        made.update({f"{marker}.{p}": pl.Boolean() for p in REALIP_PARTS[:2]})
        made[f"{marker}.{REALIP_PARTS[2]}"] = pl.String()
    return pl.Schema(
        {
            OFFSET: pl.UInt64,
            TEXT: pl.String,
            TOO_LONG: pl.Boolean,
            ok_name: pl.Boolean,
            **dict.fromkeys(value_columns(fmt).values(), pl.String),
            **{c: pl.Boolean if p == "ok" else pl.String for p, c in parts.items()},
            **made,
        }
    )


def block_frame(
    name: str,
    data: bytes,
    line: int,
    offset: int,
    fmt: LogFormat | None,
    *,
    values: bool = False,
    policy: ProxyPolicy | None = None,
) -> pl.DataFrame | None:
    """The lines of `data` (whole lines read from byte `offset` of source
    `name`, the first numbered `line`) as `sources.lines_frame` gives them,
    with `fmt`'s C split beside them: what `ingest` parses. None where the C
    split does not apply to `fmt` or the block is not plain text (bytes
    that are not UTF-8, a NUL, a CR, a line over `LINE_LIMIT`): the caller's
    reader then reads it. `values` and `policy`: as for `split_ranges`."""
    if not applies(fmt) or not data:
        return None
    assert fmt is not None
    from pplog.sources import LINE_LIMIT

    prog, nfields = _run(fmt, policy)
    names = tuple(_c_schema(fmt, policy))
    splitc = _splitc
    assert splitc is not None
    got = splitc.lines(data, offset, prog, nfields, LINE_LIMIT, names, values)
    if got is None:
        return None
    return numbered(pl.DataFrame(_Capsules(got[1])), line, name)


def lines_schema(fmt: LogFormat, policy: ProxyPolicy | None = None) -> pl.Schema:
    """The columns of `block_frame`'s and `scan`'s frames: the source, the
    line numbers, then `fmt`'s C split under `policy` (`_c_schema`)."""
    return pl.Schema(
        [(SOURCE, pl.String()), (LINE, pl.UInt64()), *_c_schema(fmt, policy).items()]
    )


def numbered(df: pl.DataFrame, first: int, source: str | None = None) -> pl.DataFrame:
    """A frame of C-split lines (`_c_schema`) with their numbers in front, the
    first `first`, and with `source`, the source's name before them (as
    `sources.lines_frame` gives lines)."""
    line = pl.int_range(first, first + df.height, dtype=pl.UInt64, eager=True)
    df = df.insert_column(0, line.alias(LINE))
    if source is None:
        return df
    from pplog.sources import path_name

    # one value repeated by Series, not a query (`pl.repeat`: 0.18 ms a frame)
    name = pl.Series(SOURCE, [path_name(source)], dtype=pl.String)
    return df.insert_column(0, name.new_from_index(0, df.height))
