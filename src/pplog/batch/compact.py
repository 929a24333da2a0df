"""Compaction: many small files of a partition become one, through the commit log.

A compaction is a commit like an ingest run: the merged file is staged, a
record names it (added) and the files it replaces (removed), then it is
published. Recovery after a crash finishes or forgets it like any run, so
the exactly-once guarantee is unchanged: readers that list files from the
state (`pplog summarize DIR`, `pplog verify`) see either the old files or the
new one, never both.

The merged file gets a rollup in the same record: the sources' rollups
merged when each has one this pplog can use, else the `Partial` of the
merged rows; the sources' rollups are removed with them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from pplog.batch import _fs, rollup
from pplog.batch.state import (
    ROLLUP,
    ZSTD_LEVEL,
    CommittedError,
    DiskFullError,
    Layout,
    State,
    commit,
    finish_commit,
    locked,
    manifest_entry,
    now_iso,
    recorded_policy,
    recover,
)
from pplog.clientip import ProxyPolicy
from pplog.errors import PplogError, SourceError

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def compact_dataset(dataset: str | Path, *, min_files: int = 2) -> int:
    """Take the lock, recover, and compact every partition with `min_files` or more."""
    layout = Layout(Path(dataset))
    with locked(layout):
        state = recover(layout)
        try:
            return compact(layout, state, min_files=min_files)
        except (OSError, pl.exceptions.ComputeError) as exc:
            # polars reports a full disk while sinking as a ComputeError
            text = str(exc)
            full = isinstance(exc, OSError) and exc.errno in _FULL
            if full or "No space left" in text or "File too large" in text:
                msg = f"disk full while compacting; the dataset is unchanged ({text})"
                raise DiskFullError(msg.splitlines()[0]) from exc
            raise


def compact(layout: Layout, state: State, *, min_files: int) -> int:
    """Compact partitions holding `min_files` files or more; the count compacted.

    Every partition's merged file is staged first, then one commit record
    swaps them all in (one record however many partitions: the manifest is
    written once). The caller holds the lock and `state` is applied.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    rollups: dict[str, dict[str, Any]] = {}
    for entry in state.files:
        if entry["kind"] == ROLLUP:
            rollups[entry["of"]] = entry
        else:
            groups[(entry["kind"], entry["date"])].append(entry)
    chosen = {k: v for k, v in sorted(groups.items()) if len(v) >= max(2, min_files)}
    if not chosen:
        return 0
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:8]
    # the files merged are read by polars from their paths: none may be a link
    sources = [layout.root / e["path"] for entries in chosen.values() for e in entries]
    _fs.check(layout.root, *sources)
    try:
        added = []
        for (kind, date), entries in chosen.items():
            try:
                merged = _stage_merged(layout, run_id, kind, date, entries)
            except pl.exceptions.ComputeError as exc:
                _name_damaged(layout, entries, exc)
                raise
            summaries = [rollups.get(e["path"]) for e in entries]
            policy = recorded_policy(state)
            added += [merged, _stage_rollup(layout, run_id, merged, summaries, policy)]
        gone = {e["path"] for entries in chosen.values() for e in entries}
        gone |= {rollups[p]["path"] for p in list(gone) if p in rollups}
        record = {
            "format": "pplog-commit",
            "version": 1,
            "kind": "compact",
            "commit": state.applied + 1,
            "prev_commit": state.applied,
            "run_id": run_id,
            "committed_at": now_iso(),
            "added": added,
            "removed": [{"path": p} for p in sorted(gone)],
            "checkpoints": state.checkpoints,
            "log_format": state.log_format,
            "policy": state.policy,
            "manifest": [e for e in state.files if e["path"] not in gone]
            + [manifest_entry(a) for a in added],
        }
        _fs.check(layout.root, *(layout.root / a["path"] for a in added))
        commit(layout, record)
    except BaseException as exc:
        if not isinstance(exc, CommittedError):  # committed: its staging stays
            with contextlib.suppress(PplogError):  # the first error is the one said
                _fs.rmtree(layout.root, layout.staging / run_id)
        raise
    finish_commit(layout, record)
    _fs.rmtree(layout.root, layout.staging / run_id)
    return len(chosen)


def _name_damaged(
    layout: Layout, entries: list[dict[str, Any]], exc: Exception
) -> None:
    """Raise a `SourceError` naming the file to merge that polars could not
    read (cut short, overwritten), if one is why `exc` was raised."""
    from pplog.batch.dataset import damaged_files

    damaged = damaged_files([layout.root / e["path"] for e in entries])
    if damaged:
        path, why = next(iter(damaged.items()))
        msg = (
            f"cannot compact: `{path}` cannot be read: {why}; nothing was changed "
            f"(`pplog verify {layout.root}` lists each damaged file)"
        )
        raise SourceError(msg) from exc


def _stage_merged(
    layout: Layout, run_id: str, kind: str, date: str, entries: list[dict[str, Any]]
) -> dict[str, Any]:
    """One partition's files merged into a staged file (streamed, fsynced)."""
    base = layout.requests if kind == "data" else layout.rejects
    prefix = "part" if kind == "data" else "rejects"
    final = base / f"date={date}" / f"{prefix}-{run_id}-compacted.parquet"
    staged = layout.staging / run_id / final.relative_to(layout.root)
    _fs.makedirs(layout.root, staged.parent)
    frames = [pl.scan_parquet(layout.root / e["path"], glob=False) for e in entries]
    merged = pl.concat(frames, how="diagonal_relaxed")
    # polars writes (streaming) into a file opened without following links
    with _fs.open_write(layout.root, staged, exclusive=True) as f:
        merged.sink_parquet(f, compression="zstd", compression_level=ZSTD_LEVEL)
        f.flush()
        os.fsync(f.fileno())
        size = os.fstat(f.fileno()).st_size
    _fs.fsync_dir(layout.root, staged.parent)
    return {
        "kind": kind,
        "date": date,
        "path": str(final.relative_to(layout.root)),
        "staging": str(staged.relative_to(layout.root)),
        "rows": sum(int(e["rows"]) for e in entries),
        "bytes": size,
    }


def _stage_rollup(
    layout: Layout,
    run_id: str,
    merged: dict[str, Any],
    summaries: list[dict[str, Any] | None],
    policy: ProxyPolicy | None,
) -> dict[str, Any]:
    """The rollup of a merged file: its sources' rollups merged, when each has
    one this process can use, else the `Partial` of the merged rows."""
    partials = [
        None if s is None else rollup.read(layout, layout.root / s["path"], policy)
        for s in summaries
    ]
    if all(p is not None for p in partials):
        partial = rollup.merge_all([p for p in partials if p is not None])
    else:
        _fs.check(layout.root, layout.root / merged["staging"])
        rows = pl.scan_parquet(layout.root / merged["staging"], glob=False)
        partial = rollup.partial_of_rows(rows, policy=policy)
    final = rollup.path_of(layout, layout.root / merged["path"])
    staged = layout.staging / run_id / final.relative_to(layout.root)
    data = rollup.encode(
        partial, of=merged["path"], rows=int(merged["rows"]), policy=policy
    )
    size = rollup.write(layout, staged, data)
    _fs.fsync_dir(layout.root, staged.parent)
    return {
        "kind": ROLLUP,
        "date": merged["date"],
        "path": str(final.relative_to(layout.root)),
        "staging": str(staged.relative_to(layout.root)),
        "rows": merged["rows"],
        "bytes": size,
        "of": merged["path"],
    }
