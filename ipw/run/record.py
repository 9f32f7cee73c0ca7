"""One query's record: its answer, grade, timing and energy by scope, as both executors build it.

Secrets: the answer is graded as the engine gave it (:func:`grade_answer`), and the record is
redacted afterwards (:func:`redact_record`, with the engines' own :meth:`~ipw.engines.base.Engine.redact`),
so redaction never changes a grade: with the placeholder key ``x`` the answer "Mexico City" is graded
and stored as it came (a placeholder is no secret, :mod:`ipw.engines.secrets`), and with a real key
echoed by a server the key is graded as text and stored as ``[redacted]``."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timezone

from ipw.core.basis import of_scopes
from ipw.core.records import MODULE_COUNTER_FLAG, QueryRecord, finite
from ipw.engines import Generation
from ipw.profilers.measurement import Measurement
from ipw.queries.grading import Grade, grade


def make_record(query, generation: Generation | None, grade, m: Measurement, session: int, error: str | BaseException | None,
                shard: str | None = None) -> QueryRecord:  # fmt: skip
    """The stored record of one query: answer, grade, timing and energy by scope with its provenance.
    ``error`` (a message, or the engine's exception) marks an engine error; ``attempts`` is the
    engine's count of tries (``Generation.extra["attempts"]``, or the exception's ``attempts``)."""
    attempts = (generation.extra.get("attempts") if generation else getattr(error, "attempts", None)) or 1
    error = None if error is None else str(error)
    top = [d for d in m.domains.values() if d.parent is None]
    acc_j, acc_measured = m.scope_energy_j("accelerator"), m.scope_measured("accelerator")
    host_j, host_measured = m.scope_energy_j("host"), m.scope_measured("host")
    basis = of_scopes(acc_j, acc_measured, m.energy_j, m.measured, any(f.startswith(MODULE_COUNTER_FLAG) for f in m.flags))
    timing = generation.timing() if generation else {"e2e_s": m.duration_s}
    record = QueryRecord(
        id=query.id, domain=query.domain, difficulty=query.difficulty, grader=query.grader,
        reference=query.answer, output=generation.text if generation else None,
        correct=grade.correct, extracted=grade.extracted, grade_method=grade.method, grade_reason=grade.reason,
        **timing,
        energy_j=m.energy_j, energy_above_idle_j=m.energy_above_idle_j,
        accelerator_energy_j=acc_j, accelerator_measured=acc_measured,
        accelerator_energy_above_idle_j=m.scopes["accelerator"].energy_above_idle_j if acc_j is not None else None,
        host_energy_j=host_j, host_measured=host_measured,
        power_w=basis.energy_j / m.duration_s if m.duration_s > 0 and basis.energy_j is not None else None,
        energy_uncertainty_j=finite(sum(d.uncertainty_j for d in top)),  # inf (unbounded) is None, as stored
        window_s=m.duration_s, measured=m.measured, flags=tuple(m.flags) + engine_flags(generation),
        domains={
            d.domain: {"energy_j": d.energy_j, "source": d.source, "measured": d.measured,
                       "uncertainty_j": d.uncertainty_j if d.uncertainty_j != float("inf") else None,
                       "parent": d.parent, "scope": d.scope, "bound_basis": d.bound_basis}
            for d in m.domains.values()
        },
        engine_extra=generation.extra if generation else {},
        session=session, shard=shard, attempts=attempts, finished_at=datetime.now(timezone.utc).isoformat(), error=error,
    )  # fmt: skip
    if not m.domains:  # a meter gap: no energy figure at all, not 0 J
        record = replace(record, energy_j=None, power_w=None, energy_uncertainty_j=None)
    if record.error is None and not (isinstance(record.energy_j, (int, float)) and math.isfinite(record.energy_j)):
        # no figure to score it on (stored None: the record contract, ipw.core.records.check_contract)
        record = replace(record, error=f"energy not measured: the meters gave {record.energy_j!r} J", correct=None)
    return record


def engine_flags(generation: Generation | None) -> tuple[str, ...]:
    """The flags an engine put on its answer (``extra["flags"]``, e.g. ``token-count-mismatch`` from
    :mod:`ipw.engines.token_counts`), added to the measurement's in the record's ``flags``."""
    return tuple(str(f) for f in (generation.extra.get("flags") or ())) if generation else ()


REDACTED_FIELDS = ("output", "extracted", "grade_reason", "finish_reason", "error", "engine_extra")
"""The fields of a record that carry text from the engine, the grader or a judge."""


def grade_answer(query, generation: Generation | None, error, judge, redact=None):
    """The query's grade, of the answer as the engine gave it; a query the engine gave no answer for
    is not scored (``correct`` None: the rule of ipw.science.intelligence.metrics), whichever
    executor ran it. A judge is another server: it is sent the answer redacted by ``redact``."""
    if generation is None:
        return Grade(None, None, "engine-error", f"no answer: {error}")
    text = generation.text
    if redact is not None and judge is not None and query.grader == "judge":
        text = redact(text)
    return grade(query, text, judge=judge)


def redact_record(record: QueryRecord, redact) -> QueryRecord:
    """``record`` with ``redact`` (a function of a value) applied to every field in
    :data:`REDACTED_FIELDS`; ``engine_extra["redacted"]`` is True when anything changed. Called on
    the finished record, after grading, so that redaction changes what is stored, never the grade."""
    if redact is None:
        return record
    before = {f: getattr(record, f) for f in REDACTED_FIELDS}
    after = {f: redact(v) for f, v in before.items()}
    if after == before:
        return record
    after["engine_extra"] = dict(after["engine_extra"] or {}, redacted=True)
    return replace(record, **after)
