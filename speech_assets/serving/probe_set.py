"""The labelled probe set the canary controller sends through the live service to measure each side's WER.

Chosen from the test split of the manifest (speakers never trained on), spread over accent x channel so a
regression on one slice shows, deterministic (a hash of the utterance id orders the candidates), and pinned
to the commit it was chosen at, so every canary step of a rollout is measured on the same audio.

Drifted batches come first: up to `DRIFT_SHARE` of the set is drawn from the drift test sets (`intake.holdout`:
the test-split rows of every batch a drift held speakers out of), so a release triggered by a new population is
probed on that population, not only on the old one.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from speech_assets.storage.base import NotFoundError
from speech_assets.storage.layout import PROBE_SET_PATH

_ALPHABET = set("abcdefghijklmnopqrstuvwxyz' ")
DRIFT_SHARE = 1 / 3


@dataclass(frozen=True)
class ProbeItem:
    utt_id: str
    audio_path: str
    text: str
    accent: str
    channel: str


@dataclass(frozen=True)
class ProbeSet:
    commit: str  # the store commit the audio is read from
    items: tuple[ProbeItem, ...]

    def to_json(self) -> bytes:
        return json.dumps({"commit": self.commit, "items": [asdict(i) for i in self.items]}, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "ProbeSet":
        d = json.loads(data)
        return cls(d["commit"], tuple(ProbeItem(**i) for i in d["items"]))

    def without(self, utt_ids: set[str] | frozenset[str]) -> "ProbeSet":
        """The same probe set, still pinned to its commit, less the items of `utt_ids` (an erased speaker's)."""
        return ProbeSet(self.commit, tuple(i for i in self.items if i.utt_id not in utt_ids))

    def load(self, store, repo: str) -> list[tuple[bytes, str]]:
        """(audio bytes, reference text) of every item, read at the pinned commit."""
        blobs = store.get_objects(repo, self.commit, [i.audio_path for i in self.items])
        return [(blob, item.text) for blob, item in zip(blobs, self.items)]


def stored_probe_set(store, repo: str, ref: str) -> ProbeSet | None:
    """The probe set stored at `ref` (None before the first deployment chose one)."""
    try:
        return ProbeSet.from_json(store.get_object(repo, ref, PROBE_SET_PATH))
    except NotFoundError:
        return None


def _speaker_of(r: dict) -> str:
    """A manifest row's speaker (the hashed key where there is one); an utterance without one is its own speaker."""
    return str(r.get("speaker_key") or r.get("speaker") or r["utt_id"])


def _speakers_first(rows: list[dict]) -> list[dict]:
    """One utterance of every speaker first (in the given order), then the rest: a probe set of n utterances spans
    as many speakers as it can (speakers, not utterances, are the unit of a paired comparison)."""
    seen: set[str] = set()
    first, rest = [], []
    for r in rows:
        spk = _speaker_of(r)
        (rest if spk in seen else first).append(r)
        seen.add(spk)
    return first + rest


def _round_robin(rows: Sequence[dict], size: int) -> list[dict]:
    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: hashlib.sha256(r["utt_id"].encode()).hexdigest()):
        cells[(str(r.get("accent") or "unknown"), str(r.get("channel") or "unknown"))].append(r)
    cells = defaultdict(list, {c: _speakers_first(v) for c, v in cells.items()})
    order = sorted(cells)
    picked: list[dict] = []
    while len(picked) < size and any(cells.values()):
        for cell in order:
            if cells[cell] and len(picked) < size:
                picked.append(cells[cell].pop(0))
    return picked


def select_probe_set(rows: Sequence[dict], commit: str, size: int, split: str = "test",
                     drift_batches: Sequence[str] = (), drift_share: float = DRIFT_SHARE) -> ProbeSet:
    """Up to `size` usable rows of `split`, taken round-robin over accent x channel cells; up to
    `drift_share` of them first from the rows of `drift_batches` (the drift test sets)."""
    usable = [
        r for r in rows
        if r.get("split") == split and not r.get("redactions") and r.get("text") and set(r["text"]) <= _ALPHABET
    ]
    drifted = [r for r in usable if r.get("batch_id") in set(drift_batches)]
    picked = _round_robin(drifted, int(size * drift_share)) if drifted else []
    taken = {r["utt_id"] for r in picked}
    picked += _round_robin([r for r in usable if r["utt_id"] not in taken], size - len(picked))
    items = tuple(
        ProbeItem(r["utt_id"], r["audio_path"], r["text"], str(r.get("accent") or "unknown"),
                  str(r.get("channel") or "unknown"))
        for r in picked
    )
    return ProbeSet(commit, items)


def probe_speakers(probe: ProbeSet, rows: Sequence[dict]) -> int:
    """How many distinct speakers the probe set's items come from (by the manifest rows)."""
    spk = {r["utt_id"]: _speaker_of(r) for r in rows}
    return len({spk.get(i.utt_id, i.utt_id) for i in probe.items})


def probe_set_from_manifest(store, repo: str, commit: str, size: int) -> ProbeSet:
    return choose_probe_set(store, repo, commit, size)[0]


# The most utterances a sized probe set grows to: every canary tick sends it through both models (a Whisper model
# decodes ~0.1-0.4 s an utterance on a CPU), and past the test split's speakers more utterances add no power.
MAX_PROBE_UTTERANCES = 120


def sized_probe_size(size: int, speakers_needed: int | None, speakers_available: int,
                     cap: int = MAX_PROBE_UTTERANCES) -> int:
    """How many utterances a probe set takes when its canary's plan asks it to span `speakers_needed` speakers:
    one a speaker, no more speakers than the test split has, at most `cap` — and never fewer than `size`."""
    wanted = min(int(speakers_needed or 0), speakers_available, cap)
    return max(size, wanted)


def choose_probe_set(store, repo: str, commit: str, size: int, span_speakers: int | None = None
                     ) -> tuple[ProbeSet, int]:
    """The probe set chosen from the manifest at `commit`, and how many speakers it spans; with
    `span_speakers` (a sample plan's need) it grows to span them, as far as `sized_probe_size` allows."""
    from speech_assets.intake.holdout import read_holdouts
    from speech_assets.intake.manifest import read_manifest_rows, swept_batches

    # A batch whose raw audio the retention policy removed keeps its manifest rows but has no audio to probe with.
    swept = set(swept_batches(store, repo, commit))
    rows = [r for r in read_manifest_rows(store, repo, commit) if r.get("batch_id") not in swept]
    if span_speakers:
        test_speakers = {_speaker_of(r) for r in rows if r.get("split") == "test"}
        size = sized_probe_size(size, span_speakers, len(test_speakers))
    probe = select_probe_set(rows, commit, size, drift_batches=[p.batch_id for p in read_holdouts(store, repo, commit)])
    return probe, probe_speakers(probe, rows)
