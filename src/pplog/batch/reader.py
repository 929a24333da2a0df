"""Reading one run's new lines: from each file's checkpoint to its last newline.

A thread reads and splits the next batch while the current one is parsed
(`pipeline.rows`, each distinct user agent classified once, GeoIP per
distinct client) and handed to the staging writer. Checkpoints advance only
for files read to the end of their complete lines; a file that fails
mid-read is dropped from the run and read again next time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import re
import threading
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from pplog import _fastsplit, sources
from pplog.batch import identity
from pplog.batch.identity import Candidate
from pplog.batch.staging import Staging
from pplog.batch.state import now_iso
from pplog.clientip import ProxyPolicy
from pplog.enrich.agents import agent_class_per_value
from pplog.enrich.geo import GeoDatabases, geo_table
from pplog.errors import PplogError
from pplog.formats import LogFormat
from pplog.formats.errorlog import ENTRY_START
from pplog.pipeline import collected_rows
from pplog.pipeline.detect import DETECT_LINES, doctor_command, error_log_note
from pplog.schema import (
    CLIENT_IP,
    HTTP_USER_AGENT,
    LENGTH,
    LINE,
    OFFSET,
    RAW,
    REASON_NO_MATCH,
    REJECT_REASON,
    SOURCE,
    STREAM_ID,
    TIME,
)
from pplog.sources import (
    LINE_LIMIT,
    RAW_KEPT,  # noqa: F401
    READ_ERRORS,
    SAMPLE_BYTES,
    SKIPPED_BINARY,
    Block,
    LineSplitter,
    Source,
    TrailingDataError,
    binary_throughout,
    describe,
)

FORGET_AFTER = 14 * 86400.0  # seconds unseen before a checkpoint is dropped
# proofs of copies a checkpoint keeps (`identity.copy_proof`, `_match`)
COPIES_KEPT = 8
# the C split's ranges for ingest: the summary's 4 MiB (`_fastsplit.BLOCK_BYTES`)
# were no faster here and held 55 MiB more over 2M lines (32 MiB batches)
C_BLOCK_BYTES = 2 << 20

ProblemHandler = Callable[[str], None]


def _skipped_error_log(name: str) -> str:
    """The warning for the file `name`, an nginx error log, not ingested."""
    return (
        f"{name}: skipped: an nginx error log, not an access log; leave it out "
        "of the paths (e.g. '/var/log/nginx/access.log*') and read it with "
        f"{doctor_command(name)}"
    )


def _starts_an_error_log_entry(head: bytes) -> bool:
    """Whether a line of `head` starts like an nginx error-log entry
    (`YYYY/MM/DD HH:MM:SS [`): a cheap test before taking a sample."""
    return _ENTRY_START.search(head) is not None


_ENTRY_START = re.compile(ENTRY_START.encode(), re.MULTILINE)


@dataclass
class IngestResult:
    """What one run did."""

    committed: int | None = None  # the commit number; None when nothing was new
    rows: int = 0
    rejects: int = 0
    bytes_read: int = 0
    files: int = 0
    warnings: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    compacted: int = 0
    # path -> bytes after its last newline, not taken: a last line without
    # newline waits until its file is finished (rotated and idle, or --final)
    held: dict[str, int] = field(default_factory=dict)
    # input -> its `no_match` rejects this run, the last of them, and whether
    # the last line read is one (`ingest._misfit_warnings`: was nginx's
    # log_format changed?)
    misfits: dict[str, tuple[int, list[str], bool]] = field(default_factory=dict)
    # what `ingest._misfit_warnings` found, said after the run
    format_warnings: list[str] = field(default_factory=list)

    def misfit(self, name: str, count: int, sample: list[str], *, last: bool) -> None:
        """Count `no_match` rejects of `name`, keeping the last lines;
        `last`: its last line read so far is one."""
        n, kept, _ = self.misfits.get(name, (0, [], False))
        self.misfits[name] = (n + count, (kept + sample)[-DETECT_LINES:], last)

    def warn(self, key: str, n: int = 1) -> None:
        """Count a warning."""
        self.warnings[key] = self.warnings.get(key, 0) + n

    def held_lines(self) -> list[str]:
        """One line per file with bytes held back, and why, for `-v`."""
        return [
            f"ingest: {name}: {n:,} bytes after the last newline held back: a last "
            "line without newline is taken once its file is rotated and idle for "
            "--final-grace, or at once with --final if the file is finished"
            for name, n in self.held.items()
        ]

    def line(self) -> str:
        """One summary line, for `-v`."""
        what = f"commit {self.committed}" if self.committed else "nothing new"
        text = (
            f"ingest: {what}: {self.rows:,} rows, {self.rejects:,} rejects, "
            f"{self.bytes_read:,} bytes from {self.files} file(s)"
        )
        if self.compacted:
            text += f"; compacted {self.compacted} partition(s)"
        if self.held:
            held = sum(self.held.values())
            text += f"; held back {held:,} bytes in {len(self.held)} file(s)"
        warn = ", ".join(f"{k} {v:,}" for k, v in self.warnings.items() if v)
        return text + (f"; warnings: {warn}" if warn else "")


def disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
    )


class Reader:
    """Reads each candidate from its checkpoint and stages the parsed lines."""

    def __init__(
        self,
        fmt: LogFormat,
        policy: ProxyPolicy,
        staging: Staging,
        result: IngestResult,
        final_grace: float,
        batch_bytes: int,
        hit: Callable[[str], None],
    ) -> None:
        self.fmt = fmt
        self.policy = policy
        self.staging = staging
        self.result = result
        self.final_grace = final_grace
        self.batch_bytes = batch_bytes
        self.hit = hit
        self.geo: GeoDatabases | None = None
        self.watched: set[str] = set()  # every path the patterns matched
        self.patterns: list[str] = []  # listed again once the live log is read
        self.geo_skip_special = True
        self.finished = False  # --final: every file is finished, none written to
        # the run's user agents, each classified once: the rules' patterns are
        # compiled at each evaluation (10 ms a batch, for 32 distinct agents)
        self.agent_class = agent_class_per_value(HTTP_USER_AGENT)
        # small reads wait here to be parsed and staged together (`_stage`)
        self.held: list[_Held] = []
        self.held_bytes = 0

    def final(self, cand: Candidate) -> bool:
        """Whether a last line without newline is complete: the file is done."""
        if self.finished or cand.compressed:
            return True
        return identity.is_idle(cand, self.final_grace)

    def read_all(
        self,
        cands: list[Candidate],
        previous: list[dict[str, Any]],
        report: ProblemHandler,
    ) -> list[dict[str, Any]]:
        """Read every candidate; the checkpoints after this run."""
        checkpoints = [dict(c) for c in previous]
        heads = identity.HeadIndex(checkpoints)  # kept as checkpoints change
        proofs = _Proofs(checkpoints)  # and the copies' proofs they keep
        used: set[str] = set()
        read_past: list[tuple[Candidate, dict[str, Any]]] = []  # `_match`
        listed = {tuple(identity.seen(c)) for c in cands}
        listings = identity.Listings()  # the directories of the live logs
        # a stream whose own file is here (`identity.own_stream`) is that
        # file's: another file that begins with its bytes is a new one
        owners = {c.owns: c for c in cands if c.owns}
        now = now_iso()
        for cand in cands:
            try:
                cp, is_copy = _match(cand, checkpoints, heads, used, owners, proofs)
            except OSError as exc:  # gone or replaced since it was found
                used.update(c["stream_id"] for c in _heads(cand, heads, used))
                self._problem(cand, exc, "file_errors", report)
                continue
            if cp is not None and is_copy:  # a copy holding nothing unread
                # the stream's own file, if here, claims it first (whatever
                # the order of names): the copy never takes it from it
                if cp["stream_id"] not in used:
                    read_past.append((cand, cp))
                continue
            if cp is None:
                short = len(cand.head) < identity.HEAD_BYTES
                if not cand.head:
                    continue  # empty: its fingerprint would match every file
                if b"\n" not in cand.head and short and not self.final(cand):
                    self.result.held[cand.name] = cand.size  # no complete line yet
                    continue
                # the head is the decompressed start after a leading NUL hole:
                # the sample `summarize` judges too
                plain = None if cand.compressed else cand.path
                if binary_throughout(plain, cand.head[:SAMPLE_BYTES]):
                    self.result.warn("binary_files")
                    message = f"{cand.name}: {SKIPPED_BINARY}"
                    self.result.problems.append(message)
                    report(message)
                    continue
                if self._error_log(cand):
                    # a glob such as /var/log/nginx/* takes it too: its lines
                    # are not the dataset's rejects, and the next run says so
                    # again (no checkpoint), as for a binary file
                    self.result.warn("error_logs")
                    message = _skipped_error_log(cand.name)
                    self.result.problems.append(message)
                    report(message)
                    continue
                if _heads(cand, heads, used):
                    self.result.warn("identity_resets")  # truncated and rewritten
                cp = {"stream_id": uuid.uuid4().hex, "offset": 0, "lines": 0}
                cp.update(tail_len=0, tail_sha256=identity.sha256(b""))
                cp["first_seen"] = now
                alike = _begins_as(cand, owners)
                if alike:  # the same lines as those streams, by chance: `verify`
                    cp["begins_as"] = alike
                checkpoints.append(cp)
                heads.put(cp)
            used.add(cp["stream_id"])
            cp.update(last_path=cand.name, last_seen=now, status="active")
            cp.pop("lost", None)
            if cp.get("done"):
                continue  # a compressed file read to its end never grows
            before = dict(cp)
            counts = self.result.rows, self.result.rejects
            try:
                self._read_one(cand, cp)
            except READ_ERRORS as exc:
                if disk_full(exc):
                    raise
                self._forget(cp["stream_id"])
                self.staging.drop_stream(cp["stream_id"])
                self.result.rows, self.result.rejects = counts
                if "head_len" in before:
                    cp.clear()
                    cp.update(before)
                    heads.put(cp)
                else:  # first sight: no checkpoint, as if it had not been seen
                    checkpoints.remove(cp)
                    heads.drop(cp)
                    used.discard(cp["stream_id"])
                kind = "gz_incomplete" if cand.compressed else "file_errors"
                self._problem(cand, exc, kind, report)
                continue
            if cand.cut is not None:  # read as `summarize` reads it
                trailing = isinstance(cand.cut, TrailingDataError)
                self.result.warn("trailing_garbage" if trailing else "damaged")
                where = f"stopped at byte {int(cp['offset']):,}"
                message = f"{cand.name}: {where}: {describe(cand.cut)}"
                self.result.problems.append(message)
                report(message)
            head_len = len(cand.head)
            if head_len >= int(cp.get("head_len", 0)):
                cp["head_len"] = head_len
                cp["head_sha256"] = identity.sha256(cand.head)
                heads.put(cp)
            cp.update(compressed=cand.compressed, hint=identity.hint(cand))
            if cand.live:  # a copy made or finished since the files were listed
                cand.copies += identity.copies_after_read(
                    cand, cp, self.patterns, listed, listings
                )
            if cand.copies:  # files left out as its copies: for after the truncate
                kept = [*cp.get("copies", []), *cand.copies]
                cp["copies"] = list({p["tail_sha256"]: p for p in kept}.values())[
                    -COPIES_KEPT:
                ]
                proofs.put(cp)
            # the streams read so far are whole: their held lines may be staged
            if self.held_bytes >= self.batch_bytes:
                self._flush()
        self._flush()
        for cand, cp in read_past:
            if cp["stream_id"] in used:
                continue  # read from its own file this run
            used.add(cp["stream_id"])
            cp.update(last_path=cand.name, last_seen=now, status="active")
            cp.pop("lost", None)
        return _age(
            checkpoints, used, self.result, self.watched, {c.name for c in cands}
        )

    def _error_log(self, cand: Candidate) -> bool:
        """Whether a file met for the first time is an nginx error log that
        the dataset's format does not read, judged on the sample detection
        takes (`DETECT_LINES`), not the 4 KiB head: a container's output
        starts with nginx's start-up notices, then holds its access lines."""
        if not _starts_an_error_log_entry(cand.head):
            return False
        try:
            sample = sources.read_head(Source(cand.name, cand.path), DETECT_LINES)
        except (OSError, PplogError):
            return False  # read (or not) as any file: its problem is said then
        return error_log_note(sample, self.fmt) is not None

    def _problem(
        self, cand: Candidate, exc: BaseException, kind: str, report: ProblemHandler
    ) -> None:
        """Count and report a file that could not be read this run."""
        self.result.warn(kind)
        detail = describe(exc)
        message = f"{cand.name}: {detail}; its new lines wait for the next run"
        self.result.problems.append(message)
        report(message)

    def _read_one(self, cand: Candidate, cp: dict[str, Any]) -> None:
        """Read `cand` from the checkpoint's offset; advance the checkpoint.

        Reading and splitting lines runs in a thread, one batch ahead of
        parsing and writing (both release the GIL for most of their work),
        when there may be more than one batch.
        """
        start = offset = int(cp["offset"])
        line_no = int(cp.get("lines", 0)) + 1
        final = self.final(cand)
        cand.end = None
        tail = b""
        ended = True
        self.result.files += 1
        if not cand.compressed and cand.size == offset:
            # nothing written since it was read (its match checked the bytes
            # before the offset): not opened again. A cron run over 3,600
            # vhost logs, 400 of them live: 0.19 s of about 1 s
            cp.update(lines=line_no - 1, done=False)
            cp.pop("held", None)
            return
        batches = _batches(
            cand,
            offset,
            line_no,
            self.batch_bytes,
            final=final,
            fmt=self.fmt,
            policy=self.policy,
        )
        if cand.compressed or cand.size - offset > self.batch_bytes:
            batches = prefetch(batches)  # a read of one batch has nothing to overlap
        for frame, size, last, complete in batches:
            if frame.height:
                self._stage(frame, cp["stream_id"], size)
                self.hit("mid_read")
            line_no += frame.height
            offset += size
            tail = (tail + last)[-identity.TAIL_BYTES :]
            ended = complete
        self.result.bytes_read += offset - start
        cp.update(lines=line_no - 1, done=bool(cand.compressed and ended))
        if cp["done"]:  # the file it was read from, to know it again unread
            cp["seen"] = identity.seen(cand)
        held = 0 if cand.end is None else max(0, cand.end - offset)
        if held:  # a last line without newline: kept for `verify` to say
            self.result.held[cand.name] = cp["held"] = held
        else:
            cp.pop("held", None)
        if offset == start:
            return  # nothing new: the marker stands
        if len(tail) < min(offset, identity.TAIL_BYTES):
            tail = identity.read_tail_marker(cand, offset) or b""
        cp.update(offset=offset, tail_len=len(tail), tail_sha256=identity.sha256(tail))

    def _stage(self, lines: pl.DataFrame, stream_id: str, size: int) -> None:
        """Parse a batch of `size` bytes and stage its rows and rejects.

        A batch under a quarter of `batch_bytes` (a file with few new lines)
        is held instead, to be parsed and staged with other streams' once
        their reads are whole (`_flush`): each parse and staged file has a
        fixed cost (about 30 ms a file over a directory of small logs). A
        stream whose read fails has its held lines forgotten (`_forget`), as
        `Staging.drop_stream` forgets its files; lines it holds past
        `batch_bytes` are staged as its own.
        """
        if size >= self.batch_bytes // 4:
            self._parse_and_stage([_Held(stream_id, lines, size)], stream_id)
            return
        self.held.append(_Held(stream_id, lines, size))
        self.held_bytes += size
        # the stream being read holds the last of them
        n = len(self.held)
        while n and self.held[n - 1].stream_id == stream_id:
            n -= 1
        own = self.held[n:]
        if sum(h.size for h in own) >= self.batch_bytes:
            self._forget(stream_id)
            self._parse_and_stage(own, stream_id)

    def _forget(self, stream_id: str) -> None:
        """Drop the lines `stream_id` holds (`_stage`)."""
        self.held = [h for h in self.held if h.stream_id != stream_id]
        self.held_bytes = sum(h.size for h in self.held)

    def _flush(self) -> None:
        """Parse and stage every held batch, those of one column layout
        together (the C split's and the Python reader's frames differ)."""
        groups: dict[tuple[tuple[str, pl.DataType], ...], list[_Held]] = {}
        for h in self.held:
            groups.setdefault(tuple(h.lines.schema.items()), []).append(h)
        self.held = []
        self.held_bytes = 0
        for group in groups.values():
            streams = {h.stream_id for h in group}
            self._parse_and_stage(group, streams.pop() if len(streams) == 1 else None)

    def _parse_and_stage(self, batches: list[_Held], stream_id: str | None) -> None:
        """Parse `batches` (one column layout) as one frame and stage its
        rows and rejects, as `stream_id`'s files (None: several streams',
        whose reads are whole)."""
        lines = (
            batches[0].lines
            if len(batches) == 1
            else pl.concat([h.lines for h in batches], how="vertical", rechunk=True)
        )
        parsed = collected_rows(
            lines.lazy(), self.fmt, policy=self.policy, classify=False
        )
        if parsed.height != lines.height:  # one row or reject per line
            msg = f"parsed {parsed.height:,} rows from {lines.height:,} lines"
            raise AssertionError(msg)
        ids: pl.Expr | pl.Series = pl.lit(batches[0].stream_id)
        if len(batches) > 1:  # each batch's stream, repeated for its lines
            each = pl.DataFrame(
                {
                    STREAM_ID: [h.stream_id for h in batches],
                    "n": [h.lines.height for h in batches],
                },
                schema={STREAM_ID: pl.String, "n": pl.UInt32},
            )
            ids = each.select(pl.col(STREAM_ID).repeat_by("n").explode()).to_series()
        parsed = parsed.with_columns(ids.alias(STREAM_ID))
        # the looked-up columns are joined to the key column alone and added
        # beside the others: a join of the whole batch would copy every column
        if HTTP_USER_AGENT in parsed.columns:  # each distinct user agent once
            uas = parsed.select(pl.col(HTTP_USER_AGENT).unique())
            parsed = _beside(
                parsed,
                uas.with_columns(self.agent_class),
                HTTP_USER_AGENT,
                nulls_equal=True,
            )
        if self.geo is not None:  # each distinct client looked up once
            ips = parsed.get_column(CLIENT_IP).drop_nulls().unique()
            geo = geo_table(ips, self.geo, skip_special=self.geo_skip_special)
            parsed = _beside(parsed, geo, CLIENT_IP, nulls_equal=False)
        bad = pl.col(REJECT_REASON).is_not_null()
        clean = parsed.get_column(REJECT_REASON).null_count() == parsed.height
        ok = (parsed if clean else parsed.filter(~bad)).drop(REJECT_REASON, RAW)
        if ok.height:
            date = (
                pl.col(TIME).dt.date()
                if TIME in ok.columns
                else pl.lit(None, pl.Date)  # a format without a time: `unknown`
            )
            dated = ok.with_columns(date.alias("_date"))
            self.staging.write("data", stream_id, dated)
            self.result.rows += ok.height
        if not clean:  # the reject columns alone are filtered: every column
            # of a batch filtered by an all-false mask cost 5-95 ms
            today = datetime.now(UTC).date()
            out = (
                parsed.select(
                    STREAM_ID, SOURCE, LINE, OFFSET, LENGTH, REJECT_REASON, RAW
                )
                .filter(bad)
                .with_columns(
                    pl.lit(self.staging.run_id).alias("run_id"),
                    pl.lit(today).alias("_date"),
                )
            )
            self.staging.write("rejects", stream_id, out)
            self.result.rejects += out.height
            self._misfits(parsed)
        elif self.result.misfits:  # each input's last line read is no reject
            for name in parsed.get_column(SOURCE).unique():
                if name in self.result.misfits:
                    self.result.misfit(name, 0, [], last=False)

    def _misfits(self, parsed: pl.DataFrame) -> None:
        """Count each input's `no_match` rejects of a batch (`misfit`)."""
        bad = pl.col(REJECT_REASON) == REASON_NO_MATCH
        per_input = parsed.group_by(SOURCE, maintain_order=True).agg(
            bad.sum().alias("n"),
            pl.col(RAW).filter(bad).tail(DETECT_LINES),
            bad.sort_by(LINE).last().alias("last"),
        )
        for name, n, raw, last in per_input.iter_rows():
            if n or name in self.result.misfits:
                self.result.misfit(name, n, raw, last=last)


