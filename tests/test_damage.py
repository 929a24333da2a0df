"""Damaged and hostile inputs: NUL holes, binary files, huge lines, endless devices.

Every reader (summarize, doctor, `read_log`, ingest, the error log) goes through
`sources.LineSplitter` and `sources.lines_frame`, and judges binary files with
`sources.looks_binary`: the tests check the commands agree.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import signal
import ssl
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import polars as pl
import pytest
import zstandard
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import pplog
from pplog import sources
from pplog.cli import cli
from pplog.errors import SourceError
from pplog.formats.errorlog import iter_error_log, read_error_log
from pplog.reports.doctor import diagnose
from pplog.schema import LINE, OFFSET, TEXT
from pplog.sources._decompress import decompressed_pieces
from realproc import free_ports, require_binary, send, stop, wait_listening

REPO = Path(__file__).resolve().parents[1]
MiB = 1 << 20


def good(n: int) -> bytes:
    return (
        f'203.0.113.{n % 250} - - [27/Nov/2026:06:01:02 +0000] "GET /p/{n} HTTP/1.1" '
        '200 5 "-" "curl/8.5.0"\n'
    ).encode()


def goods(start: int, n: int) -> bytes:
    return b"".join(good(i) for i in range(start, start + n))


def rows(path: Path) -> pl.DataFrame:
    return pplog.read_log(path, format="combined", include_rejects=True)


def summary(path: Path, **kwargs: object) -> pplog.Summary:
    return pplog.summarize(path, format="combined", **kwargs)  # type: ignore[arg-type]


def no_nul_in_values(frame: pl.DataFrame) -> bool:
    parsed = frame.filter(pl.col("reject_reason").is_null())
    texts = [c for c, t in parsed.schema.items() if t == pl.String and c != "raw"]
    return not any(parsed[c].str.contains("\x00", literal=True).any() for c in texts)


COMPRESS = {
    "plain": lambda b: b,
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lambda b: lzma.compress(b, preset=0),
    "zst": lambda b: zstandard.ZstdCompressor().compress(b),
}


# --------------------------------------------------------------------------------------
# NUL holes


@pytest.mark.parametrize("hole", [4096, 3 * MiB])
@pytest.mark.parametrize("kind", ["plain", "gz"])
def test_a_file_starting_with_a_hole_is_read_line_by_line(
    tmp_path: Path, hole: int, kind: str
) -> None:
    # logrotate `copytruncate`: nginx goes on writing at its old offset into
    # the emptied file, which then starts with that many NULs
    path = tmp_path / f"access.log.{kind}"
    path.write_bytes(COMPRESS[kind](b"\x00" * hole + goods(0, 50)))
    problems: list[tuple[str, str]] = []
    s = summary(path, on_problem=lambda *p: problems.append(p))
    assert problems == []
    assert s.overview["lines"].item() == 50
    assert s.overview["requests"].item() == 50
    df = rows(path)
    assert df["reject_reason"].null_count() == 50
    assert no_nul_in_values(df)
    assert df["path"].to_list() == [f"/p/{i}" for i in range(50)]
    # the hole belongs to the first line: offsets stay those of the file
    assert df[OFFSET].to_list()[:2] == [0, hole + len(good(0))]


@pytest.mark.parametrize("newline", [b"", b"\n"])
@pytest.mark.parametrize("kind", ["plain", "gz"])
def test_a_nul_run_mid_file_never_merges_into_the_next_line(
    tmp_path: Path, newline: bytes, kind: str
) -> None:
    data = goods(0, 10) + b"\x00" * 4096 + newline + goods(10, 10)
    path = tmp_path / f"access.log.{kind}"
    path.write_bytes(COMPRESS[kind](data))
    df = rows(path)
    parsed = df.filter(pl.col("reject_reason").is_null())
    assert parsed["path"].to_list() == [f"/p/{i}" for i in range(20)]
    assert no_nul_in_values(df)
    rejects = df.filter(pl.col("reject_reason").is_not_null())
    # a line of NULs only is kept as it is: one reject (never a good line)
    assert rejects.height == len(newline)
    assert all(not r.strip("\x00") for r in rejects["raw"].to_list())
    s = summary(path)
    assert s.overview["requests"].item() == 20
    assert s.overview["rejected"].item() == len(newline)


def test_ingest_keeps_every_line_around_holes(tmp_path: Path) -> None:
    log = tmp_path / "access.log.1"
    log.write_bytes(b"\x00" * (3 * MiB) + goods(0, 5) + b"\x00" * 4096 + goods(5, 5))
    old = time.time() - 3600
    os.utime(log, (old, old))
    # batches of 1 MiB: the hole spans several reads
    result = pplog.ingest(
        [str(log)], tmp_path / "ds", format="combined", batch_bytes=MiB
    )
    assert (result.rows, result.rejects) == (10, 0)
    assert pplog.verify(tmp_path / "ds").ok


# --------------------------------------------------------------------------------------
# Binary files


def _png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    pixels = b"".join(b"\x00" + os.urandom(3 * 64) for _ in range(64))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


BINARIES = {
    "random.bin": lambda: os.urandom(200_000),
    "random.bin.gz": lambda: gzip.compress(os.urandom(200_000)),
    "ls.elf": lambda: Path(sys.executable).resolve().read_bytes()[:200_000],
    "image.png": _png,
}


@pytest.mark.parametrize("name", list(BINARIES))
def test_a_binary_file_is_skipped_with_one_warning_everywhere(
    tmp_path: Path, name: str
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / name).write_bytes(BINARIES[name]())
    (logs / "access.log").write_bytes(goods(0, 30))
    problems: list[tuple[str, str]] = []
    s = summary(logs, on_problem=lambda *p: problems.append(p))
    assert problems == [(str(logs / name), sources.SKIPPED_BINARY)]
    assert (s.overview["lines"].item(), s.overview["rejected"].item()) == (30, 0)

    reported: list[str] = []
    result = pplog.ingest(
        [str(logs / "*")],
        tmp_path / "ds",
        format="combined",
        on_problem=reported.append,
    )
    assert reported == [f"{logs / name}: {sources.SKIPPED_BINARY}"]
    assert (result.rows, result.rejects) == (30, 0)
    assert result.warnings.get("binary_files") == 1

    warned: list[tuple[str, str]] = []
    assert (
        read_error_log(logs / name, on_problem=lambda *p: warned.append(p)).height == 0
    )
    assert warned == [(str(logs / name), sources.SKIPPED_BINARY)]


def test_a_device_is_skipped_not_read_forever(tmp_path: Path) -> None:
    (tmp_path / "access.log").write_bytes(goods(0, 4))
    problems: list[tuple[str, str]] = []
    s = summary(
        [Path("/dev/zero"), tmp_path / "access.log"],
        on_problem=lambda *p: problems.append(p),
    )
    assert problems == [("/dev/zero", "skipped: a device, not a log file")]
    assert s.overview["requests"].item() == 4


def test_looks_binary_judges_the_share_of_non_text_bytes() -> None:
    text = goods(0, 40)
    assert not sources.looks_binary(text[: sources.SAMPLE_BYTES])
    assert not sources.looks_binary(b"\x00" * 4096)  # only a hole: judged later
    assert not sources.looks_binary(b"\x00" * 100 + text[:3000])
    # a few raw bytes in text lines (an error log) are not enough
    raw = text[:2000] + b"\x16\x03\x01\x00\xa5\x01\x00" + text[2000:4000]
    assert not sources.looks_binary(raw)
    assert sources.looks_binary(os.urandom(4096))
    # short NUL runs are data, not holes: a record layout
    assert sources.looks_binary(
        b"".join(struct.pack("<IHH", i, 7, 1) for i in range(500))
    )


@pytest.mark.nginx
def test_a_real_error_log_full_of_tls_handshakes_is_read(tmp_path: Path) -> None:
    # nginx < 1.23.2 writes what a client sent to a proxy_protocol listener raw
    # into its error log: TLS handshakes make most of its bytes binary
    nginx = require_binary("nginx", "nginx-light")
    (port,) = free_ports(1)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"""worker_processes 1;
