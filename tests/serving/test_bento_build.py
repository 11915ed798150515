"""`bentoml build` works offline and packs the serving code without the orchestration layer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bento_builds_offline_with_serving_code_only(tmp_path):
    env = dict(os.environ, BENTOML_HOME=str(tmp_path / "bentoml"), BENTOML_DO_NOT_TRACK="true")
    out = subprocess.run(
        [str(Path(sys.executable).with_name("bentoml")), "build", "-f", "bentos/asr/bentofile.yaml", "."],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    (bento,) = (tmp_path / "bentoml" / "bentos" / "asr").glob("*/")
    src = bento / "src"
    assert (src / "bentos" / "asr" / "service.py").exists()
    assert (src / "speech_assets" / "model" / "inference.py").exists()
    assert (src / "speech_assets" / "serving" / "routing.py").exists()
    assert not (src / "speech_assets" / "defs").exists()  # no Dagster in the serving bundle
    for py in src.rglob("*.py"):
        assert "import dagster" not in py.read_text(), py
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    assert "flashlight-text" in requirements and "torch==2.14.1" in requirements
