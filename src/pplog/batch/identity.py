"""Which log file is which: identity by content fingerprint, never by inode.

A file is known by the SHA-256 of its first bytes (up to `HEAD_BYTES` of the
decompressed content). Renaming (logrotate's create mode), compressing
(access.log.1 becoming access.log.2.gz) and copying (copytruncate) keep the
first bytes, so the stream continues where it stopped; a new or truncated and
rewritten file has a new head and starts a new stream. The hash of the bytes
just before the stored offset (`TAIL_BYTES`) proves that the content up to
the offset is still the one that was read; when it is not, the stream starts
over as a new generation. A file that begins with all of another's bytes by
chance (a log of identical lines, rotated) is told from that stream grown by
the stream's own file, found in the set (`restore_own_files`, `own_stream`).
A compressed file's content ends where trailing garbage or damaged data
begins, as `summarize` reads it.
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import hashlib
import os
import re
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from pplog.sources import (
    DamagedError,
    Source,
    TrailingDataError,
    compression,
    describe,
    not_a_log,
    open_stream,
    path_name,
    pattern_paths,
    rotation_key,
)

HEAD_BYTES = 4096
TAIL_BYTES = 64
_LATER = "tried again on the next run"  # a file the listing could not read
_ROTATED = re.compile(r"\.\d+(?:\.(?:gz|bz2|xz|zst))?$|\.(?:gz|bz2|xz|zst)$")


def sha256(data: bytes) -> str:
    """Hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class Candidate:
    """A file that may hold new lines."""

    path: Path
    head: bytes  # first decompressed bytes, leading NULs skipped
    skipped: int  # leading NUL bytes before the head
    compressed: bool
    live: bool  # the file nginx writes to (not a rotation)
    size: int
    mtime: float
    inode: int
    device: int = 0
    end: int | None = None  # where the last `read_from` found the content's end
    # why the last `read_from` of a compressed file ended before the file:
    # trailing garbage (bytes that start no member, ignored as `summarize`
    # ignores them) or damaged data (what decompressed before it is read)
    cut: TrailingDataError | DamagedError | None = None
    # proofs that files left out as the same content are byte prefixes of
    # this one (`copy_proof`): kept with its stream, they tell its
    # copytruncate copy once the log is truncated
    copies: list[dict[str, Any]] = field(default_factory=list)
    # files left out as copies of this one's start (`_one_per_content`), with
    # the proof kept in `copies` and whether they are shorter: a known
    # stream's own file is read after all (`restore_own_files`)
    left: list[tuple[Candidate, dict[str, Any] | None, bool]] = field(
        default_factory=list
    )
    owns: str | None = None  # the stream this is the own file of (`own_stream`)

    @property
    def name(self) -> str:
        """The path as text (`sources.path_name`)."""
        return path_name(self.path)

    def matches(self, checkpoint: dict[str, Any]) -> bool:
        """Whether this file starts with the checkpoint's fingerprint."""
        n = int(checkpoint["head_len"])
        return (
            len(self.head) >= n and sha256(self.head[:n]) == checkpoint["head_sha256"]
        )


class HeadIndex:
    """Checkpoints by their fingerprint (`head_len`, `head_sha256`): the
    ones a file starts with (`Candidate.matches`) are found by hashing its
    head once, read at each distinct fingerprint length, not once per
    checkpoint (a run over thousands of files would otherwise hash heads
    millions of times). A checkpoint added or whose head changed is `put` again; one
    forgotten is `drop`ped. `starting` keeps the order they were put in."""

    def __init__(self, checkpoints: Iterable[dict[str, Any]] = ()) -> None:
        self._keys: dict[int, tuple[int, str]] = {}  # id(cp) -> its fingerprint
        self._order: dict[int, int] = {}  # id(cp) -> when first put
        self._by: dict[tuple[int, str], dict[int, dict[str, Any]]] = {}
        self._lens: Counter[int] = Counter()
        for cp in checkpoints:
            self.put(cp)

    def put(self, cp: dict[str, Any]) -> None:
        """Index `cp` under its fingerprint now (none yet: not indexed)."""
        self.drop(cp, forget=False)
        self._order.setdefault(id(cp), len(self._order))
        if "head_len" not in cp:
            return
        key = (int(cp["head_len"]), str(cp["head_sha256"]))
        self._keys[id(cp)] = key
        self._by.setdefault(key, {})[id(cp)] = cp
        self._lens[key[0]] += 1

    def drop(self, cp: dict[str, Any], *, forget: bool = True) -> None:
        """`cp` no longer indexed."""
        key = self._keys.pop(id(cp), None)
        if forget:
            self._order.pop(id(cp), None)
        if key is None:
            return
        del self._by[key][id(cp)]
        self._lens[key[0]] -= 1
        if not self._lens[key[0]]:
            del self._lens[key[0]]

    def starting(self, candidate: Candidate) -> list[dict[str, Any]]:
        """The checkpoints whose fingerprint `candidate` starts with."""
        head = candidate.head
        found: list[dict[str, Any]] = []
        running, at = hashlib.sha256(), 0  # the head hashed once, in order
        for n in sorted(n for n in self._lens if n <= len(head)):
            running.update(head[at:n])
            at = n
            found += self._by.get((n, running.copy().hexdigest()), {}).values()
        return sorted(found, key=lambda cp: self._order[id(cp)])


