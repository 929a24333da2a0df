"""The memory allocator's settings for the `pplog` command, set before polars loads.

polars allocates with its own jemalloc, whose options polars sets from
`_RJEM_MALLOC_CONF` when it is imported (its defaults first, then the
variable's value, which wins). jemalloc keeps four arenas per core, and
polars' defaults return freed pages to the system 0.5 s (dirty) and 1 s
(muzzy) after they were freed, so a run's peak resident memory holds freed
buffers of earlier stages in every arena: the 8M-line summary peaked at
437-497 MiB where 2M lines peak at 315-381 MiB. With one arena for every
four cores and freed pages returned after 0.1 s by jemalloc's background
thread, measured on 2 cores (the range of three or four alternating runs;
benchmarks/RESULTS.md):

- 8M-line elb_log summary: 360-384 MiB (was 437-497), 8.6-8.9 s (8.9-9.2 s);
- 2M-line elb_log summary: 316-351 MiB (315-381), 2.54-2.63 s (2.58-2.81 s);
- ingest of 2M lines (two runs each): 760-804 MiB (952-980), no slower.

`pplog ingest` keeps freed pages for 1 s instead (`INGEST_DECAY_MS`): it
allocates and frees a 32 MiB batch's columns several times a second, and
with 0.1 s it faulted the same pages back in at every batch. 2M elb_log
lines, four alternating runs each: 2.73-2.92 s against 2.88-3.13 s (system
time 0.54-0.59 s against 0.80-0.94 s), peak 686-708 MiB against 670-675.
3 s was no faster. The summary keeps 0.1 s: its peak memory on 8M lines
is bounded against the 2M peak.

Only the command line sets this (`pplog.cli` imports this module before
anything loads polars): a program that imports pplog as a library keeps its
own allocator settings. A `_RJEM_MALLOC_CONF` already in the environment is
kept as it is; spawned `--jobs` workers inherit the setting.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from pplog._threads import command_at

VARIABLE = "_RJEM_MALLOC_CONF"
DECAY_MS = 100  # freed pages returned after this long
INGEST_DECAY_MS = 1000  # for `pplog ingest`


def settings(cores: int | None = None, command: str | None = None) -> str:
    """jemalloc's options for `command` on a machine with `cores` cores
    (default: this one)."""
    arenas = max(1, (cores or os.cpu_count() or 1) // 4)
    decay = INGEST_DECAY_MS if command == "ingest" else DECAY_MS
    return (
        f"narenas:{arenas},background_thread:true,dirty_decay_ms:{decay},"
        "muzzy_decay_ms:0"
    )


def configure(argv: Sequence[str] | None = None) -> None:
    """Set the allocator for polars, if it is not loaded yet and the user has
    not set it, for the command in `argv` (default: this process's)."""
    if "polars" not in sys.modules and VARIABLE not in os.environ:
        args = sys.argv[1:] if argv is None else list(argv)
        at = command_at(args)
        os.environ[VARIABLE] = settings(command=None if at is None else args[at])


configure()
