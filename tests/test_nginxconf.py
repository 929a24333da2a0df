"""Reading nginx configurations safely: what is read, how much, how deep.

`--nginx-conf` follows `include`, so a configuration can name anything: a
device that never ends (`include /dev/zero;`), a fifo that never answers, a
pattern that includes itself, a few hundred MB, blocks nested thousands deep.
Each ends in one `LogFormatError` (`Error: ...`, exit 1), quickly and in
bounded memory. The endless inputs run in a subprocess with a timeout and an
address-space limit, so that a regression fails instead of eating the machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pplog
from pplog.errors import LogFormatError
from pplog.formats import format_from_config, realip_from_config
from pplog.formats._nginxconf import (
    MAX_CONFIG_BYTES,
    MAX_CONFIG_FILES,
    _parse,
    read_config,
)

LOG_FORMAT = "log_format elb '$proxy_protocol_addr - $remote_user [$time_local] \"$request\" $status';"
LINE = '198.51.100.7 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 200\n'
MEMORY_LIMIT = 4 * 1024**3  # address space: polars needs ~1.5 GB of it to start
TIMEOUT = 60


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _doctor(tmp_path: Path, conf: Path) -> subprocess.CompletedProcess[str]:
    """`pplog doctor LOG --nginx-conf CONF` in a bounded subprocess."""
    log = tmp_path / "access.log"
    log.write_text(LINE)
    # the pplog this test imported, wherever that is
    env = {**os.environ, "PYTHONPATH": str(Path(pplog.__file__).parents[1])}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pplog", "doctor", str(log), "--nginx-conf", str(conf)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
        preexec_fn=_limit_memory,  # noqa: PLW1509 - no threads in the test process
    )


def test_include_of_dev_zero_fails_fast(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"http {{\n  {LOG_FORMAT}\n  include /dev/zero;\n}}\n")
    started = time.monotonic()
    proc = _doctor(tmp_path, conf)
    assert time.monotonic() - started < TIMEOUT
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == (
        f"Error: nginx configuration `/dev/zero` (`include` at {conf}:3) is a "
        "device, fifo or socket, not a regular file; include only configuration "
        "files\n"
    )
    # the configuration itself given as a device
    direct = _doctor(tmp_path, Path("/dev/zero"))
    assert direct.returncode == 1, direct.stderr
    assert direct.stderr.startswith(
        "Error: nginx configuration `/dev/zero` is a device, fifo or socket"
    )


def test_include_of_a_fifo_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.conf"
    os.mkfifo(fifo)
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"http {{\n  {LOG_FORMAT}\n  include pipe.conf;\n}}\n")
    proc = _doctor(tmp_path, conf)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith(
        f"Error: nginx configuration `{fifo}` (`include` at {conf}:3) is a device, "
        "fifo or socket, not a regular file"
    )


def test_include_of_a_directory(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"http {{\n  {LOG_FORMAT}\n  include conf.d;\n}}\n")
    with pytest.raises(LogFormatError) as info:
        format_from_config(conf)
    assert str(info.value) == (
        f"nginx configuration `{tmp_path / 'conf.d'}` (`include` at {conf}:3) is a "
        "directory, not a regular file; include only configuration files"
    )


def test_a_huge_configuration_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    with conf.open("w") as f:
        f.write(f"http {{ {LOG_FORMAT} }}\n")
        f.write(("#" * 1023 + "\n") * (MAX_CONFIG_BYTES // 1024))
    started = time.monotonic()
    with pytest.raises(LogFormatError) as info:
        format_from_config(conf)
    assert time.monotonic() - started < 5
    assert str(info.value) == (
        f"nginx configuration `{conf}` is larger than 16 MiB with its includes "
        f"(at `{conf}`); pass the format itself with --log-format '...'"
    )


def test_the_size_limit_counts_every_included_file(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    part = ("#" * 1023 + "\n") * (MAX_CONFIG_BYTES // 1024 // 4)  # a quarter each
    for n in range(5):
        (tmp_path / "conf.d" / f"{n}.conf").write_text(part)
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"http {{\n  {LOG_FORMAT}\n  include conf.d/*.conf;\n}}\n")
    with pytest.raises(LogFormatError, match="larger than 16 MiB") as info:
        format_from_config(conf)
    assert f"(at `{tmp_path / 'conf.d' / '3.conf'}` (`include` at {conf}:3))" in str(
        info.value
    )
    # four quarters fit (with the few bytes of nginx.conf: just not five)
    (tmp_path / "conf.d" / "4.conf").unlink()
    (tmp_path / "conf.d" / "3.conf").write_text(part[: -len(conf.read_text())])
    assert format_from_config(conf).name == "elb"


def test_self_including_configurations(tmp_path: Path) -> None:
    # nginx would recurse for ever too: the depth limit says what is wrong
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"http {{ {LOG_FORMAT} }}\ninclude nginx.conf;\n")
    with pytest.raises(LogFormatError) as info:
        format_from_config(conf)
    assert str(info.value) == (
        f"`include` nests more than 20 levels deep at `{conf}` (`include` at "
        f"{conf}:2): probably a file that includes itself; fix the include or pass "
        "the format itself with --log-format '...'"
    )
    (tmp_path / "conf.d").mkdir()
    for n in range(3):
        (tmp_path / "conf.d" / f"{n}.conf").write_text("include conf.d/*.conf;\n")
    conf.write_text(f"http {{ {LOG_FORMAT} }}\ninclude conf.d/*.conf;\n")
    with pytest.raises(LogFormatError, match="probably a file that includes itself"):
        format_from_config(conf)


def test_include_fan_out_is_bounded(tmp_path: Path) -> None:
    # three files per level, each including the next level: 3**9 files to read
    for level in range(9):
        (tmp_path / f"l{level}").mkdir()
        for n in range(3):
            (tmp_path / f"l{level}" / f"{n}.conf").write_text(
                f"include l{level + 1}/*.conf;\n" if level < 8 else "\n"
            )
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"http {{ {LOG_FORMAT} }}\ninclude l0/*.conf;\n")
    started = time.monotonic()
    with pytest.raises(LogFormatError) as info:
        format_from_config(conf)
    assert time.monotonic() - started < 5
    assert str(info.value).startswith(
        f"nginx configuration `{conf}` includes more than {MAX_CONFIG_FILES:,} files "
        f"(at `{tmp_path}/l"
    )
    assert str(info.value).endswith(
        "; check its `include` patterns, or pass the format itself with "
        "--log-format '...'"
    )


def test_deeply_nested_blocks(tmp_path: Path) -> None:
    depth = 5000  # Python's recursion limit is 1000
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "http {\n"
        "  log_format other '$remote_addr';\n"
        f"  {LOG_FORMAT}\n"
        "  server {\n"
        "    set_real_ip_from 10.0.0.0/8;\n"
        + "    location /a {\n" * depth
        + "      access_log /var/log/nginx/deep.log elb;\n"
        + "    }\n" * depth
        + "  }\n}\n"
    )
    # the one format an access_log uses, found at the bottom
    assert format_from_config(conf).name == "elb"
    assert [a.args for a in read_config(conf).access_logs] == [
        ["/var/log/nginx/deep.log", "elb"]
    ]
    settings = realip_from_config(conf, "elb")
    assert settings is not None
    assert settings.trusted == ("10.0.0.0/8",)
    # an unclosed nest still says where the file ended
    conf.write_text("http {\n" + "location / {\n" * depth)
    with pytest.raises(LogFormatError, match=f'expecting "}}" .* at line {depth + 1};'):
        format_from_config(conf)


def test_only_what_pplog_reads_is_kept(tmp_path: Path) -> None:
    # memory follows what pplog reads: a long `map` leaves nothing behind
    conf = tmp_path / "nginx.conf"
    entries = "".join(f"    /old/{n} /new/{n};\n" for n in range(1000))
    conf.write_text(
        f"http {{\n  map $uri $new {{\n{entries}  }}\n  {LOG_FORMAT}\n"
        "  server { listen 80; location / { return 200; } access_log /x elb; }\n"
        "  server { listen 81; }\n}\nevents { worker_connections 64; }\n"
    )
    (http,) = _parse(conf, tmp_path)
    assert http.name == "http"
    assert [(d.name, d.args) for d in http.block or []] == [
        ("log_format", ["elb", LOG_FORMAT[len("log_format elb '") : -2]]),
        ("server", []),
        ("server", []),  # the realip scopes stay, even when empty
    ]
    assert [(d.name, d.args) for d in http.block[1].block or []] == [  # type: ignore[index]
        ("access_log", ["/x", "elb"])
    ]
    config = read_config(conf)
    assert list(config.log_formats) == ["elb"]
    assert [a.args for a in config.access_logs] == [["/x", "elb"]]


def test_realip_settings_are_those_where_each_access_log_stands(tmp_path: Path) -> None:
    """Each file's realip settings: its own block's directives, else the
    enclosing ones' (location, server, http), includes in place; a header
    pplog cannot read is an error for that file only."""
    from pplog.formats import RealIPSettings, realip_by_log_path

    (tmp_path / "vhost.conf").write_text(
        "server { access_log /l/c.log; }\n"
        "server { real_ip_header X-Client-IP; access_log /l/odd.log; }\n"
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "events {}\n"
        "http {\n"
        "  set_real_ip_from 10.0.0.0/8; real_ip_header X-Forwarded-For;\n"
        "  server { real_ip_recursive on; access_log /l/a.log main; }\n"
        "  server {\n"
        "    access_log /l/d.log;\n"
        "    location /api { set_real_ip_from 192.0.2.1; access_log /l/b.log; }\n"
        "  }\n"
        f"  include {tmp_path / 'vhost.conf'};\n"
        "  server { access_log /l/a.log; }\n"  # a.log named again: the first wins
        "}\n"
    )
    http = RealIPSettings(("10.0.0.0/8",), "X-Forwarded-For", recursive=False)
    found = realip_by_log_path(conf)
    odd = found.pop(Path("/l/odd.log"))
    assert found == {
        Path("/l/a.log"): RealIPSettings(http.trusted, http.header, recursive=True),
        Path("/l/d.log"): http,
        Path("/l/b.log"): RealIPSettings(("192.0.2.1",), http.header, recursive=False),
        Path("/l/c.log"): http,
    }
    assert isinstance(odd, LogFormatError)
    assert "X-Client-IP" in str(odd)
    # with no set_real_ip_from anywhere, realip is inactive: None
    conf.write_text("events {}\nhttp { server { access_log /l/x.log; } }\n")
    assert realip_by_log_path(conf) == {Path("/l/x.log"): None}


def test_a_file_two_access_logs_write_in_two_formats_is_told_of(
    tmp_path: Path,
) -> None:
    """Two servers write one file, each in its own format: nginx writes each
    request with its directive's format, so the file alternates them. It is
    read with the first (the others' lines are rejects) and now told of,
    naming both directives; it had been silent."""
    log = tmp_path / "one.log"
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "events {}\nhttp {\n"
        "    log_format one '$remote_addr|$time_local|$request|$status';\n"
        "    log_format two '$remote_addr;$status;$time_iso8601;$request';\n"
        f"    server {{ listen 127.0.0.1:8001; access_log {log} one; }}\n"
        f"    server {{ listen 127.0.0.1:8002; access_log {log} two; }}\n"
        "}\n"
    )
    log.write_text(
        "127.0.0.1|08/Dec/2026:04:06:06 +0000|GET /p HTTP/1.1|200\n"
        "127.0.0.1;200;2026-12-08T04:06:06+00:00;GET /p HTTP/1.1\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pplog", "summarize", str(log), "--nginx-conf", str(conf)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    told = [x for x in done.stderr.splitlines() if "several formats" in x]
    assert len(told) == 1, done.stderr
    assert f"`one` ({conf}:5), `two` ({conf}:6)" in told[0]
