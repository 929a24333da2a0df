"""Mergeable sketches for distinct counts (HyperLogLog) and quantiles (DDSketch).

Reports are exact unless asked otherwise: `summarize(approx=True)` (``pplog
summarize --approx``) keeps these sketches in the `Partial` instead of the
exact (client, path) pairs and latency counts, for inputs whose distinct
pairs would not fit in memory; never a silent switch. Each sketch is
a *state* table that partial results (several files, cron batches) can be
merged from with `pl.concat` and a re-aggregation, and an *estimate* step that
turns a state into numbers. Everything is a polars group_by, so it streams,
and memory grows with groups x registers (or buckets), not with rows.

Error bounds
------------
HyperLogLog (`hll_state`, `hll_merge`, `hll_estimate`)
    Relative standard error ``1.04 / sqrt(2**precision)``: about 1.6% at the
    default ``precision=12`` (4096 registers) and 0.8% at ``precision=14``;
    nearly all estimates fall within three standard errors (4.9% at p=12).
    Ertl's estimator keeps that error over the whole range, with no bump
    where the textbook estimator switches from linear counting; counts far
    below the register count (tens at p=12) are usually exact. Merging is
    exact: the merged state equals the state of the union. A state has at
    most ``min(distinct values, 2**precision)`` rows per group, so it saves
    memory over the exact pairs only for groups with many distinct values.

DDSketch (`dd_state`, `dd_merge`, `dd_quantiles`)
    Every quantile is within relative error ``alpha`` (default 1%) of the
    exact nearest-rank quantile (rank ``ceil(q * n)``, the definition the
    exact latency table uses), for any data and any number of merges.
    Values at or below `DD_MIN_VALUE` (nginx logs fast requests as ``0.000``)
    share one zero bucket and come back as exactly ``0.0``: absolute error
    at most 1e-9 there. Negative values, NaN and infinities are ignored like
    nulls (AWS load balancers log ``-1`` for "no value").

States hash values with ``Expr.hash``, which polars only keeps stable within
one polars version. Merge HLL states made by the same polars version and from
the same value dtype; DDSketch states have no such limit.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import polars as pl

from pplog.errors import OptionError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

DD_MIN_VALUE = 1e-9
"""Values at or below this go to the DDSketch zero bucket."""

DD_ZERO_BUCKET = -(2**31)
"""`_bucket` of the zero bucket: Int32 min, below every log bucket."""

_HLL_SEED = 0x5F3759DF  # fixed: states are only mergeable with the same seed
_LN2 = math.log(2.0)


# --- HyperLogLog -------------------------------------------------------------


def hll_state(
    lf: pl.LazyFrame, keys: list[str], value: str, *, precision: int = 12
) -> pl.LazyFrame:
    """HyperLogLog registers of the non-null `value`s per group of `keys`.

    The 64-bit hash of each value is split into a register index (its top
    `precision` bits) and the rank of the rest (leading zeros + 1); a register
    keeps the largest rank seen. Only registers that saw a value get a row, so
    the state has at most ``min(distinct values, 2**precision)`` rows per group.

    Parameters
    ----------
    lf
        Rows to count.
    keys
        Group columns; ``[]`` counts over the whole frame.
    value
        Column whose distinct non-null values are counted.
    precision
        ``log2`` of the number of registers, 8 to 16. Standard error is
        ``1.04 / sqrt(2**precision)``.

    Returns
    -------
    pl.LazyFrame
        ``keys..., _reg (UInt16), _rank (UInt8)``, one row per used register.

    Raises
    ------
    OptionError
        If `precision` is outside 8..16.

    Examples
    --------
    >>> lf = pl.LazyFrame({"path": ["/a", "/a", "/b"], "ip": ["1", "2", None]})
    >>> hll_state(lf, ["path"], "ip").collect().height  # 2 values, 2 registers
    2
    """
    _check_precision(precision)
    h = pl.col(value).hash(seed=_HLL_SEED)
    rest_bits = 64 - precision
    split = pl.lit(2**rest_bits, dtype=pl.UInt64)
    # `rest` is below 2**rest_bits, so its 64-bit leading zeros include
    # `precision` zero bits on top; rest == 0 gives rest_bits + 1.
    rank = (h % split).bitwise_leading_zeros().cast(pl.Int32) - (precision - 1)
    return (
        lf.filter(pl.col(value).is_not_null())
        .select(
            *keys,
            (h // split).cast(pl.UInt16).alias("_reg"),
            rank.cast(pl.UInt8).alias("_rank"),
        )
        .group_by([*keys, "_reg"])
        .agg(pl.col("_rank").max())
    )


def hll_merge(states: Sequence[pl.LazyFrame], keys: list[str]) -> pl.LazyFrame:
    """Merge `hll_state` tables: the max rank per (keys, register).

    Exact: merging the states of A and B gives the state of A and B together,
    so estimates of a merge have the same error as one pass over everything.
    All states must use the same `precision`.

    Raises
    ------
    OptionError
        If `states` is empty.

    Examples
    --------
    >>> a = hll_state(pl.LazyFrame({"k": [1], "v": ["x"]}), ["k"], "v")
    >>> b = hll_state(pl.LazyFrame({"k": [1], "v": ["y"]}), ["k"], "v")
    >>> hll_estimate(hll_merge([a, b], ["k"]), ["k"]).collect().rows()
    [(1, 2)]
    """
    return (
        _concat(states, "hll_merge")
        .group_by([*keys, "_reg"])
        .agg(pl.col("_rank").max())
    )


def hll_estimate(
    state: pl.LazyFrame, keys: list[str], *, precision: int = 12
) -> pl.LazyFrame:
    """Distinct-count estimate per group from an `hll_state` (or merged) table.

    Uses Ertl's improved HyperLogLog estimator (arXiv:1702.01284, eq. 12),
    which needs no bias tables and no switch between linear counting and the
    raw estimate: the textbook switch at ``2.5 * m`` has a bias of about 1.5%
    and nearly twice the standard error around it (measured: rms 2.8%, not
    1.3% at 10,000 values, p=12). Elsewhere the two agree: linear counting
    ``m * ln(m / empty)`` for small counts, ``alpha * m**2 / sum(2**-rank)``
    for large ones. Relative standard error ``1.04 / sqrt(m)``,
    ``m = 2**precision``.

    Parameters
    ----------
    state
        `hll_state` / `hll_merge` output.
    keys
        The group columns used to build `state`.
    precision
        The `precision` used to build `state`.

    Returns
    -------
    pl.LazyFrame
        ``keys..., estimate (UInt64)``, one row per group in `state` (one row
        with 0 for an empty state when `keys` is ``[]``).

    Examples
    --------
    >>> lf = pl.LazyFrame({"path": ["/a", "/a", "/b"], "ip": ["1", "2", "1"]})
    >>> est = hll_estimate(hll_state(lf, ["path"], "ip"), ["path"])
    >>> est.sort("path").collect().rows()
    [('/a', 2), ('/b', 1)]
    """
    _check_precision(precision)
    m = 2**precision
    top = 64 - precision + 1  # the largest rank: the 64 - p rest bits all 0
    rank = pl.col("_rank")
    empty = (m - pl.len()).cast(pl.Float64)
    full = (rank == top).sum().cast(pl.Float64)
    middle = (rank.cast(pl.Float64) * -_LN2).exp().filter(rank < top).sum()
    denominator = (
        m * _sigma(empty / m, terms=precision + 12)
        + middle
        + m * _tau(1.0 - full / m) * 2.0 ** -(top - 1)
    )
    estimate = m * m / (2 * _LN2) / denominator
    estimate = pl.when(empty == m).then(0.0).otherwise(estimate)
    return state.group_by(keys).agg(estimate.round().cast(pl.UInt64).alias("estimate"))


def _sigma(x: pl.Expr, *, terms: int) -> pl.Expr:
    """Ertl's sigma(x) = x + sum_k x**(2**k) * 2**(k-1), for x = empty share < 1.

    Terms past k = log2(m) + 12 are below 2**-100 of the sum, since then
    ``x**(2**k) <= (1 - 1/m)**(m * 4096)``.
    """
    return x + pl.sum_horizontal(
        [x.pow(2.0**k) * 2.0 ** (k - 1) for k in range(1, terms)]
    )


def _tau(x: pl.Expr) -> pl.Expr:
    """Ertl's tau(x) = (1 - x - sum_k (1 - x**(2**-k))**2 * 2**-k) / 3."""
    series = [(1.0 - x.pow(2.0**-k)).pow(2) * 2.0**-k for k in range(1, 40)]
    return (1.0 - x - pl.sum_horizontal(series)) / 3.0


def _check_precision(precision: int) -> None:
    if not 8 <= precision <= 16:
        msg = (
            f"HyperLogLog `precision` must be 8..16, got {precision}; "
            "12 or 14 fit most logs"
        )
        raise OptionError(msg)


# --- DDSketch ----------------------------------------------------------------


def dd_state(
    lf: pl.LazyFrame, keys: list[str], value: str, *, alpha: float = 0.01
) -> pl.LazyFrame:
    """DDSketch bucket counts of `value` per group of `keys`.

    A value ``x`` goes to bucket ``ceil(log(x) / log(gamma))`` with
    ``gamma = (1 + alpha) / (1 - alpha)``; values at or below `DD_MIN_VALUE`
    go to `DD_ZERO_BUCKET`. Nulls, negatives, NaN and infinities are ignored.

    Parameters
    ----------
    lf
        Rows to summarize.
    keys
        Group columns; ``[]`` for the whole frame.
    value
        Numeric column (seconds for `request_time`).
    alpha
        Relative accuracy, in [1e-6, 1).

    Returns
    -------
    pl.LazyFrame
        ``keys..., _bucket (Int32), _count (UInt64)``, one row per used bucket.

    Raises
    ------
    OptionError
        If `alpha` is outside [1e-6, 1).

    Examples
    --------
    >>> lf = pl.LazyFrame({"path": ["/a"] * 3, "t": [0.0, 0.5, 0.5]})
    >>> dd_state(lf, ["path"], "t").sort("_bucket").collect().rows()
    [('/a', -2147483648, 1), ('/a', -34, 2)]
    """
    x = pl.col(value).cast(pl.Float64)
    bucket = (
        pl.when(x <= DD_MIN_VALUE)
        .then(DD_ZERO_BUCKET)
        .otherwise((x.log() / math.log(_gamma(alpha))).ceil())
    )
    return (
        lf.filter(x.is_finite() & (x >= 0))
        .select(*keys, bucket.cast(pl.Int32).alias("_bucket"))
        .group_by([*keys, "_bucket"])
        .agg(pl.len().cast(pl.UInt64).alias("_count"))
    )


