"""A child process for the intake fault tests: ingest one landing batch into a local store, maybe pausing.

    python -m tests.faults.intake_child STORE REPO BATCH_DIR BATCH_ID RUN_ID SIGNAL_DIR [--pause POINT]
                                        [--release FILE] [--start-at T]

It writes `SIGNAL_DIR/progress` (files validated so far) as it goes, `SIGNAL_DIR/paused-<POINT>` when it reaches
the pause point (then sleeps until it is killed, or until the `--release` file appears), and
`SIGNAL_DIR/result.json` when it ends. Pause points are
injected here by wrapping the store's methods, so the product code carries no test hook:

    commit         before the batch branch's first commit (everything staged, nothing committed)
    merge          both branch commits made, just before the merge into main
    after_merge    merged into main, before the branch is deleted
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from pathlib import Path

from speech_assets.intake.landing import LandingBatch
from speech_assets.storage.local import LocalVersionStore
from tests.faults.helpers import write_signal as _write


def main() -> int:
    p = argparse.ArgumentParser()
    for name in ("store", "repo", "batch_dir", "batch_id", "run_id", "signal_dir"):
        p.add_argument(name)
    p.add_argument("--pause", choices=("commit", "merge", "after_merge"))
    p.add_argument("--release", help="go on from the pause point once this file exists (default: wait to be killed)")
    p.add_argument("--start-at", type=float, default=0.0, help="unix time to start at (a barrier for racing runs)")
    args = p.parse_args()
    signals = Path(args.signal_dir)
    signals.mkdir(parents=True, exist_ok=True)

    from speech_assets.intake import batch as batch_mod

    store = LocalVersionStore(args.store)

    def pause(point: str) -> None:
        _write(signals / f"paused-{point}", str(os.getpid()))
        deadline = time.time() + 600
        while time.time() < deadline:  # the parent kills us here, or releases us
            if args.release and Path(args.release).exists():
                return
            time.sleep(0.02)
        raise TimeoutError(f"paused at {point} for 600 s and nobody came")

    if args.pause == "commit":
        real_commit = store.commit
        store.commit = lambda *a, **k: (pause("commit"), real_commit(*a, **k))[1]
    elif args.pause == "merge":
        real_merge = store.merge
        store.merge = lambda *a, **k: (pause("merge"), real_merge(*a, **k))[1]
    elif args.pause == "after_merge":
        real_merge, merged = store.merge, []

        def merge_then_note(*a, **k):
            out = real_merge(*a, **k)
            merged.append(out)
            return out

        real_delete = store.delete_branch

        def delete_after_merge(*a, **k):
            if merged:
                pause("after_merge")
            return real_delete(*a, **k)

        store.merge, store.delete_branch = merge_then_note, delete_after_merge

    def progress(done: int, total: int) -> None:
        _write(signals / "progress", f"{done} {total}")

    if args.start_at:
        time.sleep(max(0.0, args.start_at - time.time()))
    started = time.time()
    try:
        result = batch_mod.ingest_batch(
            store, args.repo, LandingBatch(args.batch_id, Path(args.batch_dir)), run_id=args.run_id, workers=1,
            progress=progress,
        )
        out = {"outcome": "published" if result.published else "contract_failed",
               "commit": result.published_commit, "accepted": result.staged.accepted,
               "rejected": result.staged.rejected, "branch": result.staged.branch}
    except batch_mod.AlreadyPublished as exc:
        out = {"outcome": "already_published", "message": str(exc), "by_run": exc.record.get("run_id")}
    except Exception as exc:  # reported to the parent, which decides whether this error is a clear one
        out = {"outcome": "error", "type": f"{type(exc).__module__}.{type(exc).__qualname__}", "message": str(exc),
               "traceback": traceback.format_exc()}
    out.update(started=started, ended=time.time(), pid=os.getpid())
    _write(signals / "result.json", json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
