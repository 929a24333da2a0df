"""`sources.Follower`: new lines of files nginx writes, across rotations.

The writers here do what nginx and logrotate do: nginx opens its log with
O_APPEND and keeps writing to that descriptor until USR1 makes it reopen
the path (so lines land in a renamed-away file after the rename); logrotate
`create` renames the file and creates a new one, `copytruncate` copies it
and truncates it in place, and nginx's next write lands at byte 0.
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pplog.schema import LINE, OFFSET, SOURCE, TEXT
from pplog.sources import Chunk, Follower
from realproc import require_binary, send, start_nginx, stop


class Clock:
    """A clock the test moves: renamed-away files stay open until it does."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Nginx:
    """Appends lines the way nginx does: one write per line, O_APPEND, the
    descriptor kept until `reopen` (USR1)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, data: str | bytes) -> None:
        os.write(self.fd, data.encode() if isinstance(data, str) else data)

    def lines(self, *texts: str) -> None:
        for text in texts:
            self.write(text + "\n")

    def reopen(self) -> None:
        os.close(self.fd)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def close(self) -> None:
        os.close(self.fd)


def rows(chunks: list[Chunk]) -> list[tuple[str, int, int, str]]:
    """(source, line, offset, text) of every line, in order."""
    out = []
    for chunk in chunks:
        assert set(chunk.lines.get_column(SOURCE)) == {chunk.source}
        out.extend(
            zip(
                chunk.lines.get_column(SOURCE),
                chunk.lines.get_column(LINE),
                chunk.lines.get_column(OFFSET),
                chunk.lines.get_column(TEXT),
                strict=True,
            )
        )
    return out


def texts(chunks: list[Chunk]) -> list[str]:
    return [r[3] for r in rows(chunks)]


def line(n: int) -> str:
    """A log line that no other line equals (timestamps do that in real logs)."""
    return f'10.0.{n % 250}.7 - - [05/Dec/2026:10:00:{n % 60:02d} +0000] "GET /p/{n} HTTP/1.1" 200 {n}'


def truncate(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(0)


def copytruncate(path: Path, copy: Path) -> None:
    shutil.copyfile(path, copy)
    truncate(path)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "access.log"


def test_appends_across_polls_and_a_line_completed_later(log: Path) -> None:
    nginx = Nginx(log)
    nginx.lines("one", "two")
    with Follower([str(log)], start="start") as f:
        assert rows(f.poll()) == [(str(log), 1, 0, "one"), (str(log), 2, 4, "two")]
        nginx.write("thr")  # nginx's write of a line, seen half done
        assert f.poll() == []
        assert f.held == 3
        nginx.write("ee\nfour\nfi")
        assert rows(f.poll()) == [(str(log), 3, 8, "three"), (str(log), 4, 14, "four")]
        assert f.held == 2
        assert f.poll(final=True) == []  # the live file's last line: nginx writes it
        nginx.write("ve\n")
        assert rows(f.poll()) == [(str(log), 5, 19, "five")]
        assert f.files() == [
            {"name": str(log), "offset": 24, "line": 6, "state": "live"}
        ]


def test_start_at_end_skips_old_lines_and_numbers_new_ones(log: Path) -> None:
    nginx = Nginx(log)
    nginx.lines("old 1", "old 2", "old 3")
    nginx.write("being writ")  # the line nginx is writing as we start
    with Follower([str(log)]) as f:
        assert f.poll() == []
        nginx.write("ten\n")
        nginx.lines("new")
        assert rows(f.poll()) == [
            (str(log), 4, 18, "being written"),
            (str(log), 5, 32, "new"),
        ]


@pytest.mark.parametrize("pattern", ["access.log", "access.log*", "."])
def test_rename_and_create_reads_the_old_file_to_its_end_first(
    log: Path, pattern: str
) -> None:
    nginx = Nginx(log)
    nginx.lines(line(0))
    clock = Clock()
    with Follower([str(log.parent / pattern)], grace=5, clock=clock) as f:
        name = str(log) if pattern == "access.log" else f.files()[0]["name"]
        nginx.lines(line(1))
        assert texts(f.poll()) == [line(1)]
        log.rename(log.with_name("access.log.1"))  # logrotate `create`
        Nginx(log).close()
        nginx.lines(line(2))  # before USR1 nginx writes to the old file
        first = f.poll()
        assert rows(first) == [(name, 3, len(line(0)) * 2 + 2, line(2))]
        assert [d["state"] for d in f.files()] == ["draining", "live"]
        nginx.lines(line(3))
        nginx.reopen()  # USR1
        nginx.lines(line(4), line(5))
        second = f.poll()
        # the old file's last line before the new file's, each numbered as its own
        assert [(r[1], r[3]) for r in rows(second)] == [
            (4, line(3)),
            (1, line(4)),
            (2, line(5)),
        ]
        assert {c.source for c in second} == {name}
        assert [d["state"] for d in f.files()] == ["draining", "live"]
        clock.now += 5  # idle for `grace`: closed
        assert f.poll() == []
        assert f.files() == [
            {"name": name, "offset": 2 * len(line(4)) + 2, "line": 3, "state": "live"}
        ]
        nginx.lines(line(6))
        assert texts(f.poll()) == [line(6)]
    nginx.close()


@pytest.mark.parametrize(
    "copy_name",
    ["access.log.1", "access.log-20261206", "access-20261206.log"],
)
def test_copytruncate_regrown_past_the_offset_restarts_from_zero(
    log: Path, copy_name: str
) -> None:
    """The file is truncated and written past the old offset between two polls:
    its size alone says it grew. The line written before the copy comes from
    the copy (named as logrotate names it, with `dateext` and its `extension
    .log` too), the rest from byte 0 of the truncated file."""
    nginx = Nginx(log)
    nginx.lines(*(line(i) for i in range(3)))
    problems: list[tuple[str, str]] = []
    with Follower([str(log)], on_problem=lambda *p: problems.append(p)) as f:
        nginx.lines(line(3))
        assert texts(f.poll()) == [line(3)]
        offset = log.stat().st_size
        nginx.lines(line(4))  # not read before the copy
        copytruncate(log, log.with_name(copy_name))
        new = [line(i) for i in range(5, 25)]
        nginx.lines(*new)
        assert log.stat().st_size > offset
        got = rows(f.poll())
        assert got[0] == (str(log), 5, offset, line(4))
        assert [r[3] for r in got[1:]] == new
        assert [r[1:3] for r in got[1:3]] == [(1, 0), (2, len(new[0]) + 1)]
        assert problems == []
        nginx.lines(line(25))
        assert texts(f.poll()) == [line(25)]
    nginx.close()


@pytest.mark.parametrize("lines_before", [3, 80], ids=["short", "over-4KiB"])
def test_a_copy_read_past_before_the_truncate_is_no_loss(
    log: Path, lines_before: int
) -> None:
    """A poll between copytruncate's copy and its truncate reads the log past
    the copy's end. Once truncated, the copy is shorter than what was read:
    it holds nothing unread, which is no reason to say lines may be missing
    (found with real logrotate, its fsync slowed); a glob does not read it."""
    nginx = Nginx(log)
    nginx.lines(*(line(i) for i in range(lines_before)))
    problems: list[tuple[str, str]] = []
    with Follower(
        [str(log) + "*"],
        start="start",
        grace=0,
        on_problem=lambda *p: problems.append(p),
    ) as f:
        seen = texts(f.poll())
        nginx.lines(line(100))
        shutil.copyfile(log, log.with_name("access.log.1"))
        nginx.lines(line(101))  # after the copy: in the log only
        seen += texts(f.poll())
        truncate(log)
        nginx.lines(line(102), line(103))
        seen += texts(f.poll())
        seen += texts(f.poll())
    assert seen == [line(i) for i in [*range(lines_before), 100, 101, 102, 103]]
    assert problems == []
    nginx.close()


def test_copytruncate_without_a_copy_says_lines_may_be_lost(log: Path) -> None:
    nginx = Nginx(log)
    problems: list[tuple[str, str]] = []
    with Follower([str(log)], on_problem=lambda *p: problems.append(p)) as f:
        nginx.lines(line(0), line(1))
        assert len(f.poll()) == 1
        nginx.lines(line(2))
        shutil.copyfile(log, log.with_name("access.log.1"))
        with log.with_name("access.log.1").open("rb") as src:  # `compress`
            log.with_name("access.log.1.gz").write_bytes(gzip.compress(src.read()))
        log.with_name("access.log.1").unlink()
        log.write_bytes(b"")
        nginx.lines(*(line(i) for i in range(3, 10)))
        assert texts(f.poll()) == [line(i) for i in range(3, 10)]
        assert len(problems) == 1
        name, message = problems[0]
        assert name == str(log)
        assert "truncated and written again past byte" in message
        assert "`copytruncate`" in message
        assert "may be missing" in message


@pytest.mark.parametrize("dateext", [False, True])
@pytest.mark.parametrize("poll_before_truncation", [False, True])
def test_a_glob_does_not_read_the_copytruncate_copy_again(
    log: Path, *, poll_before_truncation: bool, dateext: bool
) -> None:
    nginx = Nginx(log)
    nginx.lines(line(0))
    with Follower([str(log) + "*"], grace=0) as f:
        seen = []
        for rotation in range(3):
            nginx.lines(*(line(10 * rotation + i) for i in range(1, 4)))
            seen += rows(f.poll())
            nginx.lines(line(10 * rotation + 4))
            copy = log.with_name("access.log.1")
            if dateext:  # a copy named after each day, none shifted
                copy = log.with_name(f"access.log-2026120{rotation + 4}")
            elif copy.exists():  # logrotate shifts the older ones
                copy.rename(log.with_name("access.log.2"))
            shutil.copyfile(log, copy)
            if poll_before_truncation:  # the copy is there, the log not truncated
                seen += rows(f.poll())
            truncate(log)
            nginx.lines(line(10 * rotation + 5))
            seen += rows(f.poll())
            seen += rows(f.poll())
        written = [line(10 * r + i) for r in range(3) for i in range(1, 6)]
        assert [r[3] for r in seen] == written
        assert {r[0] for r in seen} == {str(log)}


def test_a_glob_picks_up_a_new_file_from_its_start(tmp_path: Path) -> None:
    site = Nginx(tmp_path / "site.log")
    site.lines("site old")
    with Follower([str(tmp_path / "*.log")]) as f:
        assert f.poll() == []
        api = Nginx(tmp_path / "api.log")  # a vhost added to nginx.conf
        api.lines("api 1", "api 2")
        site.lines("site new")
        assert rows(f.poll()) == [
            (str(tmp_path / "api.log"), 1, 0, "api 1"),
            (str(tmp_path / "api.log"), 2, 6, "api 2"),
            (str(tmp_path / "site.log"), 2, 9, "site new"),
        ]
        assert f.poll() == []
        # compressed files appearing later are rotations: old lines
        (tmp_path / "old.log.gz").write_bytes(gzip.compress(b"gz\n"))
        api.lines("api 3")
        assert texts(f.poll()) == ["api 3"]


def test_a_deleted_file_is_drained(log: Path) -> None:
    nginx = Nginx(log)
    problems: list[tuple[str, str]] = []
    with Follower([str(log)], grace=0, on_problem=lambda *p: problems.append(p)) as f:
        nginx.lines("before")
        log.unlink()
        nginx.lines("after")  # nginx still writes to the deleted file
        nginx.write("no newline")
        assert texts(f.poll()) == ["before", "after", "no newline"]
        assert f.files() == []
        assert len(problems) == 1
        assert "removed" in problems[0][1]
        assert f.poll() == []
        Nginx(log).lines("created again")
        assert texts(f.poll()) == ["created again"]
        assert len(problems) == 1
    nginx.close()


def test_since_reads_recent_rotations_once_oldest_first(log: Path) -> None:
    now = time.time()
    old, recent = now - 86400, now - 60
    members = {
        "access.log.3.gz": (gzip.compress(b"three\n"), old),
        "access.log.2.gz": (gzip.compress(b"two a\ntwo b\n"), recent),
        "access.log.1": (b"one\n", recent),
        "access.log": (b"live 1\nlive 2\n", now),
        "other.log.1": (b"another set\n", recent),
    }
    for name, (data, mtime) in members.items():
        log.with_name(name).write_bytes(data)
        os.utime(log.with_name(name), (mtime, mtime))
    with Follower([str(log)], since=now - 600, max_bytes=4) as f:
        got = []
        for _ in range(10):
            got += rows(f.poll())
        assert [(Path(s).name, n, o, t) for s, n, o, t in got] == [
            ("access.log.2.gz", 1, 0, "two a"),
            ("access.log.2.gz", 2, 6, "two b"),
            ("access.log.1", 1, 0, "one"),
            ("access.log", 1, 0, "live 1"),
            ("access.log", 2, 7, "live 2"),
        ]
        assert f.poll() == []


@pytest.mark.parametrize("glob", [False, True])
def test_since_reads_a_rotation_being_compressed_once(log: Path, glob: bool) -> None:
    """logrotate compressing `access.log.1` into `access.log.1.gz`: both are
    there, the `.gz` part-written; `since` reads the lines once, from the
    plain file (read as a rotation, or followed when a glob names it), and
    says why the `.gz` is skipped."""
    now = time.time()
    one = b"".join(b"one %d\n" % i for i in range(500))
    log.with_name("access.log.1").write_bytes(one)
    log.with_name("access.log.1.gz").write_bytes(gzip.compress(one)[:400])
    log.write_bytes(b"live\n")
    problems: list[tuple[str, str]] = []
    pattern = f"{log}*" if glob else str(log)
    with Follower(
        [pattern], since=now - 600, on_problem=lambda *p: problems.append(p)
    ) as f:
        got = []
        for _ in range(10):
            got += rows(f.poll())
    assert (
        sorted(Path(s).name for s, *_ in got) == ["access.log"] + ["access.log.1"] * 500
    )
    assert [(Path(n).name, "being compressed" in m) for n, m in problems] == [
        ("access.log.1.gz", True)
    ]


def test_since_starts_files_not_written_since_at_their_end(log: Path) -> None:
    log.write_bytes(b"old\n")
    os.utime(log, (time.time() - 86400,) * 2)
    with Follower([str(log)], since=time.time() - 600) as f:
        assert f.poll() == []
        Nginx(log).lines("new")
        assert rows(f.poll()) == [(str(log), 2, 4, "new")]


def test_final_takes_a_renamed_files_last_line_not_the_live_ones(log: Path) -> None:
    nginx = Nginx(log)
    clock = Clock()
    with Follower([str(log)], grace=60, clock=clock) as f:
        nginx.write("whole\nunterminated")
        log.rename(log.with_name("access.log.1"))
        Nginx(log).write("live whole\nlive unterminated")
        assert texts(f.poll()) == ["whole", "live whole"]
        assert f.held == len("unterminated") + len("live unterminated")
        assert texts(f.poll(final=True)) == ["unterminated"]
        assert f.held == len("live unterminated")
        assert [d["state"] for d in f.files()] == ["live"]
    nginx.close()


def test_max_bytes_bounds_a_poll_and_the_old_file_still_comes_first(log: Path) -> None:
    nginx = Nginx(log)
    clock = Clock()
    with Follower([str(log)], max_bytes=64, grace=1, clock=clock) as f:
        nginx.lines(*(line(i) for i in range(10)))
        log.rename(log.with_name("access.log.1"))
        new = Nginx(log)
        new.lines(line(10))
        polls = []
        while len(polls) < 50:
            polls.append(texts(f.poll()))
            clock.now += 1
            if f.files()[0]["state"] != "draining":
                break
        assert max(len(p) for p in polls) <= 2  # about 64 bytes a poll
        assert [t for p in polls for t in p] == [line(i) for i in range(11)]
        nginx.lines("late")  # nginx got USR1 and closed it: never happens
        new.lines(line(11))
        assert texts(f.poll(final=True)) == [line(11)]
        assert f.held == 0


def test_bytes_that_are_not_utf8_are_kept_as_xhh(log: Path) -> None:
    nginx = Nginx(log)
    with Follower([str(log)]) as f:
        nginx.write(b"GET /caf\xe9 \xff\nok\n")
        assert texts(f.poll()) == ["GET /caf\\xE9 \\xFF", "ok"]


@pytest.mark.parametrize("replacement", ["fifo", "directory", "vanished directory"])
def test_a_file_replaced_by_something_unreadable_is_one_problem(
    tmp_path: Path, replacement: str
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "access.log"
    nginx = Nginx(log)
    problems: list[tuple[str, str]] = []
    with Follower([str(log)], grace=0, on_problem=lambda *p: problems.append(p)) as f:
        nginx.lines("first")
        assert texts(f.poll()) == ["first"]
        if replacement == "vanished directory":
            shutil.rmtree(logs)
        else:
            log.unlink()
            if replacement == "fifo":
                os.mkfifo(log)
            else:
                log.mkdir()
        nginx.lines("last")
        assert texts(f.poll()) == ["last"]
        for _ in range(3):
            assert f.poll() == []
        assert len(problems) == 1, problems
        assert problems[0][0] == str(log)
        assert f.files() == []
    nginx.close()


def _denied(monkeypatch: pytest.MonkeyPatch, call: str, paths: set[str]) -> None:
    """`os.<call>` refuses the names in `paths` (or below them) while the set
    holds them, as for a user without permission (tests run as root, whom
    `chmod 000` does not stop)."""
    real = getattr(os, call)

    def guarded(path: object, *args: object, **kwargs: object) -> object:
        name = os.fsdecode(path)  # type: ignore[arg-type]
        if any(name == p or name.startswith(p + "/") for p in paths):
            raise PermissionError(13, "Permission denied", name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, call, guarded)


def test_a_file_it_may_not_open_yet_is_followed_once_it_may(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log made unreadable by a rotation's `create 000` (then a chmod): it
    was never tried again, and every line written to it was lost."""
    nginx = Nginx(log)
    nginx.lines("before the start")
    denied = {str(log)}
    _denied(monkeypatch, "open", denied)
    problems: list[tuple[str, str]] = []
    with Follower([str(log)], on_problem=lambda *p: problems.append(p)) as f:
        nginx.lines("first")
        assert f.poll() == []
        nginx.lines("second")
        assert f.poll() == []
        assert problems == [(str(log), "cannot open: Permission denied")]  # once
        denied.clear()
        nginx.lines("third")
        # from where the file ended when following began, as if it had opened
        assert texts(f.poll()) == ["first", "second", "third"]
        assert [r[1] for r in rows(f.poll(final=True))] == []
        assert f.files()[0]["line"] == 5
    nginx.close()


