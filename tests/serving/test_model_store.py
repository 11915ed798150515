"""Registry checkpoints round-trip through BentoML's model store (a private BENTOML_HOME per test)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_import_and_load_round_trip_and_immutability(tmp_path):
    # BentoML reads BENTOML_HOME at import time: run in a fresh interpreter so the store is private
    script = textwrap.dedent(
        """
        from pathlib import Path
        from speech_assets.serving.model_store import ModelStoreConflict, import_registered, load_model
        tag = import_registered(b"weights-1", version="1.0.0", temperature=1.2, lineage={"data_commit": "abc"})
        assert tag == "asr:1.0.0", tag
        assert import_registered(b"weights-1", version="1.0.0", temperature=1.2) == tag  # idempotent
        blob, info = load_model(tag)
        assert blob == b"weights-1" and info["temperature"] == 1.2 and info["lineage"]["data_commit"] == "abc"
        try:
            import_registered(b"other", version="1.0.0", temperature=1.0)
        except ModelStoreConflict:
            pass
        else:
            raise AssertionError("a different checkpoint under an existing version must be refused")
        import bentoml
        ckpt = next(Path(bentoml.models.get(tag).path).glob("checkpoint.pt"))
        ckpt.write_bytes(b"tampered")
        try:
            load_model(tag)
        except ValueError as exc:
            assert "sha256" in str(exc)
        else:
            raise AssertionError("corrupted bytes must be detected")
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env={"BENTOML_HOME": str(tmp_path / "bentoml"), "PATH": "/usr/bin:/bin",
                                             "HOME": str(tmp_path), "BENTOML_DO_NOT_TRACK": "true"},
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")
