"""Turn paths, globs, directories, URLs and stdin into batches of complete lines.

The parts: `_paths` (inputs), `_urls` (fsspec URLs: listing, opening),
`_decompress` (bounded streams by magic bytes),
`_bytes` (binary-ness, `\\xHH` decoding), `_lines` (linear line splitting);
this module reads them in batches, by polars itself where it can.

Every batch is a DataFrame with the columns `source`, `line` (1-based),
`offset` (byte offset of the line in its decompressed file) and the line text.
Compression is recognised by magic bytes, not by file name. Bytes that are not
valid UTF-8 are kept as `\\xHH` text, the way nginx escapes them, so no line is
ever lost to an encoding error.
"""

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import BinaryIO

import polars as pl
from polars.io.plugins import register_io_source

from pplog import _fastsplit
from pplog._grouped import grouped, together
from pplog.clientip import ProxyPolicy
from pplog.errors import SourceError
from pplog.formats import LogFormat
from pplog.schema import LINE, OFFSET, SOURCE, TEXT, TOO_LONG
from pplog.sources._bytes import (
    BINARY_SHARE,
    NOT_NUL,
    SAMPLE_BYTES,
    SKIPPED_BINARY,
    binary_throughout,
    decode_bytes,
    is_utf8,
    looks_binary,
)
from pplog.sources._decompress import (
    MAGIC,
    OUT_PIECE,
    READ_ERRORS,
    ZSTD_SLICE,
    DamagedError,
    TrailingDataError,
    TruncatedError,
    compression,
    compression_of,
    describe,
    inflated_prefix,
    is_device,
    open_stream,
)
from pplog.sources._follow import Chunk, Follower, matched_files, pattern_paths
from pplog.sources._lines import (
    LINE_LIMIT,
    LINES_SCHEMA,
    RAW_KEPT,
    SMALL_BLOCK,
    Block,
    LineSplitter,
    lines_frame,
    long_line,
)
from pplog.sources._paths import (
    SKIPPED_FIFO,
    STDIN,
    STDIN_NAME,
    Source,
    expand,
    not_a_log,
    path_list,
    path_name,
    path_of_name,
    rotation_key,
    shell_word,
)
from pplog.sources._pipes import pipe_head
from pplog.sources._urls import is_url

CHUNK_BYTES = 8 << 20

ProblemHandler = Callable[[str, str], None]
# (bytes just read from disk, total bytes to read or None when unknown)
ProgressHandler = Callable[[int, int | None], None]


def iter_batches(
    sources: Sequence[Source],
    *,
    on_problem: ProblemHandler | None = None,
    on_progress: ProgressHandler | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    max_lines: int | None = None,
    frame: Callable[[Block, str], pl.DataFrame] | None = None,
) -> Iterator[pl.DataFrame]:
    """Yield batches of complete lines from every source in turn.

    A source that cannot be read (missing, unreadable, truncated or corrupt
    compression, binary) is reported through `on_problem` with a one-line
    reason, and reading goes on with the next source. Lines read before the
    damage are kept. `on_progress` receives the number of on-disk bytes
    consumed since its last call and the total on-disk size (None for stdin);
    a spanned source counts its span's bytes. `frame` makes each block of
    lines (from a source's start) into a batch, `Block.frame` by default.
    """
    remaining = max_lines
    sizes = [s.size for s in sources]
    total = None if any(s.is_stream for s in sources) else sum(sizes)
    progress = None if on_progress is None else (lambda n: on_progress(n, total))
    for src in sources:
        for batch in _iter_source(src, on_problem, progress, chunk_bytes, frame):
            if remaining is not None:
                batch = batch.head(remaining)
                remaining -= batch.height
            yield batch
            if remaining is not None and remaining <= 0:
                return


