"""benchmarks/: the peers compute pplog's tables, and no time is recorded for changed output."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_summarize  # noqa: E402
import genlog  # noqa: E402
import peers  # noqa: E402

LINES = 20_000  # holds every kind of line genlog writes (users with spaces, scanners, PROXY)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "elb.log"
    with path.open("wb") as f:
        genlog.generate("elb_log", LINES, out=f)
    return path


def _revision(
    tmp_path: Path, edit: tuple[str, str, str] | None = None
) -> Callable[[str], AbstractContextManager[Path]]:
    """A stand-in for `revision_src`: a copy of this tree's src/, optionally edited."""

    @contextmanager
    def fake(rev: str) -> Iterator[Path]:
        src = tmp_path / f"rev-{rev}" / "src"
        shutil.copytree(REPO / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
        if edit:
            name, old, new = edit
            target = src / name
            text = target.read_text()
            assert old in text
            target.write_text(text.replace(old, new))
        yield src

    return fake


def test_first_difference_names_the_first_differing_line(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    a.write_bytes(b'{\n  "lines": 3,\n  "x": 1\n}\n')
    b.write_bytes(b'{\n  "lines": 3,\n  "x": 2\n}\n')
    c.write_bytes(b'{\n  "lines": 3,\n  "x": 1\n}\n\n')
    assert bench_summarize.first_difference(a, a) is None
    assert bench_summarize.first_difference(a, b) == (
        "line 3: b'  \"x\": 1\\n' != b'  \"x\": 2\\n'"
    )
    assert bench_summarize.first_difference(a, c) == (
        f"line 5: only {c} goes on: b'\\n'"
    )


def test_revision_src_is_the_revisions_source() -> None:
    """A revision's src/, its extension built (as pip builds it: a baseline
    on polars' road alone would not be the code that revision ran) and its
    bytecode written."""
    import sysconfig

    with bench_summarize.revision_src("HEAD") as src:
        assert (src / "pplog" / "cli.py").is_file()
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        assert (src / "pplog" / f"_splitc{suffix}").is_file()
        assert list((src / "pplog" / "__pycache__").glob("cli.*.pyc"))
    assert not src.exists()


def test_record_needs_a_revision_to_compare_with(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    with pytest.raises(SystemExit) as exc:
        bench_summarize.main(["--record", "--results", str(results)])
    assert exc.value.code == 2
    assert not results.exists()


def test_record_refuses_when_the_json_differs_from_the_revision(
    tmp_path: Path,
    log: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the "revision" lists every table's rows in reverse
    edit = (
        "pplog/outputs/json.py",
        "df = with_iso_times(df)",
        "df = with_iso_times(df.reverse())",
    )
    monkeypatch.setattr(bench_summarize, "revision_src", _revision(tmp_path, edit))
    results = tmp_path / "RESULTS.md"
    argv = ["--log", str(log), "--repeat", "1", "--goaccess-lines", "0"]
    argv += ["--check-against", "old", "--record", "--results", str(results)]
    assert bench_summarize.main(argv) == 1
    err = capsys.readouterr().err
    found = re.search(r"JSON output differs from old's: line (\d+): (.*)", err)
    assert found, err
    assert int(found.group(1)) > 20  # past the overview, inside the first table
    assert '"client_ip"' in found.group(2)
    assert "not recording: the output changed" in err
    assert not results.exists()


def test_record_after_identical_output_writes_the_check(
    tmp_path: Path, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_summarize, "revision_src", _revision(tmp_path))
    results = tmp_path / "RESULTS.md"
    argv = ["--log", str(log), "--repeat", "1", "--goaccess-lines", "0"]
    argv += ["--check-against", "old", "--record", "--results", str(results)]
    assert bench_summarize.main(argv) == 0
    text = results.read_text()
    assert f"| pplog summarize | {LINES:,} |" in text
    assert "JSON output (`--top 0`) byte-identical to pplog @ old's" in text
    assert "Command: `python benchmarks/bench_summarize.py --log " in text


def test_record_names_its_own_command_when_goaccess_runs_too(
    tmp_path: Path, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GoAccess run once overwrote the command line the record quotes."""
    fake = tmp_path / "bin" / "goaccess"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "GoAccess - 1.7."\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(bench_summarize, "revision_src", _revision(tmp_path))
    results = tmp_path / "RESULTS.md"
    argv = ["--log", str(log), "--repeat", "1", "--goaccess-lines", "50"]
    argv += ["--check-against", "old", "--record", "--results", str(results)]
    assert bench_summarize.main(argv) == 0
    text = results.read_text()
    assert "| goaccess 1.7 (json output) | 50 |" in text
    command = next(line for line in text.splitlines() if line.startswith("Command:"))
    assert command.startswith("Command: `python benchmarks/bench_summarize.py --log ")
    assert "--goaccess-lines 50" in command


# --- the peers ------------------------------------------------------------------


def _pplog_json(log: Path) -> dict[str, list[dict[str, object]]]:
    argv = bench_summarize.pplog_argv(REPO / "src", "elb_log")
    out = bench_summarize.json_output(argv, log, log.with_suffix(".json"))
    return json.loads(out.read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("peer", peers.PEERS)
def test_peer_tables_are_pplogs_top_10(peer: str, log: Path) -> None:
    pytest.importorskip(peer)
    mine = _pplog_json(log)
    theirs = peers.RUN[peer](str(log))
    assert peers.compare(mine, theirs) == []
    # real rows: the busiest client, path and error, every column as pplog has it
    for table, columns in {
        "clients": (
            "client_ip",
            "requests",
            "bytes",
            "errors_4xx",
            "errors_5xx",
            "paths",
            "first_time",
            "last_time",
        ),
        "paths": ("path", "requests", "clients", "bytes", "errors_4xx", "errors_5xx"),
        "errors": ("status", "path", "requests"),
    }.items():
        assert len(theirs[table]) == 10
        assert theirs[table][0] == {c: mine[table][0][c] for c in columns}
    # the errors table keeps requests whose line has no path (binary, PROXY)
    assert any(r["path"] is None for r in theirs["errors"])
    # a difference is found
    theirs["paths"][3]["clients"] += 1
    assert peers.compare(mine, theirs) == [
        f"paths: ({theirs['paths'][3]['path']!r},): (peer, pplog) "
        f"{{'clients': ({theirs['paths'][3]['clients']}, {mine['paths'][3]['clients']})}}"
    ]


def test_record_with_peers_quotes_their_sql(
    tmp_path: Path, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for peer in peers.PEERS:
        pytest.importorskip(peer)
    monkeypatch.setattr(bench_summarize, "revision_src", _revision(tmp_path))
    results = tmp_path / "RESULTS.md"
    argv = ["--log", str(log), "--repeat", "1", "--goaccess-lines", "0", "--peers"]
    argv += ["--check-against", "old", "--record", "--results", str(results)]
    assert bench_summarize.main(argv) == 0
    text = results.read_text()
    rows = {
        r.split(" | ")[0].lstrip("| ") for r in text.splitlines() if r.startswith("| ")
    }
    assert {
        "pplog summarize",
        f"{peers.version('duckdb')} (SQL below)",
        f"{peers.version('chdb')} (SQL below)",
    } <= rows
    assert re.search(
        r"pplog vs DuckDB: \d+\.\d\dx (faster|slower), vs chDB: \d+\.\d\dx (faster|slower)\.",
        text,
    )
    how = text.split("### How the peers were run\n", 1)[1]
    for peer in peers.PEERS:
        assert f"python benchmarks/peers.py {peer} {log}" in how
        sql = ";\n\n".join(peers.statements(peer, str(log))) + ";"
        assert f"```sql\n{sql}\n```" in how
    assert peers.LINE_RE in how


def test_the_tools_take_turns_in_each_round(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each round runs every command once, so a slow spell of the machine
    falls on all of them; each keeps its best time and its largest peak."""
    calls: list[str] = []
    times = {"a": iter([(3.0, 10.0), (2.0, 30.0)]), "b": iter([(1.0, 5.0), (4.0, 1.0)])}

    def run(argv: list[str], cwd: Path | None = None) -> tuple[float, float]:
        calls.append(argv[0])
        return next(times[argv[0]])

    monkeypatch.setattr(bench_summarize, "run", run)
    best = bench_summarize.best_of_each({"A": (["a"], None), "B": (["b"], None)}, 2)
    assert calls == ["a", "b", "a", "b"]
    assert best == {"A": (2.0, 30.0), "B": (1.0, 5.0)}
