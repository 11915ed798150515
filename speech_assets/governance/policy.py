"""The release policy: which stage changes need a named human approval, how much live traffic a canary is given
before it may be promoted, and when it is rolled back.  Kept in the versioned store, so every change is a commit
with a named author, a reason and a `policy_change` audit event riding the same merge.

    governance/release_policy.json   (on main; the defaults below apply while it is absent)

    {
      "schema": 1,
      "approvals": {"bootstrap_exempt": true,
                    "rules": [{"to_stage": "production", "bumps": ["major"], "approvals": 1, "approvers": []}]},
      "risk":      {"canary_steps": [10.0, 50.0, 100.0], "min_requests": 20},
      "rollback":  {"max_error_rate": 0.02, "max_p95_latency_s": 2.0, "max_p95_latency_ratio": 2.0,
                    "min_confidence_ratio": 0.85, "max_probe_wer": 0.25, "max_probe_wer_delta": 0.02},
      "gate":      {"wer_floor": 0.10, "slice_wer_floor": 0.25, "max_ece": 0.10, "wer_tolerance": 0.005,
                    "slice_wer_tolerance": 0.02, "ece_tolerance": 0.02, "min_utterances": 30, "min_speakers": 3},
      "rollout":   {"mode": "canary", "bake_window_s": 900.0, "bake_min_requests": 20, "min_effect": 0.02,
                    "power": 0.8, "alpha": 0.05, "ab_split": 50.0, "ab_looks": 4}
    }

Only what something enforces is in here:

* `approvals` — checked by `speech_assets.governance.approvals.check_stage_change`, which the canary controller
  (before the challenger takes all traffic or is promoted) and `registered_model` (before it sets a stage) call;
* `gate` — the offline promotion gate's thresholds (`eval_report` → `promotion_gate`): the first model's absolute
  WER/calibration floors, how much worse than the champion a challenger may be (overall, per slice, calibration),
  and how large a slice must be to be gated. A value set in `eval_report`'s run config overrides it for that run;
* `risk` and `rollback` — the canary controller's `CanaryPolicy` (`to_canary_policy`): the traffic steps and the
  evidence needed per step, and the guardrails whose breach rolls the challenger back at once.  The serving
  resource may still override single fields for one deployment (tests do); otherwise the stored policy decides;
* `rollout` — how a release is compared and watched (`RolloutPolicy`): canary or A/B, the minimum WER effect the
  comparison must be able to detect at `power` and `alpha` (`evaluation.power` sizes the sample from it), the A/B
  split and its planned number of looks, and the bake window after a promotion (`serving.bake`, with the
  `rollback` guardrails).

No Dagster here; the `policy` CLI (`policy_cli.py`) and the sensors are the faces of it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from speech_assets.evaluation.promotion import PromotionPolicy
from speech_assets.serving.bake import BakePolicy
from speech_assets.serving.canary import CanaryPolicy
from speech_assets.storage.audit_log import POLICY_CHANGE, new_event, stage_event
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError, VersionStore
from speech_assets.storage.layout import POLICY_PATH  # the policy CLI and tests name the file through here too
from speech_assets.storage.publish import branch_transaction

SCHEMA_VERSION = 1

# Stage changes a rule may gate: the ones that put a version in front of users.  Archiving and hand rollback
# are not gated on purpose (they take a version out of service, which must never wait for anyone).
GATED_STAGES = ("canary", "production")
# The version's bump as the registry classified it (speech_assets.registry.semver.Bump).
BUMPS = ("initial", "major", "minor", "patch")


class PolicyError(ValueError):
    """The policy document is invalid; `problems` lists every problem found, each with its JSON path."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid release policy:\n  " + "\n  ".join(self.problems))


# -- the typed policy -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApprovalRule:
    to_stage: str  # "production" | "canary"
    bumps: tuple[str, ...]  # which versions the rule gates, by their semver bump
    approvals: int = 1  # distinct named approvers needed
    approvers: tuple[str, ...] = ()  # who may approve; empty = anyone, as long as they are named

    def matches(self, to_stage: str, bump: str) -> bool:
        return to_stage == self.to_stage and bump in self.bumps

    def describe(self) -> str:
        who = f" by {', '.join(self.approvers)}" if self.approvers else ""
        return (f"{self.to_stage} of a {'/'.join(self.bumps)} version needs {self.approvals} "
                f"approval{'s' if self.approvals != 1 else ''}{who}")

    def to_json(self) -> dict[str, Any]:
        return {"to_stage": self.to_stage, "bumps": list(self.bumps), "approvals": self.approvals,
                "approvers": list(self.approvers)}


