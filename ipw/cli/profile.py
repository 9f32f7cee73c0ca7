"""``ipw profile``: a model over a query set, every query graded and measured."""

from __future__ import annotations

from pathlib import Path

import click

from ipw.cli.checks import number
from ipw.cli.face import command
from ipw.core.basis import of_record


class ProgressBar:
    """A :class:`ipw.run.runner.RunObserver` drawing a tqdm bar: queries done, running
    accuracy and accelerator energy per query (marked where it is an estimate)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar = None
        self.correct = self.scored = self.n = 0
        self.energy_j = 0.0
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
        if r.correct is not None and r.error is None:
            self.scored += 1
            self.correct += bool(r.correct)
        self.measured = self.measured and bool(basis.measured)
        acc = self.correct / self.scored if self.scored else 0.0
        est = "" if self.measured else " (estimate)"
        self.bar.set_postfix_str(f"acc {acc:.1%}  {self.energy_j / self.n:.2f} J/q {basis.scope}{est}")

    def record(self, r) -> None:
        self._add(r)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _url(ctx, param, value):
    from ipw.core.errors import IpwError
    from ipw.engines.openai import check_base_url

    try:
        return None if value is None else check_base_url(value)
    except IpwError as e:
        raise click.BadParameter(str(e)) from None


def _ci(row: dict, key: str, fmt: str) -> str:
    lo, hi = row[key]
    return f"[{format(lo, fmt)} - {format(hi, fmt)}]"


def _device_options(o: dict) -> dict:
    """The engine's device options from the command line; an option for another engine is an error."""
    from ipw.run.config import resolve_engine_name

    resolved = resolve_engine_name(o["engine"])
    picked = " (picked by --engine auto)" if o["engine"] == "auto" else ""
    chosen = {"device": o["device"] != "auto", "dtype": o["dtype"] != "auto", "n_gpu_layers": o["n_gpu_layers"] is not None}
    wanted = {"device": "transformers", "dtype": "transformers", "n_gpu_layers": "llamacpp"}
    for name, given in chosen.items():
        if given and resolved != wanted[name] and not (name == "dtype" and resolved == "mlx"):
            raise click.UsageError(f"--{name.replace('_', '-')} is an option of the {wanted[name]} engine, "
                                   f"not {resolved}{picked}")
    if resolved == "mlx":
        return {"dtype": o["dtype"]}
    if resolved == "transformers":
        return {"device": o["device"], "dtype": o["dtype"]}
    if resolved == "llamacpp" and o["n_gpu_layers"] is not None:
        return {"n_gpu_layers": o["n_gpu_layers"]}
    return {}


def print_summary(run_path: Path) -> None:
    """Print the run's stored summary (``summary.json``, written by the runner as the session ends)."""
    from ipw.store import load

    run = load(run_path)
    if not run.summary:
        click.echo("no queries recorded")
        return
    o = run.summary["overall"]
    scope = o["energy_scope"]
    measured = "measured" if o["measured"] else "ESTIMATE (no energy counter on this machine)"
    errors = f", {o['errors']} errors not scored" if o["errors"] else ""
    click.echo(f"\nrun: {run_path}")
    click.echo(f"queries: {o['n']} (scored {o['scored']}{errors})  {scope} energy: {measured}")
    gaps = o.get("meter_gaps", 0)
    if gaps:
        click.echo(f"meter gaps: {gaps} queries have no energy (a meter failed to read; flag meter-gap:<domain>)")
    short = o.get("sub_update_period", 0)
    if short:
        click.echo(f"sub-update-period: {short} queries ran shorter than a counter's update period (flag "
                   f"sub-update-period:<domain>): their energy is a share of a counter step, within its bound")
    if o["errors"]:
        click.echo(f"errors are in the `error` field of queries.jsonl; run them again with: "
                   f"ipw profile --resume {run_path} --retry-errors")  # fmt: skip
    if o["scored"] == 0:
        click.echo("nothing was scored: every query failed")
        return
    click.echo(f"accuracy: {o['accuracy']:.1%}  [95% CI {o['accuracy_ci'][0]:.1%} - {o['accuracy_ci'][1]:.1%}]")
    click.echo(f"energy per query: {o['scope_energy_j_mean']:.3f} J {scope}, {o['energy_j_mean']:.3f} J system, "
               f"{o['energy_above_idle_j_mean']:.3f} J system above idle")
    click.echo(f"mean power per query: {o['power_w_mean']:.2f} W")
    click.echo(f"IPW: {o['ipw_per_w']:.5f} /W  {_ci(o, 'ipw_ci', '.5f')}   IPJ: {o['ipj_per_j']:.5f} /J  {_ci(o, 'ipj_ci', '.5f')}"
               f"   ({o['n_boot']} bootstrap resamples)")
    ttft, tpot, e2e = (o.get(k) for k in ("ttft_s_mean", "tpot_s_mean", "e2e_s_mean"))
    ms = lambda x, f: "n/a" if x is None or x != x else format(x * 1e3, f)  # noqa: E731
    click.echo(f"latency: TTFT {ms(ttft, '.0f')} ms, TPOT {ms(tpot, '.1f')} ms/token, end-to-end {e2e:.2f} s")
    _print_serving(run.manifest.get("serving"))
    by_domain = run.summary["by_domain"]
    if by_domain:
        import pandas as pd

        by = pd.DataFrame(by_domain)[["domain", "n", "accuracy", "scope_energy_j_mean", "ipw_per_w"]]
        by = by.rename(columns={"scope_energy_j_mean": f"{scope}_j_mean"})
        click.echo("\n" + by.to_string(index=False, float_format=lambda x: f"{x:.4g}"))


