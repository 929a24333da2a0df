"""Which format each input is read with: detection per rotation set, or forced.

A `log_format` changed on a running server is found here too (a member of a
set, or the lines of one file, in another format); `_cuts` cuts such a file.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import polars as pl

from pplog import sources
from pplog.errors import LogFormatError, OptionError
from pplog.formats import (
    DETECTION_ORDER,
    PRESETS,
    LogFormat,
    RealIPSettings,
    SeveralFormatsError,
    format_from_config,
    formats_by_log_path,
    get_format,
    realip_by_log_path,
)
from pplog.parse import parse
from pplog.pipeline._cuts import (
    PROBE_BYTES,
    Change,
    changed_within,
    inflated,
    sample_frame,
)
from pplog.pipeline.spec import FileGroup
from pplog.schema import LINE, OFFSET, REJECT_REASON, SOURCE, TEXT
from pplog.sources import Source, rotation_key

DETECT_LINES = 200
# a file's first and last lines: did its log_format change within it? (the
# last read from its last `TAIL_BYTES` when its head is not all of it)
EDGE_LINES = 20
TAIL_BYTES = 16 << 10
# `no_match` rejects of an input at least, in an `ingest` run or a `top`
# poll, before they are looked at for another preset (a changed log_format)
MISFITS_LOOKED_AT = 10
# a file whose first and last lines agree: the lines at this many offsets
# inside it are judged too (a change and its undoing: `combined`, `main` for
# an hour, `combined` again), at most `PROBE_LINES` of each; fewer offsets a
# file where there are many (`PROBE_BUDGET` in a run, `MIN_PROBES` at least):
# 400 files of 5,000 lines took 0.8 s more to detect with 32 each
PROBES = 32
PROBE_LINES = 4
PROBE_BUDGET = 1024
MIN_PROBES = 4


UNKNOWN_FORMAT = "unknown_format"  # reject reason: no preset fits the file

# how a detection's note starts when the input is an nginx error log
ERROR_LOG = "an nginx error log, not an access log"


def is_error_log(note: str | None) -> bool:
    """Whether a detection's note says its input is an nginx error log."""
    return note is not None and note.startswith(ERROR_LOG)


# how a detection's note starts when its input had no line to detect from
NO_LINES = "no lines to detect from"


def had_no_lines(note: str | None) -> bool:
    """Whether a detection's note says its input had no line (empty): its
    format is another input's, or `combined`."""
    return note is not None and note.startswith(NO_LINES)


def doctor_command(name: str) -> str:
    """The command that reads the error log `name`, as a warning suggests it
    (stdin's as ``-``: `<stdin>` names no file)."""
    word = sources.STDIN if name == sources.STDIN_NAME else sources.shell_word(name)
    return f"`pplog doctor --error-log {word}`"


def detection_of(note: str | None, name: str) -> str | None:
    """A detection's note as told of the input `name`: an error log's note
    ends with the command that reads that file (a rotation set is detected
    once, from one member, and the note is told of every member)."""
    if not is_error_log(note):
        return note
    return f"{note}; read it with {doctor_command(name)}"


_ERROR_LOG_LINE = (
    r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} "
    r"\[(?:debug|info|notice|warn|error|crit|alert|emerg)\] \d+#\d+: "
)


def _parsed(frame: pl.LazyFrame, fmt: LogFormat) -> int:
    """How many lines of `frame` `fmt` parses."""
    return int(
        parse(frame, fmt).select(pl.col(REJECT_REASON).is_null().sum()).collect().item()
    )


def detect_format(lines: Sequence[str]) -> tuple[LogFormat, int]:
    """The preset that parses the most of `lines` (ties go to DETECTION_ORDER)."""
    frame = sample_frame([x for x in lines if x.strip()])
    best, best_ok = PRESETS[DETECTION_ORDER[0]], -1
    for name in DETECTION_ORDER:
        fmt = PRESETS[name]
        ok = _parsed(frame, fmt)
        if ok > best_ok:
            best, best_ok = fmt, ok
    return best, best_ok


def _error_log_note(sample: Sequence[str]) -> str | None:
    """Detection's note for sample lines (none blank) that are an nginx
    error log: its entries cover at least half of them. Said of a whole
    rotation set: the command to run names each file where the note is told
    of it (`detection_of`)."""
    entries, covered = _error_log_lines(sample)
    n = len(sample)
    if n == 0 or covered * 2 < n:
        return None
    what = "entry" if entries == 1 else "entries"
    return f"{ERROR_LOG} ({entries} error-log {what} in {covered} of {n} sample lines)"


