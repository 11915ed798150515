"""`registered_model`: a challenger that passed the promotion gate, registered with semver and lineage.

A stage change the release policy gates (by default: production of a major version) needs a named approval
(`speech_assets.governance.approvals`).  Without one the version is still registered, as a candidate, and the run
fails saying what to run; the approval can also come with the run itself, as the run tag
`speech_assets/approved_by` (and optionally `speech_assets/approval_reason`).  Re-materializing after the approval
finds the registered candidate again (same checkpoint) and promotes it.
"""

import hashlib
import json

import dagster as dg

from speech_assets.defs.evaluation.assets import eval_report, promotion_decision
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.governance.approvals import ApprovalError, approve, check_stage_change
from speech_assets.governance.policy import load_policy
from speech_assets.model.tokenizer import VOCAB
from speech_assets.registry.registry import ModelRegistry, Stage
from speech_assets.registry.semver import NoChangeError
from speech_assets.training.artifacts import MODEL_NAME, latest_checkpoint

VOCABULARY_HASH = hashlib.sha256("".join(VOCAB).encode()).hexdigest()[:16]

APPROVED_BY_TAG = "speech_assets/approved_by"
APPROVAL_REASON_TAG = "speech_assets/approval_reason"


def approval_gate(vs, repo, registry: ModelRegistry, version: str, stage: str, tags: dict, run_id: str) -> dict:
    """The release policy's approval check for `version -> stage`, taking an approval from the run's tags when
    one is needed and missing.  Returns the check (as a dict, for the evidence); raises dg.Failure when the change
    still lacks its approvals."""
    policy = load_policy(vs, repo)
    check = check_stage_change(vs, repo, policy, registry, MODEL_NAME, version, stage)
    approver = (tags.get(APPROVED_BY_TAG) or "").strip()
    if check.required and not check.satisfied and approver:
        why = (tags.get(APPROVAL_REASON_TAG) or "").strip() or f"approved at the launch of run {run_id}"
        try:
            approve(vs, repo, MODEL_NAME, version, stage, approver, why, via=f"dagster-run:{run_id}",
                    policy=policy, run_id=run_id)
        except ApprovalError as exc:
            raise dg.Failure(description=f"the run's approval ({APPROVED_BY_TAG}={approver}) was refused: {exc}. "
                                         f"{MODEL_NAME} {version} stays a candidate.") from None
        check = check_stage_change(vs, repo, policy, registry, MODEL_NAME, version, stage)
    if check.required and not check.satisfied:
        raise dg.Failure(
            description=(
                f"{check.message}. {MODEL_NAME} {version} is registered and stays a candidate (not deployed); "
                f"after approving, re-materialize registered_model with promote_to={stage!r}, or launch it with "
                f"the run tag {APPROVED_BY_TAG}=NAME (and {APPROVAL_REASON_TAG}=TEXT)."
            ),
            metadata={"version": version, "to_stage": stage, "approvers": ", ".join(check.approvers) or "none"},
        )
    return check.to_dict()


def _awaiting_candidate(registry: ModelRegistry, checkpoint_sha256: str, feature_hash: str) -> str | None:
    """The candidate already registered for this very checkpoint (a run that stopped for an approval)."""
    for mv in reversed(registry.list_versions(MODEL_NAME)):
        if (mv.stage is Stage.CANDIDATE and mv.checkpoint_sha256 == checkpoint_sha256
                and mv.lineage.feature_config_hash == feature_hash and mv.lineage.vocabulary_hash == VOCABULARY_HASH):
            return mv.version
    return None


class RegistrationConfig(dg.Config):
    # "auto": the first model becomes production (nothing serves yet, and it passed the absolute floors); a
    # later one becomes the canary, which asr_deployment rolls out and the canary sensor promotes or rolls back.
    # "production" skips the canary (an operator's choice); "candidate" registers without deploying.
    promote_to: str = "auto"  # "auto" | "canary" | "production" | "candidate"
    actor: str = "dagster"


