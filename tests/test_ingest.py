"""`pplog ingest` against real rotation, real files and real processes.

The deterministic scenarios of ingest-reliability.md §6: each test writes
numbered requests (`/seq/000123`), rotates the way logrotate does, runs
`python -m pplog ingest` as a subprocess, and checks with the oracle that the
dataset holds every numbered request exactly once and that `pplog verify`
passes. Kills at each step of the commit protocol and the randomized soak are
in `test_ingest_faults.py`.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import resource
import shutil
import signal
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import zstandard

from ingest_harness import (
    LogWriter,
    Rotator,
    assert_clean,
    assert_exactly_once,
    combined,
    data_tree,
    dataset_frame,
    gzip_file,
    held_lock,
    ingest,
    ingest_library,
    pplog,
    records,
    result_of,
    seq_counts,
    start_ingest,
    wait_all,
    wait_for_lock,
)

# The default run keeps a representative of each matrix below (the 4 KiB
# boundaries, one compressed and one plain variant); the slow suite runs all
SLOW = pytest.mark.slow


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[LogWriter]:
    w = LogWriter(tmp_path / "logs", seed=7)
    yield w
    w.close()


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    return tmp_path / "dataset"


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """Assert a quiet success: exit 0 and nothing on stdout."""
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "", proc.stdout
    return proc


def one_error(proc: subprocess.CompletedProcess[str]) -> str:
    """Assert exit 1 with exactly one `Error: ...` line; the line."""
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: "), proc.stderr
    return lines[0]


def state_of(ds: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((ds / "_pplog" / "state.json").read_bytes())
    return state


def summary_overview(ds: Path) -> dict[str, Any]:
    proc = pplog("summarize", ds, "--to", "json")
    assert proc.returncode == 0, proc.stderr
    overview: dict[str, Any] = json.loads(proc.stdout)["overview"]
    return overview


# --- rotation ------------------------------------------------------------------


def test_create_rotation_with_gzip_is_exactly_once(writer: LogWriter, ds: Path) -> None:
    """§6 rows 1 and 4: rename+create with nginx writing on until USR1, then
    two rotations without a run in between (.1 becomes .2.gz with its tail
    unread), then a crontab-like check with `summarize` and `verify`."""
    rot = Rotator(writer, keep=5, compress=True, delaycompress=True)
    writer.write(40)
    ok(ingest(writer, ds))
    writer.write(10)
    rot.create(reopen=False)
    writer.write(5)  # nginx still writes to access.log.1 until it reopens
    writer.reopen()
    writer.write(7)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)

    writer.write(6)  # never read while in access.log: read from .2.gz below
    rot.create()
    writer.write(5)
    rot.create()
    assert sorted(p.name for p in writer.dir.iterdir()) == [
        "access.log",
        "access.log.1",
        "access.log.2.gz",
        "access.log.3.gz",
    ]
    writer.write(3)
    ok(ingest(writer, ds))
    counts = assert_exactly_once(ds, writer.expected)
    frame = dataset_frame(ds)
    from_gz = frame.filter(frame["source"].str.ends_with(".2.gz"))["seq"].to_list()
    assert sorted(from_gz) == list(range(63, 69))  # the tail left unread before
    gz_streams = [c for c in state_of(ds)["checkpoints"] if c["compressed"]]
    assert gz_streams and all(c["done"] for c in gz_streams)  # never decompressed again
    overview = summary_overview(ds)
    assert overview["requests"] == len(counts) == 76
    assert overview["rejected"] == 0


def test_copytruncate_rotation_with_gzip_is_exactly_once(
    writer: LogWriter, ds: Path
) -> None:
    """§6 row 2 without writes in the copy->truncate window: the copy
    continues the stream from the old offset, the truncated file is new."""
    rot = Rotator(writer, keep=5, compress=True, delaycompress=False)
    writer.write(60)
    ok(ingest(writer, ds))
    writer.write(10)  # read from the copy, access.log.1.gz
    rot.copytruncate()
    writer.write(10)
    ok(ingest(writer, ds))
    writer.write(5)
    rot.copytruncate()
    writer.write(5)
    rot.copytruncate()
    writer.write(1)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)
    assert state_of(ds)["applied_commit"] == 3


def test_copytruncate_loses_only_the_window(writer: LogWriter, ds: Path) -> None:
    """Lines written between the copy and the truncate are gone from every
    file (logrotate's documented gap); nothing else is missing or doubled."""
    rot = Rotator(writer, compress=False)
    writer.write(60)
    ok(ingest(writer, ds))
    writer.write(10)
    rot.copy()
    writer.lost.update(writer.write(4))  # in the window: truncated away
    rot.truncate()
    writer.write(10)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


@pytest.mark.parametrize("lines", [3, 60], ids=["short-file", "over-4KiB"])
def test_run_inside_copytruncate_window(
    writer: LogWriter, ds: Path, lines: int
) -> None:
    """A run between the copy and the truncate sees the same content twice
    (access.log and access.log.1); it is one stream, read once, also when
    the file is shorter than the 4 KiB fingerprint."""
    rot = Rotator(writer, compress=False)
    writer.write(lines)
    ok(ingest(writer, ds))
    writer.write(3)
    rot.copy()
    ok(ingest(writer, ds))
    rot.truncate()
    writer.write(2)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


@pytest.mark.parametrize(
    "runs_in_window",
    [1, 3, pytest.param(12, marks=pytest.mark.slow)],  # 12 runs: 11 s each
)
@pytest.mark.parametrize("compress", [False, True])
def test_a_run_reading_past_the_copy_does_not_read_the_copy_again(
    writer: LogWriter, ds: Path, runs_in_window: int, compress: bool
) -> None:
    """copytruncate with lines written between the copy and the truncate, and
    runs in between: they read the live file past the copy's end. The copy
    then holds the stream's head but ends before its offset, so its last
    marker cannot be checked; it was read as a new stream, the whole file in
    the dataset twice (found with real nginx and logrotate, the copy's fsync
    slowed). Every line, those of the window included, is in the dataset
    once, also once the copy is compressed."""
    rot = Rotator(writer, compress=compress, delaycompress=False)
    writer.write(30)
    ok(ingest(writer, ds))
    rot.copy()
    for _ in range(runs_in_window):
        writer.write(4)  # after the copy: in the live file only
        ok(ingest(writer, ds))
    rot.truncate()
    writer.write(3)
    for _ in range(2):
        proc = ok(ingest(writer, ds, "-v"))
        assert "truncated or rewritten" not in proc.stderr, proc.stderr
    assert_exactly_once(ds, writer.expected)


@pytest.mark.parametrize("lines", [3, 60], ids=["short-file", "over-4KiB"])
def test_a_stream_first_read_inside_a_copytruncate_window(
    writer: LogWriter, ds: Path, lines: int
) -> None:
    """A stream's first run falls between the copy and the truncate (the
    first run ever, or a live file first read in the next rotation's
    window): its copy is recognised from where that run started, byte 0."""
    rot = Rotator(writer, compress=False)
    writer.write(lines)
    rot.copy()
    writer.write(2)
    ok(ingest(writer, ds))
    rot.truncate()
    writer.write(2)
    ok(ingest(writer, ds))
    rot.copytruncate()  # no run between: the new stream is read in the window
    writer.write(lines)
    rot.copy()
    writer.write(2)
    ok(ingest(writer, ds))
    rot.truncate()
    writer.write(2)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def test_a_cut_gz_of_a_stream_read_past_its_start_is_read_once_whole(
    writer: LogWriter, ds: Path
) -> None:
    """The log renamed and gzip'd with 60 lines unread, the plain file gone,
    the .gz cut short (logrotate still compressing) past an earlier run's
    start but before the stream's offset: not a copy read past (its stream
    was not marked done, its unread lines were not lost); read whole once the
    .gz is complete."""
    writer.write(60)
    ok(ingest(writer, ds))
    writer.write(60)
    ok(ingest(writer, ds))
    writer.write(60)
    writer.close()
    rotated = writer.live.with_name("access.log.1")
    writer.live.replace(rotated)
    writer.reopen()
    writer.write(3)
    first_of_second_run = rotated.read_bytes().index(b"/seq/000061")
    gz = rotated.with_name("access.log.1.gz")
    gzip_file(rotated, gz)
    full = gz.read_bytes()
    cut = next(
        n
        for n in range(20, len(full))
        if len(zlib.decompressobj(31).decompress(full[:n])) > first_of_second_run + 1200
    )
    gz.write_bytes(full[:cut])
    ok(ingest(writer, ds))
    gz.write_bytes(full)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def test_a_short_copy_of_a_log_that_starts_with_a_nul_hole(
    writer: LogWriter, ds: Path
) -> None:
    """A log under 4 KiB of text behind a NUL hole (copytruncate and a writer
    without O_APPEND): its copy, read past in the window, is known after the
    truncate (heads are taken after the hole, offsets count it)."""
    writer.write_raw(b"\x00" * 600)
    writer.write(10)
    ok(ingest(writer, ds))
    rot = Rotator(writer, compress=False)
    rot.copy()
    writer.write(10)
    ok(ingest(writer, ds))
    rot.truncate()
    writer.write(2)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


@pytest.mark.parametrize("first_lines", [0, 10])
def test_a_log_rewritten_shorter_under_its_header_is_read(
    writer: LogWriter, ds: Path, first_lines: int
) -> None:
    """A header of 4 KiB+ and lines, read (in one run or two), then the log
    truncated and rewritten with the same header and fewer lines: a new
    generation, read, also once rotated and compressed."""
    writer.write_raw(_HEADER)
    writer.write(first_lines)
    ok(ingest(writer, ds))
    writer.write(10 - first_lines)
    ok(ingest(writer, ds))
    os.truncate(writer.live, 0)
    writer.write_raw(_HEADER)
    writer.write(5)
    ok(ingest(writer, ds))
    Rotator(writer, compress=True, delaycompress=False).create()
    writer.write(1)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def test_a_compressed_copy_read_past_then_a_log_rewritten_under_its_header(
    writer: LogWriter, ds: Path
) -> None:
    """copytruncate + compress with a run in the window, then the log written
    again from the same header: the copy is known, and the rewritten log is
    a new generation, read (a copy once marked its stream done, and the
    rewritten log was taken for that stream, never read)."""
    writer.write_raw(_HEADER)
    writer.write(10)
    ok(ingest(writer, ds))
    rot = Rotator(writer, compress=True, delaycompress=False)
    rot.copy()
    writer.write(4)
    ok(ingest(writer, ds))
    rot.truncate()
    ok(ingest(writer, ds))
    writer.write_raw(_HEADER)
    writer.write(30)
    ok(ingest(writer, ds))
    writer.write(5)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def test_a_compressed_copy_with_unread_lines_beside_a_rewritten_log(
    writer: LogWriter, ds: Path
) -> None:
    """copytruncate + compress with 5 lines unread in the copy, and the log
    written again from the same 4 KiB header before the next run: the .gz was
    dropped as the live file's content, its 5 lines never read. A compressed
    rotation is taken for the live log's copy only if its bytes prove it."""
    writer.write_raw(_HEADER)
    writer.write(10)
    ok(ingest(writer, ds))
    writer.write(5)
    Rotator(writer, compress=True, delaycompress=False).copytruncate()
    writer.write_raw(_HEADER)
    writer.write(30)
    ok(ingest(writer, ds))
    writer.write(2)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def test_a_rotation_beside_a_log_written_again_from_its_header(
    writer: LogWriter, ds: Path
) -> None:
    """5 lines unread when the log is rotated (`create`), and the new log
    starts with the same 4 KiB header and grows larger: the rotation was
    left out as the same content, its 5 lines never read. A file is left out
    only when its bytes prove it a copy of the one kept."""
    writer.write_raw(_HEADER)
    writer.write(10)
    ok(ingest(writer, ds))
    writer.write(5)
    Rotator(writer, compress=False).create()
    writer.write_raw(_HEADER)
    writer.write(20)
    ok(ingest(writer, ds))
    writer.write(1)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def test_a_finished_stream_does_not_take_a_later_generation(
    writer: LogWriter, ds: Path
) -> None:
    """Each generation starts with the same header; one is read to the end
    of its .gz (`done`), deleted by logrotate, and the next generation's .gz
    (3 lines unread) was taken for it by its head alone, never read. A
    finished stream is its own file unchanged, or the same bytes before its
    offset and none after."""
    rot = Rotator(writer, keep=1, compress=True, delaycompress=False)
    for _ in range(2):
        writer.write_raw(_HEADER)
        writer.write(10)
        ok(ingest(writer, ds))
        writer.write(3)
        rot.create()
    writer.write_raw(_HEADER)
    writer.write(10)
    ok(ingest(writer, ds))
    writer.write(1)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected, deleted=rot.deleted)


