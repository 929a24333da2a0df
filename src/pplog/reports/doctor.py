"""Diagnose load-balancer and PROXY-protocol setups from nginx access and error logs.

Each finding has a stable code, an exact count, a plain explanation, the
nginx or load-balancer change that fixes it, and up to three example lines
(``file:line: text``, in file order; not made terminal-safe here; a text
longer than `EXAMPLE_CHARS` characters is cut and ends ``… (N bytes)``).
Findings with a count of 0 are left out; the rest are ordered by severity,
then count.

Rows of the AWS ALB/CLB layouts (`elb` and `elb_status_code` logged) are left
out of the access-log codes: the balancer wrote those lines itself, so their
`client` field is the client and nginx's listener and realip advice does not
apply to them.

Access-log codes (rows that parsed; rejected lines are never counted):

``proxy-header-on-plain-listener`` (error)
    `request` starts with ``PROXY TCP4 ``, ``PROXY TCP6 `` or ``PROXY UNKNOWN``
    and `proxy_protocol_addr` is not set (or not logged): a PROXY v1 header
    reached a listener without ``proxy_protocol`` (nginx answers 400).
``proxy-v2-header-on-plain-listener`` (error)
    `request` is exactly ``"\\x00"`` with status 400, `proxy_protocol_addr`
    not set: the PROXY v2 signature seen by a plain listener.
``double-proxy-header`` (warning)
    Either signature above while `proxy_protocol_addr` is set: the listener
    consumed one PROXY header and a second one followed.
``tls-on-plain-listener`` (warning)
    `request` starts with ``"\\x16\\x03"`` (a TLS handshake record), status 400.
``missing-client-address`` (info)
    Other rows whose `client_ip` is null.
``balancer-addresses-as-clients`` (error)
    Other rows whose `client_ip` lies in the policy's trusted ranges (your
    balancers and proxies; by default loopback and private ranges). Reported
    only when they are at least `balancer_share` (default 50%) of all parsed
    rows, since health checks and internal callers are normal in small numbers.
``xff-spoofing`` (warning)
    Rows with `forwarded_by_untrusted` that carry a forwarded-address value
    (`http_x_forwarded_for`, `http_x_real_ip`, `http_forwarded` or
    `proxy_protocol_addr` not null, empty or ``-``): the header came from a
    peer that is not trusted, so it was ignored (not when the logged
    `$remote_addr` is what realip takes from it: nginx's realip replaced the
    peer already).

``no-lines-parsed`` (error)
    Access-log lines were read but none fitted the log format (a wrong
    ``--format`` or ``--log-format``): nothing else could be diagnosed.

"Other rows" are parsed rows that match none of the four request signatures;
a row counts once among those four and is never also counted as missing or
balancer-attributed (with `elb_log` every PROXY-header 400 has no client).

Error-log codes (entries from `pplog.formats.errorlog.read_error_log`):

``plain-request-on-proxy-listener`` (error)
    ``broken header: "..."`` entries whose content does not start with
    ``PROXY ``: a connection to a ``proxy_protocol`` listener that sent no
    PROXY header (plain HTTP such as load-balancer health checks, nothing but
    CR/LF, a cut-off v2 signature, TLS). nginx closed it; no access-log line.
``proxy-header-malformed`` (warning)
    ``broken header: "PROXY ..."``: a v1 header nginx could not parse
    (malformed, or split across TCP segments).
``proxy-protocol-version`` (warning)
    ``unknown PROXY protocol version: N``.
``proxy-header-too-large`` (warning)
    ``header is too large`` while reading PROXY protocol: a v2 header that
    declared more bytes than nginx's first read held.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from pplog._ipaddr import addr_in
from pplog._memo import KeptAnswers
from pplog.clientip import FORWARDED_BY_UNTRUSTED, HEADERS, ProxyPolicy
from pplog.errors import OptionError, ReportError
from pplog.schema import (
    CLIENT_IP,
    HTTP_USER_AGENT,
    HTTP_X_FORWARDED_FOR,
    LINE,
    PROXY_PROTOCOL_ADDR,
    RAW,
    REALIP_REMOTE_ADDR,
    REJECT_REASON,
    REMOTE_ADDR,
    REQUEST,
    SOURCE,
    STATUS,
    TIME,
)

SEVERITIES = ("error", "warning", "info")
EXAMPLES = 3
# Examples are log lines: cut as the outputs cut raw lines (`RAW_LIMIT` and
# `cut_raw` in `outputs/_format.py`, which reports may not import), so that one
# huge line (a 500 MB one was seen) cannot make a huge report.
EXAMPLE_CHARS = 2000
# Columns only the AWS load-balancer layouts have (`pplog.formats` `alb`, `clb`).
AWS_COLUMNS = ("elb", "elb_status_code")
BALANCER_SHARE = 0.5
MESSAGE = "message"

PROXY_V1 = "proxy-header-on-plain-listener"
PROXY_V2 = "proxy-v2-header-on-plain-listener"
DOUBLE = "double-proxy-header"
TLS = "tls-on-plain-listener"
MISSING = "missing-client-address"
NOTHING_PARSED = "no-lines-parsed"
BALANCER = "balancer-addresses-as-clients"
SPOOFING = "xff-spoofing"
PLAIN_ON_PROXY = "plain-request-on-proxy-listener"
MALFORMED = "proxy-header-malformed"
VERSION = "proxy-protocol-version"
TOO_LARGE = "proxy-header-too-large"

SEVERITY = {
    PROXY_V1: "error",
    PROXY_V2: "error",
    PLAIN_ON_PROXY: "error",
    BALANCER: "error",
    DOUBLE: "warning",
    TLS: "warning",
    SPOOFING: "warning",
    MALFORMED: "warning",
    VERSION: "warning",
    TOO_LARGE: "warning",
    MISSING: "info",
    NOTHING_PARSED: "error",
}
CODES = tuple(SEVERITY)


@dataclass
class Finding:
    """One diagnosed problem: stable `code`, exact `count`, what and how to fix."""

    code: str
    count: int
    message: str
    fix: str
    examples: list[str] = field(default_factory=list)

    @property
    def severity(self) -> str:
        """``error``, ``warning`` or ``info``."""
        return SEVERITY.get(self.code, "warning")


def diagnose(
    rows: pl.LazyFrame | pl.DataFrame | None,
    error_log: pl.DataFrame | Iterable[pl.DataFrame] | None = None,
    *,
    policy: ProxyPolicy | None = None,
    balancer_share: float = BALANCER_SHARE,
) -> list[Finding]:
    """Findings about the load-balancer / PROXY-protocol setup behind these logs.

    Parameters
    ----------
    rows
        Access-log rows from `pplog.scan_log` / `pplog.read_log` (best with
        ``include_rejects=True``, so examples show the logged line).
    error_log
        Entries from `pplog.formats.errorlog.read_error_log`, if any, or
        batches of them (`iter_error_log`), counted as they come.
    policy
        The proxy policy the rows were read with; its trusted ranges decide
        ``balancer-addresses-as-clients``. Default: `ProxyPolicy()`.
    balancer_share
        Least share of parsed rows attributed to trusted addresses for
        ``balancer-addresses-as-clients`` to be reported.

    Returns
    -------
    list[Finding]
        Non-zero findings, by severity (error, warning, info), then count.

    Examples
    --------
    >>> import polars as pl
    >>> rows = pl.DataFrame({
    ...     "request": ["PROXY TCP4 198.51.100.22 10.0.0.7 35646 80", "GET / HTTP/1.1"],
    ...     "status": [400, 200],
    ...     "client_ip": ["10.0.1.5", "198.51.100.9"],
    ... })
    >>> [(f.code, f.count) for f in diagnose(rows)]
    [('proxy-header-on-plain-listener', 1)]
    """
    return diagnosis(
        rows, error_log, policy=policy, balancer_share=balancer_share
    ).findings


@dataclass(frozen=True)
class Diagnosis:
    """`diagnose`'s findings, and how much was read to find them."""

    findings: list[Finding]
    lines: int  # access-log lines read, rejected ones included
    entries: int  # error-log entries read
    # per error-log file: (entries, entries without a time that hold text:
    # what came before its first `YYYY/MM/DD hh:mm:ss [level]`); text and no
    # entry: no error log (an access log given as one?)
    error_files: dict[str, tuple[int, int]] = field(default_factory=dict)


