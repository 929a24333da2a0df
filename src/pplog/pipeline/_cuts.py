"""Files whose `log_format` changed within them, cut where it changed.

nginx reloaded with a new `log_format` and the file not rotated holds the old
format's lines, then both (the old workers finishing), then the new. Detection
(`detect.py`) finds such a file; here it is cut into byte spans, each read with
the format that reads it, and the lines where both come into two groups that
each keep the lines of one format (`zone_lines`). A compressed file cannot be
read from an offset: it is read twice instead, line by line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from pplog import sources
from pplog._fastsplit import newlines_before
from pplog.formats import LogFormat
from pplog.parse import parse
from pplog.pipeline.spec import FileGroup
from pplog.schema import LINE, OFFSET, RAW, REJECT_REASON, SOURCE, TEXT
from pplog.sources import Source

PROBE_BYTES = 2 << 10  # the lines judged at each step of finding where
# where a file's old and new log_format interleave: searched in steps of
ZONE_BYTES = 64 << 10
ZONE_MAX = 16 << 20  # each way, at most
# and on past an old worker's last line, while one may still come: a slow
# request that began before the reload is logged when it ends (a sweep:
# 2,000 lines later under load)
ZONE_GAP = 1 << 20
# how a note ends for each part of a file cut where its log_format changed
LINES_TO = "lines 1 to "
LINES_FROM = "lines "


def sample_frame(sample: Sequence[str]) -> pl.LazyFrame:
    """Sample lines as the lines a parse takes."""
    return pl.LazyFrame(
        {
            SOURCE: ["<sample>"] * len(sample),
            LINE: pl.Series(range(1, len(sample) + 1), dtype=pl.UInt64),
            OFFSET: pl.Series([0] * len(sample), dtype=pl.UInt64),
            TEXT: pl.Series(sample, dtype=pl.String),
        }
    )


@dataclass(frozen=True)
class Change:
    """A file whose `log_format` changed within it: `before` reads its first
    lines, `after` its last; `note` says how the one detected from its
    edge (not its group's format) was found."""

    before: LogFormat
    after: LogFormat
    note: str
    at_end: bool  # True: `after` is the format detected from an edge
    # `after` read at a probe inside the file, its edges in `before`: the
    # offsets of the last probe `before` read ahead of it (or 0), of it, and
    # of the first `before` read after it (or the size)
    middle: tuple[int, int, int | None] | None = None


def inflated(src: Source) -> bool:
    """Whether `src` is a compressed file on disk (read whole, inflated)."""
    if src.path is None or src.span is not None or src.pipe or src.skip:
        return False
    try:
        return sources.compression(src.path) is not None
    except OSError:
        return False  # the run's read reports it


def verdicts(lines: Sequence[str], fmts: Sequence[LogFormat]) -> list[list[bool]]:
    """For each format, whether it parses each of `lines`."""
    frame = sample_frame(list(lines))
    return [
        parse(frame, fmt)
        .select(pl.col(REJECT_REASON).is_null())
        .collect()
        .to_series()
        .to_list()
        for fmt in fmts
    ]


def _change_at(
    src: Source, before: LogFormat, after: LogFormat, start: int, end: int
) -> int:
    """The offset of the first line `after` reads and `before` does not,
    between `start` (where `before`'s lines are) and `end` (where `after`'s
    are), or 0 when there is none: a bisection over the bytes, each step
    judging the lines that start in `PROBE_BYTES` (or the first that starts
    after it), then the lines of the last step one by one."""
    window = PROBE_BYTES
    while end - start > PROBE_BYTES:
        mid = (start + end) // 2
        lines = sources.lines_at(src, mid, PROBE_BYTES)
        if not lines:  # long lines: as many bytes as it takes for one to start
            lines = sources.lines_at(src, mid, sources.LINE_LIMIT)[:8]
            window = max(window, lines[-1][0] - mid + 1 if lines else 0)
        if not lines:
            return 0  # lines too long to read apart: not cut
        old_ok, new_ok = verdicts([t for _, t in lines], (before, after))
        if sum(new_ok) > sum(old_ok):
            end = mid
        else:
            start = mid
    lines = sources.lines_at(src, start, end - start + window)
    old_ok, new_ok = verdicts([t for _, t in lines], (before, after))
    return next(
        (
            at
            for (at, _), o, n in zip(lines, old_ok, new_ok, strict=True)
            if n and not o
        ),
        0,
    )


def changed_within(
    groups: list[FileGroup], changed: dict[str, Change]
) -> list[FileGroup]:
    """`groups` with each file of `changed` (`_detect_members`: its first or
    last lines are in another format than its group's; nginx was restarted
    or reloaded with a new `log_format` and the file not rotated) cut where
    the second format starts: the part in its group's format stays, the
    other (`Source.span`) goes to a group of its own, and the lines where
    both formats come to two more (`_zone_groups`), each read before or
    after it as in the file. A compressed file is not cut (its bytes are
    not read from an offset): `_inflated_within` reads it twice instead."""
    if not changed:
        return groups
    out: list[FileGroup] = []
    for g in _inflated_within(groups, changed):
        after: list[FileGroup] = []  # the last parts, read after the group
        g = g.copy()
        for k, src in enumerate(g.sources):
            change = changed.get(src.name)
            if change is None or src.path is None or g.format is None:
                continue
            if g.zone is not None or src.pipe or src.skip:
                continue  # compressed, read line by line (`_inflated_within`)
            # the one check that its bytes can be read from an offset
            if not _readable_apart(src):
                g.warnings[src.name] = _not_cut(change, g.format)
                continue
            if change.middle is not None:  # changed and changed back
                after += _middle_parts(g, k, change)
                continue
            cut = _cut(src, change)
            if cut is None:
                continue
            z0, z1, size, (l0, l1) = cut
            said = f"{LINES_TO}{l0 - 1:,}", f"{LINES_FROM}{l1:,} on"
            base = g.notes.get(src.name, g.note) or ""
            notes = (base, change.note) if change.at_end else (change.note, base)
            zone = _zone_groups(src, change, (z0, z1), (l0, l1), notes)
            if change.at_end:  # the group keeps the first part
                g.sources[k] = Source(src.name, src.path, (0, z0))
                g.notes[src.name] = f"{base}; {said[0]}"
                note = f"{change.note}; log_format changed: {said[1]}"
                part = Source(src.name, src.path, (z1, size))
                rest = [FileGroup([part], change.after, note)] if z1 < size else []
                after += [*zone, *rest]
            else:  # the first part is read before the group, as it is in the file
                g.sources[k] = Source(src.name, src.path, (z1, size))
                g.notes[src.name] = f"{base}; {said[1]}"
                note = f"{change.note}; log_format changed after: {said[0]}"
                part = Source(src.name, src.path, (0, z0))
                first = [FileGroup([part], change.before, note)] if z0 > 0 else []
                out += [*first, *zone]
        # a part with no bytes (the lines in both formats run to an end) is
        # no part
        g.sources = [x for x in g.sources if x.span is None or x.span[0] < x.span[1]]
        out += [g, *after] if g.sources else after
    return out


def _middle_parts(g: FileGroup, k: int, change: Change) -> list[FileGroup]:
    """The parts after the first of `g`'s input `k`, whose `log_format`
    changed and changed back within it (`Change.middle`), the first left
    to `g`: the lines where both formats come at each change (`_zone_groups`),
    the lines between in the second format, those after in the first. None
    when it is not cut (`_cut`'s reasons)."""
    src = g.sources[k]
    cut = _cut_middle(src, change)
    if cut is None:
        return []
    (z0, z1, z2, z3), (l0, l1, l2, l3), size = cut
    a, b = change.before, change.after
    assert src.path is not None
    base = g.notes.get(src.name, g.note) or ""
    g.sources[k] = Source(src.name, src.path, (0, z0))
    g.notes[src.name] = f"{base}; {LINES_TO}{l0 - 1:,}"
    back = Change(b, a, base, at_end=True)
    between = f"{change.note}; log_format changed: lines {l1:,} to {l2 - 1:,}"
    parts = [
        *_zone_groups(src, change, (z0, z1), (l0, l1), (base, change.note)),
        FileGroup([Source(src.name, src.path, (z1, z2))], b, between),
        *_zone_groups(src, back, (z2, z3), (l2, l3), (change.note, base)),
        FileGroup(
            [Source(src.name, src.path, (z3, size))],
            a,
            f"{base}; log_format changed back: {LINES_FROM}{l3:,} on",
        ),
    ]
    return [
        p for p in parts if all(x.span and x.span[0] < x.span[1] for x in p.sources)
    ]


def _cut_middle(
    src: Source, change: Change
) -> tuple[tuple[int, int, int, int], list[int], int] | None:
    """Where `src`, whose `log_format` changed and changed back within it,
    is cut: where the lines of both formats start and end at the change
    (the first two offsets) and at its undoing (the last two), the numbers
    of the lines there, and its size; None as for `_cut`."""
    assert src.path is not None
    assert change.middle is not None
    lo, at, hi = change.middle
    a, b = change.before, change.after
    try:
        size = src.path.stat().st_size
        start = _change_at(src, a, b, lo, at)
        back = Change(b, a, change.note, at_end=True)
        end = _change_at(src, b, a, at, size if hi is None else hi)
        if start <= 0 or end <= start:
            return None
        z0, z1 = _interleaved(src, change, start, end)
        z2, z3 = _interleaved(src, back, end, size, floor=z1)
        z2 = max(z2, z1)
        offsets = (z0, z1, z2, z3)
        return offsets, _line_numbers(src, offsets), size
    except OSError:
        return None


def _readable_apart(src: Source) -> bool:
    """`sources.readable_apart`, False where the file cannot be read."""
    try:
        return sources.readable_apart(src)
    except OSError:
        return False


def _not_cut(change: Change, fmt: LogFormat) -> str:
    """The warning for a file whose `log_format` changed within it and that
    is not cut there: it is not plain text from its start (`_cut`)."""
    other = change.after if fmt.name == change.before.name else change.before
    return (
        f"its log_format changed within it (`{change.before.name}` to "
        f"`{change.after.name}`), but it is not plain text from its start (a hole "
        "or binary bytes), so it is not read apart where it changed: its lines in "
        f"`{other.name}` are counted as rejects"
    )


def _inflated_within(
    groups: list[FileGroup], changed: dict[str, Change]
) -> list[FileGroup]:
    """`groups` with each compressed file of `changed` taken out of its
    group into two of its own, where it is in the group's order: its lines
    the new format reads, read with it, and the others with the old
    (`zone_lines` over all of the file, which is inflated twice). Its bytes
    cannot be read from an offset, so it is not cut as a plain file is."""
    out: list[FileGroup] = []
    for g in groups:
        rest = g.copy([])
        for src in g.sources:
            change = changed.get(src.name)
            if (
                change is None
                or g.format is None
                or g.zone is not None
                or not inflated(src)
            ):
                rest.sources.append(src)
                continue
            if rest.sources:
                out.append(rest)
            own = g.notes.get(src.name, g.note)
            notes = {
                fmt.name: own if fmt.name == g.format.name else change.note
                for fmt in (change.before, change.after)
            }
            b, a = change.before, change.after
            said = {
                b: f"{notes[b.name]}; lines in {b.name}",
                a: f"{notes[a.name]}; log_format changed: lines in {a.name}",
            }
            out += [
                FileGroup([src], fmt, said[fmt], g.policy, zone=(a, fmt is a))
                for fmt in (b, a)
            ]
            rest = g.copy([])
        if rest.sources:
            out.append(rest)
    return out


def _zone_groups(
    src: Source,
    change: Change,
    span: tuple[int, int],
    lines: tuple[int, int],
    notes: tuple[str, str],
) -> list[FileGroup]:
    """The two groups of the lines where the old and the new format
    interleave (`span`, lines `lines[0]` to `lines[1] - 1`): each line read
    by the format that reads it (`zone_lines`), the others once, as the old
    format's rejects; `notes`: how the old format and the new were found.
    None when there is no such line (an empty span)."""
    if span[0] >= span[1]:
        return []
    where = src.name, src.path
    said = f"lines {lines[0]:,} to {lines[1] - 1:,} in both formats"
    return [
        FileGroup(
            [Source(*where, span)],
            fmt,
            f"{note}; {said}",
            zone=(change.after, fmt is change.after),
        )
        for fmt, note in zip((change.before, change.after), notes, strict=True)
    ]


def _cut(src: Source, change: Change) -> tuple[int, int, int, tuple[int, int]] | None:
    """Where `src` is cut: the offsets where its lines in both formats
    start and end (the same where they do not interleave), its size, and
    the numbers of the lines at those offsets; None when it is not cut
    (no such line, gone meanwhile). The caller has checked that its bytes
    can be read from an offset (`_readable_apart`)."""
    assert src.path is not None
    try:
        size = src.path.stat().st_size
        at = _change_at(src, change.before, change.after, 0, size)
        if at <= 0:
            return None
        z0, z1 = _interleaved(src, change, at, size)
        l0, l1 = _line_numbers(src, (z0, z1))
        return z0, z1, size, (l0, l1)
    except OSError:
        return None


def _interleaved(
    src: Source, change: Change, at: int, size: int, floor: int = 0
) -> tuple[int, int]:
    """The bytes around `at` where lines of the old format and the new
    interleave: nginx's old workers finish their requests in the old format
    after a reload (600 lines under load in a sweep). From the first line
    only the new format reads to the end of the last only the old reads,
    searched in `ZONE_BYTES` steps each way while a step holds such lines
    (after it, up to `ZONE_GAP` bytes past the last), up to `ZONE_MAX`
    bytes, and between `floor` and `size`."""
    before, after = change.before, change.after

    def only(lines: list[tuple[int, str]], fmt: LogFormat) -> list[int]:
        old_ok, new_ok = verdicts([t for _, t in lines], (before, after))
        reads = new_ok if fmt is after else old_ok
        other = old_ok if fmt is after else new_ok
        return [
            off
            for (off, _), r, o in zip(lines, reads, other, strict=True)
            if r and not o
        ]

    z0 = pos = at
    while pos > floor and at - pos < ZONE_MAX:
        lo = max(floor, pos - ZONE_BYTES)
        lines = [x for x in sources.lines_at(src, lo, pos - lo) if x[0] < pos]
        found = only(lines, after) if lines else []
        if not found:
            break
        z0, pos = found[0], lo
    last, pos = None, at
    while pos < size and pos - at < ZONE_MAX:
        lines = [x for x in sources.lines_at(src, pos, ZONE_BYTES) if x[0] < size]
        if not lines:
            break
        found = only(lines, before)
        if found:
            last = found[-1]
        elif pos - (at if last is None else last) >= ZONE_GAP:
            break  # a download that began before the reload ends later
        pos = lines[-1][0] + 1
    if last is None:
        return z0, at
    following = sources.lines_at(src, last + 1, ZONE_BYTES)
    return z0, min(following[0][0], size) if following else size


def _line_numbers(src: Source, offsets: Sequence[int]) -> list[int]:
    """The numbers of the lines that start at `offsets` (in order) of a
    plain file: one read of the bytes before the last."""
    assert src.path is not None
    fd = os.open(src.path, os.O_RDONLY)
    try:
        out, at, line = [], 0, 1
        for offset in offsets:
            line += newlines_before(fd, offset, at)
            out.append(line)
            at = offset
        return out
    finally:
        os.close(fd)


def zone_lines(
    lines: pl.LazyFrame, zone: tuple[LogFormat, bool] | None
) -> pl.LazyFrame:
    """`lines` (a `FileGroup`'s), with a `zone` only those its format reads
    (True) or does not (False), in order: where a file's old and new
    `log_format` interleave, one group reads the new format's lines, the
    other the rest, so that each line is read once.

    One streaming pass: the zone's format parses the lines (with the C
    split's columns, where they are its), every column of `lines` carried
    beside it (copied under other names, which the parse neither takes for
    its own nor drops), and the rows are kept by its verdict.
    A zone may be a whole compressed file (`_inflated_within`), whose lines
    are not held in memory."""
    if zone is None:
        return lines
    fmt, read = zone
    names = lines.collect_schema().names()
    carried = {c: f"{_CARRIED}{c}" for c in names if c != TEXT}
    parsed = parse(
        lines.with_columns(pl.col(c).alias(n) for c, n in carried.items()), fmt
    )
    reads = pl.col(REJECT_REASON).is_null()
    return parsed.filter(reads if read else ~reads).select(
        pl.col(RAW if c == TEXT else carried[c]).alias(c) for c in names
    )


_CARRIED = "zone·"  # `zone_lines`' names for the columns it carries