def _print_serving(serving: dict | None) -> None:
    """The serving regime's rule and steady state (ipw.run.serving), when the run has one."""
    if not serving:
        return
    rule = serving["rule"]
    click.echo(f"serving: {serving['mode'].replace('_', ' ')} {serving['level']}; per-query energy by "
               f"{rule['name']} v{rule['version']} (prefill weight {rule['prefill_weight']:g}; docs/serving.md)")  # fmt: skip
    server = (serving.get("sessions") or [{}])[-1].get("server") or {}
    if server.get("available"):  # what the server said of this session's requests (ipw.engines.server_timing)
        mean = {k: server.get(f"{k}_mean_s") for k in ("queue", "prefill", "decode")}
        click.echo(f"server ({server['requests']} requests): mean queue {mean['queue'] or 0:.3g} s, prefill "
                   f"{mean['prefill'] or 0:.3g} s, decode {mean['decode'] or 0:.3g} s; most waiting {server['waiting_max']:g}")  # fmt: skip
    steady = [x["steady_state"] for x in serving.get("sessions", []) if x.get("steady_state")]
    if not steady:
        click.echo("steady state: none (it needs more than 2 x the level of queries)")
        return
    st = max(steady, key=lambda x: x["duration_s"])
    b = st.get("basis") or {}
    if b.get("j_per_token") is not None:
        click.echo(f"steady state ({st['duration_s']:.1f} s): {b['j_per_token']:.4g} J/token {b['scope']}, "
                   f"{st['tokens_per_s']:.1f} tokens/s, {b['power_w']:.1f} W (+- {b['uncertainty_j']:.3g} J)")  # fmt: skip


def _serving(config, o):
    """--concurrency / --batch-size (ipw.run.serving): checked against the engine here, so
    that a wrong pair is a usage error before anything loads; --batch-size picks transformers for auto."""
    from dataclasses import replace

    if o.get("concurrency") is not None and o.get("batch_size") is not None:
        raise click.UsageError("--concurrency (a server) and --batch-size (local transformers) do not go together")
    if o.get("concurrency") is not None:
        if config.engine != "openai":
            raise click.UsageError("--concurrency needs --engine openai --base-url URL; local transformers models "
                                   "take --batch-size")  # fmt: skip
        return replace(config, concurrency=o["concurrency"])
    if o.get("batch_size") is not None:
        if config.engine not in ("auto", "transformers"):
            raise click.UsageError("--batch-size needs --engine transformers; servers take --concurrency")
        return replace(config, engine="transformers", batch_size=o["batch_size"])
    return config


@command()
@click.option("--model", default="default", show_default=True,
              help="'default' (SmolLM2-135M-Instruct, shipped), 'gemma3-270m' (gemma extra), a .gguf file, a local HF folder, or the server's model name.")  # fmt: skip
@click.option("--engine", type=click.Choice(["auto", "transformers", "llamacpp", "openai", "mlx"]), default="auto", show_default=True,
              help="auto: llama.cpp if installed (faster on CPU), else transformers.")  # fmt: skip
@click.option("--base-url", callback=_url, help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (vLLM, llama.cpp server, Ollama).")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Environment variable holding the API key (never stored).")
@click.option("--completion", is_flag=True, help="Send prompts as plain completions (base models without a chat template).")
@click.option("--queries", default="default", show_default=True, help="'default' (shipped set) or a JSONL file.")
@click.option("--lm-eval-task", help="Run this lm-eval task instead (offline: its data must be local files).")
@click.option("--lm-eval-include", type=click.Path(exists=True, file_okay=False), help="Folder with the lm-eval task YAML.")
@click.option("--limit", type=click.IntRange(min=1), help="Only N queries, taken round-robin across domains.")
@click.option("--judge-base-url", callback=_url, help="OpenAI-compatible server that grades queries whose grader is 'judge'.")
@click.option("--judge-model", help="The judge's model name on that server.")
@click.option("--judge-api-key-env", default="OPENAI_API_KEY", show_default=True, help="Environment variable with the judge's API key.")
@click.option("--max-tokens", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--temperature", default=0.0, show_default=True, callback=number(0))
@click.option("--seed", default=0, show_default=True)
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(min=0), help="Warm-up queries, run first and not recorded.")
@click.option("--idle", "idle_s", default=5.0, show_default=True, callback=number(0), help="Seconds of idle baseline measured first.")
@click.option("--hz", default=0.0, show_default=True, callback=number(0), help="Power timeline rate (0: off; per-query energy never needs it).")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--run-id", help="Name of the run folder (default: time stamp, engine and model).")
@click.option("--resume", "resume_run", type=click.Path(exists=True, file_okay=False), help="Continue a stopped run folder.")
@click.option("--retry-errors", is_flag=True, help="With --resume: run again the queries whose record is an error.")
@click.option("--retries", default=2, show_default=True, type=click.IntRange(min=0),
              help="openai engine: retries of a query after a timeout, HTTP 408/429/5xx or a broken stream.")
