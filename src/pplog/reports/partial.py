"""`Partial`: exact, mergeable aggregates of a set of rows.

`partial_of(rows)` maps rows (one file, one byte range of a file, one batch
of a dataset) to small frames at the finest grain each table needs; `merge`
combines any number of partials by concatenation plus sums, minimums and
maximums; `pplog.reports.finish` turns one partial into the tables. Merging
is associative and commutative, so any split of the input, merged in any
order, gives the tables of one pass over all of it:

- `totals`: the overview's sums, one row;
- `clients`: per (client, user agent, visitor) requests, bytes, errors and
  first/last times (visitor: not a health check), which also gives the
  user-agent tables and each client's top user agent;
- `pairs`: the distinct (client, path, visitor) triples, for exact "paths
  per client" and "clients per path", as 64-bit hashes of the texts
  (`text_hash`: 17 bytes a pair, and merging compares integers);
- `paths`, `status`, `referrers`, `hosts`, `lb`: counts per key;
- `errors`: per (status, path, client) for status >= 400, for the errors
  table with exact distinct and top clients;
- `latency`: per (measure, path, value) request counts (nginx logs times
  in milliseconds), for exact nearest-rank percentiles;
- `timeline`: per one-second bucket, re-bucketed by `finish`;
- `rejects` per reason and `samples`, the first rejected lines by
  (input rank, line);
- `logged`: which optional columns the format logs (the tables they feed
  exist only then); `problems`: inputs that could not be read whole.

Keys are decoded text (a path as the client sent it), whatever escaping
the log used, so partials of different formats merge. Every frame is a
plain DataFrame: a partial pickles and can be written as Parquet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pplog._ipaddr import Network
from pplog._unescape import unescape
from pplog.clientip import FORWARDED_BY_UNTRUSTED
from pplog.pipeline.filters import Filters
from pplog.reports import lb as lb_report
from pplog.reports import sketches
from pplog.reports._columns import bytes_column
from pplog.reports.breakdowns import host_column
from pplog.reports.enriched import agent_classes, bot_rows, health_checks
from pplog.reports.overview import STATUS_CLASSES
from pplog.reports.paths import latency_columns, seconds
from pplog.schema import (
    CLIENT_IP,
    HTTP_REFERER,
    HTTP_USER_AGENT,
    LINE,
    PATH,
    RAW,
    REJECT_REASON,
    SOURCE,
    STATUS,
    TIME,
)

REJECT_SAMPLES = 5
VISITOR = "visitor"  # not a health check (`enriched.health_checks`)
RANK = "rank"  # the input's position among the run's inputs
MEASURE, VALUE, COUNT = "measure", "value", "n"
CLIENT_HASH, PATH_HASH = "client_hash", "path_hash"
_HASH_SEED = 0x70706C6F67  # fixed: partials made apart must agree


def text_hash(expr: pl.Expr) -> pl.Expr:
    """A 64-bit hash of a text, null for null: how `pairs` names clients and paths.

    polars keeps its hash stable within one version; `Partial.version`
    records it, and partials of different versions are not merged.
    """
    return pl.when(expr.is_not_null()).then(expr.hash(seed=_HASH_SEED))


_COUNTS = pl.UInt64

# Each frame's key columns; every other column is summed, except
# `first_time` (min) and `last_time` (max).
KEYS: dict[str, tuple[str, ...]] = {
    "totals": (),
    "clients": (CLIENT_IP, HTTP_USER_AGENT, VISITOR),
    "pairs": ("client_hash", "path_hash", VISITOR),
    "paths": (PATH,),
    "latency": (MEASURE, PATH, VALUE),
    "errors": (STATUS, PATH, CLIENT_IP),
    "timeline": (TIME,),
    "status": (STATUS,),
    "referrers": (HTTP_REFERER,),
    "hosts": ("host",),
    "lb": ("peer",),
    "rejects": (REJECT_REASON,),
    "logged": ("name",),
    "version": ("polars",),
    # with `approx`: sketches instead of `pairs` and `latency`
    "hll_clients": (CLIENT_IP, "_reg"),
    "hll_paths": (PATH, "_reg"),
    "dd_latency": (MEASURE, PATH, "_bucket"),
    "latency_max": (MEASURE, PATH),
}
# Columns merged by their maximum (every other value column is summed, but
# `first_time`, the minimum).
_MAXIMA = ("last_time", "_rank", "max")
# Frames merged otherwise: the first samples, and the problems in order.
SAMPLE_KEYS = (RANK, LINE)
# Key columns holding text from the log (nginx-escaped until decoded).
_TEXT_KEYS = (PATH, HTTP_USER_AGENT, HTTP_REFERER, "host")


@dataclass(frozen=True)
class MapSettings:
    """What `partial_of` needs beyond the rows.

    `escape` is how free text in the rows is written (``none`` when the rows
    are decoded); `ranks` gives each input's position (for the first
    rejected lines); `checked` are the ranges whose health-checker requests
    are not visitors; `keep_health_checks` counts them as visitors (a
    client drilldown hides nothing it asked for).
    """

    escape: str = "none"
    filters: Filters = field(default_factory=Filters)
    exclude_bots: bool = False
    checked: tuple[Network, ...] = ()
    keep_health_checks: bool = False
    ranks: Mapping[str, int] = field(default_factory=dict)
    approx: bool = False


@dataclass
class Partial:
    """Mergeable aggregates of some rows: frames by name (see the module)."""

    frames: dict[str, pl.DataFrame]

    def __getitem__(self, name: str) -> pl.DataFrame:
        return self.frames[name]

    def get(self, name: str) -> pl.DataFrame | None:
        """The frame `name`, or None when the rows did not log what it needs."""
        return self.frames.get(name)

    @property
    def logged(self) -> frozenset[str]:
        """The optional columns the rows' formats log (`user_agent`, ...)."""
        return frozenset(self.frames["logged"].get_column("name").to_list())

    @property
    def lines(self) -> int:
        """Lines read (requests and rejects)."""
        return int(self.frames["totals"].item(0, "lines") or 0)

    def problems(self, *, warnings: bool = False) -> list[tuple[str, str]]:
        """(input, message) for each input that could not be read whole; with
        `warnings`, every message the reading gave, in order."""
        frame = self.frames["problems"].sort(RANK, "seq")
        if not warnings:
            frame = frame.filter(pl.col("unreadable"))
        return list(
            zip(frame[SOURCE].to_list(), frame["message"].to_list(), strict=True)
        )

    @property
    def versions(self) -> frozenset[str]:
        """The polars versions the partial was made with (hashes agree within one)."""
        return frozenset(self.frames["version"].get_column("polars").to_list())

    def write(self, directory: str | Path) -> None:
        """Write every frame as `<name>.parquet` in `directory` (created)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for name, frame in self.frames.items():
            frame.write_parquet(path / f"{name}.parquet", statistics=False)

    @classmethod
    def read(cls, directory: str | Path) -> Partial:
        """A partial written by `write`."""
        path = Path(directory)
        return cls({f.stem: pl.read_parquet(f) for f in sorted(path.glob("*.parquet"))})


def _aggregations(
    frame: pl.DataFrame | pl.LazyFrame, keys: Sequence[str]
) -> list[pl.Expr]:
    out = []
    for name in frame.collect_schema().names():
        if name in keys:
            continue
        if name == "first_time":
            out.append(pl.col(name).min())
        elif name in _MAXIMA:
            out.append(pl.col(name).max())
        else:
            out.append(pl.col(name).sum())
    return out


def _combine(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """One row per key: the frame's own merge."""
    if not keys:
        return frame.select(_aggregations(frame, keys))
    aggs = _aggregations(frame, keys)
    if not aggs:
        return frame.unique(subset=list(keys))
    return frame.group_by(list(keys)).agg(aggs)


