"""A batch of lines plus a `LogFormat` -> typed row columns and rejects."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from pplog import _fastsplit, _unescape
from pplog._fastsplit import REQUEST_PARTS
from pplog.clientip import REALIP_PREFIX
from pplog.formats import FIXED_TEXT, SHAPES, Literal, LogFormat, Token, Variable
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
    REASON_BINARY,
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
_BINARY = "_binary"
_LINE = "_line"  # the text the fields are taken from (null for binary lines)
_C_OK = "_c_ok"  # the line's values are the C split's (`_fastsplit`)
# `parse(late=True)`: the rows whose request `late_split` must still cut
LATE_SPLIT = "_late_split"
_REST = "_rest"  # the lines left to the polars expressions

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


def _fast_split(
    seg: str, tokens: tuple[Token, ...], positions: dict[int, int]
) -> tuple[list[list[pl.Expr]], list[pl.Expr], pl.Expr]:
    """Split segment column `seg` at the literal after each variable.

    Cheap, and right whenever no value contains its next literal. Returns the
    chain of splits (one stage each, so every split is computed once) ending
    with a stage of the values (columns ``{seg}_fast{position}``), those value
    expressions, and `ok`, which says whether every piece was found and has
    its variable's shape. A segment whose split is ok
    matches the segment's regex: that is the same literals around the same
    shapes, with free text as ``.*?``.
    """
    chain: list[list[pl.Expr]] = []
    values: list[pl.Expr] = []
    checks: list[pl.Expr] = []
    rest = pl.col(seg)
    toks = list(tokens)
    if toks and isinstance(toks[0], Literal):
        checks.append(rest.str.starts_with(toks[0].text))
        rest = rest.str.strip_prefix(toks[0].text)
        toks = toks[1:]
    for k, tok in enumerate(toks):
        if not isinstance(tok, Variable):
            continue
        nxt = toks[k + 1] if k + 1 < len(toks) else None
        if isinstance(nxt, Variable):  # touching values: only the regex splits them
            return [], [], pl.lit(False)  # noqa: FBT003
        if nxt is None:
            value = rest
        elif k + 2 >= len(toks):  # the segment ends with this literal
            checks.append(rest.str.ends_with(nxt.text))
            value = rest.str.strip_suffix(nxt.text)
        else:
            pair = f"{seg}_split{k}"
            chain.append([rest.str.splitn(nxt.text, 2).alias(pair)])
            value = pl.col(pair).struct.field("field_0")
            rest = pl.col(pair).struct.field("field_1")
            checks.append(rest.is_not_null())
        name = f"{seg}_fast{positions[id(tok)]}"
        values.append(value.alias(name))
        if tok.name in SHAPES:
            checks.append(pl.col(name).str.contains(f"^(?:{SHAPES[tok.name]})$"))
    ok = pl.all_horizontal(checks) if checks else pl.lit(True)  # noqa: FBT003
    return [*chain, values], values, ok


def _extract(
    fmt: LogFormat, *, c_split: bool = False
) -> tuple[list[list[pl.Expr]], list[pl.Expr], pl.Expr]:
    """Stages of intermediate columns, the raw field texts and validity.

    Fields are taken from `_line`, not from the line as read. With `c_split`
    (the lines frame carries `_fastsplit`'s columns for `fmt`), a line the C
    split took has its values from there, and the polars expressions below
    see only the others (the rest reach them as null).
    """
    if not c_split:
        return _extract_polars(fmt, pl.col(_LINE))
    ok_name = _fastsplit.ok_column(fmt)
    values = _fastsplit.value_columns(fmt)
    assert ok_name is not None
    # lines polars read have no C split; a line the C split took holds no
    # NUL (the C reader hands such blocks to Python), so it is never binary,
    # and `parse` left it out of `_line`
    taken = pl.col(ok_name).fill_null(False).alias(_C_OK)  # noqa: FBT003
    rest = pl.col(_LINE).alias(_REST)
    stages, fields, valid = _extract_polars(fmt, pl.col(_REST))
    names = [f.meta.output_name() for f in fields]
    if sorted(names) != sorted(values):  # pragma: no cover - the tests check this
        msg = f"the C split of {fmt.name} fills {sorted(values)}, not {sorted(names)}"
        raise AssertionError(msg)
    fields = [
        pl.when(pl.col(_C_OK)).then(pl.col(values[name])).otherwise(f).alias(name)
        for name, f in zip(names, fields, strict=True)
    ]
    return [[taken], [rest], *stages], fields, pl.col(_C_OK) | valid


def _extract_polars(
    fmt: LogFormat, text: pl.Expr
) -> tuple[list[list[pl.Expr]], list[pl.Expr], pl.Expr]:
    """`_extract` in polars expressions alone, over the lines in `text`."""
    plan = fmt.plan
    groups = fmt.group_columns()
    if plan.segments is None:
        match = pl.col(_MATCH)
        columns = [match.struct.field(g).alias(c) for g, c in groups.items()]
        first = next(iter(groups))
        stage = [text.str.extract_groups(plan.full_regex).alias(_MATCH)]
        return [stage], columns, match.struct.field(first).is_not_null()
    parts = pl.col(_PARTS)
    segments: list[pl.Expr] = []
    splits: list[list[list[pl.Expr]]] = []
    checked: list[pl.Expr] = []
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
        # Split cheaply; run the regex (to validate, and capturing where the
        # split went wrong) only on the rare rows whose split is not ok.
        name, ok = f"_seg{i}", pl.col(f"_seg{i}_ok")
        segments.append(part.alias(name))
        stages, values, fast_ok = _fast_split(name, seg.tokens, positions)
        splits.append([*stages, [fast_ok.fill_null(False).alias(f"{name}_ok")]])  # noqa: FBT003
        rare = pl.when(~ok).then(pl.col(name))
        checked.append((ok | rare.str.contains(seg.regex)).alias(f"{name}_match"))
        checked.append(rare.str.extract_groups(seg.regex).alias(f"{name}_slow"))
        valid = valid & pl.col(f"{name}_match")
        fast = {v.meta.output_name() for v in values}
        for var in variables:
            pos = positions[id(var)]
            if groups.get(f"g{pos}") != var.column:
                continue  # a variable logged twice: the first one is the column
            slow = pl.col(f"{name}_slow").struct.field(f"g{pos}")
            value = pl.col(f"{name}_fast{pos}") if f"{name}_fast{pos}" in fast else None
            fields.append(
                (
                    pl.when(ok).then(value).otherwise(slow)
                    if value is not None
                    else slow
                ).alias(var.column)
            )
    depth = max((len(s) for s in splits), default=0)
    chained = [[e for s in splits if j < len(s) for e in s[j]] for j in range(depth)]
    stages = [[text.str.split('"').alias(_PARTS)], segments, *chained, checked]
    return [s for s in stages if s], fields, valid.fill_null(False)  # noqa: FBT003


def _null_dash(col: pl.Expr) -> pl.Expr:
    return pl.when(col == "-").then(None).otherwise(col)


def _null_empty(col: pl.Expr) -> pl.Expr:
    # not `replace("", None)`: that is planned as a join and stops streaming
    return pl.when(col == "").then(None).otherwise(col)


# byte counts nginx writes as off_t (at most 2**63 - 1): a larger one is a
# damaged line (a `bad_number`), and one such value among the sums had
# wrapped them past 2**64 (`overview.bytes` 1.5e18 for two lines of 1e19)
SIZES = frozenset({"body_bytes_sent", "bytes_sent", "request_length"})
OFF_T_MAX = 2**63 - 1


def _typed(name: str, fmt: LogFormat, *, decode: bool = True) -> pl.Expr:
    col = _null_dash(pl.col(name))
    kind = fmt.variables.get(name, name)  # a variable logged twice: its type too
    if kind in SIZES:  # nginx's sizes are off_t: more is no size nginx wrote
        value = _null_empty(col).cast(pl.UInt64, strict=False)
        return pl.when(value <= OFF_T_MAX).then(value).alias(name)
    if kind in INTEGER_FIELDS:
        return _null_empty(col).cast(INTEGER_FIELDS[kind], strict=False).alias(name)
    if kind in FLOAT_FIELDS:
        value = _null_empty(col).cast(pl.Float64, strict=False)
        value = pl.when(value.is_finite()).then(value)  # no inf/nan: JSON has none
        if fmt.kind != "nginx":  # AWS writes -1 for "not dispatched"
            value = pl.when(value < 0).then(None).otherwise(value)
        return value.alias(name)
    if kind in UPSTREAM_LISTS:
        col = _null_empty(col)  # json/none modes write "not found" as nothing
        items = col.str.replace_all(" : ", ", ", literal=True).str.split(", ")
        inner = UPSTREAM_LISTS[kind]
        items = items.list.eval(
            pl.when(pl.element() == "-")
            .then(None)
            .otherwise(pl.element())
            .cast(inner, strict=False)
        )
        return items.alias(name)
    if fmt.kind != "nginx":
        if kind in _AWS_QUOTED:
            col = _null_dash(_unescape.unescape_aws(pl.col(name)))
        return col.alias(name)
    if not (decode and _free_text(name, fmt)):
        return col.alias(name)
    return _unescape.unescape(col, fmt.escape).alias(name)


def _bad_numbers(fmt: LogFormat) -> pl.Expr:
    """True where a field that looked numeric did not fit its type."""
    checks = [
        (pl.col(f"_raw_{n}").is_not_null() & pl.col(n).is_null())
        for n, kind in fmt.variables.items()
        if kind in INTEGER_FIELDS
    ]
    return pl.any_horizontal(checks) if checks else pl.lit(False)  # noqa: FBT003


_MSEC_LIMIT = 253_402_300_800  # 10000-01-01T00:00:00Z in seconds


def _time(fmt: LogFormat) -> pl.Expr | None:
    fields = set(fmt.fields)
    if "msec" in fields:
        msec = pl.col("msec")
        # past the year 9999 a time is no time nginx wrote: null, so `bad_time`
        fits = msec.abs() < _MSEC_LIMIT
        micros = pl.when(fits).then((msec * 1_000_000).round()).cast(pl.Int64)
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


# The common shape, checked without captures: `METHOD /path HTTP/x.y` (or 0.9).
_REQUEST_PLAIN = r"^[A-Z][A-Z_-]* /[^ ]*(?: HTTP/\d\.\d)?$"
# Everything nginx also accepts: runs of spaces, trailing spaces, HTTP/1.10,
# and (before 1.21.1) spaces inside the target.
_REQUEST_RE = (
    r"^(?P<method>[A-Z][A-Z_-]*) +(?P<target>[^ ](?:.*?[^ ])??)"
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


def request_parts(c_split: dict[str, str] | None = None) -> list[list[pl.Expr]]:
    """Stages of expressions giving `method`, `path`, `query` and `protocol`.

    The method runs to the first space and the protocol is the last token only
    when it looks like ``HTTP/x.y`` (nginx before 1.21.1 let spaces into the
    target). A request line that nginx would not have accepted (binary bytes, a
    PROXY header, a lowercase method, an authority-form target such as
    ``CONNECT host:443``) keeps `request`; the four parts are null.
    Each stage is one `with_columns`, so nothing is computed twice.

    Plain requests (``METHOD /path HTTP/x.y``, nearly all of them) split on
    their spaces; the regex and the absolute-form handling run only on the
    others, which every other row reaches as null.

    With `c_split` (`_fastsplit.request_columns`, for rows whose fields the
    C split gave), a request the C split cut takes its parts from there, and
    these expressions see only the others. The C split cuts every request
    of ASCII text (`_splitc.c`'s `request_parse`), so in a batch of lines it
    split, the others are none and these expressions cost nothing (polars'
    string kernels run on every value of a batch with any valid one: for 1%
    of the requests, the regex alone cost 0.15 s of CPU on 2M lines).
    """
    request = pl.col(REQUEST)
    taken: pl.Expr | None = None
    if c_split:
        taken = pl.col(c_split["ok"]).fill_null(False) & pl.col(_C_OK)  # noqa: FBT003
        request = pl.when(~taken).then(request)
    plain, words = pl.col("_rq_plain"), pl.col("_rq_words")
    stage1 = [
        request.str.contains(_REQUEST_PLAIN).fill_null(False).alias("_rq_plain"),  # noqa: FBT003
        # a plain request has two or three words: no list to build
        request.str.splitn(" ", 3).alias("_rq_words"),
    ]
    # the rest: rare rows only (every other row reaches the regex as null)
    stage2 = [
        pl.when(~plain).then(request).str.extract_groups(_REQUEST_RE).alias("_rq_slow")
    ]
    slow = pl.col("_rq_slow")
    method = slow.struct.field("method")
    target = slow.struct.field("target")
    # origin-form, `*` or absolute-form. Not CONNECT's authority-form
    # (`CONNECT host:443`): nginx answers it 400 without parsing a target.
    # nginx refuses `*` as well, but Apache, which writes the same presets,
    # serves `OPTIONS *` (its "internal dummy connection").
    ok = target.str.contains(_TARGET_OK).fill_null(False)  # noqa: FBT003
    # absolute-form targets (`GET http://host/x`) lose scheme and host
    origin_free = target.str.replace(_ORIGIN_RE, "")
    origin_free = pl.when(origin_free == "").then(pl.lit("/")).otherwise(origin_free)
    stage3 = [
        ok.alias("_rq_ok"),
        pl.when(plain)
        .then(words.struct.field("field_1"))
        .when(ok)
        .then(origin_free)
        .alias("_rq_target"),
    ]
    ok_col = pl.col("_rq_ok")
    stage4 = [pl.col("_rq_target").str.splitn("?", 2).alias("_rq_split")]
    split = pl.col("_rq_split")
    stage5 = [
        pl.when(plain)
        .then(words.struct.field("field_0"))
        .when(ok_col)
        .then(method)
        .alias(METHOD),
        split.struct.field("field_0").alias(PATH),
        split.struct.field("field_1").alias(QUERY),
        pl.when(plain)
        .then(words.struct.field("field_2"))
        .when(ok_col)
        .then(slow.struct.field("protocol"))
        .alias(PROTOCOL),
    ]
    if taken is not None and c_split:
        stage5 = [
            pl.when(taken).then(pl.col(c_split[name])).otherwise(e).alias(name)
            for e in stage5
            if (name := e.meta.output_name())
        ]
    return [stage1, stage2, stage3, stage4, stage5]


def _request_stages(
    names: Sequence[str], c_split: dict[str, str] | None = None
) -> list[list[pl.Expr]]:
    """`method`, `path`, `query` and `protocol` (or `path` and `query`) from
    the (decoded) request fields."""
    if REQUEST in names:
        return request_parts(c_split)
    if "request_uri" in names or "uri" in names:
        return [_target_parts(names)]
    return []


def late_decoding(fmt: LogFormat) -> list[pl.Expr]:
    """The decoding `parse(..., late=True)` left out, one `with_columns` of a
    collected frame: each free-text field decoded in one call over the whole
    column (empty when the format's text needs none)."""
    if fmt.escape not in ("default", "json"):
        return []
    return [
        _unescape.unescape(pl.col(n), fmt.escape, whole=True).alias(n)
        for n in fmt.fields
        if _free_text(n, fmt)
    ]


def late_split(fmt: LogFormat) -> list[list[pl.Expr]]:
    """The request split `parse(..., late=True)` left out (after
    `late_decoding`), as stages of `with_columns`: polars expressions only.
    Where the parse gave the `LATE_SPLIT` column, the request parts are
    there already but for the rows it marks, which alone need these stages
    (`late_split_rows`)."""
    return _request_stages(fmt.fields)


def late_split_rows(frame: pl.DataFrame, fmt: LogFormat) -> pl.DataFrame:
    """`frame` (`parse(..., late=True)`, collected and `late_decoding`'s
    decoding done) with its request split: where the parse gave the C
    split's parts, only the rows `LATE_SPLIT` marks are cut by `late_split`,
    on their own, and their parts put in place."""
    if LATE_SPLIT not in frame.columns:
        return _split(frame, fmt)
    rows = frame.get_column(LATE_SPLIT).arg_true()
    frame = frame.drop(LATE_SPLIT)
    if rows.len() == 0:
        return frame
    cut = _split(frame.select(REQUEST).gather(rows), fmt)
    return frame.with_columns(
        frame.get_column(p).scatter(rows, cut.get_column(p)) for p in REQUEST_PARTS[1:]
    )


def _split(frame: pl.DataFrame, fmt: LogFormat) -> pl.DataFrame:
    """`late_split` of a collected frame, in a streaming query over it: both
    cores take its batches, where eager stages run each expression over the
    frame's chunks on one (2M lines: 0.5 s against 1.5 s for elb_log, 2.7 s
    for main)."""
    split = frame.lazy()
    for stage in late_split(fmt):
        split = split.with_columns(stage)
    kept = [c for c in split.collect_schema() if not c.startswith("_")]
    return split.select(kept).collect(engine="streaming")


def _free_text(name: str, fmt: LogFormat) -> bool:
    """Whether `_typed` decodes the field (when decoding)."""
    kind = fmt.variables.get(name, name)
    return fmt.kind == "nginx" and not (
        kind in INTEGER_FIELDS
        or kind in FLOAT_FIELDS
        or kind in UPSTREAM_LISTS
        or kind in FIXED_TEXT
    )


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


def parse(
    lines: pl.LazyFrame, fmt: LogFormat, *, decode: bool = True, late: bool = False
) -> pl.LazyFrame:
    """Parse a frame of lines (`sources.scan_lines`) with `fmt`.

    Returns every line: parsed rows have `reject_reason` null; rows that did not
    fit the format keep their text in `raw` and say why in `reject_reason`
    (``binary``, ``blank_line``, ``no_match``, ``bad_time`` or ``bad_number``,
    the first that applies). A line holding a NUL byte is ``binary``: nginx
    escapes every control byte, so it is not a line nginx wrote (a
    copytruncate hole, a corrupt disk block), and none of its fields is read.

    With ``decode=False`` free-text fields keep nginx's escapes. Grouping on the
    escaped text gives the same groups (the escaping is one-to-one), so reports
    decode only the few values they show.

    With ``late=True`` the free text is not decoded and the request is not
    split: `late_decoding` and `late_split` do both afterwards, where
    decoding is one Python call per column instead of one per streaming
    batch of a few thousand rows (which, done in Python whole, was 3.1 s of
    a 4.8 s parse of 2M lines, against 0.4 s once per column).
    """
    decode = decode and not late
    given = lines.collect_schema().names()
    c_split = _fastsplit.ok_column(fmt) in given
    stages, fields, valid = _extract(fmt, c_split=c_split)
    names = fmt.fields
    text = pl.col(TEXT)
    c_ok = _fastsplit.ok_column(fmt) if c_split else None
    if c_ok is not None:  # the C split took no line holding a NUL: the
        # polars expressions read only the lines it did not take
        text = pl.when(~pl.col(c_ok).fill_null(False)).then(text)  # noqa: FBT003
    # a literal search for one byte: next to nothing on ordinary lines
    binary = text.str.contains("\x00", literal=True).fill_null(False)  # noqa: FBT003
    lf = lines.with_columns(binary.alias(_BINARY))
    lf = lf.with_columns(pl.when(~pl.col(_BINARY)).then(text).alias(_LINE))
    if fmt.apache_escapes:  # `\"` inside a value would split the line at it
        lf = lf.with_columns(_unescape.apache_as_nginx(pl.col(_LINE)).alias(_LINE))
    for stage in stages:
        lf = lf.with_columns(stage)
    lf = lf.with_columns(*fields, valid.alias(_VALID))
    lf = lf.with_columns(
        _null_empty(_null_dash(pl.col(n))).alias(f"_raw_{n}")
        for n, kind in fmt.variables.items()
        if kind in INTEGER_FIELDS
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
    parts = _fastsplit.request_columns(fmt) if c_split else None
    if not late:
        # the C split cuts the request as logged: its parts are the decoded
        # request's only where nothing is decoded
        for stage in _request_stages(names, None if decode else parts):
            lf = lf.with_columns(stage)
    elif parts:
        # a request without a backslash decodes to itself: the C split's
        # parts are its parts; `late_split` cuts the others (`LATE_SPLIT`)
        plain = ~pl.col(REQUEST).str.contains("\\", literal=True)
        taken = pl.col(parts["ok"]).fill_null(False) & pl.col(_C_OK) & plain  # noqa: FBT003
        lf = lf.with_columns(
            *(
                pl.when(taken).then(pl.col(parts[p])).alias(p)
                for p in REQUEST_PARTS[1:]
            ),
            (~taken & pl.col(REQUEST).is_not_null()).alias(LATE_SPLIT),
        )
    if c_split:  # trust decisions the C split made (`clientip.realip_marker`)
        made = [c for c in given if c.startswith(REALIP_PREFIX)]
        lf = lf.with_columns(
            (pl.col(_C_OK) & pl.col(c)).fill_null(False).alias(c.removesuffix(".ok"))  # noqa: FBT003
            for c in made
            if c.endswith(".ok")
        )
    reason = (
        pl.when(pl.col(_BINARY))
        .then(pl.lit(REASON_BINARY))
        .when(pl.col(TEXT) == "")
        .then(pl.lit(REASON_BLANK))
        .when(~pl.col(_VALID))
        .then(pl.lit(REASON_NO_MATCH))
    )
    if time is not None:
        reason = reason.when(pl.col(TIME).is_null()).then(pl.lit(REASON_BAD_TIME))
    reason = reason.when(_bad_numbers(fmt)).then(pl.lit(REASON_BAD_NUMBER))
    lf = lf.with_columns(reason.otherwise(None).alias(REJECT_REASON))
    drop = [
        c
        for c in lf.collect_schema().names()
        if c.startswith("_")
        and c not in (TEXT, LATE_SPLIT)
        and not (c.startswith(REALIP_PREFIX) and not c.endswith(".ok"))
    ]
    return lf.drop(drop).rename({TEXT: RAW})
