"""Built-in formats: nginx presets and the AWS load-balancer layouts."""

from __future__ import annotations

from pplog.formats._logformat import LogFormat

COMBINED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent"'
)

_NGINX = {
    "combined": (COMBINED, "nginx's built-in default format"),
    "common": (
        '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent',
        "combined without referer and user agent (NCSA common, ident written as `-`)",
    ),
    "main": (
        COMBINED + ' "$http_x_forwarded_for"',
        "combined plus X-Forwarded-For (the stock nginx.conf `main`)",
    ),
    "elb_log": (
        '$proxy_protocol_addr - $remote_user [$time_local] "$request" $status '
        '$body_bytes_sent "$http_referer" "$http_user_agent"',
        "combined with the PROXY-protocol client address first (nginx behind "
        "an AWS ELB/NLB)",
    ),
}

# AWS fields: quoted fields may carry `\"`; bare fields have no spaces.
_Q = r'"(?:[^"\\]|\\.)*"'
_B = r"[^ ]*"
_QB = r'"[^"]*"|[^ ]*'  # ALB target lists: quoted or bare


_ALB_FIELDS = [
    ("type", r"[a-z0-9]+"),
    ("time", r"\d{4}-\d{2}-\d{2}T[^ ]+Z"),
    ("elb", _B),
    ("client", _B),
    ("target", _B),
    ("request_processing_time", _B),
    ("target_processing_time", _B),
    ("response_processing_time", _B),
    ("elb_status_code", _B),
    ("target_status_code", _B),
    ("received_bytes", _B),
    ("sent_bytes", _B),
    ("request", _Q),
    ("user_agent", _Q),
    ("ssl_cipher", _B),
    ("ssl_protocol", _B),
    ("target_group_arn", _B),
    ("trace_id", _Q),
    ("domain_name", _Q),
    ("chosen_cert_arn", _Q),
    ("matched_rule_priority", _B),
    ("request_creation_time", _B),
    ("actions_executed", _Q),
    ("redirect_url", _Q),
    ("error_reason", _Q),
    ("target_port_list", _QB),
    ("target_status_code_list", _QB),
    ("classification", _Q),
    ("classification_reason", _Q),
    ("conn_trace_id", _B),
]
# The first 12 ALB fields are always there; later ones were added over the years
# and AWS tells parsers to accept any number of trailing fields.
ALB_REGEX = (
    "^"
    + " ".join(f"(?P<{n}>{p})" for n, p in _ALB_FIELDS[:14])
    + "".join(f"(?: (?P<{n}>{p})" for n, p in _ALB_FIELDS[14:])
    + r"(?: (?P<extra>.*))?"
    + ")?" * (len(_ALB_FIELDS) - 14)
    + "$"
)

_CLB_FIELDS = [
    ("time", _B),
    ("elb", _B),
    ("client", _B),
    ("backend", _B),
    ("request_processing_time", _B),
    ("backend_processing_time", _B),
    ("response_processing_time", _B),
    ("elb_status_code", _B),
    ("backend_status_code", _B),
    ("received_bytes", _B),
    ("sent_bytes", _B),
    ("request", _Q),
    ("user_agent", _Q),
    ("ssl_cipher", _B),
    ("ssl_protocol", _B),
]
# Old Classic ELB logs stop after the request.
CLB_REGEX = (
    "^"
    + r"(?P<time>\d{4}-\d{2}-\d{2}T[^ ]+Z) "
    + " ".join(f"(?P<{n}>{p})" for n, p in _CLB_FIELDS[1:12])
    + "(?: "
    + " ".join(f"(?P<{n}>{p})" for n, p in _CLB_FIELDS[12:])
    + ")?$"
)


def _aws(name: str, regex: str, fields: list[tuple[str, str]], about: str) -> LogFormat:
    columns = tuple(n for n, _ in fields) + (("extra",) if name == "alb" else ())
    return LogFormat(
        name=name,
        format=" ".join(f"<{n}>" for n, _ in fields),
        kind=name,
        description=about,
        aws_regex=regex,
        aws_fields=columns,
    )


# Apache writes these two as well (its `combined` and `common`, with `\"`).
_APACHE = frozenset({"combined", "common"})


def _build() -> dict[str, LogFormat]:
    presets = {
        name: LogFormat(
            name=name, format=fmt, description=about, apache_escapes=name in _APACHE
        )
        for name, (fmt, about) in _NGINX.items()
    }
    presets["alb"] = _aws(
        "alb", ALB_REGEX, _ALB_FIELDS, "AWS Application Load Balancer access log"
    )
    presets["clb"] = _aws(
        "clb", CLB_REGEX, _CLB_FIELDS, "AWS Classic Load Balancer (ELB) access log"
    )
    return presets


PRESETS: dict[str, LogFormat] = _build()

# Order in which `--format auto` tries presets; on a tie the earlier one wins.
DETECTION_ORDER = ("main", "combined", "elb_log", "common", "alb", "clb")
