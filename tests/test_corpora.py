"""Conformance tests against third-party corpora: logs and other tools' expected output.

The corpora live outside the repository, in ``shared/corpora`` next to the checkout
(see ``shared/corpora/MANIFEST.md`` for provenance and licences). They are read in
place and never copied here. Without them the whole module is skipped.

Where pplog deliberately differs from another tool, the test says so in a comment and
asserts pplog's documented behaviour. These differences are:

* nginx writes ``-`` for a variable it did not find, and pplog reads that ``-`` as null.
  VRL and Beats keep the literal ``"-"``, and lnav and logstash (ECS) drop the field.
  A value that was found but is empty (``""``) stays ``""``.
* nginx ``\\xHH`` escapes are decoded. Bytes that are not valid UTF-8 stay as upper-case
  ``\\xHH`` text. VRL keeps the escaped text verbatim.
* The ``combined``, ``common`` and ``main`` presets are exactly nginx's formats, so a
  line that has extra fields, an ident value or unquoted referer/UA fields matches none
  of them. Such a line is rejected under the preset and parsed with its own
  ``log_format``.
* AWS writes ``-1`` for a timing it could not measure, and pplog reads it as null. VRL
  and logstash's legacy mode keep ``-1.0``, and logstash's ECS mode drops the field.
* ALB list fields (``target_port_list``, ``target_status_code_list``) keep AWS's raw
  space-separated text, with ``"-"`` read as null. VRL splits them into lists and reads
  ``"-"`` as ``[]``.

Tests that fail because pplog is wrong are marked ``xfail(strict=True)`` with the reason
"pplog bug: ...". Those tests must not be weakened to make them pass.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import polars as pl
import pytest

import pplog
from pplog import LogFormat

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"

if not CORPORA.is_dir():
    pytest.skip(
        f"third-party corpora not found at {CORPORA}: check out `shared/` beside the "
        f"repository (see shared/corpora/MANIFEST.md) to run these conformance tests",
        allow_module_level=True,
    )


# --------------------------------------------------------------------------- helpers


def corpus(rel: str) -> Path:
    """Path of a corpus file; skip the test when it is missing."""
    path = CORPORA / rel
    if not path.is_file():
        pytest.skip(f"corpus file {rel} is missing from {CORPORA}")
    return path


def _load_json(rel: str, default: Any) -> Any:
    """Load a corpus JSON file at collection time (a missing file skips in `corpus`)."""
    path = CORPORA / rel
    if not path.is_file():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def _load_jsonl(rel: str) -> list[dict[str, Any]]:
    path = CORPORA / rel
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def read_rows(path: Path, **kwargs: Any) -> dict[int, dict[str, Any]]:
    """Every line of `path` (rejects included) as dicts keyed by 1-based line."""
    df = pplog.read_log(path, include_rejects=True, **kwargs)
    return {r["line"]: r for r in df.to_dicts()}


def parse_text(tmp_path: Path, line: str, **kwargs: Any) -> dict[str, Any]:
    """Parse one line given as a string (as a corpus JSON holds it)."""
    path = tmp_path / "line.log"
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(line + "\n")
    df = pplog.read_log(path, include_rejects=True, **kwargs)
    assert df.height == 1, df
    return df.row(0, named=True)


_XHH = re.compile(rb"\\x([0-9A-Fa-f]{2})")


def nginx_decode(text: str) -> str:
    r"""Reference for pplog's documented decoding of nginx `escape=default` values.

    Every `\xHH` becomes byte HH, and the bytes are read as UTF-8. A byte that is not
    part of valid UTF-8 is written back as upper-case `\xHH`.
    """
    raw = _XHH.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8"))
    decoded = raw.decode("utf-8", "surrogateescape")
    return "".join(
        f"\\x{ord(c) - 0xDC00:02X}" if 0xDC80 <= ord(c) <= 0xDCFF else c
        for c in decoded
    )


def utc(text: str) -> datetime:
    """An RFC 3339 timestamp (with `Z` or an offset) as an aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


_REQUEST_LINE = re.compile(r"^([A-Z]+) (\S+) (HTTP/\d\.\d)$")


def request_parts(request: str | None) -> dict[str, str | None]:
    """method/path/query/protocol of a well-formed origin-form request, else nulls."""
    m = _REQUEST_LINE.match(request or "")
    if not m or not m.group(2).startswith("/"):
        return {"method": None, "path": None, "query": None, "protocol": None}
    path, sep, query = m.group(2).partition("?")
    return {
        "method": m.group(1),
        "path": path,
        "query": query if sep else None,
        "protocol": m.group(3),
    }


def target_of(row: dict[str, Any]) -> str | None:
    """The request target that pplog's path and query say was requested."""
    if row["path"] is None:
        return None
    return row["path"] + ("?" + row["query"] if row["query"] is not None else "")


