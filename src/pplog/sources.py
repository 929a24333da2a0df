"""Turn paths, globs, directories and stdin into batches of complete lines.

Every batch is a DataFrame with the columns `source`, `line` (1-based),
`offset` (byte offset of the line in its decompressed file) and the line text.
Compression is recognised by magic bytes, not by file name. Bytes that are not
valid UTF-8 are kept as `\\xHH` text, the way nginx escapes them, so no line is
ever lost to an encoding error.
"""

from __future__ import annotations

import bz2
import codecs
import glob
import lzma
import os
import re
import stat
import sys
import zlib
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import polars as pl
import zstandard
from polars.io.plugins import register_io_source

from pplog.errors import SourceError
from pplog.schema import LINE, OFFSET, SOURCE, TEXT

STDIN = "-"
CHUNK_BYTES = 8 << 20
SAMPLE_BYTES = 4096  # the head `looks_binary` judges, after a leading NUL hole
BINARY_SHARE = 0.3  # share of non-text bytes above which a sample is binary
LINE_LIMIT = 1 << 20  # a line longer than this is cut: one `too_long` reject
RAW_KEPT = 8192  # bytes of such a line kept as its text
TOO_LONG = "line_too_long"  # lines-frame column marking those lines

LINES_SCHEMA = pl.Schema(
    {
        SOURCE: pl.String,
        LINE: pl.UInt64,
        OFFSET: pl.UInt64,
        TEXT: pl.String,
        TOO_LONG: pl.Boolean,
    }
)

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)

# A run of NULs this long is a hole (a crash, logrotate `copytruncate`), not data.
_HOLE = re.compile(rb"\x00{16,}")
_NOT_NUL = re.compile(rb"[^\x00]")
# Control bytes that text does not hold (tab, LF, VT, FF, CR, BS, ESC do);
# NULs outside holes count too.
_CONTROL = bytes(b for b in range(32) if b not in b"\t\n\v\f\r\b\x1b") + b"\x7f"
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # bytes decoded by `surrogateescape`
_TEXT_LINE = re.compile(rb"(?:^|\n)[\t\x20-\x7e]{16}")  # a line that starts as text
SKIPPED_BINARY = "skipped: binary data, not a text log"  # the one warning

ProblemHandler = Callable[[str, str], None]
# (bytes just read from disk, total bytes to read or None when unknown)
ProgressHandler = Callable[[int, int | None], None]


def compression(path: Path) -> str | None:
    """`gzip`, `bz2`, `xz` or `zstd` by the file's magic bytes; None for plain."""
    with path.open("rb") as f:
        head = f.read(8)
    return next((k for magic, k in _MAGIC if head.startswith(magic)), None)


def looks_binary(sample: bytes) -> bool:
    """Whether `sample` (the head of a file) is binary data rather than text.

    Binary means that more than `BINARY_SHARE` of its bytes are not text
    (control bytes other than tab, LF, VT, FF, CR, backspace and ESC, and
    bytes that are not valid UTF-8) and that no line in it starts with 16
    printable ASCII characters. Runs of 16 or more NULs are left out: they
    are the hole a crash or logrotate `copytruncate` leaves before good lines.
    Lines that start as text make a log even when raw bytes fill them: nginx
    before 1.23.2 writes what a client sent to a `proxy_protocol` listener
    (a TLS handshake, say) raw into its error log. Take the sample after a
    leading hole (`SAMPLE_BYTES` of the decompressed content); a sample of
    NULs only is not binary.

    Examples
    --------
    >>> looks_binary(b"\\x00" * 5000 + b'10.0.0.1 - - "GET / HTTP/1.1" 200\\n')
    False
    >>> looks_binary(bytes(range(256)))
    True
    """
    data = _HOLE.sub(b"", sample)
    if not data:
        return False
    control = len(data) - len(data.translate(None, _CONTROL))
    # a character cut by the end of the sample is held back, not counted
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    invalid = len(_NOT_UTF8.findall(decoder.decode(data, final=False)))
    if control + invalid <= BINARY_SHARE * len(data):
        return False
    return _TEXT_LINE.search(data) is None


