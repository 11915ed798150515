"""`asr_checkpoint`: a model (any backend: the built-in CTC, or a pretrained Whisper fine-tuned) trained on the
train split at a pinned manifest commit."""

import json
from typing import Optional

import dagster as dg

from speech_assets.defs.features.assets import features
from speech_assets.defs.intake.assets import audio_manifest
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.training.artifacts import TRAINING_CODE_VERSION
from speech_assets.model.whisper.finetune import WhisperTrainConfig
from speech_assets.training.run import TrainingSettings, train_checkpoint


class WhisperConfig(dg.Config):
    """The Whisper fine-tune (backend "whisper"); defaults `WhisperTrainConfig`'s: tiny.en, encoder frozen."""

    base_model: str = WhisperTrainConfig.base_model  # tiny.en | base | a CTranslate2 or Hugging Face Whisper folder
    max_steps: int = WhisperTrainConfig.max_steps
    batch_size: int = WhisperTrainConfig.batch_size
    lr: float = WhisperTrainConfig.lr
    warmup_steps: int = WhisperTrainConfig.warmup_steps
    weight_decay: float = WhisperTrainConfig.weight_decay
    grad_clip: float = WhisperTrainConfig.grad_clip
    full_finetune: bool = WhisperTrainConfig.full_finetune  # False: frozen encoder, cached encoder outputs (CPU)
    max_train_utterances: Optional[int] = WhisperTrainConfig.max_train_utterances
    max_minutes: Optional[float] = WhisperTrainConfig.max_minutes
    num_threads: int = WhisperTrainConfig.num_threads
    beam_size: int = WhisperTrainConfig.beam_size
    dev_utterances: int = WhisperTrainConfig.dev_utterances
    quantization: str = WhisperTrainConfig.quantization  # CTranslate2 compute type when served


class TrainingConfig(dg.Config):
    """Hyperparameters (typed, shown in the launchpad); defaults are the demo's budgeted run."""

    seed: int = TrainingSettings.seed
    epochs: int = TrainingSettings.epochs
    max_steps: int = TrainingSettings.max_steps  # 0 = no cap beyond epochs
    batch_size: int = TrainingSettings.batch_size
    lr: float = TrainingSettings.lr
    spec_augment: bool = TrainingSettings.spec_augment
    max_minutes: float = TrainingSettings.max_minutes  # safety cap only; the step budget defines the run
    conv_channels: int = TrainingSettings.conv_channels
    hidden: int = TrainingSettings.hidden
    layers: int = TrainingSettings.layers
    time_stride: int = TrainingSettings.time_stride  # conv front-end time subsampling: 3 -> 30 ms CTC frames
    dropout: float = TrainingSettings.dropout
    warm_start: bool = TrainingSettings.warm_start  # fine-tune from the production model, not from scratch
    num_threads: int = TrainingSettings.num_threads
    lm_order: int = TrainingSettings.lm_order  # word LM for lexicon decoding; 0 = greedy decoding only
    backend: str = TrainingSettings.backend  # "ctc" (the built-in model) or "whisper" (pretrained, fine-tuned)
    whisper: WhisperConfig = WhisperConfig()
    zero_shot: bool = TrainingSettings.zero_shot  # whisper: save the base model untrained; its evaluation judges it

    def to_domain(self) -> TrainingSettings:
        values = self.model_dump()
        return TrainingSettings(**{**values, "whisper": WhisperTrainConfig.from_dict(values["whisper"])})


@dg.asset(
    deps=[audio_manifest, features],
    group_name="training",
    owners=["team:speech-ml"],
    tags={"layer": "gold", "domain": "training"},
    kinds={"torch"},
    code_version=TRAINING_CODE_VERSION,
    pool="training",
    description=(
        "Character CTC model (conv front-end + bi-GRU) trained on the train split of audio_manifest at a pinned "
        "main commit, seeded and deterministic (same data + config = same checkpoint digest). Optional warm start "
        "from the production model."
    ),
)
def asr_checkpoint(
    context: dg.AssetExecutionContext, config: TrainingConfig, store: VersionStoreResource
) -> dg.MaterializeResult:
    run = train_checkpoint(store.open(), store.repository, config.to_domain(), run_id=context.run.run_id,
                           log=context.log)
    result = run.result
    card = result.card
    return dg.MaterializeResult(
        metadata={
            "commit_in": dg.MetadataValue.text(run.data_commit),
            "commit_out": dg.MetadataValue.text(run.saved.commit_id),
            "dagster/uri": dg.MetadataValue.path(store.uri(run.saved.commit_id, run.saved.path)),
            "checkpoint_digest": run.digest,
            "checkpoint_sha256": run.checkpoint_sha256,
            "feature_config_digest": run.feature_config.digest(),
            "seed": run.train_config.get("seed", config.seed),
            "warm_started_from": run.parent_version or "",
            "backend": run.backend,
            "base_model": card.base_model or "",
            "tokenizer": card.tokenizer,
            "parameters": card.parameters,
            "steps": result.steps,
            "train_minutes": round(result.seconds / 60.0, 2),
            "stopped_reason": result.stopped_reason,
            "final_loss": run.final_loss,
            "best_dev_wer": run.best_dev_wer,
            "decoder": (("lexicon+lm" if run.decoder_spec else "greedy") if run.backend == "ctc"
                        else str(card.extra.get("decoder", run.backend))),
            "dev_wer_lexicon_lm": run.dev_wer_lexicon_lm,
            "train_utterances": run.train_utterances,
            "excluded": dg.MetadataValue.json(run.excluded),
            "train_config": dg.MetadataValue.json(json.loads(json.dumps(run.train_config))),
            "loss_curve": dg.MetadataValue.md(run.loss_table()),
        }
    )
