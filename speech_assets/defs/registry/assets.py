"""`registered_model`: a challenger that passed the promotion gate, registered with semver and lineage.

A stage change the release policy gates (by default: production of a major version) needs a named approval
(`speech_assets.governance.approvals`).  Without one the version is still registered, as a candidate, and the run
fails saying what to run; the approval can also come with the run itself, as the run tag
`speech_assets/approved_by` (and optionally `speech_assets/approval_reason`).  Re-materializing after the approval
finds the registered candidate again (same checkpoint) and promotes it. The work is
`speech_assets.governance.release`'s.
"""

import dagster as dg

from speech_assets.defs.evaluation.assets import eval_report
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.governance.release import (
    APPROVAL_REASON_TAG,
    APPROVED_BY_TAG,
    ReleaseRefused,
    ReleaseRequest,
    release_challenger,
)
from speech_assets.training.artifacts import MODEL_NAME

# the run tags that carry an approval are part of this asset's interface (a launcher sets them)
__all__ = ["APPROVAL_REASON_TAG", "APPROVED_BY_TAG", "RegistrationConfig", "registered_model"]


class RegistrationConfig(dg.Config):
    promote_to: str = ReleaseRequest.promote_to  # "auto" | "canary" | "production" | "candidate" (ReleaseRequest)
    actor: str = ReleaseRequest.actor

    def to_domain(self) -> ReleaseRequest:
        return ReleaseRequest(**self.model_dump())


def _failure(refused: ReleaseRefused) -> dg.Failure:
    metadata = {**refused.facts, **{k: dg.MetadataValue.md(v) for k, v in refused.markdown.items()}}
    return dg.Failure(description=refused.description, metadata=metadata)


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
    try:
        released = release_challenger(store.open(), store.repository, config.to_domain(), run_id=context.run.run_id,
                                      run_tags=dict(context.run.tags), log=context.log)
    except ReleaseRefused as refused:
        raise _failure(refused) from None
    return dg.MaterializeResult(
        metadata={
            "model": MODEL_NAME,
            "version": released.version,
            "bump": released.bump,
            "stage": released.stage,
            "checkpoint_digest": released.checkpoint_digest,
            "data_commit": dg.MetadataValue.text(released.data_commit),
            "commit_out": dg.MetadataValue.text(released.commit_id),
            "dagster/uri": dg.MetadataValue.path(store.uri(released.commit_id, released.prefix)),
            "gate": dg.MetadataValue.md(released.decision.markdown()),
            "versions": released.versions,
            "approval": released.approval_message,
        }
    )
