"""``ipw launch``: shards of a query set as Ray tasks across a cluster (docs/cluster.md)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from ipw.cli.checks import engine_option, number, retry_options, run_options, server_options
from ipw.cli.resume import given
from ipw.cli.face import command


@command(short_help="Run the shards of a query set as Ray tasks across a cluster.")
@click.option("--shards", type=click.IntRange(min=1), help="Shards per model x engine (e.g. one per GPU of the cluster).")
@click.option("--model", "models", multiple=True, help="A model (repeatable: one cell per model x engine). Default: the shipped one.")
@click.option("--engine", "engines", multiple=True, type=click.Choice(["auto", "transformers", "llamacpp", "openai"]),
              help="An engine (repeatable). Default: auto.")
@server_options
@run_options
@click.option("--address", help="Ray cluster: 'auto' (the one this machine belongs to), host:port or ray://host:10001. "
                                "Default: a Ray instance on this machine.")
@click.option("--connect-timeout", "connect_timeout_s", default=30.0, show_default=True, callback=number(0, strict=True),
              help="Longest wait for the Ray cluster at --address to answer [s].")
@click.option("--gpus-per-shard", type=float, callback=number(0), help="Default: 1 when the cluster has GPUs, else 0.")
@click.option("--cpus-per-shard", default=1.0, show_default=True, callback=number(0))
@click.option("--max-retries", default=3, show_default=True, type=click.IntRange(min=0),
              help="Times Ray runs a shard again after its worker or node died (it resumes from its records).")
@click.option("--launch-dir", default="launches", show_default=True, type=click.Path(file_okay=False),
              help="Where the launch folder goes: a path every node sees (shared filesystem), or, with --collect, "
                   "one on this node alone.")
@click.option("--collect", is_flag=True,
              help="Shards write on their own node ($IPW_SHARD_DIR, else <tmp>/ipw-shards) and send their run folders "
                   "back into the launch folder through Ray (nodes that share no disk; also where a node cannot see it).")
@click.option("--launch-id", help="Name of the launch folder (default: time stamp).")
@click.option("--resume", "resume_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Continue an earlier launch: complete shards are kept, the others continue from their records.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def launch(**o) -> None:
    """Run the shards of a query set as Ray tasks across the nodes of a Ray cluster.

    Each shard (`ipw profile --shard i/n`) runs on the node Ray picks, with one GPU where the
    cluster has GPUs, and measures that node into its own run folder under
    LAUNCH_DIR/LAUNCH_ID/CELL/shard-i-of-n. Several --model and --engine values make a model x
    engine grid, one cell each. A shard whose worker dies is run again by Ray and continues from
    its own records. `ipw report` and `ipw compare` read a cell folder as one run.

    \b
    Examples:
      ray start --head                     # on one node; `ray start --address HEAD:6379` on the others
      ipw launch --address auto --shards 8 --model ~/models/a.gguf --model ~/models/b.gguf --engine llamacpp
      ipw launch --shards 2 --limit 20     # a Ray instance on this machine, CPU shards
      ipw launch --address auto --shards 8 --collect   # no shared disk: results come home through Ray
      ipw launch --resume launches/20261201-120000-launch
      ipw report launches/20261201-120000-launch/llamacpp-a -o a.html
    """
    from ipw.run import launch as launcher
    from ipw.engines import GenerationSettings
    from ipw.run.config import RunConfig

    if o["resume_dir"]:
        spec = _resumed(o, launcher.resume_spec(o["resume_dir"]))
    else:
        if not o["shards"]:
            raise click.UsageError("give --shards N (or --resume LAUNCH)")
        engines = list(o["engines"]) or ["auto"]
        if "openai" in engines and not o["base_url"]:
            raise click.UsageError("--engine openai needs --base-url")
        extra = {"base_url": o["base_url"], "api_key_env": o["api_key_env"]} | retry_options(o) if "openai" in engines else {}
        base = RunConfig(queries=o["queries"], settings=GenerationSettings(max_tokens=o["max_tokens"]), warmup=o["warmup"],
                         limit=o["limit"], idle_s=o["idle_s"], sampler_hz=o["hz"] or None)
        cells = launcher.grid(base, list(o["models"]) or ["default"], engines, extra)
        cells = tuple(c if c.config.engine == "openai" else launcher.Cell(c.name, _local(c.config)) for c in cells)
        spec = launcher.LaunchSpec(cells=cells, shards=o["shards"], launch_dir=o["launch_dir"], launch_id=o["launch_id"],
                            address=o["address"], gpus_per_shard=o["gpus_per_shard"], cpus_per_shard=o["cpus_per_shard"],
                            max_retries=o["max_retries"], connect_timeout_s=o["connect_timeout_s"], collect=o["collect"])
    result = launcher.launch(spec, progress=not o["quiet"], resume=o["resume_dir"])
    _print(result)
    if result.failed:
        lines = "\n".join(f"  {k}: {v}" for k, v in sorted(result.failed.items()))
        raise click.ClickException(f"{len(result.failed)} shard(s) failed:\n{lines}\n"
                                   f"continue with: ipw launch --resume {result.path}")


MAY_CHANGE = ("address", "connect_timeout_s", "gpus_per_shard", "cpus_per_shard", "max_retries", "collect")
"""Options that say where and how the shards run, not what they measure: free to change on --resume."""


def _same(name: str, value, spec) -> bool:
    """Whether ``value`` of option ``name`` is what the launch being resumed holds (every cell)."""
    from ipw.cli.resume import SAFE, SAME

    configs = [c.config for c in spec.cells]
    if name == "shards":
        return value == spec.shards
    if name in ("models", "engines"):
        return False  # the grid of cells is the launch's own; its names are in launch.json
    if name in SAFE:  # a server's waits and tries: recorded in each shard's manifest, which its resume reads
        key, wanted = engine_option(name, value)
        return all(c.engine_options.get(key) == wanted for c in configs)
    return name in SAME and all(SAME[name](value, c) for c in configs)


def _resumed(o: dict, spec):
    """The launch being resumed with the options of :data:`MAY_CHANGE` given now. Refuses, naming
    them, the other options given that differ from the launch's own: a resumed shard continues with
    the options of its manifest, so another value would be ignored."""
    from ipw.cli.resume import flag

    ctx = click.get_current_context()
    names = given(ctx)
    differ = [n for n in names if n not in (*MAY_CHANGE, "quiet", "resume_dir") and not _same(n, o[n], spec)]
    if differ:
        shown = ", ".join(flag(ctx, n) for n in differ)
        raise click.UsageError(f"--resume {o['resume_dir']} continues the launch with the options of its launch.json "
                               f"and shard manifests; these differ from them: {shown}. Start a new launch for other "
                               f"options; with --resume only {', '.join(flag(ctx, n) for n in MAY_CHANGE)} "
                               "may change")  # fmt: skip
    now = {k: o[k] for k in MAY_CHANGE if k in names}  # the rest: the launch's own
    return replace(spec, **now | {"collect": o["collect"] or spec.collect})


def _local(config):
    server = ("base_url", "api_key_env", "tries", "backoff_s", "timeout_s", "deadline_s")
    options = {k: v for k, v in config.engine_options.items() if k not in server}
    return replace(config, engine_options=options)


def _print(result) -> None:
    from ipw.science.intelligence.metrics import summarize
    from ipw.store import MANIFEST, load

    click.echo(f"\nlaunch: {result.path}")
    for cell in result.cells:
        if not any((p / MANIFEST).is_file() for p in cell.glob("shard-*")):
            click.echo(f"\n{cell.name}: no shard has records yet")
            continue
        run = load(cell)
        q = run.queries
        m = run.manifest
        missing = f", missing shards {m['missing_shards']}" if m.get("missing_shards") else ""
        click.echo(f"\n{cell.name}: {len(q)} queries from {len(m.get('shards', []))} shard(s){missing}, status {m.get('status')}")
        if q.empty:
            continue
        by = summarize(q, by="node")
        cols = ["node", "n", "accuracy", "scope_energy_j_mean", "power_w_mean", "ipw_per_w", "ipj_per_j"]
        click.echo(by[[c for c in cols if c in by]].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        for node, hw in (m.get("hardware", {}).get("nodes") or {}).items():
            click.echo(f"  {node}: {hw}")
