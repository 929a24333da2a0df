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
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from helpers import run_pplog
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


@pytest.mark.parametrize("written", ["part", "all"])
def test_a_rotation_being_compressed_is_read_once(tmp_path: Path, written: str) -> None:
    """While logrotate's `compress` writes `access.log.1.gz`, `access.log.1`
    is still there (it is removed once the compressor is done: minutes for a
    large log), the `.gz` holding part of it, or all of it just before the
    removal. A summary of the directory then reads each line once, from the
    plain file (it had counted the compressed part again: 5,190 lines for
    3,200), and says why the `.gz` is skipped. The compressor here is gzip
    held by a script after `written` of its output, until the test is done."""
    logrotate = require_binary("logrotate", "logrotate")
    logs = tmp_path / "logs"
    logs.mkdir()
    line = '203.0.113.{c} - - [08/Dec/2026:02:36:06 +0000] "GET /p/{i} HTTP/1.1" 200 8 "-" "c"\n'
    live = logs / "access.log"
    live.write_text("".join(line.format(c=i % 50, i=i) for i in range(3000)))
    held, release = tmp_path / "held", tmp_path / "release"
    keep = "head -c 3000" if written == "part" else "cat"
    script = tmp_path / "slowgzip.sh"
    script.write_text(
        "#!/bin/sh\n"
        f"gzip -c > {tmp_path}/whole.gz\n"
        f"{keep} {tmp_path}/whole.gz\n"
        f"touch {held}\n"
        f"for i in $(seq 600); do [ -e {release} ] && break; sleep 0.1; done\n"
        f"[ {written} = part ] && tail -c +3001 {tmp_path}/whole.gz\n"
        "exit 0\n"
    )
    script.chmod(0o755)
    conf = tmp_path / "logrotate.conf"
    conf.write_text(
        f"{live} {{\nrotate 3\ncompress\ncompresscmd {script}\n"
        "compressext .gz\ncreate\n}\n"
    )
    said = tmp_path / "logrotate.err"
    with said.open("wb") as err:
        rotating = subprocess.Popen(  # noqa: S603
            [logrotate, "-f", "-s", str(tmp_path / "state"), str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        while not held.exists():
            assert rotating.poll() is None, said.read_text()
            assert time.monotonic() < deadline, "logrotate's compressor never ran"
            time.sleep(0.05)
        live.write_text("".join(line.format(c=7, i=i) for i in range(200)))
        assert sorted(p.name for p in logs.iterdir()) == [
            "access.log",
            "access.log.1",
            "access.log.1.gz",
        ]
        out = run_pplog("summarize", str(logs), "--to", "json")
        assert out.returncode == 0, out.stderr
        overview = json.loads(out.stdout)["overview"]
        assert (overview["lines"], overview["requests"]) == (3200, 3200)
        assert "access.log.1.gz" in out.stderr
        assert "being compressed" in out.stderr
    finally:
        release.touch()
        try:
            rotating.wait(timeout=60)
        finally:
            if rotating.poll() is None:
                rotating.kill()
    assert rotating.returncode == 0, said.read_text()
    # logrotate done: the .gz alone, read whole
    assert sorted(p.name for p in logs.iterdir()) == ["access.log", "access.log.1.gz"]
    with gzip.open(logs / "access.log.1.gz", "rt") as f:
        assert sum(1 for _ in f) == 3000
