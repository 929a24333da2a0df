"""zstd files that start with a skippable frame (what `pzstd` writes) are zstd.

The zstd format lets a file hold skippable frames (magic 0x184D2A50 to
0x184D2A5F, little-endian, then a 4-byte length and that many bytes) before,
between and after its frames; `pzstd` puts one before each frame, holding the
frame's size. Such a file was sniffed as "binary data, not a text log" and
its lines dropped by `summarize` and `ingest`. The real file comes from
`pzstd` (the zstd package; `.ci/run` installs it and sets
PPLOG_REQUIRE_PZSTD=1, which turns the skip into a failure).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

import pplog
from pplog import sources
from pplog.sources import ZSTD_SLICE, compression, compression_of
from pplog.sources._decompress import decompressed_pieces, inflated_prefix

SAMPLE = Path(__file__).resolve().parents[1] / "sample_logs" / "elb-access.log"


def _skippable(payload: bytes, nibble: int = 0) -> bytes:
    return struct.pack("<II", 0x184D2A50 + nibble, len(payload)) + payload


def _pzstd(tmp_path: Path, data: bytes, *args: str) -> Path:
    """`data` written by the real `pzstd`, or skip (fail on CI)."""
    tool = shutil.which("pzstd")
    if tool is None:
        if os.environ.get("PPLOG_REQUIRE_PZSTD") == "1":
            pytest.fail("PPLOG_REQUIRE_PZSTD=1 but no `pzstd` on PATH", pytrace=False)
        pytest.skip("pzstd is not installed (apt-get install zstd)")
    plain = tmp_path / "pz.log"
    plain.write_bytes(data)
    out = tmp_path / "pz.log.zst"
    subprocess.run([tool, "-q", *args, str(plain), "-o", str(out)], check=True)
    plain.unlink()
    return out


@pytest.mark.parametrize("nibble", range(16))
def test_every_skippable_magic_is_zstd(nibble: int) -> None:
    head = _skippable(b"\x00" * 4, nibble) + zstandard.compress(b"x\n")
    assert compression_of(head) == "zstd"


def test_text_is_not_taken_for_a_skippable_frame() -> None:
    assert compression_of(b"P*M a log line\n") is None


def test_skippable_frames_before_between_and_after_frames_are_skipped() -> None:
    """Skippable frames of any size (one larger than the slice zstd is fed
    in) hold no output; the frames around them are all read."""
    lines = SAMPLE.read_bytes()
    half = len(lines) // 2
    data = (
        _skippable(b"\xaa" * (3 * ZSTD_SLICE + 5), 3)
        + zstandard.compress(lines[:half])
        + _skippable(b"", 15)
        + zstandard.compress(lines[half:])
        + _skippable(b"meta", 0)
    )

    class Raw:
        def __init__(self) -> None:
            self.at = 0

        def read(self, n: int) -> bytes:
            out = data[self.at : self.at + n]
            self.at += len(out)
            return out

    assert b"".join(decompressed_pieces(Raw(), "zstd", piece=777)) == lines  # type: ignore[arg-type]
    assert lines.startswith(inflated_prefix(data, "zstd", limit=1 << 30))
    assert inflated_prefix(data, "zstd").count(b"\n") >= 200  # detection's sample


def test_pzstd_file_is_read_whole(tmp_path: Path) -> None:
    """`pzstd -q pz.log -o pz.log.zst; pplog summarize pz.log.zst` read 0 lines
    ("binary data, not a text log")."""
    data = SAMPLE.read_bytes()
    zst = _pzstd(tmp_path, data)
    assert zst.read_bytes()[:4] == struct.pack("<I", 0x184D2A50)  # pzstd's header
    assert compression(zst) == "zstd"
    for forced in ([], ["--format", "elb_log"]):
        proc = subprocess.run(
            [sys.executable, "-m", "pplog", "summarize", str(zst), "--to", "json"]
            + forced,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        assert proc.stderr == ""
        overview = json.loads(proc.stdout)["overview"]
        assert overview["unreadable"] == []
        assert overview["format"] == "elb_log"
        assert overview["lines"] == overview["requests"] == data.count(b"\n")


def test_pzstd_file_of_many_frames_matches_the_plain_file(tmp_path: Path) -> None:
    """`pzstd -p 4 -1` on a larger log: a skippable frame before each of its
    frames; the rows are the plain file's."""
    data = SAMPLE.read_bytes() * 8
    zst = _pzstd(tmp_path, data, "-p", "4", "-1")
    assert zst.read_bytes().count(struct.pack("<I", 0x184D2A50)) > 1
    plain = tmp_path / "plain.log"
    plain.write_bytes(data)
    got = pplog.read_log(zst, format="elb_log", include_rejects=True)
    want = pplog.read_log(plain, format="elb_log", include_rejects=True)
    assert got.drop("source").equals(want.drop("source"))
    assert (
        sources.read_head(sources.Source("z", zst), 3) == data.decode().split("\n")[:3]
    )


def test_ingest_reads_a_pzstd_file(tmp_path: Path) -> None:
    """`pplog ingest pz.log.zst` counted it as a binary file and wrote 0 rows."""
    data = SAMPLE.read_bytes()
    zst = _pzstd(tmp_path, data)
    dataset = tmp_path / "ds"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pplog",
            "ingest",
            str(zst),
            "--dataset",
            str(dataset),
            "--final",
            "--format",
            "elb_log",
            "-v",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    lines = data.count(b"\n")
    assert "warning" not in proc.stderr
    assert f"{lines:,} rows, 0 rejects" in proc.stderr
    got = subprocess.run(
        [sys.executable, "-m", "pplog", "summarize", str(dataset), "--to", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert json.loads(got.stdout)["overview"]["lines"] == lines
