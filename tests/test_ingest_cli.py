"""`pplog ingest` options: --config TOML, usage errors, quiet success, -v, summarize DIR."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import pplog
from helpers import SAMPLES
from pplog.cli import cli


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
    import sys

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
