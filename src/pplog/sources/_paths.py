"""Inputs: paths, globs, dirs, URLs and stdin as `Source`s, oldest rotation first."""

from __future__ import annotations

import errno
import functools
import glob
import os
import re
import shlex
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePath, PurePosixPath

from pplog._text import valid_text
from pplog.errors import OptionError, SourceError, described
from pplog.sources._decompress import compression_of, inflated_prefix
from pplog.sources._urls import expand_url, is_url

STDIN = "-"
STDIN_NAME = "<stdin>"  # how stdin is named in messages and `source`


@dataclass(frozen=True)
class Source:
    """One input: a file path, an object's URL or stdin, or a byte range of a
    plain file.

    `span` is [start, end) in the file: start at the beginning of a line,
    end just after a newline or at the file's end (`split_source` cuts
    them). Its lines keep the file's name, line numbers and offsets.
    `url` names an object read through fsspec (`path` is then None), and
    `url_size` is its size as listed, so that no request asks it again.
    `pipe`: the path is a pipe named by the user (`<(zcat x.gz)`,
    `/dev/stdin`, a FIFO), read once as stdin is (`sources._pipes`).
    `skip`: why the input is not opened (a FIFO a glob or a directory
    matched: opening it waits for a writer); its reader reports it.
    """

    name: str
    path: Path | None  # None for stdin and URLs
    span: tuple[int, int] | None = None
    url: str | None = None
    url_size: int = 0
    pipe: bool = False
    skip: str | None = None

    @property
    def is_stdin(self) -> bool:
        """Whether this is the process's standard input."""
        return self.path is None and self.url is None

    @property
    def is_stream(self) -> bool:
        """Whether the input can be read once only, its size unknown: stdin
        or a pipe named by path."""
        return self.is_stdin or self.pipe

    @property
    def size(self) -> int:
        """Bytes on disk or in storage (0 for stdin, a pipe or an unreadable
        file); a span's length."""
        if self.span is not None:
            return self.span[1] - self.span[0]
        if self.url is not None:
            return self.url_size
        if self.path is None or self.pipe or self.skip is not None:
            return 0
        try:
            return self.path.stat().st_size
        except OSError:
            return 0


def path_name(path: str | os.PathLike[str]) -> str:
    r"""The text that names `path` in rows, reports, warnings and a dataset's
    state: the path itself, each byte of it that is not UTF-8 (a file named
    in Latin-1) written ``\xe9`` (`valid_text`); files are opened by their
    `Path`, never by this name.

    >>> path_name("/var/log/nginx/lat\udce9.log")
    '/var/log/nginx/lat\\xe9.log'
    """
    return valid_text(os.fspath(path))


_ESCAPED_BYTE = re.compile(rb"\\x([0-9a-f]{2})")


def path_of_name(name: str) -> Path:
    r"""The path a name names: itself, or when no such file exists and the
    name holds `path_name`'s ``\xHH`` escapes, those bytes put back.

    A dataset's state keeps names (`path_name`); a file whose name is not
    UTF-8 is found again by this.
    """
    path = Path(name)
    if "\\x" not in name or path.exists():
        return path
    raw = _ESCAPED_BYTE.sub(lambda m: bytes([int(m.group(1), 16)]), name.encode())
    return Path(os.fsdecode(raw))


def shell_word(name: str) -> str:
    r"""`name` quoted for a shell command a warning suggests: ``$'...'``
    where the file's name is not UTF-8 (bash and zsh read ``\xe9`` in it as
    the byte), else as `shlex.quote` quotes it."""
    if "\\x" in name and not Path(name).exists() and path_of_name(name).exists():
        return "$'" + name.replace("'", "\\'") + "'"
    return shlex.quote(name)