@dg.asset(
    deps=[eval_report],
    group_name="registry",
    owners=["team:speech-ml"],
    tags={"layer": "gold", "domain": "registry"},
    kinds={"python"},
    code_version="1",
    description=(
        "Registers the evaluated challenger in the model registry (semver: major for new features or vocabulary, "
        "minor for a retrain, patch for recalibration only) with its eval report, calibration and lineage. Runs "
        "only after the blocking promotion_gate passed, and re-checks the decision itself."
    ),
)
def registered_model(context: dg.AssetExecutionContext, config: RegistrationConfig, store: VersionStoreResource) -> dg.MaterializeResult:
    if config.promote_to not in ("auto", "canary", "production", "candidate"):
        raise dg.Failure(description=f"promote_to must be auto, canary, production or candidate, not {config.promote_to!r}")
    vs, repo = store.open(), store.repository
    pointer, decision = promotion_decision(vs, repo)
    if not decision.passed:  # defense in depth: the blocking check already stops this in the same run
        raise dg.Failure(description="promotion gate failed: " + ", ".join(decision.failed_rules), metadata={"decision": dg.MetadataValue.md(decision.markdown())})
    info, blob = latest_checkpoint(vs, repo)
    if info["digest"] != pointer["checkpoint_digest"]:
        raise dg.Failure(description="the latest evaluation is not of the latest checkpoint; re-run eval_report")
    registry = ModelRegistry(vs, repo)
    lineage = info["lineage"]
    actor = f"{config.actor}:{context.run.run_id[:8]}"
    try:
        registered = registry.register(
            MODEL_NAME,
            blob,
            data_commits=[lineage["data_commit"]],
            feature_config_hash=lineage["feature_config_digest"],
            vocabulary_hash=VOCABULARY_HASH,
            code_version=lineage["code_version"],
            training_config=info["train_config"],
            seed=int(lineage["seed"]),
            eval_report_json=vs.get_object(repo, "main", pointer["report"]),
            eval_report_html=vs.get_object(repo, "main", pointer["html"]),
            calibration_json={"kind": "temperature", "temperature": pointer["temperature"]},
            actor=actor,
            parent_version=lineage.get("parent_version"),
            reason=f"passed promotion gate ({decision.mode})",
        )
        version, bump = registered.version, getattr(registered.bump, "value", str(registered.bump))
    except NoChangeError:
        # A run that stopped for an approval left this checkpoint registered as a candidate: take it up again
        # (anything else identical to a registered version is still refused).
        version = _awaiting_candidate(registry, info["checkpoint_sha256"], lineage["feature_config_digest"])
        if version is None:
            raise
        bump = getattr(registry.get(MODEL_NAME, version).bump, "value", "")
        context.log.info(f"{MODEL_NAME} {version} is already registered for this checkpoint (a candidate): "
                         "taking it up again")
    stage = config.promote_to
    if stage == "auto":
        stage = "canary" if registry.production(MODEL_NAME) is not None else "production"
    approval = None
    if stage in ("production", "canary"):
        # Registered first, gated second: an approver approves a version number whose artifacts and eval report
        # are already in the registry (exactly what will be deployed), and a missing approval leaves a candidate,
        # which nothing deploys.
        approval = approval_gate(vs, repo, registry, version, stage, dict(context.run.tags), context.run.run_id)
        why = f"promotion gate passed ({decision.mode})" + (": rolled out as a canary" if stage == "canary" else "")
        registry.set_stage(MODEL_NAME, version, stage, actor, why,
                           evidence={"approval": approval} if approval["required"] else None)

    current = registry.get(MODEL_NAME, version)
    return dg.MaterializeResult(
        metadata={
            "model": MODEL_NAME,
            "version": version,
            "bump": bump,
            "stage": getattr(current.stage, "value", str(current.stage)),
            "checkpoint_digest": info["digest"],
            "data_commit": dg.MetadataValue.text(lineage["data_commit"]),
            "commit_out": dg.MetadataValue.text(current.commit_id),
            "dagster/uri": dg.MetadataValue.path(store.uri(current.commit_id, current.prefix)),
            "gate": dg.MetadataValue.md(decision.markdown()),
            "versions": len(registry.list_versions(MODEL_NAME)),
            "approval": (approval or {}).get("message", "no stage change"),
        }
    )
