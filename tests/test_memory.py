"""The `pplog` command sets polars' allocator (`pplog._memory`) before polars
loads; a library import and a user's own setting are left alone. `ingest`
reads one batch ahead of the one it parses, not more."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from pplog import _memory
from pplog.batch.reader import prefetch

# Records `_RJEM_MALLOC_CONF` at the moment polars is first imported, then
# runs the statement given.
_WATCH = """
import importlib.abc, os, sys
seen = []
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "polars" and not seen:
            seen.append(os.environ.get("_RJEM_MALLOC_CONF"))
        return None
sys.meta_path.insert(0, Watch())
{statement}
print(repr(seen[0]) if seen else "polars not imported")
"""


def _environment(**extra: str) -> dict[str, str]:
    """This environment without `_RJEM_MALLOC_CONF` (which importing
    `pplog._memory` here may have set), plus `extra`."""
    base = {k: v for k, v in os.environ.items() if k != _memory.VARIABLE}
    return {**base, **extra}


def _seen_when_polars_loads(statement: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _WATCH.format(statement=statement)],
        env=_environment(**(env or {})),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_the_command_line_sets_the_allocator_before_polars_loads() -> None:
    seen = _seen_when_polars_loads("import pplog.cli")
    assert seen == repr(_memory.settings())


def test_ingest_keeps_freed_pages_longer() -> None:
    """`pplog ingest` frees and allocates a batch's columns several times a
    second: its freed pages wait 1 s, the other commands' 0.1 s."""
    ingest = _seen_when_polars_loads(
        "import sys; sys.argv = ['pplog', 'ingest', 'access.log']; import pplog.cli"
    )
    assert ingest == repr(_memory.settings(command="ingest"))
    assert "dirty_decay_ms:1000," in ingest
    summary = _seen_when_polars_loads(
        "import sys; sys.argv = ['pplog', 'summarize', 'ingest']; import pplog.cli"
    )
    assert "dirty_decay_ms:100," in summary


def test_importing_pplog_loads_nothing() -> None:
    assert _seen_when_polars_loads("import pplog") == "polars not imported"


def test_a_library_import_keeps_the_programs_allocator() -> None:
    seen = _seen_when_polars_loads("import pplog; pplog.summarize")
    assert seen == "None"


def test_a_users_own_setting_is_kept() -> None:
    seen = _seen_when_polars_loads(
        "import pplog.cli", env={_memory.VARIABLE: "narenas:3"}
    )
    assert seen == repr("narenas:3")


def test_one_arena_for_every_four_cores() -> None:
    assert _memory.settings(1).startswith("narenas:1,")
    assert _memory.settings(2).startswith("narenas:1,")
    assert _memory.settings(8).startswith("narenas:2,")
    assert _memory.settings(64).startswith("narenas:16,")
    assert "background_thread:true" in _memory.settings(2)


def test_polars_hands_the_settings_to_its_allocator() -> None:
    """polars adds its own defaults in front of the variable (later options
    win): pplog's come last."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, pplog.cli, polars; print(os.environ['_RJEM_MALLOC_CONF'])",
        ],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip().endswith("," + _memory.settings())


def test_polars_allocator_applies_every_option() -> None:
    """polars' own jemalloc takes each option (`confirm_conf` prints what it
    sets; an unknown option would be reported as invalid and ignored)."""
    done = subprocess.run(
        [sys.executable, "-c", "import polars as pl; pl.DataFrame({'a': [1]})"],
        env=_environment(_RJEM_MALLOC_CONF=_memory.settings() + ",confirm_conf:true"),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "Invalid conf" not in done.stderr
    for option in _memory.settings().split(","):
        assert f"Set conf value: {option}" in done.stderr


def test_the_reader_builds_a_batch_only_when_there_is_room_for_it() -> None:
    """`prefetch` takes the next item once the queue has room: with depth 1,
    the item the caller holds and one waiting, never a third built and held
    while the queue is full (a third batch of 32 MiB lines in memory)."""
    made: list[int] = []

    def items() -> Iterator[int]:
        for i in range(10):
            made.append(i)
            yield i

    it = prefetch(items(), depth=1)
    assert next(it) == 0
    time.sleep(0.3)  # time enough for the thread to go as far as it may
    assert made == [0, 1]
    assert next(it) == 1
    time.sleep(0.3)
    assert made == [0, 1, 2]
    assert list(it) == list(range(2, 10))


def test_the_reader_thread_stops_with_its_caller() -> None:
    """A caller that stops early (an error while staging) ends the thread;
    an error in the thread reaches the caller."""
    before = threading.active_count()
    it = prefetch(iter(range(100)), depth=1)
    assert next(it) == 0
    it.close()
    assert threading.active_count() == before

    def failing() -> Iterator[int]:
        yield 1
        msg = "disk gone"
        raise OSError(msg)

    with pytest.raises(OSError, match="disk gone"):
        list(prefetch(failing()))
    assert threading.active_count() == before
