"""Intake assets: `raw_audio[batch]` (write-audit-publish into the versioned store) and `audio_manifest`."""


import dagster as dg

from speech_assets.audio.validate import ValidationPolicy
from speech_assets.defs.intake.checks import BATCH_CONTRACT_CHECK, batch_contract_spec
from speech_assets.defs.intake.partitions import intake_batches
from speech_assets.defs.intake.resources import LandingZoneResource
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.intake.batch import AlreadyPublished, audit_batch, publish_batch, stage_batch
from speech_assets.intake.manifest import publish_manifest
from speech_assets.storage.layout import MANIFEST_PATH, metadata_path

OWNERS = ["team:speech-data"]

# Rebuild after any batch lands. Build it when it is missing too (e.g. the daemon starts after batches were
# ingested) once every known batch has landed. Unlike `eager()`, a later batch partition that is missing (a
# crashed intake) does not block the manifest of the batches that did publish, and a failed first build is
# not retried in a loop.
MANIFEST_AUTOMATION = (
    (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        | (
            dg.AutomationCondition.missing()
            # at least one published batch: an empty manifest is not worth a run
            & dg.AutomationCondition.any_deps_match(~dg.AutomationCondition.missing())
            & ~dg.AutomationCondition.any_deps_missing()
            & ~dg.AutomationCondition.execution_failed()
        )
    )
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after any batch lands")


class RawAudioConfig(dg.Config):
    """Validation policy for a batch (defaults match `ValidationPolicy`)."""

    min_duration_s: float = ValidationPolicy.min_duration_s
    max_duration_s: float = ValidationPolicy.max_duration_s
    min_sample_rate: int = ValidationPolicy.min_sample_rate
    max_clipped_fraction: float = ValidationPolicy.max_clipped_fraction
    silence_dbfs: float = ValidationPolicy.silence_dbfs
    downmix: bool = ValidationPolicy.downmix
    workers: int = 2  # validation processes

    def to_domain(self) -> ValidationPolicy:
        return ValidationPolicy(**self.model_dump(exclude={"workers"}))


@dg.asset(
    partitions_def=intake_batches,
    group_name="intake",
    owners=OWNERS,
    tags={"layer": "bronze", "domain": "intake"},
    kinds={"python", "parquet"},
    code_version="1",
    check_specs=[batch_contract_spec],
    description=(
        "One landing batch, validated (decode, sample rate → 16 kHz, duration, clipping, silence, channels), "
        "PII-redacted and written on its own branch; rejected files quarantined with their reason. Merged into "
        "main only if the batch data contract passes."
    ),
)
def raw_audio(
    context: dg.AssetExecutionContext,
    config: RawAudioConfig,
    store: VersionStoreResource,
    landing: LandingZoneResource,
) -> dg.MaterializeResult:
    batch = landing.batch(context.partition_key)
    vs = store.open()
    policy = config.to_domain()
    context.log.info(f"ingesting {batch.path} into {store.describe()}")

    def progress(done: int, total: int) -> None:
        if done == total or done % 100 == 0:
            context.log.info(f"validated {done}/{total} files")

    try:
        staged = stage_batch(
            vs, store.repository, batch, run_id=context.run.run_id, policy=policy, workers=config.workers,
            progress=progress,
        )
        contract = audit_batch(vs, store.repository, staged, policy)
        published = (publish_batch(vs, store.repository, staged, contract, context.run.run_id)
                     if contract.passed else None)
    except AlreadyPublished as exc:
        # A rerun of a batch main already holds, or the loser of two runs of one batch: nothing to do, and
        # nothing wrong — report what main holds (the publishing run verified the contract) instead of failing.
        context.log.warning(str(exc))
        return _already_published(store, exc)
    if published is None:
        context.log.error(
            f"batch {staged.batch_id} failed its data contract; left on branch {staged.branch}, main untouched"
        )

    files = staged.accepted + staged.rejected
    metadata = {
        "batch_id": staged.batch_id,
        "content_hash": staged.content_hash,
        "published": published is not None,
        "commit_in": dg.MetadataValue.text(staged.base_commit),
        "branch": staged.branch,
        "branch_commit": dg.MetadataValue.text(staged.commit_id),
        "commit_out": dg.MetadataValue.text(published or ""),
        "dagster/uri": dg.MetadataValue.path(
            store.uri(published or staged.commit_id, metadata_path(staged.batch_id))
        ),
        "files": files,
        "accepted": staged.accepted,
        "rejected": staged.rejected,
        "redacted_utterances": staged.redacted_utterances,
        "redactions": dg.MetadataValue.json(staged.redactions),
        "audio_hours": round(staged.audio_seconds / 3600.0, 4),
        "audio_seconds": round(staged.audio_seconds, 2),
        "files_per_second": round(files / staged.elapsed_s, 2) if staged.elapsed_s else 0.0,
        "audio_seconds_per_second": round(staged.audio_seconds / staged.elapsed_s, 2) if staged.elapsed_s else 0.0,
        "metadata_sha256": staged.metadata_sha256,
        "rejection_reasons": dg.MetadataValue.md(staged.rejection_markdown()),
    }
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=BATCH_CONTRACT_CHECK,
                passed=contract.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "checks": len(contract.checks),
                    "failed": len(contract.failed_checks),
                    "verified_commit": dg.MetadataValue.text(staged.commit_id),
                    "report": dg.MetadataValue.md(contract.markdown()),
                },
            )
        ],
    )