def test_an_empty_rotation_takes_over_no_stream(writer: LogWriter, ds: Path) -> None:
    """An empty file of the set, read before the live one (`access.log.9`,
    logrotate's `create` of a log nothing wrote to), holds no stream's start:
    the live file goes on from its offset, read once."""
    writer.write(10)
    ok(ingest(writer, ds))
    writer.live.with_name("access.log.9").write_bytes(b"")
    writer.write(5)
    proc = ok(ingest(writer, ds, "-v"))
    assert "truncated or rewritten" not in proc.stderr, proc.stderr
    assert_exactly_once(ds, writer.expected)


# a health check, the same bytes every time (a log without timestamps)
_HEALTH = (
    combined(0, when=datetime(2026, 12, 6, tzinfo=UTC)).replace(
        "/seq/000000", "/health"
    )
    + "\n"
).encode()


def _health_lines(ds: Path) -> int:
    """The lines of the dataset that carry no seq: the health checks."""
    return dataset_frame(ds)["seq"].null_count()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(3, 5, marks=SLOW, id="longer"),
        pytest.param(60, 70, id="longer-over-4KiB"),
        pytest.param(5, 3, id="shorter"),
        pytest.param(4, 4, marks=SLOW, id="same"),
    ],
)
@pytest.mark.parametrize(
    "rotation",
    ["create", "create-gzip", "copytruncate-run-between", "copytruncate-gzip"],
)
def test_a_new_log_that_begins_as_the_old_one_is_read_whole(
    writer: LogWriter, ds: Path, rotation: str, old: int, new: int
) -> None:
    """A log of identical lines (health checks, no time) is read, rotated,
    and the new log begins with the same lines, or holds only some of them:
    its bytes start with all of the old file's, or are a prefix of them. It
    was taken for the old stream grown (its first lines skipped) and the old
    file for its copy (left out), or it for the old file's copy: lines lost,
    and `verify` said OK. The stream's own file, unchanged, or its content
    compressed, is that stream; a newer file that begins alike is new."""
    rot = Rotator(writer, compress=rotation.endswith("gzip"), delaycompress=False)

    def rotate() -> None:
        if rotation.startswith("create"):
            rot.create()
            return
        rot.copytruncate()
        if rotation == "copytruncate-run-between":
            ok(ingest(writer, ds))  # the log empty: the copy is the stream's

    writer.write_raw(_HEALTH * old)
    ok(ingest(writer, ds))
    rotate()
    writer.write_raw(_HEALTH * new)
    proc = ok(ingest(writer, ds, "-v"))
    rotate()  # nothing more written to it: what was skipped stays skipped
    writer.write(3)
    ok(ingest(writer, ds))
    assert _health_lines(ds) == old + new
    assert_exactly_once(ds, writer.expected)
    assert "duplicate_paths" not in proc.stderr, proc.stderr  # none left out


