"""A dataset never leads pplog outside itself; a held-back last line is said.

Symbolic links inside a dataset (`_pplog/lock -> /etc/passwd`, `requests ->
/elsewhere`) are refused by every command that touches the dataset, with one
`Error:` line, and their targets stay as they were; the dataset directory
itself may be a link. A last line without newline is held back until its file
is finished, and `-v`, the summary line and `verify` say how many bytes wait.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

import pplog
from helpers import SAMPLES
from pplog.cli import cli

LINES = (SAMPLES / "elb-access.log").read_text().splitlines(keepends=True)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _ingest(runner: CliRunner, log: Path, ds: Path, *extra: str) -> Result:
    args = ["ingest", str(log), "--dataset", str(ds), "--format", "elb_log"]
    return runner.invoke(cli, [*args, "--compact-threshold", "0", *extra])


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def _dataset(runner: CliRunner, tmp_path: Path) -> tuple[Path, Path]:
    """A log and a dataset of two commits (rows and rejects, two files per
    partition), with new lines waiting in the log."""
    log = tmp_path / "logs" / "access.log"
    log.parent.mkdir()
    ds = tmp_path / "ds"
    log.write_text("".join(LINES[:40]) + "junk\n")
    _ok(_ingest(runner, log, ds))
    with log.open("a") as f:
        f.write("".join(LINES[40:80]) + "more junk\n")
    _ok(_ingest(runner, log, ds))
    with log.open("a") as f:
        f.write("".join(LINES[80:120]))
    return log, ds


def _snapshot(path: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry under `path` (or `path` itself): size, mtime and content."""
    entries = [path] if path.is_file() else sorted(path.rglob("*"))
    out = {}
    for p in entries:
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        out[str(p)] = (st.st_size, st.st_mtime_ns, digest)
    return out


def _move_out(ds: Path, rel: str, outside: Path) -> Path:
    """Move `ds/rel` outside and leave a link to it: what users do to save space."""
    target = outside / rel.replace("/", "_")
    shutil.move(ds / rel, target)
    (ds / rel).symlink_to(target)
    return target


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _latest(ds: Path) -> str:
    return "_pplog/log/" + _names(ds / "_pplog" / "log")[-1]


def _first_data_file(ds: Path) -> str:
    state = json.loads((ds / "_pplog" / "state.json").read_text())
    return next(f["path"] for f in state["files"] if f["kind"] == "data")


def _partition(ds: Path) -> str:
    return str(Path(_first_data_file(ds)).parent)


def _precious(ds: Path, rel: str, outside: Path) -> Path:
    """Replace `ds/rel` by a link to a file that is not pplog's."""
    target = outside / "precious"
    target.write_text("root:x:0:0:root:/root:/bin/bash\n")
    os.utime(target, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    (ds / rel).unlink()
    (ds / rel).symlink_to(target)
    return target


def _staging(ds: Path, rel: str, outside: Path) -> Path:
    """`_pplog/staging` linked to a directory holding someone else's files."""
    target = outside / "work"
    target.mkdir()
    (target / "keep.txt").write_text("not pplog's\n")
    (ds / rel).rmdir()
    (ds / rel).symlink_to(target)
    return target


LINKS: dict[str, tuple[Callable[[Path], str], Callable[[Path, str, Path], Path]]] = {
    "meta": (lambda ds: "_pplog", _move_out),
    "lock": (lambda ds: "_pplog/lock", _precious),
    "state": (lambda ds: "_pplog/state.json", _move_out),
    "log": (lambda ds: "_pplog/log", _move_out),
    "record": (_latest, _move_out),
    "staging": (lambda ds: "_pplog/staging", _staging),
    "requests": (lambda ds: "requests", _move_out),
    "partition": (_partition, _move_out),
    "rejects": (lambda ds: "rejects", _move_out),
    "data_file": (_first_data_file, _move_out),
}

COMMANDS = ("ingest", "compact", "verify", "summarize")


def _run(runner: CliRunner, command: str, log: Path, ds: Path) -> Result:
    if command == "ingest":
        return _ingest(runner, log, ds)
    if command == "summarize":
        return runner.invoke(cli, ["summarize", str(ds), "--to", "json"])
    return runner.invoke(cli, [command, str(ds)])


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", LINKS)
def test_a_link_inside_the_dataset_is_refused(
    runner: CliRunner, tmp_path: Path, case: str, command: str
) -> None:
    if case == "data_file" and command == "ingest":
        pytest.skip("ingest neither opens nor renames committed files")
    log, ds = _dataset(runner, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    where, make = LINKS[case]
    rel = where(ds)
    target = make(ds, rel, outside)
    before = _snapshot(target)
    records = _names(ds / "_pplog" / "log")

    result = _run(runner, command, log, ds)

    assert result.exit_code == 1, result.output
    first = f"Error: `{ds / rel}` is a symbolic link (to `{target}`)"
    assert result.output.startswith(first), result.output
    assert result.output.count("\n") == 1  # one line, no traceback
    assert "Traceback" not in result.output
    assert _snapshot(target) == before  # not written, truncated, moved or deleted
    if (ds / "_pplog" / "log").is_dir() and case not in ("meta", "log"):
        assert _names(ds / "_pplog" / "log") == records  # no commit


def test_lock_link_message_says_what_to_do(runner: CliRunner, tmp_path: Path) -> None:
    log, ds = _dataset(runner, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = _precious(ds, "_pplog/lock", outside)
    result = _ingest(runner, log, ds)
    assert result.output == (
        f"Error: `{ds}/_pplog/lock` is a symbolic link (to `{target}`); pplog does "
        "not follow links inside a dataset (only the dataset directory itself may "
        "be one): replace the link with what it points to, or remove it\n"
    )


def test_requests_link_before_the_first_run_commits_nothing(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A link made before any run: the rows never leave, nothing is committed."""
    log = tmp_path / "access.log"
    log.write_text("".join(LINES[:20]))
    ds = tmp_path / "ds"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ds.mkdir()
    (ds / "requests").symlink_to(elsewhere)
    result = _ingest(runner, log, ds)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: `{ds}/requests` is a symbolic link")
    assert list(elsewhere.iterdir()) == []
    assert not (ds / "_pplog" / "log").exists()  # refused before anything
    assert not (ds / "_pplog" / "staging").exists()


def test_the_dataset_directory_itself_may_be_a_link(
    runner: CliRunner, tmp_path: Path
) -> None:
    log, ds = _dataset(runner, tmp_path)
    link = tmp_path / "data-logs"
    link.symlink_to(ds)
    _ok(_ingest(runner, log, link))
    assert _ok(runner.invoke(cli, ["compact", str(link)])).output == (
        "compacted 2 partition(s)\n"
    )
    assert _ok(runner.invoke(cli, ["verify", str(link)])).output.endswith("OK\n")
    summary = _ok(runner.invoke(cli, ["summarize", str(link), "--to", "json"]))
    assert json.loads(summary.output)["overview"]["requests"] == 120
    assert pplog.scan_dataset(link).select(pl.len()).collect().item() == 120
