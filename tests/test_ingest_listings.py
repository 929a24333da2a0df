"""`ingest` over many live logs in one directory: a listing per change, not per log.

After reading a live log, a run looks in its directory for a copytruncate
copy made meanwhile (`identity.copies_after_read`). Over 400 vhost logs in
a directory of 3,600 files that was 400 listings, most of a cron run with
nothing new. A run keeps a directory's listing while the directory is
unchanged (`identity.Listings`) and does not open a file that has not grown
since it was read. These tests hold it to that, and to finding the copy a
listing kept from before could not hold.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest_harness import (
    LogWriter,
    Rotator,
    assert_exactly_once,
    combined,
    ingest_library,
    result_of,
)
from pplog.batch import identity, ingest, reader

HOUR_NS = 3600 * 10**9


def _age(directory: Path) -> None:
    """Give `directory` an mtime an hour old (its names made long ago)."""
    then = time.time_ns() - HOUR_NS
    os.utime(directory, ns=(then, then))


def _listings_of(directory: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every `os.listdir` of `directory` from now on (the list grows)."""
    seen: list[str] = []
    listdir = os.listdir

    def counted(path: Any = ".") -> list[Any]:
        if not isinstance(path, int) and os.fspath(path) == os.fspath(directory):
            seen.append(os.fspath(path))
        return listdir(path)

    monkeypatch.setattr(os, "listdir", counted)
    return seen


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[list[LogWriter]]:
    """Twelve live logs in one directory, each with a rotation."""
    logs = tmp_path / "logs"
    writers = [LogWriter(logs, f"site{i:02d}.access.log") for i in range(12)]
    for n, w in enumerate(writers):
        w.next_seq = 1 + 1000 * n
        w.write(3)
        Rotator(w, compress=False).create()
        w.write(2)
    yield writers
    for w in writers:
        w.close()


