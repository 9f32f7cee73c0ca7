"""Writing a matplotlib ``Figure`` to a file, for the ``--plot`` options of the commands.

Figures are built outside pyplot (``matplotlib.figure.Figure``, see :mod:`ipw.reports.science_figures`),
so saving needs no backend switch and leaves nothing open: importing ipw never changes the
plotting backend of a notebook.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure


def save_figure(fig: Figure, path: Path | str, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (folders created; the format follows the suffix, PNG if none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format=path.suffix.lstrip(".").lower() or "png")
    return path