_COMPRESSED = r"(?:\.(?:gz|bz2|xz|zst))?"
_NUMBERED = re.compile(rf"^(.*?)(?:\.(\d+))?{_COMPRESSED}$")
# logrotate's `extension .log` with `dateext` keeps the log's own suffix last,
# before the compression's: access.log rotates to access-20261205.log.gz. The
# suffix is a word (not a number, not a compression). Its numbered names
# (access.1.log) are not read as rotations: a number before the suffix is as
# often a port or an instance (access.8080.log, app.1.log and app.2.log), logs
# of their own, and a file name alone cannot tell them apart
_EXTENSION = r"(\.(?!(?:gz|bz2|xz|zst)\b)[A-Za-z][A-Za-z0-9]*)"
# logrotate's `dateext`: `-%Y%m%d` by default (RHEL, Amazon Linux), `-%Y%m%d%H`
# when hourly, `-%Y%m%d-%s`, `-%Y%m%d%H%M%S` or `-%Y-%m-%d` as `dateformat` is
# often set; the `extension` after it
_DATED = re.compile(
    r"^(.+?)[-_.]((?:19|20|21)\d\d)(-?)(0[1-9]|1[0-2])\3(0[1-9]|[12]\d|3[01])"
    r"(?:-?([01]\d|2[0-3])(?:([0-5]\d)([0-5]\d)?)?)?"
    rf"(?:-(\d{{9,11}}))?{_EXTENSION}?{_COMPRESSED}$"
)
# dated rotations sort before numbered ones and the live file, oldest first
_DATED_BEFORE = -(10**30)


def rotation_key(path: PurePath | str) -> tuple[str, int, str]:
    """Sort key putting older rotations first; its first item names the
    rotation set.

    access.log.2.gz is older than access.log.1, which is older than
    access.log; with logrotate's `dateext`, access.log-20261204.gz is older
    than access.log-20261205, which is older than access.log. With its
    `extension .log`, access-20261205.log.gz is a rotation of access.log too
    (access-api.log is a log of its own; access.1.log and access.8080.log
    are too, see `_EXTENSION`). A rotation numbered 0 (`start 0`) is older
    than the live file. A string is a URL (`s3://bucket/logs/access.log.1.gz`),
    keyed by its path.

    Examples
    --------
    >>> names = ["access.log", "access.log-20261205", "access.log-20261204.gz"]
    >>> sorted(names, key=rotation_key)
    ['access.log-20261204.gz', 'access.log-20261205', 'access.log']
    >>> names = ["access.log", "access-20261205.log", "access-20261204.log.gz"]
    >>> sorted(names, key=rotation_key)
    ['access-20261204.log.gz', 'access-20261205.log', 'access.log']
    >>> {rotation_key(n)[0] for n in names}
    {'access.log'}
    """
    return _rotation_key(path)


@functools.lru_cache(maxsize=1 << 16)  # sorts and set checks ask again and again
def _rotation_key(path: PurePath | str) -> tuple[str, int, str]:
    if isinstance(path, str):
        path = PurePosixPath(path)
    dated = _DATED.match(path.name)
    if dated is not None:
        base, year, _, month, day, hour, minute, second, epoch, ext = dated.groups()
        when = f"{year}{month}{day}{hour or '00'}{minute or '00'}{second or '00'}"
        stamp = int(when) * 10**11 + int(epoch or 0)
        return (
            str(path.parent / (base + (ext or ""))),
            _DATED_BEFORE + stamp,
            path.name,
        )
    # numbered from 1, or from 0 (`start 0`): older than the live file either way
    m = _NUMBERED.match(path.name)
    if m is None or m.group(2) is None:
        return (str(path.parent / path.name), 0, path.name)
    return (str(path.parent / m.group(1)), -int(m.group(2)) - 1, path.name)


def expand(paths: Sequence[str | os.PathLike[str]]) -> list[Source]:
    """Resolve paths, globs, directories and URLs into sources, oldest
    rotation first.

    A file named twice (by a directory and by itself, or through a link) is
    read once. A pipe named by path (`<(zcat x.gz)`, `/dev/stdin`, a FIFO)
    is read once, as stdin is; a FIFO that a glob or a directory matches is
    not opened (that waits for a writer) but kept to be reported as
    skipped. A URL (`s3://bucket/logs/`, `s3://bucket/logs/access.log*`,
    any fsspec protocol) names an object, a prefix read like a directory, or
    a glob; its sources keep the URL as their name.

    Raises
    ------
    SourceError
        When a path or object does not exist, a glob, directory or prefix
        matches no file, or a URL's fsspec backend is missing or fails.
    """
    out: list[Source] = []
    for text in path_list(paths):
        if not text.strip() and not os.path.lexists(text):  # a file named " " is one
            msg = "an empty path was given; pass a log file, a glob, a directory or `-`"
            raise SourceError(msg)
        if text == STDIN:
            out.append(Source(STDIN_NAME, None))
            continue
        if is_url(text):
            objects = [
                Source(name, None, url=url, url_size=size)
                for name, url, size in expand_url(text)
            ]
            out.extend(sorted(objects, key=lambda s: rotation_key(s.name)))
            continue
        path = Path(text)
        if path.is_dir():
            shown = (p for p in path.iterdir() if not p.name.startswith("."))
            found = sorted((p for p in shown if _listed(p)), key=rotation_key)
            if not found:
                msg = f"directory `{text}` holds no log files"
                if is_dataset_dir(path):
                    msg = (
                        f"`{text}` is a pplog dataset (written by `pplog ingest`), "
                        "not a directory of logs: give it as the only PATH of "
                        "`summarize` or `doctor` (in Python, `scan_dataset`)"
                    )
                raise SourceError(msg)
            out.extend(_matched(p) for p in found)
        elif path.exists() or _link_loop(path):
            # a link loop is reported by the reader, as other unreadable files
            out.append(Source(path_name(text), path, pipe=_is_pipe(path)))
        elif glob.has_magic(text):
            matches = sorted((Path(p) for p in glob.glob(text)), key=rotation_key)
            files = [p for p in matches if _listed(p)]
            if not files:
                msg = f"no file matches `{text}`"
                raise SourceError(msg)
            out.extend(_matched(p) for p in files)
        else:
            msg = f"no such file: `{text}`"
            raise SourceError(msg)
    if not out:
        msg = "no input given; pass a log file, a glob, a directory or `-` for stdin"
        raise SourceError(msg)
    return being_compressed(_once(out))


