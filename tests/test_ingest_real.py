"""`pplog ingest` against real nginx and the real `logrotate` binary.

nginx (foreground, one process, 127.0.0.1 only) logs numbered requests
(`/seq/000123`); logrotate rotates its log with `copytruncate` while an
ingest run is under way: the copy is made after the run listed the files,
or is still being written when it lists them, and nginx writes on before
the run reads the live log. strace slows logrotate where the timing must
be held (its copy's `write`s, the `fsync` before the truncate), and the run
waits at a hook between listing the files and reading them. Every request
sent is in the dataset exactly once.

nginx, logrotate and strace are required under PPLOG_REQUIRE_NGINX=1
(`.ci/run` installs them); skipped where strace cannot trace a child.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ingest_harness import (
    assert_clean,
    ingest,
    result_of,
    seq_counts,
    start_ingest_library,
)
from realproc import require_binary, start_nginx, stop, temp_paths

DEADLINE = 60.0  # seconds any one wait may take
FSYNC_DELAY_US = 6_000_000  # logrotate's fsync of the copy, before its truncate
WRITE_DELAY_US = 400_000  # each write of the copy after its first (8 KiB)


def _config(root: Path, port: int, nginx_v: str) -> str:
    return f"""\
worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "error.log"} info;
events {{ worker_connections 64; }}
http {{
{temp_paths(root, nginx_v)}
    default_type text/plain;
    keepalive_timeout 0;
    server {{
        listen 127.0.0.1:{port};
        access_log {root / "logs" / "access.log"} combined;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


class Site:
    """nginx on a loopback port, the requests sent to it, and logrotate."""

    def __init__(self, root: Path, port: int, logrotate: str, strace: str) -> None:
        self.root = root
        self.port = port
        self.log = root / "logs" / "access.log"
        self.logrotate = logrotate
        self.strace = strace
        self.sent = 0
        self.conf = root / "logrotate.conf"
        self.conf.write_text(
            f"{self.log} {{\n    copytruncate\n    rotate 5\n    nocompress\n}}\n"
        )

    def send(self, n: int) -> None:
        """`n` numbered requests, each logged before it returns."""
        for _ in range(n):
            self.sent += 1
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", f"/seq/{self.sent:06d}")
                response = conn.getresponse()
                response.read()
                assert response.status == 200
            finally:
                conn.close()

    def rotate(self, *, slow_writes: bool) -> subprocess.Popen[bytes]:
        """Start `logrotate -f` (copytruncate), its fsync before the truncate
        slowed, and with `slow_writes` each write of the copy after its first."""
        inject = ["-e", f"inject=fsync:delay_enter={FSYNC_DELAY_US}:when=1"]
        if slow_writes:
            inject += ["-e", f"inject=write:delay_enter={WRITE_DELAY_US}:when=2+"]
        command = [self.strace, "-qq", "-o", os.devnull, "-e", "trace=fsync,write"]
        command += [*inject, self.logrotate, "-f", "-s", str(self.root / "state")]
        return subprocess.Popen([*command, str(self.conf)])  # noqa: S603


def _usable_strace(strace: str) -> bool:
    """Whether strace can trace a child here (ptrace may be forbidden)."""
    probe = [strace, "-qq", "-o", os.devnull, "true"]
    return subprocess.run(probe, check=False, timeout=30).returncode == 0


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    binary = require_binary("nginx", "nginx-light")
    logrotate = require_binary("logrotate", "logrotate")
    strace = require_binary("strace", "strace")
    if not _usable_strace(strace):  # ptrace forbidden in this container
        pytest.skip("strace cannot trace a child here")
    (tmp_path / "logs").mkdir()
    proc, (port,) = start_nginx(
        binary, tmp_path, lambda ports, nginx_v: _config(tmp_path, ports[0], nginx_v)
    )
    try:
        yield Site(tmp_path, port, logrotate, strace)
    finally:
        stop(proc)


# the run waits before listing the files and between listing and reading
# them, until the test says so (files in PPLOG_TEST_FLAGS): it says `ready`
# and `listed`; `list` lets it list, `read` read
_PAUSED = """
import os, time
from pathlib import Path
from pplog.batch import identity
_discover = identity.discover
flags = Path(os.environ["PPLOG_TEST_FLAGS"])
def wait(name):
    deadline = time.monotonic() + 60
    while not (flags / name).exists():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for " + name)
        time.sleep(0.01)
def discover(patterns):
    (flags / "ready").touch()
    wait("list")
    found = _discover(patterns)
    (flags / "listed").touch()
    wait("read")
    return found
identity.discover = discover
"""


def _until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        time.sleep(0.005)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


@pytest.mark.nginx
@pytest.mark.parametrize("copy_when", ["after-listing", "during-listing"])
def test_logrotate_copytruncate_during_a_run_is_exactly_once(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, copy_when: str
) -> None:
    """Real logrotate copies the log after the run listed the files (or is
    still copying it when the run lists them), nginx writes 20 requests
    before the run reads the log, and the truncate comes after the run: the
    copy was read again after the truncate (every request of the log twice).
    Rows in the dataset = requests sent, each once."""
    ds, flags = tmp_path / "dataset", tmp_path / "flags"
    flags.mkdir()
    monkeypatch.setenv("PPLOG_TEST_FLAGS", str(flags))
    pattern = f"{site.log}*"
    site.send(100)
    assert ingest(pattern, ds).returncode == 0
    site.send(250)  # ~28 KiB: a copy of 4 writes of 8 KiB
    run = start_ingest_library([pattern], ds, setup=_PAUSED, final_grace=0)
    copy = site.log.with_name("access.log.1")
    rotate = None
    try:
        _until(lambda: (flags / "ready").exists(), "the run to start")
        if copy_when == "after-listing":
            (flags / "list").touch()
            _until(lambda: (flags / "listed").exists(), "the run to list the files")
            rotate = site.rotate(slow_writes=False)
        else:
            rotate = site.rotate(slow_writes=True)
            _until(lambda: _size(copy) >= 8192, "logrotate's first write")
            (flags / "list").touch()
            _until(lambda: (flags / "listed").exists(), "the run to list the files")
            assert _size(copy) < _size(site.log), "the copy was done before listing"
        live = _size(site.log)
        _until(lambda: _size(copy) == live, "logrotate's copy")
        site.send(20)  # after the copy: in the live log only, until the truncate
        (flags / "read").touch()
        out, err = run.communicate(timeout=DEADLINE)
        assert rotate.poll() is None, "the truncate came before the run ended"
        assert _size(site.log) > _size(copy)
        assert result_of(subprocess.CompletedProcess([], 0, out, err))["rows"] == 270
        assert rotate.wait(timeout=DEADLINE) == 0
    finally:
        for proc in (run, rotate):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    assert _size(site.log) == 0  # truncated
    site.send(30)
    for _ in range(2):
        proc = ingest(pattern, ds)
        assert proc.returncode == 0, proc.stderr
    counts = seq_counts(ds)
    assert sum(counts.values()) == site.sent == 400
    assert set(counts) == set(range(1, 401))
    assert max(counts.values()) == 1
    assert_clean(ds)
