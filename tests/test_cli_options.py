"""Options shared by commands: one `LogSpec` per run, `--jobs`, `--config` defaults."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import pplog
from helpers import SAMPLES
from pplog import LogSpec
from pplog.cli import cli

ELB = str(SAMPLES / "elb-access.log")
MAIN = str(SAMPLES / "main-access.log")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the commands pass to `pplog.summarize` and `pplog.diagnose`."""
    seen: list[dict[str, Any]] = []
    summarize, diagnose = pplog.summarize, pplog.diagnose

    def spy(real: Any) -> Any:  # noqa: ANN401
        def call(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
            seen.append(kwargs)
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(pplog, "summarize", spy(summarize))
    monkeypatch.setattr(pplog, "diagnose", spy(diagnose))
    return seen


def test_the_options_reach_the_library_as_one_spec(
    runner: CliRunner, calls: list[dict[str, Any]]
) -> None:
    args = [
        "--format",
        "main",
        "--set-real-ip-from",
        "10.0.0.0/8",
        "--real-ip-header",
        "X-Forwarded-For",
        "--status",
        "2xx",
        "--path",
        "^/api/",
        "--exclude-bots",
    ]
    result = runner.invoke(cli, ["summarize", MAIN, *args, "--to", "json"])
    assert result.exit_code == 0, result.output
    (call,) = calls
    assert call["spec"] == LogSpec.build(
        format="main",
        trusted=["10.0.0.0/8"],
        real_ip_header="X-Forwarded-For",
        status="2xx",
        path="^/api/",
        exclude_bots=True,
    )
    doctor = runner.invoke(
        cli, ["doctor", MAIN, "--format", "main", "--client-strategy", "hops"]
    )
    assert doctor.exit_code in (0, 3), doctor.output
    policy = calls[1]["spec"].policy
    assert (policy.strategy, policy.hops) == ("hops", 1)


def test_jobs_defaults_to_the_cores_and_gives_the_same_tables(
    runner: CliRunner, calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    args = ["summarize", ELB, MAIN, "--to", "json", "--top", "0"]
    default = runner.invoke(cli, args, catch_exceptions=False)
    one = runner.invoke(cli, [*args, "--jobs", "1"], catch_exceptions=False)
    two = runner.invoke(cli, [*args, "--jobs", "2"], catch_exceptions=False)
    assert [c["jobs"] for c in calls] == [3, 1, 2]
    assert (
        json.loads(one.stdout) == json.loads(two.stdout) == json.loads(default.stdout)
    )


@pytest.mark.parametrize("value", ["0", "-1", "two", ""])
def test_a_bad_jobs_value_is_a_usage_error(runner: CliRunner, value: str) -> None:
    result = runner.invoke(cli, ["summarize", ELB, "--jobs", value])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--jobs'" in result.output


def test_help_shows_jobs(runner: CliRunner) -> None:
    text = " ".join(runner.invoke(cli, ["summarize", "-h"]).output.split())
    assert "--jobs N Cores to use: --jobs 1 keeps pplog to about one core" in text
    assert "[default: (the number of cores); x>=1]" in text
    assert "--jobs 1 # one core" in text  # an example


def test_processes_give_the_tables_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from pplog import tasks

    inputs = [ELB, MAIN, str(SAMPLES / "combined-access.log")]
    alone = pplog.summarize(inputs, top=0, status="2xx,4xx", jobs=1)
    monkeypatch.setattr(tasks, "POOL_MIN_BYTES", 0)  # small inputs go to the pool
    spawned: list[int] = []
    real = tasks._pool

    def pool(*args: Any) -> Any:  # noqa: ANN401
        spawned.append(len(args[0]))  # bins: one per process
        return real(*args)

    monkeypatch.setattr(tasks, "_pool", pool)
    pooled = pplog.summarize(inputs, top=0, status="2xx,4xx", jobs=2)
    assert spawned == [2]
    assert pooled.overview_dict() == alone.overview_dict()
    for name in ("clients", "paths", "errors"):
        assert getattr(pooled, name).equals(getattr(alone, name)), name
    assert pooled.extra.keys() == alone.extra.keys()
    for name, table in alone.extra.items():
        assert pooled.extra[name].equals(table), name


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    shutil.copy(SAMPLES / "elb-access.log", tmp_path / "access.log")
    return tmp_path


def test_an_option_on_the_command_line_beats_the_config(
    runner: CliRunner, logs: Path
) -> None:
    config = logs / "pplog.toml"
    config.write_text(f'paths = ["{logs}/access.log"]\nformat = "combined"\n')
    # `--format auto` is the option's default, but given here it wins
    result = runner.invoke(
        cli,
        ["ingest", "--config", str(config), "--dataset", str(logs / "ds"), "-v"],
    )
    assert result.exit_code == 0, result.output
    assert _format_of(logs / "ds") == "combined"  # from the file
    again = runner.invoke(
        cli,
        [
            "ingest",
            "--format",
            "auto",
            "--config",
            str(config),
            "--dataset",
            str(logs / "ds2"),
            "-v",
        ],
    )
    assert again.exit_code == 0, again.output
    assert "3,000 rows, 0 rejects" in again.output
    assert _format_of(logs / "ds2") == "elb_log"  # detected


def _format_of(dataset: Path) -> str:
    state = json.loads((dataset / "_pplog" / "state.json").read_text())
    return str(state["log_format"]["name"])


@pytest.fixture
def ingest_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The arguments of each call the CLI makes to `pplog.batch.ingest`."""
    import pplog.batch

    calls: list[dict[str, Any]] = []
    real = pplog.batch.ingest

    def spy(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        calls.append({"args": args, **kwargs})
        return real(*args, **kwargs)

    monkeypatch.setattr(pplog.batch, "ingest", spy)
    return calls


def _ingest_config(
    runner: CliRunner, logs: Path, calls: list[dict[str, Any]], keys: str
) -> tuple[dict[str, Any], Path]:
    """`pplog ingest --config` of `access.log` into `ds` as `elb_log`, with
    the TOML `keys` besides: the one call it made, and the file."""
    config = logs / "pplog.toml"
    config.write_text(
        f'paths = ["access.log"]\ndataset = "ds"\nformat = "elb_log"\n{keys}'
    )
    result = runner.invoke(cli, ["ingest", "--config", str(config)])
    assert result.exit_code == 0, result.output
    (call,) = calls
    return call, config


def test_config_keys_are_the_options_defaults(
    runner: CliRunner, logs: Path, ingest_calls: list[dict[str, Any]]
) -> None:
    keys = (
        'set_real_ip_from = ["192.0.2.0/24"]\nreal_ip_recursive = false\n'
        "final_grace = 0\ncompact_threshold = 0\n"
    )
    call, _ = _ingest_config(runner, logs, ingest_calls, keys)
    assert call["args"] == ([str(logs / "access.log")], str(logs / "ds"))
    assert call["spec"] == LogSpec.build(
        format="elb_log", trusted=["192.0.2.0/24"], recursive=False
    )
    assert (call["final_grace"], call["compact_threshold"]) == (0.0, 0)


def test_every_ingest_setting_is_a_config_key() -> None:
    """A crontab line should be `pplog ingest --config FILE`: each option of
    `ingest` that says how to read the logs has its key (`client_strategy`
    and `trusted_hops` had none). Not `--final` (one run's say), `--config`
    itself, `--verbose` or `--help`."""
    from pplog.config import INGEST_KEYS

    params = cli.commands["ingest"].params
    names = {p.name for p in params} - {"config", "final", "verbose", "help"}
    assert names == set(INGEST_KEYS)


def test_the_client_strategy_from_a_config(
    runner: CliRunner, logs: Path, ingest_calls: list[dict[str, Any]]
) -> None:
    keys = 'client_strategy = "hops"\ntrusted_hops = 2\n'
    call, config = _ingest_config(runner, logs, ingest_calls, keys)
    spec = call["spec"]
    assert spec.policy is not None
    assert (spec.policy.strategy, spec.policy.hops) == ("hops", 2)
    config.write_text(config.read_text().replace("2", "0"))
    bad = runner.invoke(cli, ["ingest", "--config", str(config)])
    assert bad.exit_code == 2
    assert "trusted-hops" in bad.output or "trusted_hops" in bad.output


def test_an_unknown_config_key_names_the_known_ones(
    runner: CliRunner, tmp_path: Path
) -> None:
    config = tmp_path / "pplog.toml"
    config.write_text("trusted = ['10.0.0.0/8']\n")
    result = runner.invoke(cli, ["ingest", "x.log", "--config", str(config)])
    assert result.exit_code == 2
    assert result.output.rstrip().endswith(
        f"Error: --config `{config}`: unknown key `trusted`; known keys: paths, "
        "dataset, format, log_format, nginx_conf, log_format_name, set_real_ip_from, "
        "real_ip_header, real_ip_recursive, client_strategy, trusted_hops, "
        "final_grace, compact_threshold, geoip"
    )
    missing = runner.invoke(cli, ["ingest", "--config", str(tmp_path / "none.toml")])
    assert missing.exit_code == 2
    assert "cannot read --config" in missing.output


def test_approx_reaches_the_library_and_the_overview_says_what_is_estimated(
    runner: CliRunner, calls: list[dict[str, Any]]
) -> None:
    args = ["summarize", MAIN, "--to", "json", "--top", "0"]
    exact = runner.invoke(cli, args, catch_exceptions=False)
    approx = runner.invoke(cli, [*args, "--approx"], catch_exceptions=False)
    assert [c["approx"] for c in calls] == [False, True]
    assert "approximate" not in json.loads(exact.output)["overview"]
    assert json.loads(approx.output)["overview"]["approximate"] == (
        "clients.paths, paths.clients"
    )
    assert "--approx" in runner.invoke(cli, ["summarize", "--help"]).output


def test_each_process_gets_at_least_the_pool_minimum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inputs are dealt into fewer bins than --jobs when they are small."""
    from pplog import tasks

    plans: list[int] = []

    def pool(plan: list[list[tasks.Task]], *args: Any) -> list[Any]:  # noqa: ANN401
        plans.append(len(plan))
        return [tasks.map_bin(b, args[0], [None] * len(b)) for b in plan]

    monkeypatch.setattr(tasks, "_pool", pool)
    inputs = [ELB, MAIN, str(SAMPLES / "combined-access.log")]
    size = sum(Path(p).stat().st_size for p in inputs)
    monkeypatch.setattr(tasks, "POOL_MIN_BYTES", size // 2)
    pplog.summarize(inputs, jobs=8)
    monkeypatch.setattr(tasks, "POOL_MIN_BYTES", size + 1)
    pplog.summarize(inputs, jobs=8)  # one bin: mapped here, no pool
    assert plans == [2]


def test_a_worker_process_killed_is_said_as_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A worker process killed by the system (the OOM killer) was reported
    with a hint meant for scripts only (`if __name__ == '__main__':`); the
    error now says the process died, and why it may have."""
    from pplog import tasks
    from pplog.errors import ReportError

    # a spawned worker kills itself as it starts (multiprocessing's resource
    # tracker, started the same way, is left alone)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import os, signal, sys\n"
        "if '--multiprocessing-fork' in sys.argv:\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    path = os.pathsep.join(filter(None, [str(hooks), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.setattr(tasks, "POOL_MIN_BYTES", 0)
    inputs = [ELB, MAIN, str(SAMPLES / "combined-access.log")]
    with pytest.raises(ReportError, match="failed in a worker process") as caught:
        pplog.summarize(inputs, top=0, jobs=2)
    said = str(caught.value)
    assert "the worker process died (killed by the system, out of memory?" in said
