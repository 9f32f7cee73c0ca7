"""``ipw capacity``: Information Capacity from the command line (thin: the work is in ipw.science.capacity)."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from ipw.cli.face import command
from ipw.science.capacity.corpora import (CORPORA_DIR, OFFICIAL_BIAS_BITS_BY_FILE, OFFICIAL_OTHER_BIAS_BITS,
                                  shipped_corpora)

TABLE_COLUMNS = {
    "model": "model", "corpus": "corpus", "information_capacity": "IC",
    "text_size_bits_per_token": "text bits/tok", "nll_bits_per_token": "NLL bits/tok",
    "bias_bits": "bias", "flops_per_token": "FLOPs/tok", "bytes_per_token": "bytes/tok",
    "bits_per_byte": "bits/byte", "samples": "samples", "tokens_scored": "tokens",
    "truncated_samples": "truncated",
}


def _table(frame: pd.DataFrame) -> str:
    shown = frame[list(TABLE_COLUMNS)].rename(columns=TABLE_COLUMNS)
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def _write(frame: pd.DataFrame, out: Path, settings: dict) -> list[Path]:
    """Save the results (kind ``capacity``: capacity.json + capacity.csv) into folder ``out``."""
    from ipw.science.capacity.results import CapacityResults

    header = CapacityResults(frame, settings).save(out)
    return [header.with_name("capacity.csv"), header]


def _list_corpora() -> None:
    for name in shipped_corpora():
        lines = (CORPORA_DIR / name / "SOURCES.md").read_text(encoding="utf-8").splitlines()
        click.echo(f"{name:14s} {lines[0].lstrip('# ').split(': ', 1)[-1]}")


def _progress(result) -> None:
    click.echo(f"  {result.model} / {result.corpus}: IC {result.information_capacity:.4f}", err=True)


_BIAS_HELP = (f"Numerator bias b in bits/token. Default: the official code's choice by data file "
              f"name ({', '.join(f'{k}: {v:g}' for k, v in OFFICIAL_BIAS_BITS_BY_FILE.items())}, "
              f"any other file and every shipped corpus: {OFFICIAL_OTHER_BIAS_BITS:g}).")


@command(context_settings={"help_option_names": ["-h", "--help"]},
         short_help="Information Capacity (Yuan et al. 2025) of models on text corpora.")
@click.option("--model", "-m", "models", multiple=True, default=("default",), show_default=True,
              help="'default' (embedded SmolLM2-135M-Instruct Q4_1), a local Hugging Face model "
                   "folder, or a .gguf file. Repeat for several models. Never downloads.")
@click.option("--corpus", "-c", "corpora", multiple=True,
              help="A shipped corpus name (see --list-corpora) or a JSONL file of {\"text\": ...} "
                   "lines. Repeat for several. Default: every shipped corpus.")
@click.option("--bias", "bias_bits", type=float, default=None, help=_BIAS_HELP)
@click.option("--max-tokens", type=click.IntRange(min=2), default=1024, show_default=True,
              help="Truncate each sample to this many tokens (also the decode length for FLOPs).")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Samples per forward pass (right-padded, padding masked).")
@click.option("--max-samples", type=click.IntRange(min=1), default=None,
              help="Use only the first N samples of each corpus (quick looks).")
@click.option("--averaging", type=click.Choice(["official", "tokens"]), default="official",
              show_default=True, help="official: NLL over positions, text size over samples; "
                                      "tokens: both over positions.")
@click.option("--attention", type=click.Choice(["auto", "gqa", "mla"]), default="auto",
              show_default=True, help="FLOPs attention model; auto: MLA if the config has kv_lora_rank.")
@click.option("--moe-count", type=click.Choice(["ipw", "official"]), default="ipw", show_default=True,
              help="MoE MLP width in FLOPs: ipw (active + shared experts, from the config) or official "
                   "(the official flops.py, which adds a shared expert by model path; see docs/capacity.md).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("capacity-results"),
              show_default=True, help="Folder for capacity.csv and capacity.json (input to `ipw report --extra`).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the IC figure (IC per corpus, IC against bytes/token) to this PNG.")
@click.option("--list-corpora", is_flag=True, help="List the shipped corpora and exit.")
def capacity(models, corpora, bias_bits, max_tokens, batch_size, max_samples, averaging, attention,
             moe_count, out, plot, list_corpora) -> None:
    """Information Capacity (Yuan et al. 2025, arXiv 2511.08066) of models on text corpora.

    \b
    IC = (text size - NLL + b) / log2(FLOPs per token)
      text size  8 x UTF-8 bytes of tokens 2..L, per scored token   [bits/token]
      NLL        -log2 p(token | previous tokens), tokens 2..L       [bits/token]
      b          numerator bias (--bias)                            [bits/token]
      FLOPs      decode FLOPs per token from the model config (dense, GQA, MoE, MLA)
    Also reported: bytes/token (tokenizer efficiency) and bits/byte (compression rate).

    \b
    Examples:
      ipw capacity --list-corpora
      ipw capacity                                   default model, every shipped corpus
      ipw capacity -c english-docs -c math --max-samples 4 --max-tokens 256
      ipw capacity -m ~/models/Qwen2.5-0.5B -m default -c my_corpus.jsonl --bias -24
      ipw capacity -c python-code --out results/ --averaging tokens
    """
    if list_corpora:
        _list_corpora()
        return
    from ipw.science.capacity.api import CapacityConfig, evaluate

    settings = dict(max_tokens=max_tokens, batch_size=batch_size, bias_bits=bias_bits,
                    averaging=averaging, attention=attention, max_samples=max_samples, moe_count=moe_count)
    chosen = list(corpora) or shipped_corpora()
    frame = evaluate(models, chosen, CapacityConfig(**settings), on_result=_progress)
    click.echo(_table(frame))
    for path in _write(frame, out, {**settings, "models": list(models), "corpora": chosen}):
        click.echo(f"wrote {path}")
    if plot is not None:
        from ipw.reports.savefig import save_figure
        from ipw.reports.science_figures import capacity_figure

        click.echo(f"wrote {save_figure(capacity_figure(frame), plot)}")
