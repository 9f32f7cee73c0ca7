"""Short answers end at their line's end (RunConfig.answer_stops, ipw.run.config.ANSWER_STOPS):
the stop strings each query is generated with, in both executors, and in the transformers engine."""

from __future__ import annotations

import json

import pytest

from ipw.core.clock import now
from ipw.engines import Engine, Generation, GenerationSettings
from ipw.queries.querysets import parse_query
from ipw.run import config as C, runner
from ipw.run.serving.flight import Job
from ipw.run.serving.producers import _common

LINES = {"numeric": {"answer": "4"}, "exact": {"answer": "Paris"}, "mc": {"answer": "B", "choices": ["x", "y"]},
         "regex": {"answer": "a", "pattern": "a+"}}  # fmt: skip


def _query(grader: str, **extra):
    return parse_query(json.dumps({"id": grader, "prompt": "p", "grader": grader, "domain": "d"} | LINES[grader] | extra))


def test_stops_by_grader_and_lm_eval_until_wins():
    base = GenerationSettings(max_tokens=8)
    for grader in ("numeric", "exact", "mc"):
        assert C.query_settings(base, _query(grader), answer_stops=True).stop == ("\n",)
        assert C.query_settings(base, _query(grader)).stop == ()  # off unless asked
    assert C.query_settings(base, _query("regex"), answer_stops=True).stop == ()  # a pattern may span lines
    until = _query("exact", meta={"until": ["Q:"]})
    assert C.query_settings(base, until, answer_stops=True).stop == ("Q:",)  # the task's own stops only


def test_a_run_of_an_earlier_ipw_resumes_without_answer_stops():
    old = C.RunConfig().to_dict()
    del old["answer_stops"]
    assert C.RunConfig.from_dict(old).answer_stops is False and C.RunConfig().answer_stops is True


class Recording(Engine):
    name = "scripted"

    def __init__(self) -> None:
        self.stops: dict[str, tuple] = {}

    def generate(self, prompt: str, settings: GenerationSettings) -> Generation:
        self.stops[prompt.split("\n")[0]] = settings.stop  # an mc prompt gets its options appended
        t0 = now()
        return Generation("4", 5, 1, t0, now(), now(), now(), "stop")

    def describe(self) -> dict:
        return {"engine": self.name, "model": "scripted"}


@pytest.mark.parametrize("answer_stops", [True, False])
def test_the_serial_run_sends_each_query_its_graders_stops(tmp_path, answer_stops):
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"id": g, "prompt": f"prompt {g}", "grader": g, "domain": g} | LINES[g]) + "\n"
                            for g in LINES))  # fmt: skip
    config = runner.RunConfig(engine="scripted", queries=str(path), warmup=0, idle_s=0.0, runs_dir=str(tmp_path / "runs"),
                              run_id="r", answer_stops=answer_stops)  # fmt: skip
    engine = Recording()
    store = runner.profile(config, engine=engine)
    want = ("\n",) if answer_stops else ()
    assert engine.stops["prompt numeric"] == engine.stops["prompt exact"] == want and engine.stops["prompt regex"] == ()
    assert engine.stops["prompt mc"] == want
    assert store.manifest["config"]["answer_stops"] is answer_stops


def test_a_batch_of_mixed_graders_generates_with_the_stops_they_share():
    s = GenerationSettings(max_tokens=8)
    jobs = [Job(_query(g), "p", C.query_settings(s, _query(g), True)) for g in ("numeric", "exact")]
    assert _common(jobs).stop == ("\n",)
    jobs.append(Job(_query("regex"), "p", C.query_settings(s, _query("regex"), True)))
    assert _common(jobs).stop == ()  # the regex row is not cut; the others are cut by the finaliser


@pytest.mark.slow
def test_transformers_ends_generation_at_a_stop_string():
    from ipw.engines import get_engine

    engine = get_engine("transformers", model="default")
    try:
        prompt = "List three colours, one per line."
        free = engine.generate(prompt, GenerationSettings(max_tokens=24))
        cut = engine.generate(prompt, GenerationSettings(max_tokens=24, stop=("\n",)))
    finally:
        engine.close()
    assert "\n" in free.text.strip()  # the answer spans lines
    assert cut.text == free.text[: free.text.index("\n")] and cut.finish_reason == "stop"
    assert cut.output_tokens < free.output_tokens  # generation ended there, not just the text
