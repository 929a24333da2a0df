"""Reading inputs: compression, framing, offsets, broken files, globs, directories."""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
from pathlib import Path

import polars as pl
import pytest
import zstandard

import pplog
from pplog import sources
from pplog.errors import SourceError

SAMPLES = Path(__file__).resolve().parents[1] / "sample_logs"

LINE = '203.0.113.7 - - [27/Nov/2026:06:01:02 +0000] "GET /{n} HTTP/1.1" 200 5 "-" "curl/8.5.0"'


def body(n: int, start: int = 0) -> bytes:
    return "".join(LINE.format(n=i) + "\n" for i in range(start, start + n)).encode()


def read_all(path: Path | str, **kwargs: object) -> pl.DataFrame:
    return pplog.read_log(path, format="combined", include_rejects=True, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [
        (".gz", gzip.compress),
        (".bz2", bz2.compress),
        (".xz", lzma.compress),
        (".zst", lambda b: zstandard.ZstdCompressor().compress(b)),
        ("", lambda b: b),
    ],
)
def test_compressed_inputs_read_transparently(
    tmp_path: Path, suffix: str, compress
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / f"access.log{suffix}"
    path.write_bytes(compress(body(1000)))
    df = read_all(path)
    assert df.height == 1000
    assert df.get_column("path").to_list()[-1] == "/999"
    assert df.get_column("offset").to_list()[1] == len(LINE.format(n=0)) + 1


def test_compression_is_known_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "access.log.2"  # gzip without .gz, as some rotations leave it
    path.write_bytes(gzip.compress(body(10)))
    assert read_all(path).height == 10


def test_crlf_missing_final_newline_and_long_lines(tmp_path: Path) -> None:
    long_ua = "x" * 200_000
    data = (
        LINE.format(n=1).encode()
        + b"\r\n"
        + LINE.format(n=2).replace("curl/8.5.0", long_ua).encode()
        + b"\n"
        + LINE.format(n=3).encode()  # no final newline
    )
    path = tmp_path / "access.log"
    path.write_bytes(data)
    df = read_all(path)
    assert df.get_column("reject_reason").to_list() == [None, None, None]
    assert df.get_column("http_user_agent").to_list()[1] == long_ua
    assert df.get_column("offset").to_list() == [
        0,
        len(LINE.format(n=1)) + 2,
        data.rindex(b"\n") + 1,
    ]


@pytest.mark.parametrize("chunk", [8 << 20, 3, 4])
def test_byte_order_marks_anywhere_are_stripped_by_the_fast_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    # polars reads this file itself; lines starting with a mark lose it (the
    # small chunk sizes cut the three bytes of the mark between two reads)
    monkeypatch.setattr(sources, "CHUNK_BYTES", chunk)
    bom = "\ufeff"
    path = tmp_path / "access.log"
    path.write_text(f"a\n{bom}{LINE.format(n=2)}\n{LINE.format(n=3)}\n", "utf-8")
    lines, native = sources.scan_lines(sources.expand([path]))
    assert native
    texts = lines.collect().get_column("_text").to_list()
    assert texts == ["a", LINE.format(n=2), LINE.format(n=3)]


def test_long_line_across_python_reader_chunks(tmp_path: Path) -> None:
    path = tmp_path / "access.log.gz"
    long_ua = "y" * (3 * 65536)
    path.write_bytes(
        gzip.compress(LINE.format(n=1).replace("curl/8.5.0", long_ua).encode() + b"\n")
    )
    batches = list(sources.iter_batches(sources.expand([path]), chunk_bytes=65536))
    frame = pl.concat(batches)
    assert frame.height == 1
    assert len(frame.get_column("_text")[0]) > 3 * 65536


def test_invalid_utf8_is_kept_as_xhh_and_offsets_stay_byte_exact(
    tmp_path: Path,
) -> None:
    bad = LINE.format(n=1).replace("curl/8.5.0", "raw\xff\xfe").encode("latin-1")
    data = bad + b"\n" + LINE.format(n=2).encode() + b"\n"
    path = tmp_path / "access.log"
    path.write_bytes(data)
    df = read_all(path)
    assert df.get_column("http_user_agent").to_list()[0] == r"raw\xFF\xFE"
    assert df.get_column("offset").to_list() == [0, len(bad) + 1]
    assert df.get_column("reject_reason").null_count() == 2


def test_truncated_gzip_reports_and_keeps_earlier_lines(tmp_path: Path) -> None:
    blob = gzip.compress(body(50_000))
    broken = tmp_path / "access.log.1.gz"
    broken.write_bytes(blob[: len(blob) // 2])
    good = tmp_path / "access.log"
    good.write_bytes(body(7))
    problems: list[tuple[str, str]] = []
    scan = pplog.pipeline.open_log(
        [broken, good], "combined", on_problem=lambda *p: problems.append(p)
    )
    df = scan.frame.collect()
    assert len(problems) == 1
    assert problems[0][0] == str(broken)
    assert "truncated" in problems[0][1]
    per_file = dict(df.group_by("source").len().iter_rows())
    assert per_file[str(good)] == 7
    assert 0 < per_file[str(broken)] < 50_000  # what was readable is kept
    # the cut-off last line is kept as a reject, not dropped
    assert df.get_column("reject_reason").null_count() >= df.height - 1


def test_binary_and_unreadable_files_are_skipped_with_a_reason(tmp_path: Path) -> None:
    binary = tmp_path / "core.bin"
    binary.write_bytes(b"\x7fELF\x00\x00\x01" * 100)
    good = tmp_path / "access.log"
    good.write_bytes(body(3))
    problems: list[tuple[str, str]] = []
    scan = pplog.pipeline.open_log(
        [binary, good], "combined", on_problem=lambda *p: problems.append(p)
    )
    assert scan.frame.collect().height == 3
    assert problems == [(str(binary), "skipped: binary data, not a text log")]


def test_directories_and_globs_order_rotations_oldest_first(tmp_path: Path) -> None:
    (tmp_path / "access.log").write_bytes(body(1, 30))
    (tmp_path / "access.log.1").write_bytes(body(1, 20))
    (tmp_path / "access.log.2.gz").write_bytes(gzip.compress(body(1, 10)))
    (tmp_path / "access.log.10.gz").write_bytes(gzip.compress(body(1, 0)))
    names = [Path(s.name).name for s in sources.expand([tmp_path])]
    assert names == [
        "access.log.10.gz",
        "access.log.2.gz",
        "access.log.1",
        "access.log",
    ]
    globbed = [
        Path(s.name).name for s in sources.expand([str(tmp_path / "access.log*")])
    ]
    assert globbed == names
    df = read_all(str(tmp_path / "access.log*"))
    assert df.get_column("path").to_list() == ["/0", "/10", "/20", "/30"]


def test_dateext_rotations_are_one_set_oldest_first(tmp_path: Path) -> None:
    """logrotate's `dateext` names (RHEL, Amazon Linux): the dated files are
    rotations of the live log, oldest first, whatever the date's form."""
    (tmp_path / "access.log").write_bytes(body(1, 40))
    (tmp_path / "access.log-20261205").write_bytes(body(1, 30))
    (tmp_path / "access.log-2026120414.gz").write_bytes(gzip.compress(body(1, 20)))
    (tmp_path / "access.log-2026-12-03.xz").write_bytes(lzma.compress(body(1, 10)))
    (tmp_path / "access.log-20261202-1764633600.gz").write_bytes(
        gzip.compress(body(1, 0))
    )
    (tmp_path / "app-12345678.log").write_bytes(body(1, 50))  # not a date
    names = [Path(s.name).name for s in sources.expand([tmp_path])]
    assert names == [
        "access.log-20261202-1764633600.gz",
        "access.log-2026-12-03.xz",
        "access.log-2026120414.gz",
        "access.log-20261205",
        "access.log",
        "app-12345678.log",
    ]
    sets = {sources.rotation_key(tmp_path / n)[0] for n in names[:5]}
    assert sets == {str(tmp_path / "access.log")}
    df = read_all(str(tmp_path / "access.log*"))
    assert df.get_column("path").to_list() == ["/0", "/10", "/20", "/30", "/40"]


def test_extension_rotations_are_one_set_oldest_first(tmp_path: Path) -> None:
    """logrotate's `extension .log` with `dateext` keeps `.log` last:
    access.log rotates to access-20261205.log.gz (names as logrotate 3.21
    gives them, `test_logrotate_real` asks it). They are rotations of
    access.log, oldest first; logs whose names merely look alike keep sets
    of their own, and so do its numbered names (access.1.log), which a port
    or an instance number in a log's name cannot be told from."""
    rotations = [  # oldest first
        "access-20261202-1764633600.log.gz",  # dateformat -%Y%m%d-%s
        "access-2026-12-03.log.xz",  # dateformat -%Y-%m-%d
        "access-2026120414.log.gz",  # hourly
        "access-20261204143000.log.gz",  # dateformat -%Y%m%d%H%M%S
        "access-20261204143001.log.gz",
        "access_20261205.log",  # dateformat _%Y%m%d
        "access.20261206.log",  # dateformat .%Y%m%d
        "access-20261207.log",  # delaycompress
        "access.log",
    ]
    for i, name in enumerate(rotations):
        (tmp_path / name).write_bytes(body(1, 10 * i))
    apart = {  # name: the set it belongs to
        "access-api.log": "access-api.log",
        "access-api.1.log": "access-api.1.log",  # numbered: apart
        "access.8080.log": "access.8080.log",  # a port
        "app.1.log": "app.1.log",  # an instance
        "access.2024.log": "access.2024.log",
        "access-api-20261205.log.gz": "access-api.log",
        "access.api.log": "access.api.log",
        "access.api-20261205.log": "access.api.log",
        "error-20261205.log": "error.log",
        "error.1.log": "error.1.log",
        "access.1.gz": "access",  # `access` rotated with compress, no extension
        "10.0.0.1.log": "10.0.0.1.log",  # an address, not a rotation of 10.0.0.log
        "v1.2.3.log": "v1.2.3.log",  # a version
        "app-12345678.log": "app-12345678.log",  # not a date
    }
    for name in apart:
        (tmp_path / name).write_bytes(body(1, 999))
    for name in rotations:
        assert sources.rotation_key(tmp_path / name)[0] == str(tmp_path / "access.log")
    for name, base in apart.items():
        assert sources.rotation_key(tmp_path / name)[0] == str(tmp_path / base), name
    names = [Path(s.name).name for s in sources.expand([tmp_path])]
    assert [n for n in names if n in rotations] == rotations
    got = read_all(tmp_path).get_column("path").to_list()
    assert [p for p in got if p != "/999"] == [f"/{10 * i}" for i in range(9)]


def test_rotation_zero_is_older_than_the_live_log() -> None:
    """`start 0` numbers the newest rotation 0: older than the live log."""
    names = ["access.log", "access.log.0", "access.log.1", "access.log.2.gz"]
    assert sorted(names, key=sources.rotation_key) == [
        "access.log.2.gz",
        "access.log.1",
        "access.log.0",
        "access.log",
    ]


def test_missing_inputs_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        sources.expand([tmp_path / "nope.log"])
    with pytest.raises(SourceError, match="no file matches"):
        sources.expand([str(tmp_path / "*.log")])
    with pytest.raises(SourceError, match="holds no log files"):
        sources.expand([tmp_path])


def test_empty_file_gives_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(b"")
    assert read_all(path).height == 0


def test_python_and_polars_readers_agree(tmp_path: Path) -> None:
    data = body(3000) + b"\r\n" + b"tail without newline"
    plain = tmp_path / "a.log"
    plain.write_bytes(data)
    packed = tmp_path / "b.log.gz"
    packed.write_bytes(gzip.compress(data))
    cols = ["line", "offset", "raw", "reject_reason"]
    a = read_all(plain).select(cols)
    b = read_all(packed).select(cols)
    assert a.equals(b)


@pytest.mark.parametrize(
    ("kind", "compress"),
    [
        ("gzip", gzip.compress),
        ("xz", lzma.compress),
        ("bz2", bz2.compress),
        ("zstd", zstandard.ZstdCompressor().compress),
    ],
)
def test_a_compressed_prefix_inflates_to_a_prefix(kind: str, compress: object) -> None:
    """What stdin's buffered bytes decompress to, for detection: a prefix of
    the text, whatever the cut (damaged bytes give what came before)."""
    from pplog.sources._decompress import inflated_prefix

    text = b"".join(b"10.0.0.%d - - line %d\n" % (i % 250, i) for i in range(5000))
    packed = compress(text)  # type: ignore[operator]
    for cut in (0, 1, 10, 100, 4096, len(packed) // 2, len(packed)):
        got = inflated_prefix(packed[:cut], kind)
        assert text.startswith(got)
    assert inflated_prefix(packed, kind, limit=100) == text[:100]
    damaged = packed[:20] + b"\xff" * 50 + packed[70:]
    assert isinstance(inflated_prefix(damaged, kind), bytes)  # never raises
    assert inflated_prefix(b"\x1f\x8bnot gzip at all", "gzip") == b""


def test_a_port_or_instance_in_a_name_is_a_log_of_its_own(tmp_path: Path) -> None:
    """`access.8080.log` beside `access.log` is another server's log, not a
    rotation: each is detected on its own (a `main` log read with the
    `combined` log's format made 2,000 of its lines `no_match` rejects)."""
    shutil.copy(SAMPLES / "combined-access.log", tmp_path / "access.log")
    shutil.copy(SAMPLES / "main-access.log", tmp_path / "access.8080.log")
    summary = pplog.summarize(tmp_path, top=1)
    ov = summary.overview_dict()
    assert ov["format"] == "mixed" and ov["rejected"] == 0, ov
    assert ov["requests"] == 4000


@pytest.mark.parametrize(
    ("kind", "compress"),
    [
        ("gzip", gzip.compress),
        ("xz", lzma.compress),
        ("bz2", bz2.compress),
        ("zstd", zstandard.ZstdCompressor().compress),
    ],
)
def test_what_follows_the_last_compressed_member(
    tmp_path: Path, kind: str, compress: object
) -> None:
    """After the last member: NUL padding (over one read of 64 KiB) is no
    problem; bytes that start no member (`gzip -t`: trailing garbage
    ignored) end the content, the lines before them read, one warning said;
    a member that starts and is cut short is a truncated file."""
    first, second = compress(body(50)), compress(body(30, 50))  # type: ignore[operator]
    cases = {
        "padded": (first + second + b"\x00" * 100_000, 80, None),
        "garbage": (first + second + b"garbage\n", 80, "trailing garbage"),
        "cut": (first + second[: len(second) // 2], 50, "truncated"),
    }
    from pplog.pipeline import open_log

    problems: list[str] = []
    for name, (data, lines, problem) in cases.items():
        path = tmp_path / f"{name}.log.1"
        path.write_bytes(data)
        problems.clear()
        df = open_log(
            [path], "combined", on_problem=lambda _n, m: problems.append(m)
        ).frame.collect()
        assert df.height >= lines, (name, df.height)
        assert df.filter(pl.col("reject_reason").is_null()).height == lines, name
        if problem is None:
            assert problems == [], (name, problems)
        else:
            assert len(problems) == 1 and problem in problems[0], (name, problems)
    at = len(first) + len(second)
    assert f"from byte {at:,} of the file" in str(
        sources.describe(sources.TrailingDataError(at))
    )
