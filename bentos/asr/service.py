"""The ASR inference service: registered models behind HTTP, with an in-service canary split.

    POST /transcribe        multipart field `audio` (WAV/FLAC/OGG/MP3, any rate 8-96 kHz, mono or stereo)
    POST /transcribe_batch  multipart field `audios`, several files
    GET  /healthz /livez /readyz /metrics   (BentoML; /metrics adds asr_* per model version)

Two BentoML services: `ASR` (HTTP: limits, API key, routing, metrics) depends on `ASRModel`, whose
batchable model calls get BentoML's adaptive batching.  Which model answers comes from the routing file
(`ASR_ROUTING_FILE`, written by the platform, see speech_assets.serving.routing): a stable hash of the
request key (`X-Client-Id` header, else the caller's address) against the challenger's weight.  The file is
re-read when it changes and models are loaded from BentoML's model store before the switch, so stepping the
weight, promoting or rolling back never restarts the server and never fails a request.

Imports only BentoML and the serving/inference code of `speech_assets` (no Dagster).  Configuration from
the environment: ASR_ROUTING_FILE, ASR_MAX_UPLOAD_BYTES (10 MB), ASR_MAX_DURATION_S (30), ASR_API_KEY
(unset = open), ASR_REQUEST_TIMEOUT_S (30).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from http import HTTPStatus
from pathlib import Path

import bentoml
import numpy as np
from bentoml.exceptions import BentoMLException

from speech_assets.serving.routing import CHALLENGER, CHAMPION, RoutingState, read_state
from speech_assets.serving.upload import UploadError, read_upload

ROUTING_FILE = os.environ.get("ASR_ROUTING_FILE", "")
MAX_UPLOAD_BYTES = int(os.environ.get("ASR_MAX_UPLOAD_BYTES", str(10 * 1024 * 1024)))
MAX_DURATION_S = float(os.environ.get("ASR_MAX_DURATION_S", "30"))
REQUEST_TIMEOUT_S = float(os.environ.get("ASR_REQUEST_TIMEOUT_S", "30"))
# Fault injection for chaos tests and game days (off unless set): a JSON file {"<model version>": {"delay_s": s}}
# adds that much latency to every answer of that version, re-read when it changes. It slows answers, never fails
# them: it is how a test makes a promoted model degrade after its canary (the bake guard must roll it back).
FAULT_FILE = os.environ.get("ASR_FAULT_FILE", "")
SAMPLE_RATE = 16000
# BentoML sheds a batched call (503 "process is overloaded") when it predicts the batch would take longer than
# this; at 300 ms it shed 1 request of 638 during a canary switch (measured), so the budget is on the request
# timeout's scale and the latency objective is the canary controller's to judge.
# BentoML sheds a queued call (503) once its predicted latency passes this: 20 s, under the request timeout. A
# Whisper clip costs ~0.7 s on 2 CPU cores, so 8 queued clips already predict ~6 s (5 s shed a third of the
# requests at 8 clients, bench/serve_whisper.py); the CTC model's ~50 ms never comes near it.
BATCH_MAX_LATENCY_MS = int(os.environ.get("ASR_BATCH_MAX_LATENCY_MS", "20000"))
logger = logging.getLogger("bentos.asr")

# `traffic`: "live" for user requests, "pinned" for requests that chose their side with X-ASR-Route (the
# canary controller's probes): the controller judges live traffic without counting its own probes.
REQUESTS = bentoml.metrics.Counter(
    name="asr_requests", documentation="Transcription requests by model version, outcome and traffic class",
    labelnames=["model_version", "outcome", "traffic"],
)
LATENCY = bentoml.metrics.Histogram(
    name="asr_request_duration_seconds", documentation="Request latency by model version",
    labelnames=["model_version", "traffic"],
    buckets=(0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0),
)
CONFIDENCE = bentoml.metrics.Histogram(
    name="asr_confidence", documentation="Calibrated utterance confidence by model version",
    labelnames=["model_version", "traffic"], buckets=tuple(round(0.1 * i, 1) for i in range(1, 11)),
)


class ClientError(BentoMLException):
    """A 4xx with a message the caller can act on."""


FILE_FIELDS = ("audio", "audios")  # the multipart fields the APIs below take, always as file uploads
MAX_BATCH_FILES = 32
MAX_REQUEST_BYTES = MAX_BATCH_FILES * MAX_UPLOAD_BYTES + (1 << 20)  # a full batch of the largest files, + framing


class MultipartGuard:
    """Answer 400, not 500, to a POST whose multipart body is broken or sends text where a file belongs.

    Both were found by schemathesis (tests/faults/test_service_api_fuzz.py):
    * BentoML 1.4 parses the form with Starlette, which raises its own HTTPException(400) on broken framing (a bad
      header line, a missing boundary); BentoML's endpoint wrapper expects only pydantic and BentoML errors, so the
      client saw a 500;
    * a *text* value in a file field is taken by BentoML for a URL and downloaded by the server (a failed download
      was a 500; a successful one would have made the service fetch whatever address a caller names).
    This ASGI middleware reads the body, runs the same Starlette parser with the same limits over it, refuses a
    broken one or a text value in a file field with the reason, and otherwise replays the body to BentoML unchanged.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        from starlette.datastructures import Headers

        headers = Headers(scope=scope)
        if not headers.get("content-type", "").lower().startswith("multipart/form-data"):
            return await self.app(scope, receive, send)
        from starlette.responses import JSONResponse

        chunks, more, size = [], True, 0
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nobody to answer
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > MAX_REQUEST_BYTES:  # held in memory here, so bounded: a full batch of the largest files
                return await JSONResponse(
                    {"error": f"too_large: the request exceeds {MAX_REQUEST_BYTES} bytes"}, status_code=413
                )(scope, receive, send)
        body = b"".join(chunks)
        problem = await _multipart_problem(headers, body)
        if problem is not None:
            return await JSONResponse({"error": f"bad_multipart: {problem}"}, status_code=400)(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _multipart_problem(headers, body: bytes) -> str | None:
    """Why Starlette's multipart parser refuses `body` (None when it parses)."""
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def stream():
        yield body

    try:
        form = await MultiPartParser(headers, stream()).parse()
    except MultiPartException as exc:
        return exc.message
    except Exception as exc:  # python-multipart's own errors, a malformed Content-Type: still the client's body
        return f"{type(exc).__name__}: {exc}"[:200]
    try:
        for key, value in form.multi_items():
            if key in FILE_FIELDS and isinstance(value, str):
                return f"field '{key}' must be a file upload (filename and bytes), not a text value"
        return None
    finally:
        await form.close()


def _client_error(status: int, code: str, message: str) -> ClientError:
    return ClientError(f"{code}: {message}", error_code=HTTPStatus(status))


class _Routing:
    """The current routing state, re-read when the file changes (mtime + size), and the loaded models."""

    def __init__(self, path: str, load_models: bool = True):
        self.path = path
        self.load_models = load_models  # the HTTP process only routes; the model process loads and runs
        self.lock = threading.Lock()
        self.state: RoutingState | None = None
        self.models: dict[str, object] = {}  # version -> the port's Recognizer (any backend)
        self.broken: dict[str, str] = {}  # version -> why it could not be loaded
        self.pair: tuple[RoutingState | None, dict] = (None, {})  # (state, its loaded models), swapped at once
        self._stamp: tuple | None = None

    def loaded(self) -> tuple[RoutingState, dict]:
        """The state and its loaded models (the model process's request path: never blocks on a load)."""
        state, models = self.pair
        if state is None or state.champion is None:
            raise _client_error(503, "not_deployed", "no model is deployed yet")
        return state, models

    def watch(self, interval_s: float = 0.25) -> None:
        """Reload in the background: a new model is loaded beside the serving ones, then switched to, so no
        request waits for a load (a load takes seconds: the word LM is read and compiled)."""

        def loop() -> None:
            while True:
                try:
                    self.current()
                except Exception:  # nothing deployed yet, or a bad document: keep what serves, try again
                    pass
                time.sleep(interval_s)

        threading.Thread(target=loop, name="routing-watcher", daemon=True).start()

    def current(self) -> RoutingState:
        if not self.path:
            raise _client_error(503, "not_deployed", "no routing file configured (ASR_ROUTING_FILE)")
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self.state is None:
                raise _client_error(503, "not_deployed", "no model is deployed yet") from None
            return self.state  # keep serving what we have
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            with self.lock:
                if stamp != self._stamp:
                    state = read_state(self.path)
                    # load every model the new state needs *before* switching to it, into a new dict: a request
                    # holding the previous (state, models) pair keeps a consistent pair to its end
                    models = dict(self.models)
                    for ref in (state.champion, state.challenger) if self.load_models else ():
                        if ref is not None and ref.version not in models and ref.version not in self.broken:
                            try:
                                models[ref.version] = _load_transcriber(ref.tag, ref.temperature)
                            except Exception as exc:  # a model that cannot load must not take the service down
                                self.broken[ref.version] = f"{type(exc).__name__}: {exc}"
                                logger.error("model %s (%s) failed to load: %s", ref.version, ref.tag, exc)
                    if (self.load_models and state.champion is not None and state.champion.version in self.broken
                            and self.state is not None):
                        # keep serving the previous state rather than switch to a champion that cannot answer
                        logger.error("routing revision %s not applied: its champion %s does not load",
                                     state.revision, state.champion.version)
                        self._stamp = stamp
                        return self.state
                    keep = {r.version for r in (state.champion, state.challenger) if r is not None}
                    # one assignment publishes the pair (readers take `self.pair`, never the halves apart)
                    self.pair = (state, {v: m for v, m in models.items() if v in keep})
                    self.state, self.models, self._stamp = state, self.pair[1], stamp
        if self.state is None or self.state.champion is None:
            raise _client_error(503, "not_deployed", "no model is deployed yet")
        return self.state


class _Faults:
    """The injected faults of `FAULT_FILE`, by model version (none when the variable is unset)."""

    def __init__(self, path: str):
        self.path, self._stamp, self.faults = path, None, {}

    def delay_s(self, version: str) -> float:
        if not self.path:
            return 0.0
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                import json

                self.faults, self._stamp = json.loads(Path(self.path).read_text() or "{}"), stamp
        except (FileNotFoundError, ValueError):
            self.faults, self._stamp = {}, None
        return float((self.faults.get(version) or {}).get("delay_s", 0.0))


class ModelUnavailable(RuntimeError):
    """The routed model could not be loaded (its reason is in the server log and in this message)."""


def _load_transcriber(tag: str, temperature: float):
    """The model of a BentoML tag, through the model-backend port: its checkpoint says which backend reads it
    (CTC or Whisper), so a canary can route a CTC champion against a Whisper challenger."""
    import torch

    from speech_assets.model.backend import load_recognizer
    from speech_assets.serving.model_store import load_model

    torch.set_num_threads(1)  # one request's forward pass per worker thread; parallelism comes from batching
    blob, info = load_model(tag)
    return load_recognizer(blob, temperature=float(info.get("temperature", temperature)))


@bentoml.service(name="asr_model", workers=1, traffic={"timeout": REQUEST_TIMEOUT_S})
class ASRModel:
    """Holds the routed models; its batchable calls are where adaptive batching happens."""

    def __init__(self) -> None:
        self.routing = _Routing(ROUTING_FILE)
        try:
            self.routing.current()  # load the routed models now, not on the first user's request
        except ClientError:
            pass  # nothing deployed yet: models load when a routing document appears
        self.routing.watch()

    def _run(self, side: str, waves: list[np.ndarray]) -> list[dict]:
        # The loaded pair: while the watcher loads a new challenger, its requests are answered by the champion
        # (this state has no challenger yet); none waits for the load.
        state, models = self.routing.loaded()
        ref = state.model_for(side) if side == CHAMPION or state.challenger is not None else state.champion
        model = models.get(ref.version)
        if model is None:
            why = self.routing.broken.get(ref.version, "not loaded")
            raise ModelUnavailable(f"model {ref.version} is unavailable: {why}")
        outs = model.transcribe_batch([np.asarray(w, dtype=np.float32) for w in waves])
        return [
            {
                "text": o.text,
                "confidence": round(float(o.confidence), 4),
                "words": [{"word": w, "start_s": s, "end_s": e, "confidence": round(float(c), 4)} for w, s, e, c in o.words],
                "model_version": ref.version,
            }
            for o in outs
        ]

    @bentoml.api(batchable=True, max_batch_size=16, max_latency_ms=BATCH_MAX_LATENCY_MS)
    def infer_champion(self, waves: list[np.ndarray]) -> list[dict]:
        return self._run(CHAMPION, waves)

    @bentoml.api(batchable=True, max_batch_size=16, max_latency_ms=BATCH_MAX_LATENCY_MS)
    def infer_challenger(self, waves: list[np.ndarray]) -> list[dict]:
        return self._run(CHALLENGER, waves)


async def _with_retry(call, arg, attempts: int = 3):
    """The call to the model service, retried when the connection (not the model) failed.

    BentoML's inter-service client reuses keep-alive connections; one the server has just closed fails with
    "Server disconnected" although nothing was processed wrongly (measured under a 3-client loop).  Inference
    is idempotent, so such a call is simply made again.
    """
    import asyncio

    import aiohttp
    from bentoml.exceptions import ServiceUnavailable

    for attempt in range(attempts):
        try:
            return await call(arg)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError,
                ServiceUnavailable, RuntimeError) as exc:
            # ServiceUnavailable: the model service shed the call unrun (overloaded), so it is simply retried.
            # RuntimeError("Connection closed."): aiohttp's, when the kept-alive connection closed while the answer
            # was being read (1 request in 884 under a 4-client loop, tests/faults); any other RuntimeError is not
            # a transport failure and goes up as it is.
            transport = not isinstance(exc, RuntimeError) or str(exc).startswith("Connection closed")
            if not transport or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.1 * (attempt + 1))