pid {tmp_path / "nginx.pid"};
error_log {tmp_path / "error.log"} error;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {tmp_path};
    access_log off;
    server {{ listen 127.0.0.1:{port} proxy_protocol; return 200; }}
}}
""",
        encoding="utf-8",
    )
    command = [nginx, "-p", f"{tmp_path}/", "-e", str(tmp_path / "error.log")]
    command += ["-c", str(conf), "-g", "daemon off; master_process off;"]
    with (tmp_path / "stderr").open("wb") as err:
        proc = subprocess.Popen(command, stdout=err, stderr=err)  # noqa: S603
    try:
        assert wait_listening(proc, [("127.0.0.1", port)], time.monotonic() + 10)
        for i in range(12):
            context = ssl.create_default_context()
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = context.wrap_bio(incoming, outgoing, server_hostname=f"h{i}.test")
            with pytest.raises(ssl.SSLWantReadError):
                tls.do_handshake()
            send(port, outgoing.read())
    finally:
        stop(proc, signal.SIGQUIT)
    log = tmp_path / "error.log"
    warned: list[tuple[str, str]] = []
    entries = read_error_log(log, on_problem=lambda *p: warned.append(p))
    assert warned == []
    tls = entries.filter(pl.col("message").str.starts_with('broken header: "\x16\x03'))
    assert tls.height == 12, log.read_bytes()[:2000]
    finding = diagnose(None, iter_error_log(log))[0]
    assert finding.count == 12
    assert "12 with a TLS handshake" in finding.message


# --------------------------------------------------------------------------------------
# Lines past the cap


def _long_line_file(path: Path, size: int, kind: str) -> None:
    line = b"203.0.113.9 " + b"x" * size + b"\n"
    path.write_bytes(COMPRESS[kind](goods(0, 3) + line + goods(3, 3)))


@pytest.mark.parametrize("kind", ["plain", "gz"])
def test_a_64_mib_line_is_one_too_long_reject(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"access.log.{kind}"
    _long_line_file(path, 64 * MiB, kind)
    started = time.monotonic()
    s = summary(path)
    assert s.overview["lines"].item() == 7
    assert s.overview["requests"].item() == 6
    assert s.overview_dict()["rejected_by_reason"] == {"too_long": 1}
    df = rows(path)
    cut = df.filter(pl.col("reject_reason").is_not_null())
    assert cut["reject_reason"].to_list() == ["too_long"]
    assert (cut[LINE].item(), cut[OFFSET].item()) == (4, len(goods(0, 3)))
    assert cut["raw"].item() == ("203.0.113.9 " + "x" * (sources.RAW_KEPT - 12))
    assert df.filter(pl.col("reject_reason").is_null())[LINE].to_list() == [
        1, 2, 3, 5, 6, 7,
    ]  # fmt: skip
    doctor = pplog.pipeline.open_log(path, "combined").frame.collect()
    assert doctor["reject_reason"].drop_nulls().to_list() == ["too_long"]
    assert time.monotonic() - started < 30  # was 26 s per read, and growing


@pytest.mark.parametrize("kind", list(COMPRESS))
def test_every_reader_cuts_a_long_line_the_same_way(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"access.log.1.{kind}"
    _long_line_file(path, 3 * MiB, kind)
    old = time.time() - 3600
    os.utime(path, (old, old))
    assert summary(path).overview_dict()["rejected_by_reason"] == {"too_long": 1}
    assert rows(path)["reject_reason"].drop_nulls().to_list() == ["too_long"]
    result = pplog.ingest([str(path)], tmp_path / "ds", format="combined")
    assert (result.rows, result.rejects) == (6, 1)
    rejects = pplog.scan_dataset(tmp_path / "ds", include_rejects=True).filter(
        pl.col("reject_reason").is_not_null()
    )
    cut = rejects.collect()
    assert cut["reject_reason"].to_list() == ["too_long"]
    assert cut["length"].to_list() == [3 * MiB + 13]
    assert pplog.verify(tmp_path / "ds").ok


def test_a_line_within_one_read_is_cut_too(tmp_path: Path) -> None:
    # the cap does not depend on where reads happen to split the file
    path = tmp_path / "access.log"
    _long_line_file(path, 2 * MiB, "plain")
    batches = list(sources.iter_batches(sources.expand([path]), chunk_bytes=64 * MiB))
    frame = pl.concat(batches)
    assert frame[sources.TOO_LONG].to_list() == [False] * 3 + [True] + [False] * 3
    assert frame[TEXT].str.len_bytes().max() == sources.RAW_KEPT


def test_offsets_stay_exact_with_escapes_and_multibyte_characters(
    tmp_path: Path,
) -> None:
    # one invalid byte (4 characters as \xHH) and three 2-byte characters
    # make as many characters as bytes: lengths must still be bytes
    odd = good(1).replace(b"curl/8.5.0", b"\xa9b\xc3\xa9\xc3\xa9\xc3\xa9")
    path = tmp_path / "access.log"
    path.write_bytes(odd + good(2))
    assert rows(path)[OFFSET].to_list() == [0, len(odd)]


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from(
            [b"ab\n", b"\x00" * 40, b"\x00" * 3, b"\n", b"x" * 25, b"\xc3"]
        ),
        max_size=40,
    ),
    cuts=st.lists(st.integers(1, 60), min_size=1, max_size=8),
)
def test_line_splitter_matches_a_plain_split(
    pieces: list[bytes], cuts: list[int]
) -> None:
    limit, kept = 30, 8
    stream = b"".join(pieces)
    splitter = sources.LineSplitter(limit=limit, kept=kept, tail_bytes=5)
    blocks, pos, i = [], 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        blocks += splitter.feed(stream[pos : pos + step])
        pos, i = pos + step, i + 1
    blocks += splitter.finish()
    got = []
    for block in blocks:
        assert block.tail == stream[block.offset : block.offset + block.size][-5:]
        frame = block.frame("s")
        ends = [*frame[OFFSET].to_list()[1:], block.offset + block.size]
        for row, end in zip(frame.iter_rows(named=True), ends, strict=True):
            text = row[TEXT] if row[TEXT].strip("\x00") else row[TEXT][:1]
            got.append((row[LINE], row[OFFSET], end, row[sources.TOO_LONG], text))
    want, offset = [], 0
    for n, line in enumerate(stream.split(b"\n"), start=1):
        end = offset + len(line) + 1
        if end > len(stream):  # the last line, without newline
            end = len(stream)
            if not line:
                break
        body = line.lstrip(b"\x00")
        too_long = len(body) > limit
        text = sources.decode_bytes(body[:kept] if too_long else body or line[:1])
        want.append((n, offset, end, too_long, text))
        offset = end
    assert got == want


@pytest.mark.slow
def test_a_500_mb_line_in_bounded_time_and_memory(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    with path.open("wb") as f:
        f.write(goods(0, 3) + b"203.0.113.9 ")
        block = b"x" * (8 * MiB)
        for _ in range(500 * 1000 * 1000 // len(block)):
            f.write(block)
        f.write(b"\n" + goods(3, 3))
    try:
        for command in (
            ["summarize", str(path), "--format", "combined", "--to", "json"],
            ["doctor", str(path), "--format", "combined", "--to", "json"],
            ["doctor", "--error-log", str(path), "--to", "json"],
        ):
            seconds, rss, out = _run_measured(command)
            assert seconds < 60, (command, seconds)
            assert rss < 400 * MiB, (command, rss)
            if command[0] == "summarize":
                overview = json.loads(out)["overview"]
                assert overview["rejected_by_reason"] == {"too_long": 1}
                assert overview["requests"] == 6
    finally:
        path.unlink()


def _run_measured(args: list[str]) -> tuple[float, int, str]:
    """Run `pplog args` in a child; its seconds, peak RSS in bytes, stdout."""
    code = (
        "import atexit, resource, sys\n"
        "atexit.register(lambda: sys.stderr.write("
        "f'MAXRSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n'))\n"
        "from pplog.cli import main\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    started = time.monotonic()
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    seconds = time.monotonic() - started
    assert proc.returncode in (0, 3), proc.stderr  # 3: doctor found problems
    rss = int(proc.stderr.rsplit("MAXRSS ", 1)[1].split()[0]) * 1024
    return seconds, rss, proc.stdout


# --------------------------------------------------------------------------------------
# Error logs

ET = "2025/03/14 09:26:53"
CTX = "while reading PROXY protocol, client: 10.0.1.5, server: 0.0.0.0:80"


def test_error_log_devices_and_directories_are_refused_at_once(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    started = time.monotonic()
    result = runner.invoke(cli, ["doctor", "--error-log", "/dev/zero"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: error log `/dev/zero` is not a regular file; pass an nginx error "
        "log file (or `-` to read stdin)\n"
    )
    result = runner.invoke(cli, ["doctor", "--error-log", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: error log `{tmp_path}` is a directory;")
    assert time.monotonic() - started < 10


def _entry(i: int) -> bytes:
    if i % 3:
        return f'{ET} [error] 31#31: *{i} broken header: "" {CTX}\n'.encode()
    return (
        f'{ET} [error] 31#31: *{i} broken header: "GET /healthz HTTP/1.1\r\n'
        f'Host: 10.0.1.20\r\n\r\n" {CTX}\n'
    ).encode()


def test_entries_continue_across_batch_boundaries(tmp_path: Path) -> None:
    # continuation lines of one entry on both sides of each 8 MiB batch boundary
    path = tmp_path / "error.log"
    chunk = b"".join(_entry(i) for i in range(30_000))
    data = chunk * (2 * sources.CHUNK_BYTES // len(chunk) + 1)
    path.write_bytes(data)
    n = data.count(f"{ET} [".encode())
    batches = list(iter_error_log(path))
    assert len(batches) > 2
    entries = pl.concat(batches)
    assert entries.height == n
    assert entries["time"].null_count() == 0  # no entry split in two
    multi = entries.filter(pl.col("message").str.contains("\n", literal=True))
    assert multi.height == data.count(b"GET /healthz")
    assert multi["message"].unique().to_list() == [
        'broken header: "GET /healthz HTTP/1.1\nHost: 10.0.1.20\n\n" '
        "while reading PROXY protocol"
    ]
    assert entries[LINE].is_sorted()


def test_a_large_error_log_streams_in_bounded_memory(tmp_path: Path) -> None:
    chunk = b"".join(_entry(i) for i in range(30_000))
    small, large = tmp_path / "small.log", tmp_path / "large.log"
    small.write_bytes(chunk)
    with large.open("wb") as f:
        for _ in range(80 * MiB // len(chunk)):
            f.write(chunk)
    args = ["doctor", "--to", "json", "--error-log"]
    _, base, few = _run_measured([*args, str(small)])
    _, peak, many = _run_measured([*args, str(large)])
    counts = [json.loads(out)["findings"][0]["count"] for out in (few, many)]
    assert counts == [30_000, 30_000 * (80 * MiB // len(chunk))]
    # the whole log in memory took about 6 times its size
    assert peak - base < 120 * MiB, (base, peak)


BOMB = b"a" * (64 << 20) + b"\n"
BOMB_PACKERS = {
    "gzip": lambda data: gzip.compress(data, compresslevel=1),
    "bz2": lambda data: bz2.compress(data, compresslevel=1),
    "xz": lambda data: lzma.compress(data, preset=0),
    "zstd": lambda data: zstandard.ZstdCompressor(level=1).compress(data),
}


@pytest.mark.parametrize("kind", list(BOMB_PACKERS))
def test_a_decompression_bomb_comes_out_in_bounded_pieces(kind: str) -> None:
    """64 MiB of one byte shrinks to a few KiB; before, one 64 KiB read of the
    compressed file came out whole (a 131 KB zstd file held a 4 GB line and
    took 6.4 GB), so memory followed the expansion, not the input."""
    import io

    from pplog.sources._decompress import OUT_PIECE, decompressed_pieces

    packed = BOMB_PACKERS[kind](BOMB) * 2  # two members, as `cat a.gz b.gz`
    sizes = [len(p) for p in decompressed_pieces(io.BytesIO(packed), kind)]
    assert sum(sizes) == 2 * len(BOMB)
    # zstd is fed 1 KiB at a time: one such slice of RLE blocks can give 32 MiB
    bound = OUT_PIECE + (32 << 20 if kind == "zstd" else 0)
    assert max(sizes) <= bound
    assert len(packed) < 1 << 20


def test_garbage_at_the_head_does_not_skip_the_lines_after_it(tmp_path: Path) -> None:
    """Before, 5,000 random bytes before 2,000 good lines made the file
    "binary" and every line was lost; the same junk after line 30 gave 2,000
    requests. Samples from the middle and the end of a plain file decide too."""
    import random

    junk = random.Random(7).randbytes(5000)
    path = tmp_path / "access.log"
    path.write_bytes(junk + b"\n" + goods(0, 2000))
    problems: list[tuple[str, str]] = []
    s = summary(path, on_problem=lambda *p: problems.append(p))
    assert problems == []
    assert s.overview["requests"].item() == 2000
    ds = tmp_path / "ds"
    result = CliRunner().invoke(
        cli, ["ingest", str(path), "--dataset", str(ds), "--final", "-v"]
    )
    assert result.exit_code == 0, result.output
    assert "2,000 rows" in result.output
    # all random: still one warning, and no input could be read at all
    noise = tmp_path / "noise.bin"
    noise.write_bytes(random.Random(8).randbytes(200_000))
    problems.clear()
    with pytest.raises(SourceError, match="could not be read"):
        summary(noise, on_problem=lambda *p: problems.append(p))
    assert [m for _, m in problems] == ["skipped: binary data, not a text log"]


@pytest.mark.parametrize("kind", ["plain", "gz"])
def test_a_hole_that_starts_mid_line_keeps_the_line_after_it(
    tmp_path: Path, kind: str
) -> None:
    """A crash writes part of a line, then NULs, then the next line whole.
    Before, that next (good) line went into the torn line's `binary` reject;
    now the torn part is the reject and the line after the hole is a request,
    with its own offset and the torn line's number. Ingest still tiles."""
    lines = goods(0, 100).splitlines(keepends=True)
    data = b"".join(lines[:60]) + lines[60][:30] + b"\x00" * 5000 + b"".join(lines[61:])
    path = tmp_path / f"access.log.{kind}"
    path.write_bytes(COMPRESS[kind](data))
    df = rows(path)
    assert df.filter(pl.col("reject_reason").is_null()).height == 99
    assert df.get_column("reject_reason").drop_nulls().to_list() == ["binary"]
    assert no_nul_in_values(df)
    after = df.filter((pl.col("line") == 61) & pl.col("reject_reason").is_null())
    offset = after.item(0, "offset")
    assert data[offset : offset + len(lines[61])] == lines[61]
    ds = tmp_path / "ds"
    result = CliRunner().invoke(
        cli,
        ["ingest", str(path), "--dataset", str(ds), "--final", "--format", "combined"],
    )
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["verify", str(ds)])
    assert result.exit_code == 0, result.output
    assert "rows 99, rejects 1 (binary 1)" in result.output


