"""`Partial`, `merge` and `finish` (issue 12): any split, merged in any order,
gives the tables of one pass.

The rows are real: the sample logs, the third-party corpora that parse
(forced to the closest preset where none fits, for their rejects), and
logs written here: two with nginx's escaping (`\\xHH`), missing client
addresses, health checkers from private and public addresses, latencies
and damaged lines, and a `common` log (no user agents). Rows of different
formats are concatenated diagonally, as `scan_log` does for a mixed
directory; a chunk may also keep only its own format's columns, as a
file's partial does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import pickle
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import pplog
from helpers import CORPORA, SAMPLES
from pplog.enrich.routes import parse_rules
from pplog.pipeline.filters import Filters
from pplog.reports.finish import REGROUPED, FinishSettings, Tables, finish
from pplog.reports.mapping import MapSettings, Shown
from pplog.reports.overview import checked_ranges
from pplog.reports.partial import CLIENT_HASH, PATH_HASH, Partial, merge, text_hash
from pplog.sources import Source
from pplog.tasks import Task, map_frame, map_task

TIMED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_forwarded_for" $request_time '
    '"$upstream_response_time"'
)
ORIGIN = "_origin"  # which frame of the pool a row comes from
# chunks, orders and tree shapes come from a seeded `random.Random`: the
# seed is the whole example, replayed and reported as one number
SEEDS = st.integers(0, 2**32 - 1)
FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- logs written as nginx writes them ---------------------------------------


def nginx_escaped(value: str | bytes) -> str:
    """`value` as nginx's default escaping writes it in a log."""
    data = value.encode() if isinstance(value, str) else value
    return "".join(
        f"\\x{b:02X}" if b < 0x20 or b in (0x22, 0x5C) or b >= 0x7F else chr(b)
        for b in data
    )


PATHS: list[str | bytes] = [
    "/",
    "/index.html",
    "/api/users/{n}",
    "/api/orders/{uuid}",
    "/static/app.{hex}.js",
    "/café",
    "/日本/ページ",
    '/say"hi"',
    "/back\\slash",
    b"/bad\xff\xfe",  # not UTF-8: stays `\xFF\xFE` as text
    "/tab\there",
    "/a%20b",
    "/health",
]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
    'Mozilla/5.0 (日本語; "quoted")',
    "curl/8.5.0",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
    "GPTBot/1.1",
    "okhttp/4.12.0",
]
HEALTH = "ELB-HealthChecker/2.0"
REFERERS = ["-", "", "https://example.com/ü", 'https://search.example/?q="x"']
STATUSES = [200, 200, 200, 200, 206, 301, 304, 400, 404, 404, 499, 500, 502, 599]
DAMAGE = [
    b"",
    b"PROXY TCP4 198.51.100.7 10.0.0.5 5123 80",
    b"\x16\x03\x01\x02\x00\x01\xfc\x03\x03",
    b'203.0.113.9 - - [20/Nov/2026:00:01:00 +0000] "GET /x HTTP/1.1" abc 1 "-" "-"',
    b'203.0.113.9 - - [32/Nov/2026:00:01:00 +0000] "GET /x HTTP/1.1" 200 1 "-" "-"',
]
START = datetime(2026, 11, 20, tzinfo=UTC)


def _path(rng: random.Random) -> bytes:
    path = rng.choice(PATHS)
    if isinstance(path, bytes):
        return path
    return path.format(
        n=rng.randrange(1, 40),
        uuid=f"{rng.getrandbits(128):032x}",
        hex=f"{rng.getrandbits(32):08x}",
    ).encode()


def _request(rng: random.Random) -> str:
    method = rng.choice(["GET", "GET", "GET", "POST", "HEAD"])
    query = rng.choice([b"", b"?page=2", b'?q="x y"'])
    return nginx_escaped(method.encode() + b" " + _path(rng) + query + b" HTTP/1.1")


def _when(i: int) -> str:
    return (START + timedelta(seconds=i * 0.7)).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _client(rng: random.Random) -> str:
    return rng.choice(
        [
            f"203.0.113.{rng.randrange(1, 30)}",
            f"198.51.100.{rng.randrange(1, 10)}",
            f"2001:db8::{rng.randrange(1, 9):x}",
            f"10.0.3.{rng.randrange(1, 4)}",
        ]
    )


def elb_log(rng: random.Random, lines: int) -> bytes:
    """`elb_log` lines: PROXY protocol client first, `-` when there was none."""
    out = []
    for i in range(lines):
        if rng.random() < 0.04:
            out.append(rng.choice(DAMAGE))
            continue
        agent = rng.choice(AGENTS)
        client = _client(rng) if rng.random() > 0.05 else "-"
        if rng.random() < 0.1:  # balancer checks: no PROXY header, a node, a stranger
            agent = HEALTH
            client = rng.choice(["-", "10.0.0.5", "10.0.0.6", "203.0.113.66"])
        out.append(
            f'{client} - - [{_when(i)}] "{_request(rng)}" {rng.choice(STATUSES)} '
            f'{rng.randrange(0, 5000)} "{nginx_escaped(rng.choice(REFERERS))}" '
            f'"{nginx_escaped(agent)}"'.encode()
        )
    return b"\n".join(out) + b"\n"


