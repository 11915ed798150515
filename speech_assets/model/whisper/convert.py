"""Whisper between CTranslate2 (what faster-whisper serves) and Hugging Face transformers (what we fine-tune).

    model = ct2_to_hf(ct2_dir)                                   # WhisperForConditionalGeneration, float32, eval()
    ...fine-tune model...
    hf_to_ct2(model, tokenizer_dir=ct2_dir, out_dir=new_dir)     # a CTranslate2 folder faster-whisper loads
    tok = load_tokenizer(ct2_dir); ids = special_token_ids(tok)  # ids["sot"], ids["eot"], ids["notimestamps"], ...

`ct2_to_hf` is written by us: it reads `model.bin` with `ct2_format`, derives the `WhisperConfig` from the
variables' shapes and scalars, splits CTranslate2's fused projections, and loads the result with strict
state-dict loading. `hf_to_ct2` goes back through ctranslate2's own `TransformersConverter`, so a fine-tuned model
is exported exactly as the CTranslate2 project would export it. A float16 CTranslate2 model survives the round
trip bit for bit (float16 -> float32 is exact, and so is the way back).

Nothing here reaches a hub: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE are set (if unset) before transformers is
imported, and every tokenizer comes from a local `tokenizer.json`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from speech_assets.model.whisper.ct2_format import Ct2Model, bfloat16_to_float32, read_model_bin

if TYPE_CHECKING:  # heavy imports stay inside the functions
    import tokenizers
    import torch
    from transformers import WhisperForConditionalGeneration

# d_model -> (size name, attention heads, layers per stack) of OpenAI's Whisper sizes. model.bin stores the head
# counts as scalars; this table is the fallback when they are missing (and names the size in messages).
WHISPER_SIZES: dict[int, tuple[str, int, int]] = {
    384: ("tiny", 6, 4),
    512: ("base", 8, 6),
    768: ("small", 12, 12),
    1024: ("medium", 16, 24),
    1280: ("large", 20, 32),
}
# OpenAI's rule (whisper/model.py, `is_multilingual`): English-only models have 51864 tokens, multilingual ones
# 51865 or more (large-v3: 51866).
ENGLISH_ONLY_VOCAB = 51864
NUM_TIMESTAMP_TOKENS = 1501  # <|0.00|> .. <|30.00|>, after <|notimestamps|>
CT2_SPEC = "WhisperSpec"
CT2_REVISIONS = (3,)  # the WhisperSpec revision whose variable layout this module maps
_GELU = 3  # ctranslate2.specs.common_spec.Activation.GELU


class TokenizerMissing(FileNotFoundError):
    """A Whisper folder has no `tokenizer.json` (faster-whisper would then try to download one from the hub)."""


class ConversionError(ValueError):
    """The weights do not map one-to-one between the two formats (the message lists what is left over)."""


def offline() -> None:
    """Keep transformers / huggingface_hub / faster-whisper off the network (unless the caller set otherwise)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# --- tokenizer ---------------------------------------------------------------------------------------------------


def tokenizer_missing_message(folder: Path) -> str:
    """The message for a Whisper folder without tokenizer.json: what to copy in, and from which model."""
    hint = "openai/whisper-<size> (or openai/whisper-<size>.en for an English-only model)"
    for name in ("vocabulary.txt", "vocabulary.json"):
        vocab = folder / name
        if vocab.is_file():
            # The vocabulary's length tells English-only from multilingual, which have different tokenizers.
            size = (
                len(json.loads(vocab.read_text(encoding="utf-8")))
                if name.endswith(".json")
                else sum(1 for _ in vocab.open(encoding="utf-8"))
            )
            kind = "English-only" if size <= ENGLISH_ONLY_VOCAB else "multilingual"
            suffix = ".en" if kind == "English-only" else ""
            hint = f"openai/whisper-<size>{suffix} (this model's vocabulary has {size} tokens: {kind})"
            break
    return (
        f"{folder} has no tokenizer.json, so faster-whisper would try to download one. Copy the tokenizer.json of "
        f"the matching {hint} model into {folder}."
    )