class ChangedError(OSError):
    """The path names other content than when the run found it (rotated meanwhile)."""


def _check(candidate: Candidate, raw: IO[bytes]) -> None:
    """Raise `ChangedError` unless `raw` is the file `candidate` was found as.

    Between discovery and reading, logrotate may rename the file and create a
    new one at its path, or truncate and rewrite it; reading the path then
    would credit the new content to the old stream.
    """
    st = os.fstat(raw.fileno())
    same = (st.st_dev, st.st_ino) == (candidate.device, candidate.inode)
    if same and not candidate.compressed:
        raw.seek(candidate.skipped)
        same = raw.read(len(candidate.head)) == candidate.head
    if not same:
        raise ChangedError(errno.ESTALE, "rotated or rewritten during this run")


def check_unchanged(candidate: Candidate, fd: int, upto: int) -> None:
    """Raise `ChangedError` unless plain file `fd` (open as `candidate`)
    still holds `upto` bytes and begins as it did when it was found.

    A reader that reads a file out of order (`reader._c_batches` reads
    ranges on several threads) checks this after it has read up to `upto`:
    a `copytruncate` rotation in the meantime leaves the file shorter, or
    rewritten from its start, and what was read may mix old and new content.
    """
    same = os.fstat(fd).st_size >= upto and (
        os.pread(fd, len(candidate.head), candidate.skipped) == candidate.head
    )
    if not same:
        raise ChangedError(errno.ESTALE, "rewritten while it was read")


def open_plain(candidate: Candidate) -> IO[bytes]:
    f = candidate.path.open("rb")
    try:
        _check(candidate, f)
    except BaseException:
        f.close()
        raise
    return f


class _Content:
    """A decompressed stream that ends where trailing garbage (bytes after a
    member that start no member: `TrailingDataError`) or damaged data
    (`DamagedError`, after what decompressed before it) begins, as
    `summarize` reads it; `cut` says which."""

    def __init__(self, stream: Any) -> None:  # noqa: ANN401 - open_stream's
        self._stream = stream
        self.cut: TrailingDataError | DamagedError | None = None

    def read(self, n: int) -> bytes:
        if self.cut is not None:
            return b""
        try:
            data: bytes = self._stream.read(n)
        except (TrailingDataError, DamagedError) as exc:
            self.cut = exc
            return b""
        return data


def _open_compressed(candidate: Candidate) -> tuple[_Content, Any]:
    stream, counter = open_stream(Source(candidate.name, candidate.path))
    try:
        _check(candidate, counter.raw)
    except BaseException:
        counter.close()
        raise
    return _Content(stream), counter


def _read_prefix(path: Path, n: int) -> tuple[bytes, int, os.stat_result]:
    """The first `n` decompressed bytes after leading NULs, how many NULs, and
    the status of the file they were read from."""
    opened, counter = open_stream(Source(path_name(path), path))
    stream = _Content(opened)
    try:
        st = os.fstat(counter.raw.fileno())
        skipped = 0
        data = b""
        while True:
            piece = stream.read(HEAD_BYTES)
            if not piece:
                break
            if not data:
                stripped = piece.lstrip(b"\x00")
                skipped += len(piece) - len(stripped)
                piece = stripped
            data += piece
            if len(data) >= n:
                break
        return data[:n], skipped, st
    finally:
        counter.close()


