"""The nginx log_format compiler, presets and nginx.conf reader."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import pplog
from pplog.errors import LogFormatError
from pplog.formats import PRESETS, LogFormat, format_from_config, get_format
from pplog.formats._compiler import Literal, Variable, tokenize


def test_tokenize_names_end_at_non_name_characters() -> None:
    tokens = tokenize("$status.$body_bytes_sent-${request_time}s:$a[")
    assert tokens == (
        Variable("status", "status"),
        Literal("."),
        Variable("body_bytes_sent", "body_bytes_sent"),
        Literal("-"),
        Variable("request_time", "request_time"),
        Literal("s:"),
        Variable("a", "a"),
        Literal("["),
    )


def test_repeated_variable_gets_a_numbered_column() -> None:
    fmt = LogFormat.from_string("$remote_addr $remote_addr")
    assert fmt.fields == ("remote_addr", "remote_addr_2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$remote_addr $", "without a variable name"),
        ("${request_time", "closing bracket"),
        ("${}", "invalid variable name"),
        ("no variables here", r"has no `\$variable`"),
        ("", "empty"),
    ],
)
def test_formats_nginx_rejects_are_errors(text: str, message: str) -> None:
    with pytest.raises(LogFormatError, match=message):
        LogFormat.from_string(text)


def test_pieces_are_joined_without_separator_and_escape_is_read() -> None:
    fmt = LogFormat.from_pieces(["escape=json", '{"a":"$remote_addr",', '"s":$status}'])
    assert fmt.escape == "json"
    assert fmt.format == '{"a":"$remote_addr","s":$status}'


def test_unknown_escape_is_rejected_and_late_escape_warns() -> None:
    with pytest.raises(
        LogFormatError, match="escape=default, escape=json or escape=none"
    ):
        LogFormat.from_pieces(["escape=yaml", "$status"])
    fmt = LogFormat.from_pieces(["$status ", "escape=json"])
    assert any("not the first argument" in w for w in fmt.all_warnings)


def test_adjacent_free_text_variables_warn() -> None:
    fmt = LogFormat.from_string("$remote_user $http_x_forwarded_for [$time_local]")
    assert any("ambiguously" in w for w in fmt.all_warnings)
    assert not PRESETS["combined"].all_warnings


def test_combined_preset_is_nginx_builtin_character_for_character() -> None:
    assert PRESETS["combined"].format == (
        '$remote_addr - $remote_user [$time_local] "$request" $status '
        '$body_bytes_sent "$http_referer" "$http_user_agent"'
    )
    assert (
        PRESETS["main"].format
        == PRESETS["combined"].format + ' "$http_x_forwarded_for"'
    )
    assert PRESETS["elb_log"].fields[0] == "proxy_protocol_addr"


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(LogFormatError, match="known presets: combined"):
        get_format("weird")


def test_describe_shows_columns_and_strategy() -> None:
    text = get_format("elb_log").describe()
    assert "columns: proxy_protocol_addr, remote_user, time_local" in text
    assert "split on the format's quotes" in text
    assert "one anchored regular expression" in get_format("alb").describe()


NGINX_CONF = """
user www-data;
events { worker_connections 768; }
http {
    include /nonexistent-dir-for-pplog-tests/*.types;   # a glob with no match is fine
    include conf.d/*.conf;
    log_format elb_log '$proxy_protocol_addr - $remote_user [$time_local] '
                       '"$request" $status $body_bytes_sent "$http_referer" '
                       '"$http_user_agent"';
    server {
        listen 80 proxy_protocol;
        access_log /var/log/nginx/access.log elb_log;
    }
}
"""

JSON_CONF = r"""
log_format jsonlog escape=json '{"addr":"$remote_addr",'   # comment after a piece
    '"req":"$request","ua":"${http_user_agent}"}';
"""


def _write_conf(tmp_path: Path) -> Path:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "json.conf").write_text(JSON_CONF)
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF)
    return conf


def test_nginx_conf_follows_include_and_multiline_formats(tmp_path: Path) -> None:
    conf = _write_conf(tmp_path)
    elb = format_from_config(conf, "elb_log")
    assert elb.format == PRESETS["elb_log"].format
    js = format_from_config(conf, "jsonlog")
    assert js.escape == "json"
    assert (
        js.format
        == '{"addr":"$remote_addr","req":"$request","ua":"${http_user_agent}"}'
    )


def test_nginx_conf_name_can_be_left_out_when_access_log_says(tmp_path: Path) -> None:
    conf = _write_conf(tmp_path)
    assert format_from_config(conf).name == "elb_log"  # the one access_log uses


def test_nginx_conf_with_several_unused_formats_asks_for_a_name(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("http { log_format a '$status'; log_format b '$remote_addr'; }")
    with pytest.raises(LogFormatError, match="pass --log-format-name"):
        format_from_config(conf)
    with pytest.raises(LogFormatError, match=r"no log_format `c`.*found: a, b"):
        format_from_config(conf, "c")


def test_nginx_conf_errors_point_at_the_directive(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("http {\n  log_format bad '$remote_addr $';\n}\n")
    with pytest.raises(LogFormatError, match=r"nginx.conf:2"):
        format_from_config(conf, "bad")
    with pytest.raises(LogFormatError, match="cannot read nginx configuration"):
        format_from_config(tmp_path / "missing.conf")


REALIP_CONF = """
http {
    set_real_ip_from 192.168.0.0/16;
    log_format main '$remote_addr - $remote_user [$time_local] "$request" $status '
                    '$body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for"';
    server {
        listen 80;
        set_real_ip_from 10.0.0.0/8;
        set_real_ip_from 2001:db8::/32;
        real_ip_header X-Forwarded-For;
        real_ip_recursive on;
        access_log /var/log/nginx/access.log main;
    }
    server {
        listen 81;
        access_log /var/log/nginx/other.log combined;
    }
}
"""


def test_nginx_conf_realip_settings_come_from_the_logging_server(
    tmp_path: Path,
) -> None:
    from pplog.formats import realip_from_config

    conf = tmp_path / "nginx.conf"
    conf.write_text(REALIP_CONF)
    settings = realip_from_config(conf, "main")
    assert settings is not None
    assert settings.trusted == ("10.0.0.0/8", "2001:db8::/32")  # server level wins
    assert (settings.header, settings.recursive) == ("X-Forwarded-For", True)
    combined = realip_from_config(conf, "combined")
    assert combined is not None and combined.trusted == ("192.168.0.0/16",)
    assert (combined.header, combined.recursive) == (
        "X-Real-IP",
        False,
    )  # nginx defaults


def test_summarize_reads_realip_from_nginx_conf(tmp_path: Path) -> None:
    import pplog

    conf = tmp_path / "nginx.conf"
    conf.write_text(REALIP_CONF)
    log = tmp_path / "access.log"
    log.write_text(
        '10.0.0.5 - - [27/Nov/2026:06:01:02 +0000] "GET / HTTP/1.1" 200 1 "-" "-" '
        '"198.51.100.7, 10.1.1.1"\n'
    )
    s = pplog.summarize(log, nginx_conf=conf, log_format_name="main")
    assert s.clients.get_column("client_ip").to_list() == ["198.51.100.7"]
    # the command-line value wins over the configuration
    s = pplog.summarize(log, nginx_conf=conf, log_format_name="main", recursive=False)
    assert s.clients.get_column("client_ip").to_list() == ["10.1.1.1"]


def test_variable_names_are_read_in_any_case(tmp_path: Path) -> None:
    """nginx lowers a variable's name (`ngx_http_get_variable_index`):
    `$Status` is `$status`, which it writes as such. pplog had made a text
    column `Status` and no user agent of `$HTTP_USER_AGENT`."""
    text = '$Remote_Addr [$time_local] "$request" $Status "$HTTP_USER_AGENT"'
    fmt = LogFormat.from_string(text)
    assert fmt.fields == (
        "remote_addr",
        "time_local",
        "request",
        "status",
        "http_user_agent",
    )
    log = tmp_path / "access.log"
    log.write_text(
        '203.0.113.1 [08/Dec/2026:03:00:00 +0000] "GET / HTTP/1.1" 404 "curl/8.5.0"\n'
    )
    df = pplog.read_log(log, log_format=text)
    assert df.schema["status"] == pl.UInt16
    assert df["status"].to_list() == [404]
    assert df["agent_class"].to_list() == ["tool"]
