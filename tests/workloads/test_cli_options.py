"""Option values that make no sense are usage errors before anything runs; `ipw measure` of a
command that cannot run is a one-line error."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ipw.cli import main


@pytest.mark.parametrize(
    "args, says",
    [(["--limit", "0"], "--limit"), (["--limit", "-1"], "--limit"), (["--warmup", "-1"], "--warmup"),
     (["--temperature", "nan"], "nan is not a finite number >= 0"), (["--temperature", "inf"], "inf is not a finite"),
     (["--temperature", "-0.5"], "--temperature"), (["--max-tokens", "0"], "--max-tokens"),
     (["--idle", "nan"], "--idle"), (["--hz", "-1"], "--hz"), (["--retries", "-1"], "--retries"),
     (["--timeout", "0"], "0.0 is not a finite number > 0"), (["--deadline", "inf"], "--deadline"),
     (["--retry-backoff", "-1"], "--retry-backoff")],
)  # fmt: skip
def test_profile_refuses_nonsense_numbers_before_running(tmp_path, args, says):
    result = CliRunner().invoke(main, ["profile", "--runs-dir", str(tmp_path / "runs"), *args])
    assert result.exit_code == 2 and "Invalid value" in result.output and says in result.output, result.output
    assert not (tmp_path / "runs").exists()


def test_profile_help_states_the_retry_defaults():
    text = CliRunner().invoke(main, ["profile", "--help"]).output
    for option, default in (("--retries", "2"), ("--retry-backoff", "1.0"), ("--timeout", "60.0"), ("--deadline", "300.0")):
        after = text.split(option, 1)[1]
        assert f"[default: {default}" in " ".join(after.split()[:40]), option


@pytest.mark.parametrize(
    "args, says",
    [(["--seconds", "-1"], "-1.0 is not a finite number > 0"), (["--seconds", "0"], "--seconds"),
     (["--seconds", "nan"], "--seconds"), (["--seconds", "1", "--idle", "-2"], "--idle"),
     (["--seconds", "1", "--hz", "inf"], "--hz")],
)  # fmt: skip
def test_measure_refuses_nonsense_numbers(args, says):
    result = CliRunner().invoke(main, ["measure", *args])
    assert result.exit_code == 2 and says in result.output, result.output


def test_measure_of_a_missing_command_is_one_clear_line(tmp_path):
    result = CliRunner().invoke(main, ["measure", "--hz", "0", "--", "ipw-no-such-program-xyz", "--flag"])
    assert result.exit_code == 1
    assert result.output == "Error: cannot run 'ipw-no-such-program-xyz': not found on PATH\n"
    script = tmp_path / "script.sh"
    script.write_text("echo hi\n")
    result = CliRunner().invoke(main, ["measure", "--hz", "0", "--", str(script)])
    assert result.output == f"Error: cannot run {str(script)!r}: not executable\n"
    result = CliRunner().invoke(main, ["measure", "--hz", "0", "--", str(tmp_path / "missing")])
    assert result.output.strip().endswith("no such file") and result.exit_code == 1
