"""A stdlib OpenAI-compatible streaming server on 127.0.0.1, for runs through the real engine.

The first path segment picks the behaviour (``http://127.0.0.1:PORT/<mode>/v1``, or
``<mode>.<tag>``: requests are counted per segment, so a tag gives a test its own counts):

- ``ok``: streams the text after "ECHO:" in the prompt (else "ok"), a finish reason and usage;
- ``paced``: as ``ok``, waiting ``PACE_S`` before each chunk;
- ``eos``: as ``paced``, with ``usage.completion_tokens`` one more than the text chunks, as vLLM
  counts the end-of-answer token it does not stream;
- ``vllm``: as ``eos``, and ``GET /vllm/metrics`` (beside ``/vllm/v1``) serves vLLM's request
  histograms: each answer adds ``QUEUE_S`` of queue time, ``PREFILL_S`` of prefill and its streaming
  time as decode; ``vllm:num_requests_running`` is the answers streaming now;
- ``llamacpp``: as ``paced``, the usage chunk carrying llama.cpp's ``timings`` (``PREFILL_S`` of
  prompt time, ``DECODE_MS_PER_TOKEN`` per streamed token);
- ``flaky``: HTTP 503 on the first request of each prompt, then as ``ok``;
- ``auth``: HTTP 401; ``key``: HTTP 401 unless the key is ``RIGHT_KEY``, then as ``ok``;
  ``html``: an HTML page with status 200;
- ``malformed``: an event stream whose data is not JSON; ``unfinished``: no finish reason;
- ``hang``: accepts and says nothing for ``HANG_S`` seconds;
- ``trickle``: streams ``TRICKLE_CHUNKS`` words, one every ``TRICKLE_S`` seconds (a server that
  never trips a read timeout but takes ``TRICKLE_CHUNKS x TRICKLE_S`` to answer); ``trickle-<ms>``
  (a path segment such as ``trickle-500``) sends one every ``<ms>`` milliseconds instead;
  ``trickleonce``: trickles on the first request of each prompt, then answers as ``ok``;
- ``echo``: streams the request's headers back as the answer (a server that leaks them);
  ``echoerr``: HTTP 503 whose message repeats them.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_S = 5.0
PACE_S = 0.01
TRICKLE_S = 1.0
RIGHT_KEY = "sk-right-key-for-the-stub"
TRICKLE_CHUNKS = 15
QUEUE_S, PREFILL_S, DECODE_MS_PER_TOKEN = 0.25, 0.0125, 7.5


def chunk(content=None, finish=None, usage=None) -> bytes:
    body = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "stub",
            "choices": [] if usage else [{"index": 0, "delta": {"content": content} if content else {},
                                          "finish_reason": finish}]}  # fmt: skip
    if usage:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.prompt = (body.get("messages") or [{}])[-1].get("content", body.get("prompt", ""))
        segment = self.path.strip("/").split("/")[0]  # "<mode>" or "<mode>.<tag>": a tag keeps counts apart
        with self.server.lock:
            self.server.requests.append((segment, self.prompt))
            self.first = sum(p == self.prompt for m, p in self.server.requests if m == segment) == 1
        mode, _, arg = segment.split(".")[0].partition("-")
        self.arg = arg
        getattr(self, f"answer_{mode}")()

    def _plain(self, code: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, parts: list[bytes], pace_s: float = 0.0) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for data in parts:
            time.sleep(pace_s)
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _answer(self, text: str, pace_s: float = 0.0, uncounted: int = 0, timings: bool = False) -> None:
        words = text.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        n = len(pieces) + uncounted
        usage = {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n}
        last = chunk(usage=usage)
        if timings:  # llama-server's fields, on the last chunk
            body = json.loads(last[len(b"data: "):])
            body["timings"] = {"prompt_n": 5, "prompt_ms": PREFILL_S * 1e3, "predicted_n": len(pieces),
                               "predicted_ms": DECODE_MS_PER_TOKEN * len(pieces), "cache_n": 0}  # fmt: skip
            last = f"data: {json.dumps(body)}\n\n".encode()
        self._stream([chunk(p) for p in pieces] + [chunk(finish="stop"), last, b"data: [DONE]\n\n"], pace_s)

    def do_GET(self) -> None:  # /<mode>/metrics: vLLM's metrics of that mode's answers
        segment = self.path.strip("/").split("/")[0]
        if not self.path.endswith("/metrics") or not segment.startswith("vllm"):
            return self._plain(404, b'{"detail": "Not Found"}')
        with self.server.lock:
            m = dict(self.server.metrics.get(segment, {}))
        lines = [f'vllm:num_requests_running{{engine="0",model_name="stub"}} {m.get("running", 0)}',
                 'vllm:num_requests_waiting{engine="0",model_name="stub"} 0.0']  # fmt: skip
        for name in ("queue", "prefill", "decode", "inference"):
            lines += [f"# TYPE vllm:request_{name}_time_seconds histogram",
                      f'vllm:request_{name}_time_seconds_sum{{engine="0",model_name="stub"}} {m.get(name, 0.0)}',
                      f'vllm:request_{name}_time_seconds_count{{engine="0",model_name="stub"}} {m.get("count", 0)}']  # fmt: skip
        self._plain(200, ("\n".join(lines) + "\n").encode(), "text/plain; version=0.0.4")

    def _count(self, segment: str, **add: float) -> None:
        with self.server.lock:
            m = self.server.metrics.setdefault(segment, {})
            for k, v in add.items():
                m[k] = m.get(k, 0) + v

    def answer_ok(self) -> None:
        self._answer(self.prompt.split("ECHO:", 1)[1].strip() if "ECHO:" in self.prompt else "ok")

    def answer_paced(self) -> None:  # as ok, PACE_S before each chunk
        self._answer(self.prompt.split("ECHO:", 1)[1].strip() if "ECHO:" in self.prompt else "ok", PACE_S)

    def answer_eos(self) -> None:  # as paced; usage counts an end-of-answer token that was not streamed
        self._answer(self.prompt.split("ECHO:", 1)[1].strip() if "ECHO:" in self.prompt else "ok", PACE_S, uncounted=1)

    def answer_vllm(self) -> None:  # as eos, counted in /vllm/metrics
        segment = self.path.strip("/").split("/")[0]
        self._count(segment, running=1)
        started = time.monotonic()
        try:
            self.answer_eos()
        finally:
            decode = time.monotonic() - started
            self._count(segment, running=-1, count=1, queue=QUEUE_S, prefill=PREFILL_S, decode=decode,
                        inference=PREFILL_S + decode)  # fmt: skip

    def answer_llamacpp(self) -> None:  # as paced, with llama-server's timings on the last chunk
        self._answer(self.prompt.split("ECHO:", 1)[1].strip() if "ECHO:" in self.prompt else "ok", PACE_S, timings=True)

    def answer_flaky(self) -> None:
        if self.first:
            return self._plain(503, b'{"error": {"message": "overloaded, try again"}}')
        self.answer_ok()

    def answer_auth(self) -> None:
        self._plain(401, b'{"error": {"message": "invalid api key"}}')

    def answer_key(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {RIGHT_KEY}":
            return self.answer_auth()
        self.answer_ok()

    def answer_html(self) -> None:
        self._plain(200, b"<!doctype html><html><body>Sign in</body></html>", "text/html")

    def answer_malformed(self) -> None:
        self._stream([b"data: {this is not json\n\n"])

    def answer_unfinished(self) -> None:
        self._stream([chunk("partial"), b"data: [DONE]\n\n"])

    def answer_hang(self) -> None:
        time.sleep(HANG_S)
        self.close_connection = True

    def answer_trickle(self) -> None:  # a chunk every TRICKLE_S (or the segment's own pace)
        self._answer(" ".join(["slow"] * TRICKLE_CHUNKS), int(self.arg) / 1e3 if self.arg else TRICKLE_S)

    def answer_trickleonce(self) -> None:
        self.answer_trickle() if self.first else self.answer_ok()

    def answer_echo(self) -> None:
        self._answer(f"headers: {dict(self.headers)}")

    def answer_echoerr(self) -> None:  # an error whose body repeats the request headers
        self._plain(503, json.dumps({"error": {"message": f"down; you sent {dict(self.headers)}"}}).encode())


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.metrics: dict[str, dict[str, float]] = {}  # per path segment, for GET .../metrics (mode vllm)

    def handle_error(self, request, client_address) -> None:  # clients hanging up are expected
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> StubServer:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
