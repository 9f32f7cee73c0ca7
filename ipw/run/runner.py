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
from ipw.run.config import RunConfig, absolute_queries, applies, load_queries, resolve_engine_name
from ipw.run.serving import executor as serving
from ipw.run.session import RunObserver
from ipw.core.errors import IpwError
from ipw.store import MANIFEST, RunStore, new_run_id, validate_run_id


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
    config = absolute_queries(replace(config, engine=resolve_engine_name(config.engine)))
    queries = load_queries(config)
    label = Path(str(config.engine_options.get("model", "default"))).stem
    run_id = validate_run_id(config.run_id or new_run_id(f"{config.engine}-{label}"))
    path = Path(config.runs_dir) / run_id
    if path.exists():  # before a model loads (RunStore.create checks again, for a folder made meanwhile)
        raise IpwError(f"run folder {path} exists already; use --resume {path} to continue it")
    own = engine is None
    engine = engine or get_engine(config.engine, **config.engine_options)
    try:
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


SAFE_CHANGES = frozenset({"tries", "backoff_s", "timeout_s", "deadline_s", "api_key_env"})
"""Engine options a resumed run may change (how long to wait, how often to retry, where the key
is), for the openai engine; every other option of a run is its manifest's."""


def stored_config(run: Path | str) -> RunConfig:
    """The config of a run folder, from its manifest (an :class:`IpwError` naming what the folder is
    when it is not a run: a launch, or a folder of shards)."""
    path = Path(run)
    if not (path / MANIFEST).is_file():
        launch = next((p for p in (path, path.parent) if (p / "launch.json").is_file()), None)
        if launch is not None:
            raise IpwError(f"{path} is {'a cell of ' if launch != path else ''}an ipw launch: continue it with "
                           f"ipw launch --resume {launch}")  # fmt: skip
        shards_here = shard_folders(path)
        if shards_here:
            raise IpwError(f"{path} holds the shards of one run, not a run: resume each shard "
                           f"({'; '.join(f'ipw profile --resume {p}' for p in shards_here)})")  # fmt: skip
        raise IpwError(f"{path} is not an ipw run (no {MANIFEST})")
    return RunConfig.from_dict(RunStore(path).manifest["config"])


def shard_folders(path: Path) -> list[Path]:
    """The run folders of shards inside ``path`` (a cell of a launch, or ``--shard`` runs put together)."""
    return sorted(p for p in Path(path).iterdir() if p.is_dir() and (p / MANIFEST).is_file()) if Path(path).is_dir() else []


def resume(run: Path | str, engine: Engine | None = None, observer: RunObserver | None = None,
           retry_errors: bool = False, changes: dict | None = None) -> RunStore:  # fmt: skip
    """Continue a stopped run: same config, same query set (checked by hash), missing ids only
    (and, with ``retry_errors``, the ids whose latest record is an engine error). ``changes``: engine
    options of :data:`SAFE_CHANGES` for this session (recorded in the manifest's ``option_changes``)."""
    config = stored_config(run)
    changes = dict(changes or {})
    unsafe = sorted(set(changes) - SAFE_CHANGES)
    if unsafe or (changes and config.engine != "openai"):
        raise IpwError(f"a resumed run keeps its manifest's options; {', '.join(unsafe) or ', '.join(changes)} "
                       f"cannot change here (run {run} uses the {config.engine} engine)")  # fmt: skip
    config = replace(config, engine_options=config.engine_options | changes)
    queries = _stored_queries(config, run)
    store = RunStore.open(run)
    if changes:
        entry = {"at": datetime.now(timezone.utc).isoformat(), "engine_options": changes}
        store.update_manifest(option_changes=store.manifest.get("option_changes", []) + [entry])
    own = engine is None
    engine = engine or get_engine(config.engine, **config.engine_options)
    try:
        return execute(store, config, engine, observer, queries, retry_errors=retry_errors)
    finally:
        if own:
            engine.close()


def _stored_queries(config: RunConfig, run):
    """The query set of a resumed run; a relative path that is not found from here (a run made by an
    earlier ipw, which stored the path as given) is said so."""
    q = Path(config.queries)
    if not config.lm_eval and not q.is_absolute() and not q.exists() and ("/" in config.queries or q.suffix):
        raise IpwError(f"run {run}'s query set {config.queries!r} is a path relative to the folder the run was started "
                       f"in, not found from {Path.cwd()}: resume from that folder (runs made now store absolute paths)")  # fmt: skip
    return load_queries(config)


def _version() -> str:
    from ipw import __version__

    return __version__
