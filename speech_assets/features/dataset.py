"""Training/evaluation examples: the published manifest joined with the stored features, at one pinned commit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speech_assets.features.logmel import FeatureConfig
from speech_assets.features.store import load_features
from speech_assets.intake.manifest import read_manifest_rows
from speech_assets.storage.base import NotFoundError, VersionStore
from speech_assets.text import Unnormalisable, normalize_text

SUBGROUP_COLUMNS = ("accent", "channel", "snr_band", "duration_band")


@dataclass
class Utterance:
    utt_id: str
    batch_id: str
    split: str
    text: str
    speaker: str
    duration_s: float
    audio_path: str
    subgroups: dict[str, str]
    features: np.ndarray  # float32 [frames, n_mels]


@dataclass
class Examples:
    commit: str
    feature_config: FeatureConfig
    splits: dict[str, list[Utterance]]
    excluded: dict[str, int]  # reason -> count

    def pairs(self, split: str) -> list[tuple[np.ndarray, str]]:
        return [(u.features, u.text) for u in self.splits.get(split, [])]


class FeaturesMissing(RuntimeError):
    pass


def load_examples(
    store: VersionStore,
    repo: str,
    commit: str,
    config: FeatureConfig = FeatureConfig(),
    splits: tuple[str, ...] = ("train", "dev", "test"),
) -> Examples:
    """Every manifest row of `splits` at `commit` with its features.

    Rows are left out (and counted) when their transcript had personal data redacted — the text no longer says
    what the audio says — or cannot be normalised to the platform's alphabet (`text.normalize_text`).
    """
    manifest = read_manifest_rows(store, repo, commit)
    wanted = [r for r in manifest if r["split"] in splits]
    excluded = {"redacted_transcript": 0, "characters_outside_alphabet": 0}
    by_batch: dict[str, dict[str, np.ndarray]] = {}
    out: dict[str, list[Utterance]] = {s: [] for s in splits}
    for r in wanted:
        if r.get("redactions"):
            excluded["redacted_transcript"] += 1
            continue
        try:  # the identity on rows intake normalised; recovers rows published before it did
            text = normalize_text(r["text"])
        except Unnormalisable:
            excluded["characters_outside_alphabet"] += 1
            continue
        batch = r["batch_id"]
        if batch not in by_batch:
            try:
                by_batch[batch] = load_features(store, repo, commit, config, batch)
            except NotFoundError:
                raise FeaturesMissing(
                    f"no features with config {config.digest()} for batch {batch} at commit {commit[:12]}: "
                    f"materialize features[{batch}] first"
                ) from None
        feats = by_batch[batch].get(r["utt_id"])
        if feats is None:
            raise FeaturesMissing(f"features of batch {batch} lack utterance {r['utt_id']} (stale feature set?)")
        out[r["split"]].append(
            Utterance(
                utt_id=r["utt_id"],
                batch_id=batch,
                split=r["split"],
                text=text,
                speaker=r.get("speaker") or r["speaker_key"],
                duration_s=float(r["duration_s"]),
                audio_path=r["audio_path"],
                subgroups={c: str(r.get(c) or "unknown") for c in SUBGROUP_COLUMNS},
                features=feats,
            )
        )
    return Examples(commit=commit, feature_config=config, splits=out, excluded=excluded)


def read_audio(store: VersionStore, repo: str, commit: str, audio_path: str) -> np.ndarray:
    """A stored utterance's audio at `commit`: float32 mono 16 kHz (what the backends that read audio take)."""
    from speech_assets.audio.decode import read_canonical_wav

    return read_canonical_wav(store.get_object(repo, commit, audio_path))[0]


def audio_loader(store: VersionStore, repo: str, commit: str, audio_path: str):
    """A zero-argument loader of `read_audio`: a model that never asks for the audio (CTC) never reads it."""
    return lambda: read_audio(store, repo, commit, audio_path)
