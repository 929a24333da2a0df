"""Reading an ingested dataset, and proving it right (`pplog verify`).

Readers refuse a dataset with a symbolic link inside, like the writers do:
the files listed are handed to polars by path, so each is checked (every
component below the dataset directory) before it is scanned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zipfile import BadZipFile

import polars as pl
from polars.exceptions import PolarsError

from pplog.batch import _fs, rollup
from pplog.batch.state import (
    ROLLUP,
    Layout,
    State,
    is_dataset,
    load_state,
    located,
    recorded_format,
    recorded_policy,
)
from pplog.clientip import ProxyPolicy
from pplog.errors import SourceError
from pplog.pipeline.filters import parse_time
from pplog.schema import LENGTH, OFFSET, RAW, REJECT_REASON, SOURCE, STREAM_ID, TIME


@dataclass(frozen=True)
class Entry:
    """A committed data or rejects file, and its rollup if it has one."""

    kind: str
    date: str
    path: Path
    rows: int
    rollup: Path | None


@dataclass(frozen=True)
class Listing:
    """The committed files a window can touch: rows (pruned), then rejects (all)."""

    layout: Layout
    entries: list[Entry]
    # the columns the dataset's format gives its rows, when no rows file is
    # listed (every line rejected, or a window without a rows partition):
    # the tables a summary shows are those the format logs, as for its logs
    columns: dict[str, pl.DataType] | None = None

    def scan(self, paths: Sequence[Path] | None = None) -> pl.LazyFrame:
        """The rows of `paths` (default: every file listed), with the columns
        of every file listed, as `scan_dataset` gives them."""
        every = _scan([e.path for e in self.entries])
        if self.columns:
            every = pl.concat(
                [pl.LazyFrame(schema=self.columns), every], how="diagonal_relaxed"
            )
        if paths is None or len(paths) == len(self.entries):
            return every
        return pl.concat([every.clear(), _scan(paths)], how="diagonal_relaxed")


def listing(
    dataset: str | Path,
    *,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
) -> Listing:
    """The committed files `scan_dataset(dataset, since=, until=,
    include_rejects=True)` reads, in its order, with their rollups."""
    layout = _open(dataset)
    state = load_state(layout)
    # partitions are UTC dates; a naive time is UTC, as `summarize` takes it
    low = parse_time(since).strftime("%Y-%m-%d") if since is not None else None
    high = parse_time(until).strftime("%Y-%m-%d") if until is not None else None
    rollups = {
        e["of"]: located(layout, state, e["path"])
        for e in state.files
        if e["kind"] == ROLLUP and "of" in e
    }
    out: dict[str, list[Entry]] = {"data": [], "rejects": []}
    for e in state.files:
        if e["kind"] not in out:
            continue
        date = e["date"]
        outside = (low and date < low) or (high and date > high)
        if e["kind"] == "data" and date != "unknown" and outside:
            continue
        path = located(layout, state, e["path"])
        entry = Entry(e["kind"], date, path, int(e["rows"]), rollups.get(e["path"]))
        out[e["kind"]].append(entry)
    entries = out["data"] + out["rejects"]
    _fs.check(layout.root, *(e.path for e in entries))
    columns = None if out["data"] else _format_columns(state)
    return Listing(layout, entries, columns)


def _format_columns(state: State) -> dict[str, pl.DataType] | None:
    """The columns the dataset's recorded format gives a row (`Listing.columns`)."""
    from pplog.pipeline import collected_rows
    from pplog.sources import LINES_SCHEMA

    fmt = recorded_format(state)
    if fmt is None:
        return None
    empty = pl.LazyFrame(schema=LINES_SCHEMA)
    rows = collected_rows(empty, fmt, policy=recorded_policy(state), classify=False)
    return dict(rows.schema)


def recorded_policy_of(dataset: str | Path) -> ProxyPolicy | None:
    """The attribution the dataset's rows were read with (`recorded_policy`)."""
    return recorded_policy(load_state(_open(dataset)))


def _scan(paths: Sequence[Path]) -> pl.LazyFrame:
    """Rows of the files (checked already), rejects columns and a time included."""
    if not paths:
        return pl.LazyFrame(
            schema={
                TIME: pl.Datetime("us", "UTC"),
                REJECT_REASON: pl.String,
                RAW: pl.String,
            }
        )
    lf = pl.concat(
        [pl.scan_parquet(p, glob=False) for p in paths], how="diagonal_relaxed"
    )
    names = lf.collect_schema().names()
    if TIME not in names:  # only rejects in the window: no row has a time
        lf = lf.with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias(TIME))
    if REJECT_REASON not in names:
        lf = lf.with_columns(
            pl.lit(None, pl.String).alias(REJECT_REASON),
            pl.lit(None, pl.String).alias(RAW),
        )
    return lf


