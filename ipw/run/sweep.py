"""The serving sweep: one query set at several concurrencies (or batch sizes), and its frontier.

    >>> from ipw import sweep
    >>> result = sweep.run(config, [1, 4, 16, 64])                  # doctest: +SKIP
    >>> result.levels[["level", "j_per_token", "ttft_p50_s", "ipj_per_j"]]   # doctest: +SKIP
    >>> sweep.levels_frame(["runs/c1", "runs/c4"])                   # the same from stored runs

Each level is an ordinary ``ipw profile`` run (``ipw.run.serving``) in its own folder,
``<run-id>-c<N>`` (concurrency) or ``<run-id>-b<N>`` (batch size), so every level can be resumed,
reported and re-analysed alone. One row per level (units in the names):

- accuracy, IPW [1/W] and IPJ [1/J] (:func:`ipw.science.intelligence.metrics.summarize`), on the
  default energy basis (:mod:`ipw.core.basis`: accelerator energy, else system), named in
  ``energy_scope`` and labelled ``measured`` or ``estimate`` in ``energy`` (``measured`` the same as a bool);
- energy per query [J] on that basis (mean of the attributed per-query energies, prefill and decode
  too) and per output token over the run [J/token] (their sum over all output tokens);
- steady state (ML.ENERGY's window, :func:`ipw.profilers.steady.steady_window`): J/token, tokens/s,
  mean power [W], with the bound of the window's energy [J];
- latency (:mod:`ipw.core.latency`): TTFT and TPOT mean, p50 and p90, vLLM's TPOT mean,
  inter-token latency p50/p90/p99 pooled over every query;
- the server's own timing where it gives it (:func:`server_columns`): mean queue, prefill and decode
  time [s] of the requests it finished and the most requests waiting at once (vLLM's metrics), or the
  mean prefill and decode time of llama.cpp's per-answer timings.

The frontier: a level is on the energy-TTFT frontier when no other level has both lower steady
J/token and lower median TTFT (``frontier_ttft``), likewise for TPOT (``frontier_tpot``). J/token
falls with the level while latency grows; the frontier is the set of levels worth choosing from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ipw.core.errors import IpwError
from ipw.science.results import Header, Result, read_table
from ipw.core import latency

MODES = {"concurrency": "c", "batch_size": "b"}
COLUMNS = ["mode", "level", "run", "n", "scored", "errors", "accuracy", "ipw_per_w", "ipj_per_j", "energy_scope", "measured", "energy",
           "serving_power_w", "ipw_attributed_per_w",
           "energy_per_query_j", "prefill_energy_per_query_j", "decode_energy_per_query_j", "j_per_token_run",
           "steady_j_per_token", "steady_tokens_per_s", "steady_power_w", "steady_energy_uncertainty_j", "steady_s",
           "ttft_mean_s", "ttft_p50_s", "ttft_p90_s", "tpot_mean_s", "tpot_p50_s", "tpot_p90_s", "tpot_vllm_mean_s",
           "itl_p50_s", "itl_p90_s", "itl_p99_s", "e2e_mean_s", "output_tokens",
           "server_requests", "queue_mean_s", "server_prefill_mean_s", "server_decode_mean_s", "waiting_max",
           "frontier_ttft", "frontier_tpot"]


class SweepError(IpwError, ValueError):
    """Levels that cannot be swept, or a run that is not a serving run."""


def parse_levels(text: str) -> list[int]:
    """``"1,4,16,64"`` -> [1, 4, 16, 64]; every level an integer >= 1, no repeats."""
    try:
        levels = [int(x) for x in str(text).replace(" ", "").split(",") if x]
    except ValueError:
        raise SweepError(f"levels must be integers separated by commas, e.g. 1,4,16,64; got {text!r}") from None
    if not levels or any(v < 1 for v in levels):
        raise SweepError(f"every level must be >= 1; got {text!r}")
    if len(set(levels)) != len(levels):
        raise SweepError(f"a level is repeated in {text!r}")
    return levels


def _decode(v):
    return json.loads(v) if isinstance(v, str) else (v or {})


def level_row(run) -> dict:
    """One level's figures from a loaded serving run (:func:`ipw.store.load`)."""
    from ipw.core.basis import frame_label
    from ipw.science.intelligence.metrics import query_energy_j, scored_rows, summarize_run

    serving = run.manifest.get("serving")
    if not serving:
        raise SweepError(f"{run.path} is not a serving run (run it with --concurrency or --batch-size)")
    q = run.queries
    row = {"mode": serving["mode"], "level": int(serving["level"]), "run": str(run.path)}
    if q.empty:
        return row | {"n": 0}
    s = summarize_run(run, n_boot=200).iloc[0]
    row |= {k: s.get(k) for k in ("n", "scored", "errors", "accuracy", "ipw_per_w", "ipj_per_j", "energy_scope", "measured",
                                  "serving_power_w", "ipw_attributed_per_w")}
    row["energy"] = frame_label(run.queries)  # the label of the basis energy, as profile, compare and the report give it
    ok = scored_rows(q)
    energy = query_energy_j(ok)
    row["energy_per_query_j"] = float(energy.mean()) if len(ok) else np.nan
    for col in ("prefill_energy_j", "decode_energy_j"):
        row[col.replace("_energy_j", "_energy_per_query_j")] = float(ok[col].astype(float).mean()) if col in ok and len(ok) else np.nan
    tokens = float(q["output_tokens"].fillna(0).sum())
    row["j_per_token_run"] = float(query_energy_j(q).sum()) / tokens if tokens else np.nan
    row["output_tokens"] = tokens
    steady = [x["steady_state"] for x in serving.get("sessions", []) if x.get("steady_state")]
    if steady:
        st = max(steady, key=lambda x: x["duration_s"])  # the longest steady window of the run's sessions
        b = st.get("basis") or {}
        row |= {"steady_j_per_token": b.get("j_per_token"), "steady_tokens_per_s": st["tokens_per_s"],
                "steady_power_w": b.get("power_w"), "steady_energy_uncertainty_j": b.get("uncertainty_j"),
                "steady_s": st["duration_s"]}  # fmt: skip
    row |= _latency(ok)
    row |= server_columns(serving.get("sessions", []), q)
    return row


