"""The `features` asset's work against a bare torchaudio MelSpectrogram loop over the same audio, same run.

    python bench/features_throughput.py [--utterances 300] [--repeats 3]

Both are measured in audio-seconds per CPU-second (`time.process_time`, all threads of the process):
- baseline: the audio already decoded in memory, one `MelSpectrogram` + log per utterance in a Python loop;
- asset:    `compute_batch_features` end to end on the local store — read and decode every WAV from the store,
            batched log-mel, float16 `.npy` + index + statistics written on a branch, committed and merged.
Target: the asset reaches at least 70 % of the baseline.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import soundfile as sf
    import torch
    import torchaudio

    from speech_assets.simulation.speech import SimulationConfig, generate_batch
    from speech_assets.features.logmel import FeatureConfig
    from speech_assets.features.store import compute_batch_features
    from speech_assets.intake.batch import ingest_batch
    from speech_assets.intake.landing import LandingBatch
    from speech_assets.storage.local import LocalVersionStore

    config = FeatureConfig()
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        root = Path(tmp)
        print(f"simulating and ingesting {args.utterances} utterances ...", flush=True)
        generate_batch(root / "batch", SimulationConfig(n_utterances=args.utterances, seed=11))
        store = LocalVersionStore(root / "store")
        store.create_repository("bench")
        result = ingest_batch(store, "bench", LandingBatch("b1", root / "batch"), run_id="bench")
        assert result.published
        audio_s = result.staged.audio_seconds
        import pyarrow.parquet as pq

        rows = pq.read_table(io.BytesIO(store.get_object("bench", "main", "metadata/b1.parquet"))).to_pylist()
        waveforms = [
            torch.from_numpy(sf.read(io.BytesIO(store.get_object("bench", "main", r["audio_path"])), dtype="float32")[0])
            for r in rows
        ]
        mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=16000, n_fft=config.n_fft, hop_length=config.hop_length, n_mels=config.n_mels,
            f_min=config.f_min, f_max=config.f_max,
        )

        def baseline() -> float:
            t0 = time.process_time()
            with torch.inference_mode():
                for w in waveforms:
                    torch.log(mel(w) + config.log_floor)
            return time.process_time() - t0

        # The baseline at torch's default intra-op threads and at one thread; the asset is compared with the
        # more efficient of the two, so extra threads never flatter the ratio.
        default_threads = torch.get_num_threads()
        base_by_threads = {}
        for threads in sorted({default_threads, 1}):
            torch.set_num_threads(threads)
            baseline()  # warm-up
            base_by_threads[threads] = min(baseline() for _ in range(args.repeats))
        torch.set_num_threads(default_threads)
        base_cpu = min(base_by_threads.values())
        compute_batch_features(store, "bench", "b1", run_id="warm", config=config, force=True)
        asset_cpu = min(
            compute_batch_features(store, "bench", "b1", run_id=f"r{i}", config=config, force=True).cpu_seconds
            for i in range(args.repeats)
        )

    base_rate, asset_rate = audio_s / base_cpu, audio_s / asset_cpu
    print()
    print("| measure | CPU s | audio-s per CPU-s |")
    print("|---|---:|---:|")
    for threads, cpu in sorted(base_by_threads.items()):
        print(f"| bare MelSpectrogram loop, {threads} thread(s) (decoded audio in memory) | {cpu:.3f} | {audio_s / cpu:.0f} |")
    print(f"| features asset (store read + decode + batched log-mel + write + commit) | {asset_cpu:.3f} | {asset_rate:.0f} |")
    print(f"\n{len(rows)} utterances, {audio_s:.0f} s of audio; asset / baseline = {asset_rate / base_rate:.2f} (target >= 0.70); "
          f"baseline = the faster bare loop; best of {args.repeats} each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
