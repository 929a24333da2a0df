"""Paths inside a dataset, reached without following a symbolic link.

The dataset directory itself may be a link (``/data/logs -> /mnt/...``);
nothing inside it may. A cron job runs as www-data today and as root
tomorrow: following ``_pplog/lock -> /etc/passwd`` would truncate the target,
and ``requests -> /elsewhere`` would put the rows (or take them) elsewhere.
So every path below the root is walked one component at a time, each opened
from its parent's descriptor with ``O_NOFOLLOW`` (openat, renameat, linkat,
unlinkat), and the last component is opened, renamed over or removed the same
way: a link swapped in between a check and a use is refused too, not
followed. Readers that hand paths to polars check every component first.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pplog.errors import PplogError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# what opening a link with O_NOFOLLOW (or creating over one) fails with
_LINK_ERRNOS = (errno.ELOOP, errno.ENOTDIR, errno.EEXIST, errno.EMLINK)


class UnsafePathError(PplogError):
    """A path inside a dataset is a symbolic link or leads outside: refused."""


def _link_error(path: Path, target: str) -> UnsafePathError:
    msg = (
        f"`{path}` is a symbolic link (to `{target}`); pplog does not follow links "
        "inside a dataset (only the dataset directory itself may be one): replace "
        "the link with what it points to, or remove it"
    )
    return UnsafePathError(msg)


def _refuse_link(dir_fd: int, name: str, path: Path) -> None:
    """Raise `UnsafePathError` if `name` in `dir_fd` is a symbolic link."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(name, dir_fd=dir_fd)
        except OSError:
            target = "?"
        raise _link_error(path, target)


def _parts(root: Path, path: Path) -> tuple[str, ...]:
    """The components of `path` below `root`; refuse any that climbs out."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = ("..",)
    if any(p in ("..", ".") for p in parts):
        msg = (
            f"`{path}` is outside the dataset `{root}`; the dataset's records are "
            "damaged or were edited: restore them from a backup"
        )
        raise UnsafePathError(msg)
    return parts


@contextlib.contextmanager
def directory(root: Path, path: Path, *, create: bool = False) -> Iterator[int]:
    """A descriptor of the directory `path` (the root or below it).

    Each component below the root is opened with ``O_NOFOLLOW`` from its
    parent, and created first with `create`. Raises `UnsafePathError` for a
    link, `FileNotFoundError` for a missing directory (without `create`).
    """
    parts = _parts(root, path)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # may be a link
    try:
        here = root
        for part in parts:
            here = here / part
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
            try:
                inner = os.open(part, _DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno in _LINK_ERRNOS:
                    _refuse_link(fd, part, here)
                raise
            os.close(fd)
            fd = inner
        yield fd
    finally:
        os.close(fd)


def makedirs(root: Path, path: Path) -> None:
    """Create `path` and its missing parents below `root`, following no link."""
    with directory(root, path, create=True):
        pass


def open_fd(root: Path, path: Path, flags: int, mode: int = 0o644) -> int:
    """`os.open` of `path` below `root`, following no link on the way or at the end."""
    with directory(root, path.parent) as parent:
        try:
            return os.open(
                path.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent
            )
        except OSError as exc:
            if exc.errno in _LINK_ERRNOS:
                _refuse_link(parent, path.name, path)
            raise


def open_write(root: Path, path: Path, *, exclusive: bool = False) -> IO[bytes]:
    """`path` opened for writing from its start (created, or truncated)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    return os.fdopen(open_fd(root, path, flags), "wb")


def read_bytes(root: Path, path: Path) -> bytes:
    """The content of the file `path` below `root`."""
    with os.fdopen(open_fd(root, path, os.O_RDONLY), "rb") as f:
        return f.read()


def lstat(root: Path, path: Path) -> os.stat_result | None:
    """The status of `path` (None when it or a parent is missing).

    Raises `UnsafePathError` when `path` or a directory on the way is a link.
    """
    try:
        with directory(root, path.parent) as parent:
            try:
                st = os.stat(path.name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                return None
            if stat.S_ISLNK(st.st_mode):
                _refuse_link(parent, path.name, path)
            return st
    except FileNotFoundError:
        return None


def check(root: Path, *paths: Path) -> None:
    """Refuse any of `paths` (or a directory on the way) that is a link; for
    readers, which hand the paths to polars. Missing paths are fine."""
    for path in paths:
        lstat(root, path)


def listdir(root: Path, path: Path) -> list[str]:
    """Names in the directory `path`; empty when it is missing."""
    try:
        with directory(root, path) as fd:
            return os.listdir(fd)  # noqa: PTH208 - a descriptor, not a path
    except FileNotFoundError:
        return []


def rename(root: Path, src: Path, dst: Path) -> None:
    """Rename `src` to `dst`, both below `root`; refuse a link at `dst`."""
    with directory(root, src.parent) as a, directory(root, dst.parent) as b:
        _refuse_link(b, dst.name, dst)
        os.rename(src.name, dst.name, src_dir_fd=a, dst_dir_fd=b)


def link(root: Path, src: Path, dst: Path) -> None:
    """Hard-link `src` to the new name `dst` (`FileExistsError` if it exists)."""
    with directory(root, src.parent) as a, directory(root, dst.parent) as b:
        os.link(src.name, dst.name, src_dir_fd=a, dst_dir_fd=b, follow_symlinks=False)


def unlink(root: Path, path: Path) -> bool:
    """Remove the file `path` (a link itself, not its target); whether it was."""
    try:
        with directory(root, path.parent) as parent:
            os.unlink(path.name, dir_fd=parent)
    except FileNotFoundError:
        return False
    return True


def rmtree(root: Path, path: Path) -> None:
    """Remove the directory `path` and everything in it; nothing if missing.

    A link at `path` or on the way is refused; links inside are removed, not
    followed (`shutil.rmtree` with a directory descriptor). Anything else that
    fails is left: removing leftovers is best effort, the next run tries again.
    """
    try:
        with directory(root, path.parent) as parent:
            _refuse_link(parent, path.name, path)
            shutil.rmtree(path.name, ignore_errors=True, dir_fd=parent)
    except FileNotFoundError:
        return


def fsync_dir(root: Path, path: Path) -> None:
    """Make a directory's entries (creations, renames) durable."""
    with directory(root, path) as fd:
        os.fsync(fd)
