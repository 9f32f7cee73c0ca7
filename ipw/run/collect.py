"""Shard results that come home when the nodes share no disk (``ipw launch --collect``).

Without a filesystem every node sees at the same path, a shard cannot write into the launch folder.
It writes its run folder on its own node instead, under :func:`node_root` (``$IPW_SHARD_DIR``, or
``<tmp>/ipw-shards``) as ``<launch-id>/<cell>/shard-i-of-n``, and its Ray task returns that folder
as bytes (a gzip'd tar, :func:`pack`), which travel through Ray's object store to the launching
node; there :func:`unpack` puts the folder into the launch folder, where ``ipw report``, ``ipw
compare`` and ``ipw launch --resume`` read it as if it had been written there. A shard does this
when the launch asks (``--collect``) or when the launch folder is not visible on its node.

- **A shard that fails** (an engine whose server refuses the key) is returned as well, with its
  records so far, inside the error (:class:`ShardFailed`).
- **``--resume``** sends each unfinished shard the copy the launcher holds (its *seed*); the node
  that runs it continues from those records, or from its own copy if that holds more (the node
  that ran it before, never collected).
- **A node lost mid-shard** takes its copy with it: Ray runs the shard again on another node,
  which starts from the seed (from nothing on a first launch). A shared filesystem keeps every
  record of a lost node; collecting keeps what came home.

Why tar and gzip from the standard library rather than a transfer tool: Ray already moves the bytes
between nodes (its object store), and a run folder is a few files; nothing else is needed on the
nodes.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from ipw.core.errors import IpwError
from ipw.store import LOCK, MANIFEST, RunStore

ENV = "IPW_SHARD_DIR"


def node_root() -> Path:
    """Where shards write on this node when results are collected: ``$IPW_SHARD_DIR`` or ``<tmp>/ipw-shards``."""
    return Path(os.environ.get(ENV) or Path(tempfile.gettempdir()) / "ipw-shards")


class ShardFailed(IpwError):
    """A collected shard that failed: its reason, and its run folder as :func:`pack` made it."""

    def __init__(self, message: str, folder: bytes = b"") -> None:
        super().__init__(message)
        self.folder = folder

    def __reduce__(self):  # through Ray (pickle) with the folder
        return ShardFailed, (str(self), self.folder)


def pack(folder: Path) -> bytes:
    """``folder`` (a run folder) as a gzip'd tar, its lock file left out; empty bytes if it is not there."""
    folder = Path(folder)
    if not folder.is_dir():
        return b""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:  # the journal's JSON shrinks ~10x even so
        for path in sorted(folder.rglob("*")):
            if path.name != LOCK and (path.is_file() or path.is_dir()) and not path.is_symlink():
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buf.getvalue()


def unpack(data: bytes, folder: Path) -> Path:
    """Put the run folder packed in ``data`` at ``folder`` (replacing what is there, whole or not at
    all: it is unpacked beside, then renamed in). Only plain files and folders inside it are taken:
    an absolute name, a ``..``, a link or a device is an error."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = tar.getmembers()
            for m in members:
                parts = Path(m.name).parts
                if Path(m.name).is_absolute() or ".." in parts or not (m.isfile() or m.isdir()):
                    raise IpwError(f"the shard folder sent for {folder} holds {m.name!r}, which is not a plain file "
                                   "inside it; nothing was written")
            for m in members:
                target = tmp / m.name
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(m) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        if not (tmp / MANIFEST).is_file():
            raise IpwError(f"the shard folder sent for {folder} is not a run (no {MANIFEST}); nothing was written")
        old = folder.with_name(f".{folder.name}.old")
        if folder.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def records(folder: Path) -> int:
    """How many queries a run folder holds (0 where there is none)."""
    return len(RunStore(folder).done_ids()) if (Path(folder) / MANIFEST).is_file() else 0


def local_home(root: Path, cell: str, run_id: str, seed: bytes | None) -> Path:
    """The shard's run folder on this node, seeded with the launcher's copy unless the node's own
    holds more records (it ran the shard further before)."""
    folder = node_root() / root.name / cell / run_id
    if seed:
        mine = records(folder)
        unpacked = unpack(seed, folder.with_name(f".{run_id}.seed"))
        if records(unpacked) >= mine:
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(unpacked, folder)
        else:
            shutil.rmtree(unpacked, ignore_errors=True)
    return folder
