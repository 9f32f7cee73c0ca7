"""Device, dtype and GPU-layer choices of the local engines, with torch and llama.cpp faked at
their boundary (torch.cuda's availability queries; llama_cpp's GPU-offload query)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ipw.core.errors import IpwError
from ipw.engines.llamacpp import resolve_gpu_layers
from ipw.engines.transformers import resolve_device, resolve_dtype


def fake_torch(cuda: bool, devices: int = 1, bf16: bool = True, mps: bool = False):
    return SimpleNamespace(
        __version__="2.x",
        version=SimpleNamespace(cuda="13.0" if cuda else None),
        cuda=SimpleNamespace(
            is_available=lambda: cuda,
            device_count=lambda: devices if cuda else 0,
            is_bf16_supported=lambda: bf16,
        ),
        backends=SimpleNamespace(mps=SimpleNamespace(is_available=lambda: mps)),
    )


def test_auto_device_and_dtype():
    gpu, cpu = fake_torch(cuda=True), fake_torch(cuda=False)
    assert resolve_device("auto", gpu) == "cuda" and resolve_device("auto", cpu) == "cpu"
    assert resolve_dtype("auto", "cuda", gpu) == "bfloat16"
    assert resolve_dtype("auto", "cuda", fake_torch(cuda=True, bf16=False)) == "float16"
    assert resolve_dtype("auto", "cpu", cpu) == "float32"
    assert resolve_dtype("float16", "cpu", cpu) == "float16"  # an explicit choice is kept


def test_devices_torch_lacks_are_errors_not_silent_cpu_runs():
    with pytest.raises(IpwError, match="sees no CUDA device"):
        resolve_device("cuda", fake_torch(cuda=False))
    with pytest.raises(IpwError, match="sees 2 CUDA device"):
        resolve_device("cuda:2", fake_torch(cuda=True, devices=2))
    assert resolve_device("cuda:1", fake_torch(cuda=True, devices=2)) == "cuda:1"
    with pytest.raises(IpwError, match="no MPS"):
        resolve_device("mps", fake_torch(cuda=False))
    with pytest.raises(IpwError, match="unknown device"):
        resolve_device("tpu", fake_torch(cuda=False))
    with pytest.raises(IpwError, match="unknown dtype"):
        resolve_dtype("int3", "cpu", fake_torch(cuda=False))


def test_llamacpp_gpu_layers():
    assert resolve_gpu_layers(None, gpu_offload=False) == 0  # CPU build: default 0
    assert resolve_gpu_layers(None, gpu_offload=True) == -1  # GPU build: every layer
    assert resolve_gpu_layers(12, gpu_offload=True) == 12
    assert resolve_gpu_layers(0, gpu_offload=True) == 0
    with pytest.raises(IpwError, match="CPU build"):
        resolve_gpu_layers(20, gpu_offload=False)