def test_a_file_waiting_to_be_opened_keeps_its_start_through_a_listing_blip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file not openable at the start, then its directory unsearchable for a
    poll: the offset it was to start at was forgotten with the listing, and
    its 40 lines from before the start were counted once it opened."""
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "a.log"
    nginx = Nginx(log)
    nginx.lines(*(f"old {n}" for n in range(40)))
    closed = {str(log)}
    _denied(monkeypatch, "open", closed)
    with Follower([str(logs)], on_problem=lambda *p: None) as f:
        assert f.poll() == []
        blocked = {str(logs)}
        _denied(monkeypatch, "stat", blocked)
        assert f.poll() == []
        blocked.clear()
        closed.clear()
        nginx.lines("new")
        assert texts(f.poll()) == ["new"]
    nginx.close()


def test_a_directory_it_may_not_search_for_a_moment_is_followed_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`chmod 000 logs` for a moment: listing it raised out of `poll` (`pplog
    top` exited 1 with no last object), and the live file was taken for
    rotated away."""
    logs = tmp_path / "logs"
    logs.mkdir()
    nginx = Nginx(logs / "a.log")
    clock = Clock()
    problems: list[tuple[str, str]] = []
    with Follower(
        [str(logs)], grace=1, clock=clock, on_problem=lambda *p: problems.append(p)
    ) as f:
        nginx.lines("one")
        assert texts(f.poll()) == ["one"]
        blocked = {str(logs)}
        _denied(monkeypatch, "stat", blocked)
        _denied(monkeypatch, "scandir", blocked)
        nginx.lines("two")
        assert texts(f.poll()) == ["two"]  # through its descriptor
        clock.now += 5  # past the grace a renamed-away file gets
        nginx.lines("three")
        assert texts(f.poll()) == ["three"]
        said = {message.split(":")[0] for _, message in problems}
        assert said == {"cannot list", "cannot follow"}, problems
        assert len(problems) == 2  # each said once
        blocked.clear()
        nginx.lines("four")
        assert texts(f.poll()) == ["four"]
        assert [file["state"] for file in f.files()] == ["live"]
    nginx.close()


