"""Where a bento runs.  One interface; the local target is implemented, the others are documented extension points.

    target = LocalTarget(Path("data/serving"))
    status = target.deploy("asr:abc123", routing_state)    # start (or keep) the server, apply the routing
    target.apply_routing(state.with_weight(50))             # canary steps: no restart
    target.stop()

`LocalTarget` runs `bentoml serve <bento>` on 127.0.0.1 as a child process of nobody (its own session, so it
outlives the Dagster run that started it) and keeps its state — bento tag, port, PID, start time — in
`deployment.json` beside the routing file the service reads.  A new *model* is a routing change (hot reload,
zero downtime); a new *bento* (new service code) starts a second server, waits until it is ready, then stops
the first: the address changes, which is why production traffic belongs behind a load balancer (below).

Scaling out (not implemented here, by design: nothing outside 127.0.0.1 is reachable from this project):
* BentoCloud: `bentoml.deployment.create(bento=tag, scaling_min=..., envs=[...])`, then
  `bentoml.deployment.update(...)` per routing change — the routing file becomes a deployment env/config.
* Kubernetes: `bentoml containerize <tag>` builds an OCI image; run it as a Deployment behind a Service, with the
  routing document in a ConfigMap mounted at ASR_ROUTING_FILE (the service re-reads it on change).
A target for either implements the same four methods.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from speech_assets import settings
from speech_assets.serving.routing import RoutingState, read_state, write_state

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3100  # preferred; when taken (say, by the old server during a blue/green switch) any free port


@dataclass
class DeploymentStatus:
    target: str
    bento_tag: str | None
    url: str | None
    pid: int | None
    port: int | None
    ready: bool
    started_at: float | None
    routing_revision: int | None

    def to_dict(self) -> dict:
        return asdict(self)


def _orphaned_workers(routing_file: Path) -> list[int]:
    """BentoML worker processes that read this target's routing file. Called once its server is gone (restart),
    every one of them is a leftover of that server."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"_bentoml_impl.worker.service" not in (proc / "cmdline").read_bytes():
                continue
            env = dict(x.split(b"=", 1) for x in (proc / "environ").read_bytes().split(b"\0") if b"=" in x)
        except (OSError, ValueError):
            continue
        if env.get(b"ASR_ROUTING_FILE") == str(routing_file).encode():
            found.append(int(proc.name))
    return found


class NothingDeployed(RuntimeError):
    """A restart was asked of a target that never served anything."""


