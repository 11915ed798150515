"""The batched Whisper recognizer against faster-whisper's own transcribe, on real recordings (pocketsphinx's)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from speech_assets.model.contract import ModelCard, Recognizer, Sample
from speech_assets.model.whisper.recognizer import (
    WhisperOutputs,
    WhisperRecognizer,
    calibrate,
    normalised_words,
)
from speech_assets.text.normalize import is_normalised, normalize_for_scoring
from tests.model.whisper.conftest import THREADS

CARD = ModelCard("whisper", "speech_assets.whisper/1", 37_760_256, "openai/whisper-tiny.en", "whisper BPE", "0" * 16,
                 extra={"beam_size": 1})


def _read(path) -> np.ndarray:
    pcm, rate = sf.read(path, dtype="int16")
    assert rate == 16000 and pcm.ndim == 1
    return pcm.astype(np.float32) / 32768.0


@pytest.fixture(scope="module")
def waves(clips) -> list[np.ndarray]:
    return [_read(p) for p in clips]


@pytest.fixture(scope="module")
def recognizer(tiny_dir) -> WhisperRecognizer:
    import torch

    torch.set_num_threads(THREADS)
    return WhisperRecognizer(tiny_dir, CARD, cpu_threads=THREADS, batch_size=8)


@pytest.fixture(scope="module")
def batched(recognizer, waves):
    started = time.perf_counter()
    out = recognizer.transcribe_batch(waves)
    print(f"\nbatched transcription of {len(waves)} clips: {time.perf_counter() - started:.2f} s")
    return out


@pytest.fixture(scope="module")
def reference(tiny_dir, recognizer, waves):
    """faster-whisper's WhisperModel.transcribe with the recognizer's decoding settings, clip by clip: the text
    (no word timestamps: with them faster-whisper re-decodes the window after the last word) and the words of
    its first window (word timestamps on)."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(tiny_dir), device="cpu", compute_type="int8", cpu_threads=THREADS, local_files_only=True)
    out = []
    started = time.perf_counter()
    for w in waves:
        segments = list(model.transcribe(w, **recognizer.transcribe_options())[0])
        first = list(model.transcribe(w, **recognizer.transcribe_options(word_timestamps=True))[0])[0]
        out.append(("".join(s.text for s in segments), segments,
                    [(x.word, x.start, x.end, x.probability) for x in first.words]))
    print(f"\nfaster-whisper, one clip at a time (twice each): {time.perf_counter() - started:.2f} s")
    return out


def test_is_a_recognizer(recognizer):
    assert isinstance(recognizer, Recognizer)
    assert recognizer.decoder == "whisper greedy" and recognizer.beam_size == 1  # from the card's extra


def test_batched_text_equals_faster_whisper_transcribe(batched, reference):
    for t, (raw, segments, _) in zip(batched, reference):
        assert t.text == normalize_for_scoring(raw)
        assert t.text and is_normalised(t.text)
        # the same mean log-probability faster-whisper reports for its (single) segment
        assert t.confidence == pytest.approx(float(np.exp(segments[0].avg_logprob)), abs=1e-3)
    assert batched[0].text == "ten of clubs"  # Whisper writes "10 of clubs."; the platform scores words


def test_word_timings_match_faster_whisper_and_stay_in_the_clip(batched, reference, waves):
    for t, (_, _, raw_words), w in zip(batched, reference, waves):
        assert [x[0] for x in t.words] == t.text.split()
        expected = normalised_words(raw_words, t.text)
        assert [x[0] for x in t.words] == [x[0] for x in expected]
        np.testing.assert_allclose([x[1:3] for x in t.words], [x[1:3] for x in expected], atol=0.021)
        # the alignment pass runs batched here: padding moves a token's probability a little, never much
        assert [x[3] for x in t.words] == pytest.approx([x[3] for x in expected], abs=0.05)
        duration = len(w) / 16000
        ends = -1.0
        for _, start, end, prob in t.words:
            assert ends <= start + 1e-9 <= end + 1e-9 <= duration + 0.02 and 0.0 <= prob <= 1.0
            ends = end
        assert t.duration_s == pytest.approx(duration)


def test_batch_of_eight_equals_one_by_one(recognizer, waves, batched):
    started = time.perf_counter()
    one_by_one = [recognizer.transcribe(w) for w in waves[:8]]
    print(f"\none clip at a time, 8 clips: {time.perf_counter() - started:.2f} s")
    assert [t.text for t in one_by_one] == [t.text for t in batched[:8]]
    np.testing.assert_allclose([t.confidence for t in one_by_one], [t.confidence for t in batched[:8]], atol=0.02)


def test_confidences_are_probabilities_and_temperature_pulls_them_to_one_half(batched):
    raw = np.array([t.confidence for t in batched])
    assert np.all((raw > 0) & (raw < 1))
    np.testing.assert_allclose(calibrate(raw, 1.0), raw)
    hot = calibrate(raw, 2.0)
    assert np.all(np.abs(hot - 0.5) < np.abs(raw - 0.5))
    assert np.all(np.sign(hot - 0.5) == np.sign(raw - 0.5))  # monotone: the order is kept
    assert np.all(np.argsort(hot) == np.argsort(raw))
    assert np.all(np.abs(calibrate(raw, 0.5) - 0.5) > np.abs(raw - 0.5))
    with pytest.raises(ValueError):
        calibrate(raw, 0.0)


def test_recognizer_temperature_is_applied(tiny_dir, waves, batched):
    hot = WhisperRecognizer(tiny_dir, CARD, temperature=3.0, cpu_threads=THREADS).transcribe(waves[5])
    assert hot.text == batched[5].text
    assert hot.confidence == pytest.approx(float(calibrate(batched[5].confidence, 3.0)), abs=1e-3)


