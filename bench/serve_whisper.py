"""The BentoML service with a Whisper model against bare faster-whisper on the same audio, same run.

    python bench/serve_whisper.py [--quick] [--requests 64] [--rounds 4] [--checkpoint PATH] [--simulated N]
                                  [--bare-threads 2]

Model: `WhisperBackend().pretrained_checkpoint("tiny.en")` (zero-shot, greedy, int8), or `--checkpoint PATH` (any
Whisper artifact, e.g. a fine-tuned one).  It is imported into a temporary BentoML home
(`serving.deploy.import_model` -> `model_store.import_registered`, tag asr:1.0.0) and made champion in a temporary
routing file, as `bench/serve_throughput.py` does for the CTC model; the service loads it through
`load_recognizer` like any backend.  The service's Whisper unpack cache is a fresh temporary folder, so its
start-up includes extracting the artifact, as a new deployment's does.

Clips: the 10 recordings under /usr/share/pocketsphinx/test/data/{cards,librivox}/ (1.1-7.1 s of real speech; the
cards ones are 8 kHz and get resampled), or `--simulated N` clips of simulated speech cut/padded to 3.0 s
(serve_throughput's clip maker).  Every measurement sends the same sequence: request i is clip i mod n.  The
bare measurements get the waveform that the service's upload decoder (`serving.upload.read_upload`) makes of the
same bytes.  The service gets the original file bytes and decodes them itself, so that cost is in its number.

Order: the server is started first, alone (`bentoml serve service:ASR` of bentos/asr on 127.0.0.1, a free port),
and warmed up (not counted): 12 sequential requests, enough to get past the 11 calls BentoML's adaptive batcher
trains itself on (their latencies are printed: on the 10th and 11th call it holds a lone request while it waits
for a 2nd and a 3rd), then a burst of 8 concurrent ones.  Then the bare models are loaded here and the five
measurements run in `--rounds` interleaved rounds (4 by default, 1 with --quick; each round does every
measurement on its share of the requests), so load from other processes on a shared machine spreads over all
of them alike.  Nothing else of ours runs during a measurement.
- bare faster-whisper: `WhisperModel(<the artifact's CTranslate2 folder>, compute_type="int8",
  cpu_threads=--bare-threads)` and `.transcribe(clip, beam_size=1, language="en", condition_on_previous_text=False)`
  with its segments consumed, one clip at a time: requests/s, p50/p99 of the per-clip time.  This is the
  reference for the ratios.  Otherwise faster-whisper's defaults apply: timestamp tokens, temperature fallback,
  no word timings.
- the platform recognizer in this process, `WhisperBackend().load(ckpt, cpu_threads=--bare-threads)`:
  `transcribe` one clip at a time, and `transcribe_batch` 8 clips at a time (latency columns = per batch).  This
  is what the service's model worker runs on each batch, word timings included; bare faster-whisper computes none.
- the service: `POST /transcribe` from 1 and from 8 concurrent clients (urllib, one thread per client).
  requests/s = answered (200) requests / the measurement's wall time.  p50/p99 = latency of the answered
  requests (with 64 requests p99 is the slowest one).  Failed = any non-200 or transport error.  Failures are
  counted, never retried, and never counted as throughput.

Printed: the table; the ratios service / bare faster-whisper at concurrency 1 and at concurrency 8 (target at 8:
>= 0.8 with no failed request, "batching must pay for the HTTP layer", PASS/FAIL); the same against the platform
recognizer; the CTranslate2 threads on each side.  The service's `WhisperRecognizer(cpu_threads=None)` takes
min(4, os.cpu_count()); the model-worker process is found, and its OS threads, OMP_NUM_THREADS and CPU affinity
are read from /proc.  Also: load times, whether the service's transcripts equal the platform recognizer's, the
1-minute load average after each round, and a count of HTTP statuses and ERROR/exception lines in the server log.
A copy of that log is kept under /tmp.
"""


from __future__ import annotations

import argparse
import glob
import io
import json
import math
import os
import shutil
import socket
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
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RECORDINGS = "/usr/share/pocketsphinx/test/data/{cards,librivox}/*.wav"
QUICK_REQUESTS = 8
WARMUP_SEQUENTIAL = 12  # past the batcher's 11 training calls (see the warm-up in main)
DEFAULT_REQUESTS = 64


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _load_avg() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# -- inputs ---------------------------------------------------------------------------------------------------
def _checkpoint(args) -> tuple[bytes, str]:
    if args.checkpoint:
        return Path(args.checkpoint).read_bytes(), f"checkpoint {args.checkpoint}"
    from speech_assets.model.whisper.backend import WhisperBackend

    return WhisperBackend().pretrained_checkpoint("tiny.en"), 'WhisperBackend().pretrained_checkpoint("tiny.en")'


