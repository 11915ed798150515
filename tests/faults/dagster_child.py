"""A child process for the Dagster-level race: materialize `raw_audio[PARTITION]` once, at a given instant.

    python -m tests.faults.dagster_child STORE_ROOT LANDING PARTITION START_AT OUT_JSON

Dagster runs are separate processes in production (and in-process execution is not thread-safe), so the race is
two processes, each with its own ephemeral instance, sharing the versioned store and the landing folder.
"""

from __future__ import annotations

import json
import sys
import time


def _root(error) -> dict:
    """The innermost error Dagster wrapped (the asset's own exception)."""
    while error.cause is not None:
        error = error.cause
    return {"cls": error.cls_name, "message": error.message}


def main() -> int:
    store_root, landing, partition, start_at, out = sys.argv[1:6]
    import dagster as dg

    from speech_assets.defs.intake.assets import raw_audio
    from speech_assets.defs.intake.partitions import intake_batches
    from speech_assets.defs.intake.resources import LandingZoneResource
    from speech_assets.defs.storage.resources import VersionStoreResource
    from tests.intake.conftest import REPO

    resources = {"store": VersionStoreResource(local_root=store_root, repository=REPO),
                 "landing": LandingZoneResource(path=landing)}
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(intake_batches.name, [partition])
    time.sleep(max(0.0, float(start_at) - time.time()))
    started = time.time()
    result = dg.materialize([raw_audio], partition_key=partition, instance=instance, resources=resources,
                            raise_on_error=False)
    failures = [ev.step_failure_data.error for ev in result.all_events if ev.event_type_value == "STEP_FAILURE"]
    mats = result.asset_materializations_for_node("raw_audio") if result.success else []
    with open(out, "w") as f:
        json.dump({"success": result.success, "started": started,
                   "published": bool(mats and mats[0].metadata["published"].value),
                   "already_published": bool(mats and "already_published" in mats[0].metadata),
                   "by_run": mats[0].metadata["published_by_run"].value if mats and "published_by_run" in mats[0].metadata else "",
                   "failure": [_root(e) for e in failures]}, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
