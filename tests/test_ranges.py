"""Byte ranges of one plain file: `split_source` cuts, spans read as their share."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from helpers import SAMPLES
from pplog import sources
from pplog.formats import PRESETS, LogFormat
from pplog.pipeline import parse_lines
from pplog.sources import Source, split_source
from pplog.sources._bytes import decode_bytes
from pplog.tasks import bins

LINE = (
    '203.0.113.7 - - [27/Nov/2026:06:01:02 +0000] "GET /{n} HTTP/1.1" 200 5 "-" "{ua}"'
)
AGENTS = ["curl/8.5.0", "Mozilla/5.0 (日本語)", "bot é ü", "🚀 rocket/1.0", ""]

FILES = {
    "multibyte": "".join(
        LINE.format(n=i, ua=AGENTS[i % len(AGENTS)]) + "\n" for i in range(60)
    ).encode(),
    "empty_lines": b"a\n\n\nbb\n\n" + "é\n".encode() * 5 + b"\n\nccc\n\n",
    "no_final_newline": b"first\nsecond line\n\xc3\xa9t\xc3\xa9\nlast without newline",
    "one_line": b"just one line\n",
    "one_line_no_newline": "a single line, é, no newline".encode(),
}


def source(path: Path) -> Source:
    return Source(str(path), path)


def read(srcs: list[Source]) -> pl.DataFrame:
    """Each source's `scan_lines` frame on its own, concatenated."""
    frames = [sources.scan_lines([s])[0].collect() for s in srcs]
    return pl.concat(frames) if frames else pl.DataFrame(schema=sources.LINES_SCHEMA)


def assert_tiles(spans: list[Source], data: bytes) -> None:
    bounds = [s.span for s in spans]
    assert all(b is not None for b in bounds)
    starts = [b[0] for b in bounds if b is not None]
    ends = [b[1] for b in bounds if b is not None]
    assert starts[0] == 0
    assert ends[-1] == len(data)
    assert starts[1:] == ends[:-1]
    assert all(a < b for a, b in zip(starts, ends, strict=True))
    assert all(s == 0 or data[s - 1 : s] == b"\n" for s in starts)


def check_split(path: Path, parts: int, min_bytes: int) -> list[Source]:
    """Split `path` and check the spans tile it and read as the whole file."""
    data = path.read_bytes()
    src = source(path)
    said: list[str] = []
    whole, native = sources.scan_lines([src], on_problem=lambda _n, m: said.append(m))
    assert native  # the whole file is read by polars itself: the other road
    spans = split_source(src, parts, min_bytes=min_bytes)
    if said:  # unusable (control bytes throughout: binary), and said so
        assert said == [sources.SKIPPED_BINARY]
        assert spans in ([], [src]), spans  # [src] when too small to cut
        assert whole.collect().height == 0
        return spans
    assert 1 <= len(spans) <= max(parts, 1)
    if len(spans) > 1:
        assert_tiles(spans, data)
        assert all(s.size >= min_bytes for s in spans)
    assert_frame_equal(read(spans), whole.collect())
    return spans


@pytest.mark.parametrize("name", sorted(FILES))
def test_spans_read_as_the_whole_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(FILES[name])
    split = 0
    for parts in range(1, 8):
        for min_bytes in (1, 2, 7, 30, 200):
            split += len(check_split(path, parts, min_bytes)) > 1
    assert (split > 0) == (FILES[name].count(b"\n") > 1)
    # one span over the whole file (a 1-line file is never cut) reads the same
    src = source(path)
    one = Source(src.name, path, (0, len(FILES[name])))
    assert_frame_equal(read([one]), read([src]))


