"""Privacy assets: `raw_audio_retention` (the retention sweep, run daily by its schedule) and `redaction_report`."""

from datetime import datetime, timezone

import dagster as dg

from speech_assets import settings
from speech_assets.defs.intake.assets import audio_manifest, raw_audio
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.privacy.redaction import publish_redaction_report, redaction_report
from speech_assets.privacy.retention import DEFAULT_RETENTION_DAYS, sweep_raw_audio
from speech_assets.storage.layout import REDACTION_REPORT_PATH, RETENTION_PREFIX

OWNERS = ["team:speech-data"]


class RetentionConfig(dg.Config):
    """How long raw audio is kept after its batch was published (default: $SPEECH_ASSETS_RETENTION_DAYS, else 365)."""

    max_age_days: float = settings.retention_days(DEFAULT_RETENTION_DAYS)  # read when the definitions load
    dry_run: bool = False


@dg.asset(
    deps=[raw_audio],
    group_name="privacy",
    owners=OWNERS,
    tags={"domain": "privacy", "layer": "maintenance"},
    kinds={"python"},
    code_version="1",
    description=(
        "The raw-audio retention sweep: the recordings (accepted and quarantined) of batches published more than "
        "max_age_days ago are removed from main in one commit, with a `retention` audit event and a tombstone "
        "per batch (retention/<batch>.json). Metadata (redacted transcripts, lineage) and features stay. "
        "Older commits keep the blobs until the store's garbage collection."
    ),
)
def raw_audio_retention(context: dg.AssetExecutionContext, config: RetentionConfig,
                        store: VersionStoreResource) -> dg.MaterializeResult:
    vs, repo = store.open(), store.repository
    result = sweep_raw_audio(vs, repo, config.max_age_days, datetime.now(timezone.utc), "retention policy (dagster)",
                             run_id=context.run.run_id, dry_run=config.dry_run)
    rows = ["| batch | published | source | age (days) | objects | bytes |", "|---|---|---|---:|---:|---:|"]
    rows += [f"| {b.batch_id} | {b.published_at} | {b.publish_source} | {b.age_days:.1f} | {b.objects} | {b.bytes} |"
             for b in result.batches]
    context.log.info(f"retention ({config.max_age_days:g} days, cutoff {result.cutoff}): {len(result.batches)} batches, "
                     f"{result.objects} objects, {result.bytes_freed} bytes"
                     + (" (dry run)" if config.dry_run else ""))
    head = result.merge_commit or result.base_commit
    return dg.MaterializeResult(metadata={
        "max_age_days": config.max_age_days,
        "cutoff": result.cutoff,
        "dry_run": config.dry_run,
        "batches_swept": len(result.batches),
        "objects": result.objects,
        "bytes_freed": result.bytes_freed,
        "unknown_age": ", ".join(result.unknown_age) or "none",
        "batches": dg.MetadataValue.md("\n".join(rows) if result.batches else "Nothing to sweep."),
        "audit_event": result.event_id or "",
        "commit_in": dg.MetadataValue.text(result.base_commit),
        "commit_out": dg.MetadataValue.text(result.merge_commit or ""),
        "dagster/uri": dg.MetadataValue.path(store.uri(head, RETENTION_PREFIX)),
    })


@dg.asset(
    name="redaction_report",
    deps=[audio_manifest],
    group_name="privacy",
    owners=OWNERS,
    tags={"domain": "privacy", "layer": "report"},
    kinds={"python", "json"},
    code_version="1",
    # Refreshed whenever the manifest is (a batch landed, or an erasure rewrote batches): reads metadata and the
    # audit trail only, so it costs well under a second.
    automation_condition=dg.AutomationCondition.eager().with_label("after the manifest changes"),
    description=(
        "PII redactions intake made in the transcripts, per batch and per kind (email, phone, card, digits): "
        "utterances, redacted utterances, counts — from each batch's publish event and staged commit (the "
        "metadata table's columns for batches published before the audit trail). Kept in reports/redactions.json."
    ),
)
def redaction_report_asset(context: dg.AssetExecutionContext, store: VersionStoreResource) -> dg.MaterializeResult:
    vs, repo = store.open(), store.repository
    report = redaction_report(vs, repo)
    commit, changed = publish_redaction_report(vs, repo, report, run_id=context.run.run_id)
    totals = report.totals
    metadata = {
        "batches": totals["batches"],
        "utterances": totals["utterances"],
        "redacted_utterances": totals["redacted_utterances"],
        "redactions": totals["redactions"],
        "redacted_share": round(totals["redacted_utterances"] / totals["utterances"], 4) if totals["utterances"] else 0.0,
        "report": dg.MetadataValue.md(report.markdown()),
        "changed": changed,
        "commit_in": dg.MetadataValue.text(report.ref_commit),
        "commit_out": dg.MetadataValue.text(commit),
        "dagster/uri": dg.MetadataValue.path(store.uri(commit, REDACTION_REPORT_PATH)),
    }
    for kind, n in totals["by_kind"].items():
        metadata[f"redactions/{kind}"] = n
    return dg.MaterializeResult(metadata=metadata)
