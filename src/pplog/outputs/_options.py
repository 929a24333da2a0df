"""Settings shared by every output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class ReportOptions:
    """Where and how an output writes a `Summary`.

    `out` is a file (json) or a directory (csv, parquet); None means stdout
    where that makes sense. `width` and `color` tune the terminal output.
    """

    out: Path | None = None
    stream: IO[str] | None = None
    width: int | None = None
    color: bool | None = None
