"""`ingest` of many files with few new lines: their lines parsed and staged together.

A cron run over a host with hundreds of virtual hosts finds a few new lines
in each live log. Each parse and each staged file (rows, rollup) has a fixed
cost: one per file made a first run over 3,600 small files take 111 s and a
run with one new line in each of 400 logs 18 s. Reads under a quarter of a
batch are held and parsed together once their streams are read whole; a
stream whose read fails has its held lines forgotten, as its staged files
are. These tests hold the run to that: one parse, one file of rows, every
line exactly once under its own stream.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from ingest_harness import LogWriter, assert_exactly_once, dataset_frame
from pplog.batch import ingest, reader
from pplog.schema import OFFSET


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[list[LogWriter]]:
    """Twelve live logs of a few lines each, some malformed (rejects)."""
    writers = [
        LogWriter(tmp_path / "logs", f"site{i:02d}.log", seed=i) for i in range(12)
    ]
    for n, w in enumerate(writers):
        w.next_seq = 1 + 1000 * n
        w.write(3 + n % 4, bad_share=0.3 if n % 3 == 0 else 0.0)
    yield writers
    for w in writers:
        w.close()


def _expected(writers: list[LogWriter]) -> set[int]:
    return set().union(*(w.expected for w in writers))


def _state(ds: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((ds / "_pplog" / "state.json").read_bytes())
    return doc


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The heights of the frames `Reader` parses, in order."""
    seen: list[int] = []
    parse = reader.collected_rows

    def counted(lines: pl.LazyFrame, *args: Any, **kwargs: Any) -> pl.DataFrame:
        frame = parse(lines, *args, **kwargs)
        seen.append(frame.height)
        return frame

    monkeypatch.setattr(reader, "collected_rows", counted)
    return seen


def _assert_streams_are_their_files(ds: Path) -> None:
    """Each row's stream is the checkpoint of the file it came from."""
    streams = {cp["last_path"]: cp["stream_id"] for cp in _state(ds)["checkpoints"]}
    rows = dataset_frame(ds).select("source", "stream_id").unique()
    assert rows.height == len(streams)
    for source, stream in rows.iter_rows():
        assert streams[source] == stream, source


def test_small_reads_are_parsed_and_staged_together(
    sites: list[LogWriter], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = tmp_path / "ds"
    parses = _count_parses(monkeypatch)
    logs = f"{tmp_path}/logs/*.log"
    result = ingest([logs], ds, format="combined", final_grace=0)
    lines = sum(len(w.written) for w in sites)
    assert result.rows + result.rejects == lines
    assert result.rejects > 0
    assert parses == [lines]  # one parse for the twelve files (before: twelve)
    files = _state(ds)["files"]
    kinds = sorted(f["kind"] for f in files)
    assert kinds == ["data", "rejects", "rollup", "rollup"], kinds
    assert_exactly_once(ds, _expected(sites))
    _assert_streams_are_their_files(ds)
    # the next run: a line in every other log, parsed together again
    for w in sites[::2]:
        w.write(1)
    parses.clear()
    result = ingest([logs], ds, format="combined", final_grace=0)
    assert (result.rows, parses) == (6, [6])
    assert_exactly_once(ds, _expected(sites))
    _assert_streams_are_their_files(ds)


def _failing(name: str, *, pieces: bool = False, fail: bool = True) -> Any:
    """`reader._batches` that, for the file `name`, yields its batches (one
    line at a time with `pieces`), then raises EIO (with `fail`)."""
    batches = reader._batches

    def patched(cand: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        if cand.name.rsplit("/", 1)[-1] != name:
            yield from batches(cand, *args, **kwargs)
            return
        for frame, size, tail, complete in batches(cand, *args, **kwargs):
            if not pieces or frame.height < 2:
                yield frame, size, tail, complete
                continue
            ends = [*frame.get_column(OFFSET).to_list()[1:], None]
            start = frame.get_column(OFFSET)[0]
            for i in range(frame.height):
                end = start + size if ends[i] is None else ends[i]
                last = i == frame.height - 1
                piece = frame.slice(i, 1)
                yield (
                    piece,
                    end - piece.get_column(OFFSET)[0],
                    tail if last else b"",
                    (complete and last),
                )
        if fail:
            raise OSError(errno.EIO, "Input/output error", cand.name)

    return patched


def test_a_failed_read_forgets_its_held_lines(
    sites: list[LogWriter], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """site05's read fails after its lines were held: the run commits the
    other streams' lines, not one of site05's, and the next run takes them."""
    ds = tmp_path / "ds"
    logs = f"{tmp_path}/logs/*.log"
    monkeypatch.setattr(reader, "_batches", _failing("site05.log"))
    result = ingest([logs], ds, format="combined", final_grace=0)
    assert result.warnings.get("file_errors") == 1, result.warnings
    assert any("site05.log" in p for p in result.problems), result.problems
    others = _expected([w for w in sites if w is not sites[5]])
    assert_exactly_once(ds, others)
    monkeypatch.undo()
    ingest([logs], ds, format="combined", final_grace=0)
    assert_exactly_once(ds, _expected(sites))
    _assert_streams_are_their_files(ds)


@pytest.mark.parametrize("fail", [False, True])
def test_a_stream_holding_a_batch_stages_its_own(
    sites: list[LogWriter],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fail: bool,  # noqa: FBT001
) -> None:
    """A stream whose small pieces add up to a batch has them staged as its
    own file (memory stays bounded by the batch); if its read then fails,
    that file is dropped with the rest of its lines."""
    ds = tmp_path / "ds"
    logs = f"{tmp_path}/logs/*.log"
    sites[7].write(100)  # about 13 kB of lines, in pieces of one line
    parses = _count_parses(monkeypatch)
    monkeypatch.setattr(
        reader, "_batches", _failing("site07.log", pieces=True, fail=fail)
    )
    result = ingest([logs], ds, format="combined", final_grace=0, batch_bytes=4096)
    assert len(parses) >= 3  # site07's own (twice at least), then the others'
    if fail:
        assert result.warnings.get("file_errors") == 1, result.warnings
        assert_exactly_once(ds, _expected([w for w in sites if w is not sites[7]]))
        monkeypatch.undo()
        ingest([logs], ds, format="combined", final_grace=0)
    else:
        assert sum(parses) == sum(len(w.written) for w in sites)
        data = [f for f in _state(ds)["files"] if f["kind"] == "data"]
        assert len(data) >= 3
    assert_exactly_once(ds, _expected(sites))
    _assert_streams_are_their_files(ds)
    lines = dataset_frame(ds).filter(pl.col("source").str.ends_with("site07.log"))
    assert lines.height == len(sites[7].written)
    assert lines.get_column(OFFSET).n_unique() == lines.height
