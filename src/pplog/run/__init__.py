"""Orchestration: `summarize` as map -> merge -> finish, and `diagnose`.

`summary` plans the inputs, maps them (`pplog.tasks`), merges and finishes;
`dataset` is the road of a dataset written by `pplog ingest` (its rollups,
or its rows); `diagnosis` opens access and error logs for `pplog doctor`.
"""

from __future__ import annotations

from pplog.run.diagnosis import diagnose
from pplog.run.summary import summarize

__all__ = ["diagnose", "summarize"]
