"""Read `log_format` (and, later, realip) directives from an nginx configuration."""

from __future__ import annotations

import glob
import ipaddress
import os
import re
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pplog.errors import LogFormatError
from pplog.formats._logformat import LogFormat

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}

# What one configuration may hold, all `include`d files together: far above
# real ones (a big `geo` or `map` list is a few MB), and a bound on memory and
# time when an include names something endless (`include /dev/zero;`).
MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_CONFIG_FILES = 4096  # files read, counting a file each time it is included
MAX_INCLUDE_DEPTH = 20
# Only these directives are kept (with `http`, `server` and the blocks that hold
# them), so that memory follows what pplog reads, not the configuration's size.
_KEPT = frozenset(
    {
        "log_format",
        "access_log",
        "set_real_ip_from",
        "real_ip_header",
        "real_ip_recursive",
    }
)
_KEPT_BLOCKS = _KEPT | {"http", "server"}  # the realip scopes, even when empty
# One token per match; a bare word with `\`, `{` or `}` in it goes to `_bare`.
_TOKEN = re.compile(
    r"""
      (?P<skip>(?:\s+|\#[^\n]*)+)           # spaces and comments
    | (?P<punct>[;{}])
    | (?P<quoted>"(?:[^"\\]|\\[\s\S])*"|'(?:[^'\\]|\\[\s\S])*')
    | (?P<unterminated>["'])
    | (?P<word>(?>[^\s;"'{}\\]+)(?![{}\\]))
    | (?P<other>[\s\S])
    """,
    re.VERBOSE,
)
_QUOTED_ESCAPE = re.compile(r"\\([\s\S])")
_PLAIN = re.compile(r"[^\s;\"'{}\\]+")  # the bulk of a bare word


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


@dataclass
class _Budget:
    """What is left to read of one configuration (`MAX_CONFIG_BYTES`, files)."""

    top: Path
    size: int = MAX_CONFIG_BYTES
    files: int = MAX_CONFIG_FILES


def _unquote(body: str) -> str:
    def one(m: re.Match[str]) -> str:
        return _ESCAPES.get(m[1], "\\" + m[1])

    return _QUOTED_ESCAPE.sub(one, body)


def _bare(text: str, i: int) -> tuple[str, int]:
    """The bare word starting at `i` and where it ends."""
    n = len(text)
    buf: list[str] = []
    in_braces = False  # inside `${name}` within a bare word
    while i < n:
        m = _PLAIN.match(text, i)
        if m:
            buf.append(m.group())
            i = m.end()
            continue
        ch = text[i]
        if ch.isspace() or ch in ";\"'":
            break
        if ch == "{" and buf and buf[-1].endswith("$"):
            in_braces = True
        elif ch == "}" and in_braces:
            in_braces = False
        elif ch in "{}":
            break
        if ch == "\\" and i + 1 < n:  # as in quotes (`ngx_conf_read_token`)
            buf.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
            i += 2
            continue
        buf.append(ch)
        i += 1
    return "".join(buf), i


def _tokens(text: str, file: str) -> Iterator[tuple[str, int, bool]]:
    """Words, `;`, `{` and `}` with line numbers; the flag marks quoted words."""
    i, line, n = 0, 1, len(text)
    match = _TOKEN.match
    while i < n:
        m = match(text, i)
        if m is None:  # never: `other` takes any character
            break
        kind, tok = m.lastgroup, m.group()
        if kind == "skip":
            line += tok.count("\n")
        elif kind in ("word", "punct"):
            yield tok, line, False
        elif kind == "quoted":
            yield _unquote(tok[1:-1]), line, True
            line += tok.count("\n")
        elif kind == "unterminated":
            msg = f"unterminated quote starting at {file}:{line}"
            raise LogFormatError(msg)
        else:
            word, i = _bare(text, i)
            yield word, line, False
            continue
        i = m.end()