def diagnosis(
    rows: pl.LazyFrame | pl.DataFrame | None,
    error_log: pl.DataFrame | Iterable[pl.DataFrame] | None = None,
    *,
    policy: ProxyPolicy | None = None,
    balancer_share: float = BALANCER_SHARE,
) -> Diagnosis:
    """`diagnose`, with the lines and entries read (none at all: nothing
    was diagnosed, which `pplog doctor` must not report as a clean bill)."""
    policy = policy or ProxyPolicy()
    found: list[Finding] = []
    lines: tuple[int, int | None] = (0, None)
    entries = 0
    files: dict[str, tuple[int, int]] = {}
    if rows is not None:
        access, lines = _access_findings(rows.lazy(), policy, balancer_share)
        found += access
    if error_log is not None:
        errors, entries, files = _error_findings(error_log)
        found += errors
    read, parsed = lines
    if parsed is not None:
        found += _nothing_parsed(read, parsed)
    found = [f for f in found if f.count > 0]
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    found.sort(key=lambda f: (rank[f.severity], -f.count, f.code))
    return Diagnosis(found, read, entries, files)


def _nothing_parsed(lines: int, parsed: int) -> list[Finding]:
    """A finding when lines were read but none fitted the format."""
    if lines == 0 or parsed > 0:
        return []
    return [
        Finding(
            NOTHING_PARSED,
            lines,
            f"none of the {lines:,} lines fitted the log format, so nothing could be "
            "diagnosed from the access log",
            "pass the format the log was written with: --format NAME, --log-format "
            "'...' or --nginx-conf /etc/nginx/nginx.conf (see `pplog formats`)",
        )
    ]


