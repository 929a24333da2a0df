"""A dataset written by `pplog ingest`, as one `Partial`.

Its rollups (each committed file's partial) are merged where they serve,
and its rows are read and mapped where they do not; both give the same
tables."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from pplog.errors import SourceError
from pplog.pipeline import LogSpec
from pplog.reports.partial import Partial
from pplog.run._common import as_rows, check_filters, map_settings
from pplog.tasks import map_frame

if TYPE_CHECKING:
    from pplog.batch.dataset import Entry
    from pplog.batch.state import Layout

# Test hook: False makes `summarize DIR` read every row, as before rollups.
_ROLLUPS = True


def dataset_spec(dataset: Path, spec: LogSpec) -> LogSpec:
    """`spec` with the attribution the dataset's rows were read with, as
    its last `ingest` recorded it: its trusted ranges tell balancers and
    health checks in the summary (and its rollups were mapped with them).
    A dataset written before runs recorded it keeps the default policy."""
    from pplog.batch.dataset import recorded_policy_of

    policy = recorded_policy_of(dataset)
    return spec if policy is None else replace(spec, policy=policy)


def map_dataset_rows(
    rows: pl.LazyFrame | pl.DataFrame,
    spec: LogSpec | None = None,
    *,
    approx: bool = False,
    classes: pl.DataFrame | None = None,
) -> Partial:
    """The `Partial` of rows read from a dataset (or staged into one).

    `summarize DIR` and the rollups `ingest` writes map rows here, so that
    merging rollups gives what reading the rows gives. A frame in memory (a
    batch `ingest` stages) is mapped as it is; a lazy one is spooled first
    (`map_frame`). The first rejected lines are in ingest order
    (`batch.rollup.first_rejects`). `classes`: the rows' distinct user
    agents with their `agent_class`, from the caller that classified them
    (`map_frame`).
    """
    from pplog.batch.rollup import first_rejects

    spec = spec or LogSpec()
    rows = as_rows(rows) if isinstance(rows, pl.DataFrame) else as_rows(rows)
    check_filters(spec, rows.collect_schema().names())
    settings = map_settings(spec, spec.resolve_policy(), {}, approx=approx)
    partial = map_frame(rows, settings, classes=classes)
    partial.frames["samples"] = first_rejects(rows.lazy())
    return partial


@dataclass(frozen=True)
class DatasetTask:
    """One piece of a dataset's map, picklable: a rollup, or files' rows.

    With `rollup`, the rollup is read, and its file's rows are mapped if
    this process cannot use it (`batch.rollup.read` says None). `schema`:
    the columns of every file in the window, which the rows are given (a
    window of rejects still logs what the format logs); None maps the
    `entries`' rows as they are.
    """

    layout: Layout
    entries: tuple[Entry, ...]
    spec: LogSpec
    schema: dict[str, pl.DataType] | None = None
    rollup: Path | None = None
    approx: bool = False

    @property
    def name(self) -> str:
        """The file it reads, for messages."""
        first = self.entries[0].path if self.entries else self.layout.root
        return str(first)

    def rows(self) -> pl.LazyFrame:
        """The rows of `entries`, with the columns of `schema` too."""
        from pplog.batch.dataset import Listing

        rows = Listing(self.layout, list(self.entries)).scan()
        if self.schema is None:
            return rows
        return pl.concat(
            [pl.LazyFrame(schema=self.schema), rows], how="diagonal_relaxed"
        )


def map_dataset_task(task: DatasetTask) -> Partial:
    """The `Partial` of one `DatasetTask` (in this process or on a worker)."""
    if task.rollup is not None:
        from pplog.batch import rollup

        found = rollup.read(task.layout, task.rollup, task.spec.resolve_policy())
        if found is not None:
            return found
    return map_dataset_rows(task.rows(), task.spec, approx=task.approx)


def merge_dataset(partials: list[Partial]) -> Partial:
    """Merge a dataset's partials: the first rejected lines in ingest order."""
    from pplog.batch import rollup

    return rollup.merge_all(partials)


