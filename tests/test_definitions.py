"""The code location loads, and every asset spec is pinned by a snapshot so graph changes show in review diffs.

Regenerate after an intended change: UPDATE_SNAPSHOTS=1 python -m pytest tests/test_definitions.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from speech_assets.definitions import defs as load_defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_specs.json"


def _automation(cond) -> str | None:
    if cond is None:
        return None
    return cond.get_label() or type(cond).__name__


def graph_snapshot(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        checks = sorted([ck.name, graph.get_check_spec(ck).blocking] for ck in node.check_keys)
        assets[key.to_user_string()] = {
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "group": node.group_name,
            "tags": dict(sorted(node.tags.items())),
            "owners": sorted(node.owners),
            "kinds": sorted(node.kinds),
            "code_version": node.code_version,
            "partitions": type(node.partitions_def).__name__ if node.partitions_def else None,
            "automation": _automation(node.automation_condition),
            "checks": checks,
        }
    sensors = {
        s.name: {
            "targets": sorted(k.to_user_string() for k in (s.asset_selection.resolve(graph) if s.asset_selection else [])),
            "default_status": s.default_status.value,
            "minimum_interval_seconds": s.minimum_interval_seconds,
        }
        for s in sorted(defs.sensors or [], key=lambda s: s.name)
    }
    return {"assets": assets, "sensors": sensors, "resources": sorted(defs.resources or {})}


def test_asset_graph_matches_snapshot():
    current = graph_snapshot(load_defs())
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert current == expected, "asset graph changed: review, then UPDATE_SNAPSHOTS=1 to accept"


def test_graph_has_the_intake_assets_gates_and_sensor():
    defs = load_defs()
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} >= {"raw_audio", "audio_manifest"}
    assert dg.AssetKey("raw_audio") in graph.get(dg.AssetKey("audio_manifest")).parent_keys
    checks = {(ck.asset_key.to_user_string(), ck.name) for ck in graph.asset_check_keys}
    assert ("raw_audio", "batch_data_contract") in checks
    sensors = {s.name: s for s in defs.sensors}
    assert sensors["intake_sensor"].default_status == dg.DefaultSensorStatus.RUNNING
    assert sensors["automation_sensor"].default_status == dg.DefaultSensorStatus.RUNNING


def test_every_run_config_takes_its_defaults_from_its_domain_dataclass():
    """Each knob is defined once: a run config's defaults are its domain dataclass's, and `to_domain()` builds it."""
    from speech_assets.audio.validate import ValidationPolicy
    from speech_assets.defs.evaluation.assets import EvalConfig
    from speech_assets.defs.features.assets import FeatureAssetConfig
    from speech_assets.defs.intake.assets import RawAudioConfig
    from speech_assets.defs.monitoring.assets import DriftAssetConfig
    from speech_assets.defs.monitoring.resources import RetrainSettings
    from speech_assets.defs.operations.assets import DashboardConfig
    from speech_assets.defs.operations.resources import AlertSinkResource
    from speech_assets.defs.registry.assets import RegistrationConfig
    from speech_assets.defs.training.assets import TrainingConfig
    from speech_assets.evaluation.run import EvaluationSettings
    from speech_assets.features.logmel import FeatureConfig
    from speech_assets.governance.release import ReleaseRequest
    from speech_assets.monitoring.drift import DriftConfig
    from speech_assets.monitoring.retrain import RetrainPolicy
    from speech_assets.operations.alerts import SLO
    from speech_assets.operations.dashboard import DashboardLimits
    from speech_assets.training.run import TrainingSettings

    pairs = [(TrainingConfig, TrainingSettings), (EvalConfig, EvaluationSettings), (FeatureAssetConfig, FeatureConfig),
             (DriftAssetConfig, DriftConfig), (RawAudioConfig, ValidationPolicy), (DashboardConfig, DashboardLimits),
             (RegistrationConfig, ReleaseRequest)]
    for config, domain in pairs:
        assert config().to_domain() == domain(), config.__name__
    assert RetrainSettings().policy() == RetrainPolicy()
    assert AlertSinkResource().slo() == SLO()
