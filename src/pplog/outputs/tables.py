"""`--to csv` and `--to parquet`: one file per table in a directory."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import polars as pl

from pplog.errors import ReportError
from pplog.outputs._files import atomic_write
from pplog.outputs._options import ReportOptions
from pplog.reports import Summary


def _all_tables(summary: Summary) -> dict[str, pl.DataFrame]:
    return {
        "overview": summary.overview,
        **summary.tables(),
        "rejects": summary.rejects,
    }


# Every table a summary can hold: a file for one that this summary lacks is
# stale (from an earlier run into the same directory) and is removed.
KNOWN_TABLES = (
    *("overview", "clients", "paths", "routes", "errors", "timeline", "status"),
    *("user_agents", "referrers", "hosts", "lb", "agents", "countries", "networks"),
    "rejects",
)
# Spreadsheets run a cell that starts like a formula; log text must not.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _remove_stale(out: Path, present: set[str], ext: str) -> None:
    for name in KNOWN_TABLES:
        stale = out / f"{name}.{ext}"
        if name not in present and stale.is_file() and not stale.is_symlink():
            stale.unlink()


def _inert(df: pl.DataFrame) -> pl.DataFrame:
    """Text cells that a spreadsheet would run as a formula get a leading `'`."""
    text = [c for c, t in df.schema.items() if t == pl.String]
    return df.with_columns(
        pl.when(_starts_any(c))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c in text
    )


def _starts_any(column: str) -> pl.Expr:
    col = pl.col(column)
    return pl.any_horizontal([col.str.starts_with(p) for p in _FORMULA]).fill_null(
        False
    )  # noqa: FBT003


def _need_dir(options: ReportOptions, name: str) -> Path:
    if options.out is None:
        msg = f"--to {name} writes one file per table: give a directory with -o DIR"
        raise ReportError(msg)
    if options.out.exists() and not options.out.is_dir():
        msg = f"-o `{options.out}` is a file; --to {name} needs a directory"
        raise ReportError(msg)
    return options.out


class CsvReporter:
    """`DIR/<table>.csv` for every table."""

    name: ClassVar[str] = "csv"

    def write(self, summary: Summary, options: ReportOptions) -> None:
        """Write `summary`."""
        out = _need_dir(options, self.name)
        tables = _all_tables(summary)
        _remove_stale(out, set(tables), "csv")
        for table, df in tables.items():
            atomic_write(out / f"{table}.csv", _inert(df).write_csv)


class ParquetReporter:
    """`DIR/<table>.parquet` for every table, each written atomically."""

    name: ClassVar[str] = "parquet"

    def write(self, summary: Summary, options: ReportOptions) -> None:
        """Write `summary`."""
        out = _need_dir(options, self.name)
        tables = _all_tables(summary)
        _remove_stale(out, set(tables), "parquet")
        for table, df in tables.items():
            atomic_write(out / f"{table}.parquet", df.write_parquet)