def timed_log(rng: random.Random, lines: int) -> bytes:
    """`TIMED` lines behind an ALB (X-Forwarded-For), with latencies."""
    out = []
    for i in range(lines):
        if rng.random() < 0.03:
            out.append(rng.choice(DAMAGE[:2]))
            continue
        peer = rng.choice(["10.0.1.10", "10.0.1.11", "198.51.100.200"])
        xff = rng.choice(["-", _client(rng), f"{_client(rng)}, 10.0.1.9"])
        took = rng.choice([1, 2, 2, 5, 13, 13, 40, 250, 1200]) / 1000
        upstream = rng.choice(
            ["-", f"{took:.3f}", f"{took / 2:.3f}, {took / 4:.3f}", "0.002, -"]
        )
        out.append(
            f'{peer} - - [{_when(i)}] "{_request(rng)}" {rng.choice(STATUSES)} '
            f'{rng.randrange(0, 5000)} "{nginx_escaped(rng.choice(REFERERS))}" '
            f'"{nginx_escaped(rng.choice(AGENTS))}" "{xff}" {took:.3f} '
            f'"{upstream}"'.encode()
        )
    return b"\n".join(out) + b"\n"


def common_log(rng: random.Random, lines: int) -> bytes:
    """NCSA `common` lines: no referrer, no user agent, so no health checks."""
    out = []
    for i in range(lines):
        out.append(
            f'{_client(rng)} - - [{_when(i)}] "{_request(rng)}" '
            f"{rng.choice(STATUSES)} {rng.randrange(0, 5000)}".encode()
        )
    return b"\n".join(out) + b"\n"


# -- the pool of rows ---------------------------------------------------------


class Pool:
    """Frames of real rows (`frames`) and their diagonal concatenation."""

    def __init__(
        self, frames: list[pl.DataFrame], rows: pl.DataFrame, elb: Path, timed: Path
    ) -> None:
        self.frames = frames
        self.rows = rows  # with ORIGIN
        self.elb = elb
        self.timed = timed

    def __repr__(self) -> str:  # what Hypothesis prints in a failing example
        return f"<Pool of {self.rows.height} rows from {len(self.frames)} frames>"

    @property
    def ranks(self) -> dict[str, int]:
        names = self.rows.get_column("source").unique(maintain_order=True)
        return {name: i for i, name in enumerate(names.to_list())}


def _read(path: Path, **keywords: object) -> pl.DataFrame:
    return pplog.read_log(path, include_rejects=True, **keywords)  # type: ignore[arg-type]


def build_pool(folder: Path) -> Pool:
    """The rows: two logs written into `folder`, the samples and the corpora."""
    elb, timed = folder / "elb.log", folder / "timed.log"
    elb.write_bytes(elb_log(random.Random(1), 400))
    timed.write_bytes(timed_log(random.Random(2), 400))
    common = folder / "common.log"
    common.write_bytes(common_log(random.Random(3), 100))
    frames = [
        _read(elb, format="elb_log"),
        _read(timed, log_format=TIMED),
        _read(SAMPLES / "elb-access.log").slice(1000, 150),
        _read(SAMPLES / "combined-access.log").head(150),
        _read(SAMPLES / "main-access.log").tail(100),
        _read(SAMPLES / "timed-access.log", log_format=TIMED).head(150),
        _read(CORPORA / "nasty" / "nasty_lines.log", format="main"),
        _read(CORPORA / "vrl" / "vrl_nginx_access_inputs.log", format="combined"),
        _read(CORPORA / "vrl" / "vrl_aws_alb_inputs.log"),
        _read(CORPORA / "lnav" / "logfile_bad_access_log.0"),
        _read(CORPORA / "beats-nginx" / "access.log"),
        _read(CORPORA / "elastic-examples" / "apache_logs").slice(500, 100),
        _read(common, format="common"),
    ]
    rows = pl.concat(
        [f.with_columns(pl.lit(i).alias(ORIGIN)) for i, f in enumerate(frames)],
        how="diagonal_relaxed",
    )
    return Pool(frames, rows, elb, timed)


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Pool:
    return build_pool(tmp_path_factory.mktemp("partials"))


def test_the_pool_has_what_the_merges_must_get_right(pool: Pool) -> None:
    rows = pool.rows
    ok = rows.filter(pl.col("reject_reason").is_null())
    assert rows.get_column("reject_reason").drop_nulls().n_unique() >= 4
    assert ok.get_column("client_ip").null_count() > 10
    assert ok.filter(pl.col("path").str.contains("é")).height > 5
    assert ok.filter(pl.col("path").str.contains('"', literal=True)).height > 5
    assert ok.filter(pl.col("path").str.contains("\\xFF", literal=True)).height > 5
    assert ok.filter(pl.col("path").is_null()).height > 0
    health = ok.filter(pl.col("http_user_agent") == HEALTH)
    assert health.get_column("client_ip").null_count() > 0
    assert health.filter(pl.col("client_ip").str.starts_with("10.")).height > 0
    assert health.filter(pl.col("client_ip") == "203.0.113.66").height > 0
    assert ok.get_column("request_time").drop_nulls().len() > 400
    assert len(pool.frames) == rows.get_column(ORIGIN).n_unique()
    assert "http_user_agent" not in pool.frames[-1].columns


