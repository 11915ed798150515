"""The local deploy target: build a bento, serve it on loopback, apply routing without restart, stop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from speech_assets.serving.routing import ModelRef, RoutingState
from speech_assets.serving.targets import LocalTarget, _alive
from tests.serving.test_service import IMPORT, _in_env, _wav, post

ROOT = Path(__file__).resolve().parents[2]


def test_local_target_deploys_keeps_and_stops(tmp_path):
    env = dict(os.environ, BENTOML_HOME=str(tmp_path / "bentoml"), BENTOML_DO_NOT_TRACK="true")
    env.pop("ASR_API_KEY", None)
    tag = _in_env(env, IMPORT.format(seed=0, version="1.0.0"))
    out = subprocess.run(
        [str(Path(sys.executable).with_name("bentoml")), "build", "-f", "bentos/asr/bentofile.yaml", ".", "-o", "tag"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    bento = out.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
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
    finally:
        target.stop()
    assert not _alive(status.pid)
    assert not target.status().ready
