"""Fine-tuning a Whisper model in PyTorch on the platform's samples, then exporting it for CTranslate2 serving.

    config = WhisperTrainConfig.from_dict({"max_steps": 60})          # unknown keys are a ValueError
    result = finetune(model, tokenizer_dir, train, dev, config, seed=0, out_dir=tmp / "ct2", base_model="...")
    result.ct2_dir, result.digest, result.loss_curve, result.dev_wer, result.n_skipped, result.summary

The CPU recipe (default): a **frozen encoder** and an **audio context fitted to the clip**. The encoder output of
every training utterance is computed once (stage "encoding", kept in memory as float16 [frames / 2, d_model]
tensors: at most 1.1 MB an utterance for tiny) and only the decoder is trained, so a step costs a decoder
forward and backward instead of an encoder pass per utterance. `full_finetune=True` trains encoder and decoder end
to end (the log-mel features are kept, float32; the encoder runs on every step).

Audio context (`audio_context_s`, default 2 s): the encoder reads the clip plus 0.5 s, rounded up to a multiple
of 2 s (`recognizer.context_frames`), instead of Whisper's 30 s window padded with silence, and the decoder is
trained on those shorter encoder outputs; the exported model's card carries the setting, so it is served the same
way. On the platform's 1-5 s utterances this makes encoding ~8x cheaper (training and serving alike). A pretrained
decoder has only seen 30 s windows and drops the ends of utterances under a short context, which is why only a
model fine-tuned with it is served with it; `audio_context_s=None` keeps Whisper's window. Batches hold
utterances of one context length (the decoder's cross-attention takes no padding mask).

Teacher forcing: the decoder reads [prompt] + tokens(" " + text) and is scored on the text tokens and the
end-of-text token only (the prompt is given, not learned), prompt = the serving prompt [sot, (en, transcribe when
multilingual), notimestamps], log-mel = the serving features (`recognizer.window_features`), so the model is
trained on exactly what it is served. AdamW (no weight decay on biases and norms), linear warm-up then linear
decay to zero at `max_steps`, gradient clipping, batches drawn from a seeded permutation of the utterances.

Deterministic for the same samples, config, seed, initial weights and thread count: python/numpy/torch RNGs
seeded, torch's deterministic algorithms on, the thread count set for the run (and restored after).

Skipped before training, counted by reason (`n_skipped`): "empty_text", "no_audio" (no waveform),
"audio_too_long" (> 30 s: one window is what the decoder is trained against), "text_too_long" (> 440 tokens: the
decoder's 448 positions hold the prompt and the end token too). `max_train_utterances` caps the rest, picked by
the sha256 of the utterance id (the same subset whatever the seed or the input order).

At the end the model is exported (`convert.hf_to_ct2`, float16), the exported `model.bin` is the digest, and the
dev WER (corpus WER over `dev_utterances` dev samples, decoded by the exported model through `WhisperRecognizer`
as served) is reported.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from speech_assets.model.contract import Progress, Sample
from speech_assets.model.whisper.artifact import make_card, weights_sha256
from speech_assets.model.whisper.convert import count_parameters, hf_to_ct2, load_tokenizer, offline, special_token_ids
from speech_assets.model.whisper.recognizer import SAMPLE_RATE, WINDOW_S, WhisperOutputs, WhisperRecognizer, window_features
from speech_assets.progress import ProgressMeter

if TYPE_CHECKING:
    import torch
    from transformers import WhisperForConditionalGeneration

MAX_TEXT_TOKENS = 440  # 448 decoder positions - the prompt (<= 4) - end of text, with room to spare
SKIP_EMPTY_TEXT = "empty_text"
SKIP_NO_AUDIO = "no_audio"
SKIP_AUDIO_TOO_LONG = "audio_too_long"
SKIP_TEXT_TOO_LONG = "text_too_long"
_IGNORE = -100  # label of a position the loss does not score


@dataclass
class WhisperTrainConfig:
    """Everything a Whisper fine-tune reads; plain values only (it is recorded in the checkpoint)."""

    base_model: str = "tiny.en"  # a weights.BASE_MODELS name or a folder (ignored when warm-starting)
    max_steps: int = 150  # ~1 min of steps on 2 cores under the fitted context (0.4 s a step, batch 8)
    batch_size: int = 8
    lr: float = 1e-5
    warmup_steps: int = 5
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    full_finetune: bool = False  # False: frozen encoder, decoder trained on cached encoder outputs
    max_train_utterances: int | None = 400  # cap (None: all); memory is ~1.1 MB an utterance for tiny
    max_minutes: float | None = 60.0  # safety cap on the whole run; stops with stopped_reason "time_budget"
    num_threads: int = 2
    beam_size: int = 1  # for serving and the dev WER
    dev_utterances: int = 50  # dev samples decoded for the end-of-run dev WER (0: none)
    quantization: str = "int8"  # CTranslate2 compute type for serving (the weights are stored float16)
    # encoder input: None = Whisper's 30 s window; q seconds = the clip + 0.5 s rounded up to a multiple of q
    # (`recognizer.context_frames`), trained and then served that way (the card carries it). 2 s: measured in
    # bench/asr_models.py (README), the served model runs at 0.13x base's RTF instead of ~0.55x
    audio_context_s: float | None = 2.0

    def __post_init__(self):
        positive = {"max_steps": self.max_steps, "batch_size": self.batch_size, "num_threads": self.num_threads,
                    "beam_size": self.beam_size}
        bad = [k for k, v in positive.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1]
        if bad:
            raise ValueError(f"{', '.join(bad)} must be integers >= 1")
        if self.lr <= 0 or self.weight_decay < 0 or self.grad_clip < 0 or self.warmup_steps < 0:
            raise ValueError("lr must be > 0; weight_decay, grad_clip and warmup_steps >= 0")
        if self.dev_utterances < 0 or (self.max_train_utterances is not None and self.max_train_utterances < 1):
            raise ValueError("dev_utterances must be >= 0 and max_train_utterances >= 1 (or None)")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError("max_minutes must be > 0 (or None)")
        if self.audio_context_s is not None and not 0.02 <= float(self.audio_context_s) <= WINDOW_S:
            raise ValueError(f"audio_context_s must be None or between 0.02 and {WINDOW_S:g} seconds")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "WhisperTrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown Whisper training config keys {unknown}; known: {sorted(known)}")
        return cls(**values)


@dataclass
class FinetuneResult:
    """What a run produced: the exported folder and what `TrainOutcome` reports about it."""

    ct2_dir: Path
    digest: str  # sha256 of the exported model.bin
    parameters: int
    loss_curve: list[float]
    steps: int
    seconds: float
    stopped_reason: str  # "completed" | "time_budget" | "callback"
    n_train: int
    n_skipped: dict[str, int]
    dev_wer: float | None
    n_dev: int
    summary: dict = field(default_factory=dict)  # timings and the recipe, plain values


@dataclass
class _Utterance:
    utt_id: str
    tokens: list[int]  # tokens(" " + text), no specials
    sample: Sample


def _pick(items: list, cap: int | None, key) -> list:
    """The first `cap` items by sha256 of their key, in that order: a deterministic subset that does not
    depend on the input order or the seed."""
    ranked = sorted(items, key=lambda x: hashlib.sha256(key(x).encode()).hexdigest())
    return ranked if cap is None else ranked[:cap]


def select_utterances(samples: Sequence[Sample], tokenizer, cap: int | None) -> tuple[list[_Utterance], Counter]:
    """The samples worth training on (tokenised), and how many were skipped for each reason. Audio length is
    checked here from `duration_s` when the sample says it, and again on the waveform when it is loaded."""
    kept, skipped = [], Counter()
    for s in samples:
        if not s.text.strip():
            skipped[SKIP_EMPTY_TEXT] += 1
        elif s.waveform is None:
            skipped[SKIP_NO_AUDIO] += 1
        elif s.duration_s > WINDOW_S:
            skipped[SKIP_AUDIO_TOO_LONG] += 1
        else:
            ids = tokenizer.encode(" " + s.text.strip(), add_special_tokens=False).ids
            if len(ids) > MAX_TEXT_TOKENS:
                skipped[SKIP_TEXT_TOO_LONG] += 1
            else:
                kept.append(_Utterance(s.utt_id, ids, s))
    return _pick(kept, cap, lambda u: u.utt_id), skipped


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _teacher_forcing(prompt: list[int], token_lists: list[list[int]], eot: int):
    """(decoder input ids, labels) [B, L]: input = prompt + text, label = the next token, scored from the last
    prompt position on (it predicts the first text token) up to and including end-of-text. Rows are right-padded
    (the decoder is causal, so padding after a row's end changes nothing before it)."""
    import torch

    seqs = [prompt + toks + [eot] for toks in token_lists]
    width = max(len(s) for s in seqs) - 1
    inputs = torch.full((len(seqs), width), eot, dtype=torch.long)
    labels = torch.full((len(seqs), width), _IGNORE, dtype=torch.long)
    for row, seq in enumerate(seqs):
        inputs[row, : len(seq) - 1] = torch.tensor(seq[:-1])
        labels[row, len(prompt) - 1: len(seq) - 1] = torch.tensor(seq[len(prompt):])
    return inputs, labels


def _decoder_loss(model, encoder_states, inputs, labels):
    import torch

    hidden = model.model.decoder(input_ids=inputs, encoder_hidden_states=encoder_states, use_cache=False)
    logits = model.proj_out(hidden.last_hidden_state)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                                             ignore_index=_IGNORE)


