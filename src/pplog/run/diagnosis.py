"""`diagnose`: access logs and error logs -> findings, for `pplog doctor`."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import polars as pl

from pplog import sources
from pplog.clientip import ProxyPolicy
from pplog.errors import OptionError
from pplog.pipeline import LogSpec, PathArg, open_log
from pplog.pipeline.detect import FileGroup, is_error_log
from pplog.run._common import warn

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
        `scan_log`, rejected lines kept), or a frame of rows from `scan_log` /
        `read_log` (best with ``include_rejects=True``, so examples show the
        logged line).
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
        Called with (input, message) for an input that cannot be read; the
        run goes on. Default: a `PplogWarning`.

    Returns
    -------
    list[Finding]
        Non-zero findings, by severity (error, warning, info), then count.

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
    rows: pl.LazyFrame | pl.DataFrame | None = None
    run_policy = spec.resolve_policy()
    found: list[Source] = []  # nginx error logs among the access logs' inputs
    if isinstance(source, pl.LazyFrame | pl.DataFrame):
        rows = source
    elif source is not None:
        groups = spec.groups(sources.expand(source), error_logs=True)  # type: ignore[arg-type]
        found = [s for g in groups if _error_log(g) for s in g.sources]
        access = [g for g in groups if not _error_log(g)]
        if access:
            scan = open_log(source, spec=spec, on_problem=handler, groups=access)
            rows, run_policy = scan.frame, scan.policy
            read = [s for g in scan.groups for s in g.sources]
            if all(s.size == 0 and not s.is_stream for s in read):
                # else "no problems found" would be all a reader sees
                names = ", ".join(s.name for s in scan.sources)
                message = "no lines to read: nothing was diagnosed from the access log"
                handler(names, message)
    entries = _error_entries(error_log, found, handler)
    share = doctor.BALANCER_SHARE if balancer_share is None else balancer_share
    return doctor.diagnose(
        rows,
        entries,
        policy=run_policy,
        balancer_share=share,
    )


def _error_log(group: FileGroup) -> bool:
    """Whether detection found `group` to be nginx error logs."""
    return group.format is None and is_error_log(group.note)


def _error_entries(
    error_log: PathArg | pl.DataFrame | Iterable[pl.DataFrame] | None,
    found: list[Source],
    handler: ProblemHandler,
) -> pl.DataFrame | Iterable[pl.DataFrame] | None:
    """The error-log entries to diagnose: those of `error_log` (paths or
    entries), then those of the inputs detection found to be error logs
    (`found`), each file once."""
    from pplog.formats.errorlog import error_log_sources, iter_error_sources

    if _are_paths(error_log):
        given = error_log_sources(error_log)  # type: ignore[arg-type]
        named = {_file(s) for s in given}
        srcs = [*given, *(s for s in found if _file(s) not in named)]
        return iter_error_sources(srcs, on_problem=handler)
    if not found:
        return error_log  # type: ignore[return-value]
    more = iter_error_sources(found, on_problem=handler)
    if error_log is None:
        return more
    first = [error_log] if isinstance(error_log, pl.DataFrame) else error_log
    return itertools.chain(first, more)  # type: ignore[arg-type]


def _file(src: Source) -> str:
    """What names `src` however it was given (relative, absolute, a link)."""
    return src.name if src.path is None else os.path.realpath(src.path)


def _are_paths(value: object) -> bool:
    """True for a path, or a non-empty list of them (not frames of entries)."""
    if isinstance(value, str | os.PathLike):
        return True
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(v, str | os.PathLike) for v in value)
    )
