"""A batch of lines plus a `LogFormat` -> typed row columns and rejects."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from pplog import _unescape
from pplog.formats import LogFormat
from pplog.formats._compiler import FIXED_TEXT, SHAPES, Literal, Token, Variable
from pplog.schema import (
    FLOAT_FIELDS,
    INTEGER_FIELDS,
    METHOD,
    PATH,
    PROTOCOL,
    QUERY,
    RAW,
    REASON_BAD_NUMBER,
    REASON_BAD_TIME,
    REASON_BLANK,
    REASON_NO_MATCH,
    REJECT_REASON,
    REQUEST,
    TEXT,
    TIME,
    UPSTREAM_LISTS,
)

_PARTS = "_parts"
_MATCH = "_match"
_VALID = "_valid"

_ORIGIN_RE = r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*"
_TARGET_OK = r"^(?:/|\*$|[A-Za-z][A-Za-z0-9+.-]*://)"

_AWS_TIMINGS = (
    "request_processing_time",
    "target_processing_time",
    "backend_processing_time",
    "response_processing_time",
)
_AWS_QUOTED = frozenset(
    {
        "request",
        "user_agent",
        "trace_id",
        "domain_name",
        "chosen_cert_arn",
        "actions_executed",
        "redirect_url",
        "error_reason",
        "target_port_list",
        "target_status_code_list",
        "classification",
        "classification_reason",
    }
)


def _shape_ok(expr: pl.Expr, name: str) -> pl.Expr:
    shape = SHAPES.get(name)
    if shape is None:
        return pl.lit(True)  # noqa: FBT003
    return expr.str.contains(f"^(?:{shape})$")


def _fast_split(
    part: pl.Expr, tokens: tuple[Token, ...]
) -> tuple[list[pl.Expr], pl.Expr]:
    """Values of a segment's variables by splitting at each following literal.

    Cheap, and right whenever no value contains its next literal; `ok` says
    whether every piece was found and has its variable's shape.
    """
    values: list[pl.Expr] = []
    ok: pl.Expr = pl.lit(True)  # noqa: FBT003
    rest = part
    toks = list(tokens)
    if toks and isinstance(toks[0], Literal):
        ok = ok & rest.str.starts_with(toks[0].text)
        rest = rest.str.strip_prefix(toks[0].text)
        toks = toks[1:]
    for k, tok in enumerate(toks):
        if not isinstance(tok, Variable):
            continue
        nxt = toks[k + 1] if k + 1 < len(toks) else None
        if nxt is None:
            value = rest
        elif k + 2 >= len(toks):  # the segment ends with this literal
            assert isinstance(nxt, Literal)
            ok = ok & rest.str.ends_with(nxt.text)
            value = rest.str.strip_suffix(nxt.text)
        else:
            assert isinstance(nxt, Literal)
            pair = rest.str.splitn(nxt.text, 2)
            value = pair.struct.field("field_0")
            rest = pair.struct.field("field_1")
            ok = ok & rest.is_not_null()
        ok = ok & _shape_ok(value, tok.name)
        values.append(value)
    return values, ok


def _extract(fmt: LogFormat) -> tuple[list[list[pl.Expr]], list[pl.Expr], pl.Expr]:
    """Stages of intermediate columns, the raw field texts and validity."""
    plan = fmt.plan
    groups = fmt.group_columns()
    text = pl.col(TEXT)
    if plan.segments is None:
        match = pl.col(_MATCH)
        columns = [match.struct.field(g).alias(c) for g, c in groups.items()]
        first = next(iter(groups))
        stage = [text.str.extract_groups(plan.full_regex).alias(_MATCH)]
        return [stage], columns, match.struct.field(first).is_not_null()
    parts = pl.col(_PARTS)
    first_stage: list[pl.Expr] = [text.str.split('"').alias(_PARTS)]
    second: list[pl.Expr] = []
    third: list[pl.Expr] = []
    fields: list[pl.Expr] = []
    valid = parts.list.len() == len(plan.segments)
    positions = {id(t): i for i, t in enumerate(fmt.tokens)}
    for i, seg in enumerate(plan.segments):
        part = parts.list.get(i, null_on_oob=True)
        variables = [t for t in seg.tokens if isinstance(t, Variable)]
        if seg.regex is None and variables:
            fields.append(part.alias(variables[0].column))
            continue
        if seg.regex is None:
            literal = "".join(t.text for t in seg.tokens if isinstance(t, Literal))
            valid = valid & (part == literal)
            continue
        # Validate with the DFA (no captures: fast), split cheaply, and run the
        # capturing regex only on the rare rows where the cheap split went wrong.
        seg_col, ok_col, slow_col = f"_seg{i}", f"_ok{i}", f"_slow{i}"
        second.append(part.alias(seg_col))
        fast, fast_ok = _fast_split(pl.col(seg_col), seg.tokens)
        second_ok = pl.col(seg_col).str.contains(seg.regex)
        third.append(second_ok.alias(f"_match{i}"))
        third.append(fast_ok.fill_null(False).alias(ok_col))  # noqa: FBT003
        for var, value in zip(variables, fast, strict=True):
            third.append(value.alias(f"_fast{i}_{positions[id(var)]}"))
        valid = valid & pl.col(f"_match{i}")
        needs_slow = pl.col(f"_match{i}") & ~pl.col(ok_col)
        slow = pl.when(needs_slow).then(pl.col(seg_col)).str.extract_groups(seg.regex)
        for var in variables:
            group = f"g{positions[id(var)]}"
            if groups.get(group) != var.column:
                continue
            fields.append(
                pl.when(pl.col(ok_col))
                .then(pl.col(f"_fast{i}_{positions[id(var)]}"))
                .otherwise(slow.struct.field(group))
                .alias(var.column)
            )
        del slow_col
    stages = [first_stage, second, third]
    return [s for s in stages if s], fields, valid.fill_null(False)  # noqa: FBT003


def _null_dash(col: pl.Expr) -> pl.Expr:
    return pl.when(col == "-").then(None).otherwise(col)


def _null_empty(col: pl.Expr) -> pl.Expr:
    # not `replace("", None)`: that is planned as a join and stops streaming
    return pl.when(col == "").then(None).otherwise(col)


def _typed(name: str, fmt: LogFormat, *, decode: bool = True) -> pl.Expr:
    col = _null_dash(pl.col(name))
    if name in INTEGER_FIELDS:
        return _null_empty(col).cast(INTEGER_FIELDS[name], strict=False).alias(name)
    if name in FLOAT_FIELDS:
        value = _null_empty(col).cast(pl.Float64, strict=False)
        value = pl.when(value.is_finite()).then(value)  # no inf/nan: JSON has none
        if fmt.kind != "nginx":  # AWS writes -1 for "not dispatched"
            value = pl.when(value < 0).then(None).otherwise(value)
        return value.alias(name)
    if name in UPSTREAM_LISTS:
        col = _null_empty(col)  # json/none modes write "not found" as nothing
        items = col.str.replace_all(" : ", ", ", literal=True).str.split(", ")
        inner = UPSTREAM_LISTS[name]
        items = items.list.eval(
            pl.when(pl.element() == "-")
            .then(None)
            .otherwise(pl.element())
            .cast(inner, strict=False)
        )
        return items.alias(name)
    if fmt.kind != "nginx":
        if name in _AWS_QUOTED:
            col = _null_dash(_unescape.unescape_aws(pl.col(name)))
        return col.alias(name)
    if name in FIXED_TEXT or not decode:
        return col.alias(name)
    return _unescape.unescape(col, fmt.escape).alias(name)


def _bad_numbers(fields: tuple[str, ...]) -> pl.Expr:
    """True where a field that looked numeric did not fit its type."""
    checks = [
        (pl.col(f"_raw_{n}").is_not_null() & pl.col(n).is_null())
        for n in fields
        if n in INTEGER_FIELDS
    ]
    return pl.any_horizontal(checks) if checks else pl.lit(False)  # noqa: FBT003


def _time(fmt: LogFormat) -> pl.Expr | None:
    fields = set(fmt.fields)
    if "msec" in fields:
        micros = (pl.col("msec") * 1_000_000).round().cast(pl.Int64)
        return micros.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if "time_local" in fields:
        return pl.col("time_local").str.to_datetime(
            "%d/%b/%Y:%H:%M:%S %z", time_unit="us", time_zone="UTC", strict=False
        )
    if "time_iso8601" in fields:
        value = pl.col("time_iso8601").str.replace(r"Z$", "+00:00")
        return value.str.to_datetime(
            "%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us", time_zone="UTC", strict=False
        )
    if "time" in fields:  # AWS
        return (
            pl.col("time")
            .str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", strict=False)
            .dt.replace_time_zone("UTC")
        )
    return None


# The common shape, checked without captures: `METHOD /target HTTP/x.y` (or 0.9).
_REQUEST_SIMPLE = r"^[A-Z][A-Z_-]* [^ ]+(?: HTTP/\d\.\d)?$"
# Everything nginx also accepts: runs of spaces, trailing spaces, HTTP/1.10,
# and (before 1.21.1) spaces inside the target.
_REQUEST_RE = (
    r"^(?P<method>[A-Z][A-Z_-]*) +(?P<target>[^ ](?:.*?[^ ])?)"
    r"(?: +(?P<protocol>HTTP/\d+\.\d+))? *$"
)


def _target_parts(names: Sequence[str]) -> list[pl.Expr]:
    """`path` and `query` for formats that log `$request_uri` or `$uri`, not `$request`.

    `$request_uri` is the target as sent (split at the first `?`); `$uri` is
    nginx's normalised path, with `$args` as the query when logged.
    """
    if "request_uri" in names:
        split = pl.col("request_uri").str.splitn("?", 2)
        return [
            split.struct.field("field_0").alias(PATH),
            split.struct.field("field_1").alias(QUERY),
        ]
    out = [pl.col("uri").alias(PATH)]
    if "args" in names:
        out.append(pl.col("args").alias(QUERY))
    return out


def request_parts() -> list[list[pl.Expr]]:
    """Stages of expressions giving `method`, `path`, `query` and `protocol`.

    The method runs to the first space and the protocol is the last token only
    when it looks like ``HTTP/x.y`` (nginx before 1.21.1 let spaces into the
    target). A request line that nginx would not have accepted (binary bytes, a
    PROXY header, a lowercase method) keeps `request`; the four parts are null.
    Each stage is one `with_columns`, so nothing is computed twice.
    """
    request = pl.col(REQUEST)
    simple, rest = pl.col("_rq_simple"), pl.col("_rq_rest")
    stage1 = [
        request.str.contains(_REQUEST_SIMPLE).fill_null(False).alias("_rq_simple"),  # noqa: FBT003
        request.str.splitn(" ", 2).alias("_rq_pair"),
    ]
    slow = pl.when(~simple).then(request).str.extract_groups(_REQUEST_RE)
    stage2 = [
        pl.col("_rq_pair").struct.field("field_1").alias("_rq_rest"),
        pl.col("_rq_pair").struct.field("field_0").alias("_rq_method"),
        slow.alias("_rq_slow"),
    ]
    has_protocol = rest.str.slice(-9).str.starts_with(" HTTP/")
    slow_col = pl.col("_rq_slow")
    stage3 = [
        pl.when(simple)
        .then(pl.col("_rq_method"))
        .otherwise(slow_col.struct.field("method"))
        .alias("_rq_method"),
        pl.when(simple)
        .then(pl.when(has_protocol).then(rest.str.slice(-8)))
        .otherwise(slow_col.struct.field("protocol"))
        .alias("_rq_protocol"),
        pl.when(simple)
        .then(pl.when(has_protocol).then(rest.str.head(-9)).otherwise(rest))
        .otherwise(slow_col.struct.field("target"))
        .alias("_rq_target"),
    ]
    method, target = pl.col("_rq_method"), pl.col("_rq_target")
    absolute = ~target.str.starts_with("/")
    ok = (
        method.is_not_null()
        & (~absolute | target.str.contains(_TARGET_OK) | (method == "CONNECT"))
    ).fill_null(False)  # noqa: FBT003
    # absolute-form targets (`GET http://host/x`) lose scheme and host
    origin_free = pl.when(absolute).then(target).str.replace(_ORIGIN_RE, "")
    origin_free = pl.when(origin_free == "").then(pl.lit("/")).otherwise(origin_free)
    stage4 = [
        ok.alias("_rq_ok"),
        pl.when(absolute)
        .then(origin_free)
        .otherwise(target)
        .str.splitn("?", 2)
        .alias("_rq_split"),
    ]
    ok_col, split = pl.col("_rq_ok"), pl.col("_rq_split")
    stage5 = [
        pl.when(ok_col).then(method).alias(METHOD),
        pl.when(ok_col).then(split.struct.field("field_0")).alias(PATH),
        pl.when(ok_col).then(split.struct.field("field_1")).alias(QUERY),
        pl.when(ok_col).then(pl.col("_rq_protocol")).alias(PROTOCOL),
    ]
    return [stage1, stage2, stage3, stage4, stage5]


def _aws_aliases(fmt: LogFormat) -> list[pl.Expr]:
    """Give AWS layouts the nginx names the reports use."""
    client = pl.col("client")
    host = client.str.extract(r"^(.*):\d+$")  # IPv6 is unbracketed: last colon
    timings = [pl.col(n) for n in _AWS_TIMINGS if n in fmt.fields]
    exprs = [
        pl.coalesce(host, client).alias("remote_addr"),
        client.str.extract(r":(\d+)$")
        .cast(pl.UInt16, strict=False)
        .alias("remote_port"),
        pl.col("elb_status_code").alias("status"),
        pl.col("sent_bytes").alias("bytes_sent"),
        pl.col("user_agent").alias("http_user_agent"),
    ]
    if timings:  # null when any phase is missing (AWS wrote -1: never dispatched)
        total = timings[0]
        for t in timings[1:]:
            total = total + t
        exprs.append(total.alias("request_time"))
    return exprs


def parse(lines: pl.LazyFrame, fmt: LogFormat, *, decode: bool = True) -> pl.LazyFrame:
    """Parse a frame of lines (`sources.scan_lines`) with `fmt`.

    Returns every line: parsed rows have `reject_reason` null; rows that did not
    fit the format keep their text in `raw` and say why in `reject_reason`
    (``no_match``, ``bad_time``, ``bad_number`` or ``blank_line``).

    With ``decode=False`` free-text fields keep nginx's escapes. Grouping on the
    escaped text gives the same groups (the escaping is one-to-one), so reports
    decode only the few values they show.
    """
    stages, fields, valid = _extract(fmt)
    names = fmt.fields
    lf = lines
    for stage in stages:
        lf = lf.with_columns(stage)
    lf = lf.with_columns(*fields, valid.alias(_VALID))
    lf = lf.with_columns(
        _null_empty(_null_dash(pl.col(n))).alias(f"_raw_{n}")
        for n in names
        if n in INTEGER_FIELDS
    )
    lf = lf.with_columns(_typed(n, fmt, decode=decode) for n in names)
    derived: list[pl.Expr] = []
    time = _time(fmt)
    if time is not None:
        # years Python cannot hold (0, 10000 after the UTC shift) are bad times
        time = pl.when(time.dt.year().is_between(1, 9998)).then(time)
    if time is not None:
        derived.append(time.alias(TIME))
    if fmt.kind != "nginx":
        derived.extend(_aws_aliases(fmt))
    if derived:
        lf = lf.with_columns(derived)
    if REQUEST in names:
        for stage in request_parts():
            lf = lf.with_columns(stage)
    elif "request_uri" in names or "uri" in names:
        lf = lf.with_columns(_target_parts(names))
    reason = (
        pl.when(pl.col(TEXT) == "")
        .then(pl.lit(REASON_BLANK))
        .when(~pl.col(_VALID))
        .then(pl.lit(REASON_NO_MATCH))
    )
    if time is not None:
        reason = reason.when(pl.col(TIME).is_null()).then(pl.lit(REASON_BAD_TIME))
    reason = reason.when(_bad_numbers(names)).then(pl.lit(REASON_BAD_NUMBER))
    lf = lf.with_columns(reason.otherwise(None).alias(REJECT_REASON))
    drop = [c for c in lf.collect_schema().names() if c.startswith("_") and c != TEXT]
    return lf.drop(drop).rename({TEXT: RAW})
