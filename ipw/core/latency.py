"""Latency definitions, one place: TTFT, TPOT (ipw's and vLLM's), inter-token latencies.

All times are seconds on ipw's one monotonic clock (:func:`ipw.core.clock.now`). A query
starts at ``t_start`` (the request is sent), its output tokens arrive at ``t_1 <= ... <= t_n``, and
it ends at ``t_end`` (the answer is complete: the stream closed, the text decoded).

- **TTFT** = ``t_1 - t_start``.
- **TPOT** (ipw, the IPW paper's definition, arXiv 2511.07885, section 3, and what every record's
  ``tpot_s`` holds) = ``(t_n - t_1) / (n - 1)``: the decode time per token after the first.
  Undefined for ``n < 2``. ``n`` is the number of timed tokens, the same tokens whose times are
  ``t_1 .. t_n``, never a count from elsewhere: a server's ``usage`` may count a token that was not
  streamed (vLLM counts the end-of-answer token), and dividing the streamed span by it would put one
  interval too many in the denominator (:mod:`ipw.engines.token_counts`). So TPOT is exactly the
  mean inter-token latency of the query.
- **TPOT (vLLM)** = ``(e2e - TTFT) / (n - 1)`` with ``e2e = t_end - t_start``
  (``vllm/benchmarks/serve.py``, ``calculate_metrics``: ``(latency - ttft) / (output_len - 1)``).
  It is ``(t_end - t_1) / (n - 1)``: ipw's TPOT plus ``(t_end - t_n) / (n - 1)``, the time after
  the last token (the final chunks, the stream's close, detokenising) spread over the tokens. So
  ``tpot_vllm_s >= tpot_s`` always; they differ by the tail, which is small on a streaming
  server and large where answers are returned whole (a static batch waits for its longest row).
  (vLLM's own client ends ``latency`` at the last chunk that carries a choice, before the stream
  closes; ipw's ``t_end`` is the end of the answer as the caller gets it.)
- **ITL** (inter-token latency): the gaps ``t_{k+1} - t_k`` between consecutive timed tokens.
  Percentiles pool every gap of every query, as vLLM's benchmark does. Where a server sends
  several tokens in one chunk, the gaps are between chunks.

ipw picks its TPOT for records, summaries and the serving frontier (it does not depend on
how a client tears a stream down); the vLLM figure is reported beside it, named ``tpot_vllm_s``,
for comparison with vLLM and ML.ENERGY numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ipw.core.errors import IpwError

ITL_PERCENTILES = (50.0, 90.0, 99.0)


class LatencyError(IpwError, ValueError):
    """Token times that cannot be a query's (out of order, before its start)."""


def _check(t_start: float, times: Sequence[float], t_end: float | None = None) -> None:
    seq = [t_start, *times] + ([t_end] if t_end is not None else [])
    if any(b < a for a, b in zip(seq, seq[1:])):
        raise LatencyError(f"times must be non-decreasing from start through every token to end: {seq[:6]}...")


def ttft_between_s(t_start: float, t_first: float | None) -> float | None:
    """Time to first token [s] = t_first - t_start; None without a token."""
    return None if t_first is None else t_first - t_start


def tpot_between_s(t_first: float | None, t_last: float | None, n: int) -> float | None:
    """ipw's TPOT [s/token] = (t_last - t_first) / (n - 1) over ``n`` output tokens; None for n < 2
    or without both token times. The one formula every TPOT of ipw comes from."""
    if n < 2 or t_first is None or t_last is None:
        return None
    return (t_last - t_first) / (n - 1)


def ttft_s(t_start: float, token_times: Sequence[float]) -> float | None:
    """Time to first token [s]; None without a token."""
    _check(t_start, token_times)
    return ttft_between_s(t_start, token_times[0] if len(token_times) else None)


def tpot_s(token_times: Sequence[float], output_tokens: int | None = None) -> float | None:
    """ipw's TPOT [s/token] (:func:`tpot_between_s`) from a query's token times; ``n`` is the timed
    tokens unless ``output_tokens`` is given (an engine that times only some of its tokens)."""
    n = len(token_times) if output_tokens is None else output_tokens
    if not len(token_times):
        return None
    return tpot_between_s(token_times[0], token_times[-1], n)


def tpot_vllm_s(e2e_s: float, ttft: float | None, output_tokens: int) -> float | None:
    """vLLM's TPOT [s/token] = (e2e - TTFT) / (n - 1); None for n < 2 or without a TTFT."""
    if ttft is None or output_tokens < 2:
        return None
    if e2e_s < ttft:
        raise LatencyError(f"end-to-end time {e2e_s} is shorter than the TTFT {ttft}")
    return (e2e_s - ttft) / (output_tokens - 1)


def inter_token_s(token_times: Sequence[float]) -> np.ndarray:
    """The gaps [s] between consecutive timed tokens of one query."""
    t = np.asarray(token_times, dtype=float)
    if np.any(np.diff(t) < 0):
        raise LatencyError("token times must be non-decreasing")
    return np.diff(t)


def pooled_itl_s(queries: Iterable[Sequence[float]]) -> np.ndarray:
    """Every inter-token gap [s] of every query, pooled."""
    gaps = [inter_token_s(t) for t in queries if len(t) >= 2]
    return np.concatenate(gaps) if gaps else np.array([])


def percentiles(values: Sequence[float] | np.ndarray, qs: Sequence[float] = ITL_PERCENTILES) -> dict[str, float]:
    """``{"p50": ..., "p90": ..., "p99": ...}`` (linear interpolation, numpy's default); NaN when empty."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return {f"p{q:g}": (float(np.percentile(v, q)) if len(v) else float("nan")) for q in qs}


def token_times_from_extra(extra: dict, t_start: float | None = None) -> tuple[float, tuple[float, ...]] | None:
    """(t_start, absolute token times) stored by the serving executor in a record's
    ``engine_extra`` (``t_start_s`` and ``token_offsets_s``); None when absent."""
    offsets = (extra or {}).get("token_offsets_s")
    start = (extra or {}).get("t_start_s", t_start)
    if offsets is None or start is None:
        return None
    return float(start), tuple(float(start) + float(o) for o in offsets)
