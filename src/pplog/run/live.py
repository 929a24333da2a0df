"""`pplog top`: follow logs as nginx writes them, in windows of exact partials.

    follower --poll--> new complete lines per file
             --map---> one Partial per poll (each line's file: its own format)
             --place-> 10-second blocks (lines of the last minute, by arrival),
                       minutes (older lines by their time, and blocks once
                       their minute is over), everything before (merged)
             --window> merge -> finish -> View (a Summary, rates, warnings)

Each poll's lines are mapped as `summarize` maps a file (`reports.mapping`),
so a window's tables are the tables `summarize` gives for its lines. Memory
is bounded: a poll reads at most `Follower.max_bytes` a file, blocks are
kept for a minute, minutes for 15, and every partial kept is `capped`
(keys beyond `max_keys` folded into ``(other)``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from pplog import sources
from pplog._text import valid_text
from pplog.clientip import ProxyPolicy, attribute
from pplog.enrich.agents import AGENT_CLASS, agent_class
from pplog.enrich.routes import parse_rules
from pplog.errors import OptionError, PplogError, ReportError
from pplog.formats import LogFormat, buffered_logs
from pplog.pipeline import FileGroup, LogSpec, parse_lines
from pplog.pipeline.detect import (
    DETECT_LINES,
    MISFITS_LOOKED_AT,
    detect_each,
    detect_sample,
    detection_of,
    reads_most,
)
from pplog.pipeline.opening import unknown_format_rows, unknown_format_warning
from pplog.reports import FAILED, with_report_columns
from pplog.reports.finish import REGROUPED, FinishSettings, finish
from pplog.reports.mapping import MapSettings, partial_of
from pplog.reports.partial import Partial, capped, merge
from pplog.reports.paths import overall_latency
from pplog.run._common import check_filters, geo_databases, map_settings
from pplog.schema import (
    HTTP_USER_AGENT,
    LINE,
    OFFSET,
    RAW,
    REASON_NO_MATCH,
    REJECT_REASON,
    SOURCE,
    TEXT,
    TIME,
)
from pplog.sources import Chunk, Follower, Source

if TYPE_CHECKING:
    from pplog.enrich.geo import GeoDatabases
    from pplog.reports.summary import Summary

WINDOWS = {"1m": 60, "5m": 300, "15m": 900, "all": None}
MAX_KEYS = 10_000
AGENTS_KEPT = 100_000  # user agents whose class is remembered between polls
BLOCK = 10  # seconds a block partial holds (the 1m window is blocks)
RECENT = 60  # lines older than this many seconds are placed by their time
MINUTES_KEPT = 15  # minute partials: the 5m and 15m windows
HISTORY = 120  # seconds of requests/s and errors/s kept for the view
# Lines logged after `top` started that reach the file this late: nginx
# buffers the log (`access_log ... buffer=` or `flush=`)
BURST_LAG = 5.0
WARNINGS_KEPT = 20


@dataclass(frozen=True)
class Tick:
    """What one poll read."""

    at: float  # POSIX time of the poll
    lines: int
    requests: int
    errors: int  # status 400 and above
    lag: float | None  # seconds between the newest line's time and the poll


@dataclass
class View:
    """One window, finished: what the terminal view and `--to jsonl` show."""

    window: str
    summary: Summary
    latency: dict[str, tuple[float | None, float | None, float | None]]
    history: list[tuple[int, int, int]]  # (second, requests, errors), oldest first
    folded: bool  # keys past `max_keys` were folded into (other)
    max_keys: int
    warnings: list[str] = field(default_factory=list)
    files: list[dict[str, object]] = field(default_factory=list)


@dataclass
class _Input:
    format: LogFormat | None
    policy: ProxyPolicy
    note: str | None
    # detected from fewer lines than detection reads: decided again from the
    # file's head once it grows (a few lines can fit several presets)
    tentative: bool = False


class Live:
    """A running `pplog top`: `poll()` reads what was written, `view()` finishes
    a window. Not thread-safe; one caller drives it.

    Problems with an input (unreadable, truncated without a copy) and
    buffering warnings are kept in `warnings` and given to `on_warning`.
    `paths` are files, globs or directories; `spec` (or its keywords, such
    as ``format`` and ``geoip``) as for `summarize` (its
    `since` filter also makes the follower start that far back, reading
    rotated files as needed; otherwise reading starts at the end of the
    files). `tables` are the extra tables views hold (None: every one, the
    shape of `summarize --to json`; the screen asks for fewer, and the
    frames only the others need are not mapped). `follower` replaces the
    file follower (tests).
    """

    def __init__(
        self,
        paths: Sequence[str],
        *,
        spec: LogSpec | None = None,
        top: int = 10,
        by: str = "path",
        routes: Sequence[str] = (),
        max_keys: int = MAX_KEYS,
        on_warning: Callable[[str], None] | None = None,
        tables: frozenset[str] | None = None,
        follower: Follower | None = None,
        clock: Callable[[], float] = time.time,
        **keywords: Any,  # noqa: ANN401 - `LogSpec.of`'s
    ) -> None:
        if max_keys < 1:
            msg = f"`max_keys` must be 1 or more, not {max_keys}"
            raise OptionError(msg)
        self.spec = LogSpec.of(spec, **keywords)
        self.top, self.by = top, by
        self.rules = tuple(parse_rules(list(routes))) if by == "route" else ()
        self.max_keys = max_keys
        # the extra tables views are made with (None: all); frames that only
        # other tables read are not mapped
        self.tables = tables
        self._skipped = (
            frozenset()
            if tables is None
            else frozenset({"timeline", "referrers", "hosts", "status", "lb"} - tables)
        )
        self.clock = clock
        self._warning = on_warning
        self.warnings: list[str] = []
        since = self.spec.filters.since
        self.started = clock()
        self.paths = sources.path_list(paths, "paths")
        _check_matches(self.paths)
        self.follower = follower or Follower(
            self.paths,
            start="start" if since is not None else "end",
            since=since.timestamp() if since is not None else None,
            on_problem=lambda name, message: self._say(f"{name}: {message}"),
        )
        self._inputs: dict[str, _Input] = {}
        # a file's `no_match` rejects while its newest line is one, and the
        # last of them (`_refit`)
        self._misfits: dict[str, tuple[int, list[str]]] = {}
        self._agents = pl.DataFrame(
            schema={HTTP_USER_AGENT: pl.String, AGENT_CLASS: pl.String}
        )
        self._resolve_present()
        self._check_buffering()
        # lines of the last minute by arrival: the open block and the ones
        # before it; older lines, and blocks once their minute is over, by
        # the minute; minutes past the longest window in `_total`
        self._open: tuple[int, list[Partial]] | None = None  # a partial a poll
        self._blocks: dict[int, Partial] = {}
        self._minutes: dict[int, Partial] = {}
        self._sealed = -1  # minutes up to this one are merged into `_total`
        self._total: Partial | None = None
        self._generation = 0  # bumped when a kept partial changes
        self._cache: dict[str, tuple[tuple[object, ...], Partial | None]] = {}
        self._views: dict[str, tuple[tuple[object, ...], View]] = {}
        self._ticks: deque[tuple[int, int, int]] = deque(maxlen=HISTORY)
        self.folded = 0
        self.lines = 0
        self._dbs: GeoDatabases | None
        self._dbs, self._geo_note = geo_databases(self.spec.geoip)
        self._warned_lag = False
        self._policy = next(
            (i.policy for i in self._inputs.values() if i.format is not None),
            self.spec.resolve_policy(),
        )

    # -- inputs -----------------------------------------------------------

    def _resolve_present(self) -> None:
        """The format of each file there is now (with lines to detect from)."""
        present = [
            Source(text, Path(text))
            for text in sources.matched_files(self.paths)
            if _size(text) > 0
        ]
        if not present:
            return
        # with a configuration, its formats: those of the lines to come
        groups = self.spec.groups(present, changes=False)
        self._add_groups(groups)
        names: list[str] = []
        for group in groups:
            if group.format is not None:
                names.extend(self._schema_of(group.format, group.policy).names())
        check_filters(self.spec, sorted(set(names)), every=not names)

    def _add_groups(self, groups: list[FileGroup]) -> None:
        for group in groups:
            for src in group.sources:
                note = group.notes.get(src.name, group.note)
                short = not self.spec.forced and (
                    len(sources.read_head(src, DETECT_LINES)) < DETECT_LINES
                )
                self._inputs[src.name] = _Input(
                    group.format, group.policy, note, tentative=short
                )

    @staticmethod
    def _schema_of(fmt: LogFormat, policy: ProxyPolicy) -> pl.Schema:
        from pplog.pipeline import rows

        empty = pl.LazyFrame(schema=sources.LINES_SCHEMA)
        return rows(empty, fmt, policy=policy).collect_schema()

    def _settle(self, names: list[str]) -> None:
        """The formats decided on a few lines (`tentative`) of the files
        that have new lines, decided again from the heads they have now, all
        at once: a directory of 3,600 small logs read with `--since` took
        one detection (seven parses) per file, 3 minutes. Each file is
        still judged alone, as `_input` would; with `--nginx-conf`, `_input`
        asks the configuration file by file."""
        pending = [
            name
            for name in dict.fromkeys(names)
            if (found := self._inputs.get(name)) is not None and found.tentative
        ]
        if not pending or self.spec.nginx_conf is not None:
            return
        try:
            verdicts = detect_each([Source(name, Path(name)) for name in pending])
        except PplogError:
            return  # file by file then (`_input`)
        for name, (fmt, note, failure) in zip(pending, verdicts, strict=True):
            if failure is None:  # else kept, as `_input` keeps it
                self._inputs[name] = _Input(fmt, self.spec.resolve_policy(fmt), note)
            self._inputs[name].tentative = False

    def _input(self, name: str, lines: pl.DataFrame) -> _Input:
        """The format of a file first seen now: its rotation set's, else the
        one its first lines fit."""
        found = self._inputs.get(name)
        if found is not None and found.tentative:
            # decided on a few lines: again, from the head it has now
            with contextlib.suppress(PplogError):
                self._add_groups(self.spec.groups([Source(name, Path(name))]))
            found = self._inputs[name]
            found.tentative = False
        if found is not None:
            return found
        src = Source(name, Path(name))
        key = sources.rotation_key(Path(name))[0]
        sibling = next(
            (
                i
                for n, i in self._inputs.items()
                if sources.rotation_key(Path(n))[0] == key
            ),
            None,
        )
        if sibling is not None:
            found = sibling
        elif self.spec.forced or self.spec.nginx_conf is not None:
            group = self.spec.groups([src], changes=False)[0]
            found = _Input(group.format, group.policy, group.note)
        else:
            sample = lines.get_column(TEXT).head(DETECT_LINES).to_list()
            fmt, note = detect_sample(src, sample)
            found = _Input(fmt, self.spec.resolve_policy(fmt), note)
        if found.format is None:
            self._say(f"{name}: {unknown_format_warning(found.note, name)}")
        self._inputs[name] = found
        return found

    def _check_buffering(self) -> None:
        """Warn about followed files that `--nginx-conf` says nginx buffers."""
        if self.spec.nginx_conf is None:
            return
        buffered = {
            p.resolve(): s for p, s in buffered_logs(self.spec.nginx_conf).items()
        }
        for name in sources.matched_files(self.paths):
            settings = buffered.get(Path(name).resolve())
            if settings is not None:
                self._say(
                    f"{name}: nginx buffers this log (`access_log ... {settings}`): "
                    "lines reach it in bursts, so this view lags by up to the "
                    "flush time"
                )

    def _say(self, message: str) -> None:
        """A warning (a problem with an input, buffering): kept for the view
        (the last `WARNINGS_KEPT`, each once) and given to `on_warning`."""
        message = valid_text(message)  # an input's name may not be UTF-8
        if message in self.warnings:
            return
        self.warnings = [*self.warnings[-(WARNINGS_KEPT - 1) :], message]
        if self._warning is not None:
            self._warning(message)

    # -- reading ----------------------------------------------------------

    def poll(self, *, final: bool = False) -> Tick:
        """Read what the files got since the last poll and place it."""
        now = self.clock()
        second = int(now)
        self._advance(second)
        chunks = self.follower.poll(final=final)
        self._settle([chunk.source for chunk in chunks if chunk.lines.height])
        # one parse per format and policy, not per file (3,600 files: 30 s)
        by_input: dict[tuple[int, ProxyPolicy], tuple[_Input, list[pl.DataFrame]]] = {}
        for chunk in chunks:
            if chunk.lines.height == 0:
                continue
            found = self._input(chunk.source, chunk.lines)
            key = (id(found.format), found.policy)
            by_input.setdefault(key, (found, []))[1].append(chunk.lines)
        frames = [
            self._rows(found, pl.concat(parts, how="diagonal_relaxed"))
            for found, parts in by_input.values()
        ]
        if not frames:
            self._ticks.append((second, 0, 0))
            return Tick(now, 0, 0, 0, None)
        rows = self._refit(chunks, pl.concat(frames, how="diagonal_relaxed"))
        lines = rows.height
        self.lines += lines
        ok = rows.filter(pl.col("reject_reason").is_null())
        requests = ok.height
        errors = int(ok.select(FAILED.sum()).item() or 0)
        newest = ok.get_column(TIME).max() if requests else None
        lag = now - newest.timestamp() if isinstance(newest, datetime) else None
        self._check_lag(ok, now)
        self._place(rows, now)
        self._ticks.append((second, requests, errors))
        return Tick(now, lines, requests, errors, lag)

    def _configured(self, name: str, kept: list[str]) -> _Input | None:
        """With `--nginx-conf`: the configuration read again, the format and
        realip settings it gives the file `name` now, if that format reads
        most of `kept` (its recent lines that the format followed did not)."""
        try:
            group = self.spec.groups([Source(name, Path(name))], changes=False)[0]
        except PplogError:
            return None  # said when it was read first; not now, each poll
        if group.format is None or not reads_most(kept, group.format):
            return None
        return _Input(group.format, group.policy, group.note)

    def _refit(self, chunks: list[Chunk], rows: pl.DataFrame) -> pl.DataFrame:
        """`rows` with the files whose format changed while followed read in
        the new one. A file's `no_match` rejects are kept while its newest
        line is one (`_misfits`, over polls: a quiet server writes a line
        now and then); once there are `MISFITS_LOOKED_AT` and another preset
        reads half of them, nginx was given a new `log_format`: the file is
        read with that preset from now on, said once, and this poll's lines
        of it that its old format did not read are read with it (old
        workers still write the old format for a while after a reload). A
        format given with `--format` is kept; with `--nginx-conf`, the
        configuration is read again (nginx was reloaded with a new one) and
        its format for the file taken if it reads them (`_configured`)."""
        if self.spec.forced and self.spec.nginx_conf is None:
            return rows
        bad = pl.col(REJECT_REASON) == REASON_NO_MATCH
        if not self._misfits and not rows.select(bad.any()).item():
            return rows
        per_file = rows.group_by(SOURCE, maintain_order=True).agg(
            pl.col(RAW).filter(bad).head(DETECT_LINES)
        )
        # each file's newest line: the last of its last chunk (the rows are
        # not in the lines' order, and a file rotated in the poll and its
        # successor share a name)
        newest = {
            c.source: c.lines.select(LINE, OFFSET).row(-1)
            for c in chunks
            if c.lines.height
        }
        keys = pl.DataFrame(
            [(name, *at) for name, at in newest.items()],
            schema={SOURCE: pl.String, LINE: pl.UInt64, OFFSET: pl.UInt64},
            orient="row",
        )
        # one join, not a filter of the rows per file (3,600 files a poll)
        last_bad = dict(
            keys.join(
                rows.select(SOURCE, LINE, OFFSET, bad.alias("bad")),
                on=[SOURCE, LINE, OFFSET],
                how="left",
            )
            .select(SOURCE, pl.col("bad").fill_null(value=False))
            .iter_rows()
        )
        switched: dict[str, _Input] = {}
        for name, raw in per_file.iter_rows():
            if not last_bad.get(name):  # its format still reads its newest line
                self._misfits.pop(name, None)
                continue
            count, kept = self._misfits.get(name, (0, []))
            count, kept = count + len(raw), (kept + raw)[-DETECT_LINES:]
            self._misfits[name] = (count, kept)
            found = self._inputs.get(name)
            if count < MISFITS_LOOKED_AT or found is None or found.format is None:
                continue
            if self.spec.nginx_conf is not None:
                now = self._configured(name, kept)
            else:
                fmt, note = detect_sample(Source(name, Path(name)), kept)
                now = (
                    None
                    if fmt is None
                    else _Input(fmt, self.spec.resolve_policy(fmt), note)
                )
            if now is None or now.format is None or now.format == found.format:
                continue
            fmt = now.format
            del self._misfits[name]
            note = f"{now.note}; log_format changed while followed"
            switched[name] = replace(now, note=note)
            self._inputs[name] = switched[name]
            self._say(
                f"{name}: its new lines are in `{fmt.name}`, not `{found.format.name}` "
                f"(nginx's log_format changed?): read as `{fmt.name}` from now on"
            )
        if not switched:
            return rows
        parts = [rows.filter(~pl.col(SOURCE).is_in(list(switched)))]
        for name, found in switched.items():
            mine = rows.filter(pl.col(SOURCE) == name)
            read = mine.filter(pl.col(REJECT_REASON).is_null())
            again = self._rows(found, _lines_of(chunks, name))
            keys = read.select(LINE, OFFSET)  # two files of one name: both
            parts += [read, again.join(keys, on=[LINE, OFFSET], how="anti")]
        return pl.concat(parts, how="diagonal_relaxed")

    def _rows(self, found: _Input, lines: pl.DataFrame) -> pl.DataFrame:
        """Parsed and attributed rows, text still escaped (see `_settings`)."""
        if found.format is None:
            rows = unknown_format_rows(lines.lazy())
        else:
            rows = attribute(
                parse_lines(lines.lazy(), found.format, decode=False),
                found.policy,
                eager_decisions=True,
            )
        frame = with_report_columns(rows).collect()
        escape = found.format.escape if found.format is not None else "none"
        return frame.with_columns(pl.lit(escape).alias("_escape"))

    def _settings(self, escape: str) -> MapSettings:
        return replace(
            map_settings(self.spec, self._policy, {}),
            escape=escape,
            skipped=self._skipped,
        )

    def _classes(self, rows: pl.LazyFrame) -> pl.DataFrame | None:
        """The rows' distinct user agents with their class: each agent is
        classified once a run (`AGENTS_KEPT` at most are remembered)."""
        if HTTP_USER_AGENT not in rows.collect_schema().names():
            return None
        agents = rows.select(pl.col(HTTP_USER_AGENT).cast(pl.String)).unique().collect()
        found = agents.join(
            self._agents, on=HTTP_USER_AGENT, how="left", nulls_equal=True
        )
        missing = found.filter(pl.col(AGENT_CLASS).is_null()).select(HTTP_USER_AGENT)
        if not missing.height:
            return found
        new = missing.with_columns(agent_class(HTTP_USER_AGENT))
        if self._agents.height + new.height > AGENTS_KEPT:
            self._agents = self._agents.clear()
        self._agents = pl.concat([self._agents, new])
        return pl.concat([found.filter(pl.col(AGENT_CLASS).is_not_null()), new])

    def _partial(self, rows: pl.DataFrame) -> Partial:
        """One partial of rows that may come from formats of several escapes."""
        escapes = rows.get_column("_escape").unique()
        if escapes.len() <= 1:
            escape = str(escapes.item()) if escapes.len() else "none"
            return partial_of(
                rows.drop("_escape").lazy(),
                self._settings(escape),
                classify=self._classes,
            )
        parts = [
            partial_of(
                part.drop("_escape").lazy(),
                self._settings(str(escape)),
                classify=self._classes,
            )
            for (escape,), part in rows.partition_by(
                "_escape", as_dict=True, maintain_order=True
            ).items()
        ]
        return merge(parts)

    def _check_lag(self, ok: pl.DataFrame, now: float) -> None:
        if self._warned_lag or ok.height == 0:
            return
        started = datetime.fromtimestamp(self.started, UTC)
        fresh = ok.get_column(TIME).filter(ok.get_column(TIME) >= started)
        newest = fresh.max() if fresh.len() else None
        if not isinstance(newest, datetime):
            return
        lag = now - newest.timestamp()
        if lag > BURST_LAG:
            self._warned_lag = True
            self._say(
                f"lines reach the log {lag:.0f} s after they were logged: nginx "
                "buffers it (`access_log ... buffer=` or `flush=`), so this view "
                "lags by as much"
            )

    def _place(self, rows: pl.DataFrame, now: float) -> None:
        """Rows of the last minute into the open block (by arrival); older
        ones into the minute of their time, and everything before."""
        second = int(now)
        recent = datetime.fromtimestamp(now - RECENT, UTC)
        t = pl.col(TIME)
        oldest = rows.get_column(TIME).min()
        if not isinstance(oldest, datetime) or oldest >= recent:  # the usual case
            self._add_open(second, self._partial(rows))
            return
        old = (t.is_not_null() & (t < recent)).fill_null(False)  # noqa: FBT003
        current = rows.filter(~old)
        if current.height:
            self._add_open(second, self._partial(current))
        late = rows.filter(old)
        if not late.height:
            return
        keyed = late.with_columns((t.dt.epoch("s") // 60).alias("_minute"))
        kept_from = second // 60 - MINUTES_KEPT
        # minutes no window keeps count in everything-before alone: one
        # partial for all of them (one a minute: `--since` over 2M lines of
        # 2,150 minutes took 93 s, a partial's queries 25-40 ms each)
        before = pl.col("_minute") <= kept_from
        parts = [keyed.filter(before)]
        parts += keyed.filter(~before).partition_by("_minute", maintain_order=True)
        for part in parts:
            if not part.height:
                continue
            partial = self._partial(part.drop("_minute"))
            m = int(part.item(0, "_minute"))
            if m > kept_from:
                found = self._minutes.get(m)
                self._minutes[m] = self._capped(
                    partial if found is None else merge([found, partial])
                )
            self._total = self._capped(
                partial if self._total is None else merge([self._total, partial])
            )
            self._generation += 1

    def _add_open(self, second: int, partial: Partial) -> None:
        block = second // BLOCK
        partial = self._capped(partial)
        if self._open is not None and self._open[0] == block:
            self._open[1].append(partial)
        else:
            self._open = (block, [partial])

    def _capped(self, partial: Partial) -> Partial:
        out, folded = capped(partial, self.max_keys)
        self.folded += folded
        return out

    def _advance(self, second: int) -> None:
        """Close the open block once its time is over; merge the blocks of
        minutes that are over into minute partials and everything-before;
        drop what no window needs."""
        block, minute = second // BLOCK, second // 60
        if self._open is not None and self._open[0] < block:
            self._blocks[self._open[0]] = self._capped(merge(self._open[1]))
            self._open = None
        over = sorted({b * BLOCK // 60 for b in self._blocks} - {minute})
        for m in over:
            if m <= self._sealed:
                continue
            own = [p for b, p in self._blocks.items() if b * BLOCK // 60 == m]
            blocks = merge(own)
            late = self._minutes.get(m)
            self._minutes[m] = self._capped(
                blocks if late is None else merge([late, blocks])
            )
            self._total = self._capped(
                blocks if self._total is None else merge([self._total, blocks])
            )
            self._sealed = m
        for b in [b for b in self._blocks if (b + 1) * BLOCK <= second - RECENT]:
            if b * BLOCK // 60 <= self._sealed:
                del self._blocks[b]
        for m in [m for m in self._minutes if m <= minute - MINUTES_KEPT]:
            del self._minutes[m]

    # -- windows ----------------------------------------------------------

    def _complete(self, window: str, second: int) -> list[tuple[str, int]]:
        """The closed parts a window holds now, by name."""
        minute = second // 60
        unsealed = [("b", b) for b in self._blocks if b * BLOCK // 60 > self._sealed]
        if window == "1m":
            return [("b", b) for b in self._blocks if b * BLOCK > second - RECENT]
        if window == "all":
            return [*unsealed, *([("t", 0)] if self._total is not None else [])]
        span = (WINDOWS[window] or 0) // 60
        return [
            *unsealed,
            *(("m", m) for m in self._minutes if minute - span < m < minute),
        ]

    def partial(self, window: str = "all") -> Partial | None:
        """The partial of a window (None: nothing read in it yet), merged for
        `finish` (the frames it groups again are only concatenated)."""
        if window not in WINDOWS:
            msg = f"a window is one of {', '.join(WINDOWS)}, not `{window}`"
            raise OptionError(msg)
        parts, key = self._state(window)
        cached = self._cache.get(window)
        if cached is not None and cached[0] == key:
            closed = cached[1]
        else:
            found = [self._part(kind, n) for kind, n in parts]
            closed = self._capped(merge(found)) if found else None
            self._cache[window] = (key, closed)
        pieces = [*([closed] if closed is not None else []), *self._opened()]
        if not pieces:
            return None
        if len(pieces) == 1:
            return pieces[0]
        return merge(pieces, concatenated=REGROUPED)

    def _state(self, window: str) -> tuple[list[tuple[str, int]], tuple[object, ...]]:
        """The closed parts of a window now, and a key that changes when they
        do (its open block is not in the key)."""
        parts = sorted(self._complete(window, int(self.clock())))
        return parts, (tuple(parts), self._generation, self._sealed)

    def _opened(self) -> list[Partial]:
        return [] if self._open is None else self._open[1]

    def _part(self, kind: str, n: int) -> Partial:
        if kind == "b":
            return self._blocks[n]
        if kind == "m":
            return self._minutes[n]
        assert self._total is not None
        return self._total

    def view(self, window: str = "all") -> View:
        """The window's tables, as `summarize` would make them for its lines
        (the extra tables: those of `tables`). When nothing was read since
        the last view of the window and its parts are the same, its tables
        are too: they are not made again (an idle `top` costs next to
        nothing)."""
        opened = self._opened()
        key = (
            self._state(window)[1],
            self._open[0] if self._open is not None else None,
            len(opened),
            len(self._inputs),
        )
        seen = self._views.get(window)
        if seen is not None and seen[0] == key:
            return replace(
                seen[1],
                history=list(self._ticks),
                folded=self.folded > 0,
                warnings=list(self.warnings),
                files=self.follower.files(),
            )
        view = self._finished(window)
        self._views[window] = (key, view)
        return view

    def _finished(self, window: str) -> View:
        # before any line of any file: the files as `summarize` reads an empty
        # log, so that the view has its tables and names its inputs
        inputs = self._inputs or self._unread()
        partial = self.partial(window) or self._empty(inputs)
        finishing = FinishSettings(
            top=self.top,
            by=self.by,
            rules=self.rules,
            policy=self._policy,
            geoip_skip_special=self.spec.geoip_skip_special,
            left_out=bool(self.spec.filters) or self.spec.exclude_bots,
            extra=self.tables,
        )
        finished = finish(partial, finishing, self._dbs)
        formats = {i.format.name if i.format else "custom" for i in inputs.values()}
        summary = finished.summary(
            top=self.top,
            by=self.by,
            format=formats.pop() if len(formats) == 1 else "mixed",
            # the inputs are followed by their own names: shown as valid text
            sources=[sources.path_name(n) for n in sorted(inputs)],
            formats=[
                {
                    "source": sources.path_name(name),
                    "format": i.format.name if i.format else None,
                    "detection": detection_of(i.note, sources.path_name(name)),
                }
                for name, i in sorted(inputs.items())
            ],
            geoip=self._geo_note,
            filters=self.spec.filters.labels
            + (("bots left out",) if self.spec.exclude_bots else ()),
        )
        return View(
            window=window,
            summary=summary,
            latency=overall_latency(partial),
            history=list(self._ticks),
            folded=self.folded > 0,
            max_keys=self.max_keys,
            warnings=list(self.warnings),
            files=self.follower.files(),
        )

    def _unread(self) -> dict[str, _Input]:
        """The files followed when none has a line yet, each with the format
        `summarize` would read it with (the one given, else `combined`, its
        assumption for an empty log); not kept: the first lines decide."""
        present = [Source(t, Path(t)) for t in sources.matched_files(self.paths)]
        if not present:
            return {}
        try:
            groups = self.spec.groups(present, changes=False)
        except PplogError:
            return {}
        return {
            src.name: _Input(g.format, g.policy, g.notes.get(src.name, g.note))
            for g in groups
            for src in g.sources
        }

    def _empty(self, inputs: dict[str, _Input]) -> Partial:
        lines = pl.DataFrame(schema=sources.LINES_SCHEMA)
        fmt = next((i for i in inputs.values() if i.format is not None), None)
        if fmt is None:
            return partial_of(with_report_columns(unknown_format_rows(lines.lazy())))
        return self._partial(self._rows(fmt, lines))

    @property
    def behind(self) -> bool:
        """Whether the last poll left written lines unread (poll again)."""
        return self.follower.behind

    def close(self) -> None:
        """Close the files and the GeoIP databases."""
        self.follower.close()
        if self._dbs is not None:
            self._dbs.close()
            self._dbs = None

    def __enter__(self) -> Live:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lines_of(chunks: list[Chunk], name: str) -> pl.DataFrame:
    """The lines of `name` in a poll's chunks."""
    return pl.concat([c.lines for c in chunks if c.source == name], how="vertical")


