"""File and dataset names holding glob characters are names, not patterns.

Before, polars read `acc[1].log` as a glob (0 lines, exit 0), a directory
holding `acc[1].log` and `x*y.log` counted half its lines, `ingest
'acc[1].log'` said no file matched, and a dataset called `ds[1]` could be
written but not summarized or verified.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from pplog.cli import cli

SAMPLE = Path(__file__).resolve().parents[1] / "sample_logs" / "combined-access.log"
LINES = len(SAMPLE.read_text().splitlines())


def _lines(*args: str) -> int:
    result = CliRunner().invoke(cli, ["summarize", *args, "--to", "json"])
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["overview"]["lines"])


def test_a_file_name_with_brackets_stars_and_escapes(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    d.mkdir()
    names = ["acc[1].log", "x*y.log", "q?.log", "esc\x1b[31m.log"]
    for name in names:
        shutil.copy(SAMPLE, d / name)
    assert _lines(str(d / "acc[1].log")) == LINES
    assert _lines(str(d)) == LINES * len(names)


def test_ingest_and_a_dataset_named_like_a_pattern(tmp_path: Path) -> None:
    log = tmp_path / "acc[1].log"
    shutil.copy(SAMPLE, log)
    ds = tmp_path / "ds[1]"
    runner = CliRunner()
    result = runner.invoke(cli, ["ingest", str(log), "--dataset", str(ds), "--final"])
    assert result.exit_code == 0, result.output
    assert _lines(str(ds)) == LINES
    result = runner.invoke(cli, ["verify", str(ds)])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("OK")
    result = runner.invoke(cli, ["compact", str(ds)])
    assert result.exit_code == 0, result.output
