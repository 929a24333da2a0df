"""The dataset's own state: lock, commit log, state cache, and recovery.

Layout under the dataset directory::

    requests/date=YYYY-MM-DD/part-<run>-<n>.parquet   rows (the dataset readers use)
    rejects/date=YYYY-MM-DD/rejects-<run>-<n>.parquet  rejected lines, by ingest date
    rollups/requests/date=.../part-<run>-<n>.zip       each file's Partial (`rollup`)
    rollups/rejects/date=.../rejects-<run>-<n>.zip
    _pplog/lock                                        flock target
    _pplog/log/<20 digits>.json                        commit records: the truth
    _pplog/state.json                                  cache of the applied state
    _pplog/staging/<run>/...                           files of a run not yet committed

A run writes its files under staging, then creates the next commit record
with a hard link (which fails if the name exists): that is the one atomic
step. Publishing renames the staged files into place and rewrites the cache;
a crash anywhere is finished (after the link) or undone (before it) by the
next run's `recover`, which trusts only the log.

Nothing inside the dataset is reached through a symbolic link (`_fs`): every
command refuses a dataset whose own entries are links, and every file is
opened, renamed or removed from its directory's descriptor with `O_NOFOLLOW`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pplog.batch import _fs
from pplog.clientip import ProxyPolicy
from pplog.errors import PplogError
from pplog.formats import PRESETS, LogFormat

VERSION = 1
KEEP_RECORDS = 100  # older commit records are pruned once applied
ROLLUP = "rollup"  # the manifest's kind for a file's rollup; `of` names the file
# zstd level of the dataset's Parquet files (polars' default is 3): the 11
# files of 2M elb_log lines took 1.18-1.39 s of CPU to encode against 1.42-1.79,
# and came out 0.3% smaller (most of their pages are dictionary keys already)
ZSTD_LEVEL = 1
_MANIFEST_KEYS = ("kind", "date", "path", "rows", "bytes", "of")


def manifest_entry(added: dict[str, Any]) -> dict[str, Any]:
    """What the manifest keeps of a staged file's commit entry."""
    return {k: added[k] for k in _MANIFEST_KEYS if k in added}


class StateError(PplogError):
    """The dataset's state cannot be trusted: nothing was changed."""


class DiskFullError(PplogError):
    """The disk filled up before the commit: nothing was committed."""


class CommittedError(PplogError):
    """The run's commit record is linked, so the run is committed, but a step
    after it (moving the files into place, the state cache) failed: the next
    run, or any reader, finishes or finds it; nothing is lost or doubled."""

    @classmethod
    def after(
        cls, layout: Layout, number: int, step: str, exc: Exception
    ) -> CommittedError:
        """The error for `step` of commit `number` failing with `exc` (whose
        file name is relative to a directory descriptor: the dataset names
        where)."""
        why = getattr(exc, "strerror", None) or str(exc)
        where = getattr(exc, "filename", None)
        said = f"{why} (`{where}`)" if where else why
        msg = (
            f"commit {number} of `{layout.root}` is made, but {step} failed: "
            f"{said}; the next run finishes it (nothing is lost or read twice)"
        )
        return cls(msg)


class Busy(PplogError):
    """Another run holds the dataset's lock (for `held` seconds, if known)."""

    def __init__(self, message: str, held: float | None = None) -> None:
        super().__init__(message)
        self.held = held


