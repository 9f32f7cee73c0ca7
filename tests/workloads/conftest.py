"""Fixtures the workload tests share: the OpenAI-compatible stub server (tests/workloads/openai_stub.py)
and a query-set file of the test module's ``QUERIES``."""

from __future__ import annotations

import json

import pytest

from tests.workloads.openai_stub import StubServer


@pytest.fixture(scope="module")
def server():
    """One stub server on 127.0.0.1 for the module (a module wanting a fresh one per test defines its own)."""
    s = StubServer().start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def stub(server):
    """The base URL of the module's stub server (``http://127.0.0.1:PORT``; a mode's API root is ``{stub}/<mode>/v1``)."""
    return server.url


@pytest.fixture
def queryset(tmp_path, request):
    """The test module's ``QUERIES`` written as a JSONL query set."""
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in request.module.QUERIES))
    return path