def reaches(findings: list[Finding], severity: str) -> bool:
    """True when a finding is at least as severe as `severity` (error > warning > info).

    Raises `OptionError` for a severity other than ``error``, ``warning``, ``info``.
    """
    if severity not in SEVERITIES:
        msg = f"unknown severity `{severity}`; use one of {', '.join(SEVERITIES)}"
        raise OptionError(msg)
    limit = SEVERITIES.index(severity)
    return any(SEVERITIES.index(f.severity) <= limit for f in findings)


def to_dict(findings: list[Finding]) -> dict[str, Any]:
    """The JSON form: ``{"findings": [{"code", "severity", "count", ...}]}``."""
    return {
        "findings": [
            {
                "code": f.code,
                "severity": f.severity,
                "count": f.count,
                "message": f.message,
                "fix": f.fix,
                "examples": list(f.examples),
            }
            for f in findings
        ]
    }


# --------------------------------------------------------------------------------------
# Access log


_TRUE = pl.lit(True)  # noqa: FBT003
_FALSE = pl.lit(False)  # noqa: FBT003


def _flag(expr: pl.Expr) -> pl.Expr:
    return expr.fill_null(False)  # noqa: FBT003


def _set(name: str, names: set[str]) -> pl.Expr:
    if name not in names:
        return _FALSE
    col = pl.col(name)
    return _flag(col.is_not_null() & (col != "") & (col != "-"))


def _example(names: set[str]) -> tuple[bool, pl.Expr]:
    """Whether rows say where they are (``file:line``), and the logged line's
    text: the raw line, or what the row holds of it."""
    if RAW in names:
        text = pl.col(RAW)
    else:
        peer = next((c for c in (CLIENT_IP, REMOTE_ADDR) if c in names), None)
        parts = [] if peer is None else [pl.col(peer)]
        if REQUEST in names:
            parts.append(pl.concat_str(pl.lit('"'), pl.col(REQUEST), pl.lit('"')))
        if STATUS in names:
            parts.append(pl.col(STATUS).cast(pl.String))
        if HTTP_X_FORWARDED_FOR in names:
            parts.append(pl.col(HTTP_X_FORWARDED_FOR))
        text = pl.concat_str(parts or [pl.lit("")], separator=" ", ignore_nulls=True)
    if SOURCE in names and LINE in names:
        return True, text.fill_null("")
    return False, text


def _cut(text: pl.Expr) -> pl.Expr:
    """`text` cut to `EXAMPLE_CHARS` characters, then ``… (N bytes)`` of the whole.

    The same text as `outputs._format.cut_raw` (``1,234`` digit groups).
    """
    digits = text.str.len_bytes().cast(pl.String).str.reverse()
    size = digits.str.replace_all(r"(\d{3})", "$1,").str.strip_suffix(",").str.reverse()
    short = pl.concat_str(
        text.str.slice(0, EXAMPLE_CHARS), pl.lit("… ("), size, pl.lit(" bytes)")
    )
    return pl.when(text.str.len_chars() > EXAMPLE_CHARS).then(short).otherwise(text)


def _examples(text: pl.Expr, mask: pl.Expr) -> pl.Expr:
    """The first `EXAMPLES` ``file:line: text`` of the rows in `mask`, as a list
    (error-log entries; the access log's are `_first`).

    First by (file, line), so that the order of the paths given does not
    change the examples. Only those few rows are cut and joined.
    """
    source, line = pl.col(SOURCE).filter(mask), pl.col(LINE).filter(mask)
    place = pl.concat_str(source, pl.lit(":"), line.cast(pl.String))
    order = [source, line]
    return pl.concat_str(
        place.bottom_k_by(order, EXAMPLES),
        pl.lit(": "),
        _cut(text.filter(mask).bottom_k_by(order, EXAMPLES)),
    ).implode()


def _trusted(addr: pl.Expr, policy: ProxyPolicy) -> pl.Expr:
    """True where `addr` lies in the policy's trusted ranges.

    Addresses repeat a lot: each batch's distinct values are looked up in
    the answers of the batches before, and only new ones parsed (up to
    `_KEPT` answers are kept).
    """
    networks = policy.networks
    answers: KeptAnswers[str, bool] = KeptAnswers(
        lambda texts: [addr_in(t, networks) for t in texts], _KEPT
    )

    def test(values: pl.Series) -> pl.Series:
        distinct = values.drop_nulls().unique()
        inside = pl.Series(answers(distinct.to_list()), dtype=pl.Boolean)
        return values.replace_strict(
            distinct, inside, default=False, return_dtype=pl.Boolean
        )

    return addr.map_batches(test, return_dtype=pl.Boolean, is_elementwise=True)


