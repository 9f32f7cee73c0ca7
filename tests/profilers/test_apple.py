"""powermetrics parsing (an authored fixture and real recordings) and the streaming meter."""

from __future__ import annotations

import io
import plistlib
import sys
import time
from pathlib import Path

import pytest

from ipw.core.errors import InputFileError, MeterReadError
from ipw.devices.apple.meters import PowermetricsMeter, ZeusAppleMeter
from ipw.devices.apple.powermetrics import PowermetricsParseError, iter_plist_stream, parse_text
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


@pytest.mark.parametrize(
    "bad, reason",
    [
        (b"<plist><dict><key>elapsed_ns</key></plist>", "not a valid XML plist (ExpatError"),
        (plistlib.dumps({"elapsed_ns": float("nan")}), "elapsed_ns = nan is not a finite, non-negative"),
        (plistlib.dumps({"elapsed_ns": 0}), "elapsed_ns = 0 is not a positive interval"),
        (plistlib.dumps({"elapsed_ns": 10**8, "gpu": {"gpu_energy": -5}}), "gpu.gpu_energy = -5 is not"),
        (plistlib.dumps({"elapsed_ns": 10**8, "processor": {"cpu_power": "947"}}), "is str '947', not a number"),
        (plistlib.dumps({"elapsed_ns": 10**8, "processor": 3}), "'processor' is int 3, not a dict"),
        (plistlib.dumps({"processor": {}}), "no elapsed_ns"),
    ],
)
def test_malformed_record_is_an_input_error_naming_source_line_and_record(bad, reason):
    good = FIXTURE.read_bytes().split(b"\0")[0]
    samples = iter_plist_stream(io.BytesIO(good + b"\0" + bad + b"\0" + good), source="run.plist")
    assert next(samples).energy_j["cpu"] == pytest.approx(0.125)
    with pytest.raises(PowermetricsParseError) as caught:
        next(samples)
    e = caught.value
    assert isinstance(e, InputFileError) and (e.path, e.line, e.record) == ("run.plist", good.count(b"\n") + 1, 1)
    assert str(e).startswith(f"run.plist:{e.line}: powermetrics record 1: ") and reason in str(e)


def test_stream_tail_must_be_a_cut_record():
    good = FIXTURE.read_bytes().split(b"\0")[0]
    assert len(list(iter_plist_stream(io.BytesIO(good + b"\0" + good[:100])))) == 1  # cut mid-write: dropped
    with pytest.raises(PowermetricsParseError, match="record 1: the stream ends with b'CPU Power"):
        list(iter_plist_stream(io.BytesIO(good + b"\0CPU Power: 947 mW\n")))
    with pytest.raises(PowermetricsParseError, match="no record separator"):  # not a plist stream at all
        list(iter_plist_stream(io.BytesIO(good * 4), chunk=1024, max_record_bytes=2 * len(good)))


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ("*** Sampled system activity (x) (0ms elapsed) ***\nCPU Power: 5 mW\n", 3, "'0' ms in the header is not a positive"),
        ("*** Sampled system activity (x) (1.2.3ms elapsed) ***\n", 3, "'1.2.3' ms in the header"),
        ("*** Sampled system activity (x) (elapsed) ***\n", 3, "does not end in '(<ms>ms elapsed) ***'"),
        ("*** Sampled system activity (x) (5ms elapsed) ***\nGPU Power: -4 mW\n", 4, "GPU Power: '-4 mW' is not"),
        ("*** Sampled system activity (x) (5ms elapsed) ***\nANE Power: 1.2.3 mW\n", 4, "ANE Power: '1.2.3 mW'"),
    ],
)  # fmt: skip
def test_malformed_text_names_line_and_record(text, line, reason):
    first = "*** Sampled system activity (x) (100ms elapsed) ***\nCPU Power: 800 mW\n"
    with pytest.raises(PowermetricsParseError) as caught:
        parse_text(first + text, source="log.txt")
    assert (caught.value.line, caught.value.record) == (line, 1)
    assert str(caught.value).startswith(f"log.txt:{line}: powermetrics text record 1: ") and reason in str(caught.value)


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


FAKE_POWERMETRICS = """
import sys, time
good = open(sys.argv[1], "rb").read().split(b"\\0")[0]
sys.stdout.buffer.write(good + b"\\0<plist><dict><key>elapsed_ns</key></plist>\\0")
sys.stdout.flush()
time.sleep(60)  # still running, as powermetrics would be; close() ends it
"""


def test_streaming_meter_parse_error_becomes_a_read_error_and_a_flagged_gap():
    from ipw.profilers.windows import Profiler
    from ipw.run.serial import _meter_gap

    # a fake powermetrics: a real process that writes one good record, then a malformed one
    meter = PowermetricsMeter(interval_ms=100, command=[sys.executable, "-c", FAKE_POWERMETRICS, str(FIXTURE)])
    try:
        deadline = time.monotonic() + 30
        while meter.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert meter.records == 1 and isinstance(meter.error, PowermetricsParseError)
        assert meter._proc.poll() is None  # the process still runs: the error is the parser's
        profiler = Profiler([meter], sampler_hz=None)
        expected = r"^apple: .*after 1 records: powermetrics \(pid \d+\):\d+: powermetrics record 1: not a valid XML"
        with pytest.raises(MeterReadError, match=expected) as caught:
            profiler.start("q1")
        gap = _meter_gap(profiler, "q1", 0.0, caught.value)
        assert gap.flags == ("meter-gap:soc", "meter-gap:cpu", "meter-gap:gpu:0", "meter-gap:ane")
    finally:
        meter.close()


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
