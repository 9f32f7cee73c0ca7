"""The order queries run in: domains interleaved by default (a fixed, seeded order recorded in the
manifest, kept by --resume), ``--order file`` for the file's order.

The runner, store and grading are real; the engine is scripted at the engine boundary and answers
every query correctly; the meters are this machine's own.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from ipw.cli import main
from ipw.core.clock import now
from ipw.engines import Engine, Generation, GenerationSettings
from ipw.queries.querysets import load_queryset, parse_query
from ipw.run import config as C, runner
from ipw.run.stop import RunInterrupted
from ipw.store import load
from tests.workloads.openai_stub import StubServer

DOMAINS = {"arithmetic": 7, "facts": 4, "code": 2}  # sizes, listed domain by domain as a file does
QUERIES = [{"id": f"{d[:1]}{k}", "prompt": f"ECHO: {i}", "answer": str(i), "grader": "numeric", "domain": d}
           for i, (d, k) in enumerate((d, k) for d, n in DOMAINS.items() for k in range(n))]  # fmt: skip


def _max_gap(order, domains) -> float:
    """The largest distance, over every prefix and domain, between a domain's count in the prefix
    and its proportional share of the prefix [queries]."""
    sizes, n, seen, gap = Counter(domains), len(domains), Counter(), 0.0
    for m, q in enumerate(order, 1):
        seen[q.domain] += 1
        gap = max(gap, max(abs(seen[d] - m * sizes[d] / n) for d in sizes))
    return gap


def test_interleaved_order_keeps_every_prefix_of_the_shipped_set_in_proportion():
    qs = list(load_queryset("default").queries)
    order = C.run_order(qs, "interleaved", 0)
    assert sorted(q.id for q in order) == sorted(q.id for q in qs)  # a permutation
    assert [q.id for q in C.run_order(qs, "interleaved", 0)] == [q.id for q in order]  # fixed by its seed
    assert [q.id for q in C.run_order(qs, "interleaved", 1)] != [q.id for q in order]
    assert C.run_order(qs, "file") == qs
    domains = [q.domain for q in qs]
    assert _max_gap(order, domains) < 2  # every prefix within 2 queries of each domain's share
    assert _max_gap(qs, domains) > 40  # file order: the first 56 are all arithmetic
    first = order[:37]  # a run stopped after 37 queries holds every domain and every difficulty
    assert {q.domain for q in first} == set(domains) and {q.difficulty for q in first} == {q.difficulty for q in qs}
    assert {q.domain for q in C.select(qs, 6, "interleaved")} == set(domains)
    assert C.select(qs, 10, "interleaved") == order[:10]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=6), st.integers(0, 2**31))
def test_every_prefix_is_near_proportional_for_any_domain_sizes(sizes, seed):
    qs = [parse_query(json.dumps({"id": f"d{d}-{k}", "prompt": "p", "answer": "1", "grader": "numeric", "domain": f"d{d}"}))
          for d, n in enumerate(sizes) for k in range(n)]  # fmt: skip
    order = C.run_order(qs, "interleaved", seed)
    assert sorted(q.id for q in order) == sorted(q.id for q in qs)
    # each domain's count is within 1/2 of t x its size at the prefix's key t, and the prefix's length
    # within len(sizes)/2 of t x the total: so within 1/2 + len(sizes)/2 of its share
    assert _max_gap(order, [q.domain for q in qs]) <= 0.5 + len(sizes) / 2 + 1e-9


class Answering(Engine):
    """Answers "<n>" for "ECHO: <n>"; stops the run (a KeyboardInterrupt, as a Ctrl-C) at call ``stop_at``."""

    name = "scripted"

    def __init__(self, stop_at: int | None = None) -> None:
        self.prompts: list[str] = []
        self.stop_at = stop_at

    def generate(self, prompt: str, settings: GenerationSettings) -> Generation:
        self.prompts.append(prompt)
        if len(self.prompts) == self.stop_at:
            raise KeyboardInterrupt
        t0 = now()
        return Generation(prompt.split("ECHO:")[1].strip(), 5, 1, t0, now(), now(), now(), "stop")

    def describe(self) -> dict:
        return {"engine": self.name, "model": "scripted"}


def _config(tmp_path, queryset, **kw):
    return runner.RunConfig(**({"engine": "scripted", "queries": str(queryset), "warmup": 0, "idle_s": 0.0,
                                "runs_dir": str(tmp_path / "runs"), "run_id": "r"} | kw))  # fmt: skip


def test_a_run_takes_the_interleaved_order_by_default_and_records_it(tmp_path, queryset):
    qs = load_queryset(str(queryset)).queries
    store = runner.profile(_config(tmp_path, queryset), engine=Answering())
    expected = [q.id for q in C.run_order(qs, "interleaved", 0)]
    assert [r.id for r in store.records()] == expected and expected != [q["id"] for q in QUERIES]
    order = store.manifest["queryset"]["order"]
    assert order["name"] == "interleaved" and order["seed"] == 0 and order["version"] == C.ORDER_VERSION
    assert order == C.order_entry(C.run_order(qs, "interleaved", 0), "interleaved", 0)
    assert store.manifest["config"]["order"] == "interleaved"


def test_order_file_runs_domain_by_domain(tmp_path, queryset):
    store = runner.profile(_config(tmp_path, queryset, order="file"), engine=Answering())
    assert [r.id for r in store.records()] == [q["id"] for q in QUERIES]
    assert store.manifest["queryset"]["order"]["name"] == "file"


def test_resume_keeps_the_recorded_order(tmp_path, queryset):
    qs = load_queryset(str(queryset)).queries
    expected = [q.id for q in C.run_order(qs, "interleaved", 5)]
    with pytest.raises(RunInterrupted) as stopped:
        runner.profile(_config(tmp_path, queryset, order_seed=5), engine=Answering(stop_at=5))
    assert [r.id for r in load(stopped.value.path).queries.itertuples()] == expected[:4]
    engine = Answering()
    store = runner.resume(stopped.value.path, engine=engine)
    assert [r.id for r in store.records()] == expected  # the rest, in the recorded order
    assert [p.split()[-1] for p in engine.prompts] == [q.prompt.split()[-1] for q in C.run_order(qs, "interleaved", 5)[4:]]


def test_a_run_of_an_ipw_without_orders_resumes_in_file_order(tmp_path, queryset):
    with pytest.raises(RunInterrupted) as stopped:
        runner.profile(_config(tmp_path, queryset, order="file"), engine=Answering(stop_at=3))
    manifest_path = stopped.value.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["config"]["order"], manifest["config"]["order_seed"], manifest["queryset"]["order"]
    manifest_path.write_text(json.dumps(manifest))
    store = runner.resume(stopped.value.path, engine=Answering())
    assert [r.id for r in store.records()] == [q["id"] for q in QUERIES]


def test_cli_order_option(tmp_path, queryset):
    server = StubServer().start()
    try:
        for order in ("file", "interleaved"):
            result = CliRunner().invoke(main, ["profile", "--engine", "openai", "--base-url", f"{server.url}/ok/v1",
                                               "--model", "stub", "--queries", str(queryset), "--idle", "0", "--warmup",
                                               "0", "--quiet", "--limit", "4", "--order", order, "--runs-dir",
                                               str(tmp_path / "runs"), "--run-id", order])  # fmt: skip
            assert result.exit_code == 0, result.output
            run = load(tmp_path / "runs" / order)
            picked = C.select(load_queryset(str(queryset)).queries, 4, order)
            assert list(run.queries["id"]) == [q.id for q in picked]
            assert run.manifest["queryset"]["order"]["name"] == order
        assert list(run.queries["domain"]).count("arithmetic") == 2  # interleaved --limit 4: in proportion (7:4:2)
    finally:
        server.stop()
