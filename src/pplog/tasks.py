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
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from pplog import sources
from pplog.clientip import ProxyPolicy, attribute, with_pair_key
from pplog.errors import PplogError, ReportError
from pplog.formats import LogFormat
from pplog.pipeline import parse_lines
from pplog.pipeline.opening import unknown_format_rows
from pplog.reports._spool import spooled, with_report_columns, write_rejects
from pplog.reports.mapping import MapSettings, partial_of
from pplog.reports.partial import Partial
from pplog.sources import ProblemHandler, ProgressHandler, Source


@dataclass(frozen=True)
class Task:
    """Inputs read with one format and policy (`format` None: no preset fits)."""

    sources: tuple[Source, ...]
    format: LogFormat | None
    policy: ProxyPolicy
    unknown: str | None = None  # the warning for inputs no preset fits

    @property
    def size(self) -> int:
        """Bytes on disk this task reads (a byte range: its length)."""
        total = 0
        for src in self.sources:
            span = getattr(src, "span", None)
            total += span[1] - span[0] if span else src.size
        return total


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
    query reads (see `reports._spool`). With `rejects`, every rejected line
    is also written there as JSON lines.
    """
    problems: list[tuple[str, str, bool]] = []

    def problem(name: str, message: str, *, unreadable: bool = True) -> None:
        problems.append((name, message, unreadable))
        if on_problem is not None:
            on_problem(name, message)

    lines, native = sources.scan_lines(
        list(task.sources), on_problem=problem, on_progress=on_progress
    )
    if task.unknown is not None:  # said once per input, not kept as unreadable
        for src in task.sources:
            problem(src.name, task.unknown, unreadable=False)
    if task.format is None:
        rows, escape, late = unknown_format_rows(lines), "none", False
    else:
        # free text stays escaped through the aggregations (the partial
        # decodes its keys); the client is attributed after the spool
        rows = with_pair_key(parse_lines(lines, task.format, decode=False), task.policy)
        escape, late = task.format.escape, True
    with tempfile.TemporaryDirectory(prefix="pplog-") as spool:
        spool_rows = spooled(rows, Path(spool), with_offset=not native)
        if rejects is not None:
            sink = write_rejects(with_report_columns(spool_rows), lines, rejects)
            try:
                sink.collect(engine="streaming")
            except OSError as exc:
                msg = f"cannot write rejects to `{rejects}`: {exc.strerror or exc}"
                raise ReportError(msg) from exc
        if late:
            spool_rows = attribute(spool_rows, task.policy, eager_decisions=True)
        frame = with_report_columns(spool_rows)
        return partial_of(frame, replace(settings, escape=escape), problems=problems)


def map_frame(rows: pl.LazyFrame | pl.DataFrame, settings: MapSettings) -> Partial:
    """A `Partial` of decoded rows (a frame from `scan_log`, a dataset)."""
    if isinstance(rows, pl.DataFrame):
        return partial_of(with_report_columns(rows.lazy()), settings)
    with tempfile.TemporaryDirectory(prefix="pplog-") as spool:
        frame = with_report_columns(spooled(rows, Path(spool), with_offset=True))
        return partial_of(frame, settings)


# Inputs smaller than this are mapped in this process whatever `jobs` says:
# starting a worker (a fresh interpreter importing polars) costs more.
POOL_MIN_BYTES = 64 << 20


def split(tasks: Sequence[Task], jobs: int) -> list[Task]:
    """Tasks for `jobs` processes: one per input, large plain files in ranges."""
    out: list[Task] = []
    cut = getattr(sources, "split_source", None)
    for task in tasks:
        for src in task.sources:
            parts = [src] if cut is None or task.format is None else cut(src, jobs)
            out.extend(replace(task, sources=(part,)) for part in parts)
    return out


def run_tasks(
    tasks: Sequence[Task],
    settings: MapSettings,
    *,
    jobs: int = 1,
    rejects: str | os.PathLike[str] | None = None,
    on_problem: ProblemHandler | None = None,
    on_progress: ProgressHandler | None = None,
) -> list[Partial]:
    """Map every task, in this process or over `jobs` spawned processes.

    Partials come back in the tasks' order. With `rejects`, each task writes
    its rejected lines to a part file and the parts are joined in order.
    """
    total = sum(t.size for t in tasks)
    pooled = jobs > 1 and total >= POOL_MIN_BYTES
    if pooled:
        tasks = split(tasks, jobs)
        pooled = len(tasks) > 1
    with contextlib.ExitStack() as stack:
        parts: list[str | None] = [None] * len(tasks)
        if rejects is not None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="pplog-"))
            parts = [str(Path(folder) / f"{i}.jsonl") for i in range(len(tasks))]
        if not pooled:
            partials = [
                map_task(
                    t,
                    settings,
                    rejects=part,
                    on_problem=on_problem,
                    on_progress=on_progress,
                )
                for t, part in zip(tasks, parts, strict=True)
            ]
        else:
            partials = list(
                _pool(tasks, settings, parts, jobs, on_problem, on_progress, total)
            )
        if rejects is not None:
            join_parts([p for p in parts if p is not None], Path(rejects))
    return partials


def _pool(
    tasks: Sequence[Task],
    settings: MapSettings,
    parts: Sequence[str | None],
    jobs: int,
    on_problem: ProblemHandler | None,
    on_progress: ProgressHandler | None,
    total: int,
) -> Iterator[Partial]:
    """Map the tasks over `jobs` spawned processes, one polars thread each
    (or the cores shared among them)."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    with _environment(POLARS_MAX_THREADS=str(threads)):
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context)
        try:
            futures: list[Future[Partial]] = [
                pool.submit(map_task, t, settings, rejects=part)
                for t, part in zip(tasks, parts, strict=True)
            ]
            for task, future in zip(tasks, futures, strict=True):
                try:
                    partial = future.result()
                except PplogError:
                    raise
                except Exception as exc:  # a worker died or failed
                    names = ", ".join(s.name for s in task.sources)
                    msg = f"reading `{names}` failed in a worker process: {exc}"
                    raise ReportError(msg) from exc
                if on_progress is not None:
                    on_progress(task.size, total)
                if on_problem is not None:
                    for name, message in partial.problems(warnings=True):
                        on_problem(name, message)
                yield partial
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


Progress = Callable[[int, int | None], None]