def merge(partials: Iterable[Partial]) -> Partial:
    """One partial for all of `partials`: concatenation plus sums, mins, maxes.

    Associative and commutative; a frame some partials lack (a format that
    does not log referrers) is merged from those that have it.
    """
    parts = list(partials)
    if len(parts) == 1:
        return parts[0]
    if not parts:
        msg = "merge needs at least one partial"
        raise ValueError(msg)
    names = {n: None for p in parts for n in p.frames}  # first seen order
    out: dict[str, pl.DataFrame] = {}
    for name in names:
        frames = [p.frames[name] for p in parts if name in p.frames]
        frame = pl.concat(frames, how="diagonal_relaxed")
        if name == "samples":
            out[name] = frame.sort(SAMPLE_KEYS, nulls_last=True).head(REJECT_SAMPLES)
        elif name == "problems":
            out[name] = frame.sort(RANK, "seq")
        else:
            out[name] = _combine(frame, KEYS[name])
    return Partial(out)


def _collect(lf: pl.LazyFrame) -> pl.DataFrame:
    return lf.collect(engine="streaming")


def _status_counts(columns: list[str]) -> list[pl.Expr]:
    status = pl.col(STATUS)
    return [
        pl.len().cast(_COUNTS).alias("requests"),
        bytes_column(columns).sum().cast(_COUNTS).alias("bytes"),
        ((status >= 400) & (status < 500)).sum().cast(_COUNTS).alias("errors_4xx"),
        (status >= 500).sum().cast(_COUNTS).alias("errors_5xx"),
    ]


