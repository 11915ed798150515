"""CTranslate2's `model.bin`, read and written by us (numpy and the standard library only).

The layout, as ctranslate2's own writer produces it (`ctranslate2/specs/model_spec.py`, `ModelSpec._serialize`)
and its C++ loader reads it; every integer is little-endian and nothing is padded:

    uint32  binary_version                      (ctranslate2 4.x writes 6)
    string  spec name                           (e.g. "WhisperSpec")          } binary_version >= 2
    uint32  spec revision                       (WhisperSpec: 3)              }
    uint32  number of variables, then for each:
        string  name                            ("encoder/layer_0/ffn/linear_0/weight", ...)
        uint8   rank, then rank x uint32 dims   (rank 0: a scalar such as "encoder/num_heads")
        uint8   dtype id                        (DTYPE_IDS below)             } binary_version >= 4
        uint32  number of bytes                                               }
        bytes   the values, C order
    uint32  number of aliases, then for each:   (binary_version >= 3)
        string  alias, string  target variable  (a variable equal to another is stored once)

    string = uint16 length including a trailing NUL, the UTF-8 bytes, the NUL.

Contract:
- `read_model_bin(path)` returns a `Ct2Model` whose `variables` keep the file's order and the stored dtype
  (float32, float16, int8, int16, int32; bfloat16 as `np.uint16` bit patterns, since numpy has no bfloat16),
  and whose `aliases` map alias -> target name. It reads binary versions 4 to 6 (the ones whose variable layout is
  the above) and raises `Ct2FormatError` on anything else, on a truncated file, a size that disagrees with the
  shape, or bytes left over after the aliases.
- `write_model_bin(model, path)` writes the variables and aliases in their dict order, so that reading a file and
  writing it back gives the same bytes. ctranslate2's loader looks variables up by name, so any order loads;
  ctranslate2 itself writes them sorted by name.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Order from ctranslate2's DataType enum (include/ctranslate2/types.h); the id is the index.
DTYPE_IDS: tuple[str, ...] = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
# bfloat16 has no numpy dtype: its 2-byte bit patterns are held as uint16 (and uint16 is no CTranslate2 type, so
# the writer can tell them apart without a side table).
_NUMPY_OF = {
    "float32": np.dtype("<f4"),
    "int8": np.dtype("i1"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "float16": np.dtype("<f2"),
    "bfloat16": np.dtype("<u2"),
}
# numpy dtype name (whatever the byte order) -> CTranslate2 dtype id.
_ID_OF_NUMPY = {_NUMPY_OF[name].name: i for i, name in enumerate(DTYPE_IDS)}
READABLE_VERSIONS = range(4, 7)
CURRENT_BINARY_VERSION = 6


class Ct2FormatError(ValueError):
    """The bytes are not a `model.bin` this module can read (or a model it can write)."""


@dataclass
class Ct2Model:
    """The content of one `model.bin`.

    `variables`: name -> array, in the file's order, with the stored dtype (bfloat16 as uint16 bit patterns);
    scalars such as "encoder/num_heads" are 0-d arrays. `aliases`: alias name -> name of the stored variable it
    repeats (ctranslate2 stores equal variables once, e.g. the output projection tied to the embeddings).
    """

    binary_version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> np.ndarray:
        """The array for `name`, following an alias to the variable it stands for."""
        return self.variables[self.aliases.get(name, name)]

    def names(self) -> list[str]:
        """Every name a loader can look up: the stored variables, then the aliases."""
        return [*self.variables, *self.aliases]


def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """Decode bfloat16 bit patterns (uint16, as `read_model_bin` holds them) to float32, exactly."""
    if bits.dtype != np.uint16:
        raise TypeError(f"expected bfloat16 bit patterns as uint16, got {bits.dtype}")
    # bfloat16 is the top half of a float32: shift the bits into place and reinterpret.
    return (bits.astype("<u4") << 16).view("<f4")


class _Reader:
    def __init__(self, data: bytearray | bytes, path: str):
        self.data = data
        self.view = memoryview(data)
        self.pos = 0
        self.path = path

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise Ct2FormatError(f"{self.path}: truncated at byte {self.pos} (wanted {n} more bytes)")
        chunk = self.view[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))[0]

    def string(self) -> str:
        length = self.unpack("<H")
        raw = bytes(self.take(length))
        if length == 0 or raw[-1] != 0:
            raise Ct2FormatError(f"{self.path}: string before byte {self.pos} is not NUL-terminated")
        return raw[:-1].decode("utf-8")


def read_model_bin(path: str | os.PathLike) -> Ct2Model:
    """Read a CTranslate2 `model.bin` (see the module docstring for the layout and the errors)."""
    path = str(path)
    with open(path, "rb") as handle:
        # One bytearray for the whole file: the arrays are writable zero-copy views of it.
        data = bytearray(handle.read())
    reader = _Reader(data, path)
    version = reader.unpack("<I")
    if version not in READABLE_VERSIONS:
        raise Ct2FormatError(
            f"{path}: binary version {version} is not supported (readable: "
            f"{READABLE_VERSIONS.start}..{READABLE_VERSIONS.stop - 1})"
        )
    spec = reader.string()
    revision = reader.unpack("<I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(reader.unpack("<I")):
        name = reader.string()
        rank = reader.unpack("<B")
        shape = tuple(reader.unpack("<I") for _ in range(rank))
        type_id = reader.unpack("<B")
        num_bytes = reader.unpack("<I")
        if type_id >= len(DTYPE_IDS):
            raise Ct2FormatError(f"{path}: variable {name!r} has unknown dtype id {type_id}")
        dtype = _NUMPY_OF[DTYPE_IDS[type_id]]
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if num_bytes != expected:
            raise Ct2FormatError(
                f"{path}: variable {name!r} has {num_bytes} bytes, but shape {shape} of {DTYPE_IDS[type_id]} "
                f"needs {expected}"
            )
        if name in variables:
            raise Ct2FormatError(f"{path}: variable {name!r} is stored twice")
        start = reader.pos
        reader.take(num_bytes)
        variables[name] = np.frombuffer(data, dtype=dtype, count=num_bytes // dtype.itemsize, offset=start).reshape(
            shape
        )
    aliases: dict[str, str] = {}
    for _ in range(reader.unpack("<I")):
        alias = reader.string()
        aliases[alias] = reader.string()
    if reader.pos != len(data):
        raise Ct2FormatError(f"{path}: {len(data) - reader.pos} bytes left after the aliases")
    for alias, target in aliases.items():
        if target not in variables:
            raise Ct2FormatError(f"{path}: alias {alias!r} points to {target!r}, which is not stored")
    return Ct2Model(binary_version=version, spec=spec, revision=revision, variables=variables, aliases=aliases)


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) + 1 > 0xFFFF:
        raise Ct2FormatError(f"string too long for model.bin: {text[:40]!r}...")
    return struct.pack("<H", len(raw) + 1) + raw + b"\0"


def _type_id(name: str, array: np.ndarray) -> int:
    if array.nbytes >= 2**32:
        raise Ct2FormatError(f"variable {name!r} has {array.nbytes} bytes; model.bin sizes are 32-bit")
    try:
        return _ID_OF_NUMPY[array.dtype.name]
    except KeyError:
        raise Ct2FormatError(
            f"variable {name!r} has dtype {array.dtype}; model.bin stores {', '.join(DTYPE_IDS)} "
            "(bfloat16 as uint16 bit patterns)"
        ) from None


def write_model_bin(model: Ct2Model, path: str | os.PathLike) -> Path:
    """Write `model` as a `model.bin` at `path` (variables and aliases in dict order); returns the path.

    Raises `Ct2FormatError` for a dtype model.bin cannot hold, an alias to a variable that is not stored, or a
    binary version outside 4..6. The file is written to a temporary name and renamed, so a crash leaves no
    half-written model.bin behind.
    """
    if model.binary_version not in READABLE_VERSIONS:
        raise Ct2FormatError(f"cannot write binary version {model.binary_version}")
    for alias, target in model.aliases.items():
        if target not in model.variables:
            raise Ct2FormatError(f"alias {alias!r} points to {target!r}, which is not stored")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(struct.pack("<I", model.binary_version))
            out.write(_string(model.spec))
            out.write(struct.pack("<I", model.revision))
            out.write(struct.pack("<I", len(model.variables)))
            for name, array in model.variables.items():
                array = np.asarray(array)
                type_id = _type_id(name, array)
                out.write(_string(name))
                out.write(struct.pack("<B", array.ndim))
                out.write(struct.pack(f"<{array.ndim}I", *array.shape))
                out.write(struct.pack("<B", type_id))
                out.write(struct.pack("<I", array.nbytes))
                # Little-endian C order, as the loader expects (a no-op for arrays read by read_model_bin).
                out.write(np.ascontiguousarray(array, dtype=_NUMPY_OF[DTYPE_IDS[type_id]]).tobytes())
            out.write(struct.pack("<I", len(model.aliases)))
            for alias, target in model.aliases.items():
                out.write(_string(alias))
                out.write(_string(target))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
