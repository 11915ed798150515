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
from speech_assets.storage import layout
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError, VersionStore
from speech_assets.storage.layout import FEATURES_PREFIX, metadata_path
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


def _index_bytes(index: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(index, sink)
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
    """Compute and publish one batch's feature set from its metadata and audio at main's head; skipped (nothing
    written) when the stored set was computed from the same metadata table, unless `force`."""
    started, cpu_started = time.perf_counter(), time.process_time()
    read_commit = store.resolve(repo, DEFAULT_BRANCH)
    meta_bytes = store.get_object(repo, read_commit, metadata_path(batch_id))
    meta_sha = hashlib.sha256(meta_bytes).hexdigest()
    existing = None if force else _current_stats(store, repo, read_commit, config, batch_id, meta_sha)
    if existing:
        return FeatureBatchResult(
            batch_id, config.digest(), True, read_commit, read_commit, existing["utterances"], existing["frames"],
            existing["audio_seconds"], time.perf_counter() - started, time.process_time() - cpu_started, existing,
        )

    rows = pq.read_table(io.BytesIO(meta_bytes)).to_pylist()
    frames, offsets = (extractor or LogMelExtractor(config)).concatenated(
        _waveforms(store, repo, read_commit, rows, config))
    feats = [frames[offsets[i] : offsets[i + 1]] for i in range(len(rows))]
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
    merged = _publish_feature_set(store, repo, batch_id, config, rows, frames, offsets, stats, run_id=run_id,
                                  read_commit=read_commit, meta_sha=meta_sha)
    return FeatureBatchResult(
        batch_id, config.digest(), False, read_commit, merged, len(rows), int(offsets[-1]), stats["audio_seconds"],
        time.perf_counter() - started, time.process_time() - cpu_started, stats,
    )


def _current_stats(store: VersionStore, repo: str, ref: str, config: FeatureConfig, batch_id: str,
                   meta_sha: str) -> dict | None:
    """The stored set's stats when it was computed from the metadata table with digest `meta_sha`, else None."""
    try:
        existing = load_stats(store, repo, ref, config, batch_id)
    except NotFoundError:
        return None
    return existing if existing and existing.get("source_metadata_sha256") == meta_sha else None


def _waveforms(store: VersionStore, repo: str, ref: str, rows: list[dict], config: FeatureConfig) -> list:
    """The decoded audio of every metadata row, in row order."""
    waveforms = []
    for r, raw in zip(rows, store.get_objects(repo, ref, [r["audio_path"] for r in rows])):
        decoded = read_canonical_wav(raw)
        data, sr = decoded if decoded is not None else sf.read(io.BytesIO(raw), dtype="float32")
        if sr != config.sample_rate:  # intake guarantees 16 kHz; a mismatch means a config/intake disagreement
            raise ValueError(f"{r['audio_path']}: sample rate {sr} != feature config {config.sample_rate}")
        waveforms.append(data)
    return waveforms


def _publish_feature_set(store: VersionStore, repo: str, batch_id: str, config: FeatureConfig, rows: list[dict],
                         frames: np.ndarray, offsets: np.ndarray, stats: dict, *, run_id: str, read_commit: str,
                         meta_sha: str) -> str:
    """Write the set's three objects in one commit merged into main; returns the merge commit."""
    base = feature_dir(config, batch_id)
    index = pa.table(
        {
            "utt_id": [r["utt_id"] for r in rows],
            "offset": offsets[:-1].astype(np.int64),
            "frames": np.asarray(np.diff(offsets), dtype=np.int32),
        },
        schema=INDEX_SCHEMA,
    )
    meta = {
        "batch_id": batch_id,
        "run_id": run_id,
        "feature_config_digest": config.digest(),
        "code_version": config.code_version,
        "source_commit": read_commit,
        "source_metadata_sha256": meta_sha,
    }
    return publish_objects(
        store,
        repo,
        {
            f"{base}/features.npy": _npy_bytes(to_storage_dtype(frames)),
            f"{base}/index.parquet": _index_bytes(index),
            f"{base}/stats.json": json.dumps(stats, sort_keys=True).encode(),
        },
        branch_prefix=f"features-{batch_id}-{config.digest()[:8]}",
        message=f"features: batch {batch_id} ({config.digest()})",
        metadata=meta,
        base=read_commit,
        content_types={f"{base}/index.parquet": "application/parquet", f"{base}/stats.json": "application/json"},
    )


def feature_sets_of(store: VersionStore, repo: str, ref: str, batch_ids: set[str]) -> dict[str, list[str]]:
    """batch id -> the config digests of its feature sets at `ref`, every feature config (one listing for all)."""
    digests: dict[str, list[str]] = {b: [] for b in batch_ids}
    for obj in store.list_objects(repo, ref, f"{FEATURES_PREFIX}/"):
        parts = obj.path[len(FEATURES_PREFIX) + 1 :].split("/")  # <config digest>/<batch>/<file>
        if len(parts) == 3 and parts[1] in batch_ids and parts[2] == "index.parquet":
            digests[parts[1]].append(parts[0])
    return digests


def feature_set_without(store: VersionStore, repo: str, ref: str, config_digest: str, batch_id: str,
                        utt_ids: set[str], *, metadata_rows: dict[str, dict], old_metadata_sha256: str,
                        new_metadata_sha256: str, erasure_id: str) -> dict[str, bytes] | None:
    """The objects of one feature set at `ref` rewritten without `utt_ids` (None if it holds none of them).

    `features.npy` and `index.parquet` are re-packed; `stats.json` (when there is one) is recomputed from the kept
    rows, whose metadata after the erasure is `metadata_rows` (utt_id -> row), and records `erasure_id`. A set
    that was current for the old metadata (`old_metadata_sha256`) is marked current for the new one, so the
    `features` asset does not recompute it; a stale set stays stale."""
    base = layout.feature_dir(config_digest, batch_id)
    index = pq.read_table(io.BytesIO(store.get_object(repo, ref, f"{base}/index.parquet"))).to_pylist()
    kept = [r for r in index if r["utt_id"] not in utt_ids]
    if len(kept) == len(index):
        return None
    array = np.load(io.BytesIO(store.get_object(repo, ref, f"{base}/features.npy")), allow_pickle=False)
    segments = [array[r["offset"] : r["offset"] + r["frames"]] for r in kept]
    out = {f"{base}/features.npy": _npy_bytes(_packed(segments, array)),
           f"{base}/index.parquet": _index_bytes(_index_of([r["utt_id"] for r in kept], segments))}
    try:
        old_stats = json.loads(store.get_object(repo, ref, f"{base}/stats.json"))
    except NotFoundError:
        return out
    pairs = [(s.astype(np.float32), metadata_rows[r["utt_id"]]) for s, r in zip(segments, kept)
             if r["utt_id"] in metadata_rows]
    stats = _stats_after_erasure(old_stats, pairs, old_metadata_sha256, new_metadata_sha256, erasure_id)
    out[f"{base}/stats.json"] = json.dumps(stats, sort_keys=True).encode()
    return out


def _packed(segments: list[np.ndarray], like: np.ndarray) -> np.ndarray:
    return np.concatenate(segments, axis=0) if segments else np.zeros((0, like.shape[1]), like.dtype)


def _index_of(utt_ids: list[str], segments: list[np.ndarray]) -> pa.Table:
    offsets = np.cumsum([0] + [s.shape[0] for s in segments]).astype(np.int64)
    return pa.table({"utt_id": utt_ids, "offset": offsets[:-1],
                     "frames": np.asarray([s.shape[0] for s in segments], dtype=np.int32)}, schema=INDEX_SCHEMA)


def _stats_after_erasure(old_stats: dict, pairs: list[tuple[np.ndarray, dict]], old_metadata_sha256: str,
                         new_metadata_sha256: str, erasure_id: str) -> dict:
    """`stats.json` recomputed from the kept rows' stored features and metadata, with the old provenance.

    Recomputed from the stored (float16) features: equal to what `features` would compute up to float16 rounding
    of the log-mel values. Only rows with metadata can be described; a stale set (features older than the
    metadata) keeps its stale provenance and is recomputed by the next `features` run."""
    stats = batch_stats([p[0] for p in pairs], [p[1] for p in pairs],
                        frames=np.concatenate([p[0] for p in pairs], axis=0) if pairs else None)
    stats.update({k: old_stats[k] for k in ("batch_id", "feature_config", "feature_config_digest", "source_commit")
                  if k in old_stats})
    current = old_stats.get("source_metadata_sha256") == old_metadata_sha256
    stats["source_metadata_sha256"] = new_metadata_sha256 if current else old_stats.get("source_metadata_sha256", "")
    stats["erasures"] = [*old_stats.get("erasures", []), erasure_id]
    return stats
