"""The amdsmi meter against a fake amdsmi module (the library boundary)."""

from __future__ import annotations

import pytest

from ipw.core.errors import MeterUnavailable
from ipw.devices.amd import AmdSmiMeter
from ipw.profilers.windows import Profiler


class AmdSmiException(Exception):
    pass


class FakeAmdSmi:
    AmdSmiException = AmdSmiException

    def __init__(self, gpus: int, legacy_key: bool = False):
        self.counts = [0] * gpus
        self.legacy_key = legacy_key
        self.inits = 0

    def amdsmi_init(self):
        self.inits += 1

    def amdsmi_shut_down(self):
        self.inits -= 1

    def amdsmi_get_processor_handles(self):
        return list(range(len(self.counts)))

    def amdsmi_get_energy_count(self, handle):
        key = "power" if self.legacy_key else "energy_accumulator"
        return {key: self.counts[handle], "counter_resolution": 15.3, "timestamp": 0}


@pytest.mark.parametrize("legacy_key", [False, True])
def test_energy_accumulator_times_resolution(clock, legacy_key):
    amdsmi = FakeAmdSmi(2, legacy_key)
    with Profiler([AmdSmiMeter(1, amdsmi=amdsmi)], sampler_hz=None) as p:
        w = p.start()
        amdsmi.counts[1] += 1_000_000  # 15.3 J at 15.3 uJ per count
        clock.advance(0.1)
        m = w.stop()
    assert m.domains["gpu:1"].energy_j == pytest.approx(15.3)
    assert m.domains["gpu:1"].source == "amdsmi.energy_count"
    assert amdsmi.inits == 0


def test_missing_gpu_index():
    with pytest.raises(MeterUnavailable, match="index 3"):
        AmdSmiMeter(3, amdsmi=FakeAmdSmi(1))