# distinct addresses whose trusted-range answer `_trusted` keeps
_KEPT = 200_000


def _aws_rows(names: set[str]) -> pl.Expr:
    """True on rows of the AWS ALB/CLB layouts (the balancer wrote the line)."""
    if not set(AWS_COLUMNS) <= names:
        return _FALSE
    return _flag(pl.any_horizontal(pl.col(c).is_not_null() for c in AWS_COLUMNS))


_TRUSTED_CLIENT = "_trusted_client"


def _access_trust(names: set[str], policy: ProxyPolicy) -> list[pl.Expr]:
    """Whether each row's client is in the trusted ranges, as the column
    `_access_masks` reads (several masks read it; each would test the
    addresses again)."""
    if CLIENT_IP not in names:
        return []
    return [_flag(_trusted(pl.col(CLIENT_IP), policy)).alias(_TRUSTED_CLIENT)]


def _access_masks(names: set[str], policy: ProxyPolicy) -> dict[str, pl.Expr]:
    """Per code, a boolean expression selecting the rows it counts."""
    parsed = pl.col(REJECT_REASON).is_null() if REJECT_REASON in names else _TRUE
    # nginx's advice is about the lines nginx wrote; an AWS balancer's own lines
    # name the client in `client` (a private one behind an internal ALB)
    parsed = _flag(parsed) & ~_aws_rows(names)
    masks: dict[str, pl.Expr] = {}
    signature = _FALSE
    if REQUEST in names:
        req = pl.col(REQUEST)
        bad_request = pl.col(STATUS) == 400 if STATUS in names else _TRUE
        v1 = (
            req.str.starts_with("PROXY TCP4 ")
            | req.str.starts_with("PROXY TCP6 ")
            | req.str.starts_with("PROXY UNKNOWN")
        )
        v2 = (req == "\x00") & bad_request
        tls = req.str.starts_with("\x16\x03") & bad_request
        first_header = _set(PROXY_PROTOCOL_ADDR, names)
        masks[PROXY_V1] = _flag(parsed & v1) & ~first_header
        masks[PROXY_V2] = _flag(parsed & v2) & ~first_header
        masks[DOUBLE] = _flag(parsed & (v1 | v2)) & first_header
        masks[TLS] = _flag(parsed & tls)
        signature = _flag(v1 | v2 | tls)
    ordinary = _flag(parsed) & ~signature
    checks = _checks(names)
    if CLIENT_IP in names:
        client = pl.col(CLIENT_IP)
        masks[MISSING] = ordinary & client.is_null()
        # a balancer's own health checks come from its address whatever realip
        # does: not counted, nor in the share (a quiet site behind an ALB logs
        # more of them than requests)
        trusted = pl.col(_TRUSTED_CLIENT)  # `_access_trust`: tested once
        masks[BALANCER] = ordinary & ~checks & trusted
        if PROXY_V1 in masks and PROXY_PROTOCOL_ADDR not in names:
            # on a plain listener the balancer sent them, from its address;
            # from a client's, the first field may be `$proxy_protocol_addr`
            # (`elb_log`, which `combined` reads alike): a second header
            masks["_v1_from_clients"] = masks[PROXY_V1] & ~trusted
    if FORWARDED_BY_UNTRUSTED in names:
        # only rows that really carried a header: `forwarded_by_untrusted` can be
        # set on rows without one
        sent = pl.any_horizontal(
            [_set(c, names) for c in HEADERS.values() if c in names] or [_FALSE]
        )
        masks[SPOOFING] = _flag(parsed & pl.col(FORWARDED_BY_UNTRUSTED)) & sent
    masks["_parsed"] = _flag(parsed)
    masks["_parsed_checks"] = _flag(parsed) & checks
    masks["_aws"] = _aws_rows(names)
    return masks


def _checks(names: set[str]) -> pl.Expr:
    """True on the requests of health checkers (their User-Agent)."""
    if HTTP_USER_AGENT not in names:
        return _FALSE
    return _flag(pl.col(HTTP_USER_AGENT).str.contains("HealthCheck"))


