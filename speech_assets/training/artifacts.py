"""Where training and evaluation artifacts live in the versioned store, and the pointers between them.

    checkpoints/<digest16>/checkpoint.pt      the trained model (tensors + plain dicts only)
    checkpoints/<digest16>/training.json      model + train config, lineage, loss and dev-WER curves
    checkpoints/latest.json                   which checkpoint the latest training produced
    evaluations/<digest16>/report.json|html   the evaluation report (and rows.parquet, champion_rows.parquet)
    evaluations/latest.json                   which evaluation is the latest, with its calibration

Each write goes through its own branch and is merged into main, like every other asset's output.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

from speech_assets.storage.base import DEFAULT_BRANCH, VersionStore
from speech_assets.storage.publish import publish_objects

MODEL_NAME = "asr"
TRAINING_CODE_VERSION = "1"
CHECKPOINT_POINTER = "checkpoints/latest.json"
EVALUATION_POINTER = "evaluations/latest.json"


@dataclass(frozen=True)
class Saved:
    path: str
    commit_id: str


def _json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, indent=1, default=str).encode()


def save_checkpoint(
    store: VersionStore, repo: str, blob: bytes, *, digest: str, lineage: dict, model_config: dict,
    train_config: dict, loss_curve: list, dev_wer_curve: list, run_id: str,
) -> Saved:
    prefix = f"checkpoints/{digest[:16]}"
    info = {
        "digest": digest,
        "checkpoint": f"{prefix}/checkpoint.pt",
        "checkpoint_sha256": hashlib.sha256(blob).hexdigest(),
        "lineage": lineage,
        "model_config": model_config,
        "train_config": train_config,
        "loss_curve": loss_curve,
        "dev_wer_curve": dev_wer_curve,
        "run_id": run_id,
    }
    commit = publish_objects(
        store, repo,
        {f"{prefix}/checkpoint.pt": blob, f"{prefix}/training.json": _json(info), CHECKPOINT_POINTER: _json(info)},
        message=f"asr_checkpoint {digest[:16]}",
        metadata={
            "run_id": run_id, "checkpoint_digest": digest, "data_commit": lineage["data_commit"],
            "feature_config_digest": lineage["feature_config_digest"], "code_version": lineage["code_version"],
            "seed": str(lineage["seed"]),
        },
        branch_prefix="checkpoint",
    )
    return Saved(f"{prefix}/checkpoint.pt", commit)


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
