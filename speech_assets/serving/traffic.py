"""Simulated users of the live service: a few client loops sending held-out audio, counting what came back.

    with Traffic(url, wavs, clients=2) as traffic:
        ...                         # a canary is stepped up and promoted meanwhile
    traffic.sent, traffic.failed, traffic.by_version

Each request carries a fresh `X-Client-Id`, so the service's hash routing spreads them over champion and
challenger by the canary weight, like distinct users.  Failures are kept (status and body) for the report.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from collections.abc import Sequence

from speech_assets.serving.probe import post_audio


class Traffic:
    def __init__(self, url: str, wavs: Sequence[bytes], clients: int = 2, api_key: str | None = None,
                 pause_s: float = 0.0, timeout_s: float = 60.0):
        if not wavs:
            raise ValueError("traffic needs at least one audio file to send")
        self.url, self.wavs, self.clients, self.pause_s, self.timeout_s = url, list(wavs), clients, pause_s, timeout_s
        self.headers = {"X-API-Key": api_key} if api_key else {}
        self.sent = 0
        self.failed: list[tuple[int, str]] = []
        self.by_version: Counter = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _loop(self, worker: int) -> None:
        for i in itertools.count():
            if self._stop.is_set():
                return
            wav = self.wavs[(worker + i * self.clients) % len(self.wavs)]
            status, body = post_audio(self.url, wav, {**self.headers, "X-Client-Id": f"user-{worker}-{i}"},
                                      self.timeout_s)
            with self._lock:
                self.sent += 1
                if status == 200:
                    self.by_version[json.loads(body).get("model_version", "?")] += 1
                else:
                    self.failed.append((status, body[:200].decode(errors="replace")))
            if self.pause_s:
                self._stop.wait(self.pause_s)

    def start(self) -> "Traffic":
        self._threads = [threading.Thread(target=self._loop, args=(w,), daemon=True) for w in range(self.clients)]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout_s + 5)

    def __enter__(self) -> "Traffic":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
