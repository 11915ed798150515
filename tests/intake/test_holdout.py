"""`intake.holdout`: which of a drifted batch's speakers are held out of training, and how every reader of the
manifest then sees them (pure functions, plus the store round trip)."""

from __future__ import annotations

import pytest

from speech_assets.intake.holdout import (
    HoldoutPlan,
    HoldoutPolicy,
    apply_holdouts,
    drifted_slices,
    plan_drift_holdout,
    read_holdouts,
    speaker_digest,
)
from speech_assets.intake.manifest import split_for
from speech_assets.serving.probe_set import select_probe_set
from speech_assets.storage.layout import holdout_path
from speech_assets.storage.local import LocalVersionStore
from speech_assets.storage.publish import publish_objects


def _rows(batch: str, prefix: str, speakers: int, per: int, accent: str = "us", channel: str = "clean"):
    out = []
    for s in range(speakers):
        key = f"speaker:{prefix}{s}"
        for i in range(per):
            out.append({"utt_id": f"{batch}-{prefix}{s}-{i}", "batch_id": batch, "speaker_key": key,
                        "speaker": f"{prefix}{s}", "split": split_for(key), "accent": accent, "channel": channel,
                        "text": "turn on the lights", "audio_path": f"audio/{batch}/{prefix}{s}-{i}.wav"})
    return out


def test_a_quarter_of_the_new_speakers_is_held_out_and_the_old_ones_are_not():
    old = _rows("day-01", "a", 40, 2)
    # day-02: 12 new caribbean speakers on the phone, plus 4 speakers of day-01 again
    new = _rows("day-02", "b", 12, 3, "caribbean", "telephone") + [
        {**r, "batch_id": "day-02", "utt_id": r["utt_id"] + "-again"} for r in old if r["speaker"] in {"a0", "a1"}]
    rows = old + new
    plan = plan_drift_holdout(rows, "day-02")
    assert plan.new_speakers == 12
    after = apply_holdouts(rows, [plan])
    test_new = {r["speaker_key"] for r in after if r["batch_id"] == "day-02" and r["split"] == "test"
                and r["speaker"].startswith("b")}
    hashed = {f"speaker:b{s}" for s in range(12) if split_for(f"speaker:b{s}") == "test"}
    assert len(test_new) == max(3, len(hashed))  # ceil(0.25 x 12) = 3, the hash's test speakers count toward it
    assert hashed <= test_new
    # an old speaker keeps its split: it was trained on already, holding it out now proves nothing
    assert all(r["split"] == split_for(r["speaker_key"]) for r in after if r["speaker"].startswith("a"))
    # every row of a held-out speaker moves, in every batch, and says why
    for r in after:
        if speaker_digest(r["speaker_key"]) in plan.held_digests:
            assert r["split"] == "test" and r["held_out_by"] == "day-02"
    assert {(s.column, s.value) for s in plan.drifted} == {("accent", "caribbean"), ("channel", "telephone")}
    assert plan.test_utterances == sum(r["batch_id"] == "day-02" and r["split"] == "test" for r in after)
    assert "12 new speaker(s)" in plan.note


def test_at_least_one_new_speaker_stays_for_training_and_the_choice_is_stable():
    rows = _rows("day-01", "a", 10, 2) + _rows("day-02", "z", 2, 3, "welsh")
    plan = plan_drift_holdout(rows, "day-02")
    after = apply_holdouts(rows, [plan])
    new_test = {r["speaker_key"] for r in after if r["batch_id"] == "day-02" and r["split"] == "test"}
    hashed = {k for k in ("speaker:z0", "speaker:z1") if split_for(k) == "test"}
    assert len(new_test) == max(len(hashed), 1)  # want min(ceil(0.5), 2 - 1) = 1
    assert plan_drift_holdout(list(reversed(rows)), "day-02").held_digests == plan.held_digests
    one = _rows("day-01", "a", 10, 2) + _rows("day-02", "solo", 1, 5, "welsh")
    solo = plan_drift_holdout(one, "day-02")
    assert solo.new_speakers == 1 and (solo.held_digests == () or split_for("speaker:solo0") == "test")
    with pytest.raises(ValueError, match="no rows"):
        plan_drift_holdout(rows, "day-99")


