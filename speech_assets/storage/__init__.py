"""Versioned storage: one port (`base.VersionStore`), two adapters (local store, lakeFS)."""

from speech_assets.storage.base import (  # noqa: F401
    DEFAULT_BRANCH,
    AlreadyExistsError,
    Change,
    Commit,
    ConflictError,
    DirtyBranchError,
    NotFoundError,
    NothingToCommitError,
    ObjectStat,
    StoreError,
    VersionStore,
)
