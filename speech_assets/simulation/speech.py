"""Labelled simulated speech traffic, rendered with espeak-ng and sox.

Accents are espeak-ng's built-in West-Germanic English voices (no mbrola);
speakers within an accent are voice variants (``+m1`` ... ``+f5``) plus a
pitch offset; each utterance gets its own speaking rate; a channel model
(clean, telephone, noisy, reverb) is applied; output is 16 kHz mono PCM16 WAV
with a NeMo-style JSONL manifest.

Everything is a pure function of the :class:`SimulationConfig`: the same
config (seed included) gives byte-identical WAV files and manifest, whatever
the number of workers.

Rendering pipeline for one utterance (no temporary files; all pipes)::

    text -> espeak-ng --stdout (22.05 kHz s16)
         -> sox: resample to 16 kHz float                      [all channels]
         -> telephone: sox band-pass 300-3400 Hz, 8 kHz, G.711 mu-law,
                       then sox decode + resample back to 16 kHz
            reverb:    sox pad + reverb
            noisy:     + pink noise from a seeded numpy RNG at snr_db
         -> peak level, round to int16, RIFF/WAVE via the ``wave`` module

sox always runs with ``-D`` (no dither) and ``-R`` (repeatable), so nothing
random leaks into the output.

Manifest row (one JSON object per line, keys in this order)::

    audio_filepath  str    "audio/<utt_id>.wav", relative to the batch dir
    duration        float  seconds (= samples / 16000, rounded to 1e-6)
    text            str    normalized transcript
    speaker         str    "<accent>-<variant>-p<pitch>", e.g. "us-m3-p45"
    accent          str    accent group, e.g. "us", "scottish"
    channel         str    "clean" | "telephone" | "noisy" | "reverb"
    snr_db          float | null   requested SNR for "noisy", else null
    rate_wpm        int    espeak-ng speaking rate, words per minute
    kind            str    sentence kind (see speech_assets.simulation.sentences)
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import time
import wave
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speech_assets.simulation.sentences import SentenceGenerator

__all__ = [
    "ACCENTS",
    "TRAINING_ACCENTS",
    "UNSEEN_ACCENTS",
    "VARIANTS",
    "CHANNELS",
    "SAMPLE_RATE",
    "READY_MARKER",
    "MANIFEST_NAME",
    "Accent",
    "Speaker",
    "UtteranceSpec",
    "SimulationConfig",
    "speakers_for_accent",
    "plan_batch",
    "render_utterance",
    "encode_wav",
    "generate_batch",
    "parse_channel_weights",
    "summarize_manifest",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
READY_MARKER = "_READY"
MANIFEST_NAME = "manifest.jsonl"
ESPEAK = "espeak-ng"
SOX = "sox"


@dataclass(frozen=True)
class Accent:
    name: str
    language: str  # espeak-ng language tag, for humans
    voice: str  # espeak-ng voice file that -v takes


# Voices are addressed by their file ("gmw/en-US"), not by language tag: with
# espeak-ng 1.51 "en-gb+m3" silently ignores the variant (every "+variant" of
# "en-gb" renders identically), while "gmw/en+m3" honours it.
ACCENTS: dict[str, Accent] = {
    a.name: a
    for a in (
        Accent("us", "en-us", "gmw/en-US"),
        Accent("gb", "en-gb", "gmw/en"),
        Accent("rp", "en-gb-x-rp", "gmw/en-GB-x-rp"),
        Accent("scottish", "en-gb-scotland", "gmw/en-GB-scotland"),
        Accent("lancaster", "en-gb-x-gbclan", "gmw/en-GB-x-gbclan"),
        Accent("west_midlands", "en-gb-x-gbcwmd", "gmw/en-GB-x-gbcwmd"),
        Accent("caribbean", "en-029", "gmw/en-029"),
        Accent("nyc", "en-us-nyc", "gmw/en-US-nyc"),
    )
}
#: The default "training population".
TRAINING_ACCENTS: tuple[str, ...] = ("us", "gb", "rp", "scottish")
#: Held out of the default config, for later drift scenarios.
UNSEEN_ACCENTS: tuple[str, ...] = ("caribbean", "nyc", "west_midlands", "lancaster")

VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
)
PITCH_RANGE = (20, 80)  # espeak-ng -p, 0..99, 50 is the voice's default

CHANNELS: tuple[str, ...] = ("clean", "telephone", "noisy", "reverb")

_ID_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


# ------------------------------------------------------------------ config --
@dataclass
class SimulationConfig:
    """What to simulate.  Every field feeds the seeded plan; see module doc."""

    n_utterances: int = 100
    seed: int = 0
    accents: list[str] = field(default_factory=lambda: list(TRAINING_ACCENTS))
    #: channel -> relative weight
    channels: dict[str, float] = field(default_factory=lambda: {"clean": 0.8, "noisy": 0.2})
    speakers_per_accent: int = 6
    #: inclusive range the per-utterance SNR is drawn from (noisy channel)
    snr_db_range: tuple[float, float] = (5.0, 20.0)
    #: inclusive range of espeak-ng speaking rates, words per minute
    rate_wpm_range: tuple[int, int] = (140, 200)
    pii_fraction: float = 0.03
    #: process-pool size; 1 renders in this process
    workers: int = 2
    #: seed of the speaker population; None -> ``seed``.  Fix it to keep the
    #: same speakers across batches that use different seeds.
    speaker_seed: int | None = None
    #: sentence-kind mix (see sentences.DEFAULT_KIND_WEIGHTS); None -> default
    kind_weights: dict[str, float] | None = None
    #: output peak level range, dBFS
    level_dbfs_range: tuple[float, float] = (-6.0, -1.0)
    #: utterance ids are "<id_prefix>-<seed>-<index:06d>"
    id_prefix: str = "sim"

    def __post_init__(self) -> None:
        if self.n_utterances < 0:
            raise ValueError(f"n_utterances must be >= 0, got {self.n_utterances}")
        if self.seed < 0 or (self.speaker_seed is not None and self.speaker_seed < 0):
            raise ValueError("seed and speaker_seed must be non-negative integers")
        self.accents = list(self.accents)
        if not self.accents:
            raise ValueError("accents must not be empty")
        unknown = [a for a in self.accents if a not in ACCENTS]
        if unknown:
            raise ValueError(f"unknown accents {unknown}; choose from {sorted(ACCENTS)}")
        if len(set(self.accents)) != len(self.accents):
            raise ValueError(f"duplicate accents in {self.accents}")
        self.channels = dict(self.channels)
        bad = [c for c in self.channels if c not in CHANNELS]
        if bad:
            raise ValueError(f"unknown channels {bad}; choose from {list(CHANNELS)}")
        if (
            not self.channels
            or any(w < 0 for w in self.channels.values())
            or sum(self.channels.values()) <= 0
        ):
            raise ValueError(f"channel weights must be non-negative, not all zero: {self.channels}")
        if self.speakers_per_accent < 1:
            raise ValueError("speakers_per_accent must be >= 1")
        if self.speakers_per_accent > len(VARIANTS) * (PITCH_RANGE[1] - PITCH_RANGE[0] + 1):
            raise ValueError("speakers_per_accent exceeds the distinct voices available")
        lo, hi = self.snr_db_range
        if lo > hi:
            raise ValueError(f"bad snr_db_range {self.snr_db_range}")
        lo, hi = self.rate_wpm_range
        if not (80 <= lo <= hi <= 450):
            raise ValueError(f"rate_wpm_range must lie within 80..450, got {self.rate_wpm_range}")
        lo, hi = self.level_dbfs_range
        if not (lo <= hi <= 0):
            raise ValueError(f"bad level_dbfs_range {self.level_dbfs_range}")
        if not 0 <= self.pii_fraction <= 1:
            raise ValueError(f"pii_fraction must be in [0, 1], got {self.pii_fraction}")
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        if not _ID_PREFIX_RE.match(self.id_prefix):
            raise ValueError(f"id_prefix must match {_ID_PREFIX_RE.pattern}")


def parse_channel_weights(spec: str) -> dict[str, float]:
    """``"clean:0.8,noisy:0.2"`` -> ``{"clean": 0.8, "noisy": 0.2}``.

    A bare name means weight 1 (``"telephone"``).
    """
    out: dict[str, float] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, weight = part.partition(":")
        name = name.strip()
        if name not in CHANNELS:
            raise ValueError(f"unknown channel {name!r}; choose from {list(CHANNELS)}")
        try:
            out[name] = float(weight) if sep else 1.0
        except ValueError:
            raise ValueError(f"bad weight in {part!r}") from None
    if not out:
        raise ValueError(f"no channels in {spec!r}")
    return out


# ---------------------------------------------------------------- speakers --
@dataclass(frozen=True)
class Speaker:
    speaker_id: str
    accent: str
    variant: str
    pitch: int

    @property
    def voice(self) -> str:
        return f"{ACCENTS[self.accent].voice}+{self.variant}"


def speakers_for_accent(accent: str, n: int, seed: int) -> list[Speaker]:
    """The first ``n`` speakers of ``accent`` for ``seed``.

    Speaker ``k`` depends only on (seed, accent, k) and the speakers before
    it, so asking for more speakers keeps the first ones unchanged.
    """
    if accent not in ACCENTS:
        raise ValueError(f"unknown accent {accent!r}")
    out: list[Speaker] = []
    seen: set[str] = set()
    for k in range(n):
        rng = random.Random(f"speaker:{seed}:{accent}:{k}")
        while True:
            variant = VARIANTS[rng.randrange(len(VARIANTS))]
            pitch = rng.randint(*PITCH_RANGE)
            sid = f"{accent}-{variant}-p{pitch}"
            if sid not in seen:
                break
        seen.add(sid)
        out.append(Speaker(sid, accent, variant, pitch))
    return out


# -------------------------------------------------------------------- plan --
@dataclass(frozen=True)
class UtteranceSpec:
    """Everything needed to render one utterance (picklable, deterministic)."""

    index: int
    utt_id: str
    text: str
    kind: str
    speaker: Speaker
    rate_wpm: int
    channel: str
    snr_db: float | None
    level_dbfs: float
    seed: int

    @property
    def accent(self) -> str:
        return self.speaker.accent


def plan_batch(config: SimulationConfig) -> list[UtteranceSpec]:
    """The seeded list of utterances ``config`` describes (no audio yet)."""
    speaker_seed = config.seed if config.speaker_seed is None else config.speaker_seed
    speakers = {
        a: speakers_for_accent(a, config.speakers_per_accent, speaker_seed)
        for a in config.accents
    }
    sentences = SentenceGenerator(
        config.seed, pii_fraction=config.pii_fraction, kind_weights=config.kind_weights
    )
    rng = random.Random(f"plan:{config.seed}")
    channel_names = [c for c in CHANNELS if config.channels.get(c, 0) > 0]
    channel_weights = [float(config.channels[c]) for c in channel_names]
    specs = []
    for i in range(config.n_utterances):
        text, kind = sentences.sentence()
        accent = config.accents[rng.randrange(len(config.accents))]
        speaker = speakers[accent][rng.randrange(config.speakers_per_accent)]
        rate = rng.randint(*config.rate_wpm_range)
        channel = rng.choices(channel_names, weights=channel_weights)[0]
        snr = round(rng.uniform(*config.snr_db_range), 1)
        level = round(rng.uniform(*config.level_dbfs_range), 2)
        specs.append(
            UtteranceSpec(
                index=i,
                utt_id=f"{config.id_prefix}-{config.seed}-{i:06d}",
                text=text,
                kind=kind,
                speaker=speaker,
                rate_wpm=rate,
                channel=channel,
                snr_db=snr if channel == "noisy" else None,
                level_dbfs=level,
                seed=config.seed,
            )
        )
    return specs


# --------------------------------------------------------------- rendering --
def _run(cmd: Sequence[str], data: bytes, what: str) -> bytes:
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise RuntimeError(
            f"{cmd[0]} not found; install it (Debian: apt-get install {cmd[0]})"
        ) from exc
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {err}")
    return proc.stdout


def _parse_wav_stream(data: bytes) -> tuple[int, bytes]:
    """(sample_rate, s16le mono samples) from espeak-ng's --stdout WAV.

    espeak-ng streams, so its RIFF/data sizes are placeholders; the data
    chunk is taken to run to the end of the stream.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RuntimeError("espeak-ng did not produce a WAV stream")
    pos, rate = 12, None
    while pos + 8 <= len(data):
        cid = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if cid == b"fmt ":
            fmt, channels, rate = (
                int.from_bytes(data[body : body + 2], "little"),
                int.from_bytes(data[body + 2 : body + 4], "little"),
                int.from_bytes(data[body + 4 : body + 8], "little"),
            )
            bits = int.from_bytes(data[body + 14 : body + 16], "little")
            if (fmt, channels, bits) != (1, 1, 16):
                raise RuntimeError(f"unexpected espeak-ng format {fmt}/{channels}ch/{bits}bit")
        elif cid == b"data":
            if rate is None:
                raise RuntimeError("WAV data before fmt chunk")
            pcm = data[body:]
            return rate, pcm[: len(pcm) // 2 * 2]
        pos = body + size + (size & 1)
    raise RuntimeError("no data chunk in espeak-ng output")


def _synthesize(spec: UtteranceSpec) -> tuple[int, bytes]:
    cmd = [
        ESPEAK,
        "-v", spec.speaker.voice,
        "-p", str(spec.speaker.pitch),
        "-s", str(spec.rate_wpm),
        "--stdout",
    ]
    # Text goes in on stdin, so it can never be mistaken for an option.
    out = _run(cmd, spec.text.encode("ascii"), f"espeak-ng for {spec.utt_id}")
    rate, pcm = _parse_wav_stream(out)
    if not pcm:
        raise RuntimeError(f"espeak-ng produced no audio for {spec.utt_id}: {spec.text!r}")
    return rate, pcm


_SOX = [SOX, "-D", "-R", "-V1"]
_F32_16K = ["-t", "raw", "-r", str(SAMPLE_RATE), "-e", "floating-point", "-b", "32", "-c", "1", "-L"]
_ULAW_8K = ["-t", "raw", "-r", "8000", "-e", "u-law", "-b", "8", "-c", "1"]


def _sox_f32(args_in: list[str], data: bytes, effects: list[str], what: str) -> np.ndarray:
    out = _run(_SOX + args_in + ["-"] + _F32_16K + ["-"] + effects, data, what)
    return np.frombuffer(out, dtype="<f4").astype(np.float64)


def _peak_normalize(x: np.ndarray, dbfs: float) -> np.ndarray:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0.0:
        return x
    return x * (10.0 ** (dbfs / 20.0) / peak)


def _pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f noise, zero mean, unit RMS."""
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n)
    scale = np.zeros_like(freqs)
    scale[1:] = 1.0 / np.sqrt(freqs[1:])
    pink = np.fft.irfft(spec * scale, n)
    pink -= pink.mean()
    rms = float(np.sqrt(np.mean(pink**2)))
    return pink / rms if rms > 0 else pink


def _apply_channel(spec: UtteranceSpec, rate: int, pcm: bytes) -> np.ndarray:
    raw_in = ["-t", "raw", "-r", str(rate), "-e", "signed-integer", "-b", "16", "-c", "1", "-L"]
    # 3 dB of headroom so resampling ringing can never clip inside sox.
    x = _sox_f32(
        raw_in, pcm, ["gain", "-3", "rate", str(SAMPLE_RATE)], f"sox resample for {spec.utt_id}"
    )
    if spec.channel == "clean":
        return x
    if spec.channel == "telephone":
        # Band-limit to the telephone band, go down to 8 kHz, G.711 mu-law
        # encode; then decode, back up to 16 kHz and the receive-side
        # band-pass of a real handset path.
        x = _peak_normalize(x, -3.0).astype("<f4").tobytes()
        ulaw = _run(
            _SOX + _F32_16K + ["-"] + _ULAW_8K + ["-", "sinc", "300-3400", "rate", "8000"],
            x,
            f"sox telephone encode for {spec.utt_id}",
        )
        return _sox_f32(
            _ULAW_8K, ulaw, ["rate", str(SAMPLE_RATE), "sinc", "300-3400"],
            f"sox telephone decode for {spec.utt_id}",
        )
    if spec.channel == "reverb":
        x = _peak_normalize(x, -12.0).astype("<f4").tobytes()
        return _sox_f32(
            _F32_16K, x, ["pad", "0", "0.5", "reverb", "50", "50", "100"],
            f"sox reverb for {spec.utt_id}",
        )
    if spec.channel == "noisy":
        assert spec.snr_db is not None
        rng = np.random.default_rng([spec.seed, spec.index])
        noise = _pink_noise(x.size, rng)
        p_signal = float(np.mean(x**2))
        noise *= np.sqrt(p_signal / (10.0 ** (spec.snr_db / 10.0)))
        return x + noise
    raise ValueError(f"unknown channel {spec.channel!r}")


def render_utterance(spec: UtteranceSpec) -> np.ndarray:
    """Render ``spec`` to 16 kHz mono int16 samples (deterministic)."""
    rate, pcm = _synthesize(spec)
    y = _peak_normalize(_apply_channel(spec, rate, pcm), spec.level_dbfs)
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype("<i2")


def encode_wav(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Canonical 44-byte-header RIFF/WAVE PCM16 mono bytes."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return buf.getvalue()


def _render_to_file(job: tuple[UtteranceSpec, str]) -> int:
    spec, path = job
    samples = render_utterance(spec)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(encode_wav(samples))
    os.replace(tmp, path)
    return int(samples.size)


# ------------------------------------------------------------------- batch --
def _manifest_row(spec: UtteranceSpec, n_samples: int) -> dict:
    return {
        "audio_filepath": f"audio/{spec.utt_id}.wav",
        "duration": round(n_samples / SAMPLE_RATE, 6),
        "text": spec.text,
        "speaker": spec.speaker.speaker_id,
        "accent": spec.accent,
        "channel": spec.channel,
        "snr_db": spec.snr_db,
        "rate_wpm": spec.rate_wpm,
        "kind": spec.kind,
    }


def _check_tools() -> None:
    missing = [t for t in (ESPEAK, SOX) if shutil.which(t) is None]
    if missing:
        raise RuntimeError(f"missing tools on PATH: {missing} (Debian: apt-get install espeak-ng sox)")


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    ready, manifest, audio = out_dir / READY_MARKER, out_dir / MANIFEST_NAME, out_dir / "audio"
    if ready.exists() or manifest.exists() or (audio.is_dir() and any(audio.iterdir())):
        if not overwrite:
            raise FileExistsError(
                f"{out_dir} already holds a batch; pass overwrite=True to replace it"
            )
        # Withdraw the batch first, so no watcher picks up a half-written one.
        ready.unlink(missing_ok=True)
        manifest.unlink(missing_ok=True)
        if audio.is_dir():
            for p in audio.iterdir():
                if p.is_file() and (p.suffix == ".wav" or p.name.endswith(".wav.part")):
                    p.unlink()
    audio.mkdir(parents=True, exist_ok=True)


def generate_batch(
    out_dir: str | os.PathLike,
    config: SimulationConfig | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    log_every: int = 100,
    overwrite: bool = False,
) -> Path:
    """Render ``config`` into ``out_dir`` as a landing batch.

    Writes ``out_dir/audio/<utt_id>.wav``, then ``out_dir/manifest.jsonl``
    (atomically, rows in utterance order), then the empty ``_READY`` marker
    last.  ``progress(done, total)`` is called after every utterance and an
    INFO log line is written every ``log_every`` utterances.  Returns the
    manifest path.
    """
    config = config or SimulationConfig()
    out_dir = Path(out_dir)
    _check_tools()
    _prepare_out_dir(out_dir, overwrite)
    specs = plan_batch(config)
    jobs = [(s, str(out_dir / "audio" / f"{s.utt_id}.wav")) for s in specs]
    total = len(jobs)
    t0 = time.monotonic()
    n_samples: list[int] = []

    def _tick(done: int) -> None:
        if progress is not None:
            progress(done, total)
        if done == total or (log_every > 0 and done % log_every == 0):
            dt = time.monotonic() - t0
            log.info(
                "simulated %d/%d utterances (%.1f utt/s)", done, total, done / dt if dt else 0.0
            )

    workers = min(config.workers, max(1, total))
    if workers == 1:
        for job in jobs:
            n_samples.append(_render_to_file(job))
            _tick(len(n_samples))
    else:
        chunk = max(1, min(16, total // (workers * 8)))
        # spawn: safe whatever threads the caller (e.g. Dagster) has running.
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            for n in pool.map(_render_to_file, jobs, chunksize=chunk):
                n_samples.append(n)
                _tick(len(n_samples))

    manifest = out_dir / MANIFEST_NAME
    tmp = out_dir / (MANIFEST_NAME + ".part")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for spec, n in zip(specs, n_samples):
            f.write(json.dumps(_manifest_row(spec, n), ensure_ascii=True) + "\n")
    os.replace(tmp, manifest)
    (out_dir / READY_MARKER).write_bytes(b"")
    return manifest


def summarize_manifest(path: str | os.PathLike) -> dict[str, Mapping[str, int]]:
    """Counts per accent / speaker / channel / kind of a simulated manifest."""
    counts: dict[str, dict[str, int]] = {"accent": {}, "speaker": {}, "channel": {}, "kind": {}}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                for key, c in counts.items():
                    c[row[key]] = c.get(row[key], 0) + 1
    return counts
