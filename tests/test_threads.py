"""`pplog summarize --jobs N` uses at most N cores: the command gives polars N
threads before polars loads (`pplog._threads`), and pool workers share N."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import SAMPLES
from pplog import _threads, sources

ELB = SAMPLES / "elb-access.log"

# Runs the command line in this interpreter and says how many threads
# polars has (stderr), after the command wrote its output (stdout).
_RUN = """
import sys
sys.argv = ["pplog", *sys.argv[1:]]
import pplog.cli, polars
try:
    pplog.cli.main()
finally:
    print(polars.thread_pool_size(), file=sys.stderr)
"""

CORES = os.cpu_count() or 1
needs_cores = pytest.mark.skipif(CORES < 2, reason="one core: nothing to limit")


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    base = {k: v for k, v in os.environ.items() if k != _threads.VARIABLE}
    done = subprocess.run(
        [sys.executable, "-c", _RUN, *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout, int(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("argv", "jobs"),
    [
        (["summarize", "--jobs", "1", "a.log"], 1),
        (["summarize", "a.log", "--jobs=3"], 3),
        (["--debug", "summarize", "--jobs", "2", "--jobs", "1", "x"], 1),  # last wins
        (["summarize", "a.log"], None),
        (["summarize", "--", "--jobs", "1"], None),  # a file named --jobs
        (["summarize", "--jobs", "0", "a.log"], None),  # click refuses it
        (["summarize", "--jobs", "two", "a.log"], None),
        (["summarize", "--jobs"], None),
        (["summarize", "--jobs", "\u0661", "a.log"], None),  # not ASCII digits
        (["summarize", "--jobs", "1", "--cluster", "tcp://h:8786", "x"], None),
        (["summarize", "--cluster=tcp://h:8786", "--jobs", "1", "x"], None),
        (["top", "--jobs", "1", "a.log"], None),  # no --jobs there
        (["ingest", "a.log", "--jobs", "1"], None),
        ([], None),
    ],
)
def test_jobs_are_read_from_the_command_line(argv: list[str], jobs: int | None) -> None:
    assert _threads.jobs_in(argv) == jobs


@needs_cores
def test_jobs_1_gives_polars_one_thread_and_the_same_tables() -> None:
    one, threads = _run("summarize", "--jobs", "1", str(ELB), "--to", "json")
    assert threads == 1
    every, threads = _run("summarize", str(ELB), "--to", "json")
    assert threads == CORES
    assert json.loads(one) == json.loads(every)


@needs_cores
def test_more_jobs_than_cores_and_a_users_setting_are_left_alone() -> None:
    _, threads = _run("summarize", f"--jobs={CORES + 3}", str(ELB), "--to", "json")
    assert threads == CORES
    _, threads = _run(
        "summarize",
        "--jobs",
        "1",
        str(ELB),
        "--to",
        "json",
        env={_threads.VARIABLE: str(CORES)},
    )
    assert threads == CORES


# control bytes and invalid UTF-8 throughout (not random: a random file may
# start with a NUL or a compression magic and be judged by the Python reader)
_BINARY = bytes(range(1, 256)) * 40


def test_files_judged_side_by_side_report_problems_in_order(tmp_path: Path) -> None:
    # several files are judged on threads; their warnings keep the inputs' order
    good = ELB.read_bytes()
    names = []
    for i in range(6):
        path = tmp_path / f"access-{i}.log"
        path.write_bytes(_BINARY if i % 2 else good)
        names.append(path)
    problems: list[str] = []
    frame, native = sources.scan_lines(
        [sources.Source(p.name, p) for p in names],
        on_problem=lambda name, _message: problems.append(name),
    )
    assert problems == ["access-1.log", "access-3.log", "access-5.log"]
    assert native
    assert frame.collect().height == 3 * good.count(b"\n")
