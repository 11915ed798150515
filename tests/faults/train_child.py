"""A child process for the training fault test: train a tiny CTC model and save its checkpoint into a local store.

    python -m tests.faults.train_child STORE REPO SEED STEPS SIGNAL_DIR [--pause POINT]

Writes `SIGNAL_DIR/progress` (the last step reported), `SIGNAL_DIR/digest` (the trained weights' digest, once
training ends), `SIGNAL_DIR/paused-<POINT>` when it reaches a pause point (then sleeps until killed), and
`SIGNAL_DIR/result.json` at the end. Pause points, injected by wrapping the store's methods:

    put       the checkpoint's bytes written on the save branch, nothing committed
    merge     the save branch committed, just before the merge into main
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from speech_assets.model.train import TrainConfig, checkpoint_bytes, state_digest, train
from speech_assets.storage.local import LocalVersionStore
from tests.faults.helpers import write_signal as _write
from speech_assets.training.artifacts import save_checkpoint
from tests.model.test_model import TINY, tiny_data


def main() -> int:
    p = argparse.ArgumentParser()
    for name in ("store", "repo", "seed", "steps", "signal_dir"):
        p.add_argument(name)
    p.add_argument("--pause", choices=("put", "merge"))
    args = p.parse_args()
    signals = Path(args.signal_dir)
    signals.mkdir(parents=True, exist_ok=True)
    store = LocalVersionStore(args.store)

    def pause(point: str) -> None:
        _write(signals / f"paused-{point}", str(os.getpid()))
        time.sleep(600)  # the parent kills us here

    if args.pause == "put":
        real_put = store.put_object

        def put_then_pause(repo, branch, path, data, *a, **k):
            out = real_put(repo, branch, path, data, *a, **k)
            if path.endswith("checkpoint.pt"):
                pause("put")
            return out

        store.put_object = put_then_pause
    elif args.pause == "merge":
        real_merge = store.merge
        store.merge = lambda *a, **k: (pause("merge"), real_merge(*a, **k))[1]

    def progress(event: dict) -> None:
        if event.get("event") == "step":
            _write(signals / "progress", str(event.get("step", 0)))

    cfg = TrainConfig(seed=int(args.seed), epochs=10_000, max_steps=int(args.steps), batch_size=4, lr=3e-3,
                      max_minutes=None, num_threads=1, log_every=5)
    data = tiny_data(20)
    result = train(data, None, TINY, cfg, progress=progress)
    digest = state_digest(result.state_dict)
    _write(signals / "digest", digest)
    blob = checkpoint_bytes(result.state_dict, TINY, extra={"seed": cfg.seed})
    lineage = {"data_commit": "synthetic", "feature_config_digest": "synthetic", "code_version": "test",
               "seed": cfg.seed}
    saved = save_checkpoint(store, args.repo, blob, digest=digest, lineage=lineage, model_config=TINY.to_dict(),
                            train_config=cfg.to_dict(), loss_curve=result.loss_curve, dev_wer_curve=[],
                            run_id=f"train-{os.getpid()}")
    _write(signals / "result.json", json.dumps({"digest": digest, "path": saved.path, "commit": saved.commit_id,
                                                "steps": result.steps}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
