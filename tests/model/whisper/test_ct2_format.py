"""CTranslate2's model.bin read and written by `ct2_format`: byte-identical round trip on tiny.en, every dtype,
and the damaged files it must refuse."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from speech_assets.model.whisper.ct2_format import (
    Ct2FormatError,
    Ct2Model,
    bfloat16_to_float32,
    read_model_bin,
    write_model_bin,
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_bin(tiny_dir) -> Ct2Model:
    return read_model_bin(tiny_dir / "model.bin")


def test_tiny_en_round_trip_is_byte_identical(tiny_dir, tiny_bin, tmp_path):
    out = write_model_bin(tiny_bin, tmp_path / "model.bin")
    assert _sha256(out) == _sha256(tiny_dir / "model.bin")


def test_tiny_en_header_and_variables(tiny_bin):
    assert (tiny_bin.binary_version, tiny_bin.spec, tiny_bin.revision) == (6, "WhisperSpec", 3)
    # ctranslate2 stores the tied output projection once, as an alias of the embeddings.
    assert tiny_bin.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert tiny_bin.get("decoder/projection/weight") is tiny_bin.variables["decoder/embeddings/weight"]
    assert tiny_bin.variables["decoder/embeddings/weight"].shape == (51864, 384)
    assert tiny_bin.variables["encoder/conv1/weight"].dtype == np.float16
    assert tiny_bin.variables["encoder/layer_0/self_attention/linear_0/weight"].shape == (3 * 384, 384)  # fused qkv
    assert tiny_bin.variables["encoder/num_heads"].shape == () and int(tiny_bin.variables["encoder/num_heads"]) == 6
    assert tiny_bin.variables["encoder/num_heads"].dtype == np.int16
    assert len(tiny_bin.variables) == 148


def test_every_dtype_scalar_and_alias_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    model = Ct2Model(
        binary_version=6,
        spec="TestSpec",
        revision=2,
        variables={
            "z/float32": rng.standard_normal((2, 3)).astype(np.float32),
            "a/float16": rng.standard_normal(5).astype(np.float16),
            "int8": np.array([[-128, 0, 127]], dtype=np.int8),
            "int16": np.array([-300, 300], dtype=np.int16),
            "int32": np.array(7, dtype=np.int32),  # a scalar
            "bfloat16": np.array([0x3F80, 0xC000], dtype=np.uint16),  # 1.0, -2.0
            "empty": np.zeros((0, 4), dtype=np.float32),
        },
        aliases={"copy/of/float16": "a/float16"},
    )
    path = write_model_bin(model, tmp_path / "model.bin")
    back = read_model_bin(path)
    assert (back.binary_version, back.spec, back.revision) == (6, "TestSpec", 2)
    assert list(back.variables) == list(model.variables)  # dict order is kept, not re-sorted
    for name, value in model.variables.items():
        assert back.variables[name].dtype == value.dtype, name
        assert back.variables[name].shape == value.shape, name
        assert np.array_equal(back.variables[name], value), name
    assert back.aliases == model.aliases
    assert bfloat16_to_float32(back.variables["bfloat16"]).tolist() == [1.0, -2.0]
    # Writing what was read gives the same bytes again.
    assert _sha256(write_model_bin(back, tmp_path / "again.bin")) == _sha256(path)


def test_read_arrays_are_writable_views(tiny_bin):
    # Zero-copy views of one bytearray, so a caller can edit weights in place before writing them back.
    assert tiny_bin.variables["encoder/conv1/bias"].flags.writeable


def _small(tmp_path: Path) -> bytes:
    model = Ct2Model(6, "S", 1, {"w": np.arange(4, dtype=np.float32)}, {})
    return write_model_bin(model, tmp_path / "small.bin").read_bytes()


def test_truncated_file_is_refused(tmp_path):
    data = _small(tmp_path)
    (tmp_path / "cut.bin").write_bytes(data[:-6])
    with pytest.raises(Ct2FormatError, match="truncated"):
        read_model_bin(tmp_path / "cut.bin")


def test_trailing_bytes_are_refused(tmp_path):
    (tmp_path / "long.bin").write_bytes(_small(tmp_path) + b"\0\0")
    with pytest.raises(Ct2FormatError, match="left after the aliases"):
        read_model_bin(tmp_path / "long.bin")


def test_unknown_binary_version_is_refused(tmp_path):
    data = _small(tmp_path)
    (tmp_path / "v9.bin").write_bytes(struct.pack("<I", 9) + data[4:])
    with pytest.raises(Ct2FormatError, match="binary version 9"):
        read_model_bin(tmp_path / "v9.bin")


def test_size_that_disagrees_with_the_shape_is_refused(tmp_path):
    data = bytearray(_small(tmp_path))
    # The variable's byte count sits right before its 16 bytes of values; claim 12 instead of 16.
    at = data.index(struct.pack("<I", 16))
    data[at : at + 4] = struct.pack("<I", 12)
    (tmp_path / "bad.bin").write_bytes(bytes(data))
    with pytest.raises(Ct2FormatError, match="needs 16"):
        read_model_bin(tmp_path / "bad.bin")


def test_unwritable_dtype_and_dangling_alias_are_refused(tmp_path):
    with pytest.raises(Ct2FormatError, match="float64"):
        write_model_bin(Ct2Model(6, "S", 1, {"w": np.zeros(2)}, {}), tmp_path / "f64.bin")
    with pytest.raises(Ct2FormatError, match="not stored"):
        write_model_bin(Ct2Model(6, "S", 1, {"w": np.zeros(2, np.float32)}, {"a": "nope"}), tmp_path / "alias.bin")
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob(".*.tmp"))  # nothing half-written left
