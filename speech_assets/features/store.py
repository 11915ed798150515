"""Feature sets in the versioned store: one per (published batch content, feature config).

    features/<config digest>/<batch>/features.npy   float16 [total frames, n_mels], utterances back to back
    features/<config digest>/<batch>/index.parquet  utt_id, offset, frames (rows of features.npy)
    features/<config digest>/<batch>/stats.json     summary statistics (drift reads these) + provenance

`.npy` is written with `allow_pickle=False` and read the same way: no pickles anywhere in the data path.
A batch whose metadata table is unchanged since its features were computed with this config is skipped.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from speech_assets.audio.decode import read_canonical_wav
from speech_assets.features.logmel import FeatureConfig, LogMelExtractor, to_storage_dtype
from speech_assets.features.stats import batch_stats
from speech_assets.storage.layout import metadata_path
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError, VersionStore
from speech_assets.storage import layout
from speech_assets.storage.layout import FEATURES_PREFIX  # noqa: F401 (erasure lists every feature set under it)
from speech_assets.storage.publish import publish_objects

INDEX_SCHEMA = pa.schema([("utt_id", pa.string()), ("offset", pa.int64()), ("frames", pa.int32())])


def feature_dir(config: FeatureConfig, batch_id: str) -> str:
    return layout.feature_dir(config.digest(), batch_id)


@dataclass
class FeatureBatchResult:
    batch_id: str
    config_digest: str
    skipped: bool
    read_commit: str
    commit_id: str  # the main commit holding these features
    utterances: int
    frames: int
    audio_seconds: float
    seconds: float
    cpu_seconds: float
    stats: dict


def _npy_bytes(array: np.ndarray) -> bytes:
    sink = io.BytesIO()
    np.save(sink, array, allow_pickle=False)
    return sink.getvalue()


def load_stats(store: VersionStore, repo: str, ref: str, config: FeatureConfig, batch_id: str) -> dict:
    return json.loads(store.get_object(repo, ref, f"{feature_dir(config, batch_id)}/stats.json"))


def load_features(store: VersionStore, repo: str, ref: str, config: FeatureConfig, batch_id: str) -> dict[str, np.ndarray]:
    """utt_id -> float32 [frames, n_mels] for one batch."""
    base = feature_dir(config, batch_id)
    array = np.load(io.BytesIO(store.get_object(repo, ref, f"{base}/features.npy")), allow_pickle=False)
    index = pq.read_table(io.BytesIO(store.get_object(repo, ref, f"{base}/index.parquet"))).to_pylist()
    return {r["utt_id"]: array[r["offset"] : r["offset"] + r["frames"]].astype(np.float32) for r in index}


def compute_batch_features(
    store: VersionStore,
    repo: str,
    batch_id: str,
    *,
    run_id: str,
    config: FeatureConfig = FeatureConfig(),
    extractor: LogMelExtractor | None = None,
    force: bool = False,
) -> FeatureBatchResult:
    started, cpu_started = time.perf_counter(), time.process_time()
    read_commit = store.resolve(repo, DEFAULT_BRANCH)
    meta_bytes = store.get_object(repo, read_commit, metadata_path(batch_id))
    meta_sha = hashlib.sha256(meta_bytes).hexdigest()
    base = feature_dir(config, batch_id)

    if not force:
        try:
            existing = load_stats(store, repo, read_commit, config, batch_id)
        except NotFoundError:
            existing = None
        if existing and existing.get("source_metadata_sha256") == meta_sha:
            return FeatureBatchResult(
                batch_id, config.digest(), True, read_commit, read_commit, existing["utterances"], existing["frames"],
                existing["audio_seconds"], time.perf_counter() - started, time.process_time() - cpu_started, existing,
            )

    rows = pq.read_table(io.BytesIO(meta_bytes)).to_pylist()
    waveforms = []
    for r, raw in zip(rows, store.get_objects(repo, read_commit, [r["audio_path"] for r in rows])):
        decoded = read_canonical_wav(raw)
        data, sr = decoded if decoded is not None else sf.read(io.BytesIO(raw), dtype="float32")
        if sr != config.sample_rate:  # intake guarantees 16 kHz; a mismatch means a config/intake disagreement
            raise ValueError(f"{r['audio_path']}: sample rate {sr} != feature config {config.sample_rate}")
        waveforms.append(data)
    frames, offsets = (extractor or LogMelExtractor(config)).concatenated(waveforms)
    feats = [frames[offsets[i] : offsets[i + 1]] for i in range(len(rows))]
    array = to_storage_dtype(frames)
    index = pa.table(
        {
            "utt_id": [r["utt_id"] for r in rows],
            "offset": offsets[:-1].astype(np.int64),
            "frames": np.asarray([f.shape[0] for f in feats], dtype=np.int32),
        },
        schema=INDEX_SCHEMA,
    )
    stats = batch_stats(feats, rows, frames=frames)
    stats.update(
        {
            "batch_id": batch_id,
            "feature_config": config.to_dict(),
            "feature_config_digest": config.digest(),
            "source_commit": read_commit,
            "source_metadata_sha256": meta_sha,
        }
    )
    index_sink = io.BytesIO()
    pq.write_table(index, index_sink)

    meta = {
        "batch_id": batch_id,
        "run_id": run_id,
        "feature_config_digest": config.digest(),
        "code_version": config.code_version,
        "source_commit": read_commit,
        "source_metadata_sha256": meta_sha,
    }
    merged = publish_objects(
        store,
        repo,
        {
            f"{base}/features.npy": _npy_bytes(array),
            f"{base}/index.parquet": index_sink.getvalue(),
            f"{base}/stats.json": json.dumps(stats, sort_keys=True).encode(),
        },
        branch_prefix=f"features-{batch_id}-{config.digest()[:8]}",
        message=f"features: batch {batch_id} ({config.digest()})",
        metadata=meta,
        base=read_commit,
        content_types={f"{base}/index.parquet": "application/parquet", f"{base}/stats.json": "application/json"},
    )
    return FeatureBatchResult(
        batch_id, config.digest(), False, read_commit, merged, len(rows), int(offsets[-1]), stats["audio_seconds"],
        time.perf_counter() - started, time.process_time() - cpu_started, stats,
    )
