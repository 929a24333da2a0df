"""Which logged columns the reports use for bytes, status and latency."""

from __future__ import annotations

import polars as pl

from pplog.reports import sketches
from pplog.schema import BODY_BYTES_SENT, BYTES_SENT, REQUEST_TIME


def bytes_column(columns: list[str]) -> pl.Expr:
    """Response bytes: `$body_bytes_sent`, else `$bytes_sent`, else 0.

    Per row: rows of several formats (an nginx log and an AWS one) share the
    columns, each row holding the one its format logs.
    """
    logged = [pl.col(c) for c in (BODY_BYTES_SENT, BYTES_SENT) if c in columns]
    if not logged:
        return pl.lit(0, pl.UInt64)
    first = logged[0] if len(logged) == 1 else pl.coalesce(logged)
    return first.fill_null(0)


def has_latency(columns: list[str]) -> bool:
    """True when the format logs `$request_time` (or an AWS equivalent)."""
    return REQUEST_TIME in columns


_SEED = 0x9E3779B9


def key_hash(keys: list[str]) -> pl.Expr:
    """One 64-bit hash of the group key columns (nulls included)."""
    if len(keys) == 1:
        return pl.col(keys[0]).hash(seed=_SEED).alias("_kh")
    return pl.struct(keys).hash(seed=_SEED).alias("_kh")


def distinct_per_group(
    lf: pl.LazyFrame, keys: list[str], value: str, name: str
) -> pl.LazyFrame:
    """Distinct non-null `value`s per group of `keys`, keyed by `_kh` (`key_hash`).

    Done as unique (key hash, value hash) pairs then a count: 16 bytes per
    distinct pair, which the streaming engine handles in bounded batches.
    `n_unique` inside a grouped aggregation keeps every row of a group instead,
    and string keys would keep every distinct pair's text.
    """
    return (
        lf.filter(pl.col(value).is_not_null())
        .select(key_hash(keys), pl.col(value).hash(seed=_SEED).alias("_vh"))
        .unique()
        .group_by("_kh")
        .agg(pl.len().cast(pl.UInt64).alias(name))
    )


def shown_rows(lf: pl.LazyFrame, table: pl.DataFrame, keys: list[str]) -> pl.LazyFrame:
    """The rows of `lf` that belong to the groups listed in `table`.

    Filtering on a literal set of key hashes streams; the tables are computed
    first, so follow-up counts need memory for the rows shown only.
    """
    hashes = table.select(key_hash(keys)).get_column("_kh")
    return lf.filter(key_hash(keys).is_in(hashes.implode()))


APPROXIMATE = "_approximate"  # marks a follow-up result that came from a sketch


def exact_fits(
    lf: pl.LazyFrame, table: pl.DataFrame, keys: list[str], value: pl.Expr
) -> bool:
    """Whether an exact (key, value) table for the rows of `table` fits the bound.

    The pairs are at most the rows, which `table` counts: no query is needed
    unless the shown groups hold more than `sketches.EXACT_LIMIT` requests.
    Past that, a fixed-memory HyperLogLog estimate of the pairs decides.
    """
    limit = sketches.EXACT_LIMIT  # read at call time: tests lower it
    rows = (
        int(table.get_column("requests").sum() or 0)
        if "requests" in table.columns
        else None
    )
    if rows is not None and sketches.fits_exactly(rows, limit=limit):
        return True
    pairs = lf.select(*keys, value.alias("_value"))
    estimate = sketches.pair_count_estimate(pairs, keys, "_value")
    pairs_found = int(estimate.collect(engine="streaming").item())
    return sketches.fits_exactly(pairs_found, limit=limit)


def distinct_for(
    lf: pl.LazyFrame, table: pl.DataFrame, keys: list[str], value: str, name: str
) -> pl.LazyFrame:
    """Distinct non-null `value`s for each group listed in `table`, keyed by `_kh`.

    Exact while the distinct pairs fit `sketches.EXACT_LIMIT`; past it a
    HyperLogLog estimate (about 1.6% standard error, `sketches`).
    """
    shown = shown_rows(lf, table, keys)
    if exact_fits(shown, table, keys, pl.col(value)):
        return distinct_per_group(shown, keys, value, name)
    state = sketches.hll_state(shown.with_columns(key_hash(keys)), ["_kh"], value)
    return sketches.hll_estimate(state, ["_kh"]).select(
        "_kh", pl.col("estimate").alias(name), pl.lit(name).alias(APPROXIMATE)
    )


def add_counts(
    table: pl.DataFrame, counts: pl.DataFrame, keys: list[str], name: str
) -> pl.DataFrame:
    """Join a `distinct_for` result onto `table`; groups with none get 0."""
    joined = table.with_columns(key_hash(keys)).join(
        counts, on="_kh", how="left", maintain_order="left"
    )
    return joined.drop("_kh").with_columns(pl.col(name).fill_null(0))
