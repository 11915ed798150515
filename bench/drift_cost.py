"""Drift-report cost at 10 and at 200 batches in the store: it should be flat in corpus size.

    python bench/drift_cost.py [--small 10] [--large 200] [--repeats 15]

For each corpus size, a local store holds that many batches' statistics (`features/.../stats.json`, as the
`features` asset writes them, 150 utterances each) and the production model's stored reference built from all
of them. Measured, median of `--repeats`:
- report: what `drift_report[batch]` does per batch besides the served model's confidences (a fixed cost per
  batch) — read the reference and the batch's statistics from the store, compute every signal;
- reference: building the reference (sums every batch's statistics): once per production model, grows with
  the corpus by design; shown for scale.
Target: report(large) / report(small) close to 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _stats(seed: int, n: int = 150) -> dict:
    import numpy as np

    from speech_assets.features.stats import batch_stats

    rng = np.random.default_rng(seed)
    feats, rows = [], []
    words = "turn on the lights set a timer for ten minutes play some music what is the weather".split()
    for _ in range(n):
        frames = int(rng.integers(150, 400))
        feats.append(rng.normal(-4.0, 2.0, size=(frames, 80)).astype(np.float32))
        rows.append({"duration_s": frames / 100, "snr_db": float(rng.normal(25, 5)), "clipped_fraction": 0.0,
                     "text": " ".join(rng.choice(words, size=int(rng.integers(3, 8)))),
                     "original_sample_rate": 16000, "original_format": "WAV",
                     "accent": str(rng.choice(["us", "gb", "rp", "scottish"])),
                     "channel": str(rng.choice(["clean", "noisy"], p=[0.8, 0.2]))})
    return batch_stats(feats, rows)


def measure(n_batches: int, repeats: int, template: list[dict]) -> dict:
    from speech_assets.features.logmel import FeatureConfig
    from speech_assets.features.store import feature_dir, load_stats
    from speech_assets.monitoring.drift import build_reference, drift_report
    from speech_assets.storage.local import LocalVersionStore

    fc = FeatureConfig()
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalVersionStore(Path(tmp) / "store")
        store.create_repository("bench")
        store.create_branch("bench", "load", "main")
        for i in range(n_batches):  # distinct batches, statistics cycled from a few generated ones
            stats = template[i % len(template)]
            store.put_object("bench", "load", f"{feature_dir(fc, f'b{i:04d}')}/stats.json", json.dumps(stats).encode())
        store.commit("bench", "load", f"{n_batches} batches")
        store.merge("bench", "load", "main")
        head = store.resolve("bench", "main")

        t0 = time.perf_counter()
        reference = build_reference(load_stats(store, "bench", head, fc, f"b{i:04d}") for i in range(n_batches))
        build_s = time.perf_counter() - t0
        store.create_branch("bench", "ref", "main")
        store.put_object("bench", "ref", "monitoring/reference/1.0.0.json", json.dumps(reference).encode())
        store.commit("bench", "ref", "reference")
        store.merge("bench", "ref", "main")
        head = store.resolve("bench", "main")

        times = []
        for r in range(repeats):
            t0 = time.perf_counter()
            ref = json.loads(store.get_object("bench", head, "monitoring/reference/1.0.0.json"))
            stats = load_stats(store, "bench", head, fc, f"b{r % n_batches:04d}")
            report = drift_report("b", stats, ref)
            times.append(time.perf_counter() - t0)
        store.close()
    return {"batches": n_batches, "report_ms": 1000 * statistics.median(times), "reference_s": build_s,
            "signals": len(report.signals) + len(report.subgroups)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    template = [_stats(seed) for seed in range(5)]
    small = measure(args.small, args.repeats, template)
    large = measure(args.large, args.repeats, template)
    print("| batches in the store | drift report per batch (ms, median) | reference build, once per model (s) | signals |")
    print("|---:|---:|---:|---:|")
    for m in (small, large):
        print(f"| {m['batches']} | {m['report_ms']:.1f} | {m['reference_s']:.2f} | {m['signals']} |")
    print(f"\nreport cost ratio {args.large} / {args.small} batches: {large['report_ms'] / small['report_ms']:.2f} "
          f"(flat = 1.0); reference build ratio: {large['reference_s'] / small['reference_s']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
