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
        for table, df in _all_tables(summary).items():
            atomic_write(out / f"{table}.csv", df.write_csv)


class ParquetReporter:
    """`DIR/<table>.parquet` for every table, each written atomically."""

    name: ClassVar[str] = "parquet"

    def write(self, summary: Summary, options: ReportOptions) -> None:
        """Write `summary`."""
        out = _need_dir(options, self.name)
        for table, df in _all_tables(summary).items():
            atomic_write(out / f"{table}.parquet", df.write_parquet)
