"""Drift test sets: speakers of a drifted batch held out of training, so a retrain is judged on the population
that triggered it.

    plan = plan_drift_holdout(manifest_rows, "day-07", HoldoutPolicy())
    objects = {holdout_path("day-07"): plan.to_json()}            # published by the drift report
    rows = apply_holdouts(manifest_rows, read_holdouts(store, repo, ref))   # what `read_manifest_rows` returns

Splits are a hash of the speaker (`manifest.split_for`), so a batch of a new population with few speakers can
land entirely in `train`: the test split the gate then judges holds none of it (seen: 4 new speakers, all in
train, a release approved on the old test split alone). When drift fires on batch B, `plan_drift_holdout` picks
B's *new* speakers (no row in any other batch) and holds out `fraction` of them by speaker (those the hash already
put in test count toward it; at least `min_train_speakers` new speakers stay for training). From then on a held-out
speaker's rows are in the test split in every read of the manifest at or after that commit, so no later training
sees them either.

The *drift test set* of B is B's rows in the test split (held out here or by the hash). Its *drifted slices* are
the slice values (per `columns`) that are new in B or much more common there than in the rest of the corpus:
share in B >= `min_share` and >= `share_ratio` x the share elsewhere. The gate shows those slices before vs after
on the drift test set, and holds the release for a named approval where they are too few to judge.

The record holds no speaker pseudonym: held-out speakers are kept as sha256 digests of their speaker keys (like the
audit trail's subjects), so the record is not speaker data and an erasure need not rewrite it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

from speech_assets.storage.base import NotFoundError
from speech_assets.storage.layout import HOLDOUT_PREFIX, holdout_path

DRIFT_COLUMNS = ("accent", "channel")


def speaker_digest(speaker_key: str) -> str:
    return hashlib.sha256(speaker_key.encode()).hexdigest()


@dataclass(frozen=True)
class HoldoutPolicy:
    fraction: float = 0.25  # of the batch's new speakers, held out (rounded up)
    min_train_speakers: int = 1  # new speakers that always stay for training
    min_share: float = 0.10  # a slice is "drifted" when at least this share of the batch ...
    share_ratio: float = 2.0  # ... and this many times its share in the rest of the corpus
    columns: tuple[str, ...] = DRIFT_COLUMNS

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"fraction must be in (0, 1), got {self.fraction}")
        if self.min_train_speakers < 0:
            raise ValueError("min_train_speakers must be >= 0")
        object.__setattr__(self, "columns", tuple(self.columns))


@dataclass(frozen=True)
class DriftedSlice:
    column: str
    value: str
    share_in_batch: float
    share_elsewhere: float
    utterances_in_batch: int

    @property
    def label(self) -> str:
        return f"{self.column}={self.value}"


@dataclass(frozen=True)
class HoldoutPlan:
    batch_id: str
    new_speakers: int  # speakers of the batch with no row in any other batch
    held_digests: tuple[str, ...]  # speaker-key digests moved to test by this plan
    test_speakers: int  # of the batch's speakers, in test after the plan (held here or by the hash)
    test_utterances: int  # the batch's rows in test after the plan: the drift test set
    drifted: tuple[DriftedSlice, ...] = ()
    note: str = ""
    policy: dict = field(default_factory=dict)

    def to_json(self) -> bytes:
        d = asdict(self)
        return json.dumps(d, sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "HoldoutPlan":
        d = json.loads(data)
        d["held_digests"] = tuple(d.get("held_digests", ()))
        d["drifted"] = tuple(DriftedSlice(**s) for s in d.get("drifted", ()))
        return cls(**d)


def _speaker(row: Mapping) -> str:
    return str(row.get("speaker_key") or row.get("speaker") or row.get("utt_id"))


def drifted_slices(rows: Sequence[Mapping], batch_id: str, policy: HoldoutPolicy = HoldoutPolicy()
                   ) -> tuple[DriftedSlice, ...]:
    """The slice values new in `batch_id` or much more common there than in the other batches' rows."""
    mine = [r for r in rows if r.get("batch_id") == batch_id]
    rest = [r for r in rows if r.get("batch_id") != batch_id]
    out = []
    for col in policy.columns:
        here = Counter(str(r.get(col) or "unknown") for r in mine)
        there = Counter(str(r.get(col) or "unknown") for r in rest)
        for value, n in sorted(here.items()):
            share = n / len(mine)
            elsewhere = there[value] / len(rest) if rest else 0.0
            if share >= policy.min_share and share >= policy.share_ratio * elsewhere:
                out.append(DriftedSlice(col, value, round(share, 4), round(elsewhere, 4), n))
    return tuple(out)


