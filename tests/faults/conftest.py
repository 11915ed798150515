from tests.intake.conftest import store  # noqa: F401  (a LocalVersionStore in tmp_path with the repository made)
