"""The canary controller's decision: step the challenger's traffic up, promote it, hold, or roll it back.

    decision = decide(state.weight, champion_metrics, challenger_metrics, probes, CanaryPolicy())

Inputs are what the live service exposes (per model version, over the window since the last decision:
requests, errors, p95 latency, mean confidence) and a labelled probe set sent through the service to each side
(WER).  Every rule is evaluated and recorded with its numbers, so the audit trail says exactly why.
A breach of any guardrail rolls back at once; too little evidence holds; otherwise the weight climbs the
steps and, at the last step, the challenger is promoted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class CanaryPolicy:
    steps: tuple[float, ...] = (10.0, 50.0, 100.0)  # challenger traffic percent, in order
    min_requests: int = 20  # live requests the challenger must have served at a step before it may move on
    max_error_rate: float = 0.02  # challenger's share of failed (5xx) requests
    max_p95_latency_s: float = 2.0  # absolute ceiling
    max_p95_latency_ratio: float = 2.0  # vs the champion's p95 in the same window (when it has one)
    min_confidence_ratio: float = 0.85  # challenger mean confidence / champion's
    max_probe_wer: float = 0.25  # ceiling on the labelled probe set when the champion could not be measured
    max_probe_wer_delta: float = 0.02  # challenger probe WER minus champion's

    def __post_init__(self) -> None:
        if not self.steps or any(b <= a for a, b in zip(self.steps, self.steps[1:])) or self.steps[-1] != 100.0:
            raise ValueError(f"steps must increase strictly and end at 100, got {self.steps}")

    def next_step(self, weight: float) -> float | None:
        for s in self.steps:
            if s > weight + 1e-9:
                return s
        return None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class VersionMetrics:
    requests: int = 0
    errors: int = 0
    p95_latency_s: float = math.nan
    mean_confidence: float = math.nan

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class ProbeResult:
    wer: float
    utterances: int
    failed_requests: int = 0


@dataclass
class Rule:
    name: str
    passed: bool
    detail: str


@dataclass
class CanaryDecision:
    action: str  # "step" | "promote" | "rollback" | "hold"
    weight: float  # the challenger's weight after the action (0 after promote/rollback)
    rules: list[Rule] = field(default_factory=list)
    reason: str = ""

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.rules if not r.passed]

    def to_dict(self) -> dict:
        return {"action": self.action, "weight": self.weight, "reason": self.reason,
                "rules": [asdict(r) for r in self.rules]}

    def markdown(self) -> str:
        lines = [f"**{self.action}** → challenger weight {self.weight:g}% — {self.reason}", "",
                 "| rule | verdict | evidence |", "|---|---|---|"]
        lines += [f"| {r.name} | {'pass' if r.passed else 'FAIL'} | {r.detail} |" for r in self.rules]
        return "\n".join(lines)


def _fmt(x: float, pct: bool = False) -> str:
    if x != x:
        return "n/a"
    return f"{x:.2%}" if pct else f"{x:.3f}"


def decide(
    weight: float,
    champion: VersionMetrics,
    challenger: VersionMetrics,
    challenger_probe: ProbeResult | None,
    champion_probe: ProbeResult | None,
    policy: CanaryPolicy = CanaryPolicy(),
) -> CanaryDecision:
    rules: list[Rule] = []
    rules.append(Rule(
        "error_rate", challenger.error_rate <= policy.max_error_rate,
        f"{challenger.errors}/{challenger.requests} = {_fmt(challenger.error_rate, True)} "
        f"(max {_fmt(policy.max_error_rate, True)})",
    ))
    p95 = challenger.p95_latency_s
    ceiling = policy.max_p95_latency_s
    if champion.p95_latency_s == champion.p95_latency_s and champion.requests:
        ceiling = min(ceiling, max(champion.p95_latency_s * policy.max_p95_latency_ratio, 0.05))
    rules.append(Rule(
        "p95_latency", not (p95 == p95) or p95 <= ceiling,
        f"{_fmt(p95)} s (max {_fmt(ceiling)} s; champion {_fmt(champion.p95_latency_s)} s)",
    ))
    conf_ok = True
    if challenger.mean_confidence == challenger.mean_confidence and champion.mean_confidence == champion.mean_confidence:
        conf_ok = challenger.mean_confidence >= policy.min_confidence_ratio * champion.mean_confidence
    rules.append(Rule(
        "mean_confidence", conf_ok,
        f"{_fmt(challenger.mean_confidence)} vs champion {_fmt(champion.mean_confidence)} "
        f"(min ratio {policy.min_confidence_ratio:g})",
    ))
    if challenger_probe is not None:
        # Against the champion measured on the same audio when there is one (a challenger that beats a weak
        # champion must not be blocked by an absolute figure the champion itself misses); the absolute ceiling
        # when the champion could not be measured.
        limit = policy.max_probe_wer
        if champion_probe is not None and champion_probe.utterances:
            limit = champion_probe.wer + policy.max_probe_wer_delta
        rules.append(Rule(
            "probe_wer", challenger_probe.failed_requests == 0 and challenger_probe.wer <= limit,
            f"{_fmt(challenger_probe.wer, True)} on {challenger_probe.utterances} utterances, "
            f"{challenger_probe.failed_requests} failed (max {_fmt(limit, True)}; champion "
            f"{_fmt(champion_probe.wer, True) if champion_probe else 'n/a'})",
        ))
    else:
        rules.append(Rule("probe_wer", False, "no probe result: the challenger could not be checked"))

    if any(not r.passed for r in rules):
        return CanaryDecision("rollback", 0.0, rules, "guardrail breached: " + ", ".join(r.name for r in rules if not r.passed))
    if challenger.requests < policy.min_requests:
        return CanaryDecision(
            "hold", weight, rules, f"{challenger.requests} live requests < {policy.min_requests}: not enough evidence yet"
        )
    nxt = policy.next_step(weight)
    if nxt is None:
        return CanaryDecision("promote", 0.0, rules, f"healthy at {weight:g}%: promote")
    return CanaryDecision("step", nxt, rules, f"healthy at {weight:g}%: step to {nxt:g}%")
