"""`pplog ingest` killed with SIGKILL and starved of disk, then run again.

ingest-reliability.md §6 rows 8, 9, 11, 12 and 13 with real processes: a
run is killed at each step of the commit protocol (`PPLOG_FAULT_POINT`) and at
random moments, alone and overlapping, while the log is appended to and
rotated; after a final run the dataset must hold every numbered request
exactly once, with nothing left in staging and `pplog verify` passing.

The unmarked tests are a fast subset; the randomized soaks are `slow`
(`pytest -m slow tests/test_ingest_faults.py`). `PPLOG_SOAK_ITERATIONS`,
`PPLOG_SOAK_SEEDS` (e.g. `5,6,7`) and `PPLOG_SOAK_SECONDS` scale the soaks;
a failure names its seed and the steps taken, and the seed replays them.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ingest_harness import (
    FAULT_POINTS,
    FIRST_COMMITTED,
    KILLED,
    PPLOG,
    LogWriter,
    Rotator,
    assert_exactly_once,
    child_env,
    ingest,
    ingest_library,
    kill_after,
    pplog,
    records,
    seq_counts,
    start_ingest,
    wait_all,
)

SOAK_ITERATIONS = int(os.environ.get("PPLOG_SOAK_ITERATIONS", "100"))
SOAK_SEEDS = [int(s) for s in os.environ.get("PPLOG_SOAK_SEEDS", "1,2,3,4").split(",")]


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[LogWriter]:
    w = LogWriter(tmp_path / "logs", seed=11)
    yield w
    w.close()


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    return tmp_path / "dataset"


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stderr
    return proc


def _backlog(writer: LogWriter, rot: Rotator, ds: Path) -> None:
    """A committed first run, then new lines across a create rotation (its
    tail compressed later), a copytruncate and rejects: the next run has
    several files, streams and partitions to stage, commit and publish."""
    writer.write(50, bad_share=0.1)
    _ok(ingest(writer, ds))
    writer.write(20, bad_share=0.1)
    rot.create()
    writer.write(10)
    rot.copytruncate()
    writer.write(15, bad_share=0.1)


def _killed_run_left(ds: Path, point: str, before: list[str]) -> None:
    """What a run killed at `point` leaves: a record only after the link,
    and until then readers see exactly the previous commit."""
    after = records(ds)
    committed = FAULT_POINTS.index(point) >= FIRST_COMMITTED
    assert len(after) == len(before) + committed, (point, before, after)


@pytest.mark.parametrize("point", [p for p in FAULT_POINTS if p != "mid_read"])
def test_sigkill_at_each_commit_step(writer: LogWriter, ds: Path, point: str) -> None:
    """§6 rows 8 and 11: SIGKILL at each step, then a clean run: exact
    oracle, staging cleaned, the record absent or fully applied, no orphan
    file, and the dead run's lock is no obstacle."""
    rot = Rotator(writer, keep=5, compress=True, delaycompress=True)
    _backlog(writer, rot, ds)
    before = records(ds)
    counts = seq_counts(ds)
    proc = ingest(writer, ds, fault=point)
    assert proc.returncode == KILLED, proc.stderr
    _killed_run_left(ds, point, before)
    if FAULT_POINTS.index(point) < FIRST_COMMITTED:
        assert seq_counts(ds) == counts  # readers still see the last commit
    writer.write(5)
    final = _ok(ingest(writer, ds, "-v"))
    assert "skipped" not in final.stderr  # the kernel released the dead run's lock
    assert_exactly_once(ds, writer.expected)