def partial_of(
    rows: pl.LazyFrame,
    settings: MapSettings | None = None,
    *,
    problems: Sequence[tuple[str, str, bool]] = (),
) -> Partial:
    """Map attributed rows (with `reject_reason` and `raw`) to a `Partial`.

    `rows` should be cheap to read more than once (a spooled file or a
    DataFrame): each frame is its own streaming query, so peak memory is the
    largest frame's state, not the sum of them.
    """
    settings = settings or MapSettings()
    columns = rows.collect_schema().names()
    escape = settings.escape
    rejected = pl.col(REJECT_REASON).is_not_null()
    classes = agent_classes(rows)
    matches = settings.filters.bind(rows).expr(escape) if settings.filters else None
    keep = matches
    if settings.exclude_bots:
        bots = ~bot_rows(classes)
        keep = bots if keep is None else keep & bots
    selected = rows if keep is None else rows.filter(rejected | keep)
    ok = selected.filter(~rejected)
    if settings.keep_health_checks:
        visitor: pl.Expr = pl.lit(True)  # noqa: FBT003
        health = 0
    else:
        checks, health = health_checks(ok, classes, settings.checked)
        visitor = ~checks
    frames: dict[str, pl.DataFrame] = {}
    small: dict[str, pl.LazyFrame] = {}
    frames["totals"] = _totals(rows, selected, matches, columns).with_columns(
        pl.lit(health, _COUNTS).alias("health_checks")
    )
    status = pl.col(STATUS)
    ua = (
        []
        if HTTP_USER_AGENT in columns
        else [pl.lit(None, pl.String).alias(HTTP_USER_AGENT)]
    )
    tagged = ok.with_columns(*ua, visitor.alias(VISITOR))
    # grouped on the spool's categorical user agents, cast once per group
    frames["clients"] = _collect(
        tagged.group_by(CLIENT_IP, HTTP_USER_AGENT, VISITOR)
        .agg(
            *_status_counts(columns),
            pl.col(TIME).min().alias("first_time"),
            pl.col(TIME).max().alias("last_time"),
        )
        .with_columns(pl.col(HTTP_USER_AGENT).cast(pl.String))
    )
    if settings.approx:
        visits = tagged.filter(pl.col(VISITOR))
        frames["hll_clients"] = _collect(sketches.hll_state(visits, [CLIENT_IP], PATH))
        frames["hll_paths"] = _collect(sketches.hll_state(ok, [PATH], CLIENT_IP))
    else:
        frames["pairs"] = _collect(
            tagged.select(
                text_hash(pl.col(CLIENT_IP)).alias(CLIENT_HASH),
                text_hash(pl.col(PATH)).alias(PATH_HASH),
                VISITOR,
            ).unique()
        )
    small["paths"] = ok.group_by(PATH).agg(
        pl.len().cast(_COUNTS).alias("requests"),
        bytes_column(columns).sum().cast(_COUNTS).alias("bytes"),
        ((status >= 200) & (status < 400)).sum().cast(_COUNTS).alias("ok_2xx_3xx"),
        ((status >= 400) & (status < 500)).sum().cast(_COUNTS).alias("errors_4xx"),
        (status >= 500).sum().cast(_COUNTS).alias("errors_5xx"),
    )
    if settings.approx:
        small.update(_sketched_latency(ok, rows.collect_schema()))
    else:
        small["latency"] = _latency(ok, rows.collect_schema())
    small["errors"] = (
        ok.filter(status >= 400)
        .group_by(STATUS, PATH, CLIENT_IP)
        .agg(
            pl.len().cast(_COUNTS).alias("requests"),
            pl.col(TIME).min().alias("first_time"),
            pl.col(TIME).max().alias("last_time"),
        )
    )
    second = pl.col(TIME).dt.truncate("1s")
    small["timeline"] = (
        ok.filter(pl.col(TIME).is_not_null())
        .group_by(second.alias(TIME))
        .agg(
            pl.len().cast(_COUNTS).alias("requests"),
            ((status >= 400) & (status < 500)).sum().cast(_COUNTS).alias("errors_4xx"),
            (status >= 500).sum().cast(_COUNTS).alias("errors_5xx"),
            bytes_column(columns).sum().cast(_COUNTS).alias("bytes"),
        )
    )
    small["status"] = ok.group_by(STATUS).agg(pl.len().cast(_COUNTS).alias("requests"))
    logged = [HTTP_USER_AGENT] if HTTP_USER_AGENT in columns else []
    if HTTP_REFERER in columns:
        logged.append(HTTP_REFERER)
        ref = pl.col(HTTP_REFERER).cast(pl.String)
        small["referrers"] = (
            ok.filter(ref.is_not_null() & (ref != ""))
            .group_by(ref.alias(HTTP_REFERER))
            .agg(
                pl.len().cast(_COUNTS).alias("requests"),
                bytes_column(columns).sum().cast(_COUNTS).alias("bytes"),
            )
        )
    # hosts and balancers are counted whether or not this format logs them:
    # merged with a format that does, its rows are the null host and direct
    # peers, as in one frame of both formats' rows
    host = host_column(columns)
    if host is not None:
        logged.append("host")
    host_key = pl.col(host) if host is not None else pl.lit(None, pl.String)
    small["hosts"] = ok.group_by(host_key.alias("host")).agg(*_status_counts(columns))
    if lb_report.applies(columns):
        logged.append("lb")
    small["lb"] = lb_report.lb(ok, top=0)
    logged.extend(latency_columns(columns))
    frames["logged"] = pl.DataFrame({"name": logged}, schema={"name": pl.String})
    small["rejects"] = (
        rows.filter(rejected)
        .group_by(REJECT_REASON)
        .agg(pl.len().cast(_COUNTS).alias("lines"))
    )
    # the small aggregations share one read of the rows
    frames.update(
        zip(
            small, pl.collect_all(list(small.values()), engine="streaming"), strict=True
        )
    )
    frames["samples"] = _samples(rows, settings.ranks)
    frames["problems"] = pl.DataFrame(
        {
            RANK: [settings.ranks.get(p[0], len(settings.ranks)) for p in problems],
            "seq": list(range(len(problems))),
            SOURCE: [p[0] for p in problems],
            "message": [p[1] for p in problems],
            "unreadable": [p[2] for p in problems],
        },
        schema={
            RANK: pl.UInt32,
            "seq": pl.UInt32,
            SOURCE: pl.String,
            "message": pl.String,
            "unreadable": pl.Boolean,
        },
    )
    frames["version"] = pl.DataFrame({"polars": [pl.__version__]})
    if escape != "none":
        if "pairs" in frames:
            frames["pairs"] = _decoded_pairs(frames["pairs"], frames["paths"], escape)
        frames = {name: _decoded(name, frame, escape) for name, frame in frames.items()}
    return Partial(frames)