def _optimizer(model, cfg: WhisperTrainConfig):
    """AdamW over the trainable parameters, without weight decay on biases, norms and position tables."""
    import torch

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "embed_positions" in name or "layer_norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr)

    def factor(step: int) -> float:  # linear warm-up to lr, then linear decay to 0 at max_steps
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        return max(0.0, (cfg.max_steps - step) / max(1, cfg.max_steps - cfg.warmup_steps))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


class _Reporter:
    """Progress lines (ProgressMeter) to a `progress` callback as events; a callback returning True stops."""

    def __init__(self, progress: Progress | None):
        self.progress = progress

    def send(self, event: dict) -> bool:
        return bool(self.progress(event)) if self.progress is not None else False

    def meter(self, what: str, total: int, unit: str) -> ProgressMeter:
        return ProgressMeter(what, total=total, unit=unit, every_s=10.0)


def _load_window(u: _Utterance) -> np.ndarray | None:
    wave = np.asarray(u.sample.waveform(), dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"{u.utt_id}: expected a mono waveform, got shape {wave.shape}")
    return None if len(wave) > WINDOW_S * SAMPLE_RATE else np.nan_to_num(wave)


def encoder_states(encoder, features: "torch.Tensor") -> "torch.Tensor":
    """The Whisper encoder's output for log-mel `features` [B, n_mels, T], T even and at most 3000.

    T = 3000 is the Hugging Face module's own forward. A shorter input (an audio context fitted to the clip) runs
    the same layers with the sinusoidal positions cut to the input's length, as CTranslate2's encoder does (the
    Hugging Face forward refuses anything but 3000 frames)."""
    import torch

    if features.shape[-1] == encoder.embed_positions.num_embeddings * 2:
        return encoder(input_features=features).last_hidden_state
    x = torch.nn.functional.gelu(encoder.conv1(features))
    x = torch.nn.functional.gelu(encoder.conv2(x)).permute(0, 2, 1)
    x = x + encoder.embed_positions.weight[: x.shape[1]]
    for layer in encoder.layers:
        x = layer(x, None)
    return encoder.layer_norm(x)


