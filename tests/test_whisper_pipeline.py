"""Bring your own pretrained model, as Dagster runs it: a CTC champion is served, then Whisper tiny.en is fine-tuned
by `asr_checkpoint` (backend whisper, encoder frozen, a few steps on cached encoder outputs), evaluated against the
CTC champion (test split and the real-speech anchor set), registered, and rolled out as the canary beside the CTC
champion on one real BentoML server: each side answers with its own backend.

The gate is lenient on purpose (a few steps make no good model): this tests the wiring across backends, not
accuracy (bench/asr_models.py measures that).
"""

from __future__ import annotations

import time

import dagster as dg
import pytest

from speech_assets.defs.evaluation.assets import anchor_set, eval_report, promotion_gate
from speech_assets.defs.features.assets import features
from speech_assets.defs.intake.assets import audio_manifest, raw_audio
from speech_assets.defs.intake.partitions import intake_batches
from speech_assets.defs.intake.resources import LandingZoneResource
from speech_assets.defs.registry.assets import registered_model
from speech_assets.defs.serving.assets import asr_bento, asr_deployment
from speech_assets.defs.serving.resources import ServingResource
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.defs.training.assets import asr_checkpoint
from speech_assets.model.backend import backend_name_of
from speech_assets.registry.registry import ModelRegistry
from speech_assets.simulation.speech import SimulationConfig, generate_batch
from speech_assets.training.artifacts import MODEL_NAME
from tests.serving.test_service import post

pytestmark = pytest.mark.slow

REPO = "speech-assets"
CTC_TINY = {"epochs": 1, "max_steps": 3, "hidden": 32, "layers": 1, "batch_size": 8, "seed": 3, "lm_order": 0}
WHISPER_TINY = {"backend": "whisper", "seed": 1, "warm_start": True,  # the champion is CTC: starts from tiny.en
                "whisper": {"base_model": "tiny.en", "max_steps": 3, "batch_size": 4, "max_train_utterances": 8,
                            "dev_utterances": 2}}
