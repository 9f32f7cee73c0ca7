"""Whose CPU time the CPU estimate charges, chosen by what the run measures.

The labelled CPU estimate (:mod:`ipw.devices.estimate`, used only where no CPU counter exists)
turns CPU time into energy. Machine-wide CPU time charges every other process's work to each query:
on the project's shared 2-core VM a run read 213.9 J per query and a negative energy above idle
(-0.97 J per query), the idle baseline having caught other work too. So the scope follows what
does the work of a query:

1. ``--cpu-scope`` (``RunConfig.cpu_scope``) when given: the user's choice;
2. ``--server-pid PID``: a server on this machine, not started by ipw: its process tree and ipw's
   own (the client streams and parses) (``server``);
3. ``IPW_CPU_ESTIMATE_SCOPE`` when set;
4. an engine that runs in this process (transformers, llama.cpp): this process tree
   (``process-tree``), which holds every cycle the model spends;
5. otherwise (a server ipw was not told of, possibly on another machine): the whole machine
   (``machine``): its work is not in this process tree, and charging the machine is the only
   way not to miss it.

The choice is recorded in the manifest (``cpu_scope``: scope, reason, server pid, whether the
estimate is the meter in use; and per session), printed by ``ipw profile`` and shown by ``ipw
report``. Where a measured CPU counter exists (RAPL, Apple, Jetson rails) the estimate is not used
and the choice changes nothing.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import psutil

from ipw.core.errors import IpwError

ENV = "IPW_CPU_ESTIMATE_SCOPE"


@dataclass(frozen=True)
class CpuScope:
    """The estimate's scope for one session: ``machine``, ``process-tree`` or ``server``, why, and
    the server's pid for ``server``."""

    scope: str
    reason: str
    server_pid: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class ServerPidError(IpwError, ValueError):
    """--server-pid names no process."""


def check_server_pid(pid: int) -> int:
    """``pid`` if it names a live process, else :class:`ServerPidError`."""
    if not psutil.pid_exists(pid):
        raise ServerPidError(f"--server-pid {pid}: no such process; give the pid of the server's main process "
                             "(e.g. `pgrep -f llama_cpp.server`)")  # fmt: skip
    return pid


def choose(cpu_scope: str | None, server_pid: int | None, engine, environ=None) -> CpuScope:
    """The scope for a session of a run with these options and this engine (see the module doc)."""
    environ = os.environ if environ is None else environ
    if cpu_scope is not None:
        if cpu_scope == "server" and server_pid is None:
            raise IpwError("cpu scope 'server' needs --server-pid PID")
        return CpuScope(cpu_scope, "chosen with --cpu-scope", server_pid if cpu_scope == "server" else None)
    if server_pid is not None:
        if psutil.pid_exists(server_pid):
            return CpuScope("server", f"told with --server-pid {server_pid}: a server outside ipw's process tree",
                            server_pid)  # fmt: skip
        return CpuScope("machine", f"the server process {server_pid} (--server-pid) is gone; a restarted server "
                                   "is not in any known process tree, so the whole machine is charged")  # fmt: skip
    if environ.get(ENV):
        return CpuScope(environ[ENV], f"set by {ENV}")
    name = getattr(engine, "name", type(engine).__name__)
    if getattr(engine, "in_process", True):
        return CpuScope("process-tree", f"the {name} engine runs in this process: its CPU time is this process "
                                        "tree's; other processes' work is not charged")  # fmt: skip
    return CpuScope("machine", f"the {name} engine is a server outside this process tree: the whole machine's CPU "
                               "time is charged (other processes' work included); --server-pid PID counts only "
                               "the server's and ipw's")  # fmt: skip


def describe(choice: CpuScope, meters) -> dict:
    """The manifest's entry: the choice, and whether the estimate is the CPU meter in use."""
    return choice.to_dict() | {"estimate_used": any(m.family == "estimate" for m in meters)}


def line(entry: dict | None) -> str | None:
    """One line for people: ``CPU estimate over this process tree: <reason>``; None where the
    estimate is not in use or the run recorded no choice."""
    if not entry or not entry.get("estimate_used"):
        return None
    what = {"machine": "the whole machine", "process-tree": "this process tree",
            "server": f"the server's processes (pid {entry.get('server_pid')}) and ipw's"}  # fmt: skip
    return f"CPU estimate over {what.get(entry['scope'], entry['scope'])}: {entry['reason']}"
