"""``ipw sweep``: one query set at several concurrencies or batch sizes, and the energy-latency frontier.

It takes every option of ``ipw profile`` (model, engine, query set, limits, retries, ...) except
--resume, and runs ``ipw profile`` once per level into ``RUN_ID-c<N>`` (or ``-b<N>``).
"""

from __future__ import annotations

import click

from ipw.cli.face import command
from ipw.cli.profile import profile as profile_command

SKIPPED = ("concurrency", "batch_size", "resume_run", "retry_errors")
SHOWN = ["level", "n", "accuracy", "ipj_per_j", "energy_per_query_j", "energy_scope", "energy", "steady_j_per_token",
         "steady_tokens_per_s", "steady_power_w", "ttft_p50_s", "tpot_p50_s", "tpot_vllm_mean_s", "itl_p99_s", "queue_mean_s",
         "frontier_ttft", "frontier_tpot"]


def _levels(ctx, param, value):
    if value is None:
        return None
    from ipw.run.sweep import SweepError, parse_levels

    try:
        return parse_levels(value)
    except SweepError as e:
        raise click.BadParameter(str(e)) from None


def sweep_callback(**o) -> None:
    """Run the same query set at every level and print the frontier of energy against latency.

    Each level is an `ipw profile` run of its own (RUNS_DIR/RUN_ID-c<N> for --concurrency,
    RUN_ID-b<N> for --batch-size), measured in the serving regime: per-query energy by the
    attribution rule, steady-state J/token over ML.ENERGY's window (docs/serving.md).

    \b
    Examples:
      ipw sweep --engine openai --base-url http://127.0.0.1:8000/v1 --model m --concurrency 1,4,16,64
      ipw sweep --engine transformers --batch-size 1,8,32 --limit 64 --out sweep-result/
      ipw report --extra sweep-result/ -o report.html
    """
    from ipw.cli.text import table
    from ipw.core.missing import reasons
    from ipw.store import new_run_id
    from ipw.run.sweep import SweepResult, level_run_id, levels_frame

    ctx = click.get_current_context()
    if (o["concurrency"] is None) == (o["batch_size"] is None):
        raise click.UsageError("give exactly one of --concurrency LEVELS (a server) or --batch-size LEVELS (transformers)")
    mode = "concurrency" if o["concurrency"] is not None else "batch_size"
    levels = o[mode]
    base = o["run_id"] or new_run_id(f"sweep-{o['engine']}")
    out = o.pop("out")
    paths = []
    for level in levels:
        run_id = level_run_id(base, mode, level)
        click.echo(f"\n== {mode.replace('_', ' ')} {level}: run {run_id}")
        options = {k: v for k, v in o.items() if k not in SKIPPED} | {"run_id": run_id, mode: level}
        ctx.invoke(profile_command, **options)
        paths.append(f"{o['runs_dir']}/{run_id}")
    frame = levels_frame(paths)
    click.echo("\nserving frontier (steady-state J/token against median TTFT and TPOT):")
    click.echo(table(frame[[c for c in SHOWN if c in frame]], [reasons(r) for r in frame.to_dict(orient="records")], key="level"))
    if out:
        SweepResult(frame, {"mode": mode, "levels": levels, "base_run_id": base, "runs": paths}).save(out)
        click.echo(f"\nsaved: {out} (ipw report --extra {out})")


_params = [p for p in profile_command.params if p.name not in SKIPPED]
_params += [
    click.Option(["--concurrency"], callback=_levels, help="Levels of requests in flight, e.g. 1,4,16,64 (--engine openai)."),
    click.Option(["--batch-size"], callback=_levels, help="Batch sizes, e.g. 1,8,32 (--engine transformers)."),
    click.Option(["--out"], type=click.Path(file_okay=False), help="Save the sweep's table (kind serving.sweep) in this folder."),
]
sweep = command("sweep", params=_params,
                short_help="Run one query set at several levels: the energy-latency frontier.")(sweep_callback)
