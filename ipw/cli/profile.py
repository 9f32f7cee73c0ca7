"""``ipw profile``: a model over a query set, every query graded and measured."""

from __future__ import annotations

from pathlib import Path

import click

from ipw.cli.checks import base_url, number, retry_options, run_options, server_options
from ipw.cli import resume as resume_options
from ipw.cli.face import command
from ipw.cli.progress import ProgressBar, quiet_libraries


def _serving_run(path) -> bool:
    """Whether the run folder at ``path`` is a serving run (its manifest's config)."""
    import json

    try:
        config = json.loads((Path(path) / "manifest.json").read_text()).get("config", {})
    except (OSError, ValueError):
        return False
    return config.get("concurrency") is not None or config.get("batch_size") is not None


def _ci(row: dict, key: str, spec: str, why: dict) -> str:
    """``low - high``, or ``n/a (reason)`` (:mod:`ipw.core.missing`)."""
    from ipw.core.missing import fmt, missing

    lo, hi = row.get(key) or (None, None)
    if missing(lo) or missing(hi):
        return fmt(None, spec, why.get(key, ""))
    return f"{format(lo, spec)} - {format(hi, spec)}"


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


def _resume_targets(path: Path) -> list[Path]:
    """The run folder to resume; for a folder holding the shards of one run made by ``--shard`` (not
    a launch's cell: ``ipw launch --resume`` continues those on the cluster), each shard not yet
    complete, one after the other on this machine."""
    from ipw.run.runner import shard_folders
    from ipw.store import MANIFEST, RunStore

    if (path / MANIFEST).is_file() or (path / "launch.json").is_file() or (path.parent / "launch.json").is_file():
        return [path]  # a run; or a launch, which runner.stored_config says how to continue
    shards = shard_folders(path)
    left = [p for p in shards if RunStore(p).manifest.get("status") != "complete"]
    if shards:
        click.echo(f"{path} holds {len(shards)} shard run(s); resuming {len(left)} not complete: "
                   f"{', '.join(p.name for p in left) or 'none'}")  # fmt: skip
    return left if shards else [path]


