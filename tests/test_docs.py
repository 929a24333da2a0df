"""The README stays true: quick start, commands, and the output it shows."""

from __future__ import annotations

import re

from click.testing import CliRunner

from helpers import REPO
from pplog.cli import cli

README = (REPO / "README.md").read_text(encoding="utf-8")


def _blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.DOTALL)


def test_quick_start_is_two_commands_installing_and_testing() -> None:
    section = README.split("## Quick start", 1)[1]
    commands = _blocks(section)[0].strip().splitlines()
    assert len(commands) == 2
    assert (
        "pip install" in commands[0] and "pplog summarize sample_logs/" in commands[0]
    )
    assert "pip install" in commands[1] and "pytest" in commands[1]


def test_quick_start_output_is_what_pplog_prints() -> None:
    section = README.split("## Quick start", 1)[1]
    shown = _blocks(section)[1].rstrip()
    result = CliRunner().invoke(
        cli, ["summarize", "sample_logs/elb-access.log", "--width", "100", "--top", "5"]
    )
    assert result.exit_code == 0
    printed = "\n".join(line.rstrip() for line in result.stdout.rstrip().splitlines())
    assert printed == shown


def test_every_command_is_documented() -> None:
    for name in cli.commands:
        assert f"pplog {name}" in README


def test_every_summarize_option_is_documented() -> None:
    for param in cli.commands["summarize"].params:
        for opt in param.opts:
            if opt.startswith("--") and opt not in ("--help", "--progress"):
                assert opt in README, opt