def load_tokenizer(ct2_dir: str | Path) -> "tokenizers.Tokenizer":
    """The `tokenizers.Tokenizer` of a Whisper folder (CTranslate2 or Hugging Face), from its `tokenizer.json`.

    Raises `TokenizerMissing` (with what to copy in) when the folder has none.
    """
    import tokenizers

    folder = Path(ct2_dir)
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise TokenizerMissing(tokenizer_missing_message(folder))
    return tokenizers.Tokenizer.from_file(str(path))


def special_token_ids(ct2_dir_or_tokenizer: "str | Path | tokenizers.Tokenizer") -> dict[str, int]:
    """Whisper's special token ids, from a folder's tokenizer.json or a loaded `tokenizers.Tokenizer`.

    Keys: "sot" (<|startoftranscript|>, the decoder start), "eot" (<|endoftext|>: end, padding and bos),
    "transcribe", "translate", "sot_prev" (<|startofprev|>), "sot_lm" (<|startoflm|>), "nospeech" and its
    synonym "nocaptions" (<|nocaptions|>), "notimestamps" and its synonym "no_timestamps" (<|notimestamps|>),
    "timestamp_begin" (<|0.00|>, the first timestamp token), "vocab_size" (the model's output size, timestamps
    included), "english_only" (1 for an `.en` model: vocab_size 51864; 0 for a multilingual one: 51865+), and,
    for a multilingual model only, "en" (<|en|>; English-only models take no language token).

    A multilingual decoder prompt is [sot, en, transcribe, notimestamps]; an English-only one is
    [sot, notimestamps]. Raises KeyError naming a special token the tokenizer lacks.
    """
    tok = ct2_dir_or_tokenizer if hasattr(ct2_dir_or_tokenizer, "token_to_id") else load_tokenizer(ct2_dir_or_tokenizer)

    def need(token: str) -> int:
        token_id = tok.token_to_id(token)
        if token_id is None:
            raise KeyError(f"the tokenizer has no {token} token: not a Whisper tokenizer")
        return int(token_id)

    ids = {
        "sot": need("<|startoftranscript|>"),
        "eot": need("<|endoftext|>"),
        "transcribe": need("<|transcribe|>"),
        "translate": need("<|translate|>"),
        "sot_prev": need("<|startofprev|>"),
        "sot_lm": need("<|startoflm|>"),
        "nospeech": need("<|nocaptions|>"),
        "notimestamps": need("<|notimestamps|>"),
    }
    ids["nocaptions"] = ids["nospeech"]
    ids["no_timestamps"] = ids["notimestamps"]
    # The timestamps follow <|notimestamps|>; tokenizer.json does not list them, the model's vocabulary does.
    ids["timestamp_begin"] = ids["notimestamps"] + 1
    ids["vocab_size"] = ids["timestamp_begin"] + NUM_TIMESTAMP_TOKENS
    english_only = ids["vocab_size"] <= ENGLISH_ONLY_VOCAB
    ids["english_only"] = int(english_only)
    if not english_only:
        ids["en"] = need("<|en|>")
    return ids


# --- CTranslate2 -> Hugging Face ---------------------------------------------------------------------------------


class _Variables:
    """model.bin's variables as float32 arrays, with a record of which ones were used."""

    def __init__(self, model: Ct2Model):
        self.model = model
        self.used: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self.model.variables or name in self.model.aliases

    def raw(self, name: str) -> np.ndarray:
        if not self.has(name):
            raise ConversionError(f"model.bin has no variable {name!r}")
        self.used.add(name)
        return self.model.get(name)

    def scalar(self, name: str, default: int | None = None) -> int | None:
        if not self.has(name):
            return default
        return int(self.raw(name))

    def weight(self, name: str) -> np.ndarray:
        """A float32 copy of `name`, dequantized the way CTranslate2 does if model.bin holds it as int8/int16."""
        value = self.raw(name)
        if value.dtype == np.uint16:  # bfloat16 bit patterns
            return bfloat16_to_float32(value)
        if value.dtype in (np.int8, np.int16):
            # Quantized weights: CTranslate2 stores round(w * scale) with `<name>_scale` (per output row for int8,
            # one scalar for int16) and computes w = q / scale.
            # An alias (the tied projection) shares its target's scale: ctranslate2 aliases before quantizing.
            target = self.model.aliases.get(name, name)
            scale = self.raw(f"{target}_scale").astype(np.float32)
            q = value.astype(np.float32)
            if scale.ndim == 0:
                return q / scale
            return q / scale.reshape((-1,) + (1,) * (q.ndim - 1))
        return value.astype(np.float32)

    def leftovers(self) -> list[str]:
        return sorted(set(self.model.names()) - self.used)


