"""Shard folders sent home (ipw.run.collect), without a Ray cluster: packing and unpacking a run
folder, what an unpacked folder refuses, and a shard task run where the launch folder cannot be
seen (Ray faked at its runtime context: the node id a task asks for)."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from ipw.core.errors import IpwError
from ipw.engines import GenerationSettings
from ipw.run import collect
from ipw.run.config import RunConfig
from ipw.store import load
from tests.distributed.fake_engine import Factory, queries
from tests.fakes.runs import SyntheticRun, write_synthetic_run


def test_a_run_folder_comes_back_whole_and_replaces_the_older_copy(tmp_path):
    run = write_synthetic_run(tmp_path / "node", "shard-0-of-2", SyntheticRun(n_queries=30, hz=2))
    data = collect.pack(run)
    home = tmp_path / "home" / "cell" / "shard-0-of-2"
    write_synthetic_run(home.parent, "shard-0-of-2", SyntheticRun(n_queries=5, seed=9))  # an older, shorter copy
    collect.unpack(data, home)
    a, b = load(run), load(home)
    assert a.queries.equals(b.queries) and a.read_timeline().equals(b.read_timeline()) and a.manifest == b.manifest
    assert not (home / "lock").exists() and sorted(p.name for p in home.parent.iterdir()) == ["shard-0-of-2"]
    assert collect.pack(tmp_path / "nothing") == b""


def _tar(**members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, kind in members.items():
            info = tarfile.TarInfo(name.replace("__", "/").replace("UP", ".."))
            if kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(kind)
                tar.addfile(info, io.BytesIO(kind))
    return buf.getvalue()


@pytest.mark.parametrize("members", [
    {"manifest.json": b"{}", "UP__escape.txt": b"x"},  # ../escape.txt
    {"manifest.json": b"{}", "queries.jsonl": "link"},
    {"queries.jsonl": b""},  # no manifest: not a run
])  # fmt: skip
def test_unpack_refuses_anything_but_a_run_folder_and_writes_nothing(tmp_path, members):
    home = tmp_path / "cell" / "shard-0-of-1"
    with pytest.raises(IpwError, match="nothing was written"):
        collect.unpack(_tar(**members), home)
    assert not home.exists() and not (tmp_path / "escape.txt").exists()
    assert list((tmp_path / "cell").iterdir()) == []


class _Actor:
    """The progress actor's handle, as a shard task uses it (``.start.remote``, ``.record.remote``)."""

    def __init__(self) -> None:
        self.calls = []
        me = self

        class Method:
            def __init__(self, name):
                self.name = name

            def remote(self, *args):
                me.calls.append((self.name, *args))

        self.start, self.record = Method("start"), Method("record")


class _Ray:
    """What ``run_shard`` asks of Ray on a worker: the id of its node."""

    class _Context:
        def get_node_id(self) -> str:
            return "f" * 56

    def get_runtime_context(self):
        return self._Context()


def test_a_shard_that_cannot_see_the_launch_folder_writes_on_its_node_and_sends_it_home(tmp_path, monkeypatch):
    from ipw.run import launch as L

    monkeypatch.setattr(L, "import_ray", _Ray)
    monkeypatch.setenv(collect.ENV, str(tmp_path / "node-disk"))
    qs = tmp_path / "q.jsonl"
    qs.write_text("".join(json.dumps(q) + "\n" for q in queries(6)))
    root = tmp_path / "elsewhere" / "launch-1"  # the launcher's folder: not on this node
    config = RunConfig(engine="canned", queries=str(qs), settings=GenerationSettings(max_tokens=4), warmup=0, idle_s=0,
                       runs_dir=str(root / "cell"), run_id="shard-0-of-2", shard="0/2")
    actor = _Actor()
    out = L.run_shard(str(root), "cell", config.to_dict(), actor, Factory(0.0))
    local = tmp_path / "node-disk" / "launch-1" / "cell" / "shard-0-of-2"
    assert out["collected_from"].endswith(f":{local}") and out["records"] == 3 and not root.exists()
    home = collect.unpack(out["folder_bytes"], tmp_path / "home" / "cell" / "shard-0-of-2")
    assert sorted(load(home).queries["id"]) == sorted(load(local).queries["id"]) and len(load(home).queries) == 3
    assert [c[0] for c in actor.calls] == ["start", "record", "record", "record"]
    again = L.run_shard(str(root), "cell", config.to_dict(), _Actor(), Factory(0.0), seed=collect.pack(home))
    assert again["sessions"] == 2 and again["records"] == 3  # the seed was complete: a session that adds nothing
