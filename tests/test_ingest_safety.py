"""A dataset never leads pplog outside itself; a held-back last line is said.

Symbolic links inside a dataset (`_pplog/lock -> /etc/passwd`, `requests ->
/elsewhere`) are refused by every command that touches the dataset, with one
`Error:` line, and their targets stay as they were; the dataset directory
itself may be a link. A last line without newline is held back until its file
is finished, and `-v`, the summary line and `verify` say how many bytes wait.
"""

from __future__ import annotations

import gzip
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


def test_a_linked_file_stops_the_compaction_after_a_run_not_the_run(
    runner: CliRunner, tmp_path: Path
) -> None:
    """ingest neither opens nor renames committed files, but the compaction
    after a run reads them: it is refused with a warning, the run commits."""
    log, ds = _dataset(runner, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    rel = _first_data_file(ds)
    target = _move_out(ds, rel, outside)
    before = _snapshot(target)
    result = _ingest(runner, log, ds, "--compact-threshold", "2")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "pplog: warning: compaction after commit 3 failed "
        f"(`{ds / rel}` is a symbolic link (to `{target}`)"
    )
    assert _snapshot(target) == before
    assert (ds / rel).is_symlink()
    assert json.loads((ds / "_pplog" / "state.json").read_text())["applied_commit"] == 3


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


# --- a last line without newline --------------------------------------------


def _download(tmp_path: Path, lines: list[str]) -> Path:
    """A finished log fetched from elsewhere: named like a live log, old, and
    cut without the last newline (as `head -c`, an editor or a copy may do)."""
    log = tmp_path / "download.log"
    log.write_text("".join(lines).removesuffix("\n"))
    os.utime(log, (1_700_000_000, 1_700_000_000))
    return log


def _paths(ds: Path) -> list[str]:
    return pplog.scan_dataset(ds).select("path").collect().to_series().to_list()


def test_held_back_bytes_are_said(runner: CliRunner, tmp_path: Path) -> None:
    log = _download(tmp_path, LINES[:20])
    ds = tmp_path / "ds"
    held = len(LINES[19]) - 1
    run = _ok(_ingest(runner, log, ds, "-v"))
    assert run.output.splitlines() == [
        f"ingest: {log}: {held:,} bytes after the last newline held back: a last "
        "line without newline is taken once its file is rotated and idle for "
        "--final-grace, or at once with --final if the file is finished",
        f"ingest: commit 1: 19 rows, 0 rejects, {log.stat().st_size - held:,} bytes "
        f"from 1 file(s); held back {held:,} bytes in 1 file(s)",
    ]
    report = _ok(runner.invoke(cli, ["verify", str(ds)])).output.splitlines()
    assert report[-3:] == [
        f"held back (last line without newline): {held:,} bytes in 1 file(s); "
        "`pplog ingest --final` takes them if the files are finished",
        f"  {log}: {held:,} bytes",
        "OK",
    ]
    assert pplog.verify(ds).held_back == {str(log): held}
    again = _ok(_ingest(runner, log, ds, "-v"))  # still held, and still said
    assert again.output.splitlines()[-1].endswith(
        f"held back {held:,} bytes in 1 file(s)"
    )


def test_final_takes_the_last_line_exactly_once(
    runner: CliRunner, tmp_path: Path
) -> None:
    log = _download(tmp_path, LINES[:20])
    ds = tmp_path / "ds"
    first = _ok(_ingest(runner, log, ds, "--final", "-v"))
    assert first.output.startswith("ingest: commit 1: 20 rows, 0 rejects, ")
    assert "held back" not in first.output
    paths = _paths(ds)
    assert len(paths) == 20
    second = _ok(_ingest(runner, log, ds, "--final", "-v"))
    assert second.output.startswith("ingest: nothing new: 0 rows")
    # the file was not finished after all: its newline and one more line come;
    # the line taken stays once, and its late newline is an empty line
    with log.open("a") as f:
        f.write("\n" + LINES[20])
    _ok(_ingest(runner, log, ds))
    assert sorted(_paths(ds)) == sorted([*paths, *_paths_of(LINES[20:21])])
    found = pplog.verify(ds)
    assert found.ok and found.duplicates == 0 and found.rows == 21
    assert found.rejects_by_reason == {"blank_line": 1}
    assert found.held_back == {}


def _paths_of(lines: list[str]) -> list[str]:
    return [line.split('"')[1].split(" ")[1].split("?")[0] for line in lines]


def test_a_one_line_file_without_newline(runner: CliRunner, tmp_path: Path) -> None:
    """Shorter than the 4 KiB fingerprint and without a newline: held back
    (and said) by default, taken once with --final."""
    log = _download(tmp_path, LINES[:1])
    ds = tmp_path / "ds"
    held = _ok(_ingest(runner, log, ds, "-v"))
    assert f"held back {len(LINES[0]) - 1:,} bytes in 1 file(s)" in held.output
    _ok(_ingest(runner, log, ds, "--final"))
    _ok(_ingest(runner, log, ds, "--final"))
    assert _paths(ds) == _paths_of(LINES[:1])
    assert pplog.verify(ds).ok


def test_final_is_in_ingest_help(runner: CliRunner) -> None:
    text = _ok(runner.invoke(cli, ["ingest", "--help"])).output
    assert "--final" in text
    assert "finished" in text


def test_an_empty_finished_file_claims_no_stream(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Empty content has no fingerprint (it would match every file): an empty
    `.gz` or an empty file taken as finished must not swallow a later file."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "access.log.2.gz").write_bytes(gzip.compress(b""))
    (logs / "access.log").write_text("".join(LINES[:20]))
    ds = tmp_path / "ds"
    _ok(_ingest(runner, logs / "access.log*", ds, "--final"))
    (logs / "access.log.3").write_text("".join(LINES[20:40]))  # read before .2.gz
    _ok(_ingest(runner, logs / "access.log*", ds, "--final"))
    assert sorted(_paths(ds)) == sorted(_paths_of(LINES[:40]))
    assert pplog.verify(ds).ok
