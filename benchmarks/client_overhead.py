"""What the serving regime costs the server's throughput: ipw at concurrency N against a plain client.

One llama-cpp-python server (the shipped default model, on 127.0.0.1, queueing concurrent requests)
is driven at each concurrency by three clients, interleaved repeat by repeat so that drift in the
machine's load hits all alike:

  plain    a bare ``openai.AsyncOpenAI`` streaming loop with N tasks (no ipw at all)
  client   ipw's async client (:class:`ipw.engines.openai_async.AsyncOpenAIClient`)
           with its attempt tracking, on the same event-loop layout
  profile  ``ipw profile --concurrency N`` end to end (runner, 20 Hz timeline, attribution,
           grading, records stored): the plain client's work plus everything ipw adds

Throughput is output tokens (streamed chunks) over the span from the first request sent to the
last answer ended. Prints tokens/s per client and the ratio to plain (goal: >= 0.99), and the
client process's CPU time per token (all its threads: event loop, timeline sampler, grading,
store), which a loaded machine disturbs less than throughput.
Usage: python benchmarks/client_overhead.py [--levels 1,4] [--queries 8] [--max-tokens 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import openai

from ipw.core.clock import now
from ipw.engines import GenerationSettings
from ipw.engines.openai import OpenAIEngine
from ipw.queries.prompts import render_prompt
from ipw.queries.querysets import load_queryset

KEY_ENV = "IPW_BENCH_KEY"


def start_server(port: int, key: str) -> subprocess.Popen:
    from ipw.engines.models import default_model_path

    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()), "--model_alias", "smollm",
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1",
           "--verbose", "False", "--api_key", key, "--interrupt_requests", "False"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {key}"})
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(req, timeout=1):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("llama_cpp.server did not start (pip install 'llama-cpp-python[server]')")


async def plain(url: str, key: str, prompts: list[str], n: int, max_tokens: int) -> tuple[int, float]:
    client = openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0)
    todo = list(reversed(prompts))
    tokens = 0
    t0 = now()

    async def worker() -> None:
        nonlocal tokens
        while todo:
            prompt = todo.pop()
            stream = await client.chat.completions.create(  # the request ipw sends, option for option
                model="smollm", messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0.0,
                top_p=1.0, seed=0, stream=True, stream_options={"include_usage": True})
            async with stream:
                async for chunk in stream:
                    for choice in chunk.choices or ():
                        if choice.delta and choice.delta.content:
                            tokens += 1

    await asyncio.gather(*(worker() for _ in range(n)))
    span = now() - t0
    await client.close()
    return tokens, span


async def ipw_client(engine: OpenAIEngine, prompts: list[str], n: int, max_tokens: int) -> tuple[int, float]:
    from ipw.run.serving.flight import Flight, Job
    from ipw.engines.openai_async import AsyncOpenAIClient

    client = AsyncOpenAIClient(engine, n)
    settings = GenerationSettings(max_tokens=max_tokens)
    flight = Flight()
    todo = list(reversed(prompts))
    tokens = 0
    t0 = now()

    async def worker() -> None:
        nonlocal tokens
        while todo:
            prompt = todo.pop()
            job = Job(type("Q", (), {"id": prompt})(), prompt, settings)
            g = await client.generate(prompt, settings, flight.for_job(job))
            tokens += g.extra["streamed_chunks"]

    await asyncio.gather(*(worker() for _ in range(n)))
    span = now() - t0
    await client.aclose()
    return tokens, span


def ipw_profile(engine: OpenAIEngine, queryset: Path, n: int, max_tokens: int, runs: Path, run_id: str) -> tuple[int, float]:
    from ipw.store import load
    from ipw.run import runner

    config = runner.RunConfig(engine="openai", queries=str(queryset), settings=GenerationSettings(max_tokens=max_tokens),
                              warmup=0, idle_s=0.0, runs_dir=str(runs), run_id=run_id, concurrency=n)  # fmt: skip
    q = load(runner.profile(config, engine=engine).path).queries
    extra = q["engine_extra"].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    starts = extra.map(lambda e: e["t_start_s"])
    return int(extra.map(lambda e: e["streamed_chunks"]).sum()), float((starts + q["e2e_s"]).max() - starts.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,4")
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key = "sk-bench-" + secrets.token_hex(8)
    import os

    os.environ[KEY_ENV] = key
    url = f"http://127.0.0.1:{port}/v1"
    proc = start_server(port, key)
    tmp = Path(tempfile.mkdtemp(prefix="ipw-client-overhead-"))
    queries = load_queryset("default").queries[: args.queries]
    prompts = [render_prompt(q) for q in queries]
    qfile = tmp / "q.jsonl"
    qfile.write_text("".join(json.dumps({"id": q.id, "prompt": q.prompt, "answer": q.answer, "grader": q.grader,
                                         "domain": q.domain, **({"choices": q.choices} if q.choices else {})}) + "\n"
                             for q in queries))  # fmt: skip
    engine = OpenAIEngine(url, "smollm", api_key_env=KEY_ENV, timeout_s=120, deadline_s=600)
    try:
        asyncio.run(plain(url, key, prompts[:2], 1, 4))  # warm the server
        print(f"llama-cpp-python server, default model, {args.queries} queries x {args.max_tokens} tokens, "
              f"{args.repeats} interleaved repeats")  # fmt: skip
        for n in [int(x) for x in args.levels.split(",")]:
            rates: dict[str, list[float]] = {"plain": [], "client": [], "profile": []}
            cpu: dict[str, list[float]] = {name: [] for name in rates}
            for r in range(args.repeats):
                for name in rates:
                    c0 = time.process_time()
                    if name == "plain":
                        tok, span = asyncio.run(plain(url, key, prompts, n, args.max_tokens))
                    elif name == "client":
                        tok, span = asyncio.run(ipw_client(engine, prompts, n, args.max_tokens))
                    else:
                        tok, span = ipw_profile(engine, qfile, n, args.max_tokens, tmp / "runs", f"c{n}-r{r}")
                    rates[name].append(tok / span)
                    cpu[name].append((time.process_time() - c0) / tok * 1e3)
            base = statistics.median(rates["plain"])
            for name, values in rates.items():
                med = statistics.median(values)
                print(f"concurrency {n:>2}  {name:<8} {med:8.2f} tokens/s  ratio to plain {med / base:.3f}  "
                      f"client CPU {statistics.median(cpu[name]):.3f} ms/token  "
                      f"(repeats: {', '.join(f'{v:.2f}' for v in values)})")  # fmt: skip
    finally:
        engine.close()
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