def test_half_a_surrogate_pair_in_a_json_log_is_kept_as_text(tmp_path: Path) -> None:
    r"""An escape=json line with `\ud83d` alone (nginx never writes one; a
    forged or damaged line can) made every reader fail with a TypeError: the
    decoded text held a lone surrogate, which no UTF-8 string can. It is now
    kept as its escape, and a whole pair still becomes one character."""
    log = tmp_path / "json.log"
    log.write_text(
        '{"a":"1.2.3.4","ua":"x\\ud83dy"}\n'
        '{"a":"1.2.3.5","ua":"\\ud83d\\ude00 \\ude00\\ud83d"}\n'
    )
    fmt = 'escape=json {"a":"$remote_addr","ua":"$http_user_agent"}'
    agents = pplog.read_log(log, log_format=fmt).get_column("http_user_agent")
    assert agents.to_list() == ["x\\ud83dy", "\U0001f600 \\ude00\\ud83d"]
    lazy = pplog.scan_log(log, log_format=fmt).collect(engine="streaming")
    assert lazy.get_column("http_user_agent").to_list() == agents.to_list()
    result = CliRunner().invoke(
        cli, ["summarize", str(log), "--log-format", fmt, "--to", "json", "--top", "0"]
    )
    assert result.exit_code == 0, result.output
    shown = {r["http_user_agent"] for r in json.loads(result.stdout)["user_agents"]}
    assert shown == set(agents.to_list())


