"""Serving a Whisper model (a CTranslate2 folder) through the `Recognizer` port: batched, offline, CPU-friendly.

    rec = WhisperRecognizer(ct2_dir, card, temperature=1.2, compute_type="int8", beam_size=1, cpu_threads=2)
    rec.transcribe_batch([w1, w2, ...])     # float32 mono 16 kHz in [-1, 1] -> [Transcript, ...]
    out = WhisperOutputs.of(rec, samples)   # one pass; out.texts(), out.confidences(T) for any T

Clips of at most 30 s (Whisper's window) are decoded together: each one's log-mel (faster-whisper's
`FeatureExtractor`, padded to 3000 frames exactly as `WhisperModel.transcribe` pads its first window) is
stacked into one batch, encoded once, decoded by `ctranslate2.models.Whisper.generate` with the prompt
[sot, (en, transcribe when multilingual), notimestamps], and aligned by the model's `align` (cross-attention
of the alignment heads) for word timings, as faster-whisper's `add_word_timestamps` does for one window.
Longer clips fall back to `faster_whisper.WhisperModel.transcribe` (its own 30 s seeking, guided by predicted
timestamps), same decoding settings otherwise.

Decoding settings (both paths): temperature 0 (greedy when beam_size is 1), no temperature fallback, no
voice-activity filter, no no-speech skipping, faster-whisper's default suppressed tokens; so the batched
transcripts equal `WhisperModel.transcribe(..., temperature=0, without_timestamps=True,
condition_on_previous_text=False, no_speech_threshold=None, compression_ratio_threshold=None,
log_prob_threshold=None)` (tests/model/whisper/test_recognizer.py checks it).

Outputs: text = `normalize_for_scoring` of the decoded text (the platform's lower-case alphabet, numbers as
words); words = the normalised words with (start_s, end_s, probability), probability = the mean of the word's
token probabilities from the alignment pass.
"""

from __future__ import annotations

import difflib
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speech_assets.model.contract import ModelCard, Progress, Sample, Transcript
from speech_assets.model.whisper.convert import offline
from speech_assets.progress import ProgressMeter
from speech_assets.text.normalize import normalize_for_scoring

SAMPLE_RATE = 16000
WINDOW_FRAMES = 3000  # 30 s of 10 ms log-mel frames: the encoder's fixed input
WINDOW_S = 30.0
MAX_LENGTH = 448  # Whisper's decoder context (prompt + generated tokens)
# Loop guards. Greedy Whisper sometimes repeats a word until the context is full ("big big big ..."): measured
# on held-out simulated speakers (bench/asr_models.py), 3 of 61 utterances held ~40 % of all errors. A clip can
# only say so much: at most MAX_TOKENS_PER_S tokens a second of audio (fast speech is ~4), and a hypothesis whose
# text compresses better than LOOP_COMPRESSION_RATIO (faster-whisper's threshold, 2.4) is decoded again with
# repeated trigrams banned (deterministic, unlike faster-whisper's temperature fallback).
MAX_TOKENS_PER_S = 8
LOOP_COMPRESSION_RATIO = 2.4
TOKENS_PER_SECOND = 50  # encoder frames per second (10 ms hop, stride 2)
CONTEXT_MARGIN_FRAMES = 50  # audio context fitted to the clip: at least 0.5 s of padding after the audio
# faster-whisper's defaults: punctuation glued onto the neighbouring word before timing words
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
SENTENCE_END_MARKS = ".。!！?？"
_EPS = 1e-6


def calibrate(confidence: np.ndarray | float, temperature: float) -> np.ndarray:
    """sigmoid(logit(c) / T): a monotone map of raw confidences the evaluation fits on dev. T = 1 is the
    identity, T > 1 pulls every confidence towards 0.5, T < 1 pushes it away."""
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    c = np.clip(np.asarray(confidence, dtype=np.float64), _EPS, 1 - _EPS)
    if temperature == 1.0:
        return np.asarray(confidence, dtype=np.float64).clip(0.0, 1.0)
    return 1.0 / (1.0 + np.exp(-(np.log(c) - np.log1p(-c)) / temperature))