def error_log_note(lines: Sequence[str], fmt: LogFormat) -> str | None:
    """Detection's note when `lines` (a file's first lines) are an nginx
    error log that `fmt` does not read, else None: as detection judges a
    file no preset fits (`ingest` checks each file it meets for the first
    time, `--nginx-conf` each input no `access_log` names)."""
    sample = [x for x in lines if x.strip()]
    note = _error_log_note(sample)
    if note is None or _parsed(sample_frame(sample), fmt) * 2 >= len(sample):
        return None
    return note


def detect_sample(src: Source, sample: list[str]) -> tuple[LogFormat | None, str]:
    """The preset for lines of one input (a file first seen growing), or None
    with a one-line reason, as detection decides for a file."""
    fmt, note, _ = _detect_one(src, sample)
    return fmt, note


def reads_most(lines: Sequence[str], fmt: LogFormat) -> bool:
    """Whether `fmt` parses at least half of `lines` (blank ones left out)."""
    sample = [x for x in lines if x.strip()]
    return bool(sample) and _parsed(sample_frame(sample), fmt) * 2 >= len(sample)


def _error_log_lines(sample: Sequence[str]) -> tuple[int, int]:
    """The nginx error-log entries that start in `sample`, and how many of its
    lines they cover. nginx before 1.23.2 wrote what a client sent raw into
    `broken header: "..."` entries, so an entry whose quote is left open goes
    on over the lines after it, up to the one that closes it (8 entries over
    25 lines in a real log of PROXY-protocol mistakes); other lines are not
    the error log's, such as the access lines after nginx's start-up notices
    in a container's output. The sample is a file's first lines: a loop over
    at most `DETECT_LINES` of them."""
    starts = pl.Series(sample, dtype=pl.String).str.contains(_ERROR_LOG_LINE)
    entries = covered = 0
    open_quote = False
    for line, start in zip(sample, starts, strict=True):
        if start:
            entries += 1
            covered += 1
            open_quote = line.count('"') % 2 == 1
        elif open_quote:
            covered += 1
            open_quote = line.count('"') % 2 == 0
    return entries, covered


def _detect_one(
    src: Source, sample: list[str], fits: dict[str, int] | None = None
) -> tuple[LogFormat | None, str, LogFormatError | None]:
    """The preset for one input's sample, or None with a one-line reason and
    the error to raise should no input fit at all.

    `fits` (lines each preset parses) when already counted, else counted here.
    """
    if fits is None:
        fmt, ok = detect_format(sample)
    else:
        name = max(DETECTION_ORDER, key=lambda n: (fits[n], -DETECTION_ORDER.index(n)))
        fmt, ok = PRESETS[name], fits[name]
    n = len(sample)
    if ok * 2 >= n:
        return fmt, f"auto-detected: {ok} of {n} sample lines fit", None
    note = _error_log_note(sample)
    if note is not None:
        error = LogFormatError(f"`{src.name}` is {detection_of(note, src.name)}")
        return None, note, error
    if ok <= 0:
        why, anyway = f"none parses any of {n} sample lines", ""
    else:
        why = f"the closest, `{fmt.name}`, fits {ok} of {n} sample lines"
        anyway = (
            f"--format {fmt.name} to read it with that preset anyway (lines that "
            "do not fit are counted as rejects), "
        )
    msg = (
        f"no preset fits `{src.name}` ({why}); first line: {sample[0][:120]!r}; "
        f"pass {anyway}--log-format 'YOUR nginx log_format' or "
        "--nginx-conf /etc/nginx/nginx.conf"
    )
    return None, f"no preset fits ({why})", LogFormatError(msg)


def _fits(
    samples: list[list[str]], given: Sequence[LogFormat] = ()
) -> list[dict[str, int]]:
    """Lines of each sample that each preset parses: one parse per preset for
    all samples together (a directory of 500 small logs is 6 parses, not 3,000).
    Each format of `given` (an nginx configuration's) is counted too, under
    its own key (`_ok`)."""
    return [{k: sum(v) for k, v in f.items()} for f in _line_fits(samples, given)]


def _line_fits(
    samples: list[list[str]], given: Sequence[LogFormat] = ()
) -> list[dict[str, list[bool]]]:
    """Whether each preset (and each format `given`) parses each line of
    each sample, with one parse per format for all samples (`_fits`)."""
    ids = [str(i) for i, sample in enumerate(samples) for _ in sample]
    frame = pl.LazyFrame(
        {
            SOURCE: pl.Series(ids, dtype=pl.String),
            LINE: pl.Series(range(1, len(ids) + 1), dtype=pl.UInt64),
            OFFSET: pl.Series([0] * len(ids), dtype=pl.UInt64),
            TEXT: pl.Series([x for sample in samples for x in sample], dtype=pl.String),
        }
    )
    out: list[dict[str, list[bool]]] = [{} for _ in samples]
    ends = list(itertools.accumulate(len(sample) for sample in samples))
    counted = {name: PRESETS[name] for name in DETECTION_ORDER}
    counted |= {_GIVEN + fmt.name: fmt for fmt in given}
    for name, fmt in counted.items():
        ok = (
            parse(frame, fmt)
            .select(pl.col(REJECT_REASON).is_null())
            .collect()
            .to_series()
            .to_list()
        )
        for i, (start, end) in enumerate(zip([0, *ends], ends, strict=False)):
            out[i][name] = ok[start:end]
    return out