def read_tail_marker(candidate: Candidate, offset: int) -> bytes | None:
    """The `TAIL_BYTES` just before `offset` in the content; None if shorter.

    Raises `OSError` when the file cannot be opened, `ChangedError` when the
    path no longer holds the file that was found.
    """
    start = max(0, offset - TAIL_BYTES)
    data = read_span(candidate, start, offset)
    return data if data is not None and len(data) == offset - start else None


def read_span(candidate: Candidate, start: int, end: int) -> bytes | None:
    """The content's bytes from `start` to `end`, fewer where it ends before
    `end`; None where it ends before `start` (or cannot be decompressed).

    Raises `OSError` when the file cannot be opened, `ChangedError` when the
    path no longer holds the file that was found.
    """
    if not candidate.compressed:
        if candidate.size < start:
            return None
        with open_plain(candidate) as f:
            f.seek(start)
            return f.read(end - start)
    stream, counter = _open_compressed(candidate)
    try:
        done = 0
        while done < start:
            piece = stream.read(min(1 << 20, start - done))
            if not piece:
                return None
            done += len(piece)
        data: bytes = stream.read(end - start)
    except OSError:
        raise
    except Exception:  # noqa: BLE001 - a damaged file simply does not verify
        return None
    finally:
        counter.close()
    return data


def _matches(pattern: str) -> list[str]:
    """The paths a pattern names (as `pplog top` lists them): a directory's
    files; itself when such a file exists (`acc[1].log`); else its glob."""
    return [name for name, _ in pattern_paths(pattern)]


def _files(patterns: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Each regular file the patterns name now, once per (device, inode):
    the first name of a hard link or symlink is kept; a file gone between
    listing and `stat` is left for its checkpoint. And one line for each
    link they name that leads to no log (`sources.not_a_log`: a loop, a
    link to nothing, a container's link to /dev/stdout, which would be the
    run's own output read back), left out."""
    named = [Path(text) for pattern in patterns for text in _matches(pattern)]
    skipped = {path: why for path in named if (why := not_a_log(path))}
    files = [path for path, _ in _regular(p for p in named if p not in skipped)]
    return files, [f"{path}: {why}" for path, why in skipped.items()]


def _regular(paths: Iterable[Path]) -> Iterator[tuple[Path, os.stat_result]]:
    """`paths` that are regular files now, with their `stat`, the first name
    of each (device, inode) only."""
    seen: set[tuple[int, int]] = set()
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if stat.S_ISREG(st.st_mode) and key not in seen:
            seen.add(key)
            yield path, st


def _named_by(path: Path, patterns: Sequence[str]) -> bool:
    """Whether `pattern_paths` of one of `patterns` lists `path` now, told
    without listing: a directory's files (not hidden), the path itself, or a
    glob's match, component by component (`glob.glob` without `recursive`:
    a `*` or `[` component skips hidden names unless it starts with `.`)."""
    for pattern in patterns:
        named = Path(pattern)
        if named.is_dir():
            if path.parent == named and not path.name.startswith("."):
                return True
        elif named.exists() or not glob.has_magic(pattern):
            if path == named:
                return True
        elif pattern.endswith("/"):  # a glob of directories only
            continue
        elif len(named.parts) == len(path.parts) and all(
            fnmatch.fnmatchcase(part, want)
            and not (
                glob.has_magic(want)
                and part.startswith(".")
                and not want.startswith(".")
            )
            for part, want in zip(path.parts, named.parts, strict=True)
        ):
            return True
    return False


# A listing taken less than this after its directory's last change is not
# reused: a name made in the same tick of the file system's clock would
# leave the directory's mtime as it was (git's "racily clean" entries).
RACY_NS = 2_000_000_000


class Listings:
    """A run's directory listings, each reused while its directory is
    unchanged.

    `copies_after_read` lists a live log's directory after each read, to
    find a copy made meanwhile: over 400 vhost logs in one directory of
    3,600 files, 400 listings and 1.4M names compared, about 0.9 s of a
    1.6 s cron run with no new line. Making, removing or renaming a name
    changes its directory's mtime, so a listing whose directory has the
    same (device, inode, mtime, ctime) as when it was taken holds the same
    names; one taken within `RACY_NS` of that mtime is not kept.
    """

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple[int, int, int, int], dict[str, list[str]]]]
        self._kept = {}
        self.listed = 0  # how many times a directory was listed

    def rotation_set(self, live: Path) -> list[str]:
        """The names in `live`'s directory now that `rotation_key` puts in
        its rotation set, sorted. Raises OSError when it cannot be listed."""
        name = os.fspath(live.parent)
        before = time.time_ns()  # a change after this one moves the mtime
        st = os.stat(name)  # noqa: PTH116 - the name, once
        ident = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        kept = self._kept.get(name)
        if kept is not None and kept[0] == ident:
            sets = kept[1]
        else:
            sets = {}
            # names alone: 3,600 Path objects per live log were most of its cost
            for n in sorted(os.listdir(name)):  # noqa: PTH208
                sets.setdefault(rotation_key(n)[0], []).append(n)
            self.listed += 1
            if before - st.st_mtime_ns >= RACY_NS:
                self._kept[name] = (ident, sets)
            else:
                self._kept.pop(name, None)
        return sets.get(rotation_key(live.name)[0], [])


