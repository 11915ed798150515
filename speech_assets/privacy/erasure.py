"""Per-speaker erasure from `main`: one commit that removes a speaker's audio, transcripts and features.

    result = erase_speaker(store, repo, "spk-0042", actor="dpo@example.org", reason="GDPR art. 17 request #118")

On a branch from main's head, for every batch holding the speaker's utterances:

* the rows are dropped from `metadata/<batch>.parquet` and their audio objects deleted;
* every feature set of the batch (`features/<config digest>/<batch>/`) is rewritten without those utterances:
  `features.npy` and `index.parquet` re-packed, `stats.json` recomputed from the kept rows (its word counts and
  histograms held the speaker's contribution).  When the set was current for the old metadata, its
  `source_metadata_sha256` is set to the new metadata's digest, so the `features` asset sees it current and does not
  recompute the batch; a stale set stays stale (the next `features` run recomputes it anyway);
* the canary probe set (`serving/probe_set.json`) drops the speaker's items: it names audio paths and transcripts,
  and is read at a pinned older commit, which would otherwise keep serving the erased audio to the canary;
* the evaluation row tables (`evaluations/*/rows.parquet`, `champion_rows.parquet`) drop the speaker's rows (they
  hold the reference transcripts);
* the manifest is rebuilt from the remaining metadata (byte-identical to what `audio_manifest` would publish, so
  that asset finds nothing to change);
* every registered model version that trained on the speaker (the manifest at its lineage's data commit has the
  speaker in a training split — train, and dev, which picks the checkpoint and tunes the word LM), or that was
  warm-started from such a version, is marked: `governance/erasure_marks/<model>/<version>.json` gains the
  erasure id; the retrain sensor acts on marks of the production model;
* an `erasure` platform event records what was removed;

then one commit (the reason in its message and metadata) merged into main.  A crash before the merge leaves main
exactly as it was.  Erasing the same speaker again finds nothing and says so; a speaker main has never held raises
UnknownSpeakerError and writes nothing.

The audit trail names the speaker by `sha256(speaker id)`, never the id itself: the trail is append-only (checked
by `verify_append_only`), so an identifier written there could never be erased again, which would defeat the
erasure.  The digest still lets anyone who knows the id confirm it was erased.  Speaker ids are often guessable
(`spk12`), so the digest is pseudonymous, not anonymous: the trail stays an access-controlled record.

What erasure from `main` does NOT do (documented limits):

* History: older commits (and tags) still reference the erased objects, so `store.get_object(repo, <old commit>,
  path)` still returns them until those commits are garbage-collected (lakeFS: retention rules + the GC job;
  the local store: its own garbage collection of unreferenced blobs).  Reads of `main` — what the pipeline,
  training and serving use — no longer see them.
* The landing zone (the source files intake read) is outside the store: `ErasureResult.source_refs` lists them so
  an operator can delete them. Intake will not bring the speaker back meanwhile: it reads the erasure events and
  skips (counts, does not store or quarantine) an erased speaker's rows in any later run of any batch.
* Quarantine keeps rejected files of rows that never entered the corpus; intake does not record their speaker,
  so they cannot be attributed here (the retention sweep removes their audio with the batch's).
* Aggregates that mix many speakers (drift references, drift reports, the stats of other batches) are kept; a
  model's drift reference is rebuilt when a retrained model replaces it.
* Marks are decided at erasure time: a model registered afterwards but trained on a pre-erasure commit (a training
  run in flight during the erasure) is not marked.  Avoid erasing while `train_and_deploy` runs, or check its
  lineage by hand.
* A model trained on the speaker is marked, not deleted: its weights stay in the registry (rollback and audit need
  them) until a retrain replaces it in production and an operator archives it.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from speech_assets.features.stats import batch_stats
from speech_assets.features.store import FEATURES_PREFIX
from speech_assets.storage.audit_log import ERASURE, PlatformEvent, new_event, read_events, stage_event
from speech_assets.registry.registry import model_names
from speech_assets.storage.layout import METADATA_PREFIX, metadata_path
from speech_assets.intake.manifest import MANIFEST_PATH, assert_speaker_disjoint, build_manifest
from speech_assets.audio.pii import speaker_sha256
from speech_assets.serving.probe_set import PROBE_SET_PATH, ProbeSet
from speech_assets.registry.marks import ModelMark, erasure_marks, stage_mark
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError, VersionStore
from speech_assets.storage.layout import EVALUATIONS_PREFIX, marks_path
from speech_assets.storage.publish import branch_transaction, retry_on_conflict

# The splits a training run learns from: train (weights) and dev (checkpoint selection, LM weight tuning).
TRAINING_SPLITS = ("train", "dev")
MAX_ATTEMPTS = 3  # re-plan on a merge conflict (main moved under us) at most this often


class UnknownSpeakerError(LookupError):
    """Main holds no utterance of this speaker and no erasure of it was ever recorded."""


def speaker_subject(speaker_id: str) -> str:
    """The audit subject of an erasure: the speaker's digest, never the id."""
    return f"speaker:sha256:{speaker_sha256(speaker_id)}"


