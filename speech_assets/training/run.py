"""One training run of the ASR model, from main's head to a saved checkpoint: what `asr_checkpoint` runs.

    run = train_checkpoint(store, repo, TrainingSettings(epochs=1), run_id=run_id, log=logger)

The run pins main's head as its data commit, loads the train and dev features at it, warm-starts from the
registry's production model when asked (and there is one), trains, fits the word LM the lexicon decoder uses, and
saves the checkpoint with its lineage (`training.artifacts.save_checkpoint`, which also moves the checkpoint
pointer). Same data + settings = same checkpoint digest. No Dagster here.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from speech_assets.features.dataset import load_examples
from speech_assets.features.logmel import FeatureConfig
from speech_assets.model.architecture import ModelConfig
from speech_assets.model.train import TrainConfig, TrainResult, checkpoint_bytes, state_digest, train
from speech_assets.registry.registry import ModelRegistry
from speech_assets.storage.base import DEFAULT_BRANCH, VersionStore
from speech_assets.training.artifacts import MODEL_NAME, TRAINING_CODE_VERSION, Saved, save_checkpoint

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingSettings:
    """What one run is asked for: the schedule (`TrainConfig`'s defaults), the architecture (`ModelConfig`'s) and
    the decoder's word LM. The defaults are the demo's budgeted run."""

    seed: int = TrainConfig.seed
    epochs: int = TrainConfig.epochs
    max_steps: int = 0  # 0 = no cap beyond epochs (TrainConfig's None)
    batch_size: int = TrainConfig.batch_size
    lr: float = TrainConfig.lr
    spec_augment: bool = TrainConfig.spec_augment
    max_minutes: float = TrainConfig.max_minutes  # safety cap only; the step budget defines the run
    conv_channels: int = ModelConfig.conv_channels
    hidden: int = ModelConfig.hidden
    layers: int = ModelConfig.layers
    time_stride: int = ModelConfig.time_stride  # conv front-end time subsampling: 3 -> 30 ms CTC frames
    dropout: float = ModelConfig.dropout
    warm_start: bool = TrainConfig.warm_start  # fine-tune from the production model instead of starting from scratch
    num_threads: int = TrainConfig.num_threads
    lm_order: int = 3  # word LM for lexicon decoding, fitted on the train transcripts; 0 = greedy decoding only

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            seed=self.seed, epochs=self.epochs, max_steps=self.max_steps or None, batch_size=self.batch_size,
            lr=self.lr, spec_augment=self.spec_augment, max_minutes=self.max_minutes, num_threads=self.num_threads,
            warm_start=self.warm_start,
        )

    def model_config(self) -> ModelConfig:
        return ModelConfig(
            conv_channels=self.conv_channels, hidden=self.hidden, layers=self.layers, dropout=self.dropout,
            time_stride=self.time_stride,
        )


@dataclass(frozen=True)
class TrainingRun:
    """What a run trained and where it saved it."""

    data_commit: str
    feature_config: FeatureConfig
    train_config: TrainConfig
    result: TrainResult
    digest: str  # of the trained weights (`state_digest`): names the checkpoint
    checkpoint_sha256: str  # of the saved checkpoint file
    decoder_spec: dict | None  # the fitted word LM and its tuned weights; None: greedy decoding only
    parent_version: str | None  # the production version it was warm-started from
    train_utterances: int
    saved: Saved

    @property
    def final_loss(self) -> float:
        return float(self.result.loss_curve[-1]) if self.result.loss_curve else float("nan")

    @property
    def best_dev_wer(self) -> float:
        return float(self.result.best_dev_wer) if self.result.best_dev_wer is not None else float("nan")

    @property
    def dev_wer_lexicon_lm(self) -> float:
        spec = self.decoder_spec
        return float(spec["dev_wer"]) if spec and spec["dev_wer"] is not None else float("nan")

    def loss_table(self, rows: int = 20) -> str:
        """The loss curve as a markdown table of about `rows` evenly spaced steps."""
        curve = self.result.loss_curve
        every = max(1, len(curve) // rows)
        return "| step | loss |\n|---:|---:|\n" + "\n".join(
            f"| {i} | {curve[i]:.3f} |" for i in range(0, len(curve), every)
        )


def _warm_start(store: VersionStore, repo: str, log: logging.Logger) -> tuple[dict | None, str | None]:
    """The production model's weights and version, or (None, None) when nothing is in production."""
    registry = ModelRegistry(store, repo)
    champion = registry.production(MODEL_NAME)
    if champion is None:
        log.warning("warm_start asked but no production model exists: training from scratch")
        return None, None
    from speech_assets.model.train import load_checkpoint

    model, _, _ = load_checkpoint(registry.checkpoint(MODEL_NAME, champion.version))
    return model.state_dict(), champion.version


def _progress(log: logging.Logger):
    def progress(event: dict) -> None:
        if event.get("event") == "eval":
            log.info(f"step {event.get('step')}: dev WER {event.get('dev_wer', float('nan')):.4f}")
        elif event.get("event") == "step" and event.get("step", 0) % 100 == 0:
            log.info(f"step {event.get('step')}: loss {event.get('loss', float('nan')):.3f}")

    return progress


def _fit_decoder(state_dict: dict, mconfig: ModelConfig, train_set, dev_set, order: int, log: logging.Logger) -> dict:
    from speech_assets.model.architecture import CTCModel
    from speech_assets.model.lexicon_decode import fit_decoder_spec

    trained = CTCModel(mconfig)
    trained.load_state_dict(state_dict)
    spec = fit_decoder_spec(trained, [t for _, t in train_set], dev_set, order=order)
    log.info(
        f"word LM: order {order}, {spec['lexicon_words']} words; tuned on dev: lm_weight "
        f"{spec['lm_weight']}, word_score {spec['word_score']}, dev WER {spec['dev_wer']}"
    )
    return spec


def train_checkpoint(
    store: VersionStore, repo: str, settings: TrainingSettings, *, run_id: str, log: logging.Logger = _log,
) -> TrainingRun:
    """Train on the train split at main's head and save the checkpoint; `log` gets the run's progress lines."""
    data_commit = store.resolve(repo, DEFAULT_BRANCH)
    fconfig = FeatureConfig()
    examples = load_examples(store, repo, data_commit, fconfig, splits=("train", "dev"))
    train_set, dev_set = examples.pairs("train"), examples.pairs("dev")
    log.info(
        f"training on {len(train_set)} utterances (dev {len(dev_set)}) at commit {data_commit[:12]}; "
        f"excluded {examples.excluded}"
    )
    init_state, parent = _warm_start(store, repo, log) if settings.warm_start else (None, None)
    tconfig, mconfig = settings.train_config(), settings.model_config()
    result = train(train_set, dev_set, mconfig, tconfig, init_state=init_state, progress=_progress(log))
    digest = state_digest(result.state_dict)
    decoder_spec = (_fit_decoder(result.state_dict, mconfig, train_set, dev_set, settings.lm_order, log)
                    if settings.lm_order > 0 else None)
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
        store, repo, blob, digest=digest, lineage=lineage, model_config=mconfig.to_dict(),
        train_config=tconfig.to_dict(), loss_curve=result.loss_curve, dev_wer_curve=result.dev_wer_curve,
        run_id=run_id,
    )
    return TrainingRun(data_commit, fconfig, tconfig, result, digest, hashlib.sha256(blob).hexdigest(), decoder_spec,
                       parent, len(train_set), saved)
