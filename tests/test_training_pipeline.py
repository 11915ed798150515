"""intake → features → asr_checkpoint → eval_report → promotion_gate → registered_model, as Dagster runs it,
on a tiny simulated corpus with a tiny model (the gate thresholds are set so a few training steps can pass or
fail them on purpose: this tests the wiring and the gate's two paths, not the model's quality)."""

from __future__ import annotations

import dagster as dg
import pytest

from speech_assets.simulation.speech import SimulationConfig, generate_batch
from speech_assets.defs.evaluation.assets import anchor_set, eval_report, promotion_gate
from speech_assets.defs.features.assets import features
from speech_assets.defs.intake.assets import audio_manifest, raw_audio
from speech_assets.defs.intake.partitions import intake_batches
from speech_assets.defs.intake.resources import LandingZoneResource
from speech_assets.defs.registry.assets import registered_model
from speech_assets.defs.serving.resources import ServingResource
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.registry.registry import ModelRegistry
from speech_assets.training.artifacts import MODEL_NAME

REPO = "speech-assets"
TINY_TRAIN = {"epochs": 1, "max_steps": 3, "hidden": 32, "layers": 1, "batch_size": 8, "seed": 3}
EVAL_FAST = {"min_utterances": 3, "min_speakers": 1, "bootstrap_resamples": 100, "baseline_utterances": 0, "rtf_utterances": 2}
LENIENT = {**EVAL_FAST, "wer_floor": 5.0, "slice_wer_floor": 5.0, "max_ece": 1.0, "wer_tolerance": 5.0, "slice_wer_tolerance": 5.0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    landing = root / "landing"
    generate_batch(landing / "day-01", SimulationConfig(n_utterances=48, seed=5, speakers_per_accent=4, workers=2))
    resources = {
        "store": VersionStoreResource(local_root=str(root / "store"), repository=REPO),
        "landing": LandingZoneResource(path=str(landing)),
        "serving": ServingResource(home=str(root / "serving"), bentoml_home=str(root / "bentoml"), port=0),
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(intake_batches.name, ["day-01"])
        for assets in ([raw_audio], [features]):
            assert dg.materialize(assets, partition_key="day-01", instance=instance, resources=resources).success
        assert dg.materialize([audio_manifest], instance=instance, resources=resources).success
    return resources


def _run(resources, eval_config, train_config=TINY_TRAIN, deploy: bool = False):
    from speech_assets.defs.serving.assets import asr_bento, asr_deployment
    from speech_assets.defs.training.assets import asr_checkpoint

    # deploy=True: the whole train_and_deploy selection (nothing may reach serving when the gate fails)
    with dg.instance_for_test() as instance:
        return dg.materialize(
            [asr_checkpoint, anchor_set, eval_report, promotion_gate, registered_model, *((asr_bento, asr_deployment) if deploy else ())],
            instance=instance,
            resources=resources,
            raise_on_error=False,
            run_config={"ops": {"asr_checkpoint": {"config": train_config}, "eval_report": {"config": eval_config}}},
        )


def _md(result, node):
    (mat,) = result.asset_materializations_for_node(node)
    return {k: v.value for k, v in mat.metadata.items()}


def test_gate_fails_a_first_model_below_the_floors_and_nothing_is_registered(corpus):
    result = _run(corpus, EVAL_FAST, deploy=True)  # default floors: WER <= 10 %; three steps cannot get there
    assert not result.success
    (gate,) = result.get_asset_check_evaluations()
    assert not gate.passed and gate.metadata["mode"].value == "first_model"
    assert "overall_wer_floor" in gate.metadata["failed_rules"].value
    for node in ("registered_model", "asr_bento", "asr_deployment"):
        assert result.asset_materializations_for_node(node) == []  # nothing registered, nothing deployed
    assert ModelRegistry(corpus["store"].open(), REPO).list_versions(MODEL_NAME) == []

    ckpt = _md(result, "asr_checkpoint")
    assert ckpt["seed"] == 3 and ckpt["steps"] == 3 and len(ckpt["checkpoint_digest"]) == 64
    report = _md(result, "eval_report")
    assert report["test_utterances"] > 0 and 0 <= report["ece_after"] <= 1
    assert "| accent |" in report["report"] or "accent" in report["report"]
    # the plots render on the asset page (markdown images), and the served decoder was evaluated
    assert report["plots"].count("](data:image/png;base64,") >= 1
    assert report["decoder"] == "lexicon" and ckpt["decoder"] == "lexicon+lm"


def test_gate_passes_registers_then_compares_the_next_model_with_the_champion(corpus):
    from speech_assets.governance.policy import GATE_FIELDS, ReleasePolicy, read_policy, save_policy

    # The first run takes its gate thresholds from the release policy stored in the store (no run-config override)
    gate = {k: v for k, v in LENIENT.items() if k in GATE_FIELDS and k not in ("wer_tolerance", "slice_wer_tolerance")}
    gate.update(wer_floor=1.0, slice_wer_floor=1.0)  # the policy's thresholds are fractions in [0, 1]
    policy_commit = save_policy(corpus["store"].open(), REPO, ReleasePolicy.from_json({"gate": gate}),
                                actor="test", reason="a 3-step model is only meant to exercise the wiring")
    first = _run(corpus, {k: v for k, v in EVAL_FAST.items() if k not in GATE_FIELDS})
    assert first.success
    evaluated = _md(first, "eval_report")
    used = read_policy(corpus["store"].open(), REPO, evaluated["release_policy_commit"])
    assert used.stored and used.policy.gate.wer_floor == 1.0 and evaluated["gate_overrides"] == {}
    assert policy_commit in {c.id for c in corpus["store"].open().log(REPO, used.commit)}
    reg = _md(first, "registered_model")
    assert reg["version"] == "1.0.0" and reg["stage"] == "production"

    second = _run(corpus, LENIENT, {**TINY_TRAIN, "seed": 4})  # a retrain: new weights, same features
    assert second.success
    (gate,) = second.get_asset_check_evaluations()
    assert gate.metadata["mode"].value == "challenger_vs_champion"
    assert gate.metadata["champion_version"].value == "1.0.0"
    # both models were scored on the real-speech anchor set, and the gate judged the challenger on it
    assert "anchor_wer_no_regression" in gate.metadata["decision"].value
    anchor = _md(second, "eval_report")
    assert anchor["anchor_utterances"] == 11 and 0.0 <= anchor["anchor_champion_wer"] and 0.0 <= anchor["anchor_wer"]
    assert "smoke alarm" in anchor["report"]
    second_reg = _md(second, "registered_model")
    assert second_reg["version"] == "1.1.0" and second_reg["stage"] == "canary"  # rolled out as a canary

    registry = ModelRegistry(corpus["store"].open(), REPO)
    assert registry.production(MODEL_NAME).version == "1.0.0" and registry.canary(MODEL_NAME).version == "1.1.0"
    lineage = registry.get(MODEL_NAME, "1.1.0").lineage
    assert lineage.seed == 4 and lineage.data_commits
    assert registry.verify_audit_chain(MODEL_NAME).ok