def test_drifted_slices_are_new_or_much_more_common_values():
    rows = _rows("day-01", "a", 10, 4, "us", "clean") + _rows("day-01", "t", 2, 2, "us", "telephone") \
        + _rows("day-02", "b", 4, 5, "us", "telephone") + _rows("day-02", "c", 1, 5, "us", "clean")
    got = {(s.column, s.value): s for s in drifted_slices(rows, "day-02")}
    # telephone: 80 % of day-02, ~9 % elsewhere -> drifted; us: the same share everywhere -> not
    assert set(got) == {("channel", "telephone")} and got[("channel", "telephone")].utterances_in_batch == 20
    assert drifted_slices(rows, "day-02", HoldoutPolicy(share_ratio=20.0)) == ()


def test_plans_round_trip_through_the_store_and_the_manifest_reader(tmp_path):
    rows = _rows("day-01", "a", 10, 2) + _rows("day-02", "b", 8, 2, "welsh")
    plan = plan_drift_holdout(rows, "day-02")
    assert HoldoutPlan.from_json(plan.to_json()) == plan
    with LocalVersionStore(tmp_path / "s") as store:
        store.create_repository("repo")
        assert read_holdouts(store, "repo", "main") == []
        publish_objects(store, "repo", {holdout_path("day-02"): plan.to_json()}, branch_prefix="t", message="t", metadata={})
        assert read_holdouts(store, "repo", "main") == [plan]
    assert b"speaker:b" not in plan.to_json() and b'"b0"' not in plan.to_json()  # digests only, no pseudonym


def test_the_probe_set_draws_a_third_from_the_drift_test_sets():
    old = [r for i, a in enumerate(("us", "gb", "rp", "scottish")) for r in _rows("day-01", f"a{i}-", 5, 3, a)]
    rows = [dict(r, split="test") for r in old + _rows("day-02", "b", 3, 6, "welsh")]
    plain = select_probe_set(rows, "c", 30)
    focused = select_probe_set(rows, "c", 30, drift_batches=["day-02"])
    assert len(plain.items) == len(focused.items) == len({i.utt_id for i in focused.items}) == 30
    welsh = lambda p: sum(i.accent == "welsh" for i in p.items)  # noqa: E731
    assert welsh(plain) == 6  # round-robin over 5 accent cells
    assert welsh(focused) == 10 + 4  # int(30 / 3) first, then its share of the round-robin


def test_a_batch_published_before_the_manifest_is_rebuilt_is_judged_on_the_manifest_that_rebuild_will_publish(tmp_path):
    """`features` + `drift_report` and `audio_manifest` are separate runs in either order (the demo saw drift_report
    fail with "no rows in the manifest"): the drift report's rows then come from the batch metadata, split the same
    way the rebuild will split them."""
    import pyarrow as pa

    from speech_assets.intake.manifest import MANIFEST_PATH, manifest_from_metadata, manifest_rows_with
    from speech_assets.intake.metadata import table_bytes
    from speech_assets.storage.layout import metadata_path
    from speech_assets.storage.local import LocalVersionStore

    def batch(bid, n):
        return pa.Table.from_pylist([{"utt_id": f"{bid}-{i}", "batch_id": bid, "speaker": f"{bid}-s{i % 5}",
                                      "duration_s": 1.0, "channel": "clean", "accent": "us", "text": "hi"}
                                     for i in range(n)])

    store = LocalVersionStore(tmp_path / "store")
    store.create_repository("repo")
    old, new = batch("day-01", 10), batch("day-02", 10)
    store.put_object("repo", "main", metadata_path("day-01"), table_bytes(old))
    store.put_object("repo", "main", MANIFEST_PATH, manifest_from_metadata([old])[1])
    store.put_object("repo", "main", metadata_path("day-02"), table_bytes(new))  # the manifest is not rebuilt yet
    store.commit("repo", "main", "day-02 published")
    rows = manifest_rows_with(store, "repo", "main", "day-02")
    rebuilt = manifest_from_metadata([old, new])[0].to_pylist()
    assert sorted((r["utt_id"], r["split"]) for r in rows) == sorted((r["utt_id"], r["split"]) for r in rebuilt)
    assert sum(r["batch_id"] == "day-02" for r in rows) == 10
    assert len(manifest_rows_with(store, "repo", "main", "day-01")) == 10  # in the manifest: the manifest as it is
    store.close()
