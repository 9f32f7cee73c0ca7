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

Scopes differ, so that no test can mix them up unseen (docs/architecture.md, the record contract):
each record's accelerator energy is about 0.7 x its system energy and its host energy the rest
(about 0.3 x), with a per-record jitter so that no ratio is constant. By default the machine is a
GPU box: the accelerator is ``gpu:0`` measured by NVML's counter (``nvml.total_energy_counter``),
the host the labelled CPU estimate (``cpu``, ``estimate.cpu_util_tdp``), so the accelerator figure
is measured and the system figure an estimate. ``host_measured=True`` makes the host a RAPL package
(``cpu-package:0``, ``rapl.energy_uj``). ``measured=False`` is a machine with no energy counter: the
CPU estimate is the accelerator (``cpu``); its host is then ``dram:0`` labelled estimate too (a
simplification: the real estimate has no DRAM domain), so that the three scopes still differ.
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
    energy_j: float = 10.0  # mean system energy per query [J]
    measured: bool = True  # the accelerator's energy: measured (gpu:0, NVML) or an estimate (no counter)
    host_measured: bool = False  # the host's: RAPL (measured) or the CPU estimate beside the GPU
    accelerator_share: float = 0.7  # mean accelerator / system energy (each record jittered by +-0.1)
    hz: float = 10.0  # timeline rate; 0: no timeline
    model: str = "synthetic-model"
    engine: str = "synthetic"
    hardware: str = "synthetic machine"
    outputs: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()  # query ids (cycled); default q-000001, ...


GPU_SOURCE, RAPL_SOURCE, ESTIMATE_SOURCE = "nvml.total_energy_counter", "rapl.energy_uj", "estimate.cpu_util_tdp"


def meter_domains(spec: SyntheticRun) -> list[dict]:
    """The run's two top-level domains, accelerator first: each a dict of domain, source, measured,
    scope and meter family."""
    if spec.measured:
        acc = ("gpu:0", GPU_SOURCE, True, "accelerator", "nvidia")
        host = ("cpu-package:0", RAPL_SOURCE, True, "host", "rapl") if spec.host_measured else \
            ("cpu", ESTIMATE_SOURCE, False, "host", "estimate")
    else:
        acc = ("cpu", ESTIMATE_SOURCE, False, "accelerator", "estimate")
        host = ("dram:0", RAPL_SOURCE, True, "host", "rapl") if spec.host_measured else \
            ("dram:0", ESTIMATE_SOURCE, False, "host", "estimate")
    keys = ("domain", "source", "measured", "scope", "family")
    return [dict(zip(keys, acc)), dict(zip(keys, host))]


def _idle_w(energy_j: np.ndarray, e2e_s: np.ndarray) -> float:
    """The run's idle power [W] (system): 0.4 x its mean power over the queries."""
    return float(0.4 * energy_j.sum() / e2e_s.sum())


