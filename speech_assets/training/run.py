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
from dataclasses import dataclass, field

from speech_assets.features.dataset import audio_loader, load_examples
from speech_assets.features.logmel import FeatureConfig
from speech_assets.model.architecture import ModelConfig
from speech_assets.model.backend import Sample, TrainOutcome, backend_name_of, backend_named
from speech_assets.model.ctc_backend import LM_ORDER_DEFAULT
from speech_assets.model.train import TrainConfig
from speech_assets.model.whisper.finetune import WhisperTrainConfig
from speech_assets.progress import progress_logger
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
    lm_order: int = LM_ORDER_DEFAULT  # word LM for lexicon decoding, fitted on the train transcripts; 0 = greedy
    backend: str = "ctc"  # the model family (`model.backend`): "ctc" (built in) or "whisper" (pretrained)
    # the Whisper fine-tune (backend "whisper"): base model, steps, frozen encoder or full; the fields above are
    # the CTC model's, except seed and warm_start which both backends read
    whisper: WhisperTrainConfig = field(default_factory=WhisperTrainConfig)
    # whisper only: save the base model as it is (no fine-tune), so its zero-shot evaluation judges it and the
    # gate decides whether a pretrained model may serve as it comes
    zero_shot: bool = False

    def backend_config(self) -> dict:
        """The backend's own config (plain values) from these settings."""
        if self.backend == "ctc":
            return {**self.train_config().to_dict(), **self.model_config().to_dict(), "lm_order": self.lm_order}
        if self.backend == "whisper":
            whisper = self.whisper if isinstance(self.whisper, WhisperTrainConfig) else (
                WhisperTrainConfig.from_dict(dict(self.whisper)))
            return whisper.to_dict()
        raise ValueError(f"no training settings for backend {self.backend!r}; known: ctc, whisper")

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
    backend: str
    train_config: dict
    result: TrainOutcome
    digest: str  # of the trained weights: names the checkpoint
    checkpoint_sha256: str  # of the saved checkpoint file
    decoder_spec: dict | None  # CTC: the fitted word LM and its tuned weights; None: greedy decoding (or Whisper)
    parent_version: str | None  # the production version it was warm-started from
    train_utterances: int
    excluded: dict[str, int]  # reason -> utterances not trained on (manifest rows and backend skips)
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


def _warm_start(store: VersionStore, repo: str, backend: str, log: logging.Logger) -> tuple[bytes | None, str | None]:
    """The production checkpoint and version to fine-tune from, or (None, None): nothing is in production, or
    production is another backend's model (a Whisper challenger cannot start from CTC weights)."""
    registry = ModelRegistry(store, repo)
    champion = registry.production(MODEL_NAME)
    if champion is None:
        log.warning("warm_start asked but no production model exists: starting from the base model / scratch")
        return None, None
    blob = registry.checkpoint(MODEL_NAME, champion.version)
    champion_backend = backend_name_of(blob)
    if champion_backend != backend:
        log.warning(f"warm_start asked but production {champion.version} is a {champion_backend} model and this "
                    f"run trains {backend}: starting from the base model / scratch")
        return None, None
    return blob, champion.version


def _samples(store: VersionStore, repo: str, commit: str, utterances) -> list[Sample]:
    return [Sample(u.utt_id, u.text, features=u.features, waveform=audio_loader(store, repo, commit, u.audio_path),
                   duration_s=u.duration_s)
            for u in utterances]


def _zero_shot(backend, settings: TrainingSettings, n_train: int, log: logging.Logger) -> TrainOutcome:
    """The base model as a checkpoint, untrained: what `zero_shot` saves (Whisper only)."""
    if backend.name != "whisper":
        raise ValueError("zero_shot needs a pretrained backend: set backend='whisper' (the CTC model starts empty)")
    config = WhisperTrainConfig.from_dict(settings.backend_config())
    log.info(f"zero_shot: saving {config.base_model} as it is (no fine-tune); its evaluation judges it")
    blob = backend.pretrained_checkpoint(config.base_model, beam_size=config.beam_size,
                                         quantization=config.quantization)
    card = backend.describe(blob)
    return TrainOutcome(checkpoint=blob, digest=card.extra["weights_sha256"], card=card, loss_curve=[],
                        dev_wer_curve=[], model_config={}, train_config={**config.to_dict(), "zero_shot": True},
                        steps=0, seconds=0.0, stopped_reason="zero_shot", n_train=0,
                        summary={"zero_shot": True, "available_train_utterances": n_train})


def train_checkpoint(
    store: VersionStore, repo: str, settings: TrainingSettings, *, run_id: str, log: logging.Logger = _log,
) -> TrainingRun:
    """Train on the train split at main's head and save the checkpoint; `log` gets the run's progress lines."""
    data_commit = store.resolve(repo, DEFAULT_BRANCH)
    fconfig = FeatureConfig()
    backend = backend_named(settings.backend)
    examples = load_examples(store, repo, data_commit, fconfig, splits=("train", "dev"))
    train_utts, dev_utts = examples.splits["train"], examples.splits["dev"]
    excluded = dict(examples.excluded)
    if backend.name != "ctc":
        # Whisper reads the audio: batches the retention sweep removed have features only
        from speech_assets.intake.manifest import swept_batches

        swept = swept_batches(store, repo, data_commit)
        excluded["audio_swept"] = sum(u.batch_id in swept for u in train_utts + dev_utts)
        train_utts = [u for u in train_utts if u.batch_id not in swept]
        dev_utts = [u for u in dev_utts if u.batch_id not in swept]
    log.info(
        f"training on {len(train_utts)} utterances (dev {len(dev_utts)}) at commit {data_commit[:12]}; "
        f"backend {backend.name}; excluded {excluded}"
    )
    init, parent = _warm_start(store, repo, backend.name, log) if settings.warm_start else (None, None)
    lineage = {
        "data_commit": data_commit,
        "feature_config": fconfig.to_dict(),
        "feature_config_digest": fconfig.digest(),
        "code_version": TRAINING_CODE_VERSION,
        "seed": settings.seed,
        "parent_version": parent,
        "train_utterances": len(train_utts),
        "dev_utterances": len(dev_utts),
        "excluded": excluded,
    }
    if settings.zero_shot:
        outcome = _zero_shot(backend, settings, len(train_utts), log)
    else:
        outcome = backend.train(
            _samples(store, repo, data_commit, train_utts), _samples(store, repo, data_commit, dev_utts),
            settings.backend_config(), seed=settings.seed, init=init, progress=progress_logger(log), extra=lineage,
        )
    for reason, n in outcome.n_skipped.items():
        excluded[f"backend_{reason}"] = n
    saved = save_checkpoint(
        store, repo, outcome.checkpoint, digest=outcome.digest, lineage=lineage, model_config=outcome.model_config,
        train_config=outcome.train_config, loss_curve=outcome.loss_curve, dev_wer_curve=outcome.dev_wer_curve,
        run_id=run_id, card=outcome.card.to_dict(),
    )
    return TrainingRun(data_commit, fconfig, backend.name, outcome.train_config, outcome, outcome.digest,
                       hashlib.sha256(outcome.checkpoint).hexdigest(), outcome.summary.get("decoder"), parent,
                       outcome.n_train, excluded, saved)
