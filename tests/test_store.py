"""The run store: durable appends, Parquet segments beside the journal, one writer, safe ids,
duplicates, a full disk, and shards loaded as one run."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

import ipw.store.files as store_files
from ipw.core.errors import InputFileError, IpwError
from ipw.core.records import RECORD_COLUMNS, QueryRecord
from ipw.store import (QUERIES, SEGMENTS, RunLocked, RunStore, StoreWriteError, columnar, compact, decode_json, load,
                       new_run_id)  # fmt: skip


def rec(i, **kw) -> QueryRecord:
    base = dict(id=f"q{i:03d}", domain="d" + str(i % 3), correct=i % 2 == 0, output=f"answer {i}", energy_j=float(i),
                accelerator_energy_j=float(i), window_s=1.0, e2e_s=1.0, measured=True,
                flags=("estimate",) if i % 4 == 0 else (), domains={"cpu": {"energy_j": float(i), "source": "x"}})
    return QueryRecord(**(base | kw))


@pytest.fixture
def small_segments(monkeypatch):
    monkeypatch.setattr(columnar, "SEGMENT_RECORDS", 5)
    monkeypatch.setattr(columnar, "FANOUT", 3)


def test_append_reopen_repair_and_load(tmp_path):
    store = RunStore.create(tmp_path, "r1", {"config": {"x": 1}})
    store.append(rec(1, correct=True))
    store.append(rec(2, correct=False))
    with open(store.path / QUERIES, "a") as f:
        f.write('{"id": "c", "corr')  # killed mid-write
    assert store.done_ids() == {"q001", "q002"}
    store.close()
    reopened = RunStore.open(store.path)
    assert (store.path / QUERIES).read_text().endswith("}\n")
    reopened.append(rec(3))
    run = load(store.path)
    assert list(run.queries["id"]) == ["q001", "q002", "q003"]
    assert run.queries["energy_j"].sum() == pytest.approx(6.0)
    assert tuple(run.queries.columns) == RECORD_COLUMNS


def test_existing_folder_and_bad_records(tmp_path):
    RunStore.create(tmp_path, "r1", {}).close()
    with pytest.raises(IpwError, match="--resume"):
        RunStore.create(tmp_path, "r1", {})
    store = RunStore(tmp_path / "r1")
    (store.path / QUERIES).write_text('{"id": "a", "domain": "x", "correct": true}\nnot json\n')
    with pytest.raises(InputFileError, match=r"queries.jsonl:2"):
        store.records()
    with pytest.raises(IpwError, match="not an ipw run"):
        load(tmp_path / "nothing-here")


def test_segments_and_journal_give_the_same_frame(tmp_path, small_segments):
    """Records sealed into segments as the run goes (and merged) load into the very frame the
    journal alone gives; the journal after the last segment (a crash) is read too."""
    store = RunStore.create(tmp_path, "r", {})
    for i in range(23):
        store.append(rec(i))
    segs = columnar.chain(columnar.list_segments(store.path))
    assert sum(s.rows for s in segs) == 20  # 4 seals of 5; 3 equal segments were merged into one
    assert len(segs) == 2 and [s.rows for s in segs] == [15, 5]
    mixed = load(store.path).queries
    journal_only = tmp_path / "j"
    journal_only.mkdir()
    (journal_only / "manifest.json").write_text("{}")
    (journal_only / QUERIES).write_bytes((store.path / QUERIES).read_bytes())
    pd.testing.assert_frame_equal(mixed, load(journal_only).queries)
    assert list(mixed["id"]) == [f"q{i:03d}" for i in range(23)]
    assert mixed["flags"].map(lambda f: "estimate" in f).sum() == 6
    assert decode_json(mixed["domains"]).map(lambda d: d["cpu"]["source"]).eq("x").all()
    # an earlier ipw's folder (journal only) gets segments, and the frame stays the same
    assert compact(journal_only) == 23
    assert [s.rows for s in columnar.chain(columnar.list_segments(journal_only))] == [23]
    pd.testing.assert_frame_equal(mixed, load(journal_only).queries)


def test_a_kill_between_journal_and_segment_loses_nothing(tmp_path, small_segments):
    store = RunStore.create(tmp_path, "r", {})
    store.append_many([rec(i) for i in range(7)])  # 7 >= 5: sealed
    assert columnar.chain(columnar.list_segments(store.path))[-1].rows == 7
    store.append_many([rec(i) for i in range(7, 10)])  # in the journal only
    (store.path / SEGMENTS / "0000000000000000-00000000000000ff-3.parquet.tmp").write_bytes(b"half a segment")
    with open(store.path / QUERIES, "ab") as f:
        f.write(b'{"id": "q010", "dom')  # and a record cut off
    assert list(load(store.path).queries["id"]) == [f"q{i:03d}" for i in range(10)]
    store.close(seal=False)
    reopened = RunStore.open(store.path)
    reopened.append_many([rec(i) for i in range(10, 12)])  # 5 unsealed now: sealed, the .tmp swept
    assert not list((store.path / SEGMENTS).glob("*.tmp"))
    assert list(load(store.path).queries["id"]) == [f"q{i:03d}" for i in range(12)]


def test_altered_journal_is_refused(tmp_path, small_segments):
    store = RunStore.create(tmp_path, "r", {})
    store.append_many([rec(i) for i in range(6)])
    (store.path / QUERIES).write_text(json.dumps(rec(0).to_dict()) + "\n")
    with pytest.raises(IpwError, match="altered"):
        load(store.path)


def test_the_later_record_of_an_id_wins(tmp_path, small_segments):
    store = RunStore.create(tmp_path, "r", {})
    store.append_many([rec(i) for i in range(6)])  # sealed
    store.append(rec(2, correct=True, error=None, output="retried"))  # q002 again, in the tail
    store.append(rec(4, output="again"))
    q = load(store.path).queries
    assert len(q) == 6 and q["id"].is_unique
    assert list(q["id"]) == ["q000", "q001", "q003", "q005", "q002", "q004"]
    assert q.set_index("id").loc["q002", "output"] == "retried"
    records = store.records()
    assert [r.id for r in records] == list(q["id"]) and records[-2].output == "retried"


@pytest.mark.parametrize("bad", ["../../escape", "/abs/path", "a/b", "a\nb", "..", ".hidden", "", "x" * 129, "a b"])
def test_unsafe_run_ids_are_refused(tmp_path, bad):
    with pytest.raises(IpwError, match="not allowed"):
        RunStore.create(tmp_path / "runs", bad, {})
    assert not (tmp_path / "escape").exists() and not any(tmp_path.rglob("manifest.json"))


def test_new_run_ids_are_safe():
    assert new_run_id("llamacpp-../../x\ny/é").split("-", 2)[2] == "llamacpp-.._.._x_y__".replace("_", "-")
    assert new_run_id("") .endswith("-run")


HOLD = textwrap.dedent("""
    import sys, time
    from ipw.store import RunStore
    store = RunStore.open(sys.argv[1])
    print("locked", flush=True)
    time.sleep(60)
