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

then one commit (the reason in its message and metadata) merged into main.  Each rewrite above is one entry of
`ERASERS`, keyed by the layout key it rewrites and done by that key's owner (intake's metadata writer,
`features.store.feature_set_without`, `evaluation.rows`, `ProbeSet.without`, `intake.manifest.manifest_from_metadata`);
`NOT_ERASED` names the keys holding speaker data that an erasure leaves, with why.  `tests/privacy` fails when a
layout key that holds speaker data is in neither.

A crash before the merge leaves main exactly as it was.  Erasing the same speaker again finds nothing and says so;
a speaker main has never held raises UnknownSpeakerError and writes nothing.

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
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from speech_assets.audio.pii import speaker_sha256
from speech_assets.evaluation.rows import RowsWithoutSpeaker, rows_without_speaker
from speech_assets.features.store import feature_set_without, feature_sets_of
from speech_assets.intake.manifest import MANIFEST_PATH, manifest_from_metadata
from speech_assets.intake.metadata import holds_speaker, read_metadata_tables, table_bytes, without_speaker
from speech_assets.registry.marks import ModelMark, erasure_marks, stage_mark
from speech_assets.registry.registry import model_names
from speech_assets.serving.probe_set import PROBE_SET_PATH, ProbeSet, stored_probe_set
from speech_assets.storage import layout
from speech_assets.storage.audit_log import ERASURE, PlatformEvent, new_event, read_events, stage_event
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError, VersionStore
from speech_assets.storage.layout import Key, marks_path, metadata_path
from speech_assets.storage.publish import Transaction, branch_transaction, retry_on_conflict

# The splits a training run learns from: train (weights) and dev (checkpoint selection, LM weight tuning).
TRAINING_SPLITS = ("train", "dev")
MAX_ATTEMPTS = 3  # re-plan on a merge conflict (main moved under us) at most this often


class UnknownSpeakerError(LookupError):
    """Main holds no utterance of this speaker and no erasure of it was ever recorded."""


def speaker_subject(speaker_id: str) -> str:
    """The audit subject of an erasure: the speaker's digest, never the id."""
    return _subject(speaker_sha256(speaker_id))


def _subject(digest: str) -> str:
    return f"speaker:sha256:{digest}"


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


def list_erasures(store: VersionStore, repo: str, ref: str = DEFAULT_BRANCH) -> list[PlatformEvent]:
    return read_events(store, repo, ref, action=ERASURE)


# -- the plan: what one erasure changes, read at main's head (reads only) ------------------------------------
@dataclass
class BatchPlan:
    """One batch's share of an erasure."""

    batch_id: str
    erased_rows: list[dict]  # the speaker's metadata rows
    metadata_bytes: bytes  # the metadata table without them, as stored
    kept: pa.Table  # ... and as read back
    old_metadata_sha256: str
    audio_present: list[str]  # the speaker's audio objects main still holds
    audio_bytes: int
    audio_missing: int  # e.g. swept by retention before the erasure
    feature_configs: list[str]  # config digests of the batch's feature sets

    @property
    def utterances(self) -> list[str]:
        return [r["utt_id"] for r in self.erased_rows]

    def summary(self) -> BatchErasure:
        return BatchErasure(self.batch_id, self.utterances, len(self.audio_present), self.audio_bytes,
                            self.audio_missing, list(self.feature_configs))


@dataclass
class ErasurePlan:
    """Everything one erasure of a speaker changes, planned from main's head `base`."""

    speaker_id: str
    base: str
    batches: list[BatchPlan]
    metadata_after: dict[str, pa.Table]  # every batch's metadata table once erased: what the manifest is built from
    manifest_published: bool  # no manifest yet: the `audio_manifest` asset builds the first one
    probe_after: ProbeSet | None  # None: no probe set stored
    probe_items_removed: int
    evaluation_rows: RowsWithoutSpeaker
    affected_models: list[ModelMark]

    @property
    def erased_utterances(self) -> set[str]:
        return {u for b in self.batches for u in b.utterances}

    def result(self, dry_run: bool) -> ErasureResult:
        return ErasureResult(
            speaker_sha256(self.speaker_id), nothing_to_erase=False, dry_run=dry_run, base_commit=self.base,
            batches=[b.summary() for b in self.batches], affected_models=self.affected_models,
            probe_items_removed=self.probe_items_removed, evaluation_rows_removed=self.evaluation_rows.removed,
            source_refs=[f"{b.batch_id}: {r['source_ref']}" for b in self.batches for r in b.erased_rows
                         if r.get("source_ref")],
        )