@pytest.mark.parametrize("after", ["request", "garbage"])
def test_rejects_of_a_torn_line_on_the_c_road_are_one_row_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: str
) -> None:
    """On the C road (plain files past `IN_MEMORY_BYTES`), `--rejects` took
    each reject's offset from the lines with its number: a torn line and the
    line after its hole share one, so the torn part was written twice (the
    second time with the next line's offset). Each reject is one row, with
    its own offset, as on the polars road; so is a garbage line after the hole."""
    import pplog.tasks

    lines = goods(0, 100).splitlines(keepends=True)
    if after == "garbage":
        lines[61] = b"not a log line at all\n"
    data = b"".join(lines[:60]) + lines[60][:30] + b"\x00" * 500 + b"".join(lines[61:])
    log = tmp_path / "access.log"
    log.write_bytes(data)
    monkeypatch.setattr(pplog.tasks, "IN_MEMORY_BYTES", 0)
    files = {}
    for road in ("c", "polars"):
        if road == "polars":
            monkeypatch.setenv("PPLOG_NO_C_SPLIT", "1")
        out = tmp_path / f"{road}.jsonl"
        args = ["summarize", str(log), "--format", "combined", "--to", "json"]
        result = CliRunner().invoke(cli, [*args, "--rejects", str(out)])
        assert result.exit_code == 0, result.output
        files[road] = out.read_text(encoding="utf-8")
    assert files["c"] == files["polars"]
    rejects = [json.loads(line) for line in files["c"].splitlines()]
    assert [r["line"] for r in rejects] == [61] * (2 if after == "garbage" else 1)
    torn = rejects[0]
    assert torn["reject_reason"] == "binary"
    assert data[torn["offset"] :].startswith(lines[60][:30] + b"\x00")
    if after == "garbage":
        assert data[rejects[1]["offset"] :].startswith(lines[61])