# -- helpers -------------------------------------------------------------------


def assert_same_tables(got: Tables, want: Tables) -> None:
    for name in ("overview", "clients", "paths", "errors", "rejects"):
        assert_frame_equal(getattr(got, name), getattr(want, name), check_exact=True)
    assert_frame_equal(got.reject_samples, want.reject_samples, check_exact=True)
    assert got.interval == want.interval
    assert list(got.extra) == list(want.extra)
    for name, table in want.extra.items():
        assert_frame_equal(got.extra[name], table, check_exact=True)


def merged(parts: list[Partial], rng: random.Random) -> Partial:
    """`parts` merged in a random order and a random tree shape."""
    parts = list(parts)
    rng.shuffle(parts)

    def tree(items: list[Partial]) -> Partial:
        if len(items) == 1:
            return items[0] if rng.random() < 0.5 else merge(items)
        if len(items) > 2 and rng.random() < 0.3:
            return merge(items)  # several at once
        cut = rng.randrange(1, len(items))
        return merge([tree(items[:cut]), tree(items[cut:])])

    return tree(parts)


def chunks(
    pool: Pool, picked: pl.DataFrame, k: int, how: str, rng: random.Random
) -> list[pl.DataFrame]:
    """`picked` (rows of the pool) in `k` chunks.

    `contiguous`: cut at random places; `scattered`: each row to a random
    chunk (some may be empty); `own_columns`: each origin's rows in one or
    two chunks with only that origin's columns, as a file's map sees them.
    """
    n = picked.height
    if how == "contiguous":
        cuts = sorted(rng.randrange(0, n + 1) for _ in range(k - 1))
        bounds = [0, *cuts, n]
        return [
            picked.slice(a, b - a) for a, b in zip(bounds, bounds[1:], strict=False)
        ]
    if how == "own_columns":  # pieces of each origin: at most two
        k = min(k, 2)
    chunk = pl.Series([rng.randrange(k) for _ in range(n)], dtype=pl.Int64)
    tagged = picked.with_columns(chunk.alias("_chunk"))
    if how == "scattered":
        return [tagged.filter(pl.col("_chunk") == i).drop("_chunk") for i in range(k)]
    out = []
    for (origin, _), part in tagged.group_by(ORIGIN, "_chunk", maintain_order=True):
        columns = [*pool.frames[int(origin)].columns, ORIGIN]  # type: ignore[call-overload]
        out.append(part.select(columns).cast(pool.frames[int(origin)].schema))  # type: ignore[call-overload]
    return out


def mapped(frame: pl.DataFrame, map_settings: MapSettings) -> Partial:
    return map_frame(frame.drop(ORIGIN), map_settings)


# -- merge properties ------------------------------------------------------------


@pytest.mark.slow  # 11 s of examples; byte ranges mapped apart stay in default
@FAST
@given(
    seed=SEEDS,
    pick=st.sampled_from(["all", "slice", "sample"]),
    k=st.integers(1, 6),
    how=st.sampled_from(["contiguous", "scattered", "own_columns"]),
    by=st.sampled_from(["path", "route"]),
    kept=st.sampled_from(["all", "bots", "status", "client", "path"]),
)
def test_any_split_merged_in_any_order_gives_one_pass(
    pool: Pool,
    seed: int,
    pick: str,
    k: int,
    how: str,
    by: str,
    kept: str,
) -> None:
    check_any_split(pool, random.Random(seed), pick, k, how, by, kept)


def kept_settings(kept: str, ranks: dict[str, int]) -> MapSettings:
    """The map's settings for what a test keeps: every row (`all`), no bots,
    some statuses, clients or paths, or health checks counted as visitors
    (`client`, beside its client filter)."""
    filters = {
        "status": Filters.parse(status="4xx,599"),
        "client": Filters.parse(client=["10.0.0.0/8", "203.0.113.0/25"]),
        "path": Filters.parse(path=["^/api/", "é"]),
    }.get(kept, Filters())
    return MapSettings(
        filters=filters,
        exclude_bots=kept == "bots",
        checked=checked_ranges(None),
        keep_health_checks=kept == "client",
        ranks=ranks,
    )


def check_any_split(
    pool: Pool,
    rng: random.Random,
    pick: str,
    k: int,
    how: str,
    by: str,
    kept: str,
) -> None:
    """One pass over the picked rows, and their chunks mapped and merged."""
    rows = pool.rows
    if pick == "slice":
        start = rng.randrange(rows.height)
        rows = rows.slice(start, rng.randrange(1, rows.height - start + 1))
    elif pick == "sample":
        rows = rows.sample(n=rng.randrange(1, rows.height), seed=rng.getrandbits(32))
    map_settings = kept_settings(kept, pool.ranks)
    finish_settings = FinishSettings(top=0, by=by, left_out=kept != "all")
    pieces = chunks(pool, rows, k, how, rng)
    if how == "own_columns":  # one pass sees the columns the pieces have
        rows = pl.concat(pieces, how="diagonal_relaxed")
    one = finish(mapped(rows, map_settings), finish_settings)
    parts = [mapped(c, map_settings) for c in pieces]
    assert_same_tables(finish(merged(parts, rng), finish_settings), one)


