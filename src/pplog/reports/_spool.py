"""The spool: rows parsed once into a temporary Parquet file, and the rejects sink."""

from __future__ import annotations

import os
import re
from pathlib import Path

import polars as pl

from pplog._text import escape_json_expr
from pplog.clientip import FORWARDED_BY_UNTRUSTED, HEADERS, PAIR_KEY, REALIP_PREFIX
from pplog.errors import PplogError, ReportError, SourceError
from pplog.reports.breakdowns import HOST_COLUMNS
from pplog.schema import (
    BODY_BYTES_SENT,
    BYTES_SENT,
    CLIENT_IP,
    CLIENT_IP_SOURCE,
    HTTP_REFERER,
    HTTP_USER_AGENT,
    HTTP_X_FORWARDED_FOR,
    LINE,
    OFFSET,
    PATH,
    PROXY_PROTOCOL_ADDR,
    RAW,
    REALIP_REMOTE_ADDR,
    REJECT_REASON,
    REMOTE_ADDR,
    REQUEST_TIME,
    SOURCE,
    STATUS,
    TIME,
    UPSTREAM_RESPONSE_TIME,
)


def write_rejects(
    lf: pl.LazyFrame, lines: pl.LazyFrame | None, path: str | Path
) -> pl.LazyFrame:
    """A lazy sink of every rejected line of `lf` as JSON lines, into `path`.

    Lines are kept whole (this is the full record); characters that act on a
    terminal (`pplog._text`) are JSON escapes, so `cat` or `less` of the file
    is inert and a JSON reader still gets the exact text.

    Byte offsets of lines read by polars itself are a running sum over every
    line, which the streaming engine cannot overlap with parsing; they are
    computed here from `lines` (what `lf` was parsed from), in a cheap second
    pass, for the rejects only.
    """
    rejected = lf.filter(pl.col(REJECT_REASON).is_not_null())
    keys = [SOURCE, LINE]
    if OFFSET not in lf.collect_schema().names() and lines is not None:
        # a line torn by a hole is two rows of one line number (`_torn`): the
        # torn part, which ends in the hole's NULs, then the line after it
        offsets = (
            lines.select(SOURCE, LINE, OFFSET)
            .join(rejected.select(keys), on=keys, how="semi")
            .group_by(keys)
            .agg(pl.col(OFFSET).min().alias("_torn"), pl.col(OFFSET).max())
        )
        torn = pl.col(RAW).str.ends_with("\x00")
        rejected = rejected.join(
            offsets, on=keys, how="left", maintain_order="left"
        ).with_columns(
            pl.when(torn).then(pl.col("_torn")).otherwise(pl.col(OFFSET)).alias(OFFSET)
        )
    elif OFFSET not in lf.collect_schema().names():
        rejected = rejected.with_columns(pl.lit(None, pl.UInt64).alias(OFFSET))
    columns = (SOURCE, LINE, OFFSET, REJECT_REASON, RAW)
    # encoded by polars as sink_ndjson would, then the characters the encoder
    # leaves raw become \u escapes; one column written as it is
    encoded = pl.struct(*columns).struct.json_encode()
    rows = rejected.select(escape_json_expr(encoded).alias("json"))
    return rows.sink_csv(path, include_header=False, quote_style="never", lazy=True)


# What the tables read; everything else is never materialised.
REPORT_COLUMNS = (
    CLIENT_IP,
    CLIENT_IP_SOURCE,
    HTTP_USER_AGENT,
    FORWARDED_BY_UNTRUSTED,
    PATH,
    STATUS,
    BODY_BYTES_SENT,
    BYTES_SENT,
    TIME,
    REQUEST_TIME,
    UPSTREAM_RESPONSE_TIME,
    HTTP_REFERER,
    *HOST_COLUMNS,
    REJECT_REASON,
    SOURCE,
    LINE,
    OFFSET,
    RAW,
)


# Report columns the spool stores as categoricals.
DICTIONARY_COLUMNS = (HTTP_USER_AGENT, HTTP_REFERER)


# What `clientip.attribute` reads, for logs attributed after spooling.
ATTRIBUTION_INPUTS = (
    PAIR_KEY,
    REALIP_REMOTE_ADDR,
    REMOTE_ADDR,
    PROXY_PROTOCOL_ADDR,
    HTTP_X_FORWARDED_FOR,
    *(
        c
        for c in HEADERS.values()
        if c not in (PROXY_PROTOCOL_ADDR, HTTP_X_FORWARDED_FOR)
    ),
)


