"""One renderer: a list of :class:`~ipw.reports.blocks.Section` -> one self-contained HTML page.

Jinja2 with autoescape on: every string that reaches the page (model output, run names, manifest
fields, query ids, captions) is escaped, nothing is marked safe except the page's own markup.
Figures are embedded as base64 PNG ``<img>`` tags; there are no scripts, no external URLs, fonts or
styles, and a Content-Security-Policy (``default-src 'none'``) forbids any that slipped in.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import jinja2
import matplotlib as mpl
import numpy as np
import pandas as pd

from ipw.core.missing import NA, missing, reasons
from ipw.reports.run_figures import STYLE
from ipw.reports.blocks import Section

MAX_ROWS = 200  # rows of a table shown on the page (the DataFrame keeps them all)
DPI = 96

# Column name -> header shown (units in brackets). Unknown columns are shown as they are named.
LABELS = {
    "n": "queries", "scored": "scored", "errors": "engine errors", "accuracy": "accuracy",
    "accuracy_ci_low": "acc. CI low", "accuracy_ci_high": "acc. CI high", "ipw_per_w": "IPW [1/W]",
    "ipw_ci_low": "IPW CI low", "ipw_ci_high": "IPW CI high", "ipj_per_j": "IPJ [1/J]", "ipj_ci_low": "IPJ CI low",
    "ipj_ci_high": "IPJ CI high", "energy_j_mean": "energy/query [J]", "energy_above_idle_j_mean": "above idle [J]",
    "power_w_mean": "power [W]", "ttft_s_mean": "TTFT [s]", "tpot_s_mean": "TPOT [s]", "e2e_s_mean": "end-to-end [s]",
    "energy_j": "energy [J]", "idle_power_w": "idle [W]", "duration_s": "duration [s]",
    "update_period_s": "update period [s]", "resolution_j": "resolution [J]", "on_front": "on Pareto front", "on_hardware_front": "on its hardware's front",
    "ipw_vs_best": "IPW vs best", "ipj_vs_best": "IPJ vs best", "queries_routed": "queries routed",
    "energy_scope": "energy scope", "energy": "energy is", "system_energy_j_mean": "system energy/query [J]",
    "system_energy_above_idle_j_mean": "system above idle [J]",
    "system_energy": "system energy is", "scope_energy_j": "energy [J]",
}
# Columns of an energy on the table's basis: the header names the scope when every row shares one.
SCOPED = {"energy_j_mean", "scope_energy_j", "energy_above_idle_j_mean"}
PERCENT = {"accuracy", "accuracy_ci_low", "accuracy_ci_high", "ipw_vs_best", "ipj_vs_best", "coverage", "local_share",
           "energy_saved", "energy_saved_sd", "compute_saved", "compute_saved_sd", "cost_saved", "cost_saved_sd"}
# value column -> prefix of its interval columns; shown as one cell "value [low, high]"
INTERVALS = {"accuracy": "accuracy_ci", "ipw_per_w": "ipw_ci", "ipj_per_j": "ipj_ci"}
TEXT_COLUMNS = {"output", "grade_reason", "command"}


def figure_png(fig) -> str:
    """A matplotlib Figure as base64 PNG text."""
    buf = io.BytesIO()
    with mpl.rc_context(STYLE):
        fig.savefig(buf, format="png", dpi=DPI)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def cell(value, column: str = "", numeric: bool = False) -> str:
    """Plain text for one table cell (escaping is the template's job). A missing number (NaN,
    infinite, or None in a ``numeric`` column) reads ``n/a``, its reason in the table's note
    (:mod:`ipw.core.missing`); other missing values are empty."""
    if value is None:
        return NA if numeric else ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return NA
        if column in PERCENT:
            return f"{v:.1%}"
        return f"{v:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {cell(v)}" for k, v in value.items())
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


@dataclass(frozen=True)
class _Rendered:
    caption: str
    note: str
    header: list
    classes: list  # CSS class per column: "text" (free text), "" otherwise
    rows: list  # (cells, is_estimate)
    hidden: int


def _merge_intervals(frame: pd.DataFrame) -> pd.DataFrame:
    """``x``, ``x_ci_low``, ``x_ci_high`` -> one text column ``x`` reading "x [low, high]" (``x [n/a]``
    where the interval is missing)."""
    out = frame
    for col, prefix in INTERVALS.items():
        lo, hi = f"{prefix}_low", f"{prefix}_high"
        if col in out and lo in out and hi in out:
            text = [f"{cell(v, col, True)} [{cell(a, col, True)}, {cell(b, col, True)}]" if not (missing(a) or missing(b))
                    else f"{cell(v, col, True)} [{NA}]" for v, a, b in zip(out[col], out[lo], out[hi])]
            out = out.drop(columns=[lo, hi]).assign(**{col: text})
    return out


def _header(frame: pd.DataFrame, c) -> str:
    text = LABELS.get(str(c), str(c)) + (" [95% CI]" if c in INTERVALS and f"{INTERVALS[c]}_low" in frame else "")
    return _scoped(frame, c, text)


def _scoped(frame: pd.DataFrame, c, text: str) -> str:
    """``text`` with the table's energy scope before it, for a column on the table's basis."""
    if c in SCOPED and "energy_scope" in frame and frame["energy_scope"].nunique() == 1:
        return f"{frame['energy_scope'].iloc[0]} {text}"
    return text


def _why(frame: pd.DataFrame) -> str:
    """One sentence per (column, reason) of the table's missing numbers (:func:`ipw.core.missing.reasons`)."""
    notes: dict[tuple[str, str], list[str]] = {}
    for i, row in enumerate(frame.to_dict(orient="records")):
        for col, reason in reasons(row).items():
            if col in frame and pd.api.types.is_numeric_dtype(frame[col]):
                col = next((k for k, p in INTERVALS.items() if col.startswith(p)), col)  # an interval: its value's column
                name = " ".join(str(row[k]) for k in ("run", "domain") if k in row) or str(i)
                notes.setdefault((_scoped(frame, col, LABELS.get(col, col)), reason), []).append(name)
    return " ".join(f"n/a in {col} ({', '.join(dict.fromkeys(rows))}): {reason}." for (col, reason), rows in notes.items())