def _read_config_json(ct2_dir: Path) -> dict[str, Any]:
    path = ct2_dir / "config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _count_layers(names: list[str], prefix: str) -> int:
    # "encoder/layer_3/..." counts; "encoder/layer_norm/..." (the final norm) does not.
    pattern = re.compile(re.escape(prefix) + r"(\d+)/")
    indices = {int(m.group(1)) for m in map(pattern.match, names) if m}
    if indices != set(range(len(indices))):
        raise ConversionError(f"{prefix}N layers are not numbered 0..n-1: {sorted(indices)}")
    return len(indices)


def _heads(var: _Variables, stack: str, config_json: dict[str, Any], d_model: int) -> int:
    """Attention heads of one stack: model.bin's scalar (what CTranslate2 runs with), else config.json, else the
    Whisper sizes table. A config.json value that disagrees with model.bin is an error, not a silent choice."""
    stored = var.scalar(f"{stack}/num_heads")
    from_config = config_json.get(f"{stack}_attention_heads", config_json.get("num_heads"))
    if stored is not None and from_config is not None and int(from_config) != stored:
        raise ConversionError(f"{stack} heads: model.bin says {stored}, config.json says {from_config}")
    if stored is not None:
        return stored
    if from_config is not None:
        return int(from_config)
    if d_model not in WHISPER_SIZES:
        raise ConversionError(
            f"cannot tell the {stack} head count: model.bin and config.json do not say, and d_model={d_model} is "
            f"not a Whisper size ({sorted(WHISPER_SIZES)})"
        )
    return WHISPER_SIZES[d_model][1]


def _check_decoder_scalars(var: _Variables) -> None:
    """The decoder's architecture flags must be the ones HF's Whisper implements (they are read, hence used)."""
    expected = {
        "decoder/pre_norm": 1,
        "decoder/activation": _GELU,
        "decoder/scale_embeddings": 0,
        "decoder/alibi": 0,
        # Written by ctranslate2 >= 4.x even when ALiBi is off (older model.bin files lack them).
        "decoder/alibi_use_positive_positions": 0,
        "decoder/scale_alibi": 0,
        "decoder/start_from_zero_embedding": 0,
    }
    for name, want in expected.items():
        got = var.scalar(name, default=want)
        if got != want:
            raise ConversionError(f"{name} is {got}; a Whisper decoder has {want}")
    # Alignment for CTranslate2's own (non-Whisper) alignment API; Whisper's alignment heads live in config.json.
    var.scalar("decoder/alignment_layer")
    var.scalar("decoder/alignment_heads")


def _split(array: np.ndarray, parts: int, what: str) -> list[np.ndarray]:
    if array.shape[0] % parts:
        raise ConversionError(f"{what}: {array.shape[0]} rows do not split into {parts}")
    return np.split(array, parts, axis=0)


