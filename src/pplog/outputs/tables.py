"""`--to csv` and `--to parquet`: one file per table in a directory."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import polars as pl

from pplog._text import escape_text_expr, rare_in
from pplog.errors import ReportError
from pplog.outputs._files import Staging, atomic_write
from pplog.outputs._format import shown
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
    *("browsers", "operating_systems", "devices"),
    "rejects",
)
# Spreadsheets run a cell that starts like a formula, after any blanks:
# LibreOffice also skips a leading NUL or other control character. Control
# characters (tab and CR included) are escaped first, so none is left.
_FORMULA = r"^\s*[=+\-@]"


def _remove_stale(
    out: Path, present: set[str], ext: str, staging: Staging | None
) -> None:
    for name in KNOWN_TABLES:
        stale = out / f"{name}.{ext}"
        if name not in present and stale.is_file() and not stale.is_symlink():
            if staging is None:
                stale.unlink()
            else:
                staging.remove(stale)


def _inert(df: pl.DataFrame) -> pl.DataFrame:
    """Text cells with control characters escaped (`\\xHH`, as on the terminal),
    and a leading `'` on those a spreadsheet would run as a formula."""
    text = [c for c, t in df.schema.items() if t == pl.String]
    rare = rare_in(df, text)
    escaped = df.with_columns(escape_text_expr(pl.col(c), rare=rare) for c in text)
    return escaped.with_columns(
        pl.when(pl.col(c).str.contains(_FORMULA))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c in text
    )


def _need_dir(options: ReportOptions, name: str) -> Path:
    if options.out is None:
        msg = f"--to {name} writes one file per table: give a directory with -o DIR"
        raise ReportError(msg)
    if options.out.exists() and not options.out.is_dir():
        msg = f"-o `{options.out}` is a file; --to {name} needs a directory"
        raise ReportError(msg)
    try:  # the directory itself, never its parents (a typo in the path)
        options.out.mkdir(exist_ok=True)
    except OSError as exc:
        msg = f"cannot create the directory `{options.out}`: {exc.strerror or exc}"
        raise ReportError(msg) from exc
    return options.out


class CsvReporter:
    """`DIR/<table>.csv` for every table, whole unless `options.top` cuts it."""

    name: ClassVar[str] = "csv"

    def write(self, summary: Summary, options: ReportOptions) -> None:
        """Write `summary`."""
        out = _need_dir(options, self.name)
        tables = _all_tables(shown(summary, options.top))
        _remove_stale(out, set(tables), "csv", options.staging)
        for table, df in tables.items():
            atomic_write(out / f"{table}.csv", _inert(df).write_csv, options.staging)


class ParquetReporter:
    """`DIR/<table>.parquet` for every table, whole unless `options.top` cuts it."""

    name: ClassVar[str] = "parquet"

    def write(self, summary: Summary, options: ReportOptions) -> None:
        """Write `summary`."""
        out = _need_dir(options, self.name)
        tables = _all_tables(shown(summary, options.top))
        _remove_stale(out, set(tables), "parquet", options.staging)
        for table, df in tables.items():
            atomic_write(out / f"{table}.parquet", df.write_parquet, options.staging)
