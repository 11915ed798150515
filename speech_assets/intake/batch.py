"""Write-audit-publish intake of one landing batch into the versioned store.

    stage_batch      branch `ingest-<batch>-<hash>` from main; validate, sanitize and write every row;
                     quarantine what is rejected (with its reason); commit with metadata.
    audit            the soda data contract on the batch's metadata table, read back from that commit.
    publish_batch    merge the branch into main, only after the audit passed.

A crash anywhere before the merge leaves `main` exactly as it was; the next run stages afresh on its own branch.

Each run stages on its own branch, `ingest-<batch>-<hash>-<run>`, so two runs of one batch never write into each
other's staging area. A publish writes a marker, `intake/published/<batch>.json`, naming the content hash and
validation policy it published (its *publish key*) and the run: one fixed path written with different bytes by every
run, so of two runs that raced from the same `main`, the second merge conflicts on it instead of publishing the batch
twice. A run whose publish key `main` already holds is a no-op that says so (`AlreadyPublished`), whether it finds out
before staging, mid-way (the winner tidied its branch away) or at the merge; the winner deletes every branch left by
other (crashed or losing) runs of the same content.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from speech_assets.audio.corpora import LandingEntry, read_entries
from speech_assets.audio.pii import SanitizedTranscript, sanitize_transcript, speaker_sha256
from speech_assets.audio.validate import AudioRejected, ValidatedAudio, ValidationPolicy, safe_member_path, validate_audio
from speech_assets.intake.contract import ContractResult, verify_batch_contract
from speech_assets.intake.landing import LandingBatch
from speech_assets.intake.metadata import METADATA_SCHEMA, REJECTION_SCHEMA, table_bytes
from speech_assets.storage.audit_log import DATA_PUBLISH, ERASURE, PlatformEvent, new_event, read_events, stage_event
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError, StoreError, VersionStore
from speech_assets.storage.layout import (  # metadata_path, rejections_path: callers import them from here too
    audio_dir,
    audio_path,
    metadata_path,
    published_marker_path,
    quarantine_dir,
    quarantine_file_path,
    quarantine_record_path,
    rejections_path,
)
from speech_assets.storage.publish import Transaction, branch_transaction


def branch_for(batch_id: str, content_hash: str, run_id: str | None = None) -> str:
    """The staging branch of one run; without `run_id`, the prefix every run of that content shares."""
    base = f"ingest-{batch_id}-{content_hash[:12]}"
    return base if run_id is None else f"{base}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"


def publish_key(content_hash: str, policy: ValidationPolicy) -> str:
    """What makes a publish redundant: the same bytes validated under the same policy (a new policy re-ingests)."""
    policy_json = json.dumps(asdict(policy), sort_keys=True, default=str)
    return hashlib.sha256(f"{content_hash}\0{policy_json}".encode()).hexdigest()


class AlreadyPublished(Exception):
    """`main` already holds this batch with this content and policy: the run has nothing to do.

    Not a data problem: a rerun after a crash that happened after the merge, or the loser of two runs of one batch.
    """

    def __init__(self, batch_id: str, record: dict, main_commit: str):
        self.batch_id, self.record, self.main_commit = batch_id, record, main_commit
        super().__init__(
            f"batch {batch_id} (content {str(record.get('content_hash', ''))[:12]}) is already published on main "
            f"by run {record.get('run_id')!r} (audited commit {str(record.get('audited_commit', ''))[:12]}); "
            "this run changed nothing"
        )


def published_record(store: VersionStore, repo: str, batch_id: str, ref: str = DEFAULT_BRANCH) -> dict | None:
    """The publish marker of `batch_id` at `ref` (None when the batch was never published there)."""
    try:
        return json.loads(store.get_object(repo, ref, published_marker_path(batch_id)))
    except NotFoundError:
        return None


def _raise_if_published(store: VersionStore, repo: str, batch_id: str, key: str) -> None:
    main = store.resolve(repo, DEFAULT_BRANCH)
    record = published_record(store, repo, batch_id, main)
    if record is not None and record.get("publish_key") == key:
        raise AlreadyPublished(batch_id, record, main)


def _delete_branches(store: VersionStore, repo: str, prefix: str) -> None:
    """Tidy the staging branches of every run of one batch content (`branch_for` without a run); one that
    vanished meanwhile is fine. A failed-contract branch of that content goes too: main now holds what supersedes it."""
    for name in store.list_branches(repo):
        if name.startswith(prefix + "-"):
            try:
                store.delete_branch(repo, name)
            except NotFoundError:
                pass


@dataclass
class StagedBatch:
    batch_id: str
    content_hash: str
    branch: str
    base_commit: str
    commit_id: str
    accepted: int
    rejected: int
    redacted_utterances: int
    redactions: dict[str, int]
    rejection_reasons: dict[str, int]
    audio_seconds: float
    source_bytes: int
    metadata_sha256: str
    elapsed_s: float
    rejection_examples: dict[str, str] = field(default_factory=dict)
    run_id: str = ""
    publish_key: str = ""
    erased_speaker_rows: int = 0  # rows of speakers erased earlier: neither stored nor quarantined, only counted

    def rejection_markdown(self) -> str:
        if not self.rejection_reasons:
            return "No file was rejected."
        rows = ["| reason | files | example |", "|---|---:|---|"]
        for reason, n in sorted(self.rejection_reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            example = self.rejection_examples.get(reason, "").replace("|", "\\|")
            rows.append(f"| `{reason}` | {n} | {example} |")
        return "\n".join(rows)


@dataclass
class IngestResult:
    staged: StagedBatch
    contract: ContractResult
    published_commit: str | None  # the main commit holding this batch, None if the contract kept it out

    @property
    def published(self) -> bool:
        return self.published_commit is not None


def _utt_id(batch_id: str, index: int) -> str:
    return f"{batch_id}-{index:06d}"


def _safe_name(ref: str | None) -> str:
    base = os.path.basename(ref or "") or "record"
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in base)[:80].lstrip(".")
    return cleaned or "record"


def _as_float(v) -> float | None:
    try:
        return None if v is None or v == "" else float(v)
    except (TypeError, ValueError):
        return None


def _as_str(v) -> str | None:
    return None if v is None or v == "" else str(v)


def _best_effort_audio_ref(raw: bytes) -> str | None:
    """The audio path of a row that failed to decode (e.g. Latin-1 in its transcript), if still legible."""
    try:
        row = json.loads(raw.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        return None
    ref = row.get("audio_filepath") if isinstance(row, dict) else None
    return ref if isinstance(ref, str) else None


@dataclass
class _RowOutcome:
    index: int
    entry: LandingEntry
    audio: ValidatedAudio | None = None
    source_bytes: bytes | None = None
    reason: str | None = None
    detail: str = ""


def _examine(batch_dir: Path, entry: LandingEntry, policy: ValidationPolicy) -> _RowOutcome:
    """Decide one row. Never raises for bad input: every problem becomes a reason code."""
    out = _RowOutcome(entry.index, entry)
    if entry.error:
        out.reason, out.detail = entry.error, entry.error_detail or entry.error
        # The audio may still be perfectly readable: keep it in quarantine beside the broken row.
        ref = entry.audio_ref or _best_effort_audio_ref(entry.raw)
        if ref:
            try:
                out.source_bytes = safe_member_path(batch_dir, ref).read_bytes()
            except (AudioRejected, OSError):
                pass
        return out
    if not entry.audio_ref:
        out.reason, out.detail = "manifest_missing_field:audio_filepath", "row names no audio file"
        return out
    try:
        path = safe_member_path(batch_dir, entry.audio_ref)
        out.source_bytes = path.read_bytes()
        out.audio = validate_audio(out.source_bytes, policy)
    except AudioRejected as rej:
        out.reason, out.detail = rej.reason, rej.detail
    except OSError as exc:
        out.reason, out.detail = "unreadable", f"{type(exc).__name__}: {exc}"
    if out.reason is None and (entry.text is None or not entry.text.strip()):
        out.reason, out.detail, out.audio = "manifest_missing_field:text", "row has an empty transcript", None
    return out


def stage_batch(
    store: VersionStore,
    repo: str,
    batch: LandingBatch,
    *,
    run_id: str,
    policy: ValidationPolicy | None = None,
    content_hash: str | None = None,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    committer: str = "speech_assets/intake",
) -> StagedBatch:
    """Validate and write one batch to its own branch and commit it there. `main` is not touched.

    Raises AlreadyPublished when `main` holds this batch with this content and policy already (checked before any
    work, and again if the branch vanishes mid-way because a concurrent run published and tidied it away).
    """
    policy = policy or ValidationPolicy()
    content_hash = content_hash or batch.content_hash()
    run = _StagingRun(store, repo, batch, run_id, policy, content_hash, publish_key(content_hash, policy), workers,
                      progress, committer)
    try:
        _raise_if_published(store, repo, batch.batch_id, run.publish_key)
    except AlreadyPublished:
        # e.g. the publishing run was killed between its merge and its clean-up: tidy what it left behind.
        _delete_branches(store, repo, branch_for(batch.batch_id, content_hash))
        raise
    try:
        return _stage(run)
    except StoreError:
        _raise_if_published(store, repo, batch.batch_id, run.publish_key)  # lost a race: say so, not the internals
        raise


@dataclass(frozen=True)
class _StagingRun:
    """The inputs of one `stage_batch` call, which every staging step reads."""

    store: VersionStore
    repo: str
    batch: LandingBatch
    run_id: str
    policy: ValidationPolicy
    content_hash: str
    publish_key: str
    workers: int
    progress: Callable[[int, int], None] | None
    committer: str

    @property
    def batch_id(self) -> str:
        return self.batch.batch_id

    @property
    def branch(self) -> str:
        return branch_for(self.batch_id, self.content_hash, self.run_id)


@dataclass
class _Tally:
    """What staging has written so far: the metadata and rejection rows, and the counts its commit records."""

    rows: list[dict] = field(default_factory=list)
    rejections: list[dict] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> the first rejected file's name and detail
    redactions: Counter[str] = field(default_factory=Counter)  # PII kind -> redactions
    redacted_utterances: int = 0
    audio_seconds: float = 0.0
    source_bytes: int = 0
    erased_speaker_rows: int = 0

    def accept(self, row: dict, redaction_kinds: dict[str, int], duration_s: float) -> None:
        self.rows.append(row)
        self.redactions.update(redaction_kinds)
        self.redacted_utterances += bool(redaction_kinds)
        self.audio_seconds += duration_s

    def reject(self, rejection: dict, example: str) -> None:
        self.rejections.append(rejection)
        self.reasons[rejection["reason"]] += 1
        self.examples.setdefault(rejection["reason"], example)


def _stage(run: _StagingRun) -> StagedBatch:
    started = time.perf_counter()
    # The branch outlives the block unmerged: it waits for its audit, or stays for a person when the contract fails.
    # A branch left by a crashed attempt of this very run holds an unknown half-state: the transaction starts over.
    with branch_transaction(run.store, run.repo, run.branch, keep_unmerged=True) as tx:
        _drop_previous_version(tx, run.batch_id)
        tally = _stage_rows(tx, run)
        metadata_sha = _stage_tables(tx, run.batch_id, tally)
        commit_id = tx.commit(
            f"intake: batch {run.batch_id} ({len(tally.rows)} accepted, {len(tally.rejections)} quarantined)",
            _staged_commit_metadata(run, tx.base, tally, metadata_sha), committer=run.committer, allow_empty=True,
        )
    return StagedBatch(
        batch_id=run.batch_id,
        content_hash=run.content_hash,
        branch=run.branch,
        base_commit=tx.base,
        commit_id=commit_id,
        accepted=len(tally.rows),
        rejected=len(tally.rejections),
        redacted_utterances=tally.redacted_utterances,
        redactions=dict(sorted(tally.redactions.items())),
        rejection_reasons=dict(sorted(tally.reasons.items())),
        audio_seconds=tally.audio_seconds,
        source_bytes=tally.source_bytes,
        metadata_sha256=metadata_sha,
        elapsed_s=time.perf_counter() - started,
        rejection_examples=tally.examples,
        run_id=run.run_id,
        publish_key=run.publish_key,
        erased_speaker_rows=tally.erased_speaker_rows,
    )


def _drop_previous_version(tx: Transaction, batch_id: str) -> None:
    """A changed batch replaces its previous version wholesale: drop what main holds for this batch id."""
    for prefix in (audio_dir(batch_id), quarantine_dir(batch_id)):
        for obj in tx.store.list_objects(tx.repo, tx.branch, prefix):
            tx.delete(obj.path)
    try:
        tx.store.stat_object(tx.repo, tx.branch, metadata_path(batch_id))
        tx.delete(metadata_path(batch_id))
    except NotFoundError:
        pass


def _stage_rows(tx: Transaction, run: _StagingRun) -> _Tally:
    """Examine every landing row, writing accepted audio and quarantined bytes to the branch as it goes."""
    entries = read_entries(run.batch.path)
    # Speakers erased earlier (`erase --speaker`) must not come back through a re-upload or a re-run of an old
    # batch under a new policy: their rows are counted and skipped — not quarantined, which would keep the bytes.
    erased = erased_speaker_digests(tx.store, tx.repo, tx.base)
    tally = _Tally()
    # Decoding and resampling release the GIL (libsndfile, torch), so threads overlap the work.
    with ThreadPoolExecutor(max_workers=max(1, run.workers)) as pool:
        outcomes = pool.map(lambda e: _examine(run.batch.path, e, run.policy), entries)
        for done, outcome in enumerate(outcomes, start=1):
            _stage_outcome(tx, run.batch_id, outcome, erased, tally)
            if run.progress:
                run.progress(done, len(entries))
    return tally


def _stage_outcome(tx: Transaction, batch_id: str, outcome: _RowOutcome, erased: frozenset[str],
                   tally: _Tally) -> None:
    """Write one examined row: its audio and metadata row when accepted, its bytes and reason when rejected."""
    entry = outcome.entry
    tally.source_bytes += len(outcome.source_bytes or b"")
    speaker = _as_str(entry.fields.get("speaker")) if entry.fields else None
    if erased and speaker and speaker_sha256(speaker) in erased:
        tally.erased_speaker_rows += 1
        return
    clean = sanitize_transcript(entry.text) if entry.text else None
    if outcome.reason is None and outcome.audio is not None:
        kinds = {k: v for k, v in clean.counts.items() if v}
        tally.accept(_store_accepted(tx, batch_id, outcome, clean.text, kinds), kinds, outcome.audio.duration_s)
    else:
        rejection = _quarantine(tx, batch_id, outcome, clean)
        tally.reject(rejection, f"{_safe_name(entry.audio_ref)}: {outcome.detail}"[:160])


def _store_accepted(tx: Transaction, batch_id: str, outcome: _RowOutcome, text: str,
                    redaction_kinds: dict[str, int]) -> dict:
    """Write an accepted row's canonical audio; returns its metadata row."""
    utt_id = _utt_id(batch_id, outcome.entry.index)
    path = audio_path(batch_id, utt_id)
    tx.put(path, outcome.audio.wav_bytes, content_type="audio/wav")
    return _metadata_row(batch_id, utt_id, path, outcome.entry, outcome.audio, text, redaction_kinds)


