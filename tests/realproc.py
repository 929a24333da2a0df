"""Real servers in tests: find, start and stop them, and talk to them raw.

Shared by the tests that drive real nginx and HAProxy on loopback
(`test_nginx_real`, `test_realip_real`, `test_doctor`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

IO_TIMEOUT = 5.0
HALF_CLOSE_AFTER = 1.5
# `.ci/run` installs nginx and haproxy: there a missing binary is a failure
REQUIRE = os.environ.get("PPLOG_REQUIRE_NGINX") == "1"

CLIENT_HELLO = bytes.fromhex(
    "16030100a5010000a10303"
    "5f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
    "00002cc02bc02fc02cc030cca9cca8c009c013c00ac014009c009d002f0035c012000a"
    "0100004c000000120010000d6578616d706c652e636f6d"
)


def find_binary(name: str) -> str | None:
    """`name` on PATH, else in the sbin directories Debian and source builds use."""
    found = shutil.which(name)
    if found:
        return found
    for prefix in ("/usr/sbin", "/usr/local/sbin", f"/usr/local/{name}/sbin"):
        if os.access(f"{prefix}/{name}", os.X_OK):
            return f"{prefix}/{name}"
    return None


def require_binary(name: str, package: str) -> str:
    """The binary, or skip the test (fail it under PPLOG_REQUIRE_NGINX=1)."""
    found = find_binary(name)
    if found is None:
        reason = f"no {name} binary found (apt-get install {package})"
        if REQUIRE:
            pytest.fail(f"PPLOG_REQUIRE_NGINX=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return found


def temp_paths(root: Path, nginx_v: str) -> str:
    """nginx `*_temp_path` directives under `root`, for the modules this
    build has (`nginx -V` output): nginx-light lacks fastcgi, uwsgi, scgi."""
    return "\n".join(
        f"    {kind}_temp_path {root / ('tmp_' + kind)};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        if kind == "client_body" or f"--without-http_{kind}_module" not in nginx_v
    )


def start_nginx(
    binary: str,
    root: Path,
    config: Callable[[list[int], str], str],
    *,
    ports: int = 1,
    listening: int | None = None,
    env: Mapping[str, str] | None = None,
    before: Callable[[], None] | None = None,
) -> tuple[subprocess.Popen[bytes], list[int]]:
    """nginx in the foreground (one process) on `ports` fresh loopback ports.

    `config(ports, nginx -V output)` is the configuration, written to
    `root/nginx.conf`; the first `listening` ports (default all) must accept
    connections within 10 s. A port taken meanwhile: up to five tries with
    others (`before` runs before each, e.g. to remove old logs). Returns the
    process and its ports; the caller stops it (`stop`).
    """
    nginx_v = subprocess.run(
        [binary, "-V"], capture_output=True, check=False, timeout=30
    ).stderr.decode(errors="replace")
    help_text = subprocess.run(
        [binary, "-h"], capture_output=True, check=False, timeout=30
    ).stderr.decode(errors="replace")
    # -e (1.19.5+) keeps the startup error log out of /var/log/nginx
    early = ["-e", str(root / "error.log")] if "-e filename" in help_text else []
    conf = root / "nginx.conf"
    for _attempt in range(5):
        got = free_ports(ports)
        conf.write_text(config(got, nginx_v), encoding="utf-8")
        if before is not None:
            before()
        command = [binary, "-p", f"{root}/", *early, "-c", str(conf), "-g"]
        command.append("daemon off; master_process off;")
        with (root / "stderr.log").open("wb") as err:
            proc = subprocess.Popen(  # noqa: S603
                command,
                stdin=subprocess.DEVNULL,
                env=None if env is None else {**os.environ, **env},
                stdout=err,
                stderr=err,
            )
        probes = [("127.0.0.1", p) for p in got[:listening]]
        if wait_listening(proc, probes, time.monotonic() + 10):
            return proc, got
        stop(proc)  # most likely a port was taken meanwhile: try others
    text = ""
    for name in ("stderr.log", "error.log"):
        if (root / name).exists():
            text += (root / name).read_text(errors="replace")
    pytest.fail(f"nginx did not start:\n{text[-4000:]}", pytrace=False)


def free_ports(n: int, *, v6: bool = False) -> list[int]:
    """`n` distinct ports free on 127.0.0.1 (and on ::1 with `v6`) a moment ago."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < n:
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if v6:
                s6 = stack.enter_context(socket.socket(socket.AF_INET6))
                try:
                    s6.bind(("::1", port))
                except OSError:
                    continue
            ports.append(port)
        return ports


def wait_listening(
    proc: subprocess.Popen[bytes], addrs: list[tuple[str, int]], deadline: float
) -> bool:
    """True once every (host, port) accepts connections; False if `proc` dies first."""
    for host, port in addrs:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                return False
            with socket.socket(family) as s:
                s.settimeout(0.2)
                try:
                    s.connect((host, port))
                except OSError:
                    time.sleep(0.05)
                    continue
                break
    return True


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGQUIT) -> None:
    """Stop with `sig` (SIGQUIT: nginx finishes and logs everything), then kill."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def send(
    port: int,
    data: bytes,
    *,
    host: str = "127.0.0.1",
    source: str | None = None,
    local_ports: list[int] | None = None,
) -> bytes:
    """Send `data` (from `source`) and read until the server closes.

    Complete requests say `Connection: close` (or are rejected), so nginx answers
    and closes at once. Only when nothing arrives for `HALF_CLOSE_AFTER` seconds
    (an incomplete request) do we half-close, so that nginx sees EOF and logs a
    400 instead of waiting for its header timeout; half-closing any earlier
    would turn slow proxied requests into 499s. For a plain 200 nginx writes the
    log line before it closes, so once this returns the line is in the log.
    `local_ports` collects our source port (nginx logs it as `$remote_port`).
    A reply that never ends is marked with `<timeout>`.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    reply = bytearray()
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(IO_TIMEOUT)
        if source is not None:
            s.bind((source, 0))
            if local_ports is not None:
                local_ports.append(int(s.getsockname()[1]))
        s.connect((host, port))
        half_closed = False
        try:
            s.sendall(data)
            s.settimeout(HALF_CLOSE_AFTER)
            while True:
                try:
                    chunk = s.recv(65536)
                except TimeoutError:
                    if half_closed:
                        raise
                    s.shutdown(socket.SHUT_WR)  # incomplete request: let nginx see EOF
                    s.settimeout(IO_TIMEOUT)
                    half_closed = True
                    continue
                if not chunk:
                    break
                reply += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
        except TimeoutError:
            reply += b"<timeout>"
    return bytes(reply)


def report(problems: list[str], what: str, limit: int = 40) -> str:
    """An assertion message: how many problems, and the first `limit` of them."""
    head = "\n".join(problems[:limit])
    more = f"\n... and {len(problems) - limit} more" if len(problems) > limit else ""
    return f"{len(problems)} {what}:\n{head}{more}"