class DeployTarget(Protocol):
    name: str

    def deploy(self, bento_tag: str, routing: RoutingState) -> DeploymentStatus: ...

    def apply_routing(self, routing: RoutingState) -> None: ...

    def routing(self) -> RoutingState | None: ...  # what it routes now; None before the first deployment

    def status(self) -> DeploymentStatus: ...

    def stop(self) -> None: ...


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        # as the server binds (uvicorn sets SO_REUSEADDR): a port a killed server left in TIME_WAIT is free to
        # take again, one another process listens on is not
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: dead, though kill(pid, 0) still succeeds
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class LocalTarget:
    name = "local"

    def __init__(self, home: Path, host: str = "127.0.0.1", env: dict | None = None, ready_timeout_s: float = 180.0,
                 port: int = 0):
        self.home = Path(home)
        self.host = host
        self.port = port  # preferred port (a stable address for users); 0, or taken: any free one
        self.env = dict(env or {})
        self.ready_timeout_s = ready_timeout_s
        self.routing_file = self.home / "routing.json"
        self.state_file = self.home / "deployment.json"

    # -- state -----------------------------------------------------------------------------------
    def _read(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    def _write(self, d: dict) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(d, sort_keys=True, indent=1))
        os.replace(tmp, self.state_file)

    @property
    def api_key(self) -> str | None:
        """The key the served process requires (ASR_API_KEY), if any: callers send it with their requests."""
        return self.env.get(settings.ASR_API_KEY) or None

    def routing(self) -> RoutingState | None:
        return read_state(self.routing_file) if self.routing_file.exists() else None

    def _ready(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def status(self) -> DeploymentStatus:
        d = self._read()
        pid = d.get("pid")
        url = d.get("url")
        alive = _alive(pid)
        routing = self.routing()
        return DeploymentStatus(
            self.name, d.get("bento_tag"), url if alive else None, pid if alive else None, d.get("port"),
            bool(alive and url and self._ready(url)), d.get("started_at"), routing.revision if routing else None,
        )

    # -- actions ---------------------------------------------------------------------------------
    def apply_routing(self, routing: RoutingState) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        write_state(self.routing_file, routing)

    def deploy(self, bento_tag: str, routing: RoutingState) -> DeploymentStatus:
        self.apply_routing(routing)  # the routing first: a new server reads it on start
        current = self.status()
        if current.ready and current.bento_tag == bento_tag:
            return current  # same service code: the routing change is enough (hot reload)
        proc, url, port = self._spawn(bento_tag)
        deadline = time.time() + self.ready_timeout_s
        while not self._ready(url):
            if proc.poll() is not None or time.time() > deadline:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                tail = (self.home / f"serve-{port}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"bento {bento_tag} did not become ready on {url}; server log tail:\n{tail}")
            time.sleep(1.0)
        old = self._read()
        self._write({"bento_tag": bento_tag, "url": url, "port": port, "pid": proc.pid, "started_at": time.time(),
                     "previous": {k: old.get(k) for k in ("bento_tag", "url", "pid")} if old else None})
        if old.get("pid") and old.get("pid") != proc.pid:
            self._terminate(old["pid"])  # the new server is ready: retire the old one
        return self.status()

    def _spawn(self, bento_tag: str) -> tuple[subprocess.Popen, str, int]:
        port = self.port if self.port and _port_free(self.host, self.port) else _free_port(self.host)
        url = f"http://{self.host}:{port}"
        log = open(self.home / f"serve-{port}.log", "ab")
        env = settings.child_env({**self.env, "ASR_ROUTING_FILE": str(self.routing_file)})
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("bentoml")), "serve", bento_tag, "--host", self.host, "--port", str(port)],
            cwd=self.home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return proc, url, port

    @property
    def stopped_on_purpose(self) -> bool:
        """`stop` (a person, `make stop`) was the last thing done to the server: recovery must not undo it."""
        return bool(self._read().get("stopped"))

    def restart(self, wait: bool = True) -> DeploymentStatus:
        """Bring a dead or unready server back with what it served: the same bento, the routing document as it is
        (champion, challenger and weight untouched: a canary in flight resumes by its rules), on its old port when
        that port is free. A ready server is left alone. Raises NothingDeployed when nothing was ever deployed."""
        current = self.status()
        if current.ready:
            return current
        d, routing = self._read(), self.routing()
        if not d.get("bento_tag") or routing is None:
            raise NothingDeployed(f"nothing was ever deployed from {self.home}: run the train_and_deploy job (or "
                                  "`dagster job launch -j deploy_models`) first")
        if d.get("pid"):
            self._terminate(d["pid"])  # a live but unready process holds the port and would answer stale
        for pid in _orphaned_workers(self.routing_file):
            # a SIGKILLed server's workers run in their own sessions and outlive it, still holding its socket
            self._terminate(pid, timeout_s=10.0)
        preferred, self.port = self.port, int(d.get("port") or 0) or self.port  # the address users had
        try:
            if wait:
                return self.deploy(d["bento_tag"], routing)
            # a sensor's tick must not block for a server's start: spawn, record it, check readiness next tick
            proc, url, port = self._spawn(d["bento_tag"])
            self._write({"bento_tag": d["bento_tag"], "url": url, "port": port, "pid": proc.pid,
                         "started_at": time.time(), "previous": {k: d.get(k) for k in ("bento_tag", "url", "pid")}})
            return self.status()
        finally:
            self.port = preferred

    def _terminate(self, pid: int, timeout_s: float = 30.0) -> None:
        if not _alive(pid):
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.time() + timeout_s
        while _alive(pid) and time.time() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)

    def stop(self) -> None:
        d = self._read()
        if d.get("pid"):
            self._terminate(d["pid"])
        for pid in _orphaned_workers(self.routing_file):  # left by a server that was SIGKILLed
            self._terminate(pid, timeout_s=10.0)
        if d:
            self._write({**d, "pid": None, "url": None, "stopped": True})


def local_target(home: str | os.PathLike | None = None, bentoml_home: str | os.PathLike | None = None, *,
                 host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, api_key: str | None = None) -> LocalTarget:
    """The local target with the platform's defaults: `<SPEECH_ASSETS_HOME>/serving` and `.../bentoml`."""
    env = {"BENTOML_HOME": str(Path(bentoml_home) if bentoml_home else settings.bentoml_home()),
           "BENTOML_DO_NOT_TRACK": "true"}
    if api_key:
        env[settings.ASR_API_KEY] = api_key
    return LocalTarget(Path(home) if home else settings.serving_home(), host=host, env=env, port=port)


def local_target_from_env() -> LocalTarget:
    """The local target as the platform runs it, outside Dagster (the demo, `serving status`): ASR_API_KEY from the
    environment, read now."""
    return local_target(api_key=settings.api_key())