def flipped(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


def test_a_gz_whose_checksum_fails_gives_every_line_zcat_gives(
    tmp_path: Path,
) -> None:
    """A bit flipped on disk in a gzipped log: gzip checks its CRC at the
    trailer, after the whole content decompressed. The step that met the
    trailer lost up to 1 MiB of lines, all of a small file (`Error: ...
    nothing to summarize`, where `zcat` gives 1,000 lines); every line
    before the check is now read, and a warning says the data is damaged."""
    text = goods(0, 1000)
    packed = gzip.compress(text)
    path = tmp_path / "access.log.2.gz"
    path.write_bytes(flipped(packed, len(packed) - 6))  # in the stored CRC
    zcat = subprocess.run(["zcat", str(path)], capture_output=True, check=False)
    assert zcat.returncode != 0
    assert zcat.stdout == text
    got: list[bytes] = []
    with path.open("rb") as f:
        pieces = decompressed_pieces(f, "gzip")
        with pytest.raises(sources.DamagedError, match="incorrect data check"):
            got.extend(pieces)
    assert b"".join(got) == text
    result = CliRunner().invoke(cli, ["summarize", str(path), "--to", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["overview"]["requests"] == 1000
    assert "damaged compressed data (incorrect data check)" in result.stderr


def test_a_gz_damaged_mid_stream_gives_the_lines_before_the_damage(
    tmp_path: Path,
) -> None:
    """Deflate data that stops decoding mid-file ends the content there:
    the lines decompressed before it are read, the rest are not there to be
    read (as for `zcat`), and `ingest` takes the file as read to its end
    with one warning, where it waited for the next run forever (the message
    said so: damage is not a file still being compressed)."""
    text = goods(0, 20_000)
    deflate = zlib.compressobj(0, zlib.DEFLATED, -15)  # stored blocks
    damaged = bytearray(deflate.compress(text) + deflate.flush())
    at = before = 0
    for _ in range(10):  # the 11th block's NLEN no longer complements LEN
        size = int.from_bytes(damaged[at + 1 : at + 3], "little")
        at, before = at + 5 + size, before + size
    damaged[at + 3] ^= 0xFF
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", zlib.crc32(text), len(text))
    path = tmp_path / "access.log.2.gz"
    path.write_bytes(header + bytes(damaged) + trailer)
    zcat = subprocess.run(["zcat", str(path)], capture_output=True, check=False)
    assert zcat.returncode != 0
    assert text.startswith(zcat.stdout)  # zcat too stops there (its own buffer)
    want = text[:before].count(b"\n")
    with pytest.warns(pplog.PplogWarning, match="invalid stored block lengths"):
        df = rows(path)
    cut = not text[:before].endswith(b"\n")  # a line cut by the damage: a reject
    assert df.height == want + cut
    assert df.filter(pl.col("reject_reason").is_null()).height == want
    ds = tmp_path / "ds"
    args = ["ingest", str(path), "--dataset", str(ds), "--format", "combined"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "damaged compressed data" in first.output
    assert "wait for the next run" not in first.output
    again = CliRunner().invoke(cli, [*args, "-v"])
    assert again.exit_code == 0, again.output
    assert "nothing new" in again.output
    assert "damaged" not in again.output  # read once: the file is done
    verified = CliRunner().invoke(cli, ["verify", str(ds)])
    assert verified.exit_code == 0, verified.output
    assert f"rows {df.filter(pl.col('reject_reason').is_null()).height:,}" in (
        verified.output
    )
