"""``ipw launch``: the shards of a query set as Ray tasks across a cluster, one run folder per shard.

Ray is the engine: every shard is one Ray task (``num_gpus=1`` on a cluster with GPUs, else one
CPU), placed by Ray on any node that has the resources, retried by Ray when its worker or node dies
(``max_retries``). No scheduler or RPC of ipw's own: the driver submits, waits, and reads a
progress actor.

```
launches/<launch-id>/
  launch.json             the launch: cells (model x engine), shard count, Ray address, resources,
                          and each shard's outcome (host, records, status); written by the driver
  <cell>/                 one run in shards, loaded as one run by ipw.store.load (ipw.store.merge)
    shard-0-of-4/         a run folder of `ipw profile --shard 0/4`, measured on the node that ran it
```

- **Each shard measures its own node.** The task runs :func:`ipw.run.runner.profile` on its
  worker: meters are discovered there (a GPU shard sees only the GPU Ray gave it, through
  ``CUDA_VISIBLE_DEVICES``), the hardware inventory is that node's, and every session records its
  host and Ray node id.
- **A shard whose worker dies is resumed from its own records.** Ray runs the task again (on any
  worker); the task finds the shard's run folder and continues it with
  :func:`ipw.run.runner.resume`, which skips the ids already stored: no query is lost (the
  one in flight is run again) and none is stored twice. The folder lock keeps a late duplicate
  attempt from writing beside it.
- **Shared filesystem, or results sent home.** Where the launch folder is at the same path on
  every node (NFS or the like), shards write there and a resumed shard reads its records there.
  Where it is not (or with ``collect``), a shard writes on its own node and its task returns the
  folder through Ray's object store into the launch folder (:mod:`ipw.run.collect`).
- **Progress.** Each shard reports its counts to one Ray actor; the driver draws one bar from it.
- ``ray`` is optional: without it, :func:`launch` raises :class:`~ipw.core.errors.MissingExtra` with the
  install command.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from ipw.core.errors import IpwError, MissingExtra
from ipw.engines.openai import check_base_url
from ipw.run import cluster
from ipw.run import collect as collect_mod
from ipw.store import MANIFEST, new_run_id, validate_run_id
from ipw.store.files import write_json_atomic

LAUNCH = "launch.json"
RAY_INSTALL = "pip install 'ipw[ray]'  (or: pip install 'ray[default]>=2.9')"


def import_ray():
    try:
        import ray
    except ImportError as e:
        raise MissingExtra("Ray (needed by ipw launch)", RAY_INSTALL) from e
    return ray


@dataclass(frozen=True)
class Cell:
    """One model x engine of a launch: its name (a folder) and the run config its shards share."""

    name: str
    config: object  # ipw.run.runner.RunConfig

    def to_dict(self) -> dict:
        return {"name": self.name, "config": self.config.to_dict()}


@dataclass(frozen=True)
class LaunchSpec:
    """What to launch. ``address``: None starts a Ray instance on this machine; ``"auto"`` joins
    the cluster this machine belongs to; ``host:port`` or ``ray://host:10001`` names one.
    ``gpus_per_shard`` None: 1 when the cluster has GPUs, else 0 (then ``cpus_per_shard`` CPUs)."""

    cells: tuple[Cell, ...]
    shards: int
    launch_dir: str = "launches"
    launch_id: str | None = None
    address: str | None = None
    gpus_per_shard: float | None = None
    cpus_per_shard: float = 1.0
    max_retries: int = 3
    collect: bool = False  # shards write on their own node and send their folders home (ipw.run.collect)
    ray_options: dict = field(default_factory=dict)
    connect_timeout_s: float = 30.0  # joining the cluster at ``address`` (ipw.run.cluster)

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise IpwError(f"--shards must be at least 1, got {self.shards}")
        if not self.cells:
            raise IpwError("a launch needs at least one model x engine")
        names = [c.name for c in self.cells]
        if len(set(names)) < len(names):
            raise IpwError(f"two cells of the launch have one name: {names}")
        for n in names:
            validate_run_id(n)
        for name, value, low in (("gpus_per_shard", self.gpus_per_shard, 0.0), ("cpus_per_shard", self.cpus_per_shard, 0.0),
                                 ("connect_timeout_s", self.connect_timeout_s, None)):  # fmt: skip
            if value is not None and not (_finite(value) and (value > 0 if low is None else value >= low)):
                raise IpwError(f"{name} must be a finite number {'> 0' if low is None else '>= 0'}, got {value!r}")
        for cell in self.cells:  # a key-bearing URL would be written into launch.json and every manifest
            if cell.config.engine_options.get("base_url") is not None:
                check_base_url(cell.config.engine_options["base_url"])


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def cell_name(engine: str, model: str) -> str:
    """A folder name for a model x engine: ``engine-modelstem`` in the safe characters."""
    stem = Path(str(model)).stem or "model"
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "-" for c in f"{engine}-{stem}")[:100]


def grid(config, models: list[str], engines: list[str], extra_options: dict | None = None) -> tuple[Cell, ...]:
    """The model x engine grid over one base :class:`RunConfig` (each cell's ``engine_options``
    get its model and ``extra_options``)."""
    cells, seen = [], {}
    for engine in engines:
        for model in models:
            name = cell_name(engine, model)
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name}-{seen[name]}"
            options = dict(config.engine_options) | (extra_options or {}) | {"model": model}
            cells.append(Cell(name, replace(config, engine=engine, engine_options=options)))
    return tuple(cells)


def shard_folder(index: int, count: int) -> str:
    return f"shard-{index}-of-{count}"


# -- inside a Ray worker ---------------------------------------------------------------------------
class ShardProgress:
    """A :class:`~ipw.run.runner.RunObserver` that reports a shard's counts to the progress actor."""

    def __init__(self, actor, key: str) -> None:
        self.actor, self.key = actor, key

    def start(self, total: int, done: list) -> None:
        self.actor.start.remote(self.key, total, len(done))

    def record(self, record) -> None:
        self.actor.record.remote(self.key)

    def close(self) -> None:
        pass


