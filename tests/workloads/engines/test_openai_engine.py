"""OpenAIEngine through the real ``openai`` client, against servers on loopback only.

- The stub server (tests/workloads/openai_stub.py, the ``stub`` fixture) plays scripted answers (a
  stream with usage, a 503, a stream that breaks off, one that ends without a finish reason, one that
  never answers), so the engine's error paths run through the real client and the real HTTP stack.
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
import time
import urllib.error
import urllib.request

import pytest

from ipw.core.errors import IpwError
from ipw.engines import GenerationSettings, get_engine
from ipw.engines.openai import EngineError, OpenAIEngine, check_base_url, redact
from ipw.engines.retry import AuthError
from tests.workloads.engines.test_llamacpp_engine import installed
from tests.workloads.openai_stub import HANG_S, TRICKLE_CHUNKS

KEY_ENV = "IPW_TEST_OPENAI_KEY"
TRICKLE_S = 0.3  # the gap between chunks of the stub's mode trickle-300


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


def test_streams_with_server_usage_and_sends_the_settings(stub, server, key):
    server.sent.clear()
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
    (request,) = server.sent
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


def test_key_is_read_at_each_request_and_not_sent_when_unset(stub, server, key, monkeypatch):
    server.sent.clear()
    engine = _engine(stub, "usage")
    engine.generate("a", GenerationSettings())
    monkeypatch.setenv(KEY_ENV, "sk-rotated")
    engine.generate("b", GenerationSettings())
    monkeypatch.delenv(KEY_ENV)
    engine.generate("c", GenerationSettings())
    engine.close()
    assert [r["authorization"] for r in server.sent] == [f"Bearer {key}", "Bearer sk-rotated", None]


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
        _engine(stub, "eof").generate("Say hello.", GenerationSettings())


def test_timeout_is_a_clear_error(stub):
    engine = _engine(stub, "hang", timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"no answer within 0.3 s") as info:
        engine.generate("Say hello.", GenerationSettings())
    assert info.value.status_code is None
    assert time.monotonic() - started < HANG_S  # it gave up on its own, before the server answered


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


def _sent(server, path: str) -> int:
    return sum(m == path for m, _ in server.requests)


def test_a_transient_503_is_retried_and_the_tries_are_recorded(stub, server, key):
    path = f"flaky-2.{_tag()}"
    g = _engine(stub, path, tries=3).generate("Say hello.", GenerationSettings())
    assert g.text == "ok" and g.extra["attempts"] == 3 and _sent(server, path) == 3


def test_a_query_that_still_fails_says_how_often_it_was_tried(stub, server, key):
    path = f"flaky-5.{_tag()}"
    with pytest.raises(EngineError, match=r"answered 503: .*overloaded, try again \(after 3 tries\)") as info:
        _engine(stub, path, tries=3).generate("Say hello.", GenerationSettings())
    assert info.value.attempts == 3 and _sent(server, path) == 3 and info.value.status_code == 503


@pytest.mark.parametrize("code", [401, 403])
def test_refused_credentials_stop_at_once_with_the_reason(stub, server, key, code):
    path = f"status-{code}.{_tag()}"
    with pytest.raises(AuthError, match=rf"answered {code}: .*no -- the server refused the credentials; check the key in \${KEY_ENV}") as info:
        _engine(stub, path, tries=5).generate("Say hello.", GenerationSettings())
    assert info.value.status_code == code and _sent(server, path) == 1
    _assert_no_key(key, info.value)


def test_a_client_error_is_not_retried(stub, server, key):
    path = f"status-400.{_tag()}"
    with pytest.raises(EngineError, match="answered 400"):
        _engine(stub, path, tries=5).generate("Say hello.", GenerationSettings())
    assert _sent(server, path) == 1


def test_an_html_page_with_status_200_is_a_clear_error(stub, server, key):
    path = f"html-{_tag()}"
    with pytest.raises(EngineError, match=r"answered with an HTML page, not an event stream: is the base URL the API root"):
        _engine(stub, path, tries=3).generate("Say hello.", GenerationSettings())
    assert _sent(server, path) == 1


def test_a_trickling_answer_hits_the_per_query_deadline_and_is_not_retried(stub, server, key):
    path = f"trickle-{TRICKLE_S * 1e3:.0f}.{_tag()}"
    engine = _engine(stub, path, tries=3, timeout_s=10 * TRICKLE_S, deadline_s=3.5 * TRICKLE_S)
    with pytest.raises(EngineError, match=r"was not finished within 1.05 s \(deadline_s\) after (\d) chunks") as info:
        engine.generate("Say hello.", GenerationSettings())
    chunks = int(info.value.args[0].rsplit("after ", 1)[1].split()[0])
    assert chunks < TRICKLE_CHUNKS and _sent(server, path) == 1  # the read timeout alone would have let all through


def test_a_silent_server_is_cut_by_the_deadline_not_only_the_read_timeout(stub):
    engine = _engine(stub, "hang", tries=3, timeout_s=30, deadline_s=0.3)
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
