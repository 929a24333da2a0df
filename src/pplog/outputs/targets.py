"""Where one `pplog summarize` writes: outputs, `-o`, rows per output, progress.

`Targets.plan` checks `--to` and `-o` before any reading (usage mistakes are
`OptionError`s, a target that cannot be written a `ReportError`), says how
many rows the summary needs, and `write` writes every output from that one
summary.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pplog._paths import unwritable
from pplog.errors import OptionError, ReportError
from pplog.outputs import write_all
from pplog.outputs._options import ReportOptions

if TYPE_CHECKING:
    from pplog.reports import Summary

TOP = 10  # rows per table unless --top is given
WHOLE = ("csv", "parquet")  # outputs that get every row unless --top says otherwise


@dataclass(frozen=True)
class Targets:
    """The outputs of one run and where each goes.

    `top` is what the summary is computed with; `shown` what each output
    cuts it to (None: as computed).
    """

    names: tuple[str, ...]
    out: Path | None
    as_dir: bool
    top: int
    shown: dict[str, int | None]

    @classmethod
    def plan(cls, names: Sequence[str], output: str | None, top: int | None) -> Targets:
        """Check the outputs against `-o` and each other (`OptionError`), and
        that `-o` can be written (`ReportError`), before any reading: a run
        over a large input is not lost to a typo in its path."""
        names = tuple(dict.fromkeys(names))
        out, as_dir = _output_target(names, output)
        if out is not None:
            why = unwritable(out, directory=as_dir, parents=True)
            if why is not None:
                msg = f"cannot write `{out}`: {why}"
                raise ReportError(msg)
        to_stdout = [
            t for t in names if t == "terminal" or (t == "json" and out is None)
        ]
        if len(to_stdout) > 1:
            msg = (
                "--to terminal and --to json both write to stdout; "
                "add -o FILE for the json"
            )
            raise OptionError(msg)
        # csv and parquet get whole tables unless --top says otherwise (a cron job
        # turning logs into Parquet wants every client); the others show the top
        # rows, cut from the same summary
        if top is None and any(t in WHOLE for t in names):
            shown = {t: None if t in WHOLE else TOP for t in names}
            return cls(names, out, as_dir, 0, shown)
        return cls(
            names, out, as_dir, TOP if top is None else top, dict.fromkeys(names)
        )

    def write(
        self, summary: Summary, *, width: int | None = None, color: bool | None = None
    ) -> None:
        """Write every output: the files all or none, then stdout."""
        if self.out is not None and self.as_dir and not self.out.exists():
            try:
                self.out.mkdir(parents=True)  # file outputs share one directory
            except OSError as exc:
                msg = f"cannot create the directory `{self.out}`: {exc.strerror or exc}"
                raise ReportError(msg) from exc
        jobs = [
            (
                name,
                ReportOptions(
                    out=None if name == "terminal" else self.out,
                    width=width,
                    color=color,
                    top=self.shown[name],
                ),
            )
            for name in self.names
        ]
        write_all(summary, jobs)


def _output_target(
    targets: tuple[str, ...], raw: str | None
) -> tuple[Path | None, bool]:
    """Check `-o` against the outputs before any work; (target, is a directory).

    Several file outputs need a directory; csv and parquet always do; html
    needs a file or a directory; `-o -` means stdout (json only); `-o` with
    only the terminal would be ignored, so it is refused. An existing file is
    never overwritten by a run that needs a directory.
    """
    files = [t for t in targets if t != "terminal"]
    output = None if raw is None else Path(raw)
    if raw is not None and not files:
        msg = (
            "-o is for file outputs; add --to json, csv, parquet or html "
            "(--to terminal writes to stdout)"
        )
        raise OptionError(msg)
    if raw == "-":
        if files != ["json"]:
            msg = "-o - (stdout) works for --to json only"
            raise OptionError(msg)
        return None, False
    if output is None:
        needs = [t for t in files if t in ("csv", "parquet", "html")]
        if needs:
            what = "a file (html) or directory" if needs == ["html"] else "a directory"
            msg = f"--to {needs[0]} writes files: give {what} with -o"
            raise OptionError(msg)
        return None, False
    as_dir = (
        len(files) > 1
        or any(t in WHOLE for t in files)
        or (raw is not None and raw.endswith(("/", os.sep)))
        or output.is_dir()
    )
    if as_dir and output.exists() and not output.is_dir():
        msg = (
            f"-o `{output}` is a file, but --to {' --to '.join(files)} writes into a "
            "directory; give a directory"
        )
        raise OptionError(msg)
    return output, as_dir


@contextlib.contextmanager
def progress(
    enabled: bool | None = None, *, color: bool | None = None
) -> Iterator[Callable[[int, int | None], None] | None]:
    """A reading progress bar on stderr (None: when stderr is a terminal),
    without colours or styles when `color` is False (`--no-color`).

    Yields the `on_progress` handler for `pplog.summarize`, or None.
    """
    if not (sys.stderr.isatty() if enabled is None else enabled):
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True, color_system=None if color is False else "auto")
    with Progress(
        SpinnerColumn(),
        "reading",
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("read", total=None)
        yield lambda n, total: bar.update(task, advance=n, total=total)
