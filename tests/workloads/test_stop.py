"""A stop that still reports: Ctrl-C (SIGINT) and SIGTERM end ``ipw profile`` with its summary.

Real processes (``python -m ipw profile --engine openai``) against the streaming stub server on
127.0.0.1 (tests/workloads/openai_stub.py, ``paced``: one word every 10 ms, so each query takes
about half a second and a signal lands mid-run), and in-process runs whose scripted engine sends
the signal to its own process in the middle of a query, so that what happens to the query in flight
is known exactly. The meters are this machine's own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from ipw.cli import main
from ipw.core.clock import now
from ipw.engines import Engine, Generation, GenerationSettings
from ipw.run import runner
from ipw.run.stop import RunInterrupted, handle_signals
from ipw.store import load
from tests.workloads.openai_stub import StubServer

N = 20
WORDS = 30  # words streamed per answer, one every PACE_S


@pytest.fixture
def server():
    s = StubServer().start()
    yield s
    s.stop()


@pytest.fixture
def queries(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i:02d}", "prompt": "ECHO: " + "so " * WORDS + f"answer: {i}",
                                        "answer": str(i), "grader": "numeric", "domain": f"d{i % 3}"}) + "\n"
                            for i in range(N)))  # fmt: skip
    return path


def _signal_mid_run(server, queries, tmp_path, sig):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "ipw", "profile", "--engine", "openai", "--base-url", f"{server.url}/paced/v1",
           "--model", "stub", "--queries", str(queries), "--idle", "0", "--warmup", "0", "--quiet",
           "--runs-dir", str(runs), "--run-id", "r"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = runs / "r" / "queries.jsonl"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if journal.is_file() and len(journal.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before the signal:\n{proc.stderr.read()}"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err, runs / "r"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_run_prints_and_writes_the_summary_and_marks_the_run_interrupted(server, queries, tmp_path, sig):
    rc, out, err, run_path = _signal_mid_run(server, queries, tmp_path, sig)
    assert rc == 130, err
    assert "Aborted!" not in out + err and "Traceback" not in err
    run = load(run_path)
    stored = len(run.queries)
    assert 3 <= stored < N and run.queries["id"].is_unique and run.queries["correct"].all()
    manifest = json.loads((run_path / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["sessions"][-1]["status"] == "interrupted"
    summary = json.loads((run_path / "summary.json").read_text())
    assert summary["overall"]["n"] == stored  # summary.json of what was done
    assert f"interrupted: {stored} of {N} queries" in out and "accuracy: 100.0%" in out and "IPW:" in out
    assert f"ipw profile --resume {run_path}" in out
    if sig == signal.SIGTERM:
        return _resume_completes(run_path)
    assert "finishing the query in flight" in err
    # report and compare show the run as unfinished, with how many queries of the set it holds
    compared = CliRunner().invoke(main, ["compare", str(run_path)])
    assert compared.exit_code == 0 and f"r: interrupted: {stored} of {N} queries" in compared.output
    as_json = json.loads(CliRunner().invoke(main, ["compare", str(run_path), "--json"]).output)
    assert as_json["runs"][0]["status"] == f"interrupted: {stored} of {N} queries"
    html = tmp_path / "report.html"
    reported = CliRunner().invoke(main, ["report", str(run_path), "-o", str(html)])
    assert reported.exit_code == 0, reported.output
    assert f"interrupted: {stored} of {N} queries" in html.read_text()


def _resume_completes(run_path):
    """--resume finishes a stopped run: every query once, the run complete."""
    again = subprocess.run([sys.executable, "-m", "ipw", "profile", "--resume", str(run_path), "--quiet"],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    done = load(run_path)
    assert sorted(done.queries["id"]) == [f"q{i:02d}" for i in range(N)] and done.unfinished is None
    assert "interrupted" not in again.stdout


# -- what happens to the query in flight, in process ----------------------------------------------

class SignallingEngine(Engine):
    """Answers "answer: <n>" for "... <n>"; during the query numbered ``at`` it sends ``sig`` to its
    own process and goes on generating (a signal that arrives mid-generation)."""

    name = "scripted"

    def __init__(self, sig, at: int) -> None:
        self.sig, self.at, self.calls = sig, at, 0

    def generate(self, prompt: str, settings: GenerationSettings) -> Generation:
        self.calls += 1
        t0 = now()
        if self.calls == self.at:
            os.kill(os.getpid(), self.sig)
            time.sleep(0.05)  # the handler runs here, in the middle of the query
        n = prompt.rsplit(" ", 1)[-1]
        return Generation(f"answer: {n}", 5, 2, t0, now(), t0, now(), "stop")

    def describe(self) -> dict:
        return {"engine": self.name, "model": "scripted"}


@pytest.mark.parametrize("sig, stored", [(signal.SIGINT, 3), (signal.SIGTERM, 2)])
def test_sigint_finishes_the_query_in_flight_and_sigterm_drops_it(tmp_path, queries, sig, stored):
    config = runner.RunConfig(engine="scripted", queries=str(queries), settings=GenerationSettings(max_tokens=4),
                              warmup=0, idle_s=0.0, runs_dir=str(tmp_path / "runs"), run_id="r")  # fmt: skip
    notes: list[str] = []
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(RunInterrupted) as caught, handle_signals(notes.append):
        runner.profile(config, engine=SignallingEngine(sig, at=3))
    run = load(caught.value.path)
    assert len(run.queries) == stored and run.summary["overall"]["n"] == stored  # SIGINT: the third is kept
    assert run.unfinished == f"interrupted: {stored} of {N} queries"
    assert caught.value.reason == signal.Signals(sig).name
    assert bool(notes) == (sig == signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before  # the handlers are given back


def test_a_second_ctrl_c_drops_the_query_in_flight(tmp_path, queries):
    class Twice(SignallingEngine):
        def generate(self, prompt, settings):
            if self.calls + 1 == self.at:
                os.kill(os.getpid(), signal.SIGINT)  # first: finish this one
            return super().generate(prompt, settings)  # second, inside the same query: drop it

    config = runner.RunConfig(engine="scripted", queries=str(queries), settings=GenerationSettings(max_tokens=4),
                              warmup=0, idle_s=0.0, runs_dir=str(tmp_path / "runs"), run_id="r")  # fmt: skip
    with pytest.raises(RunInterrupted) as caught, handle_signals():
        runner.profile(config, engine=Twice(signal.SIGINT, at=2))
    assert len(load(caught.value.path).queries) == 1


def test_ctrl_c_at_concurrency_sends_no_new_query_and_stores_those_in_flight(server, tmp_path, queries):
    from ipw.engines.openai import OpenAIEngine

    class SignalOnThird(runner.RunObserver):
        seen = 0

        def record(self, record):
            self.seen += 1
            if self.seen == 3:
                os.kill(os.getpid(), signal.SIGINT)

    engine = OpenAIEngine(f"{server.url}/paced/v1", "stub", api_key_env="IPW_TEST_NO_KEY")
    config = runner.RunConfig(engine="openai", queries=str(queries), settings=GenerationSettings(max_tokens=64),
                              warmup=0, idle_s=0.0, runs_dir=str(tmp_path / "runs"), run_id="c", concurrency=2)  # fmt: skip
    try:
        with pytest.raises(RunInterrupted) as caught, handle_signals():
            runner.profile(config, engine=engine, observer=SignalOnThird())
    finally:
        engine.close()
    run = load(caught.value.path)
    stored = len(run.queries)
    assert 3 <= stored < N and run.queries["correct"].all()
    assert len(server.requests) == stored  # every query sent was finished and stored; none sent after the stop
    assert run.summary["overall"]["n"] == stored and run.unfinished == f"interrupted: {stored} of {N} queries"
    (session,) = run.manifest["serving"]["sessions"]
    assert session["queries"] == stored