def _metadata_row(batch_id: str, utt_id: str, path: str, entry: LandingEntry, audio: ValidatedAudio, text: str,
                  redaction_kinds: dict[str, int]) -> dict:
    f = entry.fields
    return {
        "utt_id": utt_id,
        "batch_id": batch_id,
        "audio_path": path,
        "sha256": audio.sha256,
        "duration_s": float(audio.duration_s),
        "sample_rate": int(audio.sample_rate),
        "channels": 1,
        "text": text,
        "redactions": int(sum(redaction_kinds.values())),
        "redaction_kinds": ",".join(sorted(redaction_kinds)),
        "speaker": _as_str(f.get("speaker")),
        "accent": _as_str(f.get("accent")),
        "channel": _as_str(f.get("channel")),
        "snr_db": _as_float(f.get("snr_db")),
        "rate_wpm": _as_float(f.get("rate_wpm")),
        "est_snr_db": float(audio.stats.estimated_snr_db),
        "rms_dbfs": float(audio.stats.rms_dbfs),
        "clipped_fraction": float(audio.stats.clipped_fraction),
        "original_sample_rate": int(audio.original_sample_rate),
        "original_format": f"{audio.original_container}/{audio.original_subtype}",
        "original_channels": int(audio.original_channels),
        "resampled": bool(audio.resampled),
        "source_ref": entry.audio_ref,
        "source_layout": _as_str(f.get("source_layout")),
    }