def _sorted_frames(partial: Partial) -> dict[str, pl.DataFrame]:
    """Each frame with its columns and rows in a canonical order."""
    return {
        name: frame.select(sorted(frame.columns)).sort(
            sorted(frame.columns), nulls_last=True
        )
        for name, frame in sorted(partial.frames.items())
    }


def _three(pool: Pool) -> list[Partial]:
    """Partials of three formats, each with its own columns."""
    map_settings = MapSettings(checked=checked_ranges(None), ranks=pool.ranks)
    # the synthetic elb_log, the synthetic timed log, the ALB corpus
    return [map_frame(pool.frames[i], map_settings) for i in (0, 1, 8)]


def test_merge_is_associative_and_commutative_on_partials(pool: Pool) -> None:
    a, b, c = _three(pool)
    left = merge([a, merge([b, c])])
    right = merge([merge([c, a]), b])
    flat = merge([b, c, a])
    for by in ("path", "route"):
        want = finish(left, FinishSettings(top=0, by=by))
        assert_same_tables(finish(right, FinishSettings(top=0, by=by)), want)
        assert_same_tables(finish(flat, FinishSettings(top=0, by=by)), want)
    # the frames themselves agree, up to the order of rows and columns
    # (samples and problems are kept in order already)
    frames = _sorted_frames(left)
    for other in (right, flat):
        got = _sorted_frames(other)
        assert list(got) == list(frames)
        for name, frame in frames.items():
            assert_frame_equal(got[name], frame, check_exact=True)


def test_merging_one_partial_or_an_empty_one_changes_nothing(pool: Pool) -> None:
    a, _b, _c = _three(pool)
    map_settings = MapSettings(checked=checked_ranges(None), ranks=pool.ranks)
    empty = map_frame(pool.frames[0].head(0), map_settings)
    want = finish(a, FinishSettings(top=0))
    assert_same_tables(finish(merge([a]), FinishSettings(top=0)), want)
    assert_same_tables(finish(merge([empty, a, empty]), FinishSettings(top=0)), want)
    assert finish(empty, FinishSettings(top=0)).overview.item(0, "lines") == 0
    with pytest.raises(ValueError, match="at least one partial"):
        merge([])


def test_no_rows_give_no_balancer_or_host_rows(pool: Pool) -> None:
    """A format that logs no peer or no host groups its rows under a null key;
    no rows at all (an empty input, or every row filtered out) must give no
    such row, not one with zero requests, which a merge would then show."""
    without = [f for f in pool.frames if "remote_addr" not in f.columns]
    assert without, "the pool has a format without a peer"
    nothing = MapSettings(
        filters=Filters.parse(path=["^/no such path$"]),
        checked=checked_ranges(None),
        ranks=pool.ranks,
    )
    plain = MapSettings(checked=checked_ranges(None), ranks=pool.ranks)
    for frame in without:
        for rows, settings_ in ((frame.head(0), plain), (frame, nothing)):
            partial = map_frame(rows, settings_)
            assert partial["lb"].height == 0
            assert partial["hosts"].height == 0
    a = map_frame(pool.frames[0], plain)
    empty = map_frame(without[0].head(0), plain)
    want = finish(a, FinishSettings(top=0))
    assert_same_tables(finish(merge([a, empty]), FinishSettings(top=0)), want)


@pytest.mark.parametrize("road", ["pickle", "parquet"])
def test_a_partial_survives_pickle_and_parquet(
    pool: Pool, road: str, tmp_path: Path
) -> None:
    a, b, c = _three(pool)
    map_settings = MapSettings(checked=checked_ranges(None), ranks=pool.ranks)
    empty = map_frame(pool.frames[1].head(0), map_settings)
    for partial in (merge([a, b, c]), a, empty):
        if road == "pickle":
            back = pickle.loads(pickle.dumps(partial))  # noqa: S301 - our own bytes
        else:
            folder = tmp_path / str(id(partial))
            partial.write(folder)
            back = Partial.read(folder)
        assert sorted(back.frames) == sorted(partial.frames)
        for name, frame in partial.frames.items():
            assert_frame_equal(back[name], frame, check_exact=True)
        for by in ("path", "route"):
            settings_ = FinishSettings(top=0, by=by)
            assert_same_tables(finish(back, settings_), finish(partial, settings_))
        # and it merges as the original does
        assert_same_tables(
            finish(merge([back, c]), FinishSettings(top=0)),
            finish(merge([partial, c]), FinishSettings(top=0)),
        )


# -- exact percentiles ------------------------------------------------------------


