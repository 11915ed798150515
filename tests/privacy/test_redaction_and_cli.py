"""The redaction report matches what intake recorded; the `erase` / `retention` commands end to end."""

from __future__ import annotations

import io
import json

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from speech_assets.defs.privacy.assets import redaction_report_asset
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.storage.audit_log import DATA_PUBLISH, read_events
from speech_assets.intake.batch import metadata_path
from speech_assets.privacy.cli import main
from speech_assets.privacy.redaction import REPORT_PATH, publish_redaction_report, redaction_report
from speech_assets.storage.publish import publish_objects
from tests.privacy.conftest import REPO, TARGET


def test_the_report_counts_what_intake_recorded(store):
    report = redaction_report(store, REPO)
    by_batch = {b.batch_id: b for b in report.batches}
    assert set(by_batch) == {"day-01", "day-02", "day-03"}
    # day-02's transcripts: a spoken phone number, a card number, an email and a phone number
    assert by_batch["day-02"].by_kind == {"phone": 2, "card": 1, "email": 1}
    assert by_batch["day-02"].redacted_utterances == 3 and by_batch["day-02"].redactions == 4
    assert by_batch["day-01"].redactions == 0 and by_batch["day-01"].utterances == 6
    # the same numbers as intake's own records: the publish event and the staged commit's metadata
    for e in read_events(store, REPO, action=DATA_PUBLISH):
        b = by_batch[e.evidence["batch_id"]]
        staged = store.get_commit(REPO, e.evidence["audited_commit"]).metadata
        assert b.source == "intake" and b.exact
        assert b.by_kind == e.evidence["redactions"] == json.loads(staged["redactions"])
        assert b.redacted_utterances == int(staged["redacted_utterances"]) and b.utterances == e.evidence["accepted"]
    assert report.totals["by_kind"] == {"email": 1, "phone": 2, "card": 1, "digits": 0}
    md = report.markdown()
    assert "| day-02 | 6 | 3 | 50.0 | 1 | 2 | 1 | 0 | intake |" in md and "**total**" in md

    # publishing: written once, unchanged on a second run
    commit, changed = publish_redaction_report(store, REPO, report)
    assert changed and json.loads(store.get_object(REPO, "main", REPORT_PATH))["totals"]["redactions"] == 4
    assert publish_redaction_report(store, REPO, redaction_report(store, REPO)) == (commit, False)


def test_a_batch_without_a_publish_event_falls_back_to_its_metadata_columns(store):
    table = pa.table({"utt_id": ["l-0", "l-1", "l-2"], "redactions": pa.array([2, 0, 2], pa.int32()),
                      "redaction_kinds": ["phone", "", "email,card"]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    publish_objects(store, REPO, {metadata_path("legacy"): sink.getvalue()}, branch_prefix="legacy",
                    message="publish batch legacy", metadata={"batch_id": "legacy"})
    (legacy,) = [b for b in redaction_report(store, REPO).batches if b.batch_id == "legacy"]
    assert legacy.source == "metadata" and legacy.utterances == 3 and legacy.redacted_utterances == 2
    assert legacy.redactions == 4 and legacy.by_kind == {"phone": 2, "email": 1, "card": 1} and legacy.exact


def test_the_redaction_report_asset(store, tmp_path):
    resources = {"store": VersionStoreResource(local_root=str(tmp_path / "store"), repository=REPO)}
    with dg.instance_for_test() as instance:
        result = dg.materialize([redaction_report_asset], instance=instance, resources=resources)
    (mat,) = result.asset_materializations_for_node("redaction_report")
    md = {k: v.value for k, v in mat.metadata.items()}
    assert md["redactions"] == 4 and md["redacted_utterances"] == 3 and md["redactions/phone"] == 2
    assert md["changed"] is True and "| day-02 |" in md["report"]


def test_the_commands(store, capsys):
    factory = lambda: (store, REPO)  # noqa: E731
    head = store.resolve(REPO, "main")
    assert main(["erase", "--speaker", TARGET, "--who", "dpo", "--why", "ticket 7", "--dry-run"], factory) == 0
    out = capsys.readouterr().out
    assert "dry run: would erase 4 utterances in 2 batches" in out and "batch day-01: 2 utterances" in out
    assert store.resolve(REPO, "main") == head
    assert main(["erase", "--speaker", TARGET, "--who", "dpo", "--why", "ticket 7"], factory) == 0
    out = capsys.readouterr().out
    assert "erased 4 utterances" in out and "commit " in out and "still holds 4 source files of this speaker: intake skips" in out
    assert main(["erase", "--speaker", TARGET, "--who", "dpo", "--why", "ticket 7"], factory) == 0
    assert "nothing to erase" in capsys.readouterr().out
    assert main(["erase", "status"], factory) == 0
    out = capsys.readouterr().out
    assert "speaker:sha256:" in out and "4 utterances in 2 batches" in out and TARGET not in out
    assert main(["erase", "--speaker", "nobody", "--who", "dpo", "--why", "x"], factory) == 1
    assert "no utterance" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["erase", "--speaker", TARGET], factory)
    assert main(["retention", "sweep", "--days", "0", "--who", "ops", "--dry-run"], factory) == 0
    out = capsys.readouterr().out
    assert "day-03" in out and "would remove" in out
    assert main(["retention", "sweep", "--days", "3650", "--who", "ops"], factory) == 0
    assert "nothing to sweep" in capsys.readouterr().out