def _prepare_inputs(model, utts: list[_Utterance], cfg: WhisperTrainConfig, reporter: _Reporter, skipped: Counter):
    """Per utterance, what a training step reads: the encoder output (float16, frozen encoder) or the log-mel
    features (full fine-tune), at the config's audio context. Utterances whose audio turns out longer than 30 s
    are dropped and counted."""
    import torch
    from faster_whisper.feature_extractor import FeatureExtractor

    extractor = FeatureExtractor(feature_size=model.config.num_mel_bins)
    stage = "encoding" if not cfg.full_finetune else "features"
    meter = reporter.meter(stage, len(utts), "utterance")
    kept, inputs = [], []
    for start in range(0, len(utts), cfg.batch_size):
        chunk = utts[start: start + cfg.batch_size]
        waves = [_load_window(u) for u in chunk]
        for u, w in zip(chunk, waves):
            if w is None:
                skipped[SKIP_AUDIO_TOO_LONG] += 1
        chunk = [u for u, w in zip(chunk, waves) if w is not None]
        feats = [torch.from_numpy(window_features(extractor, w, cfg.audio_context_s)[0]) for w in waves
                 if w is not None]
        if feats:
            if cfg.full_finetune:
                inputs.extend(feats)
            else:
                states: list = [None] * len(feats)
                for width in sorted({f.shape[-1] for f in feats}):  # one encoder call per input length
                    idx = [i for i, f in enumerate(feats) if f.shape[-1] == width]
                    with torch.no_grad():  # not inference_mode: the cached states feed autograd-recorded steps
                        out = encoder_states(model.model.encoder, torch.stack([feats[i] for i in idx]))
                    for i, state in zip(idx, out):
                        states[i] = state.to(torch.float16).clone()
                inputs.extend(states)
            kept.extend(chunk)
        line = meter.advance(len(waves))
        if line is not None:
            reporter.send({"event": "stage", "stage": stage, "step": meter.done_steps, "of": meter.total,
                           "eta_s": meter.eta_s(), "message": line})
    return kept, inputs, meter.clock() - meter.started