def run_shard(launch_root: str, cell: str, config: dict, progress, engine_factory: Callable | None = None,
              collect: bool = False, seed: bytes | None = None) -> dict:  # fmt: skip
    """One shard, on whichever worker Ray chose: a new run folder, or the continuation of the one a
    dead worker left (its own records decide what is left to do). With ``collect``, or where the
    launch folder is not visible here, the folder is written on this node and returned as bytes
    (:mod:`ipw.run.collect`; ``seed``: the launcher's copy of an unfinished shard)."""
    from ipw.run import runner

    ray = import_ray()
    root = Path(launch_root)
    os.environ["IPW_RAY_NODE_ID"] = ray.get_runtime_context().get_node_id()
    cfg = runner.RunConfig.from_dict(config)
    local = collect or not (root / LAUNCH).is_file()
    if local:  # no shared disk (or asked not to use it): the node's own folder, sent home at the end
        path = collect_mod.local_home(root, cell, cfg.run_id, seed)
        cfg = replace(cfg, runs_dir=str(path.parent))
        try:
            outcome = _run(path, cfg, cell, progress, engine_factory)
        except Exception as e:
            raise collect_mod.ShardFailed(f"{e} (on {socket.gethostname()})", collect_mod.pack(path)) from e
        return outcome | {"collected_from": f"{socket.gethostname()}:{path}", "folder_bytes": collect_mod.pack(path)}
    return _run(Path(cfg.runs_dir) / cfg.run_id, cfg, cell, progress, engine_factory)


def _run(path: Path, cfg, cell: str, progress, engine_factory) -> dict:
    """Profile the shard into ``path``, or resume it there; its outcome."""
    from ipw.run import runner
    from ipw.store import RunStore

    if path.is_dir() and not (path / MANIFEST).is_file():
        for p in sorted(path.rglob("*"), reverse=True):  # a folder made just before a death: no records in it
            p.unlink() if p.is_file() else p.rmdir()
        path.rmdir()
    engine = engine_factory() if engine_factory is not None else None
    observer = ShardProgress(progress, f"{cell}/{cfg.shard}")
    try:
        if (path / MANIFEST).is_file():
            store = runner.resume(path, engine=engine, observer=observer)
        else:
            store = runner.profile(cfg, engine=engine, observer=observer)
        store.close()
    finally:
        if engine is not None:
            engine.close()
    manifest = RunStore(path).manifest
    return {"cell": cell, "shard": cfg.shard, "folder": str(path), "status": manifest.get("status"),
            "host": socket.gethostname(), "records": len(RunStore(path).done_ids()),
            "sessions": len(manifest.get("sessions") or [])}


