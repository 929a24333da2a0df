"""Inputs: paths, globs, directories and stdin as `Source`s, oldest rotation first."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pplog.errors import SourceError

STDIN = "-"


@dataclass(frozen=True)
class Source:
    """One input: a file path or stdin, or a byte range of a plain file.

    `span` is [start, end) in the file: start at the beginning of a line,
    end just after a newline or at the file's end (`split_source` cuts
    them). Its lines keep the file's name, line numbers and offsets.
    """

    name: str
    path: Path | None  # None for stdin
    span: tuple[int, int] | None = None

    @property
    def size(self) -> int:
        """Bytes on disk (0 for stdin or an unreadable file); a span's length."""
        if self.span is not None:
            return self.span[1] - self.span[0]
        if self.path is None:
            return 0
        try:
            return self.path.stat().st_size
        except OSError:
            return 0


def rotation_key(path: Path) -> tuple[str, int, str]:
    """Sort key putting older rotations first.

    access.log.2.gz is older than access.log.1, which is older than access.log.
    """
    m = re.match(r"^(.*?)(?:\.(\d+))?(\.(?:gz|bz2|xz|zst))?$", path.name)
    base, num = (m.group(1), int(m.group(2))) if m and m.group(2) else (path.name, 0)
    return (str(path.parent / base), -num, path.name)


def expand(paths: Sequence[str | os.PathLike[str]]) -> list[Source]:
    """Resolve paths, globs and directories into sources, oldest rotation first.

    A file named twice (by a directory and by itself, or through a link) is
    read once.

    Raises
    ------
    SourceError
        When a path does not exist or a glob or directory matches no file.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    out: list[Source] = []
    for raw in paths:
        text = os.fspath(raw)
        if not text.strip():
            msg = "an empty path was given; pass a log file, a glob, a directory or `-`"
            raise SourceError(msg)
        if text == STDIN:
            out.append(Source("<stdin>", None))
            continue
        path = Path(text)
        if path.is_dir():
            found = sorted(
                (
                    p
                    for p in path.iterdir()
                    if p.is_file() and not p.name.startswith(".")
                ),
                key=rotation_key,
            )
            if not found:
                msg = f"directory `{text}` holds no log files"
                raise SourceError(msg)
            out.extend(Source(str(p), p) for p in found)
        elif path.exists():
            out.append(Source(text, path))
        elif glob.has_magic(text):
            matches = sorted((Path(p) for p in glob.glob(text)), key=rotation_key)
            files = [p for p in matches if p.is_file()]
            if not files:
                msg = f"no file matches `{text}`"
                raise SourceError(msg)
            out.extend(Source(str(p), p) for p in files)
        else:
            msg = f"no such file: `{text}`"
            raise SourceError(msg)
    if not out:
        msg = "no input given; pass a log file, a glob, a directory or `-` for stdin"
        raise SourceError(msg)
    return _once(out)


def _once(found: list[Source]) -> list[Source]:
    """Each file once, where arguments overlap (`logs/` and `logs/api.log`, or a
    link next to its target): the first place it was named wins."""
    seen: set[object] = set()
    out = []
    for src in found:
        key: object = src.name
        if src.path is not None:
            try:
                st = src.path.stat()
                key = (st.st_dev, st.st_ino)
            except OSError:
                key = str(src.path)
        if key not in seen:
            seen.add(key)
            out.append(src)
    return out