def _table(caption: str, frame: pd.DataFrame, note: str) -> _Rendered:
    head = frame.head(MAX_ROWS)
    shown = _merge_intervals(head)
    cols = list(shown.columns)
    numeric = [c in INTERVALS or pd.api.types.is_numeric_dtype(shown[c]) for c in cols]
    est = (shown["energy"] == "estimate").to_numpy() if "energy" in shown else np.zeros(len(shown), bool)
    rows = [([cell(v, c, k) for v, c, k in zip(values, cols, numeric)], bool(e))
            for values, e in zip(shown.itertuples(index=False), est)]
    header = [_header(frame, c) for c in cols]
    classes = ["text" if str(c) in TEXT_COLUMNS else "" for c in cols]
    note = " ".join(x for x in (note, _why(head)) if x)
    return _Rendered(caption, note, header, classes, rows, len(frame) - min(len(frame), MAX_ROWS))


TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:0 1.2em 3em;color:#222;line-height:1.4}
h1{font-size:1.6em;margin:.8em 0 .2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
.meta{color:#666;font-size:.9em}nav a{margin-right:1em}
.banner{background:#fff4d6;border:1px solid #e0b84c;padding:.6em .9em;margin:1em 0;font-weight:600}
.warn{background:#fff8e6;border-left:4px solid #e0a400;padding:.3em .7em;margin:.3em 0;font-size:.92em}
ul.summary{padding-left:1.2em}ul.summary li{margin:.15em 0}
.intro{color:#444;font-size:.93em}
.tw{overflow-x:auto;margin:.4em 0 1.2em}
table{border-collapse:collapse;font-size:.82em}caption{text-align:left;font-weight:600;padding:.3em 0}
th,td{border:1px solid #ddd;padding:.25em .5em;vertical-align:top;text-align:left}
th{background:#f3f3f3;position:sticky;top:0}
td{white-space:nowrap}td.long{white-space:normal;min-width:14em;max-width:30em;overflow-wrap:anywhere}
td.text{white-space:pre-wrap;overflow-wrap:anywhere;min-width:22em;max-width:40em;font-family:ui-monospace,Menlo,Consolas,monospace}
tr.est td{background:#fffaf0}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{color:#555;font-size:.88em}
.note{color:#555;font-size:.85em}
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="meta">ipw {{ version }} &middot; generated {{ created }} &middot; {{ runs|length }} run(s): {{ runs|join(", ") }}</p>
{% if estimate_runs %}<p class="banner">Energy in this report is an ESTIMATE for: {{ estimate_runs|join(", ") }}. Their {{ basis }} energy is, or includes, the labelled estimate of a domain with no energy counter (see Provenance); their energies, IPW and IPJ on it are labelled "estimate" everywhere.</p>{% endif %}
<nav>{% for s in sections %}<a href="#{{ s.anchor }}">{{ s.title }}</a>{% endfor %}</nav>
{% for s in sections %}
<section id="{{ s.anchor }}">
<h2>{{ s.title }}</h2>
{% if s.intro %}<p class="intro">{{ s.intro }}</p>{% endif %}
{% for w in s.warnings %}<p class="warn">{{ w }}</p>{% endfor %}
{% if s.summary %}<ul class="summary">{% for line in s.summary %}<li>{{ line }}</li>{% endfor %}</ul>{% endif %}
{% for f in s.figures %}<figure><img src="data:image/png;base64,{{ f.png }}" alt="{{ f.caption }}"><figcaption>{{ f.caption }}</figcaption></figure>
{% endfor %}
{% for t in s.tables %}<div class="tw"><table>
<caption>{{ t.caption }}</caption>
<thead><tr>{% for h in t.header %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>{% for cells, est in t.rows %}<tr{% if est %} class="est"{% endif %}>{% for c in cells %}{% set k = t.classes[loop.index0] %}<td{% if k %} class="{{ k }}"{% elif c|length > 32 %} class="long"{% endif %}>{{ c }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% if t.hidden %}<p class="note">{{ t.hidden }} more rows not shown (the full table is in the DataFrame).</p>{% endif %}
{% if t.note %}<p class="note">{{ t.note }}</p>{% endif %}
{% if not t.rows %}<p class="note">(empty)</p>{% endif %}
</div>
{% endfor %}
</section>
{% endfor %}
</body>
</html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_TEMPLATE = _ENV.from_string(TEMPLATE)


def render(sections: list[Section], *, title: str, runs: list[str], estimate_runs: list[str],
           created: str, version: str, basis: str = "accelerator") -> str:
    """The page as a string."""
    shown, used = [], set()
    for s in sections:
        anchor, k = s.anchor, 2
        while anchor in used:
            anchor, k = f"{s.anchor}-{k}", k + 1
        used.add(anchor)
        shown.append({
            "title": s.title, "anchor": anchor, "intro": s.intro, "warnings": s.warnings, "summary": s.summary,
            "figures": [{"caption": p.caption, "png": figure_png(p.figure)} for p in s.figures],
            "tables": [_table(t.caption, t.frame, t.note) for t in s.tables],
        })
    return _TEMPLATE.render(title=title, sections=shown, runs=runs, estimate_runs=estimate_runs,
                            created=created, version=version, basis=basis.replace("_", " "))
