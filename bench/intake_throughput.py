"""Intake throughput against the raw copy speed of the same files, measured in the same run.

    python bench/intake_throughput.py [--utterances 400] [--repeats 3]

Two inputs: the simulator's 16 kHz PCM WAVs (no resampling), and the same audio as 44.1 kHz FLAC (decode +
resample to 16 kHz). For each: the baseline copies every file of the batch to a fresh folder (read + write +
fsync-free, like a plain `cp -r`); the intake runs the whole write-audit-publish path on a fresh local store
(validate, PII, put blobs, Parquet, soda contract, merge). Best of N repeats, wall clock.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_corpus(root: Path, n: int) -> Path:
    from speech_assets.simulation.speech import SimulationConfig, generate_batch

    out = root / "wav16k"
    generate_batch(out, SimulationConfig(n_utterances=n, seed=7, workers=2))
    return out


def to_flac_44k(src: Path, dst: Path) -> Path:
    import json

    import soundfile as sf
    import torch
    import torchaudio.functional as F

    (dst / "audio").mkdir(parents=True)
    rows = []
    for line in (src / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        x, sr = sf.read(src / row["audio_filepath"], dtype="float32")
        y = F.resample(torch.from_numpy(x), sr, 44100).numpy()
        name = Path(row["audio_filepath"]).with_suffix(".flac").name
        sf.write(dst / "audio" / name, y, 44100, format="FLAC", subtype="PCM_16")
        row["audio_filepath"] = f"audio/{name}"
        rows.append(json.dumps(row))
    (dst / "manifest.jsonl").write_text("\n".join(rows) + "\n")
    (dst / "_READY").write_bytes(b"")
    return dst


def raw_copy(batch: Path, dst: Path) -> float:
    t0 = time.perf_counter()
    shutil.copytree(batch, dst)
    return time.perf_counter() - t0


def intake(batch: Path, store_dir: Path, workers: int) -> tuple[float, object]:
    from speech_assets.intake.batch import ingest_batch
    from speech_assets.intake.landing import LandingBatch
    from speech_assets.storage.local import LocalVersionStore

    store = LocalVersionStore(store_dir)
    store.create_repository("bench")
    t0 = time.perf_counter()
    result = ingest_batch(store, "bench", LandingBatch("bench-batch", batch), run_id="bench", workers=workers)
    elapsed = time.perf_counter() - t0
    assert result.published, result.contract.markdown()
    return elapsed, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        root = Path(tmp)
        print(f"simulating {args.utterances} utterances ...", flush=True)
        wav = make_corpus(root, args.utterances)
        flac = to_flac_44k(wav, root / "flac44k")
        # Warm the code paths (imports, torch resampler kernels, soda) outside the timings.
        intake(wav, root / "warm", args.workers)

        rows = []
        for label, batch in (("16 kHz WAV", wav), ("44.1 kHz FLAC", flac)):
            files = len(list((batch / "audio").iterdir()))
            copy_s, intake_s, result = float("inf"), float("inf"), None
            for r in range(args.repeats):
                copy_s = min(copy_s, raw_copy(batch, root / f"copy-{label[:2]}-{r}"))
                t, result = intake(batch, root / f"store-{label[:2]}-{r}", args.workers)
                intake_s = min(intake_s, t)
            audio_s = result.staged.audio_seconds
            mb = sum(p.stat().st_size for p in (batch / "audio").iterdir()) / 1e6
            rows.append((label, files, audio_s, mb, copy_s, intake_s))

    print()
    print(f"| input | files | audio s | MB | raw copy files/s | intake files/s | intake audio-s/s | intake / copy |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, files, audio_s, mb, copy_s, intake_s in rows:
        print(
            f"| {label} | {files} | {audio_s:.0f} | {mb:.1f} | {files / copy_s:.0f} | {files / intake_s:.0f} "
            f"| {audio_s / intake_s:.0f} | {copy_s / intake_s:.3f} |"
        )
    print(f"\n(best of {args.repeats}; intake with {args.workers} worker threads; 'intake / copy' = copy time / intake time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
