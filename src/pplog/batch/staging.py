"""Staged Parquet files of one run: per stream and partition, zstd, fsynced.

Each (kind, stream, date) gets its own file under ``_pplog/staging/<run>/``
with the path it will have once published, so a stream whose file failed
mid-read can be dropped from the run without touching the others.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pplog.batch.state import Layout, fsync_dir

_PREFIX = {"data": "part", "rejects": "rejects"}


class _File:
    def __init__(self, staged: Path, final: Path, schema: pa.Schema) -> None:
        staged.parent.mkdir(parents=True, exist_ok=True)
        self.staged, self.final = staged, final
        self.handle: BinaryIO = staged.open("wb")
        self.writer = pq.ParquetWriter(self.handle, schema, compression="zstd")
        self.schema = schema
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if table.schema != self.schema:
            table = table.cast(self.schema)
        self.writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        self.writer.close()
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # the file is deleted next
            self.writer.close()
        self.handle.close()
        self.staged.unlink(missing_ok=True)


class Staging:
    """The files a run writes before it commits."""

    def __init__(self, layout: Layout, run_id: str) -> None:
        self.layout = layout
        self.run_id = run_id
        self.files: dict[tuple[str, str, str], _File] = {}
        self.schemas: dict[str, pa.Schema] = {}
        self.serial = 0

    def write(
        self, kind: str, stream: str, frame: pl.DataFrame, dates: pl.Series
    ) -> None:
        """Append `frame` (one partition per distinct value of `dates`)."""
        tagged = frame.with_columns(dates.alias("_date"))
        for (date,), part in tagged.group_by("_date", maintain_order=True):
            table = part.drop("_date").to_arrow()
            schema = self.schemas.setdefault(kind, table.schema)
            key = (kind, stream, str(date))
            if key not in self.files:
                name = f"{_PREFIX[kind]}-{self.run_id}-{self.serial:05d}.parquet"
                self.serial += 1
                base = self.layout.requests if kind == "data" else self.layout.rejects
                final = base / f"date={date}" / name
                staged = (
                    self.layout.staging
                    / self.run_id
                    / final.relative_to(self.layout.root)
                )
                self.files[key] = _File(staged, final, schema)
            self.files[key].write(table)

    def drop_stream(self, stream: str) -> None:
        """Forget everything staged for `stream` in this run."""
        for key in [k for k in self.files if k[1] == stream]:
            self.files.pop(key).abort()

    def close(self) -> list[dict[str, Any]]:
        """Finish every file durably; their commit entries."""
        out = []
        dirs = set()
        for (kind, _, date), f in self.files.items():
            f.close()
            dirs.add(f.staged.parent)
            out.append(
                {
                    "kind": kind,
                    "date": date,
                    "path": str(f.final.relative_to(self.layout.root)),
                    "staging": str(f.staged.relative_to(self.layout.root)),
                    "rows": f.rows,
                    "bytes": f.staged.stat().st_size,
                }
            )
        for d in dirs:
            fsync_dir(d)
        self.files.clear()
        return out

    def abort(self) -> None:
        """Close and delete every staged file."""
        for f in self.files.values():
            f.abort()
        self.files.clear()
