"""Follow log files as nginx writes them, by name and by file identity.

A `Follower` keeps each followed file's descriptor open and, on every
`poll`, stats the path it follows:

- the path names another file (rename-and-create rotation, or deletion): the
  old descriptor is read to its end, and kept until it has not grown for
  `grace` seconds (nginx writes to it until it gets USR1); the new file is
  read from its beginning;
- the same file is shorter than what was read, or its first bytes or the 64
  bytes before the offset changed (copytruncate, even when the file grew
  back past the offset between two polls): the lines written between the
  last poll and the copy are read from the copy (a plain file of the same
  rotation set holding those bytes), then the file is read from its start;
- a path the patterns match for the first time is read from its beginning,
  unless it is a file already followed (renamed), the copy a copytruncate
  made (its first bytes are those of a file followed now or before), or
  compressed (old content).

Identity follows `batch/identity.py` (which `sources/` may not import): the
first `HEAD_BYTES` of a file and the `TAIL_BYTES` before the offset. Lines
are cut by `LineSplitter`; only each file's unfinished line is held.
"""

from __future__ import annotations

import functools
import glob
import os
import resource
import stat
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from pplog._fastsplit import newlines_before
from pplog.schema import SOURCE, TEXT
from pplog.sources._bytes import (
    NOT_NUL,
    SAMPLE_BYTES,
    SKIPPED_BINARY,
    binary_throughout,
)
from pplog.sources._decompress import MAGIC, describe
from pplog.sources._lines import Block, LineSplitter
from pplog.sources._paths import (
    Source,
    being_compressed,
    not_a_log,
    path_name,
    rotation_key,
)

HEAD_BYTES = 4096  # a file's identity: its first bytes (as `ingest` takes them)
TAIL_BYTES = 64  # the bytes before the offset prove what was read is still there
PIECE = 8 << 20  # bytes read at a time
HEADS_KEPT = 16  # past heads remembered per rotation set (copies to skip)
COMPRESSED = (".gz", ".bz2", ".xz", ".zst")

ProblemHandler = Callable[[str, str], None]
_Id = tuple[int, int]  # (device, inode)


@dataclass(frozen=True)
class Chunk:
    """New complete lines of one file.

    `source` is the name the file was followed under (a file renamed away
    keeps it while it is drained); `lines` is a lines frame (`lines_frame`)
    whose line numbers and byte offsets are the file's own.
    """

    source: str
    lines: pl.DataFrame


@dataclass(eq=False)
class _File:
    """One followed file: its descriptor, how far it was read, its identity."""

    name: str
    fd: int
    ident: _Id
    seq: int  # order of discovery: a renamed-away file before its successor
    splitter: LineSplitter
    pos: int  # bytes read (complete lines and the unfinished one)
    head: bytes  # first bytes, up to HEAD_BYTES
    tail: bytes  # the TAIL_BYTES before `pos`
    size: int  # status when last checked
    mtime_ns: int
    judged: bool  # binary-ness judged (needs a first byte)
    live: bool = True  # False: renamed away or deleted, being drained
    changed: float = 0.0  # clock when a drained file last grew
    vanished: bool = False  # its name was left with no file


@dataclass(frozen=True)
class _Mark:
    """What was read of a file: enough to know a copy of it.

    `head` is its first bytes up to the offset (at most `HEAD_BYTES`),
    `tail` the `TAIL_BYTES` before `offset`. A file holds the same content
    when it starts with `head`, is at least `offset` long and has `tail`
    before it. Only bytes that were read count: before the first byte there
    is nothing to tell a copy by.
    """

    head: bytes
    offset: int
    tail: bytes

    def starts_with(self, head: bytes) -> bool:
        """Whether a file shorter than `offset`, starting with `head` (its
        first `HEAD_BYTES`), is a copy of this one's start: the bytes read
        begin with all of it, or with the same `HEAD_BYTES`."""
        if not self.offset or not head:
            return False
        if len(head) < HEAD_BYTES:  # all of the file
            return self.head.startswith(head)
        return self.head == head

    def held_by(self, fd: int, head: bytes) -> bool:
        """Whether the file open as `fd`, starting with `head`, holds it."""
        if not self.offset or not head.startswith(self.head):
            return False
        at = self.offset - len(self.tail)
        return os.pread(fd, len(self.tail), at) == self.tail


