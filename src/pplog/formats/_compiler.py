"""Compile nginx `log_format` strings into `LogFormat` parse plans."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pplog.errors import LogFormatError

ESCAPES = ("default", "json", "none")

_NAME_CHARS = re.compile(r"[A-Za-z0-9_]+")

# Value shapes of variables whose text nginx produces itself (log ops and
# addresses).  Every other variable is free text: "anything up to the next
# literal".  A `-` is allowed where nginx can print "not found", and where other
# servers writing combined-like logs (Apache `%b`) print it.
_COUNTER = r"\d+|-"
_PORT = r"\d*|-"
_ADDR = r"[^ \"]+"
_UPSTREAM_LIST = r"[^ ,\"]+(?:(?:, | : )[^ ,\"]+)*"


def _numbers(item: str) -> str:
    """An upstream list (`, ` between servers, ` : ` between groups) of
    `item`s or `-`: nginx writes nothing else there, so `nan`, `inf`,
    `0x10` or a number past its type do not fit (they had become NaN,
    infinity or a null that no reject counted)."""
    one = f"(?:{item}|-)"
    return f"{one}(?:(?:, | : ){one})*"


_UPSTREAM_TIMES = _numbers(r"[0-9]{1,15}(?:\.[0-9]+)?")
_UPSTREAM_COUNTS = _numbers(r"[0-9]{1,19}")  # below 2**64
_UPSTREAM_STATUSES = _numbers(r"[0-9]{3}")
SHAPES: dict[str, str] = {
    "time_local": r"\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}",
    "time_iso8601": (
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:?\d{2}|Z)"
    ),
    "msec": r"\d+(?:\.\d+)?",
    "request_time": r"\d+(?:\.\d+)?|-",
    "status": r"\d{3}|-",
    "body_bytes_sent": _COUNTER,
    "bytes_sent": _COUNTER,
    "request_length": _COUNTER,
    "connection": _COUNTER,
    "connection_requests": _COUNTER,
    "pipe": r"[p.]",
    "remote_port": _PORT,
    "realip_remote_port": _PORT,
    "proxy_protocol_port": _PORT,
    "proxy_protocol_server_port": _PORT,
    "server_port": _PORT,
    # `$remote_addr` is never "-": that is what tells `combined` from `elb_log`.
    "remote_addr": r"[^ \"-][^ \"]*|-[^ \"]+",
    "realip_remote_addr": _ADDR,
    "proxy_protocol_addr": _ADDR,
    "proxy_protocol_server_addr": _ADDR,
    "server_addr": _ADDR,
    "upstream_addr": _UPSTREAM_LIST,
    "upstream_status": _UPSTREAM_STATUSES,
    "upstream_response_time": _UPSTREAM_TIMES,
    "upstream_connect_time": _UPSTREAM_TIMES,
    "upstream_header_time": _UPSTREAM_TIMES,
    "upstream_bytes_received": _UPSTREAM_COUNTS,
    "upstream_bytes_sent": _UPSTREAM_COUNTS,
    "upstream_response_length": _UPSTREAM_COUNTS,
    "upstream_cache_status": r"[A-Z_]+|-",
}

# Variables whose text can contain `\xHH` escapes and needs decoding.
FIXED_TEXT = frozenset(SHAPES) - {"upstream_addr", "upstream_cache_status"}


@dataclass(frozen=True)
class Literal:
    """Text copied verbatim by nginx."""

    text: str


@dataclass(frozen=True)
class Variable:
    """A `$name` reference; `column` is unique within the format."""

    name: str
    column: str


Token = Literal | Variable


@dataclass(frozen=True)
class Segment:
    """A stretch of a default-escaped line between two literal `"` characters."""

    tokens: tuple[Token, ...]
    regex: str | None  # anchored, one named group per variable; None if trivial


@dataclass(frozen=True)
class Plan:
    """How `parse.py` takes a line apart."""

    full_regex: str
    # Present when every `"` in a line is one the format wrote (escape=default):
    # split the line on `"` and parse each short segment on its own.
    segments: tuple[Segment, ...] | None
    warnings: tuple[str, ...] = field(default=())


def tokenize(text: str) -> tuple[Token, ...]:
    """Split a joined format string into literals and variables, as nginx does."""
    tokens: list[Token] = []
    seen: dict[str, int] = {}
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "$":
            literal.append(ch)
            i += 1
            continue
        start = i
        i += 1
        if i < len(text) and text[i] == "{":
            end = text.find("}", i + 1)
            if end < 0:
                msg = (
                    f"the closing bracket of the variable at position {start} is "
                    f"missing in log format {text!r}; write `${{name}}`"
                )
                raise LogFormatError(msg)
            name = text[i + 1 : end]
            i = end + 1
            if not name or not _NAME_CHARS.fullmatch(name):
                msg = f"invalid variable name `${{{name}}}` at position {start}"
                raise LogFormatError(msg)
        else:
            m = _NAME_CHARS.match(text, i)
            if not m:
                msg = (
                    f"`$` without a variable name at position {start} in log format "
                    f"{text!r}; nginx rejects this too (write a name after `$`)"
                )
                raise LogFormatError(msg)
            name = m.group()
            i = m.end()
        if literal:
            tokens.append(Literal("".join(literal)))
            literal = []
        name = name.lower()  # nginx's variable names (`ngx_http_get_variable_index`)
        count = seen.get(name, 0)
        seen[name] = count + 1
        column = name if count == 0 else f"{name}_{count + 1}"
        tokens.append(Variable(name, column))
    if literal:
        tokens.append(Literal("".join(literal)))
    return tuple(tokens)


_META = frozenset("\\.+*?()|[]{}^$")


def re_escape(text: str) -> str:
    """Escape regex metacharacters only; the Rust engine rejects `\\ ` and friends."""
    return "".join("\\" + c if c in _META else c for c in text)


def _value_pattern(var: Variable, escape: str, *, quoted: bool) -> str:
    shape = SHAPES.get(var.name)
    if shape is not None:
        # json and none modes write a missing variable as nothing, not `-`
        return shape if escape == "default" else f"(?:{shape})?"
    if escape == "json" and quoted:
        return r'(?:[^"\\]|\\.)*'
    if escape == "default" and quoted:
        return r'[^"]*'
    if escape == "default":
        return r'[^"]*?'
    return r".*?"


def _group(var: Variable, index: int, pattern: str) -> str:
    return f"(?P<g{index}>{pattern})"


def group_names(tokens: tuple[Token, ...]) -> dict[str, str]:
    """Regex group name -> column name, for the first occurrence of each variable."""
    names: dict[str, str] = {}
    for i, tok in enumerate(tokens):
        if isinstance(tok, Variable):
            names[f"g{i}"] = tok.column
    return names


def _regex(tokens: tuple[Token, ...], escape: str, offset: int = 0) -> str:
    parts = ["^"]
    for j, tok in enumerate(tokens):
        if isinstance(tok, Literal):
            parts.append(re_escape(tok.text))
            continue
        before = tokens[j - 1] if j > 0 else None
        after = tokens[j + 1] if j + 1 < len(tokens) else None
        quoted = (
            isinstance(before, Literal)
            and before.text.endswith('"')
            and isinstance(after, Literal)
            and after.text.startswith('"')
        )
        parts.append(
            _group(tok, offset + j, _value_pattern(tok, escape, quoted=quoted))
        )
    parts.append("$")
    return "".join(parts)


def _split_on_quotes(tokens: tuple[Token, ...]) -> list[list[Token]]:
    segments: list[list[Token]] = [[]]
    for tok in tokens:
        if isinstance(tok, Variable):
            segments[-1].append(tok)
            continue
        pieces = tok.text.split('"')
        for k, piece in enumerate(pieces):
            if k:
                segments.append([])
            if piece:
                segments[-1].append(Literal(piece))
    return segments


def _segments(tokens: tuple[Token, ...]) -> tuple[Segment, ...]:
    out: list[Segment] = []
    index = 0
    # Keep the token index of each variable so group names match `group_names`.
    positions = {id(tok): i for i, tok in enumerate(tokens)}
    for seg in _split_on_quotes(tokens):
        seg_tokens = tuple(seg)
        variables = [t for t in seg_tokens if isinstance(t, Variable)]
        if (
            len(variables) == 1
            and len(seg_tokens) == 1
            and variables[0].name not in SHAPES
        ):
            out.append(Segment(seg_tokens, None))
            continue
        if not variables:
            out.append(Segment(seg_tokens, None))
            continue
        parts = ["^"]
        for tok in seg_tokens:
            if isinstance(tok, Literal):
                parts.append(re_escape(tok.text))
            else:
                pattern = SHAPES.get(tok.name, r".*?")
                parts.append(f"(?P<g{positions[id(tok)]}>{pattern})")
        parts.append("$")
        out.append(Segment(seg_tokens, "".join(parts)))
        index += 1
    return tuple(out)


def _ambiguity_warnings(tokens: tuple[Token, ...]) -> tuple[str, ...]:
    warnings = []
    for a, sep, b in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if (
            isinstance(a, Variable)
            and isinstance(sep, Literal)
            and isinstance(b, Variable)
            and a.name not in SHAPES
            and b.name not in SHAPES
            and sep.text.strip() == ""
        ):
            warnings.append(
                f"`${a.name}` and `${b.name}` are free text separated only by "
                f"whitespace; a value containing a space splits ambiguously "
                f"(quote one of them in the log_format)"
            )
    for a, b in zip(tokens, tokens[1:], strict=False):
        if isinstance(a, Variable) and isinstance(b, Variable):
            warnings.append(
                f"`${a.name}` and `${b.name}` touch with nothing between them; "
                f"pplog can only split them where their values allow it"
            )
    return tuple(warnings)


def plan(tokens: tuple[Token, ...], escape: str) -> Plan:
    """Build the parse plan for a tokenized format."""
    full = _regex(tokens, escape)
    has_quote = any(isinstance(t, Literal) and '"' in t.text for t in tokens)
    segments = _segments(tokens) if escape == "default" and has_quote else None
    return Plan(full, segments, _ambiguity_warnings(tokens))


def escape_mode(value: str) -> str:
    """The value of a leading `escape=`, checked as nginx checks it.

    nginx takes `default`, `json` and `none`, lowercase, and refuses the
    directive for anything else ("unknown log format escaping").
    """
    if value not in ESCAPES:
        msg = (
            f"unknown `escape={value}` in log_format; nginx accepts "
            f"escape=default, escape=json or escape=none"
        )
        raise LogFormatError(msg)
    return value


def split_escape(pieces: list[str]) -> tuple[str, list[str], list[str]]:
    """Take nginx's optional leading `escape=` argument off a format's pieces."""
    warnings: list[str] = []
    escape = "default"
    if pieces and pieces[0].startswith("escape="):
        escape = escape_mode(pieces[0][len("escape=") :])
        pieces = pieces[1:]
    for piece in pieces:
        if piece.startswith("escape="):
            warnings.append(
                f"`{piece}` is not the first argument, so nginx writes it as "
                "literal text"
            )
    return escape, pieces, warnings
