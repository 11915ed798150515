"""The demo's traffic: simulated days dropped into the landing zone, one of them with uploads a real user could
send broken, so quarantine has something to show.

Each day is `(name, seed, accents, channels, size)`: `accents` a comma-separated list, `channels`
`NAME:WEIGHT,...`, `size` an utterance count, `None` (the caller's per-day size) or `"bootstrap"` (the
backlog's size).  The same day always renders the same batch: the seed fixes the sentences and the audio,
and every day draws its speakers from one population (`speaker_seed=1`).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from speech_assets.demo.progress import log
from speech_assets.settings import data_home, landing_dir

DEMO_DAYS = [
    # name, seed, accents, channels, utterances (None: --utterances)
    # day-00 is the backlog a team starts from: enough speech for a first model to meet the floors.
    ("day-00", 100, "us,gb,rp,scottish", "clean:0.8,noisy:0.2", "bootstrap"),
    ("day-01", 101, "us,gb,rp,scottish", "clean:0.8,noisy:0.2", None),
    ("day-02", 102, "us,gb,rp,scottish", "clean:0.7,noisy:0.2,reverb:0.1", None),
    ("day-03", 103, "us,gb,rp,scottish", "clean:0.8,noisy:0.2", None),
]
BROKEN_UPLOADS_DAY = "day-02"
# Speakers per accent of the demo population (the same people every day): enough that the speaker-disjoint
# test split holds several speakers per accent, so per-accent intervals mean something.
DEMO_SPEAKERS_PER_ACCENT = 40
DEMO_BOOTSTRAP_UTTERANCES = 5000


def add_broken_uploads(batch_dir: Path) -> int:
    """Append rows a real user upload could contain: each must be quarantined with its reason."""
    import json

    import numpy as np
    import soundfile as sf

    from speech_assets.simulation.speech import MANIFEST_NAME

    bad = batch_dir / "audio"
    (bad / "zero.wav").write_bytes(b"")
    good = sorted(bad.glob("*.wav"))[0].read_bytes()
    (bad / "truncated.wav").write_bytes(good[: len(good) // 2])
    (bad / "notaudio.wav").write_bytes(b"%PDF-1.4 this is not audio\n" * 20)
    t = np.arange(int(0.2 * 16000)) / 16000
    sf.write(bad / "stereo.wav", np.stack([np.sin(2e3 * t), np.sin(3e3 * t)], axis=1) * 0.3, 16000)
    rows = [
        {"audio_filepath": "audio/zero.wav", "text": "an empty upload", "speaker": "upload-1"},
        {"audio_filepath": "audio/truncated.wav", "text": "a truncated upload", "speaker": "upload-1"},
        {"audio_filepath": "audio/notaudio.wav", "text": "not audio at all", "speaker": "upload-1"},
        {"audio_filepath": "audio/stereo.wav", "text": "a stereo upload", "speaker": "upload-1"},
        {"audio_filepath": "../../etc/passwd", "text": "a path that climbs out", "speaker": "upload-1"},
        {"audio_filepath": "audio/missing.wav", "text": "a file that is not there", "speaker": "upload-1"},
    ]
    with open(batch_dir / MANIFEST_NAME, "ab") as f:
        for row in rows:
            f.write((json.dumps(row) + "\n").encode())
        f.write(b'{"audio_filepath": "audio/zero.wav", "text": "caf\xe9 latin-1 bytes"}\n')
    return len(rows) + 1


def generate_landing(utterances: int, workers: int, bootstrap_utterances: int = 0, days=DEMO_DAYS) -> list[str]:
    """Simulate `days` (name, seed, accents, channels, size) and drop each into the landing zone.

    Returns the names of the days of non-zero size; a day already complete in the landing zone is kept as is.
    """
    from speech_assets.intake.landing import READY_MARKER
    from speech_assets.simulation.speech import SimulationConfig, generate_batch

    landing = landing_dir()
    landing.mkdir(parents=True, exist_ok=True)
    staging = data_home() / "generated"
    names = []
    for name, seed, accents, channels, size in days:
        n = bootstrap_utterances if size == "bootstrap" else (utterances if size is None else size)
        if n <= 0:
            continue
        names.append(name)
        if (landing / name / READY_MARKER).exists():
            log(f"{name}: already in the landing zone")
            continue
        out = staging / name
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        config = SimulationConfig(
            n_utterances=n,
            seed=seed,
            speaker_seed=1,  # the same speaker population every day
            speakers_per_accent=DEMO_SPEAKERS_PER_ACCENT,
            accents=accents.split(","),
            channels={k: float(v) for k, v in (c.split(":") for c in channels.split(","))},
            workers=workers,
        )
        generate_batch(out, config)
        extra = add_broken_uploads(out) if name == BROKEN_UPLOADS_DAY else 0
        log(f"{name}: simulated {n} utterances in {time.perf_counter() - t0:.1f}s"
            + (f" (+{extra} broken uploads)" if extra else ""))
        # A rename is atomic: the sensor never sees a half-copied batch.
        shutil.rmtree(landing / name, ignore_errors=True)
        os.replace(out, landing / name)
    return names
