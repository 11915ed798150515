"""The BentoML service against the bare model on the same 3-second clips, same run.

    python bench/serve_throughput.py [--requests 64] [--checkpoint PATH]

Model: `--checkpoint`, else the production model of the demo's registry (`make demo` first), else an untrained
model of the default architecture (same compute, greedy decoding; said in the output).  Clips: simulated speech
cut or padded to exactly 3.0 s.  Measured:
- bare: `Transcriber.transcribe` one clip at a time, and `transcribe_batch` 8 at a time, in this process on
  one thread (the service's model worker also runs one thread);
- service: `POST /transcribe` from 1 and from 8 concurrent clients against `bentoml serve` on 127.0.0.1
  (adaptive batching on), requests/s and p50/p99 latency.
Ratios: service / bare at concurrency 1 (the HTTP + routing + decode-upload overhead) and concurrency 8 vs 1
(what batching buys).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _checkpoint(args) -> tuple[bytes, str]:
    if args.checkpoint:
        return Path(args.checkpoint).read_bytes(), f"checkpoint {args.checkpoint}"
    try:
        from speech_assets.registry.registry import ModelRegistry
        from speech_assets.settings import DEFAULT_REPOSITORY, local_store_dir
        from speech_assets.storage.local import LocalVersionStore
        from speech_assets.training.artifacts import MODEL_NAME

        if local_store_dir().exists():
            reg = ModelRegistry(LocalVersionStore(local_store_dir()), DEFAULT_REPOSITORY)
            prod = reg.production(MODEL_NAME)
            if prod is not None:
                return reg.checkpoint(MODEL_NAME, prod.version), f"the demo's production model {prod.version}"
    except Exception as exc:  # no demo store: fall through
        print(f"(no registry model: {exc})")
    import torch

    from speech_assets.features.logmel import FeatureConfig
    from speech_assets.model.architecture import CTCModel, ModelConfig
    from speech_assets.model.train import checkpoint_bytes

    torch.manual_seed(0)
    return (checkpoint_bytes(CTCModel(ModelConfig()).state_dict(), ModelConfig(), {"feature_config": FeatureConfig().to_dict()}),
            "an untrained default-architecture model (greedy decoding)")


def _clips(n: int, tmp: Path) -> list[bytes]:
    import numpy as np
    import soundfile as sf

    from speech_assets.simulation.speech import SimulationConfig, generate_batch

    generate_batch(tmp / "clips", SimulationConfig(n_utterances=n, seed=7, workers=2))
    out = []
    for wav in sorted((tmp / "clips" / "audio").glob("*.wav")):
        x, sr = sf.read(wav, dtype="float32")
        x = np.pad(x, (0, max(0, 3 * sr - len(x))))[: 3 * sr]
        buf = io.BytesIO()
        sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
        out.append(buf.getvalue())
    return out


def _post(url: str, data: bytes) -> float:
    from speech_assets.serving.probe import post_audio

    t0 = time.perf_counter()
    status, body = post_audio(url, data, {}, timeout_s=120)
    if status != 200:
        raise RuntimeError(f"status {status}: {body[:200]!r}")
    return time.perf_counter() - t0


def _load(url: str, clips: list[bytes], total: int, concurrency: int) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def worker():
        for i in counter:
            lat = _post(url, clips[i % len(clips)])
            with lock:
                latencies.append(lat)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    return {"rps": total / wall, "p50": statistics.median(latencies),
            "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--checkpoint")
    args = ap.parse_args()

    import numpy as np
    import soundfile as sf
    import torch

    blob, what = _checkpoint(args)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmpdir:
        tmp = Path(tmpdir)
        clips = _clips(args.clips, tmp)
        waves = [sf.read(io.BytesIO(c), dtype="float32")[0] for c in clips]

        # bare model, one thread, same clips
        from speech_assets.model.inference import Transcriber

        torch.set_num_threads(1)
        tr = Transcriber.from_checkpoint(blob)
        tr.transcribe(waves[0])  # warm-up (LM load)
        t0 = time.perf_counter()
        for i in range(args.requests):
            tr.transcribe(waves[i % len(waves)])
        bare_single = args.requests / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for s in range(0, args.requests, 8):
            tr.transcribe_batch([waves[(s + k) % len(waves)] for k in range(8)], batch_size=8)
        bare_batched = args.requests / (time.perf_counter() - t0)

        # the service
        env = dict(os.environ, BENTOML_HOME=str(tmp / "bentoml"), BENTOML_DO_NOT_TRACK="true",
                   ASR_ROUTING_FILE=str(tmp / "routing.json"))
        env.pop("ASR_API_KEY", None)
        (tmp / "ckpt.pt").write_bytes(blob)
        from speech_assets.serving.deploy import import_model
        from speech_assets.serving.routing import ModelRef, RoutingState, write_state

        tag = import_model(tmp / "ckpt.pt", version="1.0.0", temperature=1.0, lineage={}, bentoml_home=tmp / "bentoml")
        write_state(tmp / "routing.json", RoutingState().with_champion(ModelRef("1.0.0", tag, 1.0)))
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("bentoml")), "serve", "service:ASR", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT / "bentos" / "asr", env=env, stdout=open(tmp / "serve.log", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(120):
                try:
                    with urllib.request.urlopen(url + "/readyz", timeout=2):
                        break
                except OSError:
                    time.sleep(1)
            for c in clips[:4]:
                _post(url, c)  # warm-up: model and LM loaded in the worker
            c1 = _load(url, clips, args.requests, 1)
            c8 = _load(url, clips, args.requests, 8)
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(30)

    print(f"\nmodel: {what}; {len(clips)} distinct 3.0 s clips, {args.requests} requests per measurement\n")
    print("| measure | requests/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    print(f"| bare model, one clip at a time (1 thread) | {bare_single:.1f} | {1000 / bare_single:.0f} | |")
    print(f"| bare model, batches of 8 (1 thread) | {bare_batched:.1f} | | |")
    print(f"| service, 1 client | {c1['rps']:.1f} | {1000 * c1['p50']:.0f} | {1000 * c1['p99']:.0f} |")
    print(f"| service, 8 clients | {c8['rps']:.1f} | {1000 * c8['p50']:.0f} | {1000 * c8['p99']:.0f} |")
    print(f"\nservice / bare at concurrency 1 = {c1['rps'] / bare_single:.2f} (the HTTP, upload decoding and routing overhead)")
    print(f"service at 8 clients / 1 client = {c8['rps'] / c1['rps']:.2f} (adaptive batching and concurrency); "
          f"bare batched / single = {bare_batched / bare_single:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