def _iter_source(
    src: Source,
    on_problem: ProblemHandler | None,
    on_progress: Callable[[int], None] | None,
    chunk_bytes: int,
    frame: Callable[[Block, str], pl.DataFrame] | None = None,
) -> Iterator[pl.DataFrame]:
    if src.span is not None:
        yield from _iter_span(src, on_problem, on_progress, chunk_bytes)
        return
    if src.skip is not None:  # a FIFO a glob matched: opening it would wait
        _report(on_problem, src.name, src.skip)
        return
    try:
        stream, counter = open_stream(src)
    except OSError as exc:
        _report(on_problem, src.name, f"{CANNOT_OPEN}: {describe(exc)}")
        return
    try:
        if src.path is not None and is_device(counter.raw):
            _report(on_problem, src.name, "skipped: a device, not a log file")
            return
        lines = LineSplitter()
        reported = 0
        sample = bytearray()  # the head after a leading hole, for `looks_binary`
        judged = False
        held: list[pl.DataFrame] = []  # lines read before the judgement
        while True:
            try:
                data = stream.read(chunk_bytes)
            except READ_ERRORS as exc:
                at = lines.offset + lines.pending
                _report(on_problem, src.name, f"stopped at byte {at}: {describe(exc)}")
                data = b""  # keep what was read before the damage
            if on_progress is not None:
                on_progress(counter.count - reported)
                reported = counter.count
            if not judged:
                start = 0
                if not sample:
                    found = NOT_NUL.search(data)
                    start = len(data) if found is None else found.start()
                sample += data[start : start + SAMPLE_BYTES - len(sample)]
                if len(sample) >= SAMPLE_BYTES or not data:
                    judged = True
                    plain = src.path if counter is stream else None
                    if binary_throughout(plain, bytes(sample)):
                        _report(on_problem, src.name, SKIPPED_BINARY)
                        return
            blocks = lines.feed(data) if data else lines.finish()
            held.extend(
                block.frame(src.name) if frame is None else frame(block, src.name)
                for block in blocks
            )
            if judged:
                yield from held
                held.clear()
            if not data:
                return
    finally:
        if not src.is_stdin:  # never close the process's stdin
            counter.close()


