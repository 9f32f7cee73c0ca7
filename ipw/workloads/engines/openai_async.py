"""Streaming answers from an OpenAI-compatible server, many at once, on an asyncio event loop.

:class:`AsyncOpenAIClient` wraps an :class:`~ipw.workloads.engines.openai.OpenAIEngine` and asks
the same questions the same way (same request options, same chunk parsing ``_delta``, same usage
rule, same error messages ``_error`` and redaction, same :class:`~ipw.workloads.retry.RetryPolicy`),
through ``openai.AsyncOpenAI`` so that N requests stream at once on one event loop.

Token times are stamped with :func:`ipw.profilers.base.now` when a chunk is handed over on the
loop, as the sync engine stamps them; with N streams on one loop a chunk waits at most for the
other streams' chunks ahead of it (a few tens of microseconds each for parsing).

Every attempt, failed or not, is reported to the caller (a :class:`~ipw.workloads.engines.attempts.Tracker`) with its span and
token times: the server worked on a failed attempt too, and the attribution rule charges that work
to the query. Retries follow the policy: a transient failure (a refused concurrent stream, a 429 or
5xx, a stream dropped mid-answer) waits ``delays()`` and tries again within the deadline; 401/403
raise :class:`~ipw.workloads.retry.AuthError` (the run stops); anything else fails the query.
"""

from __future__ import annotations

import asyncio
import time

import openai

from ipw.profilers import base as clock
from ipw.workloads.engines.attempts import Attempt, Tracker
from ipw.workloads.engines.base import Generation, GenerationSettings
from ipw.workloads.engines.openai import KEY_PLACEHOLDER, TRANSPORT_ERRORS, EngineError, OpenAIEngine
from ipw.workloads.retry import AuthError, is_fatal, is_transient


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
                e.attempts = tries
                if is_fatal(e):
                    raise AuthError(f"{e} -- the server refused the credentials; check the key in "
                                    f"${self.engine.api_key_env} (the run stops here)", e.status_code) from None  # fmt: skip
                delay = next(delays, None) if is_transient(e) else None
                if delay is None or time.monotonic() + delay >= deadline:
                    if tries > 1:
                        e.args = (f"{e} (after {tries} tries)",)
                    raise e from None
                await asyncio.sleep(delay)
                continue
            attempt.t_end_s = generation.t_end_s
            tracker.end(attempt)
            extra = dict(generation.extra, attempts=tries, token_times_s=list(attempt.token_times_s))
            return Generation(generation.text, generation.input_tokens, generation.output_tokens,
                              generation.t_start_s, generation.t_end_s, generation.t_first_token_s,
                              generation.t_last_token_s, generation.finish_reason, extra)  # fmt: skip

    async def _attempt(self, prompt: str, settings: GenerationSettings, deadline: float, attempt: Attempt) -> Generation:
        e = self.engine
        parts: list[str] = []
        times = attempt.token_times_s
        finish_reason = usage = error = None
        left = deadline - time.monotonic()
        timeout_s, by_deadline = (e.timeout_s, False) if left >= e.timeout_s else (max(left, 1e-3), True)
        html = False
        try:
            stream = await self.engine.create(self._client, prompt, settings, timeout_s)
            async with stream:
                response = getattr(stream, "response", None)
                html = response is not None and "text/html" in response.headers.get("content-type", "")
                async for chunk in stream:
                    t = clock.now()
                    if getattr(chunk, "usage", None) is not None:
                        usage = chunk.usage
                    for choice in chunk.choices or ():
                        text, reasoning = e._delta(choice)
                        if text or reasoning:
                            times.append(t)
                        if text:
                            parts.append(text)
                        finish_reason = choice.finish_reason or finish_reason
                    if time.monotonic() > deadline and finish_reason is None:
                        error = e._fail(f"the answer from server at {e.base_url} was not finished within "
                                        f"{e.policy.deadline_s:g} s (deadline_s) after {len(times)} chunks",
                                        transient=False)  # fmt: skip
                        break
        except (openai.OpenAIError, ValueError, AttributeError, TypeError, *TRANSPORT_ERRORS) as exc:
            error = e._error(exc, len(times), timeout_s, by_deadline)
        attempt.output_tokens = len(times)
        if error is not None:
            raise error
        t_end = clock.now()
        if finish_reason is None:
            if html:
                raise e._fail(f"server at {e.base_url} answered with an HTML page, not an event stream: is the "
                              "base URL the API root (it usually ends in /v1)?", transient=False)  # fmt: skip
            raise e._fail(f"the stream from server at {e.base_url} ended before the answer was finished "
                          f"(no finish_reason after {len(times)} chunks)", transient=True)  # fmt: skip
        if usage is not None:
            n_in, n_out, source = usage.prompt_tokens, usage.completion_tokens, "server usage"
        else:
            n_in, n_out, source = None, len(times), "streamed chunks"
        attempt.input_tokens, attempt.output_tokens = n_in, n_out
        text = "".join(parts)
        safe = e._redact(text)
        extra = {"token_count_source": source, "streamed_chunks": len(times)}
        if safe != text:
            extra["redacted"] = True
        return Generation(safe, n_in, n_out, attempt.t_start_s, t_end, times[0] if times else None,
                          times[-1] if times else None, e._redact(finish_reason), e._redact(extra))  # fmt: skip

    async def aclose(self) -> None:
        await self._client.close()
