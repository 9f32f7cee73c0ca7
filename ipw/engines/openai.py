"""Any OpenAI-compatible server (vLLM, llama.cpp's server, llama-cpp-python's, Ollama) through the
official ``openai`` client, streaming.

``chat=True`` posts the prompt as one user message to ``/chat/completions`` (the server applies its
chat template); ``chat=False`` posts it as plain text to ``/completions``.

Token times: every chunk that carries generated text is stamped with
:func:`ipw.core.clock.now` when the client hands it over, so these are arrival times on this
machine (network and server buffering included), not the server's sampling times. Chunks that
carry only a role, a finish reason or usage are not tokens. Reasoning text (``reasoning_content``
or ``reasoning`` deltas, as vLLM and Ollama send) is timed as generated tokens but not returned.

Token counts (:mod:`ipw.engines.token_counts`): ``output_tokens`` is the number of timed chunks,
one chunk taken as one token, so that TPOT and inter-token latencies divide the streamed span by
its own count whatever the server counts. The request asks for ``stream_options={"include_usage":
True}``; a server that honours it (vLLM, OpenAI, recent llama.cpp ``llama-server`` and Ollama) sends
a last chunk with ``usage``: ``input_tokens`` is its ``prompt_tokens``, its ``completion_tokens`` is
kept as ``extra["server_output_tokens"]``, and an answer where it differs from the chunks is flagged
``token-count-mismatch``. A server that ignores it (llama-cpp-python's server) sends no usage:
``input_tokens`` is None (unknown). A server that rejects the field outright can be used with
``include_usage=False``.

The API key is read from the environment variable ``api_key_env`` at each request and passed as
that request's ``Authorization`` header; the client itself holds only a placeholder, and the key is
never kept by this engine, written to ``describe()``, an error message or a log line (the client
redacts that header in its own debug logs). With the variable unset or empty, no ``Authorization``
header is sent (local servers rarely want one).

Failures and retries (:mod:`ipw.engines.retry`, defaults there): a transient failure (a timeout,
HTTP 408/409/425/429/5xx, a refused or reset connection, a stream that breaks off, is malformed or
ends without a finish reason) is tried again after a jittered exponential wait, up to ``tries``
times in all, while the per-query ``deadline_s`` allows; ``timeout_s`` bounds each read
(connection, first byte, every chunk) and is cut to what is left of the deadline; once the stream
is open the deadline is kept by the clock (:mod:`ipw.engines.deadline`: a try still streaming at
the deadline is cut off then, however slowly its chunks arrive). HTTP 401/403
raises :class:`~ipw.engines.retry.AuthError`, which stops the run. A query that still fails
raises :class:`EngineError` (an :class:`ipw.core.errors.IpwError`, so the runner records it as that
query's error) with ``attempts`` set; a successful answer records its tries in
``extra["attempts"]``. The client's own exception is not chained (the error is raised outside the
``except`` block): it holds the request, whose headers carry the key.

Secrets (:mod:`ipw.engines.secrets`): error messages pass through :meth:`OpenAIEngine.redact`,
which replaces the key's value with ``[redacted]``. A :class:`Generation` holds the answer as the
server sent it, so that it is graded as sent; the run redacts it (text, ``extra``, grade) with the
same method before a record is built (``ipw.run.record.redact_record``), so a server that echoes
the request headers cannot put the key into a record. A key shorter than 8 characters or a common
placeholder is no secret and is not redacted (replacing "x" in every answer would change what is
graded); :meth:`OpenAIEngine.redaction_note` says so. A ``base_url`` carrying credentials
(``user:secret@`` or a query string) is refused (:func:`check_base_url`): it would be stored in
the manifest.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import replace
from urllib.parse import urlsplit

import openai

from ipw.core.errors import IpwError
from ipw.core import clock
from ipw.engines.base import Engine, Generation, GenerationSettings
from ipw.engines.deadline import Watchdog
from ipw.engines.retry import AuthError, RetryPolicy, is_fatal, is_transient
from ipw.engines.secrets import not_secret_reason, redact, secret_keys
from ipw.engines.server_timing import llama_cpp_timing
from ipw.engines.token_counts import streamed_counts

ERROR_BODY_CHARS = 300
# The client wants a key at construction; every request replaces it (see _auth_header).
KEY_PLACEHOLDER = "set-per-request-by-ipw"


class EngineError(IpwError):
    """A server did not give an answer; ``status_code`` is the HTTP status when there was one,
    ``transient`` whether trying again may help (None: the status decides), ``attempts`` the tries made."""

    def __init__(self, message: str, status_code: int | None = None, transient: bool | None = None) -> None:
        self.status_code = status_code
        self.transient = transient
        self.attempts = 1
        super().__init__(message)


def check_base_url(url: str) -> str:
    """``url`` without a trailing slash; refuses one that carries credentials (``user:pw@host``) or a
    query string or fragment, which would be stored in the run's manifest. The message never
    repeats the refused part."""
    parts = urlsplit(str(url).strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise IpwError(f"base URL must look like http://HOST:PORT/v1 (got scheme {parts.scheme!r})")
    where = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
    if parts.username is not None or parts.password is not None:
        raise IpwError(f"base URL {where} carries credentials (user:secret@host): they would be stored in the "
                       "run's manifest. Put the key in an environment variable and name it with --api-key-env")  # fmt: skip
    if parts.query or parts.fragment:
        raise IpwError(f"base URL {where} has a query string or fragment, which may carry a key and would be "
                       "stored in the run's manifest; give the URL without it (the key goes in --api-key-env)")  # fmt: skip
    return str(url).strip().rstrip("/")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP library's own errors, which can escape the client while a stream is being read."""
    found: list[type[BaseException]] = []
    for name in ("httpx2", "httpx"):  # openai 3.x uses httpx2, 1.x and 2.x httpx
        try:
            found.append(__import__(name).HTTPError)
        except (ImportError, AttributeError):
            pass
    return tuple(found)


