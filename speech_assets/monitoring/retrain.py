"""When to retrain: drift with hysteresis, a cooldown, a daily budget, a schedule and a new-data trigger.

    decision, state = decide(policy, state, now, drift=[...], new_utterances=..., model_age_s=..., busy=False)

Pure: the sensor (defs/monitoring/sensors.py) gathers the inputs and keeps `state` in its cursor.

* drift: a judged batch whose drift score reaches `fire_score` fires once; the trigger then disarms and
  re-arms only after a judged batch scores below `rearm_score` (hysteresis: a drifting stream does not fire on
  every batch) or after a retrain has landed (the new model's reference replaces the old one);
* new data: `min_new_utterances` arrived since the production model's training data;
* schedule: the production model is older than `max_model_age_s`;
* erasure: the production model is marked by a speaker erasure (speech_assets.privacy.erasure) not yet acted on
  (`retrain_on_erasure`); it goes first, and its retrain trains from scratch (`from_scratch`): fine-tuning from
  the marked model would carry over what it learned from the erased speaker;
* guardrails over all three: nothing while a retrain is in flight, at most one per `cooldown_s`, at most
  `max_per_day` in any 24 h.  A trigger that is held keeps its reason in the decision.

The run key is derived from the data commit the retrain would train on, so one commit is never retrained twice
(an erasure retrain's from the erasure id, so one erasure is acted on once).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

DAY_S = 86400.0


@dataclass(frozen=True)
class RetrainPolicy:
    fire_score: float = 1.0
    rearm_score: float = 0.7
    cooldown_s: float = 3600.0
    max_per_day: int = 3
    min_new_utterances: int = 3000
    max_model_age_s: float = 7 * DAY_S
    retrain_on_erasure: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.rearm_score < self.fire_score:
            raise ValueError("need 0 < rearm_score < fire_score (hysteresis)")


@dataclass(frozen=True)
class DriftEvent:
    batch_id: str
    score: float
    drifted: bool
    data_commit: str
    fired: tuple[str, ...] = ()


@dataclass
class RetrainState:
    armed: bool = True
    retrains: list[float] = field(default_factory=list)  # start times of requested retrains
    pending_drift: dict | None = None  # a drift trigger held by a guardrail, kept until it can fire
    handled_erasures: list[str] = field(default_factory=list)  # erasure ids a retrain was requested for

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "RetrainState":
        return cls(**(d or {}))


@dataclass(frozen=True)
class RetrainDecision:
    fire: bool
    trigger: str | None  # "erasure" | "drift" | "new_data" | "schedule" | None
    reason: str
    run_key: str | None = None
    data_commit: str | None = None
    from_scratch: bool = False  # never warm-start this retrain from the production model
    erasures: tuple[str, ...] = ()  # the erasure ids this retrain acts on
    drift_batch: str | None = None  # the drifted batch that triggered it: its drift test set judges the release


def decide(
    policy: RetrainPolicy,
    state: RetrainState,
    now: float,
    *,
    drift: list[DriftEvent],
    head_commit: str,
    new_utterances: int,
    model_age_s: float | None,
    busy: bool,
    erasures: Sequence[str] = (),
) -> tuple[RetrainDecision, RetrainState]:
    """`erasures`: ids of the erasures that mark the production model (governance/erasure_marks)."""
    state = RetrainState(state.armed, [t for t in state.retrains if now - t < DAY_S], state.pending_drift,
                         list(state.handled_erasures))
    notes = []
    unhandled = [e for e in erasures if e not in state.handled_erasures]

    # 1. the drift trigger, with hysteresis
    trigger = None
    for event in drift:
        if state.armed and event.drifted and event.score >= policy.fire_score:
            state.armed = False
            state.pending_drift = {"batch_id": event.batch_id, "score": event.score, "data_commit": event.data_commit,
                                   "fired": list(event.fired)}
            notes.append(f"drift in {event.batch_id} (score {event.score:.2f}: {', '.join(event.fired)})")
        elif not state.armed and event.score < policy.rearm_score and state.pending_drift is None:
            state.armed = True
            notes.append(f"{event.batch_id} scored {event.score:.2f} < {policy.rearm_score}: drift trigger re-armed")
        elif not state.armed and event.drifted:
            notes.append(f"{event.batch_id} still drifted (score {event.score:.2f}); trigger already used")
    if unhandled and policy.retrain_on_erasure:
        trigger = ("erasure", f"the production model trained on erased data (erasure {', '.join(unhandled)}); "
                              f"retraining from scratch without it", head_commit)
    elif state.pending_drift is not None:
        p = state.pending_drift
        trigger = ("drift", f"drift in {p['batch_id']} (score {p['score']:.2f}: {', '.join(p['fired'])})",
                   head_commit)
    elif model_age_s is not None and model_age_s >= policy.max_model_age_s:
        trigger = ("schedule", f"the production model is {model_age_s / 3600:.1f} h old "
                               f"(scheduled every {policy.max_model_age_s / 3600:.1f} h)", head_commit)
    elif new_utterances >= policy.min_new_utterances:
        trigger = ("new_data", f"{new_utterances} new utterances since the production model's data "
                               f"(>= {policy.min_new_utterances})", head_commit)

    if unhandled and not policy.retrain_on_erasure:
        notes.append(f"erasure {', '.join(unhandled)} marks the production model; the policy leaves its retrain "
                     f"to an operator")
    prefix = ("; ".join(notes) + ". ") if notes else ""
    if trigger is None:
        return RetrainDecision(False, None, prefix + f"hold: no trigger ({new_utterances} new utterances, "
                                                     f"drift trigger {'armed' if state.armed else 'used'})"), state
    kind, why, commit = trigger
    hold = None
    if busy:
        hold = "a retrain is already in flight"
    elif state.retrains and now - max(state.retrains) < policy.cooldown_s:
        hold = f"cooldown: last retrain {(now - max(state.retrains)) / 60:.0f} min ago (< {policy.cooldown_s / 60:.0f} min)"
    elif len(state.retrains) >= policy.max_per_day:
        hold = f"budget: {len(state.retrains)} retrains in the last 24 h (max {policy.max_per_day})"
    if hold:
        return RetrainDecision(False, kind, prefix + f"hold {kind} retrain ({why}): {hold}"), state
    state.retrains.append(now)
    if kind == "erasure":
        state.handled_erasures.extend(unhandled)
        key = unhandled[0] if len(unhandled) == 1 else hashlib.sha256(",".join(sorted(unhandled)).encode()).hexdigest()[:16]
        if state.pending_drift is not None:  # the retrain trains on main's head, drifted batch included
            why += f"; also covers the held drift trigger ({state.pending_drift['batch_id']})"
            state.pending_drift = None
        return RetrainDecision(True, kind, prefix + f"retrain: {why}", f"retrain-erasure-{key}", commit,
                               from_scratch=True, erasures=tuple(unhandled)), state
    drift_batch = None
    if kind == "drift":
        drift_batch = state.pending_drift["batch_id"]
        state.pending_drift = None
    return RetrainDecision(True, kind, prefix + f"retrain: {why}", f"retrain-{commit[:16]}", commit,
                           drift_batch=drift_batch), state


def landed(state: RetrainState) -> RetrainState:
    """A retrain's model reached production: its reference is the new normal, so drift may fire again (erasures
    already acted on stay remembered)."""
    return RetrainState(True, list(state.retrains), None, list(state.handled_erasures))
