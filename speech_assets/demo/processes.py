"""The processes the demo starts and stops: the Dagster daemon (its sensors drive both acts), the Dagster UI it
leaves running at the end, and `stop_all` (`make stop`), which stops those and the local ASR service.

Each process runs in its own session, so it outlives the demo and is stopped as a group; the PIDs the demo
leaves running are kept in `<DAGSTER_HOME>/demo_processes.json` for `stop_all`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from speech_assets import settings
from speech_assets.demo.progress import log
from speech_assets.settings import PROJECT_ROOT

WORKSPACE = PROJECT_ROOT / "workspace.yaml"


def prepare_dagster_home() -> Path:
    """The Dagster instance's folder, created with the project's `dagster.yaml` when it has none.

    DAGSTER_HOME is set in this process's environment when unset: Dagster reads it itself, here and in the
    daemon and UI started from here.
    """
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home()))
    home = settings.dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def daemon_log() -> Path:
    # not under DAGSTER_HOME/logs: Dagster manages that folder itself
    return settings.dagster_home() / "daemon.log"


def _tool(name: str) -> str:
    """A console script of this virtual environment (dagster, dagster-daemon, dagster-webserver)."""
    return str(Path(sys.executable).with_name(name))


def start_daemon() -> subprocess.Popen:
    path = daemon_log()
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f"starting dagster-daemon (log: {path})")
    return subprocess.Popen(
        [_tool("dagster-daemon"), "run", "-w", str(WORKSPACE)],
        cwd=PROJECT_ROOT,
        stdout=open(path, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def launch_job(job: str, run_id: str, run_config: dict) -> None:
    """Queue `job` exactly as an operator would (`dagster job launch`); the daemon runs it."""
    subprocess.run(
        [_tool("dagster"), "job", "launch", "-w", str(WORKSPACE),
         "-j", job, "--run-id", run_id, "--config-json", json.dumps(run_config)],
        cwd=PROJECT_ROOT, check=True, capture_output=True,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _pid_file() -> Path:
    return settings.dagster_home() / "demo_processes.json"


def leave_running(daemon: subprocess.Popen) -> None:
    """Keep the daemon, start the Dagster UI (both in their own sessions): the user inspects what happened."""
    log_path = settings.dagster_home() / "webserver.log"
    web = subprocess.Popen(
        [_tool("dagster-webserver"), "-w", str(WORKSPACE), "-h", "127.0.0.1", "-p", "3000"],
        cwd=PROJECT_ROOT, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    _pid_file().write_text(json.dumps({"daemon": daemon.pid, "webserver": web.pid}))
    print(f"""
Left running: the Dagster UI at http://127.0.0.1:3000 (pid {web.pid}), dagster-daemon (pid {daemon.pid}: the
sensors keep watching), and the ASR service. Stop them all with:  make stop""")


def stop_service() -> None:
    """Stop the local ASR service (the routing and the models stay)."""
    from speech_assets.serving.targets import local_target_from_env

    local_target_from_env().stop()


def stop_all() -> int:
    """`make stop`: the UI and the daemon the demo left running, and the local service."""
    if _pid_file().exists():
        for name, pid in json.loads(_pid_file().read_text()).items():
            try:
                os.killpg(pid, signal.SIGTERM)
                print(f"stopped {name} (pid {pid})")
            except ProcessLookupError:
                pass
        _pid_file().unlink()
    stop_service()
    print("stopped the ASR service")
    return 0
