"""The labelled estimate: CPU energy from CPU time, for machines with no energy counter.

This is a model, not a measurement, and every reading it makes says so (``measured=False``, source
``estimate.cpu_util_tdp``). The model, per logical core:

    P_core = P_idle + (P_max - P_idle) * u,   P_max = TDP / n_logical,   P_idle = f_idle * P_max

where ``u`` is the core's busy share. Summed over cores and integrated over a window [t0, t1]:

    E = n_logical * P_idle * (t1 - t0) + (P_max - P_idle) * busy_core_seconds(t0, t1)    [J]

``busy_core_seconds`` is, with ``cpu_scope="machine"`` (the default), system-wide CPU time (user +
nice + system + irq + softirq; idle, iowait and steal are not busy, and guest time is already
inside user); with ``cpu_scope="process-tree"``, the CPU time (user + system) of this process, its
live descendants, and the children it has waited for (psutil), so that other processes' work on a
shared machine is not charged to the query; with ``cpu_scope="server"``, that and the CPU time of
a server's processes (``server_pid`` and its descendants: an OpenAI-compatible server on this
machine that ipw did not start). The idle term is the whole CPU's in every scope. The scope is in
the source (``estimate.cpu_util_tdp``, ``estimate.cpu_util_tdp.process_tree`` or
``estimate.cpu_util_tdp.server``) and in ``describe()``; ``IPW_CPU_ESTIMATE_SCOPE`` sets the
default. Which scope a run uses is chosen by what it measures (:mod:`ipw.run.cpu_scope`). CPU time is a counter, so the
estimate needs no polling: it is exact *for the model* at the window's own edges, with the
kernel's tick (usually 10 ms) as update period. On Linux it is read from the first line of
``/proc/stat`` through a file descriptor held open (one ``pread``), as the design asks of every
counter file: psutil reopens the file at each call, which in the sampler's thread cost twice the
CPU (2.3% against 1.2% of a core at 100 Hz, measured); elsewhere psutil is used.

Defaults (override with arguments, or ``IPW_CPU_TDP_W`` for the TDP): TDP = 10 W per logical core,
f_idle = 0.3. Real CPUs differ by a factor of several either way; treat results as orders of
magnitude, and prefer any measured counter (RAPL, NVML, powermetrics), which discovery always does.
"""

from __future__ import annotations

import os

import psutil

from ipw.core.clock import now
from ipw.devices.base import Domain, DomainInfo, Meter

SOURCE = "estimate.cpu_util_tdp"
SOURCE_PROCESS_TREE = "estimate.cpu_util_tdp.process_tree"
SOURCE_SERVER = "estimate.cpu_util_tdp.server"
CPU_SCOPES = ("machine", "process-tree", "server")
SOURCES = {"machine": SOURCE, "process-tree": SOURCE_PROCESS_TREE, "server": SOURCE_SERVER}
DEFAULT_TDP_W_PER_CORE = 10.0
DEFAULT_IDLE_FRACTION = 0.3
_NOT_BUSY = ("idle", "iowait", "steal", "guest", "guest_nice")


def busy_cpu_seconds() -> float:
    """System-wide busy CPU time [core-seconds] since boot (psutil; portable)."""
    times = psutil.cpu_times()
    return sum(v for k, v in times._asdict().items() if k not in _NOT_BUSY)


class ProcStat:
    """Busy CPU time from ``/proc/stat``'s aggregate line, read with ``pread`` on a held descriptor.

    Fields (proc(5)): user nice system idle iowait irq softirq steal guest guest_nice, in clock
    ticks; busy = user + nice + system + irq + softirq (guest is already inside user).
    """

    BUSY = (0, 1, 2, 5, 6)

    def __init__(self, path: str = "/proc/stat") -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
        self()  # fail now, not in a window, if the format is unexpected

    def __call__(self) -> float:
        fields = os.pread(self._fd, 512, 0).split(b"\n", 1)[0].split()
        if fields[0] != b"cpu":
            raise ValueError("unexpected /proc/stat format")
        return sum(int(fields[1 + i]) for i in self.BUSY) * self._tick_s

    def close(self) -> None:
        os.close(self._fd)


def busy_reader():
    """The cheapest busy-CPU-time reader this platform has."""
    try:
        return ProcStat()
    except (OSError, ValueError, IndexError):
        return busy_cpu_seconds


