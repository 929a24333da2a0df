"""`diagnose`: access logs and error logs -> findings, for `pplog doctor`."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import polars as pl

from pplog.clientip import ProxyPolicy
from pplog.errors import OptionError
from pplog.pipeline import LogSpec, PathArg, open_log
from pplog.run._common import warn

if TYPE_CHECKING:
    from pplog.reports.doctor import Finding
    from pplog.sources import ProblemHandler


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
        `pplog.formats.errorlog.read_error_log`, or batches of them.
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
    if isinstance(source, pl.LazyFrame | pl.DataFrame):
        rows = source
    elif source is not None:
        scan = open_log(source, spec=spec, on_problem=handler)
        rows, run_policy = scan.frame, scan.policy
        read = [s for g in scan.groups for s in g.sources]
        if all(s.size == 0 and not s.is_stdin for s in read):
            # else "no problems found" would be all a reader sees
            names = ", ".join(s.name for s in scan.sources)
            handler(
                names, "no lines to read: nothing was diagnosed from the access log"
            )
    entries = error_log
    if _are_paths(error_log):
        from pplog.formats.errorlog import iter_error_log

        entries = iter_error_log(error_log, on_problem=handler)  # type: ignore[arg-type]
    share = doctor.BALANCER_SHARE if balancer_share is None else balancer_share
    return doctor.diagnose(
        rows,
        entries,  # type: ignore[arg-type]
        policy=run_policy,
        balancer_share=share,
    )


def _are_paths(value: object) -> bool:
    """True for a path, or a non-empty list of them (not frames of entries)."""
    if isinstance(value, str | os.PathLike):
        return True
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(v, str | os.PathLike) for v in value)
    )
