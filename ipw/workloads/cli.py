"""``ipw profile`` and ``ipw compare``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ipw.errors import IpwError


def _print_summary(run_path: Path) -> None:
    from ipw.efficiency import summarize
    from ipw.store import load

    run = load(run_path)
    if run.queries.empty:
        click.echo("no queries recorded")
        return
    overall = summarize(run.queries).iloc[0]
    measured = "measured" if overall["measured"] else "ESTIMATE (no energy counter on this machine)"
    click.echo(f"\nrun: {run_path}")
    click.echo(f"queries: {overall['n']} (scored {overall['scored']})  energy: {measured}")
    lo, hi = overall["accuracy_ci"]
    click.echo(f"accuracy: {overall['accuracy']:.1%}  [95% CI {lo:.1%} - {hi:.1%}]")
    click.echo(f"energy per query: {overall['energy_j_mean']:.3f} J total, {overall['energy_above_idle_j_mean']:.3f} J above idle")
    click.echo(f"mean power per query: {overall['power_w_mean']:.2f} W")
    click.echo(f"IPW: {overall['ipw_per_w[total]']:.5f} /W  [{overall['ipw_ci'][0]:.5f} - {overall['ipw_ci'][1]:.5f}]")
    click.echo(f"IPJ: {overall['ipj_per_j[total]']:.5f} /J  [{overall['ipj_ci'][0]:.5f} - {overall['ipj_ci'][1]:.5f}]")
    ttft, tpot = overall.get("ttft_s_mean"), overall.get("tpot_s_mean")
    click.echo(f"latency: TTFT {ttft * 1e3:.0f} ms, TPOT {tpot * 1e3:.1f} ms/token, end-to-end {overall['e2e_s_mean']:.2f} s")
    by = summarize(run.queries, by="domain", n_boot=200)[["domain", "n", "accuracy", "energy_j_mean", "ipw_per_w[total]"]]
    click.echo("\n" + by.to_string(index=False, float_format=lambda x: f"{x:.4g}"))


@click.command()
@click.option("--model", default="default", show_default=True,
              help="'default' (SmolLM2-135M-Instruct, shipped), a .gguf file, a local HF folder, or the server's model name.")  # fmt: skip
@click.option("--engine", type=click.Choice(["auto", "transformers", "llamacpp", "openai"]), default="auto", show_default=True,
              help="auto: llama.cpp if installed (faster on CPU), else transformers.")  # fmt: skip
@click.option("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (vLLM, llama.cpp server, Ollama).")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Environment variable holding the API key (never stored).")
@click.option("--completion", is_flag=True, help="Send prompts as plain completions (base models without a chat template).")
@click.option("--queries", default="default", show_default=True, help="'default' (shipped set) or a JSONL file.")
@click.option("--lm-eval-task", help="Run this lm-eval task instead (offline: its data must be local files).")
@click.option("--lm-eval-include", type=click.Path(exists=True, file_okay=False), help="Folder with the lm-eval task YAML.")
@click.option("--limit", type=int, help="Only N queries, taken round-robin across domains.")
@click.option("--judge-base-url", help="OpenAI-compatible server that grades queries whose grader is 'judge'.")
@click.option("--judge-model", help="The judge's model name on that server.")
@click.option("--judge-api-key-env", default="OPENAI_API_KEY", show_default=True, help="Environment variable with the judge's API key.")
@click.option("--max-tokens", default=64, show_default=True)
@click.option("--temperature", default=0.0, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--warmup", default=2, show_default=True, help="Warm-up queries, run first and not recorded.")
@click.option("--idle", "idle_s", default=5.0, show_default=True, help="Seconds of idle baseline measured first.")
@click.option("--hz", default=0.0, show_default=True, help="Power timeline rate (0: off; per-query energy never needs it).")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--run-id", help="Name of the run folder (default: time stamp, engine and model).")
@click.option("--resume", "resume_run", type=click.Path(exists=True, file_okay=False), help="Continue a stopped run folder.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def profile(**o) -> None:
    """Run a model over a query set, grade every answer, and measure every query's energy and latency.

    Each query runs inside its own energy window; records are appended to
    RUNS_DIR/RUN_ID/queries.jsonl as each query ends, so a stopped run loses at most one query
    and continues with --resume.

    \b
    Examples:
      ipw profile                                   # the shipped model on the shipped 200+ queries
      ipw profile --engine transformers --limit 20
      ipw profile --model ~/models/qwen.gguf --engine llamacpp
      ipw profile --engine openai --base-url http://127.0.0.1:8000/v1 --model my-model
      ipw profile --resume runs/20261124-150000-llamacpp-default
    """
    from ipw.workloads import runner
    from ipw.workloads.engines import GenerationSettings

    try:
        if o["resume_run"]:
            store = runner.resume(o["resume_run"], progress=not o["quiet"])
        else:
            options = {"model": o["model"]}
            if o["engine"] == "openai":
                if not o["base_url"]:
                    raise click.UsageError("--engine openai needs --base-url")
                options |= {"base_url": o["base_url"], "api_key_env": o["api_key_env"]}
            if o["completion"]:
                options["chat"] = False
            lm_eval = None
            if o["lm_eval_task"]:
                if not o["lm_eval_include"]:
                    raise click.UsageError("--lm-eval-task needs --lm-eval-include (offline task files)")
                lm_eval = {"task_name": o["lm_eval_task"], "include_path": o["lm_eval_include"]}
            judge = None
            if o["judge_base_url"]:
                judge = {"base_url": o["judge_base_url"], "model": o["judge_model"] or "default",
                         "api_key_env": o["judge_api_key_env"]}  # fmt: skip
            config = runner.RunConfig(
                engine=o["engine"], engine_options=options, queries=o["queries"],
                settings=GenerationSettings(max_tokens=o["max_tokens"], temperature=o["temperature"], seed=o["seed"]),
                warmup=o["warmup"], limit=o["limit"], idle_s=o["idle_s"], sampler_hz=o["hz"] or None,
                runs_dir=o["runs_dir"], run_id=o["run_id"], lm_eval=lm_eval, judge=judge,
            )  # fmt: skip
            store = runner.profile(config, progress=not o["quiet"])
    except IpwError as e:
        raise click.ClickException(str(e)) from e
    _print_summary(store.path)


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def compare(runs: tuple[str, ...], as_json: bool) -> None:
    """Compare runs side by side: accuracy, IPW, IPJ, energy, latency, coverage and best-of-local.

    \b
    Examples:
      ipw compare runs/a runs/b
      ipw compare runs/* --json
    """
    import pandas as pd

    from ipw.efficiency import coverage, summarize
    from ipw.store import load

    loaded = {}
    for path in runs:
        run = load(path)
        name = Path(path).name
        if name in loaded:
            raise click.ClickException(f"two runs named {name}")
        loaded[name] = run.queries
    table = pd.concat([summarize(f, n_boot=200).assign(run=n) for n, f in loaded.items()], ignore_index=True)
    cols = ["run", "n", "accuracy", "ipw_per_w[total]", "ipj_per_j[total]", "energy_j_mean", "power_w_mean", "e2e_s_mean", "measured"]
    cov = coverage(loaded) if len(loaded) > 1 else None
    if as_json:
        click.echo(json.dumps({"runs": table[cols].to_dict(orient="records"), "coverage": cov}, indent=2, default=str))
        return
    click.echo(table[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    if cov:
        b = cov["best_of_local"]
        click.echo(f"\ncoverage over {cov['queries']} common queries: {cov['coverage']:.1%}")
        click.echo(f"best-of-local: accuracy {b['accuracy']:.1%}, {b['energy_j_mean']:.3f} J/query, IPJ {b['ipj_per_j']:.5f} /J")
