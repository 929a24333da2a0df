"""HyperLogLog and DDSketch: error bounds, exact merges, both engines."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Literal

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from pplog.errors import OptionError
from pplog.reports.sketches import (
    DD_MIN_VALUE,
    DD_ZERO_BUCKET,
    dd_merge,
    dd_quantiles,
    dd_state,
    hll_estimate,
    hll_merge,
    hll_state,
)

Engine = Literal["auto", "streaming"]
ENGINES: list[Engine] = ["auto", "streaming"]
QS = (0.5, 0.95, 0.99, 1.0)


def collect(lf: pl.LazyFrame, engine: Engine, keys: list[str]) -> pl.DataFrame:
    """Collect and sort by `keys` (plus the state column) for frame equality."""
    df = lf.collect(engine=engine)
    order = [*keys, *(c for c in ("_reg", "_bucket") if c in df.columns)]
    return df.sort(order) if order else df


def random_ints(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.getrandbits(63) for _ in range(n)]


def nearest_rank(values: list[float], q: float) -> float:
    """Exact nearest-rank quantile: the value of rank ceil(q * n), 1-based."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


def assert_within_alpha(estimate: float, exact: float, alpha: float) -> None:
    if exact <= DD_MIN_VALUE:
        assert estimate == 0.0, (estimate, exact)
    else:
        # 1e-9: float rounding when a value sits on a bucket boundary
        assert abs(estimate - exact) <= alpha * exact * (1 + 1e-9), (estimate, exact)


# --- HyperLogLog -------------------------------------------------------------


