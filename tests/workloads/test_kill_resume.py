"""kill -9 at random points of real ``ipw profile`` runs, many times over, each time continued with
``--resume``: in the end every query is stored once, none lost, none twice.

The runs are real processes (``python -m ipw profile --engine openai``) against a streaming server
on 127.0.0.1 (tests/workloads/openai_stub.py), so a whole run takes about a second and the kills
land anywhere: before the run folder exists, while the manifest is written, between and inside
queries, while a record is appended, while the summary is written. When a run completes it is checked
and the next run is killed in turn. The seed and every kill are in the failure message.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from ipw.store import RunStore, load
from tests.workloads.openai_stub import StubServer

N_QUERIES = 40
BUDGET_S = 20.0  # kills stop when this is spent (and at least MIN_KILLS landed); the final resume always runs
MIN_KILLS = 4
MAX_TRIES = 30


@pytest.fixture
def server():
    s = StubServer().start()
    yield s
    s.stop()


def _stored_ids(run) -> list[str]:
    """Every stored record's id, duplicates included (the store's raw rows, not the deduplicated frame)."""
    store = RunStore(run)
    if hasattr(store, "table"):
        return [str(x) for x in store.table().column("id").to_pylist()]
    return [r["id"] for r in store.raw_records()]


def _check(run, expected: set[str], context: str) -> None:
    ids = Counter(_stored_ids(run))
    assert set(ids) == expected, f"{context}: lost {sorted(expected - set(ids))}"
    assert max(ids.values()) == 1, f"{context}: twice {[k for k, v in ids.items() if v > 1]}"
    frame = load(run).queries
    assert sorted(frame["id"]) == sorted(expected) and frame["correct"].all(), context
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["sessions"][-1]["status"] == "complete", context


def _complete(run) -> bool:
    manifest = run / "manifest.json"
    return manifest.is_file() and json.loads(manifest.read_text()).get("status") == "complete"


def test_kill_9_at_random_points_then_resume_loses_and_duplicates_nothing(server, tmp_path):
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(
        json.dumps({"id": f"q{i:02d}", "prompt": f"ECHO: {i}", "answer": str(i), "grader": "numeric", "domain": f"d{i % 3}"}) + "\n"
        for i in range(N_QUERIES)
    ))  # fmt: skip
    expected = {f"q{i:02d}" for i in range(N_QUERIES)}
    runs = tmp_path / "runs"

    def command(run):
        if (run / "manifest.json").is_file():
            return [sys.executable, "-m", "ipw", "profile", "--resume", str(run), "--quiet"]
        return [sys.executable, "-m", "ipw", "profile", "--engine", "openai", "--base-url", f"{server.url}/paced/v1",
                "--model", "stub", "--queries", str(queries), "--idle", "0", "--warmup", "1", "--quiet",
                "--runs-dir", str(runs), "--run-id", run.name]  # fmt: skip

    # one uninterrupted run tells how long starting and answering take on this machine now
    timing = runs / "timing"
    started = time.monotonic()
    proc = subprocess.Popen(command(timing), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and not ((timing / "queries.jsonl").is_file() and (timing / "queries.jsonl").stat().st_size):
        time.sleep(0.01)
    startup_s = time.monotonic() - started
    assert proc.wait(timeout=300) == 0
    answering_s = time.monotonic() - started - startup_s
    _check(timing, expected, "the uninterrupted run")

    seed = random.randrange(2**32)
    rng = random.Random(seed)
    deadline = time.monotonic() + BUDGET_S
    kills: list[tuple[str, float, int]] = []
    run, n_runs = runs / "k0", 1
    while len(kills) < MAX_TRIES and (time.monotonic() < deadline or sum(rc < 0 for *_, rc in kills) < MIN_KILLS):
        left = 1 - len(set(_stored_ids(run))) / N_QUERIES if (run / "manifest.json").is_file() else 1
        at = rng.uniform(0.5 * startup_s, startup_s + answering_s * left)  # anywhere from start-up to the end
        proc = subprocess.Popen(command(run), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=at)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.returncode in (0, -signal.SIGKILL), f"seed {seed}: a run failed on its own:\n{err}"
        kills.append((run.name, round(at, 3), proc.returncode))
        if _complete(run):  # this run is done: check it, and kill the next one
            _check(run, expected, f"seed {seed}, kills {kills}")
            run, n_runs = runs / f"k{n_runs}", n_runs + 1

    if (run / "manifest.json").is_file() or run.exists():
        final = subprocess.run(command(run), capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, f"seed {seed}, kills {kills}:\n{final.stderr}"
        _check(run, expected, f"seed {seed}, kills {kills}")
    assert sum(rc < 0 for *_, rc in kills) >= MIN_KILLS, f"seed {seed}: too few kills landed: {kills}"