def _check_waveform(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"expected a mono 1-D waveform, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"expected float samples in [-1, 1], got {x.dtype}")
    return np.nan_to_num(x.astype(np.float32, copy=False))


def context_frames(frames: int, audio_context_s: float | None) -> int:
    """How many log-mel frames the encoder reads for a clip of `frames` frames of audio.

    None: Whisper's own 30 s window (3000 frames), what the pretrained models were trained on. A number q (seconds):
    the clip's audio plus CONTEXT_MARGIN_FRAMES, rounded up to a multiple of q seconds, at most 3000 ("audio
    context fitted to the clip"). The encoder's cost grows with its input (attention with its square), and every
    clip pays for 30 s under Whisper's window: a 2.4 s clip fitted to a 4 s context is encoded ~7x faster on CPU
    (measured, tiny.en int8, 2 threads). A pretrained decoder has never seen a short context and drops the last
    words, so only a model fine-tuned with the same `audio_context_s` is served with it (the card carries it);
    the rounding keeps the number of distinct lengths small, so training batches (grouped by length) stay full."""
    if audio_context_s is None:
        return WINDOW_FRAMES
    quantum = max(2, int(round(float(audio_context_s) * 100)))
    quantum += quantum % 2  # the encoder's second convolution has stride 2
    return min(WINDOW_FRAMES, int(math.ceil((frames + CONTEXT_MARGIN_FRAMES) / quantum)) * quantum)


def window_features(extractor, waveform: np.ndarray, audio_context_s: float | None = None) -> tuple[np.ndarray, int]:
    """(log-mel [n_mels, window], frames of real audio) for a clip of at most 30 s, computed and padded the way
    `WhisperModel.transcribe` computes its first window (features of the whole clip, the last frame dropped,
    zero-padded), to `context_frames(frames, audio_context_s)` frames (3000 by default). Fine-tuning uses the same
    function, so training sees what serving sees."""
    from faster_whisper.audio import pad_or_trim

    feats = extractor(waveform)
    frames = min(WINDOW_FRAMES, feats.shape[-1] - 1)
    return pad_or_trim(feats[:, :frames], length=context_frames(frames, audio_context_s)), frames


def decoder_prompt(tokenizer) -> list[int]:
    """[sot, (language, transcribe when multilingual), notimestamps] from a faster-whisper `Tokenizer`."""
    return list(tokenizer.sot_sequence) + [tokenizer.no_timestamps]


def confidence_of(score: float, n_tokens: int) -> float:
    """exp(mean log-probability over the generated text tokens and the end-of-text token).

    CTranslate2's `return_scores` gives the cumulative log-probability (end-of-text included) divided by the
    number of text tokens (length_penalty 1); faster-whisper recovers its `avg_logprob` the same way. An empty
    hypothesis has only the end-of-text token: its score is that token's log-probability."""
    cum = score * max(n_tokens, 1)
    return float(math.exp(min(0.0, cum / (n_tokens + 1))))


def _spread(word: str, start: float, end: float, prob: float, pieces: list[str]) -> list[tuple]:
    """One Whisper word that normalises to several ("25" -> "twenty five"): the span shared out evenly."""
    if len(pieces) == 1:
        return [(pieces[0], start, end, prob)]
    step = (end - start) / len(pieces)
    return [(p, round(start + k * step, 3), round(start + (k + 1) * step, 3), prob) for k, p in enumerate(pieces)]


def normalised_words(raw: Sequence[tuple[str, float, float, float]], text: str) -> list[tuple[str, float, float, float]]:
    """The words of `text` (the normalised transcript) with timings from Whisper's raw words.

    Each raw word is normalised on its own; when that reproduces `text`'s words (the usual case) they are the
    answer. When normalising the whole text differs from normalising word by word (a number written across
    words, an abbreviation), the two word lists are matched (difflib) and unmatched text words share the span
    of the raw words they replace, so timings stay in order and inside the clip."""
    pieces: list[tuple] = []
    for word, start, end, prob in raw:
        normal = normalize_for_scoring(word).split()
        if normal:
            pieces.extend(_spread(word, float(start), float(end), float(prob), normal))
    target = text.split()
    got = [p[0] for p in pieces]
    if got == target:
        return pieces
    out: list[tuple] = []
    matcher = difflib.SequenceMatcher(a=got, b=target, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.extend((target[j1 + k],) + tuple(pieces[i1 + k][1:]) for k in range(i2 - i1))
        elif op in ("replace", "insert"):
            if i2 > i1:
                start, end = pieces[i1][1], pieces[i2 - 1][2]
                prob = float(np.mean([p[3] for p in pieces[i1:i2]]))
            else:  # nothing to take the time from: the gap between the neighbours
                start = pieces[i1 - 1][2] if i1 > 0 else (pieces[0][1] if pieces else 0.0)
                end = pieces[i1][1] if i1 < len(pieces) else start
                prob = pieces[i1 - 1][3] if i1 > 0 else (pieces[0][3] if pieces else 0.0)
            step = (end - start) / (j2 - j1)
            out.extend((target[j1 + k], round(start + k * step, 3), round(start + (k + 1) * step, 3), prob)
                       for k in range(j2 - j1))
    return out


def _word_timings(tokenizer, alignment, text_tokens: list[int], num_frames: int) -> list[tuple]:
    """Raw Whisper words (word, start, end, probability) of one window from its `align` result: faster-whisper's
    `find_alignment` + `add_word_timestamps` for a clip that is one window starting at 0 s (so the outputs
    match `WhisperModel.transcribe(word_timestamps=True)` on that clip)."""
    from faster_whisper.transcribe import merge_punctuations

    words, word_tokens = tokenizer.split_to_word_tokens(text_tokens + [tokenizer.eot])
    if len(word_tokens) <= 1 or not alignment.alignments:  # eot only, or no audio frame to align to
        return []
    text_indices = np.array([pair[0] for pair in alignment.alignments])
    time_indices = np.array([pair[1] for pair in alignment.alignments])
    probs = alignment.text_token_probs
    bounds = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    jump_times = time_indices[jumps] / TOKENS_PER_SECOND
    starts, ends = jump_times[bounds[:-1]], jump_times[bounds[1:]]
    timed = [dict(word=w, tokens=t, start=s, end=e, probability=float(np.mean(probs[i:j])))
             for w, t, s, e, i, j in zip(words, word_tokens, starts, ends, bounds[:-1], bounds[1:])]

    durations = np.array([w["end"] - w["start"] for w in timed])
    durations = durations[durations.nonzero()]
    median = min(0.7, float(np.median(durations))) if len(durations) else 0.0
    longest = median * 2
    if len(durations):  # a sentence mark is not allowed to swallow a pause
        for i in range(1, len(timed)):
            if timed[i]["end"] - timed[i]["start"] > longest:
                if timed[i]["word"] in SENTENCE_END_MARKS:
                    timed[i]["end"] = timed[i]["start"] + longest
                elif timed[i - 1]["word"] in SENTENCE_END_MARKS:
                    timed[i]["start"] = timed[i]["end"] - longest
    merge_punctuations(timed, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)

    out = [dict(word=w["word"], start=round(float(w["start"]), 2), end=round(float(w["end"]), 2),
                probability=w["probability"]) for w in timed if w["word"]]
    if out:
        # the first word after leading silence is not allowed to stretch back over it (faster-whisper's rule)
        if out[0]["end"] > median * 4 and (
            out[0]["end"] - out[0]["start"] > longest
            or (len(out) > 1 and out[1]["end"] - out[0]["start"] > longest * 2)
        ):
            if len(out) > 1 and out[1]["end"] - out[1]["start"] > longest:
                boundary = max(out[1]["end"] / 2, out[1]["end"] - longest)
                out[0]["end"] = out[1]["start"] = boundary
            out[0]["start"] = max(0, out[0]["end"] - longest)
        window_end = num_frames / 100.0
        if window_end > out[-1]["start"] and window_end + 0.5 < out[-1]["end"]:
            out[-1]["end"] = max(out[-1]["start"] + median, window_end)
    return [(w["word"], w["start"], w["end"], w["probability"]) for w in out]


@dataclass
class _Decoded:
    """One clip at temperature 1: what `Transcript` and `WhisperOutputs` are made from."""

    text: str
    confidence: float  # raw: exp(mean token log-probability)
    words: list[tuple[str, float, float, float]]
    duration_s: float
    raw_text: str = ""


class WhisperRecognizer:
    """A CTranslate2 Whisper folder as a `Recognizer`.

    confidence (before calibration) = exp(mean log-probability of the generated tokens, end-of-text included);
    `Transcript.confidence` = sigmoid(logit(that) / temperature), the map the evaluation fits on dev.
    `beam_size` defaults to the card's `extra["beam_size"]` (else 1: greedy), `compute_type` to "int8"
    (CTranslate2 quantises the float16 weights on load)."""

    def __init__(self, ct2_dir: Path, card: ModelCard, temperature: float = 1.0, compute_type: str = "int8",
                 beam_size: int | None = None, cpu_threads: int | None = None, batch_size: int = 8,
                 word_timestamps: bool = True, audio_context_s: float | None | str = "card"):
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        offline()  # nothing here may reach a hub (faster-whisper looks there for a missing tokenizer.json)
        import ctranslate2
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor
        from faster_whisper.tokenizer import Tokenizer

        self.ct2_dir = Path(ct2_dir)
        self.card = card
        self.temperature = float(temperature)
        self.compute_type = compute_type
        self.beam_size = int(beam_size if beam_size is not None else card.extra.get("beam_size", 1))
        self.cpu_threads = int(cpu_threads if cpu_threads is not None else min(4, os.cpu_count() or 1))
        self.batch_size = max(1, int(batch_size))
        self.word_timestamps = word_timestamps
        # the encoder's input length: what the model was trained with (its card), unless a caller says otherwise
        self.audio_context_s = card.extra.get("audio_context_s") if audio_context_s == "card" else audio_context_s
        self.model = ctranslate2.models.Whisper(
            str(self.ct2_dir), device="cpu", compute_type=compute_type, intra_threads=self.cpu_threads
        )
        self.hf_tokenizer = tokenizers.Tokenizer.from_file(str(self.ct2_dir / "tokenizer.json"))
        self.tokenizer = Tokenizer(self.hf_tokenizer, self.model.is_multilingual, task="transcribe", language="en")
        self.extractor = FeatureExtractor(feature_size=self.model.n_mels)
        self.prompt = decoder_prompt(self.tokenizer)
        self._long_model = None

    @property
    def decoder(self) -> str:
        return "whisper greedy" if self.beam_size == 1 else f"whisper beam {self.beam_size}"

    def _suppressed(self) -> list[int]:
        from faster_whisper.transcribe import get_suppressed_tokens

        return list(get_suppressed_tokens(self.tokenizer, [-1]))  # a fresh list: the helper extends its argument

    # -- the batched path ------------------------------------------------------------------------------
    def _decode_windows(self, waves: Sequence[np.ndarray]) -> list[_Decoded]:
        """Clips of at most one window, in input order: encoded and decoded together when their encoder inputs
        have the same length (always, under Whisper's 30 s window; by length group under a fitted context)."""
        feats, frames = zip(*(window_features(self.extractor, w, self.audio_context_s) for w in waves))
        out: list[_Decoded | None] = [None] * len(waves)
        for width in sorted({f.shape[-1] for f in feats}):
            idx = [i for i, f in enumerate(feats) if f.shape[-1] == width]
            decoded = self._decode_group([waves[i] for i in idx], [feats[i] for i in idx], [frames[i] for i in idx])
            for i, d in zip(idx, decoded):
                out[i] = d
        return out  # type: ignore[return-value]

    def _decode_group(self, waves: Sequence[np.ndarray], feats: Sequence[np.ndarray], frames: Sequence[int]
                      ) -> list[_Decoded]:
        import ctranslate2

        encoded = self.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack(feats))))
        longest_s = max(len(w) for w in waves) / SAMPLE_RATE
        max_length = min(MAX_LENGTH, len(self.prompt) + int(math.ceil(longest_s * MAX_TOKENS_PER_S)) + 8)

        def generate(view, n: int, no_repeat: int):
            return self.model.generate(
                view, [list(self.prompt) for _ in range(n)], beam_size=self.beam_size, patience=1, length_penalty=1,
                repetition_penalty=1, no_repeat_ngram_size=no_repeat, max_length=max_length, return_scores=True,
                suppress_blank=True, suppress_tokens=self._suppressed(), max_initial_timestamp_index=50,
            )

        results = list(generate(encoded, len(waves), 0))
        for i, r in enumerate(results):
            if compression_ratio(self.tokenizer.decode([t for t in r.sequences_ids[0] if t < self.tokenizer.eot])) \
                    > LOOP_COMPRESSION_RATIO:
                one = encoded if len(waves) == 1 else ctranslate2.StorageView.from_array(
                    np.ascontiguousarray(np.asarray(encoded)[i:i + 1]))
                results[i] = generate(one, 1, 3)[0]
        tokens = [r.sequences_ids[0] for r in results]
        text_tokens = [[t for t in seq if t < self.tokenizer.eot] for seq in tokens]
        raw_texts = [self.tokenizer.decode(seq) for seq in tokens]
        timings: list[list[tuple]] = [[] for _ in waves]
        if self.word_timestamps:
            # align only the clips that said something: `align` has nothing to do for an empty hypothesis
            todo = [i for i, t in enumerate(text_tokens) if t and raw_texts[i].strip() and frames[i] > 0]
            if todo:
                enc = encoded if len(todo) == len(waves) else ctranslate2.StorageView.from_array(
                    np.ascontiguousarray(np.asarray(encoded)[todo]))
                aligned = self.model.align(enc, list(self.tokenizer.sot_sequence), [text_tokens[i] for i in todo],
                                           [frames[i] for i in todo], median_filter_width=7)
                for i, a in zip(todo, aligned):
                    timings[i] = _word_timings(self.tokenizer, a, text_tokens[i], frames[i])
        out = []
        for i, w in enumerate(waves):
            raw = raw_texts[i] if raw_texts[i].strip() else ""
            text = normalize_for_scoring(raw)
            out.append(_Decoded(
                text=text, confidence=confidence_of(results[i].scores[0], len(tokens[i])),
                words=normalised_words(timings[i], text), duration_s=len(w) / SAMPLE_RATE, raw_text=raw,
            ))
        return out

    # -- the fallback for clips longer than one window -----------------------------------------------------
    def _transcribe_long(self, wave: np.ndarray) -> _Decoded:
        from faster_whisper import WhisperModel

        if self._long_model is None:  # loaded on the first long clip only: most requests never need it
            self._long_model = WhisperModel(str(self.ct2_dir), device="cpu", compute_type=self.compute_type,
                                            cpu_threads=self.cpu_threads, local_files_only=True)
        segments, _ = self._long_model.transcribe(
            wave, **self.transcribe_options(word_timestamps=self.word_timestamps, long_form=True))
        segments = list(segments)
        raw = "".join(s.text for s in segments)
        n_tokens = sum(len(s.tokens) for s in segments)
        # mean log-probability over every segment's tokens (each segment's avg_logprob counts its eot)
        cum = sum(s.avg_logprob * (len(s.tokens) + 1) for s in segments)
        conf = math.exp(min(0.0, cum / (n_tokens + len(segments)))) if segments else 0.0
        words = [(w.word, w.start, w.end, w.probability) for s in segments for w in (s.words or [])]
        text = normalize_for_scoring(raw)
        return _Decoded(text, conf, normalised_words(words, text), len(wave) / SAMPLE_RATE, raw)

    def transcribe_options(self, word_timestamps: bool = False, long_form: bool = False) -> dict:
        """The `WhisperModel.transcribe` keywords that decode the way the batched path does.

        `long_form` (clips over 30 s) lets the model predict timestamps, which is how Whisper decides where the
        next window starts; without them (and with word timestamps) faster-whisper seeks to the last word's end
        and decodes the rest of the window again, which on a short clip invents words."""
        return dict(language="en", task="transcribe", beam_size=self.beam_size, best_of=1, patience=1,
                    length_penalty=1, temperature=0.0, compression_ratio_threshold=None, log_prob_threshold=None,
                    no_speech_threshold=None, condition_on_previous_text=False, without_timestamps=not long_form,
                    word_timestamps=word_timestamps, vad_filter=False)

    # -- the port ---------------------------------------------------------------------------------------
    def decode(self, waveforms: Sequence[np.ndarray]) -> list[_Decoded]:
        """Every clip at temperature 1, in input order (short ones batched, long ones one by one)."""
        waves = [_check_waveform(w) for w in waveforms]
        out: list[_Decoded | None] = [None] * len(waves)
        short = [i for i, w in enumerate(waves) if len(w) <= WINDOW_S * SAMPLE_RATE]
        for s in range(0, len(short), self.batch_size):
            idx = short[s: s + self.batch_size]
            for i, d in zip(idx, self._decode_windows([waves[i] for i in idx])):
                out[i] = d
        for i, w in enumerate(waves):
            if out[i] is None:
                out[i] = self._transcribe_long(w)
        return out  # type: ignore[return-value]

    def _transcript(self, d: _Decoded) -> Transcript:
        return Transcript(text=d.text, confidence=float(calibrate(d.confidence, self.temperature)),
                          words=list(d.words), duration_s=d.duration_s)

    def transcribe_batch(self, waveforms: Sequence[np.ndarray]) -> list[Transcript]:
        return [self._transcript(d) for d in self.decode(waveforms)]

    def transcribe(self, waveform: np.ndarray) -> Transcript:
        return self.transcribe_batch([waveform])[0]