def scan_dataset(
    dataset: str | Path,
    *,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    include_rejects: bool = False,
) -> pl.LazyFrame:
    """Rows of a dataset written by `pplog ingest`, as a LazyFrame.

    Only committed files are read (listed from the dataset's state, not by
    globbing, so a run in progress is never half-seen). `since` / `until`
    skip whole date partitions; filter on `time` for the exact window.

    Parameters
    ----------
    dataset
        The directory given to ``pplog ingest --dataset``.
    since, until
        Times as `summarize` takes them (``2026-11-27T08:00Z``, ``1h``, a
        `datetime`; UTC unless an offset is given): the date partitions
        outside them are not read.
    include_rejects
        Add the rejected lines, with `reject_reason` and `raw` set.

    Returns
    -------
    polars.LazyFrame
        The row columns of `scan_log`, plus ``stream_id`` and ``length``.

    Examples
    --------
    >>> import tempfile, pplog
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = pplog.ingest(["sample_logs/elb-access.log"], tmp)
    ...     rows = pplog.scan_dataset(tmp).select("client_ip", "status").collect()
    ...     print(rows.height, rows.columns)
    3000 ['client_ip', 'status']
    """
    found = listing(dataset, since=since, until=until)
    if include_rejects:
        return found.scan()
    data = [e.path for e in found.entries if e.kind == "data"]
    if not data:
        return found.scan([])
    lf = pl.concat(
        [pl.scan_parquet(p, glob=False) for p in data], how="diagonal_relaxed"
    )
    if TIME not in lf.collect_schema().names():
        lf = lf.with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias(TIME))
    return lf


