"""Apple Silicon energy: ``powermetrics`` streams, or zeus-apple-silicon (IOReport) when installed.

``powermetrics`` is Apple's own sampler (root only). Each record covers ``elapsed_ns`` and reports,
in its ``processor`` dict, energy over that interval (``cpu_energy``, ``gpu_energy``,
``ane_energy``; mJ) and average power (``cpu_power``, ``gpu_power``, ``ane_power``,
``combined_power``; mW); with only the ``gpu_power`` sampler, the ``gpu`` dict carries
``gpu_energy`` alone. We read energy where a record has it and power x interval otherwise. The unit
of the ``*_energy`` keys is not documented by Apple; mJ is what makes them agree with the ``*_power``
keys of the same record (energy / elapsed = power), and is what we assume.

The meters that use these parsers are in :mod:`ipw.devices.apple.meters`.

Domains: ``soc`` (combined CPU + GPU + ANE) and, inside it, ``cpu``, ``gpu:0`` and ``ane``. Where a
record has no combined figure but has all three parts, ``soc`` is their sum; where it has only the
GPU (``--samplers gpu_power``), ``gpu:0`` stands alone.

Why our own parser: no library parses the plist stream with its NUL separators and truncated last
record; :mod:`plistlib` decodes each record. The text format (``CPU Power: 947 mW``), which other
tools log, is parsed too, for analysing recorded logs.

What the parsers accept. A record becomes a :class:`PowerSample` only with a positive, finite
interval (``elapsed_ns``, or the text header's ``(<ms>ms elapsed)``) and finite, non-negative
figures (plist integers or reals, never booleans or strings; text ``<number> mW``) whose energy and
power stay finite. Everything else raises :class:`PowermetricsParseError`, an
:class:`~ipw.core.errors.InputFileError` naming the source, the line where the record starts and the
record's position (from 0): a complete plist record that is not valid XML, not a dict, or holds an
unusable figure; a text header or power line that does not read as above; a plist stream that ends
in bytes that cannot begin a record, or runs ``MAX_RECORD_BYTES`` without a separator. Only a record
cut off at the end of the stream is dropped, and a wrong figure is never clipped or replaced.
:class:`PowermetricsMeter` stops at such a record; every read after it raises
:class:`~ipw.core.errors.MeterReadError`.
"""

from __future__ import annotations

import math
import plistlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO
from xml.parsers import expat

from ipw.core.errors import InputFileError
from ipw.devices.base import Domain

SOURCE_POWERMETRICS = "powermetrics"
SOURCE_ZEUS = "zeus_apple_silicon.ioreport"
SOC, CPU, GPU, ANE = Domain.SOC.value, Domain.CPU.value, Domain.GPU.at(0), Domain.ANE.value
PARENTS = {CPU: SOC, GPU: SOC, ANE: SOC}
DEFAULT_SAMPLERS = "cpu_power,gpu_power,ane_power"


@dataclass(frozen=True)
class PowerSample:
    """One powermetrics record: energy [J] per domain over ``elapsed_s`` seconds.

    ``keys`` says which field each figure came from (for provenance); ``power_w`` is derived.
    """

    elapsed_s: float
    energy_j: dict[str, float]
    keys: dict[str, str] = field(default_factory=dict)
    timestamp: datetime | None = None
    hw_model: str | None = None

    @property
    def power_w(self) -> dict[str, float]:
        return {d: e / self.elapsed_s for d, e in self.energy_j.items()}


class PowermetricsParseError(InputFileError):
    """A powermetrics record that cannot be read.

    The message names the source (file or process), the line where the record starts (where known)
    and the record's position in the stream (``record``, counted from 0).
    """

    def __init__(self, source: object, line: int | None, record: int, message: str, kind: str = "record") -> None:
        self.record = record
        super().__init__(source, line, f"powermetrics {kind} {record}: {message}")


class _Invalid(Exception):
    """A value of one record is unusable; turned into :class:`PowermetricsParseError` by the caller."""