@dataclass
class BatchErasure:
    batch_id: str
    utterances: list[str]
    audio_objects: int  # audio objects deleted from main
    audio_bytes: int
    audio_already_gone: int  # e.g. swept by retention before the erasure
    feature_sets: list[str]  # config digests rewritten


@dataclass
class ErasureResult:
    speaker_sha256: str
    nothing_to_erase: bool
    dry_run: bool
    base_commit: str
    batches: list[BatchErasure] = field(default_factory=list)
    affected_models: list[ModelMark] = field(default_factory=list)
    probe_items_removed: int = 0
    evaluation_rows_removed: int = 0
    source_refs: list[str] = field(default_factory=list)  # landing-zone files to delete outside the store
    erasure_id: str | None = None
    commit_id: str | None = None  # the erasure commit on its branch
    merge_commit: str | None = None  # main's head after the merge
    message: str = ""

    @property
    def utterances(self) -> int:
        return sum(len(b.utterances) for b in self.batches)

    @property
    def objects_removed(self) -> int:
        return sum(b.audio_objects for b in self.batches)

    def to_dict(self) -> dict:
        return {**asdict(self), "utterances": self.utterances, "objects_removed": self.objects_removed}


# -- reading -----------------------------------------------------------------------------------------------
def _read_parquet(store: VersionStore, repo: str, ref: str, path: str) -> pa.Table:
    return pq.read_table(io.BytesIO(store.get_object(repo, ref, path)))


def _parquet_bytes(table: pa.Table) -> bytes:
    # The same writer settings as intake, so a rewritten metadata table is what intake would have written.
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", write_statistics=True)
    return sink.getvalue()


def _is_speaker(table: pa.Table, speaker_id: str) -> pa.ChunkedArray:
    if "speaker" not in table.column_names:
        return pa.chunked_array([pa.array([False] * table.num_rows, pa.bool_())])
    return pc.fill_null(pc.equal(table.column("speaker"), speaker_id), False)


def _batches_with_speaker(store: VersionStore, repo: str, ref: str, speaker_id: str) -> dict[str, pa.Table]:
    """batch id -> its whole metadata table, for batches holding at least one of the speaker's rows."""
    out = {}
    for obj in store.list_objects(repo, ref, f"{METADATA_PREFIX}/"):
        if not obj.path.endswith(".parquet"):
            continue
        table = _read_parquet(store, repo, ref, obj.path)
        if pc.any(_is_speaker(table, speaker_id)).as_py():
            out[obj.path[len(METADATA_PREFIX) + 1 : -len(".parquet")]] = table
    return out


def list_erasures(store: VersionStore, repo: str, ref: str = DEFAULT_BRANCH) -> list[PlatformEvent]:
    return read_events(store, repo, ref, action=ERASURE)


def _affected_models(store: VersionStore, repo: str, ref: str, speaker_id: str) -> list[ModelMark]:
    """Registered versions whose training manifest holds the speaker in a training split, and their warm-started
    descendants (fine-tuning from a model keeps what it learned)."""
    from speech_assets.intake.manifest import read_manifest_rows
    from speech_assets.registry.registry import ModelRegistry

    registry = ModelRegistry(store, repo)
    trained_on: dict[str, bool] = {}

    def manifest_has_speaker(commit: str) -> bool:
        if commit not in trained_on:
            try:
                rows = read_manifest_rows(store, repo, commit)
            except NotFoundError:  # no manifest at that commit: nothing to have trained on
                rows = []
            trained_on[commit] = any(r.get("speaker") == speaker_id and r.get("split") in TRAINING_SPLITS
                                     for r in rows)
        return trained_on[commit]

    marks: list[ModelMark] = []
    for name in model_names(store, repo, ref):
        marked: set[str] = set()
        for mv in registry.list_versions(name, ref=ref):  # ascending: a parent comes before its descendants
            commits = list(mv.lineage.data_commits)
            hits = [c for c in commits if manifest_has_speaker(c)]
            if hits:
                why = f"trained on the speaker's utterances (training manifest at {', '.join(c[:12] for c in hits)})"
            elif mv.lineage.parent_version in marked:
                why = f"warm-started from {mv.lineage.parent_version}, which trained on the speaker"
            else:
                continue
            marked.add(mv.version)
            marks.append(ModelMark(name, mv.version, why, commits))
    return marks


