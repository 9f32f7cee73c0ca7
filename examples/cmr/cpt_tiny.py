"""Continual pre-training of a tiny byte-level transformer on CPU, at several mixture ratios.

1. Pre-train a tiny causal transformer (random init, ~0.1M parameters) on *general* text.
2. From that one checkpoint, continue training on a mix with domain share R for each R in
   {1/8, 1/4, 1/3, 1/2, 3/4, 1}; evaluate general and domain validation loss every few steps.
3. Write the CPT grid as a runs CSV and analyse it with ipw.science.cmr (loss laws, feasible region, CMR).

Text (shipped in ipw/data/cmr/text, see SOURCES.md there): general = Vim user manual chapters
2-4 (prose about editing), domain = the GPL-3.0, Apache-2.0 and MPL-2.0 licence texts (legal).
Runs offline; nothing is downloaded. Usage:

    python examples/cmr/cpt_tiny.py --out examples/cmr/out          # full run (see README for time)
    python examples/cmr/cpt_tiny.py --smoke --out /tmp/cmr-smoke    # seconds; a code-path check
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd
import torch
from torch import nn

RATIOS = (1 / 8, 1 / 4, 1 / 3, 1 / 2, 3 / 4, 1.0)


@dataclass(frozen=True)
class Setup:
    """Sizes and schedule of the example (defaults: the documented run)."""

    context: int = 64
    width: int = 64
    layers: int = 2
    heads: int = 4
    batch: int = 24  # sequences per step; R * batch of them are domain sequences
    pretrain_steps: int = 1500
    pretrain_lr: float = 3e-3
    cpt_steps: int = 400
    cpt_lr: float = 1e-3  # constant after warm-up (the paper: warmup-constant, 1/10 of pre-training)
    warmup: int = 20
    eval_every: int = 20
    eval_windows: int = 64
    seed: int = 0


SMOKE = Setup(pretrain_steps=2, cpt_steps=6, eval_every=1, eval_windows=4, warmup=1)


class TinyLM(nn.Module):
    """A byte-level causal transformer: embedding, pre-norm encoder layers, tied output head."""

    def __init__(self, s: Setup) -> None:
        super().__init__()
        self.embed = nn.Embedding(256, s.width)
        nn.init.normal_(self.embed.weight, std=0.02)  # tied head: unit-scale logits at init
        self.pos = nn.Parameter(torch.zeros(s.context, s.width))
        layer = nn.TransformerEncoderLayer(s.width, s.heads, 4 * s.width, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, s.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(s.width)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(s.context))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.pos[: x.shape[1]]
        h = self.blocks(h, mask=self.mask[: x.shape[1], : x.shape[1]], is_causal=True)
        return self.norm(h) @ self.embed.weight.T


def load_text(name: str) -> torch.Tensor:
    data = resources.files("ipw").joinpath(f"data/cmr/text/{name}.txt").read_bytes()
    return torch.tensor(list(data), dtype=torch.long)


def split(data: torch.Tensor, frac: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    cut = int(len(data) * frac)
    return data[:cut], data[cut:]


def windows(data: torch.Tensor, n: int, s: Setup, gen: torch.Generator) -> torch.Tensor:
    start = torch.randint(0, len(data) - s.context - 1, (n,), generator=gen)
    return torch.stack([data[i : i + s.context + 1] for i in start.tolist()])


def loss_on(model: TinyLM, batch: torch.Tensor) -> torch.Tensor:
    logits = model(batch[:, :-1])
    return nn.functional.cross_entropy(logits.reshape(-1, 256), batch[:, 1:].reshape(-1))


@torch.no_grad()
def evaluate(model: TinyLM, fixed: dict[str, torch.Tensor]) -> dict[str, float]:
    model.eval()
    out = {name: float(loss_on(model, batch)) for name, batch in fixed.items()}
    model.train()
    return out


def train(model: TinyLM, steps: int, lr: float, sample, s: Setup, on_eval=None) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / s.warmup))
    for step in range(1, steps + 1):
        loss = loss_on(model, sample())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if on_eval is not None and step % s.eval_every == 0:
            on_eval(step)


def mixed_sampler(gen_train, dom_train, ratio: float, s: Setup, g: torch.Generator):
    n_dom = round(ratio * s.batch)

    def sample() -> torch.Tensor:
        parts = [windows(dom_train, n_dom, s, g)] if n_dom else []
        if s.batch - n_dom:
            parts.append(windows(gen_train, s.batch - n_dom, s, g))
        return torch.cat(parts)
    return sample


def run_grid(s: Setup, ratios=RATIOS, log=print) -> pd.DataFrame:
    """Pre-train once, then CPT at each ratio; one row per evaluation (ipw.science.cmr runs format)."""
    torch.manual_seed(s.seed)
    g = torch.Generator().manual_seed(s.seed)
    (gen_tr, gen_va), (dom_tr, dom_va) = split(load_text("general")), split(load_text("domain"))
    fixed = {"general": windows(gen_va, s.eval_windows, s, g), "domain": windows(dom_va, s.eval_windows, s, g)}
    base = TinyLM(s)
    train(base, s.pretrain_steps, s.pretrain_lr, mixed_sampler(gen_tr, dom_tr, 0.0, s, g), s)
    before = evaluate(base, fixed)
    log(f"before CPT: general {before['general']:.4f}, domain {before['domain']:.4f} nats/byte")
    rows = []
    for ratio in ratios:
        model = copy.deepcopy(base)

        def record(step: int, ratio=ratio, model=model) -> None:
            now = evaluate(model, fixed)
            rows.append(dict(model="tiny-lm", ratio=ratio, tokens=step * s.batch * s.context,
                             general_loss=now["general"], domain_loss=now["domain"],
                             general_loss_before=before["general"], domain_loss_before=before["domain"]))
        train(model, s.cpt_steps, s.cpt_lr, mixed_sampler(gen_tr, dom_tr, ratio, s, g), s, record)
        log(f"R = {ratio:.3f}: general {rows[-1]['general_loss']:.4f}, domain {rows[-1]['domain_loss']:.4f}")
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("examples/cmr/out"))
    p.add_argument("--eps", type=float, default=0.05, help="tolerance on the general-loss rise (nats/byte)")
    p.add_argument("--smoke", action="store_true", help="a few steps only: checks the code path")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for this tiny model when the CPU is shared)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    s = SMOKE if args.smoke else Setup()
    t0 = time.perf_counter()
    runs = run_grid(s)
    train_s = time.perf_counter() - t0
    from ipw.science.cmr import save_runs

    path = save_runs(runs, args.out / "runs.csv")
    print(f"CPT grid: {len(runs)} rows -> {path} ({train_s:.1f} s of training on {args.threads} threads)")
    if not args.smoke:
        analyse_grid(path, args.out, args.eps, s)


def analyse_grid(path: Path, out: Path, eps: float, s: Setup) -> None:
    from ipw.science.cmr import CmrConfig, analyse, load_runs
    from ipw.science.cmr.results import CmrResults
    from ipw.reports.savefig import save_figure
    from ipw.reports.science_figures import cmr_fit_figure

    unit = s.batch * s.context  # one CPT step's tokens = one unit of T
    result = analyse(load_runs(path), CmrConfig(eps=eps, token_unit=unit))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(result.feasible.to_string(index=False))
        print(result.cmr_law.to_string(index=False))
        print(result.predict([2 * s.cpt_steps * unit]).to_string(index=False))
    saved = CmrResults.from_analysis(result)
    saved.save(out / "analysis")  # what `ipw cmr fit --out` writes: input to `ipw report --extra`
    print(f"plot: {save_figure(cmr_fit_figure(saved.tables, eps), out / 'cmr.png', dpi=110)}")


if __name__ == "__main__":
    main()
