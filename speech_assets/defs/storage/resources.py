"""The versioned store as a Dagster resource: the local store by default, lakeFS when configured.

A thin shell over `speech_assets.storage.open`, the one way the platform opens its store; the Dagster part is
only the configuration (credentials as `EnvVar`s, so they are read at run time and never shown or logged).
"""

from typing import Optional

import dagster as dg

from speech_assets import settings
from speech_assets.storage.base import VersionStore
from speech_assets.storage.open import StoreConfig, StoreConfigError, open_store


class VersionStoreResource(dg.ConfigurableResource):
    """`backend="local"` (embedded, default) or `backend="lakefs"` (a lakeFS server)."""

    backend: str = StoreConfig.backend
    repository: str = StoreConfig.repository
    local_root: str = StoreConfig.local_root
    lakefs_endpoint: Optional[str] = None
    lakefs_access_key_id: Optional[str] = None
    lakefs_secret_access_key: Optional[str] = None

    def config(self) -> StoreConfig:
        return StoreConfig(self.backend, self.repository, self.local_root, self.lakefs_endpoint,
                           self.lakefs_access_key_id, self.lakefs_secret_access_key)

    def open(self) -> VersionStore:
        try:
            return open_store(self.config())
        except StoreConfigError as exc:
            raise dg.DagsterInvalidConfigError(str(exc), [], None) from exc

    def describe(self) -> str:
        return self.config().describe()

    def uri(self, ref: str, path: str = "") -> str:
        """A pinned, lakeFS-style URI (`lakefs://repo/ref/path`; `local://` for the local store)."""
        return self.config().uri(ref, path)


def version_store_from_env() -> VersionStoreResource:
    """lakeFS when LAKEFS_ENDPOINT is set (credentials as EnvVars), else the embedded local store."""
    if settings.lakefs_endpoint():
        return VersionStoreResource(
            backend="lakefs",
            lakefs_endpoint=dg.EnvVar(settings.LAKEFS_ENDPOINT),
            lakefs_access_key_id=dg.EnvVar(settings.LAKEFS_ACCESS_KEY_ID),
            lakefs_secret_access_key=dg.EnvVar(settings.LAKEFS_SECRET_ACCESS_KEY),
        )
    return VersionStoreResource(backend="local")


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources={"store": version_store_from_env()})