@dataclass(frozen=True)
class _Plan:
    """What `map_dataset` maps: the rollups (with `rest`, rows), or every row."""

    rows: DatasetTask  # the row road: every file in the window, as rows
    rollups: list[DatasetTask]  # the rollup road: one per file with a rollup
    rest: DatasetTask | None  # ... and the files without one, as rows
    uncounted: int  # rows of --until's day, read and all left out

    @property
    def by_rollups(self) -> bool:
        return bool(self.rollups)


def map_dataset(
    dataset: Path,
    spec: LogSpec,
    approx: bool,  # noqa: FBT001
    *,
    cluster: object = None,
) -> Partial:
    """A dataset's partial: its rollups merged where they serve, else its rows.

    Rollups serve when the only filters are `--since/--until` on whole UTC
    days (or none) and no bots are left out; then each committed file in the
    window is its rollup, or its rows when it has none this process can use.
    Other filters read every row in the window, as a frame of rows is read.
    A compaction may delete files a reader has just listed: list again.
    With `cluster` (`run.cluster`), each rollup and each file read as rows
    is a task on the cluster, and the partials merge there.
    """
    if cluster is not None:
        dataset = dataset.absolute()  # as the workers open it
    for attempt in range(3):
        try:
            plan = _plan(dataset, spec, approx)
            if cluster is not None:
                return _on_cluster(plan, cluster)
            return _locally(plan)
        except (OSError, pl.exceptions.ComputeError) as exc:
            if attempt < 2 and "No such file" in str(exc):
                continue
            if isinstance(exc, pl.exceptions.PolarsError):
                name_damaged(dataset, exc)
            raise
    raise AssertionError  # pragma: no cover - the loop returns or raises


def name_damaged(dataset: Path, exc: Exception) -> None:
    """Raise a `SourceError` naming the dataset's file polars could not read
    (cut short, overwritten), if one is why `exc` was raised."""
    from pplog.batch.dataset import damaged_files, listing

    entries = listing(dataset).entries
    damaged = damaged_files([e.path for e in entries])
    if damaged:
        path, why = next(iter(damaged.items()))
        more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
        msg = (
            f"`{path}`{more} in the dataset cannot be read: {why}; "
            f"`pplog verify {dataset}` lists each damaged file"
        )
        raise SourceError(msg) from exc


def _whole_days(when: datetime | None) -> bool:
    return when is None or when.time() == time()  # filters hold UTC times


def _plan(dataset: Path, spec: LogSpec, approx: bool) -> _Plan:  # noqa: FBT001
    """The tasks of the dataset's map (see `map_dataset`).

    The row road reads the date partitions from `--since`'s day to
    `--until`'s day, both included, and counts every request it read in the
    overview's `lines` (and `filtered_out`); with whole days every row of a
    partition before `--until`'s day is kept and none of that day's, so that
    day's files add their row count (from the state) and nothing else.
    """
    from pplog.batch.dataset import listing

    filters = spec.filters
    files = listing(dataset, since=filters.since, until=filters.until)
    every = tuple(files.entries)
    rows = DatasetTask(files.layout, every, spec, files.columns, approx=approx)
    no_rollups = _Plan(rows, [], None, 0)
    # rollups hold exact pairs: sketches are mapped from the rows
    if not _ROLLUPS or approx:
        return no_rollups
    if filters.status or filters.client or filters.path or spec.exclude_bots:
        return no_rollups
    if not (_whole_days(filters.since) and _whole_days(filters.until)):
        return no_rollups
    window = filters.since is not None or filters.until is not None
    last_day = f"{filters.until:%Y-%m-%d}" if filters.until else None
    uncounted = 0
    wanted: list[tuple[Entry, Path]] = []
    rest: list[Entry] = []
    for f in files.entries:
        if f.kind == "data" and f.date == last_day:
            uncounted += f.rows  # read, and all left out
            continue
        usable = f.rollup is not None and not (window and f.date == "unknown")
        if usable and f.rollup is not None:
            wanted.append((f, f.rollup))
        else:
            rest.append(f)
    if not wanted:
        return no_rollups  # nothing to merge: the rows are as cheap
    # with the columns of every file in the window, as the row road has
    # them (a window of rejects and --until's day still logs what the
    # format logs); refuses --since on a format without times, as it does
    # without a rows file (every line rejected, a window of none), the
    # format's columns (`Listing.columns`) give the tables it logs
    formatted = rest or window or files.columns is not None
    schema = dict(files.scan([]).collect_schema()) if formatted else None
    rollups = [
        DatasetTask(files.layout, (f,), spec, schema, rollup=path) for f, path in wanted
    ]
    rest_task = None
    if formatted:
        rest_task = DatasetTask(files.layout, tuple(rest), spec, schema)
    return _Plan(rows, rollups, rest_task, uncounted)


