"""A dataset written by `pplog ingest`, as one `Partial`.

Its rollups (each committed file's partial) are merged where they serve,
and its rows are read and mapped where they do not; both give the same
tables."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, time
from pathlib import Path
from typing import Any

import polars as pl

from pplog._ipaddr import Network
from pplog.pipeline import LogSpec
from pplog.reports.overview import checked_ranges
from pplog.reports.partial import Partial
from pplog.run._common import as_rows, check_filters, map_settings
from pplog.tasks import map_frame

# Test hook: False makes `summarize DIR` read every row, as before rollups.
_ROLLUPS = True


def dataset_checked_ranges() -> tuple[Network, ...]:
    """The ranges whose health checks are no visitors, in a dataset's summary.

    A dataset's attribution was fixed at ingest; its summary takes the
    default policy, and so do its rollups.
    """
    return checked_ranges(LogSpec().resolve_policy())


def map_dataset_rows(
    rows: pl.LazyFrame | pl.DataFrame,
    spec: LogSpec | None = None,
    *,
    approx: bool = False,
) -> Partial:
    """The `Partial` of rows read from a dataset (or staged into one).

    `summarize DIR` and the rollups `ingest` writes map rows here, so that
    merging rollups gives what reading the rows gives. A frame in memory (a
    batch `ingest` stages) is mapped as it is; a lazy one is spooled first
    (`map_frame`). The first rejected lines are in ingest order
    (`batch.rollup.first_rejects`).
    """
    from pplog.batch.rollup import first_rejects

    spec = spec or LogSpec()
    rows = as_rows(rows) if isinstance(rows, pl.DataFrame) else as_rows(rows)
    check_filters(spec, rows.collect_schema().names())
    settings = map_settings(spec, spec.resolve_policy(), {}, approx=approx)
    partial = map_frame(rows, settings)
    partial.frames["samples"] = first_rejects(rows.lazy())
    return partial


def map_dataset(dataset: Path, spec: LogSpec, approx: bool) -> Partial:  # noqa: FBT001
    """A dataset's partial: its rollups merged where they serve, else its rows.

    Rollups serve when the only filters are `--since/--until` on whole UTC
    days (or none) and no bots are left out; then each committed file in the
    window is its rollup, or its rows when it has none this process can use.
    Other filters read every row in the window, as a frame of rows is read.
    A compaction may delete files a reader has just listed: list again.
    """
    from pplog.batch.dataset import scan_dataset

    for attempt in range(3):
        try:
            # rollups hold exact pairs: sketches are mapped from the rows
            merged = _merge_rollups(dataset, spec) if _ROLLUPS and not approx else None
            if merged is not None:
                return merged
            frame = scan_dataset(
                dataset,
                since=spec.filters.since,
                until=spec.filters.until,
                include_rejects=True,
            )
            return map_dataset_rows(frame, spec, approx=approx)
        except (OSError, pl.exceptions.ComputeError) as exc:
            if attempt == 2 or "No such file" not in str(exc):
                raise
    raise AssertionError  # pragma: no cover - the loop returns or raises


def _whole_days(when: datetime | None) -> bool:
    return when is None or when.time() == time()  # filters hold UTC times


def _merge_rollups(dataset: Path, spec: LogSpec) -> Partial | None:
    """The rollup road of `map_dataset`; None when rollups cannot serve.

    The row road reads the date partitions from `--since`'s day to
    `--until`'s day, both included, and counts every request it read in the
    overview's `lines` (and `filtered_out`); with whole days every row of a
    partition before `--until`'s day is kept and none of that day's, so that
    day's files add their row count (from the state) and nothing else.
    """
    from pplog.batch import rollup
    from pplog.batch.dataset import listing

    filters = spec.filters
    if filters.status or filters.client or filters.path or spec.exclude_bots:
        return None
    if not (_whole_days(filters.since) and _whole_days(filters.until)):
        return None
    window = filters.since is not None or filters.until is not None
    last_day = f"{filters.until:%Y-%m-%d}" if filters.until else None
    files = listing(dataset, since=filters.since, until=filters.until)
    partials: list[Partial] = []
    rest: list[Path] = []
    uncounted = 0
    wanted = []
    for f in files.entries:
        if f.kind == "data" and f.date == last_day:
            uncounted += f.rows  # read, and all left out
            continue
        usable = f.rollup is not None and not (window and f.date == "unknown")
        wanted.append((f, f.rollup if usable else None))

    def load(entry: tuple[Any, Path | None]) -> Partial | None:
        return None if entry[1] is None else rollup.read(files.layout, entry[1])

    # polars reads Parquet without the GIL: rollups are read side by side
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for (f, _), found in zip(wanted, pool.map(load, wanted), strict=True):
            if found is None:
                rest.append(f.path)
            else:
                partials.append(found)
    if not partials:
        return None  # nothing to merge: the rows are as cheap
    if rest or window:
        # with the columns of every file in the window, as the row road has
        # them (a window of rejects and --until's day still logs what the
        # format logs); refuses --since on a format without times, as it does
        partials.append(map_dataset_rows(files.scan(rest), spec))
    partial = rollup.merge_all(partials, for_finish=True)
    if uncounted:
        totals = partial.frames["totals"]
        partial.frames["totals"] = totals.with_columns(
            (pl.col("parsed") + uncounted).cast(totals.schema["parsed"])
        )
    return partial


def dataset_dir(source: object) -> Path | None:
    """The dataset directory `source` names, if it is one path to a dataset."""
    from pplog.batch.state import is_dataset

    if isinstance(source, list | tuple) and len(source) == 1:
        source = source[0]
    if isinstance(source, str | os.PathLike) and os.fspath(source) != "-":
        path = Path(source)
        if path.is_dir() and is_dataset(path):
            return path
    return None
