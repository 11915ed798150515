"""The drift reference of a production model: its training population's statistics, built once, kept in the store.

    reference = reference_for(store, repo, registry)      # layout.reference_path(version), built on first use

The reference sums the per-batch statistics of every batch in the manifest the model was trained on (its
lineage's data commit) and adds the model's confidence histogram on that population's dev split (speakers it
never trained on), so a batch's confidences are compared with the same model's on familiar speech.  Built once
per model version, it makes each batch's drift report cost one read of it plus one of the batch's statistics.
"""

from __future__ import annotations

import json

import numpy as np

from speech_assets.intake.manifest import read_manifest_rows
from speech_assets.monitoring.drift import build_reference, confidence_histogram
from speech_assets.storage.layout import reference_path

MAX_CONFIDENCE_UTTERANCES = 300


def served_confidences(recognizer, samples: list, max_utterances: int = MAX_CONFIDENCE_UTTERANCES,
                       seed: int = 0) -> np.ndarray:
    """The calibrated utterance confidences the served model gives `samples` (`model.backend.Sample`s: CTC reads
    their features, Whisper their audio), on a fixed random sample when there are many."""
    from speech_assets.model.backend import transcribe_samples

    if len(samples) > max_utterances:
        idx = np.random.default_rng(seed).choice(len(samples), size=max_utterances, replace=False)
        samples = [samples[i] for i in sorted(idx)]
    if not samples:
        return np.zeros(0)
    return np.asarray([t.confidence for t in transcribe_samples(recognizer, samples)], dtype=np.float64)


def transcriber_for(registry, model_name: str, version: str):
    """The production recognizer (any backend, through the port) at its calibrated temperature."""
    from speech_assets.model.backend import load_recognizer

    temperature = float(registry.calibration(model_name, version).get("temperature", 1.0))
    return load_recognizer(registry.checkpoint(model_name, version), temperature=temperature)


def feature_config_of(recognizer):
    """The log-mel config the drift statistics use: the CTC model's own, else the platform default."""
    from speech_assets.features.logmel import FeatureConfig

    fc = getattr(recognizer, "feature_config", None)
    return fc if isinstance(fc, FeatureConfig) else FeatureConfig()


def samples_of_rows(store, repo: str, commit: str, rows: list[dict], feats: dict) -> list:
    """Stored features (utt_id -> log-mel) -> port samples, in `feats`' order; an utterance with a manifest row
    in `rows` can also have its audio read from the store (only if the recognizer asks: CTC never does)."""
    from speech_assets.features.dataset import audio_loader
    from speech_assets.model.backend import Sample

    by_utt = {r["utt_id"]: r for r in rows}
    return [Sample(utt, by_utt.get(utt, {}).get("text", ""), features=f,
                   waveform=audio_loader(store, repo, commit, by_utt[utt]["audio_path"]) if utt in by_utt else None,
                   duration_s=float(by_utt.get(utt, {}).get("duration_s") or 0.0))
            for utt, f in feats.items()]


def build_model_reference(store, repo: str, registry, model_name: str, version: str, transcriber=None) -> dict:
    from speech_assets.features.store import load_features, load_stats

    mv = registry.get(model_name, version)
    commit = mv.lineage.data_commits[0]
    transcriber = transcriber or transcriber_for(registry, model_name, version)
    fc = feature_config_of(transcriber)
    rows = read_manifest_rows(store, repo, commit)
    batches = sorted({r["batch_id"] for r in rows})
    reference = build_reference(load_stats(store, repo, commit, fc, b) for b in batches)
    # held-out speakers first (dev, else test); a corpus too small to have them falls back to all its rows
    dev = ([r for r in rows if r["split"] == "dev"] or [r for r in rows if r["split"] == "test"] or rows)
    samples = []
    for b in sorted({r["batch_id"] for r in dev}):
        by_utt = load_features(store, repo, commit, fc, b)
        wanted = [r for r in dev if r["batch_id"] == b]
        samples += samples_of_rows(store, repo, commit, wanted,
                                   {r["utt_id"]: by_utt[r["utt_id"]] for r in wanted if r["utt_id"] in by_utt})
    conf = served_confidences(transcriber, samples)
    reference.update({
        "model_version": version, "data_commit": commit, "batch_ids": batches,
        "confidence_hist": confidence_histogram(conf), "confidence_mean": float(conf.mean()) if conf.size else None,
        "confidence_utterances": int(conf.size), "feature_config_digest": fc.digest(),
    })
    return reference


def reference_for(store, repo: str, registry, model_name: str, version: str, run_id: str = "reference") -> dict:
    """The stored reference of `version`, built and published on first use."""
    from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError
    from speech_assets.storage.publish import publish_objects

    path = reference_path(version)
    try:
        return json.loads(store.get_object(repo, DEFAULT_BRANCH, path))
    except NotFoundError:
        pass
    reference = build_model_reference(store, repo, registry, model_name, version)
    publish_objects(store, repo, {path: json.dumps(reference, sort_keys=True).encode()},
                    branch_prefix="monitoring-reference", message=f"drift reference of {model_name} {version}",
                    metadata={"run_id": run_id, "model_version": version},
                    content_types={path: "application/json"})
    return reference