def _clips(args, tmp: Path) -> tuple[list[bytes], list[str], str]:
    """(file bytes, names, description): the bytes the service is sent."""
    if not args.simulated:
        files = sorted(glob.glob(RECORDINGS.replace("{cards,librivox}", "cards"))
                       + glob.glob(RECORDINGS.replace("{cards,librivox}", "librivox")))
        if files:
            return ([Path(f).read_bytes() for f in files], [Path(f).name for f in files],
                    f"{len(files)} pocketsphinx test recordings (cards + librivox)")
        say(f"no recordings at {RECORDINGS}: using 10 simulated clips")
        args.simulated = 10
    import importlib.util

    spec = importlib.util.spec_from_file_location("serve_throughput", ROOT / "bench" / "serve_throughput.py")
    st = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(st)  # reuses its clip maker (simulated speech cut/padded to exactly 3.0 s)
    clips = st._clips(args.simulated, tmp)
    return clips, [f"sim{i:02d}" for i in range(len(clips))], f"{len(clips)} simulated-speech clips of 3.0 s"


# -- measurement helpers --------------------------------------------------------------------------------------
def _pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


class Meter:
    """One measurement, summed over the rounds: requests, wall time, latencies, failures, load averages."""

    def __init__(self, label: str) -> None:
        self.label, self.n, self.wall, self.lat, self.errors, self.loads = label, 0, 0.0, [], [], []

    def summary(self) -> dict:
        """requests/s counts answered requests only: a fast 503 is not throughput."""
        lat = sorted(self.lat)
        ok = self.n - len(self.errors)
        return {"n": self.n, "wall": self.wall, "rps": ok / self.wall if self.wall > 0 else float("nan"),
                "p50": statistics.median(lat) if lat else float("nan"), "p99": _pct(lat, 0.99) if lat else float("nan"),
                "failed": len(self.errors), "errors": self.errors, "load": ", ".join(self.loads)}


def _sequential(m: Meter, indices: range, fn, unit: str = "requests") -> None:
    """fn(i) for each index, one after the other; each call's time is a latency."""
    say(f"{m.label}: {len(indices)} {unit} (load avg {_load_avg()})")
    step = max(1, len(indices) // 4)
    t0 = time.perf_counter()
    for k, i in enumerate(indices):
        t = time.perf_counter()
        fn(i)
        m.lat.append(time.perf_counter() - t)
        if (k + 1) % step == 0 and k + 1 < len(indices):
            say(f"  {m.label}: {k + 1}/{len(indices)} in {time.perf_counter() - t0:.1f} s")
    wall = time.perf_counter() - t0
    m.wall += wall
    m.loads.append(_load_avg().split("/")[0])
    say(f"  {m.label}: {len(indices) / wall:.2f} {unit}/s in {wall:.1f} s (load avg {_load_avg()})")


def _post(url: str, data: bytes, timeout_s: float = 120.0) -> tuple[int, bytes, float]:
    from speech_assets.serving.probe import post_audio

    t0 = time.perf_counter()
    status, body = post_audio(url, data, {}, timeout_s=timeout_s)
    return status, body, time.perf_counter() - t0


def _load(m: Meter, url: str, clips: list[bytes], indices: range, concurrency: int, texts: dict) -> None:
    """Requests `indices` (request i sends clip i mod n) from `concurrency` clients.  Failures are counted,
    never retried."""
    say(f"{m.label}: {len(indices)} requests from {concurrency} client(s) (load avg {_load_avg()})")
    lock = threading.Lock()
    counter = iter(indices)
    step = max(1, len(indices) // 4)
    done = failed = 0
    t0 = time.perf_counter()

    def worker() -> None:
        nonlocal done, failed
        for i in counter:
            status, body, lat = _post(url, clips[i % len(clips)])
            with lock:
                done += 1
                if status == 200:
                    m.lat.append(lat)
                    try:
                        texts.setdefault(i % len(clips), set()).add(json.loads(body)["text"])
                    except (ValueError, KeyError):
                        failed += 1
                        m.errors.append(f"200 with an unreadable body: {body[:120]!r}")
                else:
                    failed += 1
                    m.errors.append(f"{status}: {body[:200]!r}")
                if done % step == 0 and done < len(indices):
                    say(f"  {m.label}: {done}/{len(indices)} in {time.perf_counter() - t0:.1f} s, {failed} failed")

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    m.wall += wall
    m.n += len(indices)
    m.loads.append(_load_avg().split("/")[0])
    say(f"  {m.label}: {(len(indices) - failed) / wall:.2f} answered req/s, {failed} failed, in {wall:.1f} s "
        f"(load avg {_load_avg()})")


# -- the server -----------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
            ppid = int(text.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.split("/")[2]))
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _model_worker(server_pid: int) -> dict | None:
    """The server process that has CTranslate2 loaded: its pid, threads, OMP_NUM_THREADS and CPU affinity."""
    for pid in [server_pid, *_descendants(server_pid)]:
        try:
            if "ctranslate2" not in Path(f"/proc/{pid}/maps").read_text():
                continue
            status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                          if ":\t" in line)
            env = dict(kv.split("=", 1) for kv in Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
                       .split("\0") if "=" in kv)
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            return {"pid": pid, "threads": int(status.get("Threads", "0").strip()),
                    "cpus": status.get("Cpus_allowed_list", "?").strip(),
                    "omp": env.get("OMP_NUM_THREADS", "unset"), "cmd": cmd[:160]}
        except (OSError, ValueError):
            continue
    return None


