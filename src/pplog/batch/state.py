"""The dataset's own state: lock, commit log, state cache, and recovery.

Layout under the dataset directory::

    requests/date=YYYY-MM-DD/part-<run>-<n>.parquet   rows (the dataset readers use)
    rejects/date=YYYY-MM-DD/rejects-<run>-<n>.parquet  rejected lines, by ingest date
    _pplog/lock                                        flock target
    _pplog/log/<20 digits>.json                        commit records: the truth
    _pplog/state.json                                  cache of the applied state
    _pplog/staging/<run>/...                           files of a run not yet committed

A run writes its files under staging, then creates the next commit record
with a hard link (which fails if the name exists): that is the one atomic
step. Publishing renames the staged files into place and rewrites the cache;
a crash anywhere is finished (after the link) or undone (before it) by the
next run's `recover`, which trusts only the log.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pplog.errors import PplogError

VERSION = 1
KEEP_RECORDS = 100  # older commit records are pruned once applied


class StateError(PplogError):
    """The dataset's state cannot be trusted: nothing was changed."""


class DiskFullError(PplogError):
    """The disk filled up before the commit: nothing was committed."""


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

    def record(self, number: int) -> Path:
        """The commit record `number`."""
        return self.log / f"{number:020d}.json"


def is_dataset(path: Path) -> bool:
    """Whether `path` is a dataset directory written by `pplog ingest`."""
    return (path / "_pplog" / "log").is_dir()


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (creations, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write `data` to `path` and fsync it (not its directory)."""
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def replace_durably(path: Path, data: bytes) -> None:
    """Replace `path` atomically: tmp + fsync + rename + directory fsync."""
    tmp = path.with_name(f"{path.name}.tmp")
    write_durably(tmp, data)
    tmp.replace(path)
    fsync_dir(path.parent)


@contextlib.contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """Hold the dataset's lock; raise `Busy` if another run holds it.

    flock is released by the kernel when the process dies, however it dies,
    so a crashed run never leaves a stale lock.
    """
    layout.meta.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.meta / "lock", os.O_RDWR | os.O_CREAT, 0o644)
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

    def to_json(self) -> bytes:
        """The cache file's content."""
        doc = {
            "format": "pplog-state",
            "version": VERSION,
            "applied_commit": self.applied,
            "checkpoints": self.checkpoints,
            "files": self.files,
            "log_format": self.log_format,
        }
        return json.dumps(doc, indent=1, sort_keys=True).encode()


def _load_json(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_bytes())
    if not isinstance(doc, dict):
        msg = f"`{path}` is not a JSON object"
        raise ValueError(msg)
    return doc


def records(layout: Layout) -> list[int]:
    """Numbers of the commit records present, ascending."""
    if not layout.log.is_dir():
        return []
    out = []
    for p in layout.log.iterdir():
        if p.suffix == ".json" and p.stem.isdigit() and len(p.stem) == 20:
            out.append(int(p.stem))
    return sorted(out)


def read_record(layout: Layout, number: int) -> dict[str, Any]:
    """A commit record; `StateError` if it cannot be read."""
    path = layout.record(number)
    try:
        doc = _load_json(path)
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
    )


def load_state(layout: Layout) -> State:
    """The applied state, from the cache if it agrees with the log, else the log."""
    numbers = records(layout)
    if not numbers:
        return State()
    latest = numbers[-1]
    try:
        doc = _load_json(layout.state)
        if int(doc["applied_commit"]) == latest:
            return State(
                latest,
                list(doc["checkpoints"]),
                list(doc["files"]),
                doc.get("log_format"),
            )
    except (OSError, ValueError, KeyError, TypeError):
        pass  # a missing or damaged cache is rebuilt from the log
    return state_from_record(read_record(layout, latest))


def recover(layout: Layout) -> State:
    """Finish a committed run and undo uncommitted ones; return the state.

    Under the lock. The latest record is applied idempotently: each file is
    at its final path already, or still staged (then renamed), or was removed
    by a compaction (then deleted). Staging and temporary records left by runs
    that never committed are deleted.
    """
    numbers = records(layout)
    if numbers:
        latest = numbers[-1]
        record = read_record(layout, latest)
        cached = None
        try:
            cached = int(_load_json(layout.state)["applied_commit"])
        except (OSError, ValueError, KeyError, TypeError):
            cached = None
        if cached != latest:
            publish(layout, record)
            write_state(layout, state_from_record(record))
    if layout.staging.exists():
        shutil.rmtree(layout.staging, ignore_errors=True)
    if layout.log.is_dir():
        for p in layout.log.glob("*.tmp*"):
            p.unlink(missing_ok=True)
    return load_state(layout)


def publish(layout: Layout, record: dict[str, Any]) -> None:
    """Move a committed record's staged files into place; delete what it removes."""
    touched: set[Path] = set()
    for entry in record.get("added", []):
        final = layout.root / entry["path"]
        staged = layout.root / entry["staging"]
        if final.exists() and final.stat().st_size == entry["bytes"]:
            continue
        if not staged.exists():
            msg = (
                f"commit {record['commit']} lists `{entry['path']}`, which is neither "
                "staged nor in place; the dataset is damaged (run `pplog verify`)"
            )
            raise StateError(msg)
        final.parent.mkdir(parents=True, exist_ok=True)
        staged.replace(final)
        touched.add(final.parent)
    for entry in record.get("removed", []):
        path = layout.root / entry["path"]
        if path.exists():
            path.unlink()
            touched.add(path.parent)
    for directory in touched:
        fsync_dir(directory)


def write_state(layout: Layout, state: State) -> None:
    """Rewrite the cache (atomically) and prune old records."""
    replace_durably(layout.state, state.to_json())
    numbers = records(layout)
    for old in numbers[:-KEEP_RECORDS]:
        layout.record(old).unlink(missing_ok=True)


def commit(layout: Layout, record: dict[str, Any]) -> None:
    """Create the next commit record: the atomic point of a run.

    The record is written and fsynced under a temporary name, then linked to
    its final name; `link` fails when the name exists, so two writers can
    never both commit the same number.
    """
    number = int(record["commit"])
    layout.log.mkdir(parents=True, exist_ok=True)
    tmp = layout.log / f"{number:020d}.json.tmp.{record['run_id']}"
    try:
        write_durably(tmp, json.dumps(record, indent=1, sort_keys=True).encode())
        os.link(tmp, layout.record(number))
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.EEXIST:
            msg = f"commit record {number} exists: another writer? nothing changed"
            raise StateError(msg) from exc
        raise
    tmp.unlink()
    fsync_dir(layout.log)
