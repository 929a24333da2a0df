"""Real processes and real files for the `pplog ingest` fault tests.

The harness of ingest-reliability.md §6: a `LogWriter` appends numbered nginx
`combined` lines the way nginx does (one O_APPEND descriptor, reopened on
USR1), a `Rotator` does what logrotate does (create or copytruncate, numbered
shifting, gzip with or without delaycompress, deletion past `rotate`), the
ingest runs are subprocesses (so SIGKILL and rlimits are real), and the oracle
reads the dataset back and checks every numbered line is there exactly once.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from pplog.batch import scan_dataset
from pplog.batch.ingest import FAULT_ENV

SEQ = re.compile(r"/seq/(\d{6})")
_NOISE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
KILLED = -9  # Popen.returncode of a SIGKILLed child
FAULT_POINTS = (
    "after_lock",
    "after_recovery",
    "mid_read",
    "after_staging_write",
    "before_commit_link",
    "after_commit_link",
    "mid_publish",
    "before_rollup_publish",  # rows in place, their rollups still staged
    "before_state_write",
    "after_state_write",
)
# points at or after this one leave a commit record behind
FIRST_COMMITTED = FAULT_POINTS.index("after_commit_link")


def combined(seq: int, *, when: datetime | None = None, agent: str = "w/1") -> str:
    """One nginx `combined` line whose path carries `seq` (no newline)."""
    t = (when or datetime.now(UTC)).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return (
        f'10.1.{seq // 250 % 250}.{seq % 250} - - [{t}] "GET /seq/{seq:06d} '
        f'HTTP/1.1" 200 {seq % 9000} "-" "{agent}"'
    )


def malformed(seq: int) -> str:
    """A line that does not parse but still names its `seq` (becomes a reject)."""
    return f"garbage without quotes /seq/{seq:06d} [not a time]"


class LogWriter:
    """Appends numbered lines like nginx: one descriptor, `reopen()` on USR1.

    `written` holds every seq whose complete line reached a file; `lost` the
    seqs the test declares lost in a documented window (copytruncate's
    copy -> truncate gap, a file deleted before it was read).
    """

    def __init__(
        self, directory: Path, name: str = "access.log", *, seed: int = 0
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.live = directory / name
        self.rng = random.Random(seed)
        self.next_seq = 1
        self.written: set[int] = set()
        self.malformed: set[int] = set()
        self.lost: set[int] = set()
        self._partial: tuple[int, bytes] | None = None
        self.fd = -1
        self.reopen()

    def reopen(self) -> None:
        """What nginx does on USR1: write to whatever `live` is now."""
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = os.open(self.live, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def close(self) -> None:
        """Close the descriptor."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _take(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def write(
        self, n: int = 1, *, bad_share: float = 0.0, agent_bytes: int = 0
    ) -> list[int]:
        """Append `n` complete lines; a `bad_share` of them malformed.

        `agent_bytes` gives each line a random user agent that long (lines
        that do not compress, to fill a small disk).
        """
        assert self._partial is None, "finish the partial line first"
        seqs, out = [], []
        for _ in range(n):
            seq = self._take()
            if bad_share and self.rng.random() < bad_share:
                out.append(malformed(seq))
                self.malformed.add(seq)
            elif agent_bytes:
                agent = "".join(self.rng.choices(_NOISE, k=agent_bytes))
                out.append(combined(seq, agent=agent))
            else:
                out.append(combined(seq))
            seqs.append(seq)
        if out:
            os.write(self.fd, ("\n".join(out) + "\n").encode())
        self.written.update(seqs)
        return seqs

    def write_raw(self, data: bytes) -> None:
        """Append bytes that carry no seq (headers, padding)."""
        os.write(self.fd, data)

    def start_partial(self) -> int:
        """Append the first half of a line, no newline (nginx mid-write)."""
        seq = self._take()
        line = (combined(seq) + "\n").encode()
        cut = len(line) // 2
        os.write(self.fd, line[:cut])
        self._partial = (seq, line[cut:])
        return seq

    def finish_partial(self, *, newline: bool = True) -> int:
        """Append the rest of the partial line."""
        assert self._partial is not None
        seq, rest = self._partial
        os.write(self.fd, rest if newline else rest[:-1])
        self._partial = None
        self.written.add(seq)
        return seq

    @property
    def partial_pending(self) -> bool:
        """Whether a line was started and not finished."""
        return self._partial is not None

    def abandon_partial(self) -> int:
        """nginx died mid-line: the half line stays, never completed; its seq
        counts as lost (it can only become a reject without its number)."""
        assert self._partial is not None
        seq, _ = self._partial
        self._partial = None
        self.lost.add(seq)
        return seq

    @property
    def expected(self) -> set[int]:
        """The oracle: every seq written, minus documented losses."""
        return self.written - self.lost