@dataclass
class Verification:
    """What `verify` found; `ok` when nothing is wrong."""

    streams: int = 0
    rows: int = 0
    rejects: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    gaps: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    stray_files: list[str] = field(default_factory=list)
    # path -> bytes after its last newline that the last run held back: not
    # an error (the line is taken once its file is finished), but not in yet
    held_back: dict[str, int] = field(default_factory=dict)
    rollups: int = 0
    # committed files without a rollup (written before rollups existed):
    # summaries read their rows; not an error
    without_rollup: list[str] = field(default_factory=list)
    # rollups that are unreadable or do not summarize their file's rows
    bad_rollups: list[str] = field(default_factory=list)
    # streams that hold the same lines as another stream of their log's
    # rotation set: a copy read twice (an error)
    repeated: list[str] = field(default_factory=list)
    # committed data or rejects files that polars cannot read (cut short,
    # overwritten): path -> why; their rows are not checked
    damaged: dict[str, str] = field(default_factory=dict)
    # ... as a file outside their set (`access.log.bak`, or nginx writing
    # one log to two files): ingest keeps sets apart, so each was read; said,
    # not an error
    alike: list[str] = field(default_factory=list)
    # files of the last commit still staged (the run failed or died after its
    # commit point): read from there, moved into place by the next run; said,
    # not an error
    staged: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No duplicate, no gap, no missing file, no wrong rollup, no copy
        of a log read as a stream of its own."""
        return not (
            self.duplicates
            or self.gaps
            or self.missing_files
            or self.bad_rollups
            or self.repeated
            or self.damaged
        )

    def lines(self) -> list[str]:
        """A short human report."""
        out = [
            f"streams {self.streams}, rows {self.rows:,}, rejects {self.rejects:,}"
            + (
                " ("
                + ", ".join(
                    f"{k} {v:,}" for k, v in sorted(self.rejects_by_reason.items())
                )
                + ")"
                if self.rejects_by_reason
                else ""
            )
        ]
        out.append(f"duplicates: {self.duplicates:,}")
        out.append(f"gaps: {len(self.gaps)}")
        out += [f"  {g}" for g in self.gaps[:20]]
        if self.missing_files:
            out.append(f"missing files: {len(self.missing_files)}")
            out += [f"  {p}" for p in self.missing_files[:20]]
        if self.stray_files:
            out.append(
                f"files not in any commit (ignored by readers): {len(self.stray_files)}"
            )
        if self.staged:
            out.append(
                f"committed files not yet moved into place (read where they are "
                f"staged; the next ingest moves them): {len(self.staged)}"
            )
        if self.damaged:
            out.append(f"damaged files (cannot be read): {len(self.damaged)}")
            out += [f"  {p}: {why}" for p, why in list(self.damaged.items())[:20]]
        out.append(f"rollups: {self.rollups:,}")
        if self.without_rollup:
            out.append(
                f"files without rollup (summaries read their rows): "
                f"{len(self.without_rollup)}"
            )
        if self.bad_rollups:
            out.append(f"wrong rollups: {len(self.bad_rollups)}")
            out += [f"  {p}" for p in self.bad_rollups[:20]]
        if self.repeated:
            out.append(
                f"lines read twice (a copy of a log read again): {len(self.repeated)}"
            )
            out += [f"  {r}" for r in self.repeated[:20]]
        if self.alike:
            out.append(
                f"files with the same lines, read as separate logs: {len(self.alike)}; "
                "if one is a copy, leave it out of the paths given to ingest"
            )
            out += [f"  {r}" for r in self.alike[:20]]
        if self.held_back:
            held = sum(self.held_back.values())
            out.append(
                f"held back (last line without newline): {held:,} bytes in "
                f"{len(self.held_back)} file(s); `pplog ingest --final` takes them "
                "if the files are finished"
            )
            out += [f"  {p}: {n:,} bytes" for p, n in list(self.held_back.items())[:20]]
        out.append("OK" if self.ok else "FAILED")
        return out


def verify(dataset: str | Path) -> Verification:
    """Prove that every byte read from each stream is in the dataset once.

    Rows and rejects carry (`stream_id`, `offset`, `length`); per stream,
    sorted by offset, they must tile the bytes from the first line to the
    checkpoint's offset with no gap and no overlap, and no (`stream_id`,
    `offset`) may appear twice. Bytes after a file's last newline that the
    last run held back (a last line without newline) are listed, not failed.

    Examples
    --------
    >>> import tempfile, pplog
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = pplog.ingest(["sample_logs/rotated/access.log*"], tmp)
    ...     found = pplog.verify(tmp)
    ...     print(found.ok, found.rows, found.duplicates)
    True 1050 0
    """
    layout = _open(dataset)
    state = load_state(layout)
    out = Verification()
    where = {
        layout.root / e["path"]: located(layout, state, e["path"]) for e in state.files
    }
    listed = set(where)
    there = {p for p, at in where.items() if _fs.lstat(layout.root, at) is not None}
    out.missing_files = sorted(str(p) for p in listed - there)
    out.staged = sorted(str(p) for p in there if where[p] != p)
    on_disk = (
        set(layout.requests.rglob("*.parquet"))
        | set(layout.rejects.rglob("*.parquet"))
        | set(layout.rollups.rglob(f"*{rollup.SUFFIX}"))
    )
    out.stray_files = sorted(str(p) for p in on_disk - listed)
    _check_rollups(layout, state.files, {where[p] for p in there}, where, out)
    present = sorted(where[p] for p in there if p.suffix == ".parquet")
    try:
        table = _keys(present).collect(engine="streaming")
    except PolarsError:  # a damaged file: named, the others checked
        out.damaged = {str(p): why for p, why in damaged_files(present).items()}
        if not out.damaged:
            raise
        present = [p for p in present if str(p) not in out.damaged]
        table = _keys(present).collect(engine="streaming")
    out.rows = int(table.filter(pl.col(REJECT_REASON).is_null()).height)
    out.rejects = table.height - out.rows
    out.rejects_by_reason = dict(
        table.filter(pl.col(REJECT_REASON).is_not_null())
        .group_by(REJECT_REASON)
        .len()
        .iter_rows()
    )
    out.duplicates = table.height - table.select(STREAM_ID, OFFSET).n_unique()
    ends = {c["stream_id"]: int(c["offset"]) for c in state.checkpoints}
    out.held_back = {
        str(c.get("last_path")): int(c["held"])
        for c in state.checkpoints
        if c.get("held") and c.get("status") == "active"
    }
    spans = table.sort(STREAM_ID, OFFSET).with_columns(
        (pl.col(OFFSET) + pl.col(LENGTH)).alias("_end"),
        pl.col(OFFSET).shift(-1).over(STREAM_ID).alias("_next"),
    )
    holes = spans.filter(
        pl.col("_next").is_not_null() & (pl.col("_next") != pl.col("_end"))
    )
    for row in holes.head(20).iter_rows(named=True):
        out.gaps.append(
            f"stream {row[STREAM_ID][:8]}: bytes {row['_end']}..{row['_next']} "
            "missing or doubled"
        )
    firsts = spans.group_by(STREAM_ID).agg(
        pl.col(OFFSET).min().alias("_first"), pl.col("_end").max().alias("_last")
    )
    out.streams = firsts.height
    for sid, first, last in firsts.iter_rows():
        if first != 0:
            out.gaps.append(f"stream {sid[:8]}: bytes 0..{first} were never read")
        end = ends.get(sid)
        if end is not None and last != end:
            out.gaps.append(
                f"stream {sid[:8]}: rows end at byte {last}, the checkpoint at {end}"
            )
    _check_repeats(state.checkpoints, present, table, out)
    return out


# the stream-content columns: what names the file or stream is left out
_NOT_CONTENT = (SOURCE, STREAM_ID)


def _check_repeats(
    checkpoints: list[dict[str, Any]],
    present: list[Path],
    table: pl.DataFrame,
    out: Verification,
) -> None:
    """Streams holding the same lines as another: `out.repeated` where both
    are of one rotation set (a copy of a log read again as a new stream),
    `out.alike` where they are not.

    Per stream, offsets are checked above; content read twice as two
    streams passes that. Candidates share their checkpoints' head (the hash
    of the first 4 KiB, which `ingest` keeps); they are the same content
    only when every row of the bytes both read is equal, column by column,
    at the same offset (so two logs of the same health checks are the same
    only if every check fell in the same second in both). A stream that
    `ingest` started beside the other's own file, unchanged, beginning as it
    did (`begins_as`: a log of identical lines rotated) is not its copy.
    """
    by_head: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for cp in checkpoints:
        if cp.get("head_sha256") and cp.get("offset"):
            key = (str(cp["head_sha256"]), int(cp.get("head_len") or 0))
            by_head.setdefault(key, []).append(cp)
    groups = [g for g in by_head.values() if len(g) > 1]
    if not groups or not present:
        return
    from pplog.sources import rotation_key

    ends = dict(
        table.group_by(STREAM_ID)
        .agg((pl.col(OFFSET) + pl.col(LENGTH)).max())
        .with_columns(pl.col(STREAM_ID).cast(pl.String))
        .iter_rows()
    )
    wanted = [str(cp["stream_id"]) for g in groups for cp in g]
    rows = pl.concat(
        [pl.scan_parquet(p, glob=False) for p in present], how="diagonal_relaxed"
    ).filter(pl.col(STREAM_ID).is_in(wanted))
    names = sorted(c for c in rows.collect_schema().names() if c not in _NOT_CONTENT)
    hashed = (
        rows.select(
            pl.col(STREAM_ID).cast(pl.String),
            OFFSET,
            pl.struct(names).hash(seed=0).alias("_row"),
        )
        .collect(engine="streaming")
        .sort(STREAM_ID, OFFSET)
    )
    # each stream's rows once (not filtered again for every pair compared)
    parts = {
        str(key[0]): frame
        for key, frame in hashed.partition_by(
            STREAM_ID, as_dict=True, include_key=False
        ).items()
    }
    for group in groups:
        group = [cp for cp in group if str(cp["stream_id"]) in parts]
        group.sort(key=lambda cp: rotation_key(str(cp.get("last_path") or "")))
        # pairs only among streams whose first rows agree: many logs of one
        # head (vhosts' identical health checks) part at their first other line
        k = min([_FIRST_ROWS, *(parts[str(cp["stream_id"])].height for cp in group)])
        alike: dict[tuple[object, ...], list[dict[str, Any]]] = {}
        for cp in group:
            first = parts[str(cp["stream_id"])].head(k)
            sign = (*first[OFFSET].to_list(), *first["_row"].to_list())
            alike.setdefault(sign, []).append(cp)
        for same_start in alike.values():
            _pairs_of(same_start, parts, ends, out)


# how many first rows of two streams must agree before they are compared whole
_FIRST_ROWS = 64


def _pairs_of(
    group: list[dict[str, Any]],
    parts: dict[str, pl.DataFrame],
    ends: dict[str, int],
    out: Verification,
) -> None:
    """Each pair of `group` (streams whose first rows agree) holding the same
    rows over the bytes both read: `out.repeated` or `out.alike`."""
    from pplog.sources import rotation_key

    for i, first in enumerate(group):
        for other in group[i + 1 :]:
            if _told_apart(first, other):
                continue
            a_id, b_id = str(first["stream_id"]), str(other["stream_id"])
            common = min(ends.get(a_id, 0), ends.get(b_id, 0))
            same = _same_rows(parts[a_id], parts[b_id], common)
            if not same:
                continue
            a = str(first.get("last_path") or a_id[:8])
            b = str(other.get("last_path") or b_id[:8])
            said = f"{b}: its first {same:,} lines are those of {a}"
            if rotation_key(a)[0] == rotation_key(b)[0]:
                out.repeated.append(said)
            else:
                out.alike.append(said)


def _told_apart(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether `ingest` found either stream's file a new one that begins as
    the other stream did, beside that stream's own file (`begins_as`)."""
    return a["stream_id"] in b.get("begins_as", ()) or b["stream_id"] in a.get(
        "begins_as", ()
    )


