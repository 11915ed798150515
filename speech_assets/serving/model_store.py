"""Registered models into BentoML's model store, and back out for the serving process.

    tag = import_registered(checkpoint_bytes, version="1.1.0", temperature=0.93, lineage={...})
    blob, info = load_model(tag)             # in the service: bytes + the metadata below

Each registry version becomes the BentoML model ``asr:<semver>`` holding ``checkpoint.pt`` (which carries
the architecture, weights, feature config and the word LM) and ``serving.json`` (semver, calibrated
temperature, lineage), so a bento built from it is self-contained and the service needs nothing else.
Importing a version that is already there with the same checkpoint is a no-op; a different checkpoint under
the same version is refused (versions are immutable in the registry, and so here).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MODEL_NAME = "asr"
CHECKPOINT_FILE = "checkpoint.pt"
SERVING_FILE = "serving.json"


class ModelStoreConflict(RuntimeError):
    pass


def model_tag(version: str) -> str:
    return f"{MODEL_NAME}:{version}"


def import_registered(checkpoint: bytes, *, version: str, temperature: float, lineage: dict | None = None) -> str:
    import bentoml
    from bentoml.exceptions import NotFound

    tag = model_tag(version)
    sha = hashlib.sha256(checkpoint).hexdigest()
    try:
        existing = bentoml.models.get(tag)
    except NotFound:
        existing = None
    if existing is not None:
        if existing.info.metadata.get("checkpoint_sha256") != sha:
            raise ModelStoreConflict(f"{tag} already exists in the BentoML model store with different weights")
        return str(existing.tag)
    info = {"version": version, "temperature": float(temperature), "checkpoint_sha256": sha,
            "lineage": lineage or {}}
    with bentoml.models.create(
        tag, labels={"semver": version, "registry": "speech_assets"},
        metadata={"version": version, "temperature": float(temperature), "checkpoint_sha256": sha},
    ) as model:
        Path(model.path, CHECKPOINT_FILE).write_bytes(checkpoint)
        Path(model.path, SERVING_FILE).write_text(json.dumps(info, sort_keys=True, indent=1, default=str))
    return str(model.tag)


def load_model(tag: str) -> tuple[bytes, dict]:
    """(checkpoint bytes, serving info) of a model in the BentoML store; checks the bytes against the sha."""
    import bentoml

    model = bentoml.models.get(tag)
    blob = Path(model.path, CHECKPOINT_FILE).read_bytes()
    info = json.loads(Path(model.path, SERVING_FILE).read_text())
    if hashlib.sha256(blob).hexdigest() != info["checkpoint_sha256"]:
        raise ValueError(f"{tag}: checkpoint bytes do not match their recorded sha256 (corrupted model store)")
    return blob, info
