"""How many output tokens a streamed answer had: the chunks received, beside what the server says.

ipw times tokens by the chunks that carry generated text (:mod:`ipw.engines.openai`), and its TPOT
and inter-token latencies (:mod:`ipw.core.latency`) divide the time between the first and the last
of them by their own count. So ``output_tokens`` is that count, whatever the server's convention:
servers differ in what ``usage.completion_tokens`` counts. vLLM counts the end-of-answer token,
which streams no text, so its count is one more than the chunks; ``(t_last - t_first) / (n - 1)``
with the server's ``n`` then divides the streamed span by one interval too many (TPOT 11% low on
the default query set's short answers, docs/engines.md). llama.cpp's servers and ipw's local engines leave
that token out, so the chunk count also makes ``output_tokens`` agree across engines.

The server's own count is kept beside it (``extra["server_output_tokens"]``), and where the two
differ the answer carries the flag :data:`MISMATCH` (the record's ``flags``) and the difference
``extra["token_count_mismatch"]`` (server minus chunks). A difference of +1 with ``finish_reason ==
"stop"`` is the end-of-answer token; a larger one means chunks that carry several tokens (a server
that batches its stream, e.g. vLLM's ``--stream-interval``, or speculative decoding): there the chunk
count is below the tokens generated and per-token figures are per chunk, which the flag says.
"""

from __future__ import annotations

MISMATCH = "token-count-mismatch"
"""The flag of an answer whose streamed chunks and server count disagree."""


def streamed_counts(streamed: int, usage) -> tuple[int | None, int, dict]:
    """(input tokens, output tokens, extra) of an answer that streamed ``streamed`` timed chunks, with
    the server's ``usage`` (an object with ``prompt_tokens`` and ``completion_tokens``, or None)."""
    extra = {"token_count_source": "streamed chunks", "streamed_chunks": streamed}
    if usage is None:
        return None, streamed, extra
    server = getattr(usage, "completion_tokens", None)
    extra["server_output_tokens"] = server
    if server is not None and server != streamed:
        extra |= {"token_count_mismatch": server - streamed, "flags": [MISMATCH]}
    return getattr(usage, "prompt_tokens", None), streamed, extra
