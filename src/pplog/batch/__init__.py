"""`pplog ingest`: cron batches into a Parquet dataset, exactly once.

`ingest` (the run), `identity` (which file is which), `reader` (new lines of
each file, parsed in batches), `state` (lock, commit log, recovery),
`staging` (a run's files before they commit), `compact`
(small files merged through the log) and `dataset` (reading and `verify`).
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pplog.batch._fs import UnsafePathError
    from pplog.batch.compact import compact_dataset
    from pplog.batch.dataset import Verification, scan_dataset, verify
    from pplog.batch.ingest import ingest
    from pplog.batch.reader import IngestResult
    from pplog.batch.state import (
        Busy,
        CommittedError,
        DiskFullError,
        StateError,
        is_dataset,
    )

# Each name's module, imported when the name is first used: `summarize DIR`
# needs `dataset`, `state` and `rollup` alone, and without the reader and
# the ingest run its first call is about 15 ms sooner.
_MODULES = {
    "UnsafePathError": "_fs",
    "compact_dataset": "compact",
    "Verification": "dataset",
    "scan_dataset": "dataset",
    "verify": "dataset",
    "ingest": "ingest",
    "IngestResult": "reader",
    "Busy": "state",
    "CommittedError": "state",
    "DiskFullError": "state",
    "StateError": "state",
    "is_dataset": "state",
}


def __getattr__(name: str) -> Any:  # noqa: ANN401 - module attributes
    module = _MODULES.get(name)
    if module is None:
        msg = f"module 'pplog.batch' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(import_module(f"pplog.batch.{module}"), name)
    globals()[name] = value
    return value


class _Package(ModuleType):
    """`pplog.batch`, whose `ingest` stays the function once `ingest.py` loads.

    Importing a submodule binds it as an attribute of its package, which
    would put the module `pplog.batch.ingest` where the function was.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name in _MODULES and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "Busy",
    "CommittedError",
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