def dd_merge(states: Sequence[pl.LazyFrame], keys: list[str]) -> pl.LazyFrame:
    """Merge `dd_state` tables: counts summed per (keys, bucket).

    Exact: the merged state equals the state of all the data at once, so the
    `alpha` guarantee holds after any number of merges. All states must use
    the same `alpha`.

    Raises
    ------
    OptionError
        If `states` is empty.

    Examples
    --------
    >>> a = dd_state(pl.LazyFrame({"k": [1], "t": [0.5]}), ["k"], "t")
    >>> dd_merge([a, a], ["k"]).collect().rows()
    [(1, -34, 2)]
    """
    return (
        _concat(states, "dd_merge")
        .group_by([*keys, "_bucket"])
        .agg(pl.col("_count").sum().cast(pl.UInt64))
    )


def dd_quantiles(
    state: pl.LazyFrame,
    keys: list[str],
    qs: Sequence[float],
    *,
    alpha: float = 0.01,
    names: Mapping[float, str] | None = None,
) -> pl.LazyFrame:
    """Nearest-rank quantiles per group from a `dd_state` (or merged) table.

    For each ``q`` the bucket holding the value of rank ``ceil(q * n)`` (the
    first when the rank is 0) is found on the cumulative counts and reported
    as ``2 * gamma**i / (gamma + 1)``, or 0.0 for the zero bucket. That is
    within relative error `alpha` of the exact nearest-rank value.

    Parameters
    ----------
    state
        `dd_state` / `dd_merge` output.
    keys
        The group columns used to build `state`.
    qs
        Quantiles in [0, 1]; 1.0 is the maximum.
    alpha
        The `alpha` used to build `state`.
    names
        Output column per quantile; default ``p50``, ``p99.9``, ``p100``, ...

    Returns
    -------
    pl.LazyFrame
        ``keys...`` and one Float64 column per quantile, one row per group.

    Raises
    ------
    OptionError
        If a quantile is outside [0, 1], two get the same name, or `alpha` is
        outside [1e-6, 1).

    Examples
    --------
    >>> lf = pl.LazyFrame({"k": [1, 1, 1], "t": [0.0, 0.1, 0.2]})
    >>> state = dd_state(lf, ["k"], "t")
    >>> out = dd_quantiles(state, ["k"], [0.5, 1.0]).collect()
    >>> out.select(pl.all().round(3)).rows()  # exact: 0.1 and 0.2, within 1%
    [(1, 0.099, 0.2)]
    """
    gamma = _gamma(alpha)
    columns = [_column_name(q, names) for q in qs]
    if len(set(columns)) != len(columns):
        msg = f"quantile column names must differ, got {columns}; pass `names`"
        raise OptionError(msg)
    # Cumulative counts in bucket order; `min` of the buckets that reach the
    # rank does not depend on row order, and duplicate buckets (an unmerged
    # concat) still give the right answer.
    count = pl.col("_count")
    ranked = state.with_columns(
        count.cum_sum().over(keys or None, order_by="_bucket").alias("_cum"),
        (count.sum().over(keys) if keys else count.sum()).alias("_n"),
    )
    log_gamma = math.log(gamma)

    def quantile(q: float) -> pl.Expr:
        if not 0.0 <= q <= 1.0:
            msg = f"quantile {q} is outside [0, 1]; pass e.g. 0.99 for p99"
            raise OptionError(msg)
        reached = pl.col("_cum") >= (pl.col("_n") * q).ceil()
        i = pl.col("_bucket").filter(reached).min()
        mid = 2.0 * (i.cast(pl.Float64) * log_gamma).exp() / (gamma + 1.0)
        return pl.when(i == DD_ZERO_BUCKET).then(0.0).otherwise(mid)

    aggs = [quantile(q).alias(c) for q, c in zip(qs, columns, strict=True)]
    return ranked.group_by(keys).agg(aggs)


def _gamma(alpha: float) -> float:
    if not 1e-6 <= alpha < 1:
        msg = f"DDSketch `alpha` must be in [1e-6, 1), got {alpha}; 0.01 means 1%"
        raise OptionError(msg)
    return (1 + alpha) / (1 - alpha)


def _column_name(q: float, names: Mapping[float, str] | None) -> str:
    if names is not None and q in names:
        return names[q]
    return f"p{round(q * 100, 6):g}"


def _concat(states: Sequence[pl.LazyFrame], caller: str) -> pl.LazyFrame:
    if not states:
        msg = f"`{caller}` needs at least one state; pass the partial results"
        raise OptionError(msg)
    return pl.concat(states, how="vertical")
