"""Two intake runs of the same batch at the same moment: one publishes, the other is a clear no-op.

Each run stages on a branch of its own; the publish marker (`intake/published/<batch>.json`, different bytes per
run) makes the second of two merges from the same `main` conflict, which the run reports as `AlreadyPublished`;
a run whose branch the winner tidied away mid-staging reports the same. Never two publishes, never a traceback
about a missing branch, never a corrupted store.
"""

from __future__ import annotations

import io
import json
import time

import pyarrow.parquet as pq
import pytest

from speech_assets.intake.batch import AlreadyPublished, ingest_batch, metadata_path, published_record
from speech_assets.intake.landing import LandingBatch
from speech_assets.storage.local import LocalVersionStore
from tests.faults.helpers import publish_events, report, result, spawn, store_integrity, wait_for
from tests.intake.conftest import REPO, good_rows, make_batch

FILES = 30


def _fresh(tmp_path, name: str, files: int = FILES):
    landing = tmp_path / f"landing-{name}"
    make_batch(landing, "day", good_rows(files, seed=7))
    store_root = tmp_path / f"store-{name}"
    store = LocalVersionStore(store_root)
    store.create_repository(REPO)
    return LandingBatch("day", landing / "day"), store_root, store


def _race(tmp_path, name: str, batch: LandingBatch, store_root, *extra: str, start_at: float = 0.0):
    procs = []
    for i in range(2):
        signals, log = tmp_path / f"sig-{name}-{i}", tmp_path / f"{name}-{i}.log"
        args = ["--start-at", str(start_at)] if start_at else []
        procs.append((spawn("tests.faults.intake_child", str(store_root), REPO, str(batch.path), batch.batch_id,
                            f"{name}-run-{i}", str(signals), *args, *extra, log=log), signals, log))
    return procs


def _settle(procs) -> list[dict]:
    outcomes = []
    for proc, signals, log in procs:
        assert proc.wait(120) == 0, log.read_text()[-3000:]
        outcomes.append(result(signals))
    return outcomes


def _assert_published_once(store: LocalVersionStore, outcomes: list[dict]) -> dict:
    kinds = sorted(o["outcome"] for o in outcomes)
    assert kinds == ["already_published", "published"], [(o["outcome"], o.get("traceback", "")[-800:]) for o in outcomes]
    winner = next(o for o in outcomes if o["outcome"] == "published")
    loser = next(o for o in outcomes if o["outcome"] == "already_published")
    assert "already published" in loser["message"] and loser["by_run"] == published_record(store, REPO, "day")["run_id"]
    (event,) = publish_events(store, REPO, "day")
    assert event.evidence["run_id"] == loser["by_run"] and winner["commit"] == store.resolve(REPO, "main")
    assert len(list(store.list_objects(REPO, "main", "audio/day/"))) == FILES
    assert pq.read_table(io.BytesIO(store.get_object(REPO, "main", metadata_path("day")))).num_rows == FILES
    assert list(store.list_branches(REPO)) == ["main"]  # the loser's branch was tidied, nothing left half-done
    merges = [c for c in store.log(REPO, "main") if c.message == "publish batch day"]
    assert len(merges) == 1
    return store_integrity(store, REPO)


def test_two_processes_start_the_same_batch_at_once(tmp_path):
    figures = {"rounds": 0, "runs": 0, "published": 0, "already_published": 0, "errors": 0}
    for round_ in range(3):
        batch, store_root, store = _fresh(tmp_path, f"r{round_}")
        procs = _race(tmp_path, f"r{round_}", batch, store_root, start_at=time.time() + 2.5)  # a barrier in time
        outcomes = _settle(procs)
        integrity = _assert_published_once(store, outcomes)
        starts = [o["started"] for o in outcomes]
        assert max(starts) - min(starts) < 0.5, starts  # they really ran at the same time
        figures["rounds"] += 1
        figures["runs"] += 2
        for o in outcomes:
            figures[o["outcome"] if o["outcome"] in figures else "errors"] += 1
        figures["integrity"] = integrity
    report(tmp_path, "concurrent_intake_processes", figures)


def test_two_runs_merging_at_the_same_instant_conflict_on_the_marker_not_publish_twice(tmp_path):
    """Both runs staged and committed from the same main, both held just before their merge, then let go at once."""
    batch, store_root, store = _fresh(tmp_path, "m")
    release = tmp_path / "release-merge"
    procs = _race(tmp_path, "m", batch, store_root, "--pause", "merge", "--release", str(release))
    for proc, signals, log in procs:
        wait_for(lambda: (signals / "paused-merge").exists(), 90, "both runs at their merge", proc, log)
    head = store.resolve(REPO, "main")
    assert publish_events(store, REPO, "day") == []
    release.write_bytes(b"")
    outcomes = _settle(procs)
    integrity = _assert_published_once(store, outcomes)
    assert store.get_commit(REPO, "main").parents[0] == head  # one merge on top of the common base
    report(tmp_path, "concurrent_intake_merge_race", {"runs": 2, "published": 1, "already_published": 1,
                                                      "integrity": integrity})


def test_a_rerun_of_a_published_batch_is_a_no_op_and_a_new_policy_reingests(tmp_path):
    from speech_assets.audio.validate import ValidationPolicy

    batch, _, store = _fresh(tmp_path, "seq", files=3)
    first = ingest_batch(store, REPO, batch, run_id="a")
    head = store.resolve(REPO, "main")
    with pytest.raises(AlreadyPublished, match="already published on main by run 'a'") as err:
        ingest_batch(store, REPO, batch, run_id="b")
    assert err.value.main_commit == head and store.resolve(REPO, "main") == head
    # a stricter policy is a different publish: the batch is validated again and replaces its previous version
    again = ingest_batch(store, REPO, batch, run_id="c", policy=ValidationPolicy(max_duration_s=20.0))
    assert again.published and again.published_commit != first.published_commit
    assert [e.evidence["run_id"] for e in publish_events(store, REPO, "day")] == ["a", "c"]


def test_two_dagster_runs_of_one_partition(tmp_path):
    """Two `raw_audio[day]` runs at once, as two run processes (see dagster_child): one publishes, the other ends
    as a successful no-op that reports the publishing run (`already_published`), and changes nothing."""
    landing = tmp_path / "landing"
    make_batch(landing, "day", good_rows(FILES, seed=7))
    store_root = tmp_path / "store"
    LocalVersionStore(store_root).create_repository(REPO)
    start_at = time.time() + 6.0  # both children import Dagster first
    procs = [(spawn("tests.faults.dagster_child", str(store_root), str(landing), "day", str(start_at),
                    str(tmp_path / f"dg-{i}.json"), log=tmp_path / f"dg-{i}.log"), tmp_path / f"dg-{i}.log")
             for i in range(2)]
    for proc, log in procs:
        assert proc.wait(180) == 0, log.read_text()[-3000:]
    outs = [json.loads((tmp_path / f"dg-{i}.json").read_text()) for i in range(2)]
    assert all(o["success"] for o in outs), outs  # no red run for a batch that is on main
    (winner,) = [o for o in outs if not o["already_published"]]
    (noop,) = [o for o in outs if o["already_published"]]
    store = LocalVersionStore(store_root)
    assert winner["published"] and noop["by_run"] == published_record(store, REPO, "day")["run_id"]
    assert len(publish_events(store, REPO, "day")) == 1 and list(store.list_branches(REPO)) == ["main"]
    report(tmp_path, "concurrent_intake_dagster", {"runs": 2, "published": 1, "already_published_noop": 1,
                                                   "start_skew_s": round(abs(outs[0]["started"] - outs[1]["started"]), 3)})
