"""A stdlib OpenAI-compatible streaming server on 127.0.0.1, for runs through the real engine.

The first path segment picks the behaviour (``http://127.0.0.1:PORT/<mode>/v1``, ``<mode>-<arg>``
where a mode takes an argument, and either followed by ``.<tag>``: requests are counted per segment
and prompt, so a tag gives a test its own counts). ``StubServer.requests`` logs (segment, prompt) of
each request; ``StubServer.sent`` its segment, JSON body and Authorization header.

Answers to the prompt (the text after "ECHO:" in it, else "ok"), with a finish reason and usage:

- ``ok``: at once;
- ``paced``: as ``ok``, waiting ``PACE_S`` before each chunk;
- ``eos``: as ``paced``, with ``usage.completion_tokens`` one more than the text chunks, as vLLM
  counts the end-of-answer token it does not stream;
- ``vllm``: as ``eos``, and ``GET /vllm/metrics`` (beside ``/vllm/v1``) serves vLLM's request
  histograms: each answer adds ``QUEUE_S`` of queue time, ``PREFILL_S`` of prefill and its streaming
  time as decode; ``vllm:num_requests_running`` is the answers streaming now;
- ``llamacpp``: as ``paced``, the usage chunk carrying llama.cpp's ``timings`` (``PREFILL_S`` of
  prompt time, ``DECODE_MS_PER_TOKEN`` per streamed token);
- ``flaky``: HTTP 503 on the first request of each prompt, then as ``ok``; ``flaky-<n>``: on the
  first ``<n>`` requests of each prompt;
- ``key``: HTTP 401 unless the key is ``RIGHT_KEY``, then as ``ok``;
- ``echo``: streams the request's headers back as the answer (a server that leaks them).

A known schedule, for prompts "What is <n> + <n>? ...": ``TOKENS`` chunks, the first ("<2n>") after
``TTFT_S``, then "." every ``GAP_S``; usage of ``PROMPT_TOKENS`` in and ``TOKENS`` out.
``StubServer.active`` counts the streams of these modes in flight:

- ``timed``: that schedule;
- ``refuse``: HTTP 429 while another of these streams is in flight, else ``timed``;
- ``dropfirst``: as ``timed``, but the first request of the prompt "What is 3 + 3?" breaks off
  inside the chunked body after two chunks; ``dropalways``: every request of it.

A fixed answer, "Hello, world" in three chunks after an empty one naming the role:

- ``usage``: with a finish reason and usage of 11 tokens in and 4 out (one more than it streamed).

Failures:

- ``auth``: HTTP 401; ``status-<code>``: HTTP ``<code>`` with the message "no";
- ``unavailable``: HTTP 503 whose message repeats the Authorization header (short: it fits in
  the error the engine keeps); ``echoerr``: HTTP 503 whose message repeats all the headers;
- ``html``: an HTML page with status 200;
- ``malformed``: an event stream whose data is not JSON; ``unfinished``: no finish reason;
- ``eof``: two chunks ("Hel", "lo") without chunked encoding, then the connection closes (no
  finish reason, no ``[DONE]``);
- ``drop``: two chunks ("Hel", "lo"), then the connection breaks inside the chunked body;
- ``stall``: one chunk ("Hel"), then nothing for ``STALL_S`` seconds;
- ``hang``: accepts and says nothing for ``HANG_S`` seconds;
- ``trickle``: streams ``TRICKLE_CHUNKS`` words, one every ``TRICKLE_S`` seconds (a server that
  never trips a read timeout but takes ``TRICKLE_CHUNKS x TRICKLE_S`` to answer); ``trickle-<ms>``
  (a path segment such as ``trickle-500``) sends one every ``<ms>`` milliseconds instead;
  ``trickleonce``: trickles on the first request of each prompt, then answers as ``ok``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_S = 5.0
STALL_S = 3.0
PACE_S = 0.01
TRICKLE_S = 1.0
RIGHT_KEY = "sk-right-key-for-the-stub"
TRICKLE_CHUNKS = 15
QUEUE_S, PREFILL_S, DECODE_MS_PER_TOKEN = 0.25, 0.0125, 7.5
TTFT_S, GAP_S, TOKENS = 0.06, 0.02, 6  # the schedule: first token after 60 ms, then one every 20 ms
PROMPT_TOKENS = 7  # the schedule's usage.prompt_tokens
DONE = b"data: [DONE]\n\n"


def chunk(content=None, finish=None, usage=None, role=None) -> bytes:
    delta = {k: v for k, v in (("role", role), ("content", content)) if v is not None}
    body = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "stub",
            "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
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
        segment = self.path.strip("/").split("/")[0]  # "<mode>[-<arg>][.<tag>]": a tag keeps counts apart
        with self.server.lock:
            self.server.requests.append((segment, self.prompt))
            self.server.sent.append({"segment": segment, "body": body, "authorization": self.headers.get("Authorization")})
            self.tries = sum(p == self.prompt for m, p in self.server.requests if m == segment)  # this one included
            self.first = self.tries == 1
        mode, _, arg = segment.split(".")[0].partition("-")
        self.arg = arg
        getattr(self, f"answer_{mode}")()

    def _plain(self, code: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _open(self, chunked: bool = True) -> None:
        """The headers of an event stream: chunked, or one that ends when the connection closes."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header(*(("Transfer-Encoding", "chunked") if chunked else ("Connection", "close")))
        self.end_headers()

    def _send(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _break_off(self) -> None:
        """Start a chunk and break the connection inside it."""
        self.wfile.write(b"400\r\ndata: {\"trunc")
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)  # socket.SHUT_RDWR

    def _stream(self, parts: list[bytes], pace_s: float = 0.0) -> None:
        self._open()
        for data in parts:
            time.sleep(pace_s)
            self._send(data)
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
        self._stream([chunk(p or None) for p in pieces] + [chunk(finish="stop"), last, DONE], pace_s)

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

    # -- answers to the prompt --

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

    def answer_flaky(self) -> None:  # 503 on the first <arg> (1) requests of each prompt
        if self.tries <= int(self.arg or 1):
            return self._plain(503, b'{"error": {"message": "overloaded, try again"}}')
        self.answer_ok()

    def answer_key(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {RIGHT_KEY}":
            return self.answer_auth()
        self.answer_ok()

    def answer_echo(self) -> None:
        self._answer(f"headers: {dict(self.headers)}")

    # -- the known schedule --

    def _scheduled(self, drop: bool = False, refuse: bool = False) -> None:
        """The schedule (TTFT_S, GAP_S, TOKENS), counted in ``server.active`` while it streams."""
        with self.server.lock:
            if refuse and self.server.active >= 1:
                return self._plain(429, json.dumps({"error": {"message": "one stream at a time"}}).encode())
            self.server.active += 1
        try:
            n = int(self.prompt.split()[2])
            self._open()
            time.sleep(TTFT_S)
            for k, piece in enumerate([str(2 * n)] + ["."] * (TOKENS - 1)):
                if k:
                    time.sleep(GAP_S)
                self._send(chunk(piece))
                if drop and k == 1:
                    return self._break_off()
            usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": TOKENS, "total_tokens": PROMPT_TOKENS + TOKENS}
            for data in (chunk(finish="stop"), chunk(usage=usage), DONE):
                self._send(data)
            self.wfile.write(b"0\r\n\r\n")
        finally:
            with self.server.lock:
                self.server.active -= 1

    def answer_timed(self) -> None:
        self._scheduled()

    def answer_refuse(self) -> None:
        self._scheduled(refuse=True)

    def answer_dropfirst(self) -> None:
        self._scheduled(drop="3 + 3" in self.prompt and self.first)

    def answer_dropalways(self) -> None:
        self._scheduled(drop="3 + 3" in self.prompt)

    # -- a fixed answer --

    def answer_usage(self) -> None:
        usage = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
        self._stream([chunk("", role="assistant"), chunk("Hello"), chunk(","), chunk(" world"), chunk(finish="stop"),
                      chunk(usage=usage), DONE])  # fmt: skip

    # -- failures --

    def answer_auth(self) -> None:
        self._plain(401, b'{"error": {"message": "invalid api key"}}')

    def answer_status(self) -> None:  # /status-<code>: always that status
        self._plain(int(self.arg), b'{"error": {"message": "no"}}')

    def answer_unavailable(self) -> None:  # 503, repeating the Authorization header it received
        seen = self.headers.get("Authorization", "")
        self._plain(503, json.dumps({"error": {"message": f"model is loading (request had {seen})", "code": 503}}).encode())

    def answer_echoerr(self) -> None:  # an error whose body repeats the request headers
        self._plain(503, json.dumps({"error": {"message": f"down; you sent {dict(self.headers)}"}}).encode())

    def answer_html(self) -> None:
        self._plain(200, b"<!doctype html><html><body>Sign in</body></html>", "text/html")

    def answer_malformed(self) -> None:
        self._stream([b"data: {this is not json\n\n"])

    def answer_unfinished(self) -> None:
        self._stream([chunk("partial"), DONE])

    def answer_eof(self) -> None:  # two chunks, then the body ends as the connection closes
        self._open(chunked=False)
        self.wfile.write(chunk("Hel", role="assistant") + chunk("lo"))
        self.wfile.flush()
        self.close_connection = True

    def answer_drop(self) -> None:  # two chunks, then the connection breaks inside the chunked body
        self._open()
        self._send(chunk("Hel", role="assistant"))
        self._send(chunk("lo"))
        self._break_off()

    def answer_stall(self) -> None:  # one chunk, then quiet
        self._open()
        self._send(chunk("Hel", role="assistant"))
        time.sleep(STALL_S)
        self.close_connection = True

    def answer_hang(self) -> None:
        time.sleep(HANG_S)
        self.close_connection = True

    def answer_trickle(self) -> None:  # a chunk every TRICKLE_S (or the segment's own pace)
        self._answer(" ".join(["slow"] * TRICKLE_CHUNKS), int(self.arg) / 1e3 if self.arg else TRICKLE_S)

    def answer_trickleonce(self) -> None:
        self.answer_trickle() if self.first else self.answer_ok()


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []  # (path segment, prompt) of each request
        self.sent: list[dict] = []  # {"segment", "body", "authorization"} of each request
        self.active = 0  # streams of the scheduled modes (timed, refuse, drop...) in flight
        self.metrics: dict[str, dict[str, float]] = {}  # per path segment, for GET .../metrics (mode vllm)

    def handle_error(self, request, client_address) -> None:  # clients hanging up, streams broken off: expected
        if not isinstance(sys.exc_info()[1], OSError):
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