def _columns(spec: SyntheticRun) -> dict:
    """The records as columns (numpy arrays and lists), every field of docs/profile.md."""
    rng = np.random.default_rng(spec.seed)
    n = spec.n_queries
    e2e = rng.gamma(4.0, 0.25, n) + 0.05
    out_tokens = rng.integers(2, 64, n)
    ttft = 0.1 + 0.05 * rng.random(n)
    tpot = (e2e - ttft) / np.maximum(out_tokens - 1, 1)
    energy = spec.energy_j * e2e / e2e.mean()  # system [J]
    idle_w = _idle_w(energy, e2e)
    correct = rng.random(n) < spec.accuracy
    share = np.clip(spec.accelerator_share + rng.uniform(-0.1, 0.1, n), 0.05, 0.95)  # drawn last: same answers as before
    acc_e, host_e = energy * share, energy * (1 - share)
    domain = np.array(DOMAINS)[np.arange(n) % len(DOMAINS)]
    acc_d, host_d = meter_domains(spec)
    system_measured = acc_d["measured"] and host_d["measured"]
    flags = [] if system_measured else ["estimate"]
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
        "energy_j": energy, "energy_above_idle_j": energy - idle_w * e2e, "accelerator_energy_j": acc_e,
        # the accelerator's own idle share of the baseline (as the idle table below): a figure of its own
        "accelerator_energy_above_idle_j": acc_e - idle_w * spec.accelerator_share * e2e,
        "accelerator_measured": np.full(n, acc_d["measured"]), "host_energy_j": host_e,
        "host_measured": np.full(n, host_d["measured"]), "power_w": acc_e / e2e, "energy_uncertainty_j": 0.01 * energy,
        "window_s": e2e, "measured": np.full(n, system_measured), "flags": [tuple(flags)] * n,
        "domains": [{d["domain"]: {"energy_j": float(e), "source": d["source"], "measured": d["measured"],
                                   "uncertainty_j": 0.01 * float(e), "parent": None, "scope": d["scope"]}
                     for d, e in ((acc_d, a), (host_d, h))} for a, h in zip(acc_e, host_e)],
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
    """Both top-level domains, the accelerator's power about 0.7 x the sum as in the records."""
    n = int(duration_s * spec.hz)
    if n < 2:
        return pd.DataFrame()
    rng = np.random.default_rng(spec.seed + 1)
    t = 1000.0 + np.arange(n) / spec.hz
    parts = []
    for d, level in zip(meter_domains(spec), (spec.accelerator_share, 1 - spec.accelerator_share)):
        power = level * (12.0 + 6.0 * (np.sin(t / 7.0) > 0)) + rng.normal(0, 0.5 * level, n)
        energy = np.concatenate([[0.0], np.cumsum(power[1:] / spec.hz)])
        parts.append(pd.DataFrame({"t_s": t, "domain": d["domain"], "energy_j": energy, "power_w": power, "session": 0}))
    return pd.concat(parts, ignore_index=True).sort_values("t_s", kind="stable").reset_index(drop=True)


def write_synthetic_run(runs_dir: Path | str, run_id: str, spec: SyntheticRun = SyntheticRun(),
                        journal: bool = True, segments: bool = True) -> Path:
    """Create ``runs_dir/run_id`` with ``spec.n_queries`` records, an idle baseline and a timeline.
    Records go through the journal (and into segments as a run makes them), or with
    ``journal=False`` straight into one Parquet segment; ``segments=False`` leaves the journal
    alone, the folder of an earlier ipw."""
    meters = [{"family": d["family"], "note": "" if d["measured"] else "estimate",
               "domains": [{"domain": d["domain"], "source": d["source"], "measured": d["measured"],
                            "update_period_s": 0.1 if d["family"] == "nvidia" else 0.001,
                            "resolution_j": 1e-3 if d["family"] == "nvidia" else 6e-5, "parent": None,
                            "scope": d["scope"]}]} for d in meter_domains(spec)]
    absent = [] if spec.measured else [{"family": "nvidia", "reason": "no GPU in a synthetic run", "fix": ""}]
    manifest = {
        "ipw_version": "synthetic", "created": "2026-01-01T00:00:00+00:00", "python": "3.11",
        "config": {"engine": spec.engine, "engine_options": {"model": spec.model}},
        "engine": {"engine": spec.engine, "model": spec.model, "versions": {"numpy": np.__version__}},
        "queryset": {"name": "synthetic", "sha256": "0" * 64, "n": spec.n_queries},
        "meters": meters, "absent": absent,
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
    acc_d, host_d = meter_domains(spec)
    idle_w = _idle_w(cols["energy_j"], cols["e2e_s"])
    idle = {acc_d["domain"]: idle_w * spec.accelerator_share, host_d["domain"]: idle_w * (1 - spec.accelerator_share)}
    store.write_json("idle.json", [{"session": 0, "power_w": idle, "duration_s": 5.0}])
    if spec.hz > 0:
        store.append_timeline(_timeline(spec, float(np.sum(cols["e2e_s"]))))
    store.close(seal=False)
    if journal and not segments:
        shutil.rmtree(store.path / SEGMENTS, ignore_errors=True)
    if safe != run_id:
        store.path.rename(store.path.parent / run_id)
    return Path(runs_dir) / run_id
