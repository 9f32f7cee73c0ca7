"""``ipw cmr``: the CMR scaling law from the command line (thin: the work is in ipw.science.cmr)."""

from __future__ import annotations

import re
from pathlib import Path

import click

import pandas as pd

from ipw.cli.face import group


_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9}


def _tokens(text: str) -> float:
    """'20e9', '20B', '500M', '2.5K' -> a token count."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgG]?)\s*", text)
    if not m:
        raise click.BadParameter(f"{text!r} is not a token count (examples: 20e9, 20B, 500M)")
    return float(m.group(1)) * _SUFFIX[m.group(2).upper()]


class Tokens(click.ParamType):
    name = "TOKENS"

    def convert(self, value, param, ctx):
        return value if isinstance(value, float) else _tokens(str(value))


def _show(title: str, frame: pd.DataFrame) -> None:
    click.echo(f"\n== {title}")
    click.echo(frame.to_string(index=False, float_format=lambda v: f"{v:.6g}"))


@group(context_settings={"help_option_names": ["-h", "--help"]},
       short_help="Critical mixture ratio of continual pre-training (Gu et al. 2024).")
def cmr() -> None:
    """Critical mixture ratio of continual pre-training (Gu et al. 2024, arXiv 2407.17467).

    \b
    T is counted in token units (default 0.2e9 tokens, the paper's: T = 100 is 20B tokens).
    eps is an absolute tolerance, in nats/token, on the rise of the general validation loss.

    \b
    Examples:
      ipw cmr paper                          the paper's CMR at 20B per model size, Table 2 refit
      ipw cmr predict --tokens 20B --tokens 50B --plot cmr.png
      ipw cmr fit runs.csv --eps 0.05 --plot fit.png --out results/
      ipw cmr fit runs.csv --predict 50B     extrapolate the fitted CMR law to 50B tokens
    """


@cmr.command(short_help="Fit the loss laws of CPT runs and find the critical mixture ratio.")
@click.argument("runs", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--eps", type=float, default=0.05, show_default=True,
              help="Tolerance on the general-loss increase (absolute, nats/token).")
@click.option("--token-unit", type=Tokens(), default="0.2e9", show_default=True,
              help="Tokens per unit of T.")
@click.option("--general-law", type=click.Choice(["two_term", "power"]), default="two_term",
              show_default=True, help="Law of the general-loss change over T (Eq. 6 is two_term).")
@click.option("--lagrange", type=float, default=None,
              help="Lambda of Eq. 3: also report the paper's T0 (Eq. 7) per ratio.")
@click.option("--predict", "predict_tokens", type=Tokens(), multiple=True,
              help="Token budget to extrapolate the CMR law to (repeatable), e.g. 50B.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Save the analysis into this folder: result.json and every table as CSV "
                   "(input to `ipw report --extra`).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the figure (loss curves, feasible region, CMR against T) to this PNG.")
def fit(runs, eps, token_unit, general_law, lagrange, predict_tokens, out, plot) -> None:
    """Fit the loss laws of a CSV of CPT runs and find the critical mixture ratio.

    \b
    RUNS is a CSV with columns
      model, ratio, tokens, general_loss, domain_loss, general_loss_before, domain_loss_before
    one row per evaluation (ratio is a fraction: 25 % is 0.25; tokens a count > 0).

    \b
    Example:
      ipw cmr fit examples/cmr/out/runs.csv --token-unit 1024 --eps 0.02 --plot fit.png
    """
    from ipw.science.cmr import CmrConfig, analyse, load_runs
    from ipw.science.cmr.results import CmrResults

    result = analyse(load_runs(runs), CmrConfig(eps=eps, token_unit=token_unit,
                                                general_law=general_law, lagrange=lagrange))
    saved = CmrResults.from_analysis(result, predict=list(predict_tokens))
    for name in ("token_fits", "ratio_fits", "cmr_curve", "cmr_law", "feasible", "predict"):
        if name in saved.tables:
            _show(name, saved.tables[name])
    if out is not None:
        click.echo(f"\nsaved to {saved.save(out)}")
    if plot is not None:
        from ipw.reports.savefig import save_figure
        from ipw.reports.science_figures import cmr_fit_figure

        click.echo(f"\nplot: {save_figure(cmr_fit_figure(saved.tables, eps), plot, dpi=110)}")


@cmr.command(short_help="Evaluate the CMR law R_CMR(T) at token budgets.")
@click.option("--tokens", "tokens", type=Tokens(), multiple=True, default=("20B",), show_default=True,
              help="Token budget (repeatable), e.g. 20B or 2e10.")
@click.option("--constants", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV with model,a4,s4,b3 (e.g. cmr_law.csv from `fit --out`); default: Table 5.")
@click.option("--token-unit", type=Tokens(), default="0.2e9", show_default=True,
              help="Tokens per unit of T the constants were fitted in.")
@click.option("--model", default=None, help="Only this model (e.g. 1.6B).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write R_CMR against T to this PNG.")
def predict(tokens, constants, token_unit, model, plot) -> None:
    """Evaluate the CMR law R_CMR(T) = a4*T^s4 + b3 (Eq. 8) at token budgets.

    \b
    Examples:
      ipw cmr predict                                the paper's Table 5 at 20B tokens
      ipw cmr predict --tokens 50B --model 3.1B      extrapolate one size to 50B tokens
      ipw cmr predict --constants results/cmr_law.csv --token-unit 1024 --tokens 200K
    """
    from ipw.science.cmr import cmr_at, table5

    table = table5() if constants is None else _read_constants(constants)
    if model is not None:
        table = table[table["model"].astype(str) == model]
        if table.empty:
            raise click.ClickException(f"no model {model!r} in the constants")
    _show("CMR law (Eq. 8)", cmr_at(list(tokens), table, token_unit))
    if plot is not None:
        from ipw.reports.savefig import save_figure
        from ipw.reports.science_figures import cmr_constants_figure

        click.echo(f"\nplot: {save_figure(cmr_constants_figure(table, list(tokens), token_unit), plot, dpi=110)}")


@cmr.command(short_help="Reproduce the paper's Table 5 CMR and refit Table 2.")
def paper() -> None:
    """Reproduce the paper's numbers: Table 5's CMR at 20B tokens and a refit of Table 2.

    \b
    Table 5: the CMR law with the published constants at T = 100 (20B tokens), next to the CMR the
    paper states in Sec. 5.3. Table 2: L_dom(R) = a*R^s + b refitted per model size: the 25 %
    loss predicted from the other four ratios (as the paper does), and the five-point fit with
    covariance standard errors, the a-b correlation, and the leave-one-out range of each parameter.
    """
    from ipw.science.cmr import cmr_at, table2_fits, table5

    t5 = table5()
    at20 = cmr_at([20e9], t5).merge(t5[["model", "published_cmr_20b_pct"]], on="model")
    _show("Table 5: CMR at 20B tokens (T = 100)", at20)
    _show("Table 2: domain loss over R, refitted", table2_fits().T.reset_index()
          .rename(columns={"index": "quantity"}))


def _read_constants(path: Path) -> pd.DataFrame:
    from ipw.science.cmr.errors import CsvValueError

    try:
        table = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, ValueError) as e:  # ValueError: pandas' parser and empty-file errors
        raise CsvValueError(path, None, "-", f"cannot read constants: {e}") from None
    for col in ("model", "a4", "s4", "b3"):
        if col not in table.columns:
            raise CsvValueError(path, 1, col, "missing; constants need model,a4,s4,b3")
    for i, row in table.iterrows():
        for col in ("a4", "s4", "b3"):
            if not pd.notna(pd.to_numeric(row[col], errors="coerce")):
                raise CsvValueError(path, int(i) + 2, col, f"{row[col]!r} is not a number")
    return table.astype({"a4": float, "s4": float, "b3": float})