@dataclass(frozen=True)
class Layout:
    """Paths inside one dataset directory."""

    root: Path

    @property
    def meta(self) -> Path:
        """`_pplog/`: everything that is not data."""
        return self.root / "_pplog"

    @property
    def log(self) -> Path:
        """Commit records."""
        return self.meta / "log"

    @property
    def state(self) -> Path:
        """The state cache."""
        return self.meta / "state.json"

    @property
    def staging(self) -> Path:
        """In-flight files of runs that have not committed."""
        return self.meta / "staging"

    @property
    def requests(self) -> Path:
        """The rows, partitioned by `date=`."""
        return self.root / "requests"

    @property
    def rejects(self) -> Path:
        """Rejected lines, partitioned by ingest `date=`."""
        return self.root / "rejects"

    @property
    def rollups(self) -> Path:
        """Each data and rejects file's rollup, at its path below this."""
        return self.root / "rollups"

    def record(self, number: int) -> Path:
        """The commit record `number`."""
        return self.log / f"{number:020d}.json"

    def check(self) -> None:
        """Refuse the dataset if one of its own entries is a symbolic link.

        Every command runs this first, readers included: a dataset with a
        link inside is refused as a whole (`UnsafePathError`), whatever the
        command would have touched.
        """
        lock = self.meta / "lock"
        entries = (self.meta, self.log, self.state, lock, self.staging)
        _fs.check(self.root, *entries, self.requests, self.rejects, self.rollups)
        kept = _fs.listdir(self.root, self.log)  # at most KEEP_RECORDS and a few
        _fs.check(self.root, *(self.log / name for name in kept))


def is_dataset(path: Path) -> bool:
    """Whether `path` is a dataset directory written by `pplog ingest`.

    A linked `_pplog` or `_pplog/log` counts, so that it is refused with
    its reason rather than taken for a directory of logs.
    """
    meta = path / "_pplog"
    try:
        return (
            meta.is_symlink() or (meta / "log").is_symlink() or (meta / "log").is_dir()
        )
    except OSError:  # a directory that cannot be searched: said by its reader
        return False


def write_durably(layout: Layout, path: Path, data: bytes) -> None:
    """Write `data` to `path` and fsync it (not its directory)."""
    with _fs.open_write(layout.root, path) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def replace_durably(layout: Layout, path: Path, data: bytes) -> None:
    """Replace `path` atomically: tmp + fsync + rename + directory fsync."""
    tmp = path.with_name(f"{path.name}.tmp")
    write_durably(layout, tmp, data)
    _fs.rename(layout.root, tmp, path)
    _fs.fsync_dir(layout.root, path.parent)