class ProcessTreeTime:
    """Busy CPU time [s] of process trees: this process's, and those of ``pids`` (psutil).

    Live descendants are summed one by one; a child that has exited and been waited for moves into
    its parent's ``children_user``/``children_system``. A descendant that exits between two reads
    without being waited for by its root takes its last interval with it (a grandchild reaped by
    its own parent is counted in that parent's children times while the parent lives). A root that
    is a descendant of another (a server ipw started) is counted once. A root that has gone keeps
    what it had. The total is kept non-decreasing.
    """

    def __init__(self, pids: tuple[int, ...] = ()) -> None:
        self._roots = [psutil.Process()] + [psutil.Process(p) for p in pids if p != os.getpid()]
        self._last = 0.0
        self._gone = 0.0
        self._seen: dict[int, float] = {}

    def __call__(self) -> float:
        procs = {}
        for root in self._roots:
            try:
                procs.update({c.pid: c for c in root.children(recursive=True)})
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        total = 0.0
        for root in self._roots:
            if root.pid in procs:
                continue  # counted as a descendant of another root
            try:
                t = root.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                total += self._seen.get(root.pid, 0.0)
                continue
            self._seen[root.pid] = t.user + t.system + t.children_user + t.children_system
            total += self._seen[root.pid]
        for child in procs.values():
            try:
                c = child.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            total += c.user + c.system
        self._last = max(self._last, total)
        return self._last


def default_cpu_scope() -> str:
    scope = os.environ.get("IPW_CPU_ESTIMATE_SCOPE", "machine")
    if scope not in CPU_SCOPES:
        raise ValueError(f"IPW_CPU_ESTIMATE_SCOPE={scope!r}: use one of {', '.join(CPU_SCOPES)}")
    return scope


def default_tdp_w(n_logical: int) -> float:
    env = os.environ.get("IPW_CPU_TDP_W")
    return float(env) if env else DEFAULT_TDP_W_PER_CORE * n_logical


class CpuEstimateMeter(Meter):
    """Estimated whole-CPU energy [J] from CPU time and a TDP model (see the module docstring)."""

    family = "estimate"

    def __init__(
        self, tdp_w: float | None = None, idle_fraction: float = DEFAULT_IDLE_FRACTION, cpu_scope: str | None = None,
        server_pid: int | None = None,
    ) -> None:
        self.cpu_scope = cpu_scope or default_cpu_scope()
        if self.cpu_scope not in CPU_SCOPES:
            raise ValueError(f"cpu_scope must be one of {', '.join(CPU_SCOPES)}, not {self.cpu_scope!r}")
        if (self.cpu_scope == "server") != (server_pid is not None):
            raise ValueError("cpu_scope 'server' goes with a server_pid, and a server_pid with cpu_scope 'server'")
        self.server_pid = server_pid
        self.n_logical = psutil.cpu_count(logical=True) or 1
        self.tdp_w = tdp_w if tdp_w is not None else default_tdp_w(self.n_logical)
        if self.tdp_w <= 0 or not 0 <= idle_fraction <= 1:
            raise ValueError("the estimate needs tdp_w > 0 and 0 <= idle_fraction <= 1")
        self.idle_fraction = idle_fraction
        p_max = self.tdp_w / self.n_logical
        self.p_idle_core_w = idle_fraction * p_max
        self.p_dynamic_core_w = p_max - self.p_idle_core_w
        tick_s = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
        super().__init__([DomainInfo(Domain.CPU.value, SOURCES[self.cpu_scope], False, tick_s, p_max * tick_s)])
        pids = (server_pid,) if server_pid is not None else ()
        self._busy = busy_reader() if self.cpu_scope == "machine" else ProcessTreeTime(pids)
        self._t0 = now()
        self._busy0 = self._busy()

    def _read_energy_j(self) -> dict[str, float]:
        elapsed_s = now() - self._t0
        busy_s = self._busy() - self._busy0
        return {Domain.CPU.value: self.model_energy_j(elapsed_s, busy_s)}

    def model_energy_j(self, elapsed_s: float, busy_core_s: float) -> float:
        """The model's energy [J] for ``elapsed_s`` wall seconds with ``busy_core_s`` busy core-seconds."""
        return self.n_logical * self.p_idle_core_w * elapsed_s + self.p_dynamic_core_w * busy_core_s

    def close(self) -> None:
        if isinstance(self._busy, ProcStat):
            self._busy.close()
            self._busy = busy_cpu_seconds

    def describe(self) -> dict:
        scope = {"machine": "; machine-wide CPU time", "process-tree": "; CPU time of this process tree only",
                 "server": f"; CPU time of this process tree and the server's (pid {self.server_pid})"}  # fmt: skip
        return super().describe() | {
            "model": {
                "tdp_w": self.tdp_w,
                "idle_fraction": self.idle_fraction,
                "logical_cores": self.n_logical,
                "cpu_scope": self.cpu_scope,
            },
            "cpu_scope": self.cpu_scope,
            "server_pid": self.server_pid,
            "note": "estimate: CPU time x TDP model, not a measurement" + scope[self.cpu_scope],
        }
