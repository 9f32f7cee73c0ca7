"""OpenAIEngine through the real ``openai`` client, against servers on loopback only.

- A stdlib ``http.server`` in a thread plays scripted answers (a stream with usage, a 503, a
  stream that breaks off, one that ends without a finish reason, one that never answers), so the
  engine's error paths run through the real client and the real HTTP stack.
- llama-cpp-python's own OpenAI-compatible server, started as a subprocess on the embedded default
  model with an API key, drives the engine end to end (skipped without ``llama-cpp-python[server]``).
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ipw.core.errors import IpwError
from ipw.engines import GenerationSettings, get_engine
from ipw.engines.openai import EngineError, OpenAIEngine, check_base_url, redact
from ipw.engines.retry import AuthError
from tests.workloads.engines.test_llamacpp_engine import installed

KEY_ENV = "IPW_TEST_OPENAI_KEY"
SLOW_ANSWER_S = 3.0  # the "slow" script never waits longer than this
TRICKLE_S = 0.3  # the "trickle" script's gap between chunks


def _chunk(content=None, finish=None, role=None, usage=None) -> bytes:
    delta = {k: v for k, v in (("role", role), ("content", content)) if v is not None}
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "stub",
        "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


class StubHandler(BaseHTTPRequestHandler):
    """Answers according to the first path segment: /<script>/v1/chat/completions."""

    protocol_version = "HTTP/1.1"
    requests: list[dict] = []

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        segment = self.path.strip("/").split("/")[0]  # "<script>" or "<script>-<argument>"
        script, _, self.argument = segment.partition("-")
        self.requests.append({"script": segment, "body": body, "authorization": self.headers.get("Authorization")})
        getattr(self, f"answer_{script}")()

    def _tries(self) -> int:
        """How many requests this script's path has had, this one included."""
        return sum(r["script"] == self.requests[-1]["script"] for r in self.requests)

    def _start_stream(self, chunked: bool = True) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
        self.end_headers()

    def _send(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def answer_usage(self) -> None:  # a well-behaved server that honours include_usage
        self._start_stream()
        self._send(_chunk(role="assistant", content=""))
        for word in ("Hello", ",", " world"):
            self._send(_chunk(content=word))
        self._send(_chunk(finish="stop"))
        self._send(_chunk(usage={"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}))
        self._send(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def answer_unavailable(self) -> None:  # 503, echoing the Authorization header it received
        seen = self.headers.get("Authorization", "")
        data = json.dumps({"error": {"message": f"model is loading (request had {seen})", "code": 503}}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def answer_drop(self) -> None:  # streams, then the connection breaks inside the chunked body
        self._start_stream()
        self._send(_chunk(role="assistant", content="Hel"))
        self._send(_chunk(content="lo"))
        self.wfile.write(b"400\r\ndata: {\"trunc")
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def answer_unfinished(self) -> None:  # streams, then the body ends cleanly without finish_reason
        self._start_stream(chunked=False)
        self.wfile.write(_chunk(role="assistant", content="Hel") + _chunk(content="lo"))
        self.wfile.flush()
        self.close_connection = True

    def answer_stall(self) -> None:  # streams, then goes quiet
        self._start_stream()
        self._send(_chunk(role="assistant", content="Hel"))
        time.sleep(SLOW_ANSWER_S)
        self.close_connection = True

    def _status(self, code: int, body: bytes = b'{"error": {"message": "no"}}', kind: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def answer_flaky(self) -> None:  # /flaky-N: 503 for the first N requests to this path, then an answer
        if self._tries() <= int(self.argument.split(".")[0]):
            return self._status(503, b'{"error": {"message": "overloaded"}}')
        self.answer_usage()

    def answer_status(self) -> None:  # /status-CODE.tag: always that status
        self._status(int(self.argument.split(".")[0]))

    def answer_html(self) -> None:  # a login page with status 200
        self._status(200, b"<!doctype html><html><body>Please log in</body></html>", "text/html; charset=utf-8")

    def answer_echo(self) -> None:  # streams the request headers back as the answer
        self._start_stream()
        self._send(_chunk(role="assistant", content=""))
        self._send(_chunk(content=f"you sent {dict(self.headers)}"))
        self._send(_chunk(finish="stop"))
        self._send(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def answer_trickle(self) -> None:  # one chunk every TRICKLE_S, ten of them
        self._start_stream()
        self._send(_chunk(role="assistant", content=""))
        for _ in range(10):
            time.sleep(TRICKLE_S)
            self._send(_chunk(content="x"))
        self._send(_chunk(finish="stop"))
        self._send(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def answer_slow(self) -> None:  # accepts, then says nothing for a while
        time.sleep(SLOW_ANSWER_S)
        self.close_connection = True


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # clients hanging up are expected here
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def stub():
    server = StubServer(("127.0.0.1", 0), StubHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def key(monkeypatch) -> str:
    value = "sk-ipw-test-" + secrets.token_hex(12)
    monkeypatch.setenv(KEY_ENV, value)
    return value


def _engine(url: str, script: str, **options) -> OpenAIEngine:
    options.setdefault("backoff_s", 0.01)  # retries without long waits
    return OpenAIEngine(f"{url}/{script}/v1", "stub", api_key_env=KEY_ENV, **options)


def _assert_no_key(key: str, *things: object) -> None:
    for thing in things:
        assert key not in repr(thing) and key not in str(thing)


def test_streams_with_server_usage_and_sends_the_settings(stub, key):
    StubHandler.requests.clear()
    settings = GenerationSettings(max_tokens=9, temperature=0.5, top_p=0.9, seed=7, stop=("\n\n",))
    with _engine(stub, "usage") as engine:
        g = engine.generate("Say hello.", settings)
    assert g.text == "Hello, world"
    assert (g.input_tokens, g.output_tokens) == (11, 3)  # the 3 chunks received; the server says 4
    assert g.extra == {"token_count_source": "streamed chunks", "streamed_chunks": 3, "server_output_tokens": 4,
                       "token_count_mismatch": 1, "flags": ["token-count-mismatch"], "attempts": 1}  # fmt: skip
    assert g.finish_reason == "stop"
    assert g.t_start_s < g.t_first_token_s < g.t_last_token_s < g.t_end_s
    assert g.tpot_s == (g.t_last_token_s - g.t_first_token_s) / 2  # two gaps between three chunks
    (request,) = StubHandler.requests
    body = request["body"]
    assert body["messages"] == [{"role": "user", "content": "Say hello."}]
    assert {k: body[k] for k in ("max_tokens", "temperature", "top_p", "seed", "stop", "stream")} == {
        "max_tokens": 9, "temperature": 0.5, "top_p": 0.9, "seed": 7, "stop": ["\n\n"], "stream": True,
    }  # fmt: skip
    assert body["stream_options"] == {"include_usage": True}
    assert request["authorization"] == f"Bearer {key}"


def test_token_times_come_from_the_ipw_clock(stub, clock):
    with _engine(stub, "usage") as engine:
        g = engine.generate("Say hello.", GenerationSettings())
    # FakeClock starts at 1000 s and moves only 1 us per read
    assert 1000 < g.t_start_s < g.t_first_token_s < g.t_last_token_s < g.t_end_s < 1000.001


def test_key_is_read_at_each_request_and_not_sent_when_unset(stub, key, monkeypatch):
    StubHandler.requests.clear()
    engine = _engine(stub, "usage")
    engine.generate("a", GenerationSettings())
    monkeypatch.setenv(KEY_ENV, "sk-rotated")
    engine.generate("b", GenerationSettings())
    monkeypatch.delenv(KEY_ENV)
    engine.generate("c", GenerationSettings())
    engine.close()
    assert [r["authorization"] for r in StubHandler.requests] == [f"Bearer {key}", "Bearer sk-rotated", None]


def test_503_is_an_error_with_its_status_and_never_shows_the_key(stub, key, caplog):
    caplog.set_level(logging.DEBUG)
    engine = _engine(stub, "unavailable")
    with pytest.raises(EngineError) as info:
        engine.generate("Say hello.", GenerationSettings())
    err = info.value
    assert err.status_code == 503 and isinstance(err, IpwError)
    assert f"server at {stub}/unavailable/v1 answered 503" in str(err) and "model is loading" in str(err)
    assert "[redacted]" in str(err)  # the server echoed the key; the message does not
    assert err.__cause__ is None and err.__context__ is None  # the client's error holds the request headers
    _assert_no_key(key, err, engine, engine.describe())
    assert all(key not in r.getMessage() for r in caplog.records)
    assert any(r.name.startswith("openai") for r in caplog.records)  # the client did log, at debug level


def test_a_stream_that_breaks_off_is_an_error_not_a_short_answer(stub, key):
    with pytest.raises(EngineError, match=r"the answer from .*/drop/v1 broke off after 2 chunks") as info:
        _engine(stub, "drop").generate("Say hello.", GenerationSettings())
    assert info.value.status_code is None
    _assert_no_key(key, info.value)


def test_a_stream_without_finish_reason_is_an_error(stub, key):
    with pytest.raises(EngineError, match=r"ended before the answer was finished \(no finish_reason after 2 chunks\)"):
        _engine(stub, "unfinished").generate("Say hello.", GenerationSettings())


def test_timeout_is_a_clear_error(stub):
    engine = _engine(stub, "slow", timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"no answer within 0.3 s") as info:
        engine.generate("Say hello.", GenerationSettings())
    assert info.value.status_code is None
    assert time.monotonic() - started < SLOW_ANSWER_S  # it gave up on its own, before the server answered


def test_a_stream_that_goes_quiet_times_out(stub):
    with pytest.raises(EngineError, match=r"broke off after 1 chunks: no more data within 0.3 s"):
        _engine(stub, "stall", timeout_s=0.3).generate("Say hello.", GenerationSettings())


def test_refused_connection_is_a_clear_error():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(EngineError, match=rf"could not reach server at http://127.0.0.1:{port}/v1"):
        OpenAIEngine(f"http://127.0.0.1:{port}/v1", "m", api_key_env=KEY_ENV).generate("x", GenerationSettings())


def test_describe_and_repr_name_the_variable_not_the_key(key):
    engine = get_engine("openai", base_url="http://127.0.0.1:9/v1/", model="m", api_key_env=KEY_ENV, timeout_s=2)
    d = engine.describe()
    assert d["engine"] == "openai" and d["base_url"] == "http://127.0.0.1:9/v1" and d["api_key_env"] == KEY_ENV
    assert d["endpoint"] == "chat/completions" and "openai" in d["versions"]
    _assert_no_key(key, d, engine, json.dumps(d))
    engine.close()
    engine.close()  # twice is fine
    with pytest.raises(ValueError):
        OpenAIEngine("http://127.0.0.1:9/v1", "m", timeout_s=0)


# ---- retries, deadline, credentials, secrets ---------------------------------------------------------


def _tag() -> str:
    return secrets.token_hex(4)


def _sent(path: str) -> int:
    return sum(r["script"] == path for r in StubHandler.requests)


def test_a_transient_503_is_retried_and_the_tries_are_recorded(stub, key):
    path = f"flaky-2.{_tag()}"
    g = _engine(stub, path, tries=3).generate("Say hello.", GenerationSettings())
    assert g.text == "Hello, world" and g.extra["attempts"] == 3 and _sent(path) == 3


def test_a_query_that_still_fails_says_how_often_it_was_tried(stub, key):
    path = f"flaky-5.{_tag()}"
    with pytest.raises(EngineError, match=r"answered 503: .*overloaded \(after 3 tries\)") as info:
        _engine(stub, path, tries=3).generate("Say hello.", GenerationSettings())
    assert info.value.attempts == 3 and _sent(path) == 3 and info.value.status_code == 503


@pytest.mark.parametrize("code", [401, 403])
def test_refused_credentials_stop_at_once_with_the_reason(stub, key, code):
    path = f"status-{code}.{_tag()}"
    with pytest.raises(AuthError, match=rf"answered {code}: .*no -- the server refused the credentials; check the key in \${KEY_ENV}") as info:
        _engine(stub, path, tries=5).generate("Say hello.", GenerationSettings())
    assert info.value.status_code == code and _sent(path) == 1
    _assert_no_key(key, info.value)


def test_a_client_error_is_not_retried(stub, key):
    path = f"status-400.{_tag()}"
    with pytest.raises(EngineError, match="answered 400"):
        _engine(stub, path, tries=5).generate("Say hello.", GenerationSettings())
    assert _sent(path) == 1


def test_an_html_page_with_status_200_is_a_clear_error(stub, key):
    path = f"html-{_tag()}"
    with pytest.raises(EngineError, match=r"answered with an HTML page, not an event stream: is the base URL the API root"):
        _engine(stub, path, tries=3).generate("Say hello.", GenerationSettings())
    assert _sent(path) == 1


def test_a_trickling_answer_hits_the_per_query_deadline_and_is_not_retried(stub, key):
    path = f"trickle-{_tag()}"
    engine = _engine(stub, path, tries=3, timeout_s=10 * TRICKLE_S, deadline_s=3.5 * TRICKLE_S)
    with pytest.raises(EngineError, match=r"was not finished within 1.05 s \(deadline_s\) after (\d) chunks") as info:
        engine.generate("Say hello.", GenerationSettings())
    chunks = int(info.value.args[0].rsplit("after ", 1)[1].split()[0])
    assert chunks < 10 and _sent(path) == 1  # the read timeout alone would have let all ten through


def test_a_silent_server_is_cut_by_the_deadline_not_only_the_read_timeout(stub):
    engine = _engine(stub, "slow", tries=3, timeout_s=30, deadline_s=0.3)
    with pytest.raises(EngineError, match=r"no answer within the query's 0.3 s deadline \(deadline_s\)"):
        engine.generate("Say hello.", GenerationSettings())


def test_an_echoed_key_is_returned_as_sent_and_redacted_by_the_engine(stub, key):
    engine = _engine(stub, "echo")
    g = engine.generate("Say hello.", GenerationSettings())
    assert f"Bearer {key}" in g.text  # graded as sent; the run stores engine.redact(...) of it
    assert "Bearer [redacted]" in engine.redact(g.text) and engine.redaction_note() is None
    _assert_no_key(key, engine.redact(g.text), engine.redact(g.extra), engine, engine.describe())


@pytest.mark.parametrize("value", ["x", "5", "EMPTY", "none", "sk-...", "dummy", "placeholder", "test", "sk-1234",
                                   "set-per-request-by-ipw"])  # fmt: skip
def test_a_short_or_placeholder_key_is_not_redacted_and_the_note_says_why(monkeypatch, value):
    monkeypatch.setenv(KEY_ENV, value)
    engine = OpenAIEngine("http://127.0.0.1:9/v1", "m", api_key_env=KEY_ENV)
    assert engine.redact("Mexico City 5 EMPTY none sk-... dummy placeholder test") == (
        "Mexico City 5 EMPTY none sk-... dummy placeholder test")
    note = engine.redaction_note()
    assert f"${KEY_ENV} is not redacted" in note and ("placeholder" in note or "shorter than 8" in note)


def test_the_note_never_repeats_a_short_key_and_an_8_character_key_is_a_secret(monkeypatch):
    short = "q" + secrets.token_hex(3)  # 7 characters
    monkeypatch.setenv(KEY_ENV, short)
    engine = OpenAIEngine("http://127.0.0.1:9/v1", "m", api_key_env=KEY_ENV)
    assert short not in engine.redaction_note() and engine.redact(f"a{short}b") == f"a{short}b"
    monkeypatch.setenv(KEY_ENV, short + "z")
    assert engine.redaction_note() is None and engine.redact(f"a{short}zb") == "a[redacted]b"


def test_no_key_no_note(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    engine = OpenAIEngine("http://127.0.0.1:9/v1", "m", api_key_env=KEY_ENV)
    assert engine.redaction_note() is None and engine.redact("x") == "x"


def test_redact_reaches_nested_strings():
    assert redact({"a": ["x sk-1 y", ("sk-1",)], "sk-1": 3, "n": 1.5}, ["sk-1", ""]) == {
        "a": ["x [redacted] y", ("[redacted]",)], "[redacted]": 3, "n": 1.5,
    }  # fmt: skip
    assert redact("abc", []) == "abc"


@pytest.mark.parametrize(
    "url", ["http://user:sk-secret@127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1?api_key=sk-secret",
            "http://127.0.0.1:8000/v1#sk-secret", "ftp://127.0.0.1/v1"],
)  # fmt: skip
def test_a_base_url_carrying_a_key_is_refused_without_repeating_it(url):
    with pytest.raises(IpwError) as info:
        OpenAIEngine(url, "m")
    assert "sk-secret" not in str(info.value)
    assert check_base_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"


# ---- llama-cpp-python's OpenAI-compatible server, for real -----------------------------------------

SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
missing = [m for m in SERVER_MODULES if not installed(m)]
needs_server = pytest.mark.skipif(
    bool(missing), reason=f"llama-cpp-python's server is not installed ({', '.join(missing)} missing): "
    'pip install "llama-cpp-python[server]"'
)  # fmt: skip
STARTUP_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, key: str, proc: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    request = urllib.request.Request(f"{url}/models", headers={"Authorization": f"Bearer {key}"})
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(request, timeout=1.0) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    log.seek(0)
    tail = log.read()[-2000:].decode(errors="replace")
    pytest.fail(f"llama_cpp.server did not answer {url}/models within {STARTUP_TIMEOUT_S} s:\n{tail}")


def run_llama_server(tmp_path_factory, *extra: str):
    """Start llama-cpp-python's server on loopback with the default model (and ``extra`` options);
    yield (base URL, API key); kill it at the end. The body of the server fixtures."""
    from ipw.engines.models import default_model_path

    key = "sk-ipw-server-" + secrets.token_hex(12)
    port = _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()), "--model_alias", "smollm",
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--n_threads", "1",
        "--n_threads_batch", "1", "--verbose", "False", "--api_key", key, *extra,
    ]  # fmt: skip
    log = open(tmp_path_factory.mktemp("llama_server") / "server.log", "w+b")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        _wait_ready(url, key, proc, log)
        yield url, key
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """(base URL, API key) of a llama-cpp-python server on loopback, killed at teardown."""
    yield from run_llama_server(tmp_path_factory)


@needs_server
@pytest.mark.slow
@pytest.mark.parametrize("chat", [True, False])
def test_real_server_streams_tokens_with_timing(llama_server, monkeypatch, chat):
    url, key = llama_server
    monkeypatch.setenv(KEY_ENV, key)
    prompt = "What is the capital of France? Answer in one word." if chat else "The capital of France is"
    with OpenAIEngine(url, "smollm", api_key_env=KEY_ENV, chat=chat, timeout_s=30) as engine:
        g = engine.generate(prompt, GenerationSettings(max_tokens=6))
        again = engine.generate(prompt, GenerationSettings(max_tokens=6))
    assert g.text.strip() and g.text == again.text  # greedy
    # llama-cpp-python's server ignores include_usage: tokens are counted as streamed chunks
    assert g.extra["token_count_source"] == "streamed chunks" and g.input_tokens is None
    assert 1 <= g.output_tokens == g.extra["streamed_chunks"] <= 6
    assert g.finish_reason in ("stop", "length") and (g.finish_reason == "length") == (g.output_tokens == 6)
    assert g.t_start_s < g.t_first_token_s <= g.t_last_token_s < g.t_end_s
    assert 0 < g.ttft_s <= g.e2e_s
    if g.output_tokens >= 2:
        assert g.tpot_s == pytest.approx((g.t_last_token_s - g.t_first_token_s) / (g.output_tokens - 1))
    _assert_no_key(key, g, engine.describe(), engine)


@needs_server
@pytest.mark.slow
def test_real_server_wants_the_key_from_the_environment(llama_server, monkeypatch):
    url, key = llama_server
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    with pytest.raises(AuthError) as info:
        OpenAIEngine(url, "smollm", api_key_env=KEY_ENV).generate("Hi", GenerationSettings(max_tokens=2))
    assert info.value.status_code == 401 and f"server at {url} answered 401" in str(info.value)
    _assert_no_key(key, info.value)


@needs_server
@pytest.mark.slow
def test_real_server_tiny_timeout_is_a_timeout_error(llama_server, monkeypatch):
    url, key = llama_server
    monkeypatch.setenv(KEY_ENV, key)
    engine = OpenAIEngine(url, "smollm", api_key_env=KEY_ENV, timeout_s=0.001)
    with pytest.raises(EngineError, match=r"no answer within 0.001 s"):
        engine.generate("Write a long story about a dragon.", GenerationSettings(max_tokens=4))
    # the server is still fine afterwards
    engine = OpenAIEngine(url, "smollm", api_key_env=KEY_ENV, timeout_s=30)
    assert engine.generate("Say hi.", GenerationSettings(max_tokens=3)).output_tokens >= 1
