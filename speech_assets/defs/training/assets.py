"""`asr_checkpoint`: a CTC model trained on the train split at a pinned manifest commit."""

import hashlib
import json

import dagster as dg

from speech_assets.defs.features.assets import features
from speech_assets.defs.intake.assets import audio_manifest
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.features.dataset import load_examples
from speech_assets.features.logmel import FeatureConfig
from speech_assets.model.architecture import ModelConfig
from speech_assets.model.train import TrainConfig, checkpoint_bytes, state_digest, train
from speech_assets.registry.registry import ModelRegistry
from speech_assets.training.artifacts import MODEL_NAME, TRAINING_CODE_VERSION, save_checkpoint
from speech_assets.storage.base import DEFAULT_BRANCH


class TrainingConfig(dg.Config):
    """Hyperparameters (typed, shown in the launchpad); defaults are the demo's budgeted run."""

    seed: int = 0
    epochs: int = 4
    max_steps: int = 0  # 0 = no cap beyond epochs
    batch_size: int = 32
    lr: float = 4e-3
    spec_augment: bool = False
    max_minutes: float = 30.0  # safety cap only; the step budget defines the run
    conv_channels: int = 16
    hidden: int = 192
    layers: int = 2
    time_stride: int = 3  # conv front-end time subsampling: 3 -> 30 ms CTC frames
    dropout: float = 0.1
    warm_start: bool = False  # fine-tune from the production model instead of starting from scratch
    num_threads: int = 2
    lm_order: int = 3  # word LM for lexicon decoding, fitted on the train transcripts; 0 = greedy decoding only

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            seed=self.seed, epochs=self.epochs, max_steps=self.max_steps or None, batch_size=self.batch_size,
            lr=self.lr, spec_augment=self.spec_augment, max_minutes=self.max_minutes, num_threads=self.num_threads,
            warm_start=self.warm_start,
        )

    def architecture(self) -> ModelConfig:
        return ModelConfig(
            conv_channels=self.conv_channels, hidden=self.hidden, layers=self.layers, dropout=self.dropout,
            time_stride=self.time_stride,
        )


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
    vs = store.open()
    data_commit = vs.resolve(store.repository, DEFAULT_BRANCH)
    fconfig = FeatureConfig()
    examples = load_examples(vs, store.repository, data_commit, fconfig, splits=("train", "dev"))
    train_set, dev_set = examples.pairs("train"), examples.pairs("dev")
    context.log.info(
        f"training on {len(train_set)} utterances (dev {len(dev_set)}) at commit {data_commit[:12]}; "
        f"excluded {examples.excluded}"
    )
    init_state, parent = None, None
    if config.warm_start:
        registry = ModelRegistry(vs, store.repository)
        champion = registry.production(MODEL_NAME)
        if champion is None:
            context.log.warning("warm_start asked but no production model exists: training from scratch")
        else:
            from speech_assets.model.train import load_checkpoint

            model, _, _ = load_checkpoint(registry.checkpoint(MODEL_NAME, champion.version))
            init_state, parent = model.state_dict(), champion.version

    def progress(event: dict) -> None:
        if event.get("event") == "eval":
            context.log.info(f"step {event.get('step')}: dev WER {event.get('dev_wer', float('nan')):.4f}")
        elif event.get("event") == "step" and event.get("step", 0) % 100 == 0:
            context.log.info(f"step {event.get('step')}: loss {event.get('loss', float('nan')):.3f}")

    tconfig, mconfig = config.train_config(), config.architecture()
    result = train(train_set, dev_set, mconfig, tconfig, init_state=init_state, progress=progress)
    digest = state_digest(result.state_dict)
    decoder_spec = None
    if config.lm_order > 0:
        from speech_assets.model.architecture import CTCModel
        from speech_assets.model.lexicon_decode import fit_decoder_spec

        trained = CTCModel(mconfig)
        trained.load_state_dict(result.state_dict)
        decoder_spec = fit_decoder_spec(trained, [t for _, t in train_set], dev_set, order=config.lm_order)
        context.log.info(
            f"word LM: order {config.lm_order}, {decoder_spec['lexicon_words']} words; tuned on dev: lm_weight "
            f"{decoder_spec['lm_weight']}, word_score {decoder_spec['word_score']}, dev WER {decoder_spec['dev_wer']}"
        )
    lineage = {
        "data_commit": data_commit,
        "feature_config": fconfig.to_dict(),
        "feature_config_digest": fconfig.digest(),
        "code_version": TRAINING_CODE_VERSION,
        "seed": tconfig.seed,
        "parent_version": parent,
        "train_utterances": len(train_set),
        "dev_utterances": len(dev_set),
        "excluded": examples.excluded,
    }
    blob = checkpoint_bytes(
        result.state_dict, mconfig, extra={**lineage, **({"decoder": decoder_spec} if decoder_spec else {})}
    )
    saved = save_checkpoint(
        vs, store.repository, blob, digest=digest, lineage=lineage, model_config=mconfig.to_dict(),
        train_config=tconfig.to_dict(), loss_curve=result.loss_curve, dev_wer_curve=result.dev_wer_curve,
        run_id=context.run.run_id,
    )
    curve = result.loss_curve
    every = max(1, len(curve) // 20)
    loss_table = "| step | loss |\n|---:|---:|\n" + "\n".join(
        f"| {i} | {curve[i]:.3f} |" for i in range(0, len(curve), every)
    )
    return dg.MaterializeResult(
        metadata={
            "commit_in": dg.MetadataValue.text(data_commit),
            "commit_out": dg.MetadataValue.text(saved.commit_id),
            "dagster/uri": dg.MetadataValue.path(store.uri(saved.commit_id, saved.path)),
            "checkpoint_digest": digest,
            "checkpoint_sha256": hashlib.sha256(blob).hexdigest(),
            "feature_config_digest": fconfig.digest(),
            "seed": tconfig.seed,
            "warm_started_from": parent or "",
            "parameters": result.num_parameters,
            "steps": result.steps,
            "train_minutes": round(result.seconds / 60.0, 2),
            "stopped_reason": result.stopped_reason,
            "final_loss": float(curve[-1]) if curve else float("nan"),
            "best_dev_wer": float(result.best_dev_wer) if result.best_dev_wer is not None else float("nan"),
            "decoder": "lexicon+lm" if decoder_spec else "greedy",
            "dev_wer_lexicon_lm": (
                float(decoder_spec["dev_wer"]) if decoder_spec and decoder_spec["dev_wer"] is not None else float("nan")
            ),
            "train_utterances": len(train_set),
            "train_config": dg.MetadataValue.json(json.loads(json.dumps(tconfig.to_dict()))),
            "loss_curve": dg.MetadataValue.md(loss_table),
        }
    )
