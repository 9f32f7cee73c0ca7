"""``ipw models``: the shipped models in the forms servers want (``export-hf``: a Hugging Face folder).

A thin command over :mod:`ipw.engines.export`.
"""

from __future__ import annotations

from pathlib import Path

import click

from ipw.cli.face import group


@group(context_settings={"help_option_names": ["-h", "--help"]},
       short_help="The shipped models in the forms servers want (a Hugging Face folder).")
def models() -> None:
    """The shipped models in the forms servers want.

    \b
    Examples:
      ipw models export-hf default ~/models/smollm2-hf      # then: vLLM --model ~/models/smollm2-hf
      ipw models export-hf gemma3-270m ~/models/gemma3-hf --dtype float32
    """


@models.command("export-hf", short_help="Write a shipped GGUF model as a Hugging Face folder for vLLM or SGLang.")
@click.argument("model")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]), default="bfloat16", show_default=True,
              help="Type of the written weights (the GGUF's are dequantised to it).")
@click.option("--overwrite", is_flag=True, help="Replace OUT when it holds something else.")
def export_hf(model: str, out: Path, dtype: str, overwrite: bool) -> None:
    """Write MODEL ('default', 'gemma3-270m' or a .gguf file) as a Hugging Face folder OUT: weights
    (safetensors, dequantised from the GGUF), config, tokenizer and chat template, for servers that
    load only such folders (vLLM, SGLang). Nothing is downloaded. An export of the same file at the
    same dtype already in OUT is kept as it is (see ipw-export.json in it).
    """
    from ipw.engines.export import PROVENANCE, export_hf as export

    path = export(model, out, dtype=dtype, overwrite=overwrite)
    size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    click.echo(f"{path}: {size / 1e6:.0f} MB, {dtype} (provenance in {PROVENANCE})")
