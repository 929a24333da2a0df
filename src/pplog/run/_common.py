"""What the roads of `summarize` and `diagnose` share: settings, frames, checks."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import polars as pl

from pplog.clientip import ProxyPolicy
from pplog.enrich.geo import (
    HOW_TO_GET,
    GeoDatabases,
    default_database_paths,
    open_databases,
)
from pplog.errors import OptionError, SourceError
from pplog.pipeline import LogSpec, PplogWarning
from pplog.reports.mapping import MapSettings
from pplog.reports.overview import checked_ranges
from pplog.schema import CLIENT_IP, PATH, RAW, REJECT_REASON, STATUS, TIME

Frame = TypeVar("Frame", pl.LazyFrame, pl.DataFrame)


def map_settings(
    spec: LogSpec, policy: ProxyPolicy, ranks: dict[str, int], *, approx: bool = False
) -> MapSettings:
    return MapSettings(
        approx=approx,
        filters=spec.filters,
        exclude_bots=spec.exclude_bots,
        checked=checked_ranges(policy),
        keep_health_checks=bool(spec.filters.client),
        ranks=ranks,
    )


def warn(name: str, message: str) -> None:
    """Without a handler, problems with one input are Python warnings."""
    warnings.warn(f"{name}: {message}", PplogWarning, stacklevel=4)


def nothing_read(names: Sequence[str], outcome: str) -> SourceError:
    """The error when no input at all could be read (each was warned about
    as it failed): a run of nothing must not look like a clean one."""
    if len(names) == 1:
        msg = f"`{names[0]}` could not be read (see the warning above): {outcome}"
    else:
        msg = (
            f"none of the {len(names)} inputs could be read (see the warnings "
            f"above): {outcome}"
        )
    return SourceError(msg)


def as_rows(lf: Frame) -> Frame:
    """A frame from the user, in the shape the tables expect.

    `reject_reason` and `raw` are added when missing, categorical columns
    become text, and `time` becomes UTC microseconds (a naive time is taken
    as UTC).
    """
    schema = lf.collect_schema()
    if REJECT_REASON not in schema.names():
        lf = lf.with_columns(
            pl.lit(None, pl.String).alias(REJECT_REASON),
            pl.lit(None, pl.String).alias(RAW),
        )
    # categorical text (a user's frame) groups and hashes as text
    coded = [n for n, t in schema.items() if isinstance(t, pl.Categorical | pl.Enum)]
    if coded:
        lf = lf.with_columns(pl.col(coded).cast(pl.String))
    dtype = schema.get(TIME)
    if isinstance(dtype, pl.Datetime) and dtype != pl.Datetime("us", "UTC"):
        time = pl.col(TIME)
        time = (
            time.dt.replace_time_zone("UTC")
            if dtype.time_zone is None
            else time.dt.convert_time_zone("UTC")
        )
        lf = lf.with_columns(time.dt.cast_time_unit("us").alias(TIME))
    elif dtype is not None and not isinstance(dtype, pl.Datetime):
        msg = f"the frame's `time` column is {dtype}, not a datetime"
        raise OptionError(msg)
    return lf


def check_filters(spec: LogSpec, logged: list[str], *, every: bool = False) -> None:
    """Refuse filters on what the format does not log: they would match nothing.

    `every`: no input has a format (all rejects), nothing to refuse.
    """
    filters = spec.filters
    if every:
        return
    needs = (
        (
            filters.since or filters.until,
            TIME,
            "--since/--until need a time in the "
            "log format ($time_local, $time_iso8601 or $msec)",
        ),
        (filters.status, STATUS, "--status needs $status in the log format"),
        (
            filters.path,
            PATH,
            "--path needs $request, $request_uri or $uri in the log format",
        ),
        (
            filters.client,
            CLIENT_IP,
            "--client needs a client address in the log "
            "format ($remote_addr, $proxy_protocol_addr, ...)",
        ),
    )
    for wanted, column, message in needs:
        if wanted and column not in logged:
            raise OptionError(message)


def geo_databases(
    geoip: Sequence[str | os.PathLike[str]] | None,
) -> tuple[GeoDatabases | None, str]:
    """Open the given databases, or those in the usual directories; and a note."""
    paths = list(geoip) if geoip else default_database_paths()
    if not paths:
        return None, HOW_TO_GET
    dbs = open_databases(paths)
    names = ", ".join(Path(p).name for p in paths)
    return dbs, f"GeoIP: {names}"
