"""`registered_model`: a challenger that passed the promotion gate, registered with semver and lineage."""

import hashlib
import json

import dagster as dg

from speech_assets.defs.evaluation.assets import eval_report, promotion_decision
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.model.tokenizer import VOCAB
from speech_assets.registry.registry import ModelRegistry
from speech_assets.training.artifacts import MODEL_NAME, latest_checkpoint

VOCABULARY_HASH = hashlib.sha256("".join(VOCAB).encode()).hexdigest()[:16]


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
    version = registry.register(
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
    stage = config.promote_to
    if stage == "auto":
        stage = "canary" if registry.production(MODEL_NAME) is not None else "production"
    if stage in ("production", "canary"):
        why = f"promotion gate passed ({decision.mode})" + (": rolled out as a canary" if stage == "canary" else "")
        registry.set_stage(MODEL_NAME, version.version, stage, actor, why)

    current = registry.get(MODEL_NAME, version.version)
    return dg.MaterializeResult(
        metadata={
            "model": MODEL_NAME,
            "version": version.version,
            "bump": getattr(version.bump, "value", str(version.bump)),
            "stage": getattr(current.stage, "value", str(current.stage)),
            "checkpoint_digest": info["digest"],
            "data_commit": dg.MetadataValue.text(lineage["data_commit"]),
            "commit_out": dg.MetadataValue.text(current.commit_id),
            "dagster/uri": dg.MetadataValue.path(store.uri(current.commit_id, current.prefix)),
            "gate": dg.MetadataValue.md(decision.markdown()),
            "versions": len(registry.list_versions(MODEL_NAME)),
        }
    )
