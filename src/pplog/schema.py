"""Column names and dtypes: the contract between pipeline stages."""

from __future__ import annotations

import polars as pl

# Bookkeeping columns
SOURCE = "source"
LINE = "line"
OFFSET = "offset"
RAW = "raw"
REJECT_REASON = "reject_reason"
TEXT = "_text"  # the line as read, internal to sources/parse
TOO_LONG = "line_too_long"  # lines-frame column: a line the reader cut

# Rows of an ingested dataset: which stream (file) and which bytes a row is
STREAM_ID = "stream_id"
LENGTH = "length"

# Derived columns
TIME = "time"
METHOD = "method"
PATH = "path"
QUERY = "query"
PROTOCOL = "protocol"
CLIENT_IP = "client_ip"
CLIENT_IP_SOURCE = "client_ip_source"

# Raw nginx fields that the reports look at
REMOTE_ADDR = "remote_addr"
REALIP_REMOTE_ADDR = "realip_remote_addr"
PROXY_PROTOCOL_ADDR = "proxy_protocol_addr"
REQUEST = "request"
STATUS = "status"
BODY_BYTES_SENT = "body_bytes_sent"
BYTES_SENT = "bytes_sent"
REQUEST_TIME = "request_time"
UPSTREAM_RESPONSE_TIME = "upstream_response_time"
HTTP_USER_AGENT = "http_user_agent"
HTTP_REFERER = "http_referer"
HTTP_X_FORWARDED_FOR = "http_x_forwarded_for"

TIME_DTYPE = pl.Datetime("us", "UTC")

# Reject reasons (values of `reject_reason`)
REASON_NO_MATCH = "no_match"
REASON_BAD_TIME = "bad_time"
REASON_BAD_NUMBER = "bad_number"
REASON_BLANK = "blank_line"
REASON_BINARY = "binary"  # the line holds a NUL byte: not text nginx wrote
REASON_TOO_LONG = "too_long"  # ingest: a line past its length limit (first bytes kept)

UPSTREAM_LISTS = {
    "upstream_addr": pl.String,
    "upstream_status": pl.UInt16,
    "upstream_response_time": pl.Float64,
    "upstream_connect_time": pl.Float64,
    "upstream_header_time": pl.Float64,
    "upstream_bytes_received": pl.UInt64,
    "upstream_bytes_sent": pl.UInt64,
    "upstream_response_length": pl.UInt64,
    "upstream_cache_status": pl.String,
}

INTEGER_FIELDS: dict[str, pl.DataType] = {
    "status": pl.UInt16(),
    "body_bytes_sent": pl.UInt64(),
    "bytes_sent": pl.UInt64(),
    "request_length": pl.UInt64(),
    "connection": pl.UInt64(),
    "connection_requests": pl.UInt64(),
    "remote_port": pl.UInt16(),
    "realip_remote_port": pl.UInt16(),
    "proxy_protocol_port": pl.UInt16(),
    "proxy_protocol_server_port": pl.UInt16(),
    "server_port": pl.UInt16(),
    # AWS load-balancer layouts
    "elb_status_code": pl.UInt16(),
    "backend_status_code": pl.UInt16(),
    "target_status_code": pl.UInt16(),
    "received_bytes": pl.UInt64(),
    "sent_bytes": pl.UInt64(),
}

FLOAT_FIELDS = frozenset(
    {
        "request_time",
        "msec",
        "request_processing_time",
        "backend_processing_time",
        "target_processing_time",
        "response_processing_time",
    }
)