def iter_span(
    src: Source,
    first_line: int,
    *,
    on_problem: ProblemHandler | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[pl.DataFrame]:
    """The lines of spanned source `src`, the first numbered `first_line`
    (its caller knows it: no newlines are counted before the span)."""
    for batch in _iter_span(src, on_problem, on_progress, CHUNK_BYTES, numbered=False):
        yield batch.with_columns(pl.col(LINE) + (first_line - 1))


def _iter_span(
    src: Source,
    on_problem: ProblemHandler | None,
    on_progress: Callable[[int], None] | None,
    chunk_bytes: int,
    *,
    numbered: bool = True,
) -> Iterator[pl.DataFrame]:
    """The lines of a spanned source, numbered and placed as in the whole file.

    `split_source` judged the file already (plain, not binary), so nothing is
    judged again. The line base is the newlines before the span, counted here
    so that whoever reads a span needs nothing else; `numbered=False` skips
    that count (`read_head` wants texts only).
    """
    assert src.path is not None
    assert src.span is not None
    start, end = src.span
    try:
        f = src.path.open("rb")
    except OSError as exc:
        _report(on_problem, src.name, f"{CANNOT_OPEN}: {describe(exc)}")
        return
    with f:
        try:
            base = _newlines_before(f, start) if numbered else 0
            at = f.seek(start)
        except OSError as exc:
            _report(on_problem, src.name, f"cannot read: {describe(exc)}")
            return
        lines = LineSplitter(offset=start, line=base + 1)
        try:
            while at < end:
                data = f.read(min(chunk_bytes, end - at))
                if not data:
                    msg = (
                        f"stopped at byte {at}: the file ended before byte {end} "
                        "(truncated while read?); read it again"
                    )
                    _report(on_problem, src.name, msg)
                    break
                at += len(data)
                if on_progress is not None:
                    on_progress(len(data))
                for block in lines.feed(data):
                    yield block.frame(src.name)
        except OSError as exc:
            _report(on_problem, src.name, f"stopped at byte {at}: {describe(exc)}")
        for block in lines.finish():
            yield block.frame(src.name)


def _newlines_before(f: BinaryIO, stop: int) -> int:
    """The newlines in the first `stop` bytes of `f` (read in `CHUNK_BYTES`)."""
    count = at = 0
    while at < stop:
        data = f.read(min(CHUNK_BYTES, stop - at))
        if not data:
            break
        count += data.count(b"\n")
        at += len(data)
    return count


# How a problem message about an input that could not be opened begins.
CANNOT_OPEN = "cannot open"


def _report(handler: ProblemHandler | None, name: str, message: str) -> None:
    if handler is not None:
        handler(name, message)


def _plain_utf8(
    src: Source, on_problem: ProblemHandler | None, *, whole: bool = True
) -> bool | None:
    """True if `src` is an uncompressed UTF-8 text file polars can read itself.

    False sends it to the Python reader: compressed, or holding a CR, a NUL
    (a hole, stripped by `lines_frame`), bytes that are not UTF-8, or a line
    longer than `LINE_LIMIT` (polars would hold it whole). None when the file
    cannot be used at all (reported through `on_problem`). With `whole`
    False only the head is judged (compression, a hole, binary content): the
    C road checks the rest of the text as it cuts it.
    """
    if src.path is None or src.skip is not None or not src.path.is_file():
        return False  # the Python reader reports a skipped input
    try:
        with src.path.open("rb") as f:
            head = f.read(SAMPLE_BYTES)
            if any(head.startswith(magic) for magic, _ in MAGIC):
                return False
            if head.startswith(b"\x00"):
                return False  # judged after the hole, by the Python reader
            if binary_throughout(src.path, head):
                _report(on_problem, src.name, SKIPPED_BINARY)
                return None
            if not whole:
                return True
            f.seek(0)
            tail = b""
            gap = 0  # bytes since the last newline
            while chunk := f.read(CHUNK_BYTES):
                # polars drops the CR of CRLF: offsets would drift
                if b"\r" in chunk or b"\x00" in chunk:
                    return False
                after = _line_gap(chunk, gap)
                if after is None:
                    return False
                gap = after
                data = tail + chunk
                if data.isascii():
                    tail = b""
                    continue
                # keep a possibly split multi-byte character for the next round
                cut = len(data) - 3 if len(chunk) == CHUNK_BYTES else len(data)
                while cut > 0 and (data[cut - 1] & 0xC0) == 0x80:
                    cut -= 1
                if cut > 0 and data[cut - 1] >= 0xC0:
                    cut -= 1
                try:
                    data[:cut].decode("utf-8")
                except UnicodeDecodeError:
                    return False
                tail = data[cut:]
            return not tail or is_utf8(tail)
    except OSError as exc:
        _report(on_problem, src.name, f"{CANNOT_OPEN}: {describe(exc)}")
        return None


def _judged(
    sources: Sequence[Source], on_problem: ProblemHandler | None, *, whole: bool = True
) -> list[bool | None]:
    """`_plain_utf8` of each source (a span: False, judged when it was cut).

    Several files are judged side by side, on as many threads as polars has
    (the reads overlap: eight files of 43 MB in 0.06 s against 0.16 s one
    after another); their problems are reported in the inputs' order.
    """

    def judge(src: Source) -> tuple[bool | None, list[tuple[str, str]]]:
        if src.span is not None:
            return False, []
        problems: list[tuple[str, str]] = []
        fast = _plain_utf8(src, lambda *p: problems.append(p), whole=whole)
        return fast, problems

    workers = min(len(sources), pl.thread_pool_size())
    if workers > 1:
        with ThreadPoolExecutor(workers, thread_name_prefix="pplog-judge") as pool:
            results = list(pool.map(judge, sources))
    else:
        results = [judge(src) for src in sources]
    for _, problems in results:
        for name, message in problems:
            _report(on_problem, name, message)
    return [fast for fast, _ in results]


def _line_gap(chunk: bytes, gap: int) -> int | None:
    """Bytes since the last newline after `chunk`; None past `LINE_LIMIT`."""
    last = chunk.rfind(b"\n")
    if last < 0:
        gap += len(chunk)
        return None if gap > LINE_LIMIT else gap
    if long_line(chunk, 0, last + 1, gap, LINE_LIMIT) is not None:
        return None
    gap = len(chunk) - last - 1
    return None if gap > LINE_LIMIT else gap


# polars' streaming engine takes time in the square of the inputs of a union
# (1,000 one-line scans: 9 s; 300: 1 s; 100: 0.15 s), so where more than
# `MANY_INPUTS` sources would each be a frame of their own, the plain files
# under `GROUPED_BYTES` are read by the Python reader instead, neighbours in
# one frame (8 MB: 25 ms against polars' 10-18 ms). A directory of 3,600
# small vhost logs: 229 s -> 1.8 s (benchmarks/RESULTS.md).
MANY_INPUTS = 32
GROUPED_BYTES = 16 << 20


def _polars_lines(src: Source) -> pl.LazyFrame:
    """polars' own multi-threaded line reader, for plain UTF-8 files.

    Such a file holds no CR (`_plain_utf8`); the strips are kept anyway:
    without them the whole summary of 2M elb_log lines measured 4-10%
    slower (alternating runs; why was not established).
    """
    assert src.path is not None
    length = pl.col(TEXT).str.len_bytes().cast(pl.UInt64)
    return (
        pl.scan_lines(src.path, name=TEXT, glob=False)
        .with_row_index(LINE, offset=1)
        .select(
            pl.lit(path_name(src.name), pl.String).alias(SOURCE),
            pl.col(LINE).cast(pl.UInt64),
            ((length + 1).cum_sum() - length - 1).alias(OFFSET),
            pl.col(TEXT).str.strip_suffix("\r").str.strip_prefix("\ufeff"),
            pl.lit(False).alias(TOO_LONG),  # noqa: FBT003 - lines are never cut here
        )
    )


def scan_lines(
    sources: Sequence[Source],
    *,
    on_problem: ProblemHandler | None = None,
    on_progress: ProgressHandler | None = None,
    split: LogFormat | None = None,
    policy: ProxyPolicy | None = None,
    blocks: LogFormat | None = None,
) -> tuple[pl.LazyFrame, bool]:
    """A LazyFrame of every line of every source, read in bounded batches.

    Plain UTF-8 files go through polars' own line reader; compressed files,
    URLs, stdin and files with bytes that are not UTF-8 through a Python reader that
    keeps such bytes as `\\xHH`, and so do the spans `split_source` cuts
    (with the whole file's line numbers and offsets). The flag is True when
    every source is read by polars itself, so that several queries over the
    frame share one scan; otherwise each query re-reads (stdin: spool the
    frame before querying).

    With `split`, plain files are read and split in C for that format where
    it applies (`pplog._fastsplit.scan`): the frame also has the C split's
    columns, which `parse` with the same format takes (null for the lines
    the other readers gave). Only their heads are judged here; the C road
    checks the rest block by block, and hands the Python reader the file
    from the first block that is not plain UTF-8 text; so are spans (a
    `--jobs` part, a part of a file whose log_format changed), from their
    offset. With `policy` too,
    the C code makes the trust decisions it can as it splits the lines
    (`_fastsplit.realip`), which `clientip.attribute` then takes.

    With `blocks`, the Python reader's blocks of plain text (a compressed
    file's, stdin's, a URL's) are split in C for that format as they are
    read (`_fastsplit.block_frame`), with `policy`'s trust decisions: the
    road of a plain file's lines. 2M elb_log lines gzipped, summarized:
    3.1-3.4 s -> 2.4-2.7 s, the JSON the same. Byte ranges (`split_source`)
    are not (the Python reader's blocks keep their lines frames).
    """
    frames: list[pl.LazyFrame] = []
    python_sources: list[Source] = []
    native = True

    c_sources: list[Source] = []  # many plain files split in C: one frame

    def flush() -> None:
        if python_sources:
            # byte ranges keep their lines frames (`split_source`'s spans)
            whole = all(src.span is None for src in python_sources)
            frames.append(
                _python_lines(
                    list(python_sources),
                    on_problem,
                    on_progress,
                    blocks if whole else None,
                    policy,
                )
            )
            python_sources.clear()
        if c_sources:
            files = [(src.path, src.name) for src in c_sources if src.path is not None]
            c_frame = _fastsplit.scan_files(
                files,
                split,
                on_problem=on_problem,
                on_progress=on_progress,
                policy=policy,
            )
            assert c_frame is not None  # the C road applies (`whole` is False)
            frames.append(c_frame)
            c_sources.clear()

    def in_c(src: Source) -> pl.LazyFrame | None:
        """A plain file's lines (a span's) split in C (`_fastsplit.scan`)."""
        assert src.path is not None
        return _fastsplit.scan(
            src.path,
            src.name,
            split,
            on_problem=on_problem,
            on_progress=on_progress,
            policy=policy,
            span=src.span,
        )

    def to_python(src: Source) -> None:  # after the files split in C before it
        if c_sources:
            flush()
        python_sources.append(src)

    # the C road judges each block of text as it cuts it: the heads only here
    whole = not _fastsplit.applies(split)
    judged = _judged(sources, on_problem, whole=whole)
    grouped = len(sources) > MANY_INPUTS  # small files read side by side
    for src, fast in zip(sources, judged, strict=True):
        if src.span is not None:  # read its lines only, in C where it applies
            c_span = None if whole or src.path is None else in_c(src)
            native = False
            if c_span is None:
                to_python(src)
            else:
                flush()
                frames.append(c_span)
            continue
        if fast is None:
            continue
        if fast and grouped and not whole:  # each file's ranges still in parallel
            if python_sources:
                flush()
            c_sources.append(src)
        elif fast and grouped and src.size < GROUPED_BYTES:
            to_python(src)
            native = False
        elif fast:
            flush()
            assert src.path is not None
            # with `split`, cut and split in C where it applies
            c_split = None if whole else in_c(src)
            if c_split is None and path_name(src.path) != os.fspath(src.path):
                # polars opens paths given as text only: a name that is not
                # UTF-8 is read by the Python reader (the C road opens it)
                python_sources.append(src)
                native = False
                continue
            frames.append(_polars_lines(src) if c_split is None else c_split)
        else:
            to_python(src)
            native = False
    flush()
    if not frames:
        return pl.LazyFrame(schema=LINES_SCHEMA), True
    if len(frames) == 1:
        return frames[0], native
    # the C split's columns are null where polars or Python read the lines
    same = all(f.collect_schema() == frames[0].collect_schema() for f in frames)
    return pl.concat(frames, how="vertical" if same else "diagonal"), native


def split_source(
    src: Source,
    parts: int,
    *,
    min_bytes: int = 64 << 20,
    on_problem: ProblemHandler | None = None,
) -> list[Source]:
    """Cut a large plain file at line boundaries into spans read apart.

    At most `parts` spans of at least `min_bytes` each, about equal in size,
    that tile the file; each reads as its share of the whole file's lines
    (same `source`, line numbers and offsets), so the spans can be mapped
    over several processes. Only an uncompressed regular file that polars
    could read itself (`scan_lines`' check, which reads the whole file) is
    cut; anything else comes back as `[src]`, and a file that check finds
    unusable as `[]`, reported through `on_problem` as `scan_lines` does.
    The spans cover the file as it is now: lines written later are in none.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp, "access.log")
    ...     _ = path.write_bytes(b"a\\nbb\\nccc\\ndddd\\n")
    ...     [s.span for s in split_source(Source("a", path), 3, min_bytes=4)]
    [(0, 5), (5, 9), (9, 14)]
    """
    if parts <= 1 or src.path is None or src.span is not None:
        return [src]
    try:
        if not src.path.is_file():
            return [src]
        size = src.path.stat().st_size
    except OSError:
        return [src]  # `scan_lines` reports it
    n = min(parts, size // max(min_bytes, 1))
    if n <= 1:
        return [src]
    fast = _plain_utf8(src, on_problem)
    if fast is None:
        return []
    if not fast:
        return [src]
    try:
        with src.path.open("rb") as f:
            while True:  # fewer parts when cutting at lines leaves one too small
                bounds = [0, *_line_cuts(f, size, n), size]
                spans = list(pairwise(bounds))
                if n <= 2 or all(b - a >= min_bytes for a, b in spans):
                    break
                n -= 1
    except OSError as exc:
        _report(on_problem, src.name, f"{CANNOT_OPEN}: {describe(exc)}")
        return []
    if len(spans) <= 1 or any(b - a < min_bytes for a, b in spans):
        return [src]
    return [Source(src.name, src.path, span) for span in spans]


def _line_cuts(f: BinaryIO, size: int, parts: int) -> list[int]:
    """The line starts at or after size*k/parts (k = 1 .. parts-1), each once."""
    cuts: list[int] = []
    for k in range(1, parts):
        at = size * k // parts
        f.seek(at - 1)  # a line starts at `at` if the byte before is LF
        while piece := f.read(1 << 16):
            nl = piece.find(b"\n")
            if nl >= 0:
                cut = at + nl
                if cut < size and (not cuts or cut > cuts[-1]):
                    cuts.append(cut)
                break
            at += len(piece)
    return cuts


def _python_lines(
    sources: Sequence[Source],
    on_problem: ProblemHandler | None,
    on_progress: ProgressHandler | None,
    blocks: LogFormat | None = None,
    policy: ProxyPolicy | None = None,
) -> pl.LazyFrame:
    """The lines of `sources` read by the Python reader; with `blocks`, each
    block of plain text over `SMALL_BLOCK` split in C for that format as it
    is read (`_fastsplit.block_frame`): a compressed log's lines take the
    road a plain file's take. Smaller blocks (a small file: many vhost
    logs) and those the C split refuses keep their lines frames, given the
    C split's columns, null, once per batch: split in C one by one, 3,600
    files of 5 lines took 1.6-2.2 s to summarize against 1.5 s."""
    schema, frame = LINES_SCHEMA, None
    if _fastsplit.applies(blocks):
        assert blocks is not None
        fmt = blocks
        schema = _fastsplit.lines_schema(fmt, policy)

        def frame(block: Block, name: str) -> pl.DataFrame:
            if len(block.data) > SMALL_BLOCK and not block.hole and not block.too_long:
                split = _fastsplit.block_frame(
                    name, block.data, block.line, block.offset, fmt, policy=policy
                )
                if split is not None:
                    return split
            return block.frame(name)  # its C columns added by `typed`

    def typed(held: list[pl.DataFrame]) -> list[pl.DataFrame]:
        """`held` with the lines frames among them (runs of them together)
        given `schema`'s columns, null."""
        out: list[pl.DataFrame] = []
        run: list[pl.DataFrame] = []
        for df in [*held, None]:
            if df is not None and df.width != len(schema):
                run.append(df)
                continue
            if run:
                lines = run[0] if len(run) == 1 else pl.concat(run, rechunk=False)
                out.append(
                    lines.select(
                        pl.col(c) if c in lines.columns else pl.lit(None, t).alias(c)
                        for c, t in schema.items()
                    )
                )
                run = []
            if df is not None:
                out.append(df)
        return out

    def generate(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        batches = iter_batches(
            sources,
            on_problem=on_problem,
            on_progress=on_progress,
            max_lines=n_rows,
            frame=frame,
            # blocks split in C as the C road's ranges are (each frame keeps
            # its block): 8 MiB held 370-465 MiB for a gzipped 2M-line log
            # against 320-390, in the same time
            chunk_bytes=CHUNK_BYTES if frame is None else _fastsplit.BLOCK_BYTES,
        )

        def out(held: list[pl.DataFrame]) -> pl.DataFrame:
            if schema is not LINES_SCHEMA:
                held = typed(held)
            batch = together(held)
            if with_columns is not None:
                batch = batch.select(with_columns)
            if predicate is not None:
                batch = batch.filter(predicate)
            return batch

        # small files' batches go on together (`_grouped`)
        yield from map(out, grouped(batches))

    return register_io_source(generate, schema=schema)


def read_head(source: Source, n: int) -> list[str]:
    """The first `n` lines of a source (for format detection), or fewer.

    A spanned source is read from its span's start; a URL is read until
    `n` lines (its first block, as fsspec fetches it).

    For stdin this peeks at what is buffered without consuming it, so the
    run still reads every line; compressed stdin gives the lines that the
    buffered bytes decompress to. A pipe named by path (`<(...)`, a FIFO)
    is opened once: the bytes read here are kept and handed to the run's
    read first (`pipe_head`). A FIFO a glob matched gives none (it is not
    opened).
    """
    if source.skip is not None:
        return []
    if source.is_stdin:
        stream = sys.stdin.buffer
        if not hasattr(stream, "peek"):
            return []
        return _head_lines(stream.peek(1 << 16), n)
    if source.pipe and source.span is None:
        assert source.path is not None
        try:
            return _head_lines(pipe_head(source.path, n), n)
        except OSError:
            return []  # the read reports it
    out: list[str] = []
    batches = (
        _iter_source(source, None, None, 1 << 16)
        if source.span is None
        else _iter_span(source, None, None, 1 << 16, numbered=False)
    )
    for batch in batches:
        out.extend(batch.get_column(TEXT).head(n - len(out)).to_list())
        if len(out) >= n:
            break
    return out


def _head_lines(head: bytes, n: int) -> list[str]:
    """The first `n` complete lines of a stream's first bytes (decompressed
    when they are compressed)."""
    kind = compression_of(head)
    if kind is not None:
        head = inflated_prefix(head, kind)
    complete = head[: head.rfind(b"\n") + 1] if b"\n" in head else head
    return decode_bytes(complete).splitlines()[:n]


def lines_at(source: Source, start: int, size: int) -> list[tuple[int, str]]:
    """The complete lines that start in `size` bytes of a plain file from
    byte `start` (the first at `start` itself only when a line starts
    there), each with the offset it starts at: format detection looking
    inside a file without reading all of it. Empty when the bytes cannot be
    read (the run's read reports that)."""
    if source.path is None or source.skip is not None:
        return []
    try:
        with source.path.open("rb") as f:
            before = 0
            if start > 0:
                f.seek(start - 1)
                before = 1
            data = f.read(size + before + (64 << 10))  # the last line's rest
    except OSError:
        return []
    at = 0 if start == 0 else data.find(b"\n") + 1
    if start > 0 and at == 0:
        return []
    out: list[tuple[int, str]] = []
    limit = size + before
    while at < limit:
        end = data.find(b"\n", at)
        if end < 0:
            break
        # a CR before the newline is dropped, as the readers drop it
        text = data[at : end - 1] if data[end - 1 : end] == b"\r" else data[at:end]
        out.append((start - before + at, decode_bytes(text)))
        at = end + 1
    return out


def last_lines_inflated(source: Source, size: int) -> list[str]:
    """The complete lines in the last `size` decompressed bytes of a
    compressed file: its whole content is inflated, a piece at a time, and
    only its end kept. Empty when it is not a compressed file on disk; the
    lines before any damage when it is damaged (the run's read reports
    that)."""
    if source.path is None or source.span is not None or source.pipe or source.skip:
        return []
    tail, cut = b"", False
    try:
        if compression(source.path) is None:
            return []
        stream, counter = open_stream(source)
        try:
            while piece := stream.read(1 << 20):
                tail += piece
                if len(tail) > size:
                    tail, cut = tail[-size:], True
        finally:
            counter.close()
    except READ_ERRORS:
        pass  # what came before the damage
    if cut:  # the first line there began before it
        tail = tail[tail.find(b"\n") + 1 :] if b"\n" in tail else b""
    tail = tail[: tail.rfind(b"\n") + 1]
    lines = decode_bytes(tail).split("\n")[:-1]
    return [x.removesuffix("\r") for x in lines if x.strip()]


def readable_apart(source: Source) -> bool:
    """Whether `source`'s byte ranges can be read apart (`Source.span`): an
    uncompressed file whose head is text and no hole. Only its head is
    read: a span is read by the Python reader, or in C, which checks its
    text as it cuts it."""
    return bool(_plain_utf8(source, None, whole=False))


__all__ = [
    "BINARY_SHARE",
    "Block",
    "CHUNK_BYTES",
    "Chunk",
    "DamagedError",
    "Follower",
    "LINES_SCHEMA",
    "LINE_LIMIT",
    "LineSplitter",
    "OUT_PIECE",
    "ProblemHandler",
    "ProgressHandler",
    "RAW_KEPT",
    "READ_ERRORS",
    "SAMPLE_BYTES",
    "SKIPPED_BINARY",
    "SKIPPED_FIFO",
    "STDIN",
    "STDIN_NAME",
    "Source",
    "SourceError",
    "TOO_LONG",
    "TrailingDataError",
    "TruncatedError",
    "ZSTD_SLICE",
    "binary_throughout",
    "compression",
    "compression_of",
    "decode_bytes",
    "describe",
    "expand",
    "is_url",
    "iter_batches",
    "lines_at",
    "lines_frame",
    "looks_binary",
    "matched_files",
    "not_a_log",
    "open_stream",
    "pattern_paths",
    "read_head",
    "readable_apart",
    "path_name",
    "path_list",
    "path_of_name",
    "rotation_key",
    "shell_word",
    "scan_lines",
    "split_source",
]