def nearest_rank(values: Sequence[float], percent: int) -> float:
    """The smallest value with at least `percent`% of the values at or below."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * percent // 100))  # ceil, in integers
    return ordered[rank - 1]


def _latencies(rows: pl.DataFrame) -> dict[str, dict[str | None, list[float]]]:
    """Per measure, per path: the values of the accepted rows, in Python."""
    ok = rows.filter(pl.col("reject_reason").is_null())
    out: dict[str, dict[str | None, list[float]]] = {}
    for measure in ("request_time", "upstream_response_time"):
        values: dict[str | None, list[float]] = defaultdict(list)
        for path, value in ok.select("path", measure).iter_rows():
            if isinstance(value, list):  # upstream tries add up
                tries = [v for v in value if v is not None]
                # the tries add up to nginx's milliseconds
                value = round(sum(tries), 3) if tries else None
            if value is not None:
                values[path].append(value)
        out[measure] = values
    return out


@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, k=st.integers(1, 8))
def test_percentiles_stay_exact_nearest_rank_after_merges(
    pool: Pool, seed: int, k: int
) -> None:
    rng = random.Random(seed)
    rows = pool.rows.filter(pl.col(ORIGIN).is_in([1, 5]))  # the timed logs
    assert rows.get_column("upstream_response_time").dtype == pl.List(pl.Float64)
    map_settings = MapSettings(checked=checked_ranges(None), ranks=pool.ranks)
    parts = [mapped(c, map_settings) for c in chunks(pool, rows, k, "scattered", rng)]
    paths = finish(merged(parts, rng), FinishSettings(top=0)).paths
    expected = _latencies(rows)
    assert expected["upstream_response_time"]
    for measure, per_path in expected.items():
        got = {
            r["path"]: r
            for r in paths.select(
                "path", *(f"{measure}_{s}" for s in ("p50", "p95", "p99", "max"))
            ).iter_rows(named=True)
        }
        for path, values in per_path.items():
            row = got[path]
            for percent in (50, 95, 99):
                assert row[f"{measure}_p{percent}"] == nearest_rank(values, percent)
            assert row[f"{measure}_max"] == max(values)
        for path, row in got.items():  # paths without a value have none
            if path not in per_path:
                assert row[f"{measure}_p50"] is None


def test_nearest_rank_oracle() -> None:
    values = [0.005, 0.001, 0.002, 0.003, 0.004]
    assert nearest_rank(values, 50) == 0.003
    assert nearest_rank(values, 95) == 0.005
    assert nearest_rank([0.1] * 19 + [9.0], 95) == 0.1  # the 19th of 20
    assert nearest_rank([0.1] * 19 + [9.0], 99) == 9.0
    assert math.isclose(nearest_rank([1.0], 99), 1.0)


# -- byte ranges of a file, mapped as tasks ----------------------------------------


def _task(path: Path, span: tuple[int, int] | None, *, timed: bool) -> Task:
    spec = pplog.LogSpec.build(
        format=None if timed else "elb_log", log_format=TIMED if timed else None
    )
    (group,) = spec.groups([Source(str(path), path)])
    assert group.format is not None
    return Task((Source(str(path), path, span),), group.format, group.policy)


@settings(max_examples=20, deadline=None)
@given(
    seed=SEEDS,
    k=st.integers(1, 5),
    timed=st.booleans(),
    by=st.sampled_from(["path", "route"]),
)
def test_byte_ranges_mapped_apart_merge_to_the_whole_file(
    pool: Pool, seed: int, k: int, timed: bool, by: str
) -> None:
    """The escaped keys of each range decode and merge to the whole file's
    tables, and to those of its decoded rows (`read_log`)."""
    rng = random.Random(seed)
    path = pool.timed if timed else pool.elb
    data = path.read_bytes()
    starts = [0] + [i + 1 for i, b in enumerate(data[:-1]) if b == 0x0A]
    cuts = sorted(set(rng.sample(starts[1:], k - 1)))
    bounds = [0, *cuts, len(data)]
    map_settings = MapSettings(checked=checked_ranges(None), ranks={str(path): 0})
    finish_settings = FinishSettings(top=0, by=by)
    ranges = [
        map_task(_task(path, (a, b), timed=timed), map_settings)
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]
    whole = finish(
        map_task(_task(path, None, timed=timed), map_settings), finish_settings
    )
    assert_same_tables(finish(merged(ranges, rng), finish_settings), whole)
    origin = 1 if timed else 0
    rows = map_frame(pool.frames[origin], map_settings)
    assert_same_tables(finish(rows, finish_settings), whole)


def test_a_partial_of_decoded_rows_is_one_of_escaped_rows(pool: Pool) -> None:
    """The map over escaped text (a file) and over decoded rows agree on the
    keys: `/café` is one path whichever way it was read."""
    map_settings = MapSettings(checked=checked_ranges(None), ranks={str(pool.elb): 0})
    from_file = map_task(_task(pool.elb, None, timed=False), map_settings)
    from_rows = map_frame(pool.frames[0], map_settings)
    paths = from_file["paths"].get_column("path")
    assert "/café" in paths.to_list()
    assert not paths.str.contains("\\xC3", literal=True).any()
    assert_frame_equal(
        from_file["paths"].sort("path", nulls_last=True),
        from_rows["paths"].sort("path", nulls_last=True),
        check_exact=True,
    )


@settings(FAST, max_examples=10)
@given(seed=SEEDS, k=st.integers(2, 6), by=st.sampled_from(["path", "route"]))
def test_finish_groups_again_what_a_partial_for_it_may_leave_unmerged(
    pool: Pool, seed: int, k: int, by: str
) -> None:
    """A partial made for `finish` alone may hold the `REGROUPED` frames of
    its parts concatenated (a key more than once): the same tables, top
    clients of an error included."""
    rng = random.Random(seed)
    map_settings = MapSettings(checked=checked_ranges(None), ranks=pool.ranks)
    parts = [
        mapped(c, map_settings) for c in chunks(pool, pool.rows, k, "scattered", rng)
    ]
    whole = merge(parts)
    frames = dict(whole.frames)
    for name in REGROUPED:
        frames[name] = pl.concat([p[name] for p in parts], how="diagonal_relaxed")
    for top in (0, 2):
        settings = FinishSettings(top=top, by=by)
        assert_same_tables(finish(Partial(frames), settings), finish(whole, settings))


def test_finish_does_not_wait_for_the_user_agent_tables_after_an_error(
    pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user-agent tables are made in a thread while the others are: an
    error in another table (or Ctrl-C) comes out at once, without waiting for
    that thread (ua-parser's Python resolver can take a minute on many
    agents), and an error in that thread comes out of `finish` too."""
    import sys
    import threading
    import time

    finish_module = sys.modules["pplog.reports.finish"]
    whole = mapped(pool.rows, MapSettings(checked=checked_ranges(None)))
    release = threading.Event()
    started = threading.Event()

    def slow_agents(
        per_client: pl.DataFrame,
        top: int,
        stop: threading.Event,
        known: pl.DataFrame | None,
    ) -> dict[str, pl.DataFrame]:
        started.set()
        release.wait(30)
        return {}

    def broken(*args: object, **kwargs: object) -> pl.DataFrame:
        assert started.wait(10)
        msg = "a table failed"
        raise RuntimeError(msg)

    monkeypatch.setattr(finish_module, "_agent_tables", slow_agents)
    monkeypatch.setattr(finish_module.paths_report, "table", broken)
    begun = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match="a table failed"):
            finish(whole)
        assert time.monotonic() - begun < 5
    finally:
        release.set()

    def failing(
        per_client: pl.DataFrame,
        top: int,
        stop: threading.Event,
        known: pl.DataFrame | None,
    ) -> dict[str, pl.DataFrame]:
        msg = "no agents today"
        raise ValueError(msg)

    monkeypatch.undo()
    monkeypatch.setattr(finish_module, "_agent_tables", failing)
    with pytest.raises(ValueError, match="no agents today"):
        finish(whole)