def plan_erasure(store: VersionStore, repo: str, speaker_id: str, base: str) -> ErasurePlan | None:
    """What erasing `speaker_id` from commit `base` changes; None when `base` holds none of its utterances."""
    tables = read_metadata_tables(store, repo, base)
    touched = sorted(b for b, t in tables.items() if holds_speaker(t, speaker_id))
    if not touched:
        return None
    configs = feature_sets_of(store, repo, base, set(touched))
    batches = [_plan_batch(store, repo, base, b, tables[b], speaker_id, configs[b]) for b in touched]
    erased = {u for b in batches for u in b.utterances}
    affected = _affected_models(store, repo, base, speaker_id)
    probe = stored_probe_set(store, repo, base)
    probe_after = probe.without(erased) if probe else None
    return ErasurePlan(
        speaker_id, base, batches,
        metadata_after={**tables, **{b.batch_id: b.kept for b in batches}},
        manifest_published=_exists(store, repo, base, MANIFEST_PATH),
        probe_after=probe_after,
        probe_items_removed=len(probe.items) - len(probe_after.items) if probe else 0,
        evaluation_rows=rows_without_speaker(store, repo, base, speaker_id),
        affected_models=affected,
    )


def _plan_batch(store: VersionStore, repo: str, base: str, batch_id: str, table: pa.Table, speaker_id: str,
                feature_configs: list[str]) -> BatchPlan:
    kept, erased_rows = without_speaker(table, speaker_id)
    new_bytes = table_bytes(kept)
    old_sha = hashlib.sha256(store.get_object(repo, base, metadata_path(batch_id))).hexdigest()
    present, size, missing = _audio_at(store, repo, base, [r["audio_path"] for r in erased_rows])
    return BatchPlan(batch_id, erased_rows, new_bytes, pq.read_table(io.BytesIO(new_bytes)), old_sha, present,
                     size, missing, feature_configs)


def _audio_at(store: VersionStore, repo: str, ref: str, paths: list[str]) -> tuple[list[str], int, int]:
    """(the paths `ref` still holds, their total size, how many are gone already)."""
    present, size = [], 0
    for path in paths:
        try:
            size += store.stat_object(repo, ref, path).size_bytes
            present.append(path)
        except NotFoundError:
            pass
    return present, size, len(paths) - len(present)


def _exists(store: VersionStore, repo: str, ref: str, path: str) -> bool:
    try:
        store.stat_object(repo, ref, path)
        return True
    except NotFoundError:
        return False


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


# -- the erasers: for every layout key that holds speaker data, its owner's rewrite without the speaker --------
Eraser = Callable[[Transaction, ErasurePlan, str], None]  # (transaction, plan, erasure id): stage the rewrite


def _erase_metadata(tx: Transaction, plan: ErasurePlan, erasure_id: str) -> None:
    for b in plan.batches:
        tx.put(metadata_path(b.batch_id), b.metadata_bytes, content_type="application/parquet")


def _erase_audio(tx: Transaction, plan: ErasurePlan, erasure_id: str) -> None:
    for b in plan.batches:
        for path in b.audio_present:
            tx.delete(path)


def _erase_features(tx: Transaction, plan: ErasurePlan, erasure_id: str) -> None:
    erased = plan.erased_utterances
    for b in plan.batches:
        rows = {r["utt_id"]: r for r in b.kept.to_pylist()}
        new_sha = hashlib.sha256(b.metadata_bytes).hexdigest()
        for digest in b.feature_configs:
            objects = feature_set_without(tx.store, tx.repo, plan.base, digest, b.batch_id, erased, metadata_rows=rows,
                                          old_metadata_sha256=b.old_metadata_sha256, new_metadata_sha256=new_sha,
                                          erasure_id=erasure_id)
            for path, data in (objects or {}).items():
                tx.put(path, data)


