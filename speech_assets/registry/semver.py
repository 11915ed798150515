"""Semantic versions for registered models, derived from what actually changed.

A model version number is a promise to the consumers of the model (the serving layer, the evaluation
dashboards), so it is computed from the artifacts rather than chosen by hand:

    major   the input feature config or the output vocabulary changed: the model is not a drop-in
            replacement (different front-end, different token ids), so consumers must opt in
    minor   a retrain: new weights, same features and vocabulary, so it is a drop-in replacement
    patch   recalibration only: the same weights (same checkpoint digest), a new calibration map
    initial the first version of a model: always 1.0.0

Everything here is pure (no store, no clock) so the rules can be tested exhaustively.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Iterable

__all__ = [
    "Bump",
    "Fingerprint",
    "NoChangeError",
    "INITIAL_VERSION",
    "parse_version",
    "format_version",
    "sort_versions",
    "classify_change",
    "bump_version",
    "next_version",
]

INITIAL_VERSION = "1.0.0"

# Strict MAJOR.MINOR.PATCH without leading zeros or pre-release tags: versions double as object path
# segments, so every version has exactly one spelling.
_VERSION_RE = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")


class Bump(str, Enum):
    INITIAL = "initial"
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"


class NoChangeError(ValueError):
    """The new model is identical (features, vocabulary, weights, calibration) to the one it is compared with.

    Minting a version for it would make two numbers name the same behaviour, so it is refused.
    """


@dataclass(frozen=True)
class Fingerprint:
    """The parts of a model record that decide the kind of version bump."""

    feature_config_hash: str
    vocabulary_hash: str
    checkpoint_sha256: str
    calibration_sha256: str


def parse_version(version: str) -> tuple[int, int, int]:
    match = _VERSION_RE.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        raise ValueError(f"not a MAJOR.MINOR.PATCH version: {version!r}")
    return int(match[1]), int(match[2]), int(match[3])


def format_version(parts: tuple[int, int, int]) -> str:
    return "%d.%d.%d" % parts


def sort_versions(versions: Iterable[str]) -> list[str]:
    """Ascending semantic order (string order would put 1.10.0 before 1.9.0)."""
    return sorted(versions, key=parse_version)


def classify_change(previous: Fingerprint | None, new: Fingerprint) -> Bump:
    """Which part of the version the change from `previous` to `new` bumps.

    Checked from the most to the least disruptive change, so a retrain that also changed the features is
    major, not minor. Raises NoChangeError when nothing that affects behaviour changed.
    """
    if previous is None:
        return Bump.INITIAL
    if new.feature_config_hash != previous.feature_config_hash or new.vocabulary_hash != previous.vocabulary_hash:
        return Bump.MAJOR
    if new.checkpoint_sha256 != previous.checkpoint_sha256:
        return Bump.MINOR
    if new.calibration_sha256 != previous.calibration_sha256:
        return Bump.PATCH
    raise NoChangeError("same features, vocabulary, checkpoint and calibration as the previous version")


def bump_version(version: str | None, bump: Bump, existing: Iterable[str] = ()) -> str:
    """Apply `bump` to `version`, skipping numbers already taken in `existing`.

    The reference version is usually production, which may lag behind other registered versions (say
    production 1.0.0 while candidate 1.1.0 waits for evaluation): a second retrain of the 1.x line must then
    become 1.2.0, not collide with 1.1.0. So each bump goes one past the highest number in its own line:
    major past every major, minor past every minor of the same major, patch past every patch of the same
    major.minor.
    """
    taken = [parse_version(v) for v in existing]
    if bump is Bump.INITIAL or version is None:
        if not taken:
            return INITIAL_VERSION
        # No reference but versions exist: nothing is known about compatibility, so assume the worst.
        bump, version = Bump.MAJOR, format_version(max(taken))
    major, minor, patch = parse_version(version)
    if bump is Bump.MAJOR:
        return format_version((max([major] + [t[0] for t in taken]) + 1, 0, 0))
    if bump is Bump.MINOR:
        top = max([minor] + [t[1] for t in taken if t[0] == major])
        return format_version((major, top + 1, 0))
    if bump is Bump.PATCH:
        top = max([patch] + [t[2] for t in taken if t[:2] == (major, minor)])
        return format_version((major, minor, top + 1))
    raise ValueError(f"unknown bump {bump!r}")  # pragma: no cover - Enum is closed


def next_version(
    previous_version: str | None,
    previous: Fingerprint | None,
    new: Fingerprint,
    existing: Iterable[str] = (),
) -> tuple[str, Bump]:
    """The version number and bump kind for `new`, compared with the reference version (`previous_*`).

    `previous_version`/`previous` describe the reference (previous production, else the latest version);
    both are None for a model's first version. `existing` lists every version already registered.
    """
    if (previous_version is None) != (previous is None):
        raise ValueError("previous_version and previous must both be given or both be None")
    bump = classify_change(previous, new)
    return bump_version(previous_version, bump, existing), bump