@pytest.mark.parametrize("compress", [False, True])
def test_a_log_of_identical_lines_written_to_after_the_last_run(
    writer: LogWriter, ds: Path, compress: bool
) -> None:
    """The same when the old file got lines after the last run, before and
    after it was renamed (nginx writes on until it reopens its log): it is
    no longer as the stream last found it, but still the file it was read
    from (its inode, its bytes before the offset), or, compressed, the file
    that holds the stream's bytes and more."""
    writer.write_raw(_HEALTH * 3)
    ok(ingest(writer, ds))
    writer.write_raw(_HEALTH * 2)
    Rotator(writer, compress=False).create(reopen=False)
    writer.write_raw(_HEALTH)  # to the renamed file
    writer.reopen()
    if compress:  # logrotate compresses once nginx reopened its log
        gzip_file(
            writer.live.with_name("access.log.1"),
            writer.live.with_name("access.log.1.gz"),
        )
    writer.write_raw(_HEALTH * 8)
    ok(ingest(writer, ds))
    writer.write(2)
    ok(ingest(writer, ds))
    assert _health_lines(ds) == 3 + 2 + 1 + 8
    assert_exactly_once(ds, writer.expected)


def test_a_rotated_log_of_identical_lines_kept_plain_then_compressed(
    writer: LogWriter, ds: Path
) -> None:
    """The same with `delaycompress`, over several rotations: the old file
    is `.1`, then `.2.gz`, and each new log begins as the one before."""
    rot = Rotator(writer, keep=4, compress=True, delaycompress=True)
    total = 0
    for n in (3, 5, 7, 9):
        writer.write_raw(_HEALTH * n)
        total += n
        ok(ingest(writer, ds))
        rot.create()
    writer.write_raw(_HEALTH * 2)
    writer.write(2)
    ok(ingest(writer, ds))
    assert _health_lines(ds) == total + 2
    assert_exactly_once(ds, writer.expected)


_COMPRESS = {
    "gz": lambda b: gzip.compress(b, mtime=0),
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zst": lambda b: zstandard.ZstdCompressor().compress(b),
}


@pytest.mark.parametrize("read_before", [False, True])
@pytest.mark.parametrize(
    "kind",
    [k if k in ("gz", "zst") else pytest.param(k, marks=SLOW) for k in _COMPRESS],
)
def test_a_compressed_rotation_with_trailing_garbage_is_read_once(
    writer: LogWriter, ds: Path, kind: str, read_before: bool
) -> None:
    """Bytes appended to a compressed rotation that start no member (`gzip
    -t`: "trailing garbage ignored"): `summarize` reads the lines before
    them, `ingest` read none ("cannot read", file_errors, at every run). It
    takes the same lines, says so once, and the file is finished (`done`)."""
    if read_before:
        writer.write(60)  # its head is read before it is compressed
        ok(ingest(writer, ds))
    writer.write(10)
    writer.close()
    rotated = writer.live.with_name("access.log.1")
    writer.live.replace(rotated)
    packed = rotated.with_name(f"access.log.1.{kind}")
    text = rotated.read_bytes()
    packed.write_bytes(_COMPRESS[kind](text) + b"garbage\n")
    rotated.unlink()
    writer.reopen()
    writer.write(3)
    summary = pplog("summarize", packed, "--format", "combined", "--to", "json")
    assert summary.returncode == 0, summary.stderr
    assert json.loads(summary.stdout)["overview"]["lines"] == text.count(b"\n")
    proc = ok(ingest(writer, ds))
    warnings = proc.stderr.strip().splitlines()
    assert len(warnings) == 1, proc.stderr
    assert packed.name in warnings[0] and "trailing garbage" in warnings[0]
    writer.write(2)
    proc = ok(ingest(writer, ds, "-v"))
    assert "warning" not in proc.stderr, proc.stderr
    assert_exactly_once(ds, writer.expected)
    streams = [c for c in state_of(ds)["checkpoints"] if c["last_path"] == str(packed)]
    assert len(streams) == 1 and streams[0]["done"], streams


