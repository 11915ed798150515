"""`asr_checkpoint`: a model (any backend: the built-in CTC, or a pretrained Whisper fine-tuned) trained on the
train split at a pinned manifest commit."""

import json

import dagster as dg

from speech_assets.defs.features.assets import features
from speech_assets.defs.intake.assets import audio_manifest
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.training.artifacts import TRAINING_CODE_VERSION
from speech_assets.training.run import TrainingSettings, train_checkpoint


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

    def to_domain(self) -> TrainingSettings:
        return TrainingSettings(**self.model_dump())


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