def test_a_compressed_file_named_to_follow_is_said_not_followed(
    tmp_path: Path,
) -> None:
    """`pplog top access.log.2.gz` followed nothing and said nothing."""
    named = tmp_path / "access.log.2.gz"
    named.write_bytes(gzip.compress(b"a line\n"))
    content = tmp_path / "plain-name.log"  # compressed, by its content
    content.write_bytes(named.read_bytes())
    problems: list[tuple[str, str]] = []
    with Follower(
        [str(named), str(content)], on_problem=lambda *p: problems.append(p)
    ) as f:
        assert f.poll() == []
    assert sorted(name for name, _ in problems) == [str(named), str(content)]
    assert all("not followed: compressed" in message for _, message in problems)
    problems.clear()
    with Follower([str(tmp_path)], on_problem=lambda *p: problems.append(p)) as f:
        f.poll()
    assert problems == []  # rotations in a directory are expected there


def test_a_binary_file_is_one_problem(tmp_path: Path) -> None:
    problems: list[tuple[str, str]] = []
    with Follower([str(tmp_path / "*")], on_problem=lambda *p: problems.append(p)) as f:
        (tmp_path / "core").write_bytes(bytes(range(256)) * 64)
        assert f.poll() == []
        assert f.poll() == []
        assert problems == [
            (str(tmp_path / "core"), "skipped: binary data, not a text log")
        ]