def _totals(
    rows: pl.LazyFrame,
    selected: pl.LazyFrame,
    matches: pl.Expr | None,
    columns: list[str],
) -> pl.DataFrame:
    """The overview's sums over the selected lines, and what the filters left out."""
    ok = pl.col(REJECT_REASON).is_null()
    status = pl.col(STATUS)
    time = pl.col(TIME)

    def count(condition: pl.Expr) -> pl.Expr:
        return (condition & ok).fill_null(False).sum().cast(_COUNTS)  # noqa: FBT003

    exprs = [
        pl.len().cast(_COUNTS).alias("lines"),
        ok.sum().cast(_COUNTS).alias("requests"),
        (~ok).sum().cast(_COUNTS).alias("rejected"),
        # when/then, not filter: a filter inside select holds the whole column
        pl.when(ok).then(bytes_column(columns)).sum().cast(_COUNTS).alias("bytes"),
        pl.when(ok).then(time).min().alias("first_time"),
        pl.when(ok).then(time).max().alias("last_time"),
        count(pl.col(CLIENT_IP).is_null()).alias("without_client_address"),
        (
            count(pl.col(FORWARDED_BY_UNTRUSTED))
            if FORWARDED_BY_UNTRUSTED in columns
            else pl.lit(0, _COUNTS)
        ).alias("forwarded_by_untrusted"),
    ]
    for i, name in enumerate(STATUS_CLASSES, start=1):
        in_class = (status >= i * 100) & (status < (i + 1) * 100)
        exprs.append(count(in_class).alias(f"status_{name}"))
    other = status.is_null() | (status < 100) | (status >= 600)
    exprs.append(count(other).alias("status_other"))
    totals = _collect(selected.select(exprs))
    # requests before the filters, and those the filters kept (before bots)
    parsed = rows.filter(ok)
    left = [
        pl.len().cast(_COUNTS).alias("parsed"),
        (pl.len() if matches is None else matches.sum())
        .cast(_COUNTS)
        .alias("matching"),
    ]
    return pl.concat([totals, _collect(parsed.select(left))], how="horizontal")