def assert_fields(row: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    """Every expected column has its expected value; report all differences at once."""
    problems = []
    for col, want in expected.items():
        if col not in row:
            problems.append(f"  {col}: column missing (want {want!r})")
            continue
        got = row[col]
        if isinstance(want, float) and isinstance(got, float):
            ok = got == pytest.approx(want)
        else:
            ok = got == want
        if not ok:
            problems.append(f"  {col}: got {got!r}, want {want!r}")
    assert not problems, f"{where}:\n" + "\n".join(problems)


def assert_parsed(row: dict[str, Any], where: str) -> None:
    assert row["reject_reason"] is None, (
        f"{where}: rejected ({row['reject_reason']}): {row['raw']!r}"
    )


def assert_rejected(row: dict[str, Any], where: str, reason: str | None = None) -> None:
    assert row["reject_reason"] is not None, f"{where}: parsed but should be rejected"
    if reason is not None:
        assert row["reject_reason"] == reason, where


# nginx formats used below
COMBINED = pplog.PRESETS["combined"].format
_REST = (
    ' - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent"'
)
# nginx's documented `compression` example: combined plus "$gzip_ratio"
COMPRESSION = COMBINED + ' "$gzip_ratio"'
INGRESS_UPSTREAMINFO = (
    "$remote_addr - $remote_user [$time_local] "
    '"$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" '
    "$request_length $request_time [$proxy_upstream_name] "
    "[$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length "
    "$upstream_response_time $upstream_status $req_id"
)
# Apache's NCSA formats with a real ident field (nginx always writes a literal `-`).
APACHE_COMMON = (
    '$remote_addr $remote_ident $remote_user [$time_local] "$request" $status '
    "$body_bytes_sent"
)
APACHE_COMBINED = APACHE_COMMON + ' "$http_referer" "$http_user_agent"'
APACHE_COMBINED_UNQUOTED = APACHE_COMMON + " $http_referer $http_user_agent"
VCOMBINED = (
    "$host:$server_port $remote_addr - $remote_user [$time_local] "
    '"$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"'
)


# ====================================================================== 1. VRL nginx

VRL = "vrl/vrl_parse_log_cases.json"
_VRL = _load_json(VRL, {"files": {}})["files"]
_VRL_NGINX = _VRL.get("src/stdlib/parse_nginx_log.rs", [])
_VRL_ALB = _VRL.get("src/stdlib/parse_aws_alb_log.rs", [])
_VRL_NCSA = [
    (file.rsplit("/", 1)[-1], case)
    for file in ("src/stdlib/parse_apache_log.rs", "src/stdlib/parse_common_log.rs")
    for case in _VRL.get(file, [])
]

# VRL field -> pplog column, per VRL format
_VRL_COMBINED_NAMES = {
    "client": "remote_addr",
    "user": "remote_user",
    "request": "request",
    "status": "status",
    "size": "body_bytes_sent",
    "referer": "http_referer",
    "agent": "http_user_agent",
}
# VRL's `compression` field is nginx's "$gzip_ratio" (see test_vrl_nginx)
_VRL_COMPRESSION_NAMES = {**_VRL_COMBINED_NAMES, "compression": "gzip_ratio"}
_VRL_MAIN_NAMES = {
    "remote_addr": "remote_addr",
    "remote_user": "remote_user",
    "request": "request",
    "status": "status",
    "body_bytes_size": "body_bytes_sent",
    "http_referer": "http_referer",
    "http_user_agent": "http_user_agent",
    "http_x_forwarded_for": "http_x_forwarded_for",
}
_VRL_INGRESS_NAMES = {
    **{k: v for k, v in _VRL_MAIN_NAMES.items() if k != "http_x_forwarded_for"},
    "request_length": "request_length",
    "request_time": "request_time",
    "proxy_upstream_name": "proxy_upstream_name",
    "proxy_alternative_upstream_name": "proxy_alternative_upstream_name",
    "upstream_addr": "upstream_addr",
    "upstream_response_length": "upstream_response_length",
    "upstream_response_time": "upstream_response_time",
    "upstream_status": "upstream_status",
    "req_id": "req_id",
}
_UPSTREAM_LISTS = {
    "upstream_addr",
    "upstream_response_length",
    "upstream_response_time",
    "upstream_status",
}
# VRL leaves out fields that are empty. nginx writes an empty found value as nothing
# (`[]` here), and pplog keeps it as "".
_VRL_EMPTY_NOT_NULL = {
    "ingress_nginx_upstreaminfo_valid_without_optional_fields": {
        "proxy_alternative_upstream_name": ""
    },
    "ingress_nginx_upstreaminfo_valid_missing_upstream": {
        "proxy_alternative_upstream_name": ""
    },
    "ingress_nginx_upstreaminfo_valid_empty_referer": {
        "proxy_alternative_upstream_name": ""
    },
}


def _vrl_nginx_expected(case: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    want = case["want_ok"]
    unknown = set(want) - set(names) - {"timestamp"}
    assert not unknown, f"{case['name']}: unmapped VRL fields {unknown}"
    expected: dict[str, Any] = {}
    for vrl_name, col in names.items():
        value = want.get(vrl_name)  # VRL omits "-" (and empty) fields: null in pplog
        if value == "-":
            # Deliberate: nginx writes `-` for a not-found variable, which pplog reads
            # as null. VRL keeps the literal "-" in `combined`.
            value = None
        elif col == "request" and value is not None:
            # Deliberate: pplog decodes nginx's \xHH escapes, while VRL keeps the text.
            value = nginx_decode(value)
        elif col in _UPSTREAM_LISTS and value is not None:
            value = [value]  # pplog reads upstream fields as lists (one per upstream)
        expected[col] = value
    expected.update(_VRL_EMPTY_NOT_NULL.get(case["name"], {}))
    expected["time"] = utc(want["timestamp"]["$timestamp"])
    # VRL's nginx parser does not split the request, so do it here.
    expected.update(request_parts(expected["request"]))
    return expected


_VRL_NGINX_CASES = [
    pytest.param(c, id=c["name"])
    for c in _VRL_NGINX
    if c["args"].get("format") in ("combined", "main", "ingress_upstreaminfo")
]


@pytest.mark.parametrize("case", _VRL_NGINX_CASES)
def test_vrl_nginx(case: dict[str, Any], tmp_path: Path) -> None:
    corpus(VRL)
    line = case["args"]["value"]
    fmt = case["args"]["format"]
    where = f"VRL {case['name']}: {line!r}"
    if fmt == "ingress_upstreaminfo":
        row = parse_text(tmp_path, line, log_format=INGRESS_UPSTREAMINFO)
        names = _VRL_INGRESS_NAMES
    else:
        row = parse_text(tmp_path, line, format=fmt)
        names = _VRL_COMBINED_NAMES if fmt == "combined" else _VRL_MAIN_NAMES
        if fmt == "combined" and line.count('"') == 8:
            # VRL's `combined` also accepts a 10th quoted field, which it calls
            # `compression`. nginx's own `combined` has 9 fields, and pplog's preset is
            # exactly nginx's format, so the line is rejected under it. The line comes
            # from nginx's documented `compression` format ("$gzip_ratio"), so parse it
            # with that format.
            assert_rejected(row, where + " (preset combined)", "no_match")
            row = parse_text(tmp_path, line, log_format=COMPRESSION)
            names = _VRL_COMPRESSION_NAMES
    if "want_err" in case:
        assert_rejected(row, where)
        return
    assert_parsed(row, where)
    assert_fields(row, _vrl_nginx_expected(case, names), where)


def test_vrl_nginx_inputs_file_matches_cases() -> None:
    """The raw-line file, read in place, parses (or is rejected) like the JSON cases."""
    path = corpus("vrl/vrl_nginx_access_inputs.log")
    lines = path.read_text(encoding="utf-8").splitlines()
    formats = {c["args"]["value"]: c["args"]["format"] for c in _VRL_NGINX}
    errors = {c["args"]["value"] for c in _VRL_NGINX if "want_err" in c}
    assert set(lines) <= set(formats)
    by_format = {
        "combined": read_rows(path, format="combined"),
        "main": read_rows(path, format="main"),
        "ingress_upstreaminfo": read_rows(path, log_format=INGRESS_UPSTREAMINFO),
        "compression": read_rows(path, log_format=COMPRESSION),
    }
    for n, line in enumerate(lines, start=1):
        fmt = formats[line]
        if fmt == "combined" and line.count('"') == 8:
            fmt = "compression"  # see test_vrl_nginx
        where = f"vrl_nginx_access_inputs.log:{n} ({fmt})"
        if line in errors:
            assert_rejected(by_format[fmt][n], where)
        else:
            assert_parsed(by_format[fmt][n], where)


# ------------------------------------------------------------ VRL Apache / common


def _ncsa_param(file: str, case: dict[str, Any]) -> Any:
    name = f"{file}:{case['name']}"
    args = case["args"]
    fmt = args.get("format", "common")
    value = args["value"]
    if fmt == "error":
        reason = "Apache error-log format: not an access log"
        return pytest.param(file, case, id=name, marks=pytest.mark.skip(reason=reason))
    if "timestamp_format" in args or not isinstance(value, str):
        reason = "custom timestamp_format: not a plain common/combined line"
        return pytest.param(file, case, id=name, marks=pytest.mark.skip(reason=reason))
    return pytest.param(file, case, id=name)


@pytest.mark.parametrize(("file", "case"), [_ncsa_param(f, c) for f, c in _VRL_NCSA])
def test_vrl_apache_common(file: str, case: dict[str, Any], tmp_path: Path) -> None:
    corpus(VRL)
    line = case["args"]["value"]
    preset = case["args"].get("format", "common")
    where = f"VRL {file} {case['name']}: {line!r}"
    row = parse_text(tmp_path, line, format=preset)
    if "want_err" in case:
        assert_rejected(row, where)
        return
    want = case["want_ok"]
    if not want:
        # VRL returns {} for `- - - - - - -` and `- - - [-] "-" - -`. pplog rejects a
        # line with no timestamp and no client (an nginx `$remote_addr` is never `-`).
        assert_rejected(row, where, "no_match")
        return
    # These are Apache lines with an ident value (`bob`) or an unquoted `-` referer
    # and UA. nginx writes a literal `-` in the ident slot and always quotes the
    # referer and UA, so the nginx presets reject these lines. Each line is then
    # parsed with the Apache format written as an nginx-style log_format.
    assert_rejected(row, where + f" (preset {preset})", "no_match")
    if preset == "common":
        log_format = APACHE_COMMON
    elif line.rstrip().endswith('"'):
        log_format = APACHE_COMBINED
    else:
        log_format = APACHE_COMBINED_UNQUOTED
    row = parse_text(tmp_path, line, log_format=log_format)
    assert_parsed(row, where)
    expected = {
        "remote_addr": want["host"],
        "remote_ident": want.get("identity"),
        "remote_user": want.get("user"),
        "time": utc(want["timestamp"]["$timestamp"]),
        "request": want["message"],
        "method": want["method"],
        "path": want["path"],  # VRL's path has no query string here
        "query": None,
        "protocol": want["protocol"],
        "status": want["status"],
        "body_bytes_sent": want["size"],
    }
    if preset == "combined":
        # VRL omits the unquoted `-` referer and UA, and pplog reads `-` as null.
        expected["http_referer"] = want.get("referrer")
        expected["http_user_agent"] = want.get("agent")
    assert_fields(row, expected, where)


# ======================================================================= 1b. VRL ALB

_ALB_SAME = (
    "type",
    "elb",
    "received_bytes",
    "sent_bytes",
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
    "target_group_arn",
    "trace_id",
    "domain_name",
    "chosen_cert_arn",
    "matched_rule_priority",
    "request_creation_time",
    "actions_executed",
    "redirect_url",
    "error_reason",
    "classification",
    "classification_reason",
)
_ALB_TIMINGS = (
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
)

_ALB_BUGS: dict[str, str] = {}  # case name -> reason, for known pplog bugs


def _alb_expected(want: dict[str, Any]) -> dict[str, Any]:
    expected: dict[str, Any] = {k: want[k] for k in _ALB_SAME}
    expected["time"] = utc(want["timestamp"])
    expected["client"] = want["client_host"]
    expected["target"] = want["target_host"]
    # The client address is `ip:port`, and an IPv6 address has no brackets, so the
    # port follows the last colon.
    host, _, port = want["client_host"].rpartition(":")
    expected["remote_addr"] = host
    expected["remote_port"] = int(port)
    for name in ("elb_status_code", "target_status_code"):
        value = want[name]
        expected[name] = None if value is None else int(value)  # VRL keeps them as text
    expected["status"] = expected["elb_status_code"]
    expected["bytes_sent"] = want["sent_bytes"]
    expected["http_user_agent"] = want["user_agent"]
    for name in _ALB_TIMINGS:
        # Deliberate: AWS writes -1 when it could not dispatch the request, and pplog
        # reads that as null. VRL keeps -1.0.
        value = want[name]
        expected[name] = None if value == -1.0 else value
    for name in ("target_port_list", "target_status_code_list"):
        # pplog keeps AWS's raw space-separated text, with "-" read as null. VRL splits
        # it into a list, with [] for "-".
        items = want[name]
        expected[name] = " ".join(items) if items else None
    expected["conn_trace_id"] = want["traceability_id"]
    method, url, protocol = (
        want["request_method"],
        want["request_url"],
        want["request_protocol"],
    )
    expected["request"] = f"{method or '-'} {url} {protocol or '-'}"
    expected["method"] = method
    expected["protocol"] = protocol
    if method is None:
        expected["path"] = expected["query"] = None
    else:
        parts = urlsplit(url)  # absolute-form: pplog drops scheme and host
        expected["path"] = parts.path or "/"
        expected["query"] = parts.query if "?" in url else None
    return expected


_VRL_ALB_CASES = [
    pytest.param(
        c,
        id=c["name"],
        marks=[pytest.mark.xfail(strict=True, reason=_ALB_BUGS[c["name"]])]
        if c["name"] in _ALB_BUGS
        else [],
    )
    for c in _VRL_ALB
]


@pytest.mark.parametrize("case", _VRL_ALB_CASES)
def test_vrl_alb(case: dict[str, Any]) -> None:
    path = corpus("vrl/vrl_aws_alb_inputs.log")
    lines = path.read_text(encoding="utf-8").splitlines()
    line_no = lines.index(case["args"]["value"]) + 1  # read the corpus file in place
    row = read_rows(path, format="alb")[line_no]
    where = f"VRL ALB {case['name']} (vrl_aws_alb_inputs.log:{line_no})"
    assert_parsed(row, where)
    assert_fields(row, _alb_expected(case["want_ok"]), where)
    if case["args"].get("strict_mode") is False:
        # The fields AWS added after conn_trace_id go to `extra`, and VRL ignores them.
        assert row["extra"] is not None, where


# A request that was never dispatched (-1 -1 -1) has no request time.


def test_vrl_alb_undispatched_request_time_is_null() -> None:
    path = corpus("vrl/vrl_aws_alb_inputs.log")
    rows = read_rows(path, format="alb")
    undispatched = [r for r in rows.values() if r["raw"] and " -1 -1 -1 " in r["raw"]]
    assert len(undispatched) == 2  # VRL cases `nine` and `ten`
    for r in undispatched:
        assert r["request_processing_time"] is None
        assert r["request_time"] is None, f"line {r['line']}: {r['request_time']!r}"


# ==================================================================== 2. Beats nginx

BEATS = "beats-nginx"
_FMT = {
    "combined": "$remote_addr" + _REST,
    "main": "$remote_addr" + _REST + ' "$http_x_forwarded_for"',
    # $proxy_add_x_forwarded_for = the request's X-Forwarded-For plus ", $remote_addr"
    # (just $remote_addr without one): the client slot holds an unquoted list.
    "pax": "$proxy_add_x_forwarded_for" + _REST,
    "pax_main": "$proxy_add_x_forwarded_for" + _REST + ' "$http_x_forwarded_for"',
    # an unquoted XFF list, a space, then the peer address
    "xff": "$http_x_forwarded_for $remote_addr" + _REST,
    # a quoted XFF list, then the peer address
    "qxff": '"$http_x_forwarded_for" $remote_addr' + _REST,
}
_HOST = "$host "
_HOST_PORT = "$host:$server_port "

# Which nginx log_format wrote each line (Beats' grok accepts all of them at once).
BEATS_LINE_FORMATS: dict[str, dict[int, tuple[str, str]]] = {
    "test.log": {
        1: ("", "pax"),  # 10.0.0.2, 10.0.0.1, 127.0.0.1 - - ...
        2: ("", "main"),  # ... "-" trailing XFF field
        3: ("", "pax"),
        4: ("", "combined"),
        5: ("", "qxff"),  # "10.5.102.222, 199.96.1.1, 204.246.1.1" 10.2.1.185 - - ...
        6: ("", "xff"),  # 2a03:...:8000, 10.225.192.17 10.2.2.121 - - ...
        7: ("", "combined"),  # "" 400 0
    },
    "test-with-host.log": {
        1: (_HOST, "pax"),
        2: (_HOST, "main"),
        3: (_HOST, "pax"),
        4: (_HOST_PORT, "combined"),
        5: (_HOST_PORT, "qxff"),
        6: (_HOST, "xff"),
        7: (_HOST_PORT, "combined"),
        8: (_HOST_PORT, "combined"),  # unix: client, "hello" 400
        9: (_HOST, "main"),  # localhost
        10: (_HOST, "pax_main"),  # localhost, localhost ... "-"
    },
    "access.log": {n: ("", "combined") for n in range(1, 13)},
}


def _remote_ip_list(row: dict[str, Any], kind: str) -> list[str]:
    if kind in ("pax", "pax_main"):
        return row["proxy_add_x_forwarded_for"].split(", ")
    if kind in ("xff", "qxff"):
        return [*row["http_x_forwarded_for"].split(", "), row["remote_addr"]]
    return [row["remote_addr"]]


def _dash_null(value: Any) -> Any:
    # Deliberate: Beats keeps "-" (for user.name, referrer and UA), and pplog reads `-`
    # as null.
    return None if value == "-" else value


def _beats_params() -> list[Any]:
    params = []
    for file, formats in BEATS_LINE_FORMATS.items():
        expected = _load_json(f"{BEATS}/{file}-expected.json", [])
        for n, doc in enumerate(expected, start=1):
            params.append(pytest.param(file, n, doc, id=f"{file}:{n}"))
        assert not expected or set(formats) == set(range(1, len(expected) + 1)), file
    return params


@pytest.mark.parametrize(("file", "line", "doc"), _beats_params())
def test_beats_nginx(file: str, line: int, doc: dict[str, Any]) -> None:
    path = corpus(f"{BEATS}/{file}")
    prefix, kind = BEATS_LINE_FORMATS[file][line]
    row = read_rows(path, log_format=prefix + _FMT[kind])[line]
    where = f"beats {file}:{line} with {prefix + kind!r}"
    assert_parsed(row, where)
    method = row["method"].lower() if row["method"] else None  # newer Beats lower-cases
    got = {**row, "method_lc": method, "target": target_of(row)}
    version = doc.get("http.version")
    expected: dict[str, Any] = {
        "offset": doc["log.offset"],
        "time": utc(doc["@timestamp"]),
        "status": doc["http.response.status_code"],
        "body_bytes_sent": doc["http.response.body.bytes"],
        "method_lc": doc["http.request.method"].lower()
        if "http.request.method" in doc
        else None,
        "target": doc.get("url.original"),
        "protocol": f"HTTP/{version}" if version else None,
        "http_referer": _dash_null(doc.get("http.request.referrer")),
        "http_user_agent": _dash_null(doc.get("user_agent.original")),
        "remote_user": _dash_null(doc.get("user.name")),
    }
    # Ignored: geo, UA parsing, source.ip, and source.address for XFF lists
    # (attribution comes later).
    if "nginx.access.remote_ip_list" in doc:
        got["remote_ip_list"] = _remote_ip_list(row, kind)
        expected["remote_ip_list"] = doc["nginx.access.remote_ip_list"]
    else:  # `unix:`: Beats keeps it as source.address with no list
        expected["remote_addr"] = doc["source.address"]
    if prefix:
        expected["host"] = doc.get("destination.domain") or doc.get("destination.ip")
        if "destination.port" in doc:
            expected["server_port"] = int(doc["destination.port"])
    if "http.request.method" not in doc:
        # The empty request `""` and the non-HTTP `hello`: nginx logged the request
        # line as it was, and pplog keeps it in `request`. Its parts are null, which
        # matches Beats leaving out method, url and version.
        expected["request"] = row["raw"].split('"')[1]
        assert expected["request"] in ("", "hello"), where
    assert_fields(got, expected, where)


def test_beats_every_line_parses() -> None:
    """Each Beats line parses with its format, with no rejects except blank lines.

    No single log_format fits all of test.log. Beats' grok accepts several layouts at
    once: an unquoted XFF list, a quoted list followed by an address, and a trailing
    XFF field. So each line is parsed with the log_format that could have written it
    (BEATS_LINE_FORMATS), and every line must parse with it.
    """
    for file, formats in BEATS_LINE_FORMATS.items():
        path = corpus(f"{BEATS}/{file}")
        by_format: dict[str, set[int]] = {}
        for n, (prefix, k) in formats.items():
            by_format.setdefault(prefix + _FMT[k], set()).add(n)
        for fmt, wanted in by_format.items():
            rows = read_rows(path, log_format=fmt)
            for n in wanted:
                assert_parsed(rows[n], f"beats {file}:{n}")
        rows = read_rows(path, format="combined")
        nonblank = {n for n, r in rows.items() if r["reject_reason"] != "blank_line"}
        extra = nonblank - set(formats)
        if file == "access.log":
            assert extra == {13}, extra  # the vhost line, checked below
        else:
            assert not extra, f"{file}: lines without a format: {extra}"


def test_beats_access_log_vhost_line() -> None:
    """access.log line 13 has a vhost prefix and no Beats expected output.

    nginx's `combined` cannot write a vhost first, so the preset rejects the line. It
    parses with `$host ` in front of combined.
    """
    path = corpus(f"{BEATS}/access.log")
    combined = read_rows(path, format="combined")
    assert_rejected(combined[13], "access.log:13 under combined", "no_match")
    assert all(combined[n]["reject_reason"] is None for n in range(1, 13))
    row = read_rows(path, log_format=_HOST + COMBINED)[13]
    assert_parsed(row, "access.log:13 with $host")
    target = "/A%20Beka%20G1%20Howe/029_AND_30/15%20reading%20elephants.mp4"
    assert_fields(
        row,
        {
            "host": "lessons.example.com",
            "remote_addr": "192.168.0.1",
            "time": utc("2020-06-09T19:10:39Z"),  # 12:10:39 -0700
            "method": "GET",
            "path": target,  # percent-escapes are kept as logged
            "query": None,
            "protocol": "HTTP/1.1",
            "status": 206,
            "body_bytes_sent": 7648063,
            "http_referer": "http://lessons.example.com" + target,
        },
        "access.log:13",
    )


# =========================================================== 3. nginx-tests escaping

NGINX_TESTS = "nginx-tests/nginx_tests_realip_proxy_protocol_logging.json"
_ESC = {
    c.get("escape") or c.get("name"): c
    for c in _load_json(NGINX_TESTS, {}).get("access_log_escaping", {}).get("cases", [])
}


def test_nginx_escape_default(tmp_path: Path) -> None:
    r"""`"` is written as `\x22`, control bytes as `\xHH`, a not-found variable as `-`.

    The test format `$uri$arg_b$arg_c` puts three variables next to each other, which
    cannot be split. The same values are written with separators here.
    """
    corpus(NGINX_TESTS)
    logged = _ESC["default"]["expect_line"]  # $uri, then `-` for $arg_b, then "2"
    uri, arg_b, arg_c = re.fullmatch(r"(.*)(-)(2)", logged).groups()  # type: ignore[union-attr]
    row = parse_text(
        tmp_path, f'"{uri}" {arg_b} {arg_c}', log_format='"$uri" $arg_b $arg_c'
    )
    assert_parsed(row, logged)
    assert row["uri"] == '/escape/"1 \x1b\x1c "'
    assert row["arg_b"] is None  # `-` = not found
    assert row["arg_c"] == "2"


def test_nginx_escape_touching_variables_warn() -> None:
    """The test's format has touching variables; pplog warns it cannot split them."""
    corpus(NGINX_TESTS)
    fmt = LogFormat.from_string("$uri$arg_b$arg_c")
    assert any("touch" in w for w in fmt.all_warnings)


def test_nginx_escape_json(tmp_path: Path) -> None:
    corpus(NGINX_TESTS)
    logged = _ESC["json"][
        "expect_line"
    ]  # with json, a not-found $arg_b is written as nothing
    assert logged.endswith('"2')
    uri = logged[:-1]
    fmt = LogFormat.from_string('"$uri" $arg_c', escape="json")
    row = parse_text(tmp_path, f'"{uri}" 2', format=fmt)
    assert_parsed(row, logged)
    assert row["uri"] == '/escape/"1 \x1b\x1c "'
    assert row["arg_c"] == "2"


def test_nginx_escape_none(tmp_path: Path) -> None:
    corpus(NGINX_TESTS)
    assert _ESC["none"]["expect_line_bytes_repr"] == '/escape/"1 \\x1b\\x1c "2'
    fmt = LogFormat.from_string("$uri|$arg_c", escape="none")
    row = parse_text(tmp_path, '/escape/"1 \x1b\x1c "|2', format=fmt)
    assert_parsed(row, "escape=none")
    assert row["uri"] == '/escape/"1 \x1b\x1c "'
    assert row["arg_c"] == "2"


def test_nginx_escape_binary_remote_addr(tmp_path: Path) -> None:
    corpus(NGINX_TESTS)
    logged = _ESC["binary_remote_addr"]["expect_line"]
    assert logged == "\\x7F\\x00\\x00\\x01"
    row = parse_text(tmp_path, logged, log_format="$binary_remote_addr")
    assert_parsed(row, logged)
    assert row["binary_remote_addr"] == "\x7f\x00\x00\x01"  # valid UTF-8 bytes decode


def test_nginx_escape_invalid_utf8_stays_uppercase_hex(tmp_path: Path) -> None:
    r"""Bytes that are not UTF-8 stay `\xHH`, upper-case even if logged lower-case."""
    corpus(NGINX_TESTS)
    logged = r"/\xFF\xc3\x28\x5Cx41\xe2\x82\xac\x22"
    row = parse_text(tmp_path, logged, log_format="$request_uri")
    assert_parsed(row, logged)
    # \xFF: invalid. \xC3 followed by "(": invalid lead byte, then "(". \x5C is a
    # backslash, and decoding is single-pass, so "\x41" stays literal. €, then `"`.
    assert row["request_uri"] == '/\\xFF\\xC3(\\x41€"'
    assert row["request_uri"] == nginx_decode(logged)


def test_nginx_default_combined_dash_fields(tmp_path: Path) -> None:
    corpus(NGINX_TESTS)
    pattern = _ESC["default combined format"]["expect_line_regex"]
    line = (
        pattern.replace("^", "")
        .replace("$", "")
        .replace("<client addr>", "127.0.0.1")
        .replace("\\[<time>\\]", "[01/Jan/2024:00:00:00 +0000]")
    )
    assert line == (
        '127.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "GET /combined HTTP/1.0" 200 2 '
        '"-" "-"'
    )
    row = parse_text(tmp_path, line, format="combined")
    assert_parsed(row, line)
    assert_fields(
        row,
        {
            "remote_user": None,
            "http_referer": None,
            "http_user_agent": None,
            "request": "GET /combined HTTP/1.0",
            "status": 200,
            "body_bytes_sent": 2,
        },
        line,
    )


@pytest.mark.parametrize(
    ("name", "addr", "port"),
    [("tcp4 log", "192.0.2.1", 123), ("tcp6 log", "2001:db8::1", 123)],
)
def test_nginx_proxy_protocol_addr_port_log(
    name: str, addr: str, port: int, tmp_path: Path
) -> None:
    """`$remote_addr:$remote_port` with bare IPv6: the port follows the last `:`."""
    data = _load_json(NGINX_TESTS, {})
    corpus(NGINX_TESTS)
    cases = {c["name"]: c for c in data["proxy_protocol"]["cases"]}
    logged = cases[name]["expect_log_line"]
    fmt = data["proxy_protocol"]["config"]["log_format pp"]
    row = parse_text(tmp_path, logged, log_format=fmt)
    assert_parsed(row, logged)
    assert (row["remote_addr"], row["remote_port"]) == (addr, port)


# ============================================================================ 4. lnav

LNAV = "lnav"
_LNAV_EXPECTED = {
    "jsonl": _load_jsonl(
        f"{LNAV}/test_cmds.sh_a5a1ddb5c9da963d52ccffc7b341e54325ecbe49.out"
    ),
    "json": _load_json(
        f"{LNAV}/test_cmds.sh_1d92c5bc12f5e7aaa6d84c5ed47f0b9f96e36c6a.out", []
    ),
}


@pytest.mark.parametrize("export", ["jsonl", "json"])
def test_lnav_access_log(export: str) -> None:
    path = corpus(f"{LNAV}/logfile_access_log.0")
    docs = _LNAV_EXPECTED[export]
    if not docs:
        pytest.skip(f"lnav {export} export is missing")
    rows = read_rows(path, format="combined")
    assert len(rows) == len(docs) == 3
    for n, doc in enumerate(docs, start=1):
        row = rows[n]
        where = f"lnav logfile_access_log.0:{n} ({export})"
        assert_parsed(row, where)
        expected = {
            "remote_addr": doc["c_ip"],
            "remote_user": doc["cs_username"],
            "method": doc["cs_method"],
            "path": doc["cs_uri_stem"],
            "query": doc["cs_uri_query"],  # null: no `?`
            "protocol": doc["cs_version"],
            "status": doc["sc_status"],
            "body_bytes_sent": doc["sc_bytes"],
            "http_referer": doc["cs_referer"],  # lnav also reads "-" as null
            "http_user_agent": doc["cs_user_agent"],
            "time": utc(doc["log_time"].replace(" ", "T")),  # +0000 in the log
        }
        if "timestamp" in doc:
            expected["time_local"] = doc["timestamp"]
        assert_fields(row, expected, where)


def test_lnav_bad_access_log() -> None:
    path = corpus(f"{LNAV}/logfile_bad_access_log.0")
    rows = read_rows(path, format="combined")
    assert len(rows) == 3
    assert_parsed(rows[1], "bad_access_log:1")
    assert_rejected(rows[2], "bad_access_log:2 (no ident and user)", "no_match")
    assert_parsed(rows[3], "bad_access_log:3")
    assert rows[2]["raw"].startswith("192.168.202.254 [20/Jul/2009:22:59:29")


def test_lnav_empty_request_line() -> None:
    """`"-" 400 0`: nginx read no request line; `request` was not found and is null."""
    path = corpus(f"{LNAV}/logfile_access_log.1")
    row = read_rows(path, format="combined")[1]
    assert_parsed(row, "logfile_access_log.1")
    assert_fields(
        row,
        {
            "request": None,
            "method": None,
            "path": None,
            "status": 400,
            "body_bytes_sent": 0,
        },
        "logfile_access_log.1",
    )


# ================================================================ 5. logstash patterns

LOGSTASH = "logstash-patterns"
_GROK = _load_json(f"{LOGSTASH}/logstash_grok_cases.json", {}).get("cases", [])


def _dig(doc: dict[str, Any], dotted: str) -> Any:
    for key in dotted.split("."):
        doc = doc.get(key, {}) if isinstance(doc, dict) else {}
    return doc if doc != {} else None


def _grok_params(pattern: str) -> list[Any]:
    return [
        pytest.param(i, c, id=c["context"].replace(" ", "_"))
        for i, c in enumerate(c for c in _GROK if c["pattern"] == pattern)
    ]


@pytest.mark.parametrize(("index", "case"), _grok_params("HTTPD_COMBINEDLOG"))
def test_logstash_httpd_combined(index: int, case: dict[str, Any]) -> None:
    path = corpus(f"{LOGSTASH}/httpd_combinedlog_cases.log")
    row = read_rows(path, format="combined")[index + 1]
    assert row["raw"] == case["message"]
    where = f"logstash {case['context']}"
    assert_parsed(row, where)
    ecs = case["expect_ecs_includes"]
    expected: dict[str, Any] = {}  # subset match, as RSpec `include`
    pairs = {
        "source.address": "remote_addr",
        "user.name": "remote_user",
        "http.request.method": "method",
        "http.request.referrer": "http_referer",
        "http.response.body.bytes": "body_bytes_sent",
        "http.response.status_code": "status",
        "user_agent.original": "http_user_agent",
    }
    for dotted, col in pairs.items():
        value = _dig(ecs, dotted)
        if value is not None:
            expected[col] = value
    if _dig(ecs, "http.version"):
        expected["protocol"] = "HTTP/" + _dig(ecs, "http.version")
    if _dig(ecs, "url.original"):
        expected["target"] = _dig(ecs, "url.original")
    for dotted in case.get("expect_ecs_absent_keys", []):
        if dotted == "http.response.status_code":
            expected["status"] = None  # status `-` -> absent/null
        if dotted == "user":
            expected["remote_user"] = None
    if "referrer is an EMPTY quoted string" in case.get("note", ""):
        expected["http_referer"] = ""  # a found-but-empty value stays ""
    assert_fields({**row, "target": target_of(row)}, expected, where)


@pytest.mark.parametrize(("index", "case"), _grok_params("ELB_ACCESS_LOG"))
def test_logstash_classic_elb(index: int, case: dict[str, Any]) -> None:
    path = corpus(f"{LOGSTASH}/elb_access_log_cases.log")
    row = read_rows(path, format="clb")[index + 1]
    assert row["raw"] == case["message"]
    where = f"logstash ELB {case['context']}"
    assert_parsed(row, where)
    expected: dict[str, Any] = {}
    if "expect_includes" in case:
        expected["time"] = utc(case["expect_includes"]["timestamp"])
    ecs = case.get("expect_ecs_includes", {})
    legacy = case.get("expect_legacy_includes", {})
    pairs = {
        "aws.elb.name": "elb",
        "source.ip": "remote_addr",
        "source.port": "remote_port",
        "http.request.body.bytes": "received_bytes",
        "http.request.method": "method",
        "http.response.body.bytes": "sent_bytes",
        "http.response.status_code": "elb_status_code",
        "aws.elb.backend.http.response.status_code": "backend_status_code",
        "aws.elb.request_processing_time.sec": "request_processing_time",
        "aws.elb.backend_processing_time.sec": "backend_processing_time",
        "aws.elb.response_processing_time.sec": "response_processing_time",
        "tls.cipher": "ssl_cipher",
        "aws.elb.ssl_protocol": "ssl_protocol",
        "user_agent.original": "user_agent",
        "url.path": "path",
    }
    for dotted, col in pairs.items():
        value = _dig(ecs, dotted)
        if value is not None:
            expected[col] = value
    if _dig(ecs, "http.version"):
        expected["protocol"] = "HTTP/" + _dig(ecs, "http.version")
    if "elb_status_code" in expected:
        expected["status"] = expected["elb_status_code"]  # the nginx-named alias
    backend_ip = _dig(ecs, "aws.elb.backend.ip")
    if backend_ip:
        expected["backend"] = f"{backend_ip}:{_dig(ecs, 'aws.elb.backend.port')}"
    if _dig(ecs, "url.original"):
        # Classic ELB logs the absolute-form URL as the request target.
        got_target = row["request"].split(" ")[1] if row["request"] else None
        assert got_target == _dig(ecs, "url.original"), where
    if legacy.get("response_processing_time") == -1.0:
        # ECS drops -1 timings, while legacy mode keeps -1.0. pplog follows ECS and
        # reads -1 as null. The backend `-` is null too.
        for name in (
            "request_processing_time",
            "backend_processing_time",
            "response_processing_time",
            "backend",
            "backend_status_code",
        ):
            expected[name] = None
    for dotted in case.get("expect_ecs_absent_keys", []):
        # `"-"` for the UA and `- -` for TLS must be absent, which is null in pplog.
        col = {"tls": "ssl_cipher", "aws.elb.ssl_protocol": "ssl_protocol"}.get(dotted)
        col = col or {"user_agent": "user_agent"}.get(dotted)
        if col:
            expected[col] = None
    if "WITHOUT the trailing user_agent" in case.get("note", ""):
        expected.update(user_agent=None, ssl_cipher=None, ssl_protocol=None)
    assert_fields(row, expected, where)


def test_logstash_classic_elb_undispatched_request_time_is_null() -> None:
    path = corpus(f"{LOGSTASH}/elb_access_log_cases.log")
    row = read_rows(path, format="clb")[2]  # `- -1 -1 -1 408 -`
    assert_parsed(row, "elb_access_log_cases.log:2")
    assert row["backend_processing_time"] is None
    assert row["request_time"] is None, row["request_time"]


# =========================================================================== 6. nasty

NASTY = "nasty/nasty_lines.jsonl"
_NASTY = _load_jsonl(NASTY)

_G1758 = (
    "$http_x_forwarded_for $remote_addr - $remote_user [$time_local] $body_bytes_sent "
    '"$request" $status "$http_referer" "$http_user_agent" $request_length $bytes_sent'
)
_G246 = (
    "$remote_addr - $http_x_forwarded_for - $remote_user [$time_local] "
    '"$request" $status $body_bytes_sent $request_time '
    '"$http_referer" "$http_user_agent"'
)
_APACHE_PAREN_XFF = (
    "$remote_addr ($http_x_forwarded_for) - $remote_user [$time_local] "
    '"$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"'
)
_ISO_MAIN = (
    "$remote_addr - $remote_user [$time_iso8601] "
    '"$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" '
    '"$http_x_forwarded_for"'
)
_PAX = "$proxy_add_x_forwarded_for" + _REST

# Each row: a text its `format` must contain (so that corpus changes show up here), a
# preset and whether that preset parses the row, and optionally the log_format that
# wrote the row plus values to check.
_NASTY_TABLE: dict[int, dict[str, Any]] = {
    1: {
        "format": "custom",
        "preset": None,
        "log_format": _G1758,
        "check": {
            "remote_addr": "127.0.0.1",
            "body_bytes_sent": 24675,
            "status": 200,
            "request_length": 1250,
            "bytes_sent": 947,
            "protocol": "HTTP/1.0",
            "http_x_forwarded_for": "2001:8004:e02:48b7:3417:266c:7436:f95e, "
            "64.252.140.97, 10.36.42.175, 10.36.30.137, 52.86.63.69",
        },
    },
    2: {
        "format": "same as previous",
        "preset": None,
        "log_format": _G1758,
        "check": {
            "remote_addr": "127.0.0.1",
            "body_bytes_sent": 17451,
            "bytes_sent": 672,
        },
    },
    3: {
        "format": "$request_time",
        "preset": None,
        "log_format": _G246,
        "check": {
            "remote_addr": "145.226.30.82",
            "http_x_forwarded_for": "172.31.0.100",
            "status": 404,
            "body_bytes_sent": 140,
            "request_time": 0.0,
        },
    },
    4: {
        "format": "main",
        "preset": ("main", True),
        "check": {
            "remote_addr": "172.23.51.6",
            "http_x_forwarded_for": "173.57.136.164",
            "http_user_agent": "webkit;Resolution(PAL,720P,1080P)",
            "time": utc("2022-07-15T11:15:14Z"),
        },
    },
    # nginx's $remote_addr is one address, so `combined` rejects a list in its place.
    # $proxy_add_x_forwarded_for writes exactly this shape.
    5: {
        "format": "combined",
        "preset": ("combined", False),
        "log_format": _PAX,
        "check": {"proxy_add_x_forwarded_for": "192.1.2.12, 192.68.33.17"},
    },
    6: {
        "format": "same",
        "preset": ("combined", False),
        "log_format": _PAX,
        "check": {"proxy_add_x_forwarded_for": "192.1.2.13, 192.68.33.17, 192.1.1.2"},
    },
    7: {
        "format": "same",
        "preset": ("combined", True),
        "log_format": _PAX,
        "check": {
            "proxy_add_x_forwarded_for": "192.1.2.14",
            "path": "/sample/sample3/",
        },
    },
    # Anonymised "addresses" are kept as logged: pplog does not check IP syntax.
    8: {
        "format": "main",
        "preset": ("main", True),
        "check": {
            "remote_addr": "10.x.x.x",
            "status": 304,
            "http_x_forwarded_for": "172.225.xxx.xxx, 64.252.xxx.xxx",
        },
    },
    9: {
        "format": "Apache",
        "preset": ("combined", False),
        "log_format": _APACHE_PAREN_XFF,
        "check": {
            "remote_addr": "192.168.XX.X",
            "http_x_forwarded_for": "14.139.155.214",
            "body_bytes_sent": 548405248,
        },
    },
    10: {
        "format": "ingress",
        "preset": ("combined", False),
        "log_format": INGRESS_UPSTREAMINFO,
        "proxy_line": True,
    },
    11: {
        "format": "same",
        "preset": ("combined", False),
        "log_format": INGRESS_UPSTREAMINFO,
        "proxy_line": True,
    },
    12: {"format": "nginx combined", "preset": ("combined", True), "tls_line": True},
    13: {
        "format": "$time_iso8601",
        "preset": ("main", False),
        "log_format": _ISO_MAIN,
        "check": {"time": utc("2021-03-03T01:08:37Z"), "http_x_forwarded_for": None},
    },
    14: {
        "format": "nginx combined",
        "preset": ("combined", True),
        "check": {"query": "EIO=3&transport=polling&t=NSd_nu-"},
    },
    # Truncated: the UA has no closing quote. It must be rejected without a crash.
    15: {"format": "Apache combined", "preset": ("combined", False)},
    16: {
        "format": "combined +",
        "preset": ("main", True),
        "check": {
            "http_x_forwarded_for": None,
            "http_referer": "https://emalls.ir/خرید_GREE-DIGITAL-H12H1~eitemid~"
            "66305~exid~14099254",
        },
    },
}

_EXPECT_NAMES = {
    "remote_addr": "remote_addr",
    "method": "method",
    "status": "status",
    "bytes_sent": "body_bytes_sent",  # rhit calls $body_bytes_sent bytes_sent
    "path(no query)": "path",
    "referer": "http_referer",
}


def test_nasty_table_covers_corpus() -> None:
    corpus(NASTY)
    assert set(_NASTY_TABLE) == set(range(1, len(_NASTY) + 1))
    log_lines = corpus("nasty/nasty_lines.log").read_text(encoding="utf-8").splitlines()
    assert [r["line"] for r in _NASTY] == log_lines[: len(_NASTY)]
    for n, spec in _NASTY_TABLE.items():
        assert spec["format"] in _NASTY[n - 1]["format"], (n, _NASTY[n - 1]["format"])


@pytest.mark.parametrize("n", sorted(_NASTY_TABLE) if _NASTY else [])
def test_nasty(n: int) -> None:
    path = corpus("nasty/nasty_lines.log")  # the same lines as the JSONL, read in place
    spec = _NASTY_TABLE[n]
    meta = _NASTY[n - 1]
    where = f"nasty:{n} ({meta['source']})"
    row: dict[str, Any] | None = None
    if spec["preset"]:
        preset, parses = spec["preset"]
        row = read_rows(path, format=preset)[n]
        if parses:
            assert_parsed(row, f"{where} with {preset}")
        else:
            assert_rejected(row, f"{where} with {preset}", "no_match")
            row = None
    if "log_format" in spec:
        row = read_rows(path, log_format=spec["log_format"])[n]
        assert_parsed(row, f"{where} with its log_format")
    if row is None:
        return
    assert row["raw"] == meta["line"]
    raw_request = meta["line"].split('"')[
        1
    ]  # the first quoted field in every format here
    expected = {"request": nginx_decode(raw_request), **request_parts(raw_request)}
    expected.update(spec.get("check", {}))
    for key, value in meta.get("expect", {}).items():
        expected[_EXPECT_NAMES[key]] = None if value == "None" else value
    if spec.get("proxy_line") or spec.get("tls_line"):
        # A request line nginx could not parse (a PROXY header sent to a listener
        # without proxy_protocol, or a TLS ClientHello sent to a plain-HTTP port) is
        # kept in `request`, decoded, and its parts are null.
        expected.update(
            method=None,
            path=None,
            query=None,
            protocol=None,
            status=400,
        )
        if spec.get("proxy_line"):
            assert raw_request.startswith("PROXY TCP4 ")
            expected.update(
                body_bytes_sent=163, upstream_addr=None, upstream_status=None
            )
        else:
            assert raw_request.startswith("\\x16\\x03\\x01")
            expected["body_bytes_sent"] = 173
    assert_fields(row, expected, where)


def test_nasty_truncated_line_does_not_break_the_file() -> None:
    path = corpus("nasty/nasty_lines.log")
    for preset in ("combined", "main"):
        df = pplog.read_log(path, format=preset, include_rejects=True)
        lines = df.filter(pl.col("reject_reason").ne_missing("blank_line"))
        assert lines.height == len(_NASTY)
        truncated = lines.filter(pl.col("raw").str.starts_with("46.118.127.106 "))
        assert truncated["reject_reason"].to_list() == ["no_match"], preset


# ============================================================ 7. elastic apache_logs

APACHE_LOGS = "elastic-examples/apache_logs"


def test_apache_logs_combined() -> None:
    path = corpus(APACHE_LOGS)
    df = pplog.read_log(path, format="combined", include_rejects=True)
    assert df.height == 10_000
    rejects = df.filter(pl.col("reject_reason").is_not_null())
    assert rejects.select("line", "reject_reason").to_dicts() == [
        {"line": 8899, "reject_reason": "no_match"}
    ]
    assert rejects["raw"][0].startswith(
        "46.118.127.106 - - [20/May/2015:12:05:17 +0000]"
    )
    assert not rejects["raw"][0].endswith('"')  # truncated inside the UA
    ok = df.filter(pl.col("reject_reason").is_null())
    assert ok.height == 9_999
    # Apache writes `-` for zero body bytes (%b), and pplog reads `-` as null.
    text = path.read_text(encoding="utf-8")
    dash_bytes = len(re.findall(r'" \d{3} - "', text))
    assert dash_bytes == 669
    assert ok["body_bytes_sent"].null_count() == 669
    assert ok["status"].null_count() == 0
    assert ok["time"].null_count() == 0
    assert ok["remote_addr"].null_count() == 0
    assert pplog.read_log(path, format="combined").height == 9_999


def test_apache_logs_summary() -> None:
    path = corpus(APACHE_LOGS)
    summary = pplog.summarize(path, format="combined", top=5)
    ov = summary.overview.row(0, named=True)
    assert ov["lines"] == 10_000
    assert ov["rejected"] == 1
    assert ov["requests"] == 9_999
    assert summary.overview_dict()["rejected_by_reason"] == {"no_match": 1}
    df = pplog.read_log(path, format="combined")
    assert ov["clients"] == df["client_ip"].n_unique()
    assert ov["bytes"] == df["body_bytes_sent"].sum()
    assert ov["first_time"] == df["time"].min()
    assert ov["last_time"] == df["time"].max()
    assert summary.paths.height == 5


# ============================================================== 8. GoAccess vcombined


def test_goaccess_vcombined() -> None:
    path = corpus("goaccess/vcombined_ci_sample.log")
    rows = read_rows(path, log_format=VCOMBINED)
    assert len(rows) == 4
    for n, row in rows.items():
        assert_parsed(row, f"vcombined_ci_sample.log:{n}")
    expected = {
        1: {
            "host": "localhost",
            "server_port": 80,
            "remote_addr": "192.168.0.1",
            "method": "GET",
            "path": "/",
            "status": 200,
            "body_bytes_sent": 3829,
            "time": utc("2013-07-01T11:20:38Z"),
        },
        2: {
            "host": "google.com",
            "remote_addr": "::1",
            "request": "OPTIONS * HTTP/1.0",
            "method": "OPTIONS",
            "path": "*",
            "protocol": "HTTP/1.0",
            "status": 200,
            "http_user_agent": "Apache (internal dummy connection)",
        },
        # `"-" 408 0`: the client sent no request line, so `request` was not found.
        3: {
            "host": "bing.com",
            "remote_addr": "142.250.190.142",
            "request": None,
            "method": None,
            "path": None,
            "protocol": None,
            "status": 408,
            "body_bytes_sent": 0,
            "http_referer": None,
            "http_user_agent": None,
        },
        4: {
            "host": "yahoo.com",
            "method": "HEAD",
            "status": 200,
            "http_user_agent": "Wget/1.14 (linux-gnu)",
        },
    }
    for n, want in expected.items():
        assert_fields(rows[n], want, f"vcombined_ci_sample.log:{n}")
