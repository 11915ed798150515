"""Rollout planning, model import and bento build as the deployment assets will run them."""

from __future__ import annotations

from speech_assets.serving.deploy import build_bento, import_model, plan_rollout
from speech_assets.serving.routing import ModelRef, RoutingState

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

A, B, C = (ModelRef(v, f"asr:{v}") for v in ("1.0.0", "1.1.0", "1.2.0"))


def test_plan_rollout_follows_the_registry():
    first = plan_rollout(None, A, None, 10)
    assert first.action == "initial" and first.routing.champion == A and first.routing.challenger is None
    assert plan_rollout(first.routing, A, None, 10).action == "unchanged"
    canary = plan_rollout(first.routing, A, B, 10)
    assert canary.action == "canary" and canary.routing.challenger == B and canary.routing.weight == 10
    again = plan_rollout(canary.routing.with_weight(50), A, B, 10)
    assert again.action == "unchanged" and again.routing.weight == 50  # a canary in flight keeps its step
    newer = plan_rollout(canary.routing.with_weight(50), A, C, 10)
    assert newer.routing.challenger == C and newer.routing.weight == 10  # a newer model supersedes the canary
    withdrawn = plan_rollout(newer.routing, A, None, 10)
    assert withdrawn.action == "withdrawn" and withdrawn.routing.challenger is None
    # production changed in the registry (a promotion or a rollback made there): it takes over at once
    swapped = plan_rollout(newer.routing, C, None, 10)
    assert swapped.action == "champion" and swapped.routing.champion == C and swapped.routing.challenger is None
    # first deployment with a canary already registered
    both = plan_rollout(None, A, B, 10)
    assert both.routing.champion == A and both.routing.challenger == B and both.routing.weight == 10


def test_service_digest_tracks_the_service_code_only(tmp_path):
    import shutil

    from speech_assets.serving.deploy import BENTOFILE, service_source_digest

    root = tmp_path / "repo"
    for rel in ("bentos", "speech_assets"):
        shutil.copytree(ROOT / rel, root / rel, ignore=shutil.ignore_patterns("__pycache__"))
    before = service_source_digest(root)
    assert before == service_source_digest(ROOT)
    (root / "speech_assets" / "defs" / "x.py").write_text("# orchestration code is not in the bento\n")
    assert service_source_digest(root) == before
    (root / "bentos" / "asr" / "service.py").write_text((root / "bentos/asr/service.py").read_text() + "\n# x\n")
    assert service_source_digest(root) != before
    assert (root / BENTOFILE).exists()


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
