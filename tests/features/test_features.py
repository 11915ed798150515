"""Log-mel features: batched equals unbatched, stored without pickles, computed once per (content, config)."""

from __future__ import annotations

import io

import dagster as dg
import numpy as np
import pytest
import torch
import torchaudio

from speech_assets.audio.decode import encode_wav_pcm16, read_canonical_wav
from speech_assets.defs.features.assets import features
from speech_assets.defs.intake.assets import raw_audio
from speech_assets.defs.intake.partitions import intake_batches
from speech_assets.defs.intake.resources import LandingZoneResource
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.features.logmel import FeatureConfig, LogMelExtractor
from speech_assets.features.stats import LOGMEL_EDGES, band_histograms, batch_stats
from speech_assets.features.store import compute_batch_features, feature_dir, load_features, load_stats
from speech_assets.intake.batch import ingest_batch
from speech_assets.intake.landing import scan_landing
from tests.intake.conftest import REPO, good_rows, make_batch


def test_batched_logmel_equals_torchaudio_per_utterance():
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000, 8001, 24321, 401, 3000)]
    cfg = FeatureConfig()
    reference = torchaudio.transforms.MelSpectrogram(
        sample_rate=16000, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels, f_min=cfg.f_min,
        f_max=cfg.f_max, center=True, pad_mode="reflect",
    )
    for batch_seconds in (0.1, 1, 4):  # from one utterance per batch to several
        out = LogMelExtractor(cfg, max_batch_samples=int(batch_seconds * 16000))(waves)
        for x, got in zip(waves, out):
            want = torch.log(reference(torch.from_numpy(x)) + cfg.log_floor).T.numpy()
            assert got.shape == want.shape == (cfg.n_frames(len(x)), 80)
            np.testing.assert_allclose(got, want, atol=1e-4)


def test_extractor_restores_torch_threads():
    before = torch.get_num_threads()
    LogMelExtractor(threads=1)([np.zeros(1600, np.float32) + 0.01])
    assert torch.get_num_threads() == before


def test_config_digest_names_the_feature_set():
    assert FeatureConfig().digest() == FeatureConfig().digest()
    assert FeatureConfig(n_mels=40).digest() != FeatureConfig().digest()
    assert FeatureConfig(code_version="2").digest() != FeatureConfig().digest()


def test_canonical_wav_fast_path_matches_soundfile():
    import soundfile as sf

    x = np.random.default_rng(1).uniform(-0.9, 0.9, 4000).astype(np.float32)
    data = encode_wav_pcm16(x, 16000)
    fast, sr = read_canonical_wav(data)
    slow, sr2 = sf.read(io.BytesIO(data), dtype="float32")
    assert sr == sr2 == 16000 and np.array_equal(fast, slow)
    assert read_canonical_wav(data[:-2]) is None  # anything not canonical goes the slow way
    assert read_canonical_wav(b"RIFF" + b"\0" * 60) is None


def test_stats_histograms_and_moments():
    rng = np.random.default_rng(2)
    feats = [rng.normal(-5, 3, (n, 80)).astype(np.float32) for n in (50, 120, 7)]
    rows = [
        {"duration_s": 1.0 + i, "text": "turn on the light", "snr_db": None, "est_snr_db": 25.0, "clipped_fraction": 0.0,
         "accent": "us" if i else "gb", "channel": "clean", "original_sample_rate": 16000, "original_format": "WAV/PCM_16"}
        for i in range(3)
    ]
    stats = batch_stats(feats, rows)
    frames = np.concatenate(feats)
    np.testing.assert_allclose(stats["band_mean"], frames.mean(0), atol=1e-4)
    np.testing.assert_allclose(stats["band_var"], frames.var(0), rtol=1e-3)
    assert np.array(stats["band_hist"]).sum() == frames.size
    ref = np.histogram(np.clip(frames[:, 3], LOGMEL_EDGES[0], LOGMEL_EDGES[-1] - 1e-6), bins=LOGMEL_EDGES)[0]
    assert band_histograms(frames)[3].tolist() == ref.tolist()
    assert stats["subgroups"]["accent"]["us"]["utterances"] == 2
    np.testing.assert_allclose(stats["subgroups"]["accent"]["gb"]["band_mean"], feats[0].mean(0), atol=1e-4)
    assert stats["speaking_rate_wps"]["n"] == 3 and stats["words"]["turn"] == 3


