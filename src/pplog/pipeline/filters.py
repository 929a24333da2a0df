"""Row filters applied before every table: time window, status, client, path.

`Filters` holds what the user asked for; `Filters.parse` reads the CLI's text
forms (``--since 1h``, ``--status 5xx``, ``--client 10.0.0.0/8``, ``--path
REGEX``) and `Filters.expr` turns them into one polars predicate. Rejected
lines are never filtered: they are counted whatever the filters say.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import polars as pl

from pplog._ipaddr import Network, addr_in_networks, parse_networks
from pplog._unescape import unescape
from pplog.errors import OptionError
from pplog.schema import CLIENT_IP, PATH, STATUS, TIME

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*(?:ago)?\s*$")
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
    if not isinstance(text, str) or not text.strip():
        msg = f"a time must be text such as 2026-11-27T08:00:00Z or 1h, not {text!r}"
        raise OptionError(msg)
    try:
        return _parse_time(text, now)
    except (OverflowError, ValueError):
        msg = f"the time `{text}` is out of range"
        raise OptionError(msg) from None


def _shown(when: datetime) -> str:
    """`when` as the tables show times; the year in four digits (strftime's
    ``%Y`` writes the year 1 as ``1``)."""
    return when.isoformat(sep=" ", timespec="seconds")[:19]


def _parse_time(text: str, now: datetime | None) -> datetime:
    relative = _RELATIVE.match(text)
    if relative:
        seconds = float(relative.group(1)) * _UNITS[relative.group(2)]
        return (now or datetime.now(UTC)).astimezone(UTC) - timedelta(seconds=seconds)
    value = text.strip()
    # the form pplog prints (`2026-11-20 00:01:00 UTC`) and a lowercase z
    value = re.sub(r"(?i)\s*(?:utc|z)$", "+00:00", value)
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
        msg = (
            f"--path `{pattern}` is not a valid regular expression: "
            f"{_regex_error(str(exc))}"
        )
        raise OptionError(msg) from None
    return pattern


def _regex_error(text: str) -> str:
    """What polars' regex engine says is wrong, without polars' own words.

    polars appends the expression that failed (`"".str.contains([...])`),
    which means nothing to whoever typed the pattern; the engine's reason is
    the last `error:` line of a parse error, else the first line.
    """
    text = text.split("This error occurred in the following expression")[0]
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    # the last `error:` line says what is wrong (look-around, an unclosed group)
    detail = next((x for x in reversed(lines) if x.startswith("error:")), "")
    detail = detail.removeprefix("error:").strip()
    if not detail and lines:
        detail = lines[0].removeprefix("regex error:").strip().rstrip(".")
    if "exceeds size limit" in detail:  # `a{99999999}`: compiled, it is huge
        limit = re.search(r"\d+", detail)
        size = f" of {int(limit.group()):,} bytes" if limit else ""
        detail = (
            f"it is too large once compiled (over the regex engine's limit{size}); "
            "use smaller repetition counts"
        )
    return detail or "rejected by the regex engine"


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
    client_texts: tuple[str, ...] = field(default=(), compare=False)
    # the matching distinct client addresses, once `bind` has looked
    client_set: tuple[str, ...] | None = field(default=None, compare=False)

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
            msg = f"--since ({_shown(start)}) is not before --until ({_shown(end)})"
            raise OptionError(msg)
        status_texts = _many(status, "--status")
        statuses = parse_status(status_texts)
        client_texts = _many(client, "--client")
        clients = parse_networks(client_texts)
        paths = tuple(_check_regex(p) for p in _many(path, "--path"))
        labels = []
        if start is not None:
            labels.append(f"since {_shown(start)} UTC")
        if end is not None:
            labels.append(f"until {_shown(end)} UTC")
        if statuses:
            labels.append("status " + ",".join(status_texts))
        if clients:
            labels.append("client " + ",".join(n.text for n in clients))
        if paths:
            labels.append("path ~ " + " | ".join(paths))
        return cls(
            start, end, statuses, clients, paths, tuple(labels), tuple(client_texts)
        )

    def bind(self, lf: pl.LazyFrame) -> Filters:
        """These filters with the client ranges resolved against `lf`'s clients.

        Parsing each distinct address once and filtering on the literal set
        costs one pass over the distinct clients, however many ranges.
        """
        if not self.client:
            return self
        found = (
            lf.select(pl.col(CLIENT_IP).unique())
            .collect(engine="streaming")
            .get_column(CLIENT_IP)
        )
        return replace(self, client_set=matching_clients(found, self))

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
        if self.client and self.client_set is not None:
            tests.append(
                pl.col(CLIENT_IP).is_in(
                    pl.Series(self.client_set, dtype=pl.String).implode()
                )
            )
        elif self.client:
            tests.append(addr_in_networks(pl.col(CLIENT_IP), self.client))
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


def matching_clients(addresses: pl.Series, filters: Filters) -> tuple[str, ...]:
    """Which of the distinct `addresses` the client filter selects.

    Each address is parsed once, as nginx reads it; an address written
    exactly as given (``::ffff:203.0.113.9``) matches too.
    """
    frame = pl.DataFrame({CLIENT_IP: addresses.drop_nulls().unique()})
    hit = frame.filter(
        addr_in_networks(pl.col(CLIENT_IP), filters.client)
        | pl.col(CLIENT_IP).is_in(list(filters.client_texts))
    )
    return tuple(hit.get_column(CLIENT_IP).to_list())


def _many(value: str | Sequence[str] | None, what: str = "a filter") -> list[str]:
    """The values of a filter option; an empty value is an error, not "all"."""
    if value is None:
        return []
    values = [value] if isinstance(value, str | int) else list(value)
    out = [str(v).strip() for v in values]
    if any(not v for v in out):
        msg = f"{what} got an empty value; leave the option out to keep every request"
        raise OptionError(msg)
    return out
