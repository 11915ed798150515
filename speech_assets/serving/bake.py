"""The bake guard: a promoted model keeps being watched for a window, and rolled back to the version it replaced
on a breach.

    bake = Bake.after_promotion(new_version, previous_ref, started_at=now, previous_probe=champion_probe,
                                previous_p95_s=champion_window.p95_latency_s)
    decision = decide_bake(bake, now, metrics_since_promotion, probe_of_the_new_champion, BakePolicy())

A canary ends at promotion, but some failures only show at full traffic or after a while (a memory leak, a
traffic mix the canary's share did not see). For `BakePolicy.window_s` after the promotion the controller keeps
judging the new production model: its error rate and p95 latency since the promotion, and its WER on the same
labelled probe set the canary used, against the previous production model's WER on that audio (measured by the
canary's last decision, so the previous model need not stay loaded: same model, same audio, same answer). Any
breach rolls back to the previous production version (`decision.action == "rollback"`); the window passing with at
least `min_requests` live requests served ends the bake (`"baked"`); otherwise it keeps watching (`"watch"`).

Pure: the controller (`serving.controller`) gathers the inputs and acts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from speech_assets.serving.canary import ProbeResult, Rule, VersionMetrics


@dataclass(frozen=True)
class BakePolicy:
    window_s: float = 900.0  # how long after a promotion the new production model is still on probation
    min_requests: int = 20  # live requests it must serve in the window before the bake may end
    max_error_rate: float = 0.02
    max_p95_latency_s: float = 2.0
    max_p95_latency_ratio: float = 2.0  # vs the previous production model's p95 in the canary's last window
    max_probe_wer: float = 0.25  # when the previous model's probe WER is unknown
    max_probe_wer_delta: float = 0.02  # new probe WER minus the previous model's, on the same audio

    def __post_init__(self) -> None:
        if not self.window_s >= 0:
            raise ValueError(f"window_s must be >= 0, got {self.window_s!r}")
        if self.min_requests < 0:
            raise ValueError(f"min_requests must be >= 0, got {self.min_requests!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Bake:
    """What a promotion leaves to watch: the new version, the one it replaced (to roll back to) and that one's
    measured behaviour (the bar the new one is held to)."""

    version: str
    previous: dict  # the replaced champion's routing ref: {"version", "tag", "temperature"}
    started_at: float
    previous_probe_wer: float | None = None
    previous_probe_utterances: int = 0
    previous_p95_s: float | None = None

    @classmethod
    def after_promotion(cls, version: str, previous_ref, *, started_at: float,
                        previous_probe: ProbeResult | None = None, previous_p95_s: float | None = None) -> "Bake":
        p95 = previous_p95_s if previous_p95_s is not None and math.isfinite(previous_p95_s) else None
        return cls(version, {"version": previous_ref.version, "tag": previous_ref.tag,
                             "temperature": previous_ref.temperature}, float(started_at),
                   previous_probe.wer if previous_probe is not None and previous_probe.utterances else None,
                   previous_probe.utterances if previous_probe is not None else 0, p95)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Bake":
        return cls(**d)


@dataclass
class BakeDecision:
    action: str  # "watch" | "rollback" | "baked"
    rules: list[Rule] = field(default_factory=list)
    reason: str = ""

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.rules if not r.passed]

    def to_dict(self) -> dict:
        return {"action": self.action, "reason": self.reason, "rules": [asdict(r) for r in self.rules]}

    def markdown(self) -> str:
        lines = [f"**bake {self.action}** — {self.reason}", "", "| rule | verdict | evidence |", "|---|---|---|"]
        lines += [f"| {r.name} | {'pass' if r.passed else 'FAIL'} | {r.detail} |" for r in self.rules]
        return "\n".join(lines)


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None or x != x:
        return "n/a"
    return f"{x:.2%}" if pct else f"{x:.3f}"


def decide_bake(bake: Bake, now: float, metrics: VersionMetrics, probe: ProbeResult | None,
                policy: BakePolicy = BakePolicy()) -> BakeDecision:
    """Judge the new production model `bake.version` on what it did since its promotion (`metrics`) and on the
    probe set (`probe`; None when it was not probed this time: the live rules still apply)."""
    rules = [Rule("error_rate", metrics.error_rate <= policy.max_error_rate,
                  f"{metrics.errors}/{metrics.requests} = {_fmt(metrics.error_rate, True)} since the promotion "
                  f"(max {_fmt(policy.max_error_rate, True)})")]
    ceiling = policy.max_p95_latency_s
    if bake.previous_p95_s is not None:
        ceiling = min(ceiling, max(bake.previous_p95_s * policy.max_p95_latency_ratio, 0.05))
    p95 = metrics.p95_latency_s
    rules.append(Rule("p95_latency", not (p95 == p95) or p95 <= ceiling,
                      f"{_fmt(p95)} s (max {_fmt(ceiling)} s; {bake.previous['version']} had {_fmt(bake.previous_p95_s)} s)"))
    if probe is not None:
        limit = (policy.max_probe_wer if bake.previous_probe_wer is None
                 else bake.previous_probe_wer + policy.max_probe_wer_delta)
        rules.append(Rule(
            "probe_wer", probe.failed_requests == 0 and probe.wer <= limit,
            f"{_fmt(probe.wer, True)} on {probe.utterances} utterances, {probe.failed_requests} failed (max "
            f"{_fmt(limit, True)}; {bake.previous['version']} had {_fmt(bake.previous_probe_wer, True)} on the same "
            f"audio)"))
    elapsed = now - bake.started_at
    if any(not r.passed for r in rules):
        return BakeDecision("rollback", rules, f"breach {elapsed / 60:.1f} min after the promotion of {bake.version}: "
                            + ", ".join(r.name for r in rules if not r.passed)
                            + f"; back to {bake.previous['version']}")
    if elapsed >= policy.window_s and metrics.requests >= policy.min_requests and probe is not None:
        return BakeDecision("baked", rules, f"{bake.version} healthy for the whole bake window "
                            f"({policy.window_s / 60:.1f} min, {metrics.requests} live requests)")
    waiting = (f"{metrics.requests} of {policy.min_requests} live requests" if metrics.requests < policy.min_requests
               else f"{max(policy.window_s - elapsed, 0) / 60:.1f} min of the window left")
    return BakeDecision("watch", rules, f"{bake.version} healthy so far; {waiting}")