@dataclass(frozen=True)
class ApprovalPolicy:
    # The first production model of a name (nothing of it has ever been in production) needs no approval: there
    # is no production behaviour it could regress, and the promotion gate's absolute floors (WER, per-slice WER,
    # calibration, on enough test data) still apply to it; without this the unattended demo (1.0.0, then the
    # minor 1.1.0) could never start.  Set it to false to let the rules decide the first promotion too.
    bootstrap_exempt: bool = True
    rules: tuple[ApprovalRule, ...] = (ApprovalRule("production", ("major",), 1, ()),)

    def rule_for(self, to_stage: str, bump: str) -> ApprovalRule | None:
        for rule in self.rules:  # validation guarantees at most one match
            if rule.matches(to_stage, bump):
                return rule
        return None

    def to_json(self) -> dict[str, Any]:
        return {"bootstrap_exempt": self.bootstrap_exempt, "rules": [r.to_json() for r in self.rules]}


@dataclass(frozen=True)
class RiskPolicy:
    """How much exposure a canary gets, and how much evidence each step needs before the next."""

    canary_steps: tuple[float, ...] = CanaryPolicy.steps  # challenger traffic percent, ending at 100
    min_requests: int = CanaryPolicy.min_requests  # live requests per step before it may move on

    def to_json(self) -> dict[str, Any]:
        return {"canary_steps": list(self.canary_steps), "min_requests": self.min_requests}


@dataclass(frozen=True)
class RollbackPolicy:
    """The canary's guardrails: a breach of any rolls the challenger back at the next tick."""

    max_error_rate: float = CanaryPolicy.max_error_rate
    max_p95_latency_s: float = CanaryPolicy.max_p95_latency_s
    max_p95_latency_ratio: float = CanaryPolicy.max_p95_latency_ratio
    min_confidence_ratio: float = CanaryPolicy.min_confidence_ratio
    max_probe_wer: float = CanaryPolicy.max_probe_wer
    max_probe_wer_delta: float = CanaryPolicy.max_probe_wer_delta

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _ROLLBACK_FIELDS}


_ROLLBACK_FIELDS = ("max_error_rate", "max_p95_latency_s", "max_p95_latency_ratio", "min_confidence_ratio",
                    "max_probe_wer", "max_probe_wer_delta")


ROLLOUT_MODES = ("canary", "ab")


@dataclass(frozen=True)
class RolloutPolicy:
    """How a release is compared with the champion and watched after it wins."""

    mode: str = "canary"  # "canary": stepped traffic with guardrails; "ab": a fixed split and a sequential test
    bake_window_s: float = BakePolicy.window_s  # after a promotion, how long the new model is still on probation
    bake_min_requests: int = BakePolicy.min_requests  # live requests it must serve before the bake may end
    min_effect: float = 0.02  # the smallest WER change (absolute) the comparison must be able to detect
    power: float = 0.8  # at this power ...
    alpha: float = 0.05  # ... and this two-sided significance level
    ab_split: float = 50.0  # A/B mode: percent of traffic to the challenger, fixed for the whole test
    ab_looks: int = 4  # A/B mode: planned analyses (O'Brien-Fleming alpha spending over them)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _ROLLOUT_FIELDS}


_ROLLOUT_FIELDS = ("mode", "bake_window_s", "bake_min_requests", "min_effect", "power", "alpha", "ab_split",
                   "ab_looks")


_GATE_FLOATS = ("wer_floor", "slice_wer_floor", "max_ece", "wer_tolerance", "slice_wer_tolerance", "ece_tolerance",
                "calibration_tolerance")
_GATE_INTS = ("min_utterances", "min_speakers")
GATE_FIELDS = _GATE_FLOATS + _GATE_INTS


