"""Fixtures shared across test packages (the storage package's contract suite overrides `store`)."""

from tests.intake.conftest import landing, store  # noqa: F401
