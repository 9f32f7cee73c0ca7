"""Which configured keys are secrets, and their redaction from what a run stores or prints.

A key is redacted wherever it occurs as a substring (answers, ``extra``, error messages, grade
reasons), so a server that echoes the request headers cannot put it into a record. Substring
replacement is only safe for a string that no answer contains by chance: with ``OPENAI_API_KEY=x``
the answer "Mexico City" became "Me[redacted]ico City", and with a key "5" every answer "5" became
"[redacted]", and both were graded wrong. So a key is treated as a secret only when it has at least
:data:`MIN_SECRET_CHARS` characters and is not a common placeholder (:data:`PLACEHOLDERS`); any other
key is left in place, and :func:`not_secret_reason` says why, never repeating the key.

The threshold is ours: real API keys are long random strings (OpenAI's ``sk-`` keys are over 40
characters; vLLM's ``--api-key`` takes any string), while strings under 8 characters are words and
numbers that answers contain. The grade is always of the answer as the server sent it; redaction
applies to what is stored (``ipw.run.record.redact_record``).
"""

from __future__ import annotations

MIN_SECRET_CHARS = 8
"""A key shorter than this [characters] is not a secret: it is not redacted as a substring."""

REDACTED = "[redacted]"

# Keys that stand for "no key" in the servers' own documentation and in common use; compared
# case-insensitively after stripping. Sources: vLLM's OpenAI-compatible server docs ("EMPTY",
# "token-abc123"), llama.cpp's server README ("sk-no-key-required"), Ollama's OpenAI compatibility
# docs ("ollama"), LM Studio's docs ("lm-studio"); the rest are generic placeholders.
PLACEHOLDERS = frozenset({
    "x", "empty", "none", "null", "sk-...", "dummy", "placeholder", "test", "key", "token", "changeme",
    "not-needed", "no-key", "sk-no-key-required", "token-abc123", "ollama", "lm-studio",
})  # fmt: skip


def not_secret_reason(key: str, placeholders: frozenset[str] | set[str] = frozenset()) -> str | None:
    """Why ``key`` is not redacted (too short, or a placeholder; ``placeholders`` adds the engine's
    own), or None when it is a secret or empty (nothing to redact). The reason never contains the key."""
    if not key:
        return None
    if key.strip().lower() in PLACEHOLDERS | {p.lower() for p in placeholders}:
        return "it is a common placeholder value, not a secret"
    if len(key) < MIN_SECRET_CHARS:
        return f"it is shorter than {MIN_SECRET_CHARS} characters, too short to be a secret"
    return None


def secret_keys(keys, placeholders: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """The keys among ``keys`` that are redacted: non-empty, and with no :func:`not_secret_reason`."""
    return [k for k in keys if k and not_secret_reason(k, placeholders) is None]


def redact(value, secrets):
    """``value`` with every occurrence of each non-empty string in ``secrets`` replaced by
    ``[redacted]``; strings inside dicts, lists and tuples too (keys included). Other values pass.
    It replaces whatever it is given: pick the secrets with :func:`secret_keys`."""
    secrets = [s for s in secrets if s]
    if not secrets:
        return value
    if isinstance(value, str):
        for s in secrets:
            value = value.replace(s, REDACTED)
        return value
    if isinstance(value, dict):
        return {redact(k, secrets): redact(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v, secrets) for v in value)
    return value
