"""Optional pocketsphinx baseline.

A fixed, well-known recognizer scored on the same utterances tells a reader
whether a model's WER is good or merely a number.  This uses the English
model that ships inside the PyPI ``pocketsphinx`` package - nothing is
downloaded - with the decoder's default configuration (only its logging is
turned down).  When pocketsphinx or its bundled model is missing the
baseline is *skipped with a reason*; it is never replaced by a fake result.

pocketsphinx output is normalized the way reference transcripts are
(lowercase a-z, apostrophe, single spaces) so its WER is comparable.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

__all__ = [
    "BaselineUnavailable",
    "normalize_transcript",
    "pocketsphinx_available",
    "pocketsphinx_unavailable_reason",
    "transcribe_pocketsphinx",
]

SAMPLE_RATE = 16000  # the bundled en-us acoustic model is a 16 kHz model

class BaselineUnavailable(RuntimeError):
    """The baseline cannot run here; the message says why."""


def normalize_transcript(text: str | None) -> str:
    """The platform's one normaliser (`text.normalize_for_scoring`): case, punctuation, digits to words;
    never raises (what cannot be mapped becomes a word break, so "read(2)" or "a-b" do not glue words)."""
    from speech_assets.text import normalize_for_scoring

    return normalize_for_scoring(text)


def pocketsphinx_unavailable_reason() -> str | None:
    """``None`` when the baseline can run, else a sentence saying why not."""
    try:
        import pocketsphinx
    except Exception as exc:  # ImportError, or a broken native extension
        return f"pocketsphinx is not importable: {type(exc).__name__}: {exc}"
    try:
        model_dir = pocketsphinx.get_model_path()
    except Exception as exc:
        return f"pocketsphinx has no bundled model path: {type(exc).__name__}: {exc}"
    hmm = os.path.join(model_dir, "en-us", "en-us")
    if not os.path.isdir(hmm):
        return f"pocketsphinx's bundled English acoustic model is missing (expected {hmm})"
    return None


def pocketsphinx_available() -> bool:
    return pocketsphinx_unavailable_reason() is None


def _to_int16(wave: np.ndarray) -> np.ndarray:
    x = np.asarray(wave)
    if x.ndim != 1:
        raise ValueError(f"expected mono 1-D waveforms, got shape {x.shape}")
    if x.dtype == np.int16:
        return x
    if np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"integer waveforms must be int16 PCM, got {x.dtype}")
    # float audio is taken as full scale [-1, 1]; clip so overs saturate
    # instead of wrapping around
    return np.round(np.clip(x.astype(np.float64), -1.0, 1.0) * 32767.0).astype(np.int16)


def transcribe_pocketsphinx(waveforms_16k: Sequence[np.ndarray]) -> list[str]:
    """Transcribe 16 kHz mono waveforms (float in [-1, 1] or int16 PCM).

    One decoder is built for the batch (loading the model dominates the cost
    of short utterances) and each waveform is decoded as a full utterance.
    Raises :class:`BaselineUnavailable` when pocketsphinx cannot run here.
    """
    reason = pocketsphinx_unavailable_reason()
    if reason is not None:
        raise BaselineUnavailable(reason)
    from pocketsphinx import Decoder

    pcm = [_to_int16(w) for w in waveforms_16k]
    # default config = bundled en-us acoustic model, dictionary and LM;
    # loglevel only silences the per-utterance INFO chatter on stderr
    decoder = Decoder(loglevel="ERROR")
    if int(decoder.config["samprate"]) != SAMPLE_RATE:
        raise BaselineUnavailable(f"pocketsphinx default sample rate is {decoder.config['samprate']}, not 16000")
    out = []
    for x in pcm:
        if x.size == 0:
            out.append("")
            continue
        decoder.start_utt()
        decoder.process_raw(np.ascontiguousarray(x, dtype="<i2").tobytes(), no_search=False, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        out.append(normalize_transcript(hyp.hypstr if hyp is not None else ""))
    return out