def server_columns(sessions: list[dict], frame: pd.DataFrame) -> dict:
    """What the server said of its own timing (:mod:`ipw.engines.server_timing`): over the sessions'
    vLLM metrics, the requests it finished, their mean queue, prefill and decode times [s] and the most
    requests waiting at once; else the means of llama.cpp's per-answer timings in the records (no queue)."""
    found = [x["server"] for x in sessions if (x.get("server") or {}).get("available")]
    if found:
        n = sum(x["requests"] for x in found)
        mean = {k: sum(x[f"{k}_total_s"] or 0.0 for x in found) / n if n else np.nan for k in ("queue", "prefill", "decode")}
        waiting = [x["waiting_max"] for x in found if x.get("waiting_max") is not None]
        return {"server_requests": n, "queue_mean_s": mean["queue"], "server_prefill_mean_s": mean["prefill"],
                "server_decode_mean_s": mean["decode"], "waiting_max": max(waiting) if waiting else np.nan}  # fmt: skip
    per_answer = [e.get("server_timing") for e in map(_decode, frame.get("engine_extra", []))]
    per_answer = [t for t in per_answer if t]
    if not per_answer:
        return {}
    return {"server_requests": len(per_answer),
            "server_prefill_mean_s": float(np.mean([t["prefill_s"] for t in per_answer])),
            "server_decode_mean_s": float(np.nanmean([t["decode_s"] for t in per_answer]))}  # fmt: skip


