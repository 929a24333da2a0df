"""`diagnose`: access logs and error logs -> findings, for `pplog doctor`."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from pplog import sources, tasks
from pplog.clientip import ProxyPolicy
from pplog.errors import OptionError, described
from pplog.pipeline import LogSpec, PathArg, open_log
from pplog.pipeline.detect import is_error_log
from pplog.pipeline.spec import FileGroup
from pplog.run._common import check_columns, nothing_read, warn
from pplog.run.dataset import dataset_dir, dataset_spec
from pplog.schema import RAW

if TYPE_CHECKING:
    from pplog.reports.doctor import Finding
    from pplog.sources import ProblemHandler, Source


def diagnose(
    source: PathArg | pl.LazyFrame | pl.DataFrame | None = None,
    error_log: PathArg | pl.DataFrame | Iterable[pl.DataFrame] | None = None,
    *,
    spec: LogSpec | None = None,
    policy: ProxyPolicy | None = None,
    balancer_share: float | None = None,
    on_problem: ProblemHandler | None = None,
    **keywords: Any,  # noqa: ANN401 - the format and real-IP keywords of `scan_log`
) -> list[Finding]:
    """Findings about the load-balancer / PROXY-protocol setup behind these logs.

    Parameters
    ----------
    source
        Access logs: paths, globs, directories or ``"-"`` (read as for
        `scan_log`, rejected lines kept), a dataset directory written by
        `pplog ingest` (its rows and rejects), or a frame of rows from
        `scan_log` / `read_log` (best with ``include_rejects=True``, so
        examples show the logged line).
    error_log
        nginx error logs: paths (read in batches), a frame from
        `pplog.formats.errorlog.read_error_log`, or batches of them. Inputs
        of `source` that detection finds to be nginx error logs (in a
        directory such as ``/var/log/nginx/``) are read as error logs too.
    spec
        A `LogSpec` with the format and real-IP settings; or the keywords of
        `scan_log` (``format``, ``log_format``, ``nginx_conf``, ``trusted``,
        ...), not both. Its filters must be empty: every line is diagnosed.
    policy
        The proxy policy (as for `scan_log`); its trusted ranges decide
        ``balancer-addresses-as-clients``. For paths, the policy each input
        was read with.
    balancer_share
        Least share of parsed rows attributed to trusted addresses for
        ``balancer-addresses-as-clients`` to be reported (default 0.5).
    on_problem
        Called with (input, message) for an input that cannot be read, once
        per problem and input; the run goes on. Default: a `PplogWarning`.

    Returns
    -------
    list[Finding]
        Non-zero findings, by severity (error, warning, info), then count.

    Raises
    ------
    SourceError
        When no input given by path could be read at all (each was reported
        through `on_problem`): nothing was diagnosed.

    Examples
    --------
    >>> import pplog
    >>> found = pplog.diagnose("sample_logs/elb-access.log", format="elb_log")
    >>> "tls-on-plain-listener" in [f.code for f in found]
    True
    """
    from pplog.reports import doctor

    spec = LogSpec.of(spec, policy=policy, **keywords)
    if spec.filters or spec.exclude_bots:
        msg = "`diagnose` reads every line: drop the filters (`since`, `status`, ...)"
        raise OptionError(msg)
    handler = on_problem or warn
    said: dict[str, set[str]] = {}  # input -> the problems reported

    def problem(name: str, message: str) -> None:
        # a file read as an access log and as an error log is one bad file
        told = said.setdefault(name, set())
        if message not in told:
            told.add(message)
            handler(name, message)

    rows: pl.LazyFrame | pl.DataFrame | None = None
    run_policy = spec.resolve_policy()
    found: list[Source] = []  # nginx error logs among the access logs' inputs
    access_names: list[str] = []  # the access logs read from paths
    dataset = None
    if isinstance(source, pl.LazyFrame | pl.DataFrame):
        check_columns(source.collect_schema())
        rows = source
    elif (dataset := dataset_dir(source)) is not None:
        try:
            rows = _dataset_rows(dataset, spec)
            # balancers are told by the trust the rows were read with
            run_policy = dataset_spec(dataset, spec).resolve_policy()
        except pl.exceptions.ComputeError as exc:
            from pplog.run.dataset import name_damaged

            name_damaged(dataset, exc)  # a damaged file of the dataset, named
            raise
    elif source is not None:
        groups = spec.groups(sources.expand(source), error_logs=True)  # type: ignore[arg-type]
        found = [s for g in groups if _error_log(g) for s in g.sources]
        access = [g for g in groups if not _error_log(g)]
        if access:
            # its rows are streamed into the diagnosis' spool: the C road, for
            # plain files as `summarize` takes it (past `IN_MEMORY_BYTES`: many
            # small files are faster on polars' reader) and for what the
            # Python reader reads
            size = sum(s.size for g in access for s in g.sources)
            scan = open_log(
                source,
                spec=spec,
                on_problem=problem,
                groups=access,
                split=size > tasks.IN_MEMORY_BYTES,
                blocks=True,
            )
            rows, run_policy = scan.frame, scan.policy
            access_names = [s.name for g in scan.groups for s in g.sources]
    entries, error_names = _error_entries(error_log, found, problem)
    share = doctor.BALANCER_SHARE if balancer_share is None else balancer_share
    try:
        result = doctor.diagnosis(
            rows, entries, policy=run_policy, balancer_share=share
        )
    except pl.exceptions.ComputeError as exc:
        if dataset is None:
            raise
        from pplog.run.dataset import name_damaged

        name_damaged(dataset, exc)  # a damaged file of the dataset, named
        raise
    if result.lines == 0 and result.entries == 0:
        named = [*access_names, *error_names]
        frames = rows is not None and not access_names  # a frame or a dataset
        frames |= error_log is not None and not _are_paths(error_log)
        if named and not frames and all(name in said for name in named):
            raise nothing_read(named, "nothing was diagnosed")
    if result.lines == 0:
        # else "no problems found" would be all a reader sees; an input that
        # could not be read was said to be so already
        quiet = [name for name in access_names if name not in said]
        if dataset is not None and result.entries == 0:
            quiet.append(str(dataset))
        if quiet:
            message = "no lines to read: nothing was diagnosed from the access log"
            handler(", ".join(quiet), message)
    # an access log given as --error-log has no `[error]` entries: without a
    # word, "no problems found" would be all a reader sees
    for name, (read, text) in result.error_files.items():
        if not read and text and name not in said:
            message = (
                "no nginx error-log entries (`YYYY/MM/DD hh:mm:ss [level] ...`): "
                "nothing was diagnosed from it; an access log is given as PATH"
            )
            handler(name, message)
    return result.findings


def _dataset_rows(dataset: Path, spec: LogSpec) -> pl.LazyFrame:
    """The rows and rejects of a dataset written by `pplog ingest`."""
    from pplog.batch.dataset import scan_dataset

    if spec.reads_options:
        msg = (
            f"`{dataset}` is a dataset: its format and client attribution were "
            "fixed by `pplog ingest`; drop the format and real-IP options (or "
            "diagnose the logs themselves)"
        )
        raise OptionError(msg)
    # parsed rows keep no raw text there: examples show what a row holds of
    # its line (findings count parsed rows only; the rejects tell the lines)
    return scan_dataset(dataset, include_rejects=True).drop(RAW, strict=False)


def _error_log(group: FileGroup) -> bool:
    """Whether detection found `group` to be nginx error logs."""
    return group.format is None and is_error_log(group.note)


def _error_entries(
    error_log: PathArg | pl.DataFrame | Iterable[pl.DataFrame] | None,
    found: list[Source],
    handler: ProblemHandler,
) -> tuple[pl.DataFrame | Iterable[pl.DataFrame] | None, list[str]]:
    """The error-log entries to diagnose: those of `error_log` (paths or
    entries), then those of the inputs detection found to be error logs
    (`found`), each file once; and the names of the files they come from."""
    from pplog.formats.errorlog import error_log_sources, iter_error_sources

    if not _are_paths(error_log) and not isinstance(
        error_log, pl.DataFrame | Iterable | None
    ):
        msg = (
            "`error_log` takes paths, a frame from `read_error_log` or batches "
            f"of them, not {described(error_log)}"
        )
        raise OptionError(msg)
    if _are_paths(error_log):
        given = error_log_sources(error_log)  # type: ignore[arg-type]
        named = {_file(s) for s in given}
        srcs = [*given, *(s for s in found if _file(s) not in named)]
        return iter_error_sources(srcs, on_problem=handler), [s.name for s in srcs]
    names = [s.name for s in found]
    if not found:
        return error_log, names  # type: ignore[return-value]
    more = iter_error_sources(found, on_problem=handler)
    if error_log is None:
        return more, names
    first = [error_log] if isinstance(error_log, pl.DataFrame) else error_log
    return itertools.chain(first, more), names  # type: ignore[arg-type]


def _file(src: Source) -> str:
    """What names `src` however it was given (relative, absolute, a link)."""
    return src.name if src.path is None else os.path.realpath(src.path)


def _are_paths(value: object) -> bool:
    """True for a path, or a non-empty list of them (not frames of entries)."""
    if isinstance(value, str | bytes | os.PathLike):
        return True
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(v, str | bytes | os.PathLike) for v in value)
    )
