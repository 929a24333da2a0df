"""`partial_of`: attributed rows -> one `Partial` (the map step).

Each frame of the partial is one streaming query over the rows (the small
ones share a read); free text keys stay nginx-escaped through the
aggregations and are decoded in the finished frames, where each distinct
value is decoded once.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pplog._ipaddr import Network
from pplog._unescape import unescape
from pplog.clientip import FORWARDED_BY_UNTRUSTED
from pplog.enrich.routes import ROUTE, RouteRule
from pplog.pipeline import Filters
from pplog.reports import clients as clients_report
from pplog.reports import lb as lb_report
from pplog.reports import paths as paths_report
from pplog.reports import sketches
from pplog.reports._columns import (
    FAILED,
    by_key,
    bytes_column,
    error_counts,
    latency_columns,
    seconds,
    status_in,
)
from pplog.reports._spool import unwritable
from pplog.reports.breakdowns import host_column
from pplog.reports.enriched import agent_classes, bot_rows, health_checks
from pplog.reports.overview import STATUS_CLASSES
from pplog.reports.partial import (
    CLIENT_HASH,
    COUNT,
    COUNTS,
    KEYS,
    MEASURE,
    PATH_HASH,
    RANK,
    REJECT_SAMPLES,
    SAMPLE_KEYS,
    SHOWN,
    TEXT_KEYS,
    VALUE,
    VISITOR,
    Partial,
    combine,
    text_hash,
)
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


@dataclass(frozen=True)
class Shown:
    """The cut of the tables a partial will be finished with, when it goes to
    `finish` alone (`MapSettings.shown`): `top` rows (more than 0), by path
    or route, with the route rules.

    `finish` reads the pairs of the clients and paths its tables show, and
    no other: such a partial's pairs hold the rows of those clients and
    paths only. 2M elb_log lines: 120k pairs instead of 1.09M, and 0.46-0.60 s
    of map and finish against 0.53-0.66 s (eight alternating rounds in one
    process), the tables the same.
    """

    top: int
    by: str = "path"
    rules: tuple[RouteRule, ...] = ()

    def frame(self) -> pl.DataFrame:
        """The partial's `shown` frame, which `finish` checks against its cut."""
        return pl.DataFrame(
            {
                "top": [self.top],
                "by": [self.by],
                "rules": [[r.pattern for r in self.rules]],
            },
            schema={"top": pl.Int64, "by": pl.String, "rules": pl.List(pl.String)},
        )


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
    # small frames not to make (`pplog top`'s screen shows no timeline,
    # referrers, hosts, status or balancer table); `finish` is then asked for
    # no table of theirs
    skipped: frozenset[str] = frozenset()
    # the partial goes to `finish` alone, with this cut: its pairs are mapped
    # for the rows the tables show (`Shown`)
    shown: Shown | None = None


def _collect(lf: pl.LazyFrame) -> pl.DataFrame:
    return lf.collect(engine="streaming")


def _status_counts(columns: list[str]) -> list[pl.Expr]:
    return [
        pl.len().cast(COUNTS).alias("requests"),
        bytes_column(columns).sum().cast(COUNTS).alias("bytes"),
        *error_counts(),
    ]


