"""polars' thread count for the `pplog` command, set before polars loads.

`pplog summarize --jobs N` uses at most N cores, as `make -j`, `xz -T` or
`rg -j` do: `--jobs 1` keeps pplog to about one core on a busy server (its
few helper threads, ua-parser's build and the allocator's, stay). Processes
are one part of that budget (`pplog.tasks.run_tasks`: one per 2 GiB of
input, at most N); polars' threads are the other, and polars sizes its
thread pool once, when it is imported, from `POLARS_MAX_THREADS`. So the
command line reads `--jobs` here, before `pplog.cli` imports anything that
loads polars, and sets the variable to N when N is below the machine's cores.

A `POLARS_MAX_THREADS` already in the environment is kept as it is, and a
program that imports pplog as a library keeps polars' own setting (there,
`jobs` bounds the worker processes only). Click still parses and checks
`--jobs` as any option; this only reads a well-formed value early.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

VARIABLE = "POLARS_MAX_THREADS"
COMMANDS = frozenset({"summarize"})  # the commands that take --jobs


def command_at(argv: Sequence[str]) -> int | None:
    """Where the command is in `argv` (the arguments after the program): the
    first argument that is not an option (the group's own options are
    flags), or None."""
    return next((i for i, a in enumerate(argv) if not a.startswith("-")), None)


def jobs_in(argv: Sequence[str]) -> int | None:
    """N of `--jobs N` (or `--jobs=N`) after a command that takes it, else None.

    The command is the first argument that is not an option (the group's
    own options are flags). The last `--jobs` wins, as in click; nothing
    after `--` is an option; with `--cluster`, `--jobs` is ignored. A value
    that is not a whole number >= 1 is left to click to refuse.
    """
    args = list(argv)
    command = command_at(args)
    if command is None or args[command] not in COMMANDS:
        return None
    found: str | None = None
    rest = args[command + 1 :]
    for i, arg in enumerate(rest):
        if arg == "--":
            break
        if arg == "--cluster" or arg.startswith("--cluster="):
            return None  # --jobs is ignored: the workers map
        if arg == "--jobs" and i + 1 < len(rest):
            found = rest[i + 1]
        elif arg.startswith("--jobs="):
            found = arg.removeprefix("--jobs=")
    if found is None or not found.isascii() or not found.isdigit():
        return None
    jobs = int(found)
    return jobs if jobs >= 1 else None


def configure(argv: Sequence[str] | None = None) -> None:
    """Give polars `--jobs` threads when fewer than the cores, if polars is not
    loaded yet and the user has not set the variable."""
    if "polars" in sys.modules or VARIABLE in os.environ:
        return
    if os.environ.get("PPLOG_CLUSTER"):  # as --cluster: --jobs is ignored
        return
    jobs = jobs_in(sys.argv[1:] if argv is None else argv)
    if jobs is not None and jobs < (os.cpu_count() or 1):
        os.environ[VARIABLE] = str(jobs)


configure()