def _mark(f: _File) -> _Mark:
    return _Mark(f.head[: f.pos], f.pos, f.tail)


@functools.lru_cache(maxsize=1 << 16)
def _fspath(name: str) -> str:
    """`name` as `Path(name).stat()` would stat it: each followed name is
    stat'ed at every poll, and building a `Path` cost more than the `stat`
    (3,600 files: a sixth of a core while nothing was written)."""
    return str(Path(name))


def _compressed_name(name: str) -> bool:
    return name.endswith(COMPRESSED)


def pattern_paths(pattern: str) -> list[tuple[str, bool]]:
    """The paths a pattern names now, each with whether it was named itself.

    A directory: its files (not hidden); an existing path or one without
    glob characters: itself; else the glob's matches. A glob that matches
    nothing now is no error (it may later).
    """
    path = Path(pattern)
    if path.is_dir():
        return sorted(
            (str(p), False) for p in path.iterdir() if not p.name.startswith(".")
        )
    if path.exists() or not glob.has_magic(pattern):
        return [(pattern, True)]
    return [(m, False) for m in sorted(glob.glob(pattern))]


def matched_files(patterns: Sequence[str]) -> list[str]:
    """The regular files the patterns name now (as `Follower` lists them)."""
    found = {name for p in patterns for name, _ in pattern_paths(os.fspath(p))}
    return sorted(
        name for name in found if Path(name).is_file() and not not_a_log(Path(name))
    )


def _line_start(fd: int, size: int) -> int:
    """Where the line holding byte `size` starts: after the last LF before it."""
    end = size
    while end > 0:
        start = max(0, end - (1 << 16))
        data = os.pread(fd, end - start, start)
        nl = data.rfind(b"\n")
        if nl >= 0:
            return start + nl + 1
        end = start
    return 0


def _frames(name: str, blocks: list[Block]) -> list[pl.DataFrame]:
    return [block.frame(name) for block in blocks]


def _feed(f: _File, data: bytes) -> list[pl.DataFrame]:
    """The lines `data` (read at `f.pos`) completes; `f` moves past it."""
    f.pos += len(data)
    f.tail = (f.tail + data[-TAIL_BYTES:])[-TAIL_BYTES:]
    return _frames(f.name, f.splitter.feed(data))


