"""The right word for each misuse of the last reliability round (issue 21's weak cases): a
directory given as a file, a run with nothing scored in a comparison, a hand-written record that
breaks the record contract, a prompt that is not text, one run given twice, a measured command
killed by a signal. Real files, the real store and the real command line throughout."""

from __future__ import annotations

import json
import re
import shutil
import sys

import pytest
from click.testing import CliRunner

from ipw.cli import main
from ipw.core.errors import InputFileError
from ipw.queries.querysets import load_queryset
from ipw.store import load
from tests.workloads.openai_stub import StubServer

QUERIES = [
    {"id": "a", "prompt": "Say four. ECHO: 4", "answer": "4", "grader": "numeric", "domain": "arithmetic"},
    {"id": "b", "prompt": "Say Paris. ECHO: Paris", "answer": "Paris", "grader": "exact", "domain": "facts"},
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs over the same two queries: one every query of which failed, one all scored."""
    root = tmp_path_factory.mktemp("runs")
    (root / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    server = StubServer().start()
    try:
        for name, mode in (("failed", "malformed"), ("good", "ok")):
            result = CliRunner().invoke(main, [
                "profile", "--engine", "openai", "--base-url", f"{server.url}/{mode}/v1", "--model", "stub",
                "--queries", str(root / "q.jsonl"), "--idle", "0", "--warmup", "0", "--quiet", "--retries", "0",
                "--runs-dir", str(root), "--run-id", name])  # fmt: skip
            assert result.exit_code == 0, result.output
    finally:
        server.stop()
    return root


def ipw(*args):
    return CliRunner().invoke(main, list(args))


def test_a_directory_is_a_directory_for_queries_and_measure(tmp_path):
    with pytest.raises(InputFileError, match="is a directory, not a query set file"):
        load_queryset(tmp_path)
    result = ipw("measure", "--hz", "0", "--", str(tmp_path))
    assert result.exit_code == 1 and result.output == f"Error: cannot run {str(tmp_path)!r}: is a directory\n"


def test_compare_says_which_run_scored_nothing(runs):
    result = ipw("compare", str(runs / "failed"), str(runs / "good"))
    assert result.exit_code == 1, result.output
    assert "no query was scored in run failed" in result.output and "share no query ids" not in result.output


def test_one_run_twice_or_through_a_link_is_refused_by_compare_and_report(runs, tmp_path):
    link = tmp_path / "alias"
    link.symlink_to(runs / "good", target_is_directory=True)
    for args in (["compare", str(runs / "good"), str(link)], ["report", str(runs / "good"), str(link), "-o", str(tmp_path / "r.html")]):
        result = ipw(*args)
        assert result.exit_code == 1 and "are the same run" in result.output, result.output
    result = ipw("report", str(runs / "good"), str(runs / "good"), "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 1 and "is given twice" in result.output and not (tmp_path / "r.html").exists()


def _hand_written(runs, tmp_path, change: dict):
    run = tmp_path / "run"
    shutil.copytree(runs / "good", run)
    journal = run / "queries.jsonl"
    first = json.loads(journal.read_text().splitlines()[0])
    with journal.open("a") as f:
        f.write(json.dumps(first | change) + "\n")
    return run


@pytest.mark.parametrize("change, says", [
    ({"schema": 99}, "schema 99 is not one this ipw reads"),
    ({"energy_j": None}, "a scored record (correct True, no error) has no energy_j"),
])  # fmt: skip
def test_a_hand_written_record_that_breaks_the_contract_is_refused_with_file_and_line(runs, tmp_path, change, says):
    run = _hand_written(runs, tmp_path, change)
    with pytest.raises(InputFileError, match=re.escape(says)) as e:
        load(run)
    assert str(e.value).startswith(f"{run / 'queries.jsonl'}:3:")  # the appended line
    result = ipw("compare", str(run), str(runs / "good"))
    assert result.exit_code == 1 and says in result.output


def test_a_record_without_energy_key_is_refused_too(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs / "good", run)
    journal = run / "queries.jsonl"
    first = json.loads(journal.read_text().splitlines()[0])
    del first["energy_j"]
    journal.write_text(journal.read_text() + json.dumps(first) + "\n")
    with pytest.raises(InputFileError, match="has no energy_j"):
        load(run)


@pytest.mark.parametrize("prompt, says", [
    ("42", "prompt is not a string (int 42)"),
    ('"ask \\ud800 this"', "prompt holds a lone surrogate"),
    ('"  "', "empty prompt"),
])  # fmt: skip
def test_a_prompt_that_is_not_text_is_refused_at_load_with_file_and_line(tmp_path, prompt, says):
    path = tmp_path / "q.jsonl"
    good = json.dumps(QUERIES[0])
    path.write_text(good + "\n" + f'{{"id": "x", "prompt": {prompt}, "answer": "1", "grader": "exact", "domain": "d"}}\n')
    with pytest.raises(InputFileError, match=re.escape(says)) as e:
        load_queryset(path)
    assert str(e.value).startswith(f"{path}:2:")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_measure_of_a_command_killed_by_a_signal_exits_128_plus_n_with_a_note():
    result = CliRunner().invoke(main, ["measure", "--hz", "0", "--", "sh", "-c", "kill -9 $$"])
    assert result.exit_code == 128 + 9, (result.exit_code, result.output)
    assert "note: sh was killed by signal SIGKILL (9); exit status 137" in result.output
    result = CliRunner().invoke(main, ["measure", "--hz", "0", "--", "sh", "-c", "exit 3"])
    assert result.exit_code == 3 and "killed" not in result.output