# -- rewriting ---------------------------------------------------------------------------------------------
def _feature_sets(store: VersionStore, repo: str, ref: str, batch_ids: set[str]) -> dict[str, list[str]]:
    """batch id -> its `features/<digest>/<batch>` directories, every feature config (one listing for all)."""
    dirs: dict[str, list[str]] = {b: [] for b in batch_ids}
    for obj in store.list_objects(repo, ref, f"{FEATURES_PREFIX}/"):
        parts = obj.path.split("/")
        if len(parts) == 4 and parts[2] in batch_ids and parts[3] == "index.parquet":
            dirs[parts[2]].append("/".join(parts[:3]))
    return dirs


def _rewrite_feature_set(store: VersionStore, repo: str, ref: str, base: str, erased: set[str],
                         new_rows: dict[str, dict], old_meta_sha: str, new_meta_sha: str,
                         erasure_id: str) -> dict[str, bytes] | None:
    """The feature set at `base` without the erased utterances (None if it holds none of them)."""
    index = _read_parquet(store, repo, ref, f"{base}/index.parquet").to_pylist()
    kept = [r for r in index if r["utt_id"] not in erased]
    if len(kept) == len(index):
        return None
    array = np.load(io.BytesIO(store.get_object(repo, ref, f"{base}/features.npy")), allow_pickle=False)
    segments = [array[r["offset"] : r["offset"] + r["frames"]] for r in kept]
    packed = np.concatenate(segments, axis=0) if segments else np.zeros((0, array.shape[1]), array.dtype)
    offsets = np.cumsum([0] + [s.shape[0] for s in segments]).astype(np.int64)
    new_index = pa.table(
        {"utt_id": [r["utt_id"] for r in kept], "offset": offsets[:-1],
         "frames": np.asarray([s.shape[0] for s in segments], dtype=np.int32)},
        schema=pa.schema([("utt_id", pa.string()), ("offset", pa.int64()), ("frames", pa.int32())]),
    )
    npy = io.BytesIO()
    np.save(npy, packed, allow_pickle=False)
    idx = io.BytesIO()
    pq.write_table(new_index, idx)
    out = {f"{base}/features.npy": npy.getvalue(), f"{base}/index.parquet": idx.getvalue()}
    try:
        old_stats = json.loads(store.get_object(repo, ref, f"{base}/stats.json"))
    except NotFoundError:
        return out
    # Recomputed from the stored (float16) features of the kept rows: equal to what `features` would compute up
    # to float16 rounding of the log-mel values.  Only rows with metadata can be described; a stale set (features
    # older than the metadata) keeps its stale provenance and is recomputed by the next `features` run.
    pairs = [(s.astype(np.float32), new_rows[r["utt_id"]]) for s, r in zip(segments, kept) if r["utt_id"] in new_rows]
    stats = batch_stats([p[0] for p in pairs], [p[1] for p in pairs],
                        frames=np.concatenate([p[0] for p in pairs], axis=0) if pairs else None)
    provenance = {k: old_stats[k] for k in ("batch_id", "feature_config", "feature_config_digest", "source_commit")
                  if k in old_stats}
    current = old_stats.get("source_metadata_sha256") == old_meta_sha
    stats.update(provenance)
    stats["source_metadata_sha256"] = new_meta_sha if current else old_stats.get("source_metadata_sha256", "")
    stats["erasures"] = [*old_stats.get("erasures", []), erasure_id]
    out[f"{base}/stats.json"] = json.dumps(stats, sort_keys=True).encode()
    return out


def _scrub_evaluations(store: VersionStore, repo: str, ref: str, speaker_id: str) -> tuple[dict[str, bytes], int]:
    out, removed = {}, 0
    for obj in store.list_objects(repo, ref, EVALUATIONS_PREFIX):
        if not obj.path.endswith("rows.parquet"):
            continue
        table = _read_parquet(store, repo, ref, obj.path)
        hit = _is_speaker(table, speaker_id)
        n = int(pc.sum(pc.cast(hit, pa.int64())).as_py() or 0)
        if n:
            out[obj.path] = _parquet_bytes(table.filter(pc.invert(hit)))
            removed += n
    return out, removed


