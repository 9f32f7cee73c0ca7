"""The ``ipw`` command line: thin commands that call the library.

Every command lives in this package, one file per command or group, and is loaded lazily, so
``ipw devices`` does not import torch and a broken optional part does not break the rest. Errors
become messages in one place, :mod:`ipw.cli.face`. No module outside this package imports click.
"""

from __future__ import annotations

import importlib

import click

from ipw.cli.face import IpwGroup

# name -> "module:attribute" of a click command; loaded on first use.
COMMANDS: dict[str, str] = {
    "devices": "ipw.cli.devices:devices",
    "measure": "ipw.cli.measure:measure",
    "profile": "ipw.cli.profile:profile",
    "sweep": "ipw.cli.sweep:sweep",
    "compare": "ipw.cli.compare:compare",
    "report": "ipw.cli.report:report",
    "launch": "ipw.cli.launch:launch",
    "density": "ipw.cli.density:density",
    "capacity": "ipw.cli.capacity:capacity",
    "cmr": "ipw.cli.cmr:cmr",
    "store": "ipw.cli.store:store",
    "models": "ipw.cli.models:models",
}


class LazyGroup(IpwGroup):
    """A click group whose commands are imported only when listed or run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and module_name.startswith(e.name):
                return None  # that part of ipw is not in this build
            raise
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ipw")
def main() -> None:
    """ipw: intelligence per watt, measured on the machine in front of you.

    \b
    Start here:
      ipw devices            what can be measured on this machine, and how
      ipw profile            the shipped model on the shipped query set: accuracy, energy, IPW
      ipw measure -- CMD     energy, power and time of one command
      ipw report RUN... -o report.html   a self-contained HTML report

    \b
    Serving and scale:
      ipw profile --concurrency 8 ...   many queries in flight against a server (--batch-size: local)
      ipw sweep --concurrency 1,4,16   the energy-latency frontier over load levels
      ipw launch --shards 8 ...        shards of a query set as Ray tasks across a cluster
      ipw models export-hf default DIR the shipped model as a folder for vLLM or SGLang

    \b
    The papers' metrics:
      ipw compare RUN...     coverage, best-of-local, routing savings, release-date trend
      ipw density ...        Densing Law: effective size, density, doubling time
      ipw capacity           Information Capacity of a model on text corpora
      ipw cmr ...            CMR scaling law for continual pre-training
    """
