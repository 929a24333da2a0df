"""Inputs that cannot be read: one `pplog: warning:` line per bad file, the
run goes on with the rest, and when nothing at all could be read, one
`Error:` line and exit 1 (README: "1 could not run"), for `summarize` and
`doctor` alike. Also what `top` and `doctor` say of a path that is not a
log (a device, a dataset), and a symbolic link loop among the inputs.

A file is made unreadable with mode 000; as root that alone is not enough,
so the command then runs under `setpriv` without the capabilities that
bypass file permissions (skipped where that cannot be done).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pplog

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_logs" / "elb-access.log"
ERROR_ENTRY = (
    "2026/11/20 00:00:01 [error] 12#12: *1 broken header: "
    '"GET / HTTP/1.1" while reading PROXY protocol, client: 10.0.0.1, '
    "server: 0.0.0.0:80\n"
)
NO_BYPASS = "-dac_override,-dac_read_search"


@functools.cache
def _unprivileged() -> list[str]:
    """The command prefix that runs without permission-bypassing
    capabilities ([] when not root); skips when none can be had."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root without setpriv: a file cannot be made unreadable")
    prefix = [setpriv, f"--inh-caps={NO_BYPASS}", f"--bounding-set={NO_BYPASS}", "--"]
    probe = subprocess.run(
        [*prefix, "cat", "/proc/1/environ"], capture_output=True, check=False
    )
    if probe.returncode == 0:
        pytest.skip("setpriv did not drop the capabilities that bypass permissions")
    return prefix


def _unreadable(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0)
    _unprivileged()  # skip early where it cannot be unreadable
    return path


