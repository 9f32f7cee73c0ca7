"""What ``ipw profile`` shows while it runs: its progress bar, and --quiet for the libraries an engine loads."""

from __future__ import annotations

from ipw.core.basis import of_record


class ProgressBar:
    """A :class:`ipw.run.runner.RunObserver` drawing a tqdm bar: queries done, running accuracy,
    energy per query on the IPW basis (marked where it is an estimate) and the running IPW
    (accuracy / mean per-query power over the scored queries, as the summary's; in the serving
    regime the summary's IPW uses the device's power while serving instead, so there the bar's is
    the per-query attributed one, labelled so)."""

    def __init__(self, enabled: bool = True, serving: bool = False) -> None:
        self.enabled, self.serving = enabled, serving
        self.bar = None
        self.correct = self.scored = self.n = 0
        self.energy_j = self.power_w = 0.0
        self.measured = True

    def start(self, total: int, done: list) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=len(done), unit="q", disable=not self.enabled, dynamic_ncols=True)
        for r in done:
            self._add(r)

    def _add(self, r) -> None:
        self.n += 1
        basis = of_record(r)
        self.energy_j += basis.energy_j or 0.0
        span = r.window_s or r.e2e_s
        if r.correct is not None and r.error is None and basis.energy_j is not None and span:
            self.scored += 1
            self.correct += bool(r.correct)
            self.power_w += basis.energy_j / span
        self.measured = self.measured and bool(basis.measured)
        self.bar.set_postfix_str(self.postfix(basis.scope))

    def postfix(self, scope: str) -> str:
        acc = self.correct / self.scored if self.scored else 0.0
        est = "" if self.measured else " (estimate)"
        mean_w = self.power_w / self.scored if self.scored else 0.0
        label = "IPW (attributed)" if self.serving else "IPW"
        ipw = f"{acc / mean_w:.4g} /W" if mean_w > 0 else "n/a"
        return f"acc {acc:.1%}  {self.energy_j / max(self.n, 1):.2f} J/q {scope}{est}  {label} {ipw}"

    def record(self, r) -> None:
        self._add(r)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


QUIET_ENV = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
             "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}  # fmt: skip
"""What --quiet sets for the libraries an engine loads: tqdm's own default (tqdm >= 4.66 reads
``TQDM_*`` when it is imported: the GGUF "Converting and de-quantizing" bar), Hugging Face's
progress bars and transformers' verbosity (its "Loading weights" bar). A value already set wins."""


def quiet_libraries() -> None:
    """Silence other libraries' progress bars and notes for --quiet (:data:`QUIET_ENV`), also in a
    transformers that is already imported."""
    import os
    import sys

    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