@pytest.mark.parametrize("nth", [1, 3])
def test_sigkill_mid_read(writer: LogWriter, ds: Path, nth: int) -> None:
    """SIGKILL after the n-th staged batch (small batches through the library
    in a child process): nothing committed, then exactly once."""
    rot = Rotator(writer, keep=5, compress=True, delaycompress=False)
    _backlog(writer, rot, ds)
    writer.write(200)
    before = records(ds)
    proc = ingest_library(
        [f"{writer.live}*"], ds, batch_bytes=2048, fault=f"mid_read:{nth}"
    )
    assert proc.returncode == KILLED, proc.stderr
    _killed_run_left(ds, "mid_read", before)
    assert any((ds / "_pplog" / "staging").iterdir())  # killed while staging
    _ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def test_kills_at_every_step_in_a_row(writer: LogWriter, ds: Path) -> None:
    """One kill per step with more lines and rotations in between and no
    clean run until the end: each run recovers what the previous left."""
    rot = Rotator(writer, keep=8, compress=True, delaycompress=True)
    _backlog(writer, rot, ds)
    for n, point in enumerate(FAULT_POINTS):
        writer.write(12, bad_share=0.1)
        if n % 3 == 1:
            rot.create()
        elif n % 3 == 2:
            rot.copytruncate()
        fault = "mid_publish" if point == "mid_read" else point
        proc = ingest(writer, ds, fault=fault)
        assert proc.returncode == KILLED, (point, proc.stderr)
    _ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def test_sigkill_at_random_moments(writer: LogWriter, ds: Path) -> None:
    """§6 rows 9 and 20, fast: runs killed (SIGKILL or SIGTERM) after random
    delays (seeded), appends and rotations in between, then one clean run."""
    rng = random.Random(20260821)
    rot = Rotator(writer, keep=10, compress=True, delaycompress=True)
    codes = []
    for i in range(8):
        writer.write(rng.randint(20, 400), bad_share=0.05)
        if i % 3 == 2:
            rot.create() if rng.random() < 0.5 else rot.copytruncate()
        sig = signal.SIGTERM if i % 2 else signal.SIGKILL  # §6 row 20 too
        codes.append(kill_after(start_ingest(writer, ds), rng.uniform(0.1, 0.9), sig))
    assert set(codes) <= {0, KILLED, -signal.SIGTERM}, codes
    _ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def _fsize_limit(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def _disk_full_runs(
    writer: LogWriter, ds: Path, limits: list[int], rng: random.Random
) -> None:
    """Runs under a file-size limit: each either commits (exit 0) or fails
    with one `Error:` line (exit 1); a run that fails before its commit point
    leaves no record."""
    rot = Rotator(writer, keep=20, compress=True, delaycompress=True)
    for limit in limits:
        writer.write(rng.randint(50, 600), bad_share=0.05)
        if rng.random() < 0.4:
            rot.create() if rng.random() < 0.5 else rot.copytruncate()
        before = records(ds)
        proc = ingest(writer, ds, preexec_fn=_fsize_limit(limit))
        assert proc.returncode in (0, 1), (limit, proc.returncode, proc.stderr)
        if proc.returncode == 1:
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
            if "nothing was committed" in lines[0]:
                assert records(ds) == before
    _ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def test_disk_full_at_several_limits(writer: LogWriter, ds: Path) -> None:
    """§6 row 12: a file-size limit hit while staging, at the commit record,
    or in the state file; each run fails cleanly; then exactly once."""
    rng = random.Random(12)
    _disk_full_runs(writer, ds, [2_000, 6_000, 12_000, 30_000, 1_000_000], rng)


def test_disk_full_at_the_commit_record(tmp_path: Path, ds: Path) -> None:
    """Eighty small logs: every staged file fits under the limit, the commit
    record (eighty checkpoints, about 52 kB) does not: exit 1, nothing
    committed. Their lines are staged together: one file of rows and its
    rollup (about 27 kB)."""
    logs = tmp_path / "sites"
    writers = [LogWriter(logs, f"site{i:02d}.log", seed=i) for i in range(80)]
    try:
        for n, w in enumerate(writers):
            w.next_seq = 1 + 1000 * n
            w.write(3)
        proc = ingest(f"{logs}/*.log*", ds, preexec_fn=_fsize_limit(40_000))
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines == [lines[0]] and lines[0].startswith("Error: disk full at the")
        assert "nothing was committed" in lines[0]
        assert records(ds) == []
        _ok(ingest(f"{logs}/*.log*", ds))
        assert_exactly_once(ds, set().union(*(w.expected for w in writers)))
    finally:
        for w in writers:
            w.close()


# A child whose `_fs.<call>` fails with ENOSPC where `when` holds (`path` is
# its first path): the steps of a run after its commit record is linked
_FAILS_AFTER_THE_LINK = """
import errno
from pplog.batch import _fs
real = _fs.{call}
def failing(root, path, *rest):
    if {when}:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    return real(root, path, *rest)
_fs.{call} = failing
"""


@pytest.mark.parametrize(
    ("call", "when", "step"),
    [
        ("fsync_dir", "path.name == 'log'", "syncing the commit log"),
        ("rename", "'staging' in str(path)", "moving its files into place"),
        ("rename", "path.name == 'state.json.tmp'", "writing the state cache"),
    ],
    ids=["log-sync", "publish", "state"],
)
def test_a_failure_after_the_commit_point_is_finished_not_undone(
    writer: LogWriter, ds: Path, call: str, when: str, step: str
) -> None:
    """A full disk after the commit record was linked: the run said "nothing
    was committed" and deleted its staged files, so every later run failed
    on a commit listing files "neither staged nor in place" and the run's
    lines were lost. It is committed: the error says so, readers find the
    files where they are, and the next run moves them into place."""
    writer.write(40, bad_share=0.1)
    _ok(ingest(writer, ds))
    writer.write(30, bad_share=0.1)
    setup = _FAILS_AFTER_THE_LINK.format(call=call, when=when)
    proc = ingest_library([f"{writer.live}*"], ds, setup=setup, final_grace=0)
    assert proc.returncode == 1, proc.stderr
    said = proc.stderr.strip().splitlines()[-1]
    assert f"commit 2 of `{ds}` is made, but {step} failed: No space left" in said
    assert "nothing was committed" not in proc.stderr
    assert len(records(ds)) == 2
    # before any run finishes it, the readers see the committed lines
    assert_exactly_once(ds, writer.expected, clean=False)
    verified = pplog("verify", ds)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    summary = pplog("summarize", ds, "--to", "json", "--top", "0")
    assert summary.returncode == 0, summary.stderr
    _ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)
    after = pplog("summarize", ds, "--to", "json", "--top", "0")
    assert json.loads(after.stdout) == json.loads(summary.stdout)