def _size(path: str) -> int:
    """Bytes in `path` now (0 once it is gone)."""
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def _check_matches(paths: Sequence[str]) -> None:
    """At least one pattern names a file now (a glob may match more later)."""
    if not paths:
        msg = "give at least one log file or glob to follow"
        raise OptionError(msg)
    if any(not p.strip() and not os.path.lexists(p) for p in paths):  # Path("") is "."
        msg = "an empty path was given; pass a log file, a glob or a directory"
        raise OptionError(msg)
    if any(p == "-" for p in paths):
        msg = (
            "`top` follows files by name; stdin cannot be followed (use `summarize -`)"
        )
        raise OptionError(msg)
    if any(sources.is_url(p) for p in paths):
        msg = "`top` follows local files; object storage URLs cannot be followed"
        raise OptionError(msg)
    if not sources.matched_files(paths):
        raise ReportError(_nothing_to_follow(paths))


def _nothing_to_follow(paths: Sequence[str]) -> str:
    """Why no pattern names a file to follow: what the first path that is
    there is, else that nothing matches."""
    from pplog.batch.state import is_dataset

    for text in paths:
        path = Path(text)
        if path.is_dir():
            if is_dataset(path):
                return (
                    f"`{text}` is a pplog dataset (written by `pplog ingest`), not a "
                    "log: a dataset cannot be followed; follow the logs it is "
                    "ingested from (`pplog summarize` reads the dataset)"
                )
            return f"directory `{text}` holds no log files: nothing to follow"
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return f"`{text}` is a symbolic link loop: nothing to follow"
            continue
        kind = "not a regular file"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            kind = "a device"
        elif stat.S_ISFIFO(mode):
            kind = "a FIFO"
        elif stat.S_ISSOCK(mode):
            kind = "a socket"
        return f"`{text}` is {kind}, not a log file: nothing to follow"
    return f"no file matches {', '.join(f'`{p}`' for p in paths)}: nothing to follow"