def _quarantine(tx: Transaction, batch_id: str, outcome: _RowOutcome, clean: SanitizedTranscript | None) -> dict:
    """Keep a rejected row's bytes (the audio, and the manifest line when it could not be parsed); returns its
    rejection row."""
    entry = outcome.entry
    qpath = ""
    if outcome.source_bytes:
        qpath = quarantine_file_path(batch_id, entry.index, _safe_name(entry.audio_ref))
        tx.put(qpath, outcome.source_bytes)
    if entry.error and entry.raw:
        # A row we could not parse cannot be sanitized or re-typed: keep its bytes verbatim.
        tx.put(quarantine_record_path(batch_id, entry.index), entry.raw)
    return {
        "batch_id": batch_id,
        "index": entry.index,
        # repr keeps hostile names (../, control bytes) visible but inert.
        "source_ref": repr(entry.audio_ref or _best_effort_audio_ref(entry.raw) or ""),
        "reason": outcome.reason or "rejected",
        "detail": outcome.detail,
        "quarantine_path": qpath,
        "source_sha256": hashlib.sha256(outcome.source_bytes).hexdigest() if outcome.source_bytes else "",
        "raw_record_sha256": hashlib.sha256(entry.raw).hexdigest() if entry.raw else "",
        "text_sanitized": clean.text if clean else "",
    }


