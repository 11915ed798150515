"""The intake as Dagster runs it: the sensor's partitions and run keys, the assets' metadata, the blocking gate."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from speech_assets.defs.intake.assets import audio_manifest, raw_audio
from speech_assets.defs.intake.checks import manifest_speaker_disjoint
from speech_assets.defs.intake.partitions import intake_batches
from speech_assets.defs.intake.resources import LandingZoneResource
from speech_assets.defs.intake.sensors import intake_run_key, intake_sensor
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.intake.landing import scan_landing
from tests.intake.conftest import REPO, good_rows, make_batch


@pytest.fixture
def resources(tmp_path, landing):
    return {
        "store": VersionStoreResource(local_root=str(tmp_path / "store"), repository=REPO),
        "landing": LandingZoneResource(path=str(landing)),
    }


def _evaluate(instance, resources, cursor=None):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"landing": resources["landing"]})
    return intake_sensor(ctx)


def test_sensor_adds_partitions_and_dedups_by_content_hash(landing, resources):
    with dg.instance_for_test() as instance:
        make_batch(landing, "day-01", good_rows(1))
        make_batch(landing, "day-02", good_rows(1, seed=1), ready=False)  # still being copied

        first = _evaluate(instance, resources)
        assert [r.partition_key for r in first.run_requests] == ["day-01"]
        (b,) = scan_landing(landing)
        assert first.run_requests[0].run_key == intake_run_key("day-01", b.content_hash())
        assert first.dynamic_partitions_requests[0].partition_keys == ["day-01"]
        instance.add_dynamic_partitions(intake_batches.name, ["day-01"])

        # Nothing changed: no new work.
        again = _evaluate(instance, resources, first.cursor)
        assert again.run_requests == [] and again.skip_reason

        # Touched but identical content: still no new work.
        (landing / "day-01" / "manifest.jsonl").touch()
        touched = _evaluate(instance, resources, again.cursor)
        assert touched.run_requests == []

        # The second batch becomes ready and the first one changes: two requests, a new key for the changed one.
        (landing / "day-02" / "_READY").write_bytes(b"")
        make_batch(landing, "day-01", good_rows(2))
        changed = _evaluate(instance, resources, touched.cursor)
        keys = {r.partition_key: r.run_key for r in changed.run_requests}
        assert set(keys) == {"day-01", "day-02"}
        assert keys["day-01"] != first.run_requests[0].run_key
        assert changed.dynamic_partitions_requests[0].partition_keys == ["day-02"]
        assert json.loads(changed.cursor)["day-01"][1] in keys["day-01"]


def test_raw_audio_and_manifest_materialize_with_lineage_metadata(landing, resources):
    make_batch(landing, "day-01", good_rows(6, speaker_prefix="a"))
    make_batch(landing, "day-02", good_rows(6, speaker_prefix="b", seed=3))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(intake_batches.name, ["day-01", "day-02"])
        for day in ("day-01", "day-02"):
            result = dg.materialize([raw_audio], partition_key=day, instance=instance, resources=resources)
            assert result.success
            (mat,) = result.asset_materializations_for_node("raw_audio")
            md = {k: v.value for k, v in mat.metadata.items()}
            assert md["published"] is True and md["accepted"] == 6 and md["rejected"] == 0
            assert md["commit_in"] != md["commit_out"] and len(md["commit_out"]) == 64
            assert md["dagster/uri"].startswith(f"local://{REPO}/{md['commit_out']}/metadata/{day}.parquet")
            assert md["audio_seconds"] == pytest.approx(9.0, abs=0.1)
            (check,) = result.get_asset_check_evaluations()
            assert check.passed and check.check_name == "batch_data_contract"

        result = dg.materialize([audio_manifest, manifest_speaker_disjoint], instance=instance, resources=resources)
        assert result.success
        (mat,) = result.asset_materializations_for_node("audio_manifest")
        md = {k: v.value for k, v in mat.metadata.items()}
        assert md["utterances"] == 12 and md["speakers"] == 6
        assert md["train_utterances"] + md["dev_utterances"] + md["test_utterances"] == 12
        assert "| accent | us | 12 |" in md["subgroups"]
        assert result.get_asset_check_evaluations()[0].passed

        store = resources["store"].open()
        assert store.resolve(REPO, "main") == md["commit_out"]


def test_failing_contract_blocks_publish_and_downstream(landing, resources):
    make_batch(landing, "broken", [{"audio_filepath": "audio/nothing.wav", "text": "gone", "speaker": "x"}])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(intake_batches.name, ["broken"])
        head = resources["store"].open().resolve(REPO, "main")
        result = dg.materialize(
            [raw_audio], partition_key="broken", instance=instance, resources=resources, raise_on_error=False
        )
        assert not result.success  # the blocking check failed the step
        (check,) = result.get_asset_check_evaluations()
        assert not check.passed
        assert "failed" in check.metadata["report"].value
        assert resources["store"].open().resolve(REPO, "main") == head