def _attention(var: _Variables, hf: dict[str, np.ndarray], ct2: str, prefix: str, fused_qkv: bool) -> None:
    """One attention block. CTranslate2 fuses q,k,v (self-attention: linear_0, out: linear_1) or k,v
    (cross-attention: q linear_0, kv linear_1, out linear_2); HF keeps four projections, k without bias."""
    if fused_qkv:
        q_w, k_w, v_w = _split(var.weight(f"{ct2}/linear_0/weight"), 3, f"{ct2}/linear_0/weight")
        q_b, k_b, v_b = _split(var.weight(f"{ct2}/linear_0/bias"), 3, f"{ct2}/linear_0/bias")
        out = "linear_1"
    else:
        q_w, q_b = var.weight(f"{ct2}/linear_0/weight"), var.weight(f"{ct2}/linear_0/bias")
        k_w, v_w = _split(var.weight(f"{ct2}/linear_1/weight"), 2, f"{ct2}/linear_1/weight")
        k_b, v_b = _split(var.weight(f"{ct2}/linear_1/bias"), 2, f"{ct2}/linear_1/bias")
        out = "linear_2"
    if np.any(k_b != 0):
        # CTranslate2's converter writes zeros for Whisper's missing key bias. A non-zero one adds q.b_k to every
        # score of a query alike, which softmax cancels: dropping it changes no output, only the bytes.
        warnings.warn(f"{ct2}: non-zero key bias dropped (HF Whisper has none; softmax makes it a no-op)")
    hf[f"{prefix}.q_proj.weight"], hf[f"{prefix}.q_proj.bias"] = q_w, q_b
    hf[f"{prefix}.k_proj.weight"] = k_w
    hf[f"{prefix}.v_proj.weight"], hf[f"{prefix}.v_proj.bias"] = v_w, v_b
    hf[f"{prefix}.out_proj.weight"] = var.weight(f"{ct2}/{out}/weight")
    hf[f"{prefix}.out_proj.bias"] = var.weight(f"{ct2}/{out}/bias")


def _layer_norm(var: _Variables, hf: dict[str, np.ndarray], ct2: str, hf_name: str) -> None:
    hf[f"{hf_name}.weight"] = var.weight(f"{ct2}/gamma")
    hf[f"{hf_name}.bias"] = var.weight(f"{ct2}/beta")


def _linear(var: _Variables, hf: dict[str, np.ndarray], ct2: str, hf_name: str) -> None:
    hf[f"{hf_name}.weight"] = var.weight(f"{ct2}/weight")
    hf[f"{hf_name}.bias"] = var.weight(f"{ct2}/bias")


def _ffn(var: _Variables, hf: dict[str, np.ndarray], ct2: str, hf_layer: str) -> None:
    _linear(var, hf, f"{ct2}/ffn/linear_0", f"{hf_layer}.fc1")
    _linear(var, hf, f"{ct2}/ffn/linear_1", f"{hf_layer}.fc2")
    _layer_norm(var, hf, f"{ct2}/ffn/layer_norm", f"{hf_layer}.final_layer_norm")


def _generation_config(config, ids: dict[str, int], config_json: dict[str, Any], tok) -> Any:
    """Whisper's generation settings, from the tokenizer and the CTranslate2 config.json, so that HF's
    `generate` prompts like faster-whisper and `hf_to_ct2` writes the same config.json back."""
    from transformers import GenerationConfig

    english_only = bool(ids["english_only"])
    gen = GenerationConfig(
        decoder_start_token_id=ids["sot"],
        bos_token_id=ids["eot"],
        eos_token_id=ids["eot"],
        pad_token_id=ids["eot"],
        max_length=config.max_target_positions,
        suppress_tokens=list(config_json.get("suppress_ids") or []),
        begin_suppress_tokens=list(config_json.get("suppress_ids_begin") or [220, ids["eot"]]),
        no_timestamps_token_id=ids["notimestamps"],
        prev_sot_token_id=ids["sot_prev"],
        is_multilingual=not english_only,
        return_timestamps=False,
    )
    if config_json.get("alignment_heads"):
        gen.alignment_heads = [list(pair) for pair in config_json["alignment_heads"]]
    if not english_only:
        # Kept verbatim (token -> id) so that the export writes the same lang_ids back. Not for an English-only
        # model: with a lang_to_id, HF's generate runs language detection and puts a language token in the
        # prompt, which an .en model was never trained with (tiny.en then writes "Eight" where it says "8").
        lang_ids = config_json.get("lang_ids") or []
        if lang_ids:
            gen.lang_to_id = {tok.id_to_token(i): int(i) for i in lang_ids}
        gen.task_to_id = {"transcribe": ids["transcribe"], "translate": ids["translate"]}
    return gen


