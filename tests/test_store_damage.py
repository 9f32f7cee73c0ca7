"""Fault injection into run folders: a damaged segment never costs a run.

A run of 300 synthetic records (tests/fakes/runs.py, every field) is written in batches with small
segments (20 records each, merged 3 at a time), so that its journal holds several segments and a
tail. Each round copies it, damages it at random (bytes flipped at random offsets, a segment cut
short, emptied, deleted, or swapped for one holding other records; the journal cut mid-line in its
tail, as a crash mid-append leaves it; several at once), then loads it, resumes it through the
store API the runner uses (``RunStore.open``, ``records()``, ``append_many`` of the missing ids)
and loads it again: every record once, the frame equal to the one the journal alone gives, damaged
segments set aside (never deleted) and named in a warning, and ``ipw store check`` healthy after.
"""

from __future__ import annotations

import logging
import random
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

from ipw.core.errors import IpwError
from ipw.store import MANIFEST, QUERIES, SEGMENTS, RunStore, columnar, damage, load, verify
from ipw.store.check import check
from tests.fakes.runs import SyntheticRun, write_synthetic_run
from tests.test_store import HOLD

N = 300
SIDE_FILES = (MANIFEST, "idle.json", "power.parquet")


@pytest.fixture(scope="module")
def small():
    """Small segments and blocks for the whole module: several segments, journal lines that span
    reading blocks (a line is about 1 kB)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(columnar, "SEGMENT_RECORDS", 20)
        mp.setattr(columnar, "FANOUT", 3)
        mp.setattr(verify, "LINE_BLOCK", 300)
        mp.setattr(damage, "BLOCK", 5000)
        yield


@pytest.fixture(scope="module")
def template(tmp_path_factory, small):
    """A run folder: 300 records in batches of 7 (sealed every 21, merged), the last 6 in the tail;
    and the records themselves, as the synthetic run writes them."""
    base = tmp_path_factory.mktemp("template")
    src = write_synthetic_run(base, "src", SyntheticRun(n_queries=N, hz=2.0), segments=False)
    records = RunStore(src).records()
    store = RunStore.create(base, "run", RunStore(src).manifest)
    for name in SIDE_FILES[1:]:
        shutil.copy(src / name, store.path / name)
    for i in range(0, N - 6, 7):
        store.append_many(records[i:i + 7])
    store.close(seal=False)
    RunStore(store.path).append_many(records[N - 6:])  # 6 more, in the tail (not sealed)
    segs = columnar.chain(columnar.list_segments(store.path))
    assert len(segs) >= 4 and segs[-1].end < (store.path / QUERIES).stat().st_size
    return store.path, records


def journal_frame(run, tmp_path):
    """The frame the journal alone gives (a copy without segments)."""
    alone = tmp_path / f"alone-{run.name}"
    shutil.rmtree(alone, ignore_errors=True)
    alone.mkdir()
    for name in (MANIFEST, QUERIES):
        shutil.copy(run / name, alone / name)
    return load(alone).queries


def segment_files(run):
    return sorted((run / SEGMENTS).glob("*.parquet"))


def damage_segment(rng, run, kind, records, spared=()):
    """Damage one segment of ``run`` (not one of ``spared``) by ``kind``; returns its path."""
    seg = rng.choice([p for p in segment_files(run) if p not in spared])
    data = bytearray(seg.read_bytes())
    if kind == "flip":
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
        seg.write_bytes(bytes(data))
    elif kind == "truncate":
        seg.write_bytes(bytes(data[: rng.randrange(len(data))]))
    elif kind == "empty":
        seg.write_bytes(b"")
    elif kind == "missing":
        seg.unlink()
    elif kind == "swapped":  # another segment's file under this name: other rows, other metadata
        seg.write_bytes(rng.choice([p for p in segment_files(run) if p != seg and p not in spared]).read_bytes())
    elif kind == "other records":  # a whole, valid segment, of as many records, but others
        s = next(s for s in columnar.list_segments(run) if s.path == seg)
        others = [r.to_dict() for r in records[::-1][: s.rows]]
        seg.unlink()
        columnar.write_segment(run, columnar.records_table(others), s.start, s.end)
    return seg


def cut_journal(rng, run):
    """Cut the journal mid-line after its last segment (a crash mid-append); returns the ids lost."""
    journal = run / QUERIES
    data = journal.read_bytes()
    end = max(s.end for s in columnar.list_segments(run))
    cut = rng.randrange(end + 1, len(data) - 1)
    while data[cut - 1:cut] == b"\n":
        cut += 1
    journal.write_bytes(data[:cut])
    return data[:cut].count(b"\n")


KINDS = ("flip", "truncate", "empty", "missing", "swapped", "other records", "journal cut")


@pytest.mark.parametrize("seed", range(28))
def test_every_record_once_after_random_damage(seed, template, tmp_path, caplog):
    src, records = template
    rng = random.Random(seed)
    run = tmp_path / "run"
    shutil.copytree(src, run)
    kinds = [KINDS[seed % len(KINDS)]] + (rng.sample(KINDS, 2) if seed >= 2 * len(KINDS) else [])
    damaged, lines = [], N
    for kind in kinds:
        if kind == "journal cut":
            lines = min(lines, cut_journal(rng, run))
        else:
            seg = damage_segment(rng, run, kind, records, [p for _, p, _ in damaged])
            damaged.append((kind, seg, seg.read_bytes() if seg.is_file() else None))
    kept = [r.id for r in records[:lines]]

    caplog.set_level(logging.WARNING, logger="ipw.store")
    q = load(run).queries
    assert list(q["id"]) == kept  # every record the journal holds, once, in its order
    pd.testing.assert_frame_equal(q, journal_frame(run, tmp_path))
    said = " ".join(r.getMessage() for r in caplog.records)
    assert all("\n" not in r.getMessage() for r in caplog.records)
    for kind, seg, data in damaged:
        aside = seg.with_name(seg.name + ".damaged")
        if kind in ("truncate", "empty", "swapped", "other records"):
            assert aside.is_file()
        if aside.is_file():  # a flip may hit bytes that change nothing read (statistics)
            assert aside.read_bytes() == data  # kept as it was, not deleted
            assert f"{seg.name} is damaged (" in said and f"set aside as {aside.name}" in said
        if kind == "missing" and any(s.path.name > seg.name for s in columnar.list_segments(run)):
            assert "(missing)" in said
    if lines < N:
        assert "cut off mid-write" in said

    # resume as the runner does: open (drops a cut last line), the stored ids, append the rest
    caplog.clear()
    store = RunStore.open(run)
    done = {r.id for r in store.records()}
    assert done == set(kept)
    todo = [r for r in records if r.id not in done]
    for i in range(0, len(todo), 9):
        store.append_many(todo[i:i + 9])
    store.close()
    q = load(run).queries
    assert sorted(q["id"]) == sorted(r.id for r in records) and q["id"].is_unique
    pd.testing.assert_frame_equal(q, journal_frame(run, tmp_path))
    assert check(run).healthy, check(run).lines()
    assert not caplog.records or lines < N  # nothing more to say, but the cut line dropped on open


def test_a_writer_merging_over_a_damaged_segment_goes_on(template, tmp_path, caplog):
    """A run that appends without reading first (a seal, then a merge of damaged segments)."""
    src, records = template
    run = tmp_path / "run"
    shutil.copytree(src, run)
    for seg in segment_files(run):
        seg.write_bytes(seg.read_bytes()[:100])  # every segment cut short
    caplog.set_level(logging.WARNING, logger="ipw.store")
    store = RunStore.open(run)
    store.append_many(records[:40])  # the same ids again: the later record wins
    store.close()
    assert len([r for r in caplog.records if "set aside" in r.getMessage()]) >= 1
    q = load(run).queries
    assert sorted(q["id"]) == sorted(r.id for r in records) and q["id"].is_unique
    pd.testing.assert_frame_equal(q, journal_frame(run, tmp_path))
    assert check(run).healthy


@pytest.mark.skipif(sys.platform == "win32", reason="the holder is a second process holding flock")
def test_a_reader_leaves_a_run_in_use_alone(template, tmp_path, caplog):
    """While another process writes the run, a damaged segment is read around, not renamed."""
    src, records = template
    run = tmp_path / "run"
    shutil.copytree(src, run)
    seg = segment_files(run)[0]
    seg.write_bytes(b"")
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        caplog.set_level(logging.WARNING, logger="ipw.store")
        q = load(run).queries
        assert list(q["id"]) == [r.id for r in records]
        assert seg.is_file() and not seg.with_name(seg.name + ".damaged").exists()
        assert f"{seg.name} is damaged" in caplog.text and "read from queries.jsonl instead" in caplog.text
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    load(run)  # the writer is gone: now it is set aside and rebuilt
    assert seg.with_name(seg.name + ".damaged").is_file() and check(run).healthy


def test_a_segment_in_no_journal_cannot_be_rebuilt(tmp_path):
    run = write_synthetic_run(tmp_path, "r", SyntheticRun(n_queries=30, hz=0), journal=False)
    seg = segment_files(run)[0]
    seg.write_bytes(seg.read_bytes()[:-20])
    with pytest.raises(IpwError, match=rf"{seg.name} is damaged .*cannot be rebuilt. Restore the file"):
        load(run)
    assert seg.is_file()


def test_the_warning_is_one_line_on_the_command_line(template, tmp_path):
    """No logging set up (as the ipw command): the warning is one line on stderr, naming the file."""
    src, _ = template
    run = tmp_path / "run"
    shutil.copytree(src, run)
    seg = segment_files(run)[1]
    seg.write_bytes(seg.read_bytes()[: len(seg.read_bytes()) // 2])
    code = "import sys, ipw.store; print(len(ipw.store.load(sys.argv[1]).queries))"
    out = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == str(N)
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and str(seg) in lines[0] and "Parquet magic bytes not found" in lines[0], out.stderr


def test_report_and_compare_read_a_damaged_run(template, tmp_path, caplog):
    from ipw.cli import main

    src, _ = template
    good, bad = tmp_path / "good", tmp_path / "bad"
    shutil.copytree(src, good)
    shutil.copytree(src, bad)
    for seg in segment_files(bad)[:2]:
        seg.write_bytes(bytes(b ^ 0x5A for b in seg.read_bytes()))  # every byte flipped
    caplog.set_level(logging.WARNING, logger="ipw.store")
    res = CliRunner().invoke(main, ["compare", str(good), str(bad)])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output and caplog.text.count("set aside") == 2
    res = CliRunner().invoke(main, ["report", str(bad), "-o", str(tmp_path / "r.html")])
    assert res.exit_code == 0 and "wrote" in res.output, res.output
    assert caplog.text.count("set aside") == 2  # repaired by compare: nothing more to say