# -- the property: whatever the rotations, every line once ---------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(1, 4)),
        st.tuples(st.just("partial"), st.integers(12, 40)),  # a line seen half written
        st.just(("poll",)),
        st.just(("rename",)),  # logrotate `create`
        st.just(("reopen",)),  # nginx gets USR1
        st.just(("copytruncate",)),
        st.just(("copytruncate-regrow",)),  # truncated and grown back past the offset
        st.just(("copytruncate-poll",)),  # a poll between the copy and the truncation
    ),
    max_size=40,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=OPS, pattern=st.sampled_from(["access.log", "access.log*"]))
def test_every_line_written_after_start_is_read_once(
    tmp_path_factory: pytest.TempPathFactory,
    ops: list[tuple[object, ...]],
    pattern: str,
) -> None:
    """Lines are written in whole writes (an unfinished one is finished by the
    next write); the copy of a copytruncate stays next to the log, as with
    `delaycompress`. Every line written after the start is read exactly once,
    with the line number and offset it has in the file it was written to."""
    d = tmp_path_factory.mktemp("follow")
    log = d / "access.log"
    nginx = Nginx(log)
    nginx.lines(line(-1), line(-2))
    clock = Clock()
    problems: list[tuple[str, str]] = []
    f = Follower(
        [str(d / pattern)],
        grace=5,
        clock=clock,
        on_problem=lambda *p: problems.append(p),
    )
    written: dict[str, tuple[int, int]] = {}  # text -> (line, offset) in its file
    n = 0
    # what the file nginx writes to holds: its lines and its size
    lines_in, size = 2, len(line(-1)) + len(line(-2)) + 2
    half = ""
    got: list[tuple[str, int, int, str]] = []

    def write(text: str) -> None:
        nonlocal lines_in, size, half
        nginx.write(text[len(half) :] + "\n")
        written[text] = (lines_in + 1, size - len(half))
        lines_in += 1
        size += len(text) - len(half) + 1
        half = ""

    def shift() -> None:
        for k in range(60, 0, -1):
            older = d / f"access.log.{k}"
            if older.exists():
                older.rename(d / f"access.log.{k + 1}")

    renamed = False
    polled = True  # the follower has seen the generation nginx writes to
    for op in ops:
        kind = op[0]
        if kind == "write":
            for _ in range(int(op[1])):  # type: ignore[call-overload]
                n += 1
                write(line(n) if not half else half + line(n)[len(half) :])
        elif kind == "partial" and not half:
            n += 1
            half = line(n)[: int(op[1])]  # type: ignore[call-overload]
            nginx.write(half)
            size += len(half)
        elif kind == "poll":
            got += rows(f.poll())
            polled = polled or size > 0
        elif kind == "rename" and not half:
            shift()
            log.rename(d / "access.log.1")
            Nginx(log).close()
            renamed = True
        elif kind == "reopen" and renamed and not half:
            nginx.reopen()
            lines_in, size, renamed, polled = 0, 0, False, False
            got += rows(f.poll())
            clock.now += 10  # the old file is idle from now on
        elif kind.startswith("copytruncate") and not renamed and not half:
            if not polled and size and pattern == "access.log":
                # a generation written and copied away between two polls is
                # only in the copy, which only a glob follows
                got += rows(f.poll())
            polled = False
            shift()
            shutil.copyfile(log, d / "access.log.1")
            if kind == "copytruncate-poll":
                got += rows(f.poll())
            truncate(log)
            lines_in, size = 0, 0
            if kind == "copytruncate-regrow":
                for _ in range(3):
                    n += 1
                    write(line(n))
    if half:
        write(half + line(n)[len(half) :])
    got += rows(f.poll(final=True))
    f.close()
    nginx.close()
    assert Counter(r[3] for r in got) == Counter(list(written)), (ops, problems)
    for _, number, offset, text in got:
        assert (number, offset) == written[text], (text, ops)
    assert problems == []


