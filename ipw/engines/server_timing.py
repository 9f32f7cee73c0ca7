"""What a server knows of its own timing: vLLM's Prometheus metrics around a level, llama.cpp's per-answer timings.

The client sees arrival times only (:mod:`ipw.engines.openai`), so a query waiting in the server's
queue looks like a long prefill. Servers that say more:

- **vLLM** serves Prometheus text at ``/metrics`` (beside ``/v1``): per-request histograms of the time
  each finished request spent queued, in prefill and in decode (``vllm:request_queue_time_seconds``,
  ``vllm:request_prefill_time_seconds``, ``vllm:request_decode_time_seconds``,
  ``vllm:request_inference_time_seconds``), and gauges of the requests running and waiting now
  (``vllm:num_requests_running``, ``vllm:num_requests_waiting``). Per request they are not exposed;
  the difference of a histogram's ``_sum`` and ``_count`` between two scrapes is the total and the
  number of requests that finished in between, so their ratio is the mean over those requests.
  :class:`MetricsWatch` scrapes once before a level's queries, every ``interval_s`` while they run
  (the gauges) and once after: the level's mean queue, prefill and decode times, and the mean and
  largest number of requests running and waiting. Every request the server finished in that window
  counts, another client's too: ``requests`` says how many there were.
- **llama.cpp's** ``llama-server`` puts a ``timings`` object on the last chunk of each streamed
  answer (``prompt_n``, ``prompt_ms``, ``predicted_n``, ``predicted_ms``, ``cache_n``; its
  ``server_task_result_cmpl_final::to_json_oaicompat_chat_stream``): :func:`llama_cpp_timing` turns
  it into that answer's prefill and decode time. It has no queue time. (llama-cpp-python's server
  sends neither.)

Parsing: ``prometheus_client``'s text parser where it is installed (it comes with ray and other
extras, not with ipw itself); else :func:`parse_text`, a reader of the few lines needed (samples
``name{labels} value``, comments skipped), written here so that ipw does not depend on it.
"""

from __future__ import annotations

import math
import os
import threading
import urllib.error
import urllib.request

from ipw.core.errors import IpwError

HISTOGRAMS = {"queue": "vllm:request_queue_time_seconds", "prefill": "vllm:request_prefill_time_seconds",
              "decode": "vllm:request_decode_time_seconds", "inference": "vllm:request_inference_time_seconds"}  # fmt: skip
GAUGES = {"running": "vllm:num_requests_running", "waiting": "vllm:num_requests_waiting"}
SCRAPE_TIMEOUT_S = 2.0


class ServerMetricsError(IpwError):
    """A metrics endpoint that cannot be read (absent, not Prometheus text, no vLLM histograms)."""


def metrics_url(base_url: str) -> str:
    """vLLM's metrics beside its API: ``http://host:8000/v1`` -> ``http://host:8000/metrics``."""
    base = base_url.rstrip("/")
    return (base[: -len("/v1")] if base.endswith("/v1") else base) + "/metrics"


def parse_text(text: str) -> dict[str, float]:
    """Prometheus text -> {sample name: value summed over its label sets}. Comment lines are skipped;
    a value of NaN is kept. The reader used without ``prometheus_client`` (see the module docstring)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            rest = rest.rsplit("}", 1)[1]
        else:
            name, _, rest = line.partition(" ")
        parts = rest.split()
        if not parts:
            raise ServerMetricsError(f"not Prometheus text: {line[:120]!r}")
        out[name.strip()] = out.get(name.strip(), 0.0) + float(parts[0])
    return out


def parse(text: str) -> dict[str, float]:
    """{sample name: value summed over label sets}, by ``prometheus_client`` when installed."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        return parse_text(text)
    out: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[s.name] = out.get(s.name, 0.0) + float(s.value)
    except ValueError as e:
        raise ServerMetricsError(f"not Prometheus text: {e}") from None
    return out


