"""The BentoML service for real: `bentoml serve` on a free loopback port, real HTTP, real audio.

One server for the module (start-up costs seconds); models go into a private BENTOML_HOME; the routing file is
rewritten while a client loop runs, to prove that canary steps, promotion and rollback fail no request.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _multipart(fields: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b""
    for name, filename, data in fields:
        body += (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


API_KEY = "test-key-not-a-secret"


def post(url: str, fields, headers=None, timeout=60, api_key: str | None = API_KEY) -> tuple[int, object]:
    body, ctype = _multipart(fields)
    auth = {"X-API-Key": api_key} if api_key else {}
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": ctype, **auth, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _env(tmp: Path) -> dict:
    env = dict(os.environ)
    env.update(BENTOML_HOME=str(tmp / "bentoml"), BENTOML_DO_NOT_TRACK="true", ASR_ROUTING_FILE=str(tmp / "routing.json"))
    env.pop("ASR_API_KEY", None)
    return env


def _in_env(env: dict, code: str) -> str:
    """Run model-store code in a fresh interpreter (BentoML reads BENTOML_HOME at import)."""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


IMPORT = """
import torch
from speech_assets.features.logmel import FeatureConfig
from speech_assets.model.architecture import CTCModel, ModelConfig
from speech_assets.model.train import checkpoint_bytes
from speech_assets.serving.model_store import import_registered
torch.manual_seed({seed})
cfg = ModelConfig(conv_channels=4, hidden=16, layers=1)
blob = checkpoint_bytes(CTCModel(cfg).state_dict(), cfg, {{"feature_config": FeatureConfig().to_dict()}})
print(import_registered(blob, version="{version}", temperature=1.0))
"""

ROUTE = """
from speech_assets.serving.routing import ModelRef, RoutingState, read_state, write_state
import os
path = os.environ["ASR_ROUTING_FILE"]
{body}
"""


def set_routing(env, body: str) -> None:
    _in_env(env, ROUTE.format(body=body))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bento")
    env = _env(tmp)
    tag = _in_env(env, IMPORT.format(seed=0, version="1.0.0"))
    assert tag == "asr:1.0.0"
    set_routing(env, f'write_state(path, RoutingState().with_champion(ModelRef("1.0.0", "{tag}", 1.0)))')
    port = _free_port()
    env["ASR_MAX_UPLOAD_BYTES"] = str(2_000_000)
    env["ASR_API_KEY"] = API_KEY
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("bentoml")), "serve", "service:ASR", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT / "bentos" / "asr", env=env, stdout=open(tmp / "serve.log", "wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(1)
        assert proc.poll() is None, (tmp / "serve.log").read_text()[-3000:]
    else:
        pytest.fail("the BentoML server did not become ready: " + (tmp / "serve.log").read_text()[-3000:])
    yield {"url": url, "env": env, "tmp": tmp}
    os.killpg(proc.pid, 15)
    proc.wait(30)


def _wav(seconds=1.0, rate=16000, channels=1, fmt="WAV") -> bytes:
    rng = np.random.default_rng(0)
    x = 0.1 * rng.normal(size=int(seconds * rate))
    buf = io.BytesIO()
    sf.write(buf, np.stack([x] * channels, 1) if channels > 1 else x, rate, format=fmt)
    return buf.getvalue()


def test_transcribe_returns_every_field(server):
    status, body = post(server["url"] + "/transcribe", [("audio", "a.wav", _wav(1.2))])
    assert status == 200, body
    assert set(body) >= {"text", "confidence", "words", "model_version", "duration_s", "processing_s"}
    assert body["model_version"] == "1.0.0" and 0 <= body["confidence"] <= 1
    assert abs(body["duration_s"] - 1.2) < 0.01 and body["processing_s"] > 0
    # any common rate and channel count: resampled and downmixed on the way in
    status, body = post(server["url"] + "/transcribe", [("audio", "b.flac", _wav(1.0, 44100, 2, "FLAC"))])
    assert status == 200 and abs(body["duration_s"] - 1.0) < 0.01


def test_api_key_is_required_when_configured(server):
    for key in (None, "wrong"):
        status, body = post(server["url"] + "/transcribe", [("audio", "a.wav", _wav(0.5))], api_key=key)
        assert status == 401 and "authoriz" in body.lower()
    status, _ = post(server["url"] + "/transcribe", [("audio", "a.wav", _wav(0.5))],
                     api_key=None, headers={"Authorization": f"Bearer {API_KEY}"})
    assert status == 200
    with urllib.request.urlopen(server["url"] + "/readyz", timeout=5) as r:  # health stays open for probes
        assert r.status == 200


def test_transcribe_batch_keeps_order(server):
    files = [("audios", f"{i}.wav", _wav(0.5 + 0.5 * i)) for i in range(3)]
    status, body = post(server["url"] + "/transcribe_batch", files)
    assert status == 200, body
    assert [round(r["duration_s"], 1) for r in body] == [0.5, 1.0, 1.5]


@pytest.mark.parametrize(
    "data, status, code",
    [
        (b"", 400, "empty_file"),
        (b"%PDF-1.4 this is not audio\n" * 20, 400, "not_audio"),
        (None, 400, "truncated"),  # filled in below: a WAV cut in half
        (b"\0" * 2_100_000, 413, "too_large"),
    ],
)
def test_bad_uploads_get_4xx_with_a_reason(server, data, status, code):
    if data is None:
        good = _wav(1.0)
        data = good[: len(good) // 2]
    got, body = post(server["url"] + "/transcribe", [("audio", "bad.wav", data)])
    assert got == status, body
    assert code in body


def test_canary_split_hot_swap_and_no_failed_request_during_rollout(server):
    env, url = server["env"], server["url"]
    tag = _in_env(env, IMPORT.format(seed=1, version="1.1.0"))
    failures, versions, stop = [], [], threading.Event()
    wav = _wav(0.8)

    def client_loop(worker: int) -> None:
        i = 0
        while not stop.is_set():
            status, body = post(url + "/transcribe", [("audio", "x.wav", wav)], headers={"X-Client-Id": f"c{worker}-{i}"})
            if status != 200:
                failures.append((status, body))
            else:
                versions.append(body["model_version"])
            i += 1

    threads = [threading.Thread(target=client_loop, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        set_routing(env, f'write_state(path, read_state(path).with_challenger(ModelRef("1.1.0", "{tag}", 1.0), 50))')
        time.sleep(3.0)
        mixed = set(versions[-40:])
        set_routing(env, "write_state(path, read_state(path).promoted())")
        time.sleep(2.0)
        n_before = len(versions)
        time.sleep(2.0)
        after = versions[n_before:]
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert failures == [], failures[:3]
    assert len(versions) > 20
    assert mixed == {"1.0.0", "1.1.0"}  # the 50 % canary really split traffic
    assert after and set(after) == {"1.1.0"}  # promoted: the challenger answers everything
    # probes can pin a side; requests are counted per version in /metrics
    status, body = post(url + "/transcribe", [("audio", "x.wav", wav)], headers={"X-ASR-Route": "champion"})
    assert status == 200 and body["model_version"] == "1.1.0"
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        metrics = r.read().decode()
    assert 'asr_requests_total{model_version="1.1.0",outcome="ok",traffic="live"}' in metrics
    assert 'asr_requests_total{model_version="1.1.0",outcome="ok",traffic="pinned"}' in metrics
    assert 'asr_confidence_count{model_version="1.0.0",traffic="live"}' in metrics


def test_probe_and_scrape_read_the_live_service(server):
    from speech_assets.serving.probe import run_probe, scrape

    utterances = [(_wav(0.7), "hello world"), (_wav(0.9), "turn on the lights")]
    result, version = run_probe(server["url"], "champion", utterances, api_key=API_KEY)
    assert result.utterances == 2 and result.failed_requests == 0 and 0.0 <= result.wer <= 1.0 + 1e-9
    assert version is not None
    pinned, live = scrape(server["url"], traffic="pinned"), scrape(server["url"])
    assert pinned[version].requests >= 2  # probes are counted apart from live traffic
    live_before = live.get(version)
    run_probe(server["url"], "champion", utterances, api_key=API_KEY)
    assert scrape(server["url"]).get(version) == live_before  # ... and never inflate it
    # a refused request is counted as failed, not silently dropped
    bad, _ = run_probe(server["url"], "champion", [(b"not audio", "x")], api_key=API_KEY)
    assert bad.failed_requests == 1 and bad.utterances == 0


BROKEN = """
from speech_assets.serving.model_store import import_registered
print(import_registered(b"not a checkpoint", version="{version}", temperature=1.0))
"""


def test_a_broken_challenger_fails_no_user_request_and_is_counted(server):
    """A challenger that cannot load: users get the champion's answer, the failure is counted against the
    challenger (live traffic), and a probe pinned to it fails - the evidence the canary controller rolls back on."""
    from speech_assets.serving.probe import run_probe, scrape

    env, url = server["env"], server["url"]
    tag = _in_env(env, BROKEN.format(version="9.9.9"))
    champion = _in_env(env, "from speech_assets.serving.routing import read_state; import os; "
                            "print(read_state(os.environ['ASR_ROUTING_FILE']).champion.version)")
    set_routing(env, f'write_state(path, read_state(path).with_challenger(ModelRef("9.9.9", "{tag}", 1.0), 100))')
    try:
        time.sleep(1.5)
        answers = [post(url + "/transcribe", [("audio", "x.wav", _wav(0.5))], headers={"X-Client-Id": f"u{i}"})
                   for i in range(6)]
        assert all(code == 200 for code, _ in answers), answers
        assert {body["model_version"] for _, body in answers} == {champion}
        assert scrape(url)["9.9.9"].errors >= 6
        probe, _ = run_probe(url, "challenger", [(_wav(0.5), "x")], api_key=API_KEY, expect_version="9.9.9")
        assert probe.failed_requests == 1
    finally:
        set_routing(env, "write_state(path, read_state(path).rolled_back())")


def test_simulated_users_count_what_came_back(server):
    from speech_assets.serving.traffic import Traffic

    with Traffic(server["url"], [_wav(0.4), b"not audio"], clients=2, api_key=API_KEY) as traffic:
        time.sleep(1.5)
    assert traffic.sent >= 4 and sum(traffic.by_version.values()) + len(traffic.failed) == traffic.sent
    assert traffic.failed and all(status == 400 for status, _ in traffic.failed)  # the bad file, every time
    assert set(traffic.by_version) == {read_version(server)}


def read_version(server) -> str:
    return _in_env(server["env"], "from speech_assets.serving.routing import read_state; import os; "
                                  "print(read_state(os.environ['ASR_ROUTING_FILE']).champion.version)")