""")


def test_one_writer_at_a_time(tmp_path):
    path = RunStore.create(tmp_path, "r", {}).path
    RunStore.open(path).close()  # this process may reopen its own run
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunLocked, match=rf"in use by process {proc.pid} on "):
            RunStore.open(path)
        with pytest.raises(RunLocked):
            RunStore(path).append(rec(1))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    RunStore.open(path).append(rec(1))  # the kernel let go of a killed holder's lock
    assert len(load(path).queries) == 1


def test_a_full_disk_is_a_clear_error_and_damages_nothing(tmp_path, monkeypatch):
    store = RunStore.create(tmp_path, "r", {"config": {}})
    store.append_many([rec(i) for i in range(3)])
    before = (store.path / QUERIES).read_bytes()
    real_write = os.write

    def disk_fills(fd, data):  # the OS accepts a few bytes, then the disk is full
        if len(data) > 10:
            real_write(fd, bytes(data[:10]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(store_files.os, "write", disk_fills)
    with pytest.raises(StoreWriteError, match=r"queries.jsonl: the disk is full \(ENOSPC\).*intact.*--resume"):
        store.append(rec(3))
    with pytest.raises(StoreWriteError, match="disk is full"):
        store.update_manifest(status="complete")
    monkeypatch.undo()
    assert (store.path / QUERIES).read_bytes() == before
    assert json.loads((store.path / "manifest.json").read_text()) == {"config": {}}
    assert not list(store.path.glob("*.tmp"))
    store.append(rec(3))  # space again: the run goes on
    assert list(load(store.path).queries["id"]) == ["q000", "q001", "q002", "q003"]


FILL = textwrap.dedent("""
    import resource, signal, sys
    from ipw.store import RunStore, StoreWriteError
    from tests.test_store import rec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    store = RunStore.open(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
    try:
        store.append_many([rec(i) for i in range(10, 40)])
    except StoreWriteError as e:
        print("refused:", e)
""")


def test_a_real_file_size_limit_cuts_nothing(tmp_path):
    """The kernel refuses a write part-way (RLIMIT_FSIZE: EFBIG, as ENOSPC would): the journal is
    cut back to its last whole record."""
    store = RunStore.create(tmp_path, "r", {})
    store.append_many([rec(i) for i in range(3)])
    store.close()
    size = (store.path / QUERIES).stat().st_size
    out = subprocess.run([sys.executable, "-c", FILL, str(store.path), str(size + 700)], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)), timeout=60)
    assert "refused: could not write" in out.stdout, out.stderr
    assert (store.path / QUERIES).stat().st_size == size
    assert list(load(store.path).queries["id"]) == ["q000", "q001", "q002"]


def _shard(tmp_path, index, host, ids):
    store = RunStore.create(tmp_path / "cell", f"shard-{index}-of-2", {
        "config": {}, "engine": {"model": "m"}, "queryset": {"sha256": "s", "n": len(ids)},
        "hardware": {"summary": f"{host} box"}, "status": "complete",
        "sessions": [{"node": {"host": host}, "status": "complete"}]})
    store.update_manifest(shard={"index": index, "count": 2, "spec": f"{index}/2"})
    store.append_many([rec(i) for i in ids])
    store.close()
    return store.path


def test_shards_load_as_one_run(tmp_path):
    _shard(tmp_path, 1, "node-b", [1, 3, 5])
    _shard(tmp_path, 0, "node-a", [0, 2, 4])
    run = load(tmp_path / "cell")
    q = run.queries
    assert sorted(q["id"]) == [f"q00{i}" for i in range(6)]
    assert dict(zip(q["id"], q["node"])) == {"q000": "node-a", "q002": "node-a", "q004": "node-a",
                                             "q001": "node-b", "q003": "node-b", "q005": "node-b"}
    assert set(q["shard"]) == {"0/2", "1/2"}
    assert run.manifest["status"] == "complete" and run.manifest["missing_shards"] == []
    assert "node-a: node-a box" in run.manifest["hardware"]["summary"]
    assert load(tmp_path).queries.equals(q)  # a launch folder with one cell is that cell
    # a half-done launch: one shard missing is said, not hidden
    import shutil

    shutil.rmtree(tmp_path / "cell" / "shard-1-of-2")
    partial = load(tmp_path / "cell")
    assert partial.manifest["status"] == "partial" and partial.manifest["missing_shards"] == [1]


def test_a_folder_of_unrelated_runs_is_not_one_run(tmp_path):
    RunStore.create(tmp_path, "a", {}).close()
    with pytest.raises(IpwError, match="folder of runs"):
        load(tmp_path)


def test_loading_between_every_seal_and_merge(tmp_path, small_segments):
    """Loaded after each batch (sealed, then merged on the third): every record, once, in order."""
    store = RunStore.create(tmp_path, "r", {})
    for k in range(6):
        store.append_many([rec(5 * k + i) for i in range(5)])
        q = load(store.path).queries
        assert list(q["id"]) == [f"q{i:03d}" for i in range(5 * k + 5)]
    assert [s.rows for s in columnar.chain(columnar.list_segments(store.path))] == [15, 15]