def ct2_to_hf(ct2_dir: str | Path, dtype: "torch.dtype | None" = None) -> "WhisperForConditionalGeneration":
    """A Hugging Face `WhisperForConditionalGeneration` (in `eval()` mode, on the CPU) with the weights of the
    CTranslate2 Whisper folder `ct2_dir` (model.bin, config.json, tokenizer.json), in `dtype` (float32 if None).

    The `WhisperConfig` comes from the variables: vocab size and d_model from the embeddings, layer counts from
    the layer names, max source/target positions from the position encodings, FFN width, mel bins from conv1;
    heads from model.bin's scalars (else config.json, else `WHISPER_SIZES`); special token ids from tokenizer.json;
    suppress_tokens, begin_suppress_tokens, alignment_heads and (multilingual models only) lang ids from
    config.json, on the model's `generation_config`, which `generate` reads: it prompts [sot, notimestamps] for
    an English-only model, [sot, <lang>, transcribe, notimestamps] for a multilingual one. Fused projections are
    split; the output projection is tied to the decoder embeddings.
    int8/int16 weights are dequantized as CTranslate2 does, bfloat16 widened.

    Raises `ConversionError` when a CTranslate2 variable is left unused or an HF parameter unassigned (naming
    them), when the spec is not WhisperSpec revision 3, or when the architecture flags are not Whisper's;
    `TokenizerMissing` without tokenizer.json.
    """
    offline()
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    ct2_dir = Path(ct2_dir)
    dtype = dtype or torch.float32
    tok = load_tokenizer(ct2_dir)
    ids = special_token_ids(tok)
    config_json = _read_config_json(ct2_dir)
    ct2 = read_model_bin(ct2_dir / "model.bin")
    if ct2.spec != CT2_SPEC or ct2.revision not in CT2_REVISIONS:
        raise ConversionError(f"{ct2_dir}: {ct2.spec} revision {ct2.revision}, expected {CT2_SPEC} {CT2_REVISIONS}")
    var = _Variables(ct2)
    names = ct2.names()

    embeddings = var.weight("decoder/embeddings/weight")
    vocab_size, d_model = embeddings.shape
    if vocab_size != ids["vocab_size"]:
        raise ConversionError(
            f"{ct2_dir}: model.bin has {vocab_size} tokens but tokenizer.json implies {ids['vocab_size']}: "
            "the tokenizer is not this model's (English-only and multilingual ones differ)"
        )
    conv1 = var.raw("encoder/conv1/weight")
    config = WhisperConfig(
        vocab_size=int(vocab_size),
        num_mel_bins=int(conv1.shape[1]),
        d_model=int(d_model),
        encoder_layers=_count_layers(names, "encoder/layer_"),
        decoder_layers=_count_layers(names, "decoder/layer_"),
        encoder_attention_heads=_heads(var, "encoder", config_json, int(d_model)),
        decoder_attention_heads=_heads(var, "decoder", config_json, int(d_model)),
        encoder_ffn_dim=int(var.raw("encoder/layer_0/ffn/linear_0/weight").shape[0]),
        decoder_ffn_dim=int(var.raw("decoder/layer_0/ffn/linear_0/weight").shape[0]),
        max_source_positions=int(var.raw("encoder/position_encodings/encodings").shape[0]),
        max_target_positions=int(var.raw("decoder/position_encodings/encodings").shape[0]),
        decoder_start_token_id=ids["sot"],
        bos_token_id=ids["eot"],
        eos_token_id=ids["eot"],
        pad_token_id=ids["eot"],
        suppress_tokens=list(config_json.get("suppress_ids") or []),
        begin_suppress_tokens=list(config_json.get("suppress_ids_begin") or [220, ids["eot"]]),
        tie_word_embeddings=True,
    )
    _check_decoder_scalars(var)

    hf: dict[str, np.ndarray] = {}
    for side in ("encoder", "decoder"):
        hf[f"model.{side}.embed_positions.weight"] = var.weight(f"{side}/position_encodings/encodings")
        _layer_norm(var, hf, f"{side}/layer_norm", f"model.{side}.layer_norm")
    for conv in ("conv1", "conv2"):
        _linear(var, hf, f"encoder/{conv}", f"model.encoder.{conv}")
    for i in range(config.encoder_layers):
        ct2_layer, hf_layer = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
        _attention(var, hf, f"{ct2_layer}/self_attention", f"{hf_layer}.self_attn", fused_qkv=True)
        _layer_norm(var, hf, f"{ct2_layer}/self_attention/layer_norm", f"{hf_layer}.self_attn_layer_norm")
        _ffn(var, hf, ct2_layer, hf_layer)
    for i in range(config.decoder_layers):
        ct2_layer, hf_layer = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        _attention(var, hf, f"{ct2_layer}/self_attention", f"{hf_layer}.self_attn", fused_qkv=True)
        _layer_norm(var, hf, f"{ct2_layer}/self_attention/layer_norm", f"{hf_layer}.self_attn_layer_norm")
        _attention(var, hf, f"{ct2_layer}/attention", f"{hf_layer}.encoder_attn", fused_qkv=False)
        _layer_norm(var, hf, f"{ct2_layer}/attention/layer_norm", f"{hf_layer}.encoder_attn_layer_norm")
        _ffn(var, hf, ct2_layer, hf_layer)
    hf["model.decoder.embed_tokens.weight"] = embeddings
    projection = var.weight("decoder/projection/weight")
    if not np.array_equal(projection, embeddings):
        # HF's Whisper ties proj_out to embed_tokens; an untied model.bin would need an untied config.
        config.tie_word_embeddings = False
    hf["proj_out.weight"] = projection
    if var.has("decoder/projection/bias"):
        if np.any(var.weight("decoder/projection/bias") != 0):
            raise ConversionError("decoder/projection/bias is non-zero; HF Whisper's proj_out has no bias")

    leftovers = var.leftovers()
    if leftovers:
        raise ConversionError(f"{ct2_dir}: CTranslate2 variables with no HF parameter: {', '.join(leftovers)}")

    # Build on the meta device (no random init of weights that are overwritten next), then assign ours.
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    expected = set(model.state_dict())
    missing, extra = sorted(expected - set(hf)), sorted(set(hf) - expected)
    if missing or extra:
        raise ConversionError(f"HF parameters unassigned: {missing}; mapped names HF does not have: {extra}")
    state = {name: torch.from_numpy(np.ascontiguousarray(value)).to(dtype) for name, value in hf.items()}
    model.load_state_dict(state, strict=True, assign=True)
    if config.tie_word_embeddings:
        model.tie_weights()  # assign=True replaced both tensors; point proj_out back at embed_tokens
    stray = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.device.type == "meta"]
    if stray:
        raise ConversionError(f"HF tensors left without values: {stray}")
    model.generation_config = _generation_config(config, ids, config_json, tok)
    model.eval()
    return model


