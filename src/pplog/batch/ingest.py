"""`pplog ingest`: new complete lines of a rotation set into the dataset, exactly once.

One run: lock, recover, find the files and where each stream stopped
(`identity`), read every complete line after that point in batches, parse,
attribute and classify them (`pipeline.rows`), stage rows and rejects as
Parquet files partitioned by date, then commit (`state.commit`), publish and
rewrite the state cache. Memory follows the batch size; the work follows the
new bytes, never the dataset's history.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from pplog.batch import _fs, identity
from pplog.batch._fs import UnsafePathError
from pplog.batch.identity import Candidate
from pplog.batch.reader import IngestResult, ProblemHandler, Reader, disk_full
from pplog.batch.staging import Staging
from pplog.batch.state import (
    CommittedError,
    DiskFullError,
    Layout,
    State,
    commit,
    finish_commit,
    locked,
    manifest_entry,
    now_iso,
    recorded_format,
    recover,
)
from pplog.clientip import ProxyPolicy
from pplog.enrich.geo import (
    GeoDatabases,
    default_database_paths,
    open_databases,
)
from pplog.enrich.useragents import prepare as prepare_agents
from pplog.errors import (
    LogFormatError,
    OptionError,
    PplogError,
    ReportError,
    SourceError,
    described,
)
from pplog.formats import LogFormat
from pplog.pipeline import (
    FileGroup,
    LogSpec,
    detect_format,
    had_no_lines,
    resolve_format,
    resolve_groups,
)
from pplog.sources import Source, is_url, path_list, rotation_key

BATCH_BYTES = 32 << 20
# `no_match` rejects of an input a run, at least, before they are looked at
MISFITS_TOLD = 3
FINAL_GRACE = 15 * 60.0  # seconds before a rotated file's last partial line counts
COMPACT_THRESHOLD = 32  # files in one partition before ingest compacts it


# The fault tests' hook, outside the API: SIGKILL at a named point of the
# commit protocol (`point`, or `point:n` for the n-th time it is reached).
FAULT_ENV = "PPLOG_FAULT_POINT"


class _Fault:
    """SIGKILL this process at a named point (`point` or `point:n`)."""

    def __init__(self, point: str | None) -> None:
        self.name, _, nth = (point or "").partition(":")
        self.nth = int(nth or 1)
        self.seen = 0

    def __call__(self, name: str) -> None:
        if name == self.name:
            self.seen += 1
            if self.seen >= self.nth:
                os.kill(os.getpid(), signal.SIGKILL)


def _dataset_dir(dataset: object) -> Path:
    """The dataset's directory, made if need be; an `OptionError` for what
    cannot be one (``""`` would write the dataset into the working
    directory), a `ReportError` where it cannot be made."""
    if not isinstance(dataset, str | bytes | os.PathLike):
        msg = f"`dataset` is a directory path, not {described(dataset)}"
        raise OptionError(msg)
    text = os.fsdecode(dataset)
    if not text.strip():
        msg = "`dataset` is empty: give the dataset's directory"
        raise OptionError(msg)
    root = Path(text)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        msg = f"the dataset `{text}` is a file, not a directory"
        raise OptionError(msg) from None
    except OSError as exc:  # no permission, a read-only disk: not bad usage
        msg = f"cannot make the dataset directory `{text}`: {exc.strerror or exc}"
        raise ReportError(msg) from None
    return root


def ingest(
    paths: Sequence[str],
    dataset: str | os.PathLike[str],
    *,
    format: str | LogFormat | None = "auto",  # noqa: A002 - mirrors --format
    log_format: str | None = None,
    nginx_conf: str | os.PathLike[str] | None = None,
    log_format_name: str | None = None,
    trusted: Sequence[str] | None = None,
    real_ip_header: str | None = None,
    recursive: bool | None = None,
    policy: ProxyPolicy | None = None,
    final_grace: float = FINAL_GRACE,
    final: bool = False,
    compact_threshold: int = COMPACT_THRESHOLD,
    geoip: Sequence[str | os.PathLike[str]] | None = None,
    geoip_skip_special: bool = True,
    batch_bytes: int = BATCH_BYTES,
    spec: LogSpec | None = None,
    on_problem: ProblemHandler | None = None,
) -> IngestResult:
    """Append every complete line that is new since the last run to `dataset`.

    Parameters
    ----------
    paths
        Files or globs covering the rotation set, e.g. ``/var/log/nginx/access.log*``.
    dataset
        The dataset directory (created on first use).
    format, log_format, nginx_conf, log_format_name
        As for `scan_log`. With ``auto`` the first run detects the format and
        records it; later runs keep it.
    trusted, real_ip_header, recursive, policy
        Client attribution, as for `scan_log`.
    final_grace
        Seconds a rotated, uncompressed file must be idle before a last line
        without a newline is taken as complete (the live file's never is).
        Until then its bytes are held back: `IngestResult.held` and
        `verify` say how many.
    final
        Treat every file as finished: take a last line without newline now,
        even in a file named like the live log. For logs nothing writes to
        any more (downloaded, archived); a line nginx is still writing would
        be taken in two halves.
    compact_threshold
        Compact a partition once it holds this many files (0: never).
    geoip
        MaxMind DB files: rows get `country`, `city`, `asn` and `as_org`,
        each distinct client looked up once per batch. None looks in
        /usr/share/GeoIP and /var/lib/GeoIP; ``[]`` turns GeoIP off.
    geoip_skip_special
        Do not look up private, documentation and other special addresses.
    spec
        A `LogSpec` holding the format, real-IP and GeoIP settings (instead
        of those keywords). A dataset keeps every row: its filters must be
        empty.

    Returns
    -------
    IngestResult

    Raises
    ------
    Busy
        Another run holds the lock (the CLI exits 0).
    DiskFullError
        The disk filled before the commit point: nothing was committed.
    StateError
        The commit log is damaged: nothing was changed.
    CommittedError
        The run is committed, but moving its files into place or writing the
        state cache failed (a full disk): the next run finishes it, and the
        readers find its files where they are meanwhile.

    Examples
    --------
    >>> import tempfile, pplog
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     first = pplog.ingest(["sample_logs/elb-access.log"], f"{tmp}/ds")
    ...     again = pplog.ingest(["sample_logs/elb-access.log"], f"{tmp}/ds")
    ...     print(first.rows, first.committed, again.committed)
    3000 1 None
    """
    spec = _spec(
        spec,
        format=format,
        log_format=log_format,
        nginx_conf=nginx_conf,
        log_format_name=log_format_name,
        trusted=trusted,
        real_ip_header=real_ip_header,
        recursive=recursive,
        policy=policy,
        geoip=geoip,
        geoip_skip_special=geoip_skip_special,
    )
    paths = path_list(paths, "paths")
    urls = [p for p in paths if is_url(p)]
    if urls:
        msg = (
            f"`{urls[0]}` is a URL: ingest follows local log files across "
            "rotation by their identity on disk; summarize URLs with "
            "`pplog summarize`, or ingest on the machine that writes the logs"
        )
        raise OptionError(msg)
    layout = Layout(_dataset_dir(dataset))
    hit = _Fault(os.environ.get(FAULT_ENV))
    result = IngestResult()
    report = on_problem or (lambda _m: None)
    with locked(layout):
        hit("after_lock")
        state = recover(layout)
        hit("after_recovery")
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:8]
        seen, unmatched = identity.watched(paths)
        cands, duplicates, problems = identity.discover(paths)
        cands, duplicates = identity.restore_own_files(
            cands, duplicates, state.checkpoints
        )
        problems += [f"no file matches `{p}`" for p in unmatched]
        for p in problems:
            result.problems.append(p)
            result.warn("file_errors")
            report(p)
        if duplicates:
            result.warn("duplicate_paths", len(duplicates))
        fmt, pol = _format(state, cands, spec)
        if cands:
            prepare_agents()  # for the rollups' answers: built while reading
        staging = Staging(layout, run_id, pol)
        dbs = _geo_databases(spec.geoip)
        try:
            reader = Reader(fmt, pol, staging, result, final_grace, batch_bytes, hit)
            reader.geo, reader.geo_skip_special = dbs, spec.geoip_skip_special
            reader.watched, reader.patterns = seen, paths
            reader.finished = final
            checkpoints = reader.read_all(cands, state.checkpoints, report)
            result.format_warnings = _misfit_warnings(result, fmt)
            added = staging.close()
        except BaseException as exc:
            staging.abort()
            if disk_full(exc):
                msg = f"disk full while staging new rows; nothing was committed ({exc})"
                raise DiskFullError(msg) from exc
            raise
        finally:
            if dbs is not None:
                dbs.close()
        hit("after_staging_write")
        if not added and _progress(checkpoints) == _progress(state.checkpoints):
            _fs.rmtree(layout.root, layout.staging / run_id)
            # a first run with nothing to read (an empty log, just rotated)
            # still leaves a dataset, empty, that `summarize` and `verify` read
            _fs.makedirs(layout.root, layout.log)
            return result
        try:  # where the files go: refused now, before the commit, if linked
            _fs.check(layout.root, *(layout.root / a["path"] for a in added))
        except PplogError:
            staging.abort()
            raise
        record = {
            "format": "pplog-commit",
            "version": 1,
            "kind": "ingest",
            "commit": state.applied + 1,
            "prev_commit": state.applied,
            "run_id": run_id,
            "committed_at": now_iso(),
            "log_format": {
                "name": fmt.name,
                "format": fmt.format,
                "escape": fmt.escape,
            },
            # the dataset's summaries take the trust its rows were read with
            "policy": pol.recorded(),
            "added": added,
            "removed": [],
            "checkpoints": checkpoints,
            "manifest": state.files + [manifest_entry(a) for a in added],
            "rows": result.rows,
            "rejects": result.rejects,
            "warnings": result.warnings,
        }
        hit("before_commit_link")
        try:
            commit(layout, record)
        except OSError as exc:
            staging.abort()
            if disk_full(exc):
                msg = f"disk full at the commit point; nothing was committed ({exc})"
                raise DiskFullError(msg) from exc
            raise
        hit("after_commit_link")
        result.committed = state.applied + 1
        new_state = finish_commit(layout, record, hit)
        _fs.rmtree(layout.root, layout.staging / run_id)
        if compact_threshold:
            from pplog.batch.compact import compact

            try:
                result.compacted = compact(
                    layout, new_state, min_files=compact_threshold
                )
            except (
                OSError,
                pl.exceptions.ComputeError,
                UnsafePathError,
                SourceError,
                CommittedError,  # its own commit made: the next run finishes it
            ) as exc:
                # the run is committed and visible; a compaction that failed (a
                # full disk, which polars reports as a ComputeError, a file to
                # merge that is a link or is damaged) changed nothing and is
                # tried again after a later run
                result.warn("compaction_errors")
                message = (
                    f"compaction after commit {result.committed} failed ({exc}); "
                    "the new rows are committed, compaction is tried again later"
                )
                result.problems.append(message)
                report(message)
    return result


def _spec(spec: LogSpec | None, **keywords: Any) -> LogSpec:  # noqa: ANN401
    """`LogSpec.of`, refusing filters: a dataset keeps every row."""
    spec = LogSpec.of(spec, **keywords)
    if spec.filters or spec.exclude_bots:
        msg = (
            "`ingest` keeps every row of the logs: give the filters to `summarize` "
            "(on the dataset) instead of the spec"
        )
        raise OptionError(msg)
    return spec


def _format(
    state: State, cands: list[Candidate], spec: LogSpec
) -> tuple[LogFormat, ProxyPolicy]:
    """The format given, else the one recorded by earlier runs, else detected;
    and the proxy policy for it. With `--nginx-conf`, each file's format and
    realip settings are its `access_log`'s (`LogSpec.groups`), and files whose
    servers attribute differently are refused."""
    if spec.nginx_conf is None or spec.policy is not None or not cands:
        fmt = _one_format(state, cands, spec)
        return fmt, spec.resolve_policy(fmt)
    # the configuration's formats: a dataset holds one, the next lines'
    groups = spec.groups([Source(c.name, c.path) for c in cands], changes=False)
    fmt = _the_format(groups)
    _check_recorded(state, fmt)
    policies: dict[ProxyPolicy, Source] = {}
    for g in groups:
        if g.format is not None:
            policies.setdefault(g.policy, g.sources[0])
    if len(policies) > 1:
        which = ", ".join(f"`{s.name}`" for s in policies.values())
        msg = (
            f"the servers that write {which} have different realip settings in "
            f"{spec.nginx_conf}; a dataset holds one client attribution: ingest "
            "each into its own --dataset"
        )
        raise LogFormatError(msg)
    return fmt, next(iter(policies))


def _one_format(state: State, cands: list[Candidate], spec: LogSpec) -> LogFormat:
    """The format given, else the one recorded by earlier runs, else detected."""
    given = spec.log_format or spec.nginx_conf or spec.format not in (None, "auto")
    recorded = recorded_format(state)
    if not given and recorded is not None:
        return recorded
    srcs = [Source(c.name, c.path) for c in cands if not c.compressed] or [
        Source(c.name, c.path) for c in cands
    ]
    if given:
        fmt, _ = resolve_format(
            srcs,
            spec.format,
            log_format=spec.log_format,
            nginx_conf=spec.nginx_conf,
            log_format_name=spec.log_format_name,
        )
        _check_recorded(state, fmt)
        return fmt
    if not srcs:
        msg = (
            "no log file to read, and the dataset has no log format yet: give "
            "existing log files (or --format NAME)"
        )
        raise LogFormatError(msg)
    # a dataset holds one format: detect each rotation set, as `summarize` does,
    # and refuse inputs that differ rather than reject most of their lines
    return _the_format(resolve_groups(srcs))


def _check_recorded(state: State, fmt: LogFormat) -> None:
    """Refuse a format given now that is not the one the dataset holds: lines
    of another would each be a `no_match` reject and their bytes counted as
    read, and the rows' columns would change from one file to the next."""
    saved = state.log_format
    if saved and (saved["format"], saved["escape"]) != (fmt.format, fmt.escape):
        msg = (
            f"this dataset holds `{saved['name']}` lines (recorded by its first "
            f"run), not `{fmt.name}`: a dataset holds one format; ingest "
            "these logs into their own --dataset, or leave out the format "
            "options to use the recorded one"
        )
        raise LogFormatError(msg)


def _the_format(groups: list[FileGroup]) -> LogFormat:
    """The one format of `groups`; an error naming them when they differ,
    or when the newest member of a set is in no preset (`FileGroup.warnings`:
    nginx's format is one of the administrator's own now, and every line to
    come would be a reject)."""
    latest: dict[str, Source] = {}  # each set's newest member
    for g in groups:
        for src in g.sources:
            key = rotation_key(src.name)[0]
            if key not in latest or _age(src) > _age(latest[key]):
                latest[key] = src
    for g in groups:
        for src in g.sources:
            if src.name not in g.warnings or g.format is None:
                continue
            if latest[rotation_key(src.name)[0]].name == src.name:
                msg = (
                    f"no preset reads `{src.name}`, the newest of its rotation set, "
                    f"whose older lines are `{g.format.name}` (was nginx's "
                    "log_format changed to one of its own?); a dataset holds one "
                    "format: pass --nginx-conf /etc/nginx/nginx.conf (or "
                    "--log-format 'ITS log_format') to read its lines"
                )
                raise LogFormatError(msg)
    found: dict[str, FileGroup] = {}
    parts: dict[str, list[str]] = {}  # the inputs (and parts) in each format
    # each format by the first set detected as it (an empty file only takes
    # another's format: named, it sent users to the wrong file)
    for g in sorted(groups, key=lambda g: had_no_lines(g.note)):
        if g.format is not None:
            found.setdefault(g.format.name, g)
            if had_no_lines(g.note) and g.format.name in parts:
                continue  # after the sets detected as its format
            parts.setdefault(g.format.name, []).extend(_part(s, g) for s in g.sources)
    if len(found) > 1:
        more = {
            name: f" and {len(n) - 2} more" if n[2:] else ""
            for name, n in parts.items()
        }
        which = "; ".join(
            f"{', '.join(named[:2])}{more[name]}: {name}"
            for name, named in parts.items()
        )
        members = [  # an empty file (nginx's error.log) takes no part
            (s, g)
            for g in groups
            if g.format is not None and not had_no_lines(g.note)
            for s in g.sources
        ]
        if len({rotation_key(s.name)[0] for s, _ in members}) == 1:
            # one log whose log_format changed: the newest lines' format is
            # the one its next lines have
            newest = max(members, key=lambda m: _age(m[0]))[1].format
            assert newest is not None
            msg = (
                f"the log format of `{rotation_key(members[0][0].name)[0]}` changed "
                f"({which}); a dataset holds one format: pass --format {newest.name}, "
                "the format of its newest lines (lines in another are kept as rejects)"
            )
            raise LogFormatError(msg)
        msg = (
            f"the inputs have different log formats ({which}); a dataset holds one "
            "format: ingest each into its own --dataset, or pass --format NAME"
        )
        raise LogFormatError(msg)
    return next(iter(found.values())).format  # type: ignore[return-value]


def _misfit_warnings(result: IngestResult, fmt: LogFormat) -> list[str]:
    """What to say of the inputs whose last lines read this run, and at
    least `MISFITS_TOLD` of its lines, were `no_match` rejects of `fmt`, the
    dataset's format: nginx's `log_format` was changed (to another preset,
    or to a format of the administrator's own, which no preset reads), and
    without a word every line from then on would be a reject (kept, but in
    no table). Lines in another format before lines that fit (older ones,
    as the first run said) are not told of."""
    out = []
    for name, (count, sample, last) in result.misfits.items():
        if not last or count < MISFITS_TOLD:
            continue
        found, ok = detect_format(sample)
        if found.name == fmt.name:
            continue
        if ok * 2 < len(sample):
            out.append(
                f"{name}: {count:,} lines read this run fit neither this dataset's "
                f"`{fmt.name}` nor any preset (was nginx's log_format changed to one "
                f"of its own?); they are kept as rejects: ingest {name} into a "
                "--dataset of its own with --nginx-conf /etc/nginx/nginx.conf"
            )
            continue
        out.append(
            f"{name}: {count:,} lines read this run fit `{found.name}`, not this "
            f"dataset's `{fmt.name}` (was nginx's log_format changed?); they are "
            f"kept as rejects: ingest {name} into a --dataset of its own with "
            f"--format {found.name}"
        )
    return out


def _part(src: Source, group: FileGroup) -> str:
    """An input's name in a message; a part of a file cut where its
    `log_format` changed, or of a compressed one read line by line, with
    that part's lines (its detection note's end)."""
    if src.span is None and group.zone is None:
        return src.name
    note = group.notes.get(src.name, group.note) or ""
    return f"{src.name} ({note.rsplit('; ', 1)[-1]})"


def _age(src: Source) -> tuple[tuple[str, int, str], int]:
    """Sort key of a rotation set's members and parts, oldest first."""
    return rotation_key(src.name), src.span[0] if src.span is not None else 0


def _geo_databases(
    geoip: Sequence[str | os.PathLike[str]] | None,
) -> GeoDatabases | None:
    """The databases given, else those installed in the usual places, else None."""
    paths = list(geoip) if geoip is not None else default_database_paths()
    return open_databases(paths) if paths else None


def _progress(checkpoints: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a commit must record: reading progress, not when files were seen."""
    # `seen`: a finished file known again (kept, or no run would record it)
    keys = ("stream_id", "offset", "head_sha256", "status", "done", "last_path", "seen")
    return sorted(tuple(str(c.get(k)) for k in keys) for c in checkpoints)