def _batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator):
    """Endless batches of indices: a fresh seeded permutation each pass over the data. Utterances whose encoder
    inputs differ in length never share a batch (the decoder's cross-attention has no mask, so no padding is
    allowed): the permutation is split by length, cut into batches, and the batches are shuffled. With one length
    (Whisper's 30 s window) that is the permutation cut in order."""
    groups = sorted(set(lengths))
    while True:
        order = rng.permutation(len(lengths))
        if len(groups) == 1:
            for s in range(0, len(order), batch_size):
                yield [int(i) for i in order[s: s + batch_size]]
            continue
        batches = []
        for g in groups:
            members = [int(i) for i in order if lengths[i] == g]
            batches.extend(members[s: s + batch_size] for s in range(0, len(members), batch_size))
        for b in rng.permutation(len(batches)):
            yield batches[int(b)]


def dev_wer(ct2_dir: Path, dev: Sequence[Sample], cfg: WhisperTrainConfig, card) -> tuple[float | None, int, float]:
    """(corpus WER, utterances decoded, seconds) of the exported model on up to `dev_utterances` dev samples,
    decoded as served (WhisperRecognizer at the serving quantization and beam). WER is total word edits / total
    reference words (jiwer over the lists; `evaluation.metrics.corpus_wer` computes the same, but the model
    floor may not import the evaluation floor)."""
    import jiwer

    usable = [s for s in dev if s.text.strip() and s.waveform is not None]
    chosen = _pick(usable, cfg.dev_utterances, lambda s: s.utt_id) if cfg.dev_utterances else []
    if not chosen:
        return None, 0, 0.0
    recognizer = WhisperRecognizer(ct2_dir, card, compute_type=cfg.quantization, beam_size=cfg.beam_size,
                                   cpu_threads=cfg.num_threads, word_timestamps=False)
    outputs = WhisperOutputs.of(recognizer, chosen)
    return float(jiwer.wer([s.text for s in chosen], outputs.texts())), len(chosen), outputs.forward_seconds


def finetune(
    model: "WhisperForConditionalGeneration", tokenizer_dir: Path, train: Sequence[Sample], dev: Sequence[Sample],
    cfg: WhisperTrainConfig, *, seed: int, out_dir: Path, base_model: str | None,
    progress: Progress | None = None,
) -> FinetuneResult:
    """Fine-tune `model` (modified in place) on `train`, export it to `out_dir` (a new CTranslate2 folder, float16,
    with `tokenizer_dir`'s tokenizer.json) and score it on `dev`. See the module docstring for the recipe."""
    offline()
    import torch

    started = time.monotonic()
    prev_threads, prev_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(cfg.num_threads)
    torch.use_deterministic_algorithms(True)
    try:
        return _finetune(model, Path(tokenizer_dir), train, dev, cfg, seed, Path(out_dir), base_model,
                         _Reporter(progress), started)
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det)