_GIVEN = "\x00"  # `_fits`' keys of the formats given, not detected


def _ok(fit: dict[str, int], fmt: LogFormat) -> int:
    """Lines of a sample `fmt` parses: a format given (`_fits`' `given`)
    counted as itself, where a preset has the same name."""
    return fit.get(_GIVEN + fmt.name, fit.get(fmt.name, 0))


def _rotation_sets(srcs: Sequence[Source]) -> list[list[Source]]:
    """Inputs grouped by rotation set (`access.log`, `.1`, `.2.gz`), in order.

    A set is placed where its first member is; stdin is a set of its own.
    """
    sets: dict[str, list[Source]] = {}
    for i, src in enumerate(srcs):
        if src.url is not None:
            key = rotation_key(src.url)[0]
        elif src.path is None:
            key = f"<stdin:{i}>"
        else:
            key = rotation_key(src.path)[0]
        sets.setdefault(key, []).append(src)
    return list(sets.values())


def detect_each(
    srcs: Sequence[Source],
) -> list[tuple[LogFormat | None, str | None, LogFormatError | None]]:
    """What detection decides for each input alone (as `resolve_groups` of
    that input only), with one parse per preset for all of them: `pplog
    top` settling the formats of a directory of small logs at once.

    Each result's third value is the error `resolve_groups` would raise."""
    return _detect_sets([[src] for src in srcs], alone=True)


def _head(src: Source, whole: set[str]) -> list[str]:
    """A source's first `DETECT_LINES` lines, blank ones left out; its name
    added to `whole` when they are all its lines."""
    lines = sources.read_head(src, DETECT_LINES)
    if len(lines) < DETECT_LINES:
        whole.add(src.name)
    return [x for x in lines if x.strip()]


Verdict = tuple[LogFormat | None, str | None, LogFormatError | None]


class _Detected(NamedTuple):
    """What `_detect_members` found."""

    verdicts: list[Verdict]  # one per rotation set
    apart: list[dict[int, tuple[LogFormat, str]]]  # per set: member -> format
    changed: dict[str, Change]  # inputs whose first or last lines misfit
    misfits: list[dict[int, str]]  # per set: member -> why it is told of


def _detect_sets(sets: list[list[Source]], *, alone: bool = False) -> list[Verdict]:
    """One detection per rotation set (`_detect_members`' verdicts)."""
    return _detect_members(sets, alone=alone, edges=False).verdicts


def _edge_change(
    src: Source,
    found: LogFormat,
    lines: list[str],
    fit: dict[str, int],
    *,
    at_end: bool,
    given: Verdict | None = None,
) -> Change | None:
    """The change an edge of a file shows (its first or last lines): fewer
    than half of them fit `found`, its format, and at least half another
    preset, or the format `given` its rotation set (an nginx
    configuration's, with its note) when that is not `found`."""
    if _ok(fit, found) * 2 >= len(lines):
        return None
    told, note = given[:2] if given is not None else (None, None)
    if (
        told is not None
        and told.name != found.name
        and _ok(fit, told) * 2 >= len(lines)
    ):
        note = note or ""
        if at_end:
            return Change(found, told, note, at_end=True)
        return Change(told, found, note, at_end=False)
    fmt, note, _ = _detect_one(src, lines, fit)
    if fmt is None or fmt.name == found.name:
        return None
    edge = "last" if at_end else "first"
    note = note.replace("auto-detected:", f"auto-detected from its {edge} lines:")
    if at_end:
        return Change(found, fmt, note, at_end=True)
    return Change(fmt, found, note, at_end=False)