def path_list(paths: object, name: str = "source") -> list[str]:
    """`paths` (one path or an iterable of them: text, bytes or `PathLike`)
    as a list of text, or an `OptionError` naming argument `name`.

    A notebook passes what it has at hand: ``b"/var/log/x.log"`` is a path
    (not 16 numbers), a pandas frame is not a list of paths (its column
    names would be taken for files), ``None`` is no input.
    """
    if hasattr(paths, "__arrow_c_stream__") or hasattr(paths, "__dataframe__"):
        kind = f"{type(paths).__module__.partition('.')[0]}.{type(paths).__name__}"
        msg = f"`{name}` takes paths, globs or directories, not a {kind}"
        if not kind.startswith("polars."):
            msg = (
                f"`{name}` is a {kind}: pplog's tables read polars frames; convert "
                "it with `pl.from_pandas(...)` or `pl.from_arrow(...)` (with the "
                "columns `read_log` gives)"
            )
        raise OptionError(msg)
    takes = f"`{name}` takes paths, globs or directories (text or `Path`), not"
    if isinstance(paths, str | bytes | os.PathLike):
        paths = [paths]
    elif not isinstance(paths, Iterable):
        msg = f"{takes} {described(paths)}"
        raise OptionError(msg)
    out = []
    for raw in paths:
        if not isinstance(raw, str | bytes | os.PathLike):
            msg = f"{takes} {described(raw)}"
            raise OptionError(msg)
        out.append(os.fsdecode(raw))
    return out


def is_dataset_dir(path: Path) -> bool:
    """Whether directory `path` looks like a dataset `pplog ingest` wrote
    (its `_pplog` directory), so that it is named as one where a command
    wants logs (`batch.state.is_dataset` is the test the readers use)."""
    return os.path.lexists(path / "_pplog")


def _link_loop(path: Path) -> bool:
    """Whether `path` is a symbolic link that leads back to itself."""
    try:
        path.stat()
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


# why a FIFO that a glob or a directory matched is not read
SKIPPED_FIFO = (
    "skipped: a named pipe (FIFO), which waits for a writer; "
    "name it on its own to read it"
)


def _is_pipe(path: Path) -> bool:
    """Whether `path` is a pipe (a FIFO, `/dev/stdin` on a pipe, `<(...)`);
    `stat` opens nothing."""
    try:
        return stat.S_ISFIFO(path.stat().st_mode)
    except OSError:
        return False


def _matched(path: Path) -> Source:
    """A file a glob or a directory matched: a FIFO among them, or a link
    that leads to no log (`not_a_log`), is kept, to be reported as skipped,
    never opened."""
    skip = not_a_log(path) or (SKIPPED_FIFO if _is_pipe(path) else None)
    return Source(path_name(path), path, skip=skip)


def _listed(path: Path) -> bool:
    """Whether a directory's entry or a glob's match is an input: a file or
    a FIFO, or a link that leads to neither (said once, as skipped)."""
    return path.is_file() or path.is_fifo() or not_a_log(path) is not None


