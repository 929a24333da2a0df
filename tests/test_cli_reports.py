"""The report options of `pplog summarize`: filters, drilldowns, routes, timeline, colour."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import pplog
from helpers import SAMPLES
from pplog.cli import cli

MAIN = str(SAMPLES / "main-access.log")
ELB = str(SAMPLES / "elb-access.log")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _json(runner: CliRunner, *args: str) -> dict[str, object]:
    result = runner.invoke(cli, ["summarize", *args, "--to", "json"])
    assert result.exit_code == 0, result.output
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def test_every_table_is_in_the_json(runner: CliRunner) -> None:
    doc = _json(runner, MAIN, "--top", "3")
    for table in (
        "clients",
        "paths",
        "errors",
        "timeline",
        "status",
        "user_agents",
        "referrers",
        "lb",
        "agents",
    ):
        assert table in doc, table
    ov = doc["overview"]
    assert isinstance(ov, dict)
    assert ov["interval"] == "10s" and ov["filters"] == []
    timeline = doc["timeline"]
    assert isinstance(timeline, list)
    assert sum(r["requests"] for r in timeline) == ov["requests"]


def test_drilldown_on_a_client(runner: CliRunner) -> None:
    doc = _json(runner, MAIN, "--client", "192.0.2.10", "--top", "0")
    ov = doc["overview"]
    assert isinstance(ov, dict)
    assert [c["client_ip"] for c in doc["clients"]] == ["192.0.2.10"]  # type: ignore[union-attr]
    assert ov["filters"] == ["client 192.0.2.10"]
    assert ov["requests"] + ov["filtered_out"] == ov["lines"]
    assert sum(p["requests"] for p in doc["paths"]) == ov["requests"]  # type: ignore[union-attr]


def test_filters_combine(runner: CliRunner) -> None:
    every = _json(runner, MAIN, "--top", "0")
    errors = _json(runner, MAIN, "--status", "5xx", "--path", "^/api/", "--top", "0")
    by_hand = sum(
        e["requests"]  # type: ignore[index]
        for e in every["errors"]  # type: ignore[union-attr]
        if e["status"] >= 500 and (e["path"] or "").startswith("/api/")  # type: ignore[index]
    )
    assert errors["overview"]["requests"] == by_hand  # type: ignore[index]


def test_time_window_and_interval(runner: CliRunner) -> None:
    doc = _json(
        runner,
        MAIN,
        "--since",
        "2026-11-20T00:00:30Z",
        "--until",
        "20/Nov/2026:00:01:30 +0000",
        "--interval",
        "15s",
    )
    ov = doc["overview"]
    assert isinstance(ov, dict)
    assert ov["first_time"] >= "2026-11-20T00:00:30Z"
    assert ov["last_time"] < "2026-11-20T00:01:30Z"
    times = [r["time"] for r in doc["timeline"]]  # type: ignore[union-attr]
    assert times[0] == "2026-11-20T00:00:30Z" and times[1] == "2026-11-20T00:00:45Z"


def test_by_route_with_a_rule(runner: CliRunner) -> None:
    doc = _json(
        runner, ELB, "--by", "route", "--route", "/api/v1/users/*", "--top", "0"
    )
    routes = {r["route"] for r in doc["routes"]}  # type: ignore[union-attr]
    assert "/api/v1/users/*" in routes
    assert "/api/v1/orders/:id" in routes
    assert "paths" not in doc
    plain = _json(runner, ELB, "--top", "0")
    assert sum(r["requests"] for r in doc["routes"]) == sum(  # type: ignore[union-attr]
        p["requests"]
        for p in plain["paths"]  # type: ignore[union-attr]
    )
    assert len(doc["routes"]) < len(plain["paths"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last tuesday"], "cannot read the time"),
        (["--status", "6xx"], "is not a status"),
        (["--client", "not-an-ip"], "not an address or CIDR"),
        (["--path", "(oops"], "not a valid regular expression"),
        (["--interval", "5 minutes"], "is not a duration"),
        (["--by", "route", "--route", "users/*"], "route"),
        (["--since", "2026-11-21", "--until", "2026-11-20"], "is not before"),
    ],
)
def test_bad_report_options_are_usage_errors(
    runner: CliRunner, args: list[str], message: str
) -> None:
    result = runner.invoke(cli, ["summarize", MAIN, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_terminal_shows_sparklines_status_and_filter(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["summarize", MAIN, "--width", "120", "--status", "4xx,5xx"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    # 120 one-second points in 100 columns: two seconds per bar
    assert "Timeline (2s per bar, 2026-11-20 00:00:00 → 2026-11-20 00:01:59 UTC)" in out
    assert any(ch in out for ch in "▁▂▃▄▅▆▇█")
    assert "Status codes: " in out and "500 125 (56.3%)" in out
    assert "filter:   status 4xx,5xx (1,778 requests left out)" in out
    assert "Balancers (TCP peers)" in out


def test_colour_only_when_asked_and_never_with_no_color(tmp_path: Path) -> None:
    def run(*extra: str, env: dict[str, str] | None = None) -> str:
        import os

        environ = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        environ.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "pplog", "summarize", MAIN, "--top", "2", *extra],
            capture_output=True,
            text=True,
            env=environ,
            check=True,
        ).stdout

    assert "\x1b[" not in run()  # a pipe is not a terminal
    assert "\x1b[" in run("--color")
    assert "\x1b[" in run("--color", env={"NO_COLOR": "1"})  # the flag wins
    assert "\x1b[" not in run(env={"NO_COLOR": "1"})
    assert "\x1b[" not in run("--no-color")


def test_hostile_user_agents_and_referrers_stay_inert(
    runner: CliRunner, tmp_path: Path
) -> None:
    log = tmp_path / "evil.log"
    line = (
        '203.0.113.7 - - [27/Nov/2026:06:01:02 +0000] "GET / HTTP/1.1" 200 1 '
        '"{ref}" "{ua}"\n'
    )
    log.write_text(
        line.format(ref=r"http://x/\x1B[2J[bold]ref", ua=r"ua\x1B]0;pwn\x07[red]x") * 2
    )
    result = runner.invoke(
        cli, ["summarize", str(log), "--format", "combined", "--width", "200"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "\x1b" not in out and "\x07" not in out
    assert r"http://x/\x1B[2J[bold]ref" in out
    assert r"ua\x1B]0;pwn\x07[red]x" in out


def test_json_and_html_into_one_directory(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        cli,
        [
            "summarize",
            MAIN,
            "--to",
            "json",
            "--to",
            "html",
            "--to",
            "parquet",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["overview"]["lines"] == 2000
    assert "<svg" in (out / "summary.html").read_text()
    timeline = pl.read_parquet(out / "timeline.parquet")
    assert timeline.get_column("requests").sum() == 2000


def test_an_existing_file_is_never_overwritten_by_a_directory_output(
    runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "f"
    target.write_text("keep me\n")
    for outs in (["json", "html"], ["json", "csv"], ["csv"]):
        args = ["summarize", MAIN]
        for t in outs:
            args += ["--to", t]
        result = runner.invoke(cli, [*args, "-o", str(target)])
        assert result.exit_code == 2, result.output
        assert "is a file" in result.output
        assert target.read_text() == "keep me\n"
    slash = runner.invoke(
        cli, ["summarize", MAIN, "--to", "html", "-o", f"{tmp_path}/new/"]
    )
    assert slash.exit_code == 0 and (tmp_path / "new" / "summary.html").is_file()
    dash = runner.invoke(
        cli, ["summarize", MAIN, "--to", "json", "-o", "-", "--top", "1"]
    )
    assert dash.exit_code == 0 and json.loads(dash.stdout)["overview"]["lines"] == 2000


def test_stale_tables_are_removed_and_cells_cannot_run_as_formulas(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert (
        runner.invoke(cli, ["summarize", MAIN, "--to", "csv", "-o", str(out)]).exit_code
        == 0
    )
    assert (out / "timeline.csv").exists() and (out / "paths.csv").exists()
    again = runner.invoke(
        cli, ["summarize", MAIN, "--to", "csv", "-o", str(out), "--by", "route"]
    )
    assert again.exit_code == 0
    assert (out / "routes.csv").exists() and not (out / "paths.csv").exists()
    log = tmp_path / "formula.log"
    log.write_text(
        '203.0.113.7 - - [27/Nov/2026:06:01:02 +0000] "GET / HTTP/1.1" 200 1 '
        '"+1+1" "=HYPERLINK(\\x22http://evil\\x22,\\x22x\\x22)"\n'
    )
    bad = tmp_path / "bad"
    assert (
        runner.invoke(
            cli,
            [
                "summarize",
                str(log),
                "--format",
                "combined",
                "--to",
                "csv",
                "-o",
                str(bad),
            ],
        ).exit_code
        == 0
    )
    agents = pl.read_csv(bad / "user_agents.csv")
    assert agents.item(0, "http_user_agent") == '\'=HYPERLINK("http://evil","x")'
    assert pl.read_csv(bad / "referrers.csv").item(0, "http_referer") == "'+1+1"


def test_sparkline_last_bar_is_scaled(runner: CliRunner) -> None:
    from pplog.outputs._rich import binned

    assert binned([5] * 10, 4) == [15, 15, 15, 15]  # 3+3+3+1 points, the last scaled
    assert binned([1, 2, 3], 5) == [1, 2, 3]


def test_every_output_is_registered_under_its_own_name() -> None:
    from pplog import outputs

    for name in outputs.available():
        assert outputs.get(name).name == name
    with pytest.raises(pplog.ReportError, match="unknown output"):
        outputs.get("yaml")


def test_summarize_does_not_load_the_dataset_side() -> None:
    # `pplog summarize` starts faster without ingest's modules; they load on use
    code = (
        "import sys, pplog.cli; "
        "print('pplog.batch.ingest' in sys.modules); "
        "import pplog; pplog.ingest; print('pplog.batch.ingest' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "True"]
