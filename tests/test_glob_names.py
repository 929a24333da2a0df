"""File and dataset names holding glob characters are names, not patterns.

Before, polars read `acc[1].log` as a glob (0 lines, exit 0), a directory
holding `acc[1].log` and `x*y.log` counted half its lines, `ingest
'acc[1].log'` said no file matched, and a dataset called `ds[1]` could be
written but not summarized or verified.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
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


def _pplog(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m pplog ARGS` as cron or a shell runs it (real stdout, stderr)."""
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pplog", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )


def test_a_file_named_in_latin1_is_read_and_named_safely(tmp_path: Path) -> None:
    """A log whose name is not UTF-8 (`lat\\xe9.log`, as a Latin-1 system
    names it) crashed every command ("unexpected failure
    (UnicodeEncodeError)"): polars, the terminal and JSON refuse the lone
    surrogate Python decodes such a byte to. It is read whole, and named
    `lat\\xe9.log` in rows, reports, warnings and the dataset's state."""
    d = tmp_path / "logs"
    d.mkdir()
    latin = os.fsdecode(b"lat\xe9.log")
    shutil.copy(SAMPLE, d / latin)
    (d / os.fsdecode(b"caf\xe9.txt")).write_text("not a log line\n" * 5)
    shown = "logs/lat\\xe9.log"
    # summarize: terminal and JSON, the file in a directory and alone
    errors = os.fsdecode(b"err\xe9r.log")  # an error log: a command to paste
    (d / errors).write_text(
        "2026/12/06 10:00:00 [notice] 1#1: start worker processes\n" * 3
    )
    proc = _pplog("summarize", "logs", "--top", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "`pplog doctor --error-log $'logs/err\\xe9r.log'`" in proc.stderr
    assert f"inputs:   logs/caf\\xe9.txt, logs/err\\xe9r.log, {shown}" in proc.stdout
    assert "pplog: warning: logs/caf\\xe9.txt: no preset fits" in proc.stderr
    proc = _pplog("summarize", f"logs/{latin}", "--to", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    overview = json.loads(proc.stdout)["overview"]
    assert overview["requests"] == LINES
    assert overview["sources"] == [shown]
    # doctor
    proc = _pplog("doctor", f"logs/{latin}", "--to", "json", cwd=tmp_path)
    assert proc.returncode in (0, 3), proc.stderr
    assert json.loads(proc.stdout)["findings"]
    # ingest, twice, then verify and summarize the dataset
    for _ in range(2):
        proc = _pplog("ingest", "logs/lat*", "--dataset", "ds", "-v", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert "nothing new" in proc.stderr
    proc = _pplog("verify", "ds", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    rows = pl.read_parquet(tmp_path / "ds" / "requests" / "**" / "*.parquet")
    assert rows.height == LINES
    assert set(rows["source"]) == {shown}
    # a run whose paths leave it out: the file is there, its stream waits
    # (`unseen`, said once), never `gone` and forgotten, then read again
    (tmp_path / "other.log").write_text("")
    proc = _pplog("ingest", "other.log", "--dataset", "ds", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no longer match the paths given" in proc.stderr
    state = json.loads((tmp_path / "ds" / "_pplog" / "state.json").read_text())
    (stream,) = [c for c in state["checkpoints"] if c["last_path"] == shown]
    assert stream["status"] == "unseen"
    # top: one poll of the file from its start
    proc = _pplog(
        "top", "logs/lat*", "--to", "jsonl", "--duration", "1", "--since", "2000-01-01",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    last = json.loads(proc.stdout.splitlines()[-1])
    assert last["overview"]["lines"] == LINES
    assert last["overview"]["sources"] == [shown]
    assert [f["source"] for f in last["overview"]["formats"]] == [shown]