def partial_of(
    rows: pl.LazyFrame,
    settings: MapSettings | None = None,
    *,
    problems: Sequence[tuple[str, str, bool]] = (),
    classify: Callable[[pl.LazyFrame], pl.DataFrame | None] = agent_classes,
    unattributed: pl.LazyFrame | None = None,
) -> Partial:
    """Map attributed rows (with `reject_reason` and `raw`) to a `Partial`.

    `rows` should be cheap to read more than once (a spooled file or a
    DataFrame): each frame is its own streaming query, so peak memory is the
    largest frame's state, not the sum of them. `classify` gives the rows'
    distinct user agents with their `agent_class` (`pplog top` keeps them
    from one poll to the next). `unattributed` is the same rows before the
    client was attributed, where that joined the trust decisions to every
    row: the frames that read no client column read it instead, unless
    filters or the bot exclusion select rows (2M lines of a `main` log:
    0.15 s less).
    """
    settings = settings or MapSettings()
    columns = rows.collect_schema().names()
    escape = settings.escape
    rejected = pl.col(REJECT_REASON).is_not_null()
    classes = classify(rows if unattributed is None else unattributed)
    matches = settings.filters.bind(rows).expr(escape) if settings.filters else None
    keep = matches
    if settings.exclude_bots:
        bots = ~bot_rows(classes)
        keep = bots if keep is None else keep & bots
    selected = rows if keep is None else rows.filter(rejected | keep)
    ok = selected.filter(~rejected)
    # the rows of the frames that read no client column
    plain = rows if unattributed is None or keep is not None else unattributed
    plain_ok = ok if plain is rows else plain.filter(~rejected)
    if settings.keep_health_checks:
        visitor: pl.Expr = pl.lit(True)  # noqa: FBT003
        health = 0
    else:
        checks, health = health_checks(ok, classes, settings.checked)
        # no health checks: every request is a visitor, no per-row test
        visitor = ~checks if health else pl.lit(True)  # noqa: FBT003
    frames: dict[str, pl.DataFrame] = {}
    small: dict[str, pl.LazyFrame] = {}
    frames["totals"] = _totals(rows, selected, matches, columns).with_columns(
        pl.lit(health, COUNTS).alias("health_checks")
    )
    ua = (
        []
        if HTTP_USER_AGENT in columns
        else [pl.lit(None, pl.String).alias(HTTP_USER_AGENT)]
    )
    tagged = ok.with_columns(*ua, visitor.alias(VISITOR))
    requests = int(frames["totals"]["requests"].sum())
    # grouped on the spool's categorical user agents, text once per agent
    frames["clients"] = _as_text(
        _by_client_shares(
            tagged,
            requests,
            lambda share: share.group_by(CLIENT_IP, HTTP_USER_AGENT, VISITOR).agg(
                *_status_counts(columns),
                pl.col(TIME).min().alias("first_time"),
                pl.col(TIME).max().alias("last_time"),
            ),
        ),
        HTTP_USER_AGENT,
    )
    if settings.approx:
        visits = tagged.filter(pl.col(VISITOR))
        frames["hll_clients"] = _collect(sketches.hll_state(visits, [CLIENT_IP], PATH))
        frames["hll_paths"] = _collect(sketches.hll_state(visits, [PATH], CLIENT_IP))
    small["paths"] = plain_ok.group_by(PATH).agg(
        pl.len().cast(COUNTS).alias("requests"),
        bytes_column(columns).sum().cast(COUNTS).alias("bytes"),
        status_in(200, 399).sum().cast(COUNTS).alias("ok_2xx_3xx"),
        *error_counts(),
    )
    if settings.approx:
        small.update(_sketched_latency(plain_ok, rows.collect_schema()))
    else:
        small["latency"] = _latency(plain_ok, rows.collect_schema())
    small["errors"] = (
        ok.filter(FAILED)
        .group_by(STATUS, PATH, CLIENT_IP)
        .agg(
            pl.len().cast(COUNTS).alias("requests"),
            pl.col(TIME).min().alias("first_time"),
            pl.col(TIME).max().alias("last_time"),
        )
    )
    second = pl.col(TIME).dt.truncate("1s")
    small["timeline"] = (
        plain_ok.filter(pl.col(TIME).is_not_null())
        .group_by(second.alias(TIME))
        .agg(
            pl.len().cast(COUNTS).alias("requests"),
            *error_counts(),
            bytes_column(columns).sum().cast(COUNTS).alias("bytes"),
        )
    )
    small["status"] = plain_ok.group_by(STATUS).agg(
        pl.len().cast(COUNTS).alias("requests")
    )
    logged = [HTTP_USER_AGENT] if HTTP_USER_AGENT in columns else []
    if HTTP_REFERER in columns:
        logged.append(HTTP_REFERER)
        # grouped on the spool's categoricals: each distinct referrer is cast
        # to text and tested once (2M elb_log lines: 0.028 s of CPU, against
        # 0.048 s when every row was)
        ref = pl.col(HTTP_REFERER).cast(pl.String)
        small["referrers"] = (
            plain_ok.group_by(HTTP_REFERER)
            .agg(
                pl.len().cast(COUNTS).alias("requests"),
                bytes_column(columns).sum().cast(COUNTS).alias("bytes"),
            )
            .with_columns(ref)
            .filter(ref.is_not_null() & (ref != ""))
        )
    # hosts and balancers are counted whether or not this format logs them:
    # merged with a format that does, its rows are the null host and direct
    # peers, as in one frame of both formats' rows
    host = host_column(columns)
    if host is not None:
        logged.append("host")
    small["hosts"] = by_key(plain_ok, host, "host", _status_counts(columns))
    if lb_report.applies(columns):
        logged.append("lb")
    small["lb"] = lb_report.lb(ok, top=0)
    logged.extend(latency_columns(columns))
    frames["logged"] = pl.DataFrame({"name": logged}, schema={"name": pl.String})
    small["rejects"] = (
        plain.filter(rejected)
        .group_by(REJECT_REASON)
        .agg(pl.len().cast(COUNTS).alias("lines"))
    )
    for name in settings.skipped:
        small.pop(name, None)
    # one query at a time: run together (`collect_all`), the shared read is
    # held in memory for the later consumers, which grows with the input
    # (1.0 GB against 0.6 GB on 8M lines)
    frames.update({name: _collect(query) for name, query in small.items()})
    if not settings.approx:  # the largest frame last: no other query runs beside it
        shown = settings.shown
        if shown is not None and shown.top > 0 and "paths" in frames:
            rows_shown, most = _shown_rows(frames, shown, escape)
            frames["pairs"] = _pairs(tagged.filter(rows_shown), most)
            frames[SHOWN] = shown.frame()
        else:
            frames["pairs"] = _pairs(tagged, requests)
    frames["samples"] = _samples(plain, settings.ranks)
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


