"""The built-in character CTC model behind the model-backend port (`model.backend`).

Same results as before the port: `train` runs `model.train.train` on the samples' log-mel features and fits the
word LM of the lexicon decoder (`lexicon_decode.fit_decoder_spec`); `load` is `inference.Transcriber`; `outputs`
runs one padded forward pass per batch and the checkpoint's own search, and rescales confidences at any
temperature from the kept logits (no extra forward passes or searches while calibration is fitted).
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Sequence
from dataclasses import fields

import numpy as np
import torch

from speech_assets.model.architecture import ModelConfig
from speech_assets.model.contract import ModelCard, Progress, Recognizer, Sample, TrainOutcome
from speech_assets.model.decode import Hypothesis, _tokens_from_path, at_temperature, confidence_at
from speech_assets.model.tokenizer import VOCAB
from speech_assets.model.train import CHECKPOINT_FORMAT, TrainConfig

NAME = "ctc"
VOCABULARY_HASH = hashlib.sha256("".join(VOCAB).encode()).hexdigest()[:16]
TOKENIZER = "characters: blank, space, apostrophe, a-z (29 symbols)"
LM_ORDER_DEFAULT = 3  # word LM for lexicon decoding, fitted on the train transcripts; 0 = greedy decoding only
_TRAIN_KEYS = {f.name for f in fields(TrainConfig)}
_MODEL_KEYS = {f.name for f in fields(ModelConfig)}


def split_config(config: dict) -> tuple[TrainConfig, ModelConfig, int]:
    """A flat backend config (TrainConfig's and ModelConfig's fields, plus `lm_order`) -> the three parts."""
    unknown = set(config) - _TRAIN_KEYS - _MODEL_KEYS - {"lm_order"}
    if unknown:
        raise ValueError(f"unknown ctc backend config keys {sorted(unknown)}")
    tconfig = TrainConfig(**{k: v for k, v in config.items() if k in _TRAIN_KEYS})
    mconfig = ModelConfig(**{k: v for k, v in config.items() if k in _MODEL_KEYS and k not in _TRAIN_KEYS})
    return tconfig, mconfig, int(config.get("lm_order", LM_ORDER_DEFAULT))


class CTCOutputs:
    """One forward pass + search over samples (`ModelOutputs`): hypotheses at temperature 1 and the logits."""

    def __init__(self, logits: list[np.ndarray], hypotheses: list[Hypothesis], frame_shift_s: float, decoder: str,
                 forward_seconds: float, search_seconds: float):
        self.logits, self.hypotheses, self.frame_shift_s = logits, hypotheses, frame_shift_s
        self.decoder, self.forward_seconds, self.search_seconds = decoder, forward_seconds, search_seconds
        self._table: _ConfidenceTable | None = None

    def texts(self) -> list[str]:
        return [h.text for h in self.hypotheses]

    def at(self, temperature: float) -> list[Hypothesis]:
        if temperature == 1.0:
            return self.hypotheses
        return [at_temperature(h, l, temperature, self.frame_shift_s) for h, l in zip(self.hypotheses, self.logits)]

    def confidences(self, temperature: float) -> np.ndarray:
        """Every utterance's confidence at `temperature` (decode.confidence_at, vectorized over the split:
        calibration fitting calls this dozens of times)."""
        if temperature == 1.0:
            return np.asarray([h.confidence for h in self.hypotheses])
        if self._table is None:
            self._table = _ConfidenceTable(self.hypotheses, self.logits)
        return self._table(temperature)


class _ConfidenceTable:
    """The score rows of every emitted token's frames, stacked once, so any temperature's confidences are a
    few array operations: log-softmax of those rows at T, each token's peak over its frames, the mean per
    utterance, exp.  Utterances with no tokens use the mean best posterior over all their frames."""

    def __init__(self, hypotheses: list[Hypothesis], logits: list[np.ndarray]):
        rows, labels, token_starts, utt_tokens, empty = [], [], [], [], []
        n_rows = 0
        for i, (h, l) in enumerate(zip(hypotheses, logits)):
            l = np.asarray(l, dtype=np.float64)
            tokens = _tokens_from_path(h.path) if h.path is not None else []
            if not tokens:
                empty.append((i, l))
                continue
            utt_tokens.append((i, len(tokens)))
            for tok, a, b in tokens:
                token_starts.append(n_rows)
                rows.append(l[a : b + 1])
                labels.extend([tok] * (b - a + 1))
                n_rows += b - a + 1
        self.n = len(hypotheses)
        self.rows = np.concatenate(rows) if rows else np.zeros((0, 1))
        self.labels = np.asarray(labels, dtype=np.int64)
        self.token_starts = np.asarray(token_starts, dtype=np.int64)
        self.utt_index = np.asarray([i for i, _ in utt_tokens], dtype=np.int64)
        counts = np.asarray([k for _, k in utt_tokens], dtype=np.int64)
        self.utt_counts = counts
        self.utt_starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64) if len(counts) else counts
        self.empty = empty

    def __call__(self, temperature: float) -> np.ndarray:
        out = np.zeros(self.n)
        if len(self.rows):
            z = self.rows / temperature
            zmax = z.max(axis=1, keepdims=True)
            lse = (zmax + np.log(np.exp(z - zmax).sum(axis=1, keepdims=True)))[:, 0]
            token_lp = np.maximum.reduceat(z[np.arange(len(z)), self.labels] - lse, self.token_starts)
            mean = np.add.reduceat(token_lp, self.utt_starts) / self.utt_counts
            out[self.utt_index] = np.exp(mean)
        for i, l in self.empty:
            out[i] = confidence_at(Hypothesis("", [], 0.0, path=np.zeros(len(l), dtype=np.int64)), l, temperature)
        return np.clip(out, 0.0, 1.0)


def _features(samples: Sequence[Sample]) -> list[np.ndarray]:
    missing = [s.utt_id for s in samples if s.features is None]
    if missing:
        raise ValueError(f"the ctc backend reads log-mel features; {len(missing)} samples have none "
                         f"(first: {missing[0]})")
    return [np.asarray(s.features, dtype=np.float32) for s in samples]


class CTCBackend:
    name = NAME

    def owns(self, checkpoint: bytes) -> bool:
        # torch.save writes a zip archive whose first member is "<archive>/data.pkl"; the format marker is inside
        # the pickle, so the cheap test is the zip magic plus no other backend's marker (Whisper's is a tar).
        return checkpoint[:4] == b"PK\x03\x04"

    def default_config(self) -> dict:
        return {**ModelConfig().to_dict(), **TrainConfig().to_dict(), "lm_order": LM_ORDER_DEFAULT}

    def train(
        self, train: Sequence[Sample], dev: Sequence[Sample], config: dict, *, seed: int = 0,
        init: bytes | None = None, progress: Progress | None = None, extra: dict | None = None,
    ) -> TrainOutcome:
        from speech_assets.model.train import checkpoint_bytes, load_checkpoint, state_digest
        from speech_assets.model.train import train as train_ctc

        tconfig, mconfig, lm_order = split_config({**config, "seed": seed})
        init_state = None
        if init is not None:
            init_model, _, _ = load_checkpoint(init)
            init_state = init_model.state_dict()
        train_set = [(f, s.text) for f, s in zip(_features(train), train)]
        dev_set = [(f, s.text) for f, s in zip(_features(dev), dev)]
        result = train_ctc(train_set, dev_set, mconfig, tconfig, init_state=init_state, progress=progress)
        decoder_spec = None
        if lm_order > 0:
            decoder_spec = _fit_decoder(result.state_dict, mconfig, train_set, dev_set, lm_order, progress)
        blob = checkpoint_bytes(
            result.state_dict, mconfig, extra={**(extra or {}), **({"decoder": decoder_spec} if decoder_spec else {})}
        )
        return TrainOutcome(
            checkpoint=blob, digest=state_digest(result.state_dict), card=self.describe(blob),
            loss_curve=result.loss_curve, dev_wer_curve=result.dev_wer_curve, model_config=mconfig.to_dict(),
            train_config=tconfig.to_dict(), steps=result.steps, seconds=result.seconds,
            stopped_reason=result.stopped_reason, n_train=result.n_train,
            n_skipped={"outside_alphabet_or_empty": result.n_skipped} if result.n_skipped else {},
            best_dev_wer=result.best_dev_wer,
            summary={"decoder": decoder_spec, "warm_started": result.warm_started,
                     "epochs_completed": result.epochs_completed, "best_step": result.best_step},
        )

    def load(self, checkpoint: bytes, *, temperature: float = 1.0, decoder: str | None = None) -> Recognizer:
        from speech_assets.model.inference import Transcriber

        transcriber = Transcriber.from_checkpoint(checkpoint, temperature=temperature, decoder=decoder)
        transcriber.card = self.describe(checkpoint)
        return transcriber

    @torch.no_grad()
    def outputs(self, checkpoint: bytes, samples: Sequence[Sample], *, progress: Progress | None = None,
                batch_size: int = 32, decoder: str | None = None) -> CTCOutputs:
        from speech_assets.model.inference import make_search
        from speech_assets.model.train import load_checkpoint

        model, config, extra = load_checkpoint(checkpoint)
        model.eval()
        feats = _features(samples)
        logits: list[np.ndarray | None] = [None] * len(feats)
        order = sorted(range(len(feats)), key=lambda i: feats[i].shape[0])
        started = time.perf_counter()
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                lengths = torch.tensor([feats[i].shape[0] for i in idx])
                batch = torch.zeros(len(idx), int(lengths.max()), feats[idx[0]].shape[1])
                for row, i in enumerate(idx):
                    batch[row, : lengths[row]] = torch.from_numpy(feats[i])
                log_probs, out_lengths = model(batch, lengths)
                for row, i in enumerate(idx):
                    logits[i] = log_probs[row, : out_lengths[row]].numpy().copy()
        forward_s = time.perf_counter() - started
        search = make_search(extra, decoder, frame_shift_s=config.frame_shift_s)
        started = time.perf_counter()
        hyps = [search(l) for l in logits]
        kind = decoder or (extra.get("decoder", {}).get("kind", "lexicon") if extra.get("decoder") else "greedy")
        return CTCOutputs(logits, hyps, config.frame_shift_s, kind, forward_s,  # type: ignore[arg-type]
                          time.perf_counter() - started)

    def describe(self, checkpoint: bytes) -> ModelCard:
        ckpt = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not a {CHECKPOINT_FORMAT} checkpoint")
        extra = ckpt.get("extra", {})
        params = sum(int(t.numel()) for t in ckpt["state_dict"].values())
        return ModelCard(
            family=NAME, format=CHECKPOINT_FORMAT, parameters=params,
            base_model=extra.get("parent_version"), tokenizer=TOKENIZER, vocabulary_hash=VOCABULARY_HASH,
            extra={"model_config": ckpt["model_config"],
                   "decoder": (extra.get("decoder") or {}).get("kind", "greedy") if extra.get("decoder") else "greedy",
                   "feature_config": extra.get("feature_config")},
        )


def _fit_decoder(state_dict: dict, mconfig: ModelConfig, train_set, dev_set, order: int,
                 progress: Progress | None) -> dict:
    from speech_assets.model.architecture import CTCModel
    from speech_assets.model.lexicon_decode import fit_decoder_spec

    trained = CTCModel(mconfig)
    trained.load_state_dict(state_dict)
    if progress:
        progress({"event": "stage", "message": f"fitting the word LM (order {order}) and tuning it on dev"})
    spec = fit_decoder_spec(trained, [t for _, t in train_set], dev_set, order=order)
    if progress:
        progress({"event": "stage", "message": (
            f"word LM: order {order}, {spec['lexicon_words']} words; tuned on dev: lm_weight {spec['lm_weight']}, "
            f"word_score {spec['word_score']}, dev WER {spec['dev_wer']}")})
    return spec
