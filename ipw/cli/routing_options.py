"""The hybrid routing and release-date options that ``ipw compare`` and ``ipw report`` share:
one set of click options, one parsing of their values into :mod:`ipw.science.intelligence.routing`'s inputs.

``@routing_options`` adds ``--reference``, ``--price``, ``--params``, ``--router-accuracy``,
``--misroute``, ``--oracle-prefers``, ``--routing-metrics``, ``--release-date`` and ``--trend-by``
to a command and hands it one :class:`RoutingArgs` as the ``routing`` argument.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import click

from ipw.core.errors import IpwError

# ipw.science.intelligence.routing's METRICS, MISROUTES and PREFERS, spelled out so that listing commands does not import
# pandas (tests/test_routing_cli.py checks that they agree)
METRICS = ("energy_j", "flops", "cost_usd")
MISROUTES = ("to_reference", "symmetric_fallback", "symmetric_no_fallback")
PREFERS = ("energy_j", "flops", "cost_usd", "params", "order")


@dataclass(frozen=True)
class RoutingArgs:
    """The shared options as given on the command line (strings, not yet parsed)."""

    reference: str | None = None
    prices: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    router_accuracies: tuple[float, ...] = (0.8,)
    misroute: str = "to_reference"
    oracle_prefers: str | None = None
    routing_metrics: str | None = None
    release_dates: tuple[str, ...] = ()
    trend_by: str = "year"

    @property
    def accuracies(self) -> tuple[float, ...]:
        """The routers to show: the oracle (1.0) first, then each ``--router-accuracy``."""
        return (1.0, *dict.fromkeys(p for p in self.router_accuracies if p != 1.0))

    def costs(self, energy: str):
        """The :class:`ipw.science.intelligence.routing.CostModel` asked for, or None without ``--reference``."""
        from ipw.science.intelligence.routing import CostModel, Price, parse_assignments, parse_params

        if self.reference is None:
            if self.prices or self.params:
                raise IpwError("--price and --params are for hybrid routing: name the reference run with --reference RUN")
            return None
        return CostModel(
            params={k: parse_params(v) for k, v in parse_assignments(self.params, "--params").items()},
            prices={k: Price.parse(v) for k, v in parse_assignments(self.prices, "--price").items()},
            energy=energy,
            metrics=tuple(m.strip() for m in self.routing_metrics.split(",")) if self.routing_metrics else None,
            prefer=self.oracle_prefers,
        )

    def dates(self) -> dict[str, str] | None:
        """``--release-date`` as ``{run: "YYYY-MM-DD"}``, or None when none was given."""
        from ipw.science.intelligence.routing import parse_assignments

        return parse_assignments(self.release_dates, "--release-date") if self.release_dates else None


_OPTIONS = (
    click.option("--reference", metavar="RUN",
                 help="Hybrid routing: the run (folder name) every query would go to without a router, e.g. a "
                      "cloud or larger model; the other runs are the local models."),
    click.option("--price", "prices", multiple=True, metavar="RUN=USD_PER_MTOK",
                 help="Price of a run in USD per million tokens (one number, or IN/OUT); repeat per run. "
                      "Cost savings need one for every run."),
    click.option("--params", "params", multiple=True, metavar="RUN=N",
                 help="Active parameter count of a run's model (8e9, 8B, 135M); repeat per run. "
                      "Compute savings (2N FLOP per token) need one for every run."),
    click.option("--router-accuracy", "router_accuracies", multiple=True, type=click.FloatRange(0, 1), default=(0.8,),
                 show_default=True, help="Accuracy p of a realistic router, besides the oracle; repeat for several."),
    click.option("--misroute", type=click.Choice(MISROUTES), default="to_reference", show_default=True,
                 help="Where a p-accurate router's errors go (docs/routing.md)."),
    click.option("--oracle-prefers", type=click.Choice(PREFERS), default=None,
                 help="Among local runs that answer a query correctly, the oracle picks the least of this "
                      "(default: energy, or the first metric)."),
    click.option("--routing-metrics", default=None, metavar="LIST",
                 help=f"Comma-separated subset of {','.join(METRICS)} (default: energy, plus flops with --params, "
                      "plus cost with --price); leave energy out for a reference behind an API."),
    click.option("--release-date", "release_dates", multiple=True, metavar="RUN=YYYY-MM-DD",
                 help="Release date of a run's model; given for every run, adds the trend of the best "
                      "available model's accuracy and IPW."),
    click.option("--trend-by", type=click.Choice(["year", "date"]), default="year", show_default=True,
                 help="Periods of the release-date trend."),
)
_NAMES = ("reference", "prices", "params", "router_accuracies", "misroute", "oracle_prefers", "routing_metrics",
          "release_dates", "trend_by")


def routing_options(f):
    """Add the shared options to a click command; it receives them as ``routing: RoutingArgs``."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        kwargs["routing"] = RoutingArgs(**{n: kwargs.pop(n) for n in _NAMES})
        return f(*args, **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper
