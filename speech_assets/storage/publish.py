"""Publish derived objects to main the write-audit-publish way: on a branch of their own, then one merge.

A reader of `main` sees all of a derived asset's objects or none of them, and a crash mid-write leaves only an
abandoned branch (recreated by the next run), never a half-written `main`.
"""

from __future__ import annotations

import hashlib

from speech_assets.storage.base import DEFAULT_BRANCH, VersionStore


def publish_objects(
    store: VersionStore,
    repo: str,
    objects: dict[str, bytes],
    *,
    branch_prefix: str,
    message: str,
    metadata: dict[str, str],
    base: str | None = None,
    content_types: dict[str, str] | None = None,
) -> str:
    """Write `objects` on a branch from `base` (default: main's head), commit, merge into main; returns the merge
    commit. The branch name is derived from the base commit and the run id, so a retry reuses (and resets) it."""
    base = base or store.resolve(repo, DEFAULT_BRANCH)
    suffix = hashlib.sha256((base + metadata.get("run_id", "")).encode()).hexdigest()[:12]
    branch = f"{branch_prefix}-{suffix}"
    if branch in store.list_branches(repo):
        store.delete_branch(repo, branch)
    store.create_branch(repo, branch, base)
    for path, data in objects.items():
        store.put_object(repo, branch, path, data, content_type=(content_types or {}).get(path, "application/octet-stream"))
    store.commit(repo, branch, message, metadata=metadata, allow_empty=True)
    merged = store.merge(repo, branch, DEFAULT_BRANCH, message=message, metadata=metadata)
    store.delete_branch(repo, branch)
    return merged