def _already_published(store: VersionStoreResource, exc: AlreadyPublished) -> dg.MaterializeResult:
    record = exc.record
    return dg.MaterializeResult(
        metadata={
            "batch_id": exc.batch_id,
            "content_hash": str(record.get("content_hash", "")),
            "published": True,
            "already_published": True,
            "published_by_run": str(record.get("run_id", "")),
            "commit_out": dg.MetadataValue.text(exc.main_commit),
            "dagster/uri": dg.MetadataValue.path(store.uri(exc.main_commit, metadata_path(exc.batch_id))),
            "accepted": int(record.get("accepted", 0)),
            "rejected": int(record.get("rejected", 0)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=BATCH_CONTRACT_CHECK,
                passed=True,
                severity=dg.AssetCheckSeverity.ERROR,
                description=f"verified by the publishing run {record.get('run_id')}",
                metadata={"verified_commit": dg.MetadataValue.text(str(record.get("audited_commit", "")))},
            )
        ],
    )


@dg.asset(
    deps=[raw_audio],
    group_name="intake",
    owners=OWNERS,
    tags={"layer": "silver", "domain": "intake"},
    kinds={"python", "parquet"},
    code_version="1",
    automation_condition=MANIFEST_AUTOMATION,
    description=(
        "The published corpus at a main commit: every batch's metadata with speaker-disjoint train/dev/test "
        "splits (hash of speaker, stable across batches) and subgroup columns (accent, channel, SNR band, "
        "duration band)."
    ),
)
def audio_manifest(context: dg.AssetExecutionContext, store: VersionStoreResource) -> dg.MaterializeResult:
    vs = store.open()
    published = publish_manifest(vs, store.repository, context.run.run_id)
    s = published.summary
    split_rows = ["| split | utterances | speakers | hours |", "|---|---:|---:|---:|"]
    for split, v in s.by_split.items():
        split_rows.append(f"| {split} | {int(v['utterances'])} | {int(v['speakers'])} | {v['hours']:.3f} |")
    group_rows = ["| column | value | utterances |", "|---|---|---:|"]
    for col, counts in s.subgroups.items():
        for value, n in counts.items():
            group_rows.append(f"| {col} | {value} | {n} |")
    metadata = {
        "commit_in": dg.MetadataValue.text(published.read_commit),
        "commit_out": dg.MetadataValue.text(published.commit_id),
        "dagster/uri": dg.MetadataValue.path(store.uri(published.commit_id, MANIFEST_PATH)),
        "changed": published.changed,
        "utterances": s.rows,
        "speakers": s.speakers,
        "total_hours": round(s.hours, 4),
        "dagster/row_count": s.rows,
        "splits": dg.MetadataValue.md("\n".join(split_rows)),
        "subgroups": dg.MetadataValue.md("\n".join(group_rows)),
    }
    for split in ("train", "dev", "test"):
        metadata[f"{split}_utterances"] = int(s.by_split.get(split, {}).get("utterances", 0))
    return dg.MaterializeResult(metadata=metadata)
