"""The command line's contract: targets checked before reading, exit codes,
one `Error:` line, and a closed stdout ended as Unix tools end it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import pplog
from helpers import run_pplog
from pplog.cli import cli
from pplog.errors import LogFormatError, OptionError, ReportError
from pplog.formats import LogFormat

SAMPLES = Path(__file__).resolve().parents[1] / "sample_logs"
ELB = str(SAMPLES / "elb-access.log")
PPLOG = [sys.executable, "-m", "pplog"]


def _not_a_dir(tmp_path: Path) -> Path:
    """A regular file, used where a directory should be."""
    plain = tmp_path / "plain"
    plain.write_text("not a directory\n")
    return plain


# --------------------------------------------------------------------------------------
# -o and --rejects: checked before any reading, never a directory made for them

CASES = {
    "json": ["--to", "json", "-o"],
    "csv": ["--to", "csv", "-o"],
    "parquet": ["--to", "parquet", "-o"],
    "html": ["--to", "html", "-o"],
    "json+html": ["--to", "json", "--to", "html", "-o"],
    "rejects": ["--rejects"],
}


def test_unwritable_targets_fail_before_stdin_is_read(tmp_path: Path) -> None:
    """stdin stays open: a run that waits for its end before checking the
    target never exits; every one must say why on its own, at once."""
    plain = _not_a_dir(tmp_path)
    targets = {
        "not a dir": (plain / "x", f"Not a directory (`{plain}`)"),
        # -o makes missing directories, but not below a file
        "below a file": (plain / "a" / "x", f"Not a directory (`{plain}`)"),
        # --rejects makes none
        "missing": (
            tmp_path / "missing" / "x",
            f"No such file or directory (`{tmp_path / 'missing'}`)",
        ),
    }
    procs = {}
    for case, args in CASES.items():
        for kind, (target, _) in targets.items():
            if (kind == "missing") != (case == "rejects") and kind != "not a dir":
                continue
            cmd = [*PPLOG, "summarize", "-", "--format", "combined"]
            procs[case, kind] = subprocess.Popen(  # noqa: S603
                [*cmd, *args, str(target)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
    try:
        for (case, kind), proc in procs.items():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{case}, {kind}: still reading stdin")
            err = proc.stderr.read() if proc.stderr else ""
            target, why = targets[kind]
            assert proc.returncode == 1, (case, kind, err)
            what = "rejects to " if case == "rejects" else ""
            assert err == f"Error: cannot write {what}`{target}`: {why}\n", (case, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("case", sorted(CASES))
def test_missing_directories_are_made_for_o_not_for_rejects(
    tmp_path: Path, case: str
) -> None:
    """`-o` makes the directories it names, as it always has (cron scripts
    write `-o reports/$(date +%F)/...`); `--rejects` never did, and a
    missing directory there is an `Error:` before reading."""
    target = tmp_path / "new" / "out"
    result = CliRunner().invoke(cli, ["summarize", ELB, *CASES[case], str(target)])
    if case == "rejects":
        assert result.exit_code == 1, result.output
        assert "No such file or directory" in result.output
        assert not (tmp_path / "new").exists()
    else:
        assert result.exit_code == 0, result.output
        assert target.exists()
    assert "Traceback" not in result.output


def test_the_output_directory_itself_is_still_made(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["summarize", ELB, "--to", "csv", "--to", "json", "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (out / "summary.json").is_file() and (out / "clients.csv").is_file()


def test_rejects_are_checked_before_reading_in_the_library(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such.log")  # reading it would fail first
    with pytest.raises(ReportError, match="Not a directory"):
        pplog.summarize(missing, rejects=_not_a_dir(tmp_path) / "r.jsonl")


def test_o_with_only_the_terminal_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["summarize", ELB, "-o", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "-o is for file outputs" in result.output
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------------------
# --log-format's escape=, as nginx reads it


@pytest.mark.parametrize(
    "text",
    [
        "escape=bogus $remote_addr",
        "escape=JSON $remote_addr",  # nginx compares case-sensitively
        "escape= $remote_addr",
        'escape=Json {"a":"$remote_addr"}',
    ],
)
def test_a_bad_escape_in_log_format_is_an_error(text: str) -> None:
    with pytest.raises(LogFormatError, match="escape=default, escape=json or"):
        LogFormat.from_string(text)
    for args in (
        ["formats", "--log-format", text],
        ["summarize", ELB, "--log-format", text],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, result.output
        bad = text.split()[0]
        assert result.output.startswith(f"Error: unknown `{bad}` in log_format")


def test_good_escapes_and_literal_text_are_kept() -> None:
    assert LogFormat.from_string('escape=json {"a":"$remote_addr"}').escape == "json"
    assert LogFormat.from_string("escape=none\t$remote_addr").escape == "none"
    later = LogFormat.from_string("$remote_addr escape=bogus")  # literal text
    assert later.format == "$remote_addr escape=bogus"
    # given apart (a saved format, nginx.conf's pieces), the text is all literal
    given = LogFormat.from_string("escape=x $remote_addr", escape="json")
    assert (given.escape, given.format) == ("json", "escape=x $remote_addr")


def test_a_broken_log_format_in_nginx_conf_is_an_error(tmp_path: Path) -> None:
    """A configuration whose one `log_format` nginx refuses (and no
    `access_log` naming it) stops the run; it was taken for "several
    formats" and the input auto-detected, as if --nginx-conf were not
    given. A configuration of two good formats still detects."""
    conf = tmp_path / "nginx.conf"
    conf.write_text("http {\n    log_format x escape=bogus '$remote_addr';\n}\n")
    result = CliRunner().invoke(cli, ["summarize", ELB, "--nginx-conf", str(conf)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: unknown `escape=bogus` in log_format")
    conf.write_text(
        "http {\n    log_format x '$remote_addr';\n"
        "    log_format y '$remote_addr $status';\n}\n"
    )
    two = CliRunner().invoke(cli, ["summarize", ELB, "--nginx-conf", str(conf)])
    assert two.exit_code == 0 and "auto-detected" in two.output, two.output


# --------------------------------------------------------------------------------------
# Exit codes


def test_compact_of_a_non_dataset_exits_1_as_verify_does(tmp_path: Path) -> None:
    for command in ("compact", "verify"):
        result = CliRunner().invoke(cli, [command, str(tmp_path)])
        assert result.exit_code == 1, (command, result.output)
        assert result.output == (
            f"Error: `{tmp_path}` is not a dataset written by `pplog ingest`\n"
        )


# --------------------------------------------------------------------------------------
# Regular expressions: the engine's reason, not polars' expression


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("a{99999999}", "too large once compiled"),
        ("a{1000}{1000}", "use smaller repetition counts"),
        ("(", "unclosed group"),
        ("(?=/api)", "look-around"),
    ],
)
def test_a_bad_path_regex_says_why_in_words(pattern: str, reason: str) -> None:
    result = CliRunner().invoke(cli, ["summarize", ELB, "--path", pattern])
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith(f"Error: --path `{pattern}` is not a valid regular")
    assert reason in line
    assert "str.contains" not in line and "error occurred" not in result.output
    with pytest.raises(OptionError, match=reason) as info:
        pplog.summarize(ELB, path=pattern)
    assert "str.contains" not in str(info.value)


# --------------------------------------------------------------------------------------
# A closed stdout: quiet, 128 + SIGPIPE


@pytest.mark.parametrize(
    "args",
    [
        ["summarize", ELB],
        ["summarize", ELB, "--to", "json", "--top", "0"],
        ["doctor", ELB],
        ["formats"],
        ["top", ELB, "--to", "jsonl", "--refresh", "0.1", "--duration", "30"],
        ["summarize", ELB, "--to", "html", "-o", "/dev/stdout"],
    ],
    ids=["summarize", "json", "doctor", "formats", "top", "html-o-dev-stdout"],
)
def test_a_closed_stdout_ends_the_run_quietly(args: list[str]) -> None:
    proc = subprocess.Popen(  # noqa: S603
        [*PPLOG, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the first write
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err
    assert err == b""


def test_a_usage_error_quoting_an_argument_writes_no_control_bytes() -> None:
    """A bad `--since` was echoed with its BEL and U+202E raw: a pasted or
    scripted argument can carry what a terminal acts on, as log text can."""
    done = subprocess.run(
        [*PPLOG, "summarize", ELB, "--since", "10m\a\u202eX\x1b[2J"],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 2
    assert b"\a" not in done.stderr
    assert b"\x1b" not in done.stderr
    assert "\u202e".encode() not in done.stderr
    assert b"`10m\\x07\\u202EX\\x1B[2J`" in done.stderr


def test_a_time_before_the_year_1000_is_shown_in_four_digits() -> None:
    """`--since 0001-01-01` was labelled `since 1-01-01 00:00:00 UTC`."""
    from pplog.pipeline.filters import Filters

    labels = Filters.parse(since="0001-01-01", until="0999-12-31T23:59:59Z").labels
    assert labels == ("since 0001-01-01 00:00:00 UTC", "until 0999-12-31 23:59:59 UTC")


def test_top_of_an_empty_path_is_bad_usage(tmp_path: Path) -> None:
    """`pplog top ''` followed the working directory (`Path("")` is `.`),
    its own output redirected there included."""
    done = run_pplog("top", "", "--to", "jsonl", "--duration", "1", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == (
        "Error: an empty path was given; pass a log file, a glob or a directory"
    )


def test_a_file_named_by_a_blank_is_a_file_not_an_empty_path(tmp_path: Path) -> None:
    """Only a path that is empty, or blank and not there, is refused."""
    (tmp_path / " ").write_bytes((SAMPLES / "elb-access.log").read_bytes())
    done = run_pplog("summarize", " ", "--to", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '"lines": 3000' in done.stdout