def _detect_members(
    sets: list[list[Source]],
    *,
    alone: bool = False,
    edges: bool = True,
    given: Sequence[Verdict] | None = None,
) -> _Detected:
    """One detection per rotation set: the first member with lines decides
    (the next one when no preset fits it), its sample topped up to
    `DETECT_LINES` from the members after it: a live log just rotated holds
    a line or two, and presets that differ only in what few lines show
    (`combined` and `elb_log`, apart from a `-` client) tie on them.

    Each verdict's third value is the error to raise if no input at all
    fits. `alone`: each set is detected as if it were the only one (a set
    with no lines does not take another's format).

    `apart`: for each set, the members its format does not read and another
    preset does, by their index in the set, with that preset and its note:
    nginx's `log_format` changed at a rotation (`access.log` in the new
    format, `access.log.1` in the old). Each member's own first lines
    decide: fewer than half fit the set's format, at least half another's.
    A member no preset fits stays with its set's format (what it reads of
    it is read), and is told of (`misfits`, a warning): a format of the
    administrator's own replaced a preset, or the file is damaged.

    `changed`: the inputs whose first or last `EDGE_LINES` lines are in
    another format than the one found for them, judged as `apart` is: the
    `log_format` changed within them, and `changed_within` cuts them. The
    last lines are those of the head when it is all of the input, else
    those at its end (a plain file's: `_last_lines`). Not looked for
    without `edges`. Every sample is parsed in one `_fits`.

    `given`: each set's format is not detected but this (an nginx
    configuration's); `apart` and `changed` are judged against it, the
    other format being a preset.
    """
    firsts: list[tuple[int, Source, list[str]]] = []  # (set, member, sample)
    heads: list[tuple[int, int, Source, list[str]]] = []  # each input's own
    whole: set[str] = set()
    for i, members in enumerate(sets):
        # each member's own head, read once; a set of one's is its sample
        own = [_head(m, whole) for m in members] if len(members) > 1 else []
        for k, src in enumerate(members):
            sample = list(own[k]) if own else _head(src, whole)
            if sample:
                for more in own[k + 1 :]:
                    if len(sample) >= DETECT_LINES:
                        break
                    sample += more[: DETECT_LINES - len(sample)]
                firsts.append((i, src, sample))
                break
        heads += [(i, k, members[k], h) for k, h in enumerate(own) if h]
    # each input's first lines and its last (read from its end when its head
    # is not all of it); a set of one's head is its sample
    every = heads + [(i, 0, src, x) for i, src, x in firsts if len(sets[i]) == 1]
    ends: list[tuple[int, int, Source, list[str], bool]] = []
    probed: list[tuple[int, int, Source]] = []  # plain files past their head
    for i, k, src, h in every if edges else []:
        if len(h) > EDGE_LINES:
            ends.append((i, k, src, h[:EDGE_LINES], False))
            last = h[-EDGE_LINES:] if src.name in whole else _last_lines(src)
            if len(last) > 1:
                ends.append((i, k, src, last, True))
            if src.name not in whole and last:
                probed.append((i, k, src))
    many = max(MIN_PROBES, min(PROBES, PROBE_BUDGET // max(1, len(probed))))
    probes = [
        (i, k, src, x, at) for i, k, src in probed for at, x in _probe_lines(src, many)
    ]
    samples = [x[2] for x in firsts] + [h[3] for h in heads] + [e[3] for e in ends]
    samples += [p[3] for p in probes]
    known_formats = [v[0] for v in given or () if v[0] is not None]
    # one parse per format of every sample; a probe's lines judged one by one
    by_line = _line_fits(samples, known_formats) if firsts else []
    counted = [{k: sum(v) for k, v in f.items()} for f in by_line]
    fits = counted[: len(firsts)]
    head_fits = counted[len(firsts) : len(firsts) + len(heads)]
    edge_fits = counted[len(firsts) + len(heads) : len(samples) - len(probes)]
    probe_fits = by_line[len(samples) - len(probes) :]
    out: list[Verdict] = [
        (PRESETS["combined"], f"{NO_LINES}; assumed combined", None)
    ] * len(sets)
    # a configuration's formats are given, not detected
    chosen = zip(firsts, fits, strict=True) if given is None else iter(())
    own_fits = {
        (i, k): (h, fit) for (i, k, _, h), fit in zip(heads, head_fits, strict=True)
    }
    for (i, src, sample), fit in chosen:
        out[i] = _detect_one(src, sample, fit)
        if out[i][0] is not None:
            continue
        # its sample topped up with newer members' lines in a format no
        # preset reads (nginx's own format since): its own lines decide
        itself = own_fits.get((i, sets[i].index(src)))
        if itself is not None and (by_own := _detect_one(src, *itself))[0] is not None:
            out[i] = by_own
            continue
        for later in sets[i][sets[i].index(src) + 1 :]:  # rare: the older members
            lines = _head(later, whole)
            verdict = _detect_one(later, lines) if lines else None
            if verdict is not None and verdict[0] is not None:
                out[i] = verdict
                break
    # nothing to detect from (empty, or compressed stdin that cannot be
    # peeked into): read as the first input detected, as one format was before
    sampled = {i for i, _, _ in firsts}
    known = (
        None
        if alone or given is not None
        else next(
            (r[0] for i, r in enumerate(out) if i in sampled and r[0] is not None), None
        )
    )
    if known is not None:
        like = (known, f"{NO_LINES}; read as {known.name}", None)
        out = [r if i in sampled else like for i, r in enumerate(out)]
    if given is not None:
        out = list(given)
        # a file alone that the configuration's format does not read and a
        # preset does: written before the change (its set's others gone)
        for (i, src, sample), fit in zip(firsts, fits, strict=True):
            fmt = out[i][0]
            if len(sets[i]) > 1 or fmt is None or _ok(fit, fmt) * 2 >= len(sample):
                continue
            if (verdict := _detect_one(src, sample, fit))[0] is not None:
                out[i] = verdict
    apart: list[dict[int, tuple[LogFormat, str]]] = [{} for _ in sets]
    misfits: list[dict[int, str]] = [{} for _ in sets]
    for (i, k, src, sample), fit in zip(heads, head_fits, strict=True):
        found = out[i][0]
        if found is None or _ok(fit, found) * 2 >= len(sample):
            continue
        fmt, note, _ = _detect_one(src, sample, fit)
        if fmt is not None and fmt.name != found.name:
            apart[i][k] = (fmt, note)
        elif fmt is None and not is_error_log(note):
            ok = _ok(fit, found)
            misfits[i][k] = _misfit(
                found, ok, len(sample), configured=given is not None
            )
    changed: dict[str, Change] = {}
    starts: dict[str, Change] = {}  # the changes the first lines show
    for (i, k, src, lines, at_end), fit in zip(ends, edge_fits, strict=True):
        found = apart[i][k][0] if k in apart[i] else out[i][0]
        change = (
            None
            if found is None
            else _edge_change(
                src,
                found,
                lines,
                fit,
                at_end=at_end,
                given=None if given is None else given[i],
            )
        )
        if change is not None and not at_end:
            starts[src.name] = change
        if change is not None and (at_end or src.name not in changed):
            changed[src.name] = change  # the last lines' change first: the newest
    # first and last lines in one format, the head mostly in another: that
    # one's stretch began in the first lines (`_middle_changes`' `outer`)
    outer = {
        name: (first.before, first.note)
        for name, first in starts.items()
        if changed[name].at_end and changed[name].after.name == first.before.name
    }
    middle = _middle_changes(probes, probe_fits, out, apart, changed, given, outer)
    for i, k, src, _, _ in probes:
        if src.name in outer and src.name in middle:  # read as its edges are
            fmt, note = outer[src.name]
            if len(sets[i]) > 1:
                apart[i][k] = (fmt, note)
            else:
                out[i] = (fmt, note, None)
    changed.update(middle)
    if edges:
        lined = {(i, k) for i, k, _, _ in heads}
        changed.update(_inflated_changes(sets, out, apart, changed, lined, given))
    return _Detected(out, apart, changed, misfits)


def _probe_lines(src: Source, count: int) -> list[tuple[int, list[str]]]:
    """Up to `PROBE_LINES` lines at each of `count` offsets evenly inside a
    plain file, with where the first starts: a change of its `log_format`
    that its first and last lines do not show (`_middle_changes`). One
    open, `PROBE_BYTES` read at each offset."""
    assert src.path is not None
    try:
        fd = os.open(src.path, os.O_RDONLY)
    except OSError:
        return []
    out = []
    try:
        size = os.fstat(fd).st_size
        for j in range(1, count + 1):
            at = size * j // (count + 1)
            data = os.pread(fd, PROBE_BYTES, at)
            start = data.find(b"\n") + 1  # the first line that starts after it
            if start == 0:
                continue
            lines = data[start:].split(b"\n")[:-1][:PROBE_LINES]
            # a CR before the newline is dropped, as the readers drop it
            texts = [sources.decode_bytes(t.removesuffix(b"\r")) for t in lines]
            texts = [t for t in texts if t.strip()]
            if len(texts) > 1:
                out.append((at + start, texts))
    except OSError:
        return out
    finally:
        os.close(fd)
    return out


def _middle_changes(
    probes: list[tuple[int, int, Source, list[str], int]],
    fits: list[dict[str, list[bool]]],
    out: list[Verdict],
    apart: list[dict[int, tuple[LogFormat, str]]],
    changed: dict[str, Change],
    given: Sequence[Verdict] | None,
    outer: dict[str, tuple[LogFormat, str]],
) -> dict[str, Change]:
    """The plain files whose first and last lines agree and whose lines at
    a probe (`_probe_lines`) are in another format: nginx's `log_format`
    changed, then changed back (a trial undone), all in one file. `outer`:
    the files whose first and last lines are in another format than their
    head's (the stretch began in the first lines), judged against that
    one; the caller reads them with it when a stretch is found. A probe
    shows it when at least half its lines, and two, are lines another
    preset (or the configuration's format) reads and the file's does not:
    line by line, since after a reload the old workers' lines alternate
    with the new for a while, half each. The first such stretch only; one
    shorter than the space between two probes may not be seen (its lines
    stay rejects)."""
    seen: dict[str, list[tuple[int, Change | None, bool]]] = {}
    for (i, k, src, lines, at), fit in zip(probes, fits, strict=True):
        found = apart[i][k][0] if k in apart[i] else out[i][0]
        if src.name in outer:
            found = outer[src.name][0]
        elif found is None or src.name in changed:
            continue
        told = None if given is None else given[i]
        change = _probe_change(found, lines, fit, told)
        reads = change is None and _ok(
            {n: sum(v) for n, v in fit.items()}, found
        ) * 2 >= len(lines)
        seen.setdefault(src.name, []).append((at, change, reads))
    found_in: dict[str, Change] = {}
    for name, marks in seen.items():
        j = next((j for j, m in enumerate(marks) if m[1] is not None), None)
        if j is None:
            continue
        at, change, _ = marks[j]
        assert change is not None
        lo = max((m[0] for m in marks[:j] if m[2]), default=0)
        hi = next((m[0] for m in marks[j + 1 :] if m[2]), None)  # None: the end
        found_in[name] = replace(change, middle=(lo, at, hi))
    return found_in


def _probe_change(
    found: LogFormat,
    lines: list[str],
    fit: dict[str, list[bool]],
    given: Verdict | None,
) -> Change | None:
    """The change a probe's `lines` show (`_middle_changes`): the preset, or
    the format `given`, that reads the most of them that `found` does not,
    if that is at least half of them and two."""
    mine = fit.get(_GIVEN + found.name, fit.get(found.name, []))
    named = [(n, PRESETS[n], "") for n in DETECTION_ORDER if n != found.name]
    if given is not None and given[0] is not None and given[0].name != found.name:
        named.insert(0, (_GIVEN + given[0].name, given[0], given[1] or ""))

    def only(key: str) -> int:
        return sum(r and not m for r, m in zip(fit[key], mine, strict=True))

    key, fmt, note = max(named, key=lambda x: only(x[0]))  # ties: the first
    n = only(key)
    if n < 2 or n * 2 < len(lines):
        return None
    fits = f"{sum(fit[key])} of {len(lines)} sample lines fit"
    return Change(
        found, fmt, note or f"auto-detected from lines inside it: {fits}", at_end=True
    )


def _misfit(found: LogFormat, ok: int, n: int, *, configured: bool) -> str:
    """The warning for a member of a set whose first lines its set's
    format, `found`, and no preset read (`ok` of `n` fit `found`);
    `configured`: `found` is an nginx configuration's."""
    advice = (
        "pass --log-format 'ITS log_format' to read them"
        if configured
        else "pass --nginx-conf /etc/nginx/nginx.conf (or --log-format "
        "'ITS log_format') to read them with nginx's own format"
    )
    return (
        f"{ok} of its first {n} lines fit `{found.name}`, its rotation set's "
        "format, and no preset reads them (was nginx's log_format changed to "
        f"one of its own, or is the file damaged?); the lines `{found.name}` "
        f"does not read are counted as rejects: {advice}"
    )


def _inflated_changes(
    sets: list[list[Source]],
    out: list[Verdict],
    apart: list[dict[int, tuple[LogFormat, str]]],
    changed: dict[str, Change],
    lined: set[tuple[int, int]],
    given: Sequence[Verdict] | None = None,
) -> dict[str, Change]:
    """The compressed members whose `log_format` changed within them: after
    logrotate's `compress`, the file of the day nginx's format changed is a
    `.gz` member whose first lines are in the old format, its last in the
    new. Its end is read only by inflating all of it, so only a compressed
    member whose own first lines are in another format than those of the
    next newer member with lines (`lined`: set and member; an empty one,
    just rotated, tells nothing), or that is the newest with lines (only
    the compressed rotations were given), is looked at
    (`last_lines_inflated`), its last `EDGE_LINES` judged as a plain file's
    are (`given`: as `_detect_members`')."""
    looked: list[tuple[int, Source, LogFormat, list[str]]] = []
    for i, members in enumerate(sets):
        found = out[i][0]
        if len(members) < 2 or found is None:
            continue
        order = sorted(
            (k for k in range(len(members)) if (i, k) in lined),
            key=lambda k: _age(members[k]),
        )
        if not order:  # no member with lines (a quiet vhost's set)
            continue
        newer_of: list[int | None] = [*order[1:], None]
        for older, newer in zip(order, newer_of, strict=True):
            src = members[older]
            fmt = apart[i][older][0] if older in apart[i] else found
            then = (
                None
                if newer is None
                else apart[i][newer][0]
                if newer in apart[i]
                else found
            )
            same = then is not None and fmt.name == then.name
            if same or src.name in changed or not inflated(src):
                continue
            last = sources.last_lines_inflated(src, TAIL_BYTES)[-EDGE_LINES:]
            if len(last) > 1:
                looked.append((i, src, fmt, last))
    known = [v[0] for v in given or () if v[0] is not None]
    fits = _fits([x[3] for x in looked], known) if looked else []
    new: dict[str, Change] = {}
    for (i, src, fmt, last), fit in zip(looked, fits, strict=True):
        told = given[i] if given is not None else None
        change = _edge_change(src, fmt, last, fit, at_end=True, given=told)
        if change is not None:
            new[src.name] = change
    return new


def _age(src: Source) -> tuple[str, int, str]:
    """`rotation_key` of an input: older rotations first."""
    return rotation_key(src.url if src.url is not None else src.path or src.name)


def _last_lines(src: Source) -> list[str]:
    """The last `EDGE_LINES` lines of a plain file that start in its last
    `TAIL_BYTES`; none when it is not a plain file, or cannot be read (the
    run's read reports that)."""
    if src.path is None or src.span is not None or src.pipe or src.skip:
        return []
    try:
        if not src.path.is_file() or sources.compression(src.path):
            return []
        size = src.path.stat().st_size
    except OSError:
        return []
    lines = sources.lines_at(src, max(0, size - TAIL_BYTES), TAIL_BYTES)
    return [t for _, t in lines if t.strip()][-EDGE_LINES:]


def resolve_groups(
    srcs: Sequence[Source],
    format: str | LogFormat | None = "auto",  # noqa: A002 - mirrors --format
    *,
    log_format: str | None = None,
    nginx_conf: str | os.PathLike[str] | None = None,
    log_format_name: str | None = None,
    error_logs: bool = False,
    changes: bool = True,
) -> list[FileGroup]:
    """The format of each input, grouped: one group when a format is forced.

    `--format`, `--log-format` and `--nginx-conf --log-format-name` force one
    format for every input. `--nginx-conf` alone gives each input the format
    of the `access_log` directive that writes it (or its rotations), and the
    configuration's format to the others; the members and lines its own
    first or last lines show in another format (the configuration's is
    the format of now: nginx's `log_format` was changed) are read with the
    preset that reads them, unless `changes` is False (`ingest` and `top`,
    which read the lines to come). Otherwise each rotation set is
    detected on its own, as lnav does per file; a set that no preset fits
    gets a group with no format (its lines become rejects), unless no input
    fits at all, which is an error. With `error_logs`, the caller reads
    nginx error logs too (`pplog doctor`): a set detected as one is not
    counted among the inputs that fit no preset.

    Raises
    ------
    LogFormatError
        When auto-detection finds no preset for any input: the message names
        the closest preset, how many sample lines it fits, and says so when
        the input is an nginx error log.
    """
    if nginx_conf is not None and log_format is None and log_format_name is None:
        return _groups_from_config(srcs, nginx_conf, changes=changes)
    forced = format not in (None, "auto") or log_format or nginx_conf
    if forced or log_format_name is not None:
        fmt, note = resolve_format(
            srcs,
            format,
            log_format=log_format,
            nginx_conf=nginx_conf,
            log_format_name=log_format_name,
        )
        if not error_logs:
            return [FileGroup(list(srcs), fmt, note)]
        # the format forced is the access logs': error logs stay error logs
        apart = [
            FileGroup(members, None, said)
            for members in _rotation_sets(srcs)
            if (said := _set_error_log_note(members, fmt)) is not None
        ]
        named = {s.name for g in apart for s in g.sources}
        rest = [s for s in srcs if s.name not in named]
        return ([FileGroup(rest, fmt, note)] if rest else []) + apart
    sets = _rotation_sets(srcs)
    detected = _detect_members(sets)
    groups = _groups_of(sets, detected)
    failures = [
        failure
        for _, note, failure in detected.verdicts
        if failure is not None and not (error_logs and is_error_log(note))
    ]
    # with `error_logs`, the caller reads the error logs: they are not inputs
    # that fit no preset
    access = [g for g in groups if not (error_logs and is_error_log(g.note))]
    if failures and len(failures) == len(access):
        raise failures[0]
    return groups


def _groups_of(sets: list[list[Source]], detected: _Detected) -> list[FileGroup]:
    """A group per rotation set with its format, and one per member read
    apart, files whose format changed within them cut (`changed_within`)."""
    groups = []
    for members, (found, note, _), elsewhere, misfits in zip(
        sets, detected.verdicts, detected.apart, detected.misfits, strict=True
    ):
        kept = [m for k, m in enumerate(members) if k not in elsewhere]
        told = {members[k].name: why for k, why in misfits.items()}
        groups.append(FileGroup(kept, found, note, warnings=told))
        for k, (fmt, said) in elsewhere.items():
            groups.append(FileGroup([members[k]], fmt, said))
    return changed_within(groups, detected.changed)


def _set_error_log_note(members: Sequence[Source], fmt: LogFormat) -> str | None:
    """`error_log_note` of a rotation set, from its first member with lines."""
    return next(
        (
            error_log_note(sample, fmt)
            for src in members
            if (sample := sources.read_head(src, DETECT_LINES))
        ),
        None,
    )


def _conf_key(path: Path) -> str:
    """How an input is matched with the `access_log` that writes it: by its
    rotation set's live name, resolved (`logs/../logs/api.log`, `./api.log`,
    `api.log.2.gz` and a link to it name one file)."""
    return rotation_key(path.resolve())[0]


def logs_realip(
    nginx_conf: str | os.PathLike[str],
) -> Callable[[Source], tuple[RealIPSettings | LogFormatError | None] | None]:
    """For an input, a `(settings,)` tuple of the realip settings in force
    where the `access_log` that writes it stands (`realip_by_log_path`), or
    None when no `access_log` names it."""
    by_path = {_conf_key(p): s for p, s in realip_by_log_path(nginx_conf).items()}

    def named(src: Source) -> tuple[RealIPSettings | LogFormatError | None] | None:
        key = _conf_key(src.path) if src.path is not None else None
        return (by_path[key],) if key in by_path else None

    return named


def _groups_from_config(
    srcs: Sequence[Source], nginx_conf: str | os.PathLike[str], *, changes: bool
) -> list[FileGroup]:
    """Each input with the format of the `access_log` that writes it.

    Inputs no `access_log` names take the configuration's one format; when
    it defines several, they are detected as without a configuration.
    """
    key = _conf_key
    formats, sharing = formats_by_log_path(nginx_conf)
    by_path = {key(p): fmt for p, fmt in formats.items()}
    conf = os.fspath(nginx_conf)
    sets = _rotation_sets(srcs)
    named = [
        by_path.get(key(m[0].path)) if m[0].path is not None else None for m in sets
    ]
    unnamed = [m for m, fmt in zip(sets, named, strict=True) if fmt is None]
    default: list[tuple[LogFormat | None, str | None, LogFormatError | None]] = []
    if unnamed:
        try:
            found = format_from_config(nginx_conf, None)
        except SeveralFormatsError:  # which one is unknown: detected per set
            default = _detect_sets(unnamed)
        else:
            # the configuration's format, unless the input is an error log
            # (its `error_log` is no `access_log`)
            for members in unnamed:
                note = _set_error_log_note(members, found)
                if note is not None:
                    default.append((None, note, None))
                else:
                    default.append(
                        (found, f"log_format `{found.name}` from {conf}", None)
                    )
    verdicts: list[Verdict] = []
    rest = iter(default)
    for fmt in named:
        if fmt is not None:
            mapped = f"log_format `{fmt.name}` of its access_log in {conf}"
            verdicts.append((fmt, mapped, None))
        else:
            verdicts.append(next(rest))
    # a log_format changed on a running server: the configuration has the
    # new one, the older members and lines are read with the preset that
    # reads them (`combined` before a custom format with $request_time)
    if not changes:
        return [
            FileGroup(members, fmt, note)
            for members, (fmt, note, _) in zip(sets, verdicts, strict=True)
        ]
    groups = _groups_of(sets, _detect_members(sets, given=verdicts))
    # a file two access_logs write with different formats: told of once (not
    # to `ingest`, whose warnings of a group are of members no preset reads)
    shared = {key(p): why for p, why in sharing.items()}
    for g in groups:
        for src in g.sources:
            why = shared.get(key(src.path)) if src.path is not None else None
            if why is not None and src.name not in g.warnings:
                g.warnings[src.name] = why
    return groups


def resolve_format(
    srcs: Sequence[Source],
    format: str | LogFormat | None = "auto",  # noqa: A002 - mirrors --format
    *,
    log_format: str | None = None,
    nginx_conf: str | os.PathLike[str] | None = None,
    log_format_name: str | None = None,
) -> tuple[LogFormat, str | None]:
    """One format for every input, and a note saying how it was chosen.

    With ``auto``, the format of the first input a preset fits (each input
    is detected by `resolve_groups`, which this is the one-format form of).
    """
    if log_format is not None and nginx_conf is not None:
        msg = "give either a log format string or an nginx configuration, not both"
        raise OptionError(msg)
    if log_format is not None:
        return LogFormat.from_string(log_format), None
    if nginx_conf is not None:
        fmt = format_from_config(nginx_conf, log_format_name)
        return fmt, f"log_format `{fmt.name}` from {os.fspath(nginx_conf)}"
    if log_format_name is not None:
        msg = "`log_format_name` needs an nginx configuration (--nginx-conf FILE)"
        raise OptionError(msg)
    if isinstance(format, LogFormat):
        return format, None
    if format not in (None, "auto"):
        return get_format(format), None
    first = next(g for g in resolve_groups(srcs) if g.format is not None)
    return first.format, first.note  # type: ignore[return-value]
