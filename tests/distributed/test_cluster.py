"""``ipw launch`` on a Ray cluster of several nodes, started as Ray's own tests start one
(``ray.cluster_utils.Cluster``: a head with no CPU, and worker nodes of one CPU each, on 127.0.0.1).

Each node is its own machine at the vendor boundaries (tests/distributed/node_machine.py: its own
RAPL tree and powers, its own host name), named by ``IPW_TEST_NODE`` in its environment and by a
custom resource. The tests check that each shard's energies, meters and node name are those of the
node that ran it; that a node removed mid-launch has its shard run again on another node, which
continues from the records already stored (a shared disk: every query once); and that with
``collect`` each node writes on its own disk and its shard folders come home through Ray's object
store, a failed shard included, from where ``--resume`` continues it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from ipw.engines import GenerationSettings
from ipw.run.config import RunConfig
from ipw.store import decode_json, load
from tests.distributed.fake_engine import queries
from tests.distributed.node_machine import ENV, NODES, NodeFactory, accelerator_w, domains

pytestmark = pytest.mark.slow  # a cluster of four Ray nodes on two cores: 30 to 50 s

REPO = str(Path(__file__).resolve().parents[2])
FAST_HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_timeout_ms": 500,
               "health_check_failure_threshold": 3}  # a removed node is declared dead within seconds


def _resource(name: str) -> str:
    return "ipw_" + name.replace("-", "_")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ipw[ray]'): no cluster tests")
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    disks = tmp_path_factory.mktemp("disks")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")  # a throw-away cluster on loopback
        patch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray then keeps 127.0.0.1 as the node address
        patch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)  # read already, where Ray was imported before
        c = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 0, "node_ip_address": "127.0.0.1", "object_store_memory": 80 * 2**20, "include_dashboard": False,
            "_system_config": FAST_HEALTH})  # fmt: skip
        nodes = {name: c.add_node(num_cpus=1, resources={_resource(name): 1}, node_ip_address="127.0.0.1",
                                  object_store_memory=80 * 2**20,
                                  env_vars={ENV: name, "IPW_SHARD_DIR": str(disks / name)})
                 for name in NODES}  # fmt: skip
        c.wait_for_nodes()
        ray.init(address=c.address, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": REPO}})
        try:
            yield c, nodes, disks
        finally:
            ray.shutdown()
            c.shutdown()


def _spec(tmp_path, n: int, shards: int, launch_id: str, **kw):
    from ipw.run import launch as L

    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in queries(n)))
    base = RunConfig(engine="canned", queries=str(path), settings=GenerationSettings(max_tokens=4), warmup=0, idle_s=0)
    return L.LaunchSpec(cells=(L.Cell("canned-a", base),), shards=shards, launch_dir=str(tmp_path / "launches"),
                        launch_id=launch_id, **kw)


def _check_measured_by_its_node(folder: Path, node_ids: dict[str, str]) -> list[str]:
    """Every session of a shard ran on a node of the cluster (its name and Ray node id agree), and
    every record's energies and domains are that node's. Returns the hosts of its sessions."""
    manifest = json.loads((folder / "manifest.json").read_text())
    hosts = [s["node"]["host"] for s in manifest["sessions"]]
    for s in manifest["sessions"]:
        assert s["node"]["ray_node_id"] == node_ids[s["node"]["host"]]
    shown = {d["domain"] for m in manifest["meters"] for d in m["domains"] if d.get("parent") is None}
    assert shown == domains(hosts[-1])  # the meters of the node that ran its last session
    q = load(folder).queries
    for session, rows in q.groupby("session"):
        host = hosts[int(session)]
        # each record's power is its node's, not another's (the fake counters tick every ms in a thread
        # that a loaded machine may hold back by tens of ms: a record of 0.25 s is told by the nearest
        # node, the session's sum over seconds within 10%)
        power = (rows["accelerator_energy_j"] / rows["window_s"]).to_numpy()
        nearest = [min(NODES, key=lambda n: abs(accelerator_w(n) - p)) for p in power]
        assert set(nearest) == {host}, (host, power)
        assert rows["accelerator_energy_j"].sum() / rows["window_s"].sum() == pytest.approx(accelerator_w(host), rel=0.1)
        dram = sum(w for name, w in NODES[host].values() if name == "dram")
        assert rows["host_energy_j"].sum() / rows["window_s"].sum() == pytest.approx(dram, rel=0.15)
        assert all(set(d) == domains(host) for d in decode_json(rows["domains"]))
    return hosts


def test_each_shard_is_measured_by_its_node_and_a_lost_nodes_shard_resumes_elsewhere(cluster, tmp_path):
    import ray

    from ipw.run import launch as L

    c, nodes, _ = cluster
    node_ids = {name: node.node_id for name, node in nodes.items()}
    by_resource = {r: n["NodeID"] for n in ray.nodes() if n["Alive"] for r in n["Resources"] if r.startswith("ipw_")}
    assert by_resource == {_resource(name): node_ids[name] for name in NODES}  # env and resource name one node
    root = tmp_path / "launches" / "lost"
    removed: list[tuple[str, int]] = []

    def remove_node_b_mid_shard():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not removed:
            for folder in root.glob("canned-a/shard-*"):
                try:
                    host = json.loads((folder / "manifest.json").read_text())["sessions"][-1]["node"]["host"]
                    lines = (folder / "queries.jsonl").read_text().count("\n")
                except (OSError, ValueError, KeyError, IndexError):
                    continue
                if host == "node-b" and lines >= 3:
                    c.remove_node(nodes["node-b"], allow_graceful=False)  # its raylet and workers, killed
                    removed.append((folder.name, lines))
                    return
            time.sleep(0.02)

    remover = threading.Thread(target=remove_node_b_mid_shard, daemon=True)
    remover.start()
    spec = _spec(tmp_path, 36, 3, "lost", max_retries=3)
    result = L.launch(spec, engine_factory=NodeFactory(str(tmp_path / "machines"), delay_s=0.25), progress=False)
    remover.join(5)
    assert removed, "no shard ran on node-b long enough to lose it"
    assert not result.failed, result.failed
    run = load(result.path)
    assert sorted(run.queries["id"]) == [f"q{i:03d}" for i in range(36)] and run.queries["id"].is_unique
    hosts = {f.name: _check_measured_by_its_node(f, node_ids) for f in sorted(root.glob("canned-a/shard-*"))}
    lost, at_loss = removed[0]
    assert hosts[lost][0] == "node-b" and hosts[lost][-1] in ("node-a", "node-c") and len(hosts[lost]) == 2
    journal = [json.loads(x) for x in (root / "canned-a" / lost / "queries.jsonl").read_text().splitlines()]
    assert max(Counter(r["id"] for r in journal).values()) == 1  # continued from its records: none twice
    assert sum(r["session"] == 0 for r in journal) >= at_loss  # what node-b stored was kept
    merged = run.queries.set_index("id")["node"]
    for folder, h in hosts.items():  # the merged run names, per record, the node that measured it
        for r in (json.loads(x) for x in (root / "canned-a" / folder / "queries.jsonl").read_text().splitlines()):
            assert merged[r["id"]] == h[r["session"]]
    assert set(run.queries["node"]) >= {"node-b", hosts[lost][-1]}
    outcome = json.loads((root / "launch.json").read_text())["outcomes"][f"canned-a/{int(lost.split('-')[1])}/3"]
    assert outcome["host"] == hosts[lost][-1] and outcome["sessions"] == 2


def test_results_come_home_when_nodes_share_no_disk_and_resume_from_there(cluster, tmp_path):
    from ipw.run import launch as L

    _, nodes, disks = cluster
    machines = str(tmp_path / "machines")
    spec = _spec(tmp_path, 16, 2, "home", collect=True)  # each node writes on its own disk (IPW_SHARD_DIR)
    first = L.launch(spec, engine_factory=NodeFactory(machines, 0.05, fail_token=str(tmp_path / "refuse")), progress=False)
    assert len(first.failed) == 1, first.failed  # the first engine built refuses its key after 3 answers
    (stopped,) = first.failed
    assert "refused the key" in first.failed[stopped]
    record = json.loads((first.path / "launch.json").read_text())
    assert record["collect"] is True and all(o.get("collected") for o in record["outcomes"].values())
    for key, outcome in record["outcomes"].items():  # both folders came home, the failed one with its records
        index = int(key.split("/")[1])
        home = first.path / "canned-a" / f"shard-{index}-of-2"
        ids = [json.loads(x)["id"] for x in (home / "queries.jsonl").read_text().splitlines()]
        assert len(ids) == (3 if key == stopped else 8)
        host = json.loads((home / "manifest.json").read_text())["sessions"][0]["node"]["host"]
        away = disks / host / "home" / "canned-a" / home.name  # where that node wrote it
        assert [json.loads(x)["id"] for x in (away / "queries.jsonl").read_text().splitlines()] == ids
        if key != stopped:
            assert outcome["collected_from"] == f"{host}:{away}"
    before = (first.path / "canned-a" / f"shard-{stopped.split('/')[1]}-of-2" / "queries.jsonl").read_text()
    again = L.launch(L.resume_spec(first.path), engine_factory=NodeFactory(machines, 0.05), progress=False,
                     resume=first.path)
    assert not again.failed, again.failed
    resumed = first.path / "canned-a" / f"shard-{stopped.split('/')[1]}-of-2"
    assert (resumed / "queries.jsonl").read_text().startswith(before)  # continued from the copy that came home
    sessions = json.loads((resumed / "manifest.json").read_text())["sessions"]
    assert [s["status"] for s in sessions] == ["failed", "complete"]
    q = load(first.path).queries
    assert sorted(q["id"]) == [f"q{i:03d}" for i in range(16)] and q["id"].is_unique
