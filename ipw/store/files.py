"""The file-level safety of a run folder: safe run ids, the folder lock, writes that fail cleanly.

- A run id names one folder inside the runs folder: letters, digits, ``.``, ``_``, ``-``, starting
  with a letter or digit, at most 128 characters (so never ``..``, a path, or a newline).
- One process at a time writes a run folder: it holds an exclusive ``fcntl.flock`` on
  ``<run>/lock`` (released by the kernel when the process ends, however it ends; the file keeps
  the holder's pid and host for the message another process gets). Within one process, the stores
  of one folder share one lock. On NFS, Linux maps flock to NFS byte-range locks.
- A write that fails (a full disk: ENOSPC; a file size limit) raises :class:`StoreWriteError`
  after undoing its partial bytes, so what was written before stays whole.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import threading
import weakref
from datetime import datetime, timezone
from pathlib import Path

from ipw.core.errors import IpwError

try:
    import fcntl
except ImportError:  # Windows: msvcrt's byte-range lock stands in for flock
    fcntl = None
    import msvcrt

LOCK = "lock"
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class RunLocked(IpwError):
    """Another process holds the run folder's lock."""


class StoreWriteError(IpwError):
    """A write to a run folder failed (disk full, quota, file size limit); nothing before it was damaged."""

    def __init__(self, path: Path, error: OSError, done: str = "") -> None:
        self.path = Path(path)
        self.errno = error.errno
        why = "the disk is full" if error.errno in (errno.ENOSPC, errno.EDQUOT) else (error.strerror or str(error))
        super().__init__(f"could not write {path}: {why} ({errno.errorcode.get(error.errno, error.errno)}). "
                         f"{done or 'What was stored before is intact.'} Free some space, then continue with "
                         f"`ipw profile --resume {self.path.parent}`.")


def validate_run_id(run_id: str) -> str:
    """``run_id`` if it is a safe folder name, else an :class:`~ipw.core.errors.IpwError` saying why."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise IpwError(f"run id {run_id!r} is not allowed: use letters, digits, '.', '_' and '-' (at most 128, "
                       "starting with a letter or digit); it names one folder inside the runs folder")
    return run_id


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` whole (tmp, fsync, rename) or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise StoreWriteError(path, e) from e


def write_json_atomic(path: Path, obj, allow_nan: bool = True) -> None:
    """``obj`` as indented JSON (what JSON cannot hold as ``str``), replacing ``path`` whole or not at all."""
    write_atomic(path, json.dumps(obj, indent=2, default=str, allow_nan=allow_nan) + "\n")


def append_durably(path: Path, data: bytes) -> tuple[int, int]:
    """Append ``data`` with one write loop and one fsync; on failure cut the file back to its old
    size and raise :class:`StoreWriteError`. Returns the byte range written."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            write_all(fd, data)
            os.fsync(fd)
        except OSError as e:
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            except OSError:
                pass  # a partial last line is dropped on reopening anyway
            raise StoreWriteError(path, e, "The records stored before are intact; this one was not stored.") from e
        return size, size + len(data)
    finally:
        os.close(fd)


class FolderLock:
    """This process's exclusive hold on one run folder (see the module's docstring)."""

    _held: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
    _guard = threading.Lock()

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.unsealed: int | None = None  # journal records not yet in a segment (None: not counted yet)
        path = folder / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise IpwError(f"cannot open the lock file {path}: {e.strerror}") from e
        try:
            _lock(fd)
        except OSError as e:
            holder = _holder(fd)
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise IpwError(f"cannot lock {path}: {e.strerror}") from e
            raise RunLocked(f"run folder {folder} is in use by {holder}: one process at a time may write a run. "
                            "Wait for it to end (or stop it), then try again.") from None
        self.fd = fd
        try:
            os.ftruncate(fd, 0)
            write_all(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                      "since": datetime.now(timezone.utc).isoformat()}).encode())
        except OSError:
            pass  # the holder's name is a courtesy; the flock is the lock

    @classmethod
    def acquire(cls, folder: Path) -> FolderLock:
        key = os.path.realpath(folder)
        with cls._guard:
            lock = cls._held.get(key)
            if lock is None:
                lock = cls(Path(folder))
                cls._held[key] = lock
            return lock

    @classmethod
    def held(cls, folder: Path) -> bool:
        """Whether this process holds ``folder``'s lock."""
        with cls._guard:
            return cls._held.get(os.path.realpath(folder)) is not None

    def release(self) -> None:
        """Let go of the lock now (and forget it, so that the next acquire locks afresh)."""
        with FolderLock._guard:
            key = os.path.realpath(self.folder)
            if FolderLock._held.get(key) is self:
                del FolderLock._held[key]
        self._unlock()

    def _unlock(self) -> None:
        fd, self.fd = getattr(self, "fd", None), None
        if fd is not None:
            try:
                _unlock(fd)
            finally:
                os.close(fd)

    def __del__(self) -> None:
        self._unlock()


def _lock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:
        os.lseek(fd, 1 << 30, os.SEEK_SET)  # lock a byte far past the holder's note
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.lseek(fd, 1 << 30, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096) or b"{}")
        return f"process {info['pid']} on {info.get('host', '?')} (since {info.get('since', '?')})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


# The files of a run folder.
MANIFEST, QUERIES, IDLE, TIMELINE, SUMMARY = (
    "manifest.json", "queries.jsonl", "idle.json", "power.parquet", "summary.json",
)  # fmt: skip
