"""The domain runs behind the training chain, without Dagster: `training.run.train_checkpoint` →
`evaluation.run.evaluate_checkpoint` → `evaluation.run.promotion_decision` → `governance.release.release_challenger`,
on a tiny synthetic corpus (tones, not speech: this tests what each run stores and returns, not the model), and the
run configs' defaults against the dataclasses they come from."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from speech_assets.evaluation.promotion import PromotionPolicy
from speech_assets.evaluation.run import EvaluationSettings, evaluate_checkpoint, load_evaluation, promotion_decision
from speech_assets.features.store import compute_batch_features
from speech_assets.governance.policy import GatePolicy, read_policy
from speech_assets.governance.release import ReleaseRefused, ReleaseRequest, release_challenger
from speech_assets.intake.batch import ingest_batch
from speech_assets.intake.landing import scan_landing
from speech_assets.intake.manifest import publish_manifest, read_manifest_rows
from speech_assets.model.architecture import ModelConfig
from speech_assets.model.train import TrainConfig
from speech_assets.registry.registry import ModelRegistry
from speech_assets.storage.layout import CHECKPOINT_POINTER, EVALUATION_POINTER
from speech_assets.storage.local import LocalVersionStore
from speech_assets.training.artifacts import MODEL_NAME, latest_checkpoint
from speech_assets.training.run import TrainingSettings, train_checkpoint
from tests.intake.conftest import make_batch

REPO = "speech-assets"
WORDS = ["turn on the lights", "play some music", "what is the weather", "set a timer", "open the door",
         "close the window", "read the news", "good night"]
TINY = TrainingSettings(epochs=1, max_steps=2, hidden=16, layers=1, conv_channels=4, batch_size=8, seed=3, lm_order=0)
FAST = EvaluationSettings(min_utterances=1, min_speakers=1, wer_floor=5.0, slice_wer_floor=5.0, max_ece=1.0,
                          wer_tolerance=5.0, slice_wer_tolerance=5.0, bootstrap_resamples=20, baseline_utterances=0,
                          rtf_utterances=0)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> LocalVersionStore:
    root = tmp_path_factory.mktemp("domain-runs")
    rows = [{"audio_filepath": f"audio/u{i}.wav", "text": WORDS[i % len(WORDS)], "speaker": f"spk{i % 16}",
             "accent": "us", "channel": "clean", "duration": 0.6, "_audio": (0.6, 16000, i, 1)} for i in range(40)]
    make_batch(root / "landing", "day-01", rows)
    store = LocalVersionStore(root / "store")
    store.create_repository(REPO)
    (batch,) = scan_landing(root / "landing")
    assert ingest_batch(store, REPO, batch, run_id="intake").published
    compute_batch_features(store, REPO, "day-01", run_id="features")
    publish_manifest(store, REPO, "manifest")
    splits = {r["split"] for r in read_manifest_rows(store, REPO, store.resolve(REPO, "main"))}
    assert splits == {"train", "dev", "test"}, splits
    return store


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[tuple[str, str]] = []

    def emit(self, record):
        self.lines.append((record.levelname, record.getMessage()))


def _log(name: str) -> tuple[logging.Logger, _Lines]:
    log, lines = logging.getLogger(f"tests.domain_runs.{name}"), _Lines()
    log.setLevel(logging.INFO)
    log.addHandler(lines)
    return log, lines


def test_the_run_configs_take_their_defaults_from_the_domain_dataclasses():
    from speech_assets.defs.evaluation.assets import EvalConfig
    from speech_assets.defs.registry.assets import RegistrationConfig
    from speech_assets.defs.training.assets import TrainingConfig

    assert TrainingConfig().to_domain() == TrainingSettings()
    assert EvalConfig().to_domain() == EvaluationSettings()
    assert RegistrationConfig().to_domain() == ReleaseRequest()
    assert TrainingSettings().train_config() == TrainConfig()  # max_steps 0 is TrainConfig's None (no cap)
    assert TrainingSettings().model_config() == ModelConfig()
    assert (EvaluationSettings().bootstrap_resamples, EvaluationSettings().seed) == (
        PromotionPolicy.n_resamples, PromotionPolicy.seed)
    assert TrainingConfig(epochs=2, lm_order=0).to_domain() == TrainingSettings(epochs=2, lm_order=0)


def test_gate_thresholds_are_the_policys_with_the_run_configs_overrides():
    gate = GatePolicy()
    settings = EvaluationSettings(wer_floor=0.5, min_speakers=1)
    thresholds = settings.thresholds(gate)
    assert list(thresholds) == [f.name for f in dataclasses.fields(GatePolicy)]
    assert thresholds["wer_floor"] == 0.5 and thresholds["min_speakers"] == 1
    assert thresholds["max_ece"] == gate.max_ece
    assert settings.overridden(gate) == ["min_speakers", "wer_floor"]
    assert EvaluationSettings().overridden(gate) == []


def test_train_evaluate_and_release_store_what_the_next_step_reads(store):
    log, lines = _log("train")
    trained = train_checkpoint(store, REPO, TINY, run_id="run-train", log=log)
    info, blob = latest_checkpoint(store, REPO)
    assert info["digest"] == trained.digest and info["checkpoint_sha256"] == trained.checkpoint_sha256
    assert store.resolve(REPO, "main") == trained.saved.commit_id
    assert trained.result.steps == 2 and trained.decoder_spec is None and trained.parent_version is None
    assert trained.data_commit == info["lineage"]["data_commit"] and trained.train_utterances > 0
    assert trained.loss_table().startswith("| step | loss |") and trained.final_loss == trained.result.loss_curve[-1]
    assert lines.lines[0][1].startswith(f"training on {trained.train_utterances} utterances (dev ")

    log, lines = _log("eval")
    evaluated = evaluate_checkpoint(store, REPO, (info, blob), read_policy(store, REPO), FAST, model_name=MODEL_NAME,
                                    run_id="run-eval", log=log)
    pointer, rows, champion_rows = load_evaluation(store, REPO)
    assert pointer == json.loads(json.dumps(evaluated.pointer, default=str))
    assert pointer["checkpoint_digest"] == trained.digest and champion_rows is None
    assert len(rows) == evaluated.report.n_utterances > 0
    assert evaluated.champion_version is None and evaluated.rtf is None and evaluated.baseline_wer is None
    assert evaluated.gate_overrides == {k: getattr(FAST, k) for k in FAST.overridden(GatePolicy())}
    assert evaluated.slice_wers() and all(isinstance(v, float) for v in evaluated.slice_wers().values())
    messages = [m for _, m in lines.lines]
    assert messages[0].startswith(f"evaluating checkpoint {trained.digest[:16]} on ")
    assert "(defaults); run config overrides: ['max_ece', " in messages[1]

    _, decision = promotion_decision(store, REPO)
    assert decision.passed and decision.mode == "first_model"

    with pytest.raises(ReleaseRefused, match="promote_to must be auto"):
        release_challenger(store, REPO, ReleaseRequest(promote_to="staging"), run_id="run-reg")
    released = release_challenger(store, REPO, ReleaseRequest(), run_id="run-registry-1")
    assert (released.version, released.stage, released.bump) == ("1.0.0", "production", "initial")
    assert released.checkpoint_digest == trained.digest and released.versions == 1
    assert ModelRegistry(store, REPO).production(MODEL_NAME).version == "1.0.0"

    # A newer checkpoint without its evaluation is not released on the old evaluation's word.
    retrained = train_checkpoint(store, REPO, dataclasses.replace(TINY, seed=4, warm_start=True), run_id="run-train-2")
    assert retrained.parent_version == "1.0.0" and store.get_object(REPO, "main", CHECKPOINT_POINTER)
    with pytest.raises(ReleaseRefused, match="not of the latest checkpoint"):
        release_challenger(store, REPO, ReleaseRequest(), run_id="run-registry-2")
    assert json.loads(store.get_object(REPO, "main", EVALUATION_POINTER))["checkpoint_digest"] == trained.digest


def test_a_pretrained_whisper_is_saved_zero_shot_and_evaluated_through_the_port(store):
    """`zero_shot`: the base model as it is (no fine-tune) becomes the checkpoint; evaluation runs it on the audio
    (Whisper reads waveforms, not the feature store) under the same gate. Last in this module: it moves the
    checkpoint pointer the tests above read."""
    from speech_assets.model.backend import backend_name_of
    from speech_assets.training.artifacts import latest_checkpoint

    with pytest.raises(ValueError, match="zero_shot needs a pretrained backend"):
        train_checkpoint(store, REPO, dataclasses.replace(TINY, zero_shot=True), run_id="run-zero-ctc")
    log, lines = _log("zero_shot")
    settings = TrainingSettings(backend="whisper", zero_shot=True)
    trained = train_checkpoint(store, REPO, settings, run_id="run-zero", log=log)
    assert trained.backend == "whisper" and trained.result.steps == 0 and trained.result.stopped_reason == "zero_shot"
    assert trained.result.card.base_model.startswith("openai/whisper-tiny.en")
    info, blob = latest_checkpoint(store, REPO)
    assert backend_name_of(blob) == "whisper" and info["backend"] == "whisper"
    assert info["card"]["vocabulary_hash"] == trained.result.card.vocabulary_hash
    assert any("saving tiny.en as it is" in m for _, m in lines.lines)

    evaluated = evaluate_checkpoint(store, REPO, (info, blob), read_policy(store, REPO),
                                    dataclasses.replace(FAST, anchor=False), model_name=MODEL_NAME,
                                    run_id="run-eval-zero", log=log)
    assert evaluated.evaluation.decoder.startswith("whisper")
    assert evaluated.report.n_utterances > 0 and 0.0 <= evaluated.evaluation.ece <= 1.0
    # judged against the CTC champion released above, on the same audible test utterances
    assert any(m.startswith("evaluating checkpoint") and "backends ctc/whisper" in m for _, m in lines.lines)
    assert evaluated.champion_version is not None and evaluated.evaluation.champion_rows is not None
    assert any("whisper decode:" in m and "took" in m for _, m in lines.lines)  # progress for a person
