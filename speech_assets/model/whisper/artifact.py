"""A Whisper checkpoint as bytes: one deterministic, uncompressed tar holding a card and a CTranslate2 folder.

    blob = pack(ct2_dir, card, extra={"train_config": {...}})   # same inputs -> same bytes
    is_whisper_artifact(blob)                                    # cheap: the tar magic and the first member's name
    card, extra = read_card(blob)                                # reads only the head of the tar
    ct2 = unpack(blob, into=tmp)                                 # -> tmp / "ct2", safely extracted
    ct2 = cached_ct2_dir(blob)                                   # -> an extracted folder shared by every request
    card = make_card(ct2_dir, parameters, base_model, extra)     # the card's tokenizer fields, read from the folder

Layout (every member a regular file, USTAR headers, names sorted, mtime 0, uid/gid 0, no user/group names,
mode 0644):
- `speech_assets.json` first: `{"format": "speech_assets.whisper/1", "card": {ModelCard fields}, "extra": {...}}`
  (keys sorted, so the same card always serialises to the same bytes);
- `ct2/<file>` for each file of the CTranslate2 folder, in name order: `model.bin`, `config.json`,
  `tokenizer.json`, `vocabulary.*` (whatever the converter wrote; the folder must be flat).

Uncompressed on purpose: `model.bin` (float16 weights) barely compresses, and an uncompressed tar lets
`describe` read the card from the first blocks without touching the weights.
Standard library only (no torch, no ctranslate2): the registry and the service can read cards cheaply.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import uuid
from pathlib import Path

from speech_assets.model.contract import ModelCard

FORMAT = "speech_assets.whisper/1"
CARD_NAME = "speech_assets.json"
CT2_PREFIX = "ct2/"
REQUIRED_CT2_FILES = ("model.bin", "config.json", "tokenizer.json")
CACHE_ENV = "SPEECH_ASSETS_WHISPER_CACHE"

_BLOCK = 512
_FILE_MODE = 0o644


class ArtifactError(ValueError):
    """The bytes are not a Whisper checkpoint this module wrote, or a member is unsafe or missing."""


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = _FILE_MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def _card_json(card: ModelCard, extra: dict) -> bytes:
    head = {"format": FORMAT, "card": card.to_dict(), "extra": extra}
    try:
        return json.dumps(head, sort_keys=True, indent=1, ensure_ascii=True, allow_nan=False).encode("ascii")
    except (TypeError, ValueError) as exc:  # a card holds only plain values: say which part is not
        raise ArtifactError(f"card and extra must be plain JSON values: {exc}") from exc


def _ct2_files(ct2_dir: Path) -> list[Path]:
    ct2_dir = Path(ct2_dir)
    if not ct2_dir.is_dir():
        raise ArtifactError(f"{ct2_dir} is not a folder")
    files = sorted(p for p in ct2_dir.iterdir())
    nested = [p.name for p in files if not p.is_file()]
    if nested:
        raise ArtifactError(f"a CTranslate2 folder is flat; {ct2_dir} also holds {nested}")
    names = {p.name for p in files}
    missing = [n for n in REQUIRED_CT2_FILES if n not in names]
    if missing:
        raise ArtifactError(f"{ct2_dir} lacks {missing} (a CTranslate2 Whisper folder with its tokenizer.json)")
    if not any(n.startswith("vocabulary.") for n in names):
        raise ArtifactError(f"{ct2_dir} has no vocabulary.* file (CTranslate2 needs one to load the model)")
    return files


def vocabulary_size(ct2_dir: Path) -> int:
    """The model's output size (timestamps included) from the folder's vocabulary file, without loading it."""
    ct2_dir = Path(ct2_dir)
    if (ct2_dir / "vocabulary.json").is_file():
        return len(json.loads((ct2_dir / "vocabulary.json").read_text(encoding="utf-8")))
    with open(ct2_dir / "vocabulary.txt", encoding="utf-8") as f:
        return sum(1 for _ in f)


def vocabulary_hash(ct2_dir: Path) -> str:
    """First 16 hex digits of the sha256 of tokenizer.json's vocabulary (token -> id, keys sorted): it changes
    exactly when the output alphabet does, not when a tokenizer.json is reformatted."""
    vocab = json.loads((Path(ct2_dir) / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    text = json.dumps(vocab, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def make_card(ct2_dir: Path, parameters: int, base_model: str | None, extra: dict | None = None) -> ModelCard:
    """The card of a Whisper CTranslate2 folder: family "whisper", this format, the tokenizer described and
    hashed from the folder's own files."""
    return ModelCard(
        family="whisper", format=FORMAT, parameters=int(parameters), base_model=base_model,
        tokenizer=f"whisper byte-level BPE ({vocabulary_size(ct2_dir)} tokens)",
        vocabulary_hash=vocabulary_hash(ct2_dir), extra=dict(extra or {}),
    )


