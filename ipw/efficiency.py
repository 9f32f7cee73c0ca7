"""Intelligence per Watt metrics (Saad-Falcon, Narayan et al., arXiv 2511.07885, section 3).

Per query q: energy E_q [J] (the query's own meter window), end-to-end latency e2e_q [s], and mean
power P_q = E_q / e2e_q [W]. Over a set of queries:

- accuracy = correct / scored (queries that could not be graded, ``correct`` None, are not scored;
  a query the engine failed on is scored as wrong);
- **IPW = accuracy / mean(P_q)**  [1/W]
- **IPJ = accuracy / mean(E_q)**  [1/J]

as the paper's released harness computes them. Energies may be total or above the idle baseline
(``energy="above_idle"``); which one is used is recorded in the output column names. Confidence
intervals are percentile bootstrap intervals over queries (resampling queries with replacement,
recomputing accuracy, mean power and mean energy together).

Coverage (section 4): the share of queries that at least one of several local models answers
correctly. Best-of-local routing sends each query to a model that answers it correctly; where
several do, to the one that used the least energy on it (the paper's oracle leaves the choice open;
least energy is ours), and where none does, to the model of least energy on it (counted wrong).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

BOOTSTRAP_CELLS = 4_000_000  # resampled indices held at once (32 MB of int64)
ENERGY_COLUMNS = {"total": "energy_j", "above_idle": "energy_above_idle_j"}


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def accuracy(correct: pd.Series) -> float:
    """correct / scored; NaN when nothing was scored."""
    scored = correct.dropna().astype(bool)
    return float(scored.mean()) if len(scored) else float("nan")


def ipw(acc: float, mean_power_w: float) -> float:
    """Intelligence per watt [1/W] = accuracy / mean per-query power."""
    return acc / mean_power_w if mean_power_w > 0 else float("nan")


def ipj(acc: float, mean_energy_j: float) -> float:
    """Intelligence per joule [1/J] = accuracy / mean per-query energy."""
    return acc / mean_energy_j if mean_energy_j > 0 else float("nan")


def _arrays(frame: pd.DataFrame, energy: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scored = frame[frame["correct"].notna()]
    e = scored[ENERGY_COLUMNS[energy]].to_numpy(float)
    t = scored["e2e_s"].to_numpy(float)
    return scored["correct"].astype(bool).to_numpy(float), e, e / t


def bootstrap(frame: pd.DataFrame, energy: str = "total", n_boot: int = 1000, seed: int = 0) -> dict[str, Interval]:
    """95% percentile intervals of accuracy, IPW and IPJ, resampling scored queries."""
    c, e, p = _arrays(frame, energy)
    if len(c) < 2:
        nan = Interval(float("nan"), float("nan"))
        return {"accuracy": nan, "ipw": nan, "ipj": nan}
    rng = np.random.default_rng(seed)
    stats: dict[str, list[np.ndarray]] = {"accuracy": [], "ipw": [], "ipj": []}
    chunk = max(1, BOOTSTRAP_CELLS // len(c))  # resamples per chunk: memory stays bounded on big runs
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, len(c), size=(min(chunk, n_boot - start), len(c)))
        acc = c[idx].mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            stats["accuracy"].append(acc)
            stats["ipw"].append(acc / p[idx].mean(axis=1))
            stats["ipj"].append(acc / e[idx].mean(axis=1))
    stats = {k: np.concatenate(v) for k, v in stats.items()}
    return {k: Interval(*np.nanpercentile(v, [2.5, 97.5])) for k, v in stats.items()}


def _latency(frame: pd.DataFrame) -> dict:
    return {f"{k}_mean": frame[k].mean() for k in ("ttft_s", "tpot_s", "e2e_s") if k in frame}


def summarize(frame: pd.DataFrame, by: str | None = None, energy: str = "total", n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per group (or one row): n, scored, accuracy, IPW [1/W], IPJ [1/J] with 95% CIs,
    mean energy total and above idle [J], mean power [W], latencies [s], and whether every energy
    was measured (False where any came from the estimate)."""
    groups = [("all", frame)] if by is None else list(frame.groupby(by, sort=True))
    rows = []
    for key, g in groups:
        c, e, p = _arrays(g, energy)
        acc = float(c.mean()) if len(c) else float("nan")
        ci = bootstrap(g, energy, n_boot, seed)
        rows.append(
            {
                (by or "group"): key,
                "n": len(g),
                "scored": len(c),
                "accuracy": acc,
                "accuracy_ci": (ci["accuracy"].low, ci["accuracy"].high),
                f"ipw_per_w[{energy}]": ipw(acc, p.mean()) if len(p) else float("nan"),
                "ipw_ci": (ci["ipw"].low, ci["ipw"].high),
                f"ipj_per_j[{energy}]": ipj(acc, e.mean()) if len(e) else float("nan"),
                "ipj_ci": (ci["ipj"].low, ci["ipj"].high),
                "energy_j_mean": g["energy_j"].mean(),
                "energy_above_idle_j_mean": g["energy_above_idle_j"].mean() if "energy_above_idle_j" in g else float("nan"),
                "power_w_mean": float(np.mean(p)) if len(p) else float("nan"),
                **_latency(g),
                "measured": bool(g["measured"].all()) if "measured" in g else False,
            }
        )
    return pd.DataFrame(rows)


def coverage(runs: dict[str, pd.DataFrame]) -> dict:
    """Coverage and best-of-local routing over runs on the same queries (matched by ``id``).

    Returns the share of common queries some model answers correctly, per-model accuracy on them,
    and the routed accuracy, mean energy [J] and IPJ [1/J].
    """
    common = set.intersection(*(set(f["id"]) for f in runs.values())) if runs else set()
    if not common:
        raise ValueError("the runs share no query ids; coverage needs the same query set")
    ids = sorted(common)
    correct = pd.DataFrame({name: f.set_index("id").loc[ids, "correct"].fillna(False).astype(bool) for name, f in runs.items()})
    energy = pd.DataFrame({name: f.set_index("id").loc[ids, "energy_j"].astype(float) for name, f in runs.items()})
    any_correct = correct.any(axis=1)
    masked = energy.where(correct, np.inf)  # energy of correct models only
    chosen = masked.idxmin(axis=1).where(any_correct, energy.idxmin(axis=1))
    routed_energy = energy.to_numpy()[np.arange(len(ids)), energy.columns.get_indexer(chosen)]
    routed_acc = float(any_correct.mean())
    return {
        "queries": len(ids),
        "coverage": routed_acc,
        "accuracy": {name: float(correct[name].mean()) for name in runs},
        "best_of_local": {
            "accuracy": routed_acc,
            "energy_j_mean": float(routed_energy.mean()),
            "ipj_per_j": ipj(routed_acc, float(routed_energy.mean())),
            "routed_to": chosen.value_counts().to_dict(),
        },
    }
