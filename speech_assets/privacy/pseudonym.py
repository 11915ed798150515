"""How a speaker is named where their id must not be: the audit trail, and intake's check for erased speakers.

One definition for both, so the digest an erasure records is the one intake compares against."""

from __future__ import annotations

import hashlib


def speaker_sha256(speaker_id: str) -> str:
    return hashlib.sha256(speaker_id.encode("utf-8")).hexdigest()