def test_outputs_one_pass_rescored_at_any_temperature(recognizer, waves, batched):
    samples = [Sample(f"u{i}", "", waveform=lambda w=w: w) for i, w in enumerate(waves[:3])]
    events = []
    out = WhisperOutputs.of(recognizer, samples, progress=events.append)
    assert out.decoder == "whisper greedy" and out.forward_seconds > 0
    assert out.texts() == [t.text for t in batched[:3]]
    np.testing.assert_allclose(out.confidences(1.0), [t.confidence for t in batched[:3]], atol=1e-6)
    np.testing.assert_allclose(out.confidences(2.5), calibrate(out.confidences(1.0), 2.5))
    assert events and events[-1]["step"] == 3 and events[-1]["of"] == 3 and "3/3" in events[-1]["message"]
    with pytest.raises(ValueError, match="no waveform"):
        WhisperOutputs.of(recognizer, [Sample("x", "")])


def test_silence_gives_an_empty_transcript(recognizer):
    silent = recognizer.transcribe_batch([np.zeros(16000, np.float32), np.zeros(0, np.float32)])
    for t in silent:
        assert t.text == "" and t.words == [] and 0.0 < t.confidence < 1.0


def test_clips_longer_than_one_window_fall_back_to_faster_whisper(recognizer, waves):
    long = np.concatenate(waves[5:] + waves[:5])  # 34 s: librivox, then the cards
    assert len(long) / 16000 > 30
    t = recognizer.transcribe(long)
    assert "dashwood" in t.text and "clubs" in t.text and is_normalised(t.text)
    assert [x[0] for x in t.words] == t.text.split()
    starts = [x[1] for x in t.words]
    assert starts == sorted(starts) and t.words[-1][2] <= len(long) / 16000 + 0.02
    assert 0.0 < t.confidence < 1.0


def test_inputs_are_checked(recognizer):
    with pytest.raises(ValueError, match="mono"):
        recognizer.transcribe(np.zeros((2, 1600), np.float32))
    with pytest.raises(TypeError, match="float"):
        recognizer.transcribe(np.zeros(1600, np.int16))


def test_normalised_words_follow_the_normalised_text():
    # a word that normalises to two ("25" -> "twenty five") shares its span
    words = normalised_words([(" 25", 0.0, 1.0, 0.8), (" apples.", 1.0, 1.5, 0.9)], "twenty five apples")
    assert words == [("twenty", 0.0, 0.5, 0.8), ("five", 0.5, 1.0, 0.8), ("apples", 1.0, 1.5, 0.9)]
    # whole-text normalisation differs from word by word ("Mr" expands only before a capitalised name)
    text = normalize_for_scoring("Mr Smith left")
    words = normalised_words([(" Mr", 0.0, 0.4, 0.7), (" Smith", 0.4, 0.9, 0.9), (" left", 0.9, 1.2, 0.6)], text)
    assert [w[0] for w in words] == text.split()
    assert [w[1] for w in words] == sorted(w[1] for w in words) and words[-1][2] == 1.2


def test_the_loop_guard_tells_a_stuck_decoder_from_speech():
    from speech_assets.model.whisper.recognizer import LOOP_COMPRESSION_RATIO, compression_ratio

    stuck = "and the lab a big" + " big" * 60
    speech = " and mister john dashwood had then leisure to consider how much there might be prudently"
    assert compression_ratio(stuck) > LOOP_COMPRESSION_RATIO > compression_ratio(speech) > 0.0
    assert compression_ratio("") == 0.0


def test_context_frames_fit_the_clip_and_default_to_whispers_window():
    from speech_assets.model.whisper.recognizer import CONTEXT_MARGIN_FRAMES, WINDOW_FRAMES, context_frames

    assert context_frames(120, None) == WINDOW_FRAMES  # the pretrained models' 30 s window
    assert context_frames(120, 2.0) == 200  # 1.2 s + 0.5 s margin, rounded up to 2 s
    assert context_frames(200 - CONTEXT_MARGIN_FRAMES, 2.0) == 200
    assert context_frames(201 - CONTEXT_MARGIN_FRAMES, 2.0) == 400  # the margin is never cut
    assert context_frames(2990, 2.0) == WINDOW_FRAMES  # never past the encoder's 1500 positions
    assert context_frames(120, 0.333) % 2 == 0  # the encoder's stride-2 convolution needs an even length


def test_a_fitted_context_decodes_by_length_group_in_input_order(tiny_dir, waves):
    """Clips of different lengths under a fitted context: each encoded at its own length (grouped, never padded
    to a neighbour's), results back in input order, the same as one at a time, word timings inside the clip."""
    card = ModelCard(**{**CARD.__dict__, "extra": {"beam_size": 1, "audio_context_s": 2.0}})
    rec = WhisperRecognizer(tiny_dir, card, cpu_threads=THREADS, batch_size=8)
    assert rec.audio_context_s == 2.0
    picked = [waves[0], waves[5], waves[1], waves[6]]  # cards (short) and librivox (longer), interleaved
    together = rec.transcribe_batch(picked)
    alone = [rec.transcribe(w) for w in picked]
    assert [t.text for t in together] == [t.text for t in alone]
    assert all(t.text for t in together)
    for t, w in zip(together, picked):
        assert all(0.0 <= s <= e <= len(w) / 16000 + 0.5 for _, s, e, _ in t.words)
    # the card's context can be overridden: the 30 s window decodes these clips as the plain recognizer does
    assert WhisperRecognizer(tiny_dir, card, cpu_threads=THREADS, audio_context_s=None).audio_context_s is None
