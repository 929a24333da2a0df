"""Every road to a summary gives the same JSON (issue 12).

`pplog summarize X --to json --top 0` (the CLI, files read in this process)
is the reference. The same rows reach `finish` by other roads:

- the API on the paths (`pplog.summarize(X)`): byte-identical;
- the LazyFrame road (`pplog.summarize(pplog.scan_log(X, include_rejects=True))`);
- the dataset road (`pplog ingest` into a dataset, then `summarize DATASET`);
- a spawned process pool (`jobs=2`), files cut into byte ranges: byte-identical,
  `--rejects` file included.

The frame and dataset roads do not know where the rows came from, so the
overview's `format`, `formats` and `sources` legitimately differ (`frame` or
`dataset`, no per-file detection, no paths), and a frame has no
`unreadable` inputs (`scan_log` warned of them); everything else must be
equal.
A dataset holds one format (`ingest` refuses a mixed directory), so the
mixed directory has no dataset road.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import random
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

import pplog
import pplog.sources
import pplog.tasks
from helpers import CORPORA, SAMPLES
from pplog.cli import cli
from pplog.outputs import ReportOptions
from pplog.outputs import get as get_output

TIMED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_forwarded_for" $request_time '
    '"$upstream_response_time"'
)
# overview fields that say how the rows were read, not what they hold
READ_FIELDS = ("format", "formats", "sources")
# a frame holds rows: the inputs it could not read were warnings of scan_log
FRAME_FIELDS = (*READ_FIELDS, "unreadable")
SINGLE = ("elb", "combined", "main", "timed", "rotated")


def _ignore_problems(_name: str, _message: str) -> None:
    """The CLI prints these as warnings; the roads compared here say nothing."""


class Inputs:
    """The inputs by name: a path, and what the CLI and the API need for it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths: dict[str, Path] = {
            "elb": SAMPLES / "elb-access.log",
            "combined": SAMPLES / "combined-access.log",
            "main": SAMPLES / "main-access.log",
            "timed": SAMPLES / "timed-access.log",
            "rotated": SAMPLES / "rotated",
            "rotated_junk": _rotated_with_rejects(root / "rotated_junk"),
            "mixed": _mixed_directory(root / "mixed"),
        }
        self._cli: dict[tuple[str, ...], tuple[str, bytes]] = {}

    def keywords(self, name: str) -> dict[str, Any]:
        return {"log_format": TIMED} if name == "timed" else {}

    def args(self, name: str) -> list[str]:
        return ["--log-format", TIMED] if name == "timed" else []

    def files(self, name: str) -> list[str]:
        path = self.paths[name]
        return sorted(map(str, path.iterdir())) if path.is_dir() else [str(path)]

    def _run(self, name: str, options: tuple[str, ...]) -> tuple[str, bytes]:
        """`pplog summarize X --to json --top 0` and its `--rejects` (once)."""
        key = (name, *options)
        if key not in self._cli:
            rejects = self.root / f"{len(self._cli)}.cli-rejects.jsonl"
            result = CliRunner().invoke(
                cli,
                [
                    "summarize",
                    str(self.paths[name]),
                    *self.args(name),
                    *options,
                    "--to",
                    "json",
                    "--top",
                    "0",
                    "--rejects",
                    str(rejects),
                ],
                catch_exceptions=False,
            )
            assert result.exit_code == 0, result.output
            self._cli[key] = (result.stdout, rejects.read_bytes())
        return self._cli[key]

    def cli(self, name: str, options: tuple[str, ...] = ()) -> str:
        return self._run(name, options)[0]

    def cli_rejects(self, name: str, options: tuple[str, ...] = ()) -> bytes:
        return self._run(name, options)[1]