@dataclass
class _Held:
    """A small batch of `stream_id`'s lines, `size` bytes, waiting to be
    parsed with others (`Reader._stage`)."""

    stream_id: str
    lines: pl.DataFrame
    size: int


def _beside(
    frame: pl.DataFrame, table: pl.DataFrame, key: str, *, nulls_equal: bool
) -> pl.DataFrame:
    """`frame` left-joined to `table` on `key`, in `frame`'s order, without
    copying `frame`'s columns (only the key column is joined)."""
    found = frame.select(key).join(
        table, on=key, how="left", nulls_equal=nulls_equal, maintain_order="left"
    )
    return frame.with_columns(found.drop(key))


def _heads(
    cand: Candidate, heads: identity.HeadIndex, used: set[str]
) -> list[dict[str, Any]]:
    """The unclaimed checkpoints whose fingerprint `cand` starts with."""
    return [c for c in heads.starting(cand) if c["stream_id"] not in used]


def _begins_as(cand: Candidate, owners: dict[str, Candidate]) -> list[str]:
    """The streams whose own file is another file of this run (`owners`)
    that `cand`, a new stream, begins as (one file's first bytes start the
    other's): a log of identical lines, rotated. Their rows may be the same,
    offset for offset; `verify` knows them apart by this."""
    return sorted(
        sid
        for sid, own in owners.items()
        if own is not cand
        and cand.head
        and (own.head.startswith(cand.head) or cand.head.startswith(own.head))
    )


