"""Decompression by magic bytes, in bounded pieces; truncation reported after them."""

from __future__ import annotations

import bz2
import errno
import lzma
import os
import re
import stat
import sys
import zlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import zstandard

from pplog.sources._urls import open_url

if TYPE_CHECKING:
    from pplog.sources._paths import Source

MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    # a zstd skippable frame (magic 0x184D2A50 to 0x184D2A5F, little-endian),
    # which the zstd format lets start a file: `pzstd` puts one before each
    # frame, holding the frame's size
    *((bytes([0x50 + i]) + b"\x2a\x4d\x18", "zstd") for i in range(16)),
)


def compression_of(head: bytes) -> str | None:
    """`gzip`, `bz2`, `xz` or `zstd` by a stream's first bytes; None for plain."""
    return next((k for magic, k in MAGIC if head.startswith(magic)), None)


def compression(path: Path) -> str | None:
    """`gzip`, `bz2`, `xz` or `zstd` by the file's magic bytes; None for plain."""
    with path.open("rb") as f:
        head = f.read(8)
    return compression_of(head)


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


class TrailingDataError(Exception):
    """Bytes after the last complete member that start no other member
    (what `gzip -t` calls trailing garbage, and ignores): the content ends
    before them. `at` is where they begin in the file (None when not
    counted)."""

    def __init__(self, at: int | None) -> None:
        super().__init__(at)
        self.at = at


class DamagedError(Exception):
    """The compressed data does not decompress: a bit flipped on disk, a
    checksum that does not match. Unlike a truncated file (`TruncatedError`:
    a compressor may still be writing it), it never reads further: the
    content ends here. Everything decompressed before the damage was handed
    out first."""


# what the decompressors raise for data they cannot read (bz2: OSError
# "Invalid data stream"; its I/O errors come from the raw reader, not here)
_DAMAGE = (zlib.error, lzma.LZMAError, zstandard.ZstdError, OSError)


def _decompressor(kind: str) -> Any:
    if kind == "gzip":
        return zlib.decompressobj(wbits=47)  # gzip header, auto-detected
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    return zstandard.ZstdDecompressor().decompressobj()


_PREFIX_ERRORS = (OSError, EOFError, ValueError, LookupError)


def inflated_prefix(head: bytes, kind: str, limit: int = 1 << 20) -> bytes:
    """What the first bytes of a compressed stream decompress to (at most
    `limit` bytes; none when they do not decompress): the lines format
    detection reads from compressed stdin, which can only be peeked at.

    gzip and xz give lines from the first few KiB a pipe buffers; bz2 and
    zstd hold their output until a whole block (up to 900 KiB and 128 KiB)
    is in, so they give none (detection then says so)."""
    out = b""
    try:
        d = _decompressor(kind)
        if kind == "zstd":  # no output bound: fed in slices
            rest = head
            while rest and len(out) < limit:
                # across frames: a skippable frame (`pzstd`) gives nothing
                for i in range(0, len(rest), ZSTD_SLICE):
                    out += d.decompress(rest[i : i + ZSTD_SLICE])
                    if d.eof or len(out) >= limit:
                        rest = d.unused_data + rest[i + ZSTD_SLICE :]
                        break
                else:
                    rest = b""
                if d.eof:
                    d = _decompressor(kind)
        else:
            out = d.decompress(head, limit)
    except (*_PREFIX_ERRORS, zlib.error, lzma.LZMAError, zstandard.ZstdError):
        return out
    return out[:limit]


OUT_PIECE = 1 << 20  # the most one decompression step may produce
# zstd input fed per step: a 4-byte block can stand for 128 KiB, so one step
# gives at most 32 MiB (and about 10 KiB on a log)
ZSTD_SLICE = 1 << 10