TRANSPORT_ERRORS = _transport_errors()


def _is_timeout(error: BaseException) -> bool:
    return isinstance(error, openai.APITimeoutError) or "Timeout" in type(error).__name__


class StreamedAnswer:
    """One try's streamed answer as it arrives, for the sync and the async client alike: token times
    (stamped when a chunk with text or reasoning arrives), text, usage and finish reason; then the
    checks of a finished answer and its :class:`Generation` (the text as the server sent it: the run
redacts it after grading)."""

    def __init__(self, engine: OpenAIEngine, deadline: float, times: list[float] | None = None) -> None:
        self.engine, self.deadline = engine, deadline
        self.t_start = clock.now()
        self.times: list[float] = [] if times is None else times
        self.parts: list[str] = []
        self.usage = self.finish_reason = self.server_timing = None
        self.html = False

    def opened(self, stream) -> None:
        response = getattr(stream, "response", None)
        self.html = response is not None and "text/html" in response.headers.get("content-type", "")

    def feed(self, chunk) -> EngineError | None:
        """Take one chunk; the deadline's error once the per-query deadline passed unfinished."""
        t = clock.now()
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        self.server_timing = llama_cpp_timing(chunk) or self.server_timing
        for choice in chunk.choices or ():  # one choice (n=1); none in the usage chunk
            text, reasoning = self.engine._delta(choice)
            if text or reasoning:
                self.times.append(t)
            if text:
                self.parts.append(text)
            self.finish_reason = choice.finish_reason or self.finish_reason
        if time.monotonic() > self.deadline and self.finish_reason is None:
            return self.engine.past_deadline(len(self.times))
        return None

    def generation(self, t_end: float) -> Generation:
        """The finished answer; an :class:`EngineError` when the stream ended without a finish reason."""
        e, times = self.engine, self.times
        if self.finish_reason is None:
            if self.html:
                raise e._fail(f"server at {e.base_url} answered with an HTML page, not an event stream: is the "
                              "base URL the API root (it usually ends in /v1)?", transient=False)  # fmt: skip
            raise e._fail(f"the stream from server at {e.base_url} ended before the answer was finished "
                          f"(no finish_reason after {len(times)} chunks)", transient=True)  # fmt: skip
        n_in, n_out, extra = streamed_counts(len(times), self.usage)
        if self.server_timing is not None:  # llama.cpp's own prefill and decode times (ipw.engines.server_timing)
            extra["server_timing"] = self.server_timing
        return Generation("".join(self.parts), n_in, n_out, self.t_start, t_end, times[0] if times else None,
                          times[-1] if times else None, self.finish_reason, extra)  # fmt: skip


