"""Pipes given as paths are read once, every line counted; FIFOs a glob meets are skipped.

`pplog summarize <(zcat x.gz)`, `cat x | pplog summarize /dev/stdin` and a
named FIFO were opened twice: once for format detection's sample lines, then
again for the read, so the sample lines were never counted (606 of 1,000
lines, no warning), and a FIFO's second `open` waited forever for a writer
that had gone. They are now read once, as `-` is. A FIFO that a glob or a
directory matches is never opened (that waits for a writer): it gets one
warning. Every run here is bounded in time: the writers give up when no
reader comes, and the commands run with a timeout (before the fix they hung).
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import gzip
import json
import lzma
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zstandard

from helpers import run_pplog
from pplog import tasks
from pplog.sources import SKIPPED_FIFO, Source

SAMPLE = Path(__file__).resolve().parents[1] / "sample_logs" / "elb-access.log"
LINES = SAMPLE.read_bytes().count(b"\n")  # 3,000 elb_log lines
TIMEOUT = 240  # a run that hangs fails the test instead


def _write_fifo(path: Path, data: bytes, wait: float = TIMEOUT) -> threading.Thread:
    """Write `data` into the FIFO `path` once a reader opens it, then close
    it; give up when no reader comes within `wait` seconds."""

    def run() -> None:
        deadline = time.monotonic() + wait
        while True:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as exc:
                if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                    return
                time.sleep(0.02)  # no reader yet
        os.set_blocking(fd, True)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except BrokenPipeError:
            pass  # the reader went away

    writer = threading.Thread(target=run, daemon=True)
    writer.start()
    return writer


def _pplog(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return run_pplog(*args, timeout=TIMEOUT, **kwargs)


def _overview(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["overview"]  # type: ignore[no-any-return]


@pytest.fixture
def anonymous_pipe() -> Iterator[Callable[[bytes], int]]:
    """An `os.pipe()` whose read end a child gets as /dev/fd/N (what bash's
    `<(...)` hands a command), fed by a thread."""
    ends: list[int] = []

    def make(data: bytes) -> int:
        r, w = os.pipe()
        ends.append(r)

        def feed() -> None:
            try:
                with os.fdopen(w, "wb") as f:
                    f.write(data)
            except BrokenPipeError:
                pass

        threading.Thread(target=feed, daemon=True).start()
        return r

    yield make
    for fd in ends:
        with contextlib.suppress(OSError):
            os.close(fd)


def test_process_substitution_counts_every_line(
    anonymous_pipe: Callable[[bytes], int],
) -> None:
    """`pplog summarize <(cat access.log)`: 606 of 1,000 lines, exit 0."""
    fd = anonymous_pipe(SAMPLE.read_bytes())
    proc = _pplog("summarize", f"/dev/fd/{fd}", "--to", "json", pass_fds=(fd,))
    overview = _overview(proc)
    assert proc.stderr == ""
    assert overview["lines"] == overview["requests"] == LINES
    assert overview["format"] == "elb_log"
    assert overview["formats"] == [  # type: ignore[comparison-overlap]
        {
            "source": f"/dev/fd/{fd}",
            "format": "elb_log",
            "detection": "auto-detected: 200 of 200 sample lines fit",
        }
    ]


def test_a_pipe_shorter_than_the_sample_is_counted(
    anonymous_pipe: Callable[[bytes], int],
) -> None:
    """50 lines, all in detection's sample: "lines: 0" before."""
    head = b"".join(SAMPLE.read_bytes().splitlines(keepends=True)[:50])
    fd = anonymous_pipe(head)
    overview = _overview(
        _pplog("summarize", f"/dev/fd/{fd}", "--to", "json", pass_fds=(fd,))
    )
    assert overview["lines"] == 50
    assert overview["formats"][0]["detection"] == (  # type: ignore[index]
        "auto-detected: 50 of 50 sample lines fit"
    )


def test_dev_stdin_on_a_pipe_counts_every_line() -> None:
    """`cat access.log | pplog summarize /dev/stdin` (and with `-` too: one pipe)."""
    for args in (["/dev/stdin"], ["/dev/stdin", "-"], ["-", "/dev/stdin"]):
        proc = _pplog("summarize", *args, "--to", "json", input=SAMPLE.read_text())
        overview = _overview(proc)
        assert overview["lines"] == LINES, args
        assert overview["format"] == "elb_log"


