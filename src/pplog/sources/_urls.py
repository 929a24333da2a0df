"""Inputs named by fsspec URLs (`s3://bucket/prefix/`): listing and opening.

fsspec is imported here only, when a URL is given, so local runs never need
it. Credentials and endpoints are fsspec's and its backends' business (s3fs
reads the `AWS_*` variables and `~/.aws`); nothing here reads the
environment. Every failure of a backend (a missing object, no credentials,
an unreachable endpoint) leaves this module as `SourceError` when listing
and `OSError` when reading, so the readers report it as they report a local
file's.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
from typing import IO, TYPE_CHECKING, Any, cast

from pplog.errors import SourceError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

# a scheme of two or more characters, then `://` (fsspec's protocols)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
# protocols whose backend pplog installs as an extra
_EXTRAS = {"s3": "s3", "s3a": "s3"}
# Bytes fetched past each read (fsspec's "readahead" cache). s3fs's default
# is 50 MiB, which format detection would fetch for each head it reads; the
# readers ask for 8 MiB at a time, so 4 MiB more makes one request per 12 MiB.
_BLOCK = 4 << 20


def is_url(text: str) -> bool:
    """Whether `text` names an input by URL (`s3://...`) rather than by path."""
    return _URL.match(text) is not None


def _protocol(url: str) -> str:
    return url.split("://", 1)[0].lower()


def _install_hint(url: str) -> str:
    protocol = _protocol(url)
    extra = _EXTRAS.get(protocol)
    if extra is not None:
        return f"pip install 'pplog[{extra}]'"
    return f"pip install fsspec and the fsspec package for `{protocol}://`"


def _filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """fsspec's filesystem for `url` and the path in it; `SourceError` when the
    protocol is unknown or its package is missing."""
    try:
        from fsspec.core import url_to_fs
    except ImportError as exc:
        msg = f"reading `{url}` needs fsspec: {_install_hint(url)}"
        raise SourceError(msg) from exc
    try:
        return url_to_fs(url)  # type: ignore[no-any-return]
    except ImportError as exc:
        msg = f"reading `{url}` needs a package that is missing: {_install_hint(url)}"
        raise SourceError(msg) from exc
    except ValueError as exc:  # fsspec: "Protocol not known: ..."
        msg = (
            f"cannot read `{url}`: {exc}; pass a local path or a URL fsspec "
            "knows (`s3://bucket/prefix/`)"
        )
        raise SourceError(msg) from exc
    except Exception as exc:  # noqa: BLE001 - any backend's constructor
        # a backend that needs arguments a URL cannot carry (github://,
        # dbfs://), a server that refuses (ftp://), a URL of the wrong shape
        msg = (
            f"cannot read `{url}`: {_reason(exc)}; check the URL (or pass a local path)"
        )
        raise SourceError(msg) from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _access_hint(url: str) -> str:
    if _protocol(url) in _EXTRAS:
        return (
            "check the credentials and the endpoint (`AWS_ACCESS_KEY_ID`, "
            "`AWS_PROFILE`, `AWS_ENDPOINT_URL`...)"
        )
    return "check the URL and the credentials its fsspec backend reads"


def expand_url(url: str) -> list[tuple[str, str, int]]:
    """The objects `url` names, as (name, URL, size), in listing order.

    An object is itself; a prefix (`s3://bucket/logs/`, or a bucket) lists
    the objects right under it, leaving out names starting with `.`, as a
    directory is read; a URL with glob characters expands through fsspec's
    glob. Sizes come from the listing: no request per object.

    Raises
    ------
    SourceError
        When nothing exists at `url`, a prefix or glob holds no objects, the
        backend is not installed, or listing fails (credentials, endpoint).
    """
    fs, root = _filesystem(url)
    magic = any(c in root for c in "*?[")
    # with its slash a prefix is a prefix, even where an object has its name
    # (`logs` beside `logs/access.log`)
    prefix = url.endswith("/")
    try:
        literal = _object(fs, root) if magic and not prefix else None
        if literal is not None:  # a key with `[` in it names itself, as a file does
            return [(url, fs.unstrip_protocol(literal["name"]), _size(literal))]
        if magic:
            found: dict[str, dict[str, Any]] = fs.glob(root, detail=True)
            # an object beside a prefix of its name (`logs`, `logs/x.log`)
            # comes back from the glob as the prefix alone
            for name, info in list(found.items()):
                if info.get("type") == "directory":
                    found[name] = _object(fs, name) or info
            if not any(info.get("type") == "file" for info in found.values()):
                msg = f"no object matches `{url}`; check the bucket, prefix and pattern"
                raise SourceError(msg)
        else:
            info = _info(fs, root, url)
            if info.get("type") == "file" and not prefix:
                return [(url, fs.unstrip_protocol(info["name"]), _size(info))]
            listed = fs.ls(root.rstrip("/") + "/", detail=True)
            itself = root.rstrip("/")
            found = {}
            for i in listed:  # an object and a prefix of one name: both listed
                name = i["name"]
                if _hidden(name) or name.rstrip("/") == itself:
                    continue
                if name not in found or i.get("type") == "file":
                    found[name] = i
            if not any(i.get("type") == "file" for i in found.values()):
                msg = (
                    f"prefix `{url}` holds no log files; name the objects or a "
                    "prefix that holds them"
                )
                raise SourceError(msg)
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - any backend's error is one line
        msg = f"cannot list `{url}`: {_reason(exc)}; {_access_hint(url)}"
        raise SourceError(msg) from exc
    files = sorted(i["name"] for i in found.values() if i.get("type") == "file")
    out = []
    for path in files:
        full = fs.unstrip_protocol(path)
        out.append((full, full, _size(found[path])))
    return out


def _object(fs: AbstractFileSystem, root: str) -> dict[str, Any] | None:
    """The object whose name is `root` itself, glob characters and all."""
    try:
        info = fs.info(root)
    except (FileNotFoundError, ValueError):
        return None
    return info if info.get("type") == "file" else None


def _info(fs: AbstractFileSystem, root: str, url: str) -> dict[str, Any]:
    try:
        return fs.info(root)  # type: ignore[no-any-return]
    except FileNotFoundError as exc:
        msg = f"no such object or prefix: `{url}`; check the bucket and the key"
        raise SourceError(msg) from exc


def _hidden(path: str) -> bool:
    return path.rstrip("/").rsplit("/", 1)[-1].startswith(".")


def _size(info: dict[str, Any]) -> int:
    size = info.get("size")
    return int(size) if isinstance(size, int | float) else 0


class _Remote(io.BufferedIOBase):
    """A backend's file as bytes whose every failure is an `OSError`, raised
    only after the bytes read before it were handed out.

    `peek` is what `open_stream` reads the magic bytes with; fsspec's files
    have none. (`io.BufferedReader` would give one, but it drops the bytes
    it holds when the raw read under it fails.)
    """

    def __init__(self, f: IO[bytes]) -> None:
        super().__init__()
        self._f = f
        self._head = b""  # peeked, not yet read
        self._error: OSError | None = None  # raised by the next read

    def readable(self) -> bool:
        return True

    def peek(self, n: int = 1) -> bytes:
        if len(self._head) < n and self._error is None:
            self._head += self._take(n - len(self._head))
        return self._head

    def read(self, n: int | None = -1) -> bytes:
        head, self._head = self._head, b""
        if n is not None and 0 <= n <= len(head):
            self._head = head[n:]
            return head[:n]
        if self._error is not None:
            if head:
                return head
            error, self._error = self._error, None
            raise error
        want = -1 if n is None or n < 0 else n - len(head)
        try:
            return head + self._take(want)
        except OSError as exc:
            if not head:
                raise
            self._error = exc
            return head

    def _take(self, n: int) -> bytes:
        try:
            return self._f.read(n)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - a backend's error, as a read error
            raise OSError(_reason(exc)) from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):  # nothing is left to read from it
            self._f.close()
        super().close()


def open_url(url: str) -> IO[bytes]:
    """The object at `url`, opened for reading as bytes (no decompression:
    the readers judge compression by magic bytes, as for local files).

    Raises
    ------
    OSError
        For every failure, a missing object included (`ENOENT`).
    SourceError
        When the backend is not installed.
    """
    fs, path = _filesystem(url)
    try:
        f = fs.open(path, "rb", block_size=_BLOCK)
    except FileNotFoundError as exc:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), url) from exc
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - a backend's error, as a read error
        msg = f"{_reason(exc)}; {_access_hint(url)}"
        raise OSError(msg) from exc
    return cast("IO[bytes]", _Remote(f))