class OpenAIEngine(Engine):
    name = "openai"
    in_process = False

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 60.0,
                 chat: bool = True, include_usage: bool = True, tries: int = 3, backoff_s: float = 1.0,
                 deadline_s: float = 300.0) -> None:  # fmt: skip
        if not timeout_s > 0:
            raise ValueError("timeout_s must be > 0")
        self.policy = RetryPolicy(tries=tries, backoff_s=backoff_s, read_timeout_s=timeout_s, deadline_s=deadline_s)
        self.base_url = check_base_url(base_url)
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = float(timeout_s)
        self.chat = chat
        self.include_usage = include_usage
        self._rng = random.Random()
        self._client = openai.OpenAI(base_url=self.base_url, api_key=KEY_PLACEHOLDER, timeout=self.timeout_s, max_retries=0)

    def __repr__(self) -> str:
        return (
            f"OpenAIEngine(base_url={self.base_url!r}, model={self.model!r}, api_key_env={self.api_key_env!r}, "
            f"chat={self.chat})"
        )

    def _read_key(self) -> str:
        return os.environ.get(self.api_key_env, "")

    def _auth_header(self) -> dict:
        key = self._read_key()
        return {"Authorization": f"Bearer {key}" if key else openai.Omit()}

    def redact(self, value):
        """``value`` with the key replaced by ``[redacted]`` (see :mod:`ipw.engines.secrets`): the one
        redaction of error messages here and of every record the run stores. A key that is no secret
        (too short, a placeholder) is left in place."""
        return redact(value, secret_keys([self._read_key()], {KEY_PLACEHOLDER}))

    def redaction_note(self) -> str | None:
        """Why the key now in ``$api_key_env`` is not redacted, or None (a secret, or no key). Never the key."""
        reason = not_secret_reason(self._read_key(), {KEY_PLACEHOLDER})
        if reason is None:
            return None
        return (f"the API key in ${self.api_key_env} is not redacted from answers, errors or records: {reason}, "
                "and replacing it wherever it occurs would change answers that contain it (and their grades)")

    def create(self, client, prompt: str, settings: GenerationSettings, timeout_s: float):
        """Send one streaming request through ``client`` (this engine's, or an ``AsyncOpenAI`` one,
        whose call then returns an awaitable): the same options, whichever client sends them."""
        options = {
            "model": self.model,
            "max_tokens": settings.max_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "seed": settings.seed,
            "stream": True,
            "extra_headers": self._auth_header(),
            "timeout": timeout_s,
        }
        if settings.stop:
            options["stop"] = list(settings.stop)
        if self.include_usage:
            options["stream_options"] = {"include_usage": True}
        if self.chat:
            return client.chat.completions.create(messages=[{"role": "user", "content": prompt}], **options)
        return client.completions.create(prompt=prompt, **options)

    def _fail(self, message: str, status_code: int | None = None, transient: bool | None = None) -> EngineError:
        return EngineError(self.redact(message), status_code, transient)

    def past_deadline(self, chunks: int) -> EngineError:
        """The error of a try the per-query deadline ended (not retried: the query's time is spent)."""
        return self._fail(f"the answer from server at {self.base_url} was not finished within "
                          f"{self.policy.deadline_s:g} s (deadline_s) after {chunks} chunks", transient=False)  # fmt: skip

    def _error(self, e: BaseException, chunks: int, timeout_s: float, by_deadline: bool) -> EngineError:
        where = f"server at {self.base_url}"
        limit = f"the query's {self.policy.deadline_s:g} s deadline (deadline_s)" if by_deadline else f"{timeout_s:g} s (timeout_s)"
        if chunks and not isinstance(e, openai.APIStatusError):  # it had started answering
            reason = f"{type(e.__cause__ or e).__name__}: {e.__cause__ or e}"[:ERROR_BODY_CHARS]
            if _is_timeout(e):
                reason = f"no more data within {limit}"
            return self._fail(f"the answer from {where} broke off after {chunks} chunks: {reason}",
                              transient=not by_deadline)  # fmt: skip
        if _is_timeout(e):
            return self._fail(f"{where}: no answer within {limit}", transient=not by_deadline)
        if isinstance(e, openai.APIStatusError):
            detail = (e.message or str(e.body))[:ERROR_BODY_CHARS]
            return self._fail(f"{where} answered {e.status_code}: {detail}", status_code=e.status_code)
        if isinstance(e, openai.APIConnectionError):
            cause = e.__cause__ or e.__context__
            reason = f"{type(cause).__name__}: {cause}" if cause else str(e)
            return self._fail(f"could not reach {where}: {reason[:ERROR_BODY_CHARS]}", transient=True)
        if isinstance(e, openai.APIError):  # an error event inside the stream
            return self._fail(f"{where} sent an error: {e.message[:ERROR_BODY_CHARS]}", transient=False)
        if isinstance(e, (ValueError, AttributeError, TypeError)):  # malformed JSON or chunk shape
            return self._fail(f"{where} sent a malformed stream: {str(e)[:ERROR_BODY_CHARS]}", transient=True)
        reason = f"{type(e).__name__}: {e}"[:ERROR_BODY_CHARS]
        return self._fail(f"no answer from {where}: {reason}", transient=True)

    def generate(self, prompt: str, settings: GenerationSettings) -> Generation:
        """One answer, tried up to ``tries`` times within ``deadline_s`` (see the module docstring)."""
        deadline = time.monotonic() + self.policy.deadline_s
        delays = self.policy.delays(self._rng)
        attempt = 0
        while True:
            attempt += 1
            try:
                generation = self._attempt(prompt, settings, deadline)
            except EngineError as e:
                time.sleep(self.retry_delay(e, attempt, delays, deadline))
                continue
            return replace(generation, extra=dict(generation.extra, attempts=attempt))

    def retry_delay(self, e: EngineError, attempt: int, delays, deadline: float) -> float:
        """After failed try number ``attempt``: the wait [s] before the next try, or raise (an
        :class:`AuthError` for refused credentials; ``e`` itself when it is not transient, when the
        policy's tries are spent, or when the wait would pass the per-query deadline)."""
        e.attempts = attempt
        if is_fatal(e):
            raise AuthError(
                f"{e} -- the server refused the credentials; check the key in ${self.api_key_env} "
                "(the run stops here)", e.status_code) from None  # fmt: skip
        delay = next(delays, None) if is_transient(e) else None
        if delay is None or time.monotonic() + delay >= deadline:
            if attempt > 1:
                e.args = (f"{e} (after {attempt} tries)",)
            raise e from None
        return delay

    def _attempt(self, prompt: str, settings: GenerationSettings, deadline: float) -> Generation:
        timeout_s, by_deadline = self.read_timeout(deadline)
        answer = StreamedAnswer(self, deadline)
        error = watchdog = None
        try:
            with self.create(self._client, prompt, settings, timeout_s) as stream:
                answer.opened(stream)
                with Watchdog(stream, deadline) as watchdog:  # the deadline by the clock (ipw.engines.deadline)
                    for chunk in stream:
                        error = answer.feed(chunk)
                        if error is not None:
                            break
        except (openai.OpenAIError, ValueError, AttributeError, TypeError, *TRANSPORT_ERRORS) as e:
            error = self._error(e, len(answer.times), timeout_s, by_deadline)
        if watchdog is not None and watchdog.fired and answer.finish_reason is None:
            error = self.past_deadline(len(answer.times))
        if error is not None:  # raised here, outside the except block: no chained client error
            raise error
        return answer.generation(clock.now())

    def read_timeout(self, deadline: float) -> tuple[float, bool]:
        """The timeout of one try's reads [s], and whether the per-query deadline set it."""
        left = deadline - time.monotonic()
        return (self.timeout_s, False) if left >= self.timeout_s else (max(left, 1e-3), True)

    def _delta(self, choice) -> tuple[str, str]:
        """(answer text, reasoning text) carried by one streamed choice."""
        if not self.chat:
            return choice.text or "", ""
        delta = choice.delta
        if delta is None:
            return "", ""
        reasoning = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
        return delta.content or "", reasoning if isinstance(reasoning, str) else ""

    def describe(self) -> dict:
        return {
            "engine": self.name,
            "model": self.model,
            "base_url": self.base_url,
            "endpoint": "chat/completions" if self.chat else "completions",
            "chat_template": self.chat,
            "api_key_env": self.api_key_env,
            "timeout_s": self.timeout_s,
            "retry": self.policy.to_dict(),
            "include_usage": self.include_usage,
            "versions": {"openai": openai.__version__},
        }

    def close(self) -> None:
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()
