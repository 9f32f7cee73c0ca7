"""How long `ipw report` takes, and how much memory, on a run of 100,000 queries.

Builds a synthetic run folder in the real store format (ipw.store.RunStore; records with every
field of docs/profile.md, a 10 Hz power timeline over the whole run) in a temporary folder, then
loads it and renders the HTML report, printing the time and peak memory of each stage.

    python benchmarks/report_scale.py                 # 100,000 queries
    python benchmarks/report_scale.py --queries 20000 --runs 2

Time is wall-clock per stage. Memory: the process's peak resident set size after each stage
(resource.getrusage, a running maximum), and with --tracemalloc the peak of traced allocations
per stage (numpy and pandas report theirs to tracemalloc; tracing slows pure-Python code several
times, so times taken with it are not comparable).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path


def _max_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def _stage(label: str, fn, trace: bool = False):
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    extra = ""
    if trace:
        extra = f", traced peak {tracemalloc.get_traced_memory()[1] / 2**20:7.1f} MiB"
        tracemalloc.stop()
    print(f"{label:<34s} {dt:7.2f} s   peak RSS so far {_max_rss_mib():7.0f} MiB{extra}", flush=True)
    return out, dt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1, help="runs of that size in one report (same query ids)")
    parser.add_argument("--keep", type=Path, help="also write the report here")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace allocations per stage (slower)")
    args = parser.parse_args(argv)

    from ipw.reports.report import build_report
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.fakes
    from tests.fakes.runs import SyntheticRun, write_synthetic_run
    from ipw.reports.tables import load_runs

    with tempfile.TemporaryDirectory(prefix="ipw-report-scale-") as tmp:
        paths = []
        for k in range(args.runs):
            spec = SyntheticRun(n_queries=args.queries, seed=k, accuracy=0.5 + 0.1 * k, energy_j=10.0 * (k + 1),
                                model=f"synthetic-{k}")
            path, _ = _stage(f"write run {k} ({args.queries} queries)", lambda: write_synthetic_run(tmp, f"run-{k}", spec), args.tracemalloc)
            paths.append(path)
        print(f"queries.jsonl: {(paths[0] / 'queries.jsonl').stat().st_size / 2**20:.1f} MiB per run")
        runs, t_load = _stage("load (ipw.store.load)", lambda: load_runs(paths), args.tracemalloc)
        report, t_build = _stage("tables + figures (build_report)", lambda: build_report(runs.values()), args.tracemalloc)
        html, t_render = _stage("render HTML (PNG + template)", report.html, args.tracemalloc)
        out = args.keep or Path(tmp) / "report.html"
        out.write_text(html, encoding="utf-8")
        print(f"report: {len(html) / 2**10:.0f} KiB")
        print(f"total load + report: {t_load + t_build + t_render:.2f} s; report alone (build + render): "
              f"{t_build + t_render:.2f} s")
    print(f"peak resident set size of the process: {_max_rss_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
