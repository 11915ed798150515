"""Raw-audio retention: the recordings of batches published more than N days ago are removed from `main`.

    result = sweep_raw_audio(store, repo, max_age_days=365, now=datetime.now(timezone.utc), actor="retention")

A batch's age is counted from its publish: the newest `data_publish` audit event naming it, falling back (batches
published before the audit trail existed) to the newest `publish batch <id>` commit on main.  For every batch past
the limit that still has audio, one commit on a branch from main deletes what every layout key marked `AUDIO`
holds for the batch (`raw_audio_prefixes`):

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
    PlatformEvent,
    iso,
    new_event,
    parse_time,
    read_events,
    stage_event,
)
from speech_assets.intake.metadata import metadata_batch_ids
from speech_assets.storage.base import DEFAULT_BRANCH, VersionStore
from speech_assets.storage.layout import AUDIO, keys_holding, tombstone_path
from speech_assets.storage.publish import branch_transaction

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
    """Remove from main the raw audio of every batch published more than `max_age_days` before `now`, in one
    commit with a tombstone per batch and a `retention` event (see the module docstring). No batch to sweep (or a
    dry run): nothing is written."""
    if max_age_days < 0:
        raise ValueError(f"max_age_days must be >= 0, got {max_age_days}")
    if not actor or not actor.strip():
        raise ValueError("a retention sweep needs a named actor")
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    base = store.resolve(repo, DEFAULT_BRANCH)
    result, doomed = _plan(store, repo, base, max_age_days, now, dry_run)
    if not result.batches or dry_run:
        return result
    event = _retention_event(result, actor.strip(), now, run_id)
    result.event_id = event.event_id
    result.commit_id, result.merge_commit = _sweep(store, repo, result, doomed, event, actor.strip(), run_id)
    return result


def raw_audio_prefixes(batch_id: str) -> list[str]:
    """Where one batch's raw audio lies: every layout key that holds audio (the accepted recordings and the
    rejected ones kept in quarantine), filled in for the batch."""
    return [k.within(batch_id) for k in keys_holding(AUDIO)]


def _plan(store: VersionStore, repo: str, base: str, max_age_days: float, now: datetime,
          dry_run: bool) -> tuple[RetentionResult, dict[str, list[str]]]:
    """(what a sweep at `base` removes, batch id -> the paths it deletes). Reads only."""
    cutoff = now - timedelta(days=max_age_days)
    result = RetentionResult(max_age_days, iso(cutoff), base, dry_run)
    batch_ids = sorted(metadata_batch_ids(store, repo, base))
    times = publish_times(store, repo, base, batch_ids)
    result.unknown_age = [b for b in batch_ids if b not in times]
    doomed: dict[str, list[str]] = {}
    for b in batch_ids:
        if b not in times or times[b][0] > cutoff:
            continue
        stats = [s for prefix in raw_audio_prefixes(b) for s in store.list_objects(repo, base, prefix)]
        if not stats:  # swept before (or a batch with no audio): nothing to do
            continue
        t, source = times[b]
        doomed[b] = [s.path for s in stats]
        result.batches.append(SweptBatch(b, iso(t), source, round((now - t).total_seconds() / 86400, 3), len(stats),
                                         sum(s.size_bytes for s in stats)))
    return result, doomed


def _retention_event(result: RetentionResult, actor: str, now: datetime, run_id: str) -> PlatformEvent:
    max_age_days = result.max_age_days
    return new_event(
        RETENTION, actor, f"raw audio older than {max_age_days:g} days",
        f"removed the raw audio of {len(result.batches)} batches published before {result.cutoff}: "
        f"{result.objects} objects, {result.bytes_freed} bytes",
        # `now` is the policy's reference time (a test or a backfill may pass another); the event's own time
        # stamp is when the sweep really ran.
        {"max_age_days": max_age_days, "as_of": iso(now), "cutoff": result.cutoff, "base_commit": result.base_commit,
         "run_id": run_id,
         "batches": {b.batch_id: {"published_at": b.published_at, "publish_source": b.publish_source,
                                  "objects": b.objects, "bytes": b.bytes} for b in result.batches},
         "objects": result.objects, "bytes_freed": result.bytes_freed,
         "kept": "metadata (redacted transcripts, lineage) and features", "unknown_age": result.unknown_age},
    )


def _tombstone(b: SweptBatch, max_age_days: float, event: PlatformEvent) -> bytes:
    tomb = {"batch_id": b.batch_id, "swept_at": event.ts, "published_at": b.published_at,
            "publish_source": b.publish_source, "max_age_days": max_age_days, "objects": b.objects,
            "bytes": b.bytes, "event_id": event.event_id,
            "note": "raw audio removed by the retention policy; metadata and features kept. New feature "
                    "configs cannot be computed for this batch (no audio)."}
    return json.dumps(tomb, sort_keys=True, indent=1).encode()


def _sweep(store: VersionStore, repo: str, result: RetentionResult, doomed: dict[str, list[str]],
           event: PlatformEvent, actor: str, run_id: str) -> tuple[str, str]:
    """Delete the planned audio, write the tombstones and the event on one branch; commit and merge it.
    Returns (the sweep commit, main's head after the merge)."""
    max_age_days = result.max_age_days
    with branch_transaction(store, repo, f"retention-{result.base_commit[:12]}", base=result.base_commit) as tx:
        for b in result.batches:
            for path in doomed[b.batch_id]:
                tx.delete(path)
            tx.put(tombstone_path(b.batch_id), _tombstone(b, max_age_days, event), content_type="application/json")
        stage_event(store, repo, tx.branch, event)
        meta = {"action": RETENTION, "audit_event": event.event_id, "actor": actor, "run_id": run_id,
                "batches": ",".join(b.batch_id for b in result.batches), "objects": str(result.objects),
                "bytes_freed": str(result.bytes_freed), "max_age_days": f"{max_age_days:g}"}
        message = f"retention: raw audio of {len(result.batches)} batches older than {max_age_days:g} days"
        return tx.commit(message, meta, committer=actor), tx.merge(message, meta)
