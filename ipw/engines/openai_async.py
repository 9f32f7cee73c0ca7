"""Streaming answers from an OpenAI-compatible server, many at once, on an asyncio event loop.

:class:`AsyncOpenAIClient` wraps an :class:`~ipw.engines.openai.OpenAIEngine` and asks
the same questions the same way (same request options, same chunk parsing ``_delta``, same usage
rule, same error messages ``_error`` and redaction, same :class:`~ipw.engines.retry.RetryPolicy`),
through ``openai.AsyncOpenAI`` so that N requests stream at once on one event loop.

Token times are stamped with :func:`ipw.core.clock.now` when a chunk is handed over on the
loop, as the sync engine stamps them; with N streams on one loop a chunk waits at most for the
other streams' chunks ahead of it (a few tens of microseconds each for parsing).

Every attempt, failed or not, is reported to the caller (a :class:`~ipw.engines.attempts.Tracker`) with its span and
token times: the server worked on a failed attempt too, and the attribution rule charges that work
to the query. Retries follow the policy: a transient failure (a refused concurrent stream, a 429 or
5xx, a stream dropped mid-answer) waits ``delays()`` and tries again within the deadline, which
the clock keeps (a try still streaming at the deadline is cancelled then); 401/403
raise :class:`~ipw.engines.retry.AuthError` (the run stops); anything else fails the query.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import openai

from ipw.core import clock
from ipw.engines.attempts import Attempt, Tracker
from ipw.engines.base import Generation, GenerationSettings
from ipw.engines.deadline import PastDeadline, within
from ipw.engines.openai import KEY_PLACEHOLDER, TRANSPORT_ERRORS, EngineError, OpenAIEngine, StreamedAnswer


class AsyncOpenAIClient:
    """Concurrent streaming answers from ``engine``'s server (see the module docstring)."""

    def __init__(self, engine: OpenAIEngine, connections: int = 64) -> None:
        self.engine = engine
        limits = openai._constants.DEFAULT_CONNECTION_LIMITS
        http = openai.DefaultAsyncHttpxClient(
            limits=type(limits)(max_connections=max(connections, 1) * 2, max_keepalive_connections=max(connections, 1))
        )
        self._client = openai.AsyncOpenAI(base_url=engine.base_url, api_key=KEY_PLACEHOLDER,
                                          timeout=engine.timeout_s, max_retries=0, http_client=http)  # fmt: skip

    async def generate(self, prompt: str, settings: GenerationSettings, tracker: Tracker | None = None) -> Generation:
        """One answer, tried as the engine's policy says; every attempt is reported to ``tracker``."""
        tracker = tracker or Tracker()
        policy = self.engine.policy
        deadline = time.monotonic() + policy.deadline_s
        delays = policy.delays(self.engine._rng)
        tries = 0
        while True:
            tries += 1
            attempt = tracker.begin()
            try:
                generation = await self._attempt(prompt, settings, deadline, attempt)
            except EngineError as e:
                attempt.t_end_s, attempt.error = clock.now(), e
                tracker.end(attempt)
                await asyncio.sleep(self.engine.retry_delay(e, tries, delays, deadline))
                continue
            attempt.t_end_s = generation.t_end_s
            tracker.end(attempt)
            extra = dict(generation.extra, attempts=tries, token_times_s=list(attempt.token_times_s))
            return Generation(generation.text, generation.input_tokens, generation.output_tokens,
                              generation.t_start_s, generation.t_end_s, generation.t_first_token_s,
                              generation.t_last_token_s, generation.finish_reason, extra)  # fmt: skip

    async def _attempt(self, prompt: str, settings: GenerationSettings, deadline: float, attempt: Attempt) -> Generation:
        """One try, cancelled at the per-query deadline by the clock (:func:`ipw.engines.deadline.within`)."""
        answer = StreamedAnswer(self.engine, deadline, attempt.token_times_s)
        try:
            return await within(deadline, self._stream(prompt, settings, deadline, attempt, answer))
        except PastDeadline:
            attempt.output_tokens = len(answer.times)
            raise self.engine.past_deadline(len(answer.times)) from None

    async def _stream(self, prompt: str, settings: GenerationSettings, deadline: float, attempt: Attempt,
                      answer: StreamedAnswer) -> Generation:  # fmt: skip
        e = self.engine
        timeout_s, by_deadline = e.read_timeout(deadline)
        error = None
        try:
            stream = await e.create(self._client, prompt, settings, timeout_s)
            async with stream:
                answer.opened(stream)
                async for chunk in stream:
                    error = answer.feed(chunk)
                    if error is not None:
                        break
        except (openai.OpenAIError, ValueError, AttributeError, TypeError, *TRANSPORT_ERRORS) as exc:
            error = e._error(exc, len(answer.times), timeout_s, by_deadline)
        attempt.output_tokens = len(answer.times)
        if error is not None:
            raise error
        generation = answer.generation(clock.now())
        attempt.input_tokens, attempt.output_tokens = generation.input_tokens, generation.output_tokens
        attempt.server_prefill_s = (generation.extra.get("server_timing") or {}).get("prefill_s")
        return replace(generation, t_start_s=attempt.t_start_s)

    async def aclose(self) -> None:
        await self._client.close()
