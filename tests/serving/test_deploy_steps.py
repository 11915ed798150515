"""Rollout planning, model import and bento build as the deployment assets will run them."""

from __future__ import annotations

from speech_assets.serving.deploy import build_bento, import_model, plan_rollout
from speech_assets.serving.routing import ModelRef, RoutingState

A, B, C = (ModelRef(v, f"asr:{v}") for v in ("1.0.0", "1.1.0", "1.2.0"))


def test_plan_rollout_initial_then_canary_then_unchanged():
    first = plan_rollout(None, A, 10)
    assert first.action == "initial" and first.routing.champion == A and first.routing.challenger is None
    canary = plan_rollout(first.routing, B, 10)
    assert canary.action == "canary" and canary.routing.challenger == B and canary.routing.weight == 10
    assert plan_rollout(canary.routing, B, 10).action == "unchanged"
    assert plan_rollout(canary.routing, A, 10).action == "unchanged"
    newer = plan_rollout(canary.routing.with_weight(50), C, 10)
    assert newer.routing.challenger == C and newer.routing.weight == 10  # a newer model supersedes the canary


def test_import_and_build_into_a_private_bentoml_home(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"weights")
    tag = import_model(ckpt, version="1.0.0", temperature=1.1, lineage={"data_commit": "abc"},
                       bentoml_home=tmp_path / "bentoml")
    assert tag == "asr:1.0.0"
    assert (tmp_path / "bentoml" / "models" / "asr").is_dir()
    info = build_bento(tmp_path / "bentoml")
    assert info.tag.startswith("asr:") and info.path.is_dir() and info.size_bytes > 10_000
    assert (info.path / "src" / "bentos" / "asr" / "service.py").exists()
