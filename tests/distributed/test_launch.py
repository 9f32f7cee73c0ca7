"""``ipw launch`` on a Ray instance started by the test on this machine (127.0.0.1): two shards
of a fast engine (a fake at the engine boundary) merged into one run, and a worker killed with
SIGKILL mid-shard whose shard Ray runs again: every id exactly once."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from ipw.core.errors import MissingExtra
from ipw.store import load
from ipw.engines import GenerationSettings
from ipw.run.config import RunConfig
from tests.distributed.fake_engine import Factory, queries

REPO = str(Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ipw[ray]'): no launch tests")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throw-away instance on loopback
    # address="local": a fresh instance of its own, never a cluster that RAY_ADDRESS or another test started
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=80 * 2**20,
             _node_ip_address="127.0.0.1", runtime_env={"env_vars": {"PYTHONPATH": REPO}})
    yield ray
    ray.shutdown()


def _spec(tmp_path, n, launch_id, **kw):
    from ipw.run import launch as L

    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in queries(n)))
    base = RunConfig(engine="canned", queries=str(path), settings=GenerationSettings(max_tokens=4), warmup=0, idle_s=0)
    return L.LaunchSpec(cells=(L.Cell("canned-a", base),), shards=2, launch_dir=str(tmp_path / "launches"),
                        launch_id=launch_id, **kw)


def test_two_shards_merge_into_one_run(tmp_path, ray_local):
    from ipw.run import launch as L

    result = L.launch(_spec(tmp_path, 12, "two"), engine_factory=Factory(0.0), progress=False)
    assert not result.failed
    run = load(result.path)  # the launch folder of one cell is that cell's run
    q = run.queries
    assert sorted(q["id"]) == [f"q{i:03d}" for i in range(12)] and q["id"].is_unique
    assert set(q["shard"]) == {"0/2", "1/2"} and set(q["node"]) == {socket.gethostname()}
    assert run.manifest["status"] == "complete" and len(run.manifest["shards"]) == 2
    assert all(s["node"].get("ray_node_id") for s in run.manifest["sessions"])
    launch = json.loads((result.path / "launch.json").read_text())
    assert launch["status"] == "complete" and launch["resources"] == {"num_gpus": 0, "num_cpus": 1.0}
    assert {k: v["records"] for k, v in launch["outcomes"].items()} == {"canned-a/0/2": 6, "canned-a/1/2": 6}


def test_resume_keeps_complete_shards_and_runs_the_rest(tmp_path, ray_local):
    import shutil

    from ipw.run import launch as L

    first = L.launch(_spec(tmp_path, 8, "again"), engine_factory=Factory(0.0), progress=False)
    kept = json.loads((first.path / "canned-a" / "shard-0-of-2" / "manifest.json").read_text())["sessions"]
    shutil.rmtree(first.path / "canned-a" / "shard-1-of-2")  # as if its node had been lost with its disk
    again = L.launch(L.resume_spec(first.path), engine_factory=Factory(0.0), progress=False, resume=first.path)
    assert not again.failed and again.path == first.path
    assert json.loads((first.path / "canned-a" / "shard-0-of-2" / "manifest.json").read_text())["sessions"] == kept
    assert sorted(load(first.path).queries["id"]) == [f"q{i:03d}" for i in range(8)]


def test_a_killed_worker_resumes_its_shard_from_its_records(tmp_path, ray_local):
    from ipw.run import launch as L

    shard0 = tmp_path / "launches" / "kill" / "canned-a" / "shard-0-of-2"
    killed = []

    def kill_mid_shard():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                lines = (shard0 / "queries.jsonl").read_text().count("\n")
                pid = json.loads((shard0 / "manifest.json").read_text())["sessions"][-1]["pid"]
            except (OSError, ValueError, KeyError, IndexError):
                lines, pid = 0, None
            if lines >= 3 and pid and pid != os.getpid():
                os.kill(pid, signal.SIGKILL)  # the Ray worker process running shard 0
                killed.append((pid, lines))
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_mid_shard, daemon=True)
    killer.start()
    result = L.launch(_spec(tmp_path, 24, "kill", max_retries=2), engine_factory=Factory(0.1), progress=False)
    killer.join(5)
    assert killed, "the shard ended before it could be killed"
    assert not result.failed, result.failed
    journal = [json.loads(x)["id"] for x in (shard0 / "queries.jsonl").read_text().splitlines()]
    assert max(Counter(journal).values()) == 1  # nothing stored twice
    sessions = json.loads((shard0 / "manifest.json").read_text())["sessions"]
    assert [s["status"] for s in sessions] == ["running", "complete"] and sessions[0]["pid"] == killed[0][0]
    q = load(result.path).queries
    assert sorted(q["id"]) == [f"q{i:03d}" for i in range(24)] and q["id"].is_unique  # none lost, none twice
    assert result.shards["canned-a/0/2"]["sessions"] == 2


def test_without_ray_the_install_command_is_given(monkeypatch):
    from ipw.run import launch as L

    monkeypatch.setitem(sys.modules, "ray", None)  # an interpreter where `import ray` fails
    with pytest.raises(MissingExtra, match=r"pip install 'ipw\[ray\]'"):
        L.import_ray()


def test_a_failed_shard_is_reported_with_its_own_reason(tmp_path, ray_local, capsys):
    from ipw.cli.launch import _print
    from ipw.run import launch as L
    from tests.distributed.fake_engine import Broken

    result = L.launch(_spec(tmp_path, 4, "broken"), engine_factory=Broken(), progress=False)
    assert set(result.failed) == {"canned-a/0/2", "canned-a/1/2"}
    assert all("model file /models/absent.gguf is not on this node" in v for v in result.failed.values()), result.failed
    _print(result)  # no shard made a run folder: said so, not "not an ipw run"
    out = capsys.readouterr().out
    assert "canned-a: no shard has records yet" in out and "not an ipw run" not in out
