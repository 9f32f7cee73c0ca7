"""NVIDIA GPUs through NVML: GPU selection, the energy meter and its timeline monitor."""
