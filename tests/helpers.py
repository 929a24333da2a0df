"""Small helpers shared by the tests."""

from __future__ import annotations

from pathlib import Path

import polars as pl

import pplog

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_logs"
CORPORA = REPO.parent / "shared" / "corpora"


def parse_lines(
    tmp_path: Path, lines: list[str] | str, **kwargs: object
) -> pl.DataFrame:
    """Write `lines` to a file and read them back with rejects kept."""
    if isinstance(lines, str):
        lines = [lines]
    path = tmp_path / "access.log"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
    kwargs.setdefault("include_rejects", True)
    return pplog.read_log(path, **kwargs)  # type: ignore[arg-type]
