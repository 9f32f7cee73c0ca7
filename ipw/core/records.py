"""The record contract: what one query leaves behind, and the names of its columns.

Every layer speaks these types: the runner builds a :class:`QueryRecord` per query, the store
writes and reads them (``queries.jsonl`` lines are ``QueryRecord.to_dict()``), ``ipw.science.intelligence.metrics``
and the reports read their columns by the constants of :class:`Col`, never by string literals.

Energy has a scope (docs/profilers.md, the measurement rules):

- **accelerator**: the GPUs, or the Apple SoC; on a machine with neither, the CPU package.
  IPW and IPJ use it by default, as the IPW paper's harness does.
- **host**: CPU package and DRAM where an accelerator exists (DRAM alone on a CPU-only machine),
  measured by RAPL or the labelled estimate.
- **system**: their sum, ``energy_j`` (the sum of the window's top-level domains; where a domain
  is itself a measured whole-system figure, such as a Jetson's input rail, that figure alone).

**Module counters** (NVML on Grace Hopper, ``ipw.devices.nvidia.module``) measure the GPU, the CPU
and their memory together, with no way to split them. Such a record has ``accelerator_energy_j``
and ``host_energy_j`` None, ``energy_j`` the module's energy (counted once: no host estimate or
RAPL is added on top of it), the flag ``module-counter:<domain>`` (:data:`MODULE_COUNTER_FLAG`)
and ``"scope": "module"`` on the domain. Why not the module energy in ``accelerator_energy_j``: that
column would then mean the GPU on one machine and GPU + CPU + memory on another, and runs would be
compared on different bases without a word. With it None, IPW/IPJ on the default basis fall back
to ``energy_j`` (as on records without an accelerator figure), and ``ipw.science.intelligence.metrics.summarize``
names that basis ``module`` from the flag, so every summary, table and report says so.

A scope's ``*_measured`` flag is False only where that scope itself includes an estimate, so a
measured GPU figure is never labelled estimate because a host estimate sits beside it.

Records written before scopes existed (schema 1) load too: their accelerator energy is their
system energy, which is what it was on the CPU-only machines that wrote them.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from ipw.core.errors import IpwError

SCHEMA_VERSION = 2


class Col:
    """Column names of a query frame (``ipw.store.load(run).queries``) and of summaries."""

    ID = "id"
    DOMAIN = "domain"
    DIFFICULTY = "difficulty"
    GRADER = "grader"
    REFERENCE = "reference"
    CORRECT = "correct"
    EXTRACTED = "extracted"
    GRADE_METHOD = "grade_method"
    GRADE_REASON = "grade_reason"
    ERROR = "error"
    OUTPUT = "output"
    FINISH_REASON = "finish_reason"
    E2E_S = "e2e_s"
    TTFT_S = "ttft_s"
    TPOT_S = "tpot_s"
    WINDOW_S = "window_s"
    INPUT_TOKENS = "input_tokens"
    OUTPUT_TOKENS = "output_tokens"
    ENERGY_J = "energy_j"  # system scope
    ENERGY_ABOVE_IDLE_J = "energy_above_idle_j"  # system scope
    ACCELERATOR_ENERGY_ABOVE_IDLE_J = "accelerator_energy_above_idle_j"
    ACCELERATOR_ENERGY_J = "accelerator_energy_j"
    HOST_ENERGY_J = "host_energy_j"
    ENERGY_UNCERTAINTY_J = "energy_uncertainty_j"
    PREFILL_ENERGY_J = "prefill_energy_j"
    DECODE_ENERGY_J = "decode_energy_j"
    POWER_W = "power_w"
    MEASURED = "measured"
    ACCELERATOR_MEASURED = "accelerator_measured"
    HOST_MEASURED = "host_measured"
    FLAGS = "flags"
    DOMAINS = "domains"
    ENGINE_EXTRA = "engine_extra"
    ATTEMPTS = "attempts"
    FINISHED_AT = "finished_at"
    SCHEMA = "schema"
    SESSION = "session"
    SHARD = "shard"
    # summary columns (ipw.science.intelligence.metrics.summarize)
    N = "n"
    SCORED = "scored"
    ERRORS = "errors"
    METER_GAPS = "meter_gaps"  # records with no energy because a meter failed to read (flag meter-gap:<domain>)
    SUB_UPDATE_PERIOD = "sub_update_period"  # records with a window shorter than a counter's update period
    # (flag sub-update-period:<domain>; short-window:<domain> in older records)
    ACCURACY = "accuracy"
    IPW = "ipw_per_w"
    IPJ = "ipj_per_j"
    ENERGY_SCOPE = "energy_scope"
    ENERGY_J_MEAN = "energy_j_mean"
    POWER_W_MEAN = "power_w_mean"
    N_BOOT = "n_boot"


MODULE_COUNTER_FLAG = "module-counter:"
"""Prefix of the flag a window gets for each domain that is a module counter (module docstring)."""
METER_GAP_FLAG = "meter-gap:"
"""Prefix of the flag of a record whose energy could not be read (no figure: ``energy_j`` None)."""


class RecordError(IpwError, ValueError):
    """A stored record that does not fit the contract (the store adds the file and line)."""


def check_contract(d: dict) -> None:
    """The rules a stored record keeps beyond its fields' types (:class:`RecordError` naming the one
    broken): a ``schema`` this ipw reads (a newer one would be read wrongly, and would silently
    replace the earlier record of its id), and energy on every record that is scored: a record
    with ``correct`` set and no ``error`` must have ``energy_j`` (a meter gap, flag
    ``meter-gap:<domain>``, carries an error and is not scored), so that no scored query drops out
    of the energy means unseen."""
    schema = d.get("schema", 1)
    if isinstance(schema, int) and not isinstance(schema, bool) and not 1 <= schema <= SCHEMA_VERSION:
        raise RecordError(f"schema {schema} is not one this ipw reads (1 to {SCHEMA_VERSION}); a record of a newer "
                          "ipw, or written by hand")  # fmt: skip
    if d.get("correct") is not None and d.get("error") is None and d.get("energy_j") is None:
        raise RecordError(f"a scored record (correct {d.get('correct')!r}, no error) has no energy_j: it would drop "
                          f"out of the energy means unseen. A query without energy is a meter gap (flag "
                          f"{METER_GAP_FLAG}<domain>) with an error, not scored")  # fmt: skip


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "float": (int, float), "int": (int,), "bool": (bool,),
    "tuple[str, ...]": (list, tuple), "dict": (dict,), "dict[str, dict]": (dict,),
}


def _check(name: str, value: Any, annotation: str) -> None:
    """Raise :class:`RecordError` unless ``value`` fits the field's annotation (``X | None`` allows None)."""
    base, _, optional = annotation.partition(" | ")
    if value is None and optional == "None":
        return
    if base == "Any":
        return
    kinds = _TYPES[base]
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if ok and base == "tuple[str, ...]":
        ok = all(isinstance(v, str) for v in value)
    if not ok:
        raise RecordError(f"field {name!r} must be {annotation}, not {type(value).__name__} {value!r:.40}")