def _xhh(err: UnicodeError) -> tuple[str, int]:
    assert isinstance(err, UnicodeDecodeError)
    bad = err.object[err.start : err.end]
    return "".join(f"\\x{b:02X}" for b in bad), err.end


codecs.register_error("pplog-xhh", _xhh)


def decode_bytes(data: bytes) -> str:
    """Decode UTF-8, writing undecodable bytes as nginx-style `\\xHH`."""
    return data.decode("utf-8", "pplog-xhh")


@dataclass(frozen=True)
class Source:
    """One input: a file path or stdin."""

    name: str
    path: Path | None  # None for stdin

    @property
    def size(self) -> int:
        """Bytes on disk (0 for stdin or an unreadable file)."""
        if self.path is None:
            return 0
        try:
            return self.path.stat().st_size
        except OSError:
            return 0


def rotation_key(path: Path) -> tuple[str, int, str]:
    """Sort key putting older rotations first.

    access.log.2.gz is older than access.log.1, which is older than access.log.
    """
    m = re.match(r"^(.*?)(?:\.(\d+))?(\.(?:gz|bz2|xz|zst))?$", path.name)
    base, num = (m.group(1), int(m.group(2))) if m and m.group(2) else (path.name, 0)
    return (str(path.parent / base), -num, path.name)


def expand(paths: Sequence[str | os.PathLike[str]]) -> list[Source]:
    """Resolve paths, globs and directories into sources, oldest rotation first.

    Raises
    ------
    SourceError
        When a path does not exist or a glob or directory matches no file.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    out: list[Source] = []
    for raw in paths:
        text = os.fspath(raw)
        if not text.strip():
            msg = "an empty path was given; pass a log file, a glob, a directory or `-`"
            raise SourceError(msg)
        if text == STDIN:
            out.append(Source("<stdin>", None))
            continue
        path = Path(text)
        if path.is_dir():
            found = sorted(
                (
                    p
                    for p in path.iterdir()
                    if p.is_file() and not p.name.startswith(".")
                ),
                key=rotation_key,
            )
            if not found:
                msg = f"directory `{text}` holds no log files"
                raise SourceError(msg)
            out.extend(Source(str(p), p) for p in found)
        elif path.exists():
            out.append(Source(text, path))
        elif glob.has_magic(text):
            matches = sorted((Path(p) for p in glob.glob(text)), key=rotation_key)
            files = [p for p in matches if p.is_file()]
            if not files:
                msg = f"no file matches `{text}`"
                raise SourceError(msg)
            out.extend(Source(str(p), p) for p in files)
        else:
            msg = f"no such file: `{text}`"
            raise SourceError(msg)
    if not out:
        msg = "no input given; pass a log file, a glob, a directory or `-` for stdin"
        raise SourceError(msg)
    return out


class _CountingReader:
    """Wraps a raw binary file and counts the bytes taken from it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()


class TruncatedError(Exception):
    """Compressed data ended before its end marker."""


def _decompressor(kind: str) -> Any:
    if kind == "gzip":
        return zlib.decompressobj(wbits=47)  # gzip header, auto-detected
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    return zstandard.ZstdDecompressor().decompressobj()


OUT_PIECE = 1 << 20  # the most one decompression step may produce
# zstd input fed per step: a 4-byte block can stand for 128 KiB, so one step
# gives at most 32 MiB (and about 10 KiB on a log)
ZSTD_SLICE = 1 << 10


def _decompress(raw: IO[bytes], kind: str, piece: int = 1 << 16) -> Iterator[bytes]:
    """Decompress `raw` piece by piece, across concatenated members.

    Everything that decompressed before damage is yielded; then the error
    is raised, so a truncated file loses only what is truly missing. No
    piece is much larger than `OUT_PIECE`, however well the input
    compresses (a 131 KB zstd file can hold a 4 GB line).
    """
    dec = _decompressor(kind)
    started = False
    while True:
        data = raw.read(piece)
        if not data:
            if started and not getattr(dec, "eof", True):
                raise TruncatedError
            return
        while data:
            started = True
            rest = yield from _inflate(dec, data)
            if rest is None:  # all taken, the member goes on
                break
            dec = _decompressor(kind)  # a member ended: another may follow
            data = rest if rest.strip(b"\x00") else b""
            started = bool(data)