# -- real nginx: it keeps writing to a renamed file until USR1 -----------------


@pytest.mark.nginx
def test_real_nginx_rotations_lose_and_double_no_request(tmp_path: Path) -> None:
    nginx = require_binary("nginx", "nginx-light")
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "access.log"

    def config(ports: list[int], _nginx_v: str) -> str:
        return f"""
pid {tmp_path / "nginx.pid"};
error_log {tmp_path / "error.log"};
events {{ worker_connections 64; }}
http {{
    access_log {log} combined;
    server {{
        listen 127.0.0.1:{ports[0]};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""

    proc, (port,) = start_nginx(nginx, tmp_path, config)
    try:

        def get(*paths: str) -> None:
            for path in paths:
                request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                assert send(port, request.encode()).startswith(b"HTTP/1.1 200")

        get("/before")
        clock = Clock()
        problems: list[tuple[str, str]] = []
        got: list[tuple[str, int, int, str]] = []
        with Follower(
            [str(log) + "*"],
            grace=5,
            clock=clock,
            on_problem=lambda *p: problems.append(p),
        ) as f:
            get("/a1", "/a2")
            got += rows(f.poll())
            log.rename(log.with_name("access.log.1"))  # logrotate `create`, nocreate
            get("/b1", "/b2")  # nginx still writes to access.log.1
            got += rows(f.poll())
            os.kill(proc.pid, signal.SIGUSR1)  # postrotate: reopen
            deadline = time.monotonic() + 10
            while not log.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            get("/c1")
            got += rows(f.poll())
            clock.now += 5
            get("/c2")
            shutil.copyfile(log, log.with_name("access.log.2"))  # copytruncate
            truncate(log)
            get("/d1", "/d2", "/d3", "/d4", "/d5")  # past the old offset
            got += rows(f.poll())
            got += rows(f.poll(final=True))
        paths = [r[3].split('"')[1].split()[1] for r in got]
        assert paths == [
            "/a1",
            "/a2",
            "/b1",
            "/b2",
            "/c1",
            "/c2",
            "/d1",
            "/d2",
            "/d3",
            "/d4",
            "/d5",
        ]
        assert {r[0] for r in got} == {str(log)}
        assert [r[1] for r in got] == [2, 3, 4, 5, 1, 2, 1, 2, 3, 4, 5]
        assert problems == []
    finally:
        stop(proc)


def test_a_poll_over_many_files_builds_no_path_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each poll stats every followed name (and every listed one): a `Path`
    built for each made a poll over 3,600 files take 0.16 s of CPU while
    nothing was written. Names are resolved once; the lines still come."""
    from pplog.sources import _follow

    for n in range(60):
        (tmp_path / f"site{n}.log").write_text(line(n) + "\n")
    built = Counter[str]()
    real = _follow.Path

    def counted(*args: object) -> Path:
        built["path"] += 1
        return real(*args)  # type: ignore[arg-type]

    with Follower([str(tmp_path / "*.log")], start="start") as f:
        assert len(f.poll()) > 0
        monkeypatch.setattr(_follow, "Path", counted)
        for _ in range(3):
            assert f.poll() == []
        assert built["path"] < 60  # before: 360 (two a file a poll)
        with (tmp_path / "site7.log").open("a") as out:
            out.write(line(100) + "\n")
        assert texts(f.poll()) == [line(100)]
