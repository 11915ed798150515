"""Named approvals of gated stage changes, recorded in the platform audit trail.

    approve(store, repo, "asr", "2.0.0", "production", "alice", "reviewed the eval report", via="cli")
    check = check_stage_change(store, repo, policy, registry, "asr", "2.0.0", "production")
    if not check.satisfied: print(check.message)   # says exactly which command to run

An approval is an `approval` platform event (`audit/_platform/...-approval-<id>.json`) naming the approver, the
reason, the channel it came through (`cli` or `dagster-run:<run id>`), and the version's stage and registry commit
when it was given.  It approves one version for one target stage, nothing wider.  Whether it counts is decided
when the gated step runs, against the policy in force then: an approver removed from a rule's list no longer
counts, a rule that now asks for two approvals waits for a second name.

Not gated, on purpose: a canary's automatic rollback and the hand rollback (`python -m speech_assets models
rollback`).  Taking a misbehaving version out of service is the emergency action and must never wait for
anyone; it can only restore a version that already served production, and the registry's hash-chained trail
records who did it and why.

No Dagster here: the canary controller and `registered_model` call `check_stage_change`; the CLI calls `approve`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from speech_assets.storage.audit_log import APPROVAL, PlatformEvent, new_event, read_events, record_event
from speech_assets.governance.policy import GATED_STAGES, ApprovalRule, ReleasePolicy, load_policy
from speech_assets.registry.registry import ALLOWED_TRANSITIONS, ModelRegistry, Stage, UnknownVersionError, stages_path
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError, VersionStore


class ApprovalError(ValueError):
    """An approval that cannot be recorded (unknown version, approver not allowed, nothing to approve, ...)."""


@dataclass(frozen=True)
class Approval:
    model: str
    version: str
    to_stage: str
    approver: str
    reason: str
    via: str  # "cli" | "dagster-run:<run id>"
    ts: str
    event_id: str
    path: str

    @classmethod
    def from_event(cls, e: PlatformEvent) -> Approval:
        ev = e.evidence
        return cls(ev.get("model", ""), ev.get("version", ""), ev.get("to_stage", ""), e.actor,
                   ev.get("reason", ""), ev.get("via", ""), e.ts, e.event_id, e.path)


@dataclass(frozen=True)
class ApprovalCheck:
    required: bool
    satisfied: bool
    approvers: list[str] = field(default_factory=list)  # the approvals that count, by name
    message: str = ""
    needed: int = 0
    rule: str = ""  # the policy rule that applied, in words ("" when none)

    def to_dict(self) -> dict:
        return {"required": self.required, "satisfied": self.satisfied, "approvers": list(self.approvers),
                "needed": self.needed, "rule": self.rule, "message": self.message}


def approve_command(model: str, version: str, to_stage: str, approvers: tuple[str, ...] = ()) -> str:
    who = "NAME" if not approvers else "|".join(approvers)
    return f"python -m speech_assets approve {model} {version} --to {to_stage} --who {who} --why TEXT"


def _check_via(via: str) -> str:
    if via == "cli":
        return via
    if isinstance(via, str) and via.startswith("dagster-run:") and via.split(":", 1)[1].strip():
        return via
    raise ApprovalError(f"via must be 'cli' or 'dagster-run:<run id>', got {via!r}")


def approvals_for(store: VersionStore, repo: str, model: str, version: str, to_stage: str,
                  ref: str = DEFAULT_BRANCH) -> list[Approval]:
    """Every recorded approval of `model version -> to_stage`, oldest first."""
    out = []
    for e in read_events(store, repo, ref, action=APPROVAL):
        a = Approval.from_event(e)
        if (a.model, a.version, a.to_stage) == (model, version, to_stage):
            out.append(a)
    return out


def _never_in_production(store: VersionStore, repo: str, registry: ModelRegistry, model: str) -> bool:
    """True while no version of `model` has ever held production (the registry's own record of it)."""
    try:
        state = json.loads(store.get_object(repo, registry.branch, stages_path(model)))
    except NotFoundError:
        return True
    return not state.get("production_history")


def check_stage_change(store: VersionStore, repo: str, policy: ReleasePolicy, registry: ModelRegistry,
                       model: str, version: str, to_stage: str, *, gate_holds: Sequence[str] = ()) -> ApprovalCheck:
    """Does moving `model version` to `to_stage` need approvals under `policy`, and are they recorded?

    `gate_holds`: what the promotion gate could not judge about the release's trigger ("no held-out evidence
    for accent=x"); any hold makes a change to a gated stage need a named approval even where no policy rule
    asks for one (the policy's rule for the change, if any, says how many and from whom; else one, anyone named).

    Raises UnknownVersionError for a version that is not registered (there is nothing to decide about)."""
    mv = registry.get(model, version)
    bump = getattr(mv.bump, "value", str(mv.bump))
    subject = f"{model} {version} -> {to_stage}"
    if to_stage not in GATED_STAGES:
        return ApprovalCheck(False, True, message=f"{subject}: {to_stage} is never gated")
    rule = policy.approvals.rule_for(to_stage, bump)
    if gate_holds:
        rule = rule or ApprovalRule(to_stage, (bump,), 1, ())
        subject += " (held by the promotion gate: " + "; ".join(gate_holds) + ")"
    elif policy.approvals.bootstrap_exempt and to_stage == "production" and _never_in_production(
            store, repo, registry, model):
        return ApprovalCheck(False, True, message=f"{subject}: the first production model of {model} needs no "
                                                   "approval (bootstrap_exempt; the promotion gate's floors apply)")
    if rule is None:
        return ApprovalCheck(False, True, message=f"{subject}: no release-policy rule gates {to_stage} of a {bump} "
                                                   "version")
    names: list[str] = []
    for a in approvals_for(store, repo, model, version, to_stage):
        if a.approver not in names and (not rule.approvers or a.approver in rule.approvers):
            names.append(a.approver)
    satisfied = len(names) >= rule.approvals
    have = f"{len(names)} of {rule.approvals} approval{'s' if rule.approvals != 1 else ''}"
    if satisfied:
        message = f"{subject} ({bump}) approved by {', '.join(names)} ({have}; rule: {rule.describe()})"
    else:
        got = f" (so far: {', '.join(names)})" if names else ""
        message = (f"{subject} ({bump} version) awaits approval: {have} recorded{got}; rule: {rule.describe()}. "
                   f"Approve with: {approve_command(model, version, to_stage, rule.approvers)}")
    return ApprovalCheck(True, satisfied, names, message, rule.approvals, rule.describe())


def approve(store: VersionStore, repo: str, model: str, version: str, to_stage: str, approver: str, reason: str,
            via: str = "cli", *, policy: ReleasePolicy | None = None, run_id: str = "") -> Approval:
    """Record `approver`'s approval of `model version -> to_stage`; returns it.

    Refused (ApprovalError) when the version is not registered, cannot move to `to_stage` from where it is, the
    name or reason is empty, the approver is not on the rule's list, or the same name already approved it."""
    approver = (approver or "").strip()
    reason = (reason or "").strip()
    if not approver:
        raise ApprovalError("an approval needs the approver's name (--who)")
    if not reason:
        raise ApprovalError("an approval needs a reason (--why)")
    via = _check_via(via)
    if to_stage not in GATED_STAGES:
        raise ApprovalError(f"only changes to {', '.join(GATED_STAGES)} are gated; {to_stage!r} needs no approval")
    registry = ModelRegistry(store, repo)
    try:
        mv = registry.get(model, version)
    except UnknownVersionError:
        raise ApprovalError(f"{model} {version} is not a registered version; see `python -m speech_assets models "
                            f"list {model}`") from None
    except ValueError as exc:  # an invalid model name
        raise ApprovalError(str(exc)) from None
    current = mv.stage
    target = Stage(to_stage)
    if current is target:
        raise ApprovalError(f"{model} {version} is already {to_stage}; there is nothing to approve")
    if target not in ALLOWED_TRANSITIONS[current]:
        raise ApprovalError(f"{model} {version} is {current.value}; it cannot move to {to_stage}, so there is "
                            "nothing to approve")
    policy = policy or load_policy(store, repo)
    bump = getattr(mv.bump, "value", str(mv.bump))
    rule = policy.approvals.rule_for(to_stage, bump)
    if rule is not None and rule.approvers and approver not in rule.approvers:
        raise ApprovalError(f"{approver} may not approve this: the release policy's rule '{rule.describe()}' lists "
                            f"only {', '.join(rule.approvers)}")
    for earlier in approvals_for(store, repo, model, version, to_stage):
        if earlier.approver == approver:
            raise ApprovalError(f"{approver} already approved {model} {version} -> {to_stage} at {earlier.ts} "
                                f"(event {earlier.event_id}); a second approval must come from someone else")
    event = new_event(
        APPROVAL, approver, f"{model} {version} -> {to_stage}",
        f"{approver} approved {model} {version} -> {to_stage}: {reason}",
        {"model": model, "version": version, "to_stage": to_stage, "reason": reason, "via": via, "bump": bump,
         "stage_at_approval": current.value, "registry_commit": mv.commit_id,
         "rule": rule.describe() if rule else None},
    )
    record_event(store, repo, event, run_id=run_id or (via.split(":", 1)[1] if via != "cli" else ""))
    return Approval.from_event(event)
