"""How long loading, the metrics and `ipw report` take, and how much memory, on a large run.

Builds a synthetic run folder in the real store format (ipw.store.RunStore; records with every
field of docs/profile.md, a 10 Hz power timeline over the whole run) in a temporary folder, then
loads it (``ipw.store.load``), computes every metric with its intervals (``ipw.science.intelligence.metrics.run_summary``:
overall and per domain, resamples by ``n_boot_for``) and renders the HTML report, printing the time
and peak memory of each stage. The records go into Parquet segments as a long run's would
(``--journal`` writes them to ``queries.jsonl`` instead, the format of earlier ipw, loaded by
parsing every line).

    python benchmarks/report_scale.py                      # 1,000,000 queries
    python benchmarks/report_scale.py --queries 100000 --runs 2
    python benchmarks/report_scale.py --queries 100000 --journal

Time is wall-clock per stage, with the CPU time of the process (all its threads) beside it: on a
machine shared with other work the wall-clock time grows, the CPU time much less. Memory: the process's peak resident set size after each stage
(resource.getrusage, a running maximum; the run is written by a child process, so this is the
reader's alone), and with --tracemalloc the peak of traced allocations
per stage (numpy and pandas report theirs to tracemalloc; tracing slows pure-Python code several
times, so times taken with it are not comparable).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
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
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    extra = ""
    if trace:
        extra = f", traced peak {tracemalloc.get_traced_memory()[1] / 2**20:7.1f} MiB"
        tracemalloc.stop()
    print(f"{label:<38s} {dt:7.2f} s (CPU {cpu:6.2f} s)   peak RSS so far {_max_rss_mib():7.0f} MiB{extra}", flush=True)
    return out, dt


def _write(tmp: str, k: int, n: int, journal: bool) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.fakes
    from tests.fakes.runs import SyntheticRun, write_synthetic_run

    spec = SyntheticRun(n_queries=n, seed=k, accuracy=0.5 + 0.1 * k, energy_j=10.0 * (k + 1), model=f"synthetic-{k}")
    return write_synthetic_run(tmp, f"run-{k}", spec, journal=journal, segments=not journal)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1_000_000)
    parser.add_argument("--journal", action="store_true",
                        help="the folder of an earlier ipw: records in queries.jsonl only (no segments)")
    parser.add_argument("--runs", type=int, default=1, help="runs of that size in one report (same query ids)")
    parser.add_argument("--keep", type=Path, help="also write the report here")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace allocations per stage (slower)")
    args = parser.parse_args(argv)

    from ipw.science.intelligence.metrics import run_summary
    from ipw.reports.report import build_report
    from ipw.reports.tables import load_runs

    with tempfile.TemporaryDirectory(prefix="ipw-report-scale-") as tmp:
        paths = []
        ctx = multiprocessing.get_context("spawn")  # written in a child: the peak RSS below is the reader's
        for k in range(args.runs):
            with ctx.Pool(1) as pool:
                path, _ = _stage(f"write run {k} ({args.queries} queries, child)",
                                 lambda: pool.apply(_write, (tmp, k, args.queries, args.journal)))
            paths.append(path)
        size = sum(f.stat().st_size for f in paths[0].rglob("*") if f.is_file() and f.name != "power.parquet")
        print(f"records on disk: {size / 2**20:.1f} MiB per run ({'journal' if args.journal else 'segments'})")
        runs, t_load = _stage("load (ipw.store.load)", lambda: load_runs(paths), args.tracemalloc)
        _, t_metrics = _stage("metrics (efficiency.run_summary)",
                              lambda: [run_summary(r.queries) for r in runs.values()], args.tracemalloc)
        report, t_build = _stage("tables + figures (build_report)", lambda: build_report(runs.values()), args.tracemalloc)
        html, t_render = _stage("render HTML (PNG + template)", report.html, args.tracemalloc)
        out = args.keep or Path(tmp) / "report.html"
        out.write_text(html, encoding="utf-8")
        print(f"report: {len(html) / 2**10:.0f} KiB")
        print(f"total load + report: {t_load + t_build + t_render:.2f} s; report alone (build + render): "
              f"{t_build + t_render:.2f} s; metrics alone (as ipw profile computes them): {t_metrics:.2f} s")
    print(f"peak resident set size of the process: {_max_rss_mib():.0f} MiB; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