def _set_files(
    live: Path,
    patterns: Sequence[str],
    listings: Listings | None = None,
    wanted: Callable[[os.stat_result], bool] | None = None,
) -> Iterator[tuple[Path, os.stat_result]]:
    """Each regular file of `live`'s rotation set that the patterns name now,
    with its `stat`, once per (device, inode) by the first name they give:
    `_files` for one set, from one listing of its directory (a set's files
    are in its directory), the run's own when it keeps them (`listings`).
    A file whose `stat` is not `wanted` is left out before its names are
    checked against the patterns, the costly part."""
    try:
        names = (listings or Listings()).rotation_set(live)
    except OSError:
        return
    seen: set[tuple[int, int]] = set()
    for name in names:
        path = live.parent / name
        try:
            st = path.stat()
        except OSError:
            continue
        ident = (st.st_dev, st.st_ino)
        if (
            stat.S_ISREG(st.st_mode)
            and ident not in seen
            and (wanted is None or wanted(st))
            and _named_by(path, patterns)
        ):
            seen.add(ident)
            yield path, st


def watched(patterns: Sequence[str]) -> tuple[set[str], list[str]]:
    """Every path the patterns match now, and the patterns that match nothing."""
    found: set[str] = set()
    empty = []
    for pattern in patterns:
        hits = [m for m in _matches(pattern) if Path(m).exists()]
        if not hits:
            empty.append(pattern)
        found.update(path_name(h) for h in hits)
    return found, empty


def discover(patterns: Sequence[str]) -> tuple[list[Candidate], list[str], list[str]]:
    """Files matching `patterns`, oldest rotation first, one per content.

    Returns the candidates, the paths left out because another path holds
    the same content (a hard link, a symlink, `.2` next to `.2.gz`), and
    one-line problems (unreadable files).
    """
    found, problems = _files(patterns)
    paths = sorted(found, key=rotation_key)
    out: list[Candidate] = []
    for path in paths:
        try:
            head, skipped, st = _read_prefix(path, HEAD_BYTES)
            kind = compression(path)
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            problems.append(f"{path}: cannot read: {describe(exc)}; {_LATER}")
            continue
        out.append(
            Candidate(
                path=path,
                head=head,
                skipped=skipped,
                compressed=kind is not None,
                # a dated rotation (`dateext`) is no more live than `.1`
                live=kind is None
                and not _ROTATED.search(path.name)
                and rotation_key(path)[1] == 0,
                size=st.st_size,
                mtime=st.st_mtime,
                inode=st.st_ino,
                device=st.st_dev,
            )
        )
    kept, dropped = _one_per_content(out)
    return kept, dropped, problems


