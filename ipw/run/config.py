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
    cpu_scope: str | None = None  # the CPU estimate's scope: "machine", "process-tree", "server" (None: by engine, ipw.run.cpu_scope)
    server_pid: int | None = None  # the server's process, whose CPU time the estimate counts (ipw.run.cpu_scope)
    order: str = "interleaved"  # the order queries run in (:func:`run_order`): "interleaved" or "file"
    order_seed: int = 0  # the interleaved order's seed
    answer_stops: bool = True  # short answers end at their line's end (ANSWER_STOPS, by grader)

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
        if self.order not in ORDERS:
            raise IpwError(f"order {self.order!r}: use one of {', '.join(ORDERS)}")

    def to_dict(self) -> dict:
        return asdict(self) | {"settings": self.settings.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        s = dict(d["settings"])
        s["stop"] = tuple(s.get("stop", ()))
        d = {"order": "file", "answer_stops": False} | d  # a run of an earlier ipw resumes as it ran
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


ORDERS = ("interleaved", "file")
ORDER_VERSION = 1


def run_order(queries, order: str = "file", seed: int = 0) -> list:
    """The queries in the order a run takes them.

    ``file``: as the file lists them. ``interleaved`` (version :data:`ORDER_VERSION`): each
    domain's queries in a seeded random order (``random.Random(seed)`` shuffling the domains in the
    order they first appear), then merged so that every prefix of the run holds each domain in
    proportion to its size: the k-th of a domain's n queries sorts at (k + 1/2) / n, ties by the
    domain's first appearance (the largest-remainder idea of proportional apportionment, applied to
    every prefix at once). A run stopped after m queries is then a sample of every domain, and of
    every difficulty within it (the shipped set lists each domain easy to hard), and the machine's
    load over time is spread over the domains instead of following them."""
    queries = list(queries)
    if order == "file":
        return queries
    if order != "interleaved":
        raise IpwError(f"order {order!r}: use one of {', '.join(ORDERS)}")
    import random

    by_domain: dict[str, list] = {}
    for q in queries:
        by_domain.setdefault(q.domain, []).append(q)
    rng = random.Random(seed)
    keyed = []
    for rank, qs in enumerate(by_domain.values()):
        rng.shuffle(qs)
        keyed += [((k + 0.5) / len(qs), rank, q) for k, q in enumerate(qs)]
    return [q for *_, q in sorted(keyed, key=lambda x: x[:2])]


def order_entry(todo: list, order: str, seed: int) -> dict:
    """The manifest's record of a run's order: its name, version, seed and the SHA-256 of the ids in
    order (one per line), so that a resumed or repeated run can be checked against it."""
    import hashlib

    digest = hashlib.sha256("\n".join(str(q.id) for q in todo).encode()).hexdigest()
    return {"name": order, "version": ORDER_VERSION if order == "interleaved" else None, "seed": seed,
            "ids_sha256": digest}  # fmt: skip


def select(queries, limit: int | None, order: str = "file", seed: int = 0) -> list:
    """The queries of a run, in its order (:func:`run_order`): all, or ``limit`` of them: the
    first ``limit`` of the interleaved order (a sample in proportion to the domains), or, in file
    order, taken round-robin across domains, so that a short run still covers every domain."""
    queries = run_order(queries, order, seed)
    if not limit or limit >= len(queries):
        return queries
    if order == "interleaved":
        return queries[:limit]
    by_domain: dict[str, list] = {}
    for q in queries:
        by_domain.setdefault(q.domain, []).append(q)
    picked, rank = [], 0
    while len(picked) < limit:
        picked += [qs[rank] for qs in by_domain.values() if rank < len(qs)][: limit - len(picked)]
        rank += 1
    return picked


ANSWER_STOPS = {"numeric": ("\n",), "exact": ("\n",), "mc": ("\n",)}
"""Stop strings by grader (``RunConfig.answer_stops``): a short answer ends at its line's end. The
graders of short answers read a number, a phrase or a letter, and what a small model writes after
the answer's line (a second guess, a worked example) is what they then misread. Measured on the
shipped set with the shipped model (llama.cpp, temperature 0, the project's 2-core VM): 23.8% ->
25.8% accuracy and 25% fewer output tokens (``benchmarks/main_job.py --replay``: at temperature 0 a
stop string only cuts the same output short, so the replay is exact). Not for ``regex`` (a pattern
may span lines) or ``judge``, nor for queries with their own stop strings (lm-eval ``until``)."""


def query_settings(settings: GenerationSettings, query, answer_stops: bool = False) -> GenerationSettings:
    """The settings for one query: an lm-eval task's ``until`` strings become stop strings; else,
    with ``answer_stops``, its grader's (:data:`ANSWER_STOPS`)."""
    until = tuple(query.meta.get("until", ()) or ())
    if not until and answer_stops:
        until = ANSWER_STOPS.get(query.grader, ())
    return replace(settings, stop=tuple(dict.fromkeys(settings.stop + until))) if until else settings