def _stage_tables(tx: Transaction, batch_id: str, tally: _Tally) -> str:
    """Write the batch's metadata table (and its rejections, if any); returns the metadata table's digest."""
    metadata_bytes = table_bytes(pa.Table.from_pylist(tally.rows, schema=METADATA_SCHEMA))
    tx.put(metadata_path(batch_id), metadata_bytes, content_type="application/parquet")
    if tally.rejections:
        tx.put(rejections_path(batch_id), table_bytes(pa.Table.from_pylist(tally.rejections, schema=REJECTION_SCHEMA)),
               content_type="application/parquet")
    return hashlib.sha256(metadata_bytes).hexdigest()


def _staged_commit_metadata(run: _StagingRun, base_commit: str, tally: _Tally, metadata_sha: str) -> dict[str, str]:
    return {
        "batch_id": run.batch_id,
        "run_id": run.run_id,
        "content_hash": run.content_hash,
        "base_commit": base_commit,
        "accepted": str(len(tally.rows)),
        "rejected": str(len(tally.rejections)),
        "redacted_utterances": str(tally.redacted_utterances),
        "redactions": json.dumps(dict(sorted(tally.redactions.items()))),  # per PII kind, for the redaction report
        "audio_seconds": f"{tally.audio_seconds:.3f}",
        "metadata_sha256": metadata_sha,
        "rejection_reasons": json.dumps(dict(sorted(tally.reasons.items()))),
        "erased_speaker_rows": str(tally.erased_speaker_rows),
    }


