"""`Partial`: exact, mergeable aggregates of a set of rows.

`pplog.reports.mapping.partial_of(rows)` maps rows (one file, one byte
range of a file, one batch of a dataset) to small frames at the finest grain
each table needs; `merge` combines any number of partials by concatenation
plus sums, minimums and maximums; `pplog.reports.finish` turns one partial
into the tables. Merging is associative and commutative, so any split of
the input, merged in any order, gives the tables of one pass over all of it:

- `totals`: the overview's sums, one row;
- `clients`: per (client, user agent, visitor) requests, bytes, errors and
  first/last times (visitor: not a health check), which also gives the
  user-agent tables and each client's top user agent;
- `pairs`: the distinct (client, path, visitor) triples, for exact "paths
  per client" and "clients per path", as 64-bit hashes of the texts
  (`text_hash`: 17 bytes a pair, and merging compares integers);
- `paths`, `status`, `referrers`, `hosts`, `lb`: counts per key;
- `errors`: per (status, path, client) for statuses 400-599, for the errors
  table with exact distinct and top clients;
- `latency`: per (measure, path, value) request counts (nginx logs times
  in milliseconds), for exact nearest-rank percentiles;
- `timeline`: per one-second bucket, re-bucketed by `finish`;
- `rejects` per reason and `samples`, the first rejected lines by
  (input rank, line);
- `agents` (only in a dataset's rollups): each distinct user agent's
  class, browser, OS and device, stamped with what answered
  (`enrich.useragents.stamped`), so that `finish` parses none again;
- `logged`: which optional columns the format logs (the tables they feed
  exist only then); `problems`: inputs that could not be read whole;
- `hll_visitors` (only in a partial `capped` folded clients of): the
  HyperLogLog registers of the visitors folded into `OTHER` and of every
  client listed before (`sketches.hll_state`), so that the overview still
  estimates the distinct clients (`estimated_clients`);
- `shown` (only in a partial that goes to `finish` alone): the tables'
  cut (`top`, `by`, route rules) whose rows alone `pairs` holds
  (`mapping.Shown`); such a partial is not merged.

Keys are decoded text (a path as the client sent it), whatever escaping
the log used, so partials of different formats merge. Every frame is a
plain DataFrame: a partial pickles and can be written as Parquet.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pplog.enrich.useragents import ANSWERS, STAMP
from pplog.reports import sketches
from pplog.schema import (
    CLIENT_IP,
    HTTP_REFERER,
    HTTP_USER_AGENT,
    LINE,
    PATH,
    REJECT_REASON,
    SOURCE,
    STATUS,
    TIME,
)

REJECT_SAMPLES = 5
AGENTS = "agents"
VISITOR = "visitor"  # not a health check (`enriched.health_checks`)
RANK = "rank"  # the input's position among the run's inputs
MEASURE, VALUE, COUNT = "measure", "value", "n"
CLIENT_HASH, PATH_HASH = "client_hash", "path_hash"
SHOWN = "shown"
SKETCHED_VISITORS = "hll_visitors"
_HASH_SEED = 0x70706C6F67  # fixed: partials made apart must agree


def text_hash(expr: pl.Expr) -> pl.Expr:
    """A 64-bit hash of a text, null for null: how `pairs` names clients and paths.

    polars keeps its hash stable within one version; `Partial.version`
    records it, and partials of different versions are not merged.
    """
    return pl.when(expr.is_not_null()).then(expr.hash(seed=_HASH_SEED))


COUNTS = pl.UInt64

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
    AGENTS: (STAMP, *ANSWERS),  # answers, all keys: merged by `unique`
    # with `approx`: sketches instead of `pairs` and `latency`
    "hll_clients": (CLIENT_IP, "_reg"),
    "hll_paths": (PATH, "_reg"),
    # in `capped` partials: the visitors, over everything folded
    SKETCHED_VISITORS: ("_reg",),
    "dd_latency": (MEASURE, PATH, "_bucket"),
    "latency_max": (MEASURE, PATH),
}
# Columns merged by their maximum (every other value column is summed, but
# `first_time`, the minimum).
MAXIMA = ("last_time", "_rank", "max")
# Frames merged otherwise: the first samples, and the problems in order.
SAMPLE_KEYS = (RANK, LINE)
# Key columns holding text from the log (nginx-escaped until decoded).
TEXT_KEYS = (PATH, HTTP_USER_AGENT, HTTP_REFERER, "host")


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
        elif name in MAXIMA:
            out.append(pl.col(name).max())
        else:
            out.append(pl.col(name).sum())
    return out


def visitors_of(per_client: pl.DataFrame) -> pl.DataFrame:
    """The rows of a `clients` frame that are visitors (not health checks).

    Usually every row is one: the frame is then taken as it is, where a
    filter would copy it (8M elb_log lines: 17 MiB, at finish time).
    """
    visitor = per_client.get_column(VISITOR)
    if visitor.null_count() == 0 and visitor.all():
        return per_client
    return per_client.filter(pl.col(VISITOR))


def combine(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """One row per key: the frame's own merge."""
    if not keys:
        return frame.select(_aggregations(frame, keys))
    aggs = _aggregations(frame, keys)
    if not aggs:
        return frame.unique(subset=list(keys))
    return frame.group_by(list(keys)).agg(aggs)


