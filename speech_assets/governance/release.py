"""Releasing a challenger that passed the promotion gate: register it, then move it to its stage under the release
policy's approvals. What `registered_model` runs; no Dagster here.

    released = release_challenger(store, repo, ReleaseRequest(promote_to="auto"), run_id=run_id, run_tags=tags)

A stage change the release policy gates (by default: production of a major version) needs a named approval
(`governance.approvals`). Without one the version is still registered, as a candidate, and `ReleaseRefused`
says what to run; the approval can also come with the run itself, as the run tag `APPROVED_BY_TAG` (and
optionally `APPROVAL_REASON_TAG`). Releasing again after the approval finds the registered candidate again (same
checkpoint) and promotes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from speech_assets.evaluation.promotion import PromotionDecision
from speech_assets.evaluation.run import promotion_decision
from speech_assets.governance.approvals import ApprovalError, approve, check_stage_change
from speech_assets.governance.policy import load_policy
from speech_assets.registry.registry import ModelRegistry, Stage
from speech_assets.registry.semver import NoChangeError
from speech_assets.storage.base import DEFAULT_BRANCH, VersionStore
from speech_assets.training.artifacts import MODEL_NAME, latest_checkpoint



def vocabulary_hash(info: dict, blob: bytes | None = None) -> str:
    """The output vocabulary's hash, from the checkpoint's card (its backend says it; CTC's alphabet, Whisper's
    BPE): a change of vocabulary is a major version, never mixed silently."""
    card = info.get("card")
    if card is None:  # a checkpoint record from before the backend port: every such model was the built-in CTC
        from speech_assets.model.ctc_backend import VOCABULARY_HASH

        return VOCABULARY_HASH
    return card["vocabulary_hash"]

# Run tags that carry an approval with the run (a Dagster run's tags; any mapping of strings here).
APPROVED_BY_TAG = "speech_assets/approved_by"
APPROVAL_REASON_TAG = "speech_assets/approval_reason"

PROMOTE_TO = ("auto", "canary", "production", "candidate")

_log = logging.getLogger(__name__)


class ReleaseRefused(Exception):
    """The challenger is not released (or not to the stage asked for); `description` says why and what to do.

    `facts` are plain values about the refusal, `markdown` named markdown documents (the gate's decision)."""

    def __init__(self, description: str, facts: Mapping[str, str] | None = None,
                 markdown: Mapping[str, str] | None = None):
        super().__init__(description)
        self.description = description
        self.facts = dict(facts or {})
        self.markdown = dict(markdown or {})


@dataclass(frozen=True)
class ReleaseRequest:
    # "auto": the first model becomes production (nothing serves yet, and it passed the absolute floors); a
    # later one becomes the canary, which asr_deployment rolls out and the canary sensor promotes or rolls back.
    # "production" skips the canary (an operator's choice); "candidate" registers without deploying.
    promote_to: str = "auto"  # "auto" | "canary" | "production" | "candidate"
    actor: str = "dagster"


@dataclass(frozen=True)
class Release:
    """The registered version and where it stands after the release."""

    version: str
    bump: str
    stage: str
    checkpoint_digest: str
    data_commit: str
    commit_id: str  # the registry commit of the version's current state
    prefix: str  # the version's folder in the store
    decision: PromotionDecision
    versions: int  # registered versions of the model, this one included
    approval: dict | None = field(default=None)  # the approval check of the stage change; None: no stage change

    @property
    def approval_message(self) -> str:
        return (self.approval or {}).get("message", "no stage change")


def approval_gate(store: VersionStore, repo: str, registry: ModelRegistry, version: str, stage: str,
                  run_tags: Mapping[str, str], run_id: str, gate_holds: Sequence[str] = ()) -> dict:
    """The release policy's approval check for `version -> stage`, taking an approval from the run's tags when
    one is needed and missing. Returns the check (as a dict, for the evidence); raises ReleaseRefused when the
    change still lacks its approvals."""
    policy = load_policy(store, repo)
    check = check_stage_change(store, repo, policy, registry, MODEL_NAME, version, stage, gate_holds=gate_holds)
    approver = (run_tags.get(APPROVED_BY_TAG) or "").strip()
    if check.required and not check.satisfied and approver:
        why = (run_tags.get(APPROVAL_REASON_TAG) or "").strip() or f"approved at the launch of run {run_id}"
        try:
            approve(store, repo, MODEL_NAME, version, stage, approver, why, via=f"dagster-run:{run_id}",
                    policy=policy, run_id=run_id)
        except ApprovalError as exc:
            raise ReleaseRefused(f"the run's approval ({APPROVED_BY_TAG}={approver}) was refused: {exc}. "
                                 f"{MODEL_NAME} {version} stays a candidate.") from None
        check = check_stage_change(store, repo, policy, registry, MODEL_NAME, version, stage, gate_holds=gate_holds)
    if check.required and not check.satisfied:
        raise ReleaseRefused(
            f"{check.message}. {MODEL_NAME} {version} is registered and stays a candidate (not deployed); "
            f"after approving, re-materialize registered_model with promote_to={stage!r}, or launch it with "
            f"the run tag {APPROVED_BY_TAG}=NAME (and {APPROVAL_REASON_TAG}=TEXT).",
            facts={"version": version, "to_stage": stage, "approvers": ", ".join(check.approvers) or "none"},
        )
    return check.to_dict()


def _awaiting_candidate(registry: ModelRegistry, checkpoint_sha256: str, feature_hash: str, vocab_hash: str
                        ) -> str | None:
    """The candidate already registered for this very checkpoint (a run that stopped for an approval)."""
    for mv in reversed(registry.list_versions(MODEL_NAME)):
        if (mv.stage is Stage.CANDIDATE and mv.checkpoint_sha256 == checkpoint_sha256
                and mv.lineage.feature_config_hash == feature_hash and mv.lineage.vocabulary_hash == vocab_hash):
            return mv.version
    return None


def _register(store, repo, registry: ModelRegistry, info: dict, blob: bytes, pointer: dict, decision, actor: str,
              log: logging.Logger) -> tuple[str, str]:
    """Register the checkpoint (or take up its awaiting candidate); returns (version, bump)."""
    lineage = info["lineage"]
    try:
        registered = registry.register(
            MODEL_NAME,
            blob,
            data_commits=[lineage["data_commit"]],
            feature_config_hash=lineage["feature_config_digest"],
            vocabulary_hash=vocabulary_hash(info, blob),
            code_version=lineage["code_version"],
            training_config=info["train_config"],
            seed=int(lineage["seed"]),
            eval_report_json=store.get_object(repo, DEFAULT_BRANCH, pointer["report"]),
            eval_report_html=store.get_object(repo, DEFAULT_BRANCH, pointer["html"]),
            calibration_json={"kind": pointer.get("calibration_method", "temperature"),
                              "temperature": pointer["temperature"]},
            actor=actor,
            parent_version=lineage.get("parent_version"),
            reason=f"passed promotion gate ({decision.mode})",
        )
        return registered.version, getattr(registered.bump, "value", str(registered.bump))
    except NoChangeError:
        # A run that stopped for an approval left this checkpoint registered as a candidate: take it up again
        # (anything else identical to a registered version is still refused).
        version = _awaiting_candidate(registry, info["checkpoint_sha256"], lineage["feature_config_digest"],
                                      vocabulary_hash(info, blob))
        if version is None:
            raise
        log.info(f"{MODEL_NAME} {version} is already registered for this checkpoint (a candidate): "
                 "taking it up again")
        return version, getattr(registry.get(MODEL_NAME, version).bump, "value", "")


def release_challenger(
    store: VersionStore, repo: str, request: ReleaseRequest, *, run_id: str, run_tags: Mapping[str, str] | None = None,
    log: logging.Logger = _log,
) -> Release:
    """Register the latest checkpoint if its latest evaluation passed the gate, and move it to its stage.

    Raises ReleaseRefused when `promote_to` is not one of PROMOTE_TO, the gate failed, the latest evaluation is
    not of the latest checkpoint, or the stage change lacks its approvals (the version stays a candidate)."""
    if request.promote_to not in PROMOTE_TO:
        raise ReleaseRefused(f"promote_to must be auto, canary, production or candidate, not {request.promote_to!r}")
    pointer, decision = promotion_decision(store, repo)
    if not decision.passed:  # defense in depth: the blocking check already stops this in the same run
        raise ReleaseRefused("promotion gate failed: " + ", ".join(decision.failed_rules),
                             markdown={"decision": decision.markdown()})
    info, blob = latest_checkpoint(store, repo)
    if info["digest"] != pointer["checkpoint_digest"]:
        raise ReleaseRefused("the latest evaluation is not of the latest checkpoint; re-run eval_report")
    registry = ModelRegistry(store, repo)
    actor = f"{request.actor}:{run_id[:8]}"
    version, bump = _register(store, repo, registry, info, blob, pointer, decision, actor, log)
    stage = request.promote_to
    if stage == "auto":
        stage = "canary" if registry.production(MODEL_NAME) is not None else "production"
    approval = None
    if stage in ("production", "canary"):
        # Registered first, gated second: an approver approves a version number whose artifacts and eval report
        # are already in the registry (exactly what will be deployed), and a missing approval leaves a candidate,
        # which nothing deploys.
        approval = approval_gate(store, repo, registry, version, stage, run_tags or {}, run_id, decision.holds)
        why = f"promotion gate passed ({decision.mode})" + (": rolled out as a canary" if stage == "canary" else "")
        registry.set_stage(MODEL_NAME, version, stage, actor, why,
                           evidence={"approval": approval} if approval["required"] else None)
    current = registry.get(MODEL_NAME, version)
    return Release(version, bump, getattr(current.stage, "value", str(current.stage)), info["digest"],
                   info["lineage"]["data_commit"], current.commit_id, current.prefix, decision,
                   len(registry.list_versions(MODEL_NAME)), approval)
