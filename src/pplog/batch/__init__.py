"""`pplog ingest`: cron batches into a Parquet dataset, exactly once.

`ingest` (the run), `identity` (which file is which), `reader` (new lines of
each file, parsed in batches), `state` (lock, commit log, recovery),
`staging` (a run's files before they commit), `compact`
(small files merged through the log) and `dataset` (reading and `verify`).
"""

from __future__ import annotations

from pplog.batch._fs import UnsafePathError
from pplog.batch.compact import compact_dataset
from pplog.batch.dataset import Verification, scan_dataset, verify
from pplog.batch.ingest import ingest
from pplog.batch.reader import IngestResult
from pplog.batch.state import Busy, DiskFullError, StateError, is_dataset

__all__ = [
    "Busy",
    "DiskFullError",
    "IngestResult",
    "StateError",
    "UnsafePathError",
    "Verification",
    "compact_dataset",
    "ingest",
    "is_dataset",
    "scan_dataset",
    "verify",
]