def _one_per_content(cands: list[Candidate]) -> tuple[list[Candidate], list[str]]:
    """Keep one file per identical head within a rotation set: the plain one,
    else the larger.

    Two files are one only within a rotation set (access.log and the
    access.log.1 copytruncate just made, or access.log.2 and the
    access.log.2.gz being written), so the logs of two sites whose first
    bytes happen to agree stay apart. Hard links and symlinks were merged by
    inode before. A file is left out only when its bytes prove it a copy of
    the one kept (`copy_proof`: the same bytes up to its end, a copytruncate
    copy, lines written after it), and the proof is kept with the file read
    (`copies`); without one, both are read. A copy is made under an older
    name than its log's (`access.log.1` of `access.log`), so of two files
    alike the newer is kept, and a newer file is never left out as a copy
    of an older one: one that begins as an older file did (a log of
    identical health checks, rotated) is a new file, read. Each file left
    out is noted with the file kept (`left`): a known stream's own file is
    read after all (`restore_own_files`).
    """
    chosen: dict[bytes, Candidate] = {}
    dropped: list[str] = []
    order: list[bytes] = []

    def leave(
        drop: Candidate,
        keep: Candidate,
        proof: dict[str, Any] | None = None,
        *,
        shorter: bool,
    ) -> None:
        dropped.append(drop.name)
        proof = proof or copy_proof(drop, keep)
        if proof is not None:
            keep.copies.append(proof)
        keep.left.append((drop, proof, shorter))

    apart: list[Candidate] = []
    for c in cands:
        key = rotation_key(c.path)[0].encode(errors="surrogateescape") + b"\n" + c.head
        prev = chosen.get(key)
        if prev is None:
            chosen[key] = c
            order.append(key)
            continue
        # the same: the newer is kept (a copytruncate copy is the older)
        better = (not c.compressed, c.size) >= (not prev.compressed, prev.size)
        keep, drop = (c, prev) if better else (prev, c)
        # the same content only if its bytes prove it: else one was
        # rewritten under the other's head (a log written again from the
        # same header), and the one left out may hold lines not read yet
        proof = copy_proof(drop, keep)
        chosen[key] = keep
        shorter = proof is not None and int(proof["size"]) < keep.size
        if proof is None or _newer(drop, keep):
            apart.append(drop)
            continue
        leave(drop, keep, proof, shorter=shorter)
    at = {id(c): i for i, c in enumerate(cands)}
    kept = sorted([chosen[k] for k in order] + apart, key=lambda c: at[id(c)])
    # a file shorter than its head whose whole content starts a longer file
    # of its set is a copy of that file's start (a copytruncate copy, lines
    # written after it): read the longer one, from where its stream stopped
    out = []
    sets: dict[str, list[Candidate]] = {}
    for c in kept:
        sets.setdefault(rotation_key(c.path)[0], []).append(c)
    for c in kept:
        longer = next(
            (
                o
                for o in sets[rotation_key(c.path)[0]]
                if o is not c
                and 0 < len(c.head) < len(o.head)
                and len(c.head) < HEAD_BYTES
                and o.head.startswith(c.head)
                and not _newer(c, o)
            ),
            None,
        )
        if longer is not None:
            leave(c, longer, shorter=True)
            continue
        out.append(c)
    return out, dropped


def _newer(a: Candidate, b: Candidate) -> bool:
    """Whether `a` is a newer rotation than `b` (`access.log` than `.1`)."""
    return rotation_key(a.path)[1] > rotation_key(b.path)[1]