class Follower:
    """New complete lines of log files, across rotations, poll after poll.

    Parameters
    ----------
    patterns
        Paths, globs or directories (a directory: its files), listed again
        at every poll: a glob picks up new files. A pattern that matches
        nothing now is not an error.
    start
        ``"end"``: files found now start at their end (at a line start),
        ``"start"``: at their beginning. Files found later always start at
        their beginning.
    since
        A POSIX time: the rotated members of each followed rotation set
        (`rotation_key`: access.log.1, access.log.2.gz) whose mtime is at
        least `since` are read once, oldest first, before the followed
        files, which start at their beginning (or their end when not
        written since `since`).
    grace
        A file renamed away or deleted is closed once read to its end and
        not grown for this many seconds (by `clock`).
    on_problem
        Called with (name, message) for inputs that cannot be read (binary,
        vanished, replaced by something not a file, lines lost to a
        truncation); `poll` never raises for those.
    max_bytes
        The most bytes read per file per poll; the rest comes next poll.
    """

    def __init__(
        self,
        patterns: Sequence[str],
        *,
        start: Literal["end", "start"] = "end",
        since: float | None = None,
        grace: float = 5.0,
        on_problem: ProblemHandler | None = None,
        max_bytes: int = 32 << 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._patterns = [os.fspath(p) for p in patterns]
        self._grace = grace
        self._on_problem = on_problem
        self._max_bytes = max(1, max_bytes)
        self._clock = clock
        self._files: list[_File] = []
        self._seen: dict[str, _Id] = {}  # listed paths already judged
        self._copies: set[_Id] = set()  # copies read from in this poll
        self._marks: dict[str, deque[_Mark]] = {}  # past files per rotation set
        self._sets: dict[str, list[_File]] = {}  # followed files by set (`_discover`)
        self._reported: dict[str, str] = {}  # the last problem said per name
        # files that could not be opened (no permission yet): tried again at
        # each poll, with the offset to start at once they open
        self._unopened: dict[str, tuple[_Id, int]] = {}
        self._unlisted: set[str] = set()  # patterns the last listing could not read
        self._open_fds = 0  # descriptors of followed files, at most `_fd_limit`
        self._failed_open = False  # the last `_open` was refused by the system
        self._fd_limit = _fd_budget()
        self._fds_said = False  # the limit was met and said so
        self._seq = 0
        self._behind = False
        self._backlog: Iterator[pl.DataFrame] | None = None
        self._begin(start, since)

    # -- public ------------------------------------------------------------

    def poll(self, *, final: bool = False) -> list[Chunk]:
        """New complete lines since the last poll, oldest file first.

        Re-lists the patterns. With `final`, every followed file is read to
        its current end, ignoring `max_bytes`, and a renamed-away file's
        unterminated last line is taken too (the live file's never is:
        nginx is still writing it).
        """
        budget = None if final else self._max_bytes
        out: list[Chunk] = []
        self._behind = False
        if self._backlog is not None and not self._read_backlog(out, budget):
            self._behind = True
            return out  # the followed files wait: they are newer
        early: dict[int, list[Chunk]] = {}  # chunks recovered from copies
        for f in list(self._files):
            early[id(f)] = self._check(f)
        self._discover(self._list(), begin=False, start_at_end=False)
        blocked: set[str] = set()  # names whose older file is not read to its end
        for f in sorted(self._files, key=lambda f: (rotation_key(f.name), f.seq)):
            out.extend(early.get(id(f), []))
            if f.fd < 0 or (f.live and f.name in blocked):
                continue
            at_end = self._read(f, budget, out)
            if f.live or f.fd < 0:
                continue
            if not at_end:
                blocked.add(f.name)
            elif final or self._clock() - f.changed >= self._grace:
                self._finish(f, out)
        self._files = [f for f in self._files if f.fd >= 0]
        return out

    def close(self) -> None:
        """Close every followed file."""
        for f in self._files:
            self._close(f)
        self._files = []
        if self._backlog is not None:
            close = getattr(self._backlog, "close", None)
            if close is not None:
                close()
            self._backlog = None

    def files(self) -> list[dict[str, object]]:
        """What is followed now: name, offset, next line number and state."""
        return [
            {
                "name": path_name(f.name),  # followed by its own name
                "offset": f.pos,
                "line": f.splitter.line,
                "state": "live" if f.live else "draining",
            }
            for f in sorted(self._files, key=lambda f: (rotation_key(f.name), f.seq))
        ]

    @property
    def behind(self) -> bool:
        """Whether the last poll left bytes that were already written unread
        (it stopped at `max_bytes`): poll again before waiting."""
        return self._behind

    @property
    def held(self) -> int:
        """Bytes after the last newline not yet taken, summed over files."""
        return sum(f.splitter.pending for f in self._files)

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- discovery ---------------------------------------------------------

    def _list(self) -> list[tuple[str, bool]]:
        found: dict[str, bool] = {}
        self._unlisted = set()
        for pattern in self._patterns:
            try:
                paths = pattern_paths(pattern)
            except OSError as exc:
                # a directory without search permission for a moment (a
                # deploy's chmod): said, and listed again at the next poll;
                # the files already followed are read through their descriptors
                self._problem(pattern, f"cannot list: {describe(exc)}")
                self._unlisted.add(pattern)
                continue
            for name, named in paths:
                found[name] = found.get(name, False) or named
        return sorted(found.items(), key=lambda item: rotation_key(item[0]))

    def _begin(self, start: str, since: float | None) -> None:
        listed = self._list()
        at_end = start == "end" and since is None
        if since is not None:
            self._plan_backlog(listed, since)
        self._discover(listed, begin=True, start_at_end=at_end, since=since)

    def _plan_backlog(self, listed: list[tuple[str, bool]], since: float) -> None:
        """The rotated members written since `since`, to read once, oldest
        first: older siblings of the followed files (rotations of the newest
        file followed in each set: following `access.log.1` reads `.2.gz`,
        not the live `access.log`), and compressed matches."""
        followed: set[str] = set()
        members: dict[str, Path] = {}
        for name, _ in listed:
            path = Path(name)
            if not path.is_file():
                continue
            if _compressed_name(name) or self._magic(path):
                members[str(path)] = path
            else:
                followed.add(str(path))
        newest: dict[str, tuple[str, int, str]] = {}  # per set: newest listed
        for name, _ in listed:
            order = rotation_key(name)
            newest[order[0]] = max(newest.get(order[0], order), order)
        for parent in {Path(base).parent for base in newest}:  # each listed once
            try:
                siblings = list(parent.iterdir())
            except OSError:
                continue
            for p in siblings:
                order = rotation_key(p)
                older = order[0] in newest and order < newest[order[0]]
                if older and str(p) not in followed:
                    members.setdefault(str(p), p)
        chosen: list[Path] = []
        for key, path in members.items():
            try:
                st = path.stat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_mtime >= since:
                chosen.append(path)
                self._seen[key] = (st.st_dev, st.st_ino)
        chosen.sort(key=rotation_key)
        if chosen:
            from pplog.sources import iter_batches  # here: it imports this module

            # a rotation logrotate is compressing is read once, from the plain
            # file, whether the backlog reads it or it is followed (a glob)
            picked = [Source(str(p), p) for p in chosen]
            twins = [Source(f, Path(f)) for f in sorted(followed)]
            self._backlog = iter_batches(
                being_compressed(picked + twins)[: len(picked)],
                on_problem=self._problem,
                chunk_bytes=min(self._max_bytes, PIECE),
            )

    def _read_backlog(self, out: list[Chunk], budget: int | None) -> bool:
        """Move the rotated members' batches to `out`; True once all are read."""
        assert self._backlog is not None
        taken = 0
        frames: list[pl.DataFrame] = []
        while budget is None or taken < budget:
            batch = next(self._backlog, None)
            if batch is None:
                self._backlog = None
                break
            if batch.height:
                frames.append(batch)
                taken += (
                    int(batch.get_column(TEXT).str.len_bytes().sum()) + batch.height
                )
        if frames:
            whole = pl.concat(frames)
            for part in whole.partition_by(SOURCE, maintain_order=True):
                out.append(Chunk(str(part.item(0, SOURCE)), part))
        return self._backlog is None

    def _magic(self, path: Path) -> bool:
        try:
            with path.open("rb") as f:
                head = f.read(8)
        except OSError:
            return False
        return any(head.startswith(magic) for magic, _ in MAGIC)

    def _discover(
        self,
        listed: list[tuple[str, bool]],
        *,
        begin: bool,
        start_at_end: bool,
        since: float | None = None,
    ) -> None:
        """Follow the listed paths that hold a file not judged before."""
        known = {f.ident for f in self._files} | set(self._seen.values())
        # the followed files by rotation set, for `_open` (thousands of
        # files: each new one compared with every followed one took minutes)
        self._sets = {}
        for f in self._files:
            self._sets.setdefault(rotation_key(f.name)[0], []).append(f)
        known |= self._copies
        self._copies = set()
        seen: dict[str, _Id] = {}
        following = {f.name for f in self._files if f.live}
        # at the start the newest first: a copytruncate copy next to its not
        # yet truncated original is the copy, not the original
        order = reversed(listed) if begin else iter(listed)
        unreadable: set[str] = set()  # names that could not be stat'ed now
        for name, named in order:
            try:
                st = os.stat(_fspath(name))  # noqa: PTH116 - see _fspath
            except FileNotFoundError:
                continue  # vanished between listing and now
            except OSError as exc:
                self._problem(name, f"cannot open: {describe(exc)}")
                unreadable.add(name)
                continue
            ident = (st.st_dev, st.st_ino)
            seen[name] = ident
            waiting = self._unopened.get(name)
            retry = waiting is not None and waiting[0] == ident
            if not retry and (
                name in following or self._seen.get(name) == ident or ident in known
            ):
                continue
            known.add(ident)
            if not stat.S_ISREG(st.st_mode):
                if named and not stat.S_ISDIR(st.st_mode):
                    self._problem(name, _NOT_A_FILE)
                continue
            if _compressed_name(name):
                if named:  # else a rotation in a directory or glob: expected
                    self._problem(name, _COMPRESSED)
                continue  # a compressed rotation: old content (`since` reads it)
            if (why := not_a_log(Path(name))) is not None:
                self._problem(name, why)  # /dev/stdout: top's own output
                continue
            # where it starts once open: a file found at the start is
            # followed from its end (or from `since`), later ones from 0
            from_start = not start_at_end and (since is None or st.st_mtime >= since)
            start_here = begin and not from_start
            start = waiting[1] if retry and waiting is not None else None
            if start is None:
                start = st.st_size if start_here else 0
            self._unopened.pop(name, None)
            opened = self._open(name, st, named=named)
            if opened is None:
                if self._at_fd_limit():  # not judged: tried again once there is room
                    del seen[name]
                    known.discard(ident)
                elif self._failed_open:  # no permission yet: tried at each poll
                    self._unopened[name] = (ident, start)
                continue
            f = opened
            if start:
                self._start_at_end(f, min(start, f.size))
            self._files.append(f)
            self._sets.setdefault(rotation_key(f.name)[0], []).append(f)
        if self._unlisted:  # what a pattern not listed now named is still known
            seen = {**self._seen, **seen}
        self._seen = seen
        self._unopened = {k: v for k, v in self._unopened.items() if k in seen}
        said = seen.keys() | following | unreadable | self._unlisted
        self._reported = {k: v for k, v in self._reported.items() if k in said}
        bases = {rotation_key(n)[0] for n in seen} | {
            rotation_key(f.name)[0] for f in self._files
        }
        self._marks = {k: v for k, v in self._marks.items() if k in bases}

    def _open(self, name: str, st: os.stat_result, *, named: bool) -> _File | None:
        """A new `_File` at offset 0, or None (compressed, a copy, binary, or
        no descriptor left for it)."""
        if self._at_fd_limit():
            if not self._fds_said:
                self._fds_said = True
                self._problem(
                    name,
                    f"not followed, nor any other file found while {self._open_fds:,}"
                    " are open: the process may open no more (`ulimit -n`); raise"
                    " the limit to follow them",
                )
            return None
        self._failed_open = False
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._problem(name, f"cannot open: {describe(exc)}")
            self._failed_open = True
            return None
        self._open_fds += 1
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode):
                if named:
                    self._problem(name, _NOT_A_FILE)
                os.close(fd)
                self._open_fds -= 1
                return None
            head = os.pread(fd, HEAD_BYTES, 0)
            base = rotation_key(name)[0]
            copy = self._copy_of_followed(fd, fst.st_size, head, base) or any(
                m.held_by(fd, head) for m in self._known(base)
            )
        except OSError as exc:
            os.close(fd)
            self._open_fds -= 1
            self._problem(name, f"cannot read: {describe(exc)}")
            return None
        compressed = any(head.startswith(magic) for magic, _ in MAGIC)
        if copy or compressed:
            os.close(fd)  # a copytruncate copy, or a compressed rotation
            self._open_fds -= 1
            if compressed and named and not copy:
                self._problem(name, _COMPRESSED)
            return None
        self._seq += 1
        f = _File(
            name=name,
            fd=fd,
            ident=(fst.st_dev, fst.st_ino),
            seq=self._seq,
            splitter=LineSplitter(),
            pos=0,
            head=head,
            tail=b"",
            size=fst.st_size,
            mtime_ns=fst.st_mtime_ns,
            judged=False,
        )
        if not self._judge(f):
            self._close(f)
            return None
        self._reported.pop(name, None)
        return f

    def _copy_of_followed(self, fd: int, size: int, head: bytes, base: str) -> bool:
        """Whether the file open as `fd` is a copy of a followed file of its
        rotation set as it is now (a copytruncate copy, the original not yet
        truncated, or not yet read): not longer, same first and last bytes."""
        if not size:
            return False
        n = min(size, HEAD_BYTES)
        last = max(0, size - TAIL_BYTES)
        for f in self._sets.get(base, ()):
            if f.fd < 0:
                continue
            if os.fstat(f.fd).st_size < size or os.pread(f.fd, n, 0) != head[:n]:
                continue
            if size <= n or os.pread(f.fd, size - last, last) == os.pread(
                fd, size - last, last
            ):
                return True
        return False

    def _known(self, base: str) -> Iterator[_Mark]:
        """What was read of the files of a rotation set, now and before."""
        for f in self._sets.get(base, ()):
            yield _mark(f)
        yield from self._marks.get(base, ())

    def _start_at_end(self, f: _File, size: int | None = None) -> None:
        """Place `f` at the start of its last line (the line holding byte
        `size`, by default its end), numbered as in the file."""
        try:
            at = _line_start(f.fd, f.size if size is None else size)
            line = newlines_before(f.fd, at) + 1
            tail = os.pread(f.fd, min(at, TAIL_BYTES), at - min(at, TAIL_BYTES))
        except OSError as exc:
            self._problem(f.name, f"cannot read: {describe(exc)}")
            return
        f.splitter = LineSplitter(offset=at, line=line)
        f.pos, f.tail = at, tail

    def _judge(self, f: _File) -> bool:
        """False (and one problem) when `f` holds binary data, not a log."""
        if f.judged:
            return True
        found = NOT_NUL.search(f.head)
        if found is None:
            return True  # nothing but a hole yet: judged once text comes
        f.judged = True
        sample = f.head[found.start() : found.start() + SAMPLE_BYTES]
        if binary_throughout(Path(f.name) if f.live else None, sample):
            self._problem(f.name, SKIPPED_BINARY)
            return False
        return True

    # -- rotation ----------------------------------------------------------

    def _check(self, f: _File) -> list[Chunk]:
        """Notice that `f`'s name was rotated away, or `f` truncated.

        A live file's name is stat'ed; the file itself, renamed away or not,
        through its descriptor. Returns the lines recovered from a
        copytruncate copy.
        """
        if f.live:
            try:
                st = os.stat(_fspath(f.name))  # noqa: PTH116 - see _fspath
            except (FileNotFoundError, NotADirectoryError):
                self._drain(f, vanished=True)
            except OSError as exc:
                # no permission on its directory for now: not a rotation; the
                # descriptor still reads it, and the name is checked again
                self._problem(f.name, f"cannot follow: {describe(exc)}")
            else:
                if (st.st_dev, st.st_ino) != f.ident:
                    if not stat.S_ISREG(st.st_mode):
                        self._problem(f.name, _NOT_A_FILE)
                    self._drain(f)
        try:
            st = os.fstat(f.fd)
            if st.st_size == f.size and st.st_mtime_ns == f.mtime_ns:
                return []
            f.size, f.mtime_ns = st.st_size, st.st_mtime_ns
            how = self._truncated(f, st.st_size)
        except OSError as exc:
            self._problem(f.name, f"cannot read: {describe(exc)}")
            self._close(f)
            return []
        if how is None:
            return []
        return self._restart(f, how)

    def _truncated(self, f: _File, size: int) -> str | None:
        """How `f` was truncated since it was read, or None if it was not."""
        if size < f.pos:
            return f"truncated from at least {f.pos} to {size} bytes"
        head = os.pread(f.fd, HEAD_BYTES, 0)
        tail = os.pread(f.fd, len(f.tail), f.pos - len(f.tail)) if f.tail else b""
        if not head.startswith(f.head) or tail != f.tail:
            return f"truncated and written again past byte {f.pos}"
        f.head = head  # a young file's head grows with it
        return None

    def _restart(self, f: _File, how: str) -> list[Chunk]:
        """Read what the copy holds past `f`'s offset, then `f` from its start."""
        out: list[Chunk] = []
        if not self._from_copy(f, out):
            msg = (
                f"{how} (logrotate `copytruncate`?) and no plain copy of it was "
                "found in its rotation set: lines written since the last read "
                "may be missing; keep the copy uncompressed (`delaycompress`) "
                "so they can be read"
            )
            self._problem(f.name, msg)
        frames = _frames(f.name, f.splitter.finish())  # the cut line, as it was
        if frames:
            out.append(Chunk(f.name, pl.concat(frames)))
        self._remember(f)
        try:
            head = os.pread(f.fd, HEAD_BYTES, 0)
        except OSError:
            head = b""
        f.splitter, f.pos, f.head, f.tail = LineSplitter(), 0, head, b""
        return out

    def _from_copy(self, f: _File, out: list[Chunk]) -> bool:
        """Continue `f` from the copytruncate copy holding its offset."""
        mark = _mark(f)
        if not mark.offset:
            return False  # nothing read: nothing tells which file is the copy
        base = rotation_key(f.name)[0]
        parent = Path(f.name).parent
        try:
            siblings = sorted(parent.iterdir(), key=rotation_key, reverse=True)
        except OSError:
            return False
        for path in siblings:
            if rotation_key(path)[0] != base or _compressed_name(path.name):
                continue
            try:
                with path.open("rb", buffering=0) as copy:
                    st = os.fstat(copy.fileno())
                    if (st.st_dev, st.st_ino) == f.ident:
                        continue
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    fd = copy.fileno()
                    head = os.pread(fd, HEAD_BYTES, 0)
                    if st.st_size < f.pos:
                        if mark.starts_with(head):
                            # a poll between the copy and the truncate read
                            # past its end: it holds nothing unread
                            self._copies.add((st.st_dev, st.st_ino))
                            return True
                        continue
                    if not mark.held_by(fd, head):
                        continue
                    self._copies.add((st.st_dev, st.st_ino))  # not read again
                    frames: list[pl.DataFrame] = []
                    while data := os.pread(fd, PIECE, f.pos):
                        frames.extend(_feed(f, data))
            except OSError:
                continue
            if frames:
                out.append(Chunk(f.name, pl.concat(frames)))
            return True
        return False

    def _remember(self, f: _File) -> None:
        if f.pos:
            base = rotation_key(f.name)[0]
            self._marks.setdefault(base, deque(maxlen=HEADS_KEPT)).append(_mark(f))

    def _drain(self, f: _File, *, vanished: bool = False) -> None:
        f.live = False
        f.vanished = vanished
        f.changed = self._clock()

    # -- reading -----------------------------------------------------------

    def _read(self, f: _File, budget: int | None, out: list[Chunk]) -> bool:
        """Read `f` on from its offset (at most `budget` bytes); True when its
        end was reached."""
        frames: list[pl.DataFrame] = []
        taken = 0
        try:
            end = os.fstat(f.fd).st_size  # what is written later waits: bounded
            while f.pos < end and (budget is None or taken < budget):
                n = min(PIECE, end - f.pos)
                if budget is not None:
                    n = min(n, budget - taken)
                data = os.pread(f.fd, n, f.pos)
                if not data:
                    break
                if not f.judged:
                    if len(f.head) < HEAD_BYTES:
                        f.head = os.pread(f.fd, HEAD_BYTES, 0)
                    if not self._judge(f):
                        self._close(f)
                        return True
                taken += len(data)
                frames.extend(_feed(f, data))
        except OSError as exc:
            self._problem(f.name, f"stopped at byte {f.pos}: {describe(exc)}")
            self._finish(f, out, frames)
            return True
        at_end = f.pos >= end
        if not at_end:
            self._behind = True
        if taken and not f.live:
            f.changed = self._clock()
        if frames:
            out.append(Chunk(f.name, pl.concat(frames)))
        return at_end

    def _finish(
        self, f: _File, out: list[Chunk], frames: list[pl.DataFrame] | None = None
    ) -> None:
        """Take `f`'s last line (it will not be finished) and close it."""
        frames = [*(frames or []), *_frames(f.name, f.splitter.finish())]
        if frames:
            out.append(Chunk(f.name, pl.concat(frames)))
        if f.vanished and not Path(f.name).exists():
            msg = (
                "the file was removed and nothing was created in its place; "
                "it was read to its end and is followed again once created"
            )
            self._problem(f.name, msg)
        self._remember(f)
        self._close(f)

    def _close(self, f: _File) -> None:
        if f.fd >= 0:
            os.close(f.fd)
            self._open_fds -= 1
            f.fd = -1

    def _at_fd_limit(self) -> bool:
        return self._fd_limit is not None and self._open_fds >= self._fd_limit

    def _problem(self, name: str, message: str) -> None:
        if self._reported.get(name) == message:
            return  # said once is enough
        self._reported[name] = message
        if self._on_problem is not None:
            self._on_problem(name, message)


# descriptors left to the rest of the process (the view's pipe, spool
# files, the terminal, polars) when followed files would take them all
FD_RESERVE = 64


def _fd_budget() -> int | None:
    """How many files a `Follower` may hold open (None: no limit known)."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    return max(1, soft - FD_RESERVE)


_COMPRESSED = (
    "not followed: compressed, so nothing is written to it any more (`--since` "
    "reads rotated files; `pplog summarize` reads it whole)"
)
_NOT_A_FILE = "not a regular file (a directory, a FIFO or a device); it is skipped"
