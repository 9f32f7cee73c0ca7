"""What defines a run (:class:`RunConfig`, stored in the manifest so that ``--resume`` rebuilds it), and the choices made from it before anything runs: the engine, the query set, the queries of a limited run, a query's own settings, and the serving level."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ipw.core.errors import IpwError
from ipw.engines import GenerationSettings
from ipw.profilers import attribution
from ipw.queries import querysets, shards


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; stored in the manifest, so that --resume rebuilds it."""

    engine: str = "auto"
    engine_options: dict = field(default_factory=dict)
    queries: str = "default"  # a shipped set's name, or the query file's absolute path (ipw.run.runner.absolute_queries)
    queries_given: str | None = None  # the path as the command line gave it, where it was made absolute
    settings: GenerationSettings = GenerationSettings(max_tokens=64)
    warmup: int = 2
    limit: int | None = None
    idle_s: float = 5.0
    sampler_hz: float | None = None
    runs_dir: str = "runs"
    run_id: str | None = None
    lm_eval: dict | None = None
    judge: dict | None = None  # options of an OpenAI-compatible engine grading "judge" queries
    # serving regime (ipw.run.serving): N requests in flight, or batches of N; None: one at a time
    concurrency: int | None = None
    batch_size: int | None = None
    prefill_weight: float = 1.0  # the attribution rule's weight of a prompt token (ipw.profilers.attribution)
    shard: str | None = None  # "i/n": this run's part of the query set (ipw.queries.shards)
    gpus: tuple | None = None  # CUDA indices or UUIDs to measure (None: every visible GPU)
    cpu_scope: str | None = None  # the CPU estimate's scope: "machine" or "process-tree" (None: machine)

    def __post_init__(self) -> None:
        check_levels(self.concurrency, self.batch_size)
        shards.parse(self.shard)
        for name, value, low, strict in (("idle_s", self.idle_s, 0, False), ("sampler_hz", self.sampler_hz, 0, True),
                                         ("prefill_weight", self.prefill_weight, 0, False)):  # fmt: skip
            if value is None and name == "sampler_hz":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < low or (strict and value == low):  # fmt: skip
                raise IpwError(f"{name} must be a finite number {'>' if strict else '>='} {low}, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self) | {"settings": self.settings.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        s = dict(d["settings"])
        s["stop"] = tuple(s.get("stop", ()))
        return cls(**(d | {"settings": GenerationSettings(**s)}))


class ServingConfigError(IpwError, ValueError):
    """A concurrency or batch size that cannot run (below 1, both at once, or the wrong engine)."""


def check_levels(concurrency, batch_size) -> None:
    """Concurrency and batch size are None or integers >= 1, and not both set."""
    for name, value in (("concurrency", concurrency), ("batch_size", batch_size)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ServingConfigError(f"{name} must be an integer >= 1, got {value!r}")
    if concurrency is not None and batch_size is not None:
        raise ServingConfigError("set concurrency (an OpenAI-compatible server) or batch_size (the transformers "
                                 "engine), not both")  # fmt: skip


def applies(config) -> bool:
    """Whether a run goes through this executor."""
    return getattr(config, "concurrency", None) is not None or getattr(config, "batch_size", None) is not None


def rule_for(config) -> attribution.Rule:
    return attribution.Rule(prefill_weight=float(getattr(config, "prefill_weight", 1.0) or 1.0))


def resolve_engine_name(name: str) -> str:
    """``auto``: llama.cpp when llama-cpp-python is installed (about 7x faster decoding on CPU), else transformers."""
    if name != "auto":
        return name
    import importlib.util

    return "llamacpp" if importlib.util.find_spec("llama_cpp") else "transformers"


def absolute_queries(config: RunConfig) -> RunConfig:
    """``config`` with its query set file as an absolute path (the one given kept in ``queries_given``),
    so that the run can be resumed from any folder; shipped set names and lm-eval tasks stay as they are."""
    if config.lm_eval or not Path(config.queries).is_file() or Path(config.queries).is_absolute():
        return config
    return replace(config, queries=str(Path(config.queries).resolve()), queries_given=config.queries)


def load_queries(config: RunConfig):
    if config.lm_eval:
        qs = querysets.load_lm_eval_task(**config.lm_eval)
    else:
        qs = querysets.load_queryset(config.queries)
    return qs


def select(queries, limit: int | None) -> list:
    """All queries, or ``limit`` of them taken round-robin across domains in file order, so that a
    short run still covers every domain."""
    queries = list(queries)
    if not limit or limit >= len(queries):
        return queries
    by_domain: dict[str, list] = {}
    for q in queries:
        by_domain.setdefault(q.domain, []).append(q)
    picked, rank = [], 0
    while len(picked) < limit:
        picked += [qs[rank] for qs in by_domain.values() if rank < len(qs)][: limit - len(picked)]
        rank += 1
    return picked


def query_settings(settings: GenerationSettings, query) -> GenerationSettings:
    """The settings for one query: an lm-eval task's ``until`` strings become stop strings."""
    until = tuple(query.meta.get("until", ()) or ())
    return replace(settings, stop=tuple(dict.fromkeys(settings.stop + until))) if until else settings