def _log_findings(log: Path) -> list[str]:
    """What the server log says went wrong: HTTP statuses per path, ERROR/WARNING lines and the exceptions they
    end in, each with its count (a traceback's last line names the exception)."""
    import collections
    import re

    statuses: collections.Counter = collections.Counter()
    problems: collections.Counter = collections.Counter()
    for line in log.read_text(errors="replace").splitlines():
        m = re.search(r"path=(/[\w/]+),.*\(status=(\d+)", line)
        if m:
            statuses[(m.group(1), m.group(2))] += 1
        stripped = re.sub(r"\(trace=[^)]*\)", "", line).strip()
        stripped = re.sub(r"^\S+ \[(ERROR|WARNING)\] ", r"[\1] ", stripped)
        if re.search(r"\[(ERROR|WARNING|CRITICAL)\]", line) or re.match(r"^[\w.]+(Error|Exception|Unavailable)\b", stripped) \
                or "Killed" in line or "Timeout" in stripped.split(":")[0]:
            problems[stripped[:240]] += 1
    out = ["HTTP statuses: " + ", ".join(f"{path} {code} x{k}" for (path, code), k in sorted(statuses.items()))]
    out += [f"x{k}  {line}" for line, k in problems.most_common()]
    return out


def _norm(text: str) -> str:
    from speech_assets.text.normalize import normalize_for_scoring

    return normalize_for_scoring(text)


def _start_server(tmp: Path, blob: bytes) -> tuple[subprocess.Popen, str, Path, dict]:
    """`bentoml serve service:ASR` of bentos/asr on a free 127.0.0.1 port, routed to `blob` as asr:1.0.0."""
    (tmp / "ckpt.whisper").write_bytes(blob)
    from speech_assets.serving.deploy import import_model
    from speech_assets.serving.routing import ModelRef, RoutingState, write_state

    t = time.perf_counter()
    tag = import_model(tmp / "ckpt.whisper", version="1.0.0", temperature=1.0, lineage={},
                       bentoml_home=tmp / "bentoml")
    import_s = time.perf_counter() - t
    write_state(tmp / "routing.json", RoutingState().with_champion(ModelRef("1.0.0", tag, 1.0)))
    env = dict(os.environ, BENTOML_HOME=str(tmp / "bentoml"), BENTOML_DO_NOT_TRACK="true",
               ASR_ROUTING_FILE=str(tmp / "routing.json"), HF_HUB_OFFLINE="1",
               SPEECH_ASSETS_WHISPER_CACHE=str(tmp / "service-cache"))
    env.pop("ASR_API_KEY", None)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp / "serve.log"
    say(f"starting bentoml serve on {url} (model {tag}, imported into the BentoML store in {import_s:.1f} s)")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("bentoml")), "serve", "service:ASR", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=ROOT / "bentos" / "asr", env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, url, log_path, {"import_s": import_s, "started": time.perf_counter()}