def _access_findings(
    lf: pl.LazyFrame, policy: ProxyPolicy, balancer_share: float
) -> tuple[list[Finding], tuple[int, int | None]]:
    """The access-log findings, and the lines read and parsed (None when the
    rows carry no `reject_reason`) for `NOTHING_PARSED`.

    The log is parsed once, into a temporary Parquet file of each row's
    masks and place, with the text of the rows some code selects (copied,
    see `_owned`); the counts and each code's first rows are then small
    queries over it. Memory stays bounded: as aggregations of one query
    (`bottom_k_by` of the selected texts), the examples held every row's
    text (1.1 GB for 2M lines, 3.8 GB for 8M).
    """
    names = set(lf.collect_schema().names())
    built = _access_masks(names, policy)
    marked = lf.with_columns(_access_trust(names, policy)).with_columns(
        mask.alias(f"_m:{code}") for code, mask in built.items()
    )
    masks = {code: pl.col(f"_m:{code}") for code in built}
    codes = [code for code in masks if not code.startswith("_")]
    placed, text = _example(names)
    keys = [SOURCE, LINE] if placed else []
    chosen = pl.any_horizontal([masks[c] for c in codes]) if codes else _FALSE
    columns = [
        *masks.values(),
        *keys,
        _owned(pl.when(chosen).then(text)).alias("_text"),
    ]
    sums = [mask.sum().alias(code) for code, mask in masks.items()]
    sums.append(pl.len().alias("_lines"))
    if REJECT_REASON in names:
        columns.append(pl.col(REJECT_REASON).is_null().alias("_parsed_line"))
        sums.append(pl.col("_parsed_line").sum().alias("_parsed_lines"))
    if MISSING in masks and HTTP_USER_AGENT in names:
        columns.append((masks[MISSING] & _checks(names)).alias("_checker"))
        sums.append(pl.col("_checker").sum().alias("_missing_checkers"))
    distinct: dict[str, str] = {}  # count of distinct values -> the code's column
    if BALANCER in masks:
        distinct["_balancer_addrs"] = BALANCER
        client = _owned(pl.when(masks[BALANCER]).then(pl.col(CLIENT_IP)))
        columns.append(client.alias("_balancer_addrs"))
    peer = next((c for c in (REALIP_REMOTE_ADDR, REMOTE_ADDR) if c in names), None)
    if SPOOFING in masks and peer is not None:
        distinct["_peers"] = SPOOFING
        sender = _owned(pl.when(masks[SPOOFING]).then(pl.col(peer)))
        columns.append(sender.alias("_peers"))
    with tempfile.TemporaryDirectory(prefix="pplog-") as tmp:
        path = Path(tmp) / "doctor.parquet"
        try:
            marked.select(columns).sink_parquet(path, compression="lz4")
        except OSError as exc:
            why = exc.strerror or exc
            msg = f"cannot write a temporary file for the diagnosis: {why}"
            raise ReportError(msg) from exc
        spool = pl.scan_parquet(path, glob=False)
        stats = spool.select(sums).collect(engine="streaming").row(0, named=True)
        share = 0.0
        if BALANCER in masks:
            # judged log by log: one vhost without realip among healthy ones
            # is that vhost's error, not lost in the directory's share
            count, share, named, rows = _balancer_logs(
                spool, masks, keys, balancer_share
            )
            stats[BALANCER], stats["_balancer_logs"] = count, named
            masks[BALANCER] = masks[BALANCER] & rows
        for name, code in distinct.items():
            values = spool.filter(masks[code]).select(pl.col(name).unique())
            stats[name] = values.select(pl.len()).collect(engine="streaming").item()
        examples = {code: _first(spool, masks[code], keys) for code in codes}
    texts = _access_texts(stats, names, policy, share)
    parsed = int(stats["_parsed_lines"]) if REJECT_REASON in names else None
    found = [
        Finding(code, int(stats[code]), *texts[code], examples[code]) for code in codes
    ]
    return found, (int(stats["_lines"]), parsed)


def _balancer_logs(
    spool: pl.LazyFrame,
    masks: dict[str, pl.Expr],
    keys: list[str],
    least: float,
) -> tuple[int, float, str, pl.Expr]:
    """The requests credited to the balancer in the logs where they are at
    least `least` of the requests other than health checks, their share of
    those logs' requests, the logs named when only some of the inputs are
    (else empty), and the mask of those logs' rows. Rows without a source
    (a frame given) are one log."""
    own = (masks["_parsed"] & ~masks["_parsed_checks"]).cast(pl.UInt64)
    counted = [masks[BALANCER].cast(pl.UInt64).sum().alias("b"), own.sum().alias("n")]
    if not keys:
        b, n = spool.select(counted).collect(engine="streaming").row(0)
        b = b if b >= least * max(n, 1) else 0
        return b, b / max(n, 1), "", _TRUE
    per = spool.group_by(SOURCE).agg(counted).collect(engine="streaming")
    flagged = per.filter(pl.col("b") >= least * pl.max_horizontal("n", 1))
    flagged = flagged.filter(pl.col("b") > 0).sort(SOURCE)
    b, n = int(flagged["b"].sum()), int(flagged["n"].sum())
    named = flagged[SOURCE].to_list()
    said = ""
    if named and len(named) < per.filter(pl.col("n") > 0).height:
        shown = ", ".join(f"`{x}`" for x in named[:3])
        more = f" and {len(named) - 3:,} more" if len(named) > 3 else ""
        said = f"{shown}{more}"
    return b, b / max(n, 1), said, pl.col(SOURCE).is_in(named)


def _owned(text: pl.Expr) -> pl.Expr:
    """`text` (null where not selected) in buffers of its own: a selected
    string still points into the buffer of the batch it came from, which it
    would keep alive (the Parquet writer holds rows until a row group is
    full)."""
    return pl.concat_str(text, pl.lit(""))