def _erase_evaluation_rows(key: Key, tx: Transaction, plan: ErasurePlan, erasure_id: str) -> None:
    for path, data in plan.evaluation_rows.objects.items():
        if key.matches(path):
            tx.put(path, data, content_type="application/parquet")


def _erase_probe_set(tx: Transaction, plan: ErasurePlan, erasure_id: str) -> None:
    # The probe set is read at a pinned older commit, which would otherwise keep serving the erased audio.
    if plan.probe_after is not None and plan.probe_items_removed:
        tx.put(PROBE_SET_PATH, plan.probe_after.to_json(), content_type="application/json")


def _erase_manifest(tx: Transaction, plan: ErasurePlan, erasure_id: str) -> None:
    # Built as `audio_manifest` builds it, so that asset finds nothing to change afterwards.
    if plan.manifest_published:
        _, data = manifest_from_metadata(list(plan.metadata_after.values()))
        tx.put(MANIFEST_PATH, data, content_type="application/parquet")


# Applied in this order; every key of `layout.KEYS` that holds speaker data is here or in NOT_ERASED.
ERASERS: dict[str, Eraser] = {
    layout.METADATA_KEY.pattern: _erase_metadata,
    layout.AUDIO_KEY.pattern: _erase_audio,
    layout.FEATURES_KEY.pattern: _erase_features,
    layout.EVALUATION_ROWS_KEY.pattern: partial(_erase_evaluation_rows, layout.EVALUATION_ROWS_KEY),
    layout.CHAMPION_ROWS_KEY.pattern: partial(_erase_evaluation_rows, layout.CHAMPION_ROWS_KEY),
    layout.PROBE_SET_KEY.pattern: _erase_probe_set,
    layout.MANIFEST_KEY.pattern: _erase_manifest,
}

# Keys that hold speaker data an erasure leaves, each with why (the module docstring's documented limits).
NOT_ERASED: dict[str, str] = {
    layout.QUARANTINE_FILES_KEY.pattern:
        "rejected files of rows that never entered the corpus: intake records no speaker for them, so they cannot "
        "be attributed (the retention sweep removes them with the batch's audio)",
    layout.QUARANTINE_RECORDS_KEY.pattern:
        "manifest lines that could not be parsed: no speaker can be read from them; a person clears the quarantine",
    layout.REJECTIONS_KEY.pattern:
        "rejection rows carry no speaker (reason, digests, sanitized transcript), so none can be attributed",
}


def unerased_speaker_keys() -> list[Key]:
    """Layout keys that hold speaker data but have neither an eraser nor a reason to be left: must be empty."""
    holding = (*layout.keys_holding(layout.AUDIO), *layout.keys_holding(layout.ROWS))
    return [k for k in holding if k.pattern not in ERASERS and k.pattern not in NOT_ERASED]


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
    base = store.resolve(repo, DEFAULT_BRANCH)
    plan = plan_erasure(store, repo, speaker_id, base)
    if plan is None:
        return _nothing_to_erase(store, repo, speaker_id, base, dry_run)
    result = plan.result(dry_run)
    if dry_run:
        result.message = (f"dry run: would erase {result.utterances} utterances in {len(result.batches)} batches, "
                          f"mark {len(result.affected_models)} model versions")
        return result
    event = _erasure_event(result, actor, reason, run_id)
    result.erasure_id = event.event_id
    result.commit_id, result.merge_commit = _apply(store, repo, plan, event, result, actor=actor, reason=reason,
                                                   run_id=run_id)
    result.message = (f"erased {result.utterances} utterances in {len(result.batches)} batches; "
                      f"{len(result.affected_models)} model versions marked; main at {result.merge_commit[:12]}")
    return result


