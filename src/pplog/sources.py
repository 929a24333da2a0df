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
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
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

LINES_SCHEMA = pl.Schema(
    {SOURCE: pl.String, LINE: pl.UInt64, OFFSET: pl.UInt64, TEXT: pl.String}
)

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)

ProblemHandler = Callable[[str, str], None]
# (bytes just read from disk, total bytes to read or None when unknown)
ProgressHandler = Callable[[int, int | None], None]


def compression(path: Path) -> str | None:
    """`gzip`, `bz2`, `xz` or `zstd` by the file's magic bytes; None for plain."""
    with path.open("rb") as f:
        head = f.read(8)
    return next((k for magic, k in _MAGIC if head.startswith(magic)), None)


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


def _decompress(raw: IO[bytes], kind: str, piece: int = 1 << 16) -> Iterator[bytes]:
    """Decompress `raw` piece by piece, across concatenated members.

    Everything that decompressed before damage is yielded; then the error
    is raised, so a truncated file loses only what is truly missing.
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
            out = dec.decompress(data)
            if out:
                yield out
            if getattr(dec, "eof", False):
                data = dec.unused_data
                if data.strip(b"\x00"):
                    dec = _decompressor(kind)
                    continue
                data = b""
                started = False
                dec = _decompressor(kind)
            else:
                data = b""


class _Stream:
    """Chunks of decompressed bytes with a `read(n)` that returns at most n."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def read(self, n: int) -> bytes:
        while len(self._buf) < n:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                break
            except BaseException:
                if self._buf:  # hand out what we have; fail on the next read
                    out, self._buf = self._buf, b""
                    self._chunks = _raise_later(sys.exc_info()[1])
                    return out
                raise
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
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
    source: str, data: bytes, first_line: int, first_offset: int
) -> pl.DataFrame:
    """Split a block of complete lines (ending in LF) into a batch frame."""
    body = data[:-1] if data.endswith(b"\n") else data
    if body.isascii() and b"\r" not in body:
        # polars splits lines in parallel; safe when every byte is a character
        lines = pl.scan_lines(data).collect().to_series().alias(TEXT)
        lengths = lines.str.len_bytes().cast(pl.UInt64)
    else:
        text = decode_bytes(body)
        lines = pl.Series(TEXT, [text]).str.split("\n").explode()
        if len(text) == len(body):  # pure ASCII: characters are bytes
            lengths = lines.str.len_bytes().cast(pl.UInt64)
        else:
            lengths = pl.Series([len(x) for x in body.split(b"\n")], dtype=pl.UInt64)
    n = len(lines)
    offsets = (lengths + 1).cum_sum().shift(1, fill_value=0) + first_offset
    return pl.DataFrame(
        {
            SOURCE: pl.repeat(source, n, dtype=pl.String, eager=True),
            LINE: pl.int_range(first_line, first_line + n, dtype=pl.UInt64, eager=True),
            OFFSET: offsets,
            TEXT: lines.str.strip_suffix("\r").str.strip_prefix("\ufeff"),
        }
    )


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
    line_no, offset, reported, rest = 1, 0, 0, b""
    first = True
    try:
        while True:
            try:
                data = stream.read(chunk_bytes)
            except READ_ERRORS as exc:
                _report(
                    on_problem,
                    src.name,
                    f"stopped at byte {offset + len(rest)}: {describe(exc)}",
                )
                data = b""
                if rest:
                    rest += b"\n"  # keep what was read before the damage
            if first and data:
                first = False
                if b"\x00" in data[:8192]:
                    _report(
                        on_problem, src.name, "skipped: binary data, not a text log"
                    )
                    return
            if on_progress is not None:
                on_progress(counter.count - reported)
                reported = counter.count
            if not data:
                if rest:
                    yield lines_frame(src.name, rest, line_no, offset)
                return
            data = rest + data
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data  # a line longer than a chunk: keep reading
                continue
            block, rest = data[: cut + 1], data[cut + 1 :]
            frame = lines_frame(src.name, block, line_no, offset)
            line_no += frame.height
            offset += len(block)
            yield frame
    finally:
        if src.path is not None:  # never close the process's stdin
            counter.close()


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

    None when the file cannot be used at all (reported through `on_problem`).
    """
    if src.path is None or not src.path.is_file():
        return False
    try:
        with src.path.open("rb") as f:
            head = f.read(8192)
            if any(head.startswith(magic) for magic, _ in _MAGIC):
                return False
            if b"\x00" in head:
                _report(on_problem, src.name, "skipped: binary data, not a text log")
                return None
            f.seek(0)
            tail = b""
            while chunk := f.read(CHUNK_BYTES):
                data = tail + chunk
                if b"\r" in data:  # polars drops the CR of CRLF: offsets would drift
                    return False
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
