"""The real-speech anchor: reading pocketsphinx-testdata, the versioned set in the store, scoring and comparing."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from speech_assets.evaluation.anchor import (
    DEFAULT_ROOT,
    AnchorComparison,
    AnchorResult,
    AnchorSetCorrupt,
    AnchorSetUnavailable,
    AnchorUtterance,
    compare_anchor,
    import_anchor_set,
    load_anchor_set,
    read_pocketsphinx_testdata,
    score_anchor,
)
from speech_assets.evaluation.baseline import pocketsphinx_unavailable_reason, transcribe_pocketsphinx
from speech_assets.storage.base import DEFAULT_BRANCH
from speech_assets.storage.layout import ANCHOR_DIR, ANCHOR_MANIFEST_PATH, anchor_audio_path

REPO = "speech-assets"  # the `store` fixture's repository (tests/intake/conftest.py)
SMOKE = "11 real utterances: a smoke alarm, not a benchmark"

needs_testdata = pytest.mark.skipif(
    not Path(DEFAULT_ROOT).is_dir(),
    reason=f"pocketsphinx-testdata is not installed ({DEFAULT_ROOT} missing; apt-get install pocketsphinx-testdata)",
)


@pytest.fixture(scope="module")
def utterances() -> list[AnchorUtterance]:
    if not Path(DEFAULT_ROOT).is_dir():
        pytest.skip(f"pocketsphinx-testdata is not installed ({DEFAULT_ROOT} missing; "
                    "apt-get install pocketsphinx-testdata)")
    return read_pocketsphinx_testdata()


@pytest.fixture
def anchor(store, utterances):
    import_anchor_set(store, REPO, utterances)
    return load_anchor_set(store, REPO)


def perfect(anchor):
    texts = [u.text for u in anchor.utterances]
    return lambda waveforms: list(texts)


# ---------------------------------------------------------------------------
# reading the package
# ---------------------------------------------------------------------------


def test_reads_the_eleven_utterances_with_ids_groups_and_texts(utterances):
    ids = [u.utt_id for u in utterances]
    assert ids == [*(f"ps-cards-00{i}" for i in range(1, 6)),
                   *(f"ps-librivox-{n}" for n in ("0870", "0880", "0890", "0920", "0930")), "ps-goforward"]
    assert [u.group for u in utterances] == ["cards"] * 5 + ["librivox"] * 5 + ["goforward"]
    by_id = {u.utt_id: u for u in utterances}
    assert by_id["ps-cards-001"].text == "ten of clubs"  # "<s> ten of clubs  </s>": double space collapsed
    assert by_id["ps-goforward"].text == "go forward ten meters"
    assert by_id["ps-librivox-0880"].text == "he was not an ill disposed young man"
    for u in utterances:
        assert u.waveform.dtype == np.float32 and u.waveform.ndim == 1
        assert u.duration_s == pytest.approx(len(u.waveform) / 16000)
        assert 0.5 < u.duration_s < 10 and np.abs(u.waveform).max() > 0.01  # real audio, not silence
    # goforward.raw is 89160 bytes of 16-bit samples
    assert len(by_id["ps-goforward"].waveform) == 89160 // 2


def test_missing_package_names_the_fix(tmp_path):
    with pytest.raises(AnchorSetUnavailable, match=r"apt-get install pocketsphinx-testdata.*setup"):
        read_pocketsphinx_testdata(tmp_path / "nowhere")


@needs_testdata
def test_missing_file_names_the_file_and_the_fix(tmp_path):
    root = tmp_path / "data"
    shutil.copytree(DEFAULT_ROOT, root)
    (root / "librivox" / "sense_and_sensibility_01_austen_64kb-0880.wav").unlink()
    with pytest.raises(AnchorSetUnavailable, match=r"0880\.wav is missing.*apt-get install"):
        read_pocketsphinx_testdata(root)


# ---------------------------------------------------------------------------
# the versioned set in the store
# ---------------------------------------------------------------------------


def test_import_is_idempotent_and_load_gives_back_what_was_read(store, utterances):
    before = store.resolve(REPO, DEFAULT_BRANCH)
    first = import_anchor_set(store, REPO, utterances)
    assert first != before and store.resolve(REPO, DEFAULT_BRANCH) == first
    n_commits = len(store.log(REPO, DEFAULT_BRANCH))
    again = import_anchor_set(store, REPO, read_pocketsphinx_testdata())
    assert again == first and len(store.log(REPO, DEFAULT_BRANCH)) == n_commits  # no new commit

    loaded = load_anchor_set(store, REPO)
    assert loaded.commit == first and loaded.n_utterances == 11 and loaded.n_words == 96
    assert list(loaded.utterances) == utterances
    for a, b in zip(loaded.utterances, utterances):
        assert np.array_equal(a.waveform, b.waveform)  # what is scored is what is stored
    paths = sorted(o.path for o in store.list_objects(REPO, first, ANCHOR_DIR))
    assert paths == sorted([ANCHOR_MANIFEST_PATH, *(anchor_audio_path(u.utt_id) for u in utterances)])
    manifest = json.loads(store.get_object(REPO, first, ANCHOR_MANIFEST_PATH))
    assert manifest["set_digest"] == loaded.set_digest
    assert {e["utt_id"]: e["sha256"] for e in manifest["utterances"]} == {u.utt_id: u.sha256 for u in utterances}
    assert set(manifest["utterances"][0]) == {"utt_id", "group", "text", "duration_s", "sha256", "source"}


def test_the_digest_depends_on_content_not_on_where_the_package_was_read(store, utterances, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(DEFAULT_ROOT, root)
    first = import_anchor_set(store, REPO, utterances)
    assert import_anchor_set(store, REPO, read_pocketsphinx_testdata(root)) == first
    digest = load_anchor_set(store, REPO).set_digest

    transcription = root / "cards" / "cards.transcription"
    transcription.write_text(transcription.read_text().replace("ten of clubs", "nine of clubs"))
    changed = import_anchor_set(store, REPO, read_pocketsphinx_testdata(root))
    assert changed != first
    now = load_anchor_set(store, REPO)
    assert now.set_digest != digest and now.utterances[0].text == "nine of clubs"
    assert load_anchor_set(store, REPO, first).set_digest == digest  # the old version stays readable


def test_a_smaller_set_removes_the_stale_wavs(store, utterances):
    import_anchor_set(store, REPO, utterances)
    import_anchor_set(store, REPO, utterances[:3])
    head = store.resolve(REPO, DEFAULT_BRANCH)
    assert sum(1 for o in store.list_objects(REPO, head, ANCHOR_DIR) if o.path.endswith(".wav")) == 3
    assert load_anchor_set(store, REPO).n_utterances == 3


def test_load_verifies_each_wav_against_the_manifest(store, utterances):
    import_anchor_set(store, REPO, utterances)
    path = anchor_audio_path("ps-cards-003")
    store.put_object(REPO, DEFAULT_BRANCH, path, utterances[0].wav)  # another recording under this name
    store.commit(REPO, DEFAULT_BRANCH, "tamper")
    with pytest.raises(AnchorSetCorrupt, match="ps-cards-003.*sha256"):
        load_anchor_set(store, REPO)


def test_load_without_an_imported_set_says_how_to_import(store):
    with pytest.raises(AnchorSetUnavailable, match="import_anchor_set"):
        load_anchor_set(store, REPO)


def test_a_crash_mid_import_leaves_main_unchanged_and_a_rerun_imports(store, utterances, monkeypatch):
    before = store.resolve(REPO, DEFAULT_BRANCH)
    real_put, calls = store.put_object, []

    def crashing_put(*args, **kwargs):
        calls.append(args)
        if len(calls) == 4:
            raise OSError("disk full (simulated)")
        return real_put(*args, **kwargs)

    monkeypatch.setattr(store, "put_object", crashing_put)
    with pytest.raises(OSError, match="simulated"):
        import_anchor_set(store, REPO, utterances)
    assert store.resolve(REPO, DEFAULT_BRANCH) == before
    assert list(store.list_objects(REPO, DEFAULT_BRANCH, ANCHOR_DIR)) == []
    assert set(store.list_branches(REPO)) == {DEFAULT_BRANCH}  # the half-written branch was cleaned up

    monkeypatch.setattr(store, "put_object", real_put)
    import_anchor_set(store, REPO, utterances)
    assert load_anchor_set(store, REPO).n_utterances == 11


# ---------------------------------------------------------------------------
# scoring
# ---------------------------------------------------------------------------


def test_perfect_transcriber_scores_zero_on_eleven(anchor):
    r = score_anchor(perfect(anchor), anchor, model="oracle")
    assert (r.wer, r.wer_ci, r.n_utterances, r.n_words, r.errors) == (0.0, (0.0, 0.0), 11, 96, 0)
    assert [(g.group, g.n_utterances, g.n_words, g.wer) for g in r.groups] == [
        ("cards", 5, 21, 0.0), ("librivox", 5, 71, 0.0), ("goforward", 1, 4, 0.0)]
    assert r.set_digest == anchor.set_digest and r.commit == anchor.commit


def test_empty_transcriber_scores_one(anchor):
    r = score_anchor(lambda ws: [""] * len(ws), anchor)
    assert r.wer == 1.0 and r.wer_ci == (1.0, 1.0) and r.errors == 96


def test_interval_contains_the_point_and_the_result_round_trips(anchor):
    # drop the last word of every utterance: 11 errors in 96 words
    texts = [" ".join(u.text.split()[:-1]) for u in anchor.utterances]
    r = score_anchor(lambda ws: texts, anchor, model="clipped", seed=3)
    assert r.wer == pytest.approx(11 / 96)
    assert r.wer_ci[0] < r.wer < r.wer_ci[1]
    back = AnchorResult.from_dict(json.loads(json.dumps(r.to_dict(), allow_nan=False)))
    assert back == r


def test_transcriber_must_return_one_hypothesis_per_waveform(anchor):
    with pytest.raises(ValueError, match="returned 10 hypotheses for 11"):
        score_anchor(lambda ws: [""] * 10, anchor)


def test_markdown_states_n_and_the_smoke_alarm(anchor):
    md = score_anchor(perfect(anchor), anchor, model="oracle").markdown()
    assert SMOKE in md
    assert "n=11 utterances, 96 words" in md
    assert "cards (n=5 utt, 21 words)" in md and "goforward (n=1 utt, 4 words)" in md
    assert "| ps-librivox-0870 | librivox |" in md


# ---------------------------------------------------------------------------
# comparing
# ---------------------------------------------------------------------------


def test_a_collapse_on_real_speech_is_clearly_worse(anchor):
    champion = score_anchor(perfect(anchor), anchor, model="champion")
    # a model that forgot real speech: two words per utterance right at most
    collapsed = [" ".join(u.text.split()[:2]) for u in anchor.utterances]
    challenger = score_anchor(lambda ws: collapsed, anchor, model="challenger")
    c = compare_anchor(challenger, champion)
    assert c.result.delta > 0.5 and c.result.low > c.tolerance == 0.05
    assert c.clearly_worse and "clearly worse" in c.detail() and "n=11 utterances" in c.detail()
    assert AnchorComparison.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_a_one_word_difference_is_not_clearly_worse(anchor):
    champion = score_anchor(perfect(anchor), anchor)
    texts = [u.text for u in anchor.utterances]
    texts[5] = texts[5].replace("leisure", "pleasure")
    challenger = score_anchor(lambda ws: texts, anchor)
    c = compare_anchor(challenger, champion)
    assert c.result.delta == pytest.approx(1 / 96)
    assert not c.clearly_worse and "not clearly worse" in c.detail()
    # and the better model is never "clearly worse" than the worse one
    assert not compare_anchor(champion, challenger).clearly_worse


def test_results_on_different_sets_are_not_compared(store, anchor, utterances):
    a = score_anchor(perfect(anchor), anchor)
    import_anchor_set(store, REPO, utterances[:5])
    small = load_anchor_set(store, REPO)
    b = score_anchor(perfect(small), small)
    with pytest.raises(ValueError, match="different sets"):
        compare_anchor(a, b)


# ---------------------------------------------------------------------------
# the pocketsphinx peer
# ---------------------------------------------------------------------------


@pytest.mark.skipif(pocketsphinx_unavailable_reason() is not None,
                    reason=f"pocketsphinx unavailable: {pocketsphinx_unavailable_reason()}")
def test_pocketsphinx_recognises_the_real_speech(anchor):
    # ~20 s on 2 cores: 37 s of audio through the bundled en-us model
    r = score_anchor(transcribe_pocketsphinx, anchor, model="pocketsphinx (en-us, as shipped)")
    assert r.n_utterances == 11 and r.n_words == 96
    # measured 21/96 = 21.9 % [10.5 %, 29.3 %]; far from 100 %: the anchor is real speech a real recognizer hears
    assert 0.05 < r.wer < 0.5 and r.wer_ci[0] <= r.wer <= r.wer_ci[1]
    assert not math.isnan(r.groups[0].wer) and r.groups[0].wer < 0.3  # cards: a small vocabulary
