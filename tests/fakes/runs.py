"""Synthetic run folders in the real store format: for tests and the scale benchmark.

The folder is made by :class:`ipw.store.RunStore` (manifest, idle baseline, timeline). The records
are :class:`ipw.core.records.QueryRecord` objects written by :meth:`RunStore.append_many` (one write and
one fsync: a per-record fsync would make a 100,000-query folder take minutes to write), or, with
``journal=False``, the same columns written straight into one Parquet segment by
:func:`ipw.store.columnar.columns_table` (a million records in seconds; the journal stays empty,
which the store reads as a folder whose records are all in segments). Either folder reloads with
:func:`ipw.store.load` into the same frame.

A run id that ipw would refuse (the report tests use HTML as a folder name) is made under a safe
id and then renamed, as a user renaming a folder would.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ipw.core.errors import IpwError

from ipw.core.records import SCHEMA_VERSION, QueryRecord
from ipw.store import SEGMENTS, RunStore, validate_run_id
from ipw.store.columnar import columns_table, write_segment

DOMAINS = ("arithmetic", "code", "facts", "language", "reasoning", "units")


@dataclass(frozen=True)
class SyntheticRun:
    """What to generate. ``outputs`` (cycled) replaces the generated answers when given."""

    n_queries: int = 100
    seed: int = 0
    accuracy: float = 0.6
    energy_j: float = 10.0  # mean energy per query
    measured: bool = True
    hz: float = 10.0  # timeline rate; 0: no timeline
    model: str = "synthetic-model"
    hardware: str = "synthetic machine"
    outputs: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()  # query ids (cycled); default q-000001, ...


def _columns(spec: SyntheticRun) -> dict:
    """The records as columns (numpy arrays and lists), every field of docs/profile.md."""
    rng = np.random.default_rng(spec.seed)
    n = spec.n_queries
    e2e = rng.gamma(4.0, 0.25, n) + 0.05
    out_tokens = rng.integers(2, 64, n)
    ttft = 0.1 + 0.05 * rng.random(n)
    tpot = (e2e - ttft) / np.maximum(out_tokens - 1, 1)
    energy = spec.energy_j * e2e / e2e.mean()
    idle_w = 0.4 * energy.sum() / e2e.sum()
    correct = rng.random(n) < spec.accuracy
    domain = np.array(DOMAINS)[np.arange(n) % len(DOMAINS)]
    source = "rapl.energy_uj" if spec.measured else "estimate.cpu_util_tdp"
    flags = [] if spec.measured else ["estimate"]
    if not spec.ids:
        ids = [f"q-{i + 1:06d}" for i in range(n)]
    else:  # the given ids first, then the same ids suffixed, so that ids stay unique
        ids = [spec.ids[i] if i < len(spec.ids) else f"{spec.ids[i % len(spec.ids)]}-{i}" for i in range(n)]
    texts = [spec.outputs[i % len(spec.outputs)] for i in range(n)] if spec.outputs else [f"answer {i}" for i in range(n)]
    return {
        "id": ids, "domain": domain.tolist(), "difficulty": ["easy"] * n, "grader": ["exact"] * n,
        "reference": ["42"] * n, "output": texts, "correct": correct, "extracted": [t[:20] for t in texts],
        "grade_method": ["exact"] * n, "grade_reason": ["synthetic"] * n, "input_tokens": np.full(n, 40),
        "output_tokens": out_tokens, "ttft_s": ttft, "tpot_s": tpot, "e2e_s": e2e, "finish_reason": ["stop"] * n,
        "energy_j": energy, "energy_above_idle_j": energy - idle_w * e2e, "accelerator_energy_j": energy,
        "accelerator_measured": np.full(n, spec.measured), "power_w": energy / e2e, "energy_uncertainty_j": 0.01 * energy,
        "window_s": e2e, "measured": np.full(n, spec.measured), "flags": [tuple(flags)] * n,
        "domains": [{"cpu-package:0": {"energy_j": float(e), "source": source, "measured": spec.measured,
                                       "uncertainty_j": 0.01 * float(e), "parent": None, "scope": "accelerator"}}
                    for e in energy],
        "engine_extra": [{}] * n, "session": np.zeros(n, dtype=np.int64), "attempts": np.ones(n, dtype=np.int64),
        "finished_at": ["2026-01-01T00:00:00+00:00"] * n, "schema": np.full(n, SCHEMA_VERSION),
    }  # fmt: skip


def _records(cols: dict) -> list[QueryRecord]:
    names = list(cols)
    out = []
    for row in zip(*(cols[k] for k in names)):
        d = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in zip(names, row)}
        out.append(QueryRecord(**d))
    return out


def _timeline(spec: SyntheticRun, duration_s: float) -> pd.DataFrame:
    n = int(duration_s * spec.hz)
    if n < 2:
        return pd.DataFrame()
    rng = np.random.default_rng(spec.seed + 1)
    t = 1000.0 + np.arange(n) / spec.hz
    power = 12.0 + 6.0 * (np.sin(t / 7.0) > 0) + rng.normal(0, 0.5, n)
    energy = np.concatenate([[0.0], np.cumsum(power[1:] / spec.hz)])
    return pd.DataFrame({"t_s": t, "domain": "cpu-package:0", "energy_j": energy, "power_w": power, "session": 0})


def write_synthetic_run(runs_dir: Path | str, run_id: str, spec: SyntheticRun = SyntheticRun(),
                        journal: bool = True, segments: bool = True) -> Path:
    """Create ``runs_dir/run_id`` with ``spec.n_queries`` records, an idle baseline and a timeline.
    Records go through the journal (and into segments as a run makes them), or with
    ``journal=False`` straight into one Parquet segment; ``segments=False`` leaves the journal
    alone, the folder of an earlier ipw."""
    source = "rapl.energy_uj" if spec.measured else "estimate.cpu_util_tdp"
    manifest = {
        "ipw_version": "synthetic", "created": "2026-01-01T00:00:00+00:00", "python": "3.11",
        "config": {"engine": "synthetic", "engine_options": {"model": spec.model}},
        "engine": {"engine": "synthetic", "model": spec.model, "versions": {"numpy": np.__version__}},
        "queryset": {"name": "synthetic", "sha256": "0" * 64, "n": spec.n_queries},
        "meters": [{"family": "rapl" if spec.measured else "estimate", "note": "" if spec.measured else "estimate",
                    "domains": [{"domain": "cpu-package:0", "source": source, "measured": spec.measured,
                                 "update_period_s": 0.001, "resolution_j": 6e-5, "parent": None}]}],
        "absent": [{"family": "nvidia", "reason": "no GPU in a synthetic run", "fix": ""}],
        "hardware": {"summary": spec.hardware, "platform": "synthetic"},
        "sessions": [{"command": ["synthetic"], "status": "complete"}], "status": "complete",
    }
    try:
        safe = validate_run_id(run_id)
    except IpwError:
        safe = f"renamed-{abs(hash(run_id)):x}"
    store = RunStore.create(runs_dir, safe, manifest)
    cols = _columns(spec)
    if journal:
        store.append_many(_records(cols))
    else:
        write_segment(store.path, columns_table(cols), 0, 0 + 1)  # journal bytes [0, 1): an empty journal
    store.write_json("idle.json", [{"session": 0, "power_w": {"cpu-package:0": 8.0}, "duration_s": 5.0}])
    if spec.hz > 0:
        store.append_timeline(_timeline(spec, float(np.sum(cols["e2e_s"]))))
    store.close(seal=False)
    if journal and not segments:
        shutil.rmtree(store.path / SEGMENTS, ignore_errors=True)
    if safe != run_id:
        store.path.rename(store.path.parent / run_id)
    return Path(runs_dir) / run_id
