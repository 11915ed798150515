"""The versioned store as a Dagster resource: the local store by default, lakeFS when configured."""


import os
from typing import Optional

import dagster as dg

from speech_assets.settings import DEFAULT_REPOSITORY, local_store_dir
from speech_assets.storage.base import VersionStore


class VersionStoreResource(dg.ConfigurableResource):
    """`backend="local"` (embedded, default) or `backend="lakefs"` (a lakeFS server).

    lakeFS credentials arrive as Dagster `EnvVar`s, so they are read at run time and never shown or logged.
    """

    backend: str = "local"
    repository: str = DEFAULT_REPOSITORY
    local_root: str = ""
    lakefs_endpoint: Optional[str] = None
    lakefs_access_key_id: Optional[str] = None
    lakefs_secret_access_key: Optional[str] = None

    def open(self) -> VersionStore:
        if self.backend == "lakefs":
            from speech_assets.storage.lakefs import LakeFSVersionStore

            if not (self.lakefs_endpoint and self.lakefs_access_key_id and self.lakefs_secret_access_key):
                raise dg.DagsterInvalidConfigError(
                    "lakeFS backend needs LAKEFS_ENDPOINT, LAKEFS_ACCESS_KEY_ID and LAKEFS_SECRET_ACCESS_KEY", [], None
                )
            store: VersionStore = LakeFSVersionStore(
                self.lakefs_endpoint, self.lakefs_access_key_id, self.lakefs_secret_access_key
            )
        elif self.backend == "local":
            from speech_assets.storage.local import LocalVersionStore

            store = LocalVersionStore(self.local_root or local_store_dir())
        else:
            raise dg.DagsterInvalidConfigError(f"unknown store backend {self.backend!r}", [], None)
        store.create_repository(self.repository, exist_ok=True)
        return store

    def describe(self) -> str:
        if self.backend == "lakefs":
            return f"lakeFS at {self.lakefs_endpoint} / repository {self.repository}"
        return f"local store at {self.local_root or local_store_dir()} / repository {self.repository}"

    def uri(self, ref: str, path: str = "") -> str:
        """A pinned, lakeFS-style URI (`lakefs://repo/ref/path`; `local://` for the local store)."""
        scheme = "lakefs" if self.backend == "lakefs" else "local"
        return f"{scheme}://{self.repository}/{ref}/{path}".rstrip("/")


def version_store_from_env() -> VersionStoreResource:
    """lakeFS when LAKEFS_ENDPOINT is set (credentials as EnvVars), else the embedded local store."""
    if os.environ.get("LAKEFS_ENDPOINT"):
        return VersionStoreResource(
            backend="lakefs",
            lakefs_endpoint=dg.EnvVar("LAKEFS_ENDPOINT"),
            lakefs_access_key_id=dg.EnvVar("LAKEFS_ACCESS_KEY_ID"),
            lakefs_secret_access_key=dg.EnvVar("LAKEFS_SECRET_ACCESS_KEY"),
        )
    return VersionStoreResource(backend="local")


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources={"store": version_store_from_env()})
