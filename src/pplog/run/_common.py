"""What the roads of `summarize` and `diagnose` share: settings, frames, checks."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
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
from pplog.errors import OptionError, SourceError, described
from pplog.pipeline import LogSpec, PplogWarning
from pplog.reports.breakdowns import HOST_COLUMNS
from pplog.reports.mapping import MapSettings
from pplog.reports.overview import checked_ranges
from pplog.schema import (
    BODY_BYTES_SENT,
    BYTES_SENT,
    CLIENT_IP,
    HTTP_REFERER,
    HTTP_USER_AGENT,
    PATH,
    RAW,
    REJECT_REASON,
    REQUEST_TIME,
    STATUS,
    TIME,
    UPSTREAM_RESPONSE_TIME,
)

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


def check_count(name: str, value: object, least: int, most: int = 2**31) -> int:
    """`value` as a whole number from `least` to `most`, or an `OptionError`
    naming the argument (a notebook's ``top="5"`` or ``top=2**40``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"`{name}` is a whole number, not {described(value)}"
        raise OptionError(msg)
    if not least <= value <= most:
        msg = f"`{name}` must be from {least} to {most}, not {value}"
        raise OptionError(msg)
    return value


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
    check_columns(schema)
    return lf


def check_columns(schema: pl.Schema) -> None:
    """Refuse a user's frame whose columns the tables compute with are of
    another kind than `read_log` gives (a frame read back from CSV): one
    message naming the column, not a polars error from inside a table."""
    for column, kind, fits in _KINDS:
        dtype = schema.get(column)
        if dtype is not None and dtype != pl.Null and not fits(dtype):
            msg = (
                f"the frame's `{column}` column is {dtype}, not {kind} (as "
                f"`read_log` gives it): cast it, e.g. `pl.col({column!r}).cast(...)`"
            )
            raise OptionError(msg)


def _number_or_list(dtype: pl.DataType) -> bool:
    inner = dtype.inner if isinstance(dtype, pl.List) else dtype
    return inner is not None and (inner == pl.Null or inner.is_numeric())


def _text(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)


# The columns the tables compute with, and what each must be
_KINDS: tuple[tuple[str, str, Callable[[pl.DataType], bool]], ...] = (
    (STATUS, "an integer", lambda t: t.is_integer()),
    (BODY_BYTES_SENT, "an integer", lambda t: t.is_integer()),
    (BYTES_SENT, "an integer", lambda t: t.is_integer()),
    (REQUEST_TIME, "a number", lambda t: t.is_numeric()),
    (UPSTREAM_RESPONSE_TIME, "a number or a list of them", _number_or_list),
    *((c, "text", _text) for c in (CLIENT_IP, PATH, HTTP_USER_AGENT, HTTP_REFERER)),
    *((c, "text", _text) for c in (*HOST_COLUMNS, REJECT_REASON, RAW)),
)


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