def _match(
    cand: Candidate,
    checkpoints: list[dict[str, Any]],
    heads: identity.HeadIndex,
    used: set[str],
    owners: dict[str, Candidate] | None = None,
    proofs: _Proofs | None = None,
) -> tuple[dict[str, Any] | None, bool]:
    """The checkpoint this file continues, if any (the longest verified
    head), and whether the file is a copy of that stream read past already.

    A copytruncate copy ends where the copy did; a run between the copy and
    the truncate reads the live file on, past the copy's end (the lines of
    the window). The copy then holds the stream's head but ends before its
    offset, so the marker there cannot be checked. That run saw both files
    and proved the copy a byte prefix of the log (`identity.copy_proof`,
    kept with the stream): the file that still matches such a proof is the
    copy, every byte of it read. Otherwise a file shorter than the offset
    was truncated and rewritten: no match, a new generation. A stream whose
    own file is another file of this run (`owners`: that file by stream id,
    `identity.own_stream`) is not this file's, whatever its bytes. The
    proofs are looked up by the file's head (`proofs`, kept by the caller
    as checkpoints change; built here without it).
    """
    found = sorted(_heads(cand, heads, used), key=lambda c: -int(c["head_len"]))
    for cp in found:
        if (owners or {}).get(cp["stream_id"], cand) is not cand:
            continue  # its own file is another, here: this one is new
        offset = int(cp["offset"])
        if cp.get("done"):
            # read to its end: the same file (unchanged), or the same bytes
            # before the offset and none after; another generation written
            # from the same header is not it
            if cp.get("seen") == identity.seen(cand) or identity.ends_as(cand, cp):
                cp["seen"] = identity.seen(cand)
                return cp, False
            continue
        marker = identity.read_tail_marker(cand, offset)
        if marker is not None and identity.sha256(marker) == cp.get("tail_sha256"):
            return cp, False
    head = identity.sha256(cand.head)
    index = proofs if proofs is not None else _Proofs(checkpoints)
    for cp in index.having(head, checkpoints):  # a stream read this run too:
        kept = list(cp.get("copies", ()))  # the copy is skipped
        for i, proof in enumerate(kept):
            if proof["head_sha256"] == head and identity.is_copy(cand, proof):
                # this file, unchanged, needs no check again (a .gz: no
                # decompressing at every run while it is kept)
                kept[i] = {**proof, "seen": identity.seen(cand)}
                cp["copies"] = kept
                return cp, True
    return None, False


