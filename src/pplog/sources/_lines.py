"""Complete lines from a byte stream: linear splitting, holes, the 1 MiB cap."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from operator import methodcaller

import polars as pl

from pplog.schema import LINE, OFFSET, SOURCE, TEXT, TOO_LONG
from pplog.sources._bytes import NOT_NUL, decode_bytes, is_utf8
from pplog.sources._paths import path_name

LINE_LIMIT = 1 << 20  # a line longer than this is cut: one `too_long` reject
RAW_KEPT = 8192  # bytes of such a line kept as its text

LINES_SCHEMA = pl.Schema(
    {
        SOURCE: pl.String,
        LINE: pl.UInt64,
        OFFSET: pl.UInt64,
        TEXT: pl.String,
        TOO_LONG: pl.Boolean,
    }
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
    ascii_lf = data.isascii() and b"\r" not in data  # on `data`: no copy
    plain = not hole and b"\x00" not in data
    if ascii_lf and plain:
        return _ascii_frame(source, data, first_line, first_offset)
    if plain and b"\r" not in data and is_utf8(data):
        # polars' line reader needs valid UTF-8 (and drops a CR before LF)
        return _ascii_frame(source, data, first_line, first_offset, bom=True)
    body = data[:-1] if data.endswith(b"\n") else data
    raw: pl.Series | None = None  # each line's bytes as characters, if not ASCII
    if ascii_lf:
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
            raw = octets
    n = len(lines)
    offsets = (lengths + 1).cum_sum().shift(1, fill_value=0) + first_offset + hole
    if hole and n:
        offsets = offsets.scatter(0, first_offset)
    frame = pl.DataFrame(
        {
            SOURCE: pl.repeat(path_name(source), n, dtype=pl.String, eager=True),
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
        frame = _torn(frame, lengths, lines if raw is None else raw)
    return frame


def _ascii_frame(
    source: str, data: bytes, first_line: int, first_offset: int, *, bom: bool = False
) -> pl.DataFrame:
    """`lines_frame` of ASCII lines without CR or NUL: one query on polars'
    own line reader (nothing to strip: a BOM is not ASCII), half the time of
    building the columns one by one.

    With `bom`, of any valid UTF-8 without CR or NUL: a byte order mark that
    starts a line is stripped from its text (its bytes stay in the offsets).
    Where raw UTF-8 is logged (`escape=json`), splitting in Python took 3.4
    s for 2M lines (340 MB) against 1.0 s here: ingest 7.0 s against 4.8 s.
    """
    if len(data) <= SMALL_BLOCK:
        return _small_frame(source, data, first_line, first_offset, bom=bom)
    length = pl.col(TEXT).str.len_bytes().cast(pl.UInt64)
    text = pl.col(TEXT).str.strip_prefix("\ufeff") if bom else pl.col(TEXT)
    return (
        pl.scan_lines(data, name=TEXT)
        .select(
            pl.lit(path_name(source), pl.String).alias(SOURCE),
            pl.int_range(first_line, first_line + pl.len(), dtype=pl.UInt64).alias(
                LINE
            ),
            ((length + 1).cum_sum() - length - 1 + first_offset).alias(OFFSET),
            text,
            pl.lit(False).alias(TOO_LONG),  # noqa: FBT003
        )
        .collect()
    )


# A block up to this size (a small file, a log's last lines) is split in
# Python: a polars query costs about 0.8 ms however few its lines, and a
# directory of 3,600 small vhost logs spent 3 s in them.
SMALL_BLOCK = 64 << 10


def _small_frame(
    source: str, data: bytes, first_line: int, first_offset: int, *, bom: bool
) -> pl.DataFrame:
    """`_ascii_frame` of a small block, split by Python's own C functions
    (the same rows; no loop of Python code over the lines)."""
    lengths = list(map(len, data.split(b"\n")))  # in bytes, as offsets count
    texts = data.decode().split("\n")
    if not lengths[-1]:  # the newline ends the last line; no line follows it
        lengths.pop()
        texts.pop()
    n = len(texts)
    offsets = list(accumulate(map((1).__add__, lengths), initial=first_offset))[:-1]
    if bom:
        texts = list(map(methodcaller("removeprefix", "\ufeff"), texts))
    return pl.DataFrame(
        {
            SOURCE: [path_name(source)] * n,
            LINE: range(first_line, first_line + n),
            OFFSET: offsets,
            TEXT: texts,
            TOO_LONG: [False] * n,
        },
        schema=LINES_SCHEMA,
    )


# Text after the last hole of a line: a torn line, NULs, then a whole line.
_AFTER_HOLE = r"\x00{16,}([^\x00]+)$"


def _torn(frame: pl.DataFrame, lengths: pl.Series, raw: pl.Series) -> pl.DataFrame:
    """Lines torn by a hole (a crash writes part of a line, NULs, then the next
    line whole) become two rows: the torn part with the hole, a `binary`
    reject, and the line after it, which keeps its line number and gets the
    offset of its first byte. `raw` holds each line's bytes as characters.
    """
    tail = frame.get_column(TEXT).str.extract(_AFTER_HOLE, 1)
    text = frame.get_column(TEXT)
    keep = text.str.len_chars().cast(pl.Int64) - tail.str.len_chars().fill_null(0)
    head_text = text.str.head(keep)
    torn = tail.is_not_null() & (head_text.str.strip_chars("\x00") != "")
    if not torn.any():
        return frame
    tail_bytes = raw.str.extract(_AFTER_HOLE, 1).str.len_chars().cast(pl.UInt64)
    after = frame.filter(torn).with_columns(
        (pl.col(OFFSET) + lengths.filter(torn) - tail_bytes.filter(torn)).alias(OFFSET),
        tail.filter(torn).alias(TEXT),
    )
    before = frame.with_columns(
        pl.when(torn).then(head_text).otherwise(pl.col(TEXT)).alias(TEXT)
    )
    return pl.concat([before, after]).sort(OFFSET, maintain_order=True)


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
            long = long_line(data, pos, last + 1, held, self.limit)
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
        found = NOT_NUL.search(data, pos)
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
        if self._rest:  # one copy of both
            chunk = b"".join((self._rest, memoryview(data)[pos:stop]))
        else:
            chunk = data[pos:stop]
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
            found = NOT_NUL.search(data, pos, stop)
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


def long_line(data: bytes, start: int, stop: int, gap: int, limit: int) -> int | None:
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
            found = NOT_NUL.search(data, pos, stop)
            text = stop if found is None else found.start()
            if text > pos:  # a hole starts the line: measure from its text
                pos = text
                continue
        return line_start
