"""Whisper base models for the platform: weights from installed packages, and our own CTranslate2 <-> Hugging Face
conversion.

    weights.resolve_model("tiny.en")              # -> ResolvedModel(name, kind "ct2" | "hf", path, english_only)
    weights.base_model_dir("base")                # -> a CTranslate2 folder faster-whisper loads (tokenizer.json in it)
    convert.ct2_to_hf(ct2_dir)                    # -> transformers.WhisperForConditionalGeneration (for fine-tuning)
    convert.hf_to_ct2(model, tokenizer_dir, out)  # -> a CTranslate2 folder again (for serving with faster-whisper)
    ct2_format.read_model_bin(path)               # -> Ct2Model: CTranslate2's model.bin, read by us

Modules:
- `ct2_format`: CTranslate2's `model.bin` binary layout, read and written byte for byte (numpy only).
- `convert`: the CTranslate2 <-> Hugging Face weight mapping, the tokenizer helpers (`load_tokenizer`,
  `special_token_ids`), and the export through ctranslate2's own `TransformersConverter`.
- `weights`: the table of base models (`BASE_MODELS`) and which pip packages carry them, the assembly of split
  weights into a cache folder, and `resolve_model` for "a base model name or your own folder".

Importing this package imports nothing heavy: torch, transformers and ctranslate2 load inside the functions that
need them. Nothing here reaches a model hub: every transformers / faster-whisper call is made offline.
"""