@pytest.fixture
def published(store, landing):
    make_batch(landing, "day-01", good_rows(4))
    (b,) = scan_landing(landing)
    assert ingest_batch(store, REPO, b, run_id="r").published
    return store


def test_features_are_stored_without_pickles_and_skipped_when_unchanged(published):
    store = published
    first = compute_batch_features(store, REPO, "day-01", run_id="a")
    assert not first.skipped and first.utterances == 4
    head = store.resolve(REPO, "main")
    assert head == first.commit_id
    raw = store.get_object(REPO, "main", f"{feature_dir(FeatureConfig(), 'day-01')}/features.npy")
    assert np.load(io.BytesIO(raw), allow_pickle=False).dtype == np.float16
    feats = load_features(store, REPO, "main", FeatureConfig(), "day-01")
    assert len(feats) == 4 and all(f.shape[1] == 80 for f in feats.values())
    assert sum(f.shape[0] for f in feats.values()) == first.frames

    again = compute_batch_features(store, REPO, "day-01", run_id="b")
    assert again.skipped and store.resolve(REPO, "main") == head  # unchanged: no new commit

    other = compute_batch_features(store, REPO, "day-01", run_id="c", config=FeatureConfig(n_mels=40))
    assert not other.skipped  # a changed config is a different feature set
    assert load_stats(store, REPO, "main", FeatureConfig(n_mels=40), "day-01")["feature_config"]["n_mels"] == 40
    assert store.get_commit(REPO, first.commit_id).metadata["source_commit"] == first.read_commit


def test_features_asset_metadata_and_refusal_of_unpublished_batch(tmp_path, landing):
    make_batch(landing, "day-01", good_rows(3))
    make_batch(landing, "bad", [{"audio_filepath": "audio/x.wav", "text": "missing", "speaker": "s"}])
    resources = {
        "store": VersionStoreResource(local_root=str(tmp_path / "store"), repository=REPO),
        "landing": LandingZoneResource(path=str(landing)),
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(intake_batches.name, ["day-01", "bad"])
        assert dg.materialize([raw_audio], partition_key="day-01", instance=instance, resources=resources).success
        result = dg.materialize([features], partition_key="day-01", instance=instance, resources=resources)
        (mat,) = result.asset_materializations_for_node("features")
        md = {k: v.value for k, v in mat.metadata.items()}
        assert md["utterances"] == 3 and md["skipped"] is False and md["audio_seconds_per_cpu_second"] > 0
        assert md["feature_config_digest"] == FeatureConfig().digest()
        assert md["commit_in"] != md["commit_out"]

        dg.materialize([raw_audio], partition_key="bad", instance=instance, resources=resources, raise_on_error=False)
        failed = dg.materialize([features], partition_key="bad", instance=instance, resources=resources, raise_on_error=False)
        assert not failed.success


def test_serving_features_equal_the_stored_training_features(published):
    """The Transcriber (serving) and the features asset (training) must feed the model identical numbers."""
    from speech_assets.model.architecture import CTCModel, ModelConfig
    from speech_assets.model.inference import Transcriber
    from speech_assets.model.train import checkpoint_bytes
    import pyarrow.parquet as pq

    store = published
    compute_batch_features(store, REPO, "day-01", run_id="a")
    stored = load_features(store, REPO, "main", FeatureConfig(), "day-01")
    mcfg = ModelConfig(conv_channels=4, hidden=16, layers=1)
    blob = checkpoint_bytes(CTCModel(mcfg).state_dict(), mcfg, {"feature_config": FeatureConfig().to_dict()})
    tr = Transcriber.from_checkpoint(blob)
    rows = pq.read_table(io.BytesIO(store.get_object(REPO, "main", "metadata/day-01.parquet"))).to_pylist()
    assert len(rows) == len(stored) == 4
    for r in rows:
        decoded = read_canonical_wav(store.get_object(REPO, "main", r["audio_path"]))
        assert decoded is not None
        served = tr.features(decoded[0]).numpy()
        assert served.dtype == np.float32 and served.shape == stored[r["utt_id"]].shape
        assert np.array_equal(served, stored[r["utt_id"]]), r["utt_id"]