def _number(value: object, what: str) -> float:
    """A finite, non-negative float from a plist value (int or real; never a bool or a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(f"{what} is {type(value).__name__} {_short(value)}, not a number")
    try:
        x = float(value) + 0.0  # + 0.0 turns -0.0 into 0.0
    except OverflowError:
        raise _Invalid(f"{what} = {_short(value)} is out of range") from None
    if not math.isfinite(x) or x < 0:
        raise _Invalid(f"{what} = {_short(value)} is not a finite, non-negative number")
    return x


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _section(record: dict, name: str) -> dict:
    section = record.get(name, {})
    if not isinstance(section, dict):
        raise _Invalid(f"'{name}' is {type(section).__name__} {_short(section)}, not a dict")
    return section


def _figure(section: dict, where: str, name: str, elapsed_s: float) -> tuple[float, str] | None:
    """Energy [J] of ``name`` (cpu, gpu, ane, combined) in a plist section, with the key used."""
    if f"{name}_energy" in section:
        key = f"{name}_energy"
        return _number(section[key], f"{where}.{key}") * 1e-3, f"{where}.{key}"  # mJ -> J
    if f"{name}_power" in section:
        key = f"{name}_power"
        return _number(section[key], f"{where}.{key}") * 1e-3 * elapsed_s, f"{where}.{key}"  # mW x s -> J
    return None


def _checked(sample: PowerSample) -> PowerSample:
    """The sample, once its interval is positive and every energy and power finite and non-negative."""
    if not (math.isfinite(sample.elapsed_s) and sample.elapsed_s > 0):
        raise _Invalid(f"elapsed time {sample.elapsed_s!r} s is not a positive, finite interval")
    for domain, joules in sample.energy_j.items():
        if not (math.isfinite(joules) and joules >= 0 and math.isfinite(joules / sample.elapsed_s)):
            raise _Invalid(
                f"{domain} ({sample.keys.get(domain)}): {joules!r} J over {sample.elapsed_s!r} s is out of range"
            )
    return sample


def sample_from_plist(record: object, source: object = "<plist record>", index: int = 0,
                      line: int | None = None) -> PowerSample:  # fmt: skip
    """Decode one plist record (what :func:`plistlib.loads` returned).

    Raises :class:`PowermetricsParseError` (naming ``source``, ``line`` and ``index``) where the
    record is not a dict, lacks a positive finite ``elapsed_ns``, or has a figure that is not a
    finite, non-negative number.
    """
    try:
        return _sample_from_plist(record)
    except _Invalid as e:
        raise PowermetricsParseError(source, line, index, str(e)) from None


def _sample_from_plist(record: object) -> PowerSample:
    if not isinstance(record, dict):
        raise _Invalid(f"the plist holds {type(record).__name__}, not a dict")
    if "elapsed_ns" not in record:
        raise _Invalid("no elapsed_ns")
    elapsed_s = _number(record["elapsed_ns"], "elapsed_ns") * 1e-9
    if elapsed_s <= 0:
        raise _Invalid(f"elapsed_ns = {_short(record['elapsed_ns'])} is not a positive interval")
    processor, gpu = _section(record, "processor"), _section(record, "gpu")
    energy, keys = {}, {}
    for domain, name in ((CPU, "cpu"), (GPU, "gpu"), (ANE, "ane"), (SOC, "combined")):
        found = _figure(processor, "processor", name, elapsed_s)
        if found is None and domain == GPU:
            found = _figure(gpu, "gpu", "gpu", elapsed_s)
        if found is not None:
            energy[domain], keys[domain] = found
    if SOC not in energy and all(d in energy for d in (CPU, GPU, ANE)):
        energy[SOC], keys[SOC] = energy[CPU] + energy[GPU] + energy[ANE], "sum(cpu, gpu, ane)"
    timestamp, hw_model = record.get("timestamp"), record.get("hw_model")
    return _checked(
        PowerSample(
            elapsed_s, energy, keys,
            timestamp if isinstance(timestamp, datetime) else None,
            hw_model if isinstance(hw_model, str) else None,
        )  # fmt: skip
    )


MAX_RECORD_BYTES = 64 * 2**20
"""The longest plist record accepted (a record with every sampler is some 100 kB)."""


def iter_plist_stream(
    stream: IO[bytes], chunk: int = 65536, source: object = None, max_record_bytes: int = MAX_RECORD_BYTES
) -> Iterator[PowerSample]:
    """Samples from a ``powermetrics --format plist`` byte stream, as records complete.

    Records are separated by NUL bytes. A record cut off at the end of the stream (powermetrics
    killed mid-write: the beginning of an XML document) is dropped, never half-parsed. Anything
    else that cannot be read raises :class:`PowermetricsParseError` naming ``source`` (default: the
    stream's file name), the line where the record starts and its position: a complete record that
    is not a valid XML plist or holds unusable figures, trailing bytes that are not the beginning of
    one, or ``max_record_bytes`` without a separator.
    """
    if source is None:
        name = getattr(stream, "name", None)
        source = name if isinstance(name, str) else "<powermetrics stream>"
    buffer, scanned, index, line = bytearray(), 0, 0, 1  # line: where the buffer starts
    while True:
        data = stream.read1(chunk) if hasattr(stream, "read1") else stream.read(chunk)
        if not data:
            break
        buffer += data
        start = 0
        while (cut := buffer.find(b"\0", max(start, scanned))) >= 0:
            raw = bytes(buffer[start:cut])
            if raw.strip():
                yield _decode(raw, source, index, line + _leading_lines(raw))
                index += 1
            line += raw.count(b"\n")
            start = cut + 1
        del buffer[:start]
        scanned = len(buffer)
        if scanned > max_record_bytes:
            raise PowermetricsParseError(
                source, line + _leading_lines(buffer), index,
                f"no record separator (NUL) within {max_record_bytes} bytes: not a powermetrics plist stream",
            )  # fmt: skip
    tail = bytes(buffer)
    if not tail.strip():
        return
    if tail.rstrip().endswith(b"</plist>"):
        yield _decode(tail, source, index, line + _leading_lines(tail))
    elif not _xml_prefix(tail):
        raise PowermetricsParseError(
            source, line + _leading_lines(tail), index,
            f"the stream ends with {_short(tail[:40])}, neither a plist nor the beginning of one",
        )  # fmt: skip


def _leading_lines(raw: bytes | bytearray) -> int:
    return raw[: len(raw) - len(raw.lstrip())].count(b"\n")


def _xml_prefix(raw: bytes) -> bool:
    """Whether ``raw`` can be the beginning of an XML document (a record cut off mid-write)."""
    if not raw.lstrip().startswith(b"<"):
        return False
    parser = expat.ParserCreate()
    parser.EntityDeclHandler = _no_entities
    try:
        parser.Parse(raw, False)
    except (expat.ExpatError, _Invalid):
        return False
    return True


def _no_entities(*args: object) -> None:
    raise _Invalid("XML entity declarations are not allowed")


def _decode(raw: bytes, source: object, index: int, line: int) -> PowerSample:
    try:
        record = plistlib.loads(raw.strip(), fmt=plistlib.FMT_XML)
    except Exception as e:  # noqa: BLE001 - plistlib raises many kinds (ExpatError, ValueError, ...)
        raise PowermetricsParseError(source, line, index, f"not a valid XML plist ({type(e).__name__}: {e})") from e
    return sample_from_plist(record, source, index, line)


_HEADER = "*** Sampled system activity"
_ELAPSED = re.compile(r"\((?P<ms>[^()]*)ms elapsed\) \*\*\*\s*$")
_TEXT_POWER = {
    "CPU Power": CPU,
    "GPU Power": GPU,
    "ANE Power": ANE,
    "Combined Power (CPU + GPU + ANE)": SOC,
}
_POWER_LINE = re.compile(r"^(?P<label>" + "|".join(map(re.escape, _TEXT_POWER)) + r"): (?P<value>.*?)\s*$")
_DECIMAL = r"[0-9]*\.?[0-9]+"
_MW = re.compile(rf"(?P<mw>{_DECIMAL}) mW")


def parse_text(text: str, source: object = "<powermetrics text>") -> list[PowerSample]:
    """Samples from ``powermetrics`` text output (one per ``*** Sampled system activity`` header).

    A header must end in ``(<ms>ms elapsed) ***`` with a positive number; a ``CPU``, ``GPU``,
    ``ANE`` or ``Combined Power (CPU + GPU + ANE)`` line must read ``<X>: <number> mW``. Otherwise
    :class:`PowermetricsParseError` names ``source``, the line (from 1) and the record (from 0).
    Only the first power line of each kind in a record counts: the GPU sampler repeats ``GPU Power``
    in its own section with the same figure. Lines before the first header (the file's preamble)
    are not read.
    """
    samples: list[PowerSample] = []
    current: tuple[int, float, dict, dict] | None = None  # (header line, elapsed_s, energy, keys)

    def finish() -> None:
        if current is not None:
            head_line, elapsed_s, energy, keys = current
            try:
                samples.append(_checked(PowerSample(elapsed_s, energy, keys)))
            except _Invalid as e:
                raise PowermetricsParseError(source, head_line, len(samples), str(e), "text record") from None

    for lineno, line in enumerate(text.split("\n"), 1):
        if line.startswith(_HEADER):
            finish()
            index = len(samples)
            match = _ELAPSED.search(line)
            ms = match and match.group("ms")
            if not ms or not re.fullmatch(_DECIMAL, ms) or not (0 < float(ms) < math.inf):
                what = (f"the elapsed time {ms!r} ms in the header is not a positive number" if match
                        else "the header does not end in '(<ms>ms elapsed) ***'")  # fmt: skip
                raise PowermetricsParseError(source, lineno, index, what, "text record")
            current = (lineno, float(ms) * 1e-3, {}, {})
            continue
        match = _POWER_LINE.match(line)
        if current is None or match is None:
            continue
        value = _MW.fullmatch(match.group("value"))
        if value is None:
            raise PowermetricsParseError(
                source, lineno, len(samples),
                f"{match.group('label')}: {_short(match.group('value'))} is not '<non-negative number> mW'",
                "text record",
            )  # fmt: skip
        domain, (_, elapsed_s, energy, keys) = _TEXT_POWER[match.group("label")], current
        if domain not in energy:
            energy[domain] = float(value.group("mw")) * 1e-3 * elapsed_s  # mW x s -> J
            keys[domain] = match.group("label")
    finish()
    return samples