@pytest.mark.parametrize(
    "copy_name",
    [
        "access.log-20261206",
        pytest.param("access.log-2026120614", marks=SLOW),
        pytest.param("access.log-20261206-1765029600", marks=SLOW),
        # logrotate's `extension .log` with `dateext`
        "access-20261206.log",
    ],
)
def test_run_inside_a_dateext_copytruncate_window(
    writer: LogWriter, ds: Path, copy_name: str
) -> None:
    """logrotate's `dateext` (the default of RHEL and Amazon Linux) names the
    copy after the date: a run between the copy and the truncate sees the
    same content as `access.log` and `access.log-20261206`, one stream read
    once, as with numbered rotations. Older dated rotations, gzip'd, and the
    live file are read oldest first. With `extension .log` the copy is
    `access-20261206.log`, in the same set, and the glob the README gives
    takes it in but not `access-api.log`, a log of its own."""
    logs = [f"{writer.live}*"]
    if not copy_name.startswith("access.log"):
        logs = [str(writer.live), f"{writer.dir}/access-[0-9]*.log*"]
        other = writer.dir / "access-api.log"
        other.write_text("".join(combined(s) + "\n" for s in range(5000, 5010)))
    writer.write(20)
    ok(ingest(logs[0], ds, *logs[1:]))
    writer.write(3)
    copy = writer.live.with_name(copy_name)
    shutil.copyfile(writer.live, copy)
    ok(ingest(logs[0], ds, *logs[1:]))
    os.truncate(writer.live, 0)
    writer.write(2)
    ok(ingest(logs[0], ds, *logs[1:]))
    gzip_file(copy, copy.with_name(copy.name + ".gz"))
    writer.write(4)
    ok(ingest(logs[0], ds, *logs[1:]))
    assert_exactly_once(ds, writer.expected)


# a header of 50 lines, over 4 KiB: files whose first bytes agree
_HEADER = "".join(
    combined(0, agent=f"header-{i:03d}").replace("/seq/000000", f"/h/{i:03d}") + "\n"
    for i in range(50)
).encode()


def test_truncate_and_regrow_is_a_new_generation(writer: LogWriter, ds: Path) -> None:
    """§6 row 3: truncated and regrown past the old offset with the same first
    4 KiB while no run watched: the marker before the offset no longer
    verifies, so the file is read again from 0 as a new stream."""
    header = _HEADER
    assert len(header) > 4096
    writer.write_raw(header)
    writer.write(10)
    ok(ingest(writer, ds))
    os.truncate(writer.live, 0)
    writer.write_raw(header)  # the same head, then other lines
    writer.write(40)
    proc = ok(ingest(writer, ds))
    assert "truncated or rewritten" in proc.stderr
    assert_exactly_once(ds, writer.expected)
    frame = dataset_frame(ds)
    assert frame["seq"].null_count() == 2 * 50  # the header, once per generation
    assert frame["stream_id"].n_unique() == 2


def test_new_file_at_a_reused_path_is_read_from_zero(
    writer: LogWriter, ds: Path
) -> None:
    """§6 row 15: a file deleted and a new one created at the same path
    (often with the same inode) is a new stream: identity is content."""
    writer.write(20)
    ok(ingest(writer, ds))
    inode = writer.live.stat().st_ino
    writer.close()
    writer.live.unlink()
    writer.reopen()
    writer.write(30)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)
    cps = state_of(ds)["checkpoints"]
    assert sorted(c["status"] for c in cps) == ["active", "gone"], inode


def _rotated_gz(writer: LogWriter) -> tuple[Path, bytes]:
    """300 lines written, the log rotated and gzipped (its plain file gone):
    the `.gz` and its whole bytes, for a test to cut."""
    writer.write(300)
    writer.close()
    rotated = writer.live.with_name("access.log.2")
    writer.live.replace(rotated)
    gz = rotated.with_name("access.log.2.gz")
    gzip_file(rotated, gz)
    return gz, gz.read_bytes()


def test_truncated_gz_alone_waits_then_is_read_once(
    writer: LogWriter, ds: Path
) -> None:
    """§6 row 5 alone: a .gz cut short (logrotate mid-compression, its plain
    file gone) is not committed; once complete it is read exactly once."""
    gz, full = _rotated_gz(writer)
    gz.write_bytes(full[: len(full) // 2])
    proc = ok(ingest(writer, ds))
    assert "access.log.2.gz" in proc.stderr  # a warning: it waits
    assert records(ds) == []  # not even a checkpoint for it
    gz.write_bytes(full)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def test_a_gz_cut_inside_its_head_says_why_it_waits(
    writer: LogWriter, ds: Path
) -> None:
    """A .gz cut before 4 KiB of it decompress (logrotate just started
    compressing) was said as `access.log.2.gz: cannot read: ` with no
    reason; it names the truncation and that the next run reads it."""
    gz, full = _rotated_gz(writer)
    gz.write_bytes(full[:100])
    proc = ok(ingest(writer, ds))
    said = [line for line in proc.stderr.splitlines() if "access.log.2.gz" in line]
    assert len(said) == 1, proc.stderr
    assert said[0].endswith(
        "access.log.2.gz: cannot read: compressed data ends early (truncated "
        "file); tried again on the next run"
    ), said
    gz.write_bytes(full)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def test_truncated_gz_next_to_its_plain_file(writer: LogWriter, ds: Path) -> None:
    """§6 row 5 with the plain file still there: the plain file is read, the
    partial .gz is the same content and is left out; when compression ends
    nothing is read twice."""
    rot = Rotator(writer, compress=False)
    writer.write(80)
    ok(ingest(writer, ds))
    writer.write(20)
    rot.create()
    rot.create()  # access.log.2 holds 20 unread lines
    plain = writer.live.with_name("access.log.2")
    gz = plain.with_name("access.log.2.gz")
    gzip_file(plain, gz, keep_bytes=300)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)
    gzip_file(plain, gz)
    writer.write(5)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


# --- partial lines -------------------------------------------------------------


def test_live_partial_line_waits_for_its_newline(writer: LogWriter, ds: Path) -> None:
    """§6 row 6: the live file's half-written last line is not read, even with
    --final-grace 0; once finished it is read once, whole."""
    writer.write(10)
    size = writer.live.stat().st_size
    partial = writer.start_partial()
    ok(ingest(writer, ds))
    assert set(seq_counts(ds)) == set(range(1, 11))
    (cp,) = state_of(ds)["checkpoints"]
    assert cp["offset"] == size  # the start of the unfinished line
    writer.finish_partial()
    writer.write(2)
    ok(ingest(writer, ds))
    counts = assert_exactly_once(ds, writer.expected)
    assert counts[partial] == 1
    assert dataset_frame(ds)["reject_reason"].null_count() == 13  # all rows


def test_rotated_partial_line_is_finalised_once(writer: LogWriter, ds: Path) -> None:
    """§6 row 7: a rotated file whose last line never got its newline waits
    for --final-grace, is then taken once (a reject: half a line), and is not
    taken again when the file is compressed."""
    rot = Rotator(writer, keep=5, delaycompress=True)
    writer.write(10)
    writer.start_partial()
    writer.abandon_partial()  # nginx died mid-line; the next line starts anew
    rot.create()
    writer.write(5)
    ok(ingest(writer, ds, final_grace=900))
    assert_exactly_once(ds, writer.expected)
    assert dataset_frame(ds)["reject_reason"].null_count() == 15
    ok(ingest(writer, ds, final_grace=0))
    frame = dataset_frame(ds)
    rejects = frame.filter(frame["reject_reason"].is_not_null())
    assert rejects.height == 1
    writer.write(2)
    rot.create()  # .1 (with the finalised half line) becomes .2.gz
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)
    frame = dataset_frame(ds)
    assert frame.filter(frame["reject_reason"].is_not_null()).height == 1


