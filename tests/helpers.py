"""Small helpers shared by the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl

import pplog
from pplog import _fastsplit, sources
from pplog.formats import LogFormat
from pplog.pipeline import parse_lines as parse_frame

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


def both_roads(
    paths: list[Path], fmt: LogFormat, *, decode: bool = True
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """The rows of `paths` by the C road and by polars alone, and how many
    lines the C split took."""
    srcs = sources.expand(paths)
    c_lines, _ = sources.scan_lines(srcs, split=fmt)
    ok = _fastsplit.ok_column(fmt)
    assert ok is not None
    if ok not in c_lines.collect_schema().names():  # all read by the Python reader
        c_lines = c_lines.with_columns(pl.lit(None, pl.Boolean).alias(ok))
    taken = int(c_lines.select(pl.col(ok).fill_null(False).sum()).collect().item())  # noqa: FBT003
    by_c = parse_frame(c_lines, fmt, decode=decode).collect()
    p_lines, _ = sources.scan_lines(srcs)
    assert ok not in p_lines.collect_schema().names()
    by_polars = parse_frame(p_lines, fmt, decode=decode).collect()
    return by_c, by_polars, taken


def run_pplog(
    *args: str, timeout: float = 120, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """`python -m pplog ARGS` in a process of its own (text out, no check)."""
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "pplog", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        **kwargs,
    )
