"""SIGKILL training mid-run and mid-save: every checkpoint left is whole, `main` never points at a partial one, and
the rerun completes with the very weights the killed run would have saved.

How checkpoints are written (read before testing): training keeps its state in memory; the one checkpoint of a run
is serialized to bytes (`checkpoint_bytes`: tensors + plain dicts, with the weights' digest inside) and published
through the versioned store (`save_checkpoint` → `publish_objects`: a branch, one commit, one merge), whose content
files are written to a temporary name and renamed into place (fsync'd by the commit that refers to them). So there is
no checkpoint file that a kill could leave half-written at its final path: this test checks that claim on disk.
"""

from __future__ import annotations

import hashlib
import json
import time

from speech_assets.model.train import load_checkpoint
from speech_assets.storage.local import LocalVersionStore
from speech_assets.training.artifacts import CHECKPOINT_POINTER, latest_checkpoint
from tests.faults.helpers import kill9, progress, report, spawn, store_integrity, wait_for

REPO = "speech-assets"
STEPS = 40  # ~2 s of training at one thread (after ~3.5 s of imports): a kill lands mid-run


def _child(tmp_path, store_root, run: str, seed: int, *extra: str):
    signals, log = tmp_path / f"sig-{run}", tmp_path / f"{run}.log"
    proc = spawn("tests.faults.train_child", str(store_root), REPO, str(seed), str(STEPS), str(signals), *extra,
                 log=log)
    return proc, signals, log


def _checkpoints_whole(store: LocalVersionStore) -> int:
    """Every checkpoint on main loads (its digest checked inside) and matches the sha256 its training.json records."""
    n = 0
    for stat in store.list_objects(REPO, "main", "checkpoints/"):
        if not stat.path.endswith("/checkpoint.pt"):
            continue
        blob = store.get_object(REPO, "main", stat.path)
        info = json.loads(store.get_object(REPO, "main", stat.path.replace("checkpoint.pt", "training.json")))
        assert hashlib.sha256(blob).hexdigest() == info["checkpoint_sha256"], stat.path
        load_checkpoint(blob)  # raises on a torn or corrupted checkpoint (its weights digest is checked inside)
        assert info["digest"].startswith(stat.path.split("/")[1]), stat.path
        n += 1
    return n


def test_sigkill_while_training_and_while_saving_then_rerun(tmp_path):
    started = time.perf_counter()
    store_root = tmp_path / "store"
    store = LocalVersionStore(store_root)
    store.create_repository(REPO)

    proc, signals, log = _child(tmp_path, store_root, "first", 0)
    assert proc.wait(180) == 0, log.read_text()[-3000:]
    first_info, _ = latest_checkpoint(store, REPO)
    head, killed, steps_at_kill = store.resolve(REPO, "main"), 0, None

    def assert_untouched() -> None:
        assert store.resolve(REPO, "main") == head
        info, blob = latest_checkpoint(store, REPO)  # still the first run's, whole
        assert info["digest"] == first_info["digest"] and load_checkpoint(blob)

    # mid-training
    proc, signals, log = _child(tmp_path, store_root, "k-train", 1)
    wait_for(lambda: progress(signals) >= 10, 120, "10 training steps", proc, log)
    kill9(proc)
    killed += 1
    steps_at_kill = progress(signals)
    assert steps_at_kill < STEPS and not (signals / "digest").exists()  # really killed mid-run
    assert_untouched()

    # mid-save: checkpoint bytes on the save branch, not committed; then committed, not merged
    digests = []
    for point in ("put", "merge"):
        proc, signals, log = _child(tmp_path, store_root, f"k-{point}", 1, "--pause", point)
        wait_for(lambda: (signals / f"paused-{point}").exists(), 120, f"the pause at {point}", proc, log)
        kill9(proc)
        killed += 1
        digests.append((signals / "digest").read_text())
        assert_untouched()
    assert digests[0] == digests[1]  # two runs of one seed: the same weights
    integrity_after_kills = store_integrity(store, REPO)
    assert _checkpoints_whole(store) == 1

    # the rerun completes and publishes the weights the killed runs were saving
    proc, signals, log = _child(tmp_path, store_root, "rerun", 1)
    assert proc.wait(180) == 0, log.read_text()[-3000:]
    info, blob = latest_checkpoint(store, REPO)
    assert info["digest"] == digests[0] != first_info["digest"]
    assert json.loads(store.get_object(REPO, "main", CHECKPOINT_POINTER))["checkpoint"] == info["checkpoint"]
    assert _checkpoints_whole(store) == 2
    save_branches = [b for b in store.list_branches(REPO) if b != "main"]
    integrity = store_integrity(store, REPO)
    report(tmp_path, "kill_training", {
        "runs_killed": killed, "kill_points": ["training", "checkpoint_written_uncommitted", "before_merge"],
        "steps_at_training_kill": steps_at_kill, "steps_per_run": STEPS, "checkpoints_on_main": 2,
        "abandoned_save_branches": len(save_branches), "integrity_after_kills": integrity_after_kills,
        "integrity_final": integrity, "seconds": round(time.perf_counter() - started, 1),
    })