# The process ends right after `finish` failed elsewhere: it must wait for the
# user-agent thread (a thread stopped at exit inside ua-parser-rs aborts the
# process with "exception not rethrown"), and that thread is told to stop.
_EXIT_AFTER_AN_ERROR = """
import pathlib, sys, threading, time
import pplog
from pplog.reports.mapping import MapSettings
from pplog.tasks import map_frame
finish_module = sys.modules["pplog.reports.finish"]
marker = pathlib.Path(sys.argv[2])
def slow(per_client, top, stop, known):
    stop.wait(5)
    time.sleep(0.3)
    marker.write_text("stopped" if stop.is_set() else "not told")
    return {}
def broken(*args, **kwargs):
    raise RuntimeError("a table failed")
finish_module._agent_tables = slow
finish_module.paths_report.table = broken
partial = map_frame(pplog.read_log(sys.argv[1]), MapSettings())
try:
    finish_module.finish(partial)
except RuntimeError:
    sys.exit(3)
"""


def test_a_process_ending_after_finish_failed_waits_for_its_thread(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    marker = tmp_path / "marker"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _EXIT_AFTER_AN_ERROR,
            str(SAMPLES / "elb-access.log"),
            str(marker),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr.decode()
    assert marker.read_text() == "stopped"


@pytest.mark.parametrize("height", [0, 5])
def test_a_key_the_format_does_not_log_is_one_group_without_a_group_by(
    height: int,
) -> None:
    """Hosts and balancers of a format that logs neither: every row in one
    group of a null key (none without rows), the same rows a group-by of a
    null column gives, but as a select: polars' streaming group-by holds
    the rows of a null key until it ends (137 MiB on 8M elb_log lines)."""
    from pplog.reports._columns import by_key

    rows = pl.LazyFrame({"status": pl.Series([200, 404, 500, 200, 301][:height])})
    aggs = [pl.len().cast(pl.UInt64).alias("requests"), pl.col("status").max()]
    got = by_key(rows, None, "host", aggs)
    assert "AGGREGATE" not in got.explain(engine="streaming")
    want = (
        rows.with_columns(pl.lit(None, pl.String).alias("_k"))
        .group_by(pl.col("_k").alias("host"))
        .agg(aggs)
    )
    assert_frame_equal(got.collect(), want.collect())


@pytest.mark.parametrize("bots", [False, True])
def test_frames_without_a_client_column_read_the_rows_before_attribution(
    bots: bool,
) -> None:
    """The trust decisions are joined to every row of the frames that read
    the client; the others (paths, timeline, status codes...) read the rows
    as spooled, and the partial is the one the attributed rows alone give.
    With the bot exclusion selecting rows, every frame reads those."""
    from pplog.clientip import ProxyPolicy, attribute, with_pair_key
    from pplog.pipeline import parse_lines
    from pplog.reports import spooled, with_report_columns
    from pplog.reports.mapping import partial_of
    from pplog.sources import expand, scan_lines

    fmt = pplog.PRESETS["main"]
    policy = ProxyPolicy(trusted=["10.0.0.0/8", "192.168.0.0/16"])
    lines, _ = scan_lines(expand([SAMPLES / "main-access.log"]))
    rows = with_pair_key(parse_lines(lines, fmt, decode=False), policy)
    spool = spooled(rows, None, with_offset=True)
    attributed = with_report_columns(attribute(spool, policy, eager_decisions=True))
    settings = MapSettings(escape=fmt.escape, exclude_bots=bots)
    alone = partial_of(attributed, settings)
    both = partial_of(attributed, settings, unattributed=with_report_columns(spool))
    assert set(alone.frames) == set(both.frames)
    for name, frame in alone.frames.items():
        assert_frame_equal(frame, both.frames[name], check_row_order=False)


_PAIR_ROWS = st.lists(
    st.tuples(
        st.one_of(st.none(), st.sampled_from(["10.0.0.1", "10.0.0.2", "::1", "a"])),
        st.one_of(st.none(), st.sampled_from(["/", "/a", "/b?", "/\\x22"])),
        st.booleans(),
    ),
    max_size=60,
)


@given(rows=_PAIR_ROWS, pass_requests=st.integers(1, 7))
@settings(max_examples=60, deadline=None)
def test_pairs_in_passes_over_a_hashed_file_are_the_one_pass_pairs(
    rows: list[tuple[str | None, str | None, bool]], pass_requests: int
) -> None:
    """Above `PASS_REQUESTS`, the pairs are hashed once into a scratch file
    and de-duplicated over shares of the clients (null clients included),
    each share's pairs kept in a file until the last: the same set of rows
    as one `unique()`, and the scratch directory is gone after."""
    from pplog.reports import mapping

    frame = pl.LazyFrame(
        rows,
        schema={"client_ip": pl.String, "path": pl.String, "visitor": pl.Boolean},
        orient="row",
    )
    one = mapping._pairs(frame, len(rows))
    made: list[Path] = []
    scratch = mapping._scratch

    def spy() -> Iterator[Path]:
        with scratch() as where:
            made.append(where)
            yield where

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mapping, "PASS_REQUESTS", 0)
        patch.setattr(mapping, "PAIR_PASS_REQUESTS", pass_requests)
        patch.setattr(mapping, "_scratch", contextlib.contextmanager(spy))
        passes = mapping._pairs(frame, len(rows) or 1)
    assert passes.schema == one.schema
    assert_frame_equal(passes, one, check_row_order=False)
    assert passes.height == len(set(rows))
    assert made
    assert not made[0].exists()


def test_a_scratch_file_that_cannot_be_written_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pairs of a large input go through scratch files in the temporary
    directory; when it cannot be written, the summary stops with the
    spool's message, not a traceback."""
    import tempfile

    from pplog.errors import ReportError
    from pplog.reports import mapping

    frame = pl.LazyFrame({"client_ip": ["10.0.0.1"], "path": ["/"], "visitor": [True]})
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    monkeypatch.setattr(tempfile, "tempdir", str(blocked))
    monkeypatch.setattr(mapping, "PASS_REQUESTS", 0)
    with pytest.raises(ReportError, match="cannot write a temporary file"):
        mapping._pairs(frame, 1)


_ESCAPED_PATHS = st.sampled_from(
    ["/", "/a", "/é", "/\\xC3\\xA9", "/\\x22", '/"', "/\\x5Cx22", "/\\x41", "/A", None]
)


@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["10.0.0.1", "10.0.0.2", None]), _ESCAPED_PATHS),
        max_size=40,
    )
)
@settings(max_examples=80, deadline=None)
def test_decoded_pairs_are_the_pairs_of_the_decoded_paths(
    rows: list[tuple[str | None, str | None]],
) -> None:
    """The pairs of escaped rows, re-keyed by the decoded path's hash, are
    the distinct pairs of the decoded rows: escaped paths that decode to
    another path (escaped or not) merge with it, and a decoded backslash
    (`\\x5C`) does not chain into a second decoding."""
    from pplog._unescape import unescape
    from pplog.reports import mapping
    from pplog.reports.partial import text_hash

    frame = pl.DataFrame(
        rows, schema={"client_ip": pl.String, "path": pl.String}, orient="row"
    )
    hashed = frame.select(
        text_hash(pl.col("client_ip")).alias("client_hash"),
        text_hash(pl.col("path")).alias("path_hash"),
        pl.lit(True).alias("visitor"),  # noqa: FBT003
    ).unique()
    paths = frame.select("path").unique()
    got = mapping._decoded_pairs(hashed, paths, "default")
    want = frame.select(
        text_hash(pl.col("client_ip")).alias("client_hash"),
        text_hash(unescape(pl.col("path"), "default")).alias("path_hash"),
        pl.lit(True).alias("visitor"),  # noqa: FBT003
    ).unique()
    assert got.height == want.height
    assert_frame_equal(got, want, check_row_order=False)