def test_a_failure_while_finishing_an_earlier_commit_names_it(
    writer: LogWriter, ds: Path
) -> None:
    """The disk still full when the next run finishes an unpublished commit:
    that run said only the OS error ("Error: [Errno 28] ..."), not which
    commit it was finishing nor that nothing was lost; it names both, and a
    run with room finishes it."""
    writer.write(20)
    _ok(ingest(writer, ds))
    writer.write(20)
    setup = _FAILS_AFTER_THE_LINK.format(call="rename", when="'staging' in str(path)")
    for _ in range(2):  # the run itself, then the next one's recovery
        proc = ingest_library([f"{writer.live}*"], ds, setup=setup, final_grace=0)
        assert proc.returncode == 1, proc.stderr
        said = proc.stderr.strip().splitlines()[-1]
        assert f"commit 2 of `{ds}` is made, but moving its files into place" in said
        assert "No space left on device" in said
        assert "the next run finishes it" in said
    assert len(records(ds)) == 2
    _ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def test_compaction_failing_after_its_commit_point_keeps_its_files(
    writer: LogWriter, ds: Path
) -> None:
    """The same for `pplog compact`: its staged, merged file stays for the
    next run to move into place (it was deleted with the record kept)."""
    for _ in range(3):
        writer.write(10)
        _ok(ingest(writer, ds, "--compact-threshold", "0"))
    setup = _FAILS_AFTER_THE_LINK.format(call="fsync_dir", when="path.name == 'log'")
    code = "from pplog.batch import compact_dataset; compact_dataset(sys.argv[1])"
    done = subprocess.run(
        [sys.executable, "-c", f"import sys\n{setup}\n{code}", str(ds)],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert f"commit 4 of `{ds}` is made, but syncing the commit log" in done.stderr
    assert_exactly_once(ds, writer.expected, clean=False)
    writer.write(5)
    _ok(ingest(writer, ds, "--compact-threshold", "0"))
    assert_exactly_once(ds, writer.expected)


def _data_files(state: Path) -> list[dict[str, object]]:
    """The committed files that hold rows (not their rollups)."""
    files = json.loads(state.read_bytes())["files"]
    return [f for f in files if f["kind"] != "rollup"]


def test_disk_full_in_compaction_after_commit(writer: LogWriter, ds: Path) -> None:
    """The compaction that follows a commit runs out of room: the run's rows
    stay committed (exit 0, a warning), the partition is left as it was,
    and a later run compacts it."""
    for _ in range(5):
        writer.write(100, agent_bytes=60)  # files that merge into a bigger one
        _ok(ingest(writer, ds, "--compact-threshold", "0"))
    state = ds / "_pplog" / "state.json"
    largest = max(f["bytes"] for f in _data_files(state))
    files = json.loads(state.read_bytes())["files"]
    rollup = max(f["bytes"] for f in files if f["kind"] == "rollup")
    writer.write(100, agent_bytes=60)
    # room for a run's file and its rollup, not for six files merged
    limit = _fsize_limit(max(int(largest * 1.6), int(rollup * 1.2)))
    proc = ingest(writer, ds, "--compact-threshold", "3", preexec_fn=limit)
    assert proc.returncode == 0, proc.stderr
    assert "pplog: warning: compaction after commit 6 failed" in proc.stderr
    assert len(records(ds)) == 6
    assert len(_data_files(state)) == 6
    assert_exactly_once(ds, writer.expected)
    writer.write(10)
    _ok(ingest(writer, ds, "--compact-threshold", "3"))
    assert len(_data_files(state)) == 1
    assert_exactly_once(ds, writer.expected)


# --- slow soaks ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_disk_full_soak(writer: LogWriter, ds: Path, seed: int) -> None:
    """§6 row 12, randomized: many runs under random file-size limits."""
    rng = random.Random(seed)
    limits = [
        rng.choice([1_500, 3_000, 8_000, 20_000, 60_000, 10**7]) for _ in range(25)
    ]
    _disk_full_runs(writer, ds, limits, rng)


class _Soak:
    """One seeded soak: random appends, rotations, deletions and runs that are
    killed, overlap, or compact; `log` is the story of a failing seed."""

    def __init__(self, writer: LogWriter, ds: Path, seed: int) -> None:
        self.rng = random.Random(seed)
        self.writer = writer
        self.ds = ds
        self.rot = Rotator(
            writer,
            keep=self.rng.choice([3, 5]),
            compress=self.rng.random() < 0.8,
            delaycompress=self.rng.random() < 0.5,
        )
        self.log: list[str] = [
            f"seed {seed}: keep {self.rot.keep}, compress {self.rot.compress}, "
            f"delaycompress {self.rot.delaycompress}"
        ]
        self.reopen_due = False

    def append(self) -> None:
        w, rng = self.writer, self.rng
        if w.partial_pending:
            w.finish_partial()
        w.write(rng.choice([0, 1, 5, 40, 200, 1500]), bad_share=0.03)
        if rng.random() < 0.2:
            w.start_partial()

    def rotate(self) -> None:
        w, rng = self.writer, self.rng
        if w.partial_pending:
            w.finish_partial()
        if self.reopen_due:
            w.reopen()
            self.reopen_due = False
        if rng.random() < 0.6:
            # nginx may write on to .1 until USR1 unless .1 is compressed at once
            late = (not self.rot.compress or self.rot.delaycompress) and (
                rng.random() < 0.5
            )
            self.rot.create(reopen=not late)
            self.reopen_due = late
            self.log.append(f"create (reopen {'later' if late else 'now'})")
        else:
            self.rot.copytruncate()
            self.log.append("copytruncate")

    def run(self) -> None:
        rng, w, ds = self.rng, self.writer, self.ds
        kind = rng.choices(
            ["clean", "random", "fault", "overlap", "busy", "compact"],
            weights=[2, 4, 3, 1, 2, 1],
        )[0]
        extra = ["--compact-threshold", str(rng.choice([0, 3, 32]))]
        if kind == "clean":
            proc = ingest(w, ds, *extra, final_grace=None)
            code = proc.returncode
        elif kind == "fault":
            point = rng.choice(FAULT_POINTS)
            if point == "mid_read":
                code = ingest_library(
                    [f"{w.live}*"],
                    ds,
                    batch_bytes=4096,
                    fault=f"mid_read:{rng.randint(1, 4)}",
                    compact_threshold=3,
                ).returncode
            else:
                fault = (
                    f"{point}:{rng.randint(1, 2)}" if point == "mid_publish" else point
                )
                code = ingest(w, ds, *extra, fault=fault, final_grace=None).returncode
            kind = f"fault {point}"
        elif kind == "random":
            proc_ = start_ingest(w, ds, *extra, final_grace=None)
            code = kill_after(proc_, rng.uniform(0.1, 1.2))
        elif kind == "overlap":
            procs = [start_ingest(w, ds, *extra, final_grace=None) for _ in range(2)]
            time.sleep(rng.uniform(0, 0.5))
            codes = [kill_after(procs[0], rng.uniform(0, 0.6)), *wait_all(procs[1:])]
            assert set(codes) <= {0, KILLED}, (codes, self.log)
            code = 0
        elif kind == "busy":
            # appends and rotation while a run reads (the file changes under it)
            proc_ = start_ingest(w, ds, *extra, final_grace=None)
            time.sleep(rng.uniform(0.2, 0.8))
            self.append()
            if rng.random() < 0.5:
                self.rotate()
            code = kill_after(proc_, rng.choice([0.05, 30.0]))
        else:
            args = [*PPLOG, "compact", str(ds)]
            if not records(ds):
                return
            proc_ = subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=child_env(),
            )
            code = kill_after(proc_, rng.uniform(0.1, 1.0))
        self.log.append(f"{kind}: exit {code}")
        assert code in (0, KILLED), self.log[-12:]

    def step(self) -> None:
        r = self.rng.random()
        if r < 0.45:
            self.append()
            self.log.append(f"append -> next seq {self.writer.next_seq}")
        elif r < 0.55:
            self.rotate()
        else:
            self.run()

    def finish(self) -> None:
        w = self.writer
        if w.partial_pending:
            w.finish_partial()
        if self.reopen_due:
            w.reopen()
        _ok(ingest(w, self.ds, final_grace=0))
        assert_exactly_once(self.ds, w.expected, deleted=self.rot.deleted)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SOAK_SEEDS)