def seqs_in(path: Path) -> list[int]:
    """The seqs of the lines in a (possibly gzipped) file."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [int(m) for m in SEQ.findall(data.decode("utf-8", "replace"))]


def gzip_file(src: Path, dst: Path, *, keep_bytes: int | None = None) -> None:
    """gzip `src` to `dst` and delete `src`, as logrotate's compress does.

    With `keep_bytes`, stop after that many compressed bytes and keep `src`:
    logrotate caught in the middle of compressing.
    """
    data = gzip.compress(src.read_bytes(), mtime=0)
    if keep_bytes is not None:
        dst.write_bytes(data[:keep_bytes])
        return
    dst.write_bytes(data)
    src.unlink()


@dataclass
class Rotator:
    """logrotate for one log: numbered shifting, create/copytruncate, gzip.

    `deleted` collects the seqs of each file removed past `keep` rotations,
    in file order, so the oracle can allow exactly "an unread suffix of a
    deleted file" and nothing else.
    """

    writer: LogWriter
    keep: int = 4
    compress: bool = True
    delaycompress: bool = True
    deleted: list[list[int]] = field(default_factory=list)

    def _path(self, n: int) -> Path:
        base = self.writer.live
        plain = base.with_name(f"{base.name}.{n}")
        gz = base.with_name(f"{base.name}.{n}.gz")
        return gz if gz.exists() else plain

    def _shift(self) -> None:
        """Delete the oldest rotation, then .N -> .N+1 down to .1 -> .2."""
        oldest = self._path(self.keep)
        if oldest.exists():
            self.deleted.append(seqs_in(oldest))
            oldest.unlink()
        for n in range(self.keep - 1, 0, -1):
            src = self._path(n)
            if src.exists():
                suffix = ".gz" if src.name.endswith(".gz") else ""
                src.replace(src.with_name(f"{self.writer.live.name}.{n + 1}{suffix}"))

    def _compress(self) -> None:
        n = 2 if self.delaycompress else 1
        plain = self.writer.live.with_name(f"{self.writer.live.name}.{n}")
        if self.compress and plain.exists():
            gzip_file(plain, plain.with_name(plain.name + ".gz"))

    def create(self, *, reopen: bool = True) -> None:
        """Rename the live file to .1 and create a new empty one.

        Without `reopen` the writer keeps appending to .1 until the test
        calls `writer.reopen()` (nginx before USR1); don't compress .1 then.
        """
        self._shift()
        live = self.writer.live
        live.replace(live.with_name(f"{live.name}.1"))
        live.touch()
        if reopen:
            self.writer.reopen()
        self._compress()

    def copy(self) -> Path:
        """First half of copytruncate: shift, then copy the live file to .1."""
        self._shift()
        live = self.writer.live
        dst = live.with_name(f"{live.name}.1")
        shutil.copyfile(live, dst)
        return dst

    def truncate(self) -> None:
        """Second half of copytruncate: truncate the live file, then compress."""
        os.truncate(self.writer.live, 0)
        self._compress()

    def copytruncate(self) -> None:
        """copytruncate with nothing written between the copy and the truncate."""
        self.copy()
        self.truncate()


# --- running pplog ---------------------------------------------------------------

PPLOG = [sys.executable, "-m", "pplog"]


def child_env(fault: str | None = None) -> dict[str, str]:
    """The environment of a child `pplog`; `fault` makes it SIGKILL itself at
    that point of the commit protocol (`pplog.batch.ingest.FAULT_ENV`)."""
    env = dict(os.environ)
    env.update(NO_COLOR="1", POLARS_MAX_THREADS="2", PYTHONDONTWRITEBYTECODE="1")
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    return env


def pplog(
    *args: str | Path,
    timeout: float = 60,
    preexec_fn: Callable[[], None] | None = None,
    fault: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m pplog ARGS` and wait for it."""
    return subprocess.run(
        [*PPLOG, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(fault),
        preexec_fn=preexec_fn,  # noqa: PLW1509 - rlimits for the disk-full tests
        check=False,
    )


def ingest_args(
    writer_or_glob: LogWriter | str,
    dataset: Path,
    *extra: str,
    final_grace: float | None = 0,
) -> list[str]:
    """Arguments of `pplog ingest` for a writer's rotation set."""
    if isinstance(writer_or_glob, LogWriter):
        pattern = f"{writer_or_glob.live}*"
    else:
        pattern = writer_or_glob
    args = ["ingest", pattern, "--dataset", str(dataset), "--format", "combined"]
    if final_grace is not None:
        args += ["--final-grace", str(final_grace)]
    return args + list(extra)


def ingest(
    writer_or_glob: LogWriter | str,
    dataset: Path,
    *extra: str,
    fault: str | None = None,
    final_grace: float | None = 0,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """One `pplog ingest` run as a real process."""
    args = ingest_args(writer_or_glob, dataset, *extra, final_grace=final_grace)
    return pplog(*args, preexec_fn=preexec_fn, fault=fault)


def start_ingest(
    writer_or_glob: LogWriter | str,
    dataset: Path,
    *extra: str,
    fault: str | None = None,
    final_grace: float | None = 0,
) -> subprocess.Popen[str]:
    """Start `pplog ingest` without waiting (to kill it, or to overlap it)."""
    args = ingest_args(writer_or_glob, dataset, *extra, final_grace=final_grace)
    return subprocess.Popen(
        [*PPLOG, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(fault),
    )


_LIBRARY = """
import json, sys
{setup}
from pplog.batch import ingest
kw = json.loads(sys.argv[1])
r = ingest(kw.pop("paths"), kw.pop("dataset"), **kw)
print(json.dumps({{"committed": r.committed, "rows": r.rows, "rejects": r.rejects,
                  "warnings": r.warnings, "problems": r.problems}}))
"""


def ingest_library(
    paths: list[str],
    dataset: Path,
    *,
    setup: str = "",
    timeout: float = 60,
    fault: str | None = None,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """`pplog.batch.ingest(...)` in a child process, for its library-only knobs
    (`batch_bytes`) and for `setup` code that patches the child."""
    kw = {"paths": paths, "dataset": str(dataset), "format": "combined", **kwargs}
    return subprocess.run(
        [sys.executable, "-c", _LIBRARY.format(setup=setup), json.dumps(kw)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(fault),
        check=False,
    )


def start_ingest_library(
    paths: list[str], dataset: Path, *, setup: str = "", **kwargs: Any
) -> subprocess.Popen[str]:
    """`ingest_library` without waiting (its `setup` may pause the child)."""
    kw = {"paths": paths, "dataset": str(dataset), "format": "combined", **kwargs}
    return subprocess.Popen(
        [sys.executable, "-c", _LIBRARY.format(setup=setup), json.dumps(kw)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )


def result_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON an `ingest_library` child printed."""
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return doc


@contextlib.contextmanager
def held_lock(dataset: Path) -> Iterator[None]:
    """Hold the dataset's flock from this process, like a long-running run."""
    meta = dataset / "_pplog"
    meta.mkdir(parents=True, exist_ok=True)
    fd = os.open(meta / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


# --- the oracle ----------------------------------------------------------------


def records(dataset: Path) -> list[str]:
    """Names of the commit records."""
    log = dataset / "_pplog" / "log"
    return sorted(p.name for p in log.glob("*.json")) if log.is_dir() else []


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` with its content (to prove "unchanged")."""
    if not directory.exists():
        return {}
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def data_tree(dataset: Path) -> dict[str, bytes]:
    """The published files: requests/, rejects/ and rollups/."""
    out = {}
    for sub in ("requests", "rejects", "rollups"):
        out.update({f"{sub}/{k}": v for k, v in tree(dataset / sub).items()})
    return out


def dataset_frame(dataset: Path) -> pl.DataFrame:
    """Rows and rejects of the committed files, with the `seq` of each line."""
    lf: pl.LazyFrame = scan_dataset(dataset, include_rejects=True)
    names = lf.collect_schema().names()
    if "stream_id" not in names:  # nothing committed yet
        return pl.DataFrame(
            schema={"seq": pl.Int64, "stream_id": pl.String, "reject_reason": pl.String}
        )
    text = pl.col("raw")
    if "path" in names:
        text = pl.coalesce(pl.col("path"), text)
    return lf.select(
        text.str.extract(r"/seq/(\d{6})", 1).cast(pl.Int64).alias("seq"),
        "stream_id",
        "reject_reason",
        *(c for c in ("offset", "length", "source") if c in names),
    ).collect()


def seq_counts(dataset: Path) -> Counter[int]:
    """How often each seq is in the dataset (rows and rejects)."""
    seqs = dataset_frame(dataset).get_column("seq").drop_nulls().to_list()
    return Counter(int(s) for s in seqs)


def assert_clean(dataset: Path) -> None:
    """No leftovers of an interrupted run, and `pplog verify` passes."""
    staging = dataset / "_pplog" / "staging"
    assert not staging.exists() or not any(staging.iterdir()), list(staging.rglob("*"))
    tmps = [p for p in dataset.rglob("*") if ".tmp" in p.name]
    assert not tmps, tmps
    state = json.loads((dataset / "_pplog" / "state.json").read_bytes())
    listed = {f["path"] for f in state["files"]}
    on_disk = {
        str(p.relative_to(dataset))
        for sub in ("requests", "rejects")
        for p in (dataset / sub).rglob("*.parquet")
    } | {str(p.relative_to(dataset)) for p in (dataset / "rollups").rglob("*.zip")}
    assert on_disk == listed, ("orphans", on_disk - listed, "missing", listed - on_disk)
    assert_rollups(state["files"])
    assert state["applied_commit"] == int(max(records(dataset))[:20])
    verified = pplog("verify", dataset)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.rstrip().endswith("OK"), verified.stdout


def assert_rollups(files: list[dict[str, Any]]) -> None:
    """Rows and rollups committed together: each data and rejects file has
    exactly one rollup, at the mirrored path, and no rollup is left without
    its file."""
    rows = {f["path"]: f for f in files if f["kind"] != "rollup"}
    rollups = [f for f in files if f["kind"] == "rollup"]
    covered = Counter(f["of"] for f in rollups)
    assert set(covered) == set(rows), (
        set(rows) - set(covered),
        set(covered) - set(rows),
    )
    assert max(covered.values(), default=1) == 1, covered
    for f in rollups:
        mirrored = "rollups/" + f["of"].removesuffix(".parquet") + ".zip"
        assert f["path"] == mirrored, f
        assert f["rows"] == rows[f["of"]]["rows"], f


def assert_exactly_once(
    dataset: Path,
    expected: Iterable[int],
    *,
    deleted: list[list[int]] | None = None,
    clean: bool = True,
) -> Counter[int]:
    """Every expected seq exactly once, nothing else; then `assert_clean`.

    `deleted` lists the seqs of files rotated away: of each, an unread
    suffix may be missing (ingest reads a file in order), nothing more.
    """
    counts = seq_counts(dataset)
    doubled = sorted(s for s, n in counts.items() if n > 1)
    assert not doubled, f"{len(doubled)} seqs twice or more, e.g. {doubled[:10]}"
    want = set(expected)
    extra = sorted(set(counts) - want)
    assert not extra, f"{len(extra)} unexpected seqs, e.g. {extra[:10]}"
    missing = want - set(counts)
    for gone in deleted or []:
        unread = [s for s in gone if s in missing]
        if unread:
            first = gone.index(unread[0])
            assert unread == gone[first:], "a deleted file lost lines before its end"
            missing -= set(unread)
    assert not missing, f"{len(missing)} seqs missing, e.g. {sorted(missing)[:10]}"
    if clean:
        assert_clean(dataset)
    return counts


def kill_after(
    proc: subprocess.Popen[str], delay: float, sig: int = signal.SIGKILL
) -> int:
    """Send `sig` to `proc` after `delay` seconds unless it ended; its return code."""
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(sig)
    proc.communicate(timeout=30)
    return int(proc.returncode)


def wait_for_lock(
    dataset: Path, proc: subprocess.Popen[str], timeout: float = 30
) -> bool:
    """Wait until `proc` holds the dataset's lock (it writes its pid there)."""
    lock = dataset / "_pplog" / "lock"
    mark = f"pid {proc.pid} ".encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError):
            if lock.read_bytes().startswith(mark):
                return True
        time.sleep(0.001)
    return False


def wait_all(procs: list[subprocess.Popen[str]], timeout: float = 60) -> list[int]:
    """Wait for every process; their return codes."""
    deadline = time.monotonic() + timeout
    codes = []
    for p in procs:
        p.communicate(timeout=max(0.1, deadline - time.monotonic()))
        codes.append(int(p.returncode))
    return codes