def print_summary(run_path: Path) -> None:
    """Print the run's stored summary (``summary.json``, written by the runner as the session ends)."""
    from ipw.store import read_summary

    manifest, summary = read_summary(run_path)  # what the runner computed: no record is read again
    if not summary:
        click.echo("no queries recorded")
        _print_unfinished(run_path, manifest, 0)
        return
    from ipw.core.missing import fmt, reasons

    o = summary["overall"]
    _print_unfinished(run_path, manifest, o["n"])
    why = reasons(o)
    scope = o["energy_scope"]
    label = "measured" if o["measured"] else "estimate"
    shown = "measured" if o["measured"] else "ESTIMATE (no energy counter on this machine)"
    system = "measured" if o.get("system_measured") else "estimate"  # a host estimate makes the system figure one
    errors = f", {o['errors']} errors not scored" if o["errors"] else ""
    click.echo(f"\nrun: {run_path}")
    click.echo(f"queries: {o['n']} (scored {o['scored']}{errors})  {scope} energy: {shown}")
    _print_cpu_scope(manifest.get("cpu_scope"))
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
    click.echo(f"accuracy: {fmt(o['accuracy'], '.1%', why.get('accuracy', ''))}  [95% CI {_ci(o, 'accuracy_ci', '.1%', why)}]")

    def j(key: str, what: str, kind: str) -> str:  # "1.234 J system (estimate)" or "system n/a (reason)"
        return f"{what} {fmt(None, '', why[key])}" if key in why else f"{o[key]:.3f} J {what} ({kind})"

    above = "scope_energy_above_idle_j_mean" if "scope_energy_above_idle_j_mean" in o else None  # older summaries lack it
    scoped = f", {j(above, f'{scope} above idle', label)}" if above and scope not in ("system", "above_idle") else ""
    click.echo(f"energy per query: {j('scope_energy_j_mean', scope, label)}{scoped}, {j('energy_j_mean', 'system', system)}, "
               f"{j('energy_above_idle_j_mean', 'system above idle', system)}")
    click.echo(f"mean power per query: {fmt(o['power_w_mean'], '.2f', why.get('power_w_mean', ''), ' W')} {scope} ({label})")
    click.echo(f"IPW: {fmt(o['ipw_per_w'], '.5f', why.get('ipw_per_w', ''), ' /W')}  [{_ci(o, 'ipw_ci', '.5f', why)}]   "
               f"IPJ: {fmt(o['ipj_per_j'], '.5f', why.get('ipj_per_j', ''), ' /J')}  [{_ci(o, 'ipj_ci', '.5f', why)}]"
               f"   ({o['n_boot']} bootstrap resamples; {scope} energy, {label})")
    ms = lambda key, spec, unit: fmt(None if o.get(key) is None else o[key] * 1e3, spec, why.get(key, ""), unit)  # noqa: E731
    click.echo(f"latency: TTFT {ms('ttft_s_mean', '.0f', ' ms')}, TPOT {ms('tpot_s_mean', '.1f', ' ms/token')}, "
               f"end-to-end {fmt(o.get('e2e_s_mean'), '.2f', why.get('e2e_s_mean', ''), ' s')}")
    if o.get("serving_power_w") is not None:
        click.echo(f"IPW here is accuracy over the device's mean power while serving, {o['serving_power_w']:.2f} W, "
                   f"comparable across levels (docs/serving.md); over the per-query attributed power: "
                   f"{fmt(o.get('ipw_attributed_per_w'), '.5f', why.get('ipw_attributed_per_w', ''), ' /W')}")  # fmt: skip
    _print_serving(manifest.get("serving"))
    by_domain = summary["by_domain"]
    if by_domain:
        import pandas as pd

        from ipw.cli.text import table

        by = pd.DataFrame(by_domain)[["domain", "n", "accuracy", "scope_energy_j_mean", "ipw_per_w"]]
        by = by.rename(columns={"scope_energy_j_mean": f"{scope}_j_mean"})
        why_rows = [{(f"{scope}_j_mean" if k == "scope_energy_j_mean" else k): v for k, v in reasons(r).items()}
                    for r in by_domain]
        click.echo("\n" + table(by, why_rows, key="domain"))


def _print_cpu_scope(entry: dict | None) -> None:
    """Whose CPU time the estimate charged, and why (:mod:`ipw.run.cpu_scope`), when the estimate was used."""
    from ipw.run.cpu_scope import line

    if line(entry):
        click.echo(line(entry))


def _print_unfinished(path, manifest: dict, done: int) -> None:
    """The run's state when it is not complete (:func:`ipw.store.run.unfinished_state`), with the way on."""
    from ipw.store.run import unfinished_state

    state = unfinished_state(manifest, done)
    if state:
        click.echo(f"\n{state}; continue with: ipw profile --resume {path}")


def _until_stopped(start):
    """``start()`` (a run) under ipw's signal handling (:mod:`ipw.run.stop`): a run stopped by Ctrl-C
    or SIGTERM prints the summary of what was done and exits with status 130."""
    from ipw.run.stop import RunInterrupted, handle_signals

    try:
        with handle_signals(lambda message: click.echo(f"\n{message}", err=True)):
            return start()
    except RunInterrupted as e:
        print_summary(e.path)
        click.get_current_context().exit(130)
    except KeyboardInterrupt as e:
        click.echo(f"\nstopped ({e or 'SIGINT'}) before any query ran", err=True)
        click.get_current_context().exit(130)


def _print_serving(serving: dict | None) -> None:
    """The serving regime's rule and steady state (ipw.run.serving), when the run has one."""
    from ipw.core.missing import fmt

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
                   f"{st['tokens_per_s']:.1f} tokens/s, {b['power_w']:.1f} W (+- {fmt(b['uncertainty_j'], '.3g', 'no bound', ' J')})")  # fmt: skip