# -- the erasure -------------------------------------------------------------------------------------------
def erase_speaker(store: VersionStore, repo: str, speaker_id: str, *, actor: str, reason: str, run_id: str = "",
                  dry_run: bool = False) -> ErasureResult:
    """Remove `speaker_id`'s audio, transcripts and features from main in one commit (see the module docstring)."""
    if not speaker_id or not speaker_id.strip():
        raise ValueError("a speaker id is required")
    if not actor or not actor.strip():
        raise ValueError("an erasure needs a named actor")
    if not reason or not reason.strip():
        raise ValueError("an erasure needs a reason (it is kept in the commit and the audit trail)")
    if speaker_id in reason:
        # The reason lands in an append-only trail and in commit history, which erasure cannot rewrite.
        raise ValueError("the reason must not contain the speaker id (it would outlive the erasure in the audit trail)")
    # A merge conflict means main moved and touched the same paths: re-plan from its new head.
    return retry_on_conflict(
        lambda _: _erase_once(store, repo, speaker_id, actor=actor.strip(), reason=reason.strip(), run_id=run_id,
                              dry_run=dry_run),
        attempts=MAX_ATTEMPTS)


def _erase_once(store: VersionStore, repo: str, speaker_id: str, *, actor: str, reason: str, run_id: str,
                dry_run: bool) -> ErasureResult:
    digest = speaker_sha256(speaker_id)
    subject = speaker_subject(speaker_id)
    base = store.resolve(repo, DEFAULT_BRANCH)
    tables = _batches_with_speaker(store, repo, base, speaker_id)
    result = ErasureResult(digest, nothing_to_erase=not tables, dry_run=dry_run, base_commit=base)
    if not tables:
        earlier = [e for e in list_erasures(store, repo, base) if e.subject == subject]
        if not earlier:
            raise UnknownSpeakerError(f"main ({base[:12]}) holds no utterance of speaker sha256:{digest[:12]} and no "
                                      f"erasure of it was recorded: check the id")
        result.message = (f"nothing to erase: speaker sha256:{digest[:12]} was erased by "
                          f"{', '.join(e.event_id for e in earlier)}; main holds none of its utterances")
        result.erasure_id = earlier[-1].event_id
        return result

    # -- plan (reads only) --
    plans = []
    feature_sets = _feature_sets(store, repo, base, set(tables))
    for batch_id, table in sorted(tables.items()):
        hit = _is_speaker(table, speaker_id)
        gone = table.filter(hit).to_pylist()
        kept_table = table.filter(pc.invert(hit))
        audio_bytes, present, missing = 0, [], 0
        for r in gone:
            try:
                audio_bytes += store.stat_object(repo, base, r["audio_path"]).size_bytes
                present.append(r["audio_path"])
            except NotFoundError:
                missing += 1
        feature_dirs = feature_sets[batch_id]
        plans.append((batch_id, table, kept_table, gone, present, feature_dirs))
        result.batches.append(BatchErasure(batch_id, [r["utt_id"] for r in gone], len(present), audio_bytes, missing,
                                           [d.split("/")[1] for d in feature_dirs]))
        result.source_refs += [f"{batch_id}: {r['source_ref']}" for r in gone if r.get("source_ref")]
    erased = {u for b in result.batches for u in b.utterances}
    result.affected_models = _affected_models(store, repo, base, speaker_id)
    try:
        probe = ProbeSet.from_json(store.get_object(repo, base, PROBE_SET_PATH))
    except NotFoundError:
        probe = None
    probe_kept = [i for i in probe.items if i.utt_id not in erased] if probe else []
    result.probe_items_removed = len(probe.items) - len(probe_kept) if probe else 0
    eval_objects, result.evaluation_rows_removed = _scrub_evaluations(store, repo, base, speaker_id)
    if dry_run:
        result.message = (f"dry run: would erase {result.utterances} utterances in {len(result.batches)} batches, "
                          f"mark {len(result.affected_models)} model versions")
        return result

    event = new_event(
        ERASURE, actor, subject,
        f"erased speaker sha256:{digest[:12]}: {result.utterances} utterances in {len(result.batches)} batches, "
        f"{result.objects_removed} audio objects; {len(result.affected_models)} model versions marked — {reason}",
        {
            "speaker_sha256": digest, "reason": reason, "run_id": run_id, "base_commit": base,
            "batches": {b.batch_id: {"utterances": len(b.utterances), "audio_objects": b.audio_objects,
                                     "audio_bytes": b.audio_bytes, "audio_already_gone": b.audio_already_gone,
                                     "feature_sets": b.feature_sets} for b in result.batches},
            "utterance_ids": sorted(erased),  # utt ids are batch-index names, not personal data
            "utterances_removed": result.utterances, "objects_removed": result.objects_removed,
            "bytes_removed": sum(b.audio_bytes for b in result.batches),
            "probe_items_removed": result.probe_items_removed,
            "evaluation_rows_removed": result.evaluation_rows_removed,
            "affected_models": [asdict(m) for m in result.affected_models],
        },
    )
    event = replace(event, evidence={"erasure_id": event.event_id, **event.evidence})  # the event id names the erasure
    result.erasure_id = event.event_id

    # Success: the branch is spent (its commits stay in main's history).  Failure: the half-state is thrown away;
    # main was never touched.  A process killed outright leaves the branch, which the next attempt resets.
    with branch_transaction(store, repo, f"erasure-{digest[:12]}-{base[:12]}", base=base) as tx:
        branch = tx.branch
        new_tables = {}
        for batch_id, table, kept_table, gone, present, feature_dirs in plans:
            old_bytes = store.get_object(repo, base, metadata_path(batch_id))
            new_bytes = _parquet_bytes(kept_table)
            new_tables[batch_id] = kept_table
            store.put_object(repo, branch, metadata_path(batch_id), new_bytes, content_type="application/parquet")
            for path in present:
                store.delete_object(repo, branch, path)
            new_rows = {r["utt_id"]: r for r in kept_table.to_pylist()}
            for d in feature_dirs:
                objects = _rewrite_feature_set(
                    store, repo, base, d, erased, new_rows, hashlib.sha256(old_bytes).hexdigest(),
                    hashlib.sha256(new_bytes).hexdigest(), event.event_id)
                for path, data in (objects or {}).items():
                    store.put_object(repo, branch, path, data)
        if probe is not None and result.probe_items_removed:
            store.put_object(repo, branch, PROBE_SET_PATH, ProbeSet(probe.commit, tuple(probe_kept)).to_json(),
                             content_type="application/json")
        for path, data in eval_objects.items():
            store.put_object(repo, branch, path, data, content_type="application/parquet")
        _rebuild_manifest(store, repo, branch, base)
        for m in result.affected_models:
            stage_mark(store, repo, branch, base, m, erasure_id=event.event_id, ts=event.ts, subject=event.subject)
        stage_event(store, repo, branch, event)
        meta = {"action": ERASURE, "erasure_id": event.event_id, "audit_event": event.event_id,
                "speaker_sha256": digest, "reason": reason, "actor": actor, "run_id": run_id,
                "batches": ",".join(b.batch_id for b in result.batches), "utterances": str(result.utterances),
                "marked_models": ",".join(f"{m.model}:{m.version}" for m in result.affected_models)}
        message = f"erasure: speaker sha256:{digest[:12]} ({result.utterances} utterances) — {reason}"
        result.commit_id = tx.commit(message, meta, committer=actor)
        result.merge_commit = tx.merge(message, meta)
    result.message = (f"erased {result.utterances} utterances in {len(result.batches)} batches; "
                      f"{len(result.affected_models)} model versions marked; main at {result.merge_commit[:12]}")
    return result


def _rebuild_manifest(store: VersionStore, repo: str, branch: str, base: str) -> None:
    """The manifest from the branch's metadata, serialized as `publish_manifest` does (so equal inputs give equal
    bytes and the `audio_manifest` asset finds nothing to change)."""
    try:
        store.stat_object(repo, base, MANIFEST_PATH)
    except NotFoundError:
        return  # no manifest published yet: the asset builds the first one
    tables = [_read_parquet(store, repo, branch, obj.path)
              for obj in store.list_objects(repo, branch, f"{METADATA_PREFIX}/") if obj.path.endswith(".parquet")]
    manifest = build_manifest(tables)
    assert_speaker_disjoint(manifest)
    sink = io.BytesIO()
    pq.write_table(manifest, sink, compression="zstd")
    store.put_object(repo, branch, MANIFEST_PATH, sink.getvalue(), content_type="application/parquet")


__all__ = [
    "BatchErasure", "ErasureResult", "ModelMark", "UnknownSpeakerError", "erase_speaker",
    "erasure_marks", "list_erasures", "marks_path", "speaker_sha256", "speaker_subject", "stage_mark",
]
