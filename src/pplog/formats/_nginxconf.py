"""Read `log_format` (and, later, realip) directives from an nginx configuration."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from pplog.errors import LogFormatError
from pplog.formats._logformat import LogFormat

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


@dataclass
class Directive:
    """One nginx directive with its arguments (quotes already removed)."""

    name: str
    args: list[str]
    file: str
    line: int
    block: list[Directive] | None = None


@dataclass
class NginxConfig:
    """The directives pplog cares about, gathered across `include`s."""

    path: Path
    log_formats: dict[str, Directive] = field(default_factory=dict)
    access_logs: list[Directive] = field(default_factory=list)


def _tokens(text: str, file: str) -> list[tuple[str, int, bool]]:
    """Words, `;`, `{` and `}` with line numbers; the flag marks quoted words."""
    out: list[tuple[str, int, bool]] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch in ";{}":
            out.append((ch, line, False))
            i += 1
        elif ch in "\"'":
            start_line, buf = line, []
            i += 1
            while i < n and text[i] != ch:
                if text[i] == "\\" and i + 1 < n and text[i + 1] in _ESCAPES:
                    buf.append(_ESCAPES[text[i + 1]])
                    i += 2
                    continue
                if text[i] == "\n":
                    line += 1
                buf.append(text[i])
                i += 1
            if i >= n:
                msg = f"unterminated quote starting at {file}:{start_line}"
                raise LogFormatError(msg)
            i += 1
            out.append(("".join(buf), start_line, True))
        else:
            buf = []
            in_braces = False  # inside `${name}` within a bare word
            while i < n and not text[i].isspace() and text[i] not in ";\"'":
                if text[i] == "{" and buf and buf[-1] == "$":
                    in_braces = True
                elif text[i] == "}" and in_braces:
                    in_braces = False
                elif text[i] in "{}":
                    break
                if text[i] == "\\" and i + 1 < n:
                    buf.append(text[i + 1])
                    i += 2
                    continue
                buf.append(text[i])
                i += 1
            out.append(("".join(buf), line, False))
    return out


def _parse(path: Path, root: Path, depth: int = 0) -> list[Directive]:
    if depth > 20:
        msg = f"`include` nests more than 20 levels deep at {path}"
        raise LogFormatError(msg)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        msg = f"cannot read nginx configuration `{path}`: {exc.strerror or exc}"
        raise LogFormatError(msg) from exc
    tokens = _tokens(text, str(path))
    pos = 0

    def fail(line: int, what: str) -> LogFormatError:
        # nginx refuses such a file too ("nginx -t" says where)
        return LogFormatError(
            f"{what} in `{path}` at line {line}; check it with `nginx -t`"
        )

    def block(depth_: int = 0) -> list[Directive]:
        nonlocal pos
        items: list[Directive] = []
        words: list[str] = []
        start = 0
        last = 1
        while pos < len(tokens):
            tok, line, quoted = tokens[pos]
            last = line
            pos += 1
            if not quoted and tok == "}":
                if words:
                    raise fail(line, 'unexpected "}" (a directive lacks its ";")')
                if depth_ == 0:
                    raise fail(line, 'unexpected "}"')
                return items
            if not quoted and tok in ";{":
                if not words:
                    continue
                d = Directive(words[0], words[1:], str(path), start)
                if tok == "{":
                    d.block = block(depth_ + 1)
                if d.name == "include" and d.args:
                    items.extend(_include(d.args[0], root, depth))
                else:
                    items.append(d)
                words = []
                continue
            if not words:
                start = line
            words.append(tok)
        if words:
            raise fail(last, 'unexpected end of file, expecting ";" or "}"')
        if depth_ > 0:
            raise fail(last, 'unexpected end of file, expecting "}"')
        return items

    return block()


def _include(pattern: str, root: Path, depth: int) -> list[Directive]:
    full = pattern if Path(pattern).is_absolute() else str(root / pattern)
    paths = sorted(glob.glob(full)) if glob.has_magic(full) else [full]
    out: list[Directive] = []
    for p in paths:
        out.extend(_parse(Path(p), root, depth + 1))
    return out


def _walk(items: list[Directive], config: NginxConfig) -> None:
    for d in items:
        if d.name == "log_format" and d.args:
            if d.args[0] == "combined":
                msg = (
                    f"log_format `combined` at {d.file}:{d.line} redefines nginx's "
                    "built-in format, which nginx refuses; give it another name"
                )
                raise LogFormatError(msg)
            if d.args[0] in config.log_formats:
                msg = (
                    f"duplicate log_format name `{d.args[0]}` at {d.file}:{d.line}; "
                    "nginx refuses this configuration too"
                )
                raise LogFormatError(msg)
            config.log_formats[d.args[0]] = d
        elif d.name == "access_log":
            config.access_logs.append(d)
        if d.block:
            _walk(d.block, config)


def read_config(path: str | os.PathLike[str]) -> NginxConfig:
    """Parse an nginx configuration file, following `include` directives."""
    path = Path(path)
    config = NginxConfig(path)
    _walk(_parse(path, path.parent), config)
    return config


def format_from_config(
    path: str | os.PathLike[str], name: str | None = None
) -> LogFormat:
    """The `log_format` called `name` in the configuration at `path`.

    With `name` left out, the configuration's one custom format is used; if it
    has several, the one every `access_log` names; otherwise an error lists them.
    """
    config = read_config(path)
    formats = config.log_formats
    if name is None:
        used = {
            a.args[1]
            for a in config.access_logs
            if len(a.args) > 1 and a.args[1] in formats
        }
        if len(formats) == 1:
            name = next(iter(formats))
        elif len(used) == 1:
            name = used.pop()
        elif not formats:
            from pplog.formats._presets import PRESETS

            return PRESETS["combined"]
        else:
            msg = (
                f"`{path}` defines several log formats ({', '.join(sorted(formats))}); "
                f"pass --log-format-name NAME"
            )
            raise LogFormatError(msg)
    if name == "combined" and name not in formats:
        from pplog.formats._presets import PRESETS

        return PRESETS["combined"]
    if name not in formats:
        known = ", ".join(sorted(formats)) or "none"
        msg = f"no log_format `{name}` in `{path}` (found: {known})"
        raise LogFormatError(msg)
    d = formats[name]
    try:
        return LogFormat.from_pieces(d.args[1:], name=name)
    except LogFormatError as exc:
        msg = f"{exc} (log_format `{name}` at {d.file}:{d.line})"
        raise LogFormatError(msg) from exc


@dataclass(frozen=True)
class RealIPSettings:
    """`set_real_ip_from`, `real_ip_header`, `real_ip_recursive` as configured."""

    trusted: tuple[str, ...]
    header: str
    recursive: bool


_REALIP = ("set_real_ip_from", "real_ip_header", "real_ip_recursive")
_NGINX_HEADERS = {"X-Forwarded-For": "X-Forwarded-For", "X-Real-IP": "X-Real-IP"}


def _realip_in(items: list[Directive]) -> dict[str, list[Directive]]:
    found: dict[str, list[Directive]] = {name: [] for name in _REALIP}
    for d in items:
        if d.name in found:
            found[d.name].append(d)
    return found


def _uses_format(block: list[Directive], name: str) -> bool:
    for d in block:
        if d.name == "access_log" and len(d.args) > 1 and d.args[1] == name:
            return True
        if d.block and _uses_format(d.block, name):
            return True
    return False


def realip_from_config(
    path: str | os.PathLike[str], format_name: str
) -> RealIPSettings | None:
    """The realip settings of the server whose `access_log` uses `format_name`.

    Server-level directives override http-level ones, as in nginx. None when
    the configuration has no `set_real_ip_from` (realip is then inactive).
    """
    top = _parse(Path(path), Path(path).parent)
    http = next((d for d in top if d.name == "http" and d.block), None)
    scope = http.block if http and http.block else top
    levels = [_realip_in(scope)]
    for server in (d for d in scope if d.name == "server" and d.block):
        if _uses_format(server.block or [], format_name):
            levels.append(_realip_in(server.block or []))
            break
    merged: dict[str, list[Directive]] = {name: [] for name in _REALIP}
    for level in levels:  # the innermost level that sets a directive wins
        for name, found in level.items():
            if found:
                merged[name] = found
    trusted = tuple(d.args[0] for d in merged["set_real_ip_from"] if d.args)
    if not trusted:
        return None
    header = (
        merged["real_ip_header"][-1].args[0]
        if merged["real_ip_header"]
        else "X-Real-IP"
    )
    if header not in ("proxy_protocol", "X-Forwarded-For", "X-Real-IP"):
        msg = (
            f"real_ip_header `{header}` in `{path}` names a header pplog cannot see in "
            f"the log; pass --real-ip-header to choose what to read"
        )
        raise LogFormatError(msg)
    recursive = bool(merged["real_ip_recursive"]) and merged["real_ip_recursive"][
        -1
    ].args[:1] == ["on"]
    return RealIPSettings(trusted, header, recursive)
