"""`registered_model` under the release policy, as Dagster runs it: the first production model goes through
unattended; a major version promoted to production without an approval stays a registered candidate and the run
fails saying what to run; the approval then comes as a run tag (recorded with the run id) or from the CLI.

Training and evaluating a real model would take minutes, so the store is seeded with what `asr_checkpoint` and
`eval_report` publish (a checkpoint pointer, an evaluation pointer with scored rows and a lenient gate policy):
`registered_model` only reads those pointers, the registry does not load the weights.
"""

from __future__ import annotations

import hashlib
import json

import dagster as dg
import pytest

from speech_assets.defs.registry.assets import APPROVAL_REASON_TAG, APPROVED_BY_TAG, registered_model
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.evaluation.promotion import PromotionPolicy
from speech_assets.governance.approvals import approvals_for, approve
from speech_assets.registry.registry import ModelRegistry, Stage
from speech_assets.storage.publish import publish_objects
from speech_assets.training.artifacts import CHECKPOINT_POINTER, EVALUATION_POINTER, MODEL_NAME, parquet_bytes

REPO = "speech-assets"
LENIENT = PromotionPolicy(wer_floor=5.0, slice_wer_floor=5.0, max_ece=1.0, min_utterances=2, min_speakers=1,
                          n_resamples=50)


def _seed(vs, weights: bytes, features: str) -> None:
    """What asr_checkpoint + eval_report leave on main for one trained checkpoint."""
    digest = hashlib.sha256(weights).hexdigest()
    info = {"digest": digest, "checkpoint": f"checkpoints/{digest[:16]}/checkpoint.pt",
            "checkpoint_sha256": digest, "train_config": {"steps": 1},
            "lineage": {"data_commit": "d" * 64, "feature_config_digest": features, "code_version": "test",
                        "seed": 1, "parent_version": None}}
    rows = [{"utterance_id": f"u{i}", "reference": "turn the lights on", "hypothesis": "turn the light on",
             "speaker": f"s{i % 3}", "accent": "us", "channel": "close", "snr_band": "clean",
             "duration_band": "short"} for i in range(6)]
    prefix = f"evaluations/{digest[:16]}"
    pointer = {"checkpoint_digest": digest, "report": f"{prefix}/report.json", "html": f"{prefix}/report.html",
               "rows": f"{prefix}/rows.parquet", "champion_rows": None, "champion_version": None,
               "temperature": 1.0, "ece": 0.05, "champion_ece": None, "policy": LENIENT.to_dict(),
               "data_commit": "d" * 64}
    publish_objects(vs, REPO, {
        info["checkpoint"]: weights, CHECKPOINT_POINTER: json.dumps(info).encode(),
        pointer["report"]: b'{"wer": 0.25}', pointer["html"]: b"<html></html>", pointer["rows"]: parquet_bytes(rows),
        EVALUATION_POINTER: json.dumps(pointer).encode(),
    }, branch_prefix="seed", message=f"seed {digest[:12]}", metadata={})


@pytest.fixture
def env(tmp_path):
    resource = VersionStoreResource(local_root=str(tmp_path / "store"), repository=REPO)
    vs = resource.open()
    yield vs, {"store": resource}
    vs.close()


def _materialize(resources, promote_to: str = "auto", tags: dict | None = None):
    return dg.materialize([registered_model], resources=resources, instance=dg.DagsterInstance.ephemeral(),
                          raise_on_error=False, tags=tags or {},
                          run_config={"ops": {"registered_model": {"config": {"promote_to": promote_to}}}})


def _failure(result) -> str:
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return event.step_failure_data.error.message + str(event.step_failure_data.user_failure_data.description)


def test_a_major_to_production_needs_an_approval_which_a_run_tag_can_carry(env):
    vs, resources = env
    registry = ModelRegistry(vs, REPO)
    _seed(vs, b"weights-1", "features-a")
    first = _materialize(resources)  # no production yet: the bootstrap exemption, unattended
    assert first.success and registry.production(MODEL_NAME).version == "1.0.0"

    _seed(vs, b"weights-2", "features-b")  # new features: a major version
    failed = _materialize(resources, "production")
    assert not failed.success
    message = _failure(failed)
    assert "asr 2.0.0 -> production (major version) awaits approval" in message
    assert "python -m speech_assets approve asr 2.0.0 --to production --who NAME --why TEXT" in message
    assert APPROVED_BY_TAG in message and "stays a candidate" in message
    # registered (so it can be approved by its number), not promoted, nothing deployable
    assert registry.get(MODEL_NAME, "2.0.0").stage is Stage.CANDIDATE
    assert registry.production(MODEL_NAME).version == "1.0.0" and registry.canary(MODEL_NAME) is None

    tagged = _materialize(resources, "production", {APPROVED_BY_TAG: "alice", APPROVAL_REASON_TAG: "read the report"})
    assert tagged.success
    assert registry.production(MODEL_NAME).version == "2.0.0"
    assert len(registry.list_versions(MODEL_NAME)) == 2  # the candidate was taken up again, no second number
    (approval,) = approvals_for(vs, REPO, MODEL_NAME, "2.0.0", "production")
    assert approval.approver == "alice" and approval.reason == "read the report"
    assert approval.via == f"dagster-run:{tagged.run_id}"
    (mat,) = tagged.asset_materializations_for_node("registered_model")
    assert "approved by alice" in mat.metadata["approval"].value
    promoted = [e for e in registry.audit_log(MODEL_NAME) if e.to_stage == "production"][-1]
    assert promoted.version == "2.0.0" and promoted.evidence["approval"]["approvers"] == ["alice"]


def test_an_approval_from_the_cli_lets_the_rerun_through_and_a_refused_tag_fails_clearly(env):
    vs, resources = env
    registry = ModelRegistry(vs, REPO)
    _seed(vs, b"weights-1", "features-a")
    assert _materialize(resources).success
    _seed(vs, b"weights-2", "features-b")
    assert not _materialize(resources, "production").success

    from speech_assets.governance.policy import ApprovalPolicy, ApprovalRule, ReleasePolicy, save_policy

    only_carol = ReleasePolicy(ApprovalPolicy(rules=(ApprovalRule("production", ("major",), 1, ("carol",)),)))
    save_policy(vs, REPO, only_carol, "lead", "majors need carol")
    refused = _materialize(resources, "production", {APPROVED_BY_TAG: "mallory"})
    assert not refused.success
    assert "(speech_assets/approved_by=mallory) was refused" in _failure(refused) and "lists only carol" in _failure(refused)
    assert registry.get(MODEL_NAME, "2.0.0").stage is Stage.CANDIDATE

    approve(vs, REPO, MODEL_NAME, "2.0.0", "production", "carol", "signed off")
    assert _materialize(resources, "production").success
    assert registry.production(MODEL_NAME).version == "2.0.0"


def test_auto_rolls_a_major_out_as_a_canary_the_controller_gates_its_promotion(env):
    vs, resources = env
    registry = ModelRegistry(vs, REPO)
    _seed(vs, b"weights-1", "features-a")
    assert _materialize(resources).success
    _seed(vs, b"weights-2", "features-b")
    result = _materialize(resources)  # auto: production exists, so a canary (the default policy gates production)
    assert result.success and registry.canary(MODEL_NAME).version == "2.0.0"