@click.option("--retry-backoff", default=1.0, show_default=True, callback=number(0),
              help="openai engine: wait before the first retry [s], doubling (50-100% jitter, at most 30 s).")
@click.option("--timeout", "timeout_s", default=60.0, show_default=True, callback=number(0, strict=True),
              help="openai engine: longest wait for any one read (connect, first byte, each chunk) [s].")
@click.option("--deadline", "deadline_s", default=300.0, show_default=True, callback=number(0, strict=True),
              help="openai engine: longest one query may take, every try and wait included [s].")
@click.option("--concurrency", type=click.IntRange(min=1),
              help="openai engine: keep N queries in flight (serving regime; per-query energy by attribution, docs/serving.md).")
@click.option("--batch-size", type=click.IntRange(min=1),
              help="transformers engine: generate N queries per batch (serving regime, docs/serving.md).")
@click.option("--shard", help="Run only shard i of n of the query set, e.g. 0/4 (deterministic by id hash, "
                              "balanced across domains; docs/cluster.md).")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", show_default=True,
              help="transformers engine: where the model runs (auto: CUDA when present).")
@click.option("--dtype", type=click.Choice(["auto", "bfloat16", "float16", "float32"]), default="auto", show_default=True,
              help="transformers engine: weights' type (auto: bfloat16 on a GPU, float32 on a CPU); mlx engine: "
                   "cast to it (auto: as stored).")
@click.option("--n-gpu-layers", type=int, help="llama.cpp engine: layers offloaded to the GPU (-1: all; default: all on GPU builds, 0 on CPU builds).")
@click.option("--gpus", help="GPUs to measure, comma-separated CUDA indices or UUIDs (default: every visible GPU; "
                             "CUDA_VISIBLE_DEVICES is honoured).")
@click.option("--cpu-scope", type=click.Choice(["machine", "process-tree"]),
              help="Where no CPU counter exists, the estimate's CPU time: the whole machine's (default) or this "
                   "process tree's (a shared machine's other work is not charged).")
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
      ipw profile --engine transformers --model ~/models/qwen --device cuda --gpus 0
      ipw profile --engine openai --base-url http://127.0.0.1:8000/v1 --model m --concurrency 16
      ipw profile --engine transformers --batch-size 8 --limit 64
      ipw profile --shard 0/4                       # one quarter of the set (ipw launch runs all four)
      ipw profile --resume runs/r --retry-errors    # run again the queries that failed
      ipw profile --model gemma3-270m               # the second shipped model (gemma extra)
    """
    from ipw.run import runner
    from ipw.engines import GenerationSettings

    if o["retry_errors"] and not o["resume_run"]:
        raise click.UsageError("--retry-errors goes with --resume RUN")
    retry = {"tries": o["retries"] + 1, "backoff_s": o["retry_backoff"], "timeout_s": o["timeout_s"],
             "deadline_s": o["deadline_s"]}  # fmt: skip
    if o["resume_run"]:
        store = runner.resume(o["resume_run"], observer=ProgressBar(not o["quiet"]), retry_errors=o["retry_errors"])
    else:
        options = {"model": o["model"]}
        if o["engine"] == "openai":
            if not o["base_url"]:
                raise click.UsageError("--engine openai needs --base-url")
            options |= {"base_url": o["base_url"], "api_key_env": o["api_key_env"]} | retry
        if o["completion"]:
            options["chat"] = False
        options |= _device_options(o)
        lm_eval = None
        if o["lm_eval_task"]:
            if not o["lm_eval_include"]:
                raise click.UsageError("--lm-eval-task needs --lm-eval-include (offline task files)")
            lm_eval = {"task_name": o["lm_eval_task"], "include_path": o["lm_eval_include"]}
        judge = None
        if o["judge_base_url"]:
            judge = {"base_url": o["judge_base_url"], "model": o["judge_model"] or "default",
                     "api_key_env": o["judge_api_key_env"]} | retry  # fmt: skip
        config = runner.RunConfig(
            engine=o["engine"], engine_options=options, queries=o["queries"],
            settings=GenerationSettings(max_tokens=o["max_tokens"], temperature=o["temperature"], seed=o["seed"]),
            warmup=o["warmup"], limit=o["limit"], idle_s=o["idle_s"], sampler_hz=o["hz"] or None,
            runs_dir=o["runs_dir"], run_id=o["run_id"], lm_eval=lm_eval, judge=judge, shard=o["shard"],
            gpus=tuple(g.strip() for g in o["gpus"].split(",") if g.strip()) if o["gpus"] else None,
            cpu_scope=o["cpu_scope"],
        )  # fmt: skip
        config = _serving(config, o)
        store = runner.profile(config, observer=ProgressBar(not o["quiet"]))
    print_summary(store.path)