@pytest.mark.parametrize(
    "compress",
    [gzip.compress, bz2.compress, lzma.compress, zstandard.compress],
    ids=["gzip", "bz2", "xz", "zstd"],
)
def test_compressed_data_through_a_pipe(
    anonymous_pipe: Callable[[bytes], int], compress: Callable[[bytes], bytes]
) -> None:
    """`<(cat access.log.gz)`: detected from the kept sample (bz2 and zstd
    too: a pipe's head is read up to 1 MiB, not peeked at), all lines read."""
    fd = anonymous_pipe(compress(SAMPLE.read_bytes()))
    overview = _overview(
        _pplog("summarize", f"/dev/fd/{fd}", "--to", "json", pass_fds=(fd,))
    )
    assert overview["lines"] == LINES
    assert overview["format"] == "elb_log"


def test_a_named_fifo_is_read_once_and_does_not_hang(tmp_path: Path) -> None:
    """`mkfifo f.log; (sleep 1; cat access.log > f.log) & pplog summarize f.log`
    hung after the writer closed (a second open() of the FIFO)."""
    fifo = tmp_path / "f.log"
    os.mkfifo(fifo)
    _write_fifo(fifo, SAMPLE.read_bytes())
    overview = _overview(_pplog("summarize", str(fifo), "--to", "json"))
    assert overview["lines"] == LINES
    assert overview["format"] == "elb_log"
    assert overview["unreadable"] == []


def test_doctor_of_a_pipe_diagnoses_every_line(
    tmp_path: Path, anonymous_pipe: Callable[[bytes], int]
) -> None:
    """`pplog doctor <(cat access.log)` said "no lines to read" and "No
    problems found"; it finds what it finds in the file."""
    log = tmp_path / "access.log"
    log.write_bytes(SAMPLE.read_bytes())
    by_path = _pplog("doctor", str(log), "--to", "json")
    want = [(f["code"], f["count"]) for f in json.loads(by_path.stdout)["findings"]]
    assert want  # the sample has findings
    fd = anonymous_pipe(SAMPLE.read_bytes())
    proc = _pplog("doctor", f"/dev/fd/{fd}", "--to", "json", pass_fds=(fd,))
    assert proc.returncode == by_path.returncode, proc.stderr
    assert "no lines to read" not in proc.stderr
    got = [(f["code"], f["count"]) for f in json.loads(proc.stdout)["findings"]]
    assert got == want


_API = """
import os, sys, threading
import pplog

data = open(sys.argv[1], "rb").read()

def pipe():
    r, w = os.pipe()
    def feed():
        with os.fdopen(w, "wb") as f:
            f.write(data)
    threading.Thread(target=feed, daemon=True).start()
    return f"/dev/fd/{r}"

print(pplog.read_log(pipe()).height)
print(pplog.read_log(pipe(), format="elb_log").height)
frame = pplog.scan_log(pipe())  # lazy: read twice
print(frame.collect().height, frame.select("client_ip").collect().height)
print(pplog.summarize(pipe()).overview["lines"].item())
found = pplog.diagnose(pipe())
print(sum(f.count for f in found) > 0)
"""