def _first(spool: pl.LazyFrame, mask: pl.Expr, keys: list[str]) -> list[str]:
    """The first `EXAMPLES` rows in `mask` as ``file:line: text`` (by file and
    line; without `keys`, ``text`` in the order read)."""
    rows = spool.filter(mask).select(*keys, "_text")
    first = rows.bottom_k(EXAMPLES, by=keys) if keys else rows.head(EXAMPLES)
    text = _cut(pl.col("_text"))
    if keys:
        place = pl.concat_str(pl.col(SOURCE), pl.lit(":"), pl.col(LINE).cast(pl.String))
        first, text = first.sort(keys), pl.concat_str(place, pl.lit(": "), text)
    return first.select(text).collect(engine="streaming").to_series().to_list()


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def _access_texts(
    stats: dict[str, Any], names: set[str], policy: ProxyPolicy, share: float
) -> dict[str, tuple[str, str]]:
    """(message, fix) per access-log code."""
    lb_fix = (
        "either enable `proxy_protocol` on the listener the balancer sends to "
        "(`listen 80 proxy_protocol;` with `set_real_ip_from <balancer CIDR>; "
        "real_ip_header proxy_protocol;`), or stop the balancer from sending it "
        "(HAProxy: drop `send-proxy`/`send-proxy-v2`; Classic ELB: remove the "
        "ProxyProtocolPolicyType policy; NLB: target-group attribute "
        "`proxy_protocol_v2.enabled=false`)"
    )
    return {
        PROXY_V1: (
            f"{_n(stats.get(PROXY_V1, 0), 'request')} began with a PROXY protocol v1 "
            "header (`PROXY TCP4 ...`) on a listener without `proxy_protocol`: nginx "
            "read the header as a request line and answered 400; the real request "
            "behind it was never served or logged"
            + (
                f". {_n(stats['_v1_from_clients'], 'of them', 'of them')} came from "
                "addresses outside the trusted proxy ranges, not a balancer's: if "
                "this log's first field is `$proxy_protocol_addr` (the `elb_log` "
                "format, which reads alike), they are second PROXY headers on a "
                "working `proxy_protocol` listener; run again with --format elb_log "
                "before changing the listener"
                if stats.get("_v1_from_clients")
                else ""
            ),
            "Make both ends agree: " + lb_fix,
        ),
        PROXY_V2: (
            f'{_n(stats.get(PROXY_V2, 0), "request")} logged as `"\\x00" 400`: '
            "the binary PROXY protocol v2 signature reached a listener without "
            "`proxy_protocol` (typical of an NLB with proxy_protocol_v2 enabled), "
            "and the real requests behind it were never served",
            "Make both ends agree: " + lb_fix,
        ),
        DOUBLE: (
            f"{_n(stats.get(DOUBLE, 0), 'request')} carried a second PROXY header "
            "after the one the `proxy_protocol` listener consumed (logged as 400 "
            "with `$proxy_protocol_addr` set): two hops each add a header, e.g. a "
            "proxy that sends PROXY in front of an NLB, which does not strip it",
            "Only the hop next to nginx should send PROXY protocol: turn it off on "
            "the outer proxy (HAProxy `send-proxy`), or make the inner balancer "
            "terminate it instead of passing the stream through",
        ),
        TLS: (
            f"{_n(stats.get(TLS, 0), 'request')} began with a TLS handshake on a "
            "plain-HTTP listener (nginx answered 400): clients or the balancer "
            "speak HTTPS to a port that expects HTTP; a few can be scanners",
            "Terminate TLS at the balancer and forward plain HTTP to this port "
            "(ELB/NLB: TLS listener, TCP/HTTP target), or let nginx terminate it: "
            "`listen 443 ssl;` with `ssl_certificate`/`ssl_certificate_key`, and "
            "point the balancer at that port",
        ),
        MISSING: _missing_texts(stats, names),
        BALANCER: (
            f"{_n(stats.get(BALANCER, 0), 'request')} "
            f"({share:.0%} of "
            f"{'the requests nginx logged' if stats.get('_aws') else 'all requests'}"
            f"{' but health checks' if stats.get('_parsed_checks') else ''}"
            f"{' of ' + stats['_balancer_logs'] if stats.get('_balancer_logs') else ''}"
            ") credited to "
            f"{_n(stats.get('_balancer_addrs', 0), 'address', 'addresses')} inside "
            f"the trusted proxy ranges ({', '.join(policy.trusted or ())}): the "
            "log shows the balancer, not the client. "
            + (
                # a chain through two proxies: nginx stopped at the last one
                "With `real_ip_recursive off`, realip takes the header's last "
                "address, here one of your own proxies (a chain through two)"
                if not policy.recursive
                and (set(HEADERS.values()) - {PROXY_PROTOCOL_ADDR}) & names
                else "Either nginx's realip is not configured or the log format "
                "records no client field"
                + (
                    ""
                    if {PROXY_PROTOCOL_ADDR, HTTP_X_FORWARDED_FOR} & names
                    else " (this format logs neither `$proxy_protocol_addr` nor "
                    "`$http_x_forwarded_for`)"
                )
            ),
            "Give nginx the client address and trust only the balancer: "
            "PROXY protocol (ELB/NLB): `listen 80 proxy_protocol; set_real_ip_from "
            "<balancer CIDR>; real_ip_header proxy_protocol;`; X-Forwarded-For "
            "(ALB, HAProxy `option forwardfor`): `set_real_ip_from <balancer CIDR>; "
            "real_ip_header X-Forwarded-For; real_ip_recursive on;`. Log "
            "`$proxy_protocol_addr` or `$http_x_forwarded_for` too. If your clients "
            "really are on private networks, pass only the balancers' ranges to "
            "pplog (--set-real-ip-from)",
        ),
        SPOOFING: (
            f"{_n(stats.get(SPOOFING, 0), 'request')} from "
            f"{_n(stats.get('_peers', 0), 'untrusted peer')} (not in the trusted "
            "proxy ranges) carried a forwarded-address header; it was ignored "
            "(as nginx's realip does) and the peer is the client. Clients may be "
            "forging X-Forwarded-For, or one of your own proxies is not in the "
            "trusted list",
            "If those peers are your proxies or balancers, add their ranges to "
            "`set_real_ip_from` (and pplog --set-real-ip-from). Otherwise nothing "
            "to change: never take the leftmost X-Forwarded-For entry as the client",
        ),
    }