def test_partial_last_line_inside_a_complete_gz(writer: LogWriter, ds: Path) -> None:
    """§6 row 7: a complete .gz ending without newline is finished: its last
    line is read (here it is whole, so it is a row)."""
    writer.write(20)
    writer.close()
    data = writer.live.read_bytes()
    writer.live.unlink()
    gz = writer.live.with_name("access.log.2.gz")
    plain = gz.with_name("access.log.2")
    plain.write_bytes(data[:-1])  # no final newline
    gzip_file(plain, gz)
    ok(ingest(writer, ds, final_grace=900))
    assert_exactly_once(ds, writer.expected)
    ok(ingest(writer, ds))
    assert len(records(ds)) == 1


def test_malformed_and_odd_lines_are_rejects_exactly_once(
    writer: LogWriter, ds: Path
) -> None:
    """§6 row 16 (short): malformed, NUL, CRLF, empty, invalid UTF-8 and very
    long lines become rows or rejects; byte ranges tile (verify); each
    numbered line lands once, malformed ones among the rejects."""
    writer.write(50, bad_share=0.3)
    writer.write_raw(b"\n\n")
    writer.write_raw((combined(9001) + "\r\n").encode())
    writer.write_raw(b"\x00\x00\x00" + combined(9002).encode() + b"\n")
    writer.write_raw(combined(9003).encode().replace(b"w/1", b"w\xff\xfe") + b"\n")
    writer.write_raw(b"/seq/009004 " + b"x" * 100_000 + b"\n")
    writer.write_raw(b"\x01\x02binary\x03 /seq/009005\n")
    writer.write(10, bad_share=0.3)
    ok(ingest(writer, ds))
    expected = writer.expected | {9001, 9002, 9003, 9004, 9005}
    assert_exactly_once(ds, expected)
    frame = dataset_frame(ds)
    rejected = set(frame.filter(frame["reject_reason"].is_not_null())["seq"])
    assert writer.malformed <= rejected
    assert writer.malformed
    overview = summary_overview(ds)
    assert overview["rejected"] >= len(writer.malformed) + 2


# --- runs that find nothing, files that go away ---------------------------------


def test_run_with_nothing_new_writes_no_commit(writer: LogWriter, ds: Path) -> None:
    writer.write(30)
    ok(ingest(writer, ds))
    before = data_tree(ds), records(ds), (ds / "_pplog" / "state.json").read_bytes()
    proc = ok(ingest(writer, ds, "-v"))
    assert "nothing new" in proc.stderr
    after = data_tree(ds), records(ds), (ds / "_pplog" / "state.json").read_bytes()
    assert after == before
    assert records(ds) == ["00000000000000000001.json"]


def test_rotated_file_deleted_unread_is_reported(writer: LogWriter, ds: Path) -> None:
    """§6 row 18: a rotation deleted before its tail was read: the run goes
    on; the bytes a run saw but did not read (here a pending half line) are
    warned about; lines no run ever saw are lost silently; nothing else is."""
    writer.write(30)
    writer.start_partial()
    ok(ingest(writer, ds))
    (cp,) = state_of(ds)["checkpoints"]
    pending = cp["hint"]["size"] - cp["offset"]
    assert pending > 0
    writer.lost.add(writer.finish_partial())
    writer.lost.update(writer.write(10))
    Rotator(writer, compress=False).create()
    writer.live.with_name("access.log.1").unlink()
    writer.write(5)
    proc = ok(ingest(writer, ds))
    assert f"pplog: warning: {pending:,} bytes were rotated away" in proc.stderr
    assert_exactly_once(ds, writer.expected)


_DELETE_AFTER_DISCOVERY = """
import os
from pathlib import Path
from pplog.batch import identity
_discover = identity.discover
def discover(patterns):
    found = _discover(patterns)
    for name in os.environ["PPLOG_TEST_DELETE"].split(":"):
        Path(name).unlink()
    return found
identity.discover = discover
"""

_ROTATE_AFTER_DISCOVERY = """
import os
from pathlib import Path
from pplog.batch import identity
_discover = identity.discover
def discover(patterns):
    found = _discover(patterns)
    live = Path(os.environ["PPLOG_TEST_LIVE"])
    live.replace(live.with_name(live.name + ".1"))
    live.write_bytes(os.environ["PPLOG_TEST_NEW"].encode())
    return found
identity.discover = discover
"""