def erased_speaker_digests(store: VersionStore, repo: str, ref: str) -> frozenset[str]:
    """SHA-256 digests of every speaker erased on `ref` (from the erasure events of the audit trail)."""
    return frozenset(
        e.evidence["speaker_sha256"] for e in read_events(store, repo, ref, action=ERASURE)
        if e.evidence.get("speaker_sha256")
    )


def audit_batch(store: VersionStore, repo: str, staged: StagedBatch, policy: ValidationPolicy | None = None) -> ContractResult:
    """The data contract, run on the metadata table exactly as committed on the batch branch."""
    policy = policy or ValidationPolicy()
    data = store.get_object(repo, staged.commit_id, metadata_path(staged.batch_id))
    table = pq.read_table(io.BytesIO(data))
    return verify_batch_contract(
        table,
        min_duration_s=policy.min_duration_s,
        max_duration_s=policy.max_duration_s,
        max_clipped_fraction=policy.max_clipped_fraction,
    )


def publish_batch(
    store: VersionStore, repo: str, staged: StagedBatch, contract: ContractResult, run_id: str, actor: str = "intake"
) -> str:
    """Merge an audited batch into main, its audit event and publish marker with it; returns the merge commit.

    Refuses a batch whose contract failed. Raises AlreadyPublished (main untouched by this run) when another run
    published the same publish key first, before this run's merge or racing it.
    """
    if not contract.passed:
        raise ValueError(f"batch {staged.batch_id} failed its data contract; it must not be published")
    key = staged.publish_key or publish_key(staged.content_hash, ValidationPolicy())
    try:
        return _publish(store, repo, staged, run_id, actor, key)
    except StoreError:
        # ConflictError on the marker: a concurrent run merged first. NotFoundError on the branch: a run that
        # published first deleted it. Either way, if main holds this key, this run is a no-op; else a real error.
        _raise_if_published(store, repo, staged.batch_id, key)
        raise


