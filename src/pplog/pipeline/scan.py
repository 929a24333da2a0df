"""`scan_log` / `read_log`: the public road from paths to typed rows."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

from pplog.clientip import ProxyPolicy
from pplog.enrich.agents import AGENT_CLASS, BOT_CLASSES
from pplog.formats import LogFormat
from pplog.pipeline.opening import PathArg, open_log
from pplog.pipeline.spec import LogSpec
from pplog.schema import RAW, REJECT_REASON

if TYPE_CHECKING:
    from pplog.enrich.geo import GeoDatabases


def _geo(frame: pl.LazyFrame, dbs: GeoDatabases) -> pl.LazyFrame:
    """Join geo columns, looked up now for each distinct client address."""
    from pplog.enrich.geo import geo_table

    with dbs:
        ips = (
            frame.filter(pl.col("client_ip").is_not_null())
            .select("client_ip")
            .unique()
            .collect(engine="streaming")
            .get_column("client_ip")
        )
        table = geo_table(ips, dbs)
    return frame.join(table.lazy(), on="client_ip", how="left", maintain_order="left")


def scan_log(
    source: PathArg,
    format: str | LogFormat | None = "auto",  # noqa: A002
    *,
    log_format: str | None = None,
    nginx_conf: str | os.PathLike[str] | None = None,
    log_format_name: str | None = None,
    trusted: Sequence[str] | None = None,
    real_ip_header: str | None = None,
    recursive: bool | None = None,
    policy: ProxyPolicy | None = None,
    geoip: Sequence[str | os.PathLike[str]] | None = None,
    include_rejects: bool = False,
    spec: LogSpec | None = None,
) -> pl.LazyFrame:
    """Lazily read nginx (or AWS load-balancer) access logs into typed rows.

    Parameters
    ----------
    source
        A path, glob, directory or ``"-"`` (stdin), or a list of them.
        ``.gz``, ``.bz2``, ``.xz`` and ``.zst`` files are read transparently.
    format
        A preset name (``combined``, ``common``, ``main``, ``elb_log``, ``alb``,
        ``clb``), a `LogFormat`, or ``"auto"`` to pick, for each input (each
        rotation set), the preset that parses its first lines. Inputs of
        different formats give one frame with the columns of all of them
        (null where a format does not log one); an input no preset fits
        gives `unknown_format` rejects.
    log_format
        An nginx ``log_format`` string, used instead of `format`.
    nginx_conf
        An nginx configuration to take the ``log_format`` from: each input
        gets the format of the ``access_log`` that names its path, others
        the configuration's one format (or `log_format_name`).
    log_format_name
        Which ``log_format`` of `nginx_conf`; may be left out when there is one.
    trusted, real_ip_header, recursive
        nginx's ``set_real_ip_from`` ranges, ``real_ip_header`` (or ``auto``)
        and ``real_ip_recursive``; see `ProxyPolicy`. Unset values come from
        `nginx_conf`'s realip directives when given, else the defaults.
    policy
        A `ProxyPolicy`, instead of the three settings above.
    geoip
        MaxMind DB files: adds `country`, `city`, `asn` and `as_org`, looking
        each distinct client up once (this reads the input once more, to
        collect the distinct addresses).
    include_rejects
        Keep lines that did not parse, with `reject_reason` and `raw` set.
    spec
        A `LogSpec` holding all of the settings above (instead of them). Its
        filters and bot exclusion, if any, select the rows (rejected lines
        always stay with `include_rejects`).

    Returns
    -------
    polars.LazyFrame
        One row per request: raw fields named after their nginx variables,
        `time` (UTC), `method`, `path`, `query`, `protocol`, `client_ip`,
        `client_ip_source`, and `source`, `line`, `offset`.

    Raises
    ------
    PplogError
        When no input exists or the format cannot be used.

    Examples
    --------
    >>> import pplog
    >>> lf = pplog.scan_log("sample_logs/elb-access.log", format="elb_log")
    >>> lf.select("client_ip", "status").head(2).collect().columns
    ['client_ip', 'status']
    """
    spec = LogSpec.of(
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
    )
    return _rows(source, spec, include_rejects=include_rejects, collect=False)


def _rows(
    source: PathArg, spec: LogSpec, *, include_rejects: bool, collect: bool
) -> pl.LazyFrame:
    """`scan_log`'s frame; with `collect`, lazy over rows read now (`read_log`)."""
    scan = open_log(source, spec=spec, collect=collect, rejects=include_rejects)
    frame = scan.frame
    geoip = spec.geoip
    if geoip:
        from pplog.enrich.geo import open_databases

        dbs = open_databases(list(geoip))
        # the lookup table is built now, so the databases can be closed
        frame = _geo(frame, dbs)
    frame = _selected(frame, spec)
    if include_rejects:
        return frame
    return frame.filter(pl.col(REJECT_REASON).is_null()).drop(REJECT_REASON, RAW)


def _selected(frame: pl.LazyFrame, spec: LogSpec) -> pl.LazyFrame:
    """The rows a spec's filters and bot exclusion keep (rejects always stay).

    Lazily, per row: client ranges are tested on each address as nginx
    parses it, bots by the `agent_class` column.
    """
    keep = spec.filters.expr() if spec.filters else None
    names = frame.collect_schema().names()
    if spec.exclude_bots and AGENT_CLASS in names:
        human = ~pl.col(AGENT_CLASS).is_in(list(BOT_CLASSES)).fill_null(False)  # noqa: FBT003
        keep = human if keep is None else keep & human
    if keep is None:
        return frame
    return frame.filter(pl.col(REJECT_REASON).is_not_null() | keep)


def read_log(
    source: PathArg,
    format: str | LogFormat | None = "auto",  # noqa: A002
    *,
    log_format: str | None = None,
    nginx_conf: str | os.PathLike[str] | None = None,
    log_format_name: str | None = None,
    trusted: Sequence[str] | None = None,
    real_ip_header: str | None = None,
    recursive: bool | None = None,
    policy: ProxyPolicy | None = None,
    geoip: Sequence[str | os.PathLike[str]] | None = None,
    include_rejects: bool = False,
    spec: LogSpec | None = None,
) -> pl.DataFrame:
    """Read access logs into a DataFrame; the eager form of `scan_log`.

    Parameters
    ----------
    source, format, log_format, nginx_conf, log_format_name
        What to read and how it is laid out, as for `scan_log`.
    trusted, real_ip_header, recursive, policy
        Who to believe about client addresses, as for `scan_log`.
    geoip
        MaxMind DB files: adds `country`, `city`, `asn` and `as_org`.
    include_rejects
        Keep lines that did not parse, with `reject_reason` and `raw` set.
    spec
        A `LogSpec` holding all of the settings above (instead of them).

    Returns
    -------
    polars.DataFrame
        The rows of `scan_log`'s frame. They are parsed in streaming batches;
        decoding, the trust decisions and the agent classes then run once
        per column of the collected rows (memory follows the result).

    Examples
    --------
    >>> import pplog
    >>> df = pplog.read_log("sample_logs/combined-access.log", format="combined")
    >>> df.schema["status"]
    UInt16
    """
    spec = LogSpec.of(
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
    )
    return _rows(source, spec, include_rejects=include_rejects, collect=True).collect()
