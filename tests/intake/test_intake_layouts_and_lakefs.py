"""The intake beyond the default path: other corpus layouts, and lakeFS (through the OpenAPI-validating stub)."""

from __future__ import annotations

import dagster as dg
import soundfile as sf

from speech_assets.defs.intake.assets import raw_audio
from speech_assets.defs.intake.partitions import intake_batches
from speech_assets.defs.intake.resources import LandingZoneResource
from speech_assets.defs.storage.resources import VersionStoreResource, version_store_from_env
from speech_assets.intake.batch import ingest_batch
from speech_assets.intake.landing import scan_landing
from speech_assets.storage.lakefs import LakeFSVersionStore
from tests.intake.conftest import REPO, good_rows, make_batch, speechlike
from tests.storage.lakefs_fixtures import STUB_ACCESS_KEY_ID, STUB_SECRET_ACCESS_KEY, lakefs_stub_server


def test_librispeech_layout_ingests_flac_with_speakers(store, landing):
    chapter = landing / "ls-batch" / "84" / "121123"
    chapter.mkdir(parents=True)
    lines = []
    for i in range(3):
        sf.write(chapter / f"84-121123-{i:04d}.flac", speechlike(1.2, 16000, seed=i), 16000, format="FLAC")
        lines.append(f"84-121123-{i:04d} GO DO YOU HEAR NUMBER {i}")
    (chapter / "84-121123.trans.txt").write_text("\n".join(lines) + "\n")
    (landing / "ls-batch" / "_READY").write_bytes(b"")

    (b,) = scan_landing(landing)
    result = ingest_batch(store, REPO, b, run_id="r")
    assert result.published and result.staged.accepted == 3
    import io

    import pyarrow.parquet as pq

    rows = pq.read_table(io.BytesIO(store.get_object(REPO, "main", "metadata/ls-batch.parquet"))).to_pylist()
    assert {r["speaker"] for r in rows} == {"84"}
    assert {r["source_layout"] for r in rows} == {"librispeech"}
    assert all(r["original_format"].startswith("FLAC") for r in rows)
    assert rows[0]["text"].startswith("go do you hear")


def test_common_voice_layout_ingests(store, landing):
    batch = landing / "cv-batch"
    (batch / "clips").mkdir(parents=True)
    header = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale\tsegment"
    rows = [header]
    for i in range(2):
        sf.write(batch / "clips" / f"c{i}.wav", speechlike(1.0, 48000, seed=i), 48000)
        rows.append(f"client{i}\tc{i}.wav\tHello there number {i}\t2\t0\t\t\tscottish\ten\t")
    (batch / "validated.tsv").write_text("\n".join(rows) + "\n")
    (batch / "_READY").write_bytes(b"")
    (b,) = scan_landing(landing)
    result = ingest_batch(store, REPO, b, run_id="r")
    assert result.published and result.staged.accepted == 2, result.staged.rejection_reasons


def test_intake_runs_on_lakefs_through_the_validating_stub(tmp_path, landing):
    make_batch(landing, "day-01", good_rows(3))
    (b,) = scan_landing(landing)
    with lakefs_stub_server(tmp_path) as server:
        store = LakeFSVersionStore(server.url, STUB_ACCESS_KEY_ID, STUB_SECRET_ACCESS_KEY)
        store.create_repository(REPO)
        result = ingest_batch(store, REPO, b, run_id="r")
        assert result.published, result.contract.markdown()
        assert store.resolve(REPO, "main") == result.published_commit
        assert len(list(store.list_objects(REPO, "main", "audio/day-01/"))) == 3
        assert server.violations == [] and server.unhandled == []


def test_lakefs_is_chosen_from_env_and_the_secret_never_reaches_dagster_logs(tmp_path, landing, monkeypatch):
    make_batch(landing, "day-01", good_rows(2))
    with lakefs_stub_server(tmp_path) as server:
        monkeypatch.setenv("LAKEFS_ENDPOINT", server.url)
        monkeypatch.setenv("LAKEFS_ACCESS_KEY_ID", STUB_ACCESS_KEY_ID)
        monkeypatch.setenv("LAKEFS_SECRET_ACCESS_KEY", STUB_SECRET_ACCESS_KEY)
        resource = version_store_from_env()
        assert resource.backend == "lakefs"
        # The resource holds references to the environment, not the values themselves.
        assert isinstance(resource.lakefs_secret_access_key, dg.EnvVar)
        assert STUB_SECRET_ACCESS_KEY not in repr(resource)

        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions(intake_batches.name, ["day-01"])
            result = dg.materialize(
                [raw_audio],
                partition_key="day-01",
                instance=instance,
                resources={"store": resource, "landing": LandingZoneResource(path=str(landing))},
            )
            assert result.success
            (mat,) = result.asset_materializations_for_node("raw_audio")
            assert mat.metadata["dagster/uri"].value.startswith(f"lakefs://{REPO}/")
            logs = [str(e.dagster_event) + (e.user_message or "") for e in instance.all_logs(result.run_id)]
            assert not any(STUB_SECRET_ACCESS_KEY in line for line in logs)
        assert server.violations == []


def test_local_store_is_the_default_without_lakefs_env(monkeypatch):
    for name in ("LAKEFS_ENDPOINT", "LAKEFS_ACCESS_KEY_ID", "LAKEFS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert version_store_from_env().backend == "local"