def test_files_vanishing_during_a_run(
    writer: LogWriter, ds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A known file and a new one vanish between discovery and reading: the
    run commits the rest and warns; later runs work (nothing half-recorded)."""
    writer.write(20)
    ok(ingest(writer, ds))
    writer.write(5)
    other = writer.dir / "other.log"
    other.write_text("".join(combined(s) + "\n" for s in range(5000, 5100)))
    monkeypatch.setenv("PPLOG_TEST_DELETE", f"{writer.live}:{other}")
    proc = ingest_library([f"{writer.dir}/*.log*"], ds, setup=_DELETE_AFTER_DISCOVERY)
    result = result_of(proc)
    assert result["rows"] == 0
    assert len(result["problems"]) == 2
    writer.lost.update(range(21, 26))
    writer.close()
    writer.reopen()
    writer.write(3)
    ok(ingest(f"{writer.dir}/*.log*", ds))
    assert_exactly_once(ds, writer.expected)


def test_rotation_during_a_run(
    writer: LogWriter, ds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """logrotate renames the live file after the run found it and before it
    read it: nothing is taken from the new file under the old stream, and
    the next run reads both files exactly once."""
    writer.write(100)
    ok(ingest(writer, ds))
    writer.write(20)
    writer.close()
    new = [combined(s) for s in range(1000, 1150)]
    monkeypatch.setenv("PPLOG_TEST_LIVE", str(writer.live))
    monkeypatch.setenv("PPLOG_TEST_NEW", "\n".join(new) + "\n")
    proc = ingest_library([f"{writer.live}*"], ds, setup=_ROTATE_AFTER_DISCOVERY)
    assert proc.returncode == 0, proc.stderr
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected | set(range(1000, 1150)))


_TRUNCATE_AFTER_STAGING = """
import os
from pplog.batch import reader
_stage = reader.Reader._stage
def stage(self, lines, stream_id, size):
    _stage(self, lines, stream_id, size)
    os.truncate(os.environ["PPLOG_TEST_LIVE"], 0)  # logrotate's truncate
reader.Reader._stage = stage
"""


def test_a_first_run_overtaken_by_the_truncate_still_knows_its_copy(
    writer: LogWriter, ds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ingest and logrotate on the same cron tick: a stream's first run reads
    the live file past the copy's end, and the truncate comes before the run
    is over. What the run read first must be taken before that (it had been
    read at its end, from the truncated file: nothing, so no marker), or the
    copy is read again, whole (real logrotate, 32 rotations: 659 requests
    twice)."""
    writer.write(30)
    shutil.copyfile(writer.live, writer.live.with_name("access.log.1"))
    writer.write(4)  # in the live file only
    monkeypatch.setenv("PPLOG_TEST_LIVE", str(writer.live))
    proc = ingest_library(
        [f"{writer.live}*"], ds, setup=_TRUNCATE_AFTER_STAGING, final_grace=0
    )
    assert proc.returncode == 0, proc.stderr
    assert result_of(proc)["rows"] == 34
    writer.write(2)
    proc = ok(ingest(writer, ds, "-v"))
    assert "truncated or rewritten" not in proc.stderr, proc.stderr
    assert_exactly_once(ds, writer.expected)


_COPY_AFTER_DISCOVERY = """
import os
from pathlib import Path
from pplog.batch import identity
_discover = identity.discover
def discover(patterns):
    found = _discover(patterns)
    live = Path(os.environ["PPLOG_TEST_LIVE"])
    copy = live.with_name(live.name + ".1")
    if os.environ.get("PPLOG_TEST_SHIFT"):  # logrotate shifts .1 to .2 first
        for old in live.parent.glob(live.name + ".1*"):
            old.replace(old.with_name(old.name.replace(".1", ".2", 1)))
    other = os.environ.get("PPLOG_TEST_OTHER")  # not a copy: other bytes
    data = other.encode() if other else live.read_bytes()
    with copy.open("ab") as f:  # logrotate's copy, made (or finished) now
        f.write(data[f.tell() :])
    with live.open("ab") as f:  # nginx writes on: lines in the live file only
        f.write(os.environ["PPLOG_TEST_NEW"].encode())
    return found
identity.discover = discover
"""

# lines nginx writes between logrotate's copy and the run's read of the log
_WINDOW = range(900, 904)


def _copy_after_discovery(
    writer: LogWriter,
    ds: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    shift: bool,
    other: str = "",
) -> dict[str, Any]:
    """One run during which logrotate copies the log after the run listed
    the files (finishing a copy it had begun), or `other` is written there,
    and nginx writes `_WINDOW` before the run reads the log; the run's
    result."""
    monkeypatch.setenv("PPLOG_TEST_LIVE", str(writer.live))
    monkeypatch.setenv("PPLOG_TEST_NEW", "".join(combined(s) + "\n" for s in _WINDOW))
    monkeypatch.setenv("PPLOG_TEST_SHIFT", "1" if shift else "")
    monkeypatch.setenv("PPLOG_TEST_OTHER", other)
    proc = ingest_library(
        [f"{writer.live}*"], ds, setup=_COPY_AFTER_DISCOVERY, final_grace=0
    )
    return result_of(proc)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    ("lines", "shift"),
    [
        pytest.param(3, False, marks=SLOW, id="short-file"),
        pytest.param(60, False, id="over-4KiB"),
        pytest.param(60, True, id="over-4KiB-after-a-rotation"),
    ],
)
def test_a_copy_made_after_the_run_listed_the_files(
    writer: LogWriter,
    ds: Path,
    monkeypatch: pytest.MonkeyPatch,
    lines: int,
    shift: bool,
    compress: bool,
) -> None:
    """logrotate's copytruncate on ingest's cron tick: the copy is made
    after the run listed the files, the run reads the live log past the
    copy's end (lines written after the copy), and the truncate comes after
    the run. No proof could be taken when the files were listed (no copy
    yet), and the copy was read again, whole, after the truncate. The run
    proves the copy once it has read the live log."""
    rot = Rotator(writer, compress=compress, delaycompress=False)
    writer.write(lines)
    ok(ingest(writer, ds))
    if shift:
        writer.write(5)
        rot.copytruncate()
        writer.write(lines)
        ok(ingest(writer, ds))
    writer.write(3)
    assert _copy_after_discovery(writer, ds, monkeypatch, shift=shift)["rows"] == 7
    rot.truncate()
    writer.write(2)
    for _ in range(2):
        proc = ok(ingest(writer, ds, "-v"))
        assert "truncated or rewritten" not in proc.stderr, proc.stderr
    assert_exactly_once(ds, writer.expected | set(_WINDOW))


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "copied",
    [
        pytest.param(0, id="empty"),
        pytest.param(1000, marks=SLOW, id="1000B"),
        pytest.param(5000, id="5000B"),
        pytest.param(-1, marks=SLOW, id="all-but-1B"),
    ],
)
def test_a_copy_still_being_written_when_the_run_listed_the_files(
    writer: LogWriter,
    ds: Path,
    monkeypatch: pytest.MonkeyPatch,
    copied: int,
    compress: bool,
) -> None:
    """logrotate had copied part of the log (a line cut in two) when the run
    listed the files: the part was proved a copy, of its size then. The
    copy is finished before the run reads the live log past its end, and
    the truncate comes after the run: the finished copy matched no proof,
    and was read again, whole. The run proves it again once it has read
    the live log."""
    rot = Rotator(writer, compress=compress, delaycompress=False)
    writer.write(80)
    ok(ingest(writer, ds))
    writer.write(3)
    data = writer.live.read_bytes()
    assert len(data) > 5000
    writer.live.with_name("access.log.1").write_bytes(data[: copied % len(data)])
    assert _copy_after_discovery(writer, ds, monkeypatch, shift=False)["rows"] == 7
    rot.truncate()
    writer.write(2)
    for _ in range(2):
        proc = ok(ingest(writer, ds, "-v"))
        assert "truncated or rewritten" not in proc.stderr, proc.stderr
    assert_exactly_once(ds, writer.expected | set(_WINDOW))