# Columns every table may read, for formats that do not log them.
_REPORT_DTYPES: dict[str, pl.DataType] = {
    CLIENT_IP: pl.String(),
    PATH: pl.String(),
    STATUS: pl.UInt16(),
    TIME: pl.Datetime("us", "UTC"),
    REJECT_REASON: pl.String(),
    SOURCE: pl.String(),
    LINE: pl.UInt64(),
    RAW: pl.String(),
}


def with_report_columns(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add the report columns a format does not log, as nulls: tables degrade."""
    names = lf.collect_schema().names()
    missing = [
        pl.lit(None, dtype).alias(c)
        for c, dtype in _REPORT_DTYPES.items()
        if c not in names
    ]
    return lf.with_columns(missing) if missing else lf


def spooled(
    lf: pl.LazyFrame,
    spool: Path | None,
    *,
    with_offset: bool,
    decided: tuple[str, str] | None = None,
) -> pl.LazyFrame:
    """Parse once into a temporary Parquet file holding only the report columns.

    polars would otherwise parse the log once per table (and run a Python
    reader, for compressed files and stdin, once per table; stdin can only be
    read once). The sink streams, so memory stays bounded; the tables then
    scan the small file, sharing one read.

    Uncompressed: Parquet's dictionary encoding already makes the file small
    (23 MB for 2M elb_log lines, 18 MB with lz4), and the dozen queries that
    read it back skip the decompression (0.08 s in all on those lines).

    `spool` None holds the same columns in memory instead, for small inputs
    (see `tasks.IN_MEMORY_BYTES`): no Parquet to encode and decode.

    `decided` is (marker, header column) when the rows carry the marker
    column of the C split's decisions for the policy they will be
    attributed with (`clientip.realip_inputs`, `tasks.map_task`): the
    header is kept only for the rows it did not decide, the only ones
    whose attribution reads it. 2M `main` lines: 1.67-1.93 -> 1.46-1.55 s
    of CPU for the spool, which no longer encodes every X-Forwarded-For.
    """
    names = lf.collect_schema().names()
    if not with_offset:
        names = [n for n in names if n != OFFSET]
    # User agents and referrers repeat: stored as categoricals of this summary
    # alone (freed with it), the spool is smaller and groupings on them are
    # over integers. Finished tables cast them back to text.
    categories = pl.Categorical(pl.Categories.random())
    rejected = pl.col(REJECT_REASON).is_not_null()
    marker, header = decided if decided is not None else (None, None)
    keep = [
        # where a line came from and its text matter for rejects only
        pl.when(rejected).then(pl.col(c)).alias(c)
        if c in (RAW, SOURCE, LINE, OFFSET)
        else pl.when(~pl.col(marker)).then(pl.col(c)).alias(c)
        if c == header and marker is not None
        else pl.col(c).cast(categories)
        if c in DICTIONARY_COLUMNS
        else pl.col(c)
        for c in (
            *REPORT_COLUMNS,
            *ATTRIBUTION_INPUTS,
            *(n for n in names if n.startswith(REALIP_PREFIX)),
        )
        if c in names
    ]
    if spool is None:
        return lf.select(keep).collect(engine="streaming").lazy()
    path = spool / "rows.parquet"
    try:
        lf.select(keep).sink_parquet(path, compression="uncompressed", statistics=False)
    except OSError as exc:
        raise unwritable(exc) from exc
    return pl.scan_parquet(path, glob=False)


# how polars names the file of an OS error: `No such file or directory (os error 2): /x`
# (and a hint about POLARS_VERBOSE after it, in some versions)
_NAMED = re.compile(
    r"^(.*?) \(os error \d+\): (.+?)(?:\s+\(set POLARS_VERBOSE.*)?$", re.DOTALL
)


def unwritable(exc: OSError) -> PplogError:
    """The summary's one-line error for a temporary file it cannot write
    (the spool, the map's scratch files, in a ``pplog-`` directory); or,
    when the error names another file, for the input that could not be read
    while spooling (a lazy frame whose log was rotated away since)."""
    named = _NAMED.match(str(exc))
    reason, path = named.groups() if named else (exc.strerror, exc.filename)
    if path is not None and f"{os.sep}pplog-" not in os.fsdecode(path):
        msg = f"cannot read `{os.fsdecode(path)}`: {reason or exc}"
        return SourceError(msg)
    msg = f"cannot write a temporary file for the summary: {reason or exc}"
    return ReportError(msg)
