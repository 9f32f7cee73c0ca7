"""What ``ipw profile --resume RUN`` does with the other options of the command line.

A resumed run takes its options from its manifest (``RunConfig``), so that every record of a run
is made the same way. An option given beside ``--resume`` is therefore one of three kinds:

- **safe to change** (:data:`SAFE`): the openai engine's ``--timeout``, ``--deadline``,
  ``--retries``, ``--retry-backoff`` and ``--api-key-env``: how long to wait and how often to try
  again, not what is asked or measured. They are applied to this session, recorded in the manifest
  (``option_changes``), and said so;
- **the same as the manifest's**: accepted without a word;
- **contradicting the manifest** (a different ``--concurrency``, ``--max-tokens``, ``--shard``,
  ``--queries``, ``--model``, ...), or naming a new run (``--run-id``, ``--runs-dir``): refused with
  one line naming them, before anything loads. A run with other options is a new run.
"""

from __future__ import annotations

from pathlib import Path

import click

from ipw.cli.checks import RETRY_OPTIONS, engine_option

SAFE = RETRY_OPTIONS | {"api_key_env": "api_key_env"}
"""Options of the command line safe to change on resume -> the engine option each sets."""
NEUTRAL = ("resume_run", "retry_errors", "quiet")
NEW_RUN = ("run_id", "runs_dir")


def _queries(value, cfg) -> bool:
    given = Path(str(value))
    return value in (cfg.queries, getattr(cfg, "queries_given", None)) or (
        given.is_file() and str(given.resolve()) == str(Path(cfg.queries).resolve()))  # fmt: skip


def _engine(value, cfg) -> bool:
    from ipw.run.config import resolve_engine_name

    return resolve_engine_name(value) == cfg.engine


def _device(name: str):
    return lambda value, cfg: value == cfg.engine_options.get(name, "auto" if name != "n_gpu_layers" else None)


def _lm_eval(key: str):
    return lambda value, cfg: cfg.lm_eval is not None and str(value) == str(cfg.lm_eval.get(key))


def _judge(key: str):
    return lambda value, cfg: cfg.judge is not None and value == cfg.judge.get(key)


SAME = {
    "model": lambda v, c: v == c.engine_options.get("model"),
    "engine": _engine,
    "base_url": lambda v, c: v == c.engine_options.get("base_url"),
    "completion": lambda v, c: (not v) == c.engine_options.get("chat", True),
    "queries": _queries,
    "lm_eval_task": _lm_eval("task_name"),
    "lm_eval_include": _lm_eval("include_path"),
    "limit": lambda v, c: v == c.limit,
    "max_tokens": lambda v, c: v == c.settings.max_tokens,
    "temperature": lambda v, c: v == c.settings.temperature,
    "seed": lambda v, c: v == c.settings.seed,
    "warmup": lambda v, c: v == c.warmup,
    "idle_s": lambda v, c: v == c.idle_s,
    "hz": lambda v, c: (v or None) == c.sampler_hz,
    "concurrency": lambda v, c: v == c.concurrency,
    "batch_size": lambda v, c: v == c.batch_size,
    "shard": lambda v, c: v == c.shard,
    "device": _device("device"),
    "dtype": _device("dtype"),
    "n_gpu_layers": _device("n_gpu_layers"),
    "gpus": lambda v, c: tuple(g.strip() for g in str(v).split(",") if g.strip()) == tuple(c.gpus or ()),
    "cpu_scope": lambda v, c: v == c.cpu_scope,
    "judge_base_url": _judge("base_url"),
    "judge_model": _judge("model"),
    "judge_api_key_env": _judge("api_key_env"),
}
"""For each option that defines a run: whether the given value is the one the manifest holds."""


def given(ctx: click.Context) -> list[str]:
    """The options the command line set (not defaults), by parameter name."""
    from click.core import ParameterSource

    return [p.name for p in ctx.command.params
            if ctx.get_parameter_source(p.name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)]  # fmt: skip


def flag(ctx: click.Context, name: str) -> str:
    param = next(p for p in ctx.command.params if p.name == name)
    return max(param.opts, key=len)


def check(ctx: click.Context, o: dict, run: Path, cfg) -> tuple[dict, str]:
    """(engine options to change, the line saying what the resumed session takes), or a usage error
    naming every option that contradicts the manifest of ``run``."""
    names = [n for n in given(ctx) if n not in NEUTRAL]
    new_run = [n for n in names if n in NEW_RUN]
    contra = [n for n in names if n not in SAFE and n not in NEW_RUN and not SAME.get(n, lambda v, c: False)(o[n], cfg)]
    if new_run or contra:
        shown = ", ".join(flag(ctx, n) for n in new_run + contra)
        why = " (--run-id and --runs-dir name a new run)" if new_run else ""
        raise click.UsageError(f"--resume {run} takes the run's options from its manifest; these differ from it: {shown}"
                               f"{why}. Start a new run for other options; with --resume only --timeout, --deadline, "
                               "--retries, --retry-backoff and --api-key-env may change")  # fmt: skip
    safe = [n for n in names if n in SAFE]
    if safe and cfg.engine != "openai":
        raise click.UsageError(f"{', '.join(flag(ctx, n) for n in safe)}: options of the openai engine; run {run} "
                               f"uses {cfg.engine}")  # fmt: skip
    changes, said = {}, []
    for n in safe:
        key, value = engine_option(n, o[n])
        if value != cfg.engine_options.get(key):
            changes[key] = value
            said.append(f"{flag(ctx, n)} {o[n]:g}" if isinstance(o[n], float) else f"{flag(ctx, n)} {o[n]}")
    return changes, _taken(run, cfg) + (f"; applied from the command line: {', '.join(said)}" if said else "")


def _taken(run: Path, cfg) -> str:
    """What the resumed session takes from the manifest, in a line."""
    parts = [f"engine {cfg.engine}", f"model {cfg.engine_options.get('model', 'default')}",
             f"queries {cfg.lm_eval['task_name'] if cfg.lm_eval else cfg.queries}",
             f"max-tokens {cfg.settings.max_tokens}"]  # fmt: skip
    for name, value in (("limit", cfg.limit), ("concurrency", cfg.concurrency), ("batch-size", cfg.batch_size),
                        ("shard", cfg.shard)):  # fmt: skip
        if value is not None:
            parts.append(f"{name} {value}")
    return f"resuming {run} with the options of its manifest ({', '.join(parts)})"
