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
    python benchmarks/report_scale.py --grid 20x8 --queries 10000   # the IPW paper's comparison

``--grid MxH`` is the IPW paper's scale as one comparison: M models (three engines among them) on
H kinds of hardware, one run of ``--queries`` records each (160 runs of 10,000 by default for
``20x8``), every run with the ``summary.json`` the runner writes (:func:`ipw.run.session.write_summary`)
and the same query ids. It times the report's stages in this process, then ``ipw report`` and
``ipw compare`` over all runs as a user runs them, each in its own process (wall time and that
process's peak RSS, from ``os.wait4``).

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
import shutil
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


MODEL_SIZES = ("0.5B", "1.5B", "3B", "7B", "8B", "14B", "32B", "70B")
HARDWARE = ("H100 SXM 80GB", "H200 141GB", "B200 180GB", "A100 SXM 80GB", "MI300X 192GB", "RTX 4090 24GB",
            "M4 Max 128GB", "Jetson AGX Orin 64GB")
ENGINES = ("vllm", "llamacpp", "transformers")


def _grid_spec(m: int, h: int, n: int):
    """Run (model m, hardware h): accuracy grows with the model (give or take a model's own 0.15),
    energy with the model and with the hardware's place in the list, so that some models are off
    their hardware's frontier."""
    import numpy as np

    from tests.fakes.runs import SyntheticRun

    size = MODEL_SIZES[m % len(MODEL_SIZES)]
    accuracy = float(np.clip(0.3 + 0.025 * m + np.random.default_rng(m).uniform(-0.15, 0.15), 0.05, 0.95))
    return SyntheticRun(n_queries=n, seed=1000 * m + h, accuracy=accuracy,
                        energy_j=(2.0 + 1.5 * m) * (1.0 + 0.35 * h), model=f"family{m // len(MODEL_SIZES)}-{size}",
                        engine=ENGINES[m % len(ENGINES)], hardware=HARDWARE[h % len(HARDWARE)])


def _write_grid_run(tmp: str, m: int, h: int, n: int) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from ipw.run.session import write_summary
    from ipw.store import RunStore
    from tests.fakes.runs import write_synthetic_run

    shutil.rmtree(Path(tmp) / f"m{m:02d}-h{h}", ignore_errors=True)  # a run left unfinished by an earlier call
    path = write_synthetic_run(tmp, f"m{m:02d}-h{h}", _grid_spec(m, h, n), journal=False)
    store = RunStore(path)
    write_summary(store)  # summary.json as the runner writes it when a run completes
    store.close(seal=False)
    return path


CHILD = """import atexit, runpy, sys
def peak():  # VmHWM: this process's own peak (ru_maxrss would carry the parent's across fork and exec)
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
    print("peak-rss-kib", hwm[0].split()[1] if hwm else "nan", file=sys.stderr)
atexit.register(peak)
sys.argv = ["ipw", *sys.argv[1:]]
runpy.run_module("ipw", run_name="__main__")
"""


def _cli(label: str, args: list[str]) -> tuple[float, str]:
    """Run ``python -m ipw ARGS`` in its own process: its wall time, CPU time (``os.wait4``) and
    peak RSS (the child's own VmHWM, Linux), and what it printed."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        dt = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    peak = [line.split()[1] for line in errors.splitlines() if line.startswith("peak-rss-kib")]
    rss = float(peak[-1]) / 2**10 if peak else float("nan")
    print(f"{label:<38s} {dt:7.2f} s (CPU {usage.ru_utime + usage.ru_stime:6.2f} s)   its peak RSS {rss:7.0f} MiB",
          flush=True)
    if proc.returncode:
        print(f"exit status {proc.returncode}: {errors[-2000:]}", file=sys.stderr)
    elif "Warning" in errors:
        print(errors[-3000:], file=sys.stderr)
    return dt, text


def grid(models: int, hardware: int, n: int, keep: Path | None, folder: Path | None) -> int:
    from ipw.reports.report import build_report
    from ipw.reports.tables import domain_table, load_runs, summary_table

    with tempfile.TemporaryDirectory(prefix="ipw-report-grid-") as tmp:
        cells = [(m, h) for m in range(models) for h in range(hardware)]
        where = folder or Path(tmp)
        todo = [(str(where), m, h, n) for m, h in cells if not (where / f"m{m:02d}-h{h}" / "summary.json").is_file()]
        if todo:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(min(2, os.cpu_count() or 1)) as pool:
                _stage(f"write {len(todo)} runs x {n} queries (children)", lambda: pool.starmap(_write_grid_run, todo))
        paths = [where / f"m{m:02d}-h{h}" for m, h in cells]
        size = sum(f.stat().st_size for f in paths[0].rglob("*") if f.is_file())
        print(f"one run on disk: {size / 2**20:.1f} MiB (segments, timeline, summary.json)")
        runs, t_load = _stage("load (ipw.store.load)", lambda: load_runs(paths))
        _, t_metrics = _stage("metrics (summary + domain tables)",
                              lambda: (summary_table(runs), domain_table(runs)))
        report, t_build = _stage("tables + figures (build_report)", lambda: build_report(runs.values()))
        html, t_render = _stage("render HTML (PNG + template)", report.html)
        out = keep or Path(tmp) / "report.html"
        out.write_text(html, encoding="utf-8")
        print(f"report: {len(html) / 2**10:.0f} KiB; in this process: load + report {t_load + t_build + t_render:.2f} s")
        del runs, report, html
        _cli("ipw report (own process)", ["report", *map(str, paths), "-o", str(Path(tmp) / "cli.html")])
        _, text = _cli("ipw compare (own process)", ["compare", *map(str, paths)])
        print(f"ipw compare printed {len(text.splitlines())} lines")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1_000_000)
    parser.add_argument("--journal", action="store_true",
                        help="the folder of an earlier ipw: records in queries.jsonl only (no segments)")
    parser.add_argument("--runs", type=int, default=1, help="runs of that size in one report (same query ids)")
    parser.add_argument("--keep", type=Path, help="also write the report here")
    parser.add_argument("--grid", help="MxH: M models x H hardware, one run each, e.g. 20x8 (see above)")
    parser.add_argument("--dir", type=Path, help="with --grid: write the runs here and keep them (runs already "
                        "there with a summary.json are reused)")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace allocations per stage (slower)")
    args = parser.parse_args(argv)
    if args.grid:
        models, hardware = (int(x) for x in args.grid.lower().split("x"))
        return grid(models, hardware, args.queries, args.keep, args.dir)

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
