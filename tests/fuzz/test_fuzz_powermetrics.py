"""Property-based fuzzing of the powermetrics parsers (ipw.devices.apple.powermetrics): the plist stream and the
text format. Every input yields samples with finite, non-negative energies over a positive interval,
or raises PowermetricsParseError (an ipw InputFileError) naming the source and the record it failed
on; never another exception."""

from __future__ import annotations

import io
import math
import plistlib

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ipw.core.errors import IpwError
from ipw.devices.apple.powermetrics import PowermetricsParseError, iter_plist_stream, parse_text

FAST = settings(max_examples=300, deadline=None)

xml_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=5)  # what a plist can hold
numbers = st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(allow_nan=True), st.booleans(), xml_text)
section = st.dictionaries(
    st.sampled_from(["cpu_energy", "gpu_energy", "ane_energy", "combined_power", "cpu_power", "gpu_power",
                     "ane_power", "other"]), numbers, max_size=6,
)  # fmt: skip
record = st.fixed_dictionaries(
    {},
    optional={"elapsed_ns": numbers, "processor": section | numbers, "gpu": section, "hw_model": xml_text},
)
plist_record = record.map(lambda d: plistlib.dumps(d))
stream_parts = st.lists(st.one_of(plist_record, st.binary(max_size=40), plist_record.map(lambda b: b[: len(b) // 2])),
                        max_size=5)  # fmt: skip


def _check_samples(samples) -> None:
    for s in samples:
        assert s.elapsed_s > 0 and math.isfinite(s.elapsed_s)
        assert all(math.isfinite(e) and e >= 0 for e in s.energy_j.values()), s.energy_j
        assert all(math.isfinite(p) and p >= 0 for p in s.power_w.values()), s.power_w


@FAST
@given(stream_parts)
@example([plistlib.dumps({})[:60], plistlib.dumps({})])  # a cut record followed by a separator
@example([plistlib.dumps({"elapsed_ns": float("nan"), "gpu": {"gpu_energy": -5}})])
@example([plistlib.dumps({"elapsed_ns": 100_000_000, "processor": {"cpu_energy": 12, "gpu_energy": 3, "ane_energy": 0}})])
def test_plist_stream(parts):
    data = b"\0".join(parts)
    index = 0
    try:
        for sample in iter_plist_stream(io.BytesIO(data), chunk=7, source="fuzz.plist"):
            _check_samples([sample])
            index += 1
    except IpwError as e:  # any other exception fails the test
        assert isinstance(e, PowermetricsParseError) and e.record == index, e
        assert str(e).startswith("fuzz.plist:") and f"powermetrics record {index}:" in str(e), e


header = st.builds(lambda ms: f"*** Sampled system activity (Mon Jan  1 00:00:00 2026 +0000) ({ms}ms elapsed) ***\n",
                   st.from_regex(r"[\d.]{1,8}", fullmatch=True))  # fmt: skip
power_line = st.builds(lambda kind, mw: f"{kind} Power: {mw} mW\n",
                       st.sampled_from(["CPU", "GPU", "ANE", "Combined"]), st.from_regex(r"[\d.]{1,8}", fullmatch=True))  # fmt: skip
text_parts = st.lists(st.one_of(header, power_line, st.text(max_size=30)), max_size=8)


@FAST
@given(text_parts)
@example(["*** Sampled system activity (x) (1.2.3ms elapsed) ***\n"])
@example(["*** Sampled system activity (x) (0ms elapsed) ***\n", "CPU Power: 5 mW\n"])
def test_text_format(parts):
    text = "".join(parts)
    try:
        samples = parse_text(text, source="fuzz.txt")
    except IpwError as e:  # any other exception fails the test
        assert isinstance(e, PowermetricsParseError) and e.line is not None, e
        assert str(e).startswith(f"fuzz.txt:{e.line}: powermetrics text record {e.record}:"), e
        return
    _check_samples(samples)