class _Proofs:
    """Checkpoints by the head of the copies whose proofs they keep
    (`identity.copy_proof`): a file no stream continues is checked against
    the proofs of its own head alone, not every checkpoint's (a first run
    over 3,600 files: 6.5M checkpoints looked at)."""

    def __init__(self, checkpoints: list[dict[str, Any]]) -> None:
        self.by_head: dict[str, list[dict[str, Any]]] = {}
        for cp in checkpoints:
            self.put(cp)

    def put(self, cp: dict[str, Any]) -> None:
        """Index `cp`'s proofs (again, once they changed)."""
        for proof in cp.get("copies", ()):
            at = self.by_head.setdefault(proof["head_sha256"], [])
            if not any(c is cp for c in at):
                at.append(cp)

    def having(
        self, head: str, checkpoints: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The checkpoints still in `checkpoints` that keep a proof of a
        copy with head `head`, in `checkpoints`' order."""
        found = self.by_head.get(head, [])
        if len(found) < 2:  # a checkpoint keeps proofs once its file is read:
            return found  # one dropped as its first read failed kept none
        order = {id(cp): i for i, cp in enumerate(checkpoints)}
        return sorted(
            (cp for cp in found if id(cp) in order), key=lambda c: order[id(c)]
        )


def _age(
    checkpoints: list[dict[str, Any]],
    used: set[str],
    result: IngestResult,
    watched: set[str],
    readable: set[str],
) -> list[dict[str, Any]]:
    """Mark checkpoints whose file is gone; count unread bytes; forget old ones.

    A stream whose last path still exists but was not read (unreadable, or
    no longer matched by the patterns: a mistyped glob) is `unseen`, not gone,
    and is never forgotten: forgetting it would read the file again from its
    first byte once it is back.
    """
    now = datetime.now(UTC)
    kept = []
    for cp in checkpoints:
        last = cp.get("last_path")
        unread = last is not None and (last not in watched or last not in readable)
        finished = bool(cp.get("done"))
        there = last is not None and _still_there(str(last), cp.get("hint"), finished)
        if cp["stream_id"] not in used and unread and there:
            # a finished file read to its end (a compressed rotation that
            # logrotate made while the run listed the files) has nothing left
            # to read: kept, not warned about
            if cp.get("status") != "unseen" and not finished:
                result.warn("files_not_read")
            cp["status"] = "unseen"
            kept.append(cp)
            continue
        if cp["stream_id"] not in used and cp.get("status") in ("active", "unseen"):
            cp["status"] = "gone"
            size = int(cp.get("hint", {}).get("size", 0))
            if not cp.get("compressed") and size > int(cp["offset"]):
                cp["lost"] = size - int(cp["offset"])
                result.warn("bytes_lost_unread", cp["lost"])
        seen = cp.get("last_seen")
        if seen and cp.get("status") == "gone":
            age = now - datetime.strptime(seen, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=UTC
            )
            if age.total_seconds() > FORGET_AFTER:
                continue
        kept.append(cp)
    return kept


def _still_there(name: str, hint: dict[str, Any] | None, finished: bool) -> bool:
    """Whether the file a checkpoint last read is still at `name`, not
    another file given its name since (logrotate names each new rotation as
    an older one was named: a stream gone long ago is not back because
    `access.log.2.gz` exists again). The same inode; for a finished file
    also its size and mtime, which no longer change, since a deleted
    rotation's inode number is soon given to the next one."""
    try:
        st = sources.path_of_name(name).stat()
    except OSError:
        return False
    if not hint or "ino" not in hint:
        return True  # recorded before hints: by name, as it was
    same = (st.st_dev, st.st_ino) == (hint.get("dev"), hint.get("ino"))
    if finished:
        same &= (st.st_size, st.st_mtime_ns) == (hint.get("size"), hint.get("mtime_ns"))
    return same


Batch = tuple[pl.DataFrame, int, bytes, bool]


def _batches(
    cand: Candidate,
    offset: int,
    line_no: int,
    batch_bytes: int,
    *,
    final: bool,
    fmt: LogFormat | None = None,
    policy: ProxyPolicy | None = None,
) -> Iterator[Batch]:
    """Frames of about `batch_bytes` of complete lines from `offset` on.

    Yields (lines, bytes consumed, the last bytes consumed, whether nothing
    is left over). A last line without newline is yielded only when `final`.
    A plain file is read and split in C where `fmt` allows (`_c_batches`),
    up to where it is not plain text; the rest, and every compressed file,
    is cut by `sources.LineSplitter`: a line that runs past `LINE_LIMIT` is
    not held in memory but becomes one `too_long` reject covering all its
    bytes, its first `RAW_KEPT` bytes kept. Blocks of plain text are still
    split in C for `fmt` (see `_frame`).
    """
    if not cand.compressed and _fastsplit.applies(fmt):
        assert fmt is not None
        rest = yield from _c_batches(
            cand, offset, line_no, batch_bytes, final=final, fmt=fmt, policy=policy
        )
        if rest is None:
            return
        offset, line_no = rest
    lines = LineSplitter(offset, line_no, tail_bytes=identity.TAIL_BYTES)
    for piece in identity.read_from(cand, offset, batch_bytes):
        for block in lines.feed(piece):
            frame = _frame(cand.name, block, fmt)
            yield frame, block.size, block.tail, not lines.pending
    if lines.pending and final:  # the last line of a finished file, without newline
        for block in lines.finish():
            yield _frame(cand.name, block, fmt), block.size, block.tail, True
    elif lines.pending:  # a partial line waits: say so with an empty batch
        yield _frame(cand.name, Block(b"", lines.line, lines.offset, 0)), 0, b"", False


def _c_batches(
    cand: Candidate,
    offset: int,
    line_no: int,
    batch_bytes: int,
    *,
    final: bool,
    fmt: LogFormat,
    policy: ProxyPolicy | None = None,
) -> Generator[Batch, None, tuple[int, int] | None]:
    """`_batches` of plain file `cand`, read and split by the C code in
    ranges on every core (`_fastsplit.split_ranges`), without a copy of the
    bytes in Python; returns None once its complete lines are read, or the
    (offset, line number) from which the Python reader must go on: where the
    file is not plain text (a NUL hole, a CR, bytes that are not UTF-8, a
    line over `LINE_LIMIT`), or everything when `offset` does not start a
    line or the unfinished last line is longer than `LINE_LIMIT`. With
    `policy`, the C code makes the trust decisions it can as it splits
    (`_fastsplit.realip`), which `clientip.attributed` takes.
    """
    with identity.open_plain(cand) as f:
        fd = f.fileno()
        end = os.fstat(fd).st_size  # what is there now; more waits for the next run
        if offset > end or (offset > 0 and os.pread(fd, 1, offset - 1) != b"\n"):
            return offset, line_no
        stop = end if final else _after_last_newline(fd, offset, end)
        if stop is None:
            return offset, line_no
        cand.end = end
        pieces: list[pl.DataFrame] = []
        first = offset  # of the batch being gathered

        def batch(upto: int) -> Batch:
            """The gathered ranges' lines, which end at byte `upto`."""
            frame = pl.concat(pieces, how="vertical", rechunk=False)
            frame = _fastsplit.numbered(frame, line_no - frame.height, cand.name)
            frame = _with_length(frame, upto)
            pieces.clear()
            n = min(identity.TAIL_BYTES, upto)
            tail = os.pread(fd, n, upto - n)
            # read out of order: still the content found, up to `upto`?
            identity.check_unchanged(cand, fd, upto)
            return frame, upto - first, tail, upto == end

        # each value column's text on its own (`values`): a batch's Parquet
        # file and rollup hash and compare it several times faster than views
        # into the lines, spread over 32 MiB (2M elb_log lines: 0.45 s less
        # CPU, 2.81-3.05 -> 2.53-2.73 s in alternating runs)
        split = _fastsplit.split_ranges(
            fd,
            offset,
            stop,
            fmt,
            block_bytes=C_BLOCK_BYTES,
            policy=policy,
            values=True,
        )
        with contextlib.closing(split):
            for df, count, at in split:
                if pieces and (df is None or at - first >= batch_bytes):
                    yield batch(at)
                    first = at
                if df is None:  # not plain text from here on
                    return at, line_no
                pieces.append(df)
                line_no += count
        if pieces:
            yield batch(stop)
    return None


def _after_last_newline(fd: int, offset: int, end: int) -> int | None:
    """Where the last complete line at or after `offset` ends (`offset`
    when none does); None when the unfinished line after it is longer than
    `LINE_LIMIT` (the Python reader cuts such a line)."""
    floor = max(offset, end - LINE_LIMIT - 1)
    hi = end
    while hi > floor:
        lo = max(floor, hi - (64 << 10))
        nl = os.pread(fd, hi - lo, lo).rfind(b"\n")
        if nl >= 0:
            return lo + nl + 1
        hi = lo
    return offset if floor == offset else None


_DONE = object()


def prefetch(items: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Iterate `items` in a thread, `depth` items ahead; re-raise its errors here.

    The thread takes the next item only once there is room for it: at most
    `depth` items wait, beside the one the caller holds (a batch of lines
    is 32 MiB of text: one built and held while the queue was full was a
    batch more in memory).
    """
    q: queue.Queue[Any] = queue.Queue()
    room = threading.Semaphore(depth)
    stop = threading.Event()

    def run() -> None:
        try:
            it = iter(items)
            while True:
                while not room.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                item = next(it, _DONE)
                if item is _DONE:
                    return
                q.put(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(_Raised(exc))
        finally:
            q.put(_DONE)

    worker = threading.Thread(target=run, name="pplog-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.exc
            room.release()
            yield item
            del item
    finally:
        stop.set()
        worker.join()


@dataclass
class _Raised:
    exc: BaseException


def _frame(name: str, block: Block, fmt: LogFormat | None = None) -> pl.DataFrame:
    """Lines of a block with their byte `length` (the newline included), and
    `fmt`'s C split beside them where it applies (`_fastsplit.block_frame`),
    which `parse` takes."""
    frame = None
    if not block.hole and not block.too_long:
        frame = _fastsplit.block_frame(
            name, block.data, block.line, block.offset, fmt, values=True
        )
    if frame is None:
        frame = block.frame(name)
    return _with_length(frame, block.offset + block.size)


def _with_length(frame: pl.DataFrame, end: int) -> pl.DataFrame:
    """Lines with their byte `length`, newline included: to the next line's
    offset, the last to `end`."""
    # Series arithmetic, not a query: a few microseconds on a small file's
    # frame, where `with_columns` took 0.16 ms (3,600 files: 0.6 s)
    offsets = frame.get_column(OFFSET)
    after = offsets.slice(1).append(pl.Series([end], dtype=offsets.dtype))
    return frame.hstack([(after - offsets).alias(LENGTH)])