def _as_text(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """`frame` with its categorical `column` as text, each distinct value's
    text shared by the rows that hold it (string views of one small
    column). A cast writes every row's text anew: the user agents of the
    140k clients of 8M elb_log lines took 14 MiB of the partial."""
    if not isinstance(frame.schema[column], pl.Categorical):
        return frame
    texts = frame.select(pl.col(column).unique()).with_columns(
        pl.col(column).cast(pl.String).alias("_text")
    )
    text = (
        frame.select(column)
        .join(texts, on=column, how="left", nulls_equal=True, maintain_order="left")
        .get_column("_text")
    )
    return frame.with_columns(text.alias(column))


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
        return (condition & ok).fill_null(False).sum().cast(COUNTS)  # noqa: FBT003

    exprs = [
        pl.len().cast(COUNTS).alias("lines"),
        ok.sum().cast(COUNTS).alias("requests"),
        (~ok).sum().cast(COUNTS).alias("rejected"),
        # when/then, not filter: a filter inside select holds the whole column
        pl.when(ok).then(bytes_column(columns)).sum().cast(COUNTS).alias("bytes"),
        pl.when(ok).then(time).min().alias("first_time"),
        pl.when(ok).then(time).max().alias("last_time"),
        count(pl.col(CLIENT_IP).is_null()).alias("without_client_address"),
        (
            count(pl.col(FORWARDED_BY_UNTRUSTED))
            if FORWARDED_BY_UNTRUSTED in columns
            else pl.lit(0, COUNTS)
        ).alias("forwarded_by_untrusted"),
    ]
    for i, name in enumerate(STATUS_CLASSES, start=1):
        in_class = (status >= i * 100) & (status < (i + 1) * 100)
        exprs.append(count(in_class).alias(f"status_{name}"))
    other = status.is_null() | (status < 100) | (status >= 600)
    exprs.append(count(other).alias("status_other"))
    if selected is rows:  # nothing left out: every request is parsed and kept
        requests = ok.sum().cast(COUNTS)
        exprs += [requests.alias("parsed"), requests.alias("matching")]
        return _collect(rows.select(exprs))
    totals = _collect(selected.select(exprs))
    # requests before the filters, and those the filters kept (before bots)
    parsed = rows.filter(ok)
    left = [
        pl.len().cast(COUNTS).alias("parsed"),
        (pl.len() if matches is None else matches.sum()).cast(COUNTS).alias("matching"),
    ]
    return pl.concat([totals, _collect(parsed.select(left))], how="horizontal")


def _shown_rows(
    frames: Mapping[str, pl.DataFrame], shown: Shown, escape: str
) -> tuple[pl.Expr, int]:
    """The rows of the clients and paths the finished tables will show (the
    only ones whose pairs `finish` reads), and at most how many there are.

    The shown keys are chosen as `finish` chooses them, by the same
    functions, from the frames it will get: the clients by their visitors'
    requests, the paths (decoded, as `_decoded` will leave them) or their
    routes by requests. The rows hold paths as logged: the escaped forms of
    the shown paths select them.
    """
    per_client = frames["clients"]
    clients = clients_report.ranked(clients_report.visitor_sums(per_client), shown.top)
    wanted = clients.get_column(CLIENT_IP)
    paths = _decoded("paths", frames["paths"], escape)
    key = ROUTE if shown.by == "route" else PATH
    routes = paths_report.routes_for(paths, shown.rules) if key == ROUTE else None
    named = paths_report.named_paths(
        paths_report.ranked(paths, key, routes, shown.top).select(key), routes
    ).get_column(PATH)
    logged = frames["paths"]
    if escape != "none":
        text = unescape(pl.col(PATH), escape)
        logged = logged.filter(text.is_in(named.implode(), nulls_equal=True))
    else:
        logged = logged.filter(pl.col(PATH).is_in(named.implode(), nulls_equal=True))
    of_clients = pl.col(CLIENT_IP).is_in(wanted.implode(), nulls_equal=True)
    of_paths = pl.col(PATH).is_in(logged.get_column(PATH).implode(), nulls_equal=True)
    clients_rows = per_client.filter(of_clients).get_column("requests").sum()
    paths_rows = logged.get_column("requests").sum()
    return of_clients | of_paths, int(clients_rows or 0) + int(paths_rows or 0)


# Requests one pass of a query keyed by client takes at most. polars'
# streaming group-by keeps the rows whose keys miss its small table of
# frequent keys until the end, so a query keyed by something as varied as
# the client holds about its input's rows: larger inputs are mapped in
# passes over disjoint shares of the clients, each pass's working memory
# bounded whatever the input's size (8M elb_log lines: 4 passes of the
# clients query; the pairs, see `_pairs`).
PASS_REQUESTS = 2_000_000


def _by_client_shares(
    rows: pl.LazyFrame,
    requests: int,
    query: Callable[[pl.LazyFrame], pl.LazyFrame],
) -> pl.DataFrame:
    """`query` of `rows`, in one pass or over shares of the clients (by the
    client's text hash) that give the same rows together."""
    passes = max(1, -(-requests // PASS_REQUESTS))
    if passes == 1:
        return _collect(query(rows))
    share = (text_hash(pl.col(CLIENT_IP)) % passes).fill_null(0)
    return pl.concat([_collect(query(rows.filter(share == i))) for i in range(passes)])


# Requests one pass over the hashed pairs takes at most (see `_pairs`).
PAIR_PASS_REQUESTS = 1_000_000


def _pairs(tagged: pl.LazyFrame, requests: int) -> pl.DataFrame:
    """Distinct (client hash, path hash, visitor) rows.

    Above `PASS_REQUESTS` requests, the rows' triples are hashed once into
    a scratch file, de-duplicated over shares of the clients of at most
    `PAIR_PASS_REQUESTS` requests each (a pass reads integers, not the
    texts again), and each share's pairs wait in a file until the last is
    done: a pass's working memory is never added to the pairs found before
    it. `partial_of` makes this frame last, when the others are small. On
    8M elb_log lines, the peak went from 375-389 to 331-341 MiB, as fast
    (2M lines take one pass, as before).
    """
    hashed = tagged.select(
        text_hash(pl.col(CLIENT_IP)).alias(CLIENT_HASH),
        text_hash(pl.col(PATH)).alias(PATH_HASH),
        VISITOR,
    )
    if requests <= PASS_REQUESTS:
        return _collect(hashed.unique())
    passes = -(-requests // PAIR_PASS_REQUESTS)
    share = (pl.col(CLIENT_HASH) % passes).fill_null(0)
    with _scratch() as scratch:
        triples = scratch / "pairs.parquet"
        hashed.sink_parquet(triples, compression="uncompressed")
        rows = pl.scan_parquet(triples, glob=False)
        found = [scratch / f"pairs-{i}.parquet" for i in range(passes)]
        for i, path in enumerate(found):
            _collect(rows.filter(share == i).unique()).write_parquet(
                path, compression="uncompressed"
            )
        return pl.concat(
            [pl.read_parquet(path, glob=False, memory_map=False) for path in found]
        )


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A temporary directory for a map step's files, removed after it; a
    file that cannot be written there is the spool's error."""
    try:
        with tempfile.TemporaryDirectory(prefix="pplog-") as name:
            yield Path(name)
    except OSError as exc:
        raise unwritable(exc) from exc


def _latency(ok: pl.LazyFrame, schema: pl.Schema) -> pl.LazyFrame:
    """Requests per (measure, path, value in seconds) for each logged latency."""
    frames = []
    for column in latency_columns(schema.names()):
        value = seconds(column, schema[column]).cast(pl.Float64).alias(VALUE)
        frames.append(
            ok.select(PATH, value)
            .filter(pl.col(VALUE).is_not_null())
            .group_by(PATH, VALUE)
            .agg(pl.len().cast(COUNTS).alias(COUNT))
            .select(pl.lit(column).alias(MEASURE), PATH, VALUE, COUNT)
        )
    if not frames:
        return pl.LazyFrame(
            schema={
                MEASURE: pl.String,
                PATH: pl.String,
                VALUE: pl.Float64,
                COUNT: COUNTS,
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
    """The first rejected lines by (input rank, line).

    Without `ranks` (a frame of rows, which has no list of inputs) an input
    ranks where its first rejected line stands in the frame: the first
    rejected lines of the frame, in its order.
    """
    rejected = rows.filter(pl.col(REJECT_REASON).is_not_null())
    if ranks:
        rank = pl.col(SOURCE).replace_strict(
            ranks, default=len(ranks), return_dtype=pl.UInt32
        )
    else:
        rejected = rejected.with_row_index("_at")
        rank = pl.col("_at").min().over(SOURCE).cast(pl.UInt32)
    picked = rejected.select(rank.alias(RANK), SOURCE, LINE, REJECT_REASON, RAW)
    return _collect(
        picked.bottom_k(REJECT_SAMPLES, by=list(SAMPLE_KEYS)).sort(SAMPLE_KEYS)
    )


def _decoded_pairs(
    pairs: pl.DataFrame, paths: pl.DataFrame, escape: str
) -> pl.DataFrame:
    """Pairs keyed by the hash of the decoded path, not the escaped one.

    Only paths with a backslash change; every path of `pairs` is one of
    `paths` (the same rows). The path hashes are replaced in one new column
    (the others are shared, not copied), and only the rows whose path now
    has a decoded hash can repeat another: they are de-duplicated alone,
    and the frame is rebuilt only when that removed a row. A join and a
    `unique()` of every pair had copied them twice (8M lines: 3.4M pairs).
    """
    escaped = paths.filter(pl.col(PATH).str.contains("\\", literal=True)).select(PATH)
    if escaped.height == 0:
        return pairs
    rehash = escaped.select(
        text_hash(pl.col(PATH)).alias(PATH_HASH),
        text_hash(unescape(pl.col(PATH), escape)).alias("_decoded"),
    )
    # two escaped paths of one hash (64 bits) are one path to the pairs already
    rehash = rehash.unique(PATH_HASH)
    old, decoded = rehash.get_column(PATH_HASH), rehash.get_column("_decoded")
    pairs = pairs.with_columns(pl.col(PATH_HASH).replace(old, decoded))
    merged = pl.col(PATH_HASH).is_in(decoded.implode()).fill_null(False)  # noqa: FBT003
    suspects = pairs.filter(merged)
    kept = suspects.unique()
    if kept.height == suspects.height:
        return pairs
    return pl.concat([pairs.filter(~merged), kept])


def _decoded(name: str, frame: pl.DataFrame, escape: str) -> pl.DataFrame:
    """Decode the text keys of a frame, and merge keys that decode alike."""
    text = [
        c
        for c in TEXT_KEYS
        if c in KEYS.get(name, ())
        and c in frame.columns
        and frame.get_column(c).str.contains("\\", literal=True).any()
    ]
    if not text:  # nginx writes every escape with a backslash
        return frame
    frame = frame.with_columns(unescape(pl.col(c), escape) for c in text)
    return combine(frame, KEYS[name])