def merge(
    partials: Iterable[Partial], *, concatenated: Collection[str] = ()
) -> Partial:
    """One partial for all of `partials`: concatenation plus sums, mins, maxes.

    Associative and commutative; a frame some partials lack (a format that
    does not log referrers) is merged from those that have it. Frames named
    in `concatenated` are only concatenated: for a partial that goes to
    `finish` alone, which groups those frames again (`finish.REGROUPED`).
    """
    parts = list(partials)
    if len(parts) == 1:
        return parts[0]
    if not parts:
        msg = "merge needs at least one partial"
        raise ValueError(msg)
    if any(SHOWN in p.frames for p in parts):
        msg = (
            "a partial whose pairs hold only the rows its tables show cannot be "
            "merged: map its rows without `Shown`"
        )
        raise ValueError(msg)
    names = {n: None for p in parts for n in p.frames}  # first seen order
    out: dict[str, pl.DataFrame] = {}
    for name in names:
        frames = [p.frames[name] for p in parts if name in p.frames]
        if name in concatenated:
            out[name] = pl.concat(frames, how="diagonal_relaxed")
            continue
        frame = pl.concat(frames, how="diagonal_relaxed", rechunk=True)
        if name == "samples":
            out[name] = frame.sort(SAMPLE_KEYS, nulls_last=True).head(REJECT_SAMPLES)
        elif name == "problems":
            out[name] = frame.sort(RANK, "seq")
        else:
            out[name] = combine(frame, KEYS[name])
    return Partial(out)


OTHER = "(other)"  # the key that keys beyond a cap are folded into (`capped`)
_NAMED = pl.col(CLIENT_IP).is_not_null() & (pl.col(CLIENT_IP) != OTHER)
# Frames and the text key columns `capped` folds; the rows of a frame are
# ranked by this column.
_FOLDED: dict[str, tuple[tuple[str, ...], str]] = {
    "clients": ((CLIENT_IP, HTTP_USER_AGENT), "requests"),
    "paths": ((PATH,), "requests"),
    "errors": ((PATH, CLIENT_IP), "requests"),
    "latency": ((PATH,), COUNT),
    "referrers": ((HTTP_REFERER,), "requests"),
    "hosts": (("host",), "requests"),
    "lb": (("peer",), "requests"),
}
# A frame keyed by two folded columns may still hold up to cap * cap rows;
# past `ROWS_PER_KEY * cap` its least requested rows fold whole.
ROWS_PER_KEY = 4
PAIRS_PER_KEY = 25  # 17 bytes a pair