def _pplog(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_unprivileged(), sys.executable, "-m", "pplog", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def _warnings(stderr: str) -> list[str]:
    return [x for x in stderr.splitlines() if x.startswith("pplog: warning:")]


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    shutil.copy(SAMPLE, tmp_path / "good.log")
    head = b"".join(SAMPLE.read_bytes().splitlines(keepends=True)[:50])
    _unreadable(tmp_path / "unread.log", head)
    _unreadable(tmp_path / "unread_err.log", ERROR_ENTRY.encode())
    _unreadable(tmp_path / "empty.log", b"")
    return tmp_path


def _denied(name: str) -> str:
    return f"pplog: warning: {name}: cannot open: Permission denied"


@pytest.mark.parametrize(
    "args",
    [
        ["doctor", "--error-log", "unread_err.log"],
        ["doctor", "unread.log", "--to", "json"],
        ["doctor", "unread.log"],
    ],
)
def test_doctor_with_no_readable_input_is_an_error(logs: Path, args: list[str]) -> None:
    """Not "No ... problems found" and exit 0: nothing was diagnosed."""
    proc = _pplog(*args, cwd=logs)
    assert proc.returncode == 1, proc
    assert proc.stdout == ""
    name = args[2] if args[1] == "--error-log" else args[1]
    lines = proc.stderr.splitlines()
    assert lines[0] == _denied(name)
    assert len(lines) == 2, lines  # the warning, then one error
    assert lines[1].startswith("Error: ")
    assert f"`{name}` could not be read" in lines[1]
    assert "nothing was diagnosed" in lines[1]


def test_summarize_with_no_readable_input_is_an_error(logs: Path) -> None:
    alone = _pplog("summarize", "unread.log", "--to", "json", cwd=logs)
    assert alone.returncode == 1, alone
    assert alone.stdout == ""
    lines = alone.stderr.splitlines()
    assert lines[0] == _denied("unread.log")
    assert len(lines) == 2, lines
    assert lines[1].startswith("Error: `unread.log` could not be read")
    both = _pplog("summarize", "unread.log", "empty.log", cwd=logs)
    assert both.returncode == 1, both
    assert _warnings(both.stderr) == [_denied("unread.log"), _denied("empty.log")]
    assert both.stderr.splitlines()[-1].startswith(
        "Error: none of the 2 inputs could be read"
    )


def test_a_readable_input_next_to_unreadable_ones_is_read(logs: Path) -> None:
    """As before: a warning for the bad file, the report of the good one."""
    proc = _pplog("summarize", "unread.log", "good.log", "--to", "json", cwd=logs)
    assert proc.returncode == 0, proc
    assert proc.stderr.splitlines() == [_denied("unread.log")]
    overview = json.loads(proc.stdout)["overview"]
    assert overview["lines"] == 3000
    assert overview["unreadable"] == [
        {"source": "unread.log", "problem": "cannot open: Permission denied"}
    ]
    found = _pplog(
        "doctor", "unread.log", "good.log", "--error-log", "unread_err.log",
        "--to", "json", cwd=logs,
    )  # fmt: skip
    assert found.returncode == 3, found
    assert found.stderr.splitlines() == [
        _denied("unread.log"),
        _denied("unread_err.log"),
    ]
    assert json.loads(found.stdout)["findings"]
    # an empty log that was read is not "could not be read": a warning only
    (logs / "rotated.log").write_bytes(b"")
    empty = _pplog("doctor", "rotated.log", "unread.log", "--to", "json", cwd=logs)
    assert empty.returncode == 0, empty
    assert json.loads(empty.stdout) == {"findings": []}
    assert empty.stderr.splitlines() == [
        _denied("unread.log"),
        "pplog: warning: rotated.log: no lines to read: nothing was diagnosed "
        "from the access log",
    ]


@pytest.mark.parametrize(
    ("args", "name"),
    [
        # empty and unreadable: not also "no lines to read"
        (["doctor", "empty.log"], "empty.log"),
        # the same file as an access log and an error log: warned once
        (["doctor", "unread.log", "--error-log", "unread.log"], "unread.log"),
        (
            ["doctor", "unread_err.log", "--error-log", "unread_err.log"],
            "unread_err.log",
        ),
    ],
)
def test_doctor_warns_once_per_bad_file(logs: Path, args: list[str], name: str) -> None:
    proc = _pplog(*args, "--to", "json", cwd=logs)
    assert _warnings(proc.stderr) == [_denied(name)]
    assert proc.returncode == 1, proc


def test_doctor_of_a_device_warns_once(tmp_path: Path) -> None:
    shutil.copy(SAMPLE, tmp_path / "good.log")
    device = "pplog: warning: /dev/zero: skipped: a device, not a log file"
    alone = _pplog("doctor", "/dev/zero", cwd=tmp_path)
    assert alone.stdout == ""
    assert alone.stderr.splitlines()[:-1] == [device]
    assert alone.stderr.splitlines()[-1].startswith(
        "Error: `/dev/zero` could not be read"
    )
    assert alone.returncode == 1
    beside = _pplog("doctor", "/dev/zero", "good.log", "--to", "json", cwd=tmp_path)
    assert beside.returncode == 3, beside
    assert beside.stderr.splitlines() == [device]


def test_a_symbolic_link_loop_is_one_warning(tmp_path: Path) -> None:
    """Not "no such file" for the whole run: a loop is a file that cannot be
    read, warned about, and the run goes on."""
    shutil.copy(SAMPLE, tmp_path / "good.log")
    (tmp_path / "loop.log").symlink_to("loop.log")
    said = "pplog: warning: loop.log: cannot open: a symbolic link loop"
    for command in (["summarize"], ["doctor"]):
        proc = _pplog(*command, "loop.log", "good.log", "--to", "json", cwd=tmp_path)
        assert proc.returncode in (0, 3), proc
        assert proc.stderr.splitlines() == [said]
        assert json.loads(proc.stdout)
    alone = _pplog("summarize", "loop.log", cwd=tmp_path)
    assert alone.returncode == 1, alone
    assert alone.stderr.splitlines()[0] == said
    assert alone.stderr.splitlines()[1].startswith(
        "Error: `loop.log` could not be read"
    )
    error_log = _pplog("doctor", "--error-log", "loop.log", cwd=tmp_path)
    assert error_log.returncode == 1, error_log
    assert error_log.stderr.splitlines()[0] == said


def test_links_a_directory_holds_to_no_log_are_said_and_never_read(
    tmp_path: Path,
) -> None:
    """A container's /var/log/nginx (`access.log -> /dev/stdout`, `error.log
    -> /dev/stderr`, as nginx's official image makes them), with a link loop
    and a link to a deleted file: the loop and the dangling link were left
    out silently, and the stream links read the run's own output when it was
    redirected to a file (its warnings came back as a reject). Each is one
    warning now, for `summarize`, `doctor` and `ingest`, and none is read."""
    logs = tmp_path / "nginx"
    logs.mkdir()
    shutil.copy(SAMPLE, logs / "access.log.1")
    (logs / "access.log").symlink_to("/dev/stdout")
    (logs / "error.log").symlink_to("/dev/stderr")
    (logs / "loop.log").symlink_to("loop.log")
    (logs / "old.log").symlink_to(tmp_path / "deleted.log")
    said = {
        "access.log": "a link to /dev/stdout, not a log file",
        "error.log": "a link to /dev/stderr, not a log file",
        "loop.log": "a symbolic link loop",
        "old.log": f"a link to {tmp_path / 'deleted.log'}, which does not exist",
    }
    lines = SAMPLE.read_bytes().count(b"\n")
    for command in (["summarize", "--to", "json"], ["ingest", "--dataset", "ds"]):
        out = tmp_path / "out.txt"
        with out.open("w") as both:  # stdout and stderr: one regular file
            proc = subprocess.run(
                [sys.executable, "-m", "pplog", command[0], "nginx", *command[1:]],
                stdout=both,
                stderr=both,
                cwd=tmp_path,
                timeout=120,
                check=False,
            )
        text = out.read_text(encoding="utf-8")
        assert proc.returncode == 0, text
        warned = _warnings(text)
        assert len(warned) == len(said), text
        for name, why in said.items():
            assert any(f"nginx/{name}: skipped: {why}" in w for w in warned), name
        if command[0] == "summarize":
            overview = json.loads(text[text.index("{") :])["overview"]
            assert (overview["lines"], overview["rejected"]) == (lines, 0)
    assert pplog.scan_dataset(tmp_path / "ds").collect().height == lines


def test_the_file_its_output_is_redirected_to_is_not_read(tmp_path: Path) -> None:
    """``pplog top logs/ --to jsonl > logs/top.jsonl``: top read its own JSON
    lines back as a log (11 rejects of 21 lines, a "no preset fits"
    warning); `summarize` listed its output as an input too."""
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(SAMPLE, logs / "access.log")
    lines = SAMPLE.read_bytes().count(b"\n")
    for command, name in (
        (["summarize", "logs", "--to", "json"], "summary.json"),
        (
            [
                "top",
                "logs",
                "--to",
                "jsonl",
                "--since",
                "2000-01-01",
                "--duration",
                "1",
            ],
            "t",
        ),
    ):
        out = logs / name
        _skips_its_output(command, out, f"logs/{name}", tmp_path)
        last = out.read_text(encoding="utf-8").strip().splitlines()[-1]
        overview = json.loads(last if command[0] == "top" else out.read_text())
        overview = overview["overview"]
        if command[0] == "top":  # summarize names every input, skipped or not
            assert overview["sources"] == ["logs/access.log"]
        assert (overview["lines"], overview["rejected"]) == (lines, 0), command
        out.unlink()


def test_a_link_to_the_file_its_output_is_redirected_to_is_not_read(
    tmp_path: Path,
) -> None:
    """The same output reached through a link in the directory read."""
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(SAMPLE, logs / "access.log")
    out = tmp_path / "summary.json"
    (logs / "latest.log").symlink_to(out)
    command = ["summarize", "logs", "--to", "json"]
    _skips_its_output(command, out, "logs/latest.log", tmp_path)


def _skips_its_output(command: list[str], out: Path, name: str, cwd: Path) -> None:
    """`pplog COMMAND > out` succeeds, with one warning: `name` (`out`, or a
    link to it) skipped as its own output."""
    with out.open("w") as stdout:
        proc = subprocess.run(
            [sys.executable, "-m", "pplog", *command],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    assert _warnings(proc.stderr) == [
        f"pplog: warning: {name}: skipped: pplog's own output (its stdout or "
        "stderr is written there)"
    ]


def test_a_directory_that_cannot_be_listed_is_named_itself(tmp_path: Path) -> None:
    """It was named by a path inside it (`locked/_pplog`, where pplog looks
    for a dataset), which the user never gave and which does not exist."""
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(SAMPLE, locked / "access.log")
    locked.chmod(0)
    try:
        for command in ("summarize", "doctor"):
            proc = _pplog(command, "locked", cwd=tmp_path)
            assert proc.returncode == 1, proc
            assert proc.stderr.strip() == "Error: Permission denied (`locked`)"
    finally:
        locked.chmod(0o755)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("doctor-dataset")
    log = root / "access.log"
    shutil.copy(SAMPLE, log)
    ds = root / "ds"
    pplog.ingest([str(log)], ds, format="elb_log", final=True)
    return ds


def test_top_says_what_a_path_that_cannot_be_followed_is(
    tmp_path: Path, dataset: Path
) -> None:
    device = _pplog("top", "/dev/zero", "--to", "jsonl", cwd=tmp_path)
    assert device.returncode == 1, device
    assert device.stderr.splitlines() == [
        "Error: `/dev/zero` is a device, not a log file: nothing to follow"
    ]
    ds = _pplog("top", str(dataset), "--to", "jsonl", cwd=tmp_path)
    assert ds.returncode == 1, ds
    lines = ds.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: `{dataset}` is a pplog dataset")
    assert "follow the logs" in lines[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = _pplog("top", str(empty), "--to", "jsonl", cwd=tmp_path)
    assert nothing.returncode == 1, nothing
    assert nothing.stderr.splitlines() == [
        f"Error: directory `{empty}` holds no log files: nothing to follow"
    ]


def test_doctor_reads_a_dataset_as_summarize_does(
    tmp_path: Path, dataset: Path
) -> None:
    """DESIGN: a PATH may be a dataset written by `pplog ingest`, and the
    reports then read its Parquet: the findings of the log it holds."""
    of_log = _pplog(
        "doctor", str(dataset.parent / "access.log"), "--format", "elb_log",
        "--to", "json", cwd=tmp_path,
    )  # fmt: skip
    of_dataset = _pplog("doctor", str(dataset), "--to", "json", cwd=tmp_path)
    assert of_dataset.returncode == of_log.returncode == 3, of_dataset
    assert of_dataset.stderr == ""
    expected = json.loads(of_log.stdout)["findings"]
    found = json.loads(of_dataset.stdout)["findings"]
    assert [(f["code"], f["count"]) for f in found] == [
        (f["code"], f["count"]) for f in expected
    ]
    for f in found:  # examples name the line and show what the row holds of it
        assert all(": " in e and not e.endswith(": ") for e in f["examples"]), f
    refused = _pplog("doctor", str(dataset), "--format", "combined", cwd=tmp_path)
    assert refused.returncode == 2, refused
    assert "is a dataset" in refused.stderr
    # among other paths a dataset is named as one, not as an empty directory
    mixed = _pplog("doctor", str(dataset), str(SAMPLE), cwd=tmp_path)
    assert mixed.returncode == 1, mixed
    assert mixed.stderr.startswith(f"Error: `{dataset}` is a pplog dataset")
