"""Any OpenAI-compatible server (vLLM, llama.cpp's server, llama-cpp-python's, Ollama) through the
official ``openai`` client, streaming.

``chat=True`` posts the prompt as one user message to ``/chat/completions`` (the server applies its
chat template); ``chat=False`` posts it as plain text to ``/completions``.

Token times: every chunk that carries generated text is stamped with
:func:`ipw.profilers.base.now` when the client hands it over, so these are arrival times on this
machine (network and server buffering included), not the server's sampling times. Chunks that
carry only a role, a finish reason or usage are not tokens. Reasoning text (``reasoning_content``
or ``reasoning`` deltas, as vLLM and Ollama send) is timed as generated tokens but not returned.

Token counts: the request asks for ``stream_options={"include_usage": True}``; a server that
honours it (vLLM, OpenAI, recent llama.cpp ``llama-server`` and Ollama) sends a last chunk with
``usage``, and ``input_tokens``/``output_tokens`` are the server's own counts
(``extra['token_count_source'] == "server usage"``). A server that ignores it (llama-cpp-python's
server) sends no usage: ``output_tokens`` is then the number of text chunks, one chunk taken as
one token (``"streamed chunks"``), which is exact only where the server sends one token per chunk,
and ``input_tokens`` is None (unknown). A server that rejects the field outright can be used with
``include_usage=False``.

The API key is read from the environment variable ``api_key_env`` at each request and passed as
that request's ``Authorization`` header; the client itself holds only a placeholder, and the key is
never kept by this engine, written to ``describe()``, a :class:`Generation`, an error message or a
log line (the client redacts that header in its own debug logs). With the variable unset or empty,
no ``Authorization`` header is sent (local servers rarely want one).

Failures are :class:`EngineError` (an :class:`ipw.errors.IpwError`, so the runner records them as
that query's error): an HTTP error status (``status_code`` set), a timeout (``timeout_s`` bounds
the connection and each wait for data, not the whole answer), a refused connection, or a stream
that ends before a finish reason. The client's own exception is not chained (the error is raised
outside the ``except`` block): it holds the request, whose headers carry the key.
"""

from __future__ import annotations

import os

import openai

from ipw.errors import IpwError
from ipw.profilers import base as clock
from ipw.workloads.engines.base import Engine, Generation, GenerationSettings

ERROR_BODY_CHARS = 300
# The client wants a key at construction; every request replaces it (see _auth_header).
KEY_PLACEHOLDER = "set-per-request-by-ipw"


class EngineError(IpwError):
    """A server did not give an answer; ``status_code`` is the HTTP status when there was one."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


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


class OpenAIEngine(Engine):
    name = "openai"

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 60.0,
                 chat: bool = True, max_retries: int = 0, include_usage: bool = True) -> None:  # fmt: skip
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = float(timeout_s)
        self.chat = chat
        self.max_retries = max_retries
        self.include_usage = include_usage
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=KEY_PLACEHOLDER, timeout=self.timeout_s, max_retries=max_retries
        )

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

    def _redact(self, text: str) -> str:
        key = self._read_key()
        return text.replace(key, "[redacted]") if key else text

    def _request(self, prompt: str, settings: GenerationSettings):
        options = {
            "model": self.model,
            "max_tokens": settings.max_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "seed": settings.seed,
            "stream": True,
            "extra_headers": self._auth_header(),
        }
        if settings.stop:
            options["stop"] = list(settings.stop)
        if self.include_usage:
            options["stream_options"] = {"include_usage": True}
        if self.chat:
            return self._client.chat.completions.create(messages=[{"role": "user", "content": prompt}], **options)
        return self._client.completions.create(prompt=prompt, **options)

    def _error(self, e: BaseException, chunks: int) -> EngineError:
        where = f"server at {self.base_url}"
        if chunks and not isinstance(e, openai.APIStatusError):  # it had started answering
            reason = f"{type(e.__cause__ or e).__name__}: {e.__cause__ or e}"
            if _is_timeout(e):
                reason = f"no more data within {self.timeout_s:g} s (timeout_s)"
            return EngineError(
                f"the answer from {where} broke off after {chunks} chunks: {self._redact(reason)[:ERROR_BODY_CHARS]}"
            )
        if _is_timeout(e):
            return EngineError(f"{where}: no answer within {self.timeout_s:g} s (timeout_s)")
        if isinstance(e, openai.APIStatusError):
            detail = e.message or str(e.body)
            detail = self._redact(detail)[:ERROR_BODY_CHARS]
            return EngineError(f"{where} answered {e.status_code}: {detail}", status_code=e.status_code)
        if isinstance(e, openai.APIConnectionError):
            cause = e.__cause__ or e.__context__
            reason = f"{type(cause).__name__}: {cause}" if cause else str(e)
            return EngineError(f"could not reach {where}: {self._redact(reason)[:ERROR_BODY_CHARS]}")
        if isinstance(e, openai.APIError):  # an error event inside the stream
            return EngineError(f"{where} sent an error: {self._redact(e.message)[:ERROR_BODY_CHARS]}")
        if isinstance(e, ValueError):  # malformed JSON in a stream event
            return EngineError(f"{where} sent a malformed stream: {self._redact(str(e))[:ERROR_BODY_CHARS]}")
        reason = f"{type(e).__name__}: {e}"
        return EngineError(f"no answer from {where}: {self._redact(reason)[:ERROR_BODY_CHARS]}")

    def generate(self, prompt: str, settings: GenerationSettings) -> Generation:
        parts: list[str] = []
        times: list[float] = []
        finish_reason = usage = None
        error = None
        t_start = clock.now()
        try:
            with self._request(prompt, settings) as stream:
                for chunk in stream:
                    t = clock.now()
                    if getattr(chunk, "usage", None) is not None:
                        usage = chunk.usage
                    for choice in chunk.choices:  # one choice (n=1); none in the usage chunk
                        text, reasoning = self._delta(choice)
                        if text or reasoning:
                            times.append(t)
                        if text:
                            parts.append(text)
                        finish_reason = choice.finish_reason or finish_reason
        except (openai.OpenAIError, ValueError, *TRANSPORT_ERRORS) as e:
            error = self._error(e, len(times))
        if error is not None:  # raised here, outside the except block: no chained client error
            raise error
        t_end = clock.now()
        if finish_reason is None:
            raise EngineError(
                f"the stream from server at {self.base_url} ended before the answer was finished "
                f"(no finish_reason after {len(times)} chunks)"
            )
        if usage is not None:
            n_in, n_out, source = usage.prompt_tokens, usage.completion_tokens, "server usage"
        else:
            n_in, n_out, source = None, len(times), "streamed chunks"
        return Generation(
            text="".join(parts),
            input_tokens=n_in,
            output_tokens=n_out,
            t_start_s=t_start,
            t_end_s=t_end,
            t_first_token_s=times[0] if times else None,
            t_last_token_s=times[-1] if times else None,
            finish_reason=finish_reason,
            extra={"token_count_source": source, "streamed_chunks": len(times)},
        )

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
            "max_retries": self.max_retries,
            "include_usage": self.include_usage,
            "versions": {"openai": openai.__version__},
        }

    def close(self) -> None:
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()