def restore_own_files(
    cands: list[Candidate], dropped: list[str], checkpoints: list[dict[str, Any]]
) -> tuple[list[Candidate], list[str]]:
    """`discover`'s files, with those it left out as copies that are a known
    stream's own file put back, and the names still left out; each stream's
    own file among them says so (`owns`).

    `discover` leaves out a file whose whole content starts another file of
    its set: a copytruncate copy, lines written to the log after it. A file
    can begin with all of an older file's bytes by chance too: logrotate's
    `create` renames a log of identical lines (health checks, no time) and
    nginx writes the same lines to the new one. The first bytes cannot tell
    them apart; the stream can (`own_stream`, strongest first): the plain
    file it was read from (the device and inode of its `hint`), unchanged;
    a compressed file holding its bytes and nothing after (its file, or a
    copytruncate copy once the log was truncated, compressed by logrotate);
    the plain file it was read from, grown (`create` renames it: nginx
    writes on to it until it reopens its log); a compressed file holding
    its bytes and more. A stream's own file is that stream, and any other
    file that begins with its bytes is a new one (`reader._match`). Taken
    for the stream grown, the new file's first lines were skipped and the
    old file left out as its copy: lines lost. A compressed file read to
    its end (`seen` of a `done` stream) is put back too: it is that
    stream's, not another file's copy.
    """
    if not checkpoints:
        return cands, dropped
    streams = [c for c in checkpoints if "head_len" in c and not c.get("done")]
    finished = {
        tuple(c["seen"]) for c in checkpoints if c.get("done") and c.get("seen")
    }
    left: list[tuple[Candidate, Candidate, dict[str, Any] | None, bool]] = []
    todo = list(cands)
    while todo:  # a file left out may have been kept over others before
        keep = todo.pop()
        for drop, proof, shorter in keep.left:
            left.append((keep, drop, proof, shorter))
            todo.append(drop)
    plain = sorted(
        (c for c in [*cands, *(d for _, d, _, _ in left)] if not c.compressed),
        key=lambda c: rotation_key(c.path),
    )
    packed = [
        d
        for k, d, _, shorter in left
        if d.compressed
        and tuple(seen(d)) not in finished
        # not next to the plain file it was compressed from (`.1`, `.1.gz`)
        and (shorter or _newer(k, d))
    ]
    owner: dict[str, Candidate] = {}
    owned: set[int] = set()  # id() of each file in `owner`
    heads = HeadIndex(streams)
    for files, exact in (
        (plain, True),
        (packed, True),
        (plain, False),
        (packed, False),
    ):
        for c in files:
            if id(c) in owned:
                continue
            rest = [s for s in heads.starting(c) if s["stream_id"] not in owner]
            sid = own_stream(c, rest, exact=exact)
            if sid is not None:
                owner[sid] = c
                owned.add(id(c))
    out, names = list(cands), list(dropped)
    for keep, drop, proof, _ in left:
        done = drop.compressed and tuple(seen(drop)) in finished  # nothing to read
        if not done and id(drop) not in owned:
            continue
        if proof is not None and proof in keep.copies:
            keep.copies.remove(proof)
        out.append(drop)
        names.remove(drop.name)
    for sid, c in owner.items():
        c.owns = sid
    out.sort(key=lambda c: rotation_key(c.path))
    return out, names


def own_stream(
    candidate: Candidate, streams: list[dict[str, Any]], *, exact: bool
) -> str | None:
    """The id of the stream (not `done`) whose own file `candidate` is, if
    any. A plain file must be the one the stream was read from (the device
    and inode of its `hint`), with `exact` unchanged since (its size and
    mtime); a plain file that merely holds the stream's bytes may be a
    copytruncate copy while the stream goes on in the log. A compressed file
    must hold the stream's bytes, with `exact` nothing after (`ends_as`).
    Either way its head and its bytes before the offset are the stream's."""
    for cp in streams:
        if not candidate.matches(cp):
            continue
        hint = cp.get("hint") or {}
        if not candidate.compressed and (
            cp.get("compressed")
            or hint.get("ino") != candidate.inode
            or hint.get("dev", candidate.device) != candidate.device
            or (
                exact
                and (
                    hint.get("size") != candidate.size
                    or hint.get("mtime_ns") != int(candidate.mtime * 1e9)
                )
            )
        ):
            continue
        try:
            if candidate.compressed and exact:
                if ends_as(candidate, cp):
                    return str(cp["stream_id"])
                continue
            marker = read_tail_marker(candidate, int(cp["offset"]))
        except OSError:
            continue
        if marker is not None and sha256(marker) == cp.get("tail_sha256"):
            return str(cp["stream_id"])
    return None


def ends_as(candidate: Candidate, cp: dict[str, Any]) -> bool:
    """Whether `candidate` holds the stream's bytes before its offset and
    nothing after (decompressed: a file read to its end is checked once; its
    `seen` spares the next runs)."""
    offset = int(cp["offset"])
    if candidate.compressed and not isize_agrees(candidate, offset):
        return False
    marker = read_tail_marker(candidate, offset)
    if marker is None or sha256(marker) != cp.get("tail_sha256"):
        return False
    return read_span(candidate, offset, offset + 1) == b""


