"""Pipes named by path (`<(zcat x.gz)`, `/dev/stdin` on a pipe, a FIFO): read once.

A pipe gives each byte once, and a second `open` of one whose writer is gone
waits forever. Format detection reads a pipe's first lines and the run then
reads every line, so both come from one opening: the first use opens the
pipe and keeps the bytes detection read (`head`), and the stream handed to
the reader gives those bytes first, then the rest (as stdin keeps what
detection peeked at). Once that stream is closed the pipe is forgotten: a
later run in the same process opens it again, as `cat` would.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from pplog.sources._decompress import compression_of, inflated_prefix

# the most bytes kept for detection: its lines, or as far as this goes
HEAD_LIMIT = 1 << 20
_READ = 1 << 16


class _Pipe:
    """One opened pipe and the bytes read from it before its stream."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.head = b""
        self.ended = False

    def more(self) -> bool:
        """Read what the pipe has now into `head`; False at its end."""
        data = self.raw.read1(_READ)  # type: ignore[attr-defined]
        if not data:
            self.ended = True
            return False
        self.head += data
        return True


_OPEN: dict[str, _Pipe] = {}


def _pipe(path: Path) -> _Pipe:
    """The pipe at `path`, opened on first use (a FIFO waits for a writer)."""
    key = os.fspath(path)
    pipe = _OPEN.get(key)
    if pipe is None:
        pipe = _Pipe(path.open("rb"))
        _OPEN[key] = pipe
    return pipe


def pipe_head(path: Path, lines: int) -> bytes:
    """The first bytes of the pipe at `path`, kept for its stream: read until
    they hold `lines` lines (decompressed, when they are compressed), the
    pipe ends or `HEAD_LIMIT` bytes are in.

    Raises OSError when the pipe cannot be opened.
    """
    pipe = _pipe(path)
    checked: int | None = None  # the head's length when last decompressed
    while not pipe.ended and len(pipe.head) < HEAD_LIMIT:
        head = pipe.head
        kind = compression_of(head)
        if kind is None and len(head) >= 8:
            if head.count(b"\n") >= lines:
                break
        elif kind is not None and (checked is None or len(head) - checked >= _READ):
            # decompressed again from the start: at most 16 times
            checked = len(head)
            if inflated_prefix(head, kind).count(b"\n") >= lines:
                break
        pipe.more()
    return pipe.head


class PipeStream:
    """The stream of a pipe: the bytes detection kept, then the rest."""

    def __init__(self, path: Path) -> None:
        self._key = os.fspath(path)
        self._pipe = _pipe(path)
        self._pos = 0

    def peek(self, n: int) -> bytes:
        """At least `n` bytes ahead (fewer at the pipe's end), not consumed."""
        pipe = self._pipe
        while len(pipe.head) - self._pos < n and pipe.more():
            pass
        return pipe.head[self._pos :]

    def read(self, n: int = -1) -> bytes:
        pipe = self._pipe
        kept = pipe.head[self._pos :] if n < 0 else pipe.head[self._pos : self._pos + n]
        self._pos += len(kept)
        if self._pos >= len(pipe.head) and pipe.head:
            pipe.head, self._pos = b"", 0  # handed out: not held any longer
        if n >= 0 and len(kept) >= n:
            return kept
        rest = pipe.raw.read(-1 if n < 0 else n - len(kept))
        return kept + rest if kept else rest

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._pipe.raw.fileno()

    def close(self) -> None:
        if _OPEN.get(self._key) is self._pipe:
            del _OPEN[self._key]
        self._pipe.raw.close()
