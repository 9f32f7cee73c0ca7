"""Cost of the timeline sampler: its CPU share, and what it takes from a compute-bound workload.

For each rate (off, 10, 50, 100 Hz) it runs the same torch matmul loop on all cores for a fixed
time and prints, measured in this one run:
  - sampler CPU: process CPU seconds per wall second spent while the main thread only sleeps;
  - workload throughput (matmuls/s) and its ratio to the run without a sampler.
Meters are whatever `ipw devices` finds here. Usage: python benchmarks/sampler_overhead.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ipw.devices.discover import discover
from ipw.profilers.sampler import Sampler


def idle_cpu_share(meters, hz: float, seconds: float) -> float:
    sampler = Sampler(meters, hz=hz).start() if hz else None
    c0, t0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    if sampler:
        sampler.stop()
    return cpu / wall


def throughput(meters, hz: float, seconds: float) -> float:
    a = torch.randn(384, 384)
    sampler = Sampler(meters, hz=hz).start() if hz else None
    n, end = 0, time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < end:
        a @ a
        n += 1
    rate = n / (time.perf_counter() - t0)
    if sampler:
        sampler.stop()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    found = discover()
    meters = found.meters
    print("meters:", ", ".join(f"{m.family}({','.join(m.domains)})" for m in meters))
    rates = [0, 10, 50, 100]
    # interleave the rates across repeats so that drift in machine load hits all of them alike
    share = {hz: [] for hz in rates}
    tput = {hz: [] for hz in rates}
    # CPU share first: after torch work its worker threads spin for a while and would be counted
    for _ in range(args.repeats):
        for hz in rates:
            share[hz].append(idle_cpu_share(meters, hz, args.seconds / 2))
    for _ in range(args.repeats):
        for hz in rates:
            tput[hz].append(throughput(meters, hz, args.seconds))
    base = statistics.median(tput[0])
    print(f"{'rate':>8} {'CPU s per wall s':>17} {'matmul/s':>10} {'ratio to off':>13}")
    for hz in rates:
        label = "off" if hz == 0 else f"{hz} Hz"
        t = statistics.median(tput[hz])
        print(f"{label:>8} {statistics.median(share[hz]):>17.4f} {t:>10.1f} {t / base:>13.4f}")
    found.close()


if __name__ == "__main__":
    main()
