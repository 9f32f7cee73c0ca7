"""Shards: a deterministic part of a query set, so that one set runs on several machines.

``ipw profile --shard i/n`` runs shard ``i`` of ``n`` (0 <= i < n). Which queries a shard holds:

1. Within each domain, the queries are ordered by a stable hash of their id (the first 8 bytes of
   SHA-256 of the id in UTF-8), not by file order: the split is the same on every machine, in every
   session of a resumed run, and whatever order the file lists them in.
2. Each domain's queries are dealt round-robin to the shards, each domain starting where the
   previous one stopped (domains in name order). Every shard gets every domain's count divided by
   n, rounded down or up, and the shards' sizes differ by at most one.

The shards of one set are disjoint and together hold every query. A shard's manifest records
``shard`` (index, count, the queries it holds and the SHA-256 of their ids, in order), each of its
sessions records the host it ran on, and each record carries ``shard`` (``"i/n"``, set by the
store from the manifest). With ``--limit N``, a shard takes N of its own queries.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from dataclasses import dataclass

from ipw.core.errors import IpwError

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse(spec: str | Shard | None) -> Shard | None:
    """``"i/n"`` as a :class:`Shard` (None stays None); anything else is an IpwError saying the form."""
    if spec is None or isinstance(spec, Shard):
        return spec
    m = _SPEC.fullmatch(str(spec))
    if not m or int(m[2]) < 1 or int(m[1]) >= int(m[2]):
        raise IpwError(f"shard {spec!r}: give i/n with 0 <= i < n (shard i of n, counted from 0), e.g. 0/4")
    return Shard(int(m[1]), int(m[2]))


def id_hash(query_id: str) -> int:
    return int.from_bytes(hashlib.sha256(str(query_id).encode()).digest()[:8], "big")


def assign(queries, count: int) -> list[int]:
    """The shard of each query (same order as ``queries``)."""
    by_domain: dict[str, list[int]] = {}
    for i, q in enumerate(queries):
        by_domain.setdefault(str(q.domain), []).append(i)
    out = [0] * len(queries)
    start = 0
    for domain in sorted(by_domain):
        ranked = sorted(by_domain[domain], key=lambda i: (id_hash(queries[i].id), str(queries[i].id)))
        for k, i in enumerate(ranked):
            out[i] = (start + k) % count
        start = (start + len(ranked)) % count
    return out


def take(queries, spec: str | Shard | None) -> list:
    """The queries of shard ``spec`` in their file order (all of them when ``spec`` is None)."""
    queries = list(queries)
    shard = parse(spec)
    if shard is None:
        return queries
    owner = assign(queries, shard.count)
    return [q for q, s in zip(queries, owner) if s == shard.index]


def manifest_fields(spec: str | Shard | None, picked) -> dict:
    """``{"shard": ...}`` for the manifest of a sharded run (nothing for an unsharded one)."""
    shard = parse(spec)
    if shard is None:
        return {}
    ids = hashlib.sha256("\n".join(str(q.id) for q in picked).encode()).hexdigest()
    return {"shard": {"index": shard.index, "count": shard.count, "spec": str(shard), "n": len(picked), "ids_sha256": ids}}


def restrict(queries, spec: str | Shard | None):
    """The query set cut to shard ``spec`` (same name, path and SHA-256: the file is the same);
    ``queries`` itself when the run is not sharded. The run's session records the shard in the
    manifest (:func:`manifest_fields`) and on every record (:func:`tag`)."""
    from dataclasses import replace

    if parse(spec) is None:
        return queries
    return replace(queries, queries=tuple(take(queries.queries, spec)))


def tag(spec: str | Shard | None) -> str | None:
    """``"i/n"``, the shard a record carries; None for an unsharded run."""
    shard = parse(spec)
    return None if shard is None else str(shard)


def node() -> dict:
    """Where this session runs: host name and, inside a Ray task, the Ray node id."""
    info = {"host": socket.gethostname()}
    if os.environ.get("IPW_RAY_NODE_ID"):
        info["ray_node_id"] = os.environ["IPW_RAY_NODE_ID"]
    return info

