"""Whether to bring a served model's service back, and what to tell people: a pure decision a sensor feeds.

    decision = decide(observed, state, RecoveryPolicy(), now=time.time())

A service that is down or unready while a production model exists is never left silently unserved: the first look
that finds it so alerts and restarts it (with the routing it had, so a canary in flight resumes by its rules); a
restart in progress is waited for, not repeated; a service that does not come back after `max_attempts` restarts
within `window_s` is handed to a person with an alert that says what to run. The decision after a restart that
worked says "recovered", once. No Dagster import.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

__all__ = ["Observed", "RecoveryDecision", "RecoveryPolicy", "RecoveryState", "decide"]

Action = Literal["healthy", "recovered", "nothing_to_serve", "restart", "wait", "give_up"]


@dataclass(frozen=True)
class RecoveryPolicy:
    ready_timeout_s: float = 180.0  # a restarted server that is not ready after this has failed to start
    # a live server that does not answer /readyz may only be busy (loading a model, a burst on 2 cores): restart it
    # only once it has been unready this long; a server whose process is gone is restarted at first look
    unready_grace_s: float = 60.0
    max_attempts: int = 3  # restarts within window_s before a person is called instead
    window_s: float = 1800.0


@dataclass(frozen=True)
class Observed:
    """What the sensor saw this tick."""

    ready: bool  # /readyz answered 200
    process_alive: bool  # the recorded server process exists
    deployed: bool  # the target has a bento and a routing document (something was ever served)
    production_version: str | None  # the registry's production model, if any


@dataclass(frozen=True)
class RecoveryState:
    """What the decision remembers between ticks (the sensor's cursor)."""

    restarts: tuple[float, ...] = ()  # when each restart within the window began
    down_since: float | None = None  # first tick that found the service down (None: it is up)
    handed_over: bool = False  # a person was called for this outage (said once, not every tick)

    def to_dict(self) -> dict[str, Any]:
        return {"restarts": list(self.restarts), "down_since": self.down_since, "handed_over": self.handed_over}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "RecoveryState":
        d = d or {}
        return cls(tuple(float(x) for x in d.get("restarts", ())), d.get("down_since"), bool(d.get("handed_over")))


@dataclass(frozen=True)
class RecoveryDecision:
    action: Action
    reason: str
    alert: bool  # send an alert this tick (down, gave up, recovered)
    state: RecoveryState = field(default_factory=RecoveryState)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state.to_dict()}


def decide(observed: Observed, state: RecoveryState, policy: RecoveryPolicy = RecoveryPolicy(), *,
           now: float) -> RecoveryDecision:
    """The action for this tick. Contract:

    - ready: "healthy", or "recovered" (with an alert) on the first ready tick after the service was down;
    - not ready and nothing to serve (never deployed, or no production model): "nothing_to_serve", no alert;
    - not ready, a restart began less than `ready_timeout_s` ago and its process is alive: "wait";
    - not ready, its process alive, no restart yet, unready for less than `unready_grace_s`: "wait" (busy, perhaps);
    - not ready otherwise: "restart" (alert on the first restart of an outage), unless `max_attempts` restarts
      already began within `window_s`: then "give_up", with an alert naming `serving start` and the server log (the
      first time in an outage; later ticks give up quietly until the service is back or the window has passed).
    """
    if observed.ready:
        if state.down_since is not None:
            return RecoveryDecision("recovered", f"service ready again after {now - state.down_since:.0f} s down",
                                    True, replace(state, down_since=None, handed_over=False))
        return RecoveryDecision("healthy", "service ready", False, state)
    if not observed.deployed or observed.production_version is None:
        what = "nothing was ever deployed" if not observed.deployed else "no production model"
        return RecoveryDecision("nothing_to_serve", f"service not running; {what}: nothing to bring back", False,
                                RecoveryState(state.restarts, None))
    recent = tuple(t for t in state.restarts if now - t < policy.window_s)
    down_since = now if state.down_since is None else state.down_since
    if recent and observed.process_alive and now - recent[-1] < policy.ready_timeout_s:
        return RecoveryDecision("wait", f"restart begun {now - recent[-1]:.0f} s ago: waiting for it to be ready",
                                False, RecoveryState(recent, down_since))
    if observed.process_alive and not recent and now - down_since < policy.unready_grace_s:
        return RecoveryDecision("wait", f"process alive but not ready for {now - down_since:.0f} s (restart after "
                                f"{policy.unready_grace_s:.0f} s)", False, RecoveryState(recent, down_since))
    if len(recent) >= policy.max_attempts:
        return RecoveryDecision(
            "give_up", f"{len(recent)} restarts in {policy.window_s / 60:.0f} min did not bring the service back "
            f"(production {observed.production_version}): look at the server log under the serving home, then run "
            "`python -m speech_assets serving start`", not state.handed_over, RecoveryState(recent, down_since, True))
    why = "process gone" if not observed.process_alive else "process alive but not ready"
    return RecoveryDecision(
        "restart", f"service down ({why}) while {observed.production_version} is in production: restarting with the "
        f"routing it had (attempt {len(recent) + 1} of {policy.max_attempts})", not recent,
        RecoveryState(recent + (now,), down_since))
