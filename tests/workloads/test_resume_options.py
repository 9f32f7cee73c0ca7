"""``ipw profile --resume`` and the other options of its command line: what it takes from the
manifest, what it refuses (options that contradict the manifest, named in one line, before
anything runs), what it applies (timeouts, retries, the deadline) and says so; a launch or a folder
of shards given to it; run ids and query paths checked before a model loads; query paths stored
absolute, so a run resumes from any folder. Runs go to a stub server on 127.0.0.1."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from ipw.cli import main
from ipw.core.errors import IpwError
from ipw.run import runner
from ipw.run.config import RunConfig
from ipw.store import load

QUERIES = [
    {"id": "a", "prompt": "Say four. ECHO: 4", "answer": "4", "grader": "numeric", "domain": "arithmetic"},
    {"id": "b", "prompt": "Say Paris. ECHO: Paris", "answer": "Paris", "grader": "exact", "domain": "facts"},
]


@pytest.fixture
def made(server, tmp_path, monkeypatch):
    """A complete run at concurrency 2 made from ``tmp_path`` with a relative --queries path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    result = ipw("profile", "--engine", "openai", "--base-url", f"{server.url}/ok/v1", "--model", "stub",
                 "--queries", "q.jsonl", "--idle", "0", "--warmup", "0", "--quiet", "--run-id", "r",
                 "--concurrency", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    return tmp_path / "runs" / "r"


def ipw(*args):
    return CliRunner().invoke(main, list(args))


def sessions(run) -> int:
    return len(json.loads((run / "manifest.json").read_text())["sessions"])


@pytest.mark.parametrize("args, named", [
    (["--concurrency", "64", "--timeout", "1", "--max-tokens", "3"], "--max-tokens, --concurrency"),
    (["--shard", "1/2"], "--shard"), (["--queries", "default"], "--queries"), (["--model", "other"], "--model"),
    (["--run-id", "x"], "--run-id"), (["--idle", "3"], "--idle"), (["--engine", "transformers"], "--engine"),
])  # fmt: skip
def test_options_that_contradict_the_manifest_are_refused_by_name_before_anything_runs(made, args, named):
    journal = (made / "queries.jsonl").read_bytes()
    result = ipw("profile", "--resume", str(made), *args)
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert f"these differ from it: {named}" in last and "--timeout, --deadline" in last, last
    assert (made / "queries.jsonl").read_bytes() == journal and sessions(made) == 1


def test_the_same_values_are_accepted_and_safe_ones_applied_and_said(made):
    result = ipw("profile", "--resume", str(made), "--concurrency", "2", "--queries", "q.jsonl", "--max-tokens", "64",
                 "--deadline", "9", "--retries", "4", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"resuming {made} with the options of its manifest (engine openai, model stub, queries ")
    assert "concurrency 2" in first and first.endswith("applied from the command line: --retries 4, --deadline 9")
    manifest = json.loads((made / "manifest.json").read_text())
    assert manifest["option_changes"][-1]["engine_options"] == {"deadline_s": 9.0, "tries": 5}
    assert manifest["config"]["engine_options"]["deadline_s"] == 300.0  # the run's own options stay as made


def test_an_applied_deadline_is_the_one_the_engine_keeps(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.jsonl").write_text(json.dumps(QUERIES[0]) + "\n")
    made = ipw("profile", "--engine", "openai", "--base-url", f"{server.url}/trickle-1000/v1", "--model", "stub",
               "--queries", "q.jsonl", "--idle", "0", "--warmup", "0", "--quiet", "--run-id", "t", "--deadline", "0.5")  # fmt: skip
    assert made.exit_code == 0, made.output
    again = ipw("profile", "--resume", "runs/t", "--retry-errors", "--deadline", "1.5", "--quiet")
    assert again.exit_code == 0 and "--deadline 1.5" in again.output, again.output
    q = load(tmp_path / "runs" / "t").queries
    assert q["error"].str.contains(r"within 1\.5 s \(deadline_s\)").all(), list(q["error"])


def test_a_relative_query_path_resumes_from_another_folder(made, tmp_path, monkeypatch):
    manifest = json.loads((made / "manifest.json").read_text())
    assert manifest["config"]["queries"] == str(tmp_path / "q.jsonl") and manifest["config"]["queries_given"] == "q.jsonl"
    lines = (made / "queries.jsonl").read_text().splitlines()
    (made / "queries.jsonl").write_text(lines[0] + "\n")  # as if stopped after one query
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = ipw("profile", "--resume", str(made), "--quiet")
    assert result.exit_code == 0, result.output
    assert sorted(load(made).queries["id"]) == ["a", "b"]


def test_a_run_of_an_earlier_ipw_with_a_relative_path_says_where_to_resume_from(made, tmp_path, monkeypatch):
    m = json.loads((made / "manifest.json").read_text())
    m["config"]["queries"] = "q.jsonl"
    del m["config"]["queries_given"]
    (made / "manifest.json").write_text(json.dumps(m))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    result = ipw("profile", "--resume", str(made))
    assert result.exit_code == 1 and "relative to the folder the run was started in" in result.output, result.output


def test_a_launch_folder_says_how_to_continue_it(made, tmp_path):
    launch = tmp_path / "launches" / "l"
    (launch / "openai-stub").mkdir(parents=True)
    shutil.copytree(made, launch / "openai-stub" / "shard-0-of-1")
    (launch / "launch.json").write_text("{}")
    for target in (launch, launch / "openai-stub"):
        result = ipw("profile", "--resume", str(target))
        assert result.exit_code == 1 and f"continue it with ipw launch --resume {launch}" in result.output, result.output


def test_a_folder_of_shards_resumes_each_shard_not_complete(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES * 1))
    for i in range(2):
        result = ipw("profile", "--engine", "openai", "--base-url", f"{server.url}/ok/v1", "--model", "stub",
                     "--queries", "q.jsonl", "--idle", "0", "--warmup", "0", "--quiet", "--runs-dir", "cell",
                     "--run-id", f"shard-{i}-of-2", "--shard", f"{i}/2")  # fmt: skip
        assert result.exit_code == 0, result.output
    cut = tmp_path / "cell" / "shard-1-of-2"
    (cut / "queries.jsonl").write_text("")
    m = json.loads((cut / "manifest.json").read_text())
    (cut / "manifest.json").write_text(json.dumps(m | {"status": "interrupted"}))
    result = ipw("profile", "--resume", "cell", "--quiet")
    assert result.exit_code == 0, result.output
    assert "holds 2 shard run(s); resuming 1 not complete: shard-1-of-2" in result.output
    assert sorted(load(tmp_path / "cell").queries["id"]) == ["a", "b"]


def test_run_ids_are_checked_before_a_model_loads(tmp_path, monkeypatch):
    def loads(*a, **k):
        raise AssertionError("the model was loaded before the run id was checked")

    monkeypatch.setattr(runner, "get_engine", loads)
    (tmp_path / "runs" / "taken").mkdir(parents=True)
    with pytest.raises(IpwError, match="exists already"):
        runner.profile(RunConfig(engine="transformers", runs_dir=str(tmp_path / "runs"), run_id="taken"))
    result = ipw("profile", "--engine", "transformers", "--runs-dir", str(tmp_path / "runs"), "--run-id", "../up")
    assert result.exit_code == 1 and "run id '../up' is not allowed" in result.output, result.output
    result = ipw("profile", "--engine", "transformers", "--queries", str(tmp_path), "--run-id", "fine")
    assert result.exit_code == 1 and "is a directory" in result.output, result.output