LENIENT = {"min_utterances": 3, "min_speakers": 1, "bootstrap_resamples": 100, "baseline_utterances": 0,
           "rtf_utterances": 2, "wer_floor": 5.0, "slice_wer_floor": 5.0, "max_ece": 1.0, "wer_tolerance": 5.0,
           "slice_wer_tolerance": 5.0, "ece_tolerance": 1.0}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("whisper_pipeline")
    landing = root / "landing"
    generate_batch(landing / "day-01", SimulationConfig(n_utterances=48, seed=5, speakers_per_accent=4, workers=2))
    resources = {
        "store": VersionStoreResource(local_root=str(root / "store"), repository=REPO),
        "landing": LandingZoneResource(path=str(landing)),
        "serving": ServingResource(home=str(root / "serving"), bentoml_home=str(root / "bentoml"), port=0,
                                   max_probe_wer=10.0, probe_utterances=4, max_p95_latency_s=30.0,
                                   max_p95_latency_ratio=100.0),
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(intake_batches.name, ["day-01"])
        for assets in ([raw_audio], [features]):
            assert dg.materialize(assets, partition_key="day-01", instance=instance, resources=resources).success
        assert dg.materialize([audio_manifest], instance=instance, resources=resources).success
    yield resources
    resources["serving"].target().stop()


def _train_and_deploy(resources, train_config):
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [asr_checkpoint, anchor_set, eval_report, promotion_gate, registered_model, asr_bento, asr_deployment],
            instance=instance, resources=resources, raise_on_error=False,
            run_config={"ops": {"asr_checkpoint": {"config": train_config}, "eval_report": {"config": LENIENT}}},
        )
    assert result.success, [e.event_specific_data for e in result.all_events if e.is_failure][:1]
    return {e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


def _wav(resources) -> bytes:
    store = resources["store"].open()
    from speech_assets.intake.manifest import read_manifest_rows

    row = next(r for r in read_manifest_rows(store, REPO, "main") if r["split"] == "test")
    return store.get_object(REPO, "main", row["audio_path"])


def test_a_whisper_fine_tune_is_judged_against_a_ctc_champion_and_served_beside_it(world):
    first = _train_and_deploy(world, CTC_TINY)
    assert first["asr_checkpoint"]["backend"] == "ctc" and first["registered_model"]["version"] == "1.0.0"

    second = _train_and_deploy(world, WHISPER_TINY)
    ckpt = second["asr_checkpoint"]
    assert ckpt["backend"] == "whisper" and ckpt["steps"] == 3 and ckpt["warm_started_from"] == ""
    assert ckpt["base_model"].startswith("openai/whisper-tiny.en") and ckpt["parameters"] > 37_000_000
    report = second["eval_report"]
    assert report["champion_version"] == "1.0.0" and report["anchor_utterances"] == 11
    assert 0.0 <= report["anchor_wer"] <= report["anchor_champion_wer"]  # real speech: Whisper beats 3 CTC steps
    reg = second["registered_model"]
    assert reg["version"] == "2.0.0" and reg["stage"] == "canary"  # a new vocabulary is a major version

    registry = ModelRegistry(world["store"].open(), REPO)
    assert backend_name_of(registry.checkpoint(MODEL_NAME, "1.0.0")) == "ctc"
    assert backend_name_of(registry.checkpoint(MODEL_NAME, "2.0.0")) == "whisper"

    dep = second["asr_deployment"]
    assert dep["champion"] == "1.0.0" and dep["challenger"] == "2.0.0"
    url, audio = dep["url"], _wav(world)
    answers = {}
    for side, version in (("champion", "1.0.0"), ("challenger", "2.0.0")):
        # the service loads a new model beside the serving ones and answers with the champion meanwhile
        deadline = time.monotonic() + 120
        while True:
            code, body = post(url + "/transcribe", [("audio", "a.wav", audio)], headers={"X-ASR-Route": side},
                              api_key=None, timeout=120)
            assert code == 200, body
            if body["model_version"] == version or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        answers[side] = body
    assert answers["champion"]["model_version"] == "1.0.0" and answers["challenger"]["model_version"] == "2.0.0"
    whisper = answers["challenger"]
    assert whisper["text"] and set(whisper["text"]) <= set("abcdefghijklmnopqrstuvwxyz' ")
    assert 0.0 <= whisper["confidence"] <= 1.0 and whisper["words"]
    assert all(w["start_s"] <= w["end_s"] for w in whisper["words"])

    # the served confidences are the calibrated ones: each side answers with the temperature its registry entry
    # ships (the fitted one, or 1 when the fit made held-out ECE worse), not with the raw model's
    from speech_assets.model.backend import load_recognizer
    from speech_assets.serving.upload import read_upload

    wave = read_upload(audio, max_bytes=len(audio) + 1, max_duration_s=60.0).samples
    for side, version in (("champion", "1.0.0"), ("challenger", "2.0.0")):
        calibration = registry.calibration(MODEL_NAME, version)
        assert calibration["kind"] in ("temperature", "identity")
        temperature = float(calibration["temperature"])
        blob = registry.checkpoint(MODEL_NAME, version)
        expected = load_recognizer(blob, temperature=temperature).transcribe(wave)
        assert answers[side]["confidence"] == pytest.approx(expected.confidence, abs=1e-4), (side, temperature)
        if abs(temperature - 1.0) > 0.05:  # a calibrated side: the raw confidence would differ
            raw = load_recognizer(blob, temperature=1.0).transcribe(wave)
            assert abs(raw.confidence - expected.confidence) > 1e-4, (side, temperature)
    temperatures = {v: float(registry.calibration(MODEL_NAME, v)["temperature"]) for v in ("1.0.0", "2.0.0")}
    assert any(abs(t - 1.0) > 0.05 for t in temperatures.values()), temperatures  # the check above ran for one side