@bentoml.service(name="asr", traffic={"timeout": REQUEST_TIMEOUT_S, "max_concurrency": 64})
class ASR:
    model = bentoml.depends(ASRModel)

    def __init__(self) -> None:
        self.routing = _Routing(ROUTING_FILE, load_models=False)
        self.api_key = os.environ.get("ASR_API_KEY") or None
        self.faults = _Faults(FAULT_FILE)

    def _authorize(self, ctx: bentoml.Context) -> None:
        if self.api_key is None:
            return
        headers = ctx.request.headers
        given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
        if given != self.api_key:
            raise _client_error(401, "unauthorized", "missing or wrong API key (X-API-Key header)")

    def _route(self, ctx: bentoml.Context) -> tuple[str, RoutingState, bool]:
        """(side, routing state, pinned): which model answers, and whether the caller chose it."""
        state = self.routing.current()
        key = ctx.request.headers.get("x-client-id") or (ctx.request.client.host if ctx.request.client else "")
        forced = ctx.request.headers.get("x-asr-route")  # probes pin a side to measure it
        if forced in (CHAMPION, CHALLENGER):
            return (forced if forced == CHAMPION or state.challenger is not None else CHAMPION), state, True
        return state.route(key), state, False

    async def _infer(self, side: str, samples: np.ndarray) -> dict:
        call = self.model.to_async.infer_challenger if side == CHALLENGER else self.model.to_async.infer_champion
        (out,) = await _with_retry(call, [samples])
        return out

    async def _one(self, data: bytes, side: str, state: RoutingState, pinned: bool) -> dict:
        started = time.perf_counter()
        traffic = "pinned" if pinned else "live"
        version = state.model_for(side).version
        try:
            audio = read_upload(data, max_bytes=MAX_UPLOAD_BYTES, max_duration_s=MAX_DURATION_S)
        except UploadError as exc:
            REQUESTS.labels(model_version="none", outcome="client_error", traffic=traffic).inc()
            raise _client_error(exc.status, exc.code, exc.message) from None
        try:
            out = await self._infer(side, audio.samples)
        except Exception:
            REQUESTS.labels(model_version=version, outcome="server_error", traffic=traffic).inc()
            if side != CHALLENGER or pinned:
                raise
            # A failing challenger costs its canary the promotion (the error is counted against it), not the
            # user the answer: the champion serves the request instead.
            logger.exception("challenger %s failed a request; the champion answers it", version)
            side, version = CHAMPION, state.champion.version
            try:
                out = await self._infer(CHAMPION, audio.samples)
            except Exception:
                REQUESTS.labels(model_version=version, outcome="server_error", traffic=traffic).inc()
                raise
        version = out["model_version"]
        delay = self.faults.delay_s(version)
        if delay > 0:  # an injected fault (ASR_FAULT_FILE): a slow answer, still an answer
            import asyncio

            await asyncio.sleep(delay)
        elapsed = time.perf_counter() - started
        REQUESTS.labels(model_version=version, outcome="ok", traffic=traffic).inc()
        LATENCY.labels(model_version=version, traffic=traffic).observe(elapsed)
        CONFIDENCE.labels(model_version=version, traffic=traffic).observe(out["confidence"])
        return {**out, "duration_s": round(audio.duration_s, 3), "processing_s": round(elapsed, 4)}

    @bentoml.api(route="/transcribe")
    async def transcribe(self, audio: Path, ctx: bentoml.Context) -> dict:
        """Transcribe one audio file (multipart field `audio`)."""
        self._authorize(ctx)
        side, state, pinned = self._route(ctx)
        return await self._one(Path(audio).read_bytes(), side, state, pinned)

    @bentoml.api(route="/transcribe_batch")
    async def transcribe_batch(self, audios: list[Path], ctx: bentoml.Context) -> list[dict]:
        """Transcribe several files (multipart field `audios`, repeated); one result per file, in order."""
        import asyncio

        self._authorize(ctx)
        if not audios:
            raise _client_error(400, "empty_batch", "send at least one file in the 'audios' field")
        if len(audios) > MAX_BATCH_FILES:
            raise _client_error(413, "batch_too_large",
                                f"{len(audios)} files; the limit is {MAX_BATCH_FILES} per request")
        side, state, pinned = self._route(ctx)
        return list(await asyncio.gather(*(self._one(Path(a).read_bytes(), side, state, pinned) for a in audios)))


ASR.add_asgi_middleware(MultipartGuard)
