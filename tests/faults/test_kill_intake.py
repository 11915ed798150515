"""SIGKILL the intake mid-way, at every stage of write-audit-publish, then rerun.

A real child process ingests a landing batch into a local store on disk and is killed with SIGKILL (no handler, no
`finally`) while staging, before its branch commit, between its branch commits and the merge, and right after the
merge. After each kill: `main` is exactly as before (no object of the batch, no commit of the killed run, no publish
event), the store is whole (every object readable and matching its checksum, no half-written content file); a rerun
publishes the batch exactly once and tidies the killed runs' branches; after a kill that came after the merge, the
rerun is a no-op that says the batch is already published.
"""

from __future__ import annotations

import io
import time

import pyarrow.parquet as pq

from speech_assets.intake.batch import ingest_batch, metadata_path
from speech_assets.intake.landing import LandingBatch
from speech_assets.storage.local import LocalVersionStore
from tests.faults.helpers import (
    batch_paths_on,
    kill9,
    progress,
    publish_events,
    report,
    result,
    spawn,
    store_integrity,
    wait_for,
)
from tests.intake.conftest import REPO, good_rows, make_batch

FILES = 60  # ~3 s of staging with one worker: room to land a kill in the middle
BAD = [{"audio_filepath": "audio/missing.wav", "text": "gone"}, {"audio_filepath": "../../etc/passwd", "text": "x"}]


def _child(tmp_path, store_root, batch: LandingBatch, run_id: str, *extra: str):
    signals = tmp_path / f"sig-{run_id}"
    log = tmp_path / f"{run_id}.log"
    proc = spawn("tests.faults.intake_child", str(store_root), REPO, str(batch.path), batch.batch_id, run_id,
                 str(signals), *extra, log=log)
    return proc, signals, log


def _assert_untouched(store: LocalVersionStore, head: str, before: dict, batch_id: str, run_id: str) -> None:
    assert store.resolve(REPO, "main") == head, "main moved although the run was killed before its merge"
    assert {o.path: o.checksum for o in store.list_objects(REPO, "main")} == before
    assert batch_paths_on(store, REPO, "main", batch_id) == []
    assert publish_events(store, REPO, batch_id) == []
    assert not [c for c in store.log(REPO, "main") if c.metadata.get("run_id") == run_id], "orphan commit on main"


def _rows(store: LocalVersionStore, batch_id: str) -> int:
    return pq.read_table(io.BytesIO(store.get_object(REPO, "main", metadata_path(batch_id)))).num_rows


def test_sigkill_at_every_stage_of_intake_then_rerun(tmp_path):
    started = time.perf_counter()
    landing = tmp_path / "landing"
    make_batch(landing, "day-01", good_rows(3, seed=1))
    make_batch(landing, "day-02", good_rows(FILES, seed=2, speaker_prefix="b") + BAD)
    make_batch(landing, "day-03", good_rows(4, seed=3, speaker_prefix="c"))
    store_root = tmp_path / "store"
    store = LocalVersionStore(store_root)
    store.create_repository(REPO)
    assert ingest_batch(store, REPO, LandingBatch("day-01", landing / "day-01"), run_id="seed").published
    day2, day3 = LandingBatch("day-02", landing / "day-02"), LandingBatch("day-03", landing / "day-03")

    head = store.resolve(REPO, "main")
    before = {o.path: o.checksum for o in store.list_objects(REPO, "main")}
    killed, at = [], {}

    # 1. while staging: some files written on the branch, not all
    proc, signals, log = _child(tmp_path, store_root, day2, "k-staging")
    wait_for(lambda: progress(signals) >= 10, 60, "10 files staged", proc, log)
    kill9(proc)
    at["staging"] = progress(signals)
    assert 10 <= at["staging"] < FILES + len(BAD), at  # really mid-way
    killed.append("k-staging")
    _assert_untouched(store, head, before, "day-02", "k-staging")

    # 2. everything staged, before the branch commit; 3. both branch commits made, before the merge
    for point in ("commit", "merge"):
        run = f"k-{point}"
        proc, signals, log = _child(tmp_path, store_root, day2, run, "--pause", point)
        wait_for(lambda: (signals / f"paused-{point}").exists(), 90, f"the pause at {point}", proc, log)
        kill9(proc)
        killed.append(run)
        _assert_untouched(store, head, before, "day-02", run)
    branches = [b for b in store.list_branches(REPO) if b.startswith("ingest-day-02-")]
    assert len(branches) == 3  # one abandoned branch per killed run; main never saw any of them
    integrity_after_kills = store_integrity(store, REPO)

    # 4. the rerun publishes the batch exactly once and tidies what the killed runs left
    proc, signals, log = _child(tmp_path, store_root, day2, "rerun")
    assert proc.wait(120) == 0, log.read_text()[-3000:]
    assert result(signals)["outcome"] == "published", result(signals)
    (event,) = publish_events(store, REPO, "day-02")
    assert event.evidence["run_id"] == "rerun"
    assert _rows(store, "day-02") == FILES == event.evidence["accepted"]
    assert event.evidence["rejected"] == len(BAD)
    assert len(list(store.list_objects(REPO, "main", "audio/day-02/"))) == FILES
    assert not [b for b in store.list_branches(REPO) if b.startswith("ingest-day-02-")]
    for run in killed:  # nothing the killed runs committed is reachable from main
        assert not [c for c in store.log(REPO, "main") if c.metadata.get("run_id") == run]
    assert _rows(store, "day-01") == 3  # the earlier batch is untouched

    # 5. killed after its merge, before tidying: the batch is published (once); the rerun is a clear no-op
    head = store.resolve(REPO, "main")
    proc, signals, log = _child(tmp_path, store_root, day3, "k-after-merge", "--pause", "after_merge")
    wait_for(lambda: (signals / "paused-after_merge").exists(), 90, "the pause after the merge", proc, log)
    kill9(proc)
    killed.append("k-after-merge")
    assert store.resolve(REPO, "main") != head and len(publish_events(store, REPO, "day-03")) == 1
    assert [b for b in store.list_branches(REPO) if b.startswith("ingest-day-03-")]
    proc, signals, log = _child(tmp_path, store_root, day3, "rerun-3")
    assert proc.wait(120) == 0, log.read_text()[-3000:]
    outcome = result(signals)
    assert outcome["outcome"] == "already_published" and outcome["by_run"] == "k-after-merge", outcome
    assert "already published" in outcome["message"]
    assert len(publish_events(store, REPO, "day-03")) == 1 and _rows(store, "day-03") == 4
    assert not [b for b in store.list_branches(REPO) if b.startswith("ingest-day-03-")]

    integrity = store_integrity(store, REPO)
    assert integrity["objects_on_ref"] > FILES
    report(tmp_path, "kill_intake", {
        "runs_killed": len(killed), "kill_points": ["staging", "before_branch_commit", "before_merge", "after_merge"],
        "files_staged_when_killed_while_staging": at["staging"], "batch_files": FILES + len(BAD),
        "reruns": 2, "publish_events_per_batch": 1, "abandoned_branches_before_rerun": len(branches),
        "integrity_after_kills": integrity_after_kills, "integrity_final": integrity,
        "seconds": round(time.perf_counter() - started, 1),
    })
