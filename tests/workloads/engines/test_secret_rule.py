"""The rule of which keys are secrets (ipw.engines.secrets): a secret is removed from any text, a
short key or a placeholder leaves every text as it was, and the reason is fixed text (never the key)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ipw.engines.secrets import MIN_SECRET_CHARS, PLACEHOLDERS, REDACTED, not_secret_reason, redact, secret_keys

REASONS = {"it is a common placeholder value, not a secret",
           f"it is shorter than {MIN_SECRET_CHARS} characters, too short to be a secret"}
keys = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)


@given(key=keys, before=st.text(max_size=30), after=st.text(max_size=30))
def test_a_secret_is_removed_and_anything_else_is_left_alone(key, before, after):
    text = before + key + after
    out = redact({"answer": text, "parts": [text, (text,)], "n": 5}, secret_keys([key]))
    if len(key) >= MIN_SECRET_CHARS and key.lower() not in PLACEHOLDERS:
        assert not_secret_reason(key) is None
        assert all(key not in s for s in (out["answer"], out["parts"][0], out["parts"][1][0]))
        assert REDACTED in out["answer"] and out["n"] == 5
    else:
        reason = not_secret_reason(key)
        assert reason is not None and out == {"answer": text, "parts": [text, (text,)], "n": 5}
        assert reason in REASONS  # fixed text: it cannot carry the key


def test_placeholders_match_in_any_case_and_the_engine_adds_its_own():
    assert not_secret_reason("EMPTY") == not_secret_reason("Placeholder ") == "it is a common placeholder value, not a secret"
    assert not_secret_reason("set-per-request-by-ipw") is None  # 22 characters: a secret unless named
    assert not_secret_reason("set-per-request-by-ipw", {"set-per-request-by-ipw"}) is not None
    assert not_secret_reason("") is None and secret_keys(["", "x", "abcdefgh"]) == ["abcdefgh"]
