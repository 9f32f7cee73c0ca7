"""``ipw store check RUN [--repair]``: segments compared with the journal, record by record.

It finds what loading's cheap checks cannot (a whole segment holding a changed record, journal
lines that are not records in bytes a segment covers) as well as what they can (a segment cut
short, one missing), repairs what the journal can rebuild and says what remains.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

from ipw.cli import main
from ipw.store import MANIFEST, QUERIES, SEGMENTS, RunStore, columnar, load
from tests.test_store import HOLD, rec


@pytest.fixture
def run(tmp_path, monkeypatch):
    """60 records in batches of 5, sealed every 10, merged 3 at a time: segments [30, 10, 10], 5 in the tail."""
    monkeypatch.setattr(columnar, "SEGMENT_RECORDS", 10)
    monkeypatch.setattr(columnar, "FANOUT", 3)
    store = RunStore.create(tmp_path, "r", {"config": {}})
    for i in range(0, 55, 5):
        store.append_many([rec(k) for k in range(i, i + 5)])
    store.close(seal=False)
    assert [s.rows for s in _segs(store.path)] == [30, 10, 10]
    return store.path


def _segs(path):
    return columnar.chain(columnar.list_segments(path))


def ipw(*args):
    return CliRunner().invoke(main, ["store", "check", *map(str, args)])


def _journal_only(path, tmp_path):
    alone = tmp_path / "alone"
    shutil.rmtree(alone, ignore_errors=True)
    alone.mkdir()
    for name in (MANIFEST, QUERIES):
        shutil.copy(path / name, alone / name)
    return load(alone).queries


def test_a_healthy_run(run):
    res = ipw(run)
    assert res.exit_code == 0, res.output
    assert "55 records" in res.output and "3 segments: 3 ok" in res.output
    assert "records missing from segments: 0; 5 after the last segment" in res.output
    assert "journal lines unreadable: none" in res.output and res.output.rstrip().endswith("healthy")


def test_a_changed_record_that_loads_well_is_found_and_repaired(run, tmp_path):
    seg = _segs(run)[1]  # records 30-39, rewritten whole and valid, with one energy changed
    table = columnar.read_segments([seg])[0].to_pylist()
    table[4]["energy_j"] = 99.0
    seg.path.unlink()
    changed = columnar.columns_table({k: [r[k] for r in table] for k in table[0]})
    columnar.write_segment(run, changed, seg.start, seg.end)
    assert load(run).queries.set_index("id").loc["q034", "energy_j"] == 99.0  # loading cannot see it
    res = ipw(run)
    assert res.exit_code == 1
    assert f"damaged: {seg.path.name}: record 5 ('q034') differs from the journal in 'energy_j'" in res.output
    assert "records missing from segments: 10" in res.output and "--repair" in res.output
    res = ipw(run, "--repair")
    assert res.exit_code == 0
    assert f"set aside as {seg.path.name}.damaged, rebuilt from the journal (10 records)" in res.output
    assert res.output.rstrip().endswith("repaired")
    pd.testing.assert_frame_equal(load(run).queries, _journal_only(run, tmp_path))
    assert load(run).queries.set_index("id").loc["q034", "energy_j"] == 34.0
    res = ipw(run)
    assert res.exit_code == 0 and "set aside before: " in res.output and res.output.rstrip().endswith("healthy")


def test_missing_and_cut_segments(run, tmp_path):
    first, second, third = _segs(run)
    second.path.unlink()
    third.path.write_bytes(third.path.read_bytes()[:50])
    res = ipw(run)
    assert res.exit_code == 1
    assert "3 segments: 1 ok, 1 damaged, 1 missing" not in res.output  # a missing one is no file
    assert "2 segments: 1 ok, 1 damaged, 1 missing" in res.output
    assert f"missing: journal bytes {second.start}-{second.end} (no segment): no segment holds these bytes" in res.output
    assert f"damaged: {third.path.name}: Parquet magic bytes not found" in res.output
    assert "records missing from segments: 20" in res.output
    assert ipw(run, "--repair").exit_code == 0
    assert [s.rows for s in _segs(run)] == [30, 10, 10] and third.path.with_name(third.path.name + ".damaged").is_file()
    pd.testing.assert_frame_equal(load(run).queries, _journal_only(run, tmp_path))
    assert ipw(run).exit_code == 0


def test_unreadable_journal_lines_remain_damage(run):
    journal = run / QUERIES
    lines = journal.read_bytes().split(b"\n")
    lines[12] = b"#" * len(lines[12])  # same length: every segment still names the right bytes
    journal.write_bytes(b"\n".join(lines))
    assert list(load(run).queries["id"]) == [f"q{i:03d}" for i in range(55)]  # the segment holds it
    for args in ((run,), (run, "--repair")):
        res = ipw(*args)
        assert res.exit_code == 1
        assert "unverified: " in res.output and "journal lines in its bytes are unreadable" in res.output
        assert "journal lines unreadable: 1: line 13: Expecting value" in res.output
    assert [s.rows for s in _segs(run)] == [30, 10, 10]  # the only copy of record 12 is left in place


def test_a_journal_cut_mid_line_is_no_damage(run):
    journal = run / QUERIES
    journal.write_bytes(journal.read_bytes()[:-40])
    res = ipw(run)
    assert res.exit_code == 0 and "54 records" in res.output
    assert "cut off mid-write (left out when loading; --repair drops them)" in res.output
    res = ipw(run, "--repair")
    assert res.exit_code == 0 and "cut off mid-write: dropped" in res.output and journal.read_bytes().endswith(b"}\n")
    assert list(load(run).queries["id"]) == [f"q{i:03d}" for i in range(54)]


def test_shards_are_checked_one_by_one(run, tmp_path):
    folder = tmp_path / "cell"
    folder.mkdir()
    shutil.copytree(run, folder / "shard-0")
    shutil.copytree(run, folder / "shard-1")
    seg = _segs(folder / "shard-1")[0].path
    seg.write_bytes(b"")
    res = ipw(folder)
    assert res.exit_code == 1 and res.output.count("journal queries.jsonl: 55 records") == 2
    assert f"damage remains in {folder / 'shard-1'};" in res.output
    assert ipw(folder, "--repair").exit_code == 0


def test_usage(tmp_path):
    res = CliRunner().invoke(main, ["store", "check", "--help"])
    assert res.exit_code == 0 and "ipw store check runs/my-run --repair" in res.output
    assert "store" in CliRunner().invoke(main, ["--help"]).output
    (tmp_path / "empty").mkdir()
    res = ipw(tmp_path / "empty")
    assert res.exit_code == 1 and res.output.startswith("Error: ") and len(res.output.strip().splitlines()) == 1


def test_a_record_that_breaks_the_contract_is_unreadable(run):
    with open(run / QUERIES, "a") as f:
        f.write(json.dumps({"id": 5, "domain": [1]}) + "\n")
    res = ipw(run)
    assert res.exit_code == 1 and "journal lines unreadable: 1: line 56: does not fit the record contract" in res.output


def test_a_folder_of_segments_only(tmp_path):
    """Written so on purpose (tests/fakes/runs.py, journal=False): checked, never rebuilt from nothing."""
    from tests.fakes.runs import SyntheticRun, write_synthetic_run

    path = write_synthetic_run(tmp_path, "s", SyntheticRun(n_queries=20, hz=0), journal=False)
    assert ipw(path).exit_code == 0
    seg = _segs(path)[0].path
    seg.write_bytes(seg.read_bytes()[:-8])
    res = ipw(path, "--repair")
    assert res.exit_code == 1 and "queries.jsonl is empty: no copy to rebuild from" in res.output
    assert seg.is_file() and not list(seg.parent.glob("*.damaged"))


@pytest.mark.skipif(sys.platform == "win32", reason="the holder is a second process holding flock")
def test_not_while_a_run_writes_it(run):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        res = ipw(run)
        assert res.exit_code == 1 and f"Error: run folder {run} is in use by process {proc.pid}" in res.output
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert ipw(run).exit_code == 0
