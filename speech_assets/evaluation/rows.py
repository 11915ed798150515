"""The per-utterance evaluation rows an evaluation stores beside its report (`evaluations/<digest16>/rows.parquet`,
`champion_rows.parquet`): one row per test utterance with its reference transcript, hypothesis and speaker.

They hold a speaker's transcripts, so an erasure rewrites them without that speaker; the report's aggregates are
kept (they mix every test speaker).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from speech_assets.intake.metadata import speaker_mask, table_bytes
from speech_assets.storage.base import VersionStore
from speech_assets.storage.layout import CHAMPION_ROWS_KEY, EVALUATION_ROWS_KEY, EVALUATIONS_PREFIX

ROW_KEYS = (EVALUATION_ROWS_KEY, CHAMPION_ROWS_KEY)


@dataclass
class RowsWithoutSpeaker:
    """Evaluation row tables rewritten without one speaker: path -> new bytes, and how many rows were dropped."""

    objects: dict[str, bytes] = field(default_factory=dict)
    removed: int = 0


def row_table_paths(store: VersionStore, repo: str, ref: str) -> list[str]:
    """Every evaluation's row tables at `ref` (challenger and champion)."""
    return [o.path for o in store.list_objects(repo, ref, EVALUATIONS_PREFIX)
            if any(k.matches(o.path) for k in ROW_KEYS)]


def rows_without_speaker(store: VersionStore, repo: str, ref: str, speaker_id: str) -> RowsWithoutSpeaker:
    """The row tables at `ref` that hold `speaker_id`, rewritten without the speaker's rows."""
    out = RowsWithoutSpeaker()
    for path in row_table_paths(store, repo, ref):
        table = pq.read_table(io.BytesIO(store.get_object(repo, ref, path)))
        hit = speaker_mask(table, speaker_id)
        n = int(pc.sum(pc.cast(hit, pa.int64())).as_py() or 0)
        if n:
            # The deterministic writer of the metadata tables: equal rows, equal bytes.
            out.objects[path] = table_bytes(table.filter(pc.invert(hit)))
            out.removed += n
    return out