def _kept(frame: pl.DataFrame, column: str, by: str, cap: int) -> pl.Series:
    """The `cap` values of `column` with the most `by` (ties: by text)."""
    return (
        frame.group_by(column)
        .agg(pl.col(by).sum())
        .sort([by, column], descending=[True, False], nulls_last=True)
        .head(cap)
        .get_column(column)
    )


def _fold(column: str, kept: pl.Series) -> pl.Expr:
    col = pl.col(column)
    return (
        pl.when(col.is_null() | col.is_in(kept.implode()))
        .then(col)
        .otherwise(pl.lit(OTHER))
        .alias(column)
    )


def _pair_clients(out: dict[str, pl.DataFrame], limit: int) -> pl.Series | None:
    """The busiest clients whose distinct pairs add up to at most `limit`,
    or None when every client's pairs fit."""
    pairs = out["pairs"]
    if pairs.height <= limit or "clients" not in out:
        return None
    per_client = (
        out["clients"]
        .group_by(CLIENT_IP)
        .agg(pl.col("requests").sum())
        .with_columns(text_hash(pl.col(CLIENT_IP)).alias(CLIENT_HASH))
        .join(pairs.group_by(CLIENT_HASH).len("_pairs"), on=CLIENT_HASH, how="left")
        .sort(["requests", CLIENT_IP], descending=[True, False], nulls_last=True)
    )
    fits = pl.col("_pairs").fill_null(0).cum_sum() <= limit
    return per_client.filter(fits).get_column(CLIENT_IP)


def _fold_frame(
    frame: pl.DataFrame, name: str, kept: dict[str, pl.Series], cap: int
) -> tuple[pl.DataFrame, int]:
    """Fold a frame's text keys to `kept` values (else to its own `cap`
    busiest), then its rows past `ROWS_PER_KEY * cap`."""
    columns, by = _FOLDED[name]
    folded = 0
    changes = []
    for column in columns:
        if column not in frame.columns:
            continue
        # the errors table ranks its own paths: rare paths fail too
        own = name == "errors" and column == PATH
        values = None if own else kept.get(column)
        if values is None:
            if frame.get_column(column).n_unique() <= cap:
                continue
            values = _kept(frame, column, by, cap)
        before = frame.get_column(column).n_unique()
        changes.append(_fold(column, values))
        folded += max(0, before - len(values))
    if changes:
        frame = combine(frame.with_columns(changes), KEYS[name])
    limit = ROWS_PER_KEY * cap
    if frame.height > limit:
        order = frame.sort(by, descending=True, maintain_order=True)
        text = [c for c in columns if c in frame.columns]
        rest = order.slice(limit).with_columns(
            pl.lit(OTHER, pl.String).alias(c) for c in text
        )
        folded += rest.height
        frame = combine(pl.concat([order.head(limit), rest]), KEYS[name])
    return frame, folded


def _hashes(values: pl.Series) -> pl.Series:
    return pl.select(text_hash(pl.lit(values))).to_series()


def _folded_pairs(pairs: pl.DataFrame, kept: dict[str, pl.Series]) -> pl.DataFrame:
    """Pairs of folded clients become `OTHER`'s, and so do their folded paths;
    a kept client keeps every path it asked for (its count stays exact)."""
    other = pl.lit(pl.select(text_hash(pl.lit(OTHER))).item(), pl.UInt64)
    client, path = pl.col(CLIENT_HASH), pl.col(PATH_HASH)
    if CLIENT_IP in kept:
        known = _hashes(kept[CLIENT_IP]).implode()
        pairs = pairs.with_columns(
            pl.when(client.is_null() | client.is_in(known))
            .then(client)
            .otherwise(other)
            .alias(CLIENT_HASH)
        )
    if PATH in kept:
        known = _hashes(kept[PATH]).implode()
        folded = (client == other) & path.is_not_null() & ~path.is_in(known)
        pairs = pairs.with_columns(
            pl.when(folded).then(other).otherwise(path).alias(PATH_HASH)
        )
    return pairs.unique()


