"""`pplog ingest` options: --config TOML, usage errors, quiet success, -v, summarize DIR."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import pplog
from helpers import SAMPLES, run_pplog
from pplog.cli import cli
from realproc import require_binary, send, start_nginx, stop
from test_doctor import Lab, lab  # noqa: F401 - the real-nginx fixture


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    shutil.copy(SAMPLES / "elb-access.log", tmp_path / "access.log")
    return tmp_path


def test_config_file_keeps_the_crontab_line_short(
    runner: CliRunner, logs: Path
) -> None:
    config = logs / "pplog.toml"
    config.write_text(
        f'paths = ["{logs}/access.log*"]\n'
        f'dataset = "{logs}/ds"\n'
        'format = "elb_log"\n'
        'set_real_ip_from = ["10.0.0.0/8"]\n'
    )
    quiet = runner.invoke(cli, ["ingest", "--config", str(config)])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.output == ""  # cron mails any output: success says nothing
    with (logs / "access.log").open("a") as f:
        f.write((SAMPLES / "elb-access.log").read_text().splitlines(keepends=True)[0])
    loud = runner.invoke(cli, ["ingest", "--config", str(config), "-v"])
    assert loud.exit_code == 0, loud.output
    assert loud.output.startswith("ingest: commit 2: 1 rows, 0 rejects")
    state = json.loads((logs / "ds" / "_pplog" / "state.json").read_text())
    assert state["log_format"]["name"] == "elb_log"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('paths = "not a list"\n', "`paths` has the wrong type"),
        ("bogus = 1\n", "unknown key `bogus`"),
        ("paths = [\n", "is not valid TOML"),
    ],
)
def test_bad_config_is_a_usage_error(
    runner: CliRunner, tmp_path: Path, content: str, message: str
) -> None:
    config = tmp_path / "pplog.toml"
    config.write_text(content)
    result = runner.invoke(cli, ["ingest", "--config", str(config)])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_paths_or_dataset(runner: CliRunner, logs: Path) -> None:
    no_paths = runner.invoke(cli, ["ingest", "--dataset", str(logs / "ds")])
    assert no_paths.exit_code == 2 and "give the log files" in no_paths.output
    no_dataset = runner.invoke(cli, ["ingest", str(logs / "access.log")])
    assert no_dataset.exit_code == 2 and "--dataset" in no_dataset.output


def test_an_empty_dataset_is_bad_usage_not_the_working_directory(
    tmp_path: Path, logs: Path
) -> None:
    """``--dataset ''`` became ``Path("") == Path(".")``: the dataset was
    written into the working directory and the run exited 0."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    done = run_pplog("ingest", str(logs / "access.log"), "--dataset", "", cwd=cwd)
    assert done.returncode == 2, done.stderr
    assert "give --dataset DIR" in done.stderr
    assert list(cwd.iterdir()) == []