@dataclass(frozen=True)
class GatePolicy:
    """The promotion gate's risk thresholds (defaults: `PromotionPolicy`'s), WER and ECE as fractions."""

    wer_floor: float = PromotionPolicy.wer_floor
    slice_wer_floor: float = PromotionPolicy.slice_wer_floor
    max_ece: float = PromotionPolicy.max_ece
    wer_tolerance: float = PromotionPolicy.wer_tolerance
    slice_wer_tolerance: float = PromotionPolicy.slice_wer_tolerance
    ece_tolerance: float = PromotionPolicy.ece_tolerance
    calibration_tolerance: float = PromotionPolicy.calibration_tolerance  # a calibration map that worsens ECE by more ships as identity
    min_utterances: int = PromotionPolicy.min_utterances
    min_speakers: int = PromotionPolicy.min_speakers

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in GATE_FIELDS}


@dataclass(frozen=True)
class ReleasePolicy:
    approvals: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    risk: RiskPolicy = field(default_factory=RiskPolicy)
    rollback: RollbackPolicy = field(default_factory=RollbackPolicy)
    gate: GatePolicy = field(default_factory=GatePolicy)
    rollout: RolloutPolicy = field(default_factory=RolloutPolicy)

    def to_canary_policy(self) -> CanaryPolicy:
        return CanaryPolicy(steps=tuple(self.risk.canary_steps), min_requests=self.risk.min_requests,
                            **{k: getattr(self.rollback, k) for k in _ROLLBACK_FIELDS})

    def to_bake_policy(self) -> BakePolicy:
        """The bake guard after a promotion: the rollout's window, the canary's guardrails."""
        rb = self.rollback
        return BakePolicy(self.rollout.bake_window_s, self.rollout.bake_min_requests, rb.max_error_rate,
                          rb.max_p95_latency_s, rb.max_p95_latency_ratio, rb.max_probe_wer, rb.max_probe_wer_delta)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, "approvals": self.approvals.to_json(), "risk": self.risk.to_json(),
                "rollback": self.rollback.to_json(), "gate": self.gate.to_json(), "rollout": self.rollout.to_json()}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), indent=2, sort_keys=True).encode() + b"\n"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @classmethod
    def from_json(cls, value: Any) -> ReleasePolicy:
        return _parse(value)

    @classmethod
    def from_bytes(cls, data: bytes | str) -> ReleasePolicy:
        try:
            value = json.loads(data)
        except json.JSONDecodeError as exc:
            raise PolicyError([f"not valid JSON: {exc}"]) from None
        return _parse(value)


DEFAULT_POLICY = ReleasePolicy()


# -- parsing with every problem reported --------------------------------------------------------------------
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_keys(obj: Mapping[str, Any], where: str, allowed: tuple[str, ...], problems: list[str]) -> None:
    # A misspelt key silently falling back to a default would weaken a guardrail without anyone noticing.
    for key in obj:
        if key not in allowed:
            problems.append(f"{where}.{key}: unknown key (allowed: {', '.join(allowed)})")


def _section(value: Mapping[str, Any], key: str, problems: list[str]) -> Mapping[str, Any]:
    section = value.get(key, {})
    if not isinstance(section, Mapping):
        problems.append(f"{key}: must be an object, got {type(section).__name__}")
        return {}
    return section


def _number(section: Mapping[str, Any], where: str, key: str, default: float, problems: list[str], *,
            low: float | None = None, high: float | None = None, low_open: bool = False) -> float:
    v = section.get(key, default)
    if not _is_number(v):
        problems.append(f"{where}.{key}: must be a finite number, got {v!r}")
        return default
    if low is not None and (v <= low if low_open else v < low):
        problems.append(f"{where}.{key}: must be {'>' if low_open else '>='} {low:g}, got {v!r}")
    if high is not None and v > high:
        problems.append(f"{where}.{key}: must be <= {high:g}, got {v!r}")
    return float(v)


