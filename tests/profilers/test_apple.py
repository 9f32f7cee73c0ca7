"""powermetrics parsing (an authored fixture and real recordings) and the streaming meter."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ipw.profilers.apple import PowermetricsMeter, ZeusAppleMeter, iter_plist_stream, parse_text
from tests.conftest import SHARED

FIXTURE = Path(__file__).parents[1] / "data" / "powermetrics_processor.plist"
RECORDED = SHARED / "data" / "powermetrics"
needs_recordings = pytest.mark.skipif(
    not RECORDED.is_dir(), reason="real recordings live in ../shared/data/powermetrics, absent here"
)


def test_authored_plist_domains_units_and_truncated_record():
    samples = list(iter_plist_stream(io.BytesIO(FIXTURE.read_bytes())))
    assert len(samples) == 3  # the 4th record is cut off and dropped, not half-parsed
    first, second, third = samples
    assert first.elapsed_s == pytest.approx(0.1)
    # energy keys are mJ: 125 mJ of CPU over 100 ms is 1.25 W
    assert first.energy_j["cpu"] == pytest.approx(0.125)
    assert first.power_w["gpu:0"] == pytest.approx(0.43)
    assert first.keys["cpu"] == "processor.cpu_energy"
    assert second.power_w["soc"] == pytest.approx(5.120 + 2.210 + 0.035, rel=0.01)
    # record 3 has power keys only (mW): energy = power x elapsed
    assert third.keys["cpu"] == "processor.cpu_power"
    assert third.energy_j["cpu"] == pytest.approx(0.880 * 0.09875)


def test_invalid_complete_record_names_its_position():
    good = FIXTURE.read_bytes().split(b"\0")[0]
    with pytest.raises(ValueError, match="record 1"):
        list(iter_plist_stream(io.BytesIO(good + b"\0<plist>broken</plist>\0")))


@needs_recordings
def test_real_plist_recording_gpu_only():
    path = RECORDED / "matiasinsaurralde_powermetrics_gpu_power_multiple_samples.xml"
    samples = list(iter_plist_stream(path.open("rb")))
    assert len(samples) == 5
    assert all(set(s.energy_j) == {"gpu:0"} and s.keys["gpu:0"] == "gpu.gpu_energy" for s in samples)
    assert all(s.elapsed_s == pytest.approx(5.0, abs=0.02) for s in samples)
    assert samples[0].energy_j["gpu:0"] == pytest.approx(0.019)  # gpu_energy 19 (mJ) in record 1
    assert samples[0].hw_model == "Mac16,8"


@needs_recordings
@pytest.mark.parametrize(
    "name, cpu_mw, soc_mw",
    [
        ("BinSquare_powermetrics-go_powermetrics_sample.log", 954, 983),
        ("Jo00o200_powermetrics-tui_sample_output_all.txt", None, None),
        ("mlco2_codecarbon_mock_powermetrics_log.txt", None, None),
    ],
)
def test_real_text_recordings(name, cpu_mw, soc_mw):
    samples = parse_text((RECORDED / name).read_text(errors="replace"))
    assert samples and all(s.elapsed_s > 0 and "cpu" in s.energy_j for s in samples)
    if cpu_mw is not None:
        assert samples[0].power_w["cpu"] == pytest.approx(cpu_mw * 1e-3)
        assert samples[0].power_w["soc"] == pytest.approx(soc_mw * 1e-3)


def test_streaming_meter_replays_a_recording():
    # `cat` stands in for powermetrics: a real process writing the same bytes to a pipe
    meter = PowermetricsMeter(interval_ms=100, command=["cat", str(FIXTURE)])
    try:
        assert meter.wait_for_records(3)
        energy = {r.domain: r.energy_j for r in meter.read()}
    finally:
        meter.close()
    assert meter.error is None
    assert energy["cpu"] == pytest.approx(0.125 + 0.52480 + 0.880 * 0.09875, rel=1e-3)
    assert meter.infos["cpu"].parent == "soc" and meter.infos["soc"].parent is None


class FakeAppleMonitor:
    """The zeus_apple_silicon.AppleEnergyMonitor boundary: windows return mJ since begin_window."""

    def __init__(self):
        self.mj = 0.0
        self.open = {}

    def begin_window(self, key):
        self.open[key] = self.mj

    def end_window(self, key):
        from types import SimpleNamespace

        spent = self.mj - self.open.pop(key)
        return SimpleNamespace(cpu_total_mj=spent, gpu_mj=spent / 2, ane_mj=None, dram_mj=spent / 10)


def test_zeus_apple_meter_accumulates_windows():
    monitor = FakeAppleMonitor()
    meter = ZeusAppleMeter(monitor)
    monitor.mj += 1000
    first = {r.domain: r.energy_j for r in meter.read()}
    monitor.mj += 500
    second = {r.domain: r.energy_j for r in meter.read()}
    assert first["cpu"] == pytest.approx(1.0) and second["cpu"] == pytest.approx(1.5)
    assert second["gpu:0"] == pytest.approx(0.75) and second["ane"] == 0.0