def _same_rows(left: pl.DataFrame, right: pl.DataFrame, common: int) -> int:
    """How many rows two streams (their rows by offset) both hold in bytes
    [0, `common`), when each is the other's, offset for offset; 0 when any
    differs."""
    if common <= 0:
        return 0
    left = left.filter(pl.col(OFFSET) < common)
    right = right.filter(pl.col(OFFSET) < common)
    if left.height == 0 or not left.equals(right):
        return 0
    return left.height


def _keys(present: list[Path]) -> pl.LazyFrame:
    """Each row's and reject's (stream, offset, length, reason) in `present`."""
    if not present:
        return pl.LazyFrame(
            schema={
                STREAM_ID: pl.String,
                OFFSET: pl.UInt64,
                LENGTH: pl.UInt64,
                REJECT_REASON: pl.String,
            }
        )
    return pl.concat(
        [
            # categorical stream ids: ~20 bytes a row, not the id's text
            pl.scan_parquet(p, glob=False)
            .select(STREAM_ID, OFFSET, LENGTH, _reason(p))
            .with_columns(pl.col(STREAM_ID).cast(pl.Categorical))
            for p in present
        ],
        how="vertical_relaxed",
    )


def damaged_files(paths: Sequence[Path]) -> dict[Path, str]:
    """The Parquet files of `paths` that cannot be read whole, with why.

    Looked for only once a read of many files failed: each file's footer,
    then, when every footer is sound, each file read whole on its own (a
    footer can be sound and a page not).
    """

    def why(exc: Exception) -> str:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"damaged Parquet file ({text.removeprefix('parquet: ')})"

    found: dict[Path, str] = {}
    for read in (pl.read_parquet_schema, _read_whole):
        for path in paths:
            try:
                read(path)
            except (PolarsError, OSError) as exc:
                found[path] = why(exc)
        if found:
            break
    return found