def _nothing_to_erase(store: VersionStore, repo: str, speaker_id: str, base: str, dry_run: bool) -> ErasureResult:
    """A speaker erased before is a no-op that says so; one never seen is an error."""
    digest = speaker_sha256(speaker_id)
    earlier = [e for e in list_erasures(store, repo, base) if e.subject == speaker_subject(speaker_id)]
    if not earlier:
        raise UnknownSpeakerError(f"main ({base[:12]}) holds no utterance of speaker sha256:{digest[:12]} and no "
                                  f"erasure of it was recorded: check the id")
    return ErasureResult(
        digest, nothing_to_erase=True, dry_run=dry_run, base_commit=base, erasure_id=earlier[-1].event_id,
        message=(f"nothing to erase: speaker sha256:{digest[:12]} was erased by "
                 f"{', '.join(e.event_id for e in earlier)}; main holds none of its utterances"),
    )


def _erasure_event(result: ErasureResult, actor: str, reason: str, run_id: str) -> PlatformEvent:
    """The `erasure` audit event; its id names the erasure."""
    digest = result.speaker_sha256
    event = new_event(
        ERASURE, actor, _subject(digest),
        f"erased speaker sha256:{digest[:12]}: {result.utterances} utterances in {len(result.batches)} batches, "
        f"{result.objects_removed} audio objects; {len(result.affected_models)} model versions marked — {reason}",
        {
            "speaker_sha256": digest, "reason": reason, "run_id": run_id, "base_commit": result.base_commit,
            "batches": {b.batch_id: {"utterances": len(b.utterances), "audio_objects": b.audio_objects,
                                     "audio_bytes": b.audio_bytes, "audio_already_gone": b.audio_already_gone,
                                     "feature_sets": b.feature_sets} for b in result.batches},
            # utt ids are batch-index names, not personal data
            "utterance_ids": sorted(u for b in result.batches for u in b.utterances),
            "utterances_removed": result.utterances, "objects_removed": result.objects_removed,
            "bytes_removed": sum(b.audio_bytes for b in result.batches),
            "probe_items_removed": result.probe_items_removed,
            "evaluation_rows_removed": result.evaluation_rows_removed,
            "affected_models": [asdict(m) for m in result.affected_models],
        },
    )
    return replace(event, evidence={"erasure_id": event.event_id, **event.evidence})


def _apply(store: VersionStore, repo: str, plan: ErasurePlan, event: PlatformEvent, result: ErasureResult, *,
           actor: str, reason: str, run_id: str) -> tuple[str, str]:
    """Stage every eraser's rewrite, the model marks and the event on one branch; commit and merge it.
    Returns (the erasure commit, main's head after the merge).

    A failure throws the branch away (main was never touched); a process killed outright leaves it, and the next
    attempt resets it."""
    digest = result.speaker_sha256
    with branch_transaction(store, repo, f"erasure-{digest[:12]}-{plan.base[:12]}", base=plan.base) as tx:
        for eraser in ERASERS.values():
            eraser(tx, plan, event.event_id)
        for m in plan.affected_models:
            stage_mark(store, repo, tx.branch, plan.base, m, erasure_id=event.event_id, ts=event.ts,
                       subject=event.subject)
        stage_event(store, repo, tx.branch, event)
        meta = {"action": ERASURE, "erasure_id": event.event_id, "audit_event": event.event_id,
                "speaker_sha256": digest, "reason": reason, "actor": actor, "run_id": run_id,
                "batches": ",".join(b.batch_id for b in result.batches), "utterances": str(result.utterances),
                "marked_models": ",".join(f"{m.model}:{m.version}" for m in result.affected_models)}
        message = f"erasure: speaker sha256:{digest[:12]} ({result.utterances} utterances) — {reason}"
        return tx.commit(message, meta, committer=actor), tx.merge(message, meta)


__all__ = [
    "BatchErasure", "ERASERS", "ErasurePlan", "ErasureResult", "ModelMark", "NOT_ERASED", "UnknownSpeakerError",
    "erase_speaker", "erasure_marks", "list_erasures", "marks_path", "plan_erasure", "speaker_sha256",
    "speaker_subject", "stage_mark", "unerased_speaker_keys",
]
