"""Fixtures for the store contract suite.

`store` is parametrized over every VersionStore implementation:

    local          LocalVersionStore in a fresh temporary directory
    lakefs_stub    the lakeFS adapter driving the real SDK against a loopback stub server
    lakefs_server  the lakeFS adapter against a real server (LAKEFS_ENDPOINT etc.; skipped when not configured)

`repo` is a freshly created repository with a unique name, so the suite can share a real server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator
from uuid import uuid4

import pytest

from speech_assets.storage.base import VersionStore
from speech_assets.storage.local import LocalVersionStore

STORE_KINDS = ["local", "lakefs_stub", "lakefs_server"]


def _lakefs_fixtures():
    try:
        from . import lakefs_fixtures  # written separately; imported lazily so "local" never depends on it
    except ImportError as exc:
        pytest.skip(f"lakefs fixtures not available: {exc}")
    return lakefs_fixtures


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VersionStore]:
    kind = request.param
    if kind == "local":
        with LocalVersionStore(tmp_path / "store") as local:
            yield local
    elif kind == "lakefs_stub":
        with _lakefs_fixtures().lakefs_stub_store(tmp_path) as stub:
            yield stub
    elif kind == "lakefs_server":
        with _lakefs_fixtures().lakefs_server_store() as server:
            yield server
    else:  # pragma: no cover
        raise AssertionError(kind)


@pytest.fixture
def repo(store: VersionStore) -> str:
    """A fresh repository (lakeFS names: lowercase letters, digits and hyphens, 3-63 characters)."""
    name = f"t-{uuid4().hex[:8]}"
    store.create_repository(name)
    return name
