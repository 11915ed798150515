"""Store factories for the lakeFS params of the contract suite (`conftest.py`'s `store` fixture).

`lakefs_stub_store` drives the real lakeFS SDK through `LakeFSVersionStore` against the OpenAPI-validating
loopback stub, backed by a local store; on exit it asserts the stub saw no request or response that breaks
lakeFS's spec, so every contract test on the stub is also a wire-compatibility test.
`lakefs_server_store` targets a real server and is skipped unless one is configured.

Both stub factories skip (naming the path looked at and `SPEECH_ASSETS_LAKEFS_SPEC`) when the lakeFS OpenAPI spec
the stub validates against is not there: without it the stub cannot tell a right request from a wrong one.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from speech_assets.storage.lakefs import LakeFSVersionStore
from speech_assets.storage.local import LocalVersionStore

from .lakefs_stub import LakeFSStubServer, SpecNotFoundError, require_spec

# Throwaway credentials: the stub only checks that credentials are sent (AWS's documented example key id).
STUB_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
STUB_SECRET_ACCESS_KEY = "stub-secret"


def stub_spec_or_skip() -> Path:
    """The lakeFS OpenAPI spec the stub validates against; skips the calling test when there is none."""
    try:
        return require_spec()
    except SpecNotFoundError as exc:
        pytest.skip(str(exc))


@contextmanager
def lakefs_stub_server(tmp_path: Path, **kwargs) -> Iterator[LakeFSStubServer]:
    """A running stub over a fresh local store under `tmp_path` (no assertions on exit); skips without a spec."""
    kwargs.setdefault("spec_path", stub_spec_or_skip())
    with LocalVersionStore(tmp_path / "lakefs-stub-backend") as backend:
        server = LakeFSStubServer(backend, **kwargs)
        with server:
            yield server


@contextmanager
def lakefs_stub_store(tmp_path: Path) -> Iterator[LakeFSVersionStore]:
    with lakefs_stub_server(tmp_path) as server:
        yield LakeFSVersionStore(server.url, STUB_ACCESS_KEY_ID, STUB_SECRET_ACCESS_KEY)
        # Not in a finally: a failing test already reports its own error; this guards the passing ones.
        assert server.violations == [], "lakeFS OpenAPI violations:\n" + "\n".join(map(str, server.violations))
        assert server.unhandled == [], f"the SDK called endpoints the stub lacks: {server.unhandled}"


@contextmanager
def lakefs_server_store() -> Iterator[LakeFSVersionStore]:
    if not os.environ.get("LAKEFS_ENDPOINT"):
        pytest.skip(
            "no lakeFS server: set LAKEFS_ENDPOINT, LAKEFS_ACCESS_KEY_ID, LAKEFS_SECRET_ACCESS_KEY "
            "to run the contract suite against a real server"
        )
    yield LakeFSVersionStore.from_env()
