"""Write-audit-publish: the one branch transaction every writer of `main` uses.

A reader of `main` sees all of a change or none of it: the change is written and committed on a branch of its
own, then merged in one step. A crash mid-write leaves only an abandoned branch (reset by the next attempt,
which derives the same name), never a half-written `main`.

- `branch_transaction` — branch from a ref, yield a `Transaction` to write/commit/merge on, always clean the
  branch up (unless the caller keeps an unmerged branch on purpose: a staged batch waiting for its audit, or one
  that failed it and stays for inspection).
- `retry_on_conflict` — the hook for writers that plan from main's head (erasure, the registry): when the merge
  loses a race, plan again from the new head.
- `publish_objects` — the common case: a dict of objects in one commit, merged.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, TypeVar

from speech_assets.storage.base import DEFAULT_BRANCH, ConflictError, NotFoundError, StoreError, VersionStore

T = TypeVar("T")


@dataclass
class Transaction:
    """One branch of `repo`, forked from `base`; `merge` lands it on `into`."""

    store: VersionStore
    repo: str
    branch: str
    base: str
    into: str = DEFAULT_BRANCH
    commits: list[str] = field(default_factory=list)
    merged: str | None = None

    def put(self, path: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.store.put_object(self.repo, self.branch, path, data, content_type=content_type)

    def delete(self, path: str) -> None:
        self.store.delete_object(self.repo, self.branch, path)

    def commit(self, message: str, metadata: Mapping[str, str] | None = None, *, committer: str | None = None,
               allow_empty: bool = False) -> str:
        kwargs = {"committer": committer} if committer else {}
        commit_id = self.store.commit(self.repo, self.branch, message, metadata=dict(metadata or {}),
                                      allow_empty=allow_empty, **kwargs)
        self.commits.append(commit_id)
        return commit_id

    def merge(self, message: str, metadata: Mapping[str, str] | None = None) -> str:
        self.merged = self.store.merge(self.repo, self.branch, self.into, message=message,
                                       metadata=dict(metadata or {}))
        return self.merged


def delete_branch_quietly(store: VersionStore, repo: str, branch: str) -> None:
    """Delete `branch` if it exists; a branch another writer already tidied away is not an error."""
    try:
        store.delete_branch(repo, branch)
    except (NotFoundError, StoreError):
        pass


@contextmanager
def branch_transaction(store: VersionStore, repo: str, branch: str, *, base: str | None = None,
                       into: str = DEFAULT_BRANCH, resume: bool = False,
                       keep_unmerged: bool = False) -> Iterator[Transaction]:
    """Open `branch` from `base` (default: the head of `into`) and yield a `Transaction` on it.

    - A leftover branch of the same name (a crashed attempt) holds an unknown half-state: it is deleted and the
      branch recreated from `base`. With `resume=True` the branch is instead continued as it is (a batch staged
      by an earlier step); `base` is then its head.
    - On leaving the block — merged, failed or raised — the branch is deleted (its commits stay reachable from
      `into`'s history once merged). `keep_unmerged=True` keeps a branch that was not merged, for a later step
      to resume or a person to inspect.
    """
    if resume:
        tx = Transaction(store, repo, branch, base or store.resolve(repo, branch), into)
    else:
        base = base or store.resolve(repo, into)
        if branch in store.list_branches(repo):
            store.delete_branch(repo, branch)
        store.create_branch(repo, branch, base)
        tx = Transaction(store, repo, branch, base, into)
    try:
        yield tx
    finally:
        if tx.merged is not None or not keep_unmerged:
            delete_branch_quietly(store, repo, branch)


def retry_on_conflict(attempt: Callable[[int], T], *, attempts: int,
                      errors: tuple[type[BaseException], ...] = (ConflictError,),
                      backoff: Callable[[int], None] | None = None,
                      exhausted: Callable[[BaseException], BaseException] | None = None) -> T:
    """Run `attempt(n)` for n = 0, 1, …; when it raises one of `errors` (main moved and touched the same paths),
    call `backoff(n)` and plan again. After `attempts` losses, raise `exhausted(last)` (default: the last error).
    `attempt` must plan from main's head each time: nothing of a losing attempt reached `main`."""
    last: BaseException | None = None
    for n in range(attempts):
        try:
            return attempt(n)
        except errors as exc:
            last = exc
            if backoff is not None:
                backoff(n)
    assert last is not None, "attempts must be at least 1"
    raise exhausted(last) if exhausted is not None else last


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
    with branch_transaction(store, repo, f"{branch_prefix}-{suffix}", base=base) as tx:
        for path, data in objects.items():
            tx.put(path, data, content_type=(content_types or {}).get(path, "application/octet-stream"))
        tx.commit(message, metadata, allow_empty=True)
        return tx.merge(message, metadata)