def _server_pid(o: dict) -> int | None:
    """--server-pid, checked: it goes with --engine openai and names a live process."""
    if o.get("server_pid") is None:
        return None
    from ipw.core.errors import IpwError
    from ipw.run.cpu_scope import check_server_pid

    if o["engine"] != "openai":
        raise click.UsageError("--server-pid goes with --engine openai (a local engine runs in ipw's own process)")
    try:
        return check_server_pid(o["server_pid"])
    except IpwError as e:
        raise click.BadParameter(str(e), param_hint="--server-pid") from None


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


@command(short_help="Run a model over a query set: grade and measure every query.")
@click.option("--model", default="default", show_default=True,
              help="'default' (SmolLM2-135M-Instruct, shipped), 'gemma3-270m' (gemma extra), a .gguf file, a local HF folder, or the server's model name.")  # fmt: skip
@click.option("--engine", type=click.Choice(["auto", "transformers", "llamacpp", "openai", "mlx"]), default="auto", show_default=True,
              help="auto: llama.cpp if installed (faster on CPU), else transformers.")  # fmt: skip
@server_options
@click.option("--completion", is_flag=True, help="Send prompts as plain completions (base models without a chat template).")
@run_options
@click.option("--lm-eval-task", help="Run this lm-eval task instead (offline: its data must be local files).")
@click.option("--lm-eval-include", type=click.Path(exists=True, file_okay=False), help="Folder with the lm-eval task YAML.")
@click.option("--order", type=click.Choice(["interleaved", "file"]), default="interleaved", show_default=True,
              help="interleaved: domains mixed in a fixed seeded order, so a stopped or --limit run is a fair "
                   "sample; file: domain by domain as the file lists them (--limit then takes round-robin).")
@click.option("--judge-base-url", callback=base_url, help="OpenAI-compatible server that grades queries whose grader is 'judge'.")
@click.option("--judge-model", help="The judge's model name on that server.")
@click.option("--judge-api-key-env", default="OPENAI_API_KEY", show_default=True, help="Environment variable with the judge's API key.")
@click.option("--answer-stops/--no-answer-stops", default=True, show_default=True,
              help="End a short answer (numeric, exact, mc graders) at its line's end: on the shipped set, "
                   "higher accuracy and 25% fewer tokens (docs/profile.md).")
@click.option("--temperature", default=0.0, show_default=True, callback=number(0))
@click.option("--seed", default=0, show_default=True)
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--run-id", help="Name of the run folder (default: time stamp, engine and model).")
@click.option("--resume", "resume_run", type=click.Path(exists=True, file_okay=False),
              help="Continue a stopped run folder (or the shards of a launch cell); its options come from its manifest.")
@click.option("--retry-errors", is_flag=True, help="With --resume: run again the queries whose record is an error.")
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
              help="Where no CPU counter exists, whose CPU time the estimate charges [default: this process tree "
                   "for transformers and llama.cpp, the server's with --server-pid, else the whole machine].")
@click.option("--server-pid", type=click.IntRange(min=1),
              help="openai engine: the pid of a server on this machine; the CPU estimate then charges its "
                   "processes' CPU time and ipw's, not the whole machine's.")
@click.option("--quiet", is_flag=True, help="No progress bar, neither ipw's nor the engine libraries' (loading bars).")
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
    retry = retry_options(o)
    if o["quiet"]:
        quiet_libraries()
    if o["resume_run"]:
        for run in _resume_targets(Path(o["resume_run"])):
            changes, said = resume_options.check(click.get_current_context(), o, run, runner.stored_config(run))
            click.echo(said)
            bar = ProgressBar(not o["quiet"], serving=_serving_run(run))
            store = _until_stopped(lambda: runner.resume(run, observer=bar, retry_errors=o["retry_errors"],
                                                         changes=changes))  # fmt: skip
            print_summary(store.path)
        return
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
        cpu_scope=o["cpu_scope"], order=o["order"], server_pid=_server_pid(o), answer_stops=o["answer_stops"],
    )  # fmt: skip
    config = _serving(config, o)
    bar = ProgressBar(not o["quiet"], serving=config.concurrency is not None or config.batch_size is not None)
    store = _until_stopped(lambda: runner.profile(config, observer=bar))
    print_summary(store.path)
