"""Each Ray node of the multi-node tests as its own machine, at the vendor boundaries.

All nodes of the test cluster run on this one machine, so they would share its host name and its
counters. Each node is started with ``IPW_TEST_NODE=<name>`` in its environment (Ray's workers
inherit their node's), and the first shard a worker runs makes that process the named machine:
a RAPL tree of its own on disk whose counters move in real time (:class:`tests.fakes.machine.FakeMachine`),
no NVML, no AMD SMI, no Jetson rails, and the node's name as the host name (the OS boundary: on a
real cluster each node has its own). The machines differ wherever a mix-up could hide:

- node-a: one package at 20 W and its DRAM at 3 W;
- node-b: two packages (30 W and 45 W), one DRAM at 6 W;
- node-c: two packages (90 W and 110 W), a DRAM each (5 W and 7 W).

So a shard's accelerator power (the packages: no GPU) is 20, 75 or 200 W by the node that ran it,
and its records name the domains of that node's meters.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from tests.distributed.fake_engine import CannedEngine

ENV = "IPW_TEST_NODE"
NODES = {
    "node-a": {"intel-rapl:0": ("package-0", 20.0), "intel-rapl:0:0": ("dram", 3.0)},
    "node-b": {"intel-rapl:0": ("package-0", 30.0), "intel-rapl:1": ("package-1", 45.0),
               "intel-rapl:0:0": ("dram", 6.0)},
    "node-c": {"intel-rapl:0": ("package-0", 90.0), "intel-rapl:1": ("package-1", 110.0),
               "intel-rapl:0:0": ("dram", 5.0), "intel-rapl:1:0": ("dram", 7.0)},
}  # fmt: skip


def accelerator_w(node: str) -> float:
    """The node's package power [W]: the accelerator scope of a machine without a GPU."""
    return sum(w for name, w in NODES[node].values() if name.startswith("package"))


def domains(node: str) -> set[str]:
    """The meter domains ipw names on the node (RAPL ``package-N`` -> ``cpu-package:N``, ``dram`` -> ``dram:N``)."""
    return {f"cpu-package:{name.split('-')[1]}" if name.startswith("package") else f"dram:{folder.split(':')[1]}"
            for folder, (name, _) in NODES[node].items()}


_installed: dict = {}


def install(root: str) -> str:
    """Make this worker process the machine its node's ``IPW_TEST_NODE`` names (once per process)."""
    name = os.environ[ENV]
    if name in _installed:
        return name
    import pytest

    from ipw.core.errors import MeterUnavailable
    from ipw.devices import amd, jetson
    from tests.fakes.machine import FakeMachine

    def no_amd():
        raise MeterUnavailable("amd", "amdsmi is not installed (a fake machine).")

    zones = {folder: z for folder, (z, _) in NODES[name].items()}
    watts = {folder: w for folder, (_, w) in NODES[name].items()}
    machine = FakeMachine(Path(root) / f"{name}-{os.getpid()}", zones=zones, watts=watts, gpu=False)
    patch = pytest.MonkeyPatch()  # never undone: the worker ends with the test's cluster
    machine.start(patch)
    patch.setattr(amd, "import_amdsmi", no_amd)
    patch.setattr(jetson, "DEFAULT_ROOT", Path(root) / "no-jetson")
    patch.setattr(socket, "gethostname", lambda: name)
    _installed[name] = (machine, patch)
    return name


class NodeFactory:
    """A picklable engine factory for ``ipw.run.launch``: on the worker it installs the node's
    machine, then gives the canned engine (``delay_s`` per answer). With ``fail_token``, the first
    engine built anywhere in the cluster (the one that creates that file) refuses its key after
    ``fail_after`` answers: an :class:`~ipw.engines.AuthError`, which stops its shard with the
    records it has."""

    def __init__(self, root: str, delay_s: float = 0.0, fail_token: str | None = None, fail_after: int = 3) -> None:
        self.root, self.delay_s, self.fail_token, self.fail_after = root, delay_s, fail_token, fail_after

    def __call__(self) -> CannedEngine:
        install(self.root)
        if self.fail_token is not None:
            try:
                os.close(os.open(self.fail_token, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                return RefusingEngine(self.delay_s, self.fail_after)
        return CannedEngine(self.delay_s)


class RefusingEngine(CannedEngine):
    """Answers ``fail_after`` prompts, then the server refuses the key."""

    def __init__(self, delay_s: float, fail_after: int) -> None:
        super().__init__(delay_s)
        self.left = fail_after

    def generate(self, prompt, settings):
        from ipw.engines.retry import AuthError

        if self.left <= 0:
            raise AuthError("the server refused the key (401): a shard stopped mid-run")
        self.left -= 1
        return super().generate(prompt, settings)
