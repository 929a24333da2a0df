"""Map tasks: one input (a rotation group, a file, a byte range) to one `Partial`.

A task has no side effects beyond its own temporary files, so it can run in
this process, in a pool of processes, or again after a worker died, and the
merged result is the same. `run_tasks` runs a list of them, in this process
or over a spawned process pool.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from pplog import _fastsplit, sources
from pplog.clientip import ProxyPolicy, attribute, realip_inputs, with_pair_key
from pplog.errors import PplogError, ReportError
from pplog.formats import LogFormat
from pplog.pipeline import parse_lines, zone_lines
from pplog.pipeline.opening import unknown_format_rows, unknown_format_warnings
from pplog.reports import spooled, with_report_columns, write_rejects
from pplog.reports.enriched import agent_classes
from pplog.reports.finish import REGROUPED
from pplog.reports.mapping import MapSettings, Shown, partial_of
from pplog.reports.overview import checked_ranges
from pplog.reports.partial import (
    AGENTS,
    CLIENT_HASH,
    RANK,
    REJECT_SAMPLES,
    Partial,
    merge,
)
from pplog.sources import ProblemHandler, ProgressHandler, Source


@dataclass(frozen=True)
class Task:
    """Inputs read with one format and policy (`format` None: no preset fits)."""

    sources: tuple[Source, ...]
    format: LogFormat | None
    policy: ProxyPolicy
    unknown: str | None = None  # why no preset fits the inputs (the detection's note)
    zone: tuple[LogFormat, bool] | None = None  # `FileGroup.zone`
    warnings: tuple[tuple[str, str], ...] = ()  # (input, `FileGroup.warnings`')

    @property
    def size(self) -> int:
        """Bytes on disk this task reads (a byte range: its length)."""
        return sum(src.size for src in self.sources)

    @property
    def echo(self) -> bool:
        """Whether the task reads the bytes its zone's other task reads too
        (the lines the zone's format does not read): its progress and read
        problems are that task's, told once."""
        return self.zone is not None and not self.zone[1]

    def of(self, part: Source, *, first: bool) -> Task:
        """The task of one input, or of a part of one (`first`: the input's
        first), which tells the input's warnings."""
        told = tuple(w for w in self.warnings if w[0] == part.name) if first else ()
        return replace(self, sources=(part,), warnings=told)

    @property
    def told(self) -> int:
        """The bytes this task tells progress of (none for an `echo`)."""
        return 0 if self.echo else self.size


def map_task(
    task: Task,
    settings: MapSettings,
    *,
    rejects: str | None = None,
    on_problem: ProblemHandler | None = None,
    on_progress: ProgressHandler | None = None,
) -> Partial:
    """Read, parse and attribute the task's inputs, then `partial_of` them.

    The rows are spooled once to a temporary Parquet file that every frame's
    query reads (see `reports._spool`), or held in memory when the input's
    text size is known (plain files polars reads itself, byte ranges) and at
    most `IN_MEMORY_BYTES`. With `rejects`, every rejected line
    is also written there as JSON lines.
    """
    problems: list[tuple[str, str, bool]] = []

    def problem(name: str, message: str, *, unreadable: bool = True) -> None:
        if task.echo:  # told by the zone's other task, reading the same bytes
            return
        problems.append((name, message, unreadable))
        if on_problem is not None:
            on_problem(name, message)

    # Plain files above IN_MEMORY_BYTES are cut and split in C (see
    # `_fastsplit`); a smaller input's rows are held in memory, where the C
    # road's columns kept more of the text alive (a 120 MB file held 320 MiB
    # against 190 MiB) and took longer
    c_road = task.format if task.size > IN_MEMORY_BYTES and task.zone is None else None
    # the C road also makes the trust decisions it can (`_fastsplit.realip`);
    # what the Python reader reads (compressed files, stdin) is spooled, and
    # takes the C split block by block
    lines, native = sources.scan_lines(
        list(task.sources),
        on_problem=problem,
        on_progress=None if task.echo else on_progress,
        split=c_road,
        policy=task.policy,
        blocks=task.format,
    )
    lines = zone_lines(lines, task.zone)
    if task.unknown is not None:  # said once per input, not kept as unreadable
        for name, warning in unknown_format_warnings(task.unknown, task.sources):
            problem(name, warning, unreadable=False)
    for name, warning in task.warnings:  # as `unknown`'s
        problem(name, warning, unreadable=False)
    if task.format is None:
        rows, escape, late = unknown_format_rows(lines), "none", False
    else:
        # free text stays escaped through the aggregations (the partial
        # decodes its keys); the client is attributed after the spool
        rows = with_pair_key(parse_lines(lines, task.format, decode=False), task.policy)
        escape, late = task.format.escape, True
    # a small input of known size is held in memory; the rest spooled
    small = task.size <= IN_MEMORY_BYTES and (
        native or all(src.span is not None for src in task.sources)
    )
    with contextlib.ExitStack() as stack:
        spool = (
            None
            if small
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pplog-")))
        )
        spool_rows = spooled(
            rows, spool, with_offset=not native, decided=_decided(rows, task.policy)
        )
        if c_road is not None:  # what its parse freed, before the queries
            _fastsplit.release()
        if rejects is not None:
            sink = write_rejects(with_report_columns(spool_rows), lines, rejects)
            try:
                sink.collect(engine="streaming")
            except OSError as exc:
                msg = f"cannot write rejects to `{rejects}`: {exc.strerror or exc}"
                raise ReportError(msg) from exc
        unattributed = None
        if late:
            unattributed = with_report_columns(spool_rows)
            spool_rows = attribute(spool_rows, task.policy, eager_decisions=True)
        frame = with_report_columns(spool_rows)
        return partial_of(
            frame,
            replace(settings, escape=escape),
            problems=problems,
            unattributed=unattributed,
        )


def _decided(rows: pl.LazyFrame, policy: ProxyPolicy) -> tuple[str, str] | None:
    """(marker, header column) when the C split decided clients of `rows`
    for `policy`, which attributes them after the spool (`spooled`)."""
    names = rows.collect_schema().names()
    inputs = realip_inputs(policy, names)
    if inputs is None or inputs[0] not in names:
        return None
    return inputs[0], inputs[2]


def map_frame(
    rows: pl.LazyFrame | pl.DataFrame,
    settings: MapSettings,
    *,
    classes: pl.DataFrame | None = None,
) -> Partial:
    """A `Partial` of decoded rows (a frame from `scan_log`, a dataset).

    `classes`: the rows' distinct user agents with their `agent_class`, when
    the caller has them (`partial_of`'s `classify`); else they are found.
    """
    classify = agent_classes if classes is None else lambda _: classes
    if isinstance(rows, pl.DataFrame):
        lf = with_report_columns(rows.lazy())
        return partial_of(lf, settings, classify=classify)
    with tempfile.TemporaryDirectory(prefix="pplog-") as spool:
        frame = with_report_columns(spooled(rows, Path(spool), with_offset=True))
        return partial_of(frame, settings, classify=classify)


# Plain text up to this size is parsed into memory rather than a Parquet
# spool: no Parquet to encode and read back. 250k lines (42 MB) on one
# thread: 0.42 s against 0.51 s; 800k lines (134 MB): 1.24 s against 1.36 s,
# 355 MB peak against 290-320. A cluster's tasks over plain text (byte
# ranges of 64 to 96 MiB, see `run.cluster.RANGE_BYTES`, and whole files
# below 128 MiB) are all held in memory.
IN_MEMORY_BYTES = 128 << 20

# Each process of a pool gets at least this many bytes. polars' own threads
# already keep the cores of one process busy; a worker adds an interpreter
# start, a parse on fewer threads and a merge. Measured on 2 cores (see
# benchmarks/RESULTS.md), one process was fastest at every size tried:
# 340 MB in 2.5 s against 3.6 s in two, 1.4 GB in 11.9 s against 14.7 s
# (JSON out). Larger machines were not measured; the bound keeps pools to
# inputs where a worker's start is noise.
POOL_MIN_BYTES = 2 << 30


def split(tasks: Sequence[Task], jobs: int) -> list[Task]:
    """Tasks for `jobs` processes: one per input, large plain files in ranges."""
    out: list[Task] = []
    for task in tasks:
        for src in task.sources:
            # inputs no preset fits are rejects: one task each is enough
            parts = [src] if task.format is None else sources.split_source(src, jobs)
            out.extend(task.of(part, first=i == 0) for i, part in enumerate(parts))
    return out


def bins(tasks: Sequence[Task], n: int) -> list[list[Task]]:
    """At most `n` runs of consecutive tasks with about equal bytes each.

    Consecutive, so each bin reads its inputs in order and the rejects of
    the bins joined in order are in the inputs' order. A bin ends at the
    task boundary nearest its share of the bytes: a task starts the next
    bin when more than half of it lies past the share.
    """
    total = sum(t.size for t in tasks) or 1
    out: list[list[Task]] = [[]]
    done = 0
    for task in tasks:
        if out[-1] and len(out) < n and done + task.size / 2 > total * len(out) / n:
            out.append([])
        out[-1].append(task)
        done += task.size
    return out


def streams_here(plan: list[list[Task]]) -> list[list[Task]]:
    """`plan` with the bins up to the last one that reads stdin or a pipe
    (`Source.is_stream`) merged into the first, which this process maps: a
    worker has no such input (its stdin is not ours, and a pipe gives its
    bytes once, to the opening that detection made here). The bins stay in
    order, so the rejects do."""
    last = max(
        (
            i
            for i, b in enumerate(plan)
            if any(src.is_stream for task in b for src in task.sources)
        ),
        default=0,
    )
    return [[task for b in plan[: last + 1] for task in b], *plan[last + 1 :]]


def joined(tasks: Sequence[Task]) -> list[Task]:
    """Consecutive tasks of one format and policy as one (one scan, one spool)."""
    out: list[Task] = []
    for task in tasks:
        last = out[-1] if out else None
        if (
            last is not None
            and task.format is not None
            and (last.format, last.policy, last.unknown, last.zone)
            == (task.format, task.policy, task.unknown, task.zone)
        ):
            out[-1] = replace(
                last,
                sources=last.sources + task.sources,
                warnings=last.warnings + task.warnings,
            )
        else:
            out.append(task)
    return out


def map_bin(
    tasks: Sequence[Task],
    settings: MapSettings,
    rejects: Sequence[str | None],
    on_problem: ProblemHandler | None = None,
    on_progress: ProgressHandler | None = None,
) -> Partial:
    """Map a bin's tasks (`joined`) and merge them: what one process does."""
    return merge(
        [
            map_task(
                t,
                settings,
                rejects=part,
                on_problem=on_problem,
                on_progress=on_progress,
            )
            for t, part in zip(tasks, rejects, strict=True)
        ]
    )


def run_tasks(
    tasks: Sequence[Task],
    settings: MapSettings,
    *,
    jobs: int = 1,
    rejects: str | os.PathLike[str] | None = None,
    on_problem: ProblemHandler | None = None,
    on_progress: ProgressHandler | None = None,
    shown: Shown | None = None,
) -> list[Partial]:
    """Map every task with at most `jobs` cores, in this process or over a
    pool of processes.

    This process's polars threads are what polars was given when it loaded
    (the command line gives it `--jobs`, see `pplog._threads`). With `jobs`
    > 1, the inputs are cut into files and byte ranges
    (`split`) and dealt into bins of consecutive inputs (`bins`): `jobs` of
    them, or fewer so that each holds at least `POOL_MIN_BYTES`. Each bin is
    mapped and merged by one process: this one maps the first while spawned
    workers map the others, each with its share of the cores as threads.
    With `rejects`, each task writes its rejected lines to a part file and
    the parts are joined in the inputs' order. `shown`: the cut of the
    tables the partials will be finished with; when the plan is one task
    mapped here, its partial, which goes to `finish` alone, holds the pairs
    of the rows those tables show only (`Shown`).
    """
    total = sum(t.size for t in tasks)
    plan = [list(tasks)]
    cores = min(jobs, os.cpu_count() or 1)
    jobs = min(jobs, max(1, total // POOL_MIN_BYTES)) if POOL_MIN_BYTES else jobs
    if jobs > 1:
        plan = [joined(b) for b in streams_here(bins(split(tasks, jobs), jobs))]
    with contextlib.ExitStack() as stack:
        parts: list[list[str | None]] = [[None] * len(b) for b in plan]
        if rejects is not None:
            folder = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="pplog-"))
            )
            parts = [
                [str(folder / f"{i}-{j}.jsonl") for j in range(len(b))]
                for i, b in enumerate(plan)
            ]
        if len(plan) == 1:
            if shown is not None and len(plan[0]) == 1:
                settings = replace(settings, shown=shown)
            told = _overall(on_progress, tasks)
            partials = [
                map_task(
                    t,
                    settings,
                    rejects=part,
                    on_problem=on_problem,
                    on_progress=told,
                )
                for t, part in zip(plan[0], parts[0], strict=True)
            ]
        else:
            partials = _pool(
                plan,
                settings,
                parts,
                on_problem,
                on_progress,
                sum(t.told for t in tasks),
                cores,
            )
        if rejects is not None:
            join_parts([p for ps in parts for p in ps if p is not None], Path(rejects))
    return partials


