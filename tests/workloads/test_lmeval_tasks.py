"""lm-eval tasks as query sets, offline, through lm-eval's own TaskManager (tests/workloads/lmeval_task)."""

from __future__ import annotations

import builtins
import json

import pytest

from ipw.core.errors import InputFileError, IpwError, MissingExtra
from ipw.queries.grading import grade
from ipw.queries.querysets import load_lm_eval_task
from tests.conftest import REPO

TASK_DIR = REPO / "tests/workloads/lmeval_task"
DOCS = [json.loads(line) for line in (TASK_DIR / "docs.jsonl").read_text().splitlines()]


@pytest.fixture
def from_repo(monkeypatch):
    pytest.importorskip("lm_eval")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.chdir(REPO)  # the task's data_files are relative to the repository root


def test_generate_until_task_becomes_queries(from_repo):
    qs = load_lm_eval_task("ipw_tiny_arith", TASK_DIR, num_fewshot=2)
    assert len(qs) == len(DOCS) and qs.name == "lm-eval:ipw_tiny_arith"
    first = qs.queries[0]
    # lm-eval's own few-shot context (first_n sampler, "\n\n" delimiter) and doc_to_text
    assert first.prompt == (
        "Question: What is 3 + 4?\nAnswer: 7\n\n"
        "Question: A cat has 4 legs. How many legs do 2 cats have?\nAnswer: 8\n\n"
        f"Question: {DOCS[0]['question']}\nAnswer:"
    )
    assert [q.answer for q in qs] == [d["answer"] for d in DOCS]
    graders = {q.answer: q.grader for q in qs}
    assert graders["42"] == "numeric" and graders["0.25"] == "numeric" and graders["Earth"] == "exact"
    assert first.meta["until"] == ["\n\n", "Question:"] and first.domain == "ipw_tiny_arith"
    assert grade(first, " 42").correct and not grade(first, " 41").correct


def test_limit_zero_shot_and_hash(from_repo):
    qs = load_lm_eval_task("ipw_tiny_arith", TASK_DIR, limit=3, num_fewshot=0)
    assert len(qs) == 3 and qs.queries[1].prompt == f"Question: {DOCS[1]['question']}\nAnswer:"
    again = load_lm_eval_task("ipw_tiny_arith", TASK_DIR, limit=3, num_fewshot=0)
    assert again.sha256 == qs.sha256 != load_lm_eval_task("ipw_tiny_arith", TASK_DIR, limit=3, num_fewshot=1).sha256


def test_unknown_task_and_missing_path(from_repo, tmp_path):
    with pytest.raises(IpwError, match="Did you mean 'ipw_tiny_arith'"):
        load_lm_eval_task("ipw_tiny_arit", TASK_DIR)
    with pytest.raises(InputFileError, match="does not exist"):
        load_lm_eval_task("ipw_tiny_arith", tmp_path / "nowhere")


def test_non_generate_task_is_refused(from_repo, tmp_path):
    yaml = (TASK_DIR / "ipw_tiny_arith.yaml").read_text()
    yaml = yaml.replace("task: ipw_tiny_arith", "task: ipw_tiny_ll").replace("output_type: generate_until", "output_type: loglikelihood")
    (tmp_path / "ll.yaml").write_text(yaml)
    with pytest.raises(IpwError, match="generate_until tasks only"):
        load_lm_eval_task("ipw_tiny_ll", tmp_path)


def test_missing_lm_eval_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_lm_eval(name, *args, **kwargs):
        if name.startswith("lm_eval"):
            raise ImportError("No module named 'lm_eval'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lm_eval)
    with pytest.raises(MissingExtra, match=r"pip install 'ipw\[lmeval\]'"):
        load_lm_eval_task("ipw_tiny_arith", TASK_DIR)