def _latency(frame: pd.DataFrame) -> dict:
    out = {}
    for name in ("ttft", "tpot"):
        v = frame[f"{name}_s"].astype(float).dropna() if f"{name}_s" in frame else pd.Series(dtype=float)
        pct = latency.percentiles(v, (50, 90))
        out |= {f"{name}_mean_s": float(v.mean()) if len(v) else np.nan, f"{name}_p50_s": pct["p50"], f"{name}_p90_s": pct["p90"]}
    vllm = [latency.tpot_vllm_s(r.e2e_s, r.ttft_s, int(r.output_tokens)) for r in frame.itertuples()
            if r.ttft_s == r.ttft_s and r.ttft_s is not None and r.output_tokens == r.output_tokens]  # fmt: skip
    vllm = [v for v in vllm if v is not None]
    out["tpot_vllm_mean_s"] = float(np.mean(vllm)) if vllm else np.nan
    times = [t[1] for t in (latency.token_times_from_extra(_decode(e)) for e in frame.get("engine_extra", [])) if t]
    itl = latency.percentiles(latency.pooled_itl_s(times))
    out |= {f"itl_{k}_s": v for k, v in itl.items()}
    out["e2e_mean_s"] = float(frame["e2e_s"].astype(float).mean()) if len(frame) else np.nan
    return out


def pareto_min(x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """True where no other point is at least as low on both axes and lower on one (NaN: never)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    out = np.zeros(len(x), dtype=bool)
    for i in np.flatnonzero(ok):
        dominated = ok & (x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i]))
        out[i] = not dominated.any()
    return out


def levels_frame(runs: Iterable) -> pd.DataFrame:
    """One row per serving run (folders or loaded runs), sorted by level, with the frontier flags."""
    from ipw.store import load

    rows = [level_row(r if hasattr(r, "manifest") else load(r)) for r in runs]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    for col in COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    frame = frame.sort_values(["mode", "level"], kind="stable").reset_index(drop=True)
    energy = frame["steady_j_per_token"].astype(float).fillna(frame["j_per_token_run"].astype(float))
    frame["frontier_ttft"] = pareto_min(energy, frame["ttft_p50_s"])
    frame["frontier_tpot"] = pareto_min(energy, frame["tpot_p50_s"])
    return frame[COLUMNS + [c for c in frame.columns if c not in COLUMNS]]


@dataclass(frozen=True, eq=False)
class SweepResult(Result):
    """A sweep's table (one row per level) and how it was run; saved as kind ``serving.sweep``."""

    KIND = "serving.sweep"
    VERSION = 1

    levels: pd.DataFrame
    settings: dict = field(default_factory=dict)

    def to_parts(self) -> tuple[dict, dict[str, pd.DataFrame]]:
        return {"settings": dict(self.settings)}, {"levels": self.levels}

    @classmethod
    def from_parts(cls, header: Header) -> SweepResult:
        frame = read_table(header, "levels")
        missing = [c for c in ("mode", "level", "steady_j_per_token", "ttft_p50_s", "tpot_p50_s") if c not in frame]
        if missing:
            raise ValueError(f"levels table lacks column(s) {', '.join(missing)}")
        return cls(frame, dict(header.data.get("settings") or {}))


def level_run_id(base: str, mode: str, level: int) -> str:
    return f"{base}-{MODES[mode]}{level}"


def run(config, levels: Sequence[int], mode: str = "concurrency", engine=None, observer=None) -> SweepResult:
    """Profile ``config``'s query set at every level (one run each) and tabulate them.

    ``engine`` (loaded once, for every level) or None (each level builds its own from the config).
    """
    from ipw.store import new_run_id
    from ipw.run import runner

    if mode not in MODES:
        raise SweepError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    levels = parse_levels(",".join(str(v) for v in levels))
    base = config.run_id or new_run_id(f"sweep-{config.engine}")
    paths = []
    for level in levels:
        cfg = replace(config, run_id=level_run_id(base, mode, level), concurrency=None, batch_size=None)
        cfg = replace(cfg, **{mode: level})
        paths.append(runner.profile(cfg, engine=engine, observer=observer).path)
    settings = {"mode": mode, "levels": levels, "base_run_id": base, "runs": [str(p) for p in paths]}
    return SweepResult(levels_frame(paths), settings)


def load(path: Path | str) -> SweepResult:
    """A saved sweep (``ipw sweep --out DIR``)."""
    return SweepResult.load(path)
