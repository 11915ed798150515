"""A tiny published store for the privacy tests: three batches, features, a manifest, a probe set.

    day-01: spk0 (train split), spk1 (train), spk12 (test)   — spk0 is the speaker the tests erase
    day-02: spk0, spk4 (train), spk12 — transcripts with PII (intake redacts them)
    day-03: spk5, spk1 — no spk0

Built once per session (intake + features take a few seconds) and copied for each test that writes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from speech_assets.features.store import compute_batch_features
from speech_assets.intake.batch import ingest_batch
from speech_assets.intake.landing import scan_landing
from speech_assets.intake.manifest import publish_manifest, read_manifest_rows
from speech_assets.serving.probe_set import PROBE_SET_PATH, probe_set_from_manifest
from speech_assets.storage.local import LocalVersionStore
from speech_assets.storage.publish import publish_objects
from tests.intake.conftest import make_batch

REPO = "speech-assets"
TARGET = "spk0"

TEXTS = {
    "day-01": ["turn on the kitchen lights", "play some music", "what is the weather", "set a timer",
               "open the door", "close the window"],
    "day-02": ["call me on five five five one two three four five six seven", "my card is 4111 1111 1111 1111",
               "mail john@example.com or +1 415 555 0100", "lights off please", "stop the music", "good night"],
    "day-03": ["read the news", "turn it up", "turn it down", "what time is it"],
}
SPEAKERS = {"day-01": ["spk0", "spk1", "spk12"], "day-02": ["spk0", "spk4", "spk12"], "day-03": ["spk5", "spk1"]}


def _rows(batch: str, seed: int) -> list[dict]:
    speakers = SPEAKERS[batch]
    return [
        {"audio_filepath": f"audio/{batch}_{i}.wav", "text": text, "speaker": speakers[i % len(speakers)],
         "accent": "us", "channel": "clean", "duration": 0.8, "_audio": (0.8, 16000, seed * 100 + i, 1)}
        for i, text in enumerate(TEXTS[batch])
    ]


@pytest.fixture(scope="session")
def published(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("privacy")
    landing = root / "landing"
    for seed, batch in enumerate(SPEAKERS):
        make_batch(landing, batch, _rows(batch, seed))
    store = LocalVersionStore(root / "store")
    store.create_repository(REPO)
    batches = {b.batch_id: b for b in scan_landing(landing)}
    for batch in SPEAKERS:
        assert ingest_batch(store, REPO, batches[batch], run_id=f"run-{batch}").published
        compute_batch_features(store, REPO, batch, run_id=f"feat-{batch}")
    publish_manifest(store, REPO, "manifest-run")
    head = store.resolve(REPO, "main")
    probe = probe_set_from_manifest(store, REPO, head, size=10)
    assert probe.items, "the fixture needs a probe set with items"
    publish_objects(store, REPO, {PROBE_SET_PATH: probe.to_json()}, branch_prefix="probe", message="probe set",
                    metadata={"run_id": "probe"})
    rows = read_manifest_rows(store, REPO, head)
    assert {r["split"] for r in rows if r["speaker"] == TARGET} == {"train"}
    return root / "store"


@pytest.fixture
def store(published, tmp_path) -> LocalVersionStore:
    """A private copy of the published store (tests write to it)."""
    shutil.copytree(published, tmp_path / "store")
    return LocalVersionStore(tmp_path / "store")
