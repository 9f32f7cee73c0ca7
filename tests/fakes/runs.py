"""Synthetic run folders in the real store format: for tests and the scale benchmark.

The folder is made by :class:`ipw.store.RunStore` (manifest, idle baseline, timeline) and the
records are :class:`ipw.records.QueryRecord` objects written by :meth:`RunStore.append_many` (one
write and one fsync: a per-record fsync would make a 100,000-query folder take minutes to write);
the folder reloads with :func:`ipw.store.load`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ipw.records import QueryRecord
from ipw.store import RunStore

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


def _records(spec: SyntheticRun) -> list[QueryRecord]:
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
    recs = []
    for i in range(n):
        if not spec.ids:
            qid = f"q-{i + 1:06d}"
        else:  # the given ids first, then the same ids suffixed, so that ids stay unique
            qid = spec.ids[i] if i < len(spec.ids) else f"{spec.ids[i % len(spec.ids)]}-{i}"
        text = spec.outputs[i % len(spec.outputs)] if spec.outputs else f"answer {i}"
        e = float(energy[i])
        recs.append(QueryRecord(
            id=qid, domain=str(domain[i]),
            difficulty="easy", grader="exact", reference="42", output=text,
            correct=bool(correct[i]), extracted=text[:20], grade_method="exact", grade_reason="synthetic",
            input_tokens=40, output_tokens=int(out_tokens[i]), ttft_s=float(ttft[i]), tpot_s=float(tpot[i]),
            e2e_s=float(e2e[i]), finish_reason="stop", energy_j=e,
            energy_above_idle_j=e - idle_w * float(e2e[i]), accelerator_energy_j=e, accelerator_measured=spec.measured,
            power_w=e / float(e2e[i]), energy_uncertainty_j=0.01 * e, window_s=float(e2e[i]),
            measured=spec.measured, flags=tuple(flags),
            domains={"cpu-package:0": {"energy_j": e, "source": source, "measured": spec.measured,
                                       "uncertainty_j": 0.01 * e, "parent": None, "scope": "accelerator"}},
            session=0, finished_at="2026-01-01T00:00:00+00:00",
        ))
    return recs


def _timeline(spec: SyntheticRun, duration_s: float) -> pd.DataFrame:
    n = int(duration_s * spec.hz)
    if n < 2:
        return pd.DataFrame()
    rng = np.random.default_rng(spec.seed + 1)
    t = 1000.0 + np.arange(n) / spec.hz
    power = 12.0 + 6.0 * (np.sin(t / 7.0) > 0) + rng.normal(0, 0.5, n)
    energy = np.concatenate([[0.0], np.cumsum(power[1:] / spec.hz)])
    return pd.DataFrame({"t_s": t, "domain": "cpu-package:0", "energy_j": energy, "power_w": power, "session": 0})


def write_synthetic_run(runs_dir: Path | str, run_id: str, spec: SyntheticRun = SyntheticRun()) -> Path:
    """Create ``runs_dir/run_id`` with ``spec.n_queries`` records, an idle baseline and a timeline."""
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
    store = RunStore.create(runs_dir, run_id, manifest)
    records = _records(spec)
    store.append_many(records)
    store.write_json("idle.json", [{"session": 0, "power_w": {"cpu-package:0": 8.0}, "duration_s": 5.0}])
    if spec.hz > 0:
        store.append_timeline(_timeline(spec, sum(r.e2e_s for r in records)))
    return store.path
