"""Small path facts shared by every layer that writes files."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def writes_through(target: Path) -> bool:
    """True for targets that must not be replaced: devices, pipes, symlinks."""
    return target.is_symlink() or (target.exists() and not target.is_file())


def unwritable(
    target: Path, *, directory: bool = False, parents: bool = False
) -> str | None:
    """Why `target` cannot be written, as the write would fail; None if it can.

    Checked before any reading, so that a run over a large input is not lost
    to a typo in its output path. A regular file is written next to itself
    (under a temporary name, then renamed); a device, pipe or link is written
    through; a `directory` output is filled, or created when its parent is
    there. With `parents` (`-o`, which makes the directories it names, as
    it always has), missing directories are fine if the nearest one there
    can hold them; without, a missing one is the answer (``No such file or
    directory (`/nonexistent`)``), as `open` would say.
    """
    if parents:
        want = target if directory else target.parent
        folder = want
        while not os.path.lexists(folder) and folder.parent != folder:
            folder = folder.parent  # the nearest directory there
        if folder != want:
            return _dir_problem(folder)
    try:
        mode: int | None = target.stat().st_mode  # through links (/dev/stdout)
    except OSError:
        mode = None
    if directory:
        if mode is None:
            return _dir_problem(target.parent)  # the output creates `target`
        if not stat.S_ISDIR(mode):
            return f"{os.strerror(errno.ENOTDIR)} (`{target}`)"
        return _dir_problem(target)
    if mode is not None and stat.S_ISDIR(mode):
        return os.strerror(errno.EISDIR)
    if mode is not None and (target.is_symlink() or not stat.S_ISREG(mode)):
        return None if os.access(target, os.W_OK) else _denied(target)
    if mode is None and target.is_symlink():  # dangling: makes what it names
        return _dir_problem(Path(os.path.realpath(target)).parent)
    return _dir_problem(target.parent)


def _dir_problem(folder: Path) -> str | None:
    """Why no file can be created in `folder`; None if one can."""
    try:
        mode = folder.stat().st_mode
    except OSError as exc:
        return f"{exc.strerror or exc} (`{folder}`)"
    if not stat.S_ISDIR(mode):
        return f"{os.strerror(errno.ENOTDIR)} (`{folder}`)"
    if not os.access(folder, os.W_OK | os.X_OK):
        return _denied(folder)
    return None


def _denied(path: Path) -> str:
    """Permission denied, or a read-only filesystem (which `access` also refuses)."""
    try:
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return f"{os.strerror(errno.EROFS if read_only else errno.EACCES)} (`{path}`)"