def test_cli_flags_override_the_config(runner: CliRunner, logs: Path) -> None:
    config = logs / "pplog.toml"
    config.write_text(f'paths = ["{logs}/nothing*"]\ndataset = "{logs}/other"\n')
    result = runner.invoke(
        cli,
        [
            "ingest",
            str(logs / "access.log"),
            "--dataset",
            str(logs / "ds"),
            "--config",
            str(config),
            "-v",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3,000 rows" in result.output
    assert not (logs / "other").exists()


def test_summarize_reads_the_dataset_like_the_log(
    runner: CliRunner, logs: Path
) -> None:
    assert (
        runner.invoke(
            cli, ["ingest", str(logs / "access.log"), "--dataset", str(logs / "ds")]
        ).exit_code
        == 0
    )
    from_log = pplog.summarize(logs / "access.log", top=5)
    from_ds = pplog.summarize(logs / "ds", top=5)
    assert from_ds.format == "dataset"
    for key in (
        "lines",
        "requests",
        "rejected",
        "clients",
        "bytes",
        "first_time",
        "last_time",
    ):
        assert from_ds.overview_dict()[key] == from_log.overview_dict()[key], key
    assert from_ds.clients.equals(from_log.clients)
    assert from_ds.paths.equals(from_log.paths)
    assert from_ds.errors.equals(from_log.errors)
    # --since prunes date partitions: the sample is from 2026-11-20
    later = pplog.summarize(logs / "ds", since="2026-11-21")
    assert later.overview_dict()["requests"] == 0


def test_verify_and_compact_commands(runner: CliRunner, logs: Path) -> None:
    lines = (SAMPLES / "elb-access.log").read_text().splitlines(keepends=True)
    live = logs / "live.log"
    for i in range(0, 300, 100):  # three runs: three files in one partition
        with live.open("a") as f:
            f.writelines(lines[i : i + 100])
        args = [
            "ingest",
            str(live),
            "--dataset",
            str(logs / "ds"),
            "--compact-threshold",
            "0",
        ]
        assert runner.invoke(cli, args).exit_code == 0
    files = list((logs / "ds" / "requests").rglob("*.parquet"))
    assert len(files) == 3
    compacted = runner.invoke(cli, ["compact", str(logs / "ds")])
    assert compacted.exit_code == 0 and "compacted 1 partition(s)" in compacted.output
    assert len(list((logs / "ds" / "requests").rglob("*.parquet"))) == 1
    checked = runner.invoke(cli, ["verify", str(logs / "ds")])
    assert checked.exit_code == 0, checked.output
    assert "rows 300" in checked.output and checked.output.strip().endswith("OK")
    assert pplog.scan_dataset(logs / "ds").collect().height == 300
    not_a_dataset = runner.invoke(cli, ["verify", str(logs)])
    assert not_a_dataset.exit_code == 1 and "not a dataset" in not_a_dataset.output


def test_compact_on_a_full_disk_changes_nothing(logs: Path, runner: CliRunner) -> None:
    import resource
    import signal
    import subprocess

    lines = (SAMPLES / "elb-access.log").read_text().splitlines(keepends=True)
    live, ds = logs / "live.log", logs / "ds"
    for i in range(0, 1500, 500):
        with live.open("a") as f:
            f.writelines(lines[i : i + 500])
        args = ["ingest", str(live), "--dataset", str(ds), "--compact-threshold", "0"]
        assert runner.invoke(cli, args).exit_code == 0
    before = sorted(p.name for p in (ds / "requests").rglob("*.parquet"))

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    result = subprocess.run(
        [sys.executable, "-m", "pplog", "compact", str(ds)],
        preexec_fn=small_files,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(
        "Error: disk full while compacting; the dataset is unchanged"
    )
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in (ds / "requests").rglob("*.parquet")) == before
    assert runner.invoke(cli, ["verify", str(ds)]).exit_code == 0


def test_rows_get_geoip_columns(logs: Path, tmp_path: Path) -> None:
    from test_geo import build_asn, build_city

    city, asn = build_city(tmp_path / "city.mmdb"), build_asn(tmp_path / "asn.mmdb")
    result = pplog.ingest(
        [str(logs / "access.log")],
        logs / "ds",
        geoip=[city, asn],
        geoip_skip_special=False,
    )
    assert result.rows == 3000
    rows = pplog.scan_dataset(logs / "ds").collect()
    assert {"country", "city", "asn", "as_org"} <= set(rows.columns)
    sydney = rows.filter(pl.col("client_ip").str.starts_with("203.0.113."))
    assert sydney.height and set(sydney.get_column("country")) == {"AU"}
    assert set(sydney.get_column("asn")) == {64501}
    # the same through the CLI's --geoip (documentation ranges are special: null)
    cli_run = CliRunner().invoke(
        cli,
        [
            "ingest",
            str(logs / "access.log"),
            "--dataset",
            str(logs / "ds2"),
            "--geoip",
            str(city),
        ],
    )
    assert cli_run.exit_code == 0, cli_run.output
    assert "country" in pplog.scan_dataset(logs / "ds2").collect_schema().names()


def _pplog(*args: str) -> subprocess.CompletedProcess[str]:
    return run_pplog(*args, timeout=600)


def test_verify_exit_code_is_1_when_it_fails(logs: Path) -> None:
    assert (
        _pplog(
            "ingest", str(logs / "access.log"), "--dataset", str(logs / "ds")
        ).returncode
        == 0
    )
    ok = _pplog("verify", str(logs / "ds"))
    assert ok.returncode == 0 and ok.stdout.strip().endswith("OK")
    next((logs / "ds" / "requests").rglob("*.parquet")).unlink()
    bad = _pplog("verify", str(logs / "ds"))
    assert bad.returncode == 1, bad.stdout  # the real process, not CliRunner
    assert "missing files: 1" in bad.stdout and bad.stdout.strip().endswith("FAILED")


def test_a_mistyped_glob_never_makes_files_read_twice(logs: Path) -> None:
    from pplog.batch import reader

    ds = logs / "ds"
    assert _pplog("ingest", f"{logs}/access.log*", "--dataset", str(ds)).returncode == 0
    typo = _pplog("ingest", f"{logs}/acess.log*", "--dataset", str(ds))
    assert typo.returncode == 0
    assert "no file matches" in typo.stderr
    assert "no longer match the paths given" in typo.stderr
    state = json.loads((ds / "_pplog" / "state.json").read_text())
    assert [c["status"] for c in state["checkpoints"]] == ["unseen"]
    # however long the typo stays, the checkpoint is kept
    old = reader.FORGET_AFTER
    try:
        reader.FORGET_AFTER = -1.0
        pplog.ingest([f"{logs}/acess.log*"], ds)
        pplog.ingest([f"{logs}/access.log*"], ds)
    finally:
        reader.FORGET_AFTER = old
    assert pplog.scan_dataset(ds).collect().height == 3000
    assert pplog.verify(ds).ok


def test_dataset_write_errors_are_not_blamed_on_the_log(logs: Path) -> None:
    ds = logs / "ds"
    assert (
        _pplog("ingest", str(logs / "access.log"), "--dataset", str(ds)).returncode == 0
    )
    with (logs / "access.log").open("a") as f:
        f.write((SAMPLES / "elb-access.log").read_text().splitlines(keepends=True)[0])
    shutil.rmtree(ds / "_pplog" / "staging", ignore_errors=True)
    (ds / "_pplog" / "staging").write_text("not a directory")
    run = _pplog("ingest", str(logs / "access.log"), "--dataset", str(ds))
    assert run.returncode == 1
    assert run.stderr.startswith("Error: cannot write the dataset's staging files")
    assert "nothing was committed" in run.stderr
    (ds / "_pplog" / "staging").unlink()
    assert (
        _pplog("ingest", str(logs / "access.log"), "--dataset", str(ds)).returncode == 0
    )
    assert pplog.scan_dataset(ds).collect().height == 3001


def test_a_window_with_only_rejects_and_odd_years(tmp_path: Path) -> None:
    log = tmp_path / "odd.log"
    log.write_text(
        '203.0.113.9 - - [01/Jan/0001:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"\n'
        '203.0.113.9 - - [27/Nov/2026:06:01:03 +0000] "GET / HTTP/1.1" 200 1 "-" "-"\n'
        "not a log line\n"
    )
    ds = tmp_path / "ds"
    pplog.ingest([str(log)], ds, format="combined")
    s = pplog.summarize(ds)  # year 1 and 2026 in one timeline
    assert s.extra["timeline"].get_column("requests").sum() == 2
    later = pplog.summarize(ds, since="2030-01-01")  # no data partition, one reject
    assert later.overview_dict()["requests"] == 0
    assert later.overview_dict()["rejected"] == 1


def test_a_format_without_time_goes_to_the_unknown_partition(tmp_path: Path) -> None:
    log = tmp_path / "plain.log"
    log.write_text("203.0.113.9 GET /a\n203.0.113.9 GET /b\n")
    ds = tmp_path / "ds"
    result = pplog.ingest(
        [str(log)], ds, log_format="$remote_addr $request_method $uri"
    )
    assert result.rows == 2
    assert [p.name for p in (ds / "requests").iterdir()] == ["date=unknown"]
    assert pplog.summarize(ds).paths.get_column("path").to_list() == ["/a", "/b"]


@pytest.mark.parametrize("rollups", [True, False])
def test_summarize_lists_again_when_a_compaction_removed_a_file(
    logs: Path, monkeypatch: pytest.MonkeyPatch, rollups: bool
) -> None:
    from pplog.batch import dataset
    from pplog.run import dataset as run

    ds = logs / "ds"
    pplog.ingest([str(logs / "access.log")], ds)
    monkeypatch.setattr(run, "_ROLLUPS", rollups)
    calls = []
    real_listing = dataset.listing
    old = ds / "requests" / "date=2026-11-20" / "part-compacted-away.parquet"
    # a file (and its rollup) that a compaction has just deleted
    old_rollup = ds / "rollups" / old.relative_to(ds).with_suffix(".zip")

    def listed_before(*args: object, **kwargs: object) -> dataset.Listing:
        calls.append(1)
        found = real_listing(*args, **kwargs)  # type: ignore[arg-type]
        if len(calls) == 1:
            lost = dataset.Entry("data", "2026-11-20", old, 5, old_rollup)
            return dataset.Listing(found.layout, [*found.entries, lost])
        return found

    monkeypatch.setattr(dataset, "listing", listed_before)
    s = pplog.summarize(ds)
    assert len(calls) == 2
    assert s.overview_dict()["requests"] == 3000


def test_compaction_is_one_commit_for_every_partition(logs: Path) -> None:
    ds = logs / "ds"
    log = logs / "days.log"
    line = '203.0.113.9 - - [{d:02d}/Nov/2026:06:01:03 +0000] "GET / HTTP/1.1" 200 1 "-" "-"\n'
    for _ in range(2):  # two runs: two files in each of five day partitions
        with log.open("a") as f:
            f.writelines(line.format(d=d) for d in range(1, 6))
        pplog.ingest([str(log)], ds, format="combined", compact_threshold=0)
    before = json.loads((ds / "_pplog" / "state.json").read_text())["applied_commit"]
    assert pplog.batch.compact_dataset(ds) == 5
    after = json.loads((ds / "_pplog" / "state.json").read_text())["applied_commit"]
    assert after == before + 1
    assert len(list((ds / "requests").rglob("*.parquet"))) == 5
    assert pplog.verify(ds).ok and pplog.scan_dataset(ds).collect().height == 10


def test_a_huge_line_is_one_capped_reject_not_a_memory_blowup(tmp_path: Path) -> None:
    import os

    from pplog.batch import reader

    line = (
        '203.0.113.9 - - [27/Nov/2026:06:01:03 +0000] "GET / HTTP/1.1" 200 1 "-" "-"\n'
    )
    log = tmp_path / "access.log.1"  # a rotated file: its last line may count
    with log.open("w") as f:
        f.write(line)
        f.write(
            "203.0.113.9 " + "x" * (3 * reader.LINE_LIMIT) + "\n"
        )  # 3 MiB, one line
        f.write(line)
        f.write("A" * (2 * reader.LINE_LIMIT))  # and one cut by the end of the file
    old = log.stat().st_mtime - 3600
    os.utime(log, (old, old))
    ds = tmp_path / "ds"
    result = pplog.ingest(
        [str(log)], ds, format="combined", final_grace=60, batch_bytes=1 << 20
    )
    assert (result.rows, result.rejects) == (2, 2)
    rejects = (
        pplog.scan_dataset(ds, include_rejects=True)
        .filter(pl.col("reject_reason").is_not_null())
        .collect()
    )
    assert rejects.get_column("reject_reason").to_list() == ["too_long", "too_long"]
    assert rejects.get_column("length").to_list() == [
        3 * reader.LINE_LIMIT + 13,
        2 * reader.LINE_LIMIT,
    ]
    assert rejects.get_column("raw").str.len_bytes().max() <= reader.RAW_KEPT
    assert pplog.verify(ds).ok


def test_config_paths_are_relative_to_the_config_file(
    logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc = logs / "etc"
    etc.mkdir()
    (etc / "pplog.toml").write_text('paths = ["../access.log*"]\ndataset = "../ds"\n')
    monkeypatch.chdir(tmp_path)  # cron runs elsewhere
    result = CliRunner().invoke(
        cli, ["ingest", "--config", str(etc / "pplog.toml"), "-v"]
    )
    assert result.exit_code == 0, result.output
    assert "3,000 rows" in result.output
    assert (logs / "ds" / "_pplog").is_dir()
    for bad, message in (
        ('dataset = ""\n', "`dataset` is empty"),
        ("compact_threshold = -1\n", "must be 0 or more"),
        ("final_grace = -5\n", "must be 0 or more"),
    ):
        (etc / "bad.toml").write_text(bad)
        out = CliRunner().invoke(
            cli, ["ingest", "x.log", "--config", str(etc / "bad.toml")]
        )
        assert out.exit_code == 2 and message in out.output, out.output


def test_two_sites_with_the_same_first_bytes_stay_two_streams(tmp_path: Path) -> None:
    common = "".join(
        f'203.0.113.9 - - [27/Nov/2026:06:01:{i % 60:02d} +0000] "GET /same/{i} HTTP/1.1" 200 1 "-" "-"\n'
        for i in range(80)
    )
    assert len(common) > 4096  # the whole fingerprint is shared
    for site, extra in (("s1", "/one"), ("s2", "/two")):
        (tmp_path / site).mkdir()
        (tmp_path / site / "access.log").write_text(
            common
            + f'203.0.113.9 - - [27/Nov/2026:06:02:00 +0000] "GET {extra} HTTP/1.1" 200 1 "-" "-"\n'
        )
    ds = tmp_path / "ds"
    result = pplog.ingest([f"{tmp_path}/s*/access.log"], ds, format="combined")
    assert result.rows == 162 and not result.warnings.get("duplicate_paths")
    paths = pplog.scan_dataset(ds).collect().get_column("path")
    assert {"/one", "/two"} <= set(paths)
    assert pplog.verify(ds).ok


def test_summarize_refuses_attribution_options_on_a_dataset(logs: Path) -> None:
    from pplog.errors import OptionError

    pplog.ingest([str(logs / "access.log")], logs / "ds")
    with pytest.raises(OptionError, match="fixed by `pplog ingest`"):
        pplog.summarize(logs / "ds", trusted=["10.0.0.0/8"])
    with pytest.raises(OptionError, match="fixed by `pplog ingest`"):
        pplog.summarize(logs / "ds", format="main")


def test_a_lock_held_for_hours_is_reported(logs: Path) -> None:
    import fcntl
    import os

    ds = logs / "ds"
    pplog.ingest([str(logs / "access.log")], ds)
    lock = ds / "_pplog" / "lock"
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        os.write(fd, b"pid 4242 since 2026-01-01T00:00:00.000000Z\n")
        quiet = _pplog("ingest", str(logs / "access.log"), "--dataset", str(ds))
    finally:
        os.close(fd)
    assert quiet.returncode == 0
    assert "pid 4242" in quiet.stderr and "is it stuck?" in quiet.stderr


@pytest.mark.parametrize("path", ["nothing.log", "nothing*.log"])
def test_ingest_of_no_file_into_a_new_dataset_is_one_error_line(
    tmp_path: Path, path: str
) -> None:
    """A cron line whose logs are not there yet: no format to learn, no crash."""
    proc = _pplog("ingest", str(tmp_path / path), "--dataset", str(tmp_path / "ds"))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: no log file to read, and the dataset has no log format yet: give "
        "existing log files (or --format NAME)"
    ]


def test_ingest_of_a_url_is_refused_before_the_dataset_is_touched(
    tmp_path: Path,
) -> None:
    proc = _pplog("ingest", "s3://bucket/access.log", "--dataset", str(tmp_path / "ds"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "Error: `s3://bucket/access.log` is a URL: ingest follows local log files "
        "across rotation by their identity on disk; summarize URLs with `pplog "
        "summarize`, or ingest on the machine that writes the logs"
    )
    assert not (tmp_path / "ds").exists()


def test_ingest_classifies_each_user_agent_once_per_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent classes of a batch's user agents are kept for the run's
    later batches: the rules' patterns are compiled at each evaluation, 10 ms
    a batch whatever few agents it has. The classes are those the rules give."""
    from pplog.batch import reader
    from pplog.enrich import agents

    seen: list[str | None] = []
    classify = agents.classify

    def counted(user_agents: list[str | None]) -> list[str]:
        seen.extend(user_agents)
        return classify(user_agents)

    monkeypatch.setattr(agents, "classify", counted)
    monkeypatch.setattr(reader, "C_BLOCK_BYTES", 16 << 10)  # batches of 20 kB
    uas = ["curl/8.5.0", "Googlebot/2.1 (+http://www.google.com/bot.html)", "-"]
    log = tmp_path / "access.log"
    log.write_text(
        "".join(
            f"203.0.113.{k % 7} - - [20/Nov/2026:00:00:{k % 60:02d} +0000] "
            f'"GET /p{k} HTTP/1.1" 200 {k} "-" "{uas[k % 3]}"\n'
            for k in range(3000)
        )
    )
    result = pplog.ingest(
        [str(log)], tmp_path / "ds", format="combined", final=True, batch_bytes=20_000
    )
    assert result.rows == 3000
    assert sorted(seen, key=str) == sorted([uas[0], uas[1], None], key=str)
    files = list((tmp_path / "ds" / "requests").rglob("*.parquet"))
    assert len(files) > 5  # one a batch
    rows = pl.read_parquet(files)
    got = dict(rows.select("http_user_agent", "agent_class").unique().iter_rows())
    assert got == {uas[0]: "tool", uas[1]: "search_bot", None: "unknown"}


@pytest.mark.nginx
def test_an_error_log_in_the_glob_is_skipped_and_said(
    lab: Lab,  # noqa: F811
    tmp_path: Path,
) -> None:
    """`pplog ingest '/var/log/nginx/*'` meets error.log too (here one written
    by real nginx, with its multi-line `broken header` entries): it is not
    ingested as rejects of the access-log dataset, and each run says why, as
    for a binary file; the access log beside it is ingested whole."""
    d = tmp_path / "nginx"
    d.mkdir()
    shutil.copy(lab.root / "plain.log", d / "access.log")
    shutil.copy(lab.root / "error.log", d / "error.log")
    dataset = tmp_path / "ds"
    argv = ["ingest", f"{d}/*", "--dataset", str(dataset), "-v"]
    for run in range(2):
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 0, result.output
        (line,) = [x for x in result.stderr.splitlines() if "error.log" in x]
        assert line == (
            f"pplog: warning: {d / 'error.log'}: skipped: an nginx error log, not "
            "an access log; leave it out of the paths (e.g. "
            "'/var/log/nginx/access.log*') and read it with "
            f"`pplog doctor --error-log {d / 'error.log'}`"
        ), run
    access = (d / "access.log").read_bytes().count(b"\n")
    found = pplog.verify(dataset)
    assert found.ok, found.lines()
    rows = pl.read_parquet(dataset / "requests" / "**" / "*.parquet")
    rejects = list((dataset / "rejects").rglob("*.parquet"))
    rejected = sum(pl.read_parquet(f).height for f in rejects)
    assert rows.height + rejected == access
    assert set(rows["source"]) == {str(d / "access.log")}


@pytest.mark.nginx
def test_an_access_log_after_start_up_notices_is_ingested(tmp_path: Path) -> None:
    """nginx's error log and access log in one file, as a container's output
    holds them (`docker logs` of the stock image): start-up notices, then
    access lines, written by real nginx. Its head starts with error-log
    entries, yet the lines after them are the access log's: it is ingested,
    not skipped as an error log (each line after an entry was counted as
    part of it)."""
    nginx = require_binary("nginx", "nginx-light")
    merged = tmp_path / "nginx.log"

    def config(ports: list[int], _nginx_v: str) -> str:
        return f"""
pid {tmp_path / "nginx.pid"};
error_log {merged} notice;
events {{ worker_connections 64; }}
http {{
    access_log {merged} combined;
    server {{
        listen 127.0.0.1:{ports[0]};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""

    proc, (port,) = start_nginx(nginx, tmp_path, config)
    try:
        agent = "Mozilla/5.0 " + "(a long user agent) " * 60  # ~1.2 KB a line
        for i in range(40):
            request = (
                f"GET /seq/{i} HTTP/1.1\r\nHost: x\r\nUser-Agent: {agent}\r\n"
                "Connection: close\r\n\r\n"
            )
            assert send(port, request.encode()).startswith(b"HTTP/1.1 200")
    finally:
        stop(proc)
    text = merged.read_text()
    head = text.encode()[:4096].decode(errors="replace").splitlines()
    notices = [line for line in head if "[notice]" in line]
    assert len(notices) * 2 > len(head), head  # the head: mostly the error log's
    dataset = tmp_path / "ds"
    argv = ["ingest", str(merged), "--dataset", str(dataset), "--format", "combined"]
    result = CliRunner().invoke(cli, [*argv, "-v"])
    assert result.exit_code == 0, result.output
    assert "skipped" not in result.stderr, result.stderr
    rows = pl.read_parquet(dataset / "requests" / "**" / "*.parquet")
    assert sorted(rows["path"]) == sorted(f"/seq/{i}" for i in range(40))


@pytest.mark.nginx
def test_verify_names_files_that_hold_the_same_lines(tmp_path: Path) -> None:
    """Real nginx with two `access_log` directives writes every request to
    both files; ingest keeps logs of different names apart, so each line is
    in the dataset twice. Every stream is complete, yet the user should
    know: `verify` names the pair (exit 0: nginx wrote both)."""
    nginx = require_binary("nginx", "nginx-light")
    logdir = tmp_path / "log"
    logdir.mkdir()

    def config(ports: list[int], _nginx_v: str) -> str:
        return f"""
pid {tmp_path / "nginx.pid"};
error_log {tmp_path / "error.log"};
events {{ worker_connections 64; }}
http {{
    access_log {logdir / "access.log"} combined;
    access_log {logdir / "site.log"} combined;
    server {{
        listen 127.0.0.1:{ports[0]};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""

    proc, (port,) = start_nginx(nginx, tmp_path, config)
    try:
        agent = "Mozilla/5.0 " + "(padding) " * 20
        for i in range(60):  # ~17 KB: more than the 4 KiB heads
            request = (
                f"GET /seq/{i} HTTP/1.1\r\nHost: x\r\nUser-Agent: {agent}\r\n"
                "Connection: close\r\n\r\n"
            )
            assert send(port, request.encode()).startswith(b"HTTP/1.1 200")
    finally:
        stop(proc)
    ds = tmp_path / "ds"
    assert _pplog("ingest", f"{logdir}/*.log", "--dataset", str(ds)).returncode == 0
    checked = _pplog("verify", str(ds))
    assert checked.returncode == 0, checked.stdout
    assert "files with the same lines, read as separate logs: 1" in checked.stdout
    assert (
        f"{logdir}/site.log: its first 60 lines are those of {logdir}/access.log"
        in (checked.stdout)
    )
    assert checked.stdout.strip().endswith("OK")


def test_verify_fails_on_a_copy_of_a_log_read_again(logs: Path) -> None:
    """Two streams of one rotation set with the same lines are a copy read
    twice (what a copytruncate copy that ingest did not recognise would
    give): `verify` fails and names it. The dataset is made by reading a
    copy under another name, then giving that stream a name of the set."""
    ds = logs / "ds"
    shutil.copy(logs / "access.log", logs / "access.copy")
    assert _pplog("ingest", f"{logs}/access.*", "--dataset", str(ds)).returncode == 0
    state_file = ds / "_pplog" / "state.json"
    state = json.loads(state_file.read_text())
    for cp in state["checkpoints"]:
        if cp["last_path"].endswith("access.copy"):
            cp["last_path"] = str(logs / "access.log.1")
    state_file.write_text(json.dumps(state))
    checked = _pplog("verify", str(ds))
    assert checked.returncode == 1, checked.stdout
    assert "lines read twice (a copy of a log read again): 1" in checked.stdout
    assert (
        f"{logs}/access.log: its first 3,000 lines are those of {logs}/access.log.1"
        in (checked.stdout)
    )
    assert checked.stdout.strip().endswith("FAILED")
    assert not pplog.verify(ds).ok


def test_verify_tells_logs_apart_that_only_begin_alike(logs: Path) -> None:
    """The same first 4 KiB (the checkpoints' heads agree) but one line
    differs further on: two logs, nothing reported; and a log whose lines
    are those of another but one second later, the same."""
    text = (logs / "access.log").read_text()
    lines = text.splitlines(keepends=True)
    changed = lines[:]
    changed[2000] = changed[2000].replace(" 200 ", " 503 ", 1)
    assert changed != lines
    (logs / "other.log").write_text("".join(changed))
    later = [
        ln.replace(":00:", ":01:", 1) if i >= 50 else ln for i, ln in enumerate(lines)
    ]
    assert later != lines
    (logs / "later.log").write_text("".join(later))
    ds = logs / "ds"
    assert _pplog("ingest", f"{logs}/*.log", "--dataset", str(ds)).returncode == 0
    state = json.loads((ds / "_pplog" / "state.json").read_text())
    assert len({cp["head_sha256"] for cp in state["checkpoints"]}) == 1
    found = pplog.verify(ds)
    assert found.ok and found.streams == 3
    assert found.alike == [] and found.repeated == []


def test_a_later_run_cannot_change_the_datasets_format(tmp_path: Path) -> None:
    """The first run records `main`; a later `--format elb_log` would make
    every new line a `no_match` reject with its bytes counted as read (100
    good lines gone from the rows, and `verify` OK): refused, nothing
    committed. The recorded format, given again by name, is fine."""
    lines = (SAMPLES / "main-access.log").read_text().splitlines(keepends=True)
    log = tmp_path / "access.log"
    log.write_text("".join(lines[:100]))
    ds = tmp_path / "ds"
    assert _pplog("ingest", str(log), "--dataset", str(ds)).returncode == 0
    with log.open("a") as f:
        f.writelines(lines[200:300])
    other = _pplog("ingest", str(log), "--dataset", str(ds), "--format", "elb_log")
    assert other.returncode == 1, other.stderr
    assert other.stderr.startswith("Error: this dataset holds `main` lines"), (
        other.stderr
    )
    assert "Traceback" not in other.stderr
    state = json.loads((ds / "_pplog" / "state.json").read_text())
    assert state["log_format"]["name"] == "main"
    assert pplog.scan_dataset(ds).collect().height == 100
    same = _pplog("ingest", str(log), "--dataset", str(ds), "--format", "main")
    assert same.returncode == 0, same.stderr
    rows = pplog.scan_dataset(ds, include_rejects=True).collect()
    assert rows.height == 200 and rows["reject_reason"].null_count() == 200


def test_a_damaged_data_file_is_named_not_an_unexpected_failure(logs: Path) -> None:
    """A committed Parquet file cut in half (a disk fault, a copy gone
    wrong): `verify` fails naming it and still checks the others;
    `summarize DIR` (the row road), `compact` and ingest's own compaction
    say which file, with no "unexpected failure"."""
    lines = (logs / "access.log").read_text().splitlines(keepends=True)
    live = logs / "live.log"
    ds = logs / "ds"
    for i in range(3):  # three files in one partition
        with live.open("a") as f:
            f.writelines(lines[i * 100 : (i + 1) * 100])
        run = _pplog(
            "ingest", str(live), "--dataset", str(ds), "--compact-threshold", "0"
        )
        assert run.returncode == 0, run.stderr
    damaged = sorted((ds / "requests").rglob("*.parquet"))[0]
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    checked = _pplog("verify", str(ds))
    assert checked.returncode == 1, checked.stdout
    assert "damaged files (cannot be read): 1" in checked.stdout
    assert f"  {damaged}: damaged Parquet file (" in checked.stdout
    assert "rows 200," in checked.stdout  # the other two files, checked
    for argv in (
        ["summarize", str(ds), "--status", "5xx", "--to", "json"],
        ["compact", str(ds)],
    ):
        failed = _pplog(*argv)
        assert failed.returncode == 1, failed.stderr
        assert failed.stderr.startswith("Error: "), failed.stderr
        assert str(damaged) in failed.stderr and "damaged Parquet file" in failed.stderr
        assert "unexpected failure" not in failed.stderr
    with live.open("a") as f:
        f.writelines(lines[300:400])
    more = _pplog("ingest", str(live), "--dataset", str(ds), "--compact-threshold", "2")
    assert more.returncode == 0, more.stderr
    assert (
        "compaction after commit 4 failed" in more.stderr
        and str(damaged) in more.stderr
    )
    assert len(list((ds / "requests").rglob("*.parquet"))) == 4


def test_a_first_run_with_nothing_to_read_leaves_an_empty_dataset(
    tmp_path: Path,
) -> None:
    """Cron's first run can meet a log just rotated, still empty: nothing
    to commit, yet `summarize DIR` and `verify` must read the dataset (they
    said "holds no log files" and "is not a dataset"); the next run with
    lines commits them."""
    log = tmp_path / "access.log"
    log.write_bytes(b"")
    ds = tmp_path / "ds"
    assert _pplog("ingest", str(log), "--dataset", str(ds), "--final").returncode == 0
    checked = _pplog("verify", str(ds))
    assert checked.returncode == 0 and checked.stdout.strip().endswith("OK"), checked
    summary = _pplog("summarize", str(ds), "--to", "json")
    assert summary.returncode == 0, summary.stderr
    assert json.loads(summary.stdout)["overview"]["lines"] == 0
    shutil.copy(SAMPLES / "elb-access.log", log)
    assert _pplog("ingest", str(log), "--dataset", str(ds)).returncode == 0
    assert pplog.verify(ds).ok and pplog.verify(ds).rows == 3000


def test_doctor_names_a_damaged_dataset_file_and_says_an_empty_one_is_empty(
    tmp_path: Path,
) -> None:
    """`doctor DIR` reads a dataset: a file of it cut short is named in one
    `Error:` line (it was "unexpected failure"), and a dataset with no row
    is said to hold nothing to diagnose, not given a clean bill."""
    empty_log = tmp_path / "empty.log"
    empty_log.write_bytes(b"")
    empty = tmp_path / "empty"
    assert _pplog("ingest", str(empty_log), "--dataset", str(empty)).returncode == 0
    said = _pplog("doctor", str(empty))
    assert said.returncode == 0, said.stderr
    assert f"pplog: warning: {empty}: no lines to read" in said.stderr
    shutil.copy(SAMPLES / "elb-access.log", tmp_path / "access.log")
    ds = tmp_path / "ds"
    assert (
        _pplog("ingest", str(tmp_path / "access.log"), "--dataset", str(ds)).returncode
        == 0
    )
    damaged = next((ds / "requests").rglob("*.parquet"))
    damaged.write_bytes(damaged.read_bytes()[:3000])
    failed = _pplog("doctor", str(ds))
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.startswith(f"Error: `{damaged}` in the dataset cannot be read")
    assert "unexpected failure" not in failed.stderr
