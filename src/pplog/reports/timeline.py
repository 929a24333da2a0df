"""Timeline: requests, errors and bytes per interval, gaps filled with zeros."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import polars as pl

from pplog.errors import OptionError
from pplog.schema import TIME, TIME_DTYPE

COLUMNS = ("time", "requests", "errors_4xx", "errors_5xx", "bytes")

# Candidate intervals, smallest first, as polars durations.
INTERVALS = (
    *("1s", "10s", "30s", "1m", "5m", "15m", "1h", "6h", "1d", "1w"),
    *("1mo", "3mo", "1y", "10y", "100y"),
)
TARGET_POINTS = 120  # the automatic choice keeps at most this many points
MAX_POINTS = 100_000  # a user-chosen interval may not make more than this

_DURATION = re.compile(r"^(\d{1,15})(mo|s|m|h|d|w|y)$")
_SECONDS = {
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "mo": 30 * 86400,  # calendar months in polars; 30 days for counting points
    "y": 365 * 86400,
}
# Times span years 1 to 9999: a longer interval is one point, and polars
# cannot step a date that far (10000000y overflowed its calendar).
_LONGEST = 10_000 * _SECONDS["y"]


def interval_seconds(interval: str) -> int:
    """``5m`` -> 300. Raises OptionError for anything else.

    >>> interval_seconds("15m")
    900
    """
    if not isinstance(interval, str):
        msg = f"--interval must be a duration like 5m or 1h, not {interval!r}"
        raise OptionError(msg)
    m = _DURATION.match(interval.strip())
    if not m or int(m.group(1)) == 0:
        msg = (
            f"--interval `{interval}` is not a duration like 30s, 5m, 1h, 1d, 1w, "
            "1mo or 1y"
        )
        raise OptionError(msg)
    seconds = int(m.group(1)) * _SECONDS[m.group(2)]
    if seconds > _LONGEST:
        msg = f"--interval `{interval}` is longer than 10000y; use a shorter one"
        raise OptionError(msg)
    return seconds


def choose_interval(
    first: datetime | None, last: datetime | None, interval: str | None = None
) -> str:
    """The interval for a time span: `interval` if given, else the smallest of
    `INTERVALS` that gives at most `TARGET_POINTS` points.

    >>> from datetime import datetime
    >>> choose_interval(datetime(2026, 1, 1), datetime(2026, 1, 1, 23))
    '15m'
    """
    span = (last - first).total_seconds() if first and last else 0.0
    if interval is not None:
        step = interval_seconds(interval)
        if span / step > MAX_POINTS:
            msg = (
                f"--interval {interval} makes {int(span / step):,} points over "
                f"{timedelta(seconds=int(span))}; use a longer one"
            )
            raise OptionError(msg)
        return interval.strip()
    for candidate in INTERVALS:
        if span / interval_seconds(candidate) <= TARGET_POINTS:
            return candidate
    return INTERVALS[-1]


def rebucketed(seconds: pl.DataFrame, interval: str) -> pl.DataFrame:
    """Requests, 4xx, 5xx and bytes per `interval` from one-second buckets.

    Intervals start on round boundaries (UTC), which are whole seconds, so
    re-bucketing the seconds equals bucketing each request. Intervals
    without requests between the first and the last are present with zeros,
    so a chart shows an outage as a gap to zero rather than skipping it.
    """
    table = seconds.group_by(floor_to(interval).alias(TIME)).agg(
        pl.col("requests", "errors_4xx", "errors_5xx", "bytes").sum()
    )
    return fill_gaps(table, interval)


_EARLIEST = datetime(1, 1, 1, tzinfo=UTC)


def floor_to(interval: str) -> pl.Expr:
    """`time` truncated to `interval`, never before year 1 (Python's first)."""
    return pl.max_horizontal(
        pl.col(TIME).dt.truncate(interval), pl.lit(_EARLIEST, TIME_DTYPE)
    )


def fill_gaps(table: pl.DataFrame, interval: str) -> pl.DataFrame:
    """Add the empty intervals between the first and last as zero rows."""
    if table.height == 0:
        return table.select(COLUMNS)
    # built in polars: a grid of year-1 dates must not pass through Python
    grid = table.select(
        pl.datetime_range(
            pl.col(TIME).min(), pl.col(TIME).max(), interval, time_zone="UTC"
        ).alias(TIME)
    ).with_columns(pl.col(TIME).cast(TIME_DTYPE))
    # a full join keeps every counted interval even where the grid is off
    # its boundaries (a first interval clamped to year 1)
    return (
        grid.join(table, on=TIME, how="full", coalesce=True)
        .with_columns(pl.col(c).fill_null(0) for c in COLUMNS[1:])
        .sort(TIME)
        .select(COLUMNS)
    )