def copy_proof(copy: Candidate, of: Candidate) -> dict[str, Any] | None:
    """A proof that `copy` (plain, or compressed: decompressed to its end)
    holds the same bytes as plain `of` up to its own end, their heads
    already agreeing: its content's size, head and last 64 bytes. None when
    that does not hold or cannot be read."""
    if of.compressed or not copy.head:
        return None
    try:
        size = content_size(copy)
        if size is None or size > of.size:
            return None
        tail = read_tail_marker(copy, size)
        if tail is None or read_tail_marker(of, size) != tail:
            return None
    except OSError:
        return None
    return {
        "size": size,
        "head_sha256": sha256(copy.head),
        "tail_sha256": sha256(tail),
    }


def copies_after_read(
    live: Candidate,
    checkpoint: dict[str, Any],
    patterns: Sequence[str],
    listed: set[tuple[Any, ...]],
    listings: Listings | None = None,
) -> list[dict[str, Any]]:
    """Proofs (`copy_proof`) for the plain files of `live`'s rotation set
    that are byte prefixes of what its stream consumed, taken once the run
    has read the live log (`checkpoint` is its stream's, just advanced).

    logrotate's copytruncate may copy the log after the run listed the
    files, or finish a copy it had begun: the run then reads the log past
    the copy's end, and once the log is truncated the copy is shorter than
    the offset, with no marker to check in it and no proof taken of it when
    the files were listed. Each file of the set now, other than the files
    listed (`listed`: `seen` of each) unchanged, is proved here against the
    live log, which must still be the file found and still hold the bytes
    before the stream's offset (the marker just taken): the copy's size is
    at most that offset, its head and its last bytes are the log's. None
    is taken when the log was truncated (or rotated) meanwhile. The set's
    directory is listed again only when it changed since `listings` last
    listed it.
    """
    offset, n = int(checkpoint["offset"]), int(checkpoint["tail_len"])
    if live.compressed or n != min(offset, TAIL_BYTES):
        return []

    def wanted(st: os.stat_result) -> bool:
        return (
            (st.st_dev, st.st_ino) != (live.device, live.inode)
            and 0 < st.st_size <= offset
            and (st.st_dev, st.st_ino, st.st_size, st.st_mtime) not in listed
        )

    found = [path for path, _ in _set_files(live.path, patterns, listings, wanted)]
    if not found:
        return []
    now = _refreshed(live)
    proofs = []
    for path in found:
        copy = _plain_candidate(path)
        if copy is None or copy.skipped != live.skipped or copy.size > offset:
            continue
        start = live.skipped
        if len(copy.head) <= len(live.head):
            agree = live.head.startswith(copy.head)
        else:  # the log was shorter than a head when it was found
            try:
                span = read_span(now, start, start + len(copy.head))
            except OSError:
                return []
            agree = span == copy.head
        proof = copy_proof(copy, now) if agree else None
        if proof is not None:
            proofs.append(proof)
    try:  # last: the log still holds what the stream consumed, unchanged
        tail = read_tail_marker(_refreshed(live), offset)
    except OSError:
        return []
    if tail is None or sha256(tail) != checkpoint["tail_sha256"]:
        return []
    return proofs


def _refreshed(candidate: Candidate) -> Candidate:
    """`candidate` with its path's size now (reads check it is the same file)."""
    try:
        size = candidate.path.stat().st_size
    except OSError:
        size = 0
    return replace(candidate, size=size, copies=[])


def _plain_candidate(path: Path) -> Candidate | None:
    """The plain file at `path` as found now; None if compressed, empty or
    unreadable."""
    try:
        if compression(path) is not None:
            return None
        head, skipped, st = _read_prefix(path, HEAD_BYTES)
    except OSError:
        return None
    if not head:
        return None
    return Candidate(
        path=path,
        head=head,
        skipped=skipped,
        compressed=False,
        live=False,
        size=st.st_size,
        mtime=st.st_mtime,
        inode=st.st_ino,
        device=st.st_dev,
    )


def content_size(candidate: Candidate) -> int | None:
    """The bytes of content: a plain file's size, a compressed one's
    decompressed length (None when it cannot be decompressed to its end)."""
    if not candidate.compressed:
        return candidate.size
    stream, counter = _open_compressed(candidate)
    try:
        total = 0
        while piece := stream.read(1 << 20):
            total += len(piece)
    except OSError:
        raise
    except Exception:  # noqa: BLE001 - damaged or cut short: no size
        return None
    finally:
        counter.close()
    return total


