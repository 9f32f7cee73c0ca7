"""What a density ruler is, the sizes it was fitted on, and which models it places outside them.

An effective size N_hat is read off a ruler (a family's score sigmoid in ln N, or the paper's
fitted loss and score laws). Inside the sizes the ruler was fitted on, N_hat interpolates; outside
them it extrapolates the fitted curve, and near the sigmoid's ceiling a small score difference
becomes a large size difference. ``ipw density trend`` prints the ruler, its range and how many
models lie outside it, and flags each model (``extrapolated``) in its tables, its saved result and
the report; docs/density.md gives the figures for the shipped data.

Extrapolated means N_hat strictly below the smallest or above the largest fitted size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from ipw.science.density.ruler import BenchmarkRuler, FamilyRuler


@dataclass(frozen=True)
class RulerRange:
    """What a ruler is (``ruler``), how it was fitted (``fitted``) and the smallest and largest
    reference sizes it was fitted on [parameters]; both None where there is no ruler (densities
    given in the table)."""

    ruler: str
    fitted: str
    smallest: float | None = None
    largest: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RulerRange:
        size = (lambda v: None if v is None else float(v))
        return cls(str(data.get("ruler", "")), str(data.get("fitted", "")), size(data.get("smallest")),
                   size(data.get("largest")))  # fmt: skip

    def lines(self) -> list[str]:
        """The ruler, how it was fitted, and its range, as printed by ``ipw density trend``."""
        out = [f"ruler: {self.ruler}", f"fitted: {self.fitted}"]
        if self.smallest is not None:
            out.append(f"fitted range: {self.smallest:.3g} to {self.largest:.3g} parameters "
                       "(effective sizes outside it are extrapolated)")  # fmt: skip
        return out


SIGMOID = "S = c/(1+exp(-gamma(ln N - m))) + d, d the benchmark's chance score, c = 1 - d"


def of_benchmark_ruler(ruler: BenchmarkRuler, benchmark: str | None = None) -> RulerRange:
    """The multi-benchmark family ruler of :func:`~ipw.science.density.ruler.densities_by_benchmarks`;
    with ``benchmark``, only that benchmark's ruler (``--benchmark``: the others place no model)."""
    used = {b: r for b, r in ruler.rulers.items() if benchmark is None or b.lower() == benchmark.lower()}
    sizes = sorted({s for r in used.values() for s in r.sizes})
    benches = ", ".join(used) or f"{benchmark} (no ruler for it)"
    return RulerRange(
        f"{ruler.family} family, published scores on {benches}",
        f"per benchmark the sigmoid {SIGMOID}, fitted by least squares on the family's {len(sizes)} sizes "
        "(one evaluator per benchmark); a model's N_hat is the geometric mean over its scores",
        sizes[0] if sizes else None, sizes[-1] if sizes else None)  # fmt: skip


def of_family_ruler(ruler: FamilyRuler) -> RulerRange:
    """The single-benchmark family ruler of :func:`~ipw.science.density.tables.densities_by_family`."""
    sizes = sorted(ruler.sizes)
    return RulerRange(
        f"{ruler.family} family, {ruler.benchmark} scores",
        f"the sigmoid {SIGMOID}, fitted by least squares on the family's {len(sizes)} sizes",
        sizes[0] if sizes else None, sizes[-1] if sizes else None)  # fmt: skip


def of_laws(points: pd.DataFrame | None, tokens_d0: float | None) -> RulerRange:
    """Fitted loss and score laws (``ipw density fit --out``, the paper's method, Sec. 2.4): the
    range is the sizes of the reference runs the loss law was fitted on (unknown without them)."""
    d0 = "" if tokens_d0 is None else f", inverted at D0 = {tokens_d0:.3g} tokens"
    if points is None or "params" not in points or points.empty:
        return RulerRange("fitted laws (ipw density fit --out)", f"loss law L(N, D) and score law S(L){d0}; "
                          "the reference runs were not saved with them, so the fitted range is unknown")  # fmt: skip
    sizes = points["params"].astype(float)
    return RulerRange("fitted laws (ipw density fit --out)",
                      f"loss law L(N, D) on {len(points)} reference runs and score law S(L){d0}",
                      float(sizes.min()), float(sizes.max()))  # fmt: skip


def no_ruler() -> RulerRange:
    return RulerRange("none: densities read from the table", "not fitted here (no effective sizes, no range)")


def flag_extrapolated(frame: pd.DataFrame, ruler: RulerRange) -> pd.DataFrame:
    """``frame`` with a boolean ``extrapolated`` column: N_hat (``n_hat``) outside the ruler's
    fitted range. Unchanged where there is no range or no ``n_hat``."""
    if ruler.smallest is None or ruler.largest is None or "n_hat" not in frame:
        return frame
    n_hat = frame["n_hat"].astype(float)
    return frame.assign(extrapolated=(n_hat < ruler.smallest) | (n_hat > ruler.largest))


def extrapolation_line(frame: pd.DataFrame, ruler: RulerRange, fit_models=()) -> str | None:
    """How many models lie outside the ruler's range, how far the farthest lies, and how many of
    the trend's points (``fit_models``) are among them; None where nothing is flagged."""
    if "extrapolated" not in frame or ruler.largest is None:
        return None
    n_hat = frame["n_hat"].astype(float)
    above, below = frame[n_hat > ruler.largest], frame[n_hat < ruler.smallest]
    line = (f"extrapolated: {len(above) + len(below)} of {len(frame)} models have an effective size outside the "
            f"fitted range ({len(above)} above its largest, {len(below)} below its smallest)")  # fmt: skip
    if len(above):
        far = above.loc[above["n_hat"].astype(float).idxmax()]
        line += f"; farthest: {far.get('model', '?')} at {float(far['n_hat']):.3g}, {float(far['n_hat']) / ruler.largest:.0f}x the largest"
    if fit_models:
        flagged = set(frame.loc[frame["extrapolated"].astype(bool), "model"]) if "model" in frame else set()
        line += f"; {sum(m in flagged for m in fit_models)} of the trend's {len(fit_models)} points are extrapolated"
    return line