@pytest.mark.parametrize("n", [10, 1000, 100_000, 1_000_000])
@pytest.mark.parametrize("kind", ["int", "str"])
def test_hll_within_three_standard_errors(n: int, kind: str) -> None:
    if kind == "int":
        values = pl.Series("v", random_ints(n, seed=n))
    else:
        values = pl.select(
            pl.format("10.{}.{}", pl.int_range(n) // 256, pl.int_range(n) % 256)
        ).to_series()
    lf = pl.LazyFrame({"v": values.append(values.head(n // 3))})  # duplicates
    out = hll_estimate(hll_state(lf, [], "v"), []).collect()
    tolerance = 3 * 1.04 / math.sqrt(2**12) * n
    assert abs(out.item() - n) <= tolerance, out.item()
    assert out.schema == pl.Schema({"estimate": pl.UInt64})


@pytest.mark.parametrize("engine", ENGINES)
def test_hll_per_group(engine: Engine) -> None:
    sizes = {"/one": 1, "/few": 7, "/mid": 3000, "/big": 60_000, "/huge": 200_000}
    paths: list[str] = []
    ips: list[int] = []
    for i, (path, size) in enumerate(sizes.items()):
        values = random_ints(size, seed=i)
        paths += [path] * (2 * size)
        ips += values + values[::-1]  # every value twice
    lf = pl.LazyFrame({"path": paths, "ip": ips}).select(pl.all().shuffle(seed=1))
    out = collect(hll_estimate(hll_state(lf, ["path"], "ip"), ["path"]), engine, [])
    got = dict(out.iter_rows())
    assert got.keys() == sizes.keys()
    for path, size in sizes.items():
        assert abs(got[path] - size) <= 3 * 1.04 / 64 * size, (path, got[path])
    assert got["/one"] == 1 and got["/few"] == 7


def test_hll_has_no_bump_where_linear_counting_ends() -> None:
    # The textbook estimator switches at 2.5 * m = 10,240 values (p=12) and
    # is ~1.5% high there, rms ~2.8%; Ertl's estimator stays at ~1.3%.
    n, groups = 10_000, 30
    lf = pl.LazyFrame(
        {
            "g": [g for g in range(groups) for _ in range(n)],
            "v": random_ints(n * groups, 7),
        }
    )
    est = hll_estimate(hll_state(lf, ["g"], "v"), ["g"]).collect()["estimate"]
    errors = [(e - n) / n for e in est.to_list()]
    rms = math.sqrt(sum(e * e for e in errors) / groups)
    assert rms < 1.25 * 1.04 / 64, rms
    assert abs(sum(errors) / groups) < 0.5 * 1.04 / 64


@pytest.mark.parametrize("engine", ENGINES)
def test_hll_merge_is_the_union(engine: Engine) -> None:
    rng = random.Random(3)
    keys = [rng.choice(["/a", "/b", "/c", None]) for _ in range(30_000)]
    values = [f"198.51.{rng.randrange(256)}.{rng.randrange(256)}" for _ in keys]
    df = pl.DataFrame({"path": keys, "ip": values})
    a, b = df.head(20_000).lazy(), df.tail(20_000).lazy()  # overlapping halves
    union = collect(hll_state(df.lazy(), ["path"], "ip"), engine, ["path"])
    merged = hll_merge(
        [hll_state(a, ["path"], "ip"), hll_state(b, ["path"], "ip")], ["path"]
    )
    assert_frame_equal(collect(merged, engine, ["path"]), union)
    assert_frame_equal(
        collect(hll_estimate(merged, ["path"]), engine, ["path"]),
        collect(hll_estimate(union.lazy(), ["path"]), engine, ["path"]),
    )
    assert union.schema == pl.Schema(
        {"path": pl.String, "_reg": pl.UInt16, "_rank": pl.UInt8}
    )


def test_hll_merge_of_merges_is_associative() -> None:
    df = pl.DataFrame({"k": [i % 3 for i in range(9000)], "v": random_ints(9000, 5)})
    parts = [hll_state(df.slice(i, 3000).lazy(), ["k"], "v") for i in (0, 3000, 6000)]
    nested = hll_merge([hll_merge(parts[:2], ["k"]), parts[2]], ["k"])
    flat = hll_merge(parts, ["k"])
    assert_frame_equal(collect(nested, "auto", ["k"]), collect(flat, "auto", ["k"]))


def test_hll_ignores_nulls() -> None:
    with_nulls = pl.LazyFrame({"k": [1, 1, 1, 2, 2], "v": ["a", None, "b", None, None]})
    without = with_nulls.filter(pl.col("v").is_not_null())
    assert_frame_equal(
        collect(hll_state(with_nulls, ["k"], "v"), "auto", ["k"]),
        collect(hll_state(without, ["k"], "v"), "auto", ["k"]),
    )
    est = hll_estimate(hll_state(with_nulls, ["k"], "v"), ["k"]).collect()
    assert est.rows() == [(1, 2)]  # group 2 had only nulls: no row


@pytest.mark.parametrize("engine", ENGINES)
def test_hll_empty_input(engine: Engine) -> None:
    empty = pl.LazyFrame(schema={"path": pl.String, "ip": pl.String})
    keyed = hll_estimate(hll_state(empty, ["path"], "ip"), ["path"])
    assert_frame_equal(
        keyed.collect(engine=engine),
        pl.DataFrame(schema={"path": pl.String, "estimate": pl.UInt64}),
    )
    whole = hll_estimate(hll_state(empty, [], "ip"), []).collect(engine=engine)
    assert whole.rows() == [(0,)]


@pytest.mark.parametrize("precision", [8, 14, 16])
def test_hll_other_precisions(precision: int) -> None:
    n = 50_000
    lf = pl.LazyFrame({"v": random_ints(n, precision)})
    state = hll_state(lf, [], "v", precision=precision)
    est = hll_estimate(state, [], precision=precision).collect().item()
    assert abs(est - n) <= 3 * 1.04 / math.sqrt(2**precision) * n
    assert state.collect()["_reg"].max() < 2**precision


@pytest.mark.parametrize("precision", [3, 17])
def test_hll_rejects_precision(precision: int) -> None:
    lf = pl.LazyFrame({"v": [1]})
    with pytest.raises(OptionError, match="must be 8..16"):
        hll_state(lf, [], "v", precision=precision)


def test_merge_needs_a_state() -> None:
    with pytest.raises(OptionError, match="needs at least one state"):
        hll_merge([], ["k"])
    with pytest.raises(OptionError, match="needs at least one state"):
        dd_merge([], ["k"])


# --- DDSketch ----------------------------------------------------------------


def lognormal_latencies(n: int, seed: int) -> list[float]:
    """Seconds, median ~0.1 s, clipped to 0.001..30 like real request times."""
    rng = random.Random(seed)
    return [min(max(rng.lognormvariate(-2.3, 1.5), 0.001), 30.0) for _ in range(n)]


def nginx_latencies(n: int, seed: int) -> list[float]:
    """Millisecond resolution with many 0.000s, as nginx logs $request_time."""
    rng = random.Random(seed)
    return [
        0.0 if rng.random() < 0.3 else round(rng.lognormvariate(-4, 2), 3)
        for _ in range(n)
    ]


@pytest.mark.parametrize("alpha", [0.01, 0.001, 0.05])
@pytest.mark.parametrize("data", [lognormal_latencies, nginx_latencies])
@pytest.mark.parametrize("engine", ENGINES)
def test_dd_quantiles_within_alpha(
    alpha: float, data: Callable[[int, int], list[float]], engine: Engine
) -> None:
    groups = {"/api": 50_000, "/static": 5000, "/rare": 3}
    frames = []
    for i, (path, n) in enumerate(groups.items()):
        frames.append(pl.DataFrame({"path": path, "t": data(n, i)}))
    df = pl.concat(frames)
    state = dd_state(df.lazy(), ["path"], "t", alpha=alpha)
    qs = (0.0, 0.001, *QS)
    out = collect(dd_quantiles(state, ["path"], qs, alpha=alpha), engine, ["path"])
    assert out.columns == ["path", "p0", "p0.1", "p50", "p95", "p99", "p100"]
    for row in out.iter_rows(named=True):
        values = df.filter(pl.col("path") == row["path"])["t"].to_list()
        for q, column in zip(qs, out.columns[1:], strict=True):
            assert_within_alpha(row[column], nearest_rank(values, q), alpha)


def test_dd_zero_bucket() -> None:
    lf = pl.LazyFrame({"k": ["a"] * 4, "t": [0.0, 0.0, 1e-10, 0.004]})
    state = dd_state(lf, ["k"], "t").collect().sort("_bucket")
    bucket = math.ceil(math.log(0.004) / math.log(1.01 / 0.99))  # -276
    assert state.rows() == [("a", DD_ZERO_BUCKET, 3), ("a", bucket, 1)]
    assert state.schema == pl.Schema(
        {"k": pl.String, "_bucket": pl.Int32, "_count": pl.UInt64}
    )
    out = dd_quantiles(state.lazy(), ["k"], [0.5, 0.75, 1.0]).collect()
    assert out.row(0)[:3] == ("a", 0.0, 0.0)
    assert_within_alpha(out.item(0, "p100"), 0.004, 0.01)


@pytest.mark.parametrize("engine", ENGINES)
def test_dd_merge_is_exact_and_order_free(engine: Engine) -> None:
    rng = random.Random(11)
    n = 40_000
    df = pl.DataFrame(
        {
            "path": [rng.choice(["/a", "/b", None]) for _ in range(n)],
            "t": nginx_latencies(n, seed=12),
            "part": [rng.randrange(3) for _ in range(n)],
        }
    )
    whole = dd_state(df.lazy(), ["path"], "t")
    parts = [dd_state(df.filter(part=p).lazy(), ["path"], "t") for p in (2, 0, 1)]
    merged = dd_merge(parts, ["path"])
    assert_frame_equal(
        collect(merged, engine, ["path"]), collect(whole, engine, ["path"])
    )
    expected = collect(dd_quantiles(whole, ["path"], QS), engine, ["path"])
    assert_frame_equal(
        collect(dd_quantiles(merged, ["path"], QS), engine, ["path"]), expected
    )
    # an unmerged concat (duplicate buckets) still ranks correctly
    concat = pl.concat(parts)
    assert_frame_equal(
        collect(dd_quantiles(concat, ["path"], QS), engine, ["path"]), expected
    )


def test_dd_ignores_nulls_negatives_and_nan() -> None:
    raw = [0.1, None, -1.0, float("nan"), float("inf"), 0.2, 0.3]
    lf = pl.LazyFrame({"k": [1] * len(raw), "t": raw})
    clean = pl.LazyFrame({"k": [1, 1, 1], "t": [0.1, 0.2, 0.3]})
    assert_frame_equal(
        collect(dd_state(lf, ["k"], "t"), "auto", ["k"]),
        collect(dd_state(clean, ["k"], "t"), "auto", ["k"]),
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_dd_empty_input(engine: Engine) -> None:
    empty = pl.LazyFrame(schema={"path": pl.String, "t": pl.Float64})
    out = dd_quantiles(dd_state(empty, ["path"], "t"), ["path"], [0.5])
    assert_frame_equal(
        out.collect(engine=engine),
        pl.DataFrame(schema={"path": pl.String, "p50": pl.Float64}),
    )


def test_dd_whole_frame_and_names() -> None:
    lf = pl.LazyFrame({"t": [0.001 * i for i in range(1, 1001)]})
    names = {0.5: "request_time_p50", 0.999: "request_time_p999"}
    out = dd_quantiles(dd_state(lf, [], "t"), [], [0.5, 0.999], names=names).collect()
    assert out.columns == ["request_time_p50", "request_time_p999"]
    assert_within_alpha(out.item(0, 0), 0.5, 0.01)
    assert_within_alpha(out.item(0, 1), 0.999, 0.01)


def test_dd_rejects_bad_arguments() -> None:
    state = dd_state(pl.LazyFrame({"t": [1.0]}), [], "t")
    with pytest.raises(OptionError, match="outside"):
        dd_quantiles(state, [], [1.5])
    with pytest.raises(OptionError, match="names must differ"):
        dd_quantiles(state, [], [0.5, 0.9], names={0.9: "p50"})
    with pytest.raises(OptionError, match="alpha"):
        dd_state(pl.LazyFrame({"t": [1.0]}), [], "t", alpha=1.0)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(
        st.one_of(
            st.floats(min_value=1e-9, max_value=1e12, exclude_min=True),
            st.sampled_from([0.0, 0.001, 1.0]),
        ),
        min_size=1,
        max_size=200,
    ),
    q=st.floats(min_value=0.0, max_value=1.0),
    alpha=st.sampled_from([0.001, 0.01, 0.1]),
)
def test_dd_quantile_property(values: list[float], q: float, alpha: float) -> None:
    lf = pl.LazyFrame({"t": values})
    out = dd_quantiles(dd_state(lf, [], "t", alpha=alpha), [], [q], alpha=alpha)
    assert_within_alpha(out.collect().item(), nearest_rank(values, q), alpha)
