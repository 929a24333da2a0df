"""`pplog top` against real processes: nginx writing the log, tmux showing it.

- nginx (foreground, one process, loopback) logs requests that a bounded
  client sends from several loopback source addresses; `pplog top --to
  jsonl` follows the log while it is rotated by rename-and-create (then
  `USR1`, as logrotate does) and by copytruncate. On SIGTERM its last object
  counts per client and per status what was sent, exactly.
- The terminal view runs in tmux: the captured screen shows the busiest
  client and its count, a resize redraws it to the new width, and `q`
  exits 0 with the terminal back in canonical mode.

nginx is required under PPLOG_REQUIRE_NGINX=1 (`.ci/run`), tmux under CI.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from realproc import (
    find_binary,
    require_binary,
    start_nginx,
    stop,
    temp_paths,
)

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = [f"127.0.0.{n}" for n in (2, 3, 4, 5, 6)]
# path -> the status nginx answers with (see the configuration)
PATHS = {"/ok": 200, "/created": 201, "/missing": 404, "/boom": 503}
DEADLINE = 60.0  # seconds any one wait may take


def _config(root: Path, port: int, nginx_v: str) -> str:
    temp = temp_paths(root, nginx_v)
    return f"""\
worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "error.log"} info;
events {{ worker_connections 64; }}
http {{
{temp}
    default_type text/plain;
    keepalive_timeout 0;
    server {{
        listen 127.0.0.1:{port};
        access_log {root / "logs" / "access.log"} combined;
        root {root / "www"};
        location = /ok {{ return 200 "ok\\n"; }}
        location = /created {{ return 201 "made\\n"; }}
        location = /boom {{ return 503 "down\\n"; }}
    }}
}}
"""


@pytest.fixture
def nginx(tmp_path: Path):  # noqa: ANN201 - a generator fixture
    binary = require_binary("nginx", "nginx-light")
    (tmp_path / "logs").mkdir()
    (tmp_path / "www").mkdir()
    proc, (port,) = start_nginx(
        binary, tmp_path, lambda ports, nginx_v: _config(tmp_path, ports[0], nginx_v)
    )
    try:
        yield proc, port, tmp_path / "logs" / "access.log"
    finally:
        stop(proc)


def _request(port: int, client: str, path: str) -> int:
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=5, source_address=(client, 0)
    )
    try:
        conn.request("GET", path, headers={"User-Agent": "pplog-test/1.0"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


class Traffic:
    """Requests sent, by client and by status (what nginx answered)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.by_client: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.n = 0

    def send(self, count: int, *, counted: bool = True) -> None:
        paths = list(PATHS)
        for _ in range(count):
            client = CLIENTS[self.n % len(CLIENTS)]
            # client i gets i+1 times its share: a clear busiest client
            if self.n % 7 == 6:
                client = CLIENTS[-1]
            path = paths[(self.n // 3) % len(paths)]
            status = _request(self.port, client, path)
            assert status == PATHS[path]
            if counted:
                self.by_client[client] += 1
                self.by_status[status] += 1
            self.n += 1


def _wait_for(predicate, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        time.sleep(0.05)


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.nginx
def test_jsonl_counts_what_nginx_logged_across_rotations(nginx) -> None:  # noqa: ANN001
    proc, port, log = nginx
    traffic = Traffic(port)
    traffic.send(12, counted=False)  # before top starts: not counted
    _wait_for(lambda: _lines(log) == 12, "nginx to log the first requests")
    top = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pplog",
            "top",
            str(log),
            "--to",
            "jsonl",
            "--refresh",
            "0.3",
            "--top",
            "100",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        first = json.loads(top.stdout.readline())  # type: ignore[union-attr]
        assert first["overview"]["lines"] == 0
        traffic.send(40)
        # rename-and-create: nginx writes to the renamed file until USR1
        rotated = log.with_name("access.log.1")
        log.rename(rotated)
        traffic.send(15)
        proc.send_signal(signal.SIGUSR1)
        _wait_for(log.exists, "nginx to reopen its log")
        traffic.send(30)
        time.sleep(1.0)  # top has read the new file past its first lines
        # copytruncate: copy, then truncate in place (nginx keeps its offset
        # at the end: O_APPEND), and the file grows again at once
        shutil.copyfile(log, log.with_name("access.log.2"))
        os.truncate(log, 0)
        traffic.send(45)
        time.sleep(0.5)
        traffic.send(20)
        top.send_signal(signal.SIGTERM)
        out, err = top.communicate(timeout=DEADLINE)
    finally:
        if top.poll() is None:
            top.kill()
            top.wait()
    assert top.returncode == 0, err
    last = json.loads(out.splitlines()[-1])
    total = sum(traffic.by_client.values())
    assert last["overview"]["requests"] == total == 150
    assert last["overview"]["rejected"] == 0
    got_clients = {r["client_ip"]: r["requests"] for r in last["clients"]}
    assert got_clients == dict(traffic.by_client)
    got_status = {r["status"]: r["requests"] for r in last["status"]}
    assert got_status == dict(traffic.by_status)
    assert last["clients"][0]["client_ip"] == CLIENTS[-1]


def _tmux() -> str:
    found = find_binary("tmux")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed (.ci/run installs it)", pytrace=False)
        pytest.skip("no tmux binary found (apt-get install tmux)")
    return found


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def test_screen_in_tmux_shows_top_client_resizes_and_quits(tmp_path: Path) -> None:
    tmux = _tmux()
    log = tmp_path / "access.log"
    log.write_text("", encoding="utf-8")
    socket = str(tmp_path / "tmux.sock")
    status = tmp_path / "status.txt"
    shell = (
        f"cd {ROOT} && {sys.executable} -m pplog top {log} --refresh 0.3; "
        f"code=$?; stty -a > {status}.tmp; echo EXIT=$code >> {status}.tmp; "
        f"mv {status}.tmp {status}; sleep 60"
    )
    base = [tmux, "-S", socket, "-f", "/dev/null"]
    env = {**os.environ, "TERM": "xterm-256color", "NO_COLOR": "1"}
    subprocess.run(
        [*base, "new-session", "-d", "-s", "top", "-x", "120", "-y", "40", shell],
        check=True,
        timeout=30,
        env=env,
    )

    def screen() -> str:
        return subprocess.run(
            [*base, "capture-pane", "-p", "-t", "top"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout

    try:
        _wait_for(lambda: "pplog top" in screen(), "the view to start")
        now = time.time()
        lines = [
            f'198.51.100.77 - - [{_stamp(now)}] "GET /busy HTTP/1.1" 200 5 "-" "t"\n'
        ] * 37
        lines += [
            f'192.0.2.{n} - - [{_stamp(now)}] "GET /a{n} HTTP/1.1" 404 5 "-" "t"\n'
            for n in range(9)
        ]
        with log.open("a", encoding="utf-8") as f:
            f.write("".join(lines))
        _wait_for(lambda: "198.51.100.77" in screen(), "the busiest client")
        shown = screen()
        assert "requests 46" in shown
        busiest = next(x for x in shown.splitlines() if "198.51.100.77" in x)
        assert " 37 " in busiest
        assert max(len(x) for x in shown.splitlines()) <= 120
        subprocess.run(
            [*base, "resize-window", "-t", "top", "-x", "70", "-y", "30"],
            check=True,
            timeout=30,
        )
        _wait_for(
            lambda: (
                max(len(x.rstrip()) for x in screen().splitlines() or [""]) <= 70
                and "198.51.100.77" in screen()
            ),
            "the view to redraw at 70 columns",
        )
        subprocess.run([*base, "send-keys", "-t", "top", "q"], check=True, timeout=30)
        _wait_for(status.exists, "top to exit")
        text = status.read_text()
        assert "EXIT=0" in text
        assert " icanon" in text
        assert " echo" in text
        assert "pplog top" not in screen()  # the alternate screen is gone
    finally:
        subprocess.run([*base, "kill-server"], check=False, timeout=30)
