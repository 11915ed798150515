"""The versioned-store port.

Every operation maps 1:1 onto a lakeFS operation so that the embedded local store and the lakeFS adapter
are interchangeable behind one contract test suite:

    create_repository   POST   /repositories
    create_branch       POST   /repositories/{repo}/branches
    delete_branch       DELETE /repositories/{repo}/branches/{branch}
    reset_branch        PUT    /repositories/{repo}/branches/{branch}      (drop uncommitted changes)
    put_object          POST   /repositories/{repo}/branches/{branch}/objects
    get_object          GET    /repositories/{repo}/refs/{ref}/objects
    stat_object         GET    /repositories/{repo}/refs/{ref}/objects/stat
    delete_object       DELETE /repositories/{repo}/branches/{branch}/objects
    list_objects        GET    /repositories/{repo}/refs/{ref}/objects/ls
    commit              POST   /repositories/{repo}/branches/{branch}/commits
    diff                GET    /repositories/{repo}/refs/{left}/diff/{right}
    uncommitted         GET    /repositories/{repo}/branches/{branch}/diff
    merge               POST   /repositories/{repo}/refs/{source}/merge/{destination}
    create_tag          POST   /repositories/{repo}/tags
    revert              POST   /repositories/{repo}/branches/{branch}/revert
    log                 GET    /repositories/{repo}/refs/{ref}/commits
    resolve             GET    /repositories/{repo}/commits/{ref}

A "ref" is a branch name, a tag or a commit id. Reading a branch sees its uncommitted (staged) changes,
as in lakeFS; reading a tag or commit id sees the immutable committed tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Literal, Protocol, runtime_checkable

DEFAULT_BRANCH = "main"


class StoreError(Exception):
    """Base class of every error the store raises."""


class NotFoundError(StoreError):
    """A repository, ref or object does not exist."""


class AlreadyExistsError(StoreError):
    """A repository, branch or tag with that name exists (tags are immutable)."""


class ConflictError(StoreError):
    """A merge or revert touches paths changed on both sides; nothing was written.

    `paths` names the conflicting object paths so an operator can see what clashed.
    """

    def __init__(self, message: str, paths: list[str] | None = None):
        super().__init__(message)
        self.paths = sorted(paths or [])


class DirtyBranchError(StoreError):
    """The destination branch has uncommitted changes, so it cannot be merged into or reverted."""


class NothingToCommitError(StoreError):
    """A commit was asked for on a branch with no uncommitted changes."""


class ConcurrentUpdateError(StoreError):
    """The branch head moved while an operation was in flight; retry on the new head."""


@dataclass(frozen=True)
class ObjectStat:
    path: str
    checksum: str  # sha256 hex of the content
    size_bytes: int
    content_type: str = "application/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Commit:
    id: str
    parents: tuple[str, ...]
    message: str
    committer: str
    creation_date: float  # unix seconds
    metadata: dict[str, str] = field(default_factory=dict)


ChangeType = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class Change:
    path: str
    type: ChangeType
    size_bytes: int | None = None


@runtime_checkable
class VersionStore(Protocol):
    """Versioned object store with git-like refs over a flat object namespace (the lakeFS model)."""

    # -- repositories -----------------------------------------------------------------------------
    def create_repository(self, repo: str, default_branch: str = DEFAULT_BRANCH, exist_ok: bool = True) -> None: ...

    def repository_exists(self, repo: str) -> bool: ...

    # -- branches and refs ------------------------------------------------------------------------
    def create_branch(self, repo: str, branch: str, source_ref: str, exist_ok: bool = False) -> str:
        """Create `branch` at the commit `source_ref` resolves to; returns that commit id."""
        ...

    def delete_branch(self, repo: str, branch: str) -> None: ...

    def reset_branch(self, repo: str, branch: str) -> None:
        """Drop every uncommitted change on `branch`."""
        ...

    def list_branches(self, repo: str) -> dict[str, str]:
        """Branch name -> head commit id."""
        ...

    def resolve(self, repo: str, ref: str) -> str:
        """Commit id a branch, tag or commit id points at (NotFoundError if none)."""
        ...

    # -- objects ----------------------------------------------------------------------------------
    def put_object(
        self,
        repo: str,
        branch: str,
        path: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> ObjectStat: ...

    def get_object(self, repo: str, ref: str, path: str) -> bytes: ...

    def get_objects(self, repo: str, ref: str, paths: list[str]) -> Iterator[bytes]:
        """The objects at `paths`, in order, read at one `ref` (a missing one raises NotFoundError)."""
        ...

    def stat_object(self, repo: str, ref: str, path: str) -> ObjectStat: ...

    def delete_object(self, repo: str, branch: str, path: str) -> None: ...

    def list_objects(self, repo: str, ref: str, prefix: str = "") -> Iterator[ObjectStat]:
        """Every object under `prefix` at `ref`, in lexicographic path order (paginated underneath)."""
        ...

    # -- history ----------------------------------------------------------------------------------
    def commit(
        self,
        repo: str,
        branch: str,
        message: str,
        metadata: dict[str, str] | None = None,
        committer: str = "speech_assets",
        allow_empty: bool = False,
    ) -> str:
        """Commit the branch's staged changes; returns the new commit id."""
        ...

    def get_commit(self, repo: str, ref: str) -> Commit: ...

    def log(self, repo: str, ref: str, limit: int | None = None) -> list[Commit]:
        """Commits reachable from `ref`, newest first."""
        ...

    def diff(self, repo: str, left_ref: str, right_ref: str, prefix: str = "") -> list[Change]:
        """Changes that turn `left_ref`'s committed tree into `right_ref`'s, sorted by path."""
        ...

    def uncommitted(self, repo: str, branch: str) -> list[Change]: ...

    def merge(
        self,
        repo: str,
        source_ref: str,
        destination_branch: str,
        message: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str:
        """Three-way merge of `source_ref` into `destination_branch`; returns the resulting commit id.

        Raises ConflictError (and writes nothing) when a path changed differently on both sides since the
        merge base, DirtyBranchError when the destination has uncommitted changes.
        """
        ...

    def create_tag(self, repo: str, tag: str, ref: str, exist_ok: bool = False) -> str:
        """Immutable name for the commit `ref` resolves to; returns that commit id."""
        ...

    def list_tags(self, repo: str) -> dict[str, str]: ...

    def revert(self, repo: str, branch: str, ref: str, parent_number: int = 1, message: str | None = None) -> str:
        """New commit on `branch` undoing the changes `ref` made relative to its parent `parent_number`."""
        ...


def validate_path(path: str) -> str:
    """Object paths are relative, '/'-separated and never climb out: reject anything else early."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        raise ValueError(f"invalid object path: {path!r}")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid object path: {path!r}")
    return path
