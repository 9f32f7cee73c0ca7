"""GPU validation of ipw's NVIDIA path, in one run of under four minutes on one GPU.

Run on a machine with an NVIDIA GPU, torch with CUDA, and pynvml (nvidia-ml-py). It changes no GPU
setting (no power limit, clock or mode is touched); it only reads NVML and runs CUDA work. Each
section runs in its own try/except, prints one JSON line when done, and the summary is printed
at the end (and written to --out). Sections:

  devices     what `ipw devices` shows: each GPU's counter, probed update period, read costs
              (counter call, counter field, instant field, power usage), MIG mode, power limit
  counter     ~10 s of mixed load: the energy counter against the integral of a fast poll (1 ms)
              of the instant-power field, under three conventions for what an instant sample
              stands for (held forward from its timestamp, held backward, trapezoid), and each
              100 ms counter step against the instant samples at lags -1, 0, +1
  windows     windows of 10 ms to 4 s at random phases under mixed load: the monitor's energy (and
              the old edge reads') against the fast poll of the instant field, with bound coverage
  edge_cost   the time a window adds to a 2 ms unit of Python work: monitor edges only, monitor
              resolved at stop, counter read at the edges
  tokens      tokens/s of a real generate loop (a randomly initialised SmolLM2-135M-shaped Llama,
              built here, no download) bare, in windows (edges only, sync_cuda), in windows
              resolved per query, and with edge reads; interleaved blocks
  batches     the same model at batch 1, 8 and 32: J/token (accelerator, and above idle) and tokens/s

Usage: python benchmarks/gpu_validation.py [--gpu 0] [--budget-s 220] [--out FILE] [--only SECTION,...]
Needs: python with torch (CUDA) and pynvml; transformers is used when importable (else a pure-torch
Llama of the same shape); ipw is imported from this checkout (no install needed). If pynvml is
missing, a pynvml.py found under this checkout's .venv is loaded.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SECTIONS = ("devices", "counter", "windows", "edge_cost", "tokens", "batches")
T_START = time.monotonic()


def elapsed() -> float:
    return time.monotonic() - T_START


def emit(name: str, data: dict) -> None:
    print(json.dumps({"section": name, **data}, default=_jsonable), flush=True)


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return str(x)


def load_pynvml():
    try:
        import pynvml

        return pynvml
    except ImportError:
        import importlib.util

        for path in sorted(REPO.glob(".venv/lib/python*/site-packages/pynvml.py")):
            spec = importlib.util.spec_from_file_location("pynvml", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules["pynvml"] = module
            spec.loader.exec_module(module)
            return module
        raise


# ---------------------------------------------------------------------------------------------
# load and polling helpers


def sync(torch) -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class GpuLoad:
    """A background thread that keeps the GPU busy in a mixed pattern of bursts and pauses."""

    PATTERN_MS = [(200, 200), (50, 50), (20, 80), (1000, 300), (10, 10), (400, 100), (0, 500), (100, 30)]

    def __init__(self, torch, device: str) -> None:
        self.torch = torch
        n = 4096 if device.startswith("cuda") else 256
        self.a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        self.b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self) -> GpuLoad:
        self.thread.start()
        return self

    def run(self) -> None:
        torch = self.torch
        while not self.stop_event.is_set():
            for busy_ms, idle_ms in self.PATTERN_MS:
                end = time.monotonic() + busy_ms * 1e-3
                while time.monotonic() < end and not self.stop_event.is_set():
                    for _ in range(4):
                        torch.matmul(self.a, self.b)
                    sync(torch)
                if self.stop_event.wait(idle_ms * 1e-3):
                    return

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join()
        sync(self.torch)


class FastPoll:
    """Polls the instant-power field (every ~1 ms) and, optionally, the energy-counter field,
    keeping each new value once with its driver timestamp [s] and the monotonic read time."""

    def __init__(self, nvml, handle, counter_every_s: float | None = None, every_s: float = 0.001) -> None:
        self.nvml, self.handle = nvml, handle
        self.counter_every_s, self.every_s = counter_every_s, every_s
        self.power: list[tuple[float, float, float]] = []  # (driver ts s, W, read monotonic)
        self.counter: list[tuple[float, float, float]] = []  # (driver ts s, J, read monotonic)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self) -> FastPoll:
        self.thread.start()
        return self

    def run(self) -> None:
        nvml = self.nvml
        fi_p, fi_e = nvml.NVML_FI_DEV_POWER_INSTANT, nvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION
        next_counter = 0.0
        while not self.stop_event.is_set():
            t = time.monotonic()
            (v,) = nvml.nvmlDeviceGetFieldValues(self.handle, [fi_p])
            if v.nvmlReturn == 0 and (not self.power or v.timestamp * 1e-6 != self.power[-1][0]):
                self.power.append((v.timestamp * 1e-6, v.value.uiVal * 1e-3, t))
            if self.counter_every_s and t >= next_counter:
                (c,) = nvml.nvmlDeviceGetFieldValues(self.handle, [fi_e])
                if c.nvmlReturn == 0 and (not self.counter or c.timestamp * 1e-6 != self.counter[-1][0]):
                    self.counter.append((c.timestamp * 1e-6, c.value.ullVal * 1e-3, time.monotonic()))
                next_counter = t + self.counter_every_s
            time.sleep(self.every_s)

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join()


def integrate(samples: list[tuple[float, float]], a: float, b: float, convention: str) -> float:
    """Energy [J] over [a, b] from (t, W) samples: "forward" holds each sample from its time to the
    next, "backward" holds it over the interval ending at its time, "trapezoid" is linear."""
    ts = [s[0] for s in samples]
    ps = [s[1] for s in samples]
    total = 0.0
    for i in range(len(ts) - 1):
        lo, hi = max(ts[i], a), min(ts[i + 1], b)
        if hi <= lo:
            continue
        if convention == "forward":
            total += ps[i] * (hi - lo)
        elif convention == "backward":
            total += ps[i + 1] * (hi - lo)
        else:
            f = lambda t: ps[i] + (ps[i + 1] - ps[i]) * (t - ts[i]) / (ts[i + 1] - ts[i])  # noqa: E731
            total += 0.5 * (f(lo) + f(hi)) * (hi - lo)
    return total


# ---------------------------------------------------------------------------------------------
# sections


def section_devices(ctx: dict) -> dict:
    from ipw.devices.discover import DiscoverConfig, discover

    nvml, handle = ctx["nvml"], ctx["handle"]
    found = discover(DiscoverConfig(nvml=nvml, probe_s=1.0, estimate="never", gpus=(ctx["gpu"],)))
    try:
        desc = [m.describe() for m in found.meters if m.family == "nvidia"]
        try:  # what `ipw devices` prints (needs click)
            from ipw.cli.devices import _format_devices

            text = _format_devices(found)
        except ImportError as e:
            text = f"(ipw devices text not shown: {e})"
    finally:
        found.close()
    costs = {}
    for name, call, n in [
        ("nvmlDeviceGetTotalEnergyConsumption", lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle), 30),
        ("field TOTAL_ENERGY_CONSUMPTION", lambda: nvml.nvmlDeviceGetFieldValues(handle, [nvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION]), 30),
        ("field POWER_INSTANT", lambda: nvml.nvmlDeviceGetFieldValues(handle, [nvml.NVML_FI_DEV_POWER_INSTANT]), 2000),
        ("nvmlDeviceGetPowerUsage", lambda: nvml.nvmlDeviceGetPowerUsage(handle), 2000),
    ]:
        try:
            c0, w0 = time.thread_time(), time.perf_counter()
            for _ in range(n):
                call()
            costs[name] = {"wall_s": (time.perf_counter() - w0) / n, "cpu_s": (time.thread_time() - c0) / n}
        except Exception as e:  # noqa: BLE001
            costs[name] = {"error": repr(e)}
    print(text, flush=True)
    return {"ipw_devices": desc, "read_costs": costs}


def section_counter(ctx: dict, seconds: float = 10.0) -> dict:
    torch = ctx["torch"]
    poll = FastPoll(ctx["nvml"], ctx["handle"], counter_every_s=0.02).start()
    load = GpuLoad(torch, ctx["device"]).start()
    time.sleep(seconds)
    load.stop()
    time.sleep(0.3)
    poll.stop()
    c, p = poll.counter, [(t, w) for t, w, _ in poll.power]
    t0, e0 = c[1][0], c[1][1]
    t1, e1 = c[-2][0], c[-2][1]
    counter_j = e1 - e0
    conv = {k: integrate(p, t0, t1, k) for k in ("forward", "backward", "trapezoid")}
    rel = {k: (v - counter_j) / counter_j for k, v in conv.items()}
    # each single counter step against instant samples at lags -1, 0, +1 of the step's end stamp
    import bisect

    p_t = [t for t, _ in p]
    lags = {-1: [], 0: [], 1: []}
    steps, nearest = [], []
    for (ta, ea, _), (tb, eb, _) in zip(c, c[1:]):
        dt = tb - ta
        if dt <= 0:
            continue
        steps.append(dt)
        if dt > 1.5 * 0.1:  # only single steps
            continue
        mean_w = (eb - ea) / dt
        k = bisect.bisect_left(p_t, tb)
        k = min((j for j in (k - 1, k) if 0 <= j < len(p_t)), key=lambda j: abs(p_t[j] - tb))
        nearest.append(abs(p_t[k] - tb))
        for lag in lags:
            if 0 <= k + lag < len(p):
                lags[lag].append(abs(p[k + lag][1] - mean_w) / max(mean_w, 1e-9))
    p_gaps = [b[0] - a[0] for a, b in zip(poll.power, poll.power[1:])]
    shared = statistics.median(nearest) if nearest else None
    delays = [r - t for t, _, r in poll.power]  # read time minus driver stamp: offset + visibility delay
    best = min(rel, key=lambda k: abs(rel[k]))
    ctx["convention"] = best
    return {
        "seconds": t1 - t0,
        "counter_j": counter_j,
        "mean_power_w": counter_j / (t1 - t0),
        "instant_integral_minus_counter_rel": rel,
        "best_convention": best,
        "counter_step_s_median": statistics.median(steps),
        "instant_step_s_median": statistics.median(p_gaps),
        "counter_stamp_to_nearest_instant_stamp_s_median": shared,
        "step_mean_w_vs_instant_at_lag_rel_median": {str(k): statistics.median(v) if v else None for k, v in lags.items()},
        "read_minus_stamp_s_spread": max(delays) - min(delays),
        "instant_samples": len(p),
        "counter_samples": len(c),
    }


def section_windows(ctx: dict, repeats: int = 4) -> dict:
    from ipw.devices.nvidia.meter import NvmlMeter
    from ipw.profilers.windows import Profiler

    nvml, gpu = ctx["nvml"], ctx["nvml_index"]
    mon = NvmlMeter(gpu, nvml=nvml, monitor="thread")
    edges = NvmlMeter(gpu, nvml=nvml, monitor="off", update_period_s=0.1)
    poll = FastPoll(nvml, ctx["handle"]).start()
    load = GpuLoad(ctx["torch"], ctx["device"]).start()
    convention = ctx.get("convention", "forward")
    rng = random.Random(0)
    lengths = [0.01, 0.03, 0.1, 0.3, 1.0, 4.0]
    windows = []
    # two profilers (one GPU, two meters: same domain name), one window each, the edge-read one nested
    p_mon, p_edges = Profiler([mon], sampler_hz=None, wait=False), Profiler([edges], sampler_hz=None)
    try:
        time.sleep(0.5)
        for _ in range(repeats):
            for s in rng.sample(lengths, len(lengths)):
                time.sleep(rng.uniform(0, 0.1))
                w = p_mon.start()
                we = p_edges.start()
                time.sleep(s)
                we.stop()
                w.stop()
                windows.append((s, w, we))
        time.sleep(0.3)
        results = [(s, w.result, we) for s, w, we in windows]
        off = mon.monitor.clock.offset()
        stats = mon.monitor.stats()
    finally:
        p_mon.close()
        p_edges.close()
        load.stop()
        poll.stop()
        mon.close()
        edges.close()
    ref = [(t + off[0], w) for t, w, _ in poll.power]  # instant samples on the monotonic clock
    dom = f"gpu:{gpu}"
    table = {}
    for s in lengths:
        errs_m, errs_e, in_m, in_e = [], [], 0, 0
        for s2, m, me in results:
            if s2 != s:
                continue
            d = m.domains[dom]
            truth = integrate(ref, m.start_s, m.end_s, convention)
            errs_m.append((d.energy_j - truth) / truth)
            in_m += abs(d.energy_j - truth) <= d.uncertainty_j
            de = me.result.domains[dom]
            truth_e = integrate(ref, me._start[dom].t_s, me._end[dom].t_s, convention)  # its own reads' span
            errs_e.append((de.energy_j - truth_e) / truth_e)
            in_e += abs(de.energy_j - truth_e) <= de.uncertainty_j
        table[f"{s * 1e3:g}ms"] = {
            "monitor_median_abs_err": statistics.median(abs(e) for e in errs_m),
            "monitor_worst_abs_err": max(abs(e) for e in errs_m),
            "monitor_within_bound": f"{in_m}/{len(errs_m)}",
            "monitor_median_bound_rel": statistics.median(
                m.domains[dom].uncertainty_j / max(m.domains[dom].energy_j, 1e-9) for s2, m, _ in results if s2 == s
            ),
            "edge_reads_median_abs_err": statistics.median(abs(e) for e in errs_e),
            "edge_reads_within_bound": f"{in_e}/{len(errs_e)}",
        }
    return {"reference": f"instant field polled every 1 ms, {convention} hold", "by_window": table,
            "clock_offset_err_s": off[1], "monitor": stats}  # fmt: skip


def _unit(ms: float = 2.0) -> None:
    end = time.perf_counter() + ms * 1e-3
    while time.perf_counter() < end:
        pass


def section_edge_cost(ctx: dict, n: int = 50, repeats: int = 3) -> dict:
    from ipw.devices.nvidia.meter import NvmlMeter
    from ipw.profilers.windows import Profiler

    nvml, gpu = ctx["nvml"], ctx["nvml_index"]
    mon = NvmlMeter(gpu, nvml=nvml, monitor="thread")
    edges = NvmlMeter(gpu, nvml=nvml, monitor="off")
    p_mon, p_edges = Profiler([mon], sampler_hz=None), Profiler([edges], sampler_hz=None)
    conds = {"bare": (None, False), "monitor_edges_only": (p_mon, False),
             "monitor_resolved_at_stop": (p_mon, True), "counter_read_at_edges": (p_edges, True)}  # fmt: skip
    times = {k: [] for k in conds}
    try:
        time.sleep(0.3)
        for _ in range(repeats):
            for name, (p, wait) in conds.items():
                ws = []
                t0 = time.perf_counter()
                for _ in range(n):
                    if p is None:
                        _unit()
                        continue
                    w = p.start(wait=wait)
                    _unit()
                    w.stop()
                    ws.append(w)
                times[name].append((time.perf_counter() - t0) / n)
                [w.result for w in ws]
        stats = mon.monitor.stats()
    finally:
        p_mon.close()
        p_edges.close()
    bare = statistics.median(times["bare"])
    return {
        "unit_s": bare,
        "added_ms_per_window": {k: (statistics.median(v) - bare) * 1e3 for k, v in times.items()},
        "monitor": stats,
    }


def build_model(torch, device: str):
    """A randomly initialised SmolLM2-135M-shaped Llama: transformers when importable, else pure torch."""
    shape = dict(vocab=49152, d=576, layers=30, heads=9, kv=3, ff=1536, theta=100000.0)
    torch.manual_seed(0)
    try:
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(vocab_size=shape["vocab"], hidden_size=shape["d"], intermediate_size=shape["ff"],
                          num_hidden_layers=shape["layers"], num_attention_heads=shape["heads"],
                          num_key_value_heads=shape["kv"], max_position_embeddings=2048,
                          rope_theta=shape["theta"], tie_word_embeddings=True)  # fmt: skip
        model = LlamaForCausalLM(cfg).to(device=device, dtype=torch.bfloat16).eval()
        model.generation_config.eos_token_id = None
        model.generation_config.pad_token_id = 0

        def generate(ids, n):
            with torch.inference_mode():
                out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False)
            return (out.shape[1] - ids.shape[1]) * ids.shape[0]

        return generate, "transformers " + __import__("transformers").__version__
    except Exception as e:  # noqa: BLE001 - not installed, or not importable here: the same shape in torch
        why = repr(e)[:200]
    return _torch_llama(torch, device, **shape), f"pure-torch Llama (transformers: {why})"


def _torch_llama(torch, device, vocab, d, layers, heads, kv, ff, theta):
    import torch.nn.functional as F

    hd = d // heads
    dt = torch.bfloat16
    g = lambda *s: (torch.randn(*s, device=device, dtype=dt) * 0.02)  # noqa: E731
    W = [dict(q=g(d, heads * hd), k=g(d, kv * hd), v=g(d, kv * hd), o=g(heads * hd, d),
              gate=g(d, ff), up=g(d, ff), down=g(ff, d)) for _ in range(layers)]  # fmt: skip
    emb = g(vocab, d)
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, device=device).float() / hd))

    def rms(x):
        return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5).to(x.dtype)

    def rope(x, pos):
        f = torch.outer(pos.float(), inv)
        cos, sin = f.cos().to(x.dtype), f.sin().to(x.dtype)
        x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)

    def generate(ids, n):
        B, T = ids.shape
        cache = [(torch.zeros(B, kv, T + n, hd, device=device, dtype=dt),
                  torch.zeros(B, kv, T + n, hd, device=device, dtype=dt)) for _ in range(layers)]  # fmt: skip
        with torch.inference_mode():
            x_ids, start = ids, 0
            for _ in range(n):
                L = x_ids.shape[1]
                pos = torch.arange(start, start + L, device=device)
                h = emb[x_ids]
                for w, (kc, vc) in zip(W, cache):
                    a = rms(h)
                    q = rope((a @ w["q"]).view(B, L, heads, hd).transpose(1, 2), pos)
                    k = rope((a @ w["k"]).view(B, L, kv, hd).transpose(1, 2), pos)
                    kc[:, :, start : start + L], vc[:, :, start : start + L] = k, (a @ w["v"]).view(B, L, kv, hd).transpose(1, 2)
                    K = kc[:, :, : start + L].repeat_interleave(heads // kv, 1)
                    V = vc[:, :, : start + L].repeat_interleave(heads // kv, 1)
                    o = F.scaled_dot_product_attention(q, K, V, is_causal=L > 1)
                    h = h + o.transpose(1, 2).reshape(B, L, heads * hd) @ w["o"]
                    m = rms(h)
                    h = h + (F.silu(m @ w["gate"]) * (m @ w["up"])) @ w["down"]
                logits = rms(h[:, -1]) @ emb.T
                x_ids = logits.argmax(-1, keepdim=True)
                start += L
                x_ids.cpu()  # one host copy per token, as a sampler's streamer does
        return n * B

    return generate


def section_tokens(ctx: dict, blocks: int = 5, per_block: int = 8, new_tokens: int = 8) -> dict:
    from ipw.devices.nvidia.meter import NvmlMeter
    from ipw.profilers.windows import Profiler

    torch, device = ctx["torch"], ctx["device"]
    if "model" not in ctx:
        ctx["model"] = build_model(torch, device)
    generate, impl = ctx["model"]
    if ctx.get("fake"):  # the dry run on a CPU: enough to see it work
        blocks, per_block = 2, 2
    ids = torch.randint(0, 49152, (1, 32), device=device)
    for _ in range(3):
        generate(ids, new_tokens)
    sync(torch)
    nvml, gpu = ctx["nvml"], ctx["nvml_index"]
    mon = NvmlMeter(gpu, nvml=nvml, monitor="thread")
    edges = NvmlMeter(gpu, nvml=nvml, monitor="off")
    p_mon, p_edges = Profiler([mon], sampler_hz=None), Profiler([edges], sampler_hz=None)
    conds = {"bare": (None, False), "windows_edges_only": (p_mon, False),
             "windows_resolved_per_query": (p_mon, True), "counter_read_at_edges": (p_edges, True)}  # fmt: skip
    rates = {k: [] for k in conds}
    energy = []
    try:
        time.sleep(0.3)
        for _ in range(blocks):
            for name, (p, wait) in conds.items():
                ws, tokens = [], 0
                t0 = time.perf_counter()
                for _ in range(per_block):
                    if p is None:
                        tokens += generate(ids, new_tokens)
                        sync(torch)
                        continue
                    w = p.start(sync_cuda=True, wait=wait)
                    tokens += generate(ids, new_tokens)
                    w.stop()
                    ws.append(w)
                rates[name].append(tokens / (time.perf_counter() - t0))
                if name == "windows_edges_only":
                    energy += [w.result.energy_j / new_tokens for w in ws]
                else:
                    [w.result for w in ws]
        stats = mon.monitor.stats()
    finally:
        p_mon.close()
        p_edges.close()
    bare = statistics.median(rates["bare"])
    return {
        "model": impl,
        "new_tokens": new_tokens,
        "tokens_per_s": {k: statistics.median(v) for k, v in rates.items()},
        "ratio_to_bare": {k: statistics.median(v) / bare for k, v in rates.items()},
        "ratio_to_bare_blocks": {k: [round(x / bare, 4) for x in v] for k, v in rates.items()},
        "j_per_token_median": statistics.median(energy) if energy else None,
        "monitor": stats,
    }


def section_batches(ctx: dict, batches=(1, 8, 32), new_tokens: int = 64, repeats: int = 3) -> dict:
    from ipw.devices.nvidia.meter import NvmlMeter
    from ipw.profilers.windows import Profiler

    torch, device = ctx["torch"], ctx["device"]
    if "model" not in ctx:
        ctx["model"] = build_model(torch, device)
    generate, impl = ctx["model"]
    if ctx.get("fake"):
        batches, new_tokens, repeats = (1, 2), 8, 2
    meter = NvmlMeter(ctx["nvml_index"], nvml=ctx["nvml"], monitor="thread")
    out = {"model": impl, "new_tokens": new_tokens, "prompt_tokens": 64}
    with Profiler([meter], sampler_hz=None) as p:
        time.sleep(0.3)
        idle = p.measure_idle(2.0).power_w[f"gpu:{ctx['nvml_index']}"]
        out["idle_w"] = idle
        for b in batches:
            ids = torch.randint(0, 49152, (b, 64), device=device)
            generate(ids, 4)
            rows = []
            for _ in range(repeats):
                with p.window(sync_cuda=True) as w:
                    tokens = generate(ids, new_tokens)
                d = w.result.domains[f"gpu:{ctx['nvml_index']}"]
                rows.append((d.energy_j / tokens, (d.energy_j - idle * d.duration_s) / tokens, tokens / d.duration_s,
                             d.avg_power_w))  # fmt: skip
            out[f"batch_{b}"] = {
                "j_per_token": statistics.median(r[0] for r in rows),
                "j_per_token_above_idle": statistics.median(r[1] for r in rows),
                "tokens_per_s": statistics.median(r[2] for r in rows),
                "avg_power_w": statistics.median(r[3] for r in rows),
            }
    return out


# ---------------------------------------------------------------------------------------------


def compact(summary: dict) -> dict:
    """The key figures only, rounded, so that they fit in a short log tail."""

    def r(x, n=4):
        return round(x, n) if isinstance(x, float) else x

    out: dict = {"env": summary.get("env"), "total_s": summary.get("total_s")}
    for name in SECTIONS:
        sec = summary.get(name)
        if not isinstance(sec, dict):
            continue
        if "error" in sec or "skipped" in sec:
            out[name] = sec.get("error") or sec.get("skipped")
            continue
        if name == "devices":
            c = (sec.get("ipw_devices") or [{}])[0].get("counter", {})
            out[name] = {"period_s": r(c.get("update_period_s")), "probed": c.get("update_period_probed"),
                         "updates_seen": c.get("updates_seen"),
                         "read_cpu_s": {k: r(v.get("cpu_s"), 7) for k, v in sec["read_costs"].items()}}  # fmt: skip
        elif name == "counter":
            out[name] = {"rel": {k: r(v, 5) for k, v in sec["instant_integral_minus_counter_rel"].items()},
                         "lags": {k: r(v) for k, v in sec["step_mean_w_vs_instant_at_lag_rel_median"].items()},
                         "steps_s": [r(sec["counter_step_s_median"]), r(sec["instant_step_s_median"])],
                         "stamp_gap_s": r(sec["counter_stamp_to_nearest_instant_stamp_s_median"], 5),
                         "mean_w": r(sec["mean_power_w"], 1)}  # fmt: skip
        elif name == "windows":
            out[name] = {k: [r(v["monitor_median_abs_err"]), r(v["monitor_worst_abs_err"]), v["monitor_within_bound"],
                             r(v["monitor_median_bound_rel"], 3), r(v["edge_reads_median_abs_err"])]
                         for k, v in sec["by_window"].items()}  # fmt: skip
            out[name]["cols"] = "monitor median|worst err, within bound, bound/E, edge-reads median err"
            out[name]["monitor_cpu"] = r(sec["monitor"].get("thread_cpu_share"))
        elif name == "edge_cost":
            out[name] = {k: r(v, 3) for k, v in sec["added_ms_per_window"].items()}
        elif name == "tokens":
            out[name] = {"ratio": {k: r(v) for k, v in sec["ratio_to_bare"].items()},
                         "bare_tok_s": r(sec["tokens_per_s"]["bare"], 1), "j_per_token": r(sec["j_per_token_median"]),
                         "model": sec["model"][:40]}  # fmt: skip
        elif name == "batches":
            out[name] = {k: {kk: r(vv) for kk, vv in v.items()} for k, v in sec.items() if k.startswith("batch_")}
            out[name]["idle_w"] = r(sec.get("idle_w"), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", type=int, default=0, help="CUDA index of the GPU to use (default 0)")
    parser.add_argument("--budget-s", type=float, default=220.0, help="skip sections that would start after this")
    parser.add_argument("--only", help=f"comma-separated sections among {', '.join(SECTIONS)}")
    parser.add_argument("--out", help="also write the summary JSON here")
    parser.add_argument("--fake", action="store_true",
                        help="dry run without a GPU: the H200-like fake NVML of tests/fakes and torch on the CPU")  # fmt: skip
    args = parser.parse_args()
    wanted = args.only.split(",") if args.only else list(SECTIONS)
    summary: dict = {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    ctx: dict = {"gpu": args.gpu}
    try:
        import torch

        if args.fake:
            from tests.fakes.nvml import FakeNvml, Trace, h200

            nvml = FakeNvml([h200(Trace(base_w=300.0, amp_w=120.0, period_s=0.37))], time.monotonic, cost="real")
            device = "cpu"
        else:
            nvml, device = load_pynvml(), f"cuda:{args.gpu}"
        nvml.nvmlInit()
        from ipw.devices.nvidia.selection import select_gpus

        sel = select_gpus(nvml, [args.gpu])[0]
        handle = nvml.nvmlDeviceGetHandleByIndex(sel.nvml_index)
        ctx.update(torch=torch, nvml=nvml, handle=handle, nvml_index=sel.nvml_index, device=device, fake=args.fake)
        if not args.fake:
            torch.cuda.set_device(args.gpu)
            torch.zeros(1, device=device)  # open the CUDA context before anything is measured
        summary["env"] = {
            "gpu": nvml.nvmlDeviceGetName(handle),
            "driver": nvml.nvmlSystemGetDriverVersion(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "nvml_index": sel.nvml_index,
            "python": sys.version.split()[0],
        }
        emit("env", summary["env"])
    except Exception as e:  # noqa: BLE001 - nothing else can run
        summary["env"] = {"error": repr(e), "traceback": traceback.format_exc(limit=3)}
        emit("env", summary["env"])
        wanted = []
    functions = {"devices": section_devices, "counter": section_counter, "windows": section_windows,
                 "edge_cost": section_edge_cost, "tokens": section_tokens, "batches": section_batches}  # fmt: skip
    for name in wanted:
        if elapsed() > args.budget_s:
            summary[name] = {"skipped": f"budget of {args.budget_s:g} s reached at {elapsed():.0f} s"}
            emit(name, summary[name])
            continue
        t0 = time.monotonic()
        try:
            summary[name] = functions[name](ctx)
        except Exception as e:  # noqa: BLE001 - one failed section must not lose the others
            summary[name] = {"error": repr(e), "traceback": traceback.format_exc(limit=4)}
        summary[name]["section_s"] = round(time.monotonic() - t0, 1)
        emit(name, summary[name])
    summary["total_s"] = round(elapsed(), 1)
    text = json.dumps(summary, indent=1, default=_jsonable)
    print("SUMMARY " + json.dumps(summary, default=_jsonable), flush=True)
    if args.out:
        Path(args.out).write_text(text)
    try:
        print("COMPACT " + json.dumps(compact(summary), default=_jsonable), flush=True)
    except Exception as e:  # noqa: BLE001
        print(f"COMPACT failed: {e!r}", flush=True)
    if "nvml" in ctx:
        ctx["nvml"].nvmlShutdown()


if __name__ == "__main__":
    main()