def _overall(
    on_progress: ProgressHandler | None, tasks: Sequence[Task]
) -> ProgressHandler | None:
    """`on_progress` told the bytes of all `tasks` as the total, not each
    reader's own (a file, a part of one), and never more bytes than that;
    the readers' totals where a size is unknown (stdin, a pipe)."""
    if on_progress is None or any(src.is_stream for t in tasks for src in t.sources):
        return on_progress
    total = sum(t.told for t in tasks)
    done = 0

    def told(n: int, _own: int | None) -> None:
        nonlocal done
        n = min(n, total - done)
        done += n
        on_progress(n, total)

    return told


def _pool(
    plan: Sequence[Sequence[Task]],
    settings: MapSettings,
    parts: Sequence[Sequence[str | None]],
    on_problem: ProblemHandler | None,
    on_progress: ProgressHandler | None,
    total: int,
    cores: int,
) -> list[Partial]:
    """Map the first bin here and the others in spawned processes, each with
    its share of `cores` as polars' threads."""
    workers = len(plan) - 1
    threads = max(1, cores // len(plan))
    context = multiprocessing.get_context("spawn")
    with _environment(POLARS_MAX_THREADS=str(threads)):
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        try:
            futures: list[Future[Partial]] = [
                pool.submit(map_bin, b, settings, part)
                for b, part in zip(plan[1:], parts[1:], strict=True)
            ]
            out = [map_bin(plan[0], settings, parts[0], on_problem, on_progress)]
            for bin_, future in zip(plan[1:], futures, strict=True):
                try:
                    partial = future.result()
                except PplogError:
                    raise
                except Exception as exc:  # a worker died or failed
                    names = ", ".join(
                        dict.fromkeys(s.name for t in bin_ for s in t.sources)
                    )
                    why = str(exc) or type(exc).__name__
                    if isinstance(exc, BrokenProcessPool):  # the process is gone
                        why = (
                            "the worker process died (killed by the system, out "
                            "of memory?; or a script that passes jobs > 1 calls "
                            "pplog outside `if __name__ == '__main__':`)"
                        )
                    msg = f"reading `{names}` failed in a worker process: {why}"
                    raise ReportError(msg) from exc
                if on_progress is not None:
                    on_progress(sum(t.told for t in bin_), total)
                if on_problem is not None:
                    for name, message in partial.problems(warnings=True):
                        on_problem(name, message)
                out.append(partial)
            return out
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the processes started inside (spawned
    workers read `POLARS_MAX_THREADS` when polars starts)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def join_parts(parts: Sequence[str], target: Path) -> None:
    """Join the tasks' reject files into `target`, replaced atomically unless
    it is a device, pipe or symlink."""
    from pplog._paths import writes_through

    tmp = (
        target
        if writes_through(target)
        else target.with_name(f".{target.name}.pplog-tmp")
    )
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with contextlib.suppress(FileNotFoundError), Path(part).open("rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        if tmp != target:
            tmp.replace(target)
    except OSError as exc:
        msg = f"cannot write rejects to `{target}`: {exc.strerror or exc}"
        raise ReportError(msg) from exc


# The map step's public face for the dataset side (`batch/` reaches reports
# through here, never directly).
__all__ = [
    "AGENTS",
    "CLIENT_HASH",
    "IN_MEMORY_BYTES",
    "POOL_MIN_BYTES",
    "RANK",
    "REGROUPED",
    "REJECT_SAMPLES",
    "Partial",
    "Task",
    "bins",
    "checked_ranges",
    "join_parts",
    "joined",
    "map_bin",
    "map_frame",
    "map_task",
    "merge",
    "run_tasks",
    "split",
]