def _missing_texts(stats: dict[str, Any], names: set[str]) -> tuple[str, str]:
    count = stats.get(MISSING, 0)
    checkers = stats.get("_missing_checkers", 0)
    if PROXY_PROTOCOL_ADDR in names:
        why = (
            "`$proxy_protocol_addr` was `-`: the connection carried no PROXY "
            "address. That is a `PROXY UNKNOWN` header (HAProxy sends it for "
            "non-TCP clients), a v2 LOCAL header (NLB health checks) or a "
            "listener without `proxy_protocol`"
        )
        if count and count == stats.get("_parsed"):
            why += "; every request is affected, so most likely the last one"
    elif {REMOTE_ADDR, REALIP_REMOTE_ADDR} & names:
        why = "the logged peer address (`$remote_addr`) was `-` or empty"
    else:
        why = "the log format records no client address field"
    if checkers:
        why += f"; {_n(checkers, 'request')} came from health checkers (User-Agent)"
    return (
        f"{_n(count, 'request')} without a client address: {why}",
        "Health checks without client data (NLB v2 LOCAL) are expected and "
        "harmless. Otherwise enable `proxy_protocol` on the listener and the "
        "balancer together, keep client traffic off ports without it, and log "
        "`$remote_addr` next to `$proxy_protocol_addr` so the peer stays visible",
    )


# --------------------------------------------------------------------------------------
# Error log

_BROKEN = 'broken header: "'


def _error_masks() -> dict[str, pl.Expr]:
    msg = pl.col(MESSAGE)
    broken = msg.str.starts_with(_BROKEN)
    body = msg.str.strip_prefix(_BROKEN)
    v1 = body.str.starts_with("PROXY ")
    return {
        PLAIN_ON_PROXY: _flag(broken & ~v1),
        MALFORMED: _flag(broken & v1),
        VERSION: _flag(msg.str.starts_with("unknown PROXY protocol version")),
        TOO_LARGE: _flag(
            msg.str.starts_with("header is too large")
            & msg.str.contains("PROXY protocol", literal=True)
        ),
        # kinds of plain-request-on-proxy-listener, for the message
        "_http": _flag(broken & ~v1 & body.str.contains(r"^[A-Za-z_-]+ [^ \n]")),
        "_empty": _flag(broken & body.str.contains(r"^[\r\n]*(?:\"|\x00)")),
        "_tls": _flag(broken & body.str.starts_with("\x16\x03")),
    }


def _error_findings(
    entries: pl.DataFrame | Iterable[pl.DataFrame],
) -> tuple[list[Finding], int, dict[str, tuple[int, int]]]:
    """The error-log findings, the entries read, and per file its entries and
    the text before its first `YYYY/MM/DD hh:mm:ss [level]` (kept as one
    entry without a time: not counted as read; blank lines not counted)."""
    batches = [entries] if isinstance(entries, pl.DataFrame) else entries
    stats: dict[str, Any] = {}
    clients: set[str] = set()
    read = 0
    files: dict[str, tuple[int, int]] = {}
    for batch in batches:  # counts add up; examples and clients are merged
        untimed = batch.get_column(TIME).null_count() if TIME in batch.columns else 0
        read += batch.height - untimed
        for name, timed, text in _per_file(batch):
            before = files.get(name, (0, 0))
            files[name] = (before[0] + timed, before[1] + text)
        part = _error_stats(batch)
        clients.update(part.pop("_clients"))
        for key, value in part.items():
            if key.endswith(":ex"):
                stats[key] = (stats.get(key, []) + list(value))[:EXAMPLES]
            else:
                stats[key] = stats.get(key, 0) + int(value)
    if not stats:
        return [], read, files
    stats["_clients"] = len(clients)
    texts = _error_texts(stats)
    found = [
        Finding(code, int(stats[code]), *texts[code], list(stats[f"{code}:ex"]))
        for code in _error_masks()
        if not code.startswith("_")
    ]
    return found, read, files


