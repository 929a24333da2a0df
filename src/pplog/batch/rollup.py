"""Rollups: each committed file's `Partial`, so that a summary merges, not re-reads.

Every data or rejects file `ingest` stages gets a rollup: the `Partial` of
exactly its rows, mapped as `summarize DIR` maps a dataset's rows (no filter,
no bot exclusion, the default trusted ranges for health checks). It is staged
next to the file and named in the same commit record, so it is published,
recovered and compacted with it: a committed file and its rollup are both
there or both absent. Rollups mirror the files they summarize::

    requests/date=D/part-<run>-<n>.parquet    rows
    rollups/requests/date=D/part-<run>-<n>.zip    their rollup
    rejects/date=D/rejects-<run>-<n>.parquet   rejected lines
    rollups/rejects/date=D/rejects-<run>-<n>.zip  their rollup

so a whole-day window reads the rollups of those days only. A rollup is a
zip (stored) of one member per frame plus `rollup.json` (its format version
and the trusted ranges it was mapped with); a reader uses it only if the
polars version (pair hashes are stable within one), the format version and
the ranges agree with its own, and reads the file's rows otherwise. Members
are zstd Arrow IPC streams (since version 2; the pairs sorted by client,
which compresses them by a third): polars reads a small stream in
microseconds, where each Parquet member (version 1, still read) cost about
half a millisecond, and a 2M-line day of 11 rollups has 187 of them. Since
version 3 a rollup also holds the answers for its user agents (`AGENTS`,
stamped with what answered: `enrich.useragents.stamped`), so a summary of
the dataset parses none of them and builds no ua-parser rules; a version 2
rollup's agents are parsed at finish.

The first rejected lines of a dataset are ordered by ingest: the run (its
id starts with its UTC start time), then the file in reading order (oldest
rotation first, `rotation_key`), then the line. Both roads (rollups and
rows) give the same five.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from pplog.batch import _fs
from pplog.batch.state import Layout
from pplog.clientip import ProxyPolicy
from pplog.enrich.agents import AGENT_CLASS
from pplog.enrich.useragents import parse_agents, stamped
from pplog.schema import HTTP_USER_AGENT, LINE, RAW, REJECT_REASON, SOURCE
from pplog.sources import rotation_key
from pplog.tasks import (
    AGENTS,
    CLIENT_HASH,
    RANK,
    REGROUPED,
    REJECT_SAMPLES,
    Partial,
    checked_ranges,
    merge,
)

# 3: with the user agents' answers (`AGENTS`). Bump when `Partial`'s frames
# change meaning (and make READABLE that version alone: older rollups are
# then unused); a reader of an older version never sees the newer rollups.
VERSION = 3
READABLE = (1, 2, 3)  # 1: Parquet members; 2: Arrow, without the answers
SUFFIX = ".zip"
MEMBER = ".arrow"
META = "rollup.json"
RUN_ID = "run_id"
SAMPLE_COLUMNS = (RANK, SOURCE, LINE, REJECT_REASON, RAW, RUN_ID)


def path_of(layout: Layout, final: Path) -> Path:
    """Where the rollup of the data or rejects file `final` lives."""
    relative = final.relative_to(layout.root)
    return (layout.rollups / relative).with_suffix(SUFFIX)


def _checked(policy: ProxyPolicy | None) -> list[str]:
    """The ranges health checks are told by under `policy` (the dataset's,
    `summarize DIR` takes it too), as text."""
    return [n.text for n in checked_ranges(policy)]


def partial_of_rows(
    rows: pl.LazyFrame | pl.DataFrame,
    *,
    classified: bool = False,
    known: pl.DataFrame | None = None,
    policy: ProxyPolicy | None = None,
) -> Partial:
    """The rollup of a file's rows: `summarize DIR`'s map, without filters,
    and the answers for its user agents (`AGENTS`), which `finish` would
    otherwise parse again at every summary.

    `classified`: the rows' `agent_class` was given by this process (a batch
    `ingest` stages), so it is taken instead of classifying them again, both
    for the map (health checks) and for the answers (11 batches of 2M
    elb_log lines: 0.12 s of the map's 0.89 s were that classification).
    `known`: answers this process gave before (`parse_agents`' `known`):
    an ingest run parses each user agent once, not once per file.
    `policy`: the attribution the rows were read with (None: the default),
    whose ranges tell health checks from visitors.
    """
    from pplog.pipeline import LogSpec
    from pplog.run.dataset import map_dataset_rows

    classes = None
    if (
        classified
        and isinstance(rows, pl.DataFrame)
        and {HTTP_USER_AGENT, AGENT_CLASS} <= set(rows.columns)
    ):
        classes = rows.select(HTTP_USER_AGENT, AGENT_CLASS).unique(HTTP_USER_AGENT)
    partial = map_dataset_rows(rows, LogSpec(policy=policy), classes=classes)
    clients = partial.get("clients")
    if clients is not None and HTTP_USER_AGENT in partial.logged:
        agents = clients.get_column(HTTP_USER_AGENT)
        answers = parse_agents(agents, classes, known=known)
        partial.frames[AGENTS] = stamped(answers)
    return partial


def encode(
    partial: Partial, *, of: str, rows: int, policy: ProxyPolicy | None = None
) -> bytes:
    """A rollup file's bytes: one Arrow IPC member per frame, and `rollup.json`
    (with the ranges `policy`, the rows' attribution, tells checks by)."""
    meta = {
        "format": "pplog-rollup",
        "version": VERSION,
        "of": of,
        "rows": rows,
        "checked": _checked(policy),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(META, json.dumps(meta, sort_keys=True))
        for name, frame in partial.frames.items():
            member = io.BytesIO()
            _ordered(frame).write_ipc_stream(member, compression="zstd")
            z.writestr(f"{name}{MEMBER}", member.getvalue())
    return buf.getvalue()


def _ordered(frame: pl.DataFrame) -> pl.DataFrame:
    """The pairs by client: zstd then stores each client's runs in a third less."""
    if CLIENT_HASH in frame.columns:
        return frame.sort(CLIENT_HASH, nulls_last=True)
    return frame


def decode(data: bytes) -> tuple[Partial, dict[str, Any]]:
    """The partial and the `rollup.json` of a rollup file's bytes.

    Reads the Arrow members of this version and the Parquet ones of version
    1. Raises `ValueError`, `KeyError` or `zipfile.BadZipFile` when the
    bytes are not a rollup.
    """
    frames = {}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        meta = json.loads(z.read(META))
        if not isinstance(meta, dict) or meta.get("format") != "pplog-rollup":
            msg = "not a pplog rollup"
            raise ValueError(msg)
        for name in z.namelist():
            if name.endswith(MEMBER):
                frames[name.removesuffix(MEMBER)] = pl.read_ipc_stream(z.read(name))
            elif name.endswith(".parquet"):
                frames[name.removesuffix(".parquet")] = pl.read_parquet(
                    io.BytesIO(z.read(name))
                )
    return Partial(frames), meta


def usable(
    partial: Partial, meta: dict[str, Any], policy: ProxyPolicy | None = None
) -> bool:
    """Whether this process may merge the rollup into a summary under
    `policy` (else it reads the rows)."""
    return (
        meta.get("version") in READABLE
        and partial.versions == {pl.__version__}
        and meta.get("checked") == _checked(policy)
    )


def write(layout: Layout, path: Path, data: bytes) -> int:
    """Write a staged rollup (exclusive, fsynced); its size."""
    _fs.makedirs(layout.root, path.parent)
    with _fs.open_write(layout.root, path, exclusive=True) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return len(data)


def read(
    layout: Layout, path: Path, policy: ProxyPolicy | None = None
) -> Partial | None:
    """The rollup at `path` if this process can use it under `policy`; None
    if it cannot.

    A rollup that is missing, damaged or mapped otherwise (another polars
    version, other trusted ranges) is None: the caller reads the rows.
    """
    try:
        partial, meta = decode(_fs.read_bytes(layout.root, path))
    except (
        OSError,
        ValueError,
        KeyError,
        zipfile.BadZipFile,
        pl.exceptions.PolarsError,
    ):
        return None
    return partial if usable(partial, meta, policy) else None


def first_rejects(rejects: pl.LazyFrame) -> pl.DataFrame:
    """The first `REJECT_SAMPLES` rejected lines of `rejects` in ingest order.

    Ingest order is (run, file in reading order, line); `rank` is the
    sample's position, so `finish` (which sorts by rank and line) keeps it.
    Rows of a format without `run_id` sort first, as one run.
    """
    names = rejects.collect_schema().names()

    def column(name: str, dtype: type[pl.DataType]) -> pl.Expr:
        found = pl.col(name) if name in names else pl.lit(None)
        return found.cast(dtype).alias(name)

    rows = rejects.filter(column(REJECT_REASON, pl.String).is_not_null()).select(
        column(RUN_ID, pl.String).fill_null(""),
        column(SOURCE, pl.String),
        column(LINE, pl.UInt64),
        column(REJECT_REASON, pl.String),
        column(RAW, pl.String),
    )
    # the first lines of each (run, file) suffice; the files are then put in
    # order in Python, where `rotation_key` lives (a few per run)
    tail = [LINE, REJECT_REASON, RAW]
    firsts = (
        rows.group_by(RUN_ID, SOURCE)
        .agg(pl.col(tail).bottom_k_by(tail, REJECT_SAMPLES))
        .explode(tail)
        .collect(engine="streaming")
    )
    files = firsts.select(RUN_ID, SOURCE).unique()
    order = sorted(
        files.iter_rows(), key=lambda r: (r[0], rotation_key(Path(r[1] or "")))
    )
    ranks = pl.DataFrame(
        {
            RUN_ID: [r[0] for r in order],
            SOURCE: [r[1] for r in order],
            "_file": list(range(len(order))),
        },
        schema={RUN_ID: pl.String, SOURCE: pl.String, "_file": pl.UInt32},
    )
    return (
        firsts.join(ranks, on=[RUN_ID, SOURCE], how="left", nulls_equal=True)
        .sort("_file", *tail, nulls_last=True, maintain_order=True)
        .head(REJECT_SAMPLES)
        .with_row_index(RANK)
        .with_columns(pl.col(RANK).cast(pl.UInt32))
        .select(SAMPLE_COLUMNS)
    )


def merge_all(partials: Sequence[Partial], *, for_finish: bool = False) -> Partial:
    """`merge`, with the first rejected lines in ingest order (`first_rejects`).

    `for_finish`: for a partial that goes to `finish` alone, the frames it
    groups again itself (`REGROUPED`: the pairs, whose `unique` was most of a
    2M-line dataset's merge, the per (client, user agent) sums, the errors
    and the timeline) are only concatenated. 2M lines in 11 rollups: the
    merge takes 0.014 s instead of 0.045 s, `finish` about 0.012 s more. A
    rollup that is stored is merged whole.
    """
    samples = [p.frames["samples"] for p in partials if "samples" in p.frames]
    skipped = {"samples", *REGROUPED} if for_finish else {"samples"}
    rest = [
        Partial({k: v for k, v in p.frames.items() if k not in skipped})
        for p in partials
    ]
    frames = dict(merge(rest).frames)
    if for_finish:
        for name in REGROUPED:
            found = [p.frames[name] for p in partials if name in p.frames]
            if found:  # grouped faster in one chunk; the pairs are only filtered
                frames[name] = pl.concat(
                    found, how="diagonal_relaxed", rechunk=name != "pairs"
                )
    if samples:
        every = pl.concat(
            [s.select(c for c in SAMPLE_COLUMNS if c in s.columns) for s in samples],
            how="diagonal_relaxed",
        )
        frames["samples"] = first_rejects(every.lazy())
    return Partial(frames)
