"""Serving-side API: checkpoint bytes in, transcripts out.

    tr = Transcriber.from_checkpoint(blob, temperature=1.3)
    tr.transcribe(waveform)          # float32, 16 kHz, mono, [-1, 1]
    tr.transcribe_batch([w1, w2])    # one padded forward pass per batch

Imports only torch, numpy, torchaudio, this package's model modules and the
log-mel extractor (speech_assets.features.logmel, itself torch/torchaudio
only), so a service (BentoML) can ship it without the orchestration stack.
Features are computed by the same LogMelExtractor as in training, with the
FeatureConfig recorded in the checkpoint's extra ("feature_config"), or the
default FeatureConfig for a checkpoint that has none.

Decoding: "lexicon" (word LM + lexicon beam search, the default when the
checkpoint carries a "decoder" entry), "beam" (character prefix beam search)
or "greedy".  The search always runs at temperature 1; the calibrated
temperature only rescales the confidences (decode.at_temperature).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from speech_assets.features.logmel import FeatureConfig, LogMelExtractor, to_storage_dtype
from speech_assets.model.architecture import CTCModel, ModelConfig
from speech_assets.model.contract import Transcript  # noqa: F401  (re-exported: the service's result type)
from speech_assets.model.decode import Hypothesis, at_temperature, beam_search, greedy_decode
from speech_assets.model.train import load_checkpoint


DECODERS = ("greedy", "beam", "lexicon")


def make_search(extra: dict, decoder: str | None = None, beam_width: int = 8, frame_shift_s: float = 0.04):
    """scores [T, V] -> Hypothesis at temperature 1, by the named decoder (default: the checkpoint's)."""
    spec = extra.get("decoder")
    decoder = decoder or (spec.get("kind", "lexicon") if spec else "greedy")
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    if decoder == "lexicon":
        if not spec:
            raise ValueError("this checkpoint has no lexicon/LM; use decoder='greedy' or 'beam'")
        from speech_assets.model.lexicon_decode import LexiconDecoder
        from speech_assets.model.lm import NgramLM

        lex = LexiconDecoder(
            NgramLM.from_arpa(spec["arpa"]), lm_weight=spec["lm_weight"], word_score=spec["word_score"],
            beam_size=spec.get("beam_size", 32),
        )
        return lambda scores: lex.decode(scores, 1.0, frame_shift_s)
    if decoder == "beam":
        return lambda scores: beam_search(scores, beam_width, 1.0, frame_shift_s)
    return lambda scores: greedy_decode(scores, 1.0, frame_shift_s)


class Transcriber:
    def __init__(
        self,
        model: CTCModel,
        config: ModelConfig,
        temperature: float = 1.0,
        beam_width: int = 1,
        feature_config: FeatureConfig | None = None,
        extra: dict | None = None,
        decoder: str | None = None,
    ):
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        fc = feature_config or FeatureConfig(
            sample_rate=config.sample_rate, hop_length=config.hop_length, n_mels=config.n_mels
        )
        if (fc.sample_rate, fc.hop_length, fc.n_mels) != (config.sample_rate, config.hop_length, config.n_mels):
            raise ValueError(f"feature config {fc} does not match the model's {config}")
        self.model = model.eval()
        self.config = config
        self.feature_config = fc
        self.temperature = float(temperature)
        self.beam_width = int(beam_width)
        self.extra = extra or {}
        self.card = None  # the port's ModelCard, set by CTCBackend.load
        if decoder is None and beam_width > 1:
            decoder = "beam"  # the older way of asking for a beam search
        self._search = make_search(self.extra, decoder, max(beam_width, 2), config.frame_shift_s)
        self._extract = LogMelExtractor(fc, threads=None)

    @classmethod
    def from_checkpoint(
        cls, data: bytes, temperature: float = 1.0, beam_width: int = 1, decoder: str | None = None
    ) -> "Transcriber":
        model, config, extra = load_checkpoint(data)
        fc = FeatureConfig(**extra["feature_config"]) if "feature_config" in extra else None
        return cls(
            model, config, temperature=temperature, beam_width=beam_width, feature_config=fc, extra=extra,
            decoder=decoder,
        )

    def features(self, waveform: np.ndarray) -> torch.Tensor:
        """float32 mono waveform -> log-mel [frames, n_mels]."""
        return self._features([waveform])[0]

    def _features(self, waveforms: Sequence[np.ndarray]) -> list[torch.Tensor]:
        for x in waveforms:
            x = np.asarray(x)
            if x.ndim != 1:
                raise ValueError(f"expected a mono 1-D waveform, got shape {x.shape}")
            if not np.issubdtype(x.dtype, np.floating):
                raise TypeError(f"expected float samples in [-1, 1], got {x.dtype}")
        waves = [np.nan_to_num(np.asarray(x, dtype=np.float32)) for x in waveforms]
        # through the storage dtype: the same numbers training read from the feature store
        return [torch.from_numpy(to_storage_dtype(f).astype(np.float32)) for f in self._extract(waves)]

    def transcribe(self, waveform: np.ndarray) -> Transcript:
        return self.transcribe_batch([waveform])[0]

    def transcribe_batch(self, waveforms: Sequence[np.ndarray], batch_size: int = 16) -> list[Transcript]:
        feats = self._features(waveforms)
        return self.transcribe_features(feats, [len(w) / self.feature_config.sample_rate for w in waveforms], batch_size)

    @torch.no_grad()
    def transcribe_features(
        self, feats: Sequence[torch.Tensor | np.ndarray], durations_s: Sequence[float] | None = None,
        batch_size: int = 16,
    ) -> list[Transcript]:
        """Transcripts of log-mel features already computed (e.g. the feature store's, for monitoring)."""
        feats = [torch.as_tensor(np.asarray(f, dtype=np.float32)) if not isinstance(f, torch.Tensor) else f for f in feats]
        if durations_s is None:
            durations_s = [f.shape[0] * self.feature_config.hop_length / self.feature_config.sample_rate for f in feats]
        out: list[Transcript | None] = [None] * len(feats)
        # similar lengths together: less padding in each forward pass
        order = sorted(range(len(feats)), key=lambda i: feats[i].shape[0])
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            lengths = torch.tensor([feats[i].shape[0] for i in idx])
            x = torch.nn.utils.rnn.pad_sequence([feats[i] for i in idx], batch_first=True)
            log_probs, out_lengths = self.model(x, lengths)
            for row, i in enumerate(idx):
                scores = log_probs[row, : int(out_lengths[row])]
                hyp = self._decode(scores)
                out[i] = Transcript(
                    text=hyp.text,
                    confidence=hyp.confidence,
                    words=[(w.word, w.start_s, w.end_s, w.confidence) for w in hyp.words],
                    duration_s=float(durations_s[i]),
                )
        return out  # type: ignore[return-value]

    def _decode(self, scores: torch.Tensor) -> Hypothesis:
        hyp = self._search(scores)
        if self.temperature != 1.0:
            hyp = at_temperature(hyp, scores, self.temperature, self.config.frame_shift_s)
        return hyp