# --- Hugging Face -> CTranslate2 ---------------------------------------------------------------------------------

CT2_REQUIRED_FILES = ("config.json", "model.bin", "tokenizer.json")
# Extra files faster-whisper reads from a model folder when present (the mel settings of large-v3, for one).
_OPTIONAL_COPIES = ("preprocessor_config.json",)


def _whisper_tokenizer(tokenizer_json: Path):
    """transformers' Whisper tokenizer built from a local tokenizer.json (no hub lookup, no AutoTokenizer), with
    the `additional_special_tokens` list ctranslate2's converter reads."""
    offline()
    from transformers import WhisperTokenizerFast

    # In transformers 5 WhisperTokenizerFast is the tokenizers-backed WhisperTokenizer; both names work.
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(tokenizer_json))
    # ctranslate2's WhisperLoader falls back to `tokenizer.additional_special_tokens` for config.json's lang_ids
    # when the generation config has no lang_to_id. transformers 5 no longer has that attribute (a tokenizer made
    # from tokenizer.json alone knows <|endoftext|> as its only special token), so the fallback would give no
    # language ids and faster-whisper's language detection would break. Give it the list transformers 4 had: the
    # special added tokens of tokenizer.json, in id order.
    added = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("added_tokens", [])
    tokenizer.additional_special_tokens = [t["content"] for t in sorted(added, key=lambda t: t["id"]) if t["special"]]
    return tokenizer


