"""The local deploy target: build a bento, serve it on loopback, apply routing without restart, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from speech_assets.serving.routing import ModelRef, RoutingState
from speech_assets.serving.targets import LocalTarget, _alive
from tests.serving.test_service import IMPORT, _in_env, _wav, post

ROOT = Path(__file__).resolve().parents[2]


def build_bento(bentoml_home: Path) -> tuple[dict, str, str]:
    """A model 1.0.0 imported into `bentoml_home` and the service built around it: (env, model tag, bento tag)."""
    env = dict(os.environ, BENTOML_HOME=str(bentoml_home), BENTOML_DO_NOT_TRACK="true")
    env.pop("ASR_API_KEY", None)
    tag = _in_env(env, IMPORT.format(seed=0, version="1.0.0"))
    out = subprocess.run(
        [str(Path(sys.executable).with_name("bentoml")), "build", "-f", "bentos/asr/bentofile.yaml", ".", "-o", "tag"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return env, tag, out.stdout.strip().splitlines()[-1].removeprefix("__tag__:")


def test_local_target_deploys_keeps_and_stops(tmp_path):
    env, tag, bento = build_bento(tmp_path / "bentoml")
    target = LocalTarget(tmp_path / "serving", env={"BENTOML_HOME": env["BENTOML_HOME"], "BENTOML_DO_NOT_TRACK": "true"})
    routing = RoutingState().with_champion(ModelRef("1.0.0", tag, 1.0))
    status = target.deploy(bento, routing)
    try:
        assert status.ready and status.url.startswith("http://127.0.0.1:") and _alive(status.pid)
        assert status.bento_tag == bento and status.routing_revision == routing.revision
        code, body = post(status.url + "/transcribe", [("audio", "a.wav", _wav(0.6))], api_key=None)
        assert code == 200 and body["model_version"] == "1.0.0"
        # the same bento again: no new process, only the routing document changes
        again = target.deploy(bento, routing.with_weight(0) if routing.challenger else routing)
        assert again.pid == status.pid

        # SIGKILL the server: `serving start` brings it back with the bento and routing it had, on its port
        os.killpg(status.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(status.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not target.status().ready

        cli_env = dict(env, SPEECH_ASSETS_HOME=str(tmp_path))  # local_target_from_env: <home>/serving, <home>/bentoml
        start = subprocess.run([sys.executable, "-m", "speech_assets", "serving", "start"], cwd=ROOT, env=cli_env,
                               capture_output=True, text=True, timeout=300)
        assert start.returncode == 0, start.stdout + start.stderr[-2000:]
        back = target.status()
        assert back.ready and back.pid != status.pid and back.url == status.url  # the same address for users
        assert back.bento_tag == bento and back.routing_revision == routing.revision
        assert f"routing revision {routing.revision}" in start.stdout
        code, body = post(back.url + "/transcribe", [("audio", "a.wav", _wav(0.6))], api_key=None)
        assert code == 200 and body["model_version"] == "1.0.0"
        assert target.restart().pid == back.pid  # ready: left alone
        status = back
    finally:
        target.stop()
    assert not _alive(status.pid)
    assert not target.status().ready


def test_serving_start_with_nothing_deployed_says_what_to_run(tmp_path):
    from speech_assets.serving.targets import NothingDeployed

    with pytest.raises(NothingDeployed, match="train_and_deploy"):
        LocalTarget(tmp_path / "serving").restart()
    out = subprocess.run([sys.executable, "-m", "speech_assets", "serving", "start"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=dict(os.environ, SPEECH_ASSETS_HOME=str(tmp_path)))
    assert out.returncode == 1 and "nothing was ever deployed" in out.stderr and "train_and_deploy" in out.stderr