def _finetune(model, tokenizer_dir, train, dev, cfg, seed, out_dir, base_model, reporter, started) -> FinetuneResult:
    import torch

    tokenizer = load_tokenizer(tokenizer_dir)
    ids = special_token_ids(tokenizer)
    prompt = [ids["sot"]] + ([] if ids["english_only"] else [ids["en"], ids["transcribe"]]) + [ids["notimestamps"]]

    def elapsed() -> float:
        return time.monotonic() - started

    budget_s = cfg.max_minutes * 60 if cfg.max_minutes is not None else math.inf

    utts, skipped = select_utterances(train, tokenizer, cfg.max_train_utterances)
    _seed_everything(seed)
    model.eval()  # the encoder pass below is inference
    utts, inputs, encode_s = _prepare_inputs(model, utts, cfg, reporter, skipped)
    if not utts:
        raise ValueError(f"no usable training utterance among {len(train)} (skipped: {dict(skipped)})")

    for p in model.parameters():
        p.requires_grad_(True)
    if not cfg.full_finetune:
        for p in model.model.encoder.parameters():
            p.requires_grad_(False)
    model.train()  # Whisper's dropouts are 0: train mode changes nothing but says what this is
    opt, sched = _optimizer(model, cfg)
    rng = np.random.default_rng(seed)
    meter = reporter.meter("fine-tune", cfg.max_steps, "step")
    loss_curve: list[float] = []
    stopped = "completed"
    train_started = time.monotonic()
    for step, batch in enumerate(_batches([x.shape[-1] if cfg.full_finetune else x.shape[0] for x in inputs],
                                          cfg.batch_size, rng), start=1):
        inp, labels = _teacher_forcing(prompt, [utts[i].tokens for i in batch], ids["eot"])
        if cfg.full_finetune:
            states = encoder_states(model.model.encoder, torch.stack([inputs[i] for i in batch]))
        else:
            states = torch.stack([inputs[i] for i in batch]).float()
        loss = _decoder_loss(model, states, inp, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.grad_clip)
        opt.step()
        sched.step()
        loss_curve.append(float(loss.detach()))
        line = meter.advance(loss=f"{loss_curve[-1]:.3f}")
        if not math.isfinite(loss_curve[-1]):
            raise FloatingPointError(f"training loss is {loss_curve[-1]} at step {step}; lower lr ({cfg.lr})")
        event = {"event": "step", "step": step, "of": cfg.max_steps, "loss": loss_curve[-1],
                 "lr": opt.param_groups[0]["lr"], "eta_s": meter.eta_s(), "elapsed_s": elapsed(), "message": line}
        if (line is not None or step == cfg.max_steps) and reporter.send(event):
            stopped = "callback"
            break
        if step >= cfg.max_steps:
            break
        if elapsed() > budget_s:
            stopped = "time_budget"
            break
    train_s = time.monotonic() - train_started
    model.eval()

    reporter.send({"event": "stage", "stage": "export", "message": f"exporting to CTranslate2 (float16) at {out_dir}"})
    export_started = time.monotonic()
    ct2_dir = hf_to_ct2(model, tokenizer_dir, out_dir, quantization="float16", overwrite=True)
    export_s = time.monotonic() - export_started
    parameters = count_parameters(model)
    card = make_card(ct2_dir, parameters, base_model, {"beam_size": cfg.beam_size, **(
        {} if cfg.audio_context_s is None else {"audio_context_s": float(cfg.audio_context_s)})})
    reporter.send({"event": "stage", "stage": "dev", "message": f"decoding up to {cfg.dev_utterances} dev utterances"})
    wer, n_dev, dev_s = dev_wer(ct2_dir, dev, cfg, card)
    if wer is not None:
        reporter.send({"event": "eval", "step": len(loss_curve), "of": cfg.max_steps, "dev_wer": wer,
                       "message": f"dev WER {wer:.3f} on {n_dev} utterances"})
    steps = len(loss_curve)
    return FinetuneResult(
        ct2_dir=ct2_dir, digest=weights_sha256(ct2_dir), parameters=parameters, loss_curve=loss_curve, steps=steps,
        seconds=time.monotonic() - started, stopped_reason=stopped, n_train=len(utts),
        n_skipped={k: v for k, v in sorted(skipped.items())}, dev_wer=wer, n_dev=n_dev,
        summary={
            "recipe": ("full fine-tune" if cfg.full_finetune else "frozen encoder, decoder trained") + (
                "" if cfg.audio_context_s is None else f", audio context fitted to the clip ({cfg.audio_context_s:g} s steps)"),
            "audio_context_s": cfg.audio_context_s,
            "encode_seconds": round(encode_s, 3), "encode_s_per_utterance": round(encode_s / len(utts), 4),
            "train_seconds": round(train_s, 3), "s_per_step": round(train_s / max(1, steps), 4),
            "export_seconds": round(export_s, 3), "dev_decode_seconds": round(dev_s, 3),
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "prompt": prompt,
        },
    )