@contextlib.contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """Hold the dataset's lock; raise `Busy` if another run holds it.

    flock is released by the kernel when the process dies, however it dies,
    so a crashed run never leaves a stale lock. A linked `_pplog` or lock
    file is refused before anything is opened through it.
    """
    _fs.makedirs(layout.root, layout.meta)
    fd = _fs.open_fd(layout.root, layout.meta / "lock", os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder, held = _holder(fd)
            msg = f"another pplog run holds `{layout.meta / 'lock'}` ({holder})"
            raise Busy(msg, held) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {now_iso()}\n".encode())
        yield
    finally:
        os.close(fd)


def _holder(fd: int) -> tuple[str, float | None]:
    """Who holds the lock and for how long, from what it wrote into the file."""
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
        since = text.rsplit(" since ", 1)[1]
        start = datetime.strptime(since, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except (OSError, IndexError, ValueError):
        return "unknown", None
    return text, (datetime.now(UTC) - start).total_seconds()


def now_iso() -> str:
    """The current UTC time, ISO 8601."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class State:
    """The applied state: last commit, checkpoints, and the file manifest."""

    applied: int = 0
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    log_format: dict[str, str] | None = None
    # the attribution the rows were read with (`ProxyPolicy.recorded`), which
    # the dataset's summaries take (None: written before it was recorded)
    policy: dict[str, Any] | None = None
    # a state made from the latest record: where each file it added was
    # staged, for readers that come before the files are moved into place
    # (a run that failed or died after its commit point: `CommittedError`)
    staged: dict[str, str] = field(default_factory=dict, compare=False)

    def to_json(self) -> bytes:
        """The cache file's content."""
        doc = {
            "format": "pplog-state",
            "version": VERSION,
            "applied_commit": self.applied,
            "checkpoints": self.checkpoints,
            "files": self.files,
            "log_format": self.log_format,
            "policy": self.policy,
        }
        return json.dumps(doc, indent=1, sort_keys=True).encode()


def recorded_format(state: State) -> LogFormat | None:
    """The format the dataset's rows were read with, as its runs recorded it
    (the preset of that name when its format string is the same)."""
    saved = state.log_format
    if not saved:
        return None
    preset = PRESETS.get(saved["name"])
    if preset is not None and preset.format == saved["format"]:
        return preset
    return LogFormat.from_string(
        saved["format"], name=saved["name"], escape=saved["escape"]
    )


def recorded_policy(state: State) -> ProxyPolicy | None:
    """The attribution the dataset's rows were read with, as its last run
    recorded it; None for a dataset written before runs recorded it (its
    summaries take the default, as they did)."""
    if not state.policy:
        return None
    return ProxyPolicy.from_record(state.policy)


def _load_json(layout: Layout, path: Path) -> dict[str, Any]:
    doc = json.loads(_fs.read_bytes(layout.root, path))
    if not isinstance(doc, dict):
        msg = f"`{path}` is not a JSON object"
        raise ValueError(msg)
    return doc


def records(layout: Layout) -> list[int]:
    """Numbers of the commit records present, ascending."""
    out = []
    for name in _fs.listdir(layout.root, layout.log):
        stem, dot, suffix = name.partition(".")
        if dot and suffix == "json" and stem.isdigit() and len(stem) == 20:
            out.append(int(stem))
    return sorted(out)


def read_record(layout: Layout, number: int) -> dict[str, Any]:
    """A commit record; `StateError` if it cannot be read."""
    path = layout.record(number)
    try:
        doc = _load_json(layout, path)
        if doc.get("format") != "pplog-commit" or doc.get("commit") != number:
            msg = "not a pplog commit record"
            raise ValueError(msg)
    except (OSError, ValueError) as exc:
        msg = (
            f"commit record `{path}` is unreadable ({exc}); nothing was changed. "
            "Restore it from a backup, or move it away to roll the dataset back to "
            "the previous record (lines after that are then read again)"
        )
        raise StateError(msg) from exc
    return doc


def state_from_record(record: dict[str, Any]) -> State:
    """The state a record leads to."""
    return State(
        applied=int(record["commit"]),
        checkpoints=list(record["checkpoints"]),
        files=list(record["manifest"]),
        log_format=record.get("log_format"),
        policy=record.get("policy"),
        staged={
            e["path"]: e["staging"] for e in record.get("added", []) if "staging" in e
        },
    )


def load_state(layout: Layout) -> State:
    """The applied state, from the cache if it agrees with the log, else the log."""
    numbers = records(layout)
    if not numbers:
        return State()
    latest = numbers[-1]
    try:
        doc = _load_json(layout, layout.state)
        if int(doc["applied_commit"]) == latest:
            return State(
                latest,
                list(doc["checkpoints"]),
                list(doc["files"]),
                doc.get("log_format"),
                doc.get("policy"),
            )
    except (OSError, ValueError, KeyError, TypeError):
        pass  # a missing or damaged cache is rebuilt from the log
    return state_from_record(read_record(layout, latest))


def located(layout: Layout, state: State, path: str) -> Path:
    """Where a file of `state`'s manifest is now: in place, or still staged
    when its commit is not published yet (a reader never waits for the next
    run to see a committed one)."""
    final = layout.root / path
    staged = state.staged.get(path)
    if staged is None or _fs.lstat(layout.root, final) is not None:
        return final
    there = layout.root / staged
    return there if _fs.lstat(layout.root, there) is not None else final


def recover(layout: Layout) -> State:
    """Finish a committed run and undo uncommitted ones; return the state.

    Under the lock. The latest record is applied idempotently: each file is
    at its final path already, or still staged (then renamed), or was removed
    by a compaction (then deleted); an error on the way is a `CommittedError`
    naming that commit. Staging and temporary records left by runs that never
    committed are deleted. A dataset with a link among its own
    entries is refused first (`Layout.check`).
    """
    layout.check()
    numbers = records(layout)
    if numbers:
        latest = numbers[-1]
        record = read_record(layout, latest)
        cached = None
        try:
            cached = int(_load_json(layout, layout.state)["applied_commit"])
        except (OSError, ValueError, KeyError, TypeError):
            cached = None
        if cached != latest:  # a failure here names the commit it finishes
            finish_commit(layout, record)
    _fs.rmtree(layout.root, layout.staging)
    for name in _fs.listdir(layout.root, layout.log):
        if ".tmp" in name:
            _fs.unlink(layout.root, layout.log / name)
    return load_state(layout)


def publish(layout: Layout, record: dict[str, Any]) -> None:
    """Move a committed record's staged files into place; delete what it removes."""
    root = layout.root
    touched: set[Path] = set()
    for entry in record.get("added", []):
        final = root / entry["path"]
        staged = root / entry["staging"]
        there = _fs.lstat(root, final)
        if there is not None and there.st_size == entry["bytes"]:
            continue
        if _fs.lstat(root, staged) is None:
            msg = (
                f"commit {record['commit']} lists `{entry['path']}`, which is neither "
                "staged nor in place; the dataset is damaged (run `pplog verify`)"
            )
            raise StateError(msg)
        _fs.makedirs(root, final.parent)
        _fs.rename(root, staged, final)
        touched.add(final.parent)
    for entry in record.get("removed", []):
        path = root / entry["path"]
        if _fs.unlink(root, path):
            touched.add(path.parent)
    for directory in touched:
        _fs.fsync_dir(root, directory)


def finish_commit(
    layout: Layout,
    record: dict[str, Any],
    hit: Callable[[str], None] | None = None,
) -> State:
    """Move a committed run's files into place and record it applied; the
    state it leads to. It is committed already: what fails here is a
    `CommittedError` (not "nothing committed"), and the staged files stay
    for the next run's `recover`. `hit`: the fault tests' kill points."""
    hit = hit or (lambda _point: None)
    number = int(record["commit"])
    added = record.get("added", [])
    try:
        if added:  # fault points between renames (renames are idempotent)
            publish(layout, {**record, "added": added[:1]})
            hit("mid_publish")
            rows_only = [a for a in added if a["kind"] != ROLLUP]
            publish(layout, {**record, "added": rows_only})
            hit("before_rollup_publish")
        publish(layout, record)
    except OSError as exc:
        step = "moving its files into place"
        raise CommittedError.after(layout, number, step, exc) from exc
    hit("before_state_write")
    state = state_from_record(record)
    try:
        write_state(layout, state)
    except OSError as exc:
        step = "writing the state cache"
        raise CommittedError.after(layout, number, step, exc) from exc
    hit("after_state_write")
    return state


def write_state(layout: Layout, state: State) -> None:
    """Rewrite the cache (atomically) and prune old records."""
    replace_durably(layout, layout.state, state.to_json())
    numbers = records(layout)
    for old in numbers[:-KEEP_RECORDS]:
        _fs.unlink(layout.root, layout.record(old))


def commit(layout: Layout, record: dict[str, Any]) -> None:
    """Create the next commit record: the atomic point of a run.

    The record is written and fsynced under a temporary name, then linked to
    its final name; `link` fails when the name exists, so two writers can
    never both commit the same number. An error before the link is raised as
    it is (nothing is committed: the caller removes its staging); once linked
    the run is committed, and a failure after it is a `CommittedError` (the
    staged files must then stay, for `recover` to publish).
    """
    number = int(record["commit"])
    _fs.makedirs(layout.root, layout.log)
    tmp = layout.log / f"{number:020d}.json.tmp.{record['run_id']}"
    try:
        data = json.dumps(record, indent=1, sort_keys=True).encode()
        write_durably(layout, tmp, data)
        _fs.link(layout.root, tmp, layout.record(number))
    except OSError as exc:
        _fs.unlink(layout.root, tmp)
        if exc.errno == errno.EEXIST:
            msg = f"commit record {number} exists: another writer? nothing changed"
            raise StateError(msg) from exc
        raise
    with contextlib.suppress(OSError):  # a name left is removed by `recover`
        _fs.unlink(layout.root, tmp)
    try:
        _fs.fsync_dir(layout.root, layout.log)
    except OSError as exc:
        raise CommittedError.after(
            layout, number, "syncing the commit log", exc
        ) from exc
