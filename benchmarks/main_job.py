"""The main job's time and accuracy: `ipw profile` on the shipped query set, candidates side by side.

    python benchmarks/main_job.py --limit 24 --repeats 2                # every candidate, interleaved
    python benchmarks/main_job.py --only llamacpp --full                # the whole shipped set, once
    python benchmarks/main_job.py --replay runs/RUN                     # stop rules replayed on a run's outputs

Each candidate is a real `python -m ipw profile --quiet` process (model load, idle baseline and
warm-up included, as a user waits for them); its wall time is measured around the process. The
machine this project runs on is shared and noisy, so candidates run interleaved (each repeat in a
rotated order) and the table gives, besides medians, each candidate's time as a ratio to the first
candidate's in the same repeat (median over repeats). Accuracy is the run's summary; with --limit it
is over that many queries only (the first N of the interleaved order: a sample of every domain),
so compare it loosely; --full runs the whole set (248 queries: minutes to an hour each).

``--replay RUN`` answers "what would stopping at the answer's end cost in accuracy" without new
runs: at temperature 0 a stop string only cuts the same output short, so each rule of
:data:`STOP_RULES` is applied to the stored outputs and graded again; the tokens it saves are
counted with the model's tokenizer (llama.cpp, shipped model).

Today's figures (issue 24, before this benchmark): transformers 86-320 ms per output token on the
project's 2-core VM, a run of the shipped set projected past an hour; accuracy 25.8%.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TODAY = {"accuracy": 0.258, "note": "issue 24: transformers, 248 queries, projected > 60 min on the 2-core VM"}

CANDIDATES = {  # name -> (extra `ipw profile` options, extra environment)
    "llamacpp-no-stops": (["--engine", "llamacpp", "--no-answer-stops"], {}),  # as before answer stops
    "llamacpp": (["--engine", "llamacpp"], {}),  # answer stops (the default)
    "transformers-2-threads": (["--engine", "transformers"], {"OMP_NUM_THREADS": "2"}),  # torch's default here
    "transformers": (["--engine", "transformers"], {}),
}

STOP_RULES = {"none": (), "blank-line": ("\n\n",), "newline": ("\n",)}
"""Stop strings replayed on short-answer graders' outputs (numeric, exact, mc)."""
SHORT = ("numeric", "exact", "mc")


def run_one(name: str, limit: int | None, runs_dir: Path, tag: str) -> dict:
    options, env = CANDIDATES[name]
    run_id = f"{name}-{tag}"
    command = [sys.executable, "-m", "ipw", "profile", "--quiet", "--runs-dir", str(runs_dir), "--run-id", run_id,
               *options, *(["--limit", str(limit)] if limit else [])]  # fmt: skip
    t0 = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ | env, cwd=REPO)
    wall = time.monotonic() - t0
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
    summary = json.loads((runs_dir / run_id / "summary.json").read_text())["overall"]
    return {"name": name, "wall_s": wall, "accuracy": summary["accuracy"], "n": summary["n"],
            "e2e_s_mean": summary["e2e_s_mean"], "run": str(runs_dir / run_id)}  # fmt: skip


def compare(names: list[str], limit: int | None, repeats: int, runs_dir: Path) -> None:
    results: dict[str, list[dict]] = {n: [] for n in names}
    for rep in range(repeats):
        order = names[rep % len(names):] + names[: rep % len(names)]  # rotate: no candidate always runs first
        for name in order:
            r = run_one(name, limit, runs_dir, f"r{rep}")
            results[name].append(r)
            print(f"  repeat {rep}: {name:<24} {r['wall_s']:7.1f} s  accuracy {r['accuracy']:.1%} over {r['n']}", flush=True)
    base = names[0]
    print(f"\n{'candidate':<24} {'wall s (median)':>16} {'x ' + base:>20} {'accuracy':>9} {'e2e s/query':>12}")
    for name in names:
        walls = [r["wall_s"] for r in results[name]]
        ratios = [r["wall_s"] / b["wall_s"] for r, b in zip(results[name], results[base])]
        acc = statistics.mean(r["accuracy"] for r in results[name])
        e2e = statistics.mean(r["e2e_s_mean"] for r in results[name])
        print(f"{name:<24} {statistics.median(walls):16.1f} {statistics.median(ratios):20.2f} {acc:9.1%} {e2e:12.2f}")
    print(f"\ntoday's: accuracy {TODAY['accuracy']:.1%} ({TODAY['note']})")
    if limit:
        print(f"(--limit {limit}: accuracy over {limit} queries only; times include model load, idle baseline, warm-up)")


def replay(run: Path) -> None:
    """Each stop rule on the stored outputs of short-answer queries: accuracy and tokens saved."""
    sys.path.insert(0, str(REPO))
    from llama_cpp import Llama

    from ipw.engines.models import default_model_path
    from ipw.queries.grading import grade
    from ipw.queries.querysets import load_queryset
    from ipw.store import load

    loaded = load(run)
    queries = {q.id: q for q in load_queryset(loaded.manifest["queryset"]["path"]).queries}
    tok = Llama(str(default_model_path()), vocab_only=True, verbose=False)
    frame = loaded.queries
    print(f"{run}: {len(frame)} queries, accuracy {frame['correct'].mean():.1%}, "
          f"{frame['output_tokens'].sum():.0f} output tokens")  # fmt: skip
    for rule, stops in STOP_RULES.items():
        correct, tokens = 0, 0
        for r in frame.itertuples():
            q, text = queries[r.id], r.output or ""
            if q.grader in SHORT:
                cut = [text.index(s) for s in stops if s in text]
                text = text[: min(cut)] if cut else text
            correct += bool(grade(q, text).correct)
            tokens += len(tok.tokenize(text.encode(), add_bos=False)) if text else 0
        print(f"  stop {rule:<11} accuracy {correct / len(frame):.1%}  output tokens {tokens}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("--full", action="store_true", help="The whole shipped set (ignores --limit).")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--only", action="append", choices=list(CANDIDATES), help="Candidates (repeatable; first: the base).")
    parser.add_argument("--runs-dir", type=Path, help="Keep the runs here (default: a temporary folder).")
    parser.add_argument("--replay", type=Path, help="Replay the stop rules on a stored run instead.")
    a = parser.parse_args()
    if a.replay:
        return replay(a.replay)
    names = a.only or list(CANDIDATES)
    with tempfile.TemporaryDirectory() as tmp:
        compare(names, None if a.full else a.limit, a.repeats, a.runs_dir or Path(tmp))


if __name__ == "__main__":
    main()