def _per_file(batch: pl.DataFrame) -> list[tuple[str, int, int]]:
    """(file, entries, entries without a time holding text) in a batch."""
    if SOURCE not in batch.columns or TIME not in batch.columns or not batch.height:
        return []
    text = pl.col(RAW) if RAW in batch.columns else pl.col(MESSAGE)
    untimed = pl.col(TIME).is_null()
    counts = batch.group_by(SOURCE).agg(
        (~untimed).sum().alias("entries"),
        (untimed & (text.fill_null("").str.strip_chars() != "")).sum().alias("text"),
    )
    return [(str(n), int(e), int(t)) for n, e, t in counts.iter_rows()]


def _error_stats(entries: pl.DataFrame) -> dict[str, Any]:
    """Counts, first examples and distinct clients of one batch of entries."""
    masks = _error_masks()
    text = pl.col(RAW) if RAW in entries.columns else pl.col(MESSAGE)
    exprs = []
    for code, mask in masks.items():
        exprs.append(mask.sum().alias(code))
        if not code.startswith("_"):
            exprs.append(_examples(text.fill_null(""), mask).alias(f"{code}:ex"))
    exprs.append(
        pl.col("client")
        .filter(masks[PLAIN_ON_PROXY])
        .drop_nulls()  # an entry cut before its `client:` names no address
        .unique()
        .implode()
        .alias("_clients")
    )
    unknown = masks[PLAIN_ON_PROXY] & pl.col("client").is_null()
    exprs.append(unknown.sum().alias("_unknown_client"))
    return entries.select(exprs).row(0, named=True)


def _from_addresses(known: int, unknown: int) -> str:
    """`from N addresses`, `from at least N` when some entries name none (cut
    before their `client:`), nothing when none does."""
    if not known:
        return ""
    return f" from {'at least ' if unknown else ''}{_n(known, 'address', 'addresses')}"


def _error_texts(stats: dict[str, Any]) -> dict[str, tuple[str, str]]:
    count = stats[PLAIN_ON_PROXY]
    other = count - stats["_http"] - stats["_empty"] - stats["_tls"]
    kinds = [
        (stats["_http"], "with an HTTP request line (as HTTP health checks send)"),
        (stats["_empty"], "empty, CR/LF only or a cut-off PROXY v2 signature"),
        (stats["_tls"], "with a TLS handshake"),
        (other, "with other bytes"),
    ]  # fmt: skip
    detail = "; ".join(f"{n:,} {what}" for n, what in kinds if n)
    return {
        PLAIN_ON_PROXY: (
            f"{_n(count, 'connection')} to a `proxy_protocol` listener"
            f"{_from_addresses(stats['_clients'], stats.get('_unknown_client', 0))} "
            "did not start with a "
            "PROXY header (`broken header`), so nginx closed them without an "
            f"access-log line" + (f": {detail}" if detail else ""),
            "Everything that connects to a `proxy_protocol` port must send the "
            "header. Use TCP health checks (Classic ELB: `TCP:80`; HAProxy: "
            "`check-send-proxy`) or a separate health-check port without "
            "`proxy_protocol` (`listen 8080;`), and send plain clients to a port "
            "without it. If no balancer sends PROXY protocol, remove `proxy_protocol` "
            "from `listen` and `real_ip_header proxy_protocol`",
        ),
        MALFORMED: (
            f"{_n(stats[MALFORMED], 'PROXY v1 header')} could not be parsed "
            '(`broken header: "PROXY ..."`): malformed, or split across TCP '
            "segments (nginx needs the whole line in its first read)",
            "Check the sender: one `PROXY TCP4|TCP6 src dst sport dport\\r\\n` line, "
            "sent in one write, before any data",
        ),
        VERSION: (
            f"{_n(stats[VERSION], 'connection')} sent the PROXY v2 signature with a "
            "version other than 2 (`unknown PROXY protocol version`)",
            "Find the sender (see `client` in the examples): a PROXY v2 sender "
            "must use version 2; scanners can be ignored",
        ),
        TOO_LARGE: (
            f"{_n(stats[TOO_LARGE], 'PROXY v2 header')} declared more bytes than "
            "nginx read in its first read (`header is too large`): large TLVs, or "
            "a header split across TCP segments",
            "Keep the sender's TLVs small (HAProxy: only the `proxy-v2-options` you "
            "need; no certificate TLVs) and send the header in one segment",
        ),
    }