@pytest.mark.parametrize("lines", [0, 10])
def test_a_file_with_the_logs_header_written_during_a_run_is_read(
    writer: LogWriter, ds: Path, monkeypatch: pytest.MonkeyPatch, lines: int
) -> None:
    """A file of the set made during a run, starting with the log's 4 KiB
    header (and its first lines) but holding 10 lines the log does not, and
    no longer than what the run read: its head agrees, its last bytes do
    not. It is no copy, and its lines are read."""
    writer.write_raw(_HEADER)
    writer.write(lines)
    ok(ingest(writer, ds))
    writer.write(13)
    first = "".join(combined(s) + "\n" for s in range(1, lines + 1))
    other = range(950, 960)
    text = _HEADER.decode() + first + "".join(combined(s) + "\n" for s in other)
    assert len(text) < writer.live.stat().st_size
    result = _copy_after_discovery(writer, ds, monkeypatch, shift=False, other=text)
    assert result["rows"] == 17
    writer.write(2)
    ok(ingest(writer, ds))
    counts = seq_counts(ds)
    assert set(counts) == writer.expected | set(_WINDOW) | set(other)
    # the first lines are that file's own too: read from both files
    assert {s for s, n in counts.items() if n > 1} == set(range(1, lines + 1))
    assert max(counts.values()) <= 2
    assert_clean(ds)


_COUNT_READS = """
import atexit, os, sys
from pplog.batch import identity
_span = identity.read_span
calls = []
def read_span(candidate, start, end):
    calls.append(candidate.name)
    return _span(candidate, start, end)
identity.read_span = read_span
atexit.register(lambda: print(f"read_span {len(calls)}", file=sys.stderr))
"""


def test_a_first_ingest_of_many_rotations_reads_each_once(
    writer: LogWriter, ds: Path
) -> None:
    """Each file no stream continues is checked against the copies the
    streams before it hold proofs of: by its head first, without reading it
    again (a compressed one would be decompressed up to each stream's
    offset: a first ingest of a month of rotations, quadratic)."""
    for n in range(12, 0, -1):
        writer.write(40)
        gzip_file(writer.live, writer.live.with_name(f"access.log.{n}.gz"))
        writer.reopen()
    writer.write(5)
    proc = ingest_library([f"{writer.live}*"], ds, setup=_COUNT_READS, final_grace=0)
    assert proc.returncode == 0, proc.stderr
    reads = int(proc.stderr.split("read_span ")[-1].split()[0])
    assert reads <= 13, reads  # at most one per file
    assert_exactly_once(ds, writer.expected)


def test_same_content_under_several_paths_is_read_once(
    writer: LogWriter, ds: Path
) -> None:
    """§6 row 19: a hard link and a symlink to the log are one file."""
    writer.write(40)
    os.link(writer.live, writer.dir / "access.log.hard")
    (writer.dir / "access.log.sym").symlink_to(writer.live)
    ok(ingest(writer, ds))
    writer.write(5)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def test_tiny_file_that_grows(writer: LogWriter, ds: Path) -> None:
    """§6 row 17: one short line first, then growth past the 4 KiB head."""
    writer.write(1)
    ok(ingest(writer, ds))
    assert state_of(ds)["checkpoints"][0]["head_len"] < 200
    writer.write(2)
    ok(ingest(writer, ds))
    writer.write(60)
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)
    assert state_of(ds)["checkpoints"][0]["head_len"] == 4096


# --- overlapping runs ----------------------------------------------------------


def test_run_while_the_lock_is_held_exits_at_once(writer: LogWriter, ds: Path) -> None:
    """§6 row 10: another run holds the lock: exit 0 quickly, write nothing."""
    writer.write(20)
    with held_lock(ds):
        started = time.monotonic()
        proc = ok(ingest(writer, ds, "-v"))
        took = time.monotonic() - started
    assert "skipped" in proc.stderr
    assert took < 10
    assert records(ds) == []
    assert data_tree(ds) == {}
    assert not (ds / "_pplog" / "staging").exists()
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def test_run_while_another_is_paused_holding_the_lock(
    writer: LogWriter, ds: Path
) -> None:
    """§6 row 10 with two real runs: A is stopped (SIGSTOP) while it holds
    the lock; B exits 0 at once having written nothing; A resumes and
    finishes; every line once."""
    writer.write(30_000)
    a = start_ingest(writer, ds)
    try:
        assert wait_for_lock(ds, a), "run A never took the lock"
        os.kill(a.pid, signal.SIGSTOP)
        started = time.monotonic()
        proc = ok(ingest(writer, ds, "-v"))
        assert time.monotonic() - started < 10
        assert "skipped: another pplog run holds" in proc.stderr
        assert records(ds) == []
    finally:
        os.kill(a.pid, signal.SIGCONT)
    assert wait_all([a]) == [0]
    assert_exactly_once(ds, writer.expected)


def test_overlapping_runs_are_exactly_once(writer: LogWriter, ds: Path) -> None:
    """Several runs started together: one at a time works, the others skip."""
    writer.write(200)
    procs = [start_ingest(writer, ds) for _ in range(4)]
    assert wait_all(procs) == [0, 0, 0, 0]
    assert len(records(ds)) == 1
    assert_exactly_once(ds, writer.expected)


# --- damaged state -------------------------------------------------------------

_BAD_STATES = {
    "zero bytes": b"",
    "garbage": b"\x00\xff garbage \x9c",
    "truncated": b'{"applied_commit": 1, "checkpoi',
    "wrong type": b'{"applied_commit": "one", "checkpoints": 3, "files": null}',
    "a list": b"[1, 2, 3]",
}


def test_corrupt_state_is_rebuilt_from_the_log(writer: LogWriter, ds: Path) -> None:
    """§6 row 14: a zero-byte, garbage or truncated state.json is a cache: it
    is rebuilt from the latest commit record and nothing is read again."""
    writer.write(20)
    ok(ingest(writer, ds))
    state = ds / "_pplog" / "state.json"
    for n, bad in enumerate(_BAD_STATES.values(), start=2):
        state.write_bytes(bad)
        writer.write(3)
        ok(ingest(writer, ds))
        assert state_of(ds)["applied_commit"] == n
    state.unlink()
    ok(ingest(writer, ds))  # nothing new: rebuilt, no commit
    assert len(records(ds)) == len(_BAD_STATES) + 1
    assert_exactly_once(ds, writer.expected)


