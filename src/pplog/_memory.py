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

Only the command line sets this (`pplog.cli` imports this module before
anything loads polars): a program that imports pplog as a library keeps its
own allocator settings. A `_RJEM_MALLOC_CONF` already in the environment is
kept as it is; spawned `--jobs` workers inherit the setting.
"""

from __future__ import annotations

import os
import sys

VARIABLE = "_RJEM_MALLOC_CONF"


def settings(cores: int | None = None) -> str:
    """jemalloc's options for a machine with `cores` cores (default: this one)."""
    arenas = max(1, (cores or os.cpu_count() or 1) // 4)
    return (
        f"narenas:{arenas},background_thread:true,dirty_decay_ms:100,muzzy_decay_ms:0"
    )


def configure() -> None:
    """Set the allocator for polars, if it is not loaded yet and the user has
    not set it."""
    if "polars" not in sys.modules and VARIABLE not in os.environ:
        os.environ[VARIABLE] = settings()


configure()