def weights_sha256(ct2_dir: Path) -> str:
    """sha256 of the folder's `model.bin`: what names the weights (the backend's `digest`)."""
    h = hashlib.sha256()
    with open(Path(ct2_dir) / "model.bin", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pack(ct2_dir: Path, card: ModelCard, extra: dict | None = None) -> bytes:
    """The checkpoint bytes of `ct2_dir` with `card` and `extra` (plain JSON values). Deterministic: the same
    folder contents, card and extra give the same bytes, whatever the files' times, owners or modes on disk."""
    files = _ct2_files(ct2_dir)
    head = _card_json(card, dict(extra or {}))
    buf = io.BytesIO()
    # USTAR, not PAX: PAX would add extended headers (times, long names) that vary with the writer
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(_member(CARD_NAME, len(head)), io.BytesIO(head))
        for path in files:
            with open(path, "rb") as f:
                tar.addfile(_member(CT2_PREFIX + path.name, path.stat().st_size), f)
    return buf.getvalue()


def is_whisper_artifact(blob: bytes) -> bool:
    """True for bytes `pack` wrote: a USTAR header whose first member is `speech_assets.json`. Looks at the
    first 512 bytes only, so `backend_of` can ask every backend about a large checkpoint for free."""
    if len(blob) < _BLOCK or bytes(blob[257:262]) != b"ustar":
        return False
    name = bytes(blob[:100]).split(b"\0", 1)[0]
    return name == CARD_NAME.encode()


def _open(blob: bytes) -> tarfile.TarFile:
    if not is_whisper_artifact(blob):
        raise ArtifactError(
            f"not a Whisper checkpoint ({len(blob)} bytes, starts {bytes(blob[:8])!r}): expected a tar whose "
            f"first member is {CARD_NAME}"
        )
    return tarfile.open(fileobj=io.BytesIO(blob), mode="r:")


def read_card(blob: bytes) -> tuple[ModelCard, dict]:
    """(the card, the artifact's extra) from the first member only: the weights are not read."""
    with _open(blob) as tar:
        first = tar.next()
        if first is None or first.name != CARD_NAME or not first.isfile():
            raise ArtifactError(f"the first member of a Whisper checkpoint must be the file {CARD_NAME}")
        head = json.loads(tar.extractfile(first).read())
    if head.get("format") != FORMAT:
        raise ArtifactError(f"unknown Whisper checkpoint format {head.get('format')!r}; this code reads {FORMAT}")
    try:
        card = ModelCard(**head["card"])
    except TypeError as exc:
        raise ArtifactError(f"the card does not match ModelCard: {exc}") from exc
    return card, dict(head.get("extra") or {})


def _safe_name(name: str) -> str:
    """The member's file name inside `ct2/`, or ArtifactError for anything that could land outside it."""
    if not name.startswith(CT2_PREFIX):
        raise ArtifactError(f"unexpected member {name!r} (only {CARD_NAME} and {CT2_PREFIX}* belong here)")
    rest = name[len(CT2_PREFIX):]
    if not rest or "/" in rest or "\\" in rest or rest in (".", "..") or "\0" in rest:
        raise ArtifactError(f"unsafe member name {name!r}: a checkpoint holds a flat {CT2_PREFIX} folder")
    return rest


def unpack(blob: bytes, into: Path) -> Path:
    """Extract the CTranslate2 folder to `into / "ct2"` and return that path. Safe: only regular files with
    plain names under `ct2/` are written (no absolute paths, no `..`, no links or devices); anything else is an
    ArtifactError before a byte is written."""
    into = Path(into)
    out = into / "ct2"
    with _open(blob) as tar:
        members = tar.getmembers()
        if not members or members[0].name != CARD_NAME:
            raise ArtifactError(f"the first member of a Whisper checkpoint must be {CARD_NAME}")
        plan = []
        for m in members[1:]:
            if not m.isfile():
                raise ArtifactError(f"member {m.name!r} is not a regular file")
            plan.append((m, _safe_name(m.name)))
        names = {n for _, n in plan}
        missing = [n for n in REQUIRED_CT2_FILES if n not in names]
        if missing:
            raise ArtifactError(f"the checkpoint's {CT2_PREFIX} folder lacks {missing}")
        out.mkdir(parents=True, exist_ok=True)
        for m, name in plan:
            src = tar.extractfile(m)
            with open(out / name, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    return out


def cache_root() -> Path:
    """Where extracted checkpoints live: $SPEECH_ASSETS_WHISPER_CACHE, default ~/.cache/speech_assets/whisper."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "speech_assets" / "whisper"


def cached_ct2_dir(blob: bytes, root: Path | None = None) -> Path:
    """The extracted CTranslate2 folder of `blob`, keyed by the artifact's sha256: the first call extracts,
    later calls (every request a service handles) return the same folder. Extraction goes to a temporary
    folder renamed into place, so a reader never sees a half-written model and concurrent first calls are
    safe (the loser of the rename discards its copy)."""
    root = Path(root) if root is not None else cache_root()
    key = hashlib.sha256(blob).hexdigest()
    final = root / key
    if (final / "ct2" / "model.bin").is_file():
        return final / "ct2"
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-{uuid.uuid4().hex[:8]}-", dir=root))
    try:
        unpack(blob, tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "ct2" / "model.bin").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final / "ct2"