def test_parts_are_about_equal_and_at_least_min_bytes(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    data = FILES["multibyte"] * 20
    path.write_bytes(data)
    spans = check_split(path, 4, 1000)
    assert len(spans) == 4
    line = max(len(x) for x in data.splitlines(keepends=True))
    assert all(abs(s.size - len(data) / 4) <= line for s in spans)
    # fewer parts when min_bytes asks for larger ones, still about equal
    assert len(split_source(source(path), 7, min_bytes=len(data) // 3 - line)) == 3
    halves = split_source(source(path), 7, min_bytes=len(data) // 3)
    assert [abs(s.size - len(data) / 2) <= line for s in halves] == [True, True]
    assert split_source(source(path), 7, min_bytes=len(data) // 2 + 1) == [source(path)]


def test_spans_keep_line_numbers_and_offsets(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(b"a\nbb\nccc\ndddd\n")
    spans = split_source(source(path), 3, min_bytes=4)
    assert [s.span for s in spans] == [(0, 5), (5, 9), (9, 14)]
    assert all(s.name == str(path) for s in spans)
    last = sources.scan_lines([spans[2]])[0].collect()
    assert last.rows() == [(str(path), 4, 9, "dddd", False)]
    assert sources.read_head(spans[1], 5) == ["ccc"]


def test_iter_batches_reads_a_span_in_pieces_with_progress(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(FILES["multibyte"])
    spans = split_source(source(path), 3, min_bytes=1)
    assert len(spans) == 3
    seen: list[tuple[int, int | None]] = []
    batches = sources.iter_batches(
        spans, chunk_bytes=7, on_progress=lambda n, total: seen.append((n, total))
    )
    whole = sources.scan_lines([source(path)])[0].collect()
    assert_frame_equal(pl.concat(batches), whole)
    assert sum(n for n, _ in seen) == path.stat().st_size
    assert {total for _, total in seen} == {path.stat().st_size}
    # one span on its own: its own bytes
    seen.clear()
    list(sources.iter_batches(spans[1:2], on_progress=lambda n, t: seen.append((n, t))))
    assert sum(n for n, _ in seen) == spans[1].size
    assert {t for _, t in seen} == {spans[1].size}


lines_st = st.lists(
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x00"),
        max_size=16,
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=lines_st,
    final_newline=st.booleans(),
    parts=st.integers(1, 7),
    min_bytes=st.integers(1, 24),
)
# control bytes throughout: skipped as binary by both roads (Hypothesis found it)
@example(lines=["", "\x1f"], final_newline=False, parts=2, min_bytes=1)
def test_spans_read_as_the_whole_file_for_any_lines(
    lines: list[str], final_newline: bool, parts: int, min_bytes: int
) -> None:
    data = "\n".join(lines).encode() + (b"\n" if final_newline else b"")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "access.log"
        path.write_bytes(data)
        if not data:
            assert split_source(source(path), parts, min_bytes=min_bytes) == [
                source(path)
            ]
            return
        event("split" if len(check_split(path, parts, min_bytes)) > 1 else "whole")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(gzip.compress(FILES["multibyte"]), id="gzip"),
        pytest.param(FILES["multibyte"].replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(
            FILES["multibyte"][:500] + b"\x00" * 20 + FILES["multibyte"], id="nul"
        ),
        pytest.param(b"\x00" * 4096 + FILES["multibyte"], id="leading-hole"),
        pytest.param(b"\xff\xfe" + FILES["multibyte"], id="not-utf8"),
    ],
)
def test_files_polars_cannot_read_are_not_split(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(data)
    src = source(path)
    assert split_source(src, 4, min_bytes=1) == [src]


def test_small_files_stdin_and_one_part_are_not_split(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(FILES["multibyte"])
    src = source(path)
    size = len(FILES["multibyte"])
    assert split_source(src, 4, min_bytes=size // 2 + 1) == [src]
    assert split_source(src, 4) == [src]  # far below the default 64 MiB
    assert split_source(src, 1, min_bytes=1) == [src]
    assert split_source(src, 0, min_bytes=1) == [src]
    stdin = Source("<stdin>", None)
    assert split_source(stdin, 4, min_bytes=1) == [stdin]
    spanned = split_source(src, 2, min_bytes=1)[0]
    assert split_source(spanned, 4, min_bytes=1) == [spanned]


def test_a_binary_file_is_reported_and_dropped(tmp_path: Path) -> None:
    path = tmp_path / "core"
    path.write_bytes(b"\x01\x02\x03\x04\x05\x06\x07\x7f" * 2000)
    problems: list[tuple[str, str]] = []
    spans = split_source(
        source(path), 4, min_bytes=1, on_problem=lambda *p: problems.append(p)
    )
    assert spans == []
    assert problems == [(str(path), sources.SKIPPED_BINARY)]


def test_a_file_truncated_after_the_split_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(FILES["multibyte"])
    spans = split_source(source(path), 2, min_bytes=1)
    assert len(spans) == 2
    assert spans[1].span is not None
    cut = spans[1].span[0] + 10
    path.write_bytes(FILES["multibyte"][:cut])  # copytruncate, then some bytes
    problems: list[tuple[str, str]] = []
    frame = pl.concat(
        sources.iter_batches(spans, on_problem=lambda *p: problems.append(p))
    )
    assert frame.get_column("offset").to_list()[-1] == spans[1].span[0]
    assert len(problems) == 1
    assert problems[0][1].startswith(f"stopped at byte {cut}: the file ended")


TIMED = LogFormat.from_string(
    '$remote_addr - $remote_user [$time_local] "$request" $status '
    '$body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" '
    '$request_time "$upstream_response_time"',
    name="timed",
)
SAMPLE_FORMATS = {
    "elb-access.log": PRESETS["elb_log"],
    "combined-access.log": PRESETS["combined"],
    "main-access.log": PRESETS["main"],
    "timed-access.log": TIMED,
    "rotated/access.log": PRESETS["elb_log"],
    "rotated/access.log.1": PRESETS["elb_log"],
}


@pytest.mark.parametrize("name", sorted(SAMPLE_FORMATS))
@pytest.mark.parametrize("wrong", [False, True], ids=["rows", "rejects"])
def test_sample_logs_parse_the_same_in_spans(name: str, *, wrong: bool) -> None:
    # the samples parse clean; a format they do not have makes every line a reject
    fmt = TIMED if wrong and name != "timed-access.log" else SAMPLE_FORMATS[name]
    if wrong and fmt is SAMPLE_FORMATS[name]:
        fmt = PRESETS["elb_log"]
    src = source(SAMPLES / name)
    whole = parse_lines(sources.scan_lines([src])[0], fmt).collect()
    rejects = whole.get_column("reject_reason").drop_nulls().len()
    assert rejects == (whole.height if wrong else 0)
    for parts in (2, 3, 7):
        spans = split_source(src, parts, min_bytes=1)
        assert len(spans) == parts
        parsed = [parse_lines(sources.scan_lines([s])[0], fmt).collect() for s in spans]
        assert_frame_equal(pl.concat(parsed), whole)


@pytest.mark.parametrize(
    "data",
    [b"", b"\n", b"\n\n", b"a", b"a\n\nb", b"abc\n", b"x" * 100 + b"\n\n\n\ny"],
)
@pytest.mark.parametrize(("line", "offset"), [(1, 0), (5, 17), (2**33, 2**40)])
def test_ascii_blocks_split_as_python_does(data: bytes, line: int, offset: int) -> None:
    # a span's blocks are ASCII: one polars query builds their frame
    texts = data.decode().split("\n")
    if data.endswith(b"\n") or not data:
        texts.pop()
    starts = [offset + sum(len(t) + 1 for t in texts[:i]) for i in range(len(texts))]
    expected = [
        ("s", line + i, start, text, False)
        for i, (start, text) in enumerate(zip(starts, texts, strict=True))
    ]
    assert sources.lines_frame("s", data, line, offset).rows() == expected


def _lines_as_python_splits(data: bytes, line: int, offset: int) -> list[tuple]:
    """The oracle: each line's bytes decoded alone, CR and BOM stripped."""
    if not data:
        return []
    body = data[:-1] if data.endswith(b"\n") else data
    out, start = [], offset
    for i, raw in enumerate(body.split(b"\n")):
        text = decode_bytes(raw).removesuffix("\r").removeprefix("\ufeff")
        out.append(("s", line + i, start, text, False))
        start += len(raw) + 1
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [b"a", b"GET /", b"\n", b"\r", b"\r\n", "é".encode(), "日本".encode()]
            + ["\ufeff".encode(), "🚀".encode(), b"\xff", b"\xc3", b" "]
        ),
        max_size=40,
    ).map(b"".join),
    st.sampled_from([(1, 0), (2**33, 2**40)]),
)
def test_blocks_split_as_python_does(data: bytes, at: tuple[int, int]) -> None:
    # ASCII, valid UTF-8 (raw, as `escape=json` logs it), CR and bad bytes:
    # polars' line reader where it reads the same, else Python
    line, offset = at
    expected = _lines_as_python_splits(data, line, offset)
    assert sources.lines_frame("s", data, line, offset).rows() == expected


class _Sized:
    def __init__(self, size: int) -> None:
        self.size = size


def test_eight_like_files_are_dealt_four_and_four() -> None:
    # eight log files of nearly the same size: the first bin once took five
    # (it was closed only after passing its share), so one process read 216
    # MB and the other 130 (bench_jobs.py's files)
    sizes = [42_888_764, 43_350_711, 43_342_463, 43_269_134]
    sizes += [43_363_596, 43_246_277, 43_276_669, 43_209_715]
    dealt = bins([_Sized(s) for s in sizes], 2)  # type: ignore[list-item]
    assert [len(b) for b in dealt] == [4, 4]
    dealt = bins([_Sized(s) for s in sizes], 4)  # type: ignore[list-item]
    assert [len(b) for b in dealt] == [2, 2, 2, 2]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 1000), min_size=1, max_size=40), st.integers(1, 8))
def test_bins_end_nearest_their_share(sizes: list[int], n: int) -> None:
    tasks = [_Sized(s) for s in sizes]
    dealt = bins(tasks, n)  # type: ignore[arg-type]
    assert [t for b in dealt for t in b] == tasks  # consecutive, in order
    assert 1 <= len(dealt) <= n and all(dealt)
    total = sum(sizes)
    if max(sizes) <= total / n:  # no task spans two shares
        done = 0
        for k, b in enumerate(dealt[:-1], start=1):
            done += sum(t.size for t in b)
            assert abs(done - total * k / n) <= max(sizes) / 2


@pytest.mark.parametrize("name", sorted(SAMPLE_FORMATS))
def test_spans_are_split_in_c_as_the_whole_file(name: str) -> None:
    """A span of a file the C road reads (a large `--jobs` part, a part of a
    file whose log_format changed) is read in C too, from its offset, with
    the whole file's line numbers: it went to the Python reader, 1.5 times
    slower (4M lines cut in two: 4.8-5.2 s against 3.1-3.3 s)."""
    fmt = SAMPLE_FORMATS[name]
    src = source(SAMPLES / name)
    whole = parse_lines(sources.scan_lines([src], split=fmt)[0], fmt).collect()
    for parts in (2, 3, 7):
        spans = split_source(src, parts, min_bytes=1)
        frames = [sources.scan_lines([s], split=fmt)[0] for s in spans]
        # the C split's columns beside the lines: read in C
        assert all(len(f.collect_schema()) > len(sources.LINES_SCHEMA) for f in frames)
        parsed = [parse_lines(f, fmt).collect() for f in frames]
        assert_frame_equal(pl.concat(parsed), whole)
