"""Staged Parquet files of one run: per batch, stream and partition; zstd, fsynced.

Each batch's rows of one (kind, stream, date) become one file under
``_pplog/staging/<run>/`` at the path it will have once published, so a
stream whose file failed mid-read can be dropped from the run without
touching the others. Each file's rollup (`rollup`: the `Partial` of exactly
its rows) is staged with it and named in the same commit. A large backlog
makes several files per partition; compaction merges them later, through
the commit log.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pplog.batch import _fs, rollup
from pplog.batch.state import ROLLUP, ZSTD_LEVEL, DiskFullError, Layout
from pplog.clientip import ProxyPolicy
from pplog.enrich.useragents import ANSWERS
from pplog.errors import PplogError
from pplog.schema import HTTP_USER_AGENT
from pplog.tasks import AGENTS

_PREFIX = {"data": "part", "rejects": "rejects"}


@dataclass
class _File:
    kind: str
    stream: str | None  # None: several streams', read whole (`Reader._flush`)
    date: str
    staged: Path
    final: Path
    rows: int
    of: str | None = None  # a rollup: the file it summarizes


def _write(frame: pl.DataFrame, root: Path, path: Path) -> None:
    # encoded in memory, written by Python: a full disk (ENOSPC, EFBIG) is then an
    # OSError with its errno, which polars would report as a ComputeError without
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd", compression_level=ZSTD_LEVEL)
    with _fs.open_write(root, path, exclusive=True) as f:
        f.write(buf.getbuffer())
        f.flush()
        os.fsync(f.fileno())


# user agents whose answers a run keeps for its next files (`_Agents`)
KNOWN_AGENTS = 100_000


class _Agents:
    """The user agents' answers a run's rollups gave so far, up to
    `KNOWN_AGENTS` of them: each is parsed once per run, not once per file.
    Used by one rollup at a time."""

    def __init__(self) -> None:
        self.known: pl.DataFrame | None = None

    def learn(self, answers: pl.DataFrame | None) -> None:
        if answers is None or (
            self.known is not None and self.known.height >= KNOWN_AGENTS
        ):
            return
        answers = answers.select(ANSWERS)
        known = answers if self.known is None else pl.concat([self.known, answers])
        self.known = known.unique(HTTP_USER_AGENT, keep="first", maintain_order=True)


def _rollup(
    frame: pl.DataFrame,
    layout: Layout,
    summary: Path,
    of: str,
    agents: _Agents,
    policy: ProxyPolicy | None,
) -> None:
    """Map the rows' rollup and write it (in its own writer thread, beside
    the one writing the rows)."""
    partial = rollup.partial_of_rows(
        frame, classified=True, known=agents.known, policy=policy
    )
    agents.learn(partial.get(AGENTS))
    data = rollup.encode(partial, of=of, rows=frame.height, policy=policy)
    rollup.write(layout, summary, data)


class StagingError(PplogError):
    """A staged file could not be written: nothing was committed."""


def _staging_error(exc: OSError) -> PplogError:
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        msg = f"disk full while staging new rows{where}; nothing was committed"
        return DiskFullError(msg)
    msg = (
        f"cannot write the dataset's staging files{where}: "
        f"{exc.strerror or exc}; nothing was committed"
    )
    return StagingError(msg)


def _by_date(frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """(`YYYY-MM-DD` or `unknown`, rows) per distinct `_date`, without the column.

    A batch usually holds one day: that case costs a min and a max.
    """
    dates = frame.get_column("_date")
    rows = frame.drop("_date")
    first, last = dates.min(), dates.max()
    if dates.null_count() == 0 and first == last:
        return [(str(first), rows)]
    parts = frame.partition_by("_date", as_dict=True, include_key=False)
    return [("unknown" if k[0] is None else str(k[0]), v) for k, v in parts.items()]


class Staging:
    """The files a run writes before it commits."""

    def __init__(
        self, layout: Layout, run_id: str, policy: ProxyPolicy | None = None
    ) -> None:
        self.layout = layout
        self.run_id = run_id
        self.policy = policy  # the rows' attribution, for their rollups
        self.files: list[_File] = []
        self.serial = 0
        # files are written by one thread while the next batch is parsed
        # a batch's rows and its rollup are written by two threads while the
        # next batch is parsed
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pplog-write")
        self.pending: list[Future[None]] = []
        self.agents = _Agents()

    def write(self, kind: str, stream: str | None, frame: pl.DataFrame) -> None:
        """Write `frame`, one file per distinct `_date` (a Date; null: unknown).

        A failure to write is the dataset's problem, not the log file's: it is
        raised as `StagingError` (or `DiskFullError`) and stops the run.
        """
        try:
            self._write_parts(kind, stream, frame)
        except OSError as exc:
            raise _staging_error(exc) from exc

    def _write_parts(self, kind: str, stream: str | None, frame: pl.DataFrame) -> None:
        for date, part in _by_date(frame):
            name = f"{_PREFIX[kind]}-{self.run_id}-{self.serial:05d}.parquet"
            self.serial += 1
            base = self.layout.requests if kind == "data" else self.layout.rejects
            final = base / f"date={date}" / name
            staged = self._staged(final)
            summary = rollup.path_of(self.layout, final)
            summary_staged = self._staged(summary)
            _fs.makedirs(self.layout.root, staged.parent)
            _fs.makedirs(self.layout.root, summary_staged.parent)
            of = str(final.relative_to(self.layout.root))
            self.files.append(
                _File(kind, stream, str(date), staged, final, part.height)
            )
            self.files.append(
                _File(
                    ROLLUP, stream, str(date), summary_staged, summary, part.height, of
                )
            )
            # the previous batch is written before this one is handed over: one
            # batch in the writer at a time, so memory stays bounded
            self._wait()
            self.pending.append(
                self.pool.submit(_write, part, self.layout.root, staged)
            )
            self.pending.append(
                self.pool.submit(
                    _rollup,
                    part,
                    self.layout,
                    summary_staged,
                    of,
                    self.agents,
                    self.policy,
                )
            )

    def _staged(self, final: Path) -> Path:
        """Where `final` is staged in this run."""
        return self.layout.staging / self.run_id / final.relative_to(self.layout.root)

    def _wait(self, keep: int = 0) -> None:
        """Wait until at most `keep` writes are in flight; raise their errors."""
        while len(self.pending) > keep:
            try:
                self.pending.pop(0).result()
            except OSError as exc:
                raise _staging_error(exc) from exc

    def drop_stream(self, stream: str) -> None:
        """Forget everything staged for `stream` in this run."""
        self._wait()
        for f in [f for f in self.files if f.stream == stream]:
            _fs.unlink(self.layout.root, f.staged)
            self.files.remove(f)

    def close(self) -> list[dict[str, Any]]:
        """Make the staged directories durable; the files' commit entries."""
        self._wait()
        self.pool.shutdown()
        root = self.layout.root
        for d in {f.staged.parent for f in self.files}:
            _fs.fsync_dir(root, d)
        return [
            {
                "kind": f.kind,
                "date": f.date,
                "path": str(f.final.relative_to(self.layout.root)),
                "staging": str(f.staged.relative_to(self.layout.root)),
                "rows": f.rows,
                "bytes": _size(root, f.staged),
            }
            | ({} if f.of is None else {"of": f.of})
            for f in self.files
        ]

    def abort(self) -> None:
        """Delete every staged file."""
        for job in self.pending:
            with contextlib.suppress(BaseException):
                job.result()
        self.pending.clear()
        self.pool.shutdown()
        for f in self.files:
            with contextlib.suppress(OSError, PplogError):  # best effort
                _fs.unlink(self.layout.root, f.staged)
        self.files.clear()


def _size(root: Path, path: Path) -> int:
    """The size of a staged file, which must be there."""
    st = _fs.lstat(root, path)
    if st is None:
        raise FileNotFoundError(errno.ENOENT, "staged file vanished", str(path))
    return st.st_size