def _parse_rule(raw: Any, where: str, problems: list[str]) -> ApprovalRule | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: must be an object, got {type(raw).__name__}")
        return None
    _check_keys(raw, where, ("to_stage", "bumps", "approvals", "approvers"), problems)
    count = len(problems)
    to_stage = raw.get("to_stage")
    if to_stage not in GATED_STAGES:
        problems.append(f"{where}.to_stage: must be one of {', '.join(GATED_STAGES)}, got {to_stage!r}")
    bumps = raw.get("bumps")
    if not isinstance(bumps, list) or not bumps or not all(isinstance(b, str) for b in bumps):
        problems.append(f"{where}.bumps: must be a non-empty list of {', '.join(BUMPS)}, got {bumps!r}")
        bumps = []
    else:
        for b in bumps:
            if b not in BUMPS:
                problems.append(f"{where}.bumps: unknown bump {b!r} (use {', '.join(BUMPS)})")
        if len(set(bumps)) != len(bumps):
            problems.append(f"{where}.bumps: listed twice: {sorted(b for b in set(bumps) if bumps.count(b) > 1)}")
    approvals = raw.get("approvals", 1)
    if not isinstance(approvals, int) or isinstance(approvals, bool) or approvals < 1:
        problems.append(f"{where}.approvals: must be an integer >= 1, got {approvals!r}")
        approvals = 1
    approvers = raw.get("approvers", [])
    if not isinstance(approvers, list) or not all(isinstance(a, str) and a.strip() for a in approvers):
        problems.append(f"{where}.approvers: must be a list of non-empty names ([] = anyone named), got {approvers!r}")
        approvers = []
    else:
        approvers = [a.strip() for a in approvers]
        if len(set(approvers)) != len(approvers):
            problems.append(f"{where}.approvers: a name is listed twice")
        elif approvers and approvals > len(approvers):
            problems.append(f"{where}.approvals: {approvals} approvals can never be reached with "
                            f"{len(approvers)} listed approver(s)")
    if len(problems) != count:
        return None
    return ApprovalRule(to_stage, tuple(bumps), approvals, tuple(approvers))


def _parse(value: Any) -> ReleasePolicy:
    problems: list[str] = []
    if not isinstance(value, Mapping):
        raise PolicyError([f"the policy must be a JSON object, got {type(value).__name__}"])
    _check_keys(value, "$", ("schema", "approvals", "risk", "rollback", "gate", "rollout"), problems)
    schema = value.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION:
        problems.append(f"schema: this code reads schema {SCHEMA_VERSION}, got {schema!r}")

    # approvals
    appr = _section(value, "approvals", problems)
    _check_keys(appr, "approvals", ("bootstrap_exempt", "rules"), problems)
    exempt = appr.get("bootstrap_exempt", ApprovalPolicy.bootstrap_exempt)
    if not isinstance(exempt, bool):
        problems.append(f"approvals.bootstrap_exempt: must be true or false, got {exempt!r}")
    raw_rules = appr.get("rules", [r.to_json() for r in ApprovalPolicy.rules])
    rules: list[ApprovalRule] = []
    if not isinstance(raw_rules, list):
        problems.append(f"approvals.rules: must be a list, got {type(raw_rules).__name__}")
    else:
        for i, raw in enumerate(raw_rules):
            rule = _parse_rule(raw, f"approvals.rules[{i}]", problems)
            if rule is not None:
                rules.append(rule)
        # One stage change must fall under at most one rule, or "how many approvals, from whom" is ambiguous.
        for i, a in enumerate(rules):
            for b in rules[i + 1:]:
                both = sorted(set(a.bumps) & set(b.bumps))
                if a.to_stage == b.to_stage and both:
                    problems.append(f"approvals.rules: two rules gate {a.to_stage} of {', '.join(both)} versions; "
                                    "merge them into one")

    # risk
    risk = _section(value, "risk", problems)
    _check_keys(risk, "risk", ("canary_steps", "min_requests"), problems)
    steps = risk.get("canary_steps", list(RiskPolicy.canary_steps))
    if (not isinstance(steps, list) or not steps or not all(_is_number(s) for s in steps)
            or any(s <= 0 for s in steps) or any(b <= a for a, b in zip(steps, steps[1:])) or steps[-1] != 100):
        problems.append("risk.canary_steps: must be percentages > 0, strictly increasing, ending at 100; "
                        f"got {steps!r}")
        steps = list(RiskPolicy.canary_steps)
    min_requests = risk.get("min_requests", RiskPolicy.min_requests)
    if not isinstance(min_requests, int) or isinstance(min_requests, bool) or min_requests < 1:
        problems.append(f"risk.min_requests: must be an integer >= 1, got {min_requests!r}")
        min_requests = RiskPolicy.min_requests

    # rollback
    rb = _section(value, "rollback", problems)
    _check_keys(rb, "rollback", _ROLLBACK_FIELDS, problems)
    defaults = RollbackPolicy()
    rollback = RollbackPolicy(
        max_error_rate=_number(rb, "rollback", "max_error_rate", defaults.max_error_rate, problems, low=0, high=1),
        max_p95_latency_s=_number(rb, "rollback", "max_p95_latency_s", defaults.max_p95_latency_s, problems,
                                  low=0, low_open=True),
        max_p95_latency_ratio=_number(rb, "rollback", "max_p95_latency_ratio", defaults.max_p95_latency_ratio,
                                      problems, low=0, low_open=True),
        min_confidence_ratio=_number(rb, "rollback", "min_confidence_ratio", defaults.min_confidence_ratio,
                                     problems, low=0),
        max_probe_wer=_number(rb, "rollback", "max_probe_wer", defaults.max_probe_wer, problems, low=0),
        max_probe_wer_delta=_number(rb, "rollback", "max_probe_wer_delta", defaults.max_probe_wer_delta, problems,
                                    low=0),
    )
    # gate
    gt = _section(value, "gate", problems)
    _check_keys(gt, "gate", GATE_FIELDS, problems)
    gate_defaults = GatePolicy()
    gate_values: dict[str, Any] = {
        k: _number(gt, "gate", k, getattr(gate_defaults, k), problems, low=0, high=1) for k in _GATE_FLOATS
    }
    for k in _GATE_INTS:
        v = gt.get(k, getattr(gate_defaults, k))
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            problems.append(f"gate.{k}: must be an integer >= 1, got {v!r}")
            v = getattr(gate_defaults, k)
        gate_values[k] = v
    rollout = _parse_rollout(_section(value, "rollout", problems), problems)
    if problems:
        raise PolicyError(problems)
    return ReleasePolicy(
        ApprovalPolicy(exempt, tuple(rules)),
        RiskPolicy(tuple(float(s) for s in steps), min_requests),
        rollback,
        GatePolicy(**gate_values),
        rollout,
    )


