"""The runner: start, continue or finish a run, handing its queries to the serial or the serving executor.

It orchestrates only: engines generate, ``queries`` grade, ``profilers`` measure, ``store`` keeps,
``science`` computes. Each finished :class:`~ipw.core.records.QueryRecord` is handed to the caller's
:class:`~ipw.run.session.RunObserver` (the command line draws its progress bar from it). A killed run
is continued by :func:`resume`, which skips the ids already stored."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from ipw.engines import Engine, get_engine
from ipw.queries import shards
from ipw.run import serial
from ipw.run.config import RunConfig, applies, load_queries, resolve_engine_name
from ipw.run.serving import executor as serving
from ipw.run.session import RunObserver
from ipw.store import RunStore, new_run_id


def execute(store: RunStore, config: RunConfig, engine: Engine, observer: RunObserver | None = None, queries=None,
            retry_errors: bool = False) -> RunStore:  # fmt: skip
    """Run every query of the set not yet in ``store``; the heart of profile and resume. With
    ``retry_errors``, queries whose latest record is an engine error (or a meter gap) run again;
    the new record supersedes the old one (the store keeps the latest record of an id). One query
    at a time goes to :mod:`ipw.run.serial`; N in flight or batches of N to :mod:`ipw.run.serving`."""
    queries = shards.restrict(queries or load_queries(config), config.shard)
    executor = serving if applies(config) else serial
    return executor.execute(store, config, engine, observer, queries, retry_errors=retry_errors)


def profile(config: RunConfig, engine: Engine | None = None, observer: RunObserver | None = None) -> RunStore:
    """Start a new run. ``engine`` may be passed in (already loaded); else it is built from the config.

    The query set is read first, so that a bad file is reported before a model loads or a run
    folder is made."""
    config = replace(config, engine=resolve_engine_name(config.engine))
    queries = load_queries(config)
    own = engine is None
    engine = engine or get_engine(config.engine, **config.engine_options)
    try:
        label = Path(str(config.engine_options.get("model", "default"))).stem
        run_id = config.run_id or new_run_id(f"{config.engine}-{label}")
        manifest = {
            "ipw_version": _version(),
            "created": datetime.now(timezone.utc).isoformat(),
            "config": config.to_dict(),
            "engine": engine.describe(),
            "python": sys.version.split()[0],
        }
        store = RunStore.create(config.runs_dir, run_id, manifest)
        return execute(store, config, engine, observer, queries)
    finally:
        if own:
            engine.close()


def resume(run: Path | str, engine: Engine | None = None, observer: RunObserver | None = None,
           retry_errors: bool = False) -> RunStore:  # fmt: skip
    """Continue a stopped run: same config, same query set (checked by hash), missing ids only
    (and, with ``retry_errors``, the ids whose latest record is an engine error)."""
    store = RunStore.open(run)
    config = RunConfig.from_dict(store.manifest["config"])
    queries = load_queries(config)
    own = engine is None
    engine = engine or get_engine(config.engine, **config.engine_options)
    try:
        return execute(store, config, engine, observer, queries, retry_errors=retry_errors)
    finally:
        if own:
            engine.close()


def _version() -> str:
    from ipw import __version__

    return __version__
