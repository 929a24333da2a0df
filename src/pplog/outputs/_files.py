"""File writes for outputs: atomic for regular files, straight through otherwise."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from pplog._paths import writes_through
from pplog.errors import ReportError


class Staging:
    """Files written under temporary names, made visible together by `publish`.

    Several outputs of one run (`--to json --to html -o DIR`) either all
    appear or none does: a later output that fails must not leave the earlier
    ones behind as if the run had worked.
    """

    def __init__(self) -> None:
        self._moves: list[tuple[Path, Path]] = []
        self._removals: list[Path] = []

    def add(self, tmp: Path, target: Path) -> None:
        """Move `tmp` over `target` on `publish`."""
        self._moves.append((tmp, target))

    def remove(self, path: Path) -> None:
        """Delete `path` (a stale table) on `publish`."""
        self._removals.append(path)

    def publish(self) -> None:
        """Move every staged file into place, then delete the stale ones."""
        done: list[Path] = []
        for tmp, target in self._moves:
            try:
                tmp.replace(target)
            except OSError as exc:
                self.discard()
                written = ", ".join(f"`{p}`" for p in done) or "none"
                msg = (
                    f"cannot write `{target}`: {exc.strerror or exc} (already "
                    f"written: {written}); free the target and run again"
                )
                raise ReportError(msg) from exc
            done.append(target)
        self._moves.clear()
        for path in self._removals:
            path.unlink(missing_ok=True)
        self._removals.clear()

    def discard(self) -> None:
        """Delete every staged file that was not moved into place."""
        for tmp, _ in self._moves:
            _remove(tmp)
        self._moves.clear()
        self._removals.clear()


def atomic_write(
    target: Path, write: Callable[[Path], object], staging: Staging | None = None
) -> None:
    """Call `write(tmp)`, then move tmp over `target`: no reader sees half a file.

    With `staging`, the move waits for `staging.publish()`. Devices
    (`/dev/stdout`), named pipes and symlinks are written through, never
    replaced.
    """
    if writes_through(target):
        try:
            write(target)
        except BrokenPipeError:  # `-o /dev/stdout | head`: ended as stdout's is
            raise
        except OSError as exc:
            msg = f"cannot write `{target}`: {exc.strerror or exc}"
            raise ReportError(msg) from exc
        return
    tmp = target.with_name(f".{target.name}.pplog-tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)  # -o makes what it names
        write(tmp)
        if staging is None:
            tmp.replace(target)
        else:
            staging.add(tmp, target)
    except OSError as exc:
        _remove(tmp)
        msg = f"cannot write `{target}`: {exc.strerror or exc}"
        raise ReportError(msg) from exc
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: Path) -> None:
    """Delete a temporary file; one that is not ours (a directory) stays."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)
