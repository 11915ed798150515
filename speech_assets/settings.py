"""Where the platform keeps its files. One environment variable moves everything.

SPEECH_ASSETS_HOME (default: `<project>/data`) holds:
    landing/   batches dropped for intake (a folder each, `_READY` when complete)
    store/     the embedded local store (content-addressed blobs + SQLite refs)
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REPOSITORY = "speech-assets"


def data_home() -> Path:
    return Path(os.environ.get("SPEECH_ASSETS_HOME", PROJECT_ROOT / "data")).resolve()


def landing_dir() -> Path:
    return Path(os.environ.get("SPEECH_ASSETS_LANDING", data_home() / "landing")).resolve()


def local_store_dir() -> Path:
    return Path(os.environ.get("SPEECH_ASSETS_STORE", data_home() / "store")).resolve()