def test_the_api_reads_a_pipe_whole(tmp_path: Path) -> None:
    """`read_log`, `scan_log` (a lazy frame read twice), `summarize` and
    `diagnose` of /dev/fd/N: all lines, no hang."""
    script = tmp_path / "api.py"
    script.write_text(_API)
    proc = subprocess.run(
        [sys.executable, str(script), str(SAMPLE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(LINES)] * 5 + ["True"]


_JOBS = """
import os, sys, threading, time, errno
import pplog
from pplog import tasks

def main():
    tasks.POOL_MIN_BYTES = 0  # small inputs go to the pool
    log, fifo = sys.argv[1], sys.argv[2]
    data = open(log, "rb").read()

    def feed():
        while True:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                time.sleep(0.02)
        os.set_blocking(fd, True)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except BrokenPipeError:
            pass

    threading.Thread(target=feed, daemon=True).start()
    s = pplog.summarize([log, fifo], jobs=2)
    print(s.overview["lines"].item())

if __name__ == "__main__":
    main()
"""


def test_jobs_read_a_pipe_in_this_process(tmp_path: Path) -> None:
    """With a pool, the bin holding the pipe went to a worker, which opened
    the FIFO again (detection here had taken its first lines): it is mapped
    here."""
    log = tmp_path / "access.log"
    log.write_bytes(SAMPLE.read_bytes())
    fifo = tmp_path / "f.log"
    os.mkfifo(fifo)
    script = tmp_path / "jobs.py"
    script.write_text(textwrap.dedent(_JOBS))
    proc = subprocess.run(
        [sys.executable, str(script), str(log), str(fifo)],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(2 * LINES)]


def test_streams_are_mapped_in_the_first_bin() -> None:
    """The bins up to the last one holding stdin or a pipe are merged into
    the first (this process's), in order."""
    fmt = None
    policy = tasks.ProxyPolicy()

    def task(name: str, *, pipe: bool = False) -> tasks.Task:
        return tasks.Task((Source(name, Path(name), pipe=pipe),), fmt, policy)

    a, b, p, c = task("a"), task("b"), task("p", pipe=True), task("c")
    assert tasks.streams_here([[a], [b], [p], [c]]) == [[a, b, p], [c]]
    assert tasks.streams_here([[a], [b], [c]]) == [[a], [b], [c]]
    stdin = tasks.Task((Source("<stdin>", None),), fmt, policy)
    assert tasks.streams_here([[a], [stdin, b]]) == [[a, stdin, b]]


@pytest.fixture
def folder_with_fifo(tmp_path: Path) -> Path:
    folder = tmp_path / "g"
    folder.mkdir()
    (folder / "access.log").write_bytes(SAMPLE.read_bytes())
    os.mkfifo(folder / "p.log")  # no writer: opening it would wait forever
    return folder


@pytest.mark.parametrize("how", ["glob", "directory"])
@pytest.mark.parametrize("command", ["summarize", "doctor"])
def test_a_fifo_a_glob_matches_is_skipped_with_one_warning(
    folder_with_fifo: Path, how: str, command: str
) -> None:
    arg = str(folder_with_fifo / "*") if how == "glob" else str(folder_with_fifo)
    proc = _pplog(command, arg, "--to", "json")
    assert proc.returncode in (0, 3), proc.stderr  # doctor: 3 when it finds problems
    fifo = folder_with_fifo / "p.log"
    assert proc.stderr.splitlines() == [f"pplog: warning: {fifo}: {SKIPPED_FIFO}"]
    if command == "summarize":
        overview = json.loads(proc.stdout)["overview"]
        assert overview["lines"] == LINES
        assert overview["unreadable"] == [
            {"source": str(fifo), "problem": SKIPPED_FIFO}
        ]


def test_read_log_of_a_glob_skips_a_fifo_with_a_warning(
    folder_with_fifo: Path,
) -> None:
    script = textwrap.dedent(
        """
        import sys, warnings
        import pplog
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            print(pplog.read_log(sys.argv[1]).height)
        for w in caught:
            print(w.message)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(folder_with_fifo / "*")],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    fifo = folder_with_fifo / "p.log"
    assert proc.stdout.splitlines() == [str(LINES), f"{fifo}: {SKIPPED_FIFO}"]


def test_ingest_and_top_leave_a_globbed_fifo_unopened(
    folder_with_fifo: Path, tmp_path: Path
) -> None:
    """`ingest` and `top` list their own inputs: a FIFO a glob matches is
    left out, never opened (they would hang)."""
    pattern = str(folder_with_fifo / "*")
    ingest = _pplog(
        "ingest", pattern, "--dataset", str(tmp_path / "ds"), "--final", "-v"
    )
    assert ingest.returncode == 0, ingest.stderr
    assert f"{LINES:,} rows" in ingest.stderr
    top = _pplog("top", pattern, "--to", "jsonl", "--duration", "1")
    assert top.returncode == 0, top.stderr