def capped(partial: Partial, cap: int) -> tuple[Partial, int]:
    """`partial` with at most about `cap` distinct values per text key and frame.

    The values with the most requests stay; the others are folded into
    `OTHER`, whose counts are their sums, so every total stays exact while
    memory stays bounded however many distinct clients or paths arrive
    (`pplog top`). Each frame keeps at most `ROWS_PER_KEY * cap` rows, the
    pairs `PAIRS_PER_KEY * cap` (the busiest clients whose pairs fit stay).
    Clients and paths kept in their own frames keep their pairs (the others
    become the hash of `OTHER`), so a kept client's distinct paths stay
    exact; the errors table ranks its own paths, since rare paths fail too.
    A seconds timeline past `cap` rows is re-bucketed by the minute.
    Clients folded for the first time are added to a HyperLogLog sketch
    (`hll_visitors`), so the overview still estimates how many there were
    (`estimated_clients`). Returns the partial and how many values were
    folded (0: unchanged).
    """
    out = dict(partial.frames)
    kept: dict[str, pl.Series] = {}
    clients, paths = out.get("clients"), out.get("paths")
    if clients is not None and clients.get_column(CLIENT_IP).n_unique() > cap:
        kept[CLIENT_IP] = _kept(clients, CLIENT_IP, "requests", cap)
    if "pairs" in out:
        fitting = _pair_clients(out, PAIRS_PER_KEY * cap)
        if fitting is not None and (
            CLIENT_IP not in kept or len(fitting) < len(kept[CLIENT_IP])
        ):
            kept[CLIENT_IP] = fitting
    if paths is not None and paths.height > cap:
        kept[PATH] = _kept(paths, PATH, "requests", cap)
    folded = 0
    for name in _FOLDED:
        frame = out.get(name)
        if frame is None:
            continue
        mine = {c: v for c, v in kept.items() if c in frame.columns}
        if frame.height <= cap and not mine:
            continue
        out[name], n = _fold_frame(frame, name, mine, cap)
        folded += n
        if name == "clients" and _named(out[name]) < _named(frame):
            states = [_listed_visitors(frame)]
            if (sketch := out.get(SKETCHED_VISITORS)) is not None:
                states.append(sketch.lazy())
            out[SKETCHED_VISITORS] = sketches.hll_merge(states, []).collect()
    if "pairs" in out and kept:
        out["pairs"] = _folded_pairs(out["pairs"], kept)
    timeline = out.get("timeline")
    if timeline is not None and timeline.height > cap:
        out["timeline"] = combine(
            timeline.with_columns(pl.col(TIME).dt.truncate("1m")), KEYS["timeline"]
        )
        folded += timeline.height - out["timeline"].height
    if all(out[n] is partial.frames.get(n) for n in out):
        return partial, 0
    return Partial(out), folded


def _named(clients: pl.DataFrame) -> int:
    """How many clients a `clients` frame names (`OTHER` aside)."""
    return clients.filter(_NAMED).get_column(CLIENT_IP).n_unique()


def _listed_visitors(clients: pl.DataFrame) -> pl.LazyFrame:
    """The registers of the visitors `clients` names (not `OTHER`)."""
    named = visitors_of(clients).lazy().filter(_NAMED)
    return sketches.hll_state(named, [], CLIENT_IP)


def estimated_clients(partial: Partial) -> int | None:
    """The distinct visitors of a partial `capped` folded clients of,
    estimated (HyperLogLog, standard error 1.6%); None when its `clients`
    frame lists every one (count them instead).

    Folding keeps the totals but makes the visitors past the cap one
    `OTHER` row: counted, they would be a number far too small, read as
    exact (`--max-keys` 10,000 at most, however many clients came).
    """
    sketch = partial.get(SKETCHED_VISITORS)
    if sketch is None:
        return None
    both = [sketch.lazy(), _listed_visitors(partial["clients"])]
    estimate = sketches.hll_estimate(sketches.hll_merge(both, []), [])
    return int(estimate.collect().item(0, "estimate"))