def is_copy(candidate: Candidate, proof: dict[str, Any]) -> bool:
    """Whether `candidate` is the file `proof` was taken of (`copy_proof`),
    plain or compressed since: the same head, the same bytes before the
    proof's size, and nothing after it.

    A compressed file is decompressed even when its gzip trailer disagrees
    (`isize_agrees`): trailing garbage hides the trailer, and the content
    ends before it as `summarize` reads it. Only a file no stream continues
    gets here, once: the file that matches is remembered (`seen`)."""
    size = int(proof["size"])
    if sha256(candidate.head) != proof["head_sha256"]:
        return False
    if proof.get("seen") == seen(candidate):
        return True  # this very file, unchanged since it was checked
    if not candidate.compressed and candidate.size != size:
        return False
    tail = read_tail_marker(candidate, size)
    if tail is None or sha256(tail) != proof["tail_sha256"]:
        return False
    return read_span(candidate, size, size + 1) == b""  # ends there, undamaged


def seen(candidate: Candidate) -> list[Any]:
    """The file as found (device, inode, size, mtime): unchanged while equal."""
    return [candidate.device, candidate.inode, candidate.size, candidate.mtime]


def isize_agrees(candidate: Candidate, size: int) -> bool:
    """For a gzip file, whether its trailer's size (mod 2**32) is `size`: a
    cheap test before decompressing it; True for other compressions.

    The trailer ends the file, or NUL padding follows it (read as the end of
    the content); a file with other bytes after its last member (trailing
    garbage) or of several members does not pass: it is taken for a
    finished stream by its `seen` only."""
    want = (size % (1 << 32)).to_bytes(4, "little")
    try:
        if compression(candidate.path) != "gzip":
            return True
        with candidate.path.open("rb") as f:
            end = f.seek(0, os.SEEK_END)
            f.seek(max(0, end - 4))
            if f.read(4) == want:
                return True
            last = _before_nuls(f, end)  # where NUL padding begins
            if last == end:
                return False
            f.seek(max(0, last - 4))
            around = f.read(8)  # the trailer may end in NULs of its own
    except OSError:
        return False
    return want in around


def _before_nuls(f: IO[bytes], end: int) -> int:
    """Where the run of NUL bytes that ends file `f` (of `end` bytes) begins."""
    pos = end
    while pos > 0:
        start = max(0, pos - (64 << 10))
        f.seek(start)
        block = f.read(pos - start).rstrip(b"\x00")
        if block:
            return start + len(block)
        pos = start
    return 0


def is_idle(candidate: Candidate, grace: float, now: float | None = None) -> bool:
    """Whether a rotated plain file has not changed for `grace` seconds."""
    return not candidate.live and (now or time.time()) - candidate.mtime >= grace


def read_from(candidate: Candidate, offset: int, piece: int) -> Iterator[bytes]:
    """Decompressed content from `offset` on, in pieces of about `piece` bytes.

    Raises what the decompressor raises (a truncated .gz) after the bytes
    that could be read, and `ChangedError` when the path no longer holds the
    file that was found. Once a plain file is read to its end, `end` says
    where that was: what a reader did not take up to there is held back.
    A compressed file's content ends where trailing garbage or damaged data
    begins (as `summarize` reads it); `cut` then says why.
    """
    candidate.cut = None
    if not candidate.compressed:
        with open_plain(candidate) as f:
            f.seek(offset)
            while True:
                data = f.read(piece)
                if not data:
                    candidate.end = f.tell()
                    return
                yield data
    stream, counter = _open_compressed(candidate)
    try:
        skip = offset
        while skip > 0:
            data = stream.read(min(piece, skip))
            if not data:
                candidate.cut = stream.cut
                return
            skip -= len(data)
        while True:
            data = stream.read(piece)
            if not data:
                candidate.cut = stream.cut
                return
            yield data
    finally:
        counter.close()


def hint(candidate: Candidate) -> dict[str, int]:
    """Device, inode, size and mtime: never identity alone; with the stream's
    bytes, device and inode tell its own file (`own_stream`)."""
    return {
        "dev": candidate.device,
        "ino": candidate.inode,
        "size": candidate.size,
        "mtime_ns": int(candidate.mtime * 1e9),
    }