# where a link leads to a process's standard streams, not to a file of lines
# written before: nginx's official image links its logs to /dev/stdout and
# /dev/stderr, which are then the reader's own output (a terminal, a pipe,
# or the file it is redirected to, read back as if nginx had written it).
# Other links into /dev (a log kept on /dev/shm) are read as their files are.
_STREAMS = re.compile(r"^/(?:dev/(?:stdout|stderr|stdin|fd/)|proc/(?:self|\d+)/fd/)")


def not_a_log(path: Path) -> str | None:
    """Why a path is not read as a log: a symbolic link that leads back to
    itself, to nothing, or to a process's standard stream (a container's
    `access.log -> /dev/stdout`: the reader's own output), or the file this
    process's stdout or stderr is redirected to (``pplog top logs/ > logs/top.jsonl``
    would read what it writes); None for any other path."""
    try:
        target = str(path.readlink())
    except OSError:
        return _own_output(path)  # not a link
    if _STREAMS.match(target):
        return (
            f"skipped: a link to {target}, not a log file (in a container, "
            "nginx's lines go to its output: `docker logs`)"
        )
    if _link_loop(path):
        return "skipped: a symbolic link loop"
    if not path.exists():
        return f"skipped: a link to {target}, which does not exist"
    return _own_output(path)  # a link to the file stdout is redirected to


def _own_output(path: Path) -> str | None:
    """Why `path` is skipped when it is the file stdout or stderr writes to."""
    own = set()
    for fd in (1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):  # a terminal or a pipe is no file to list
            own.add((st.st_dev, st.st_ino))
    if not own:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    if (st.st_dev, st.st_ino) in own:
        return "skipped: pplog's own output (its stdout or stderr is written there)"
    return None


def _stdin_pipe() -> tuple[int, int] | None:
    """The (device, inode) of stdin when it is a pipe, else None."""
    try:
        st = os.fstat(0)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISFIFO(st.st_mode) else None


# what a compressed file's name ends with, and the bytes of its head compared
# with its plain twin's (read from the compressed file: a bz2 block is up to
# 900 KiB)
_COMPRESSED_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}
_TWIN_HEAD = 4096
_TWIN_READ = 1 << 20


def being_compressed(found: list[Source]) -> list[Source]:
    """`found` with each compressed file whose plain twin is an input too
    (`access.log.2.gz` and `access.log.2`) and begins with the same bytes
    skipped: logrotate's `compress` writes the `.gz` beside the file and
    removes the file only once it is done, so for the seconds or minutes that
    takes both are there, and each line read from both counted twice (a
    sweep: 5,190 lines for 3,200). The plain file is whole meanwhile; the
    compressed one is read when its twin is gone."""
    plain = {
        src.path: src
        for src in found
        if src.path is not None and src.skip is None and not src.pipe
    }
    out = []
    for src in found:
        path = src.path if src.skip is None and not src.pipe else None
        kind = _COMPRESSED_SUFFIXES.get(path.suffix) if path is not None else None
        twin = plain.get(path.with_suffix("")) if path is not None else None
        if (
            path is not None
            and kind
            and twin
            and twin.path is not None
            and _same_head(twin.path, path, kind)
        ):
            src = replace(
                src,
                skip=f"skipped: `{twin.name}` being compressed into it "
                f"(logrotate); its lines are read from `{twin.name}`",
            )
        out.append(src)
    return out


def _same_head(plain: Path, packed: Path, kind: str) -> bool:
    """Whether `packed` decompresses to the first bytes of `plain` (at
    least one line's worth, up to `_TWIN_HEAD`)."""
    try:
        with plain.open("rb") as f:
            head = f.read(_TWIN_HEAD)
        with packed.open("rb") as f:
            data = f.read(_TWIN_READ)
    except OSError:
        return False
    if compression_of(data) != kind:
        return False
    inflated = inflated_prefix(data, kind, _TWIN_HEAD)
    n = min(len(head), len(inflated))
    return n > 0 and b"\n" in head[:n] and head[:n] == inflated[:n]


def _once(found: list[Source]) -> list[Source]:
    """Each file once, where arguments overlap (`logs/` and `logs/api.log`, or a
    link next to its target): the first place it was named wins."""
    seen: set[object] = set()
    out = []
    for src in found:
        key: object = src.name if src.url is None else src.url
        if src.is_stdin:  # `-` and `/dev/stdin` are one pipe, read once
            key = _stdin_pipe() or key
        elif src.path is not None and src.skip is None:  # each skip is said
            try:
                st = src.path.stat()
                key = (st.st_dev, st.st_ino)
            except OSError:
                key = str(src.path)
        if key not in seen:
            seen.add(key)
            out.append(src)
    return out