def _wait_ready(proc: subprocess.Popen, url: str, log_path: Path, started: float, limit_s: float = 300) -> float:
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"bentoml serve exited ({proc.returncode}):\n" + log_path.read_text(errors="replace")[-3000:])
        if time.perf_counter() - started > limit_s:
            raise RuntimeError(f"the service was not ready within {limit_s:.0f} s:\n"
                               + log_path.read_text(errors="replace")[-3000:])
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=None,
                    help=f"requests per measurement (default {DEFAULT_REQUESTS}, about 5 minutes in all on 2 cores)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="split each measurement into this many interleaved rounds (default 4; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_REQUESTS} requests per measurement")
    ap.add_argument("--checkpoint", help="a Whisper artifact (default: zero-shot tiny.en)")
    ap.add_argument("--simulated", type=int, default=0, help="use N simulated 3.0 s clips instead of the recordings")
    ap.add_argument("--bare-threads", type=int, default=2, help="CTranslate2 cpu_threads of the bare measurements")
    args = ap.parse_args()
    rounds = max(1, args.rounds or (1 if args.quick else 4))
    n = args.requests or (QUICK_REQUESTS if args.quick else DEFAULT_REQUESTS)
    per_round = max(8, 8 * math.ceil(n / rounds / 8))  # whole batches of 8: every measurement sends the same clips
    n = per_round * rounds
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="bench-serve-whisper-") as tmpdir:
        tmp = Path(tmpdir)
        say("building the checkpoint")
        t = time.perf_counter()
        blob, what = _checkpoint(args)
        ckpt_s = time.perf_counter() - t
        from speech_assets.model.backend import backend_name_of

        if backend_name_of(blob) != "whisper":
            raise SystemExit(f"{what} is not a Whisper artifact")
        from speech_assets.model.whisper.artifact import cached_ct2_dir, read_card
        from speech_assets.model.whisper.backend import WhisperBackend
        from speech_assets.serving.upload import read_upload

        card, _ = read_card(blob)
        say(f"model: {what}, {len(blob) / 1e6:.1f} MB, quantization {card.extra.get('quantization')}, "
            f"beam {card.extra.get('beam_size')} (built in {ckpt_s:.1f} s)")
        clips, names, clip_what = _clips(args, tmp)
        waves = [read_upload(c, max_bytes=10 << 20, max_duration_s=30).samples for c in clips]
        durations = [len(w) / 16000 for w in waves]
        say(f"clips: {clip_what}, {min(durations):.2f}-{max(durations):.2f} s, mean {statistics.mean(durations):.2f} s")

        # the server first (started alone: its start-up is timed without our models loading beside it)
        proc, url, log_path, srv = _start_server(tmp, blob)
        service_texts: dict[int, set] = {}
        warm_failed: list[str] = []
        worker = None
        meters = {k: Meter(label) for k, label in (
            ("fw", "bare faster-whisper, one clip at a time"),
            ("rec1", "platform recognizer, transcribe one clip at a time"),
            ("rec8", "platform recognizer, transcribe_batch of 8"),
            ("c1", "service, 1 client"), ("c8", "service, 8 clients"))}
        try:
            ready_s = _wait_ready(proc, url, log_path, srv["started"])
            say(f"service ready after {ready_s:.1f} s")
            # BentoML's adaptive batcher trains itself on the first 11 batched calls, and on the 10th and 11th it
            # holds a lone request waiting for a 2nd and a 3rd (about 3 and 4 times its per-clip estimate): the
            # sequential warm-up runs past that, and its latencies are reported
            warm_lat = []
            for k in range(WARMUP_SEQUENTIAL):
                status, body, lat = _post(url, clips[k % len(clips)])
                warm_lat.append(lat)
                if status != 200:
                    warm_failed.append(f"warm-up {status}: {body[:200]!r}")
            first_s = warm_lat[0]
            say(f"first request {first_s:.2f} s; sequential warm-up latencies (s): "
                + " ".join(f"{x:.1f}" for x in warm_lat))

            def burst_one(k: int) -> None:
                st, bd, _ = _post(url, clips[k % len(clips)])
                if st != 200:
                    warm_failed.append(f"warm-up burst {st}: {bd[:200]!r}")

            t = time.perf_counter()
            burst = [threading.Thread(target=burst_one, args=(k,)) for k in range(8)]
            for th in burst:
                th.start()
            for th in burst:
                th.join()
            burst_s = time.perf_counter() - t
            say(f"service warm-up: {WARMUP_SEQUENTIAL} sequential requests and a burst of 8 concurrent ones "
                f"(the burst {burst_s:.1f} s), "
                f"{len(warm_failed)} failed")
            worker = _model_worker(proc.pid)

            # the bare models, in this process
            from faster_whisper import WhisperModel

            ct2_dir = cached_ct2_dir(blob, root=tmp / "bare-cache")
            t = time.perf_counter()
            fw = WhisperModel(str(ct2_dir), compute_type="int8", cpu_threads=args.bare_threads)
            fw_load_s = time.perf_counter() - t
            t = time.perf_counter()
            rec = WhisperBackend().load(blob, cpu_threads=args.bare_threads)
            rec_load_s = time.perf_counter() - t
            fw_texts: dict[int, str] = {}
            rec_texts: dict[int, str] = {}

            def fw_one(i: int) -> None:
                segments, _ = fw.transcribe(waves[i % len(waves)], beam_size=1, language="en",
                                            condition_on_previous_text=False)
                fw_texts[i % len(waves)] = "".join(s.text for s in segments)

            def rec_one(i: int) -> None:
                rec_texts[i % len(waves)] = rec.transcribe(waves[i % len(waves)]).text

            def rec_batch(b: int) -> None:
                rec.transcribe_batch([waves[(8 * b + k) % len(waves)] for k in range(8)])

            fw_one(0), fw_one(1), rec_batch(0)  # warm-up, not measured

            for r in range(rounds):
                idx = range(r * per_round, (r + 1) * per_round)
                say(f"--- round {r + 1}/{rounds}: requests {idx.start}-{idx.stop - 1}")
                _sequential(meters["fw"], idx, fw_one)
                meters["fw"].n += len(idx)
                _sequential(meters["rec1"], idx, rec_one)
                meters["rec1"].n += len(idx)
                _sequential(meters["rec8"], range(idx.start // 8, idx.stop // 8), rec_batch, unit="batches")
                meters["rec8"].n += len(idx)
                _load(meters["c1"], url, clips, idx, 1, service_texts)
                _load(meters["c8"], url, clips, idx, 8, service_texts)
            del fw, rec
        finally:
            try:
                os.killpg(proc.pid, 15)
                proc.wait(30)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
            kept = Path(tempfile.gettempdir()) / f"serve_whisper-{time.strftime('%Y%m%d-%H%M%S')}.log"
            shutil.copy(log_path, kept)
            findings = _log_findings(log_path)

    # ---- report -----------------------------------------------------------------------------------------------
    import collections

    total_s = time.perf_counter() - started
    res = {k: m.summary() for k, m in meters.items()}
    service_threads = min(4, os.cpu_count() or 1)  # WhisperRecognizer(cpu_threads=None), same machine
    print(f"\nmodel: {what}; {clip_what} ({min(durations):.1f}-{max(durations):.1f} s); {n} requests per "
          f"measurement in {rounds} interleaved round(s) of {per_round}, request i = clip i mod {len(clips)}\n")
    print("| measure | requests/s | p50 ms | p99 ms | failed | load avg (1 min) after each round |")
    print("|---|---:|---:|---:|---:|---|")

    def row(name: str, m: dict, lat: bool = True) -> None:
        p = f"{1000 * m['p50']:.0f} | {1000 * m['p99']:.0f}" if lat else " | "
        print(f"| {name} | {m['rps']:.2f} | {p} | {m['failed']} | {m['load']} |")

    row(f"bare faster-whisper, one clip at a time ({args.bare_threads} threads)", res["fw"])
    row(f"platform recognizer, one clip at a time ({args.bare_threads} threads)", res["rec1"])
    row(f"platform recognizer, transcribe_batch of 8 ({args.bare_threads} threads; latency = per batch)", res["rec8"])
    row(f"service, 1 client ({service_threads} CT2 threads)", res["c1"])
    row(f"service, 8 clients ({service_threads} CT2 threads)", res["c8"])

    fw_, c1, c8, rec1, rec8 = res["fw"], res["c1"], res["c8"], res["rec1"], res["rec8"]
    r1, r8 = c1["rps"] / fw_["rps"], c8["rps"] / fw_["rps"]
    print(f"\nservice / bare faster-whisper at concurrency 1 = {r1:.2f}")
    verdict = "PASS" if r8 >= 0.8 and c8["failed"] == 0 else "FAIL"
    if c8["failed"]:
        verdict += f", {c8['failed']} of {n} requests failed"
    print(f"service at 8 clients / bare faster-whisper = {r8:.2f}  (target >= 0.8 with no failed request: {verdict})")
    print(f"service at 1 client / platform recognizer one at a time = {c1['rps'] / rec1['rps']:.2f} "
          "(the HTTP + upload decoding + routing overhead alone)")
    print(f"service at 8 clients / platform transcribe_batch of 8 = {c8['rps'] / rec8['rps']:.2f}; "
          f"service 8 clients / 1 client = {c8['rps'] / c1['rps']:.2f}")
    print(f"platform recognizer one at a time / bare faster-whisper = {rec1['rps'] / fw_['rps']:.2f}; "
          f"platform batch of 8 / platform one at a time = {rec8['rps'] / rec1['rps']:.2f} "
          "(what batching buys on this CPU)")
    for key in ("c1", "c8"):
        if res[key]["failed"]:
            reasons = collections.Counter(res[key]["errors"]).most_common(3)
            print(f"  {meters[key].label}: {res[key]['failed']} failed: " + "; ".join(f"x{k} {e}" for e, k in reasons))
    if c1["failed"] or c8["failed"]:
        print("  (requests/s counts answered requests only, over the whole measurement's wall time)")

    print(f"\nthreads: bare faster-whisper and the platform recognizer here run CTranslate2 with "
          f"cpu_threads={args.bare_threads}; the service builds WhisperRecognizer(cpu_threads=None) = "
          f"min(4, os.cpu_count()={os.cpu_count()}) = {service_threads} intra-op threads "
          "(bentos/asr/service.py's torch.set_num_threads(1) does not reach CTranslate2); its API-server process "
          f"shares the same {os.cpu_count()} cores.")
    if worker:
        print(f"  model worker pid {worker['pid']}: {worker['threads']} OS threads, OMP_NUM_THREADS={worker['omp']}, "
              f"CPUs allowed {worker['cpus']}")
    else:
        print("  (the model worker process with CTranslate2 loaded was not found under the server's process tree)")
    if service_threads != args.bare_threads:
        print(f"  UNFAIR: the service's CTranslate2 gets {service_threads} threads, the bare run {args.bare_threads}; "
              f"rerun with --bare-threads {service_threads} for a like-for-like comparison")
    else:
        print("  same CTranslate2 thread count on both sides: like-for-like on threads")

    print(f"\nloads: checkpoint built in {ckpt_s:.1f} s; BentoML import {srv['import_s']:.1f} s; service ready "
          f"{ready_s:.1f} s after `bentoml serve`, first request {first_s:.2f} s, warm-up burst of 8 {burst_s:.1f} s; "
          f"sequential warm-up latencies (s): {' '.join(f'{x:.1f}' for x in warm_lat)}; "
          f"here faster-whisper loaded in {fw_load_s:.2f} s, the platform recognizer in {rec_load_s:.2f} s")
    same = sum(1 for k, txts in service_texts.items() if txts == {rec_texts.get(k)})
    varied = {names[k]: sorted(t) for k, t in service_texts.items() if len(t) > 1}
    print(f"transcripts: the service's equal the platform recognizer's (one at a time) on {same}/{len(service_texts)} "
          "clips sent"
          + (f"; differing across requests (batch composition): {varied}" if varied else ""))
    fw_same = sum(1 for k, t in fw_texts.items() if _norm(t) == rec_texts.get(k))
    print(f"  bare faster-whisper's (normalised) equal the platform recognizer's on {fw_same}/{len(fw_texts)} clips")
    for k in sorted(rec_texts):
        if _norm(fw_texts.get(k, "")) != rec_texts[k] or service_texts.get(k) != {rec_texts[k]}:
            print(f"  {names[k]}: fw {_norm(fw_texts.get(k, ''))!r} | platform {rec_texts[k]!r} | "
                  f"service {sorted(service_texts.get(k, []))}")
    if warm_failed:
        print(f"warm-up failures: {collections.Counter(warm_failed).most_common()}")
    print(f"\nserver log ({kept}):")
    for line in findings[:25]:
        print(f"  {line}")
    print(f"\nwall time: {total_s:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