def _rotated_with_rejects(folder: Path) -> Path:
    """The rotated sample set with rejected lines in every member."""
    folder.mkdir()
    rotated = SAMPLES / "rotated"
    oldest = gzip.decompress((rotated / "access.log.2.gz").read_bytes())
    older = (rotated / "access.log.1").read_bytes()
    live = (rotated / "access.log").read_bytes()

    def insert(data: bytes, at: int, junk: list[bytes]) -> bytes:
        lines = data.splitlines(keepends=True)
        return b"".join(lines[:at] + junk + lines[at:])

    proxy = b"PROXY TCP4 198.51.100.7 10.0.0.5 5123 80\n"
    (folder / "access.log.2.gz").write_bytes(
        gzip.compress(insert(oldest, 40, [b"junk one\n"]), mtime=0)
    )
    (folder / "access.log.1").write_bytes(insert(older, 3, [proxy, b"junk two\n"]))
    (folder / "access.log").write_bytes(
        insert(live, 1, [b"\n", b"junk three\n", b"junk four\n"])
    )
    return folder


def _mixed_directory(folder: Path) -> Path:
    """Sample logs of four formats, one gzipped, damaged lines, a file no
    preset fits, a truncated .gz and a binary file."""
    folder.mkdir()
    elb = (SAMPLES / "elb-access.log").read_bytes().splitlines(keepends=True)
    junk = [
        b"PROXY TCP4 198.51.100.7 10.0.0.5 5123 80\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",  # TLS on a plain port
        b"\n",
        b'203.0.113.9 - - [20/Nov/2026:00:01:00 +0000] "GET /x HTTP/1.1" abc 12 '
        b'"-" "-"\n',
    ]
    (folder / "elb.log").write_bytes(
        b"".join(elb[:500] + junk[:2] + elb[500:900] + junk[2:] + elb[900:1200])
    )
    combined = (SAMPLES / "combined-access.log").read_bytes()
    (folder / "combined.log.gz").write_bytes(
        gzip.compress(combined[: combined.index(b"\n", 150_000) + 1], mtime=0)
    )
    shutil.copy(SAMPLES / "main-access.log", folder / "main.log")
    # NCSA common: no referrer, no user agent
    common = combined.splitlines(keepends=True)[1500:1800]
    (folder / "common.log").write_bytes(
        b"".join(re.sub(rb' "[^"]*" "[^"]*"\n$', b"\n", line) for line in common)
    )
    # unreadable: a truncated rotation, and binary data
    main = (SAMPLES / "main-access.log").read_bytes()
    (folder / "main.log.1.gz").write_bytes(gzip.compress(main, mtime=0)[:30_000])
    (folder / "blob.bin").write_bytes(random.Random(0).randbytes(20_000))
    (folder / "notes.txt").write_text(
        "this is not an access log\n" * 20 + "key=value other=thing\n" * 5
    )
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    return Inputs(tmp_path_factory.mktemp("roads"))


def as_json(summary: pplog.Summary) -> str:
    """The JSON output of `summary`, as `--to json --top 0` writes it."""
    out = io.StringIO()
    get_output("json").write(summary, ReportOptions(stream=out, top=0))
    return out.getvalue()


def without(
    text: str, fields: tuple[str, ...] = (), tables: tuple[str, ...] = ()
) -> str:
    """The JSON document with overview `fields` and `tables` blanked, re-encoded
    in the output's layout (so what is left compares as text, keys in order)."""
    doc = json.loads(text)
    for name in fields:
        doc["overview"][name] = "<differs by road>"
    for name in tables:
        doc[name] = "<left out>"
    return json.dumps(doc, ensure_ascii=False, indent=2)


def frame_road(inputs: Inputs, name: str, *, eager: bool = False, **kwargs: Any) -> str:
    """`summarize` of `scan_log` (or, `eager`, of `read_log`) with rejects."""
    keywords = inputs.keywords(name)
    read = pplog.read_log if eager else pplog.scan_log
    with warnings.catch_warnings():
        # the inputs it cannot read are warnings of scan_log (as it is read)
        warnings.simplefilter("ignore", pplog.PplogWarning)
        frame = read(inputs.paths[name], include_rejects=True, **keywords)
        return as_json(pplog.summarize(frame, top=0, **kwargs))