def test_soak_random_faults(writer: LogWriter, ds: Path, seed: int) -> None:
    """§6 row 9: a seeded random mix of appends (with half-written lines),
    both rotation modes with gzip and deletion, and runs that are killed at
    random moments or fault points, overlap, compact, or run while the file
    changes; after a final run, every line once. Only an unread end of a
    file deleted by rotation may be missing."""
    soak = _Soak(writer, ds, seed)
    try:
        for _ in range(SOAK_ITERATIONS):
            soak.step()
        soak.finish()
    except AssertionError as exc:
        story = "\n".join(soak.log[-40:])
        msg = f"{exc}\n--- last steps of seed {seed} ---\n{story}"
        raise AssertionError(msg) from exc


@pytest.mark.slow
def test_soak_writer_never_stops(tmp_path: Path, ds: Path) -> None:
    """A writer thread appends continuously and rotates (create with
    delaycompress, and copytruncate with nothing written in its window)
    while a cron-like loop runs ingest back to back, a third of the runs
    SIGKILLed at random; then every line exactly once."""
    writer = LogWriter(tmp_path / "logs", seed=5)
    rot = Rotator(writer, keep=50, compress=True, delaycompress=True)
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        rng = random.Random(6)
        last = time.monotonic()
        try:
            while not stop.is_set():
                writer.write(rng.randint(1, 30), bad_share=0.02)
                if time.monotonic() - last > 1.5:
                    rot.create() if rng.random() < 0.6 else rot.copytruncate()
                    last = time.monotonic()
                time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    rng = random.Random(7)
    deadline = time.monotonic() + float(os.environ.get("PPLOG_SOAK_SECONDS", "40"))
    codes = []
    try:
        while time.monotonic() < deadline:
            proc = start_ingest(writer, ds, final_grace=None)
            delay = rng.uniform(0.1, 1.0) if rng.random() < 0.33 else 60.0
            codes.append(kill_after(proc, delay))
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not errors, errors
    assert set(codes) <= {0, KILLED}, codes
    assert codes.count(0) >= 3, codes
    try:
        _ok(ingest(writer, ds, final_grace=0))
        assert_exactly_once(ds, writer.expected, deleted=rot.deleted)
    finally:
        writer.close()