def _parse_rollout(ro: Mapping[str, Any], problems: list[str]) -> RolloutPolicy:
    _check_keys(ro, "rollout", _ROLLOUT_FIELDS, problems)
    d = RolloutPolicy()
    mode = ro.get("mode", d.mode)
    if mode not in ROLLOUT_MODES:
        problems.append(f"rollout.mode: must be one of {', '.join(ROLLOUT_MODES)}, got {mode!r}")
        mode = d.mode
    ints = {}
    for k, low in (("bake_min_requests", 0), ("ab_looks", 1)):
        v = ro.get(k, getattr(d, k))
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            problems.append(f"rollout.{k}: must be an integer >= {low}, got {v!r}")
            v = getattr(d, k)
        ints[k] = v
    window = _number(ro, "rollout", "bake_window_s", d.bake_window_s, problems, low=0)
    effect = _number(ro, "rollout", "min_effect", d.min_effect, problems, low=0, low_open=True, high=1)
    power = _number(ro, "rollout", "power", d.power, problems, low=0, low_open=True, high=0.999)
    alpha = _number(ro, "rollout", "alpha", d.alpha, problems, low=0, low_open=True, high=0.5)
    split = _number(ro, "rollout", "ab_split", d.ab_split, problems, low=0, low_open=True, high=99)
    return RolloutPolicy(mode, window, ints["bake_min_requests"], effect, power, alpha, split, ints["ab_looks"])


# -- in the store -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredPolicy:
    policy: ReleasePolicy
    commit: str  # the commit it was read at
    stored: bool  # False: no policy file at that commit, the defaults apply


@dataclass(frozen=True)
class PolicyRevision:
    commit: str  # the commit on main's first-parent line that changed the policy file
    ts: float  # unix seconds
    actor: str
    reason: str
    sha256: str | None  # of the policy file after the change (None: it was removed)
    message: str