def _converter_class():
    from ctranslate2.converters import TransformersConverter

    class _LocalTokenizerConverter(TransformersConverter):
        """ctranslate2's converter with the tokenizer built from our tokenizer.json (instead of AutoTokenizer's
        lookup), and the model loaded strictly from local files."""

        def __init__(self, model_dir: str, tokenizer_json: Path, **kwargs):
            super().__init__(model_dir, **kwargs)
            self._tokenizer_json = tokenizer_json

        def load_model(self, model_class, model_name_or_path, **kwargs):
            return model_class.from_pretrained(model_name_or_path, local_files_only=True, **kwargs)

        def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):
            return _whisper_tokenizer(self._tokenizer_json)

    return _LocalTokenizerConverter


def hf_to_ct2(
    model: "WhisperForConditionalGeneration",
    tokenizer_dir: str | Path,
    out_dir: str | Path,
    quantization: str = "float16",
    *,
    overwrite: bool = False,
) -> Path:
    """Export `model` as a CTranslate2 Whisper folder at `out_dir` (returned) with ctranslate2's own converter.

    `tokenizer_dir` holds the model's `tokenizer.json` (the CTranslate2 or HF folder it came from); it is copied
    into `out_dir` (faster-whisper would otherwise look for one on the hub), and so is a `preprocessor_config.json`
    there. `quantization` is any of ctranslate2's (float16, int8, int8_float16, float32, ...). The folder ends up
    with config.json, model.bin, tokenizer.json and vocabulary.json. The model is not modified (it is saved with
    `save_pretrained` into a temporary folder and the converter reads that, so a model on a GPU exports too).

    The folder appears whole or not at all: the export is written next to it and renamed. An existing `out_dir`
    raises FileExistsError unless `overwrite`. Raises `TokenizerMissing` when `tokenizer_dir` has no tokenizer.json.
    """
    offline()
    import torch

    tokenizer_dir, out_dir = Path(tokenizer_dir), Path(out_dir)
    tokenizer_json = tokenizer_dir / "tokenizer.json"
    if not tokenizer_json.is_file():
        raise TokenizerMissing(tokenizer_missing_message(tokenizer_dir))
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists (pass overwrite=True to replace it)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".hf_to_ct2-", dir=out_dir.parent) as tmp:
        hf_dir, staged = Path(tmp) / "hf", Path(tmp) / "ct2"
        with torch.no_grad():
            model.save_pretrained(hf_dir)
        converter = _converter_class()(str(hf_dir), tokenizer_json, copy_files=None)
        converter.convert(str(staged), quantization=quantization)
        shutil.copyfile(tokenizer_json, staged / "tokenizer.json")
        for name in _OPTIONAL_COPIES:
            if (tokenizer_dir / name).is_file():
                shutil.copyfile(tokenizer_dir / name, staged / name)
        missing = [n for n in CT2_REQUIRED_FILES if not (staged / n).is_file()]
        if not any(staged.glob("vocabulary.*")):
            missing.append("vocabulary.*")
        if missing:
            raise ConversionError(f"ctranslate2's converter left out {missing}")
        if out_dir.exists():
            # Move the old folder aside first so the rename below cannot meet a non-empty directory.
            old = Path(tmp) / "old"
            out_dir.rename(old)
        staged.rename(out_dir)
    return out_dir


def count_parameters(model: "torch.nn.Module") -> int:
    """Distinct parameters (a tied tensor counted once), as `sum(p.numel())` over `model.parameters()` gives."""
    return sum(p.numel() for p in model.parameters())
