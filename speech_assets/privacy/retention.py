"""Raw-audio retention: the recordings of batches published more than N days ago are removed from `main`.

    result = sweep_raw_audio(store, repo, max_age_days=365, now=datetime.now(timezone.utc), actor="retention")

A batch's age is counted from its publish: the newest `data_publish` audit event naming it, falling back (batches
published before the audit trail existed) to the newest `publish batch <id>` commit on main.  For every batch past
the limit that still has audio, one commit on a branch from main deletes

    audio/<batch>/...                    the accepted recordings
    quarantine/<batch>/files/...         the rejected recordings kept for inspection (raw audio too)

and writes a tombstone `retention/<batch>.json` (when, which publish it swept, objects, bytes) so later readers know
the audio is gone on purpose rather than lost; a `retention` audit event rides the same commit; then one merge.  No
batch to sweep → no commit.

What stays, and why:

* `metadata/<batch>.parquet` — the (PII-redacted) transcripts, labels and provenance: the manifest, its splits and
  every model's lineage are defined by them, and a model trained on the batch stays explainable.
* `features/<digest>/<batch>/` — training and drift detection read the log-mel features, not the audio, so the
  corpus keeps its use after the recordings go.  Log-mel features are not anonymous (speech can be roughly
  resynthesized from them); they are removed by per-speaker erasure, and a policy that must cover them too would
  extend this sweep.  A swept batch cannot get features under a NEW feature config (there is no audio to compute
  them from): the tombstone says so.
* The quarantine's `rejections.parquet` (why files were rejected, no audio).

Removing from `main` is not removing from history: older commits still reference the blobs until garbage collection
(lakeFS GC / the local store's).  `bytes_freed` is what main no longer holds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from speech_assets.storage.audit_log import (
    DATA_PUBLISH,
    RETENTION,
    iso,
    new_event,
    parse_time,
    read_events,
    stage_event,
)
from speech_assets.storage.base import DEFAULT_BRANCH, VersionStore
from speech_assets.storage.publish import branch_transaction
from speech_assets.storage.layout import AUDIO_PREFIX, METADATA_PREFIX, QUARANTINE_PREFIX, tombstone_path
DEFAULT_RETENTION_DAYS = 365


@dataclass
class SweptBatch:
    batch_id: str
    published_at: str
    publish_source: str  # "audit" (data_publish event) | "commit" (the publish commit's creation date)
    age_days: float
    objects: int
    bytes: int


@dataclass
class RetentionResult:
    max_age_days: float
    cutoff: str
    base_commit: str
    dry_run: bool
    batches: list[SweptBatch] = field(default_factory=list)
    unknown_age: list[str] = field(default_factory=list)  # batches with no publish event or commit found
    commit_id: str | None = None
    merge_commit: str | None = None
    event_id: str | None = None

    @property
    def objects(self) -> int:
        return sum(b.objects for b in self.batches)

    @property
    def bytes_freed(self) -> int:
        return sum(b.bytes for b in self.batches)

    def to_dict(self) -> dict:
        return {**asdict(self), "objects": self.objects, "bytes_freed": self.bytes_freed}


def publish_times(store: VersionStore, repo: str, ref: str, batch_ids: list[str]) -> dict[str, tuple[datetime, str]]:
    """batch id -> (time of its newest publish, "audit" | "commit")."""
    out: dict[str, tuple[datetime, str]] = {}
    for e in read_events(store, repo, ref, action=DATA_PUBLISH):
        b = e.evidence.get("batch_id")
        if b in batch_ids:
            t = parse_time(e.ts)
            if b not in out or t > out[b][0]:
                out[b] = (t, "audit")
    missing = set(batch_ids) - set(out)
    if missing:
        # Batches from before the audit trail: the newest publish merge commit of each (log is newest first).
        for c in store.log(repo, ref):
            b = c.metadata.get("batch_id")
            if b in missing and c.message.startswith("publish batch"):
                out[b] = (datetime.fromtimestamp(c.creation_date, tz=timezone.utc), "commit")
                missing.discard(b)
                if not missing:
                    break
    return out


def sweep_raw_audio(store: VersionStore, repo: str, max_age_days: float, now: datetime, actor: str, *,
                    run_id: str = "", dry_run: bool = False) -> RetentionResult:
    if max_age_days < 0:
        raise ValueError(f"max_age_days must be >= 0, got {max_age_days}")
    if not actor or not actor.strip():
        raise ValueError("a retention sweep needs a named actor")
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    cutoff = now - timedelta(days=max_age_days)
    base = store.resolve(repo, DEFAULT_BRANCH)
    result = RetentionResult(max_age_days, iso(cutoff), base, dry_run)
    batch_ids = sorted(o.path[len(METADATA_PREFIX) + 1 : -len(".parquet")]
                       for o in store.list_objects(repo, base, f"{METADATA_PREFIX}/") if o.path.endswith(".parquet"))
    times = publish_times(store, repo, base, batch_ids)
    result.unknown_age = [b for b in batch_ids if b not in times]
    doomed: dict[str, list[str]] = {}
    for b in batch_ids:
        if b not in times or times[b][0] > cutoff:
            continue
        stats = [*store.list_objects(repo, base, f"{AUDIO_PREFIX}/{b}/"),
                 *store.list_objects(repo, base, f"{QUARANTINE_PREFIX}/{b}/files/")]
        if not stats:  # swept before (or a batch with no audio): nothing to do
            continue
        t, source = times[b]
        doomed[b] = [s.path for s in stats]
        result.batches.append(SweptBatch(b, iso(t), source, round((now - t).total_seconds() / 86400, 3), len(stats),
                                         sum(s.size_bytes for s in stats)))
    if not result.batches or dry_run:
        return result

    event = new_event(
        RETENTION, actor.strip(), f"raw audio older than {max_age_days:g} days",
        f"removed the raw audio of {len(result.batches)} batches published before {result.cutoff}: "
        f"{result.objects} objects, {result.bytes_freed} bytes",
        # `now` is the policy's reference time (a test or a backfill may pass another); the event's own time
        # stamp is when the sweep really ran.
        {"max_age_days": max_age_days, "as_of": iso(now), "cutoff": result.cutoff, "base_commit": base, "run_id": run_id,
         "batches": {b.batch_id: {"published_at": b.published_at, "publish_source": b.publish_source,
                                  "objects": b.objects, "bytes": b.bytes} for b in result.batches},
         "objects": result.objects, "bytes_freed": result.bytes_freed,
         "kept": "metadata (redacted transcripts, lineage) and features", "unknown_age": result.unknown_age},
    )
    result.event_id = event.event_id
    with branch_transaction(store, repo, f"retention-{base[:12]}", base=base) as tx:
        branch = tx.branch
        for b in result.batches:
            for path in doomed[b.batch_id]:
                store.delete_object(repo, branch, path)
            tomb = {"batch_id": b.batch_id, "swept_at": event.ts, "published_at": b.published_at,
                    "publish_source": b.publish_source, "max_age_days": max_age_days, "objects": b.objects,
                    "bytes": b.bytes, "event_id": event.event_id,
                    "note": "raw audio removed by the retention policy; metadata and features kept. New feature "
                            "configs cannot be computed for this batch (no audio)."}
            store.put_object(repo, branch, tombstone_path(b.batch_id), json.dumps(tomb, sort_keys=True, indent=1).encode(),
                             content_type="application/json")
        stage_event(store, repo, branch, event)
        meta = {"action": RETENTION, "audit_event": event.event_id, "actor": actor.strip(), "run_id": run_id,
                "batches": ",".join(b.batch_id for b in result.batches), "objects": str(result.objects),
                "bytes_freed": str(result.bytes_freed), "max_age_days": f"{max_age_days:g}"}
        message = f"retention: raw audio of {len(result.batches)} batches older than {max_age_days:g} days"
        result.commit_id = tx.commit(message, meta, committer=actor.strip())
        result.merge_commit = tx.merge(message, meta)
    return result
