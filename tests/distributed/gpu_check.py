"""A device check for ipw launch on a machine with GPUs (run by hand, not by pytest):

    RAY_AUTH_MODE=disabled python tests/distributed/gpu_check.py [--shards 2] [--limit 4]

Starts a Ray instance on this machine, launches the shipped model with the transformers engine
as ``--shards`` tasks of one GPU each, and prints, per shard, the GPUs its meters saw (each must
see only the GPU Ray gave it), its accelerator energy and its records; then the merged run by node.
Exit status 1 when a shard saw no GPU meter or more than one GPU, or when ids are lost or doubled.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--limit", type=int, default=4)
    args = parser.parse_args()

    import ray

    from ipw.run import launch as L
    from ipw.science.intelligence.metrics import summarize
    from ipw.store import load
    from ipw.engines import GenerationSettings
    from ipw.run.config import RunConfig

    ray.init(include_dashboard=False, log_to_driver=False)
    gpus = ray.cluster_resources().get("GPU", 0)
    print(f"Ray sees {gpus:g} GPU(s)")
    base = RunConfig(engine="transformers", engine_options={"model": "default"}, settings=GenerationSettings(max_tokens=16),
                     warmup=1, idle_s=1.0, limit=args.limit)
    with tempfile.TemporaryDirectory(prefix="ipw-gpu-launch-") as tmp:
        spec = L.LaunchSpec(cells=(L.Cell("transformers-default", base),), shards=args.shards, launch_dir=tmp, launch_id="gpu")
        result = L.launch(spec, progress=False)
        ok = not result.failed
        print("failed shards:", result.failed or "none")
        for shard in sorted((result.path / "transformers-default").iterdir()):
            m = json.loads((shard / "manifest.json").read_text())
            seen = [(meter.get("index"), meter.get("uuid")) for meter in m.get("meters", []) if meter.get("family") == "nvidia"]
            print(f"{shard.name}: NVIDIA meters (index, uuid) {seen}, hardware {m['hardware'].get('summary')}, "
                  f"sessions {[(s['node'], s['status']) for s in m['sessions']]}")
            ok &= len(seen) == 1 or gpus == 0
        run = load(result.path)
        q = run.queries
        print(summarize(q, by="node")[["node", "n", "accuracy", "scope_energy_j_mean", "measured"]].to_string(index=False))
        ok &= q["id"].is_unique and len(q) == args.shards * args.limit
    ray.shutdown()
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