def dataset_road(inputs: Inputs, name: str, folder: Path, **kwargs: Any) -> str:
    dataset = folder / f"{name}-dataset"
    result = pplog.ingest(
        inputs.files(name), dataset, final=True, geoip=[], **inputs.keywords(name)
    )
    assert result.problems == []
    return as_json(pplog.summarize(dataset, top=0, **kwargs))


@pytest.mark.parametrize("name", [*SINGLE, "rotated_junk", "mixed"])
def test_api_on_the_paths_is_the_cli(inputs: Inputs, name: str) -> None:
    summary = pplog.summarize(
        inputs.paths[name], top=0, on_problem=_ignore_problems, **inputs.keywords(name)
    )
    assert as_json(summary) == inputs.cli(name)


@pytest.mark.parametrize("name", ["mixed", "timed"])
def test_queries_by_client_in_passes_give_the_same_tables(
    inputs: Inputs, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large inputs group their clients and de-duplicate their (client,
    path) pairs over several passes (bounded memory); tiny passes here give
    the one-pass answer."""
    from pplog.reports import mapping

    reference = inputs.cli(name)  # one pass: computed before the patch
    assert json.loads(reference)["overview"]["requests"] > 5 * 97
    monkeypatch.setattr(mapping, "PASS_REQUESTS", 97)
    monkeypatch.setattr(mapping, "PAIR_PASS_REQUESTS", 97)
    collect = mapping._collect
    keyed: list[str] = []  # the queries keyed by client, one per pass

    def spy(lf: pl.LazyFrame) -> pl.DataFrame:
        out = collect(lf)
        if "client_hash" in out.columns or "http_user_agent" in out.columns[:2]:
            keyed.append("pairs" if "client_hash" in out.columns else "clients")
        return out

    monkeypatch.setattr(mapping, "_collect", spy)
    summary = pplog.summarize(
        inputs.paths[name], top=0, on_problem=_ignore_problems, **inputs.keywords(name)
    )
    assert as_json(summary) == reference
    assert keyed.count("clients") > 5
    assert keyed.count("clients") == keyed.count("pairs")


def test_the_reference_has_every_table(inputs: Inputs) -> None:
    """The comparisons below are not over empty documents."""
    doc = json.loads(inputs.cli("mixed"))
    mixed = inputs.paths["mixed"]
    overview = doc["overview"]
    assert overview["format"] == "mixed"
    assert overview["rejected"] == 30
    assert overview["rejected_by_reason"] == {
        "unknown_format": 25,
        "no_match": 3,  # two in elb.log, the torn last line of main.log.1.gz
        "binary": 1,
        "blank_line": 1,
    }
    assert [u["source"] for u in overview["unreadable"]] == [
        str(mixed / "blob.bin"),
        str(mixed / "main.log.1.gz"),
    ]
    named = [c for c in doc["clients"] if c["client_ip"] is not None]
    assert len(named) == overview["clients"] > 400
    assert [(r["source"], r["line"]) for r in doc["reject_samples"]] == [
        (str(mixed / "elb.log"), 501),
        (str(mixed / "elb.log"), 502),
        (str(mixed / "elb.log"), 903),
        (str(mixed / "elb.log"), 904),
        (str(mixed / "main.log.1.gz"), 1652),
    ]
    timed = json.loads(inputs.cli("timed"))
    assert "request_time_p99" in timed["paths"][0]
    # who the visitors are: every road below compares these tables too
    visitors = overview["requests"] - overview["health_checks"]
    for table in ("browsers", "operating_systems", "devices"):
        assert len(doc[table]) > 1, table
        assert sum(r["requests"] for r in doc[table]) == visitors, table


@pytest.mark.parametrize(
    "name",
    [
        *SINGLE,
        "rotated_junk",
        "mixed",
    ],
)
@pytest.mark.parametrize("eager", [False, True], ids=["lazy", "eager"])
def test_lazyframe_road(inputs: Inputs, name: str, *, eager: bool) -> None:
    frame = frame_road(inputs, name, eager=eager)
    assert json.loads(frame)["overview"]["format"] == "frame"
    assert without(frame, FRAME_FIELDS) == without(inputs.cli(name), FRAME_FIELDS)


@pytest.mark.parametrize("name", [*SINGLE, "mixed"])
@pytest.mark.parametrize(("top", "by"), [(1, "path"), (3, "path"), (3, "route")])
def test_a_cut_summary_gives_the_frame_road_tables(
    inputs: Inputs, name: str, top: int, by: str
) -> None:
    """Cut to `top` rows, the files' one task maps the pairs of the shown
    rows only (`mapping.Shown`); a frame of the same rows maps every pair:
    the same tables."""
    summary = pplog.summarize(
        inputs.paths[name],
        top=top,
        by=by,
        on_problem=_ignore_problems,
        **inputs.keywords(name),
    )
    keywords = inputs.keywords(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pplog.PplogWarning)
        frame = pplog.scan_log(inputs.paths[name], include_rejects=True, **keywords)
        reference = pplog.summarize(frame, top=top, by=by)
    assert summary.clients.height == min(top, reference.overview["clients"].item())
    cut = ("reject_samples",) if name == "mixed" else ()
    assert without(as_json(summary), FRAME_FIELDS, cut) == without(
        as_json(reference), FRAME_FIELDS, cut
    )


@pytest.mark.parametrize("name", ["rotated_junk", "mixed"])
def test_lazyframe_road_apart_from_reject_samples(inputs: Inputs, name: str) -> None:
    """What the known reject-samples bug leaves: every other table agrees."""
    frame = frame_road(inputs, name)
    cut = ("reject_samples",)
    assert without(frame, FRAME_FIELDS, cut) == without(
        inputs.cli(name), FRAME_FIELDS, cut
    )


@pytest.mark.parametrize("name", [*SINGLE, "rotated_junk"])
def test_dataset_road(inputs: Inputs, name: str, tmp_path: Path) -> None:
    dataset = dataset_road(inputs, name, tmp_path)
    assert json.loads(dataset)["overview"]["format"] == "dataset"
    assert without(dataset, READ_FIELDS) == without(inputs.cli(name), READ_FIELDS)


def test_dataset_road_apart_from_reject_samples(inputs: Inputs, tmp_path: Path) -> None:
    dataset = dataset_road(inputs, "rotated_junk", tmp_path)
    cut = ("reject_samples",)
    reference = inputs.cli("rotated_junk")
    assert without(dataset, READ_FIELDS, cut) == without(reference, READ_FIELDS, cut)


def test_dataset_road_over_several_ingest_runs(tmp_path: Path) -> None:
    """A dataset filled by cron runs (rotations first, then a growing live
    log) summarizes as the files it read."""
    logs = tmp_path / "logs"
    logs.mkdir()
    rotated = SAMPLES / "rotated"
    live = (rotated / "access.log").read_bytes()
    half = live.index(b"\n", len(live) // 2) + 1
    dataset = tmp_path / "dataset"

    def run() -> int:
        files = sorted(map(str, logs.iterdir()))
        result = pplog.ingest(files, dataset, geoip=[], final_grace=0)
        assert result.problems == []
        return result.rows

    shutil.copy(rotated / "access.log.2.gz", logs)
    assert run() == 350
    shutil.copy(rotated / "access.log.1", logs)
    (logs / "access.log").write_bytes(live[:half])
    assert run() == 350 + live[:half].count(b"\n")
    with (logs / "access.log").open("ab") as f:
        f.write(live[half:])
    assert run() == live[half:].count(b"\n")
    assert run() == 0  # nothing new
    summary = pplog.summarize(dataset, top=0)
    reference = CliRunner().invoke(
        cli, ["summarize", str(logs), "--to", "json", "--top", "0"]
    )
    assert reference.exit_code == 0, reference.output
    assert json.loads(reference.stdout)["overview"]["lines"] == 1050
    assert without(as_json(summary), READ_FIELDS) == without(
        reference.stdout, READ_FIELDS
    )


@pytest.mark.parametrize("name", ["rotated_junk", "mixed"])
def test_rejects_file_is_the_same_on_every_road(
    inputs: Inputs, name: str, tmp_path: Path
) -> None:
    expected = inputs.cli_rejects(name)
    assert expected.count(b"\n") == json.loads(inputs.cli(name))["overview"]["rejected"]
    frame_road(inputs, name, rejects=tmp_path / "frame.jsonl")
    assert (tmp_path / "frame.jsonl").read_bytes() == expected
    if name != "mixed":
        dataset_road(inputs, name, tmp_path, rejects=tmp_path / "dataset.jsonl")
        assert (tmp_path / "dataset.jsonl").read_bytes() == expected


@pytest.fixture
def spools(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Where each map task kept its rows: ``memory`` or ``parquet``."""
    kept: list[str] = []
    real = pplog.tasks.spooled

    def spooled(lf: Any, spool: Path | None, **kwargs: Any) -> Any:
        kept.append("memory" if spool is None else "parquet")
        return real(lf, spool, **kwargs)

    monkeypatch.setattr(pplog.tasks, "spooled", spooled)
    return kept


@pytest.mark.parametrize("name", [*SINGLE, "rotated_junk", "mixed"])
def test_spooled_and_in_memory_rows_give_the_same_tables(
    inputs: Inputs,
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spools: list[str],
) -> None:
    """Small plain inputs are parsed into memory, the rest into a Parquet
    spool (`tasks.IN_MEMORY_BYTES`): the samples take the first road (not
    the rotated sets: a compressed member's text size is not known, so
    they are spooled), and with the bound at 0 the second; tables and
    rejects are the same."""
    keywords = inputs.keywords(name)
    held = pplog.summarize(
        inputs.paths[name],
        top=0,
        rejects=tmp_path / "held.jsonl",
        on_problem=_ignore_problems,
        **keywords,
    )
    assert ("memory" in spools) == (not name.startswith("rotated"))
    monkeypatch.setattr(pplog.tasks, "IN_MEMORY_BYTES", 0)
    spools.clear()
    spooled_summary = pplog.summarize(
        inputs.paths[name],
        top=0,
        rejects=tmp_path / "spooled.jsonl",
        on_problem=_ignore_problems,
        **keywords,
    )
    assert set(spools) == {"parquet"}
    assert as_json(held) == as_json(spooled_summary) == inputs.cli(name)
    expected = inputs.cli_rejects(name)
    assert (tmp_path / "held.jsonl").read_bytes() == expected
    assert (tmp_path / "spooled.jsonl").read_bytes() == expected


@pytest.mark.parametrize("kind", ["stdin", "gzip"])
def test_inputs_of_unknown_text_size_are_spooled(
    tmp_path: Path, spools: list[str], kind: str
) -> None:
    """stdin and a compressed file: their text's size is not known before it
    is read, so their rows go to the Parquet spool, which bounds memory."""
    data = (SAMPLES / "elb-access.log").read_bytes()
    args = ["summarize", "--format", "elb_log", "--to", "json", "--top", "0"]
    if kind == "stdin":
        result = CliRunner().invoke(cli, [*args, "-"], input=data)
    else:
        packed = tmp_path / "access.log.1.gz"
        packed.write_bytes(gzip.compress(data))
        result = CliRunner().invoke(cli, [*args, str(packed)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["overview"]["requests"] > 0
    assert spools == ["parquet"]


# the same filters, as options and as keywords
FILTERS = {
    "5xx-by-route": (
        ("--status", "5xx", "--by", "route"),
        {"status": "5xx", "by": "route"},
    ),
    "client-without-bots": (
        ("--client", "203.0.113.0/24", "--exclude-bots"),
        {"client": ["203.0.113.0/24"], "exclude_bots": True},
    ),
    "path-and-window": (
        (
            "--path",
            "^/api/",
            "--since",
            "2026-11-27T06:02:00Z",
            "--until",
            "2026-11-27T06:05:00Z",
        ),
        {
            "path": ["^/api/"],
            "since": "2026-11-27T06:02:00Z",
            "until": "2026-11-27T06:05:00Z",
        },
    ),
}


@pytest.mark.parametrize("chosen", sorted(FILTERS))
def test_filtered_roads(inputs: Inputs, chosen: str, tmp_path: Path) -> None:
    """Filters and `--by route` act alike on the frame and dataset roads."""
    options, keywords = FILTERS[chosen]
    reference = inputs.cli("rotated_junk", options)
    doc = json.loads(reference)["overview"]
    assert 0 < doc["requests"] < doc["lines"] - doc["rejected"]
    want = without(reference, READ_FIELDS)
    assert without(frame_road(inputs, "rotated_junk", **keywords), READ_FIELDS) == want
    dataset = dataset_road(inputs, "rotated_junk", tmp_path, **keywords)
    assert without(dataset, READ_FIELDS) == want


# -- the process pool ---------------------------------------------------------


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> list[list[pplog.tasks.Task]]:
    """Pool every input, and cut plain files over 32 KiB into byte ranges.

    Returns the task lists the pool was given, to check it really ran.
    """
    monkeypatch.setattr(pplog.tasks, "POOL_MIN_BYTES", 0)
    cut = functools.partial(pplog.sources.split_source, min_bytes=16 << 10)
    monkeypatch.setattr(pplog.sources, "split_source", cut)
    given: list[list[pplog.tasks.Task]] = []
    split: Callable[..., list[pplog.tasks.Task]] = pplog.tasks.split

    def recorded(*args: Any, **kwargs: Any) -> list[pplog.tasks.Task]:
        given.append(split(*args, **kwargs))
        return given[-1]

    monkeypatch.setattr(pplog.tasks, "split", recorded)
    return given


def spans(tasks: list[pplog.tasks.Task]) -> list[tuple[str, tuple[int, int] | None]]:
    return [(s.name, s.span) for t in tasks for s in t.sources]


@pytest.mark.parametrize("name", ["timed", "rotated_junk", "mixed"])
def test_two_processes_give_the_same_json_and_rejects(
    inputs: Inputs,
    name: str,
    pool: list[list[pplog.tasks.Task]],
    tmp_path: Path,
) -> None:
    summary = pplog.summarize(
        inputs.paths[name],
        top=0,
        jobs=2,
        rejects=tmp_path / "rejects.jsonl",
        on_problem=_ignore_problems,
        **inputs.keywords(name),
    )
    assert len(pool) == 1
    assert len(pool[0]) > 1
    # the plain files were cut in two
    cut = [span for _name, span in spans(pool[0]) if span is not None]
    assert len(cut) >= 2
    assert as_json(summary) == inputs.cli(name)
    assert (tmp_path / "rejects.jsonl").read_bytes() == inputs.cli_rejects(name)


def test_two_processes_with_filters(
    inputs: Inputs, pool: list[list[pplog.tasks.Task]], tmp_path: Path
) -> None:
    options, keywords = FILTERS["client-without-bots"]
    summary = pplog.summarize(
        inputs.paths["mixed"],
        top=0,
        jobs=2,
        rejects=tmp_path / "rejects.jsonl",
        on_problem=_ignore_problems,
        **keywords,
    )
    assert len(pool) == 1
    assert as_json(summary) == inputs.cli("mixed", options)
    assert (tmp_path / "rejects.jsonl").read_bytes() == inputs.cli_rejects(
        "mixed", options
    )


def _big_log(path: Path) -> list[dict[str, Any]]:
    """A ~2 MB elb_log with rejected lines in both halves; the rejects
    expected (source, line, offset, reason, raw), worked out here."""
    sample = (SAMPLES / "elb-access.log").read_bytes().splitlines(keepends=True)
    lines = sample * 4
    junk = {
        10: b"PROXY TCP4 198.51.100.7 10.0.0.5 5123 80\n",
        4_000: b"\n",
        6_500: b"\x16\x03\x01\x02\x01\n",
        6_501: b"1.2.3.4 - - [32/Nov/2026:00:00:00 +0000] "
        b'"GET / HTTP/1.1" 200 1 "-" "-"\n',
        9_000: b'1.2.3.4 - - [20/Nov/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 '
        b'99999999999999999999999 "-" "-"\n',
        11_000: b"junk at the end\n",
    }
    reasons = ["no_match", "blank_line", "no_match", "bad_time", "bad_number"]
    reasons.append("no_match")
    for at in sorted(junk):  # ascending: each lands at its final index
        lines.insert(at, junk[at])
    path.write_bytes(b"".join(lines))
    expected, offset = [], 0
    wanted = {line: reason for line, reason in zip(sorted(junk), reasons, strict=True)}
    for i, line in enumerate(lines):
        if i in wanted:
            expected.append(
                {
                    "source": str(path),
                    "line": i + 1,
                    "offset": offset,
                    "reject_reason": wanted[i],
                    "raw": line[:-1].decode(),
                }
            )
        offset += len(line)
    return expected


def test_byte_ranges_of_a_big_file_keep_lines_and_offsets(
    pool: list[list[pplog.tasks.Task]], tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    expected = _big_log(log)
    size = log.stat().st_size
    assert size > 2_000_000
    one = pplog.summarize(log, top=0, rejects=tmp_path / "one.jsonl")
    two = pplog.summarize(log, top=0, jobs=2, rejects=tmp_path / "two.jsonl")
    assert len(pool) == 1  # jobs=1 never splits
    ranges = [span for _name, span in spans(pool[0])]
    assert len(ranges) == 2
    assert ranges[0] is not None
    assert ranges[1] is not None
    assert ranges[0][0] == 0
    assert ranges[0][1] == ranges[1][0]
    assert ranges[1][1] == size
    # rejects fall on both sides of the cut, and the samples take from both
    assert expected[0]["offset"] < ranges[0][1] < expected[-1]["offset"]
    assert as_json(two) == as_json(one)
    rejects = (tmp_path / "two.jsonl").read_bytes()
    assert rejects == (tmp_path / "one.jsonl").read_bytes()
    assert [json.loads(line) for line in rejects.splitlines()] == expected
    samples = json.loads(as_json(two))["reject_samples"]
    assert samples == [
        {k: r[k] for k in ("source", "line", "reject_reason", "raw")}
        for r in expected[:5]
    ]


@pytest.mark.parametrize("bound", [0, 1 << 30], ids=["spooled", "in-memory"])
def test_byte_ranges_mapped_in_memory_or_spooled_give_the_same_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bound: int
) -> None:
    """A byte range's lines (read by the Python reader, with the whole file's
    line numbers and offsets) held in memory or spooled: the same partial
    and the same rejects as the whole file."""
    log = tmp_path / "access.log"
    expected = _big_log(log)
    monkeypatch.setattr(pplog.tasks, "IN_MEMORY_BYTES", bound)
    fmt = pplog.formats.get_format("elb_log")
    policy = pplog.LogSpec.build().resolve_policy(fmt)
    settings = pplog.tasks.MapSettings(escape=fmt.escape)
    whole = pplog.sources.Source(str(log), log)
    parts = pplog.sources.split_source(whole, 2, min_bytes=16 << 10)
    assert [p.span is not None for p in parts] == [True, True]
    partials = [
        pplog.tasks.map_task(
            pplog.tasks.Task((part,), fmt, policy),
            settings,
            rejects=str(tmp_path / f"{i}.jsonl"),
        )
        for i, part in enumerate(parts)
    ]
    monkeypatch.setattr(pplog.tasks, "IN_MEMORY_BYTES", 1 << 30)
    reference = pplog.tasks.map_task(pplog.tasks.Task((whole,), fmt, policy), settings)
    merged = pplog.tasks.merge(partials)
    for name, frame in reference.frames.items():
        keys = [c for c in frame.columns if frame.schema[c] != pl.Float64]
        assert merged[name].sort(keys).equals(frame.sort(keys)), name
    rejects = b"".join((tmp_path / f"{i}.jsonl").read_bytes() for i in range(2))
    assert [json.loads(line) for line in rejects.splitlines()] == expected


@pytest.mark.parametrize(
    ("fmt", "samples"),
    [
        ("elb_log", ["elb-access.log"]),
        ("main", ["main-access.log"]),
        ("combined", ["combined-access.log"]),
    ],
)
def test_a_compressed_log_takes_the_c_split_and_gives_the_plain_files_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, samples: list[str]
) -> None:
    """A gzipped log's blocks are split in C as they are decompressed
    (`_fastsplit.block_frame`; before, polars' expressions parsed every
    line: 2M elb_log lines 3.1-3.4 s, now 2.4-2.7 s). With the corpus' nasty
    lines among them (bytes that are not UTF-8, CR, NUL holes, escapes, a
    line over 1 MiB: blocks the C split leaves to the parse), the tables
    and the rejects are those of the same lines in a plain file, with and
    without a trusted balancer (the C split's trust decisions)."""
    data = b"".join((SAMPLES / s).read_bytes() for s in samples)
    nasty = (CORPORA / "nasty" / "nasty_lines.log").read_bytes()
    long_line = b"x" * (1 << 20) + b" " + b"y" * 100 + b"\n"
    text = data + nasty + data[:4000].rsplit(b"\n", 1)[0] + b"\n" + long_line + data
    plain = tmp_path / "plain" / "access.log"
    packed = tmp_path / "packed" / "access.log.gz"
    plain.parent.mkdir()
    packed.parent.mkdir()
    plain.write_bytes(text)
    packed.write_bytes(gzip.compress(text))
    split: list[int] = []
    real = pplog._fastsplit.block_frame

    def counted(*args: Any, **kwargs: Any) -> Any:
        frame = real(*args, **kwargs)
        split.append(0 if frame is None else frame.height)
        return frame

    monkeypatch.setattr(pplog._fastsplit, "block_frame", counted)
    for trusted in ([], ["--set-real-ip-from", "203.0.113.0/24"]):
        out = []
        for path in (plain, packed):
            rejects = path.parent / "rejects.jsonl"
            args = ["summarize", str(path), "--format", fmt, "--to", "json"]
            args += ["--top", "0", "--rejects", str(rejects), *trusted]
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, result.output
            named = str(path).encode()
            out.append(
                (
                    result.stdout.encode().replace(named, b"LOG"),
                    rejects.read_bytes().replace(named, b"LOG"),
                )
            )
        assert out[0] == out[1]
        assert json.loads(out[0][0])["overview"]["requests"] > 0
    # the plain file (held in memory) is read by polars, the gzipped blocks
    # split in C: at least the block of sample lines after the long line, in
    # each of the two runs (a block with a byte the C split refuses is the
    # parse's, whole)
    assert sum(split) >= 2 * data.count(b"\n"), split
