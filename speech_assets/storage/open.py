"""One way to open the configured versioned store: lakeFS when `LAKEFS_ENDPOINT` is set, else the local store.

Every caller — the Dagster resource (`defs/storage/resources.py`), every CLI, the demo — opens the store here, so
a user who sets `LAKEFS_ENDPOINT` gets lakeFS everywhere, and nothing else keeps its own default path.
Credentials are passed in by the caller or read from the environment when the store is opened; they are never
logged (`describe` names the endpoint and repository only).
"""

from __future__ import annotations

from dataclasses import dataclass

from speech_assets import settings
from speech_assets.storage.base import VersionStore

LOCAL = "local"
LAKEFS = "lakefs"


class StoreConfigError(ValueError):
    """The store configuration names an unknown backend or lacks what the backend needs."""


@dataclass(frozen=True)
class StoreConfig:
    """Which store to open. `from_env()` is the configuration the platform runs with."""

    backend: str = LOCAL
    repository: str = settings.DEFAULT_REPOSITORY
    local_root: str = ""  # empty: settings.local_store_dir()
    lakefs_endpoint: str | None = None
    lakefs_access_key_id: str | None = None
    lakefs_secret_access_key: str | None = None

    @classmethod
    def from_env(cls) -> StoreConfig:
        """lakeFS when LAKEFS_ENDPOINT is set (with LAKEFS_ACCESS_KEY_ID / LAKEFS_SECRET_ACCESS_KEY), else local."""
        endpoint = settings.lakefs_endpoint()
        if endpoint:
            key_id, secret = settings.lakefs_credentials()
            return cls(LAKEFS, lakefs_endpoint=endpoint, lakefs_access_key_id=key_id, lakefs_secret_access_key=secret)
        return cls(LOCAL)

    def describe(self) -> str:
        if self.backend == LAKEFS:
            return f"lakeFS at {self.lakefs_endpoint} / repository {self.repository}"
        return f"local store at {self.local_root or settings.local_store_dir()} / repository {self.repository}"

    def uri(self, ref: str, path: str = "") -> str:
        """A pinned, lakeFS-style URI (`lakefs://repo/ref/path`; `local://` for the local store)."""
        scheme = LAKEFS if self.backend == LAKEFS else LOCAL
        return f"{scheme}://{self.repository}/{ref}/{path}".rstrip("/")


def open_store(config: StoreConfig | None = None) -> VersionStore:
    """Open (and create if needed) the configured repository; `config` defaults to `StoreConfig.from_env()`."""
    config = config or StoreConfig.from_env()
    if config.backend == LAKEFS:
        from speech_assets.storage.lakefs import LakeFSVersionStore

        if not (config.lakefs_endpoint and config.lakefs_access_key_id and config.lakefs_secret_access_key):
            raise StoreConfigError(
                "lakeFS backend needs LAKEFS_ENDPOINT, LAKEFS_ACCESS_KEY_ID and LAKEFS_SECRET_ACCESS_KEY")
        store: VersionStore = LakeFSVersionStore(
            config.lakefs_endpoint, config.lakefs_access_key_id, config.lakefs_secret_access_key)
    elif config.backend == LOCAL:
        from speech_assets.storage.local import LocalVersionStore

        store = LocalVersionStore(config.local_root or settings.local_store_dir())
    else:
        raise StoreConfigError(f"unknown store backend {config.backend!r} (use {LOCAL!r} or {LAKEFS!r})")
    store.create_repository(config.repository, exist_ok=True)
    return store


def open_from_env() -> tuple[VersionStore, str]:
    """The configured store and repository: what every CLI opens."""
    config = StoreConfig.from_env()
    return open_store(config), config.repository
