"""A run in shards, loaded as one run.

The run folders of ``ipw profile --shard i/n`` (the same query set, one folder per shard, each
measured on its own machine) under one folder are one run: ``ipw.store.load(folder)`` merges them.
``ipw launch`` writes exactly that, one such folder per model x engine cell under the launch folder;
a launch folder with a single cell loads as that cell.

- ``queries``: every shard's records (an id stored twice counts once, the later record winning),
  plus ``node``: the host that ran the record (from its session; a shard resumed elsewhere has
  records from two hosts). ``shard`` is ``i/n``.
- ``timeline`` (read on first use, as a single run's) and ``idle``: every shard's, with domains prefixed by the shard (``s0/gpu:0``) and
  sessions numbered one after another, since each machine has its own clock and its own devices.
- ``manifest``: the first shard's, with ``shards`` (one entry per shard: folder, status, hosts,
  hardware, queries), ``hardware`` naming every node, the union of meters, every session (with its
  shard), ``status`` ``complete`` only when every shard is there and complete, and ``missing_shards``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ipw.core.errors import IpwError
from ipw.store.files import MANIFEST
from ipw.store.run import Run, TimelineSource
from ipw.core.records import RECORD_COLUMNS

NODE = "node"


def _is_run(p: Path) -> bool:
    return p.is_dir() and (p / MANIFEST).is_file()


def cells(path: Path) -> list[Path]:
    """The sharded runs under a launch folder (folders whose children are runs)."""
    return sorted(p for p in Path(path).iterdir() if p.is_dir() and any(_is_run(c) for c in p.iterdir()))


def run_folders(path: Path | str) -> list[Path]:
    """The run paths a folder stands for: itself (a run, or one sharded run), or each cell of a launch."""
    path = Path(path)
    if _is_run(path) or any(_is_run(c) for c in path.iterdir()):
        return [path]
    return cells(path) or [path]


def load_sharded(path: Path, load_one):
    path = Path(path)
    if not path.is_dir():
        raise IpwError(f"{path} is not an ipw run (no {MANIFEST})")
    shards = sorted((p for p in path.iterdir() if _is_run(p)), key=lambda p: p.name)
    if not shards:
        found = cells(path)
        if len(found) == 1:
            return load_sharded(found[0], load_one)
        if found:
            raise IpwError(f"{path} holds {len(found)} runs (one per model x engine): give them one by one, "
                           f"e.g. {' '.join(str(c) for c in found[:3])}")
        raise IpwError(f"{path} is not an ipw run (no {MANIFEST})")
    return _merge(path, shards, load_one)


def _shard_of(manifest: dict, folder: Path) -> dict:
    spec = manifest.get("shard")
    if not isinstance(spec, dict) or "index" not in spec or "count" not in spec:
        raise IpwError(f"{folder.parent} is a folder of runs, not one run in shards ({folder.name} is no shard): "
                       f"give one run, e.g. {folder}")
    return spec


def _host(session: dict) -> str | None:
    node = session.get("node") if isinstance(session, dict) else None
    return node.get("host") if isinstance(node, dict) else None


def _merge(path: Path, folders: list[Path], load_one):
    import pandas as pd

    runs = [load_one(f) for f in folders]
    specs = [_shard_of(r.manifest, f) for r, f in zip(runs, folders)]
    counts = {s["count"] for s in specs}
    hashes = {(r.manifest.get("queryset") or {}).get("sha256") for r in runs}
    if len(counts) > 1 or len(hashes) > 1:
        raise IpwError(f"the shards in {path} are not of one run (shard counts {sorted(counts)}, "
                       f"{len(hashes)} query sets): keep one run's shards per folder")
    index = [s["index"] for s in specs]
    if len(set(index)) < len(index):
        raise IpwError(f"{path} holds shard {max(index, key=index.count)} twice")
    order = sorted(range(len(runs)), key=lambda i: index[i])
    runs, specs, folders = [runs[i] for i in order], [specs[i] for i in order], [folders[i] for i in order]

    frames, timelines, idle, sessions, entries = [], [], [], [], []
    offset = 0
    for run, spec, folder in zip(runs, specs, folders):
        m = run.manifest
        tag = f"{spec['index']}/{spec['count']}"
        own = m.get("sessions") or []
        hosts = [_host(s) or folder.name for s in own]
        q = run.queries
        if not q.empty:
            s = q["session"].fillna(0).astype(int).to_numpy()
            node = [hosts[i] if 0 <= i < len(hosts) else folder.name for i in s]
            q = q.assign(shard=q["shard"].fillna(tag) if "shard" in q else tag, **{NODE: pd.array(node, dtype="str")})
            frames.append(q)
        prefix = f"s{spec['index']}/"
        if run.has_timeline:
            timelines.append((run.timeline_source(), prefix, offset, tag))  # not the run: its frame is not kept
        for i in run.idle or []:
            idle.append(dict(i, session=i.get("session", 0) + offset, shard=tag,
                             power_w={prefix + k: v for k, v in (i.get("power_w") or {}).items()}))
        sessions += [dict(s, shard=tag) for s in own]
        entries.append({"folder": folder.name, "shard": tag, "status": m.get("status"),
                        "hosts": sorted(set(hosts)), "hardware": m.get("hardware"),
                        "queries": len(run.queries)})
        offset += max(len(own), 1)

    first = runs[0].manifest
    count = next(iter(counts))
    missing = sorted(set(range(count)) - set(index))
    hardware = {}
    for e in entries:
        for h in e["hosts"]:
            hardware.setdefault(h, (e["hardware"] or {}).get("summary", "?"))
    summary = "; ".join(f"{h}: {s}" for h, s in hardware.items())
    manifest = {k: v for k, v in first.items() if k not in ("sessions", "shard", "status", "summary")}
    manifest |= {
        "shards": entries, "missing_shards": missing, "sessions": sessions,
        "hardware": {"summary": f"{len(hardware)} node(s): {summary}", "platform": (first.get("hardware") or {}).get("platform"),
                     "nodes": hardware},
        "meters": _union(r.manifest.get("meters") for r in runs),
        "absent": _union(r.manifest.get("absent") for r in runs),
        "queryset": dict(first.get("queryset") or {}, n=sum((r.manifest.get("queryset") or {}).get("n") or 0 for r in runs)),
        "status": "complete" if not missing and all(e["status"] == "complete" for e in entries) else "partial",
    }
    if frames:
        queries = pd.concat(frames, ignore_index=True)
        dup = queries["id"].duplicated(keep="last")
        if dup.any():
            queries = queries[~dup.to_numpy()].reset_index(drop=True)
        queries = queries[[c for c in RECORD_COLUMNS if c in queries] + [c for c in queries if c not in RECORD_COLUMNS]]
    else:
        queries = runs[0].queries.assign(**{NODE: pd.array([], dtype="str")})
    rows = sum(source.rows for source, *_ in timelines)
    return Run(path, manifest, queries, TimelineSource(lambda columns=None, lean=False: _timeline(timelines, columns, lean),
                                                      rows), idle, None)


def _timeline(parts, columns=None, lean=False):
    """The shards' timelines as one frame (read when the merged run's timeline is first used)."""
    import pandas as pd

    frames = []
    for source, prefix, offset, tag in parts:
        tl = source.read(None if columns is None else tuple(dict.fromkeys((*columns, "domain", "session"))), lean)
        frames.append(tl.assign(domain=prefix + tl["domain"].astype(str),
                                session=(tl["session"] if "session" in tl else 0) + offset, shard=tag))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return out if columns is None else out[[c for c in columns if c in out]]


def _union(lists) -> list:
    seen, out = set(), []
    for items in lists:
        for item in items or []:
            key = json.dumps(item, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                out.append(item)
    return out