def finite(x: Any) -> Any:
    """``x`` with every non-finite float (NaN, inf), also inside dicts, lists and tuples, made None:
    what strict JSON can store (records are written with ``allow_nan=False``)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(finite(v) for v in x)
    return x


@dataclass(frozen=True)
class QueryRecord:
    """One query: its answer and grade, timing [s], tokens, and energy [J] by scope.

    ``power_w`` is the scope energy IPW uses (accelerator) divided by ``window_s``: one span for
    both (the window brackets the engine's end-to-end time, so dividing window energy by e2e read
    high for short queries). Prefill/decode energies are None until a timeline splits them.
    """

    id: str
    domain: str
    correct: bool | None
    difficulty: str | None = None
    grader: str | None = None
    reference: Any = None
    output: str | None = None
    extracted: Any = None
    grade_method: str | None = None
    grade_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    finish_reason: str | None = None
    energy_j: float | None = 0.0  # None: a meter gap (no figure, never 0 J)
    energy_above_idle_j: float | None = None
    accelerator_energy_j: float | None = None
    accelerator_measured: bool | None = None
    accelerator_energy_above_idle_j: float | None = None  # the accelerator's energy above its idle baseline [J]
    host_energy_j: float | None = None
    host_measured: bool | None = None
    power_w: float | None = None
    energy_uncertainty_j: float | None = None
    prefill_energy_j: float | None = None
    decode_energy_j: float | None = None
    window_s: float | None = None
    measured: bool = False
    flags: tuple[str, ...] = ()
    domains: dict[str, dict] = field(default_factory=dict)
    engine_extra: dict = field(default_factory=dict)
    session: int = 0
    shard: str | None = None
    attempts: int = 1
    finished_at: str | None = None
    error: str | None = None
    schema: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        """The JSON-able form stored as one line of ``queries.jsonl`` (non-finite floats become None)."""
        d = asdict(self)
        d["flags"] = list(self.flags)
        return finite(d)

    @classmethod
    def from_dict(cls, d: dict) -> QueryRecord:
        """Read a stored record of any schema; unknown keys are kept in ``engine_extra['_unknown']``.

        Raises :class:`RecordError` for a record that is not an object, lacks ``id``, ``domain`` or
        ``correct``, or holds a value of the wrong type."""
        if not isinstance(d, dict):
            raise RecordError(f"a record must be a JSON object, not {type(d).__name__}")
        for f in fields(cls):
            if f.name in d:
                _check(f.name, d[f.name], str(f.type))
            elif f.default is MISSING and f.default_factory is MISSING:
                raise RecordError(f"the record has no {f.name!r}")
        check_contract(d)
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in d.items() if k in names}
        extra = {k: v for k, v in d.items() if k not in names}
        known.setdefault("schema", 1)
        if known.get("accelerator_energy_j") is None and known["schema"] < 2:
            known["accelerator_energy_j"] = known.get("energy_j")
            known["accelerator_measured"] = known.get("measured")
        known["flags"] = tuple(known.get("flags") or ())
        if extra:
            known["engine_extra"] = dict(known.get("engine_extra") or {}) | {"_unknown": extra}
        return cls(**known)

    @property
    def scored(self) -> bool:
        return self.correct is not None


RECORD_COLUMNS = tuple(f.name for f in fields(QueryRecord))