def _locally(plan: _Plan) -> Partial:
    """The plan mapped in this process."""
    from pplog.batch import rollup

    if not plan.by_rollups:
        return map_dataset_task(plan.rows)

    def load(task: DatasetTask) -> Partial | None:
        assert task.rollup is not None
        return rollup.read(task.layout, task.rollup, task.spec.resolve_policy())

    partials: list[Partial] = []
    rest: list[Entry] = list(plan.rest.entries) if plan.rest else []
    # polars reads Parquet without the GIL: rollups are read side by side
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for task, found in zip(plan.rollups, pool.map(load, plan.rollups), strict=True):
            if found is None:
                rest.extend(task.entries)
            else:
                partials.append(found)
    if not partials:
        return map_dataset_task(plan.rows)  # nothing to merge: the rows are as cheap
    if rest or plan.rest is not None:
        rows = replace(plan.rows, entries=_in_order(rest, plan), schema=_schema(plan))
        partials.append(map_dataset_task(rows))
    partial = rollup.merge_all(partials, for_finish=True)
    return _with_uncounted(partial, plan.uncounted)


def _schema(plan: _Plan) -> dict[str, pl.DataType]:
    """The columns of every file in the window (`Listing.scan`'s)."""
    for task in (plan.rest, *plan.rollups):
        if task is not None and task.schema is not None:
            return task.schema
    from pplog.batch.dataset import Listing

    every = Listing(plan.rows.layout, list(plan.rows.entries))
    return dict(every.scan([]).collect_schema())


def _in_order(entries: list[Entry], plan: _Plan) -> tuple[Entry, ...]:
    """`entries` in the listing's order (as the row road reads them)."""
    chosen = {e.path for e in entries}
    return tuple(e for e in plan.rows.entries if e.path in chosen)


def _with_uncounted(partial: Partial, uncounted: int) -> Partial:
    if uncounted:
        totals = partial.frames["totals"]
        partial.frames["totals"] = totals.with_columns(
            (pl.col("parsed") + uncounted).cast(totals.schema["parsed"])
        )
    return partial


def _on_cluster(plan: _Plan, cluster: object) -> Partial:
    """The plan mapped on a Dask cluster: a task per rollup and per file of rows."""
    from pplog.run import cluster as dask_cluster

    if plan.by_rollups:
        schema = _schema(plan)  # a rollup a worker cannot use becomes rows
        tasks = [replace(t, schema=schema) for t in plan.rollups]
        if plan.rest is not None:
            rest = plan.rest
            tasks += [replace(rest, entries=(e,)) for e in rest.entries]
            if not rest.entries:  # the window's columns, and its checks
                tasks.append(rest)
    else:
        rows = replace(plan.rows, schema=_schema(plan))
        tasks = [replace(rows, entries=(e,)) for e in rows.entries] or [rows]
    work = [dask_cluster.Work(map_dataset_task, (t,), t.name, 0) for t in tasks]
    with dask_cluster.connected(cluster) as client:
        partial = dask_cluster.run(
            client,
            work,
            merge_dataset,
            passthrough=(OSError, pl.exceptions.ComputeError),
            final=_merged_for_finish,
        )
    if plan.by_rollups:
        partial = _with_uncounted(partial, plan.uncounted)
    return partial


def _merged_for_finish(partials: list[Partial]) -> Partial:
    from pplog.batch import rollup

    return rollup.merge_all(partials, for_finish=True)


def dataset_dir(source: object) -> Path | None:
    """The dataset directory `source` names, if it is one path to a dataset."""
    from pplog.batch.state import is_dataset

    if isinstance(source, list | tuple) and len(source) == 1:
        source = source[0]
    if isinstance(source, str | bytes | os.PathLike) and os.fsdecode(source) != "-":
        path = Path(os.fsdecode(source))
        if path.is_dir() and is_dataset(path):
            return path
    return None
