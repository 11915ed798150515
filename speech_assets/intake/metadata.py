"""The batch metadata tables intake writes (`metadata/<batch>.parquet`, the quarantine's `rejections.parquet`):
their schemas, how they are serialized, and how every other module reads them back or drops a speaker from them.

One writer for both tables: equal tables give equal bytes, so a table rewritten without a speaker (erasure) is
exactly what intake would have written for the remaining rows.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from speech_assets.storage.base import VersionStore
from speech_assets.storage.layout import METADATA_PREFIX, metadata_batch_id, metadata_path

METADATA_SCHEMA = pa.schema(
    [
        ("utt_id", pa.string()),
        ("batch_id", pa.string()),
        ("audio_path", pa.string()),
        ("sha256", pa.string()),
        ("duration_s", pa.float64()),
        ("sample_rate", pa.int32()),
        ("channels", pa.int32()),
        ("text", pa.string()),
        ("redactions", pa.int32()),
        ("redaction_kinds", pa.string()),
        ("speaker", pa.string()),
        ("accent", pa.string()),
        ("channel", pa.string()),
        ("snr_db", pa.float64()),
        ("rate_wpm", pa.float64()),
        ("est_snr_db", pa.float64()),
        ("rms_dbfs", pa.float64()),
        ("clipped_fraction", pa.float64()),
        ("original_sample_rate", pa.int32()),
        ("original_format", pa.string()),
        ("original_channels", pa.int32()),
        ("resampled", pa.bool_()),
        ("source_ref", pa.string()),
        ("source_layout", pa.string()),
    ]
)

REJECTION_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("index", pa.int32()),
        ("source_ref", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("quarantine_path", pa.string()),  # where the rejected bytes were kept (empty if there were none to keep)
        ("source_sha256", pa.string()),
        ("raw_record_sha256", pa.string()),
        ("text_sanitized", pa.string()),  # the row's transcript after PII redaction, for a person to fix it
    ]
)


def table_bytes(table: pa.Table) -> bytes:
    """The stored form of a metadata or rejections table."""
    sink = io.BytesIO()
    # No statistics timestamps or writer ids that vary run to run: equal tables give equal bytes.
    pq.write_table(table, sink, compression="zstd", write_statistics=True)
    return sink.getvalue()


def metadata_batch_ids(store: VersionStore, repo: str, ref: str) -> list[str]:
    """Every batch with a metadata table at `ref`, in listing order."""
    ids = (metadata_batch_id(o.path) for o in store.list_objects(repo, ref, f"{METADATA_PREFIX}/"))
    return [b for b in ids if b]


def read_metadata_table(store: VersionStore, repo: str, ref: str, batch_id: str,
                        columns: list[str] | None = None) -> pa.Table:
    """One batch's metadata table at `ref` (only `columns`, when given)."""
    return pq.read_table(io.BytesIO(store.get_object(repo, ref, metadata_path(batch_id))), columns=columns)


def read_metadata_tables(store: VersionStore, repo: str, ref: str) -> dict[str, pa.Table]:
    """batch id -> its metadata table, every batch at `ref`, in listing order."""
    return {b: read_metadata_table(store, repo, ref, b) for b in metadata_batch_ids(store, repo, ref)}


def speaker_mask(table: pa.Table, speaker_id: str) -> pa.ChunkedArray:
    """True for the rows of `speaker_id` (none, when the table has no speaker column)."""
    if "speaker" not in table.column_names:
        return pa.chunked_array([pa.array([False] * table.num_rows, pa.bool_())])
    return pc.fill_null(pc.equal(table.column("speaker"), speaker_id), False)


def holds_speaker(table: pa.Table, speaker_id: str) -> bool:
    return bool(pc.any(speaker_mask(table, speaker_id)).as_py())


def without_speaker(table: pa.Table, speaker_id: str) -> tuple[pa.Table, list[dict]]:
    """(the table without the speaker's rows, those rows)."""
    hit = speaker_mask(table, speaker_id)
    return table.filter(pc.invert(hit)), table.filter(hit).to_pylist()