def _progress_actor(ray):
    """The progress actor, on the driver's own node: an actor on a worker node would die with that
    node, and the driver with it (its next snapshot would raise)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)

    @ray.remote(num_cpus=0, scheduling_strategy=here)
    class Progress:
        """Counts per shard, for the driver's one bar (a shard restarting reports its stored count)."""

        def __init__(self) -> None:
            self.done: dict[str, int] = {}

        def start(self, key: str, total: int, done: int) -> None:
            self.done[key] = done

        def record(self, key: str) -> None:
            self.done[key] = self.done.get(key, 0) + 1

        def snapshot(self) -> dict[str, int]:
            return dict(self.done)

    return Progress.remote()


# -- the driver ------------------------------------------------------------------------------------
@dataclass
class LaunchResult:
    path: Path
    cells: list[Path]
    shards: dict[str, dict]  # "cell/i/n" -> outcome
    failed: dict[str, str]


def launch(spec: LaunchSpec, engine_factory: Callable | None = None, progress: bool = True,
           resume: Path | str | None = None) -> LaunchResult:  # fmt: skip
    """Run every shard of every cell as a Ray task; returns when all have ended. ``resume``: an
    earlier launch folder, whose complete shards are kept and the others continued."""
    ray = import_ray()
    if resume is not None:
        root = Path(resume)
    else:
        launch_id = spec.launch_id or new_run_id("launch")
        validate_run_id(launch_id)
        root = Path(spec.launch_dir) / launch_id
        if root.exists():
            raise IpwError(f"launch folder {root} exists already; continue it with ipw launch --resume {root}")
    from ipw.run.config import absolute_queries

    spec = replace(spec, cells=tuple(Cell(c.name, absolute_queries(c.config)) for c in spec.cells))  # any folder resumes
    sizes = {cell.name: _shard_sizes(cell.config, spec.shards) for cell in spec.cells}  # a bad query set: before Ray
    options = {"include_dashboard": False, "log_to_driver": False} | spec.ray_options
    cluster.connect(ray, spec.address, spec.connect_timeout_s, options)  # no folder is made unless this succeeds
    if resume is None:
        root.mkdir(parents=True)
    root = root.resolve()
    gpus = spec.gpus_per_shard
    if gpus is None:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
    resources = {"num_gpus": gpus, "num_cpus": spec.cpus_per_shard}
    record = {
        "launch_id": root.name, "created": datetime.now(timezone.utc).isoformat(), "driver": socket.gethostname(),
        "address": spec.address or "local", "ray_version": ray.__version__, "shards": spec.shards,
        "resources": resources, "max_retries": spec.max_retries, "collect": spec.collect,
        "cells": [c.to_dict() for c in spec.cells],
        "status": "running", "outcomes": {},
    }  # fmt: skip
    if resume is not None and (root / LAUNCH).is_file():
        earlier = json.loads((root / LAUNCH).read_text())
        record |= {"created": earlier.get("created"), "resumed": datetime.now(timezone.utc).isoformat(),
                   "outcomes": earlier.get("outcomes", {})}  # fmt: skip
    write_json_atomic(root / LAUNCH, record, allow_nan=False)

    task = ray.remote(run_shard).options(max_retries=spec.max_retries, retry_exceptions=False, **resources)
    actor = _progress_actor(ray)
    refs, totals, kept, homes = {}, {}, {}, {}
    for cell in spec.cells:
        cell_dir = root / cell.name
        cell_dir.mkdir(exist_ok=True)
        for i in range(spec.shards):
            cfg = replace(cell.config, runs_dir=str(cell_dir), run_id=shard_folder(i, spec.shards), shard=f"{i}/{spec.shards}")
            key = f"{cell.name}/{cfg.shard}"
            totals[key], homes[key] = sizes[cell.name][i], cell_dir / cfg.run_id
            if _complete(cell_dir / cfg.run_id, totals[key]):
                kept[key] = record["outcomes"].get(key, {"status": "complete"})
                continue
            seed = collect_mod.pack(cell_dir / cfg.run_id) if resume is not None and _collected(spec, record, key) else None
            refs[task.remote(str(root), cell.name, cfg.to_dict(), actor, engine_factory, spec.collect, seed)] = key
    outcomes, failed = dict(kept), {}
    bar = _bar(sum(totals.values()), progress)
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            for ref in ready:
                key = refs[ref]
                try:
                    outcomes[key] = _home(ray.get(ref), homes[key])
                except Exception as e:  # a Ray error wrapping the task's, or a worker lost past its retries
                    failed[key] = _reason(e)
                    outcomes[key] = _home({"status": "failed", "error": failed[key]}, homes[key], getattr(e, "cause", None))
                record["outcomes"] = outcomes
                write_json_atomic(root / LAUNCH, record, allow_nan=False)
            try:
                counts = ray.get(actor.snapshot.remote())
            except ray.exceptions.RayActorError:  # progress is for the bar alone: the shards go on without it
                counts = {}
            done = sum(min(counts.get(k, totals[k] if k in kept else 0), totals[k]) for k in totals)
            bar.update(done - bar.n)
    finally:
        bar.close()
        record |= {"status": "failed" if failed or pending else "complete", "ended": datetime.now(timezone.utc).isoformat(),
                   "outcomes": outcomes}  # fmt: skip
        write_json_atomic(root / LAUNCH, record, allow_nan=False)
    return LaunchResult(root, [root / c.name for c in spec.cells], outcomes, failed)


