"""Erasure marks: which erasures touched the training data of a model version.

A model trained on (or warm-started from) speech that was later erased cannot be rewritten; it is *marked*. The
marks live beside the registry (`governance/erasure_marks/<model>/<version>.json`, see `storage.layout`): the
erasure writes them on its own branch (`stage_mark`), the retrain sensor and served-at read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError, VersionStore
from speech_assets.storage.layout import ERASURE_MARKS_PREFIX, marks_path


@dataclass
class ModelMark:
    model: str
    version: str
    why: str
    data_commits: list[str]


def erasure_marks(store: VersionStore, repo: str, model: str, ref: str = DEFAULT_BRANCH) -> dict[str, list[str]]:
    """version -> erasure ids that marked it (a version trained on, or warm-started from, erased data)."""
    out = {}
    for obj in store.list_objects(repo, ref, f"{ERASURE_MARKS_PREFIX}/{model}/"):
        if obj.path.endswith(".json"):
            body = json.loads(store.get_object(repo, ref, obj.path))
            out[body["version"]] = list(body["erasure_ids"])
    return out


def stage_mark(store: VersionStore, repo: str, branch: str, base: str, mark: ModelMark, *, erasure_id: str, ts: str,
               subject: str) -> None:
    """Add erasure `erasure_id` to `mark`'s version on `branch` (uncommitted; a repeated erasure is not added twice)."""
    path = marks_path(mark.model, mark.version)
    try:
        body = json.loads(store.get_object(repo, base, path))
    except NotFoundError:
        body = {"model": mark.model, "version": mark.version, "erasure_ids": [], "marks": []}
    if erasure_id not in body["erasure_ids"]:
        body["erasure_ids"].append(erasure_id)
        body["marks"].append({"erasure_id": erasure_id, "ts": ts, "subject": subject,
                              "why": mark.why, "data_commits": mark.data_commits})
    store.put_object(repo, branch, path, json.dumps(body, sort_keys=True, indent=1).encode(),
                     content_type="application/json")