@dataclass
class WhisperOutputs:
    """One pass of a Whisper model over samples (`ModelOutputs`): the hypotheses, and their confidences at any
    temperature by `calibrate` (no second pass)."""

    decoder: str
    forward_seconds: float
    utt_ids: list[str]
    hypotheses: list[str]
    raw_confidences: np.ndarray
    transcripts: list[Transcript] = field(default_factory=list)  # at temperature 1

    def texts(self) -> list[str]:
        return list(self.hypotheses)

    def confidences(self, temperature: float) -> np.ndarray:
        return calibrate(self.raw_confidences, temperature)

    @classmethod
    def of(cls, recognizer: WhisperRecognizer, samples: Sequence[Sample], progress: Progress | None = None,
           emit=None) -> "WhisperOutputs":
        """Decode every sample's `waveform()` once, a batch at a time, reporting progress with an ETA."""
        meter = ProgressMeter("whisper decode", total=len(samples), emit=emit, unit="utterance")
        decoded: list[_Decoded] = []
        started = time.perf_counter()
        for s in range(0, len(samples), recognizer.batch_size):
            chunk = samples[s: s + recognizer.batch_size]
            missing = [x.utt_id for x in chunk if x.waveform is None]
            if missing:
                raise ValueError(f"Whisper decodes audio: samples {missing} have no waveform")
            decoded.extend(recognizer.decode([x.waveform() for x in chunk]))
            line = meter.advance(len(chunk))
            if progress is not None and line is not None:
                progress({"event": "stage", "stage": "decode", "step": meter.done_steps, "of": meter.total,
                          "eta_s": meter.eta_s(), "message": line})
        seconds = time.perf_counter() - started
        return cls(
            decoder=recognizer.decoder, forward_seconds=seconds, utt_ids=[x.utt_id for x in samples],
            hypotheses=[d.text for d in decoded], raw_confidences=np.asarray([d.confidence for d in decoded]),
            transcripts=[Transcript(d.text, d.confidence, list(d.words), d.duration_s) for d in decoded],
        )


def compression_ratio(text: str) -> float:
    """len(text) / len(zlib(text)): ~1-2 for speech, large for a decoder stuck repeating itself."""
    import zlib

    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0