def _latency(ok: pl.LazyFrame, schema: pl.Schema) -> pl.LazyFrame:
    """Requests per (measure, path, value in seconds) for each logged latency."""
    frames = []
    for column in latency_columns(schema.names()):
        value = seconds(column, schema[column]).cast(pl.Float64).alias(VALUE)
        frames.append(
            ok.select(PATH, value)
            .filter(pl.col(VALUE).is_not_null())
            .group_by(PATH, VALUE)
            .agg(pl.len().cast(_COUNTS).alias(COUNT))
            .select(pl.lit(column).alias(MEASURE), PATH, VALUE, COUNT)
        )
    if not frames:
        return pl.LazyFrame(
            schema={
                MEASURE: pl.String,
                PATH: pl.String,
                VALUE: pl.Float64,
                COUNT: _COUNTS,
            }
        )
    return pl.concat(frames)


def _sketched_latency(ok: pl.LazyFrame, schema: pl.Schema) -> dict[str, pl.LazyFrame]:
    """DDSketch buckets per (measure, path), and the exact maximum."""
    states, maxima = [], []
    for column in latency_columns(schema.names()):
        values = ok.select(
            PATH, seconds(column, schema[column]).cast(pl.Float64).alias(VALUE)
        ).filter(pl.col(VALUE).is_not_null())
        measure = pl.lit(column).alias(MEASURE)
        state = sketches.dd_state(values, [PATH], VALUE)
        states.append(state.select(measure, PATH, "_bucket", "_count"))
        top = values.group_by(PATH).agg(pl.col(VALUE).max().alias("max"))
        maxima.append(top.select(measure, PATH, "max"))
    if not states:
        return {}
    return {"dd_latency": pl.concat(states), "latency_max": pl.concat(maxima)}


def _samples(rows: pl.LazyFrame, ranks: Mapping[str, int]) -> pl.DataFrame:
    """The first rejected lines by (input rank, line)."""
    rank = (
        pl.col(SOURCE).replace_strict(ranks, default=len(ranks), return_dtype=pl.UInt32)
        if ranks
        else pl.lit(0, pl.UInt32)
    )
    rejected = rows.filter(pl.col(REJECT_REASON).is_not_null()).select(
        rank.alias(RANK), SOURCE, LINE, REJECT_REASON, RAW
    )
    return _collect(
        rejected.bottom_k(REJECT_SAMPLES, by=list(SAMPLE_KEYS)).sort(SAMPLE_KEYS)
    )


def _decoded_pairs(
    pairs: pl.DataFrame, paths: pl.DataFrame, escape: str
) -> pl.DataFrame:
    """Pairs keyed by the hash of the decoded path, not the escaped one.

    Only paths with a backslash change; every path of `pairs` is one of
    `paths` (the same rows).
    """
    escaped = paths.filter(pl.col(PATH).str.contains("\\", literal=True)).select(PATH)
    if escaped.height == 0:
        return pairs
    rehash = escaped.select(
        text_hash(pl.col(PATH)).alias(PATH_HASH),
        text_hash(unescape(pl.col(PATH), escape)).alias("_decoded"),
    )
    return (
        pairs.join(rehash, on=PATH_HASH, how="left")
        .with_columns(pl.coalesce("_decoded", PATH_HASH).alias(PATH_HASH))
        .drop("_decoded")
        .unique()
    )


def _decoded(name: str, frame: pl.DataFrame, escape: str) -> pl.DataFrame:
    """Decode the text keys of a frame, and merge keys that decode alike."""
    text = [
        c
        for c in _TEXT_KEYS
        if c in KEYS.get(name, ())
        and c in frame.columns
        and frame.get_column(c).str.contains("\\", literal=True).any()
    ]
    if not text:  # nginx writes every escape with a backslash
        return frame
    frame = frame.with_columns(unescape(pl.col(c), escape) for c in text)
    return _combine(frame, KEYS[name])