def decompressed_pieces(
    raw: IO[bytes], kind: str, piece: int = 1 << 16
) -> Iterator[bytes]:
    """Decompress `raw` piece by piece, across concatenated members.

    Everything that decompressed before damage is yielded; then the error
    is raised, so a truncated file loses only what is truly missing. No
    piece is much larger than `OUT_PIECE`, however well the input
    compresses (a 131 KB zstd file can hold a 4 GB line). NUL bytes after
    a member are padding; other bytes after a member that do not start
    another one (gzip's "trailing garbage") end the content: every member
    before them is yielded, then `TrailingDataError` says where they begin.
    """
    dec = _decompressor(kind)
    started = False
    after: bytes | None = None  # bytes after a member's end, not judged yet
    while True:
        data = raw.read(piece)
        if after is not None:
            after = (after + data).lstrip(b"\x00")
            if not after:
                if data:
                    continue  # NUL padding so far
                return  # padding up to the end
            if data and len(after) < _MAGIC_LEN[kind]:
                continue  # too few bytes to judge yet
            if not _may_start_member(after, kind):
                count = getattr(raw, "count", None)
                at = None if count is None else count - len(after)
                raise TrailingDataError(at)
            data, after = after, None
            dec, started = _decompressor(kind), False
        if not data:
            if started and not getattr(dec, "eof", True):
                raise TruncatedError
            return
        started = True
        try:
            rest = yield from _inflate(dec, data)
        except _DAMAGE as exc:
            raise DamagedError(_damage_reason(exc)) from exc
        if rest is not None:  # a member ended: another may follow
            after = rest


_MAGIC_LEN = {kind: max(len(m) for m, k in MAGIC if k == kind) for _, kind in MAGIC}
# zstd's skippable frames (any content, magic 0x184D2A50-5F) are frames too
_ZSTD_SKIPPABLE = re.compile(rb"[\x50-\x5f](?:\x2a(?:\x4d\x18?)?)?\Z")


def _may_start_member(data: bytes, kind: str) -> bool:
    """Whether `data` starts (or, shorter, could start) a member of `kind`:
    its magic bytes. Else it is trailing data, not compressed."""
    magics = [m for m, k in MAGIC if k == kind]
    if any(data[: len(m)] == m[: len(data)] for m in magics):
        return True
    return kind == "zstd" and _ZSTD_SKIPPABLE.match(data[:4]) is not None


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
            before = dec.copy()  # what it had taken, should this step fail
            try:
                out = dec.decompress(data, OUT_PIECE)
            except zlib.error:
                yield from _salvaged(before, data)
                raise
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


def _salvaged(dec: Any, data: bytes) -> Iterator[bytes]:  # noqa: ANN401
    """What `dec` (a zlib decompressor) gives for `data` before the byte at
    which it fails, fed one byte at a time (a damaged file only).

    A gzip member's checksums are checked at its trailer, after its whole
    content was decompressed: `zcat` writes that content, then says it is
    damaged, and so is every line read here; the step that meets the
    trailer would otherwise lose up to `OUT_PIECE` of it (all of a small
    file)."""
    pending: list[bytes] = []
    size = 0
    for i in range(len(data)):
        try:
            out = dec.decompress(data[i : i + 1])
        except zlib.error:
            break
        pending.append(out)
        size += len(out)
        if size >= OUT_PIECE:
            yield b"".join(pending)
            pending, size = [], 0
    if size:
        yield b"".join(pending)


def _damage_reason(exc: BaseException) -> str:
    """What a decompressor said of damaged data, without its error number."""
    text = str(exc) or type(exc).__name__
    return re.sub(r"^Error -?\d+ while decompressing data: ", "", text)


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
    reader under it (its `count` is the on-disk, or stored, bytes consumed).
    `read(n)` on the stream raises what the decompressor raised, after
    handing out every byte decoded before the damage."""
    if source.url is not None:
        raw: IO[bytes] = open_url(source.url)
    elif source.path is None:
        raw = sys.stdin.buffer
    elif source.pipe:  # opened once: detection's head, then the rest
        from pplog.sources._pipes import PipeStream

        raw = PipeStream(source.path)  # type: ignore[assignment]
    else:
        raw = source.path.open("rb")  # noqa: SIM115 - closed by the caller
    counter = _CountingReader(raw)
    head = raw.peek(8)[:8] if hasattr(raw, "peek") else b""
    kind = compression_of(head)
    if kind is None:
        return counter, counter
    return _Stream(decompressed_pieces(counter, kind)), counter  # type: ignore[arg-type]


READ_ERRORS: tuple[type[BaseException], ...] = (
    DamagedError,
    zstandard.ZstdError,
    OSError,
    EOFError,
    TruncatedError,
    TrailingDataError,
    zlib.error,
    lzma.LZMAError,
    ValueError,
)


def is_device(raw: IO[bytes]) -> bool:
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
    if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    if isinstance(exc, DamagedError):
        return f"damaged compressed data ({exc}): what decompressed before it is kept"
    if isinstance(exc, TrailingDataError):
        where = "" if exc.at is None else f" from byte {exc.at:,} of the file on"
        return f"trailing garbage{where}, not compressed data: ignored"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