def _read_at_most(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read(path: Path, budget: _Budget, where: str) -> str:
    """The text of one configuration file, within the budget.

    Only regular files are read: a device, fifo or directory would never end,
    block, or is no configuration. Raises `LogFormatError`.
    """
    budget.files -= 1
    if budget.files < 0:
        msg = (
            f"nginx configuration `{budget.top}` includes more than "
            f"{MAX_CONFIG_FILES:,} files (at `{path}`{where}); check its "
            "`include` patterns, or pass the format itself with --log-format '...'"
        )
        raise LogFormatError(msg)
    try:
        # O_NONBLOCK: opening a fifo must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            mode = os.fstat(fd).st_mode
            data = _read_at_most(fd, budget.size + 1) if stat.S_ISREG(mode) else b""
        finally:
            os.close(fd)
    except OSError as exc:
        msg = (
            f"cannot read nginx configuration `{path}`{where}: "
            f"{exc.strerror or exc}; check the path"
        )
        raise LogFormatError(msg) from exc
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a device, fifo or socket"
        msg = (
            f"nginx configuration `{path}`{where} is {kind}, not a regular "
            "file; include only configuration files"
        )
        raise LogFormatError(msg)
    budget.size -= len(data)
    if budget.size < 0:
        msg = (
            f"nginx configuration `{budget.top}` is larger than "
            f"{MAX_CONFIG_BYTES // (1024 * 1024)} MiB with its includes (at "
            f"`{path}`{where}); pass the format itself with --log-format '...'"
        )
        raise LogFormatError(msg)
    return data.decode("utf-8", errors="replace")


def _parse(
    path: Path,
    root: Path,
    budget: _Budget | None = None,
    depth: int = 0,
    where: str = "",
) -> list[Directive]:
    """The kept directives of the file at `path`, `include`s expanded in place.

    Blocks are parsed with a stack, not recursion: nesting depth costs no
    Python stack. Other blocks are kept only when they hold a kept directive.
    Raises `LogFormatError` where nginx would refuse the file, and past the
    `_Budget` or `MAX_INCLUDE_DEPTH`.
    """
    budget = budget or _Budget(path)
    if depth > MAX_INCLUDE_DEPTH:
        msg = (
            f"`include` nests more than {MAX_INCLUDE_DEPTH} levels deep at "
            f"`{path}`{where}: probably a file that includes itself; fix the "
            "include or pass the format itself with --log-format '...'"
        )
        raise LogFormatError(msg)
    text = _read(path, budget, where)

    def fail(line: int, what: str) -> LogFormatError:
        # nginx refuses such a file too ("nginx -t" says where)
        return LogFormatError(
            f"{what} in `{path}` at line {line}; check it with `nginx -t`"
        )

    file = str(path)
    top: list[Directive] = []
    stack: list[list[Directive]] = [top]  # the items of each open block
    words: list[str] = []
    start = last = 1
    for tok, line, quoted in _tokens(text, file):
        last = line
        if not quoted and tok == "}":
            if words:
                raise fail(line, 'unexpected "}" (a directive lacks its ";")')
            if len(stack) == 1:
                raise fail(line, 'unexpected "}"')
            stack.pop()
            closed = stack[-1][-1]
            if not closed.block and closed.name not in _KEPT_BLOCKS:
                stack[-1].pop()  # holds nothing pplog reads
            continue
        if not quoted and tok in ";{":
            if not words:
                continue
            name, args, words = words[0], words[1:], []
            if tok == "{":
                block: list[Directive] = []
                stack[-1].append(Directive(name, args, file, start, block))
                stack.append(block)
            elif name == "include" and args:
                d = Directive(name, args, file, start)
                stack[-1].extend(_include(d, root, budget, depth))
            elif name in _KEPT:
                stack[-1].append(Directive(name, args, file, start))
            continue
        if not words:
            start = line
        words.append(tok)
    if words:
        raise fail(last, 'unexpected end of file, expecting ";" or "}"')
    if len(stack) > 1:
        raise fail(last, 'unexpected end of file, expecting "}"')
    return top


def _include(d: Directive, root: Path, budget: _Budget, depth: int) -> list[Directive]:
    pattern = d.args[0]
    full = pattern if Path(pattern).is_absolute() else str(root / pattern)
    paths = sorted(glob.glob(full)) if glob.has_magic(full) else [full]
    where = f" (`include` at {d.file}:{d.line})"
    out: list[Directive] = []
    for p in paths:
        out.extend(_parse(Path(p), root, budget, depth + 1, where))
    return out


def _subtree(items: list[Directive]) -> Iterator[Directive]:
    """Every directive in `items` and in their blocks, depth first, in order."""
    stack = [iter(items)]
    while stack:
        d = next(stack[-1], None)
        if d is None:
            stack.pop()
            continue
        yield d
        if d.block:
            stack.append(iter(d.block))


def _walk(items: list[Directive], config: NginxConfig) -> None:
    for d in _subtree(items):
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


def read_config(path: str | os.PathLike[str]) -> NginxConfig:
    """Parse an nginx configuration file, following `include` directives.

    Raises `LogFormatError` for a file nginx would refuse, an `include` of
    something other than a regular file, more than `MAX_CONFIG_BYTES` in all,
    more than `MAX_CONFIG_FILES` files or `MAX_INCLUDE_DEPTH` nested includes.
    """
    path = Path(path)
    config = NginxConfig(path)
    _walk(_parse(path, path.parent), config)
    return config


class SeveralFormatsError(LogFormatError):
    """The configuration defines several formats and none is the one to use."""


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
            raise SeveralFormatsError(msg)
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
    return any(
        d.name == "access_log" and len(d.args) > 1 and d.args[1] == name
        for d in _subtree(block)
    )


def realip_from_config(
    path: str | os.PathLike[str], format_name: str
) -> RealIPSettings | None:
    """The realip settings of the server whose `access_log` uses `format_name`.

    Server-level directives override http-level ones, as in nginx. None when
    the configuration has no `set_real_ip_from` (realip is then inactive).
    """
    top = _parse(Path(path), Path(path).parent)
    http = next((d for d in top if d.name == "http" and d.block is not None), None)
    scope = http.block if http and http.block is not None else top
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
    return _settings(merged, path)


def realip_by_access_log(
    path: str | os.PathLike[str],
) -> list[tuple[Directive, RealIPSettings | LogFormatError | None]]:
    """Each `access_log` directive with the realip settings in force where it
    stands (its own block's, else the enclosing ones': a `location`'s, its
    `server`'s, `http`'s, as nginx inherits each directive), in order. None
    where no `set_real_ip_from` applies (realip inactive there); the error
    where they name a header pplog cannot read (raised if that log is read)."""
    empty: dict[str, list[Directive]] = {name: [] for name in _REALIP}
    out: list[tuple[Directive, RealIPSettings | LogFormatError | None]] = []
    top = _parse(Path(path), Path(path).parent)
    # a stack, not recursion: nesting depth costs no Python stack
    stack = [(top, empty)]
    while stack:
        items, outer = stack.pop()
        here = _realip_in(items)
        merged = {name: here[name] or outer[name] for name in _REALIP}
        settings: RealIPSettings | LogFormatError | None = None
        try:
            settings = _settings(merged, path)
        except LogFormatError as exc:
            settings = exc
        out.extend((d, settings) for d in items if d.name == "access_log")
        stack.extend((d.block, merged) for d in reversed(items) if d.block)
    order = {id(d): i for i, d in enumerate(_subtree(top))}  # includes in place
    out.sort(key=lambda pair: order[id(pair[0])])
    return out


def _ranges(d: Directive) -> list[str]:
    """What a `set_real_ip_from` trusts: its address or range, or, for a host
    name, each address it resolves to, as nginx resolves it once at start
    (`localhost`: 127.0.0.1 and ::1)."""
    arg = d.args[0]
    try:
        ipaddress.ip_network(arg, strict=False)
    except ValueError:
        if arg == "unix:":
            return [arg]
    else:
        return [arg]
    try:
        found = socket.getaddrinfo(arg, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        msg = (
            f"set_real_ip_from `{arg}` ({d.file}:{d.line}) is neither an address "
            "nor a host name that resolves here; nginx resolves it when it starts"
        )
        raise LogFormatError(msg) from None
    return sorted({str(info[4][0]).partition("%")[0] for info in found})


def _settings(
    merged: dict[str, list[Directive]], path: str | os.PathLike[str]
) -> RealIPSettings | None:
    """The settings the innermost directives of each kind make (`merged`)."""
    trusted = tuple(r for d in merged["set_real_ip_from"] if d.args for r in _ranges(d))
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
    # nginx reads a flag's `on` and `off` in any case (`ngx_conf_set_flag_slot`)
    flag = merged["real_ip_recursive"]
    recursive = bool(flag) and [a.lower() for a in flag[-1].args[:1]] == ["on"]
    return RealIPSettings(trusted, header, recursive)
