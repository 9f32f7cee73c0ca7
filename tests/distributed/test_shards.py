"""Shards of a query set: deterministic by id hash, disjoint, complete, balanced across domains;
a sharded run records its shard, its node and, per record, ``shard``; shards load as one run."""

from __future__ import annotations

import json
import random
import socket
from collections import Counter

import pytest

from ipw.core.errors import IpwError
from ipw.store import load
from ipw.run import runner
from ipw.queries import shards
from ipw.engines import GenerationSettings
from ipw.queries.querysets import load_queryset
from tests.distributed.fake_engine import CannedEngine, queries


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_are_disjoint_complete_and_balanced(count):
    qs = load_queryset("default").queries
    parts = [shards.take(qs, f"{i}/{count}") for i in range(count)]
    ids = [q.id for p in parts for q in p]
    assert sorted(ids) == sorted(q.id for q in qs) and len(set(ids)) == len(ids)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    per_domain = Counter(q.domain for q in qs)
    for p in parts:
        got = Counter(q.domain for q in p)
        for d, n in per_domain.items():
            assert n // count <= got[d] <= -(-n // count)  # floor or ceiling of the domain's share


def test_shards_do_not_depend_on_file_order():
    qs = list(load_queryset("default").queries)
    shuffled = qs[:]
    random.Random(3).shuffle(shuffled)
    for i in range(4):
        assert {q.id for q in shards.take(qs, f"{i}/4")} == {q.id for q in shards.take(shuffled, f"{i}/4")}
    assert [q.id for q in shards.take(qs, "1/4")] == [q.id for q in qs if q.id in {x.id for x in shards.take(qs, "1/4")}]


@pytest.mark.parametrize("bad", ["2/2", "-1/2", "1", "a/b", "0/0", "1/2/3"])
def test_bad_shard_specs_are_refused(bad):
    with pytest.raises(IpwError, match="i/n"):
        shards.parse(bad)
    with pytest.raises(IpwError, match="i/n"):
        runner.RunConfig(shard=bad)


def test_sharded_runs_record_their_part_and_load_as_one(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in queries(10)))
    cell = tmp_path / "cell"
    for i in range(2):
        config = runner.RunConfig(engine="canned", queries=str(path), settings=GenerationSettings(max_tokens=4), warmup=0,
                                  idle_s=0, runs_dir=str(cell), run_id=f"shard-{i}-of-2", shard=f"{i}/2", sampler_hz=50)
        runner.profile(config, engine=CannedEngine(0.02)).close()
    one = load(cell / "shard-1-of-2")
    m = one.manifest
    assert m["shard"]["spec"] == "1/2" and m["shard"]["n"] == len(one.queries) == 5
    assert m["sessions"][0]["node"]["host"] == socket.gethostname()
    assert set(one.queries["shard"]) == {"1/2"}
    merged = load(cell)
    assert sorted(merged.queries["id"]) == [f"q{i:03d}" for i in range(10)]
    assert set(merged.queries["node"]) == {socket.gethostname()}
    assert merged.manifest["status"] == "complete" and merged.manifest["queryset"]["n"] == 10
    assert merged.queries["correct"].sum() == 5  # the engine answers the even ones right
    full = merged.read_timeline()  # each shard's timeline, its domains prefixed by the shard, read when asked for
    assert merged.has_timeline and merged.timeline_rows == len(full) > 0
    assert {d.split("/")[0] for d in full["domain"]} == {"s0", "s1"}
    lean = merged.read_timeline(("t_s", "domain"), lean=True)
    assert list(lean.columns) == ["t_s", "domain"] and lean["domain"].astype(str).tolist() == full["domain"].tolist()


def test_profile_refuses_a_bad_shard_before_loading_anything(tmp_path):
    from click.testing import CliRunner

    from ipw.cli import main

    out = CliRunner().invoke(main, ["profile", "--shard", "2/2", "--runs-dir", str(tmp_path)])
    assert out.exit_code == 1 and "shard '2/2': give i/n" in out.output
    assert not any(tmp_path.iterdir())