def scrape(url: str, api_key_env: str | None = None, timeout_s: float = SCRAPE_TIMEOUT_S) -> dict[str, float]:
    """One reading of ``url`` (the key in ``$api_key_env``, if set, sent as a bearer token)."""
    key = os.environ.get(api_key_env or "", "")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            text = answer.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ServerMetricsError(f"{url}: {type(e).__name__}: {str(e)[:200]}") from None
    values = parse(text)
    if f"{HISTOGRAMS['queue']}_count" not in values:
        raise ServerMetricsError(f"{url} has no {HISTOGRAMS['queue']} histogram (not a vLLM server)")
    return values


def level_delta(before: dict[str, float], after: dict[str, float]) -> dict:
    """Requests finished between two scrapes and their mean and total queue, prefill, decode and
    inference times [s] (histogram ``_sum`` and ``_count`` differences)."""
    count = after[f"{HISTOGRAMS['queue']}_count"] - before[f"{HISTOGRAMS['queue']}_count"]
    out: dict = {"requests": int(round(count))}
    for short, name in HISTOGRAMS.items():
        n = after.get(f"{name}_count", math.nan) - before.get(f"{name}_count", math.nan)
        total = after.get(f"{name}_sum", math.nan) - before.get(f"{name}_sum", math.nan)
        out[f"{short}_total_s"] = total if math.isfinite(total) else None
        out[f"{short}_mean_s"] = total / n if math.isfinite(total) and n > 0 else None
    return out


class MetricsWatch:
    """Scrapes vLLM's ``/metrics`` around a level (see the module docstring): :meth:`start` before the
    queries, :meth:`stop` after; :meth:`summary` is what the manifest's serving session keeps."""

    def __init__(self, url: str, api_key_env: str | None = None, interval_s: float = 1.0) -> None:
        self.url, self.api_key_env, self.interval_s = url, api_key_env, interval_s
        self.first: dict | None = None
        self.last: dict | None = None
        self.reason: str | None = None
        self.gauges: dict[str, list[float]] = {k: [] for k in GAUGES}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self) -> dict | None:
        try:
            values = scrape(self.url, self.api_key_env)
        except ServerMetricsError as e:
            self.reason = str(e)
            return None
        for short, name in GAUGES.items():
            if name in values:
                self.gauges[short].append(values[name])
        return values

    def start(self) -> MetricsWatch:
        self.first = self._read()
        if self.first is not None:
            self._thread = threading.Thread(target=self._poll, name="ipw-server-metrics", daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._read()

    def stop(self) -> dict:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=SCRAPE_TIMEOUT_S + self.interval_s)
            self.last = self._read()
        return self.summary()

    def summary(self) -> dict:
        if self.first is None or self.last is None:
            return {"source": "vllm /metrics", "url": self.url, "available": False, "reason": self.reason}
        out = {"source": "vllm /metrics", "url": self.url, "available": True, **level_delta(self.first, self.last)}
        for short, values in self.gauges.items():
            out[f"{short}_mean"] = sum(values) / len(values) if values else None
            out[f"{short}_max"] = max(values) if values else None
        out["scrapes"] = len(self.gauges["running"])
        return out


def watch(base_url: str, api_key_env: str | None = None, interval_s: float = 1.0) -> MetricsWatch:
    """A started :class:`MetricsWatch` of the server at ``base_url`` (its summary says why not, where
    the server has no vLLM metrics)."""
    return MetricsWatch(metrics_url(base_url), api_key_env, interval_s).start()


def llama_cpp_timing(chunk) -> dict | None:
    """One answer's server-side times [s] from llama.cpp's ``timings`` (a streamed chunk's extra
    field); None where the chunk has none."""
    extra = getattr(chunk, "model_extra", None) or {}
    t = extra.get("timings")
    if not isinstance(t, dict) or "prompt_ms" not in t:
        return None
    out = {"source": "llama.cpp timings", "prefill_s": float(t["prompt_ms"]) / 1e3,
           "decode_s": float(t.get("predicted_ms", math.nan)) / 1e3}  # fmt: skip
    for src, dst in (("prompt_n", "prefill_tokens"), ("predicted_n", "decoded_tokens"), ("cache_n", "cached_tokens")):
        if t.get(src) is not None:
            out[dst] = int(t[src])
    return out
