"""Training's artifacts in the versioned store: the checkpoint, its record, and the pointer to the latest one.

The keys are `storage.layout`'s: `checkpoint_path(digest)` (the trained model: tensors + plain dicts only),
`training_record_path(digest)` (model + train config, lineage, loss and dev-WER curves); `CHECKPOINT_POINTER`
says which checkpoint the latest training produced (`EVALUATION_POINTER`, the evaluation's, is re-exported here
for the modules that read both). Each write goes through its own branch and is merged into main, like every
other asset's output.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

from speech_assets.storage.base import DEFAULT_BRANCH, VersionStore
from speech_assets.storage.layout import (
    CHECKPOINT_POINTER,
    EVALUATION_POINTER,
    checkpoint_path,
    training_record_path,
)
from speech_assets.storage.publish import publish_objects

__all__ = ["CHECKPOINT_POINTER", "EVALUATION_POINTER", "MODEL_NAME", "TRAINING_CODE_VERSION", "Saved",
           "latest_checkpoint", "parquet_bytes", "read_parquet_rows", "save_checkpoint"]

MODEL_NAME = "asr"
TRAINING_CODE_VERSION = "1"


@dataclass(frozen=True)
class Saved:
    path: str
    commit_id: str


def _json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, indent=1, default=str).encode()


def save_checkpoint(
    store: VersionStore, repo: str, blob: bytes, *, digest: str, lineage: dict, model_config: dict,
    train_config: dict, loss_curve: list, dev_wer_curve: list, run_id: str, card: dict | None = None,
) -> Saved:
    """Save a checkpoint (opaque bytes of any backend), its training record, and move the pointer to it. `card`
    is the backend's `ModelCard` as a dict: which backend reads the bytes, parameters, base model, tokenizer."""
    path = checkpoint_path(digest)
    info = {
        "digest": digest,
        "checkpoint": path,
        "checkpoint_sha256": hashlib.sha256(blob).hexdigest(),
        "lineage": lineage,
        "model_config": model_config,
        "train_config": train_config,
        "loss_curve": loss_curve,
        "dev_wer_curve": dev_wer_curve,
        "run_id": run_id,
        "backend": (card or {}).get("family", "ctc"),
        "card": card,
    }
    commit = publish_objects(
        store, repo,
        {path: blob, training_record_path(digest): _json(info), CHECKPOINT_POINTER: _json(info)},
        message=f"asr_checkpoint {digest[:16]}",
        metadata={
            "run_id": run_id, "checkpoint_digest": digest, "data_commit": lineage["data_commit"],
            "feature_config_digest": lineage["feature_config_digest"], "code_version": lineage["code_version"],
            "seed": str(lineage["seed"]), "backend": (card or {}).get("family", "ctc"),
        },
        branch_prefix="checkpoint",
    )
    return Saved(path, commit)


def latest_checkpoint(store: VersionStore, repo: str, ref: str = DEFAULT_BRANCH) -> tuple[dict, bytes]:
    info = json.loads(store.get_object(repo, ref, CHECKPOINT_POINTER))
    blob = store.get_object(repo, ref, info["checkpoint"])
    if hashlib.sha256(blob).hexdigest() != info["checkpoint_sha256"]:
        raise ValueError(f"checkpoint {info['checkpoint']} does not match its recorded sha256")
    return info, blob


def parquet_bytes(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def read_parquet_rows(data: bytes) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data)).to_pylist()
