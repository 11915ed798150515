"""The model registry: versioned, staged, audited models kept in the versioned store (see `registry`)."""

from speech_assets.registry.registry import (  # noqa: F401
    ALLOWED_TRANSITIONS,
    AuditEvent,
    AuditVerification,
    IllegalTransitionError,
    Lineage,
    MissingCheckpointError,
    ModelRegistry,
    ModelVersion,
    NoChangeError,
    RegistryBusyError,
    RegistryError,
    Stage,
    UnknownVersionError,
)
from speech_assets.registry.semver import Bump, Fingerprint, classify_change, next_version  # noqa: F401
