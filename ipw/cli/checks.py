"""Checks of command-line values shared by several commands (click callbacks), and the options
``ipw profile`` and ``ipw launch`` share, defined once so that both take and refuse the same values
(``--idle nan``, ``--hz inf``, ``--timeout 0`` are usage errors in both, and no NaN or infinity
reaches a manifest)."""

from __future__ import annotations

import math
from pathlib import Path

import click


def number(low: float, strict: bool = False):
    """A click callback: a finite number >= low (> low when ``strict``); NaN and inf are usage errors."""

    def check(ctx, param, value):
        if value is not None and (not math.isfinite(value) or value < low or (strict and value == low)):
            raise click.BadParameter(f"{value!r} is not a finite number {'>' if strict else '>='} {low:g}")
        return value

    return check


def base_url(ctx, param, value):
    """A click callback: a server URL without credentials or a query string (which would be stored in
    the manifest: :func:`ipw.engines.openai.check_base_url`); refused before anything is written."""
    from ipw.core.errors import IpwError
    from ipw.engines.openai import check_base_url

    try:
        return None if value is None else check_base_url(value)
    except IpwError as e:
        raise click.BadParameter(str(e)) from None


def _apply(options):
    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def run_options(f):
    """What a run measures and asks, as ``ipw profile`` and ``ipw launch`` (per shard) both take it."""
    return _apply([
        click.option("--queries", default="default", show_default=True,
                     help="'default' (shipped set) or a JSONL file (for a launch: one every node can read)."),
        click.option("--limit", type=click.IntRange(min=1), help="Only N queries, taken round-robin across domains."),
        click.option("--max-tokens", default=64, show_default=True, type=click.IntRange(min=1)),
        click.option("--warmup", default=2, show_default=True, type=click.IntRange(min=0),
                     help="Warm-up queries, run first and not recorded."),
        click.option("--idle", "idle_s", default=5.0, show_default=True, callback=number(0),
                     help="Seconds of idle baseline measured first."),
        click.option("--hz", default=0.0, show_default=True, callback=number(0),
                     help="Power timeline rate (0: off; per-query energy never needs it)."),
    ])(f)  # fmt: skip


def server_options(f):
    """The OpenAI-compatible server and how its failures are retried (``ipw.engines.retry``)."""
    return _apply([
        click.option("--base-url", callback=base_url,
                     help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (vLLM, llama.cpp server, Ollama)."),
        click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
                     help="Environment variable holding the API key (never stored)."),
        click.option("--retries", default=2, show_default=True, type=click.IntRange(min=0),
                     help="openai engine: retries of a query after a timeout, HTTP 408/429/5xx or a broken stream."),
        click.option("--retry-backoff", default=1.0, show_default=True, callback=number(0),
                     help="openai engine: wait before the first retry [s], doubling (50-100% jitter, at most 30 s)."),
        click.option("--timeout", "timeout_s", default=60.0, show_default=True, callback=number(0, strict=True),
                     help="openai engine: longest wait for any one read (connect, first byte, each chunk) [s]."),
        click.option("--deadline", "deadline_s", default=300.0, show_default=True, callback=number(0, strict=True),
                     help="openai engine: longest one query may take, every try and wait included [s]; kept by "
                          "the clock (docs/serving.md)."),
    ])(f)  # fmt: skip


RETRY_OPTIONS = {"retries": "tries", "retry_backoff": "backoff_s", "timeout_s": "timeout_s", "deadline_s": "deadline_s"}
""":func:`server_options`' waits and tries (parameter names) -> the engine option each sets."""


def engine_option(name: str, value):
    """(engine option, value) that the command-line option ``name`` sets: ``--retries N`` is N + 1 tries."""
    return RETRY_OPTIONS.get(name, name), value + 1 if name == "retries" else value


def retry_options(o: dict) -> dict:
    """The engine options of :func:`server_options`' retry values."""
    return dict(engine_option(n, o[n]) for n in RETRY_OPTIONS)


def distinct_runs(paths) -> None:
    """Refuse one run folder given twice (the same path, or a link to it): compare and report would
    show it twice, as two runs."""
    from ipw.core.errors import IpwError

    seen: dict[Path, object] = {}
    for p in paths:
        real = Path(p).resolve()
        if real in seen:
            if str(seen[real]) == str(p):
                raise IpwError(f"run {p} is given twice; give each run once")
            raise IpwError(f"{seen[real]} and {p} are the same run ({real}); give each run once")
        seen[real] = p
