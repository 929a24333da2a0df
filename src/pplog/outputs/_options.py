"""Settings shared by every output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pplog.outputs._files import Staging


@dataclass(frozen=True)
class ReportOptions:
    """Where and how an output writes a `Summary`.

    `out` is a file (json) or a directory (csv, parquet); None means stdout
    where that makes sense. `width` and `color` tune the terminal output.
    `top` cuts the tables to their busiest rows at output time (None: as
    computed). With `staging`, files are written under temporary names and
    appear only when every output has been written (`outputs.write_all`).
    """

    out: Path | None = None
    stream: IO[str] | None = None
    width: int | None = None
    color: bool | None = None
    top: int | None = None
    staging: Staging | None = None
