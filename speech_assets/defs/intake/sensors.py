"""The intake sensor: a new or changed landing batch becomes a dynamic partition and a run of `raw_audio`."""


import json

import dagster as dg

from speech_assets.defs.intake.assets import raw_audio
from speech_assets.defs.intake.partitions import intake_batches
from speech_assets.defs.intake.resources import LandingZoneResource


def intake_run_key(batch_id: str, content_hash: str) -> str:
    # The content hash is in the key: a changed batch is new work, a repeated one is deduplicated by Dagster.
    return f"intake:{batch_id}:{content_hash}"


@dg.sensor(
    name="intake_sensor",
    target=[raw_audio],
    # 20 s: a new batch waits at most that long; every tick costs the code server CPU the runs could use
    minimum_interval_seconds=20,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches the landing directory for ready batches (a folder with a `_READY` marker).",
)
def intake_sensor(context: dg.SensorEvaluationContext, landing: LandingZoneResource) -> dg.SensorResult:
    # cursor: batch_id -> [fingerprint, content_hash]; the full content hash is recomputed only when the
    # cheap fingerprint (names, sizes, mtimes) moves, so an idle landing zone costs a directory walk.
    seen: dict[str, list[str]] = json.loads(context.cursor) if context.cursor else {}
    known = set(context.instance.get_dynamic_partitions(intake_batches.name))
    run_requests, new_partitions = [], []
    for batch in landing.ready_batches():
        fingerprint = batch.fingerprint()
        previous = seen.get(batch.batch_id)
        if previous and previous[0] == fingerprint:
            continue
        content_hash = batch.content_hash()
        seen[batch.batch_id] = [fingerprint, content_hash]
        if previous and previous[1] == content_hash:
            context.log.info(f"{batch.batch_id}: touched but unchanged, skipping")
            continue
        if batch.batch_id not in known:
            new_partitions.append(batch.batch_id)
        context.log.info(f"{batch.batch_id}: {'changed' if previous else 'new'} batch, content {content_hash[:12]}")
        run_requests.append(
            dg.RunRequest(
                partition_key=batch.batch_id,
                run_key=intake_run_key(batch.batch_id, content_hash),
                tags={"speech_assets/batch": batch.batch_id, "speech_assets/content_hash": content_hash},
            )
        )
    if not run_requests:
        return dg.SensorResult(skip_reason="no new or changed ready batch", cursor=json.dumps(seen, sort_keys=True))
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[intake_batches.build_add_request(new_partitions)] if new_partitions else [],
        cursor=json.dumps(seen, sort_keys=True),
    )
