"""Reports: a self-contained HTML page, pandas tables and matplotlib figures of runs and results.

    >>> from ipw.reports import build_report, load_runs, summary_table, accuracy_vs_energy
    >>> runs = load_runs(["runs/a", "runs/b"])
    >>> summary_table(runs)                       # one row per model x hardware (DataFrame)
    >>> accuracy_vs_energy(summary_table(runs))   # matplotlib Figure
    >>> build_report(runs.values()).write("report.html")

The report imports the science packages, never the reverse. See docs/reports.md.
"""

from ipw.reports.science_figures import (capacity_figure, cmr_constants_figure, cmr_curve_figure, cmr_fit_figure,
                                 density_fit_figure, density_trend_figure, release_trend_figure)
from ipw.reports.measured import RoutingRequest, TrendRequest
from ipw.reports.run_figures import accuracy_vs_energy, domain_bars, energy_distribution, power_timeline
from ipw.reports.report import Report, build_report, write_report
from ipw.reports.blocks import Plot, Section, Table
from ipw.reports.extras import ExtraError, load_extra
from ipw.reports.tables import (
    absent_table, coverage_tables, domain_table, flags_table, frontier_table, idle_table, load_runs,
    meters_table, pareto_front, routing_tables, samples_table, summary_table, trend_tables, versions_table,
)

__all__ = [
    "ExtraError", "Plot", "Report", "RoutingRequest", "Section", "Table", "TrendRequest", "absent_table",
    "accuracy_vs_energy", "build_report",
    "capacity_figure", "cmr_constants_figure", "cmr_curve_figure", "cmr_fit_figure", "density_fit_figure",
    "density_trend_figure", "release_trend_figure", "routing_tables", "trend_tables",
    "coverage_tables", "domain_bars", "domain_table", "energy_distribution", "flags_table", "frontier_table",
    "idle_table", "load_extra", "load_runs", "meters_table", "pareto_front", "power_timeline", "samples_table",
    "summary_table", "versions_table", "write_report",
]