def _inflate(dec: Any, data: bytes) -> Generator[bytes, None, bytes | None]:  # noqa: ANN401
    """What `data` decompresses to, in pieces of about `OUT_PIECE` at most.

    Returns None when every byte was taken and the member goes on, else the
    bytes after the member's end. zlib, bz2 and lzma take a `max_length` and
    keep the rest of the input; zstd's streaming object takes none, so it is
    fed `ZSTD_SLICE` bytes at a time (a zstd block of 128 KiB can be 4
    bytes: 32,768 times its size).
    """
    if isinstance(dec, bz2.BZ2Decompressor | lzma.LZMADecompressor):
        out = dec.decompress(data, OUT_PIECE)
        while True:
            if out:
                yield out
            if dec.eof:
                return bytes(dec.unused_data)
            if dec.needs_input:
                return None
            out = dec.decompress(b"", OUT_PIECE)
    if isinstance(dec, type(zlib.decompressobj())):
        while True:
            out = dec.decompress(data, OUT_PIECE)
            if out:
                yield out
            if dec.eof:
                return bytes(dec.unused_data)
            data = dec.unconsumed_tail
            if not data and len(out) < OUT_PIECE:
                return None
    pending: list[bytes] = []  # zstd: small outputs joined into one piece
    size = 0
    for start in range(0, len(data), ZSTD_SLICE):
        out = dec.decompress(data[start : start + ZSTD_SLICE])
        pending.append(out)
        size += len(out)
        if dec.eof:
            yield b"".join(pending)
            return bytes(dec.unused_data) + data[start + ZSTD_SLICE :]
        if size >= OUT_PIECE:
            yield b"".join(pending)
            pending, size = [], 0
    if size:
        yield b"".join(pending)
    return None


class _Stream:
    """Chunks of decompressed bytes with a `read(n)` that returns at most n."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0  # bytes of `_buf` handed out: reads never copy the rest

    def read(self, n: int) -> bytes:
        if len(self._buf) - self._pos < n:  # refill: one copy of the pieces
            parts = [self._buf[self._pos :]]
            have = len(parts[0])
            while have < n:
                try:
                    chunk = next(self._chunks)
                except StopIteration:
                    break
                except BaseException:
                    if have:  # hand out what we have; fail on the next read
                        self._buf, self._pos = b"", 0
                        self._chunks = _raise_later(sys.exc_info()[1])
                        return b"".join(parts)
                    raise
                parts.append(chunk)
                have += len(chunk)
            self._buf, self._pos = b"".join(parts), 0
        out = self._buf[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def close(self) -> None:
        pass


def _raise_later(exc: BaseException | None) -> Iterator[bytes]:
    assert exc is not None
    raise exc
    yield b""  # pragma: no cover - makes this a generator


def open_stream(source: Source) -> tuple[Any, _CountingReader]:
    """The decompressed byte stream of `source` (by magic bytes), and the raw
    reader under it (its `count` is the on-disk bytes consumed). `read(n)` on
    the stream raises what the decompressor raised, after handing out every
    byte decoded before the damage."""
    if source.path is None:
        raw: IO[bytes] = sys.stdin.buffer
    else:
        raw = source.path.open("rb")  # noqa: SIM115 - closed by the caller
    counter = _CountingReader(raw)
    head = raw.peek(8)[:8] if hasattr(raw, "peek") else b""
    kind = next((k for magic, k in _MAGIC if head.startswith(magic)), None)
    if kind is None:
        return counter, counter
    return _Stream(_decompress(counter, kind)), counter  # type: ignore[arg-type]


READ_ERRORS: tuple[type[BaseException], ...] = (
    zstandard.ZstdError,
    OSError,
    EOFError,
    TruncatedError,
    zlib.error,
    lzma.LZMAError,
    ValueError,
)


def lines_frame(
    source: str, data: bytes, first_line: int, first_offset: int, *, hole: int = 0
) -> pl.DataFrame:
    """Split a block of complete lines (ending in LF) into a batch frame.

    `hole` NUL bytes that the block leaves out follow its first byte (see
    `LineSplitter`): the first line starts at `first_offset` and every later
    line `hole` bytes further on. A run of NULs that starts a line and is
    followed by text is the hole before that line, not part of it, and is
    stripped; a line of NULs only keeps them.
    """
    body = data[:-1] if data.endswith(b"\n") else data
    if body.isascii() and b"\r" not in body:
        # polars splits lines in parallel; safe when every byte is a character
        lines = pl.scan_lines(data).collect().to_series().alias(TEXT)
        lengths = lines.str.len_bytes().cast(pl.UInt64)
    else:
        text = decode_bytes(body)
        lines = pl.Series(TEXT, [text]).str.split("\n").explode()
        if body.isascii():  # characters are bytes
            lengths = lines.str.len_bytes().cast(pl.UInt64)
        else:  # one character per byte: the lengths in bytes
            octets = pl.Series([body.decode("latin-1")]).str.split("\n").explode()
            lengths = octets.str.len_chars().cast(pl.UInt64)
    n = len(lines)
    offsets = (lengths + 1).cum_sum().shift(1, fill_value=0) + first_offset + hole
    if hole and n:
        offsets = offsets.scatter(0, first_offset)
    frame = pl.DataFrame(
        {
            SOURCE: pl.repeat(source, n, dtype=pl.String, eager=True),
            LINE: pl.int_range(first_line, first_line + n, dtype=pl.UInt64, eager=True),
            OFFSET: offsets,
            TEXT: lines.str.strip_suffix("\r").str.strip_prefix("\ufeff"),
            TOO_LONG: pl.repeat(False, n, dtype=pl.Boolean, eager=True),  # noqa: FBT003
        }
    )
    if b"\x00" in data:
        line = pl.col(TEXT)
        stripped = line.str.strip_chars_start("\x00")
        frame = frame.with_columns(
            pl.when(stripped == "").then(line).otherwise(stripped).alias(TEXT)
        )
    return frame


@dataclass(frozen=True)
class Block:
    """Complete lines cut from a stream, or what is kept of one too-long line.

    `size` is the stream bytes the block stands for: `data` plus the `hole`
    NUL bytes left out after its first byte, or the whole length of a line
    cut to its first `RAW_KEPT` bytes (`too_long`). `tail` holds the last
    bytes of those, when the `LineSplitter` was asked for them.
    """

    data: bytes
    line: int  # number of the first line (1-based)
    offset: int  # byte offset of the first line
    size: int
    hole: int = 0
    too_long: bool = False
    tail: bytes = b""

    def frame(self, source: str) -> pl.DataFrame:
        """The lines as a batch frame (`lines_frame`); a cut line is marked."""
        frame = lines_frame(source, self.data, self.line, self.offset, hole=self.hole)
        if self.too_long:
            frame = frame.head(1).with_columns(pl.lit(True).alias(TOO_LONG))  # noqa: FBT003
        return frame


class LineSplitter:
    """Cut a byte stream into blocks of complete lines, in linear time.

    `feed` takes the stream piece by piece; only the unfinished last line is
    held, and only new bytes are searched for its end. A line longer than
    `limit` bytes is not held: its first `kept` bytes become one `too_long`
    block and the rest is skipped to its newline. A run of NULs that starts
    a line (the hole a crash or `copytruncate` leaves) is counted, not held,
    and not counted against the limit, however long.
    """

    def __init__(
        self,
        offset: int = 0,
        line: int = 1,
        *,
        limit: int = LINE_LIMIT,
        kept: int = RAW_KEPT,
        tail_bytes: int = 0,
    ) -> None:
        self.offset = offset  # where the next block starts
        self.line = line
        self.limit = limit
        self.kept = kept
        self.tail_bytes = tail_bytes
        self._rest = bytearray()  # the unfinished line, without its hole
        self._hole = 0  # NULs left out after the first byte of `_rest`
        self._blank = True  # `_rest` holds NULs only (or nothing)
        self._marker = False  # `_rest` starts with the NUL standing for a hole
        self._skipping = False  # inside a too-long line
        self._head = b""
        self._size = 0
        self._tail = b""

    @property
    def pending(self) -> int:
        """Bytes read but not yet in a block (the unfinished last line)."""
        return self._size if self._skipping else len(self._rest) + self._hole

    def feed(self, data: bytes) -> list[Block]:
        """The blocks completed by `data`, in stream order."""
        out: list[Block] = []
        pos, end = 0, len(data)
        while pos < end:
            if self._skipping:
                nl = data.find(b"\n", pos)
                stop = end if nl < 0 else nl + 1
                self._size += stop - pos
                self._tail = self._tail_after(self._tail, data, pos, stop)
                pos = stop
                if nl >= 0:
                    out.append(self._cut())
                continue
            if self._blank:
                pos = self._skip_hole(data, pos)
                if pos == end:
                    break
            last = data.rfind(b"\n", pos)
            held = len(self._rest) - self._marker  # the hole's NUL is no text
            if last < 0:  # the line goes on in the next piece
                if held + end - pos > self.limit:
                    self._start_cut(data, pos, end)
                else:
                    self._rest += memoryview(data)[pos:]
                    self._blank = False
                break
            long = _long_line(data, pos, last + 1, held, self.limit)
            if long is None:
                out.append(self._lines(data, pos, last + 1))
                pos = last + 1
                continue
            if long > pos:
                out.append(self._lines(data, pos, long))
                pos = long
            stop = data.index(b"\n", pos) + 1
            self._start_cut(data, pos, stop)
            out.append(self._cut())
            pos = stop
        return out

    def finish(self) -> list[Block]:
        """The last line, without its newline (the end of a finished stream)."""
        if self._skipping:
            return [self._cut()]
        if not self._rest:
            return []
        rest, self._rest = bytes(self._rest), bytearray()
        block = self._block(rest, len(rest) + self._hole, hole=self._hole)
        self.line += 1
        self._hole, self._blank, self._marker = 0, True, False
        return [block]

    def _skip_hole(self, data: bytes, pos: int) -> int:
        """Count the NULs at `pos` that continue a hole; where its text starts."""
        found = _NOT_NUL.search(data, pos)
        start = len(data) if found is None else found.start()
        if start > pos:
            if not self._rest:
                self._rest += b"\x00"  # one NUL stands for the hole
                self._hole += start - pos - 1
                self._marker = True
            else:
                self._hole += start - pos
        return start

    def _lines(self, data: bytes, pos: int, stop: int) -> Block:
        """The unfinished line and data[pos:stop] (ending in LF) as a block."""
        chunk = data[pos:stop]
        if self._rest:
            chunk = bytes(self._rest) + chunk
        block = self._block(chunk, len(chunk) + self._hole, hole=self._hole)
        self.line += chunk.count(b"\n")
        self._rest, self._hole, self._blank = bytearray(), 0, True
        self._marker = False
        return block

    def _start_cut(self, data: bytes, pos: int, stop: int) -> None:
        """Begin a too-long line: the unfinished line and data[pos:stop]."""
        rest = bytes(self._rest)
        # the NUL standing for a hole is no text
        text, kept = pos, rest[1:] if self._marker else rest
        if not kept:  # keep text, not the hole before it
            found = _NOT_NUL.search(data, pos, stop)
            text = stop if found is None else found.start()
        self._head = (kept + data[text : text + self.kept])[: self.kept]
        self._size = len(rest) + self._hole + stop - pos
        if self.tail_bytes:
            before = _with_hole(rest, self._hole, self.tail_bytes)
            self._tail = self._tail_after(before, data, pos, stop)
        self._rest, self._hole, self._blank = bytearray(), 0, True
        self._marker = False
        self._skipping = True

    def _cut(self) -> Block:
        """The too-long line read to its newline (or to the end) as a block."""
        block = self._block(self._head, self._size, too_long=True, tail=self._tail)
        self.line += 1
        self._skipping, self._head, self._size, self._tail = False, b"", 0, b""
        return block

    def _block(
        self,
        data: bytes,
        size: int,
        *,
        hole: int = 0,
        too_long: bool = False,
        tail: bytes | None = None,
    ) -> Block:
        if tail is None:
            tail = _with_hole(data, hole, self.tail_bytes) if self.tail_bytes else b""
        block = Block(data, self.line, self.offset, size, hole, too_long, tail)
        self.offset += size
        return block

    def _tail_after(self, before: bytes, data: bytes, pos: int, stop: int) -> bytes:
        n = self.tail_bytes
        return (before + data[max(pos, stop - n) : stop])[-n:] if n else b""


def _with_hole(data: bytes, hole: int, n: int) -> bytes:
    """The last `n` bytes of `data` with `hole` NULs put back after its first."""
    if len(data) > n or not hole:
        return data[-n:]
    return (data[:1] + b"\x00" * min(hole, n) + data[1:])[-n:]


def _long_line(data: bytes, start: int, stop: int, gap: int, limit: int) -> int | None:
    """Where the first line longer than `limit` starts in data[start:stop].

    data[start:stop] ends with LF; the first line already has `gap` bytes
    before `start`. A NUL run that starts a line does not count. Linear: each
    step searches back from the furthest place the line's end may be, and
    moves on by up to `limit` bytes.
    """
    line_start = pos = start
    budget = limit - gap
    while True:
        window = pos + budget + 1  # the line's LF must come before this
        if window >= stop:
            return None
        nl = data.rfind(b"\n", pos, window)
        if nl >= 0:
            line_start = pos = nl + 1
            budget = limit
            continue
        if pos == line_start and budget == limit:
            found = _NOT_NUL.search(data, pos, stop)
            text = stop if found is None else found.start()
            if text > pos:  # a hole starts the line: measure from its text
                pos = text
                continue
        return line_start


def iter_batches(
    sources: Sequence[Source],
    *,
    on_problem: ProblemHandler | None = None,
    on_progress: ProgressHandler | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    max_lines: int | None = None,
) -> Iterator[pl.DataFrame]:
    """Yield batches of complete lines from every source in turn.

    A source that cannot be read (missing, unreadable, truncated or corrupt
    compression, binary) is reported through `on_problem` with a one-line
    reason, and reading goes on with the next source. Lines read before the
    damage are kept. `on_progress` receives the number of on-disk bytes
    consumed since its last call and the total on-disk size (None for stdin).
    """
    remaining = max_lines
    sizes = [s.size for s in sources]
    total = None if any(s.path is None for s in sources) else sum(sizes)
    progress = None if on_progress is None else (lambda n: on_progress(n, total))
    for src in sources:
        for batch in _iter_source(src, on_problem, progress, chunk_bytes):
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
) -> Iterator[pl.DataFrame]:
    try:
        stream, counter = open_stream(src)
    except OSError as exc:
        _report(on_problem, src.name, f"cannot open: {exc.strerror or exc}")
        return
    try:
        if src.path is not None and _is_device(counter.raw):
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
                    found = _NOT_NUL.search(data)
                    start = len(data) if found is None else found.start()
                sample += data[start : start + SAMPLE_BYTES - len(sample)]
                if len(sample) >= SAMPLE_BYTES or not data:
                    judged = True
                    if looks_binary(bytes(sample)):
                        _report(on_problem, src.name, SKIPPED_BINARY)
                        return
            blocks = lines.feed(data) if data else lines.finish()
            held.extend(block.frame(src.name) for block in blocks)
            if judged:
                yield from held
                held.clear()
            if not data:
                return
    finally:
        if src.path is not None:  # never close the process's stdin
            counter.close()


def _is_device(raw: IO[bytes]) -> bool:
    """Whether `raw` is a character or block device (/dev/zero never ends)."""
    try:
        mode = os.fstat(raw.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


def describe(exc: BaseException) -> str:
    """A one-line reason for a read error (a truncated file, a permission)."""
    if isinstance(exc, EOFError | TruncatedError):
        return "compressed data ends early (truncated file)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _report(handler: ProblemHandler | None, name: str, message: str) -> None:
    if handler is not None:
        handler(name, message)


def _plain_utf8(src: Source, on_problem: ProblemHandler | None) -> bool | None:
    """True if `src` is an uncompressed UTF-8 text file polars can read itself.

    False sends it to the Python reader: compressed, or holding a CR, a NUL
    (a hole, stripped by `lines_frame`), bytes that are not UTF-8, or a line
    longer than `LINE_LIMIT` (polars would hold it whole). None when the file
    cannot be used at all (reported through `on_problem`).
    """
    if src.path is None or not src.path.is_file():
        return False
    try:
        with src.path.open("rb") as f:
            head = f.read(SAMPLE_BYTES)
            if any(head.startswith(magic) for magic, _ in _MAGIC):
                return False
            if head.startswith(b"\x00"):
                return False  # judged after the hole, by the Python reader
            if looks_binary(head):
                _report(on_problem, src.name, SKIPPED_BINARY)
                return None
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
            return not tail or _decodes(tail)
    except OSError as exc:
        _report(on_problem, src.name, f"cannot open: {exc.strerror or exc}")
        return None


def _line_gap(chunk: bytes, gap: int) -> int | None:
    """Bytes since the last newline after `chunk`; None past `LINE_LIMIT`."""
    last = chunk.rfind(b"\n")
    if last < 0:
        gap += len(chunk)
        return None if gap > LINE_LIMIT else gap
    if _long_line(chunk, 0, last + 1, gap, LINE_LIMIT) is not None:
        return None
    gap = len(chunk) - last - 1
    return None if gap > LINE_LIMIT else gap


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _polars_lines(src: Source) -> pl.LazyFrame:
    """polars' own multi-threaded line reader, for plain UTF-8 files."""
    assert src.path is not None
    length = pl.col(TEXT).str.len_bytes().cast(pl.UInt64)
    return (
        pl.scan_lines(src.path, name=TEXT)
        .with_row_index(LINE, offset=1)
        .select(
            pl.lit(src.name, pl.String).alias(SOURCE),
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
) -> tuple[pl.LazyFrame, bool]:
    """A LazyFrame of every line of every source, read in bounded batches.

    Plain UTF-8 files go through polars' own line reader; compressed files,
    stdin and files with bytes that are not UTF-8 through a Python reader that
    keeps such bytes as `\\xHH`. The flag is True when every source is read
    by polars itself, so that several queries over the frame share one scan;
    otherwise each query re-reads (stdin: spool the frame before querying).
    """
    frames: list[pl.LazyFrame] = []
    python_sources: list[Source] = []
    native = True

    def flush() -> None:
        if python_sources:
            frames.append(_python_lines(list(python_sources), on_problem, on_progress))
            python_sources.clear()

    for src in sources:
        fast = _plain_utf8(src, on_problem)
        if fast is None:
            continue
        if fast:
            flush()
            frames.append(_polars_lines(src))
        else:
            python_sources.append(src)
            native = False
    flush()
    if not frames:
        return pl.LazyFrame(schema=LINES_SCHEMA), True
    frame = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
    return frame, native


def _python_lines(
    sources: Sequence[Source],
    on_problem: ProblemHandler | None,
    on_progress: ProgressHandler | None,
) -> pl.LazyFrame:
    def generate(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        batches = iter_batches(
            sources, on_problem=on_problem, on_progress=on_progress, max_lines=n_rows
        )
        for batch in batches:
            if with_columns is not None:
                batch = batch.select(with_columns)
            if predicate is not None:
                batch = batch.filter(predicate)
            yield batch

    return register_io_source(generate, schema=LINES_SCHEMA)


def read_head(source: Source, n: int) -> list[str]:
    """The first `n` lines of a source (for format detection), or fewer.

    For stdin this peeks at what is buffered without consuming it, so the
    run still reads every line; compressed stdin is not peeked into.
    """
    if source.path is None:
        stream = sys.stdin.buffer
        if not hasattr(stream, "peek"):
            return []
        head = stream.peek(1 << 16)
        if any(head.startswith(magic) for magic, _ in _MAGIC):
            return []
        complete = head[: head.rfind(b"\n") + 1] if b"\n" in head else head
        return decode_bytes(complete).splitlines()[:n]
    out: list[str] = []
    for batch in _iter_source(source, None, None, 1 << 16):
        out.extend(batch.get_column(TEXT).head(n - len(out)).to_list())
        if len(out) >= n:
            break
    return out
