"""drift_report and the retrain sensor through Dagster, on simulated batches: the training population stays
quiet, a new accent on a telephone channel drifts, and the sensor asks for one retrain of that data commit."""

from __future__ import annotations

import json

import dagster as dg
import pytest
import torch

from speech_assets.simulation.speech import SimulationConfig, generate_batch
from speech_assets.defs.features.assets import features
from speech_assets.defs.intake.assets import audio_manifest, raw_audio
from speech_assets.defs.intake.partitions import intake_batches
from speech_assets.defs.intake.resources import LandingZoneResource
from speech_assets.defs.monitoring.assets import drift_report
from speech_assets.defs.monitoring.resources import RetrainSettings
from speech_assets.defs.monitoring.sensors import retrain_sensor
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.features.logmel import FeatureConfig
from speech_assets.model.architecture import CTCModel, ModelConfig
from speech_assets.model.train import checkpoint_bytes
from speech_assets.storage.layout import reference_path
from speech_assets.registry.registry import ModelRegistry

REPO = "speech-assets"
# The reference here is one 60-utterance batch, whose vocabulary is a small part of the sentence bank: the OOV
# signal is reported but its threshold lifted (the demo's reference holds thousands of utterances).
DRIFT_CONFIG = {"ops": {"drift_report": {"config": {"oov_threshold": 1.0, "confidence_utterances": 40}}}}


def _ingest(instance, resources, batch: str) -> None:
    instance.add_dynamic_partitions(intake_batches.name, [batch])
    for assets in ([raw_audio], [features]):
        assert dg.materialize(assets, partition_key=batch, instance=instance, resources=resources).success
    assert dg.materialize([audio_manifest], instance=instance, resources=resources).success


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    landing = root / "landing"
    population = dict(accents=["us", "gb"], speakers_per_accent=4, workers=2, n_utterances=60)
    generate_batch(landing / "day-01", SimulationConfig(seed=5, channels={"clean": 0.8, "noisy": 0.2}, **population))
    generate_batch(landing / "day-02", SimulationConfig(seed=6, channels={"clean": 0.8, "noisy": 0.2}, **population))
    generate_batch(landing / "day-03", SimulationConfig(
        seed=7, accents=["us", "caribbean"], channels={"clean": 0.5, "telephone": 0.5}, speakers_per_accent=4,
        workers=2, n_utterances=60))
    resources = {
        "store": VersionStoreResource(local_root=str(root / "store"), repository=REPO),
        "landing": LandingZoneResource(path=str(landing)),
    }
    with dg.instance_for_test() as instance:
        _ingest(instance, resources, "day-01")
        # a production model trained on day-01 (tiny and untrained: drift does not need a good model)
        vs = resources["store"].open()
        torch.manual_seed(0)
        cfg = ModelConfig(conv_channels=4, hidden=16, layers=1)
        blob = checkpoint_bytes(CTCModel(cfg).state_dict(), cfg, {"feature_config": FeatureConfig().to_dict()})
        registry = ModelRegistry(vs, REPO)
        registry.register("asr", blob, data_commits=[vs.resolve(REPO, "main")], feature_config_hash="f",
                          vocabulary_hash="v", code_version="1", training_config={}, seed=0, eval_report_json=b"{}",
                          calibration_json={"temperature": 1.0}, actor="test")
        registry.set_stage("asr", "1.0.0", "production", actor="test", reason="first model")
        for batch in ("day-02", "day-03"):
            _ingest(instance, resources, batch)
        yield {"instance": instance, "resources": resources, "vs": vs}


def _report(world, batch: str) -> dict:
    result = dg.materialize([drift_report], partition_key=batch, instance=world["instance"],
                            resources=world["resources"], run_config=DRIFT_CONFIG)
    assert result.success
    (mat,) = result.asset_materializations_for_node("drift_report")
    return {k: v.value for k, v in mat.metadata.items()}


def test_the_training_population_is_quiet_and_a_new_accent_on_the_phone_drifts(world):
    same = _report(world, "day-02")
    assert same["status"] == "judged" and same["drifted"] is False, same["report"]
    assert same["reference_model"] == "1.0.0" and same["reference_batches"] == 1
    drifted = _report(world, "day-03")
    assert drifted["drifted"] is True and drifted["drift_score"] > 1.0, drifted["report"]
    for signal in ("unseen_accent_share", "unseen_channel_share", "logmel_bands_js"):
        assert signal in drifted["fired"], drifted["report"]
    assert drifted["signal/unseen_accent_share"] > 0.2 and "signal/confidence_psi" in drifted
    assert "| unseen_accent_share |" in drifted["report"] and "accent=caribbean (new)" in drifted["report"]
    # the reference is built once per model and kept in the store; the report too
    vs = world["vs"]
    assert vs.stat_object(REPO, "main", reference_path("1.0.0")).size_bytes > 0
    assert json.loads(vs.get_object(REPO, "main", "monitoring/drift/day-03.json"))["drifted"] is True
    inside = _report(world, "day-01")
    assert inside["status"].startswith("in the reference") and inside["drifted"] is False
    # the drifted batch got its drift test set in the same commit as its report; the quiet ones got none
    from speech_assets.intake.holdout import read_holdout

    plan = read_holdout(vs, REPO, "main", "day-03")
    assert plan is not None and ("accent", "caribbean") in {(s.column, s.value) for s in plan.drifted}
    assert drifted["drift_test_utterances"] == plan.test_utterances and "new speaker(s)" in drifted["drift_test_set"]
    assert read_holdout(vs, REPO, "main", "day-02") is None and "drift_test_set" not in same


def test_the_retrain_sensor_fires_once_for_the_drifted_commit(world):
    _report(world, "day-02")
    _report(world, "day-03")
    resources = {"store": world["resources"]["store"], "retrain": RetrainSettings(min_new_utterances=10**6)}
    ctx = dg.build_sensor_context(instance=world["instance"], resources=resources)
    result = retrain_sensor(ctx)
    (request,) = result.run_requests
    head = world["vs"].resolve(REPO, "main")
    assert request.run_key == f"retrain-{head[:16]}" and request.tags["speech_assets/trigger"] == "drift"
    assert "day-03" in request.tags["speech_assets/reason"]
    assert request.tags["speech_assets/drift_batch"] == "day-03"  # eval_report judges on its drift test set
    assert request.run_config["ops"]["asr_checkpoint"]["config"]["warm_start"] is True
    again = retrain_sensor(dg.build_sensor_context(instance=world["instance"], resources=resources,
                                                   cursor=result.cursor))
    assert isinstance(again, dg.SkipReason) and "hold" in again.skip_message