def test_the_live_logs_directory_is_listed_once_while_unchanged(
    sites: list[LogWriter], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve live logs, read with new lines and without: their directory
    listed once per run after the reads (twelve times before), and every
    line exactly once."""
    logs, ds = tmp_path / "logs", tmp_path / "ds"
    assert ingest([f"{logs}/*"], ds, format="combined", final_grace=0).committed
    for w in sites:
        w.write(1)
    _age(logs)
    listed = _listings_of(logs, monkeypatch)
    before = len(listed)
    assert ingest([f"{logs}/*"], ds, format="combined", final_grace=0).rows == 12
    copies_checks = len(listed) - before
    before = len(listed)
    assert ingest([f"{logs}/*"], ds, format="combined", final_grace=0).rows == 0
    idle_checks = len(listed) - before
    # discovery lists it once (a glob); the copies' checks once in all
    assert copies_checks <= 2, copies_checks
    assert idle_checks <= 2, idle_checks
    assert_exactly_once(ds, set().union(*(w.expected for w in sites)))


def test_a_listing_is_kept_only_while_its_directory_is_unchanged(
    tmp_path: Path,
) -> None:
    """A name made after the listing changes the directory's mtime: listed
    again, the name found. A directory changed within `RACY_NS` of the
    listing is listed every time: a name made in the same tick of the file
    system's clock would leave its mtime as it was."""
    logs = tmp_path / "logs"
    logs.mkdir()
    live = logs / "access.log"
    live.write_text("x\n")
    (logs / "other.log").write_text("y\n")
    _age(logs)
    listings = identity.Listings()
    assert listings.rotation_set(live) == ["access.log"]
    assert listings.rotation_set(live) == ["access.log"]
    assert listings.listed == 1
    (logs / "access.log.1").write_text("x\n")
    assert listings.rotation_set(live) == ["access.log", "access.log.1"]
    assert listings.listed == 2
    # changed within `RACY_NS`: listed again, however soon
    assert listings.rotation_set(live) == ["access.log", "access.log.1"]
    assert listings.listed == 3
    _age(logs)
    assert listings.rotation_set(live) == ["access.log", "access.log.1"]
    assert listings.rotation_set(live) == ["access.log", "access.log.1"]
    assert listings.listed == 4


# In the child: once the first log's copies were looked for, logrotate copies
# the second log (its directory changed) and nginx writes on to it.
_COPY_THE_SECOND_LOG = """
import os
from pathlib import Path
from pplog.batch import identity
_after = identity.copies_after_read
def copies_after_read(live, *args, **kwargs):
    out = _after(live, *args, **kwargs)
    second = Path(os.environ["PPLOG_TEST_SECOND"])
    if live.path.name != second.name and not second.with_name(second.name + ".1").exists():
        data = second.read_bytes()
        second.with_name(second.name + ".1").write_bytes(data)
        with second.open("ab") as f:
            f.write(os.environ["PPLOG_TEST_NEW"].encode())
    return out
identity.copies_after_read = copies_after_read
from pplog.batch import reader
reader.identity.copies_after_read = copies_after_read
"""


def test_a_copy_made_after_another_logs_listing_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two live logs in one directory, unchanged for an hour. The run lists
    it after reading the first; logrotate then copies the second, and the
    run reads the second past the copy's end. The listing kept from before
    does not hold the copy: the directory is listed again and the copy
    proved, so that once the second log is truncated the copy is not read
    again."""
    logs, ds = tmp_path / "logs", tmp_path / "ds"
    first = LogWriter(logs, "a.access.log")
    second = LogWriter(logs, "b.access.log")
    second.next_seq = 5000
    window = range(9000, 9004)
    try:
        first.write(3)
        second.write(60)
        assert result_of(ingest_library([f"{logs}/*"], ds, final_grace=0))["rows"]
        first.write(2)
        second.write(3)
        _age(logs)
        monkeypatch.setenv("PPLOG_TEST_SECOND", str(second.live))
        monkeypatch.setenv(
            "PPLOG_TEST_NEW", "".join(combined(s) + "\n" for s in window)
        )
        proc = ingest_library(
            [f"{logs}/*"], ds, setup=_COPY_THE_SECOND_LOG, final_grace=0
        )
        assert result_of(proc)["rows"] == 2 + 3 + len(window)
        Rotator(second, compress=False).truncate()
        second.write(2)
        for _ in range(2):
            assert result_of(ingest_library([f"{logs}/*"], ds, final_grace=0))
        assert_exactly_once(ds, first.expected | second.expected | set(window))
    finally:
        first.close()
        second.close()


def test_a_file_not_grown_is_not_opened(
    sites: list[LogWriter], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run with nothing new reads no log (its match has read the bytes
    before the offset, and that is all); one new line in one log: that log
    alone is read."""
    logs, ds = tmp_path / "logs", tmp_path / "ds"
    assert ingest([f"{logs}/*"], ds, format="combined", final_grace=0).committed
    opened: list[str] = []
    batches = reader._batches

    def counted(cand: identity.Candidate, *args: Any, **kwargs: Any) -> Any:
        opened.append(cand.path.name)
        return batches(cand, *args, **kwargs)

    monkeypatch.setattr(reader, "_batches", counted)
    assert ingest([f"{logs}/*"], ds, format="combined", final_grace=0).rows == 0
    assert opened == []
    sites[3].write(1)
    assert ingest([f"{logs}/*"], ds, format="combined", final_grace=0).rows == 1
    assert opened == ["site03.access.log"]
    assert_exactly_once(ds, set().union(*(w.expected for w in sites)))


def _checkpoint(path: Path, *, done: bool, like: Path | None = None) -> dict[str, Any]:
    """A checkpoint of a stream last read at `path`, whose file then had the
    identity of `like` (default: of `path` as it is now)."""
    st = (like or path).stat()
    hint = {"dev": st.st_dev, "ino": st.st_ino, "size": st.st_size}
    hint["mtime_ns"] = st.st_mtime_ns
    return {
        "stream_id": f"s-{path.name}-{done}",
        "last_path": str(path),
        "hint": hint,
        "offset": st.st_size,
        "done": done,
        "status": "active",
    }


def test_a_rotation_given_an_old_streams_name_does_not_bring_it_back(
    tmp_path: Path,
) -> None:
    """logrotate deletes `access.log.2.gz` and makes the next one under that
    name (often in the deleted file's inode): each run that found the name
    taken again warned that every rotation deleted so far was "no longer
    readable" (4, 16, 21, 23 files); a compressed rotation made while the
    run listed the files, read to its end before, was warned about too."""
    gz = tmp_path / "access.log.2.gz"
    gz.write_bytes(b"the rotation there now")
    older = tmp_path / "older"  # what the name held when the stream was read
    older.write_bytes(b"a rotation deleted since")
    os.utime(older, ns=(10**18, 10**18))
    gone = _checkpoint(gz, done=True, like=older)
    gone["hint"]["ino"] = gz.stat().st_ino  # the number the new file was given
    finished = _checkpoint(gz, done=True)
    live = tmp_path / "access.log"
    live.write_bytes(b"an active stream\n")
    unmatched = _checkpoint(live, done=False)
    result = reader.IngestResult()
    kept = reader._age([gone, finished, unmatched], set(), result, set(), set())
    status = {cp["stream_id"]: cp["status"] for cp in kept}
    assert status == {
        gone["stream_id"]: "gone",
        finished["stream_id"]: "unseen",  # kept: never read again from byte 0
        unmatched["stream_id"]: "unseen",
    }
    # one warning: the active stream the paths no longer match
    assert result.warnings == {"files_not_read": 1}