@pytest.mark.parametrize("damage", [b"", b"{not json"], ids=["empty", "garbage"])
def test_corrupt_latest_record_fails_closed(
    writer: LogWriter, ds: Path, damage: bytes
) -> None:
    """§6 row 14: a damaged latest commit record stops the run: exit 1 with
    one `Error:` line, the data and the log unchanged. Moving the record away
    (the documented way out) rolls back to the previous commit; readers then
    see every line once."""
    writer.write(20)
    ok(ingest(writer, ds))
    writer.write(10)
    ok(ingest(writer, ds))
    latest = ds / "_pplog" / "log" / records(ds)[-1]
    latest.write_bytes(damage)
    before = data_tree(ds), records(ds)
    writer.write(4)
    line = one_error(ingest(writer, ds))
    assert "commit record" in line and "unreadable" in line
    assert (data_tree(ds), records(ds)) == before
    latest.unlink()
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected, clean=False)
    verified = pplog("verify", ds)
    assert verified.returncode == 0, verified.stdout
    # the rolled-back commit's file and its rollup
    assert "files not in any commit (ignored by readers): 2" in verified.stdout


# --- a full disk ---------------------------------------------------------------


def _small_files(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_disk_full_rlimit_commits_nothing(writer: LogWriter, ds: Path) -> None:
    """§6 row 12 with RLIMIT_FSIZE: a write fails with EFBIG while staging:
    exit 1, one `Error:` line, nothing committed; then a run with room
    ingests everything once."""
    writer.write(20)
    ok(ingest(writer, ds))
    before = data_tree(ds), records(ds)
    writer.write(3000)
    line = one_error(ingest(writer, ds, preexec_fn=_small_files(16_384)))
    assert "disk full" in line and "nothing was committed" in line
    assert (data_tree(ds), records(ds)) == before
    ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


@pytest.mark.slow  # 10 s; the disk-full limits of test_ingest_faults stay in the default run
def test_disk_full_tmpfs(writer: LogWriter, ds: Path) -> None:
    """§6 row 13: the dataset on a 2 MiB tmpfs fills up: exit 1, one `Error:`
    line, no partial file published; after the disk grows, exactly once."""
    if not _mount_tmpfs(ds, "2m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        writer.write(20)
        ok(ingest(writer, ds))
        before = data_tree(ds), records(ds)
        writer.write(20_000, agent_bytes=200)  # ~3 MB even compressed
        line = one_error(ingest(writer, ds))
        assert "disk full" in line and "nothing was committed" in line
        assert (data_tree(ds), records(ds)) == before
        subprocess.run(
            ["mount", "-o", "remount,size=64m", str(ds)], check=True, timeout=30
        )
        ok(ingest(writer, ds))
        assert_exactly_once(ds, writer.expected)
    finally:
        subprocess.run(["umount", "-l", str(ds)], check=False, timeout=30)


# --- compaction ----------------------------------------------------------------


def test_compact_keeps_exactly_once(writer: LogWriter, ds: Path) -> None:
    """`pplog compact` merges a partition's files through the commit log;
    `ingest --compact-threshold` does it after a run. Same rows, once."""
    for _ in range(4):
        writer.write(25, bad_share=0.1)
        ok(ingest(writer, ds, "--compact-threshold", "0"))
    data = [f for f in state_of(ds)["files"] if f["kind"] == "data"]
    assert len(data) >= 4
    overview = summary_overview(ds)
    proc = pplog("compact", ds)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("compacted ")
    assert_exactly_once(ds, writer.expected)
    files = [f for f in state_of(ds)["files"] if f["kind"] != "rollup"]
    assert len({(f["kind"], f["date"]) for f in files}) == len(files)
    assert summary_overview(ds)["requests"] == overview["requests"]
    for _ in range(3):
        writer.write(10)
        ok(ingest(writer, ds, "--compact-threshold", "3"))
    data = [f for f in state_of(ds)["files"] if f["kind"] == "data"]
    assert len(data) < 3
    assert_exactly_once(ds, writer.expected)


def test_cron_loop_summarize_and_verify(writer: LogWriter, ds: Path) -> None:
    """A crontab in miniature: appends, both rotation modes, gzip, runs after
    each; then `pplog summarize DIR` counts every request once and `pplog
    verify DIR` passes."""
    rot = Rotator(writer, keep=6, compress=True, delaycompress=True)
    steps = ["create", "copytruncate", "none", "create", "copytruncate", "create"]
    for step in steps:
        writer.write(30, bad_share=0.05)
        if step == "create":
            rot.create()
        elif step == "copytruncate":
            rot.copytruncate()
        writer.write(5)
        ok(ingest(writer, ds))
    assert_exactly_once(ds, writer.expected)
    overview = summary_overview(ds)
    assert overview["requests"] == len(writer.written - writer.malformed)
    assert overview["rejected"] == len(writer.malformed)
    assert_clean(ds)


def test_dataset_files_are_zstd_at_the_dataset_level(tmp_path: Path) -> None:
    """The rows are written with zstd at `ZSTD_LEVEL` (1: a fifth less CPU
    than polars' default 3 on 2M elb_log lines, and no larger), by ingest
    and by compaction alike: re-encoding a file's rows at that level gives
    the very same bytes, and at the default level other ones."""
    import io

    import polars as pl

    from pplog import ingest as ingest_rows
    from pplog.batch.compact import compact
    from pplog.batch.state import ZSTD_LEVEL, Layout, recover

    lines = (Path(__file__).parents[1] / "sample_logs" / "elb-access.log").read_bytes()
    lines = lines.splitlines(keepends=True)
    ds, log = tmp_path / "ds", tmp_path / "access.log"
    for half in (lines[: len(lines) // 2], lines[len(lines) // 2 :]):
        with log.open("ab") as f:
            f.write(b"".join(half))
        ingest_rows([str(log)], ds, compact_threshold=0)

    def encoded(path: Path, level: int | None) -> bytes:
        buf = io.BytesIO()
        pl.read_parquet(path).write_parquet(
            buf, compression="zstd", compression_level=level
        )
        return buf.getvalue()

    def data_files() -> list[Path]:
        return sorted((ds / "requests").rglob("*.parquet"))

    for path in data_files():
        assert path.read_bytes() == encoded(path, ZSTD_LEVEL)
        assert path.read_bytes() != encoded(path, None)
    layout = Layout(ds)
    assert compact(layout, recover(layout), min_files=2)
    (merged,) = data_files()
    assert "compacted" in merged.name
    assert merged.read_bytes() == encoded(merged, ZSTD_LEVEL)