def _read_whole(path: Path) -> None:
    pl.read_parquet(path, glob=False, memory_map=False)


def _check_rollups(
    layout: Layout,
    files: list[dict[str, Any]],
    there: set[Path],
    where: dict[Path, Path],
    out: Verification,
) -> None:
    """Each committed file has one rollup, of its own rows; list those that
    have none (older datasets) and those that are wrong."""
    rows = {e["path"]: int(e["rows"]) for e in files if e["kind"] != ROLLUP}
    summaries = [e for e in files if e["kind"] == ROLLUP]
    out.rollups = len(summaries)
    covered = {e.get("of") for e in summaries}
    out.without_rollup = sorted(p for p in rows if p not in covered)
    for e in summaries:
        path = where.get(layout.root / e["path"], layout.root / e["path"])
        if path not in there:
            continue  # listed among the missing files
        try:
            partial, meta = rollup.decode(_fs.read_bytes(layout.root, path))
            lines = partial.lines
        except (OSError, ValueError, KeyError, BadZipFile, PolarsError) as exc:
            out.bad_rollups.append(f"{e['path']}: unreadable ({exc})")
            continue
        of = e.get("of")
        if of not in rows or meta.get("of") != of or lines != rows[of]:
            out.bad_rollups.append(
                f"{e['path']}: {lines:,} lines of `{meta.get('of')}`, "
                f"not the {rows.get(of, 0):,} rows of `{of}`"
            )


def _open(dataset: str | Path) -> Layout:
    """The dataset's layout, once it is known to be one with no link inside."""
    layout = Layout(Path(dataset))
    if not is_dataset(layout.root):
        msg = f"`{dataset}` is not a dataset written by `pplog ingest`"
        raise SourceError(msg)
    layout.check()
    return layout


def _reason(path: Path) -> pl.Expr:
    if path.name.startswith("rejects-"):
        return pl.col(REJECT_REASON)
    return pl.lit(None, pl.String).alias(REJECT_REASON)
