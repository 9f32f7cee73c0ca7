"""The finaliser: turns finished jobs into stored records once they are final, and sums up the session (conservation, steady state)."""

from __future__ import annotations

import math
from dataclasses import replace

from ipw.core import basis as basis_rule
from ipw.core.records import finite
from ipw.devices.base import scope_of
from ipw.engines.retry import AuthError
from ipw.profilers import attribution
from ipw.profilers import steady as steady_state_of
from ipw.profilers.measurement import DomainEnergy, Measurement
from ipw.profilers.windows import SUB_UPDATE_PERIOD
from ipw.queries import shards
from ipw.run.config import rule_for
from ipw.run.record import grade_answer, make_record, redact_record
from ipw.run.serving.curves import Curves
from ipw.run.serving.flight import Flight, Job, served_at


class Finaliser:
    """One session's finaliser: turns finished jobs into stored records."""

    def __init__(self, store, config, profiler, observer, session: int, judge, redact=None) -> None:
        self.store, self.config, self.profiler = store, config, profiler
        self.observer, self.session, self.judge = observer, session, judge
        self.redact = redact  # applied to each finished record, after grading (ipw.run.record.redact_record)
        self.rule = rule_for(config)
        self.curves = Curves(profiler)
        self.scope_of = scope_of
        self.attributed: dict[str, float] = {}
        self.final: list[str] = []

    def ready(self, job: Job, flight: Flight) -> bool:
        if not job.attempts:
            return True
        lo = min(a.t_start_s for a in job.attempts)
        hi = max(a.t_end_s for a in job.attempts)
        return flight.earliest_inflight() >= hi and self.curves.covers(lo, hi)

    def finalize(self, job: Job, flight: Flight):
        """The record of a finished job (None for one that never started, and for one the server
        refused the credentials for: the run stops, and ``--resume`` with the right key runs it
        again, as at concurrency 1, instead of finding it stored as an error)."""
        if isinstance(job.error, AuthError):
            return None
        q, g = job.query, job.generation
        if g is not None:
            g = _apply_stops(g, job.settings)
        if job.attempts:
            lo = min(a.t_start_s for a in job.attempts)
            hi = max(a.t_end_s for a in job.attempts)
            neighbours = [e for e in flight.snapshot() if e.t_start_s < hi and e.t_end_s > lo]
            curves = self.curves.get(lo, hi)
            found = attribution.attribute(neighbours, curves, self.rule, keys=[q.id])
            qe = found[0] if found else None
        else:  # never started (the run stopped first): not recorded
            return None
        infos = self.curves.infos
        idle = self.profiler.idle.power_w if self.profiler.idle else {}
        domains, flags = {}, [f"attributed:{self.rule.name}"]
        for d, c in curves.items():
            info = infos[d]
            e = qe.energy_j.get(d, 0.0) if qe else 0.0
            bound = qe.uncertainty_j.get(d, math.inf) if qe else math.inf
            if not math.isfinite(bound):
                flags.append(f"unbounded:{d}")
            domains[d] = DomainEnergy.of(info, infos, e, hi - lo, bound, idle_power_w=idle.get(d))
            if hi - lo < info.update_period_s:  # its energy is a share of one counter step, as in a serial window
                flags.append(f"{SUB_UPDATE_PERIOD}:{d}")
            if info.parent is None:
                self.attributed[d] = self.attributed.get(d, 0.0) + e
        if any(not d.measured for d in domains.values()):
            flags.append("estimate")
        m = Measurement(q.id, lo, hi, domains, sum(len(c) for c in curves.values()), tuple(flags))
        record = make_record(q, g, grade_answer(q, g, job.error, self.judge, self.redact), m, self.session, job.error,
                             shards.tag(self.config.shard))  # fmt: skip
        return redact_record(replace(record, **self._energy_fields(job, g, qe, domains, idle)), self.redact)

    def store_all(self, jobs: list[Job], flight: Flight) -> None:
        """Finalise ``jobs`` and append their records in one durable write (one fsync)."""
        records = [r for r in (self.finalize(j, flight) for j in jobs) if r is not None]
        if not records:
            return
        self.store.append_many(records)
        for r in records:
            self.observer.record(r)
            self.final.append(r.id)

    def _energy_fields(self, job: Job, g, qe, domains, idle) -> dict:
        top = [d for d in domains.values() if d.parent is None]
        basis, scope = basis_rule.of_domains(domains.values(), lambda d: d.scope)
        pre = sum(qe.prefill_j.get(d.domain, 0.0) for d in basis) if qe else None
        dec = sum(qe.decode_j.get(d.domain, 0.0) for d in basis) if qe else None
        pre_u = sum(qe.prefill_uncertainty_j.get(d.domain, math.inf) for d in basis) if qe else None
        dec_u = sum(qe.decode_uncertainty_j.get(d.domain, math.inf) for d in basis) if qe else None
        def above_idle(parts) -> float | None:  # the query's energy above idle over its share of time [J]
            if not (qe and parts and all(d.domain in idle for d in parts)):
                return None
            return sum(qe.energy_j.get(d.domain, 0.0) - idle[d.domain] * qe.share_s for d in parts)

        above, acc_above = above_idle(top), above_idle(basis) if scope == "accelerator" else None
        extra = dict(g.extra) if g is not None else {}
        times = extra.pop("token_times_s", None)
        last = job.attempts[-1]
        if times is None:
            times = last.token_times_s
        t0 = g.t_start_s if g is not None else last.t_start_s
        estimated = any(a.input_tokens is None for a in job.attempts)
        monitors = [self.curves.monitored[d.domain] for d in basis if d.domain in self.curves.monitored]
        bound = "counter-step worst case" if not monitors else (  # what the monitor's bound rests on (ipw.devices.nvidia.curve)
            "monitor power shape" if all(m.field_inside_steps for m in monitors) else "monitor step placement")
        extra |= {
            "t_start_s": t0,
            "token_offsets_s": [round(t - t0, 6) for t in times],
            "attribution": {"rule": self.rule.name, "version": self.rule.version, "scope": scope,
                            "bound": bound,
                            "prefill_uncertainty_j": finite(pre_u), "decode_uncertainty_j": finite(dec_u),
                            "share_s": qe.share_s if qe else None, "input_tokens_estimated": estimated,
                            "queued_s": _queued_s(last),
                            "attempt_spans_s": [[a.t_start_s, a.t_end_s] for a in job.attempts]},
        }  # fmt: skip
        return {"prefill_energy_j": pre, "decode_energy_j": dec, "energy_above_idle_j": above,
                "accelerator_energy_above_idle_j": acc_above,
                "attempts": max(len(job.attempts), 1), "engine_extra": extra}  # fmt: skip

    def summary(self, flight: Flight, level: int) -> dict:
        """Active time and energy, the queries' sum (conservation) and the steady state."""
        events = flight.snapshot(everything=True)
        curves = self.curves.get()
        infos = self.curves.infos
        top = {d: c for d, c in curves.items() if infos[d].parent is None}
        basis, scope = basis_rule.of_domains(list(top), lambda d: self.scope_of(infos[d], infos))
        active_s, active = steady_state_of.active_energy(events, top)
        stored = {e.key for e in events} <= set(self.final)
        ok = [e for e in events if e.t_first_s is not None]
        steady = steady_state_of.steady_state(ok, top, level)
        if steady is not None:  # the figures on the basis IPW uses: accelerator energy, else system
            e = sum(steady["domains"][d]["energy_j"] for d in basis)
            steady["basis"] = {"scope": scope, "domains": basis, "energy_j": e,
                               "uncertainty_j": sum(steady["domains"][d]["uncertainty_j"] for d in basis),
                               "power_w": e / steady["duration_s"],
                               "j_per_token": e / steady["output_tokens"] if steady["output_tokens"] else None}  # fmt: skip
        idle = self.profiler.idle.power_w if self.profiler.idle else {}
        return {
            "session": self.session,
            "level": level,
            "queries": len(self.final),
            "attempts": len(events),
            "active_s": active_s,
            "active_energy_j": active,
            # the device's energy while serving, on the IPW basis and the system's (the serving IPW:
            # ipw.science.intelligence.metrics.serving_power_w)
            "active_basis": {"scope": scope, "domains": list(basis), "energy_j": sum(active.get(d, 0.0) for d in basis),
                             "system_energy_j": sum(active.values()),
                             "idle_power_w": sum(idle[d] for d in top) if top and all(d in idle for d in top) else None},
            "attributed_energy_j": dict(self.attributed),
            "complete": stored,
            "steady_state": finite(steady),
            "total_output_tokens": float(sum(e.output_tokens for e in ok)),
        }


def _queued_s(attempt) -> float | None:
    """How long the server kept the last attempt waiting by its own account (:func:`served_at`: the
    attribution rule's queued phase, rate 0); None where the server does not say."""
    times = attempt.token_times_s
    served = served_at(attempt, times[0] if times else None)
    return None if served is None else served - attempt.t_start_s


def _apply_stops(g, settings):
    """Cut the text at the first of the query's own stop strings (lm-eval ``until``) that a batched
    engine could not apply per row."""
    stops = [s for s in getattr(settings, "stop", ()) if s and s in g.text]
    if not stops:
        return g
    return replace(g, text=g.text[: min(g.text.index(s) for s in stops)], finish_reason="stop")
