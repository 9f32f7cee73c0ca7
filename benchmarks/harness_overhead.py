"""What profiling costs the engine: tokens/s of the same engine on the same queries, bare and measured.

Three conditions, interleaved query by query so that drift in machine load hits all alike:
  bare      engine.generate() alone
  windows   inside a meter window (counter reads at the edges only; what `ipw profile` does)
  timeline  windows plus the 20 Hz power timeline sampler
Prints output tokens per second of generation time for each and the ratio to bare.
Usage: python benchmarks/harness_overhead.py [--engine auto] [--queries 24] [--max-tokens 32]
"""

from __future__ import annotations

import argparse

from ipw.core import clock
from ipw.devices.discover import discover
from ipw.profilers.sampler import Sampler
from ipw.profilers.windows import Profiler
from ipw.engines import GenerationSettings, get_engine
from ipw.queries.prompts import render_prompt
from ipw.queries.querysets import load_queryset
from ipw.run.config import resolve_engine_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--queries", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    name = resolve_engine_name(args.engine)
    engine = get_engine(name)
    settings = GenerationSettings(max_tokens=args.max_tokens)
    prompts = [render_prompt(q) for q in load_queryset("default").queries[: args.queries]]
    meters = discover().meters
    profiler = Profiler(meters, sampler_hz=None)
    tokens = {"bare": 0, "windows": 0, "timeline": 0}
    seconds = dict.fromkeys(tokens, 0.0)
    engine.generate(prompts[0], settings)  # warm-up
    for prompt in prompts:
        for cond in tokens:
            sampler = Sampler(meters, hz=20).start() if cond == "timeline" else None
            t0 = clock.now()
            if cond == "bare":
                g = engine.generate(prompt, settings)
            else:
                with profiler.window():
                    g = engine.generate(prompt, settings)
            seconds[cond] += clock.now() - t0
            tokens[cond] += g.output_tokens
            if sampler:
                sampler.stop()
    print(f"engine: {name}, {len(prompts)} queries x 3 conditions, max {args.max_tokens} tokens")
    base_rate = tokens["bare"] / seconds["bare"]
    print(f"{'condition':>10} {'tokens':>7} {'tokens/s':>9} {'ratio to bare':>14}")
    for cond in tokens:
        rate = tokens[cond] / seconds[cond]
        print(f"{cond:>10} {tokens[cond]:>7} {rate:>9.2f} {rate / base_rate:>14.4f}")
    for m in meters:
        m.close()
    engine.close()


if __name__ == "__main__":
    main()
