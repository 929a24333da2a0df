"""Rotation sets against the real logrotate: every name it gives joins its log's set.

`rotation_key` reads rotated files by their names; the names here are not
written by hand but made by the `logrotate` binary, for several logs side by
side whose names look alike (`access.log`, `access-api.log`,
`access.api.log`, `error.log`). Each line written says which log and which
generation it is, so every file logrotate leaves tells the set it must be in
and its place in it.
"""

from __future__ import annotations

import gzip
import re
import subprocess
import time
from pathlib import Path

import pytest

from pplog import sources
from realproc import require_binary

LOGS = ["access.log", "access-api.log", "access.api.log", "error.log"]
ROTATIONS = 3


def _rotate(
    tmp_path: Path, options: str, *, rotations: int = ROTATIONS, pause: float = 0.0
) -> Path:
    """A directory of `LOGS`, each written and rotated `rotations` times by
    logrotate with `options` (nginx's reopen after each: the live file again),
    then written once more. Returns the directory."""
    logrotate = require_binary("logrotate", "logrotate")
    logs = tmp_path / "logs"
    logs.mkdir()
    conf = tmp_path / "logrotate.conf"
    conf.write_text(
        "".join(f"{logs / name} {{\n{options}\n}}\n" for name in LOGS),
    )
    for generation in range(rotations + 1):
        if generation and pause:
            time.sleep(pause)  # a date in the name down to the second
        for name in LOGS:
            with (logs / name).open("a") as f:
                f.write(f"{name} {generation}\n")
        if generation == rotations:
            break
        proc = subprocess.run(  # noqa: S603
            [logrotate, "-f", "-s", str(tmp_path / "state"), str(conf)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
    return logs


def _written(path: Path) -> tuple[str, int]:
    """The log and the generation a file's first line says."""
    data = path.read_bytes()
    if data.startswith(b"\x1f\x8b"):
        data = gzip.decompress(data)
    name, generation = data.decode().splitlines()[0].split()
    return name, int(generation)


def _check_sets(logs: Path, *, generations: int) -> list[str]:
    """Each file is in the set of the log it was written as, and `expand`
    orders each set oldest first. Returns the rotated names, for the reader."""
    files = sorted(p for p in logs.iterdir() if p.is_file())
    rotated = [p.name for p in files if p.name not in LOGS]
    order: dict[str, list[int]] = {name: [] for name in LOGS}
    for src in sources.expand([logs]):
        assert src.path is not None
        name, generation = _written(src.path)
        assert sources.rotation_key(src.path)[0] == str(logs / name), src.path.name
        order[name].append(generation)
    for name in LOGS:
        assert order[name] == list(range(generations)), (name, rotated)
    return rotated


@pytest.mark.parametrize(
    ("options", "names"),
    [
        # `extension .log` without `dateext` (access.1.log) is not among
        # these: such names stay logs of their own (`sources.rotation_key`)
        (
            "rotate 9\ncompress\ndelaycompress",
            {"access.log.1", "access.log.2.gz", "access.log.3.gz"},
        ),
        (
            "rotate 9\nstart 0\ncompress\ndelaycompress",
            {"access.log.0", "access.log.1.gz", "access.log.2.gz"},
        ),
    ],
    ids=["numbered", "start-0"],
)
def test_numbered_rotations_join_their_log(
    tmp_path: Path, options: str, names: set[str]
) -> None:
    logs = _rotate(tmp_path, options)
    rotated = _check_sets(logs, generations=ROTATIONS + 1)
    assert names <= set(rotated), rotated  # logrotate names them so
    assert {n.replace("access", "access-api", 1) for n in names} <= set(rotated)


@pytest.mark.parametrize(
    ("options", "access"),
    [
        (
            "extension .log\ndateext\ndateformat -%Y%m%d-%s\ncompress",
            r"access-\d{8}-\d{10}\.log\.gz",
        ),
        (
            "dateext\ndateformat -%Y%m%d-%s\ncompress\ndelaycompress",
            r"access\.log-\d{8}-\d{10}(?:\.gz)?",
        ),
        (
            "dateext\ndateformat -%Y%m%d%H%M%S\ncompress",
            r"access\.log-\d{14}\.gz",
        ),
    ],
    ids=["extension", "no-extension", "seconds"],
)
def test_dated_rotations_join_their_log_oldest_first(
    tmp_path: Path, options: str, access: str
) -> None:
    """Several dated rotations: `%s` in the date tells them apart, a second
    apart."""
    logs = _rotate(tmp_path, "rotate 9\n" + options, pause=1.1)
    rotated = _check_sets(logs, generations=ROTATIONS + 1)
    mine = [n for n in rotated if re.fullmatch(access, n)]
    assert len(mine) == ROTATIONS, rotated  # logrotate names them so


@pytest.mark.parametrize(
    "options",
    [
        "dateext",
        "dateext\ndateyesterday\ncompress",
        "dateext\ndateformat -%Y-%m-%d",
        "dateext\ndateformat .%Y%m%d",
        "dateext\ndateformat _%Y%m%d\ncompress",
        "dateext\nhourly\ncompress",
    ],
)
def test_one_dated_rotation_with_extension_joins_its_log(
    tmp_path: Path, options: str
) -> None:
    """The date forms `rotation_key` reads, each with `extension .log`: one
    rotation (two on the same date would be refused by logrotate)."""
    logs = _rotate(tmp_path, f"rotate 9\nextension .log\n{options}", rotations=1)
    rotated = _check_sets(logs, generations=2)
    assert len(rotated) == len(LOGS), rotated
    assert all(n.endswith((".log", ".log.gz")) for n in rotated), rotated