def read_policy(store: VersionStore, repo: str, ref: str = DEFAULT_BRANCH) -> StoredPolicy:
    """The policy at `ref` and the commit it was read at; the defaults when none is stored.

    A stored policy that no longer parses raises PolicyError: silently falling back to the defaults would drop
    whatever the team had tightened."""
    commit = store.resolve(repo, ref)
    try:
        data = store.get_object(repo, commit, POLICY_PATH)
    except NotFoundError:
        return StoredPolicy(DEFAULT_POLICY, commit, False)
    try:
        return StoredPolicy(ReleasePolicy.from_bytes(data), commit, True)
    except PolicyError as exc:
        raise PolicyError([f"{POLICY_PATH} at {commit[:12]}: {p}" for p in exc.problems]) from None


def load_policy(store: VersionStore, repo: str, ref: str = DEFAULT_BRANCH) -> ReleasePolicy:
    return read_policy(store, repo, ref).policy


def save_policy(store: VersionStore, repo: str, policy: ReleasePolicy, actor: str, reason: str) -> str:
    """Write `policy` to main with its `policy_change` audit event, in one merge; returns the merge commit.

    Refuses an unnamed actor, an empty reason and a save that changes nothing (a commit that changes nothing
    would make the history say the policy changed when it did not)."""
    if not isinstance(policy, ReleasePolicy):
        raise TypeError(f"expected a ReleasePolicy, got {type(policy).__name__}")
    if not reason or not reason.strip():
        raise ValueError("a policy change needs a reason (--why)")
    policy = ReleasePolicy.from_json(policy.to_json())  # a dataclass built in code is validated like a file
    base = store.resolve(repo, DEFAULT_BRANCH)
    current = read_policy(store, repo, base)
    if current.stored and current.policy.to_bytes() == policy.to_bytes():
        raise ValueError(f"the stored release policy (commit {base[:12]}) is already exactly this; nothing saved")
    data = policy.to_bytes()
    event = new_event(  # raises on an unnamed actor, before anything is written
        POLICY_CHANGE, actor, POLICY_PATH, f"release policy changed: {reason.strip()}",
        {"path": POLICY_PATH, "sha256": hashlib.sha256(data).hexdigest(),
         "previous_sha256": current.policy.sha256 if current.stored else None, "base_commit": base,
         "reason": reason.strip(), "policy": policy.to_json()},
    )
    metadata = {"audit_event": event.event_id, "action": POLICY_CHANGE, "actor": event.actor,
                "reason": reason.strip(), "release_policy_sha256": event.evidence["sha256"]}
    # The change and its event ride one branch and land in one merge: main never has one without the other.
    with branch_transaction(store, repo, f"policy-{event.event_id}", base=base) as tx:
        tx.put(POLICY_PATH, data, content_type="application/json")
        stage_event(store, repo, tx.branch, event)
        tx.commit(f"release policy: {reason.strip()}"[:200], metadata)
        return tx.merge(f"release policy changed by {event.actor}", metadata)


def policy_history(store: VersionStore, repo: str, ref: str = DEFAULT_BRANCH,
                   limit: int | None = None) -> list[PolicyRevision]:
    """Commits on `ref`'s first-parent line (main's own history: each merge that landed there) that changed the
    policy file, newest first.  Found by the file's checksum, so a change made by any means shows, not only
    those made through `save_policy`; `limit` bounds how many commits are walked."""
    commits = {c.id: c for c in store.log(repo, ref)}
    line = []
    cid = store.resolve(repo, ref)
    while cid and (limit is None or len(line) < limit):
        c = commits[cid]
        line.append(c)
        cid = c.parents[0] if c.parents else None

    def checksum(commit_id: str) -> str | None:
        try:
            return store.stat_object(repo, commit_id, POLICY_PATH).checksum
        except NotFoundError:
            return None

    out = []
    sums = [checksum(c.id) for c in line]
    for i, c in enumerate(line):
        before = sums[i + 1] if i + 1 < len(line) else (checksum(c.parents[0]) if c.parents else None)
        if sums[i] != before:
            out.append(PolicyRevision(c.id, c.creation_date, c.metadata.get("actor", ""),
                                      c.metadata.get("reason", ""), sums[i], c.message))
    return out
