"""Evidence the canary controller collects from the live service: a metrics scrape and a labelled probe set.

The probe sends known utterances through the running service pinned to one side (`X-ASR-Route`), so the
challenger's WER is measured on the same audio as the champion's, through the same HTTP path users take.
"""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence

from speech_assets.serving.canary import ProbeResult
from speech_assets.serving.metrics import VersionCounters, parse


def scrape(url: str, timeout_s: float = 10.0, traffic: str | None = "live") -> dict[str, VersionCounters]:
    """The service's per-version counters for one traffic class (live users by default)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=timeout_s) as r:
        return parse(r.read().decode(), traffic)


def post_audio(url: str, data: bytes, headers: dict, timeout_s: float) -> tuple[int, bytes]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"probe.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{url}/transcribe", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **headers})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError as exc:
        return 0, str(exc).encode()


def run_probe(
    url: str, side: str, utterances: Sequence[tuple[bytes, str]], *, api_key: str | None = None,
    timeout_s: float = 30.0, expect_version: str | None = None,
) -> tuple[ProbeResult, str | None]:
    """(WER of `side` on the labelled utterances, the model version that answered); failed requests counted,
    and so is an answer from another version than `expect_version` (the routing changed under the probe)."""
    import json

    import jiwer

    headers = {"X-ASR-Route": side, "X-Client-Id": "canary-probe"}
    if api_key:
        headers["X-API-Key"] = api_key
    refs, hyps, failed, versions = [], [], 0, set()
    for wav, text in utterances:
        status, body = post_audio(url, wav, headers, timeout_s)
        if status != 200:
            failed += 1
            continue
        out = json.loads(body)
        if expect_version is not None and out.get("model_version") != expect_version:
            failed += 1
            continue
        refs.append(text)
        hyps.append(out["text"])
        versions.add(out["model_version"])
    wer = float(jiwer.wer(refs, hyps)) if refs else 1.0
    version = versions.pop() if len(versions) == 1 else None
    return ProbeResult(wer=wer, utterances=len(refs), failed_requests=failed), version