def test_a_clients_frame_of_visitors_only_is_not_copied() -> None:
    """At finish time the per-client frame is filtered to visitors in three
    tables; without health checks every row is one, and the frame itself is
    used (a filter copied it: 17 MiB on 8M lines). With one, it is dropped."""
    from pplog.reports.partial import visitors_of

    frame = pl.DataFrame(
        {
            "client_ip": ["10.0.0.1", "10.0.0.2"],
            "visitor": [True, True],
            "requests": [1, 2],
        }
    )
    assert visitors_of(frame) is frame
    checked = frame.with_columns(pl.Series("visitor", [True, False]))
    assert visitors_of(checked).get_column("client_ip").to_list() == ["10.0.0.1"]
    unknown = frame.with_columns(pl.Series("visitor", [True, None], dtype=pl.Boolean))
    assert visitors_of(unknown).height == 1


def test_categorical_user_agents_become_the_same_text() -> None:
    """The clients frame's user agents, grouped as the spool's categoricals,
    become text by a join on their distinct values (the rows share each
    value's text) with the values, nulls and order a cast gives; text
    columns are left as they are."""
    from pplog.reports import mapping

    agents = ["curl/8.5.0", None, "Mozilla/5.0 (X11; Linux x86_64) " * 3, "curl/8.5.0"]
    coded = pl.DataFrame(
        {"ip": ["a", "b", "c", "d"], "ua": agents},
        schema={"ip": pl.String, "ua": pl.Categorical(pl.Categories.random())},
    )
    text = mapping._as_text(coded, "ua")
    assert text.schema == {"ip": pl.String, "ua": pl.String}
    assert text.get_column("ua").to_list() == agents
    assert_frame_equal(text, coded.with_columns(pl.col("ua").cast(pl.String)))
    assert mapping._as_text(text, "ua") is text


# -- the pairs of the shown rows ----------------------------------------------

RULES = [(), ("/api/users/*",), ("/static/**", "/api/*/*", "/health")]


@settings(FAST, max_examples=30)
@given(
    top=st.integers(1, 14),
    timed=st.booleans(),
    by=st.sampled_from(["path", "route"]),
    rules=st.integers(0, len(RULES) - 1),
    kept=st.sampled_from(["all", "bots", "status", "client", "path"]),
)
def test_the_pairs_of_the_shown_rows_give_the_tables_of_every_pair(
    pool: Pool, top: int, timed: bool, by: str, rules: int, kept: str
) -> None:
    """A partial that goes to `finish` alone (`Shown`) holds the pairs of the
    rows its tables show, no others: the tables are those of every pair,
    the clients' distinct paths and the paths' distinct clients included,
    at any cut (ties at the cut included: 400 lines of some 50 clients), by
    path or route, with filters, the bot exclusion and health checks, over
    the escaped text of a file (`/café`, `/say"hi"`, `/bad\\xFF\\xFE`)."""
    path = pool.timed if timed else pool.elb
    route_rules = parse_rules(list(RULES[rules])) if by == "route" else ()
    map_settings = kept_settings(kept, {str(path): 0})
    finish_settings = FinishSettings(
        top=top, by=by, rules=route_rules, left_out=kept != "all"
    )
    task = _task(path, None, timed=timed)
    every = map_task(task, map_settings)
    cut = Shown(top, by, route_rules)
    shown = map_task(task, dataclasses.replace(map_settings, shown=cut))
    assert shown["pairs"].height <= every["pairs"].height
    assert_same_tables(finish(shown, finish_settings), finish(every, finish_settings))


def test_a_partial_for_its_tables_alone_holds_the_pairs_of_their_rows(
    pool: Pool,
) -> None:
    """Cut to one row, the pairs are those of the busiest client's rows and
    the busiest path's rows, and the partial names its cut."""
    task = _task(pool.elb, None, timed=False)
    map_settings = MapSettings(checked=checked_ranges(None), ranks={str(pool.elb): 0})
    every = map_task(task, map_settings)
    shown = map_task(task, dataclasses.replace(map_settings, shown=Shown(1)))
    tables = finish(shown, FinishSettings(top=1))
    client, path = tables.clients.item(0, "client_ip"), tables.paths.item(0, "path")
    hashes = pl.select(
        text_hash(pl.lit(client, pl.String)).alias("client"),
        text_hash(pl.lit(path, pl.String)).alias("path"),
    ).row(0)
    pairs = shown["pairs"]
    ours = pl.col(CLIENT_HASH).eq_missing(hashes[0]) | pl.col(PATH_HASH).eq_missing(
        hashes[1]
    )
    assert pairs.filter(~ours).height == 0
    assert 0 < pairs.height < every["pairs"].height
    assert shown["shown"].row(0) == (1, "path", [])
    assert "shown" not in every.frames


def test_a_partial_for_its_tables_alone_is_not_merged_nor_cut_otherwise(
    pool: Pool,
) -> None:
    """Its pairs would be wrong for other rows: merging it, or finishing it
    with another cut, is an error rather than wrong distinct counts."""
    task = _task(pool.elb, None, timed=False)
    map_settings = MapSettings(checked=checked_ranges(None), shown=Shown(3))
    partial = map_task(task, map_settings)
    with pytest.raises(ValueError, match="cannot be merged"):
        merge([partial, map_task(task, MapSettings(checked=checked_ranges(None)))])
    for other in (
        FinishSettings(top=4),
        FinishSettings(top=3, by="route"),
        FinishSettings(top=0),
    ):
        with pytest.raises(ValueError, match="only the rows of tables cut as"):
            finish(partial, other)
    assert finish(partial, FinishSettings(top=3)).clients.height == 3
