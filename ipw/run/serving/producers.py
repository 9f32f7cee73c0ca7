"""The producer threads: N requests in flight on an event loop (an OpenAI-compatible server), or batches of N (a local engine). Finished jobs go to the finaliser's queue."""

from __future__ import annotations

import asyncio
import logging
import queue

from ipw.core.errors import IpwError
from ipw.engines.openai_async import AsyncOpenAIClient
from ipw.engines.retry import AuthError
from ipw.run.serving.flight import Flight, Job

log = logging.getLogger(__name__)


def produce_async(engine, jobs: list[Job], warmup: list[Job], n: int, flight: Flight, out: queue.Queue) -> None:
    """Thread body: an event loop keeping ``n`` requests in flight; finished jobs go to ``out``."""
    async def run(todo: list[Job], report: bool) -> None:
        client = AsyncOpenAIClient(engine, n)
        pending = list(reversed(todo))

        async def worker() -> None:
            while pending and not flight.stop.is_set():
                job = pending.pop()
                try:
                    job.generation = await client.generate(job.prompt, job.settings, flight.for_job(job) if report else None)
                except AuthError as e:
                    flight.fatal = e
                    flight.stop.set()
                    job.error = e
                except IpwError as e:
                    job.error = e
                if report:
                    out.put(job)

        try:
            await asyncio.gather(*(worker() for _ in range(min(n, max(len(todo), 1)))))
        finally:
            await client.aclose()

    try:
        if warmup:
            asyncio.run(run(warmup, report=False))
            if flight.fatal is not None:
                return
        asyncio.run(run(jobs, report=True))
    except BaseException as e:  # noqa: BLE001 - handed to the main thread, which raises it
        flight.fatal = flight.fatal or e
        flight.stop.set()


def _common(batch: list[Job]):
    """The batch's settings with only the stop strings every query of it has (each query's own are
    applied to its row by the finaliser: queries of different graders stop differently)."""
    from dataclasses import replace

    first = batch[0].settings
    return replace(first, stop=tuple(s for s in first.stop if all(s in j.settings.stop for j in batch)))


def produce_batches(engine, jobs: list[Job], warmup: list[Job], n: int, flight: Flight, out: queue.Queue) -> None:
    """Thread body: batches of ``n`` through ``engine.generate_batch``; finished jobs go to ``out``."""
    try:
        if warmup:
            prompts = [warmup[i % len(warmup)].prompt for i in range(n)]
            try:
                engine.generate_batch(prompts, warmup[0].settings)
            except IpwError as e:
                log.warning("warm-up batch failed (the run goes on): %s", e)
        for i in range(0, len(jobs), n):
            if flight.stop.is_set():
                return
            batch = jobs[i:i + n]
            tracks = [flight.for_job(j) for j in batch]
            attempts = [t.begin() for t in tracks]
            try:
                generations = engine.generate_batch([j.prompt for j in batch], _common(batch))
            except IpwError as e:
                for job, track, attempt in zip(batch, tracks, attempts):
                    attempt.error = e
                    track.end(attempt)
                    job.error = e
                    out.put(job)
                continue
            for job, track, attempt, g in zip(batch, tracks, attempts, generations):
                attempt.t_start_s = min(attempt.t_start_s, g.t_start_s)
                attempt.t_end_s = g.t_end_s
                attempt.token_times_s = list(g.extra.get("token_times_s", ()))
                attempt.input_tokens, attempt.output_tokens = g.input_tokens, g.output_tokens
                track.end(attempt)
                job.generation = g
                out.put(job)
    except BaseException as e:  # noqa: BLE001 - handed to the main thread
        flight.fatal = flight.fatal or e
        flight.stop.set()