def _publish(store: VersionStore, repo: str, staged: StagedBatch, run_id: str, actor: str, key: str) -> str:
    _raise_if_published(store, repo, staged.batch_id, key)
    # The publish event rides on the batch's own branch (a second commit over the audited one, which it
    # names), so main gains the batch and its audit record in one merge: never one without the other.
    # A publish that fails keeps the branch, as staging left it, for the next run to reset.
    with branch_transaction(store, repo, staged.branch, base=staged.commit_id, resume=True,
                            keep_unmerged=True) as tx:
        event = stage_event(store, repo, tx.branch, _publish_event(staged, run_id, actor))
        # Different bytes from every run at one path: two runs that raced from one main conflict here on merge.
        tx.put(published_marker_path(staged.batch_id), _publish_marker(staged, key, run_id, event),
               content_type="application/json")
        tx.commit(f"audit: publish batch {staged.batch_id}",
                  {"batch_id": staged.batch_id, "run_id": run_id, "audit_event": event.event_id})
        merged = tx.merge(f"publish batch {staged.batch_id}", {
            "batch_id": staged.batch_id,
            "run_id": run_id,
            "content_hash": staged.content_hash,
            "source_commit": staged.commit_id,
            "contract": "passed",
        })
    # The branch has served its purpose (its commits stay reachable from main's history); branches that crashed or
    # losing runs of the same key left are tidied too. A losing run still staging finds its branch gone and stops.
    _delete_branches(store, repo, branch_for(staged.batch_id, staged.content_hash))
    return merged


def _publish_event(staged: StagedBatch, run_id: str, actor: str) -> PlatformEvent:
    return new_event(
        DATA_PUBLISH, actor, f"batch {staged.batch_id}",
        f"published batch {staged.batch_id}: {staged.accepted} accepted, {staged.rejected} quarantined, "
        f"{staged.redacted_utterances} utterances redacted",
        {"batch_id": staged.batch_id, "content_hash": staged.content_hash, "audited_commit": staged.commit_id,
         "base_commit": staged.base_commit, "run_id": run_id, "accepted": staged.accepted,
         "rejected": staged.rejected, "rejection_reasons": staged.rejection_reasons,
         "erased_speaker_rows": staged.erased_speaker_rows,
         "redactions": staged.redactions, "metadata": metadata_path(staged.batch_id),
         "metadata_sha256": staged.metadata_sha256, "contract": "passed"},
    )


def _publish_marker(staged: StagedBatch, key: str, run_id: str, event: PlatformEvent) -> bytes:
    marker = {"batch_id": staged.batch_id, "publish_key": key, "content_hash": staged.content_hash,
              "run_id": run_id, "audited_commit": staged.commit_id, "audit_event": event.event_id,
              "metadata_sha256": staged.metadata_sha256, "accepted": staged.accepted, "rejected": staged.rejected}
    return json.dumps(marker, sort_keys=True, indent=1).encode()


def ingest_batch(
    store: VersionStore,
    repo: str,
    batch: LandingBatch,
    *,
    run_id: str,
    policy: ValidationPolicy | None = None,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> IngestResult:
    """stage → audit → publish. A failed contract leaves the branch for inspection and main untouched.

    Raises AlreadyPublished (nothing changed) when main already holds this batch with this content and policy.
    """
    staged = stage_batch(store, repo, batch, run_id=run_id, policy=policy, workers=workers, progress=progress)
    contract = audit_batch(store, repo, staged, policy)
    published = publish_batch(store, repo, staged, contract, run_id) if contract.passed else None
    return IngestResult(staged=staged, contract=contract, published_commit=published)