def plan_drift_holdout(rows: Sequence[Mapping], batch_id: str, policy: HoldoutPolicy = HoldoutPolicy()
                       ) -> HoldoutPlan:
    """Which of `batch_id`'s new speakers to hold out (`rows`: the manifest as read, holdouts applied)."""
    mine = [r for r in rows if r.get("batch_id") == batch_id]
    if not mine:
        raise ValueError(f"batch {batch_id} has no rows in the manifest: nothing to hold out")
    elsewhere = {_speaker(r) for r in rows if r.get("batch_id") != batch_id}
    speakers = sorted({_speaker(r) for r in mine})
    new = [s for s in speakers if s not in elsewhere]
    split_of = {_speaker(r): r.get("split") for r in mine}
    already = [s for s in new if split_of[s] == "test"]
    want = min(math.ceil(policy.fraction * len(new)), max(len(new) - policy.min_train_speakers, 0))
    # the rest, in a fixed order that does not depend on the split hash: sha256 of the speaker key
    candidates = sorted((s for s in new if split_of[s] != "test"), key=speaker_digest)
    held = candidates[:max(want - len(already), 0)]
    test_speakers = {s for s in speakers if split_of[s] == "test"} | set(held)
    test_utts = sum(_speaker(r) in test_speakers for r in mine)
    if not new:
        note = f"{batch_id} brings no new speakers: its drift test set is its speakers already in test"
    else:
        note = (f"{batch_id}: {len(new)} new speaker(s); {len(already)} already in test by the hash, "
                f"{len(held)} held out now (target {want} = ceil({policy.fraction:g} x {len(new)}), keeping "
                f">= {policy.min_train_speakers} for training); drift test set {test_utts} utterances / "
                f"{len(test_speakers)} speakers")
    return HoldoutPlan(batch_id, len(new), tuple(sorted(speaker_digest(s) for s in held)), len(test_speakers),
                       test_utts, drifted_slices(rows, batch_id, policy), note,
                       {**asdict(policy), "columns": list(policy.columns)})


def read_holdouts(store, repo: str, ref: str) -> list[HoldoutPlan]:
    """Every holdout plan stored at `ref` (none before the first drift)."""
    try:
        objs = [o.path for o in store.list_objects(repo, ref, HOLDOUT_PREFIX + "/") if o.path.endswith(".json")]
    except NotFoundError:
        return []
    if not objs:
        return []
    return [HoldoutPlan.from_json(b) for b in store.get_objects(repo, ref, objs)]


def read_holdout(store, repo: str, ref: str, batch_id: str) -> HoldoutPlan | None:
    try:
        return HoldoutPlan.from_json(store.get_object(repo, ref, holdout_path(batch_id)))
    except NotFoundError:
        return None


def apply_holdouts(rows: Iterable[dict], plans: Sequence[HoldoutPlan]) -> list[dict]:
    """`rows` with every held-out speaker's rows in the test split (`held_out_by` names the batch whose drift
    held them out). A no-op without plans."""
    rows = list(rows)
    if not plans:
        return rows
    by_digest = {d: p.batch_id for p in plans for d in p.held_digests}
    out = []
    for r in rows:
        batch = by_digest.get(speaker_digest(_speaker(r)))
        out.append({**r, "split": "test", "held_out_by": batch} if batch else r)
    return out


def drift_rows(rows: Sequence[Mapping], batch_id: str) -> list[Mapping]:
    """The drift test set's evaluation rows: rows (carrying `batch_id`) of that batch."""
    return [r for r in rows if r.get("batch_id") == batch_id]
