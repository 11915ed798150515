"""Erasure and retention act on what the layout says holds speaker data, not on lists of their own.

Every key of `storage/layout.py` that holds a speaker's audio or rows has an eraser in `privacy.erasure.ERASERS` (its
owner's rewrite without the speaker) or a stated reason in `NOT_ERASED`; a new artifact with speaker data fails here
until erasure knows what to do with it.
"""

from __future__ import annotations

from speech_assets.privacy import erasure
from speech_assets.privacy.retention import raw_audio_prefixes
from speech_assets.storage import layout
from speech_assets.storage.layout import AUDIO, ROWS, Key


def test_every_key_holding_speaker_data_has_an_eraser_or_a_reason():
    assert erasure.unerased_speaker_keys() == []


def test_the_check_fails_for_a_new_key_holding_speaker_data(monkeypatch):
    """The check above can fail: a layout key with speaker rows and no eraser is reported."""
    extra = Key("transcripts/<batch>.jsonl", "a new asset", "nobody yet", ROWS, "per-utterance transcripts")
    monkeypatch.setattr(layout, "KEYS", (*layout.KEYS, extra))
    assert erasure.unerased_speaker_keys() == [extra]


def test_erasers_and_reasons_name_only_keys_that_hold_speaker_data():
    holding = {k.pattern for k in (*layout.keys_holding(AUDIO), *layout.keys_holding(ROWS))}
    assert set(erasure.ERASERS) <= holding and set(erasure.NOT_ERASED) <= holding
    assert not set(erasure.ERASERS) & set(erasure.NOT_ERASED)
    assert all(why.strip() for why in erasure.NOT_ERASED.values())


def test_retention_sweeps_every_key_holding_audio_of_the_batch():
    # what the sweep deleted before it read the layout: the accepted and the quarantined recordings
    assert raw_audio_prefixes("day-01") == ["audio/day-01/", "quarantine/day-01/files/"]
