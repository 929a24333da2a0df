"""Row filters applied before every table: time window, status, client, path.

`Filters` holds what the user asked for; `Filters.parse` reads the CLI's text
forms (``--since 1h``, ``--status 5xx``, ``--client 10.0.0.0/8``, ``--path
REGEX``) and `Filters.expr` turns them into one polars predicate. Rejected
lines are never filtered: they are counted whatever the filters say.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl

from pplog._ipaddr import Network, addr_info, in_networks, parse_networks
from pplog._unescape import unescape
from pplog.errors import OptionError
from pplog.schema import CLIENT_IP, PATH, STATUS, TIME

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*(?:ago)?\s*$", re.I)
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_STATUS = re.compile(r"^([1-5])xx$|^(\d{3})$|^(\d{3})-(\d{3})$", re.I)
_TIME_FORMATS = (
    "%d/%b/%Y:%H:%M:%S %z",  # nginx $time_local
    "%d/%b/%Y:%H:%M:%S",
)


def parse_time(text: str | datetime, *, now: datetime | None = None) -> datetime:
    """A point in time from ``--since`` / ``--until`` text, in UTC.

    Accepts ISO 8601 (``2026-11-27``, ``2026-11-27T08:00``, with ``Z`` or an
    offset; without one it is UTC, like the log times pplog reports), nginx's
    ``27/Nov/2026:08:00:00 +0000``, and durations back from `now`: ``90s``,
    ``15m``, ``1h``, ``2d``, ``1w`` (``ago`` may follow).

    >>> parse_time("2026-11-27T08:00:00+01:00")
    datetime.datetime(2026, 11, 27, 7, 0, tzinfo=datetime.timezone.utc)
    >>> parse_time("2h", now=datetime(2026, 11, 27, 12, tzinfo=UTC)).hour
    10
    """
    if isinstance(text, datetime):
        return text.replace(tzinfo=UTC) if text.tzinfo is None else text.astimezone(UTC)
    relative = _RELATIVE.match(text)
    if relative:
        seconds = float(relative.group(1)) * _UNITS[relative.group(2).lower()]
        return (now or datetime.now(UTC)).astimezone(UTC) - timedelta(seconds=seconds)
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        parsed = None
    for pattern in _TIME_FORMATS:
        if parsed is not None:
            break
        try:
            parsed = datetime.strptime(value, pattern)  # noqa: DTZ007 - UTC below
        except ValueError:
            continue
    if parsed is None:
        msg = (
            f"cannot read the time `{text}`; use ISO 8601 (2026-11-27T08:00:00Z), "
            "nginx's 27/Nov/2026:08:00:00 +0000, or a duration back from now (1h, 2d)"
        )
        raise OptionError(msg)
    return (
        parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    )


def parse_status(specs: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Inclusive status ranges from ``5xx``, ``404``, ``400-499`` (comma lists too).

    >>> parse_status(["5xx", "404,429"])
    ((500, 599), (404, 404), (429, 429))
    """
    ranges: list[tuple[int, int]] = []
    for spec in specs:
        for part in spec.split(","):
            m = _STATUS.match(part.strip())
            if not m:
                msg = (
                    f"`{part.strip()}` is not a status: use a class (5xx), "
                    "a code (404) or a range (400-499)"
                )
                raise OptionError(msg)
            if m.group(1):
                low = int(m.group(1)) * 100
                ranges.append((low, low + 99))
            elif m.group(2):
                ranges.append((int(m.group(2)), int(m.group(2))))
            else:
                low, high = int(m.group(3)), int(m.group(4))
                if low > high:
                    msg = f"status range `{part.strip()}` runs backwards"
                    raise OptionError(msg)
                ranges.append((low, high))
    return tuple(ranges)


def _check_regex(pattern: str) -> str:
    try:
        pl.select(pl.lit("").str.contains(pattern)).item()
    except pl.exceptions.ComputeError as exc:
        first = str(exc).strip().splitlines()
        detail = next(
            (x.strip() for x in first if "error:" in x), first[-1] if first else ""
        )
        msg = f"--path `{pattern}` is not a valid regular expression: {detail}"
        raise OptionError(msg) from None
    return pattern


@dataclass(frozen=True)
class Filters:
    """What rows the tables look at. Empty means every row.

    Attributes
    ----------
    since, until
        The time window, ``since <= time < until`` (UTC).
    status
        Inclusive status ranges; a row matches any of them.
    client
        Client ranges (a bare address is a /32 or /128), matched against
        `client_ip` as nginx would match `set_real_ip_from`.
    path
        Regular expressions searched in the decoded `path` (any matches).
    """

    since: datetime | None = None
    until: datetime | None = None
    status: tuple[tuple[int, int], ...] = ()
    client: tuple[Network, ...] = ()
    path: tuple[str, ...] = ()
    labels: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def parse(
        cls,
        *,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        status: str | Sequence[str] | None = None,
        client: str | Sequence[str] | None = None,
        path: str | Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> Filters:
        """Filters from the text forms the CLI and `summarize` take."""
        now = now or datetime.now(UTC)
        start = parse_time(since, now=now) if since is not None else None
        end = parse_time(until, now=now) if until is not None else None
        if start is not None and end is not None and start >= end:
            msg = (
                f"--since ({start:%Y-%m-%d %H:%M:%S}) is not before "
                f"--until ({end:%Y-%m-%d %H:%M:%S})"
            )
            raise OptionError(msg)
        statuses = parse_status(_many(status))
        clients = parse_networks(_many(client))
        paths = tuple(_check_regex(p) for p in _many(path))
        labels = []
        if start is not None:
            labels.append(f"since {start:%Y-%m-%d %H:%M:%S} UTC")
        if end is not None:
            labels.append(f"until {end:%Y-%m-%d %H:%M:%S} UTC")
        if statuses:
            labels.append("status " + ",".join(_many(status)))
        if clients:
            labels.append("client " + ",".join(n.text for n in clients))
        if paths:
            labels.append("path ~ " + " | ".join(paths))
        return cls(start, end, statuses, clients, paths, tuple(labels))

    def __bool__(self) -> bool:
        return bool(self.since or self.until or self.status or self.client or self.path)

    def expr(self, escape: str = "default") -> pl.Expr:
        """One predicate over the rows; `escape` is how the path is written."""
        tests: list[pl.Expr] = []
        if self.since is not None:
            tests.append(pl.col(TIME) >= self.since)
        if self.until is not None:
            tests.append(pl.col(TIME) < self.until)
        if self.status:
            status = pl.col(STATUS)
            tests.append(
                pl.any_horizontal([status.is_between(lo, hi) for lo, hi in self.status])
            )
        if self.client:
            tests.append(in_networks(addr_info(pl.col(CLIENT_IP)), self.client))
        if self.path:
            path = pl.col(PATH)
            # only values with an escape need decoding before the search
            text = (
                pl.when(path.str.contains("\\", literal=True))
                .then(unescape(path, escape))
                .otherwise(path)
            )
            tests.append(pl.any_horizontal([text.str.contains(p) for p in self.path]))
        if not tests:
            return pl.lit(True)  # noqa: FBT003
        return pl.all_horizontal(tests).fill_null(False)  # noqa: FBT003


def _many(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [v for v in value if v]
