"""The published corpus: every batch's metadata at one `main` commit, with splits and subgroup columns.

Splits are assigned by a hash of the speaker, never at random: a speaker lands in the same split in every
batch and every rebuild, so train/dev/test stay speaker-disjoint as the corpus grows.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from speech_assets.intake.metadata import read_metadata_tables
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError
from speech_assets.storage.layout import MANIFEST_PATH, RETENTION_PREFIX
from speech_assets.storage.publish import publish_objects

# Fractions out of 100 hash buckets.
DEFAULT_SPLIT_PERCENT = {"train": 80, "dev": 10, "test": 10}

# Band edges are part of the evaluation contract (slices in later reports use these names).
SNR_BANDS = [(None, 10.0, "snr<10"), (10.0, 20.0, "snr10-20"), (20.0, 30.0, "snr20-30"), (30.0, None, "snr>=30")]
DURATION_BANDS = [(None, 2.0, "dur<2s"), (2.0, 5.0, "dur2-5s"), (5.0, 10.0, "dur5-10s"), (10.0, None, "dur>=10s")]


def speaker_key(speaker: str | None, utt_id: str) -> str:
    # An utterance with no speaker label is its own speaker: it cannot leak across splits with anyone.
    return f"speaker:{speaker}" if speaker else f"utterance:{utt_id}"


def split_for(key: str, percent: dict[str, int] = DEFAULT_SPLIT_PERCENT) -> str:
    if sum(percent.values()) != 100:
        raise ValueError(f"split percentages must sum to 100, got {percent}")
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100
    edge = 0
    for name, share in percent.items():
        edge += share
        if bucket < edge:
            return name
    raise AssertionError("unreachable")


def band(value: float | None, bands) -> str:
    if value is None:
        return "unknown"
    for low, high, name in bands:
        if (low is None or value >= low) and (high is None or value < high):
            return name
    return "unknown"


@dataclass(frozen=True)
class ManifestSummary:
    rows: int
    speakers: int
    hours: float
    by_split: dict[str, dict[str, float]]
    subgroups: dict[str, dict[str, int]]


def build_manifest(batch_tables: list[pa.Table], percent: dict[str, int] = DEFAULT_SPLIT_PERCENT) -> pa.Table:
    """Concatenate batch metadata tables, sorted by utt_id, with split and subgroup columns added."""
    if not batch_tables:
        return pa.table(
            {
                name: pa.array([], pa.string())
                for name in ("utt_id", "split", "snr_band", "duration_band", "speaker_key")
            }
        )
    table = pa.concat_tables(batch_tables, promote_options="default")
    table = table.sort_by("utt_id")
    utt = table.column("utt_id").to_pylist()
    spk = table.column("speaker").to_pylist() if "speaker" in table.column_names else [None] * len(utt)
    keys = [speaker_key(s, u) for s, u in zip(spk, utt)]
    # A source-declared SNR (simulation, or a user's manifest) is the truth; else our estimate.
    declared = table.column("snr_db").to_pylist() if "snr_db" in table.column_names else [None] * len(utt)
    estimated = table.column("est_snr_db").to_pylist() if "est_snr_db" in table.column_names else [None] * len(utt)
    snr = [d if d is not None else e for d, e in zip(declared, estimated)]
    channel = table.column("channel").to_pylist() if "channel" in table.column_names else [None] * len(utt)
    snr_bands = [
        "clean" if (c == "clean" and d is None) else band(s, SNR_BANDS) for c, d, s in zip(channel, declared, snr)
    ]
    durations = table.column("duration_s").to_pylist()
    table = table.append_column("speaker_key", pa.array(keys, pa.string()))
    table = table.append_column("split", pa.array([split_for(k, percent) for k in keys], pa.string()))
    table = table.append_column("snr_band", pa.array(snr_bands, pa.string()))
    table = table.append_column("duration_band", pa.array([band(d, DURATION_BANDS) for d in durations], pa.string()))
    return table


def summarize(manifest: pa.Table) -> ManifestSummary:
    by_split: dict[str, dict[str, float]] = {}
    if manifest.num_rows:
        for split in sorted(set(manifest.column("split").to_pylist())):
            part = manifest.filter(pc.equal(manifest.column("split"), split))
            by_split[split] = {
                "utterances": part.num_rows,
                "speakers": len(set(part.column("speaker_key").to_pylist())),
                "hours": float(pc.sum(part.column("duration_s")).as_py() or 0.0) / 3600.0,
            }
    subgroups: dict[str, dict[str, int]] = {}
    for col in ("accent", "channel", "snr_band", "duration_band"):
        if col in manifest.column_names and manifest.num_rows:
            values = manifest.column(col).to_pylist()
            subgroups[col] = {str(v): values.count(v) for v in sorted(set(values), key=str)}
    hours = float(pc.sum(manifest.column("duration_s")).as_py() or 0.0) / 3600.0 if manifest.num_rows else 0.0
    return ManifestSummary(
        rows=manifest.num_rows,
        speakers=len(set(manifest.column("speaker_key").to_pylist())) if manifest.num_rows else 0,
        hours=hours,
        by_split=by_split,
        subgroups=subgroups,
    )


def assert_speaker_disjoint(manifest: pa.Table) -> None:
    seen: dict[str, str] = {}
    for key, split in zip(manifest.column("speaker_key").to_pylist(), manifest.column("split").to_pylist()):
        if seen.setdefault(key, split) != split:
            raise AssertionError(f"{key} appears in both {seen[key]} and {split}")


def manifest_from_metadata(batch_tables: list[pa.Table], percent: dict[str, int] = DEFAULT_SPLIT_PERCENT
                           ) -> tuple[pa.Table, bytes]:
    """The manifest of these batch metadata tables (checked speaker-disjoint) and its stored bytes.

    The one serialization of the manifest: equal tables give equal bytes, so whoever rebuilds it (the
    `audio_manifest` asset, an erasure) publishes what the other would have, and the next rebuild finds nothing to
    change."""
    manifest = build_manifest(batch_tables, percent)
    assert_speaker_disjoint(manifest)
    sink = io.BytesIO()
    pq.write_table(manifest, sink, compression="zstd")
    return manifest, sink.getvalue()


def swept_batches(store, repo: str, ref: str = DEFAULT_BRANCH) -> dict[str, dict]:
    """batch id -> its retention tombstone: batches whose raw audio was removed on purpose (by privacy.retention).

    Kept beside the manifest because every reader of the corpus's audio needs it: a swept batch is in the
    manifest (its transcripts and features are kept) but its audio is gone."""
    out = {}
    for obj in store.list_objects(repo, ref, f"{RETENTION_PREFIX}/"):
        if obj.path.endswith(".json"):
            body = json.loads(store.get_object(repo, ref, obj.path))
            out[body["batch_id"]] = body
    return out


def read_manifest_rows(store, repo: str, ref: str, *, holdouts: bool = True) -> list[dict]:
    """The published manifest at `ref`, one dict per utterance, with the drift holdouts stored at `ref` applied
    (`intake.holdout`: a drifted batch's held-out speakers are in `test`, whatever their hash says). Every reader
    of splits (training, evaluation, the probe set, the drift reference) goes through here, so they agree."""
    rows = pq.read_table(io.BytesIO(store.get_object(repo, ref, MANIFEST_PATH))).to_pylist()
    if not holdouts:
        return rows
    from speech_assets.intake.holdout import apply_holdouts, read_holdouts

    return apply_holdouts(rows, read_holdouts(store, repo, ref))


def manifest_rows_with(store, repo: str, ref: str, batch_id: str) -> list[dict]:
    """`read_manifest_rows` at `ref`, or — when `batch_id` is published at `ref` but the manifest has not been
    rebuilt with it yet (the features and the manifest are separate runs, in either order) — the manifest that
    rebuild will publish, from the batch metadata tables at `ref`, with the holdouts applied the same way."""
    try:
        rows = read_manifest_rows(store, repo, ref)
    except NotFoundError:
        rows = []
    if any(r.get("batch_id") == batch_id for r in rows):
        return rows
    from speech_assets.intake.holdout import apply_holdouts, read_holdouts

    table, _ = manifest_from_metadata(list(read_metadata_tables(store, repo, ref).values()))
    return apply_holdouts(table.to_pylist(), read_holdouts(store, repo, ref))


@dataclass(frozen=True)
class PublishedManifest:
    read_commit: str  # the main commit whose batch metadata was read
    commit_id: str  # the main commit that holds the manifest
    table: pa.Table
    summary: ManifestSummary
    changed: bool


def publish_manifest(store, repo: str, run_id: str, percent: dict[str, int] = DEFAULT_SPLIT_PERCENT) -> PublishedManifest:
    """Rebuild the manifest from every batch's metadata at main's head and publish it through a branch."""
    read_commit = store.resolve(repo, DEFAULT_BRANCH)
    manifest, data = manifest_from_metadata(list(read_metadata_tables(store, repo, read_commit).values()), percent)
    try:
        if store.stat_object(repo, read_commit, MANIFEST_PATH).checksum == hashlib.sha256(data).hexdigest():
            return PublishedManifest(read_commit, read_commit, manifest, summarize(manifest), changed=False)
    except NotFoundError:  # the first manifest
        pass

    summary = summarize(manifest)
    merged = publish_objects(
        store,
        repo,
        {MANIFEST_PATH: data},
        branch_prefix="manifest",
        message=f"audio_manifest: {summary.rows} utterances, {summary.hours:.2f} h",
        metadata={"run_id": run_id, "read_commit": read_commit, "rows": str(summary.rows)},
        base=read_commit,
        content_types={MANIFEST_PATH: "application/parquet"},
    )
    return PublishedManifest(read_commit, merged, manifest, summary, changed=True)