def _home(outcome: dict, folder: Path, failure: BaseException | None = None) -> dict:
    """A collected shard's folder put into the launch folder (the bytes are not kept in the outcome)."""
    data = outcome.pop("folder_bytes", b"") or (failure.folder if isinstance(failure, collect_mod.ShardFailed) else b"")
    if data:
        collect_mod.unpack(data, folder)
        outcome |= {"folder": str(folder), "collected": True}
    return outcome


def _collected(spec: LaunchSpec, record: dict, key: str) -> bool:
    """Whether a shard's folder in the launch folder is the copy that came home (so it seeds the shard on --resume)."""
    return spec.collect or bool(record["outcomes"].get(key, {}).get("collected"))


def resume_spec(root: Path | str, **overrides) -> LaunchSpec:
    """The spec of an earlier launch, from its ``launch.json``: its cells, shard count, retries,
    ``collect`` and the resources each shard asked for (``overrides``: address, retries...)."""
    from ipw.run.config import RunConfig

    p = Path(root) / LAUNCH
    if not p.is_file():
        raise IpwError(f"{root} is not an ipw launch (no {LAUNCH})")
    d = json.loads(p.read_text())
    cells = tuple(Cell(c["name"], RunConfig.from_dict(c["config"])) for c in d["cells"])
    resources = d.get("resources") or {}
    base = {"cells": cells, "shards": int(d["shards"]), "max_retries": int(d.get("max_retries", 3)),
            "collect": bool(d.get("collect", False)), "gpus_per_shard": resources.get("num_gpus"),
            "cpus_per_shard": float(resources.get("num_cpus", 1.0))}  # fmt: skip
    return LaunchSpec(**(base | {k: v for k, v in overrides.items() if v is not None}))


def _shard_sizes(config, count: int) -> list[int]:
    from ipw.queries import shards
    from ipw.run.config import load_queries, select

    qs = load_queries(config)
    return [len(select(shards.take(qs.queries, f"{i}/{count}"), config.limit)) for i in range(count)]


def _complete(folder: Path, size: int) -> bool:
    from ipw.store import RunStore

    if not (folder / MANIFEST).is_file():
        return False
    store = RunStore(folder)
    return store.manifest.get("status") == "complete" and len(store.done_ids()) >= size


def _reason(e: Exception) -> str:
    cause = getattr(e, "cause", None)
    if isinstance(cause, IpwError):
        return str(cause)
    text = str(e).strip().splitlines()
    return text[-1] if text else type(e).__name__


class _NoBar:
    n = 0

    def update(self, k: int) -> None:
        self.n += k

    def close(self) -> None:
        pass


def _bar(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="q", desc="shards", dynamic_ncols=True)

